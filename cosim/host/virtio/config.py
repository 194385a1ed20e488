"""The virtio-iommu device configuration space (``struct virtio_iommu_config``, 40 bytes).

Virtio specification, "IOMMU device / Device configuration layout"::

    @0  le64 page_size_mask          @24 le32 domain_range.start
    @8  le64 input_range.start       @28 le32 domain_range.end
    @16 le64 input_range.end         @32 le32 probe_size
                                     @36 u8   bypass     @37 u8 reserved[3]

Only ``bypass`` is writable, and only when ``VIRTIO_IOMMU_F_BYPASS_CONFIG`` is offered;
"The driver MUST NOT write to any other device configuration field".
"""

import struct

__all__ = ["ConfigSpace", "CONFIG_SIZE", "BYPASS_OFFSET"]

#: Bytes in ``struct virtio_iommu_config``.
CONFIG_SIZE = 40
#: Offset of the ``bypass`` byte.
BYPASS_OFFSET = 36

_LAYOUT = struct.Struct("<QQQIIIB3x")
assert _LAYOUT.size == CONFIG_SIZE


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class ConfigSpace:
    """The configuration fields of one device.

    Parameters
    ----------
    page_size_mask : int
        Page sizes that can be mapped; the lowest set bit is the granule (non-zero, 64-bit).
    input_range : (int, int)
        Inclusive IOVA range the IOMMU translates.
    domain_range : (int, int)
        Inclusive range of domain IDs.
    probe_size : int
        Bytes of the PROBE ``properties`` buffer.
    bypass : int
        Initial ``bypass`` (0 or 1). The spec lets a device initialise it to 1; it keeps
        its value across device reset (:meth:`reset` leaves it alone).
    bypass_writable : bool
        ``VIRTIO_IOMMU_F_BYPASS_CONFIG`` is offered, so the driver may write ``bypass``.

    Raises
    ------
    TypeError
        If a value is not an integer (or a pair of integers).
    ValueError
        If a value does not fit its field, a range is empty, ``page_size_mask`` is 0 or
        ``bypass`` is not 0 or 1.
    """

    def __init__(self, *, page_size_mask, input_range, domain_range, probe_size, bypass=0,
                 bypass_writable=True):
        if not _is_int(page_size_mask):
            raise TypeError(f"page_size_mask must be an integer, not {page_size_mask!r}")
        if not 0 < page_size_mask < 1 << 64:
            raise ValueError(f"page_size_mask must be a non-zero 64-bit mask, not "
                             f"{page_size_mask:#x}")
        for name, pair, width in (("input_range", input_range, 64),
                                  ("domain_range", domain_range, 32)):
            if (not isinstance(pair, tuple) or len(pair) != 2
                    or not all(_is_int(v) for v in pair)):
                raise TypeError(f"{name} must be a pair of integers, not {pair!r}")
            if not 0 <= pair[0] <= pair[1] < 1 << width:
                raise ValueError(f"{name} must be an inclusive {width}-bit range with "
                                 f"start <= end, not {pair!r}")
        if not _is_int(probe_size):
            raise TypeError(f"probe_size must be an integer, not {probe_size!r}")
        if not 0 <= probe_size < 1 << 32:
            raise ValueError(f"probe_size must fit 32 bits, not {probe_size!r}")
        if bypass not in (0, 1) or isinstance(bypass, bool):
            raise ValueError(f"bypass must be 0 or 1, not {bypass!r}")
        self.page_size_mask = page_size_mask
        self.input_range = input_range
        self.domain_range = domain_range
        self.probe_size = probe_size
        self.bypass = bypass
        self.bypass_writable = bool(bypass_writable)

    @property
    def granule(self):
        """The page granularity: the lowest set bit of ``page_size_mask``."""
        return self.page_size_mask & -self.page_size_mask

    def to_bytes(self):
        """The 40 bytes the driver reads."""
        return _LAYOUT.pack(self.page_size_mask, *self.input_range, *self.domain_range,
                            self.probe_size, self.bypass)

    def read(self, offset, size):
        """``size`` bytes at ``offset`` as a little-endian integer.

        A read beyond the structure reads as all ones, as QEMU's virtio config accessors
        answer it.

        Raises
        ------
        TypeError
            If ``offset`` or ``size`` is not an integer.
        ValueError
            If ``size`` is not 1, 2, 4 or 8, or ``offset`` is negative.
        """
        self._check_access(offset, size)
        if offset + size > CONFIG_SIZE:
            return (1 << (8 * size)) - 1
        return int.from_bytes(self.to_bytes()[offset:offset + size], "little")

    def write(self, offset, size, value):
        """A driver write: only the ``bypass`` byte, only 0 or 1, only if writable.

        Every other byte is read-only and the write to it is dropped. A ``bypass`` value
        other than 0 or 1 is dropped too: "The driver MUST NOT write a value different
        than 0 or 1" and "The device MUST NOT present a value different than 0 or 1", so
        the device keeps the old value rather than inventing one.

        Returns
        -------
        bool
            ``bypass`` changed.
        """
        self._check_access(offset, size)
        if not _is_int(value):
            raise TypeError(f"value must be an integer, not {value!r}")
        value &= (1 << (8 * size)) - 1
        if not self.bypass_writable or not offset <= BYPASS_OFFSET < offset + size:
            return False
        byte = (value >> (8 * (BYPASS_OFFSET - offset))) & 0xFF
        if byte not in (0, 1) or byte == self.bypass:
            return False
        self.bypass = byte
        return True

    @staticmethod
    def _check_access(offset, size):
        for name, v in (("offset", offset), ("size", size)):
            if not _is_int(v):
                raise TypeError(f"{name} must be an integer, not {v!r}")
        if size not in (1, 2, 4, 8):
            raise ValueError(f"size must be 1, 2, 4 or 8, not {size!r}")
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset!r}")
