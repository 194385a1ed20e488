"""MSI page tables: the flat table a device context's ``msiptp`` points at.

RISC-V IOMMU spec "MSI page tables" and "Process to translate addresses of MSIs" (reference
N.4), with the AIA's "IOMMU support for MSIs to virtual machines" for the entry formats:

* a guest physical address A is an MSI address of the device when
  ``((A >> 12) & ~mask) == (pattern & ~mask)`` (``DC.msi_addr_mask``/``msi_addr_pattern``,
  52-bit page numbers);
* its interrupt-file number is ``I = extract(A >> 12, mask)``: the page-number bits where
  the mask is 1, packed at the low end;
* the table is a flat array of ``2**popcount(mask)`` 16-byte MSI PTEs at
  ``msiptp.PPN << 12``; entry ``I`` is at ``base | I * 16``. A table of up to 256 entries
  is 4 KiB aligned, a larger one naturally aligned to its size (else UNSPECIFIED);
* an entry is basic-translate (M=3: the page ``PPN << 12``, usually a guest interrupt file of
  an IMSIC) or MRIF (M=1: the IOMMU records the MSI's identity in a memory-resident interrupt
  file and sends a notice MSI, :mod:`iogate.firmware.mrif`), or invalid (V=0, cause 262).

The table is in system memory at a supervisor physical address (``msiptp.PPN`` is never
translated) and little-endian (``fctl.BE=0``, which the driver keeps).

Each change returns the GPA whose entry changed; the invalidation the spec asks for
(reference N.4.5: ``IOTINVAL.GVMA`` with ``GV=1, AV=1`` and that GPA for one entry, ``GV=1,
AV=0`` for the table) is the driver's (:meth:`iogate.firmware.driver.Iommu.msi_map_basic`),
since only it knows which device contexts, and so which GSCIDs, use the table. An entry is
written dw1 first and dw0 (with V) last when it becomes valid, dw0 first when it becomes
invalid, so the IOMMU never reads a valid dw0 beside a stale dw1.
"""

from iogate.hdl import bits
from iogate.hdl.formats import (
    MRIF_SIZE,
    MSI_ADDR_MASK,
    MSI_PTE_BASIC,
    MSI_PTE_MRIF,
    MSI_PTE_SIZE,
    MSIPTP,
    MsiPteMode,
    MsiptpMode,
)

from iogate.firmware.alloc import PAGE_SIZE

__all__ = ["MsiPageTable", "extract", "deposit", "msi_match"]

_PN_BITS = 52
_PN_MASK = (1 << _PN_BITS) - 1
#: Largest table this module builds: 2**12 entries (64 KiB). More interrupt files than a
#: hart count times guest files is not a platform anyone has.
MAX_INDEX_BITS = 12


def extract(value, mask):
    """The bits of ``value`` where ``mask`` is 1, packed in order at the low end (the
    spec's ``extract``; ``extract(0b abcdefgh, 0b10100110) == 0b acfg``)."""
    out, j = 0, 0
    for i in range(mask.bit_length()):
        if mask >> i & 1:
            out |= (value >> i & 1) << j
            j += 1
    return out


def deposit(value, mask):
    """The inverse of :func:`extract`: the low bits of ``value`` spread over ``mask``'s 1s."""
    out, j = 0, 0
    for i in range(mask.bit_length()):
        if mask >> i & 1:
            out |= (value >> j & 1) << i
            j += 1
    return out


def msi_match(gpa, mask, pattern):
    """``gpa`` is an MSI address for this mask and pattern (reference N.4.1)."""
    return ((gpa >> 12) & ~mask & _PN_MASK) == (pattern & ~mask & _PN_MASK) and gpa < 1 << 64


class MsiPageTable:
    """A flat MSI page table for the interrupt files ``pattern``/``mask`` select.

    Parameters
    ----------
    bus : Bus
    alloc : PageAllocator
        System memory for the table (allocated zeroed: every entry invalid).
    mask, pattern : int
        ``DC.msi_addr_mask`` and ``DC.msi_addr_pattern`` (52-bit guest page numbers). The
        pattern's bits under the mask are ignored by the IOMMU and kept 0 here.
    mgpaw : int or None
        The IOMMU's maximum guest physical address width; mask or pattern bits at
        ``[51 : mgpaw - 12]`` are refused (issue 16 decision 1: the IOMMU reports 259).

    Raises
    ------
    ValueError
        If ``mask`` or ``pattern`` is out of range, or the mask selects more than
        :data:`MAX_INDEX_BITS` bits.
    """

    def __init__(self, bus, alloc, mask, pattern, *, mgpaw=None):
        for name, value in (("mask", mask), ("pattern", pattern)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 0 <= value <= _PN_MASK:
                raise ValueError(f"{name} must be a 52-bit page number, not {value:#x}")
            if mgpaw is not None and value >> max(mgpaw - 12, 0):
                raise ValueError(f"{name} {value:#x} has bits at or above MGPAW-12 "
                                 f"({mgpaw - 12}): reserved, cause 259")
        self.index_bits = bin(mask).count("1")
        if self.index_bits > MAX_INDEX_BITS:
            raise ValueError(f"mask selects {self.index_bits} bits; at most {MAX_INDEX_BITS}")
        self.bus = bus
        self.alloc = alloc
        self.mask = mask
        self.pattern = pattern & ~mask
        self.entries = 1 << self.index_bits
        self.size = self.entries * MSI_PTE_SIZE
        alloc_size = max(self.size, PAGE_SIZE)
        # Natural alignment of the table (4 KiB for up to 256 entries): then base | I*16 and
        # base + I*16 agree, and no implementation's choice matters (reference N.4.1).
        self.base = alloc.alloc(alloc_size, align=alloc_size)

    # -- what goes in the device context -------------------------------------------------------

    @property
    def msiptp(self):
        """``DC.msiptp``: MODE Flat and the table's page."""
        return bits.pack(MSIPTP, mode=MsiptpMode.FLAT, ppn=self.base >> 12)

    @property
    def msi_addr_mask(self):
        return bits.pack(MSI_ADDR_MASK, value=self.mask)

    @property
    def msi_addr_pattern(self):
        return bits.pack(MSI_ADDR_MASK, value=self.pattern)

    # -- addresses -----------------------------------------------------------------------------

    def index_of(self, gpa):
        """The interrupt-file number of ``gpa``, or ``None`` if it is not an MSI address."""
        if not msi_match(gpa, self.mask, self.pattern):
            return None
        return extract(gpa >> 12, self.mask)

    def gpa_of(self, index):
        """The guest page address whose interrupt-file number is ``index``."""
        self._check_index(index)
        return (self.pattern | deposit(index, self.mask)) << 12

    def pte_address(self, index):
        """Where entry ``index`` is (``base | index * 16``)."""
        self._check_index(index)
        return self.base | index * MSI_PTE_SIZE

    def _check_index(self, index):
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"index must be an integer, not {index!r}")
        if not 0 <= index < self.entries:
            raise ValueError(f"index {index} is not below {self.entries}")

    def _resolve(self, index, gpa):
        if (index is None) == (gpa is None):
            raise TypeError("give exactly one of index and gpa")
        if gpa is not None:
            found = self.index_of(gpa)
            if found is None:
                raise ValueError(f"{gpa:#x} does not match the pattern {self.pattern:#x} "
                                 f"under mask {self.mask:#x}")
            return found
        self._check_index(index)
        return index

    # -- entries -------------------------------------------------------------------------------

    def read(self, index):
        """``(dw0, dw1)`` of entry ``index`` as in memory."""
        raw = self.bus.mem_read(self.pte_address(index), MSI_PTE_SIZE)
        return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")

    def write_raw(self, index, dw0, dw1=0):
        """Store any two doublewords in entry ``index`` (a test that wants cause 263 or
        262 uses it): dw1 first, then dw0. Returns the entry's GPA."""
        address = self.pte_address(index)
        self.bus.mem_write(address + 8, dw1.to_bytes(8, "little"))
        self.bus.mem_write(address, dw0.to_bytes(8, "little"))
        return self.gpa_of(index)

    def _store(self, index, dw0, dw1):
        old0, _ = self.read(index)
        address = self.pte_address(index)
        if old0 & 1:
            # A valid entry is never edited in place: V goes to 0 first. The IOMMU may
            # then fault (262) on that interrupt file until the new entry is written, which
            # is what "change an MSI PTE" allows before its invalidation completes.
            self.bus.mem_write(address, bytes(8))
        self.bus.mem_write(address + 8, dw1.to_bytes(8, "little"))
        self.bus.mem_write(address, dw0.to_bytes(8, "little"))
        return self.gpa_of(index)

    def map_basic(self, *, ppn, index=None, gpa=None):
        """Entry ``index`` (or ``gpa``'s) translates to the page ``ppn << 12`` (M=3): MSIs
        to that interrupt file land there. Returns the entry's GPA."""
        if not isinstance(ppn, int) or not 0 <= ppn < 1 << 44:
            raise ValueError(f"ppn must be a 44-bit page number, not {ppn!r}")
        index = self._resolve(index, gpa)
        dw0 = bits.pack(MSI_PTE_BASIC, v=1, m=MsiPteMode.BASIC, ppn=ppn)
        return self._store(index, dw0, 0)

    def map_mrif(self, *, mrif, notice_ppn, nid, index=None, gpa=None):
        """Entry ``index`` (or ``gpa``'s) records MSIs in the MRIF at ``mrif`` (512-byte
        aligned) and sends the notice MSI ``nid`` (11 bits) to ``notice_ppn << 12`` (M=1,
        AIA "Memory-resident interrupt files"). Returns the entry's GPA."""
        if not isinstance(mrif, int) or mrif % MRIF_SIZE or not 0 <= mrif < 1 << 56:
            raise ValueError(f"mrif must be a 512-byte aligned 56-bit address, not {mrif!r}")
        if not isinstance(notice_ppn, int) or not 0 <= notice_ppn < 1 << 44:
            raise ValueError(f"notice_ppn must be a 44-bit page number, not {notice_ppn!r}")
        if not isinstance(nid, int) or not 0 <= nid < 1 << 11:
            raise ValueError(f"nid must be an 11-bit notice identity, not {nid!r}")
        index = self._resolve(index, gpa)
        word = bits.pack(MSI_PTE_MRIF, v=1, m=MsiPteMode.MRIF, mrif_addr=mrif >> 9,
                         nid=nid & 0x3FF, nppn=notice_ppn, nid10=nid >> 10)
        return self._store(index, word & (1 << 64) - 1, word >> 64)

    def unmap(self, *, index=None, gpa=None):
        """Entry ``index`` (or ``gpa``'s) becomes invalid (V=0: MSIs there fault with 262).
        Returns the entry's GPA."""
        index = self._resolve(index, gpa)
        address = self.pte_address(index)
        self.bus.mem_write(address, bytes(8))
        self.bus.mem_write(address + 8, bytes(8))
        return self.gpa_of(index)

    def mapped(self):
        """``{index: (dw0, dw1)}`` of every valid entry."""
        raw = self.bus.mem_read(self.base, self.size)
        out = {}
        for i in range(self.entries):
            dw0 = int.from_bytes(raw[16 * i:16 * i + 8], "little")
            if dw0 & 1:
                out[i] = (dw0, int.from_bytes(raw[16 * i + 8:16 * i + 16], "little"))
        return out

    def destroy(self):
        """Give the table's memory back (after no device context uses it, and the IOMMU
        has been told: IODIR for those contexts, GVMA for their GSCIDs)."""
        self.alloc.free(self.base)
