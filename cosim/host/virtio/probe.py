"""PROBE properties: the ``RESV_MEM`` property, and the list the device writes.

Virtio specification, "IOMMU device / PROBE request" and "PROBE properties". A property is
``struct virtio_iommu_probe_property { le16 {type:12, reserved:4}; le16 length; }``
followed by ``length`` bytes; the next property starts ``length + 4`` bytes after the
start of this one, and the list ends at type 0 (``PROBE_T_NONE``) or at the end of the
buffer. ``RESV_MEM`` (24 bytes, ``length`` = 20)::

    @0 head  @4 u8 subtype  @5 u8 reserved[3]  @8 le64 start  @16 le64 end (inclusive)
"""

import dataclasses
import struct

from iogate.cosim.host.virtio.abi import PROBE_T_MASK, ProbeType

__all__ = ["ResvMem", "encode_properties", "decode_properties", "RESV_MEM_SIZE"]

_HEAD = struct.Struct("<HH")
_RESV_MEM = struct.Struct("<HHB3xQQ")
#: Bytes of a ``RESV_MEM`` property, header included.
RESV_MEM_SIZE = _RESV_MEM.size
assert RESV_MEM_SIZE == 24


@dataclasses.dataclass(frozen=True)
class ResvMem:
    """One reserved IOVA region of an endpoint: ``[start, end]``, inclusive.

    ``subtype`` is a :class:`~iogate.cosim.host.virtio.abi.ResvMemSubtype` (or, when decoded, any
    byte: "The driver SHOULD treat any subtype it doesn't recognize as if it was
    RESERVED").
    """

    subtype: int
    start: int
    end: int

    def __post_init__(self):
        if not 0 <= self.start <= self.end < 1 << 64:
            raise ValueError(f"a reserved region needs 0 <= start <= end < 2**64, not "
                             f"[{self.start:#x}, {self.end:#x}]")

    def overlaps(self, start, end):
        """``[start, end]`` (inclusive) shares an address with this region."""
        return start <= self.end and self.start <= end

    def encode(self):
        return _RESV_MEM.pack(ProbeType.RESV_MEM, RESV_MEM_SIZE - _HEAD.size,
                              self.subtype, self.start, self.end)


def encode_properties(regions, probe_size):
    """The ``properties`` buffer: each region's property, then zeros up to ``probe_size``.

    "If the device doesn't fill all probe_size bytes with properties, it SHOULD fill the
    remaining bytes of properties with zeroes" (which also ends the list: type 0).

    Raises
    ------
    ValueError
        If the properties do not fit in ``probe_size`` bytes.
    """
    raw = b"".join(r.encode() for r in regions)
    if len(raw) > probe_size:
        raise ValueError(f"{len(raw)} bytes of properties do not fit probe_size {probe_size}")
    return raw + bytes(probe_size - len(raw))


def decode_properties(buf):
    """The ``RESV_MEM`` regions in ``buf``, read the way the spec tells a driver to.

    A property with reserved header bits set is ignored, an unknown type is skipped, and
    parsing stops at type 0, at the end of the buffer, or at a property that runs past it.
    """
    regions = []
    pos = 0
    while pos + _HEAD.size <= len(buf):
        word, length = _HEAD.unpack_from(buf, pos)
        type_ = word & PROBE_T_MASK
        if type_ == ProbeType.NONE:
            break
        end = pos + _HEAD.size + length
        if end > len(buf):
            break
        if word == ProbeType.RESV_MEM and length >= RESV_MEM_SIZE - _HEAD.size:
            _, _, subtype, start, last = _RESV_MEM.unpack_from(buf, pos)
            if start <= last:
                regions.append(ResvMem(subtype, start, last))
        pos = end
    return regions

