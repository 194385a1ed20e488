"""Formal harness of the fault-queue writer (spec "Fault/Event-Queue (FQ)").

The writer (:class:`iogate.hdl.fq.FaultQueueWriter`) runs between abstractions:

* **the register file** is the spec's queue arithmetic, written here: ``fqt`` moves on the
  writer's ``advance`` (mod N), ``fqh`` is moved by a free consumer that reads only records
  that are there (``fqh != fqt``), ``full`` is ``fqt == fqh - 1`` (mod N), ``fqof``/``fqmf``
  are set by the writer's strobes and cleared by a free software write (RW1C), and the
  queue's ``on`` changes only while the writer is not busy (``fqon`` stays 1 until a
  record in flight is done). ``fqh``/``fqt`` start anywhere (software may enable the
  queue with any ``fqh``), so a full queue is reached within a few records.
* **the memory** answers each store with a free ``err`` after a free delay, one
  response per request; ``ready`` is free.
* **the pipeline** offers free reports under the stream rules (``valid`` held with a
  stable payload until ``ready``); each report the spec says is to be recorded carries
  its sequence number in ``iova[7:0]``, and one that ``DTF`` suppresses has ``iova[63]``
  set, so records can be told apart.

Properties (asserted every cycle):

1. ``fqt`` never advances onto ``fqh``: no record is made visible in a full queue, so an
   unread record is never overwritten.
2. Every store is in the free slot at ``fqt``: address ``fqb.PPN * 4096 + fqt * 32 + 8 * k``
   for the k-th doubleword (k = 0..3, in order), all eight bytes, and never while full.
3. ``fqof`` is set only when the queue is full and on and not in error; ``fqmf`` only on a
   store answered with an error.
4. Records are stored in order, none twice, and none lost unless ``fqof``, ``fqmf`` or the
   queue being off excuses it; no DTF-suppressed report is ever stored.
5. The record of one report chosen by the solver (so: of every report) is exactly the
   spec's record of it: CAUSE, PID and PRIV only with PV, TTYP 1/2/3 for an untranslated
   execute/read/write, DID, 0 in doubleword 1, iotval, iotval2.

Covers: a record stored that fills the queue, ``fqt`` wrapping from N-1 to 0, ``fqof``
set, ``fqmf`` set, the chosen record stored.

Size: N = 4 slots and PAS = 32. The writer never reads N (the register file computes
``full``), so the queue arithmetic at N = 4 has every case (empty, full, wrap) that a
larger N has; PAS only widens the address adder.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import wiring

from iogate.hdl.formal.queue import free_stream, queue_indices, store_memory
from iogate.hdl.fq import FaultQueueWriter, fault_report_layout

__all__ = ["FaultQueueHarness", "FullOffByOne"]

#: Causes still reported when DC.tc.DTF=1 (spec "Fault/Event-Queue (FQ)", table "CAUSE").
_DTF_REPORTED = (256, 257, 258, 259, 268, 272, 273)
#: Fault record TTYP of an Untranslated request by access (READ 0, WRITE 1, EXECUTE 2 of
#: iogate.hdl.port.Access): spec table "TTYP", 2 read, 3 write, 1 read-for-execute.
_TTYP = {0: 2, 1: 3, 2: 1}


class FullOffByOne(wiring.Component):
    """Mutant: the writer sees ``full`` one slot late (``fqt == fqh - 2``)."""

    def __init__(self, *, pas, log2sz):
        self._inner = FaultQueueWriter(pas=pas)
        self._mask = (1 << log2sz) - 1
        self.head = Signal(log2sz)           # fqh, which only the mutant needs
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        wiring.connect(m, wiring.flipped(self.report), inner.report)
        wiring.connect(m, inner.mem, wiring.flipped(self.mem))
        for name in ("ppn", "tail", "on", "error"):
            m.d.comb += getattr(inner.regs, name).eq(getattr(self.regs, name))
        for name in ("advance", "set_fqof", "set_fqmf", "busy"):
            m.d.comb += getattr(self.regs, name).eq(getattr(inner.regs, name))
        m.d.comb += inner.regs.full.eq(((self.regs.tail + 2) & self._mask) == self.head)
        return m


class FaultQueueHarness(Elaboratable):
    """The fault-queue writer between a spec register file, a free memory and a free
    pipeline, with the properties of the module docstring.

    Parameters
    ----------
    mutant : bool
        Use :class:`FullOffByOne` instead of the real writer.
    latency : int or None
        If given, the memory answers a store's request and response each within this many
        cycles (for the no-hang bound); None leaves the delays free.
    """

    PAS = 32
    LOG2SZ = 2

    def __init__(self, *, mutant=False, latency=None):
        self.mutant = mutant
        self.latency = latency

    def elaborate(self, platform):
        m = Module()
        pas, log2sz = self.PAS, self.LOG2SZ
        n = 1 << log2sz
        if self.mutant:
            dut = FullOffByOne(pas=pas, log2sz=log2sz)
        else:
            dut = FaultQueueWriter(pas=pas)
        m.submodules.dut = dut
        regs, mem, rep = dut.regs, dut.mem, dut.report

        # --- The register file (spec "Fault/Event-Queue (FQ)", "Fault queue CSR (fqcsr)").
        ppn = AnyConst(44)
        fqh, fqt, full = queue_indices(m, log2sz, regs.advance)
        on, error = Signal(), Signal()
        on_next = AnySeq(1)
        with m.If(~regs.busy):
            m.d.sync += on.eq(on_next)
        clear = AnySeq(1)
        m.d.sync += error.eq((error & ~clear) | regs.set_fqof | regs.set_fqmf)
        m.d.comb += [regs.ppn.eq(ppn), regs.tail.eq(fqt), regs.full.eq(full),
                     regs.on.eq(on), regs.error.eq(error)]
        if self.mutant:
            m.d.comb += dut.head.eq(fqh)

        # --- The memory: one response per request, after a free delay.
        outstanding = store_memory(m, mem)
        if self.latency is not None:
            wait = Signal(range(self.latency + 2))
            busy_bus = (mem.req.valid & ~mem.req.ready) | (outstanding & ~mem.resp.valid)
            m.d.sync += wait.eq(Mux(busy_bus, wait + 1, 0))
            m.d.comb += Assume(wait < self.latency)

        # --- The pipeline: free reports under the stream rules.
        layout = fault_report_layout()
        free_stream(m, rep, layout)
        reportable = Signal()
        cause_listed = Const(0, 1)
        for c in _DTF_REPORTED:
            cause_listed = cause_listed | (Value.cast(rep.payload.cause) == c)
        m.d.comb += reportable.eq(~rep.payload.dtf | cause_listed)
        accepted = Signal(8)                 # sequence number of the next recorded report
        kept = rep.valid & rep.ready & reportable & on & ~error
        with m.If(kept):
            m.d.sync += accepted.eq(accepted + 1)
        with m.If(rep.valid):
            m.d.comb += Assume(rep.payload.iova[63] == ~reportable)
            with m.If(reportable):
                m.d.comb += Assume(rep.payload.iova[:8] == accepted)
        m.d.comb += Assume(Value.cast(rep.payload.access) != 3)

        # --- The record being stored, doubleword by doubleword.
        beats = Signal(2)
        rec = Signal(256)
        done = mem.resp.valid & mem.resp.ready
        slot_addr = Signal(pas)
        m.d.comb += slot_addr.eq((ppn << 12) + (fqt << 5) + (beats << 3))
        with m.If(mem.req.valid):
            m.d.comb += [Assert(mem.req.payload.addr == slot_addr),
                         Assert(mem.req.payload.strb == 0xFF),
                         Assert(~full)]
        sent = Signal(64)
        with m.If(mem.req.valid & mem.req.ready):
            m.d.sync += sent.eq(mem.req.payload.data)
        with m.If(done):
            with m.If(mem.resp.payload.err):
                m.d.sync += beats.eq(0)
            with m.Else():
                m.d.sync += beats.eq(beats + 1)
                for k in range(4):
                    with m.If(beats == k):
                        m.d.sync += rec[64 * k:64 * (k + 1)].eq(sent)
        record = Signal(256)                 # the record complete at an advance
        m.d.comb += record.eq(Cat(rec[:192], sent))

        # Property 1 and 3.
        m.d.comb += [
            Assert(~(regs.advance & full)),
            Assert(~regs.advance | (done & ~mem.resp.payload.err & (beats == 3))),
            Assert(~(done & ~mem.resp.payload.err & (beats == 3)) | regs.advance),
            Assert(~regs.set_fqof | (full & on & ~error)),
            Assert(~regs.set_fqmf | (done & mem.resp.payload.err)),
            Assert(~(regs.set_fqof & regs.advance)),
        ]

        # Property 4: order, no duplicate, no unexcused loss, no suppressed record.
        last = Signal(8, init=0xFF)
        excuse = Signal()
        seq = record[128:136]
        with m.If(regs.set_fqof | regs.set_fqmf | ~on | error):
            m.d.sync += excuse.eq(1)
        with m.If(regs.advance):
            m.d.comb += [
                Assert(~record[191]),
                Assert(seq != last),
                Assert((accepted - seq - 1)[:8] < 8),
                Assert(excuse | (seq == (last + 1)[:8])),
            ]
            m.d.sync += [last.eq(seq), excuse.eq(0)]

        # Property 5: the chosen report's record.
        watch = AnyConst(8)
        have, want = Signal(), Signal(layout)
        with m.If(kept & (rep.payload.iova[:8] == watch) & ~have):
            m.d.sync += [have.eq(1), want.eq(rep.payload)]
        ttyp = Signal(6)
        for a, t in _TTYP.items():
            with m.If(Value.cast(want.access) == a):
                m.d.comb += ttyp.eq(t)
        expected = Signal(256)
        m.d.comb += expected.eq(Cat(
            Value.cast(want.cause), Mux(want.pv, want.pid, 0), want.pv, want.pv & want.priv,
            ttyp, want.device_id, Const(0, 64), want.iova, want.iotval2))
        stored_watch = regs.advance & have & (seq == watch)
        with m.If(stored_watch):
            m.d.comb += Assert(record == expected)

        m.d.comb += [
            Cover(regs.advance & ((fqt + 2)[:log2sz] == fqh)),
            Cover(regs.advance & (fqt == n - 1)),
            Cover(regs.set_fqof),
            Cover(regs.set_fqmf),
            Cover(stored_watch & want.pv),
        ]
        return m
