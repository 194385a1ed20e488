"""Formal harness of the page-request queue (reference N.6.5-N.6.7, spec "Page-Request-Queue
(PQ)").

The queue (:class:`iogate.hdl.pq.PageRequestQueue`) runs between abstractions, as the fault
queue's harness (:mod:`iogate.hdl.formal.fq`) does:

* **the register file** is the spec's queue arithmetic: ``pqt`` moves on the queue's
  ``advance`` (mod N), ``pqh`` is moved by a free consumer that reads only records that are
  there, ``full`` is ``pqt == pqh - 1`` (mod N), ``pqof``/``pqmf`` are set by the queue's
  strobes and cleared by free software writes (RW1C), ``on`` changes only while the queue is
  not busy. ``pqh``/``pqt`` start anywhere, so a full queue is reached within a few records.
* **the memory** answers each store with a free ``err`` after a free delay, one response per
  request.
* **the device side** offers free Page Requests with free verdicts under the stream rules;
  each carries its sequence number in ``page[7:0]``. ``response`` and ``fault`` are taken
  whenever free inputs say so.

Properties (asserted every cycle):

1. ``pqt`` never advances onto ``pqh``: no record is made visible in a full queue, so an
   unread record is never overwritten.
2. Every store is in the free slot at ``pqt``: ``pqb.PPN * 4096 + pqt * 16 + 8 * k`` for the
   k-th doubleword (k = 0, 1, in order), all eight bytes, never while full, and only for a
   request whose verdict is a valid DC with EN_ATS and EN_PRI while the queue is on and not
   in error (N.6.7 rows 5-9 come first).
3. ``pqof`` is set only when the queue is full, on and without ``pqmf``; ``pqmf`` only on a
   store answered with an error.
4. The record of the request chosen by the solver (so: of every request) is exactly N.6.6's:
   PID, PRIV and EXEC only with PV, PV, DID; R, W, L, the PRG index, the page address.
5. Each request is answered exactly as N.6.7's first filter says: one PRG response for an
   L=1 request that is not a Stop Marker and was not stored, none for any other; none is
   lost (every one owed is sent before the next request is taken) and none is sent twice.

Covers: a record that fills the queue, ``pqt`` wrapping from N-1 to 0, ``pqof`` set, ``pqmf``
set, a response sent, the chosen record stored.

Size: N = 4 slots and PAS = 32, for the fault queue's reasons: the queue never reads N (the
register file computes ``full``), PAS only widens the address adder.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib import wiring

from iogate.hdl.formal.queue import free_stream, queue_indices, store_memory
from iogate.hdl.pq import PageRequestQueue, PqVerdict, pq_request_layout

__all__ = ["PageRequestQueueHarness", "PqFullOffByOne"]


class PqFullOffByOne(wiring.Component):
    """Mutant: the queue sees ``full`` one slot late (``pqt == pqh - 2``)."""

    def __init__(self, *, pas, log2sz):
        self._inner = PageRequestQueue(pas=pas)
        self._mask = (1 << log2sz) - 1
        self.head = Signal(log2sz)           # pqh, which only the mutant needs
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        wiring.connect(m, wiring.flipped(self.request), inner.request)
        wiring.connect(m, inner.mem, wiring.flipped(self.mem))
        wiring.connect(m, inner.response, wiring.flipped(self.response))
        wiring.connect(m, inner.fault, wiring.flipped(self.fault))
        m.d.comb += self.pip.eq(inner.pip)
        for name in ("ppn", "tail", "on", "pqof", "pqmf", "pie"):
            m.d.comb += getattr(inner.regs, name).eq(getattr(self.regs, name))
        for name in ("advance", "set_pqof", "set_pqmf", "busy"):
            m.d.comb += getattr(self.regs, name).eq(getattr(inner.regs, name))
        m.d.comb += inner.regs.full.eq(((self.regs.tail + 2) & self._mask) == self.head)
        return m


class PageRequestQueueHarness(Elaboratable):
    """The page-request queue between a spec register file, a free memory and a free device
    side, with the properties of the module docstring.

    Parameters
    ----------
    mutant : bool
        Use :class:`PqFullOffByOne` instead of the real queue.
    """

    PAS = 32
    LOG2SZ = 2

    def __init__(self, *, mutant=False):
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        pas, log2sz = self.PAS, self.LOG2SZ
        n = 1 << log2sz
        dut = (PqFullOffByOne(pas=pas, log2sz=log2sz) if self.mutant
               else PageRequestQueue(pas=pas))
        m.submodules.dut = dut
        regs, mem, req = dut.regs, dut.mem, dut.request

        # --- The register file (reference N.6.5).
        ppn = AnyConst(44)
        pqh, pqt, full = queue_indices(m, log2sz, regs.advance)
        on, pqof, pqmf = Signal(), Signal(), Signal()
        on_next = AnySeq(1)
        with m.If(~regs.busy):
            m.d.sync += on.eq(on_next)
        clear_of, clear_mf = AnySeq(1), AnySeq(1)
        m.d.sync += [pqof.eq((pqof & ~clear_of) | regs.set_pqof),
                     pqmf.eq((pqmf & ~clear_mf) | regs.set_pqmf)]
        m.d.comb += [regs.ppn.eq(ppn), regs.tail.eq(pqt), regs.full.eq(full),
                     regs.on.eq(on), regs.pqof.eq(pqof), regs.pqmf.eq(pqmf),
                     regs.pie.eq(AnySeq(1))]
        if self.mutant:
            m.d.comb += dut.head.eq(pqh)

        # --- The memory: one response per request, after a free delay.
        store_memory(m, mem)

        # --- The device side: free requests under the stream rules, numbered in page[7:0].
        layout = pq_request_layout()
        free_stream(m, req, layout)
        taken = req.valid & req.ready
        number = Signal(8)
        with m.If(taken):
            m.d.sync += number.eq(number + 1)
        with m.If(req.valid):
            m.d.comb += Assume(req.payload.req.page[:8] == number)
        m.d.comb += Assume(req.payload.verdict.kind.as_value() <= PqVerdict.DC.value)
        m.d.comb += [dut.response.ready.eq(AnySeq(1)), dut.fault.ready.eq(AnySeq(1))]

        # --- The request being decided: its fields, and what it is owed.
        cur = Signal(layout)
        answerable = Signal()                # L=1 and not a Stop Marker: owed a response
        stored = Signal()                    # its record was stored (pqt moved)
        answered = Signal()                  # its response was sent
        started = Signal()
        with m.If(taken):
            m.d.sync += [cur.eq(req.payload), stored.eq(0), answered.eq(0), started.eq(1),
                         answerable.eq(req.payload.req.l
                                       & (req.payload.req.r | req.payload.req.w))]
        resp_sent = dut.response.valid & dut.response.ready
        with m.If(regs.advance):
            m.d.sync += stored.eq(1)
        with m.If(resp_sent):
            m.d.sync += answered.eq(1)
        # Property 5: a response only where owed, once, and never lost.
        with m.If(dut.response.valid):
            m.d.comb += [Assert(started & answerable & ~stored), Assert(~answered)]
            m.d.comb += Assert(dut.response.payload.prg_index == cur.req.prg_index)
        with m.If(taken & started):
            m.d.comb += Assert(~answerable | stored | answered)

        # --- Property 2: the stores, doubleword by doubleword.
        beats = Signal(1)
        done = mem.resp.valid & mem.resp.ready
        slot = Signal(pas)
        m.d.comb += slot.eq((ppn << 12) + (pqt << 4) + (beats << 3))
        v = cur.verdict
        queueable = ((v.kind == PqVerdict.DC) & v.en_ats & v.en_pri)
        with m.If(mem.req.valid):
            m.d.comb += [Assert(mem.req.payload.addr == slot),
                         Assert(mem.req.payload.strb == 0xFF),
                         Assert(~full), Assert(started & queueable)]
        rec = Signal(64)
        sent = Signal(64)
        with m.If(mem.req.valid & mem.req.ready):
            m.d.sync += sent.eq(mem.req.payload.data)
        with m.If(done):
            with m.If(mem.resp.payload.err):
                m.d.sync += beats.eq(0)
            with m.Else():
                m.d.sync += [beats.eq(beats + 1), rec.eq(sent)]
        record = Signal(128)
        m.d.comb += record.eq(Cat(rec, sent))

        # Properties 1 and 3.
        m.d.comb += [
            Assert(~(regs.advance & full)),
            Assert(~regs.advance | (done & ~mem.resp.payload.err & (beats == 1))),
            Assert(~(done & ~mem.resp.payload.err & (beats == 1)) | regs.advance),
            Assert(~regs.set_pqof | (full & on & ~pqmf)),
            Assert(~regs.set_pqmf | (done & mem.resp.payload.err)),
            Assert(~(regs.set_pqof & regs.advance)),
        ]

        # Property 4: the chosen request's record (N.6.6).
        watch = AnyConst(8)
        have, want = Signal(), Signal(layout)
        with m.If(taken & (req.payload.req.page[:8] == watch) & ~have):
            m.d.sync += [have.eq(1), want.eq(req.payload)]
        w = want.req
        expected = Signal(128)
        m.d.comb += expected.eq(Cat(
            Const(0, 12), Mux(w.pv, w.pid, 0), w.pv, w.pv & w.priv, w.pv & w.exec,
            Const(0, 5), w.device_id,
            w.r, w.w, w.l, w.prg_index, w.page))
        stored_watch = regs.advance & have & (record[76:84] == watch)
        with m.If(stored_watch):
            m.d.comb += Assert(record == expected)

        m.d.comb += [
            Cover(regs.advance & ((pqt + 2)[:log2sz] == pqh)),
            Cover(regs.advance & (pqt == n - 1)),
            Cover(regs.set_pqof),
            Cover(regs.set_pqmf),
            Cover(resp_sent),
            Cover(stored_watch & w.pv),
        ]
        return m
