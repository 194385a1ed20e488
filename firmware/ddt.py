"""The device directory: device contexts, found by device_id, in a 1-, 2- or 3-level table.

RISC-V IOMMU spec "Device-Directory-Table (DDT)" and "Process to translate an IOVA" step 3. With
base-format (32-byte) device contexts the device_id splits into DDI[0] = did[6:0], DDI[1] =
did[15:7], DDI[2] = did[23:16] (:meth:`iogate.hdl.regs.IommuMode.ddi`); a non-leaf entry (DDTE)
points at the next level's 4 KiB page, and the leaf page holds 128 device contexts. Non-leaf pages
are allocated when a device_id first needs them; making a DDTE valid needs no invalidation (spec
"Caching invalid entries").
"""

import dataclasses

from iogate.hdl import bits
from iogate.hdl.formats import DC_SIZE, DDTE
from iogate.hdl.regs import IommuMode

from iogate.firmware.alloc import PAGE_SIZE

__all__ = ["DeviceContext", "DeviceDirectory"]

_WORDS = ("tc", "iohgatp", "ta", "fsc")


@dataclasses.dataclass(frozen=True)
class DeviceContext:
    """A base-format device context: four doublewords (spec "Device-context fields").

    Each field is the 64-bit word, laid out as :data:`iogate.hdl.formats.TC`, ``IOHGATP``, ``TA``
    and ``IOSATP``.
    """

    tc: int = 0
    iohgatp: int = 0
    ta: int = 0
    fsc: int = 0

    @property
    def valid(self):
        """``tc.V``."""
        return bool(self.tc & 1)

    def to_bytes(self):
        """The 32 bytes in memory (little-endian doublewords; ``fctl.BE=0``)."""
        return b"".join(getattr(self, w).to_bytes(8, "little") for w in _WORDS)

    @classmethod
    def from_bytes(cls, raw):
        if len(raw) != DC_SIZE:
            raise ValueError(f"a device context is {DC_SIZE} bytes, not {len(raw)}")
        return cls(*(int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(4)))


def ddi(device_id):
    """``(DDI[0], DDI[1], DDI[2])`` of ``device_id`` (base format)."""
    return IommuMode.LVL3.ddi(device_id)


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

    Raises
    ------
    ValueError
        If ``mode`` is not a directory mode or ``root`` is not 4 KiB aligned.
    """

    def __init__(self, bus, alloc, mode, root):
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

    @property
    def device_id_bits(self):
        return self.mode.device_id_bits

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
        index = ddi(device_id)
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
        index = ddi(device_id)
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
        return table + index[0] * DC_SIZE

    def read(self, device_id):
        """The device context of ``device_id`` (all zero, so invalid, if not reachable)."""
        address = self.dc_address(device_id)
        if address is None:
            return DeviceContext()
        return DeviceContext.from_bytes(self.bus.mem_read(address, DC_SIZE))

    def write(self, device_id, dc, *, words=_WORDS):
        """Store ``words`` of ``dc`` (in that order), creating non-leaf pages if needed.

        Each doubleword is one 8-byte store, so the IOMMU never sees half of one (spec
        "Device-Directory-Table (DDT)": the DC is read as doublewords). The caller chooses the
        order: ``tc`` last when making a context valid, first when making it invalid.
        """
        address = self.dc_address(device_id, create=True)
        for name in words:
            offset = _WORDS.index(name) * 8
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
        stride = DC_SIZE
        for entry, page in reversed(path):
            raw = self.bus.mem_read(page, PAGE_SIZE)
            if any(raw[i] & 1 for i in range(0, PAGE_SIZE, stride)):
                break
            self.bus.mem_write(entry, bytes(8))
            unlinked.append(page)
            stride = 8
        return unlinked
