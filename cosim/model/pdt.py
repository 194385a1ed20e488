"""The process directory: choosing the first stage of a request and locating its process
context (RISC-V IOMMU spec "Process to translate an IOVA" steps 7-16 and "Process to locate
the Process-context"; reference N.0, N.1).

Decisions where the spec is ambiguous (reference N.10 and the common briefing), each tested
in ``tests/model/test_model_pdt_*.py``:

* GET_PC indexes every non-leaf level ``i`` with ``PDI[i]``, not the ``PDI[2]`` the spec
  prints (reference N.9 P1, libiommu);
* the entry's own GPA (page base plus index offset) goes through the G-stage, so a
  guest-page fault reports ``iotval2`` = that GPA [63:2] with bit 0 set (N.9 P2a);
* an access fault in the G-stage walk of a PDT address is cause 265, not 1/5/7 (N.9 P2),
  and so is a PDT address at or above 2**PAS (libiommu; N.1.4's note);
* a process_id wider than ``pdtp.MODE`` allows is 260 in PD8 and PD17 alike; with pdtp
  Bare no width is checked (N.1.2);
* a request without a process_id under ``DPE=1`` uses process_id 0 as a User request;
  the fault record keeps the original PV=0 (N.1.6, issue #727);
* SUM and ENS apply only when a PC was read: with ``DPE=0`` and no process_id, or pdtp
  Bare, the request is User and the first stage Bare (N.9 P15);
* PDT entries are read little-endian: ``DC.tc.SBE`` must equal ``fctl.BE`` (0, not
  writable here), so a DC with ``SBE=1`` is already cause 259 (the model's DC rule).
"""

from collections import namedtuple

from iogate.hdl import bits
from iogate.hdl.formats import IOSATP, PC_SIZE, PC_TA, PDTE, PDTE_SIZE, Cause, PdtpMode

from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.walk import ACCESS_FAULT, TranslationFault

__all__ = ["ProcessContext", "FirstStage", "pc_misconfiguration", "locate_pc",
           "pid_fits"]

_PDTE_V = bits.mask(PDTE, "v")
_PDTE_RSVD = bits.reserved_mask(PDTE)
_PDTE_PPN_SHIFT, _ = bits.field_range(PDTE, "ppn")
_PDTE_PPN_MASK = bits.mask(PDTE, "ppn") >> _PDTE_PPN_SHIFT
_PC_V = bits.mask(PC_TA, "v")
_PC_TA_RSVD = bits.reserved_mask(PC_TA)
_IOSATP_RSVD = bits.reserved_mask(IOSATP)
_G_ACCESS_FAULTS = frozenset(ACCESS_FAULT.values())

#: The first stage one request uses (steps 10-16): ``mode``/``root`` an iosatp MODE and
#: PPN, ``pscid`` its IOTLB tag (None when Bare), ``priv`` True for a supervisor request
#: that passed ENS, ``sum_`` the PC's SUM (False without a PC).
FirstStage = namedtuple("FirstStage", "mode root pscid priv sum_")


class ProcessContext:
    """A located, valid, well-formed process context (spec "Process-context fields").

    Attributes
    ----------
    words : tuple of int
        ``ta`` and ``fsc`` as read.
    ens, sum_ : bool
        ``ta.ENS`` (supervisor requests allowed) and ``ta.SUM``.
    pscid : int
        ``ta.PSCID``.
    s_mode, s_root : int
        ``fsc`` MODE and root PPN (a guest PPN when ``iohgatp`` is not Bare).
    """

    __slots__ = ("words", "ens", "sum_", "pscid", "s_mode", "s_root")

    def __init__(self, words):
        ta, fsc = words
        self.words = words
        self.ens = bool(bits.get(PC_TA, ta, "ens"))
        self.sum_ = bool(bits.get(PC_TA, ta, "sum"))
        self.pscid = bits.get(PC_TA, ta, "pscid")
        self.s_mode = bits.get(IOSATP, fsc, "mode")
        self.s_root = bits.get(IOSATP, fsc, "ppn")

    def __eq__(self, other):
        return isinstance(other, ProcessContext) and self.words == other.words

    def __hash__(self):
        return hash(self.words)

    def __repr__(self):
        return "ProcessContext(" + ", ".join(f"{w:#x}" for w in self.words) + ")"


def pid_fits(mode, process_id):
    """Whether ``process_id`` is not wider than ``pdtp.MODE`` ``mode`` indexes (step 7c);
    pdtp Bare checks nothing (reference N.1.2)."""
    mode = PdtpMode(mode)
    return mode is PdtpMode.BARE or not process_id >> mode.pid_bits


def pc_misconfiguration(words, sxl, caps):
    """The first rule of reference N.1.4 (spec "Process-context configuration checks") that
    the valid PC ``words`` breaks under ``DC.tc.SXL`` ``sxl``, or None."""
    ta, fsc = words
    if ta & _PC_TA_RSVD:
        return "PC.ta reserved bits set"
    if fsc & _IOSATP_RSVD:
        return "PC.fsc reserved bits set"
    mode = bits.get(IOSATP, fsc, "mode")
    if sxl:
        supported = {0: True, 8: caps["sv32"]}
    else:
        supported = {0: True, 8: caps["sv39"], 9: caps["sv48"], 10: caps["sv57"]}
    if not supported.get(mode, False):
        return f"PC.fsc.MODE {mode} not valid for SXL={sxl} or not supported"
    return None


def locate_pc(load64, dc, process_id, g_translate, check, cached=None, record=None):
    """Spec "Process to locate the Process-context" (reference N.1.5) for ``process_id``
    under the device context ``dc`` (``PDTV=1``, pdtp not Bare).

    Parameters
    ----------
    load64 : callable
        ``load64(spa) -> int``, raising :class:`AccessFault` (also at or above 2**PAS).
    dc : iogate.cosim.model.ddt.DeviceContext
    process_id : int
        Already checked to fit the mode (step 7c).
    g_translate : callable or None
        ``g_translate(gpa) -> spa``: the G-stage as an implicit read when ``iohgatp`` is not
        Bare (raises :class:`TranslationFault`: guest-page faults 20/21/23 with ``iotval2``,
        access faults 1/5/7, reported here as 265); None when Bare.
    check : callable
        ``check(words) -> str | None``: :func:`pc_misconfiguration` bound to the DC's SXL.
    cached : tuple or None
        ``(level, spa_page)``: start at ``level`` from the SPA of a table a PDTE cache still
        holds (for :meth:`IommuModel.allowed`), skipping the levels above it.
    record : callable or None
        ``record(level, spa_page)`` is told the SPA page of each table the walk reached:
        what a non-leaf PDTE cache may now hold, and for the root what a cache of the
        translated ``pdtp`` may hold (reference N.1.7: "caches may hold translated SPA
        pointers").

    Returns
    -------
    ProcessContext

    Raises
    ------
    TranslationFault
        20/21/23 from the G-stage, 265 on a load access fault, 266 on V=0, 267 on a
        reserved bit or a misconfigured PC.
    """
    mode = PdtpMode(dc.s_mode)
    if cached is None:
        i, base, is_spa = mode.levels - 1, dc.s_root << 12, False
    else:
        i, base = cached
        is_spa = True
    while True:
        # PDI[i] at every non-leaf level (the spec's PDI[2] is a typo, reference N.9 P1).
        if i:
            a = base + PdtpMode.pdi(process_id, i) * PDTE_SIZE
        else:
            a = base + PdtpMode.pdi(process_id, 0) * PC_SIZE
        if g_translate is not None and not is_spa:
            try:
                a = g_translate(a)
            except TranslationFault as f:
                if f.cause in _G_ACCESS_FAULTS:
                    # Issue #587: an access fault while translating a PDT address is 265.
                    raise TranslationFault(Cause.PDT_ENTRY_LOAD_ACCESS_FAULT) from None
                raise
        if record is not None:
            record(i, a & ~0xFFF)
        is_spa = False
        if i == 0:
            break
        try:
            pdte = load64(a)
        except AccessFault:
            raise TranslationFault(Cause.PDT_ENTRY_LOAD_ACCESS_FAULT) from None
        if not pdte & _PDTE_V:
            raise TranslationFault(Cause.PDT_ENTRY_NOT_VALID)
        if pdte & _PDTE_RSVD:
            raise TranslationFault(Cause.PDT_ENTRY_MISCONFIGURED)
        base = ((pdte >> _PDTE_PPN_SHIFT) & _PDTE_PPN_MASK) << 12
        i -= 1
    try:
        words = (load64(a), load64(a + 8))
    except AccessFault:
        raise TranslationFault(Cause.PDT_ENTRY_LOAD_ACCESS_FAULT) from None
    if not words[0] & _PC_V:
        raise TranslationFault(Cause.PDT_ENTRY_NOT_VALID)
    if check(words) is not None:
        raise TranslationFault(Cause.PDT_ENTRY_MISCONFIGURED)
    return ProcessContext(words)
