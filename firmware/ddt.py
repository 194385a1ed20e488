"""The device directory: device contexts, found by device_id, in a 1-, 2- or 3-level table.

RISC-V IOMMU spec "Device-Directory-Table (DDT)" and "Process to translate an IOVA" step 3. With
base-format (32-byte) device contexts the device_id splits into DDI[0] = did[6:0], DDI[1] =
did[15:7], DDI[2] = did[23:16] (:meth:`iogate.hdl.regs.IommuMode.ddi`); a non-leaf entry (DDTE)
points at the next level's 4 KiB page, and the leaf page holds 128 device contexts. With
extended-format (64-byte) device contexts, which an IOMMU with ``capabilities.MSI_FLAT`` always
reads (reference N.3), the split is DDI[0] = did[5:0], DDI[1] = did[14:6], DDI[2] = did[23:15]
(``ddi(device_id, extended=True)``) and the leaf page holds 64 contexts, each with ``msiptp``,
``msi_addr_mask`` and ``msi_addr_pattern`` after the base four doublewords. Non-leaf pages are
allocated when a device_id first needs them; making a DDTE valid needs no invalidation (spec
"Caching invalid entries").
"""

import dataclasses

from iogate.hdl import bits
from iogate.hdl.formats import DC_EXT_SIZE, DC_SIZE, DDTE
from iogate.hdl.regs import IommuMode

from iogate.firmware.alloc import PAGE_SIZE

__all__ = ["DeviceContext", "DeviceDirectory"]

_WORDS = ("tc", "iohgatp", "ta", "fsc")
#: The doublewords of an extended-format context, in memory order (reference N.3.1).
_EXT_WORDS = _WORDS + ("msiptp", "msi_addr_mask", "msi_addr_pattern", "rsvd")


@dataclasses.dataclass(frozen=True)
class DeviceContext:
    """A device context: four doublewords (base format, spec "Device-context fields"), or
    eight (extended format, ``capabilities.MSI_FLAT``, reference N.3.1).

    Each field is the 64-bit word, laid out as :data:`iogate.hdl.formats.TC`, ``IOHGATP``, ``TA``
    and ``IOSATP``; then ``MSIPTP``, ``MSI_ADDR_MASK`` (mask and pattern) and the reserved
    doubleword 7 (``rsvd``, 0 unless a test wants cause 259). A base-format directory stores
    only the first four, so the others must be 0 there.
    """

    tc: int = 0
    iohgatp: int = 0
    ta: int = 0
    fsc: int = 0
    msiptp: int = 0
    msi_addr_mask: int = 0
    msi_addr_pattern: int = 0
    rsvd: int = 0

    @property
    def has_extended_fields(self):
        """A word beyond the base format's four is non-zero."""
        return any(getattr(self, w) for w in _EXT_WORDS[4:])

    @property
    def valid(self):
        """``tc.V``."""
        return bool(self.tc & 1)

    def to_bytes(self, *, extended=False):
        """The 32 (or, ``extended``, 64) bytes in memory (little-endian doublewords;
        ``fctl.BE=0``).

        Raises
        ------
        ValueError
            If a base-format context would drop non-zero extended fields.
        """
        if not extended and self.has_extended_fields:
            raise ValueError("a base-format device context has no msiptp, msi_addr_mask, "
                             "msi_addr_pattern or doubleword 7")
        words = _EXT_WORDS if extended else _WORDS
        return b"".join(getattr(self, w).to_bytes(8, "little") for w in words)

    @classmethod
    def from_bytes(cls, raw, *, extended=False):
        """The context in ``raw``: 32 bytes (base format) or, ``extended``, 64."""
        size = DC_EXT_SIZE if extended else DC_SIZE
        if len(raw) != size:
            raise ValueError(f"a device context is {size} bytes, not {len(raw)}")
        return cls(*(int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(size // 8)))


def ddi(device_id, extended=False):
    """``(DDI[0], DDI[1], DDI[2])`` of ``device_id`` (base format, or extended: 6/9/9)."""
    return IommuMode.LVL3.ddi(device_id, extended)


class DeviceDirectory:
    """A device directory table rooted at ``root``, walked in ``mode``.

    Parameters
    ----------
    bus : Bus
        Where the table lives.
    alloc : PageAllocator
        Where non-leaf pages come from (and go back to).
    mode : IommuMode
        ``LVL1``, ``LVL2`` or ``LVL3``.
    root : int
        Physical address of the zeroed 4 KiB root page.
    extended : bool
        64-byte extended-format contexts (the IOMMU has ``capabilities.MSI_FLAT``).

    Raises
    ------
    ValueError
        If ``mode`` is not a directory mode or ``root`` is not 4 KiB aligned.
    """

    def __init__(self, bus, alloc, mode, root, *, extended=False):
        mode = IommuMode(mode)
        if not mode.levels:
            raise ValueError(f"mode must be LVL1, LVL2 or LVL3, not {mode.name}")
        if root % PAGE_SIZE:
            raise ValueError(f"root must be 4 KiB aligned, not {root:#x}")
        self.bus = bus
        self.alloc = alloc
        self.mode = mode
        self.levels = mode.levels
        self.root = root
        self.extended = bool(extended)
        self.dc_size = DC_EXT_SIZE if self.extended else DC_SIZE
        self.words = _EXT_WORDS if self.extended else _WORDS

    @property
    def device_id_bits(self):
        return self.mode.device_id_bits_of(self.extended)

    def check_device_id(self, device_id):
        """Raise unless ``device_id`` is reachable in this mode (else the IOMMU gives 260)."""
        if not isinstance(device_id, int) or isinstance(device_id, bool):
            raise TypeError(f"device_id must be an integer, not {device_id!r}")
        if not 0 <= device_id < 1 << self.device_id_bits:
            raise ValueError(f"device_id {device_id:#x} does not fit the {self.device_id_bits} "
                             f"bits of {self.mode.name}")

    def _ddte(self, address):
        return int.from_bytes(self.bus.mem_read(address, 8), "little")

    def _path(self, device_id):
        # The addresses of the non-leaf entries on the walk, root first, with the page
        # each one points to (None where the entry is invalid and the walk stops).
        index = ddi(device_id, self.extended)
        table, path = self.root, []
        for level in range(self.levels - 1, 0, -1):
            entry = table + index[level] * 8
            ddte = self._ddte(entry)
            table = bits.get(DDTE, ddte, "ppn") << 12 if bits.get(DDTE, ddte, "v") else None
            path.append((entry, table))
            if table is None:
                break
        return path

    def dc_address(self, device_id, *, create=False):
        """Where the device context of ``device_id`` is, or ``None`` if not reachable.

        With ``create``, missing non-leaf pages are allocated (zeroed) and linked in.
        """
        self.check_device_id(device_id)
        index = ddi(device_id, self.extended)
        table = self.root
        for level in range(self.levels - 1, 0, -1):
            entry = table + index[level] * 8
            ddte = self._ddte(entry)
            if not bits.get(DDTE, ddte, "v"):
                if not create:
                    return None
                page = self.alloc.alloc(PAGE_SIZE)
                ddte = bits.pack(DDTE, v=1, ppn=page >> 12)
                self.bus.mem_write(entry, ddte.to_bytes(8, "little"))
            table = bits.get(DDTE, ddte, "ppn") << 12
        return table + index[0] * self.dc_size

    def read(self, device_id):
        """The device context of ``device_id`` (all zero, so invalid, if not reachable)."""
        address = self.dc_address(device_id)
        if address is None:
            return DeviceContext()
        return DeviceContext.from_bytes(self.bus.mem_read(address, self.dc_size),
                                        extended=self.extended)

    def write(self, device_id, dc, *, words=None):
        """Store ``words`` of ``dc`` (in that order; default: all of the format's),
        creating non-leaf pages if needed.

        Each doubleword is one 8-byte store, so the IOMMU never sees half of one (spec
        "Device-Directory-Table (DDT)": the DC is read as doublewords). The caller chooses the
        order: ``tc`` last when making a context valid, first when making it invalid.
        """
        if words is None:
            words = self.words
        unknown = [w for w in words if w not in self.words]
        if unknown:
            raise ValueError(f"{unknown[0]} is not a doubleword of a "
                             f"{'extended' if self.extended else 'base'}-format context")
        if not self.extended and dc.has_extended_fields:
            raise ValueError("a base-format device context has no msiptp, msi_addr_mask, "
                             "msi_addr_pattern or doubleword 7")
        address = self.dc_address(device_id, create=True)
        for name in words:
            offset = self.words.index(name) * 8
            self.bus.mem_write(address + offset, getattr(dc, name).to_bytes(8, "little"))

    def prune(self, device_id):
        """Unlink the deepest non-leaf page on ``device_id``'s walk if it holds nothing valid.

        Repeats up the walk while pages become empty. The root is never unlinked.

        Returns
        -------
        list of int
            The pages unlinked, deepest first. The caller invalidates with
            ``IODIR.INVAL_DDT`` ``DV=0`` (a non-leaf DDT change) and only then frees them.
        """
        self.check_device_id(device_id)
        path = self._path(device_id)
        if not path or path[-1][1] is None:
            return []
        unlinked = []
        # The leaf page holds device contexts (V in tc); a non-leaf page holds DDTEs (V in
        # bit 0 of each doubleword).
        stride = self.dc_size
        for entry, page in reversed(path):
            raw = self.bus.mem_read(page, PAGE_SIZE)
            if any(raw[i] & 1 for i in range(0, PAGE_SIZE, stride)):
                break
            self.bus.mem_write(entry, bytes(8))
            unlinked.append(page)
            stride = 8
        return unlinked
