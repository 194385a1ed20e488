"""The hardware performance monitor: ``iohpmcycles``, ``iohpmctr1..N``, ``iohpmevt1..N``,
``iocountinh`` and ``iocountovf``.

RISC-V IOMMU spec "Hardware performance monitor", "Performance-monitoring counter overflow
status (iocountovf)", "Performance-monitoring counter inhibits (iocountinh)",
"Performance-monitoring cycles counter (iohpmcycles)", "Performance-monitoring event counters
(iohpmctr1-31)", "Performance-monitoring event selectors (iohpmevt1-31)" (reference N.7), as
issue 17 decided them (decisions 1-12 of issue 17 (HPM)). Built only with
``Config.has_hpm``; :class:`iogate.hdl.regfile.RegFile` holds it and decodes its registers.

* **Reset** (decision 2): every register 0, so ``iohpmcycles`` runs from reset.
* **Widths** (decision 3, WARL): ``iohpmctrX`` keeps ``Config.hpm_counter_width`` bits,
  ``iohpmcycles`` ``Config.hpm_cycles_width``; the bits above read 0; a counter wraps there.
* **Overflow** (decision 4): a wrap by counting sets the counter's OF; when OF was 0 it also
  gives ``pmip`` (a one-cycle strobe: the register file sets ``ipsr.pmip``). A software write
  of OF=1 gives none. ``iocountovf`` is the OF bits, no storage of its own.
* **Inhibit** (decision 6): ``iocountinh`` bit 0 stops ``iohpmcycles``, bit X ``iohpmctrX``;
  bits of counters not built read 0.
* **Writes** (decision 7): 8 bytes or 4-byte halves (a half keeps the other half); a write to
  a counter in a cycle in which it also counts wins, and the event of that cycle is lost.
* **event_id** (decision 8, WARL): 0-8 kept, 9-32767 store 0; the other fields are plain RW.
* **Filters** (decision 11, spec table "iohpmevt filtering"): see :func:`filter_match`.

Timing: the event bundle is registered once as it arrives (its identities per counter, the
one of the source the counter's event comes from) and each counter's filter result once
more, so an event is counted two cycles after the pipeline signals it (the counters start
from flip-flops, not behind the pipeline's or the filters' logic). Two events of one
kind never arrive in one cycle here (one walker of each kind, one request entering the
lookup stage or the walk slot per cycle), so each counter adds 0 or 1 per cycle (decision 12).

Register words (64 bits, indexed ``offset // 8 - 11``): 0 ``iocountovf`` (low half) and
``iocountinh`` (high half), 1 ``iohpmcycles``, 2..32 ``iohpmctr1..31``, 33..63
``iohpmevt1..31``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.config import require_config
from iogate.hdl.regs import IOHPMEVT, HpmEvent, Offset

__all__ = ["HPM_FIRST_WORD", "HPM_WORDS", "hpm_identity_layout", "hpm_events_layout",
           "filter_match", "Hpm"]

#: The word index (``offset // 8``) of ``iocountovf``/``iocountinh``, the first HPM word.
HPM_FIRST_WORD = Offset.IOCOUNTOVF // 8
#: HPM words from 0x58 to 0x257.
HPM_WORDS = (0x258 - Offset.IOCOUNTOVF) // 8


def hpm_identity_layout():
    """The identity of the request an event is for, as the filters of decision 11 of issue
    17 (HPM) see it: ``device_id``; ``pv`` (the request carries a PASID) and its ``pid``;
    ``gv`` (``iohgatp`` not Bare) and ``gscid``; ``pscv`` (the first stage not Bare, its
    PSCID known) and ``pscid``."""
    return data.StructLayout({"device_id": 24, "pv": 1, "pid": 20, "gv": 1, "gscid": 16,
                              "pscv": 1, "pscid": 20})


def hpm_events_layout():
    """What the translation pipeline signals each cycle (decision 10 of issue 17 (HPM)).

    ``lookup`` is the identity of the request in the lookup stage, for its
    ``untranslated_req``, ``translated_req`` and ``ats_req`` (it enters the lookup for the
    first time: an Untranslated request, a Translated one or an ATS Translation Request; the
    last two only with ``Config.ats``), ``ioatc_miss`` (it enters
    the walk slot), ``ddt_walk`` (a device-directory entry read for it) and ``pdt_walk`` (a
    process-directory entry read for it); ``walk`` is the identity of the request the
    page-table walker reads for, for ``s1_walk`` and ``s2_walk`` (a first- or second-stage PTE
    read). The two can fire in one cycle, so each has its own identity.
    """
    ident = hpm_identity_layout()
    return data.StructLayout({
        "lookup": ident, "walk": ident,
        "untranslated_req": 1, "translated_req": 1, "ats_req": 1, "ioatc_miss": 1,
        "ddt_walk": 1, "pdt_walk": 1,
        "s1_walk": 1, "s2_walk": 1,
    })


#: The events of each source of :func:`hpm_events_layout`, by event ID.
_LOOKUP_EVENTS = {HpmEvent.UNTRANSLATED_REQ: "untranslated_req",
                  HpmEvent.TRANSLATED_REQ: "translated_req",
                  HpmEvent.ATS_TRANSLATION_REQ: "ats_req",
                  HpmEvent.IOATC_MISS: "ioatc_miss", HpmEvent.DDT_WALK: "ddt_walk",
                  HpmEvent.PDT_WALK: "pdt_walk"}
_WALK_EVENTS = {HpmEvent.S1_WALK: "s1_walk", HpmEvent.S2_WALK: "s2_walk"}


def filter_match(evt, ident):
    """The filter of ``iohpmevtX`` (``evt``, a view of :data:`IOHPMEVT`) passes ``ident`` (a
    view of :func:`hpm_identity_layout`): spec table "iohpmevt filtering", decision 11 of
    issue 17 (HPM).

    One comparator set: with IDT=0 it compares ``device_id`` with DID_GSCID and ``pid`` with
    PID_PSCID, with IDT=1 ``gscid`` with DID_GSCID[15:0] and ``pscid`` with PID_PSCID. DMASK
    ignores the bits of DID_GSCID up to and including its lowest 0 (``(v+1) ^ v``). A
    PV_PSCV=1 filter needs a valid process_id (IDT=0) or PSCID (IDT=1), a DV_GSCV=1 filter
    with IDT=1 a valid GSCID. Whether the event allows IDT=1 is the caller's.
    """
    v = evt.did_gscid
    mask = Mux(evt.dmask, (v + 1)[:24] ^ v, 0)
    # With IDT=1 only DID_GSCID[15:0] is meaningful.
    mask = mask | Mux(evt.idt, Const(0xFF0000, 24), 0)
    did = Mux(evt.idt, Cat(ident.gscid, Const(0, 8)), ident.device_id)
    d_valid = Mux(evt.idt, ident.gv, 1)
    pid = Mux(evt.idt, ident.pscid, ident.pid)
    p_valid = Mux(evt.idt, ident.pscv, ident.pv)
    d_ok = ~evt.dv_gscv | (d_valid & (((did ^ v) & ~mask) == 0))
    p_ok = ~evt.pv_pscv | (p_valid & (pid == evt.pid_pscid))
    return d_ok & p_ok


class Hpm(wiring.Component):
    """The performance-monitoring counters and their selectors.

    Parameters
    ----------
    config : Config
        ``hpm_counters`` (N, 1-31) and ``hpm_counter_width`` are used.

    Members
    -------
    events : ``In(hpm_events_layout())``
        The events of this cycle, from the translation pipeline.
    write_lo, write_hi : ``In(1)``
        A register write of the low (bytes 0-3) or high (4-7) half of word ``write_index``
        (both: an 8-byte write).
    write_index : ``In(6)``
        ``offset // 8 - 11`` of the register written.
    write_data : ``In(64)``
        The data written, in place (the high half in bits 63:32).
    words : ``Out(64).array(64)``
        The registers as read, by word (``offset // 8 - 11``); words of counters not built
        read 0.
    pmip : ``Out(1)``
        A counter wrapped while its OF was 0: set ``ipsr.pmip``.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`.
    ValueError
        If ``config.hpm_counters`` is 0.
    """

    def __init__(self, config):
        require_config(self, config)
        if not config.has_hpm:
            self._MustUse__silence = True
            raise ValueError(f"Hpm needs config.hpm_counters of 1 or more, not "
                             f"{config.hpm_counters!r}")
        self._config = config
        super().__init__({
            "events": In(hpm_events_layout()),
            "write_lo": In(1), "write_hi": In(1), "write_index": In(6), "write_data": In(64),
            "words": Out(64).array(HPM_WORDS),
            "pmip": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        n, cw = cfg.hpm_counters, cfg.hpm_cycles_width
        data_ = self.write_data

        # The bundle as it arrived last cycle: the filters start from flip-flops.
        ev = Signal(hpm_events_layout())
        m.d.sync += ev.eq(self.events)

        def written(index):
            sel = self.write_index == index
            return self.write_lo & sel, self.write_hi & sel

        # --- iocountinh (word 0, high half): CY and the bits of the counters built.
        inh = Signal(n + 1)
        _, inh_w = written(0)
        with m.If(inh_w):
            m.d.sync += inh.eq(data_[32:33 + n])

        # --- iohpmcycles (word 1): decision 9, every cycle unless inhibited.
        cycles, cycles_of = Signal(cw), Signal()
        wraps = []
        lo, hi = written(1)
        cycles_wrap = ~inh[0] & (cycles == (1 << cw) - 1)
        with m.If(lo | hi):
            m.d.sync += [cycles[:32].eq(Mux(lo, data_[:32], cycles[:32])),
                         cycles[32:].eq(Mux(hi, data_[32:cw], cycles[32:])),
                         cycles_of.eq(Mux(hi, data_[63], cycles_of))]
        with m.Else():
            m.d.sync += cycles.eq(cycles + ~inh[0])
            with m.If(cycles_wrap):
                m.d.sync += cycles_of.eq(1)
        wraps.append(~(lo | hi) & cycles_wrap & ~cycles_of)
        m.d.comb += [self.words[1].eq(Cat(cycles, Const(0, 63 - cw), cycles_of))]

        ofs = []
        for x in range(1, n + 1):
            ofs.append(self._counter(m, x, ev, inh[x], written, wraps))
        m.d.comb += self.words[0].eq(Cat(cycles_of, *ofs, Const(0, 31 - n), inh))
        m.d.comb += self.pmip.eq(Cat(wraps).any())
        return m

    def _counter(self, m, x, ev, inhibited, written, wraps):
        """``iohpmctrX`` and ``iohpmevtX``: the selector, its filter and the counter; gives OF."""
        cfg = self._config
        width, data_ = cfg.hpm_counter_width, self.write_data
        evt = Signal(IOHPMEVT, name=f"iohpmevt{x}")
        ctr = Signal(width, name=f"iohpmctr{x}")
        hit = Signal(name=f"hpm_hit{x}")     # the filtered event of last cycle

        # The selector (word 32 + x); decision 8: event_id 9-32767 stores 0.
        lo, hi = written(32 + x)
        new = data.View(IOHPMEVT, data_)
        legal_id = Mux(new.event_id <= max(HpmEvent), new.event_id, 0)
        raw = evt.as_value()
        with m.If(lo):
            m.d.sync += [raw[:15].eq(legal_id), raw[15:32].eq(data_[15:32])]
        with m.If(hi):
            m.d.sync += raw[32:].eq(data_[32:])

        # The event this selector names, and the identity its filter sees.
        fired = Signal(name=f"hpm_fired{x}")
        with m.Switch(evt.event_id):
            for event, name in {**_LOOKUP_EVENTS, **_WALK_EVENTS}.items():
                with m.Case(event):
                    m.d.comb += fired.eq(ev[name])
        walk = evt.event_id.matches(*_WALK_EVENTS)
        # The identity of the source this selector listens to, chosen as the bundle arrives
        # and registered per counter: a choice in front of the comparators cost more than
        # the flip-flops (the comparators start from flip-flops either way).
        ident = Signal(hpm_identity_layout(), name=f"hpm_ident{x}")
        m.d.sync += ident.eq(Mux(walk, self.events.walk.as_value(),
                                 self.events.lookup.as_value()))
        # With an IDT the event does not allow, the counter does not count.
        idt_ok = ~evt.idt | evt.event_id.matches(*(e for e in HpmEvent if e.idt1))
        m.d.sync += hit.eq(fired & idt_ok & filter_match(evt, ident))

        # The counter (word 1 + x): a write wins over the count of its cycle (decision 7).
        lo, hi = written(1 + x)
        count = hit & ~inhibited
        wrap = count & (ctr == (1 << width) - 1)
        with m.If(lo | hi):
            m.d.sync += [ctr[:32].eq(Mux(lo, data_[:32], ctr[:32])),
                         ctr[32:].eq(Mux(hi, data_[32:width], ctr[32:]))]
        with m.Else():
            m.d.sync += ctr.eq(ctr + count)
        # OF is set by a wrap unless software writes the high half of iohpmevtX then.
        with m.If(~(lo | hi) & wrap & ~written(32 + x)[1]):
            m.d.sync += evt.of.eq(1)
        wraps.append(~(lo | hi) & wrap & ~evt.of)
        m.d.comb += [self.words[1 + x].eq(ctr), self.words[32 + x].eq(evt)]
        return evt.of
