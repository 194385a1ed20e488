"""The hardware performance monitor in the model (spec "Hardware performance monitor",
reference N.7; decisions 1-12 of issue 17 (HPM)).

Written from the spec, not from the RTL. The state is ``iohpmcycles``, ``iohpmctr1..N``,
``iohpmevt1..N`` and ``iocountinh``; ``iocountovf`` has no storage (decision 4), it is
read from the OF bits.

What the model cannot predict is kept explicit. A counter is *running unknown* while it is
not inhibited and counts something the model cannot count: ``iohpmcycles`` (every clock
cycle, decision 9), and a counter whose event is ``IOATC_MISS`` or a walk (4-8): the
model's caches say what *may* be cached, not what is. While running unknown, and after it
until a read of the target gives its value, the counter's value is unknown, and so is its
OF (unless it is known to be 1: a wrap leaves it 1), and ``ipsr.pmip`` (an OF that may have
risen may have set it). A read returns ``(value, care)``: the bits in ``care`` are
predicted exactly; a checker compares only them and hands the target's value back with
:meth:`Hpm.adopt` (:mod:`iogate.cosim.check.mirror`). ``UNTRANSLATED_REQ`` (1) is exact:
the model counts it on every translation and debug ``Go`` (decision 10); events 0, 2, 3 and
inhibited counters never move.
"""

from dataclasses import dataclass

from iogate.hdl import bits
from iogate.hdl.regs import IOHPMEVT, HpmEvent, Offset

__all__ = ["Hpm", "Identity", "filter_matches", "HPM_FIRST", "HPM_END"]

#: The HPM register range (iocountovf to the end of iohpmevt31).
HPM_FIRST = Offset.IOCOUNTOVF
HPM_END = Offset.IOHPMEVT1 + 8 * 31

_W32 = 0xFFFF_FFFF
_OF = 1 << 63
_UNKNOWN_EVENTS = frozenset({HpmEvent.IOATC_MISS, HpmEvent.DDT_WALK, HpmEvent.PDT_WALK,
                             HpmEvent.S1_WALK, HpmEvent.S2_WALK})
#: iohpmevt without OF: the plain RW fields (decision 8).
_EVT_FIELDS = ((1 << 63) - 1) & ~bits.mask(IOHPMEVT, "event_id")


@dataclass(frozen=True)
class Identity:
    """A request's identity for the filters (decision 11 of issue 17 (HPM)).

    ``pid`` is None unless the request itself carries a PASID (a no-PASID request on a
    DPE=1 DC has no valid process_id for filtering); ``gscid`` None when ``iohgatp`` is
    Bare; ``pscid`` None when the first stage is Bare.
    """
    device_id: int
    pid: int | None = None
    gscid: int | None = None
    pscid: int | None = None


def _id_match(value, pattern, dmask, width):
    """``value`` matches ``pattern`` on ``width`` bits; with ``dmask`` the low bits up to and
    including the lowest 0 of ``pattern`` are ignored (spec "iohpmevt filtering": ``...yyy011``
    matches ``...yyy0xx``)."""
    pattern &= (1 << width) - 1
    ignore = ((pattern + 1) ^ pattern) if dmask else 0
    keep = ((1 << width) - 1) & ~ignore
    return (value & keep) == (pattern & keep)


def filter_matches(evt, event, ident):
    """The counter whose selector is ``evt`` counts ``event`` of the request ``ident``
    (decision 11 of issue 17 (HPM), spec table "iohpmevt filtering")."""
    f = bits.unpack(IOHPMEVT, evt)
    if f["event_id"] != event or event == HpmEvent.NONE:
        return False
    if f["idt"]:
        if not HpmEvent(event).idt1:
            return False                    # an IDT the event does not support: no count
        if f["dv_gscv"] and (ident.gscid is None or not _id_match(
                ident.gscid, f["did_gscid"] & 0xFFFF, f["dmask"], 16)):
            return False
        if f["pv_pscv"] and ident.pscid != f["pid_pscid"]:
            return False
        return True
    if f["dv_gscv"] and not _id_match(ident.device_id, f["did_gscid"], f["dmask"], 24):
        return False
    # PV_PSCV=1 needs a valid process_id (N.10: the field description's reading).
    if f["pv_pscv"] and ident.pid != f["pid_pscid"]:
        return False
    return True


class Hpm:
    """The HPM registers of one model.

    Parameters
    ----------
    config : iogate.hdl.Config
        ``hpm_counters`` (0: every register reads 0, decision 1) and
        ``hpm_counter_width``.
    raise_pmip : callable
        Called with no argument when an OF goes 0->1 by counting (decision 4): it sets
        ``ipsr.pmip``.

    Attributes
    ----------
    ctr : list of int
        Index 0 is ``iohpmcycles.counter``, X is ``iohpmctrX``.
    of : list of int
        OF bits, index 0 ``iohpmcycles.OF``, X ``iohpmevtX.OF``.
    evt : list of int
        ``iohpmevtX`` without OF (index 0 unused).
    inh : int
        ``iocountinh``.
    ctr_known, of_known : list of bool
        The value (OF) is predicted exactly.
    pmip_known : bool
        ``ipsr.pmip`` is predicted exactly.
    unseen_pmip_clears : int
        W1Cs of ``pmip`` made while it was unknown.
    """

    def __init__(self, config, raise_pmip):
        self.n = config.hpm_counters
        self._raise_pmip = raise_pmip
        self.widths = [config.hpm_cycles_width] + [config.hpm_counter_width] * self.n
        # Reset (decision 2): everything 0, so iohpmcycles runs from reset.
        self.ctr = [0] * (self.n + 1)
        self.of = [0] * (self.n + 1)
        self.evt = [0] * (self.n + 1)
        self.inh = 0
        self.ctr_known = [True] * (self.n + 1)
        self.of_known = [True] * (self.n + 1)
        self.pmip_known = True
        #: W1Cs of ``pmip`` while it was unknown: each may have hidden one rise (and, with
        #: MSIs, one message the target sent and the model never saw).
        self.unseen_pmip_clears = 0
        self._inh_mask = (1 << (self.n + 1)) - 1 if self.n else 0
        self.touch()

    # -- what is known ------------------------------------------------------------------

    def running_unknown(self, x):
        """Counter ``x`` (0 = cycles) counts what the model cannot count now."""
        if self.inh >> x & 1:
            return False
        if x == 0:
            return True
        return bits.get(IOHPMEVT, self.evt[x], "event_id") in _UNKNOWN_EVENTS

    def touch(self):
        """Mark unknown what may have moved since the last access (before every access)."""
        for x in range(self.n + 1 if self.n else 0):
            if self.running_unknown(x):
                self.ctr_known[x] = False
                if not (self.of_known[x] and self.of[x]):
                    self.of_known[x] = False
            if not self.of_known[x]:
                self.pmip_known = False

    # -- counting (decisions 4, 10, 11, 12) ----------------------------------------------

    def count(self, event, ident, n=1):
        """``n`` events ``event`` of the request ``ident``: every counter whose selector and
        filter take it adds ``n`` (decision 12), wrapping at its width (decision 4)."""
        for x in range(1, self.n + 1):
            if self.inh >> x & 1 or not filter_matches(self.evt[x], event, ident):
                continue
            self._add(x, n)

    def tick(self, cycles=1):
        """``cycles`` clock cycles for ``iohpmcycles`` (for tests; the model has no clock)."""
        if self.n and not self.inh & 1:
            self._add(0, cycles)

    def _add(self, x, n):
        limit = 1 << self.widths[x]
        value = self.ctr[x] + n
        self.ctr[x] = value % limit
        if value >= limit:                          # wrapped by counting
            if not self.of[x]:
                self.of[x] = 1
                self._raise_pmip()                  # the edge: one interrupt

    # -- registers -----------------------------------------------------------------------

    def _reg(self, base):
        """``(kind, x)`` of the register at 8-byte-aligned or 4-byte ``base``."""
        if base == Offset.IOCOUNTOVF:
            return "ovf", 0
        if base == Offset.IOCOUNTINH:
            return "inh", 0
        if base == Offset.IOHPMCYCLES:
            return "ctr", 0
        if Offset.IOHPMCTR1 <= base < Offset.IOHPMEVT1:
            return "ctr", (base - Offset.IOHPMCTR1) // 8 + 1
        return "evt", (base - Offset.IOHPMEVT1) // 8 + 1

    def _value_care(self, base):
        """The register at ``base`` (64 bits for the 8-byte ones) and its known bits."""
        kind, x = self._reg(base)
        if kind in ("ctr", "evt") and x > self.n:
            return 0, (1 << 64) - 1                 # not built: reads 0 (decision 1)
        if kind == "ovf":
            value = sum(o << i for i, o in enumerate(self.of))
            care = _W32 & ~sum((not k) << i for i, k in enumerate(self.of_known))
            return value, care
        if kind == "inh":
            return self.inh, _W32
        if kind == "ctr":
            width = self.widths[x]
            care = ((1 << 64) - 1) ^ (0 if self.ctr_known[x] else (1 << width) - 1)
            if x == 0:
                value = self.ctr[0] | (self.of[0] << 63)
                if not self.of_known[0]:
                    care &= ~_OF
                return value, care
            return self.ctr[x], care
        care = (1 << 64) - 1
        if not self.of_known[x]:
            care &= ~_OF
        return self.evt[x] | (self.of[x] << 63), care

    def read(self, offset, size):
        """``(value, care)`` of the ``size``-byte read at ``offset`` (in the HPM range)."""
        self.touch()
        base = offset & ~7 if offset >= Offset.IOHPMCYCLES else offset
        value, care = self._value_care(base)
        shift = 32 if offset >= Offset.IOHPMCYCLES and offset & 4 else 0
        mask = (1 << (8 * size)) - 1
        return (value >> shift) & mask, (care >> shift) & mask

    def write32(self, offset, value):
        """A 4-byte write (an 8-byte write is two of them, high half first)."""
        self.touch()
        if not self.n:
            return                                  # decision 1
        if offset in (Offset.IOCOUNTOVF, Offset.IOCOUNTINH):
            if offset == Offset.IOCOUNTINH:
                self.inh = value & self._inh_mask   # WARL (decision 1)
            return                                  # iocountovf is RO
        base, shift = offset & ~7, 32 if offset & 4 else 0
        kind, x = self._reg(base)
        if x > self.n:
            return
        old, _ = self._value_care(base)
        new = (old & ~(_W32 << shift)) | (value << shift)
        if kind == "ctr":
            # A software write wins and is exact (decisions 3, 7); it sets no pmip.
            if x == 0:
                self.of[0] = new >> 63
                self.of_known[0] = True
            self.ctr[x] = new & ((1 << self.widths[x]) - 1)
            self.ctr_known[x] = True
        else:
            event = bits.get(IOHPMEVT, new, "event_id")
            if event > max(HpmEvent):
                event = 0                           # WARL (decision 8)
            self.evt[x] = (new & _EVT_FIELDS) | event
            self.of[x] = new >> 63                  # RW; writing 1 sets no pmip (decision 4)
            self.of_known[x] = True
        self.touch()

    def adopt(self, offset, size, value):
        """Take the target's ``value`` of a read at ``offset`` for the bits the model does not
        know (:meth:`read`'s ``care``); the known bits the checker has compared."""
        if not self.n:
            return
        if offset == Offset.IOCOUNTOVF:
            for x in range(self.n + 1):
                if not self.of_known[x]:
                    self.of[x] = value >> x & 1
                    self.of_known[x] = not self.running_unknown(x) or bool(self.of[x])
            return
        if offset == Offset.IOCOUNTINH:
            return
        for half in range(size // 4):
            at = offset + 4 * half
            word = value >> (32 * half) & _W32
            base, shift = at & ~7, 32 if at & 4 else 0
            kind, x = self._reg(base)
            if x > self.n:
                continue
            if kind == "ctr" and not self.ctr_known[x]:
                merged = (self.ctr[x] & ~(_W32 << shift)) | (word << shift)
                self.ctr[x] = merged & ((1 << self.widths[x]) - 1)
            if shift and (kind == "evt" or x == 0) and not self.of_known[x]:
                self.of[x] = word >> 31
                self.of_known[x] = not self.running_unknown(x) or bool(self.of[x])
        kind, x = self._reg(offset & ~7)
        # Only a whole 8-byte read gives a whole counter; after a 4-byte read the other half
        # stays unknown (it is adopted when it is read).
        if kind == "ctr" and x <= self.n and size == 8 and not self.ctr_known[x]:
            self.ctr_known[x] = not self.running_unknown(x)

    def unseen_pmip_messages(self):
        """How many ``pmip`` messages a target may have sent that the model cannot know of:
        one per W1C of an unknown ``pmip``, and one more while ``pmip`` is unknown now (a rise
        not read yet). The interrupt monitor allows that many extra messages to the pmiv
        entry; every message the model does send must still be seen."""
        self.touch()
        return self.unseen_pmip_clears + (not self.pmip_known)

    def adopt_pmip(self):
        """After the target's ``ipsr.pmip`` is taken: it is known again when no OF can rise."""
        self.pmip_known = all(self.of_known)


def in_range(offset):
    """``offset`` is one of the HPM registers' (0x58..0x257)."""
    return HPM_FIRST <= offset < HPM_END
