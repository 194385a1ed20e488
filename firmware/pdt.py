"""The process directory: process contexts, found by process_id, in a 1-, 2- or 3-level table.

RISC-V IOMMU spec "Process-Directory-Table (PDT)" and "Process to locate the Process-context".
``pdtp.MODE`` PD8, PD17 or PD20 reads 1, 2 or 3 tables: ``PDI[2] = pid[19:17]`` (PD20 root,
8 used entries of a 4 KiB page), ``PDI[1] = pid[16:8]`` (512 8-byte PDTEs) and
``PDI[0] = pid[7:0]`` (the leaf page: 256 16-byte process contexts). The geometry is
:class:`iogate.hdl.formats.PdtpMode`'s. Every non-leaf address in the walk uses ``PDI[i]``
of its own level (the spec's GET_PC step 2 prints ``PDI[2]`` for every level, a typo the
reference N.1.2 records).

The table lives wherever ``bus`` says: the host's memory for a host process (``iohgatp``
Bare), or a guest's memory (a :class:`~iogate.firmware.guest.GuestMemory`, with a guest
allocator) when the guest owns its process directory behind the second stage: then every
address here is a guest physical address, as the spec wants of ``pdtp.PPN``, PDTE.PPN and
PC.fsc.PPN under a non-Bare ``iohgatp``.

Entries are stored little-endian (``DC.tc.SBE=0``, which the driver keeps). A non-leaf PDTE is
made valid before anything reads through it and needs no invalidation (spec "Caching invalid
entries"); removing one is a non-leaf PDT change, invalidated with ``IODIR.INVAL_DDT DV=1``
(:func:`iogate.firmware.invalidate.pdt_nonleaf_change`).
"""

import dataclasses

from iogate.hdl import bits
from iogate.hdl.formats import IOSATP, PC_SIZE, PC_TA, PDTE, PDTE_SIZE, PDTP, PdtpMode

from iogate.firmware.alloc import PAGE_SIZE

__all__ = ["ProcessContext", "ProcessDirectory"]


@dataclasses.dataclass(frozen=True)
class ProcessContext:
    """A process context: two doublewords (spec "Process-context fields").

    ``ta`` is laid out as :data:`iogate.hdl.formats.PC_TA` (V, ENS, SUM, PSCID), ``fsc`` as
    ``IOSATP`` (the first-stage root, a GPA page under a non-Bare ``iohgatp``).
    """

    ta: int = 0
    fsc: int = 0

    @classmethod
    def make(cls, *, pscid, mode, root, ens=False, sum=False):
        """A valid context for a first-stage table of ``mode`` rooted at ``root``."""
        if root % PAGE_SIZE:
            raise ValueError(f"root must be 4 KiB aligned, not {root:#x}")
        return cls(bits.pack(PC_TA, v=1, ens=bool(ens), sum=bool(sum), pscid=pscid),
                   bits.pack(IOSATP, mode=mode, ppn=root >> 12))

    @property
    def valid(self):
        """``ta.V``."""
        return bool(bits.get(PC_TA, self.ta, "v"))

    @property
    def pscid(self):
        return bits.get(PC_TA, self.ta, "pscid")

    def to_bytes(self):
        """The 16 bytes in memory (``ta`` first, little-endian doublewords)."""
        return self.ta.to_bytes(8, "little") + self.fsc.to_bytes(8, "little")

    @classmethod
    def from_bytes(cls, raw):
        if len(raw) != PC_SIZE:
            raise ValueError(f"a process context is {PC_SIZE} bytes, not {len(raw)}")
        return cls(int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little"))


class ProcessDirectory:
    """A process directory table rooted at ``root``, walked in ``mode``.

    Parameters
    ----------
    bus : Bus
        Where the table lives (host memory, or a ``GuestMemory``).
    alloc : PageAllocator
        Where the non-leaf levels' pages come from (in the same address space as ``bus``).
    mode : PdtpMode
        ``PD8``, ``PD17`` or ``PD20``.
    root : int or None
        Address of a zeroed 4 KiB root page; ``None`` allocates one.

    Raises
    ------
    ValueError
        If ``mode`` is Bare or not a PDT mode, or ``root`` is not 4 KiB aligned.
    """

    def __init__(self, bus, alloc, mode, root=None):
        mode = PdtpMode(mode)
        if not mode.levels:
            raise ValueError(f"mode must be PD8, PD17 or PD20, not {mode.name}")
        if root is None:
            root = alloc.alloc(PAGE_SIZE)
        if root % PAGE_SIZE:
            raise ValueError(f"root must be 4 KiB aligned, not {root:#x}")
        self.bus = bus
        self.alloc = alloc
        self.mode = mode
        self.root = root

    @property
    def pdtp(self):
        """``DC.fsc`` for this table (layout :data:`~iogate.hdl.formats.PDTP`)."""
        return bits.pack(PDTP, mode=self.mode, ppn=self.root >> 12)

    def check_process_id(self, process_id):
        """Raise unless ``process_id`` is indexed by this mode (else the IOMMU gives 260)."""
        if not isinstance(process_id, int) or isinstance(process_id, bool):
            raise TypeError(f"process_id must be an integer, not {process_id!r}")
        if not 0 <= process_id < 1 << self.mode.pid_bits:
            raise ValueError(f"process_id {process_id:#x} does not fit the "
                             f"{self.mode.pid_bits} bits of {self.mode.name}")

    def _pdte(self, address):
        return int.from_bytes(self.bus.mem_read(address, PDTE_SIZE), "little")

    def _path(self, process_id):
        # [(PDTE address, page it points to or None)] root first, as far as valid.
        table, path = self.root, []
        for level in range(self.mode.levels - 1, 0, -1):
            entry = table + PdtpMode.pdi(process_id, level) * PDTE_SIZE
            pdte = self._pdte(entry)
            table = bits.get(PDTE, pdte, "ppn") << 12 if bits.get(PDTE, pdte, "v") else None
            path.append((entry, table))
            if table is None:
                break
        return path

    def pc_address(self, process_id, *, create=False):
        """Where the process context of ``process_id`` is, or ``None`` if not reachable.

        With ``create``, missing non-leaf pages are allocated (zeroed), then linked in: the
        PDTE is stored only once its page reads as all-invalid.
        """
        self.check_process_id(process_id)
        table = self.root
        for level in range(self.mode.levels - 1, 0, -1):
            entry = table + PdtpMode.pdi(process_id, level) * PDTE_SIZE
            pdte = self._pdte(entry)
            if not bits.get(PDTE, pdte, "v"):
                if not create:
                    return None
                page = self.alloc.alloc(PAGE_SIZE)
                pdte = bits.pack(PDTE, v=1, ppn=page >> 12)
                self.bus.mem_write(entry, pdte.to_bytes(PDTE_SIZE, "little"))
            table = bits.get(PDTE, pdte, "ppn") << 12
        return table + PdtpMode.pdi(process_id, 0) * PC_SIZE

    def read(self, process_id):
        """The process context of ``process_id`` (all zero, so invalid, if not reachable)."""
        address = self.pc_address(process_id)
        if address is None:
            return ProcessContext()
        return ProcessContext.from_bytes(self.bus.mem_read(address, PC_SIZE))

    def write(self, process_id, pc, *, words=("fsc", "ta")):
        """Store ``words`` of ``pc`` in that order, creating non-leaf pages if needed.

        Each doubleword is one 8-byte store. The caller orders them: ``ta`` (holding V) last
        when making a context valid, first when making it invalid, so the IOMMU never reads
        a valid ``ta`` beside a stale ``fsc``.
        """
        address = self.pc_address(process_id, create=True)
        for name in words:
            offset = 0 if name == "ta" else 8
            self.bus.mem_write(address + offset, getattr(pc, name).to_bytes(8, "little"))

    def prune(self, process_id):
        """Unlink the deepest non-leaf page on ``process_id``'s walk if it holds nothing valid.

        Repeats up the walk while pages become empty; the root stays.

        Returns
        -------
        list of int
            The pages unlinked, deepest first. The caller sends ``IODIR.INVAL_DDT`` with
            ``DV=1`` for the device (a non-leaf PDTE changed) and only then frees them.
        """
        self.check_process_id(process_id)
        path = self._path(process_id)
        if not path or path[-1][1] is None:
            return []
        unlinked = []
        stride = PC_SIZE    # the leaf page holds PCs (V in bit 0 of ta); the others PDTEs
        for entry, page in reversed(path):
            raw = self.bus.mem_read(page, PAGE_SIZE)
            if any(raw[i] & 1 for i in range(0, PAGE_SIZE, stride)):
                break
            self.bus.mem_write(entry, bytes(PDTE_SIZE))
            unlinked.append(page)
            stride = PDTE_SIZE
        return unlinked

    def pages(self):
        """Every page of the table, root first (for freeing it all)."""
        out = [self.root]
        frontier = [(self.root, self.mode.levels - 1)]
        while frontier:
            page, level = frontier.pop()
            if level == 0:
                continue
            raw = self.bus.mem_read(page, PAGE_SIZE)
            for i in range(0, PAGE_SIZE, PDTE_SIZE):
                pdte = int.from_bytes(raw[i:i + PDTE_SIZE], "little")
                if bits.get(PDTE, pdte, "v"):
                    child = bits.get(PDTE, pdte, "ppn") << 12
                    out.append(child)
                    frontier.append((child, level - 1))
        return out
