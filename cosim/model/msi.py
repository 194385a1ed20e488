"""MSI address translation: the flat MSI page table, basic-translate and MRIF PTEs.

RISC-V IOMMU spec "Process to translate an IOVA" step 18 and "MSI page tables" (reference
N.4), with the AIA's "IOMMU support for MSIs to virtual machines" for the PTE formats and
"Memory-resident interrupt files" for the MRIF update. What iogate decided where the spec
leaves a choice (issue 16's decisions, reference N.9/N.10), each tested in
``tests/model/test_msi_*.py``:

* **Match** on A, the GPA the first stage gives (the IOVA when it is Bare), before the
  second stage, for every access type: ``((A >> 12) & ~mask) == (pattern & ~mask)`` over
  all 52 page-number bits of the 64-bit A, not libiommu's MGPAW-masked compare (N.9 P3):
  a GPA wider than MGPAW never matches (the pattern's high bits are 0, or the DC is
  misconfigured) and goes to the second stage, which faults.
* ``I = extract(A >> 12, mask)``; the PTE is at ``(msiptp.PPN << 12) | (I * 16)`` (OR, as
  the spec writes it; it differs from + only for a misaligned table, which is UNSPECIFIED).
  The MSI PT is little-endian (``fctl.BE=0``). Both doublewords are read in one 16-byte
  access (a basic PTE's dw1 is ignored but still read): a fault on either is cause 261.
* **Causes, in order** (``iotval2`` 0 for each): the PTE read faults, or its address is
  at or above 2**PAS → 261; V=0 → 262; C=1 → 263 (libiommu's choice: iogate has no custom
  MSI PTE); M=0 or 2 → 263; M=3 with a reserved dw0 bit ([9:3], [62:54]) → 263; M=1
  without ``capabilities.MSI_MRIF`` → 263; M=1 with a reserved bit (dw0 [6:3], [62:54];
  dw1 [59:54], [63:61]) → 263; then a read-for-execute → 1 (instruction access fault).
* **Basic mode** (M=3): the MSI PTE's PPN, R=W=1, X=0, PBMT=PMA, 4 KiB, like a
  second-stage leaf (so a first-stage PBMT other than PMA still overrides it, and the
  first stage's R/W still apply).
* **MRIF mode** (M=1): iogate's IOMMU does the update itself and answers *absorbed*
  (the requester drops the access). An access that is not a single 32-bit word, or not
  4-byte aligned, "aborted as unsupported" → 260; an aligned 32-bit read reads 0
  (absorbed, no memory access); an aligned write with data D (byte order by A[2]: 0 little,
  1 big-endian, which iogate accepts): A[11:3] != 0 or D >= 2048 is silently discarded
  (absorbed, no memory access); otherwise the pending doubleword at
  ``MRIF + (D // 64) * 16`` (always little-endian) gets bit ``D % 64`` set by a
  read-modify-write (``capabilities.AMO_MRIF=0``), then the notice MSI (NID, 4 bytes,
  little-endian) goes to ``NPPN << 12`` whatever the MRIF's enable bits say. An access
  fault on the MRIF read, its write-back or the notice write → 264 (the notice's own cause
  is unspecified, 264 is the nearest; reference N.10), and after a failed MRIF access no
  notice is sent. The debug interface on an MRIF-mode page → 260.

Everything here is a pure function of its arguments and the memory callables it is given;
:class:`~iogate.cosim.model.iommu.IommuModel` decides where the PTE comes from (memory or
its MSI PTE cache) and whether the MRIF update is performed (``translate``) or only
evaluated (``allowed``, which has no side effects).
"""

from collections import namedtuple

from iogate.hdl import bits
from iogate.hdl.formats import (
    MRIF_SIZE,
    MSI_PTE,
    MSI_PTE_BASIC,
    MSI_PTE_MRIF,
    MSI_PTE_SIZE,
    Cause,
    MsiPteMode,
)
from iogate.hdl.port import Access

from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.walk import TranslationFault

__all__ = ["matches", "extract", "pte_address", "read_pte", "check_pte", "MsiPte",
           "mrif_access", "MrifOutcome", "PAGE_BITS"]

#: Page-number bits of a 64-bit GPA compared by the match (reference N.4.1).
PAGE_BITS = 52
_PAGE_MASK = (1 << PAGE_BITS) - 1

_V = bits.mask(MSI_PTE, "v")
_M_SHIFT, _ = bits.field_range(MSI_PTE, "m")
_C = bits.mask(MSI_PTE, "c")
# Reserved bits of each format: the layouts' _rsvd fields, split by doubleword.
_BASIC_RSVD = bits.reserved_mask(MSI_PTE_BASIC) & ~_C
_MRIF_RSVD = bits.reserved_mask(MSI_PTE_MRIF) & ~_C
_MRIF_RSVD0 = _MRIF_RSVD & ((1 << 64) - 1)
_MRIF_RSVD1 = _MRIF_RSVD >> 64
assert _BASIC_RSVD == (0x7F << 3) | (0x1FF << 54)                 # dw0 [9:3], [62:54]
assert _MRIF_RSVD0 == (0xF << 3) | (0x1FF << 54)                  # dw0 [6:3], [62:54]
assert _MRIF_RSVD1 == (0x3F << 54) | (0x7 << 61)                  # dw1 [59:54], [63:61]
assert MSI_PTE_SIZE == 16 and MRIF_SIZE == 512


def matches(gpa, mask, pattern):
    """Whether GPA ``gpa`` is an MSI address of a DC with ``msi_addr_mask`` ``mask`` and
    ``msi_addr_pattern`` ``pattern`` (spec "MSI page tables": ``(A >> 12) & ~mask ==
    pattern & ~mask``), over all 52 page-number bits."""
    return ((gpa >> 12) & ~mask & _PAGE_MASK) == (pattern & ~mask & _PAGE_MASK)


def range_overlaps(gpa_base, size, mask, pattern):
    """Whether the naturally aligned GPA range ``[gpa_base, gpa_base + size)`` holds a page
    that :func:`matches`: the bits below the range's size are free, so only the page bits
    above it must agree with the pattern where the mask is 0."""
    free = (size >> 12) - 1
    return ((gpa_base >> 12) ^ pattern) & ~mask & ~free & _PAGE_MASK == 0


def extract(x, mask):
    """The bits of ``x`` where ``mask`` is 1, packed in order at the low end (spec "MSI page
    tables": x=abcdefgh, mask=10100110 gives 0000acfg)."""
    out, k = 0, 0
    while mask:
        low = mask & -mask
        if x & low:
            out |= 1 << k
        k += 1
        mask ^= low
    return out


def pte_address(msi_ppn, index):
    """Address of MSI PTE ``index`` of the table at ``msiptp.PPN`` ``msi_ppn``:
    ``(PPN << 12) | (index * 16)``."""
    return (msi_ppn << 12) | (index * MSI_PTE_SIZE)


def read_pte(load, address):
    """The MSI PTE at ``address`` as ``(dw0, dw1)``, little-endian (``fctl.BE=0``), in one
    16-byte read; ``load(address, length) -> bytes`` raises
    :class:`~iogate.cosim.model.memory.AccessFault` (bus error, or beyond 2**PAS) → 261."""
    try:
        raw = load(address, MSI_PTE_SIZE)
    except AccessFault:
        raise TranslationFault(Cause.MSI_PTE_LOAD_ACCESS_FAULT) from None
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


#: A checked MSI PTE: ``mode`` (:class:`~iogate.hdl.formats.MsiPteMode`), ``ppn`` (basic),
#: ``mrif`` (the MRIF's address), ``notice`` (the notice MSI's address) and ``nid`` (its data).
MsiPte = namedtuple("MsiPte", "mode ppn mrif notice nid")


def check_pte(dw0, dw1, mrif_supported):
    """Checks 3-8 of reference N.4.3 on the MSI PTE ``(dw0, dw1)``: returns an
    :class:`MsiPte` or raises :class:`~iogate.cosim.model.walk.TranslationFault` (262, 263).
    ``mrif_supported`` is ``capabilities.MSI_MRIF``."""
    if not dw0 & _V:
        raise TranslationFault(Cause.MSI_PTE_NOT_VALID)
    if dw0 & _C:
        # Custom PTE: implementation-defined; iogate has none (libiommu: 263).
        raise TranslationFault(Cause.MSI_PTE_MISCONFIGURED)
    m = (dw0 >> _M_SHIFT) & 3
    if m == MsiPteMode.BASIC:
        if dw0 & _BASIC_RSVD:
            raise TranslationFault(Cause.MSI_PTE_MISCONFIGURED)
        return MsiPte(MsiPteMode.BASIC, bits.get(MSI_PTE_BASIC, dw0, "ppn"), None, None, None)
    if m == MsiPteMode.MRIF and mrif_supported:
        if dw0 & _MRIF_RSVD0 or dw1 & _MRIF_RSVD1:
            raise TranslationFault(Cause.MSI_PTE_MISCONFIGURED)
        word = dw0 | dw1 << 64
        f = bits.unpack(MSI_PTE_MRIF, word)
        return MsiPte(MsiPteMode.MRIF, None, f["mrif_addr"] << 9, f["nppn"] << 12,
                      f["nid10"] << 10 | f["nid"])
    # M=0 and M=2 are reserved; M=1 without capabilities.MSI_MRIF.
    raise TranslationFault(Cause.MSI_PTE_MISCONFIGURED)


#: What an access to an MRIF-mode page came to: ``kind`` is ``"read"`` (absorbed, reads 0),
#: ``"discard"`` (a write silently dropped), or ``"update"`` (pending bit ``identity`` of the
#: doubleword at ``pending`` set, then ``nid`` written to ``notice``).
MrifOutcome = namedtuple("MrifOutcome", "kind identity pending notice nid")


def mrif_access(pte, gpa, access, word, data, load, store):
    """An access at GPA ``gpa`` to a page that MRIF-mode PTE ``pte`` maps (AIA
    "Memory-resident interrupt files"; reference N.4.4), after the execute check.

    Parameters
    ----------
    pte : MsiPte
        Of mode MRIF.
    access : iogate.hdl.port.Access
        READ or WRITE.
    word : bool
        The access is exactly one 32-bit word.
    data : int or None
        A write's 32 bits as the device sent them (bytes in address order).
    load, store : callable
        ``load(address, length) -> bytes`` and ``store(address, data)`` on system memory,
        raising :class:`~iogate.cosim.model.memory.AccessFault`. ``allowed`` passes a
        ``store`` that only checks the access would succeed.

    Returns
    -------
    MrifOutcome

    Raises
    ------
    TranslationFault
        260 for an access that is not an aligned word, 264 when a memory access faults.
    ValueError
        A write without ``data``.
    """
    if not word or gpa & 3:
        raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
    if access is Access.READ:
        return MrifOutcome("read", None, None, None, None)
    if data is None:
        raise ValueError("a write to an MRIF-mode MSI page needs its data (translate(..., "
                         "data=...)): the IOMMU records the MSI itself")
    identity = data if not gpa & 4 else int.from_bytes(data.to_bytes(4, "little"), "big")
    if gpa & 0xFF8 or identity >> 11:
        return MrifOutcome("discard", identity, None, None, None)
    pending = pte.mrif + (identity // 64) * 16
    try:
        dword = int.from_bytes(load(pending, 8), "little")
        store(pending, (dword | 1 << (identity % 64)).to_bytes(8, "little"))
        store(pte.notice, pte.nid.to_bytes(4, "little"))
    except AccessFault:
        raise TranslationFault(Cause.MRIF_ACCESS_FAULT) from None
    return MrifOutcome("update", identity, pending, pte.notice, pte.nid)
