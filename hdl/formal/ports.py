"""Formal harness of the translation ports at the top level (:class:`iogate.hdl.iommu.Iommu`):
every accepted request is answered once, on its own port, with its tag.

The whole IOMMU is the device under test: the round-robin over the ports and the debug
interface, the translation pipeline with its caches and walkers, the register file, the
command queue, the fault-queue writer and the AXI4 memory master. Abstractions:

* free requesters on every port under the stream rules (``valid`` held with a stable
  payload until ``ready``) that do not reuse a tag while a request with it is outstanding
  on their port (the port contract, :mod:`iogate.hdl.port`: the tag says which request a
  response answers), and free ``resp.ready``;
* a free AXI4-Lite manager on ``mmio`` under the handshake rules, so that software can
  program ``ddtp`` (Off, Bare, 1LVL), the queues and a debug translation at any time;
* a free memory on ``mem``: a legal AXI4 subordinate that answers only a request it took
  (with its ID), holds a response with a stable payload until ``ready``, and chooses every
  ``ready``, delay, ``rdata`` and ``resp`` freely;
* a free reset.

The solver picks one port P and one tag T for the whole run; the harness keeps whether a
request (P, T) is outstanding (accepted on P and not yet answered there), and reads the
pipeline's three stage registers, each a request with its source and tag: the lookup stage,
the walk slot and the response stage (:mod:`iogate.hdl.translate`; the harness's subclass
of the pipeline only keeps them where it can read them, the logic is the pipeline's own).
Properties (port contract; spec "Process to translate an IOVA"):

1. **No response without a request, none twice**: a response on port P with tag T comes
   only while a request (P, T) is outstanding, and the response taken clears it; so a
   response routed to another port than its request's, or a duplicate, fails (it is a
   response to a (P, T) that has none outstanding).
2. **None lost**: while (P, T) is outstanding exactly one stage holds it (valid, with
   source P and tag T), and none holds it otherwise: a request is never dropped, copied
   or replaced without its response; and over all ports at most 3 requests are in flight.
   Within the BMC depth every accepted request is thus either answered once or held.
3. **Stream rules** on every port's ``resp``: ``valid`` held until ``ready``, with a stable
   payload.

Covers: a response on P with tag T; a response on each port; a response to (P, T) with a
device-directory fault (cause 257 or 258: a DDT walk read memory for it); a translation
(no fault) answered to (P, T); two requests in flight; (P, T) in the walk slot (a DC
fetched, a page-table walk started for it); (P, T) answered from the walk slot; (P, T)
answered after a page-table read for it.

Mutants (wrappers around the real IOMMU in this file): :class:`ResponseRepeated` (a
response offered twice) fails property 1, :class:`ResponseLost` (a response swallowed)
property 2.

Method: BMC. k-induction would need, from inside the pipeline, the links between its
stages, its walkers' state and the harness's flag as invariants. A request is answered
2 cycles after it is taken at the least, a device-directory fault 6, a DC read whole and a
page-table walk started for (P, T) at 18, its answer from the walk slot at 19 (a walk that
faults without a read) and after a page-table read at 22 (the covers): BMC 24 (full)
holds an answer on each kind of path, the walk slot's included; 8 (CI) the answers,
faults and contention of every source. A three-level walk, or a request queued behind
another's walk, is longer than the bound and is checked only as far as it reaches.

Size: ``Config.icebreaker()`` (Sv39, 1LVL, one IOTLB and one device-context entry, PAS 32,
a 32-bit register bus, queues of up to 256 entries) with 2 ports, 2-bit tags and the debug
interface: two ports and the debug source have every case of the round-robin and of the
response routing (a response for another source in the response stage).
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cat, Cover, Elaboratable, Fragment, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from iogate.hdl.config import Config
from iogate.hdl.formats import Cause
from iogate.hdl.iommu import Iommu
from iogate.hdl.translate import TranslationPipeline

__all__ = ["PortsHarness", "ResponseRepeated", "ResponseLost"]

#: Requests the pipeline can hold: lookup stage, walk slot, response stage.
CAPACITY = 3


class _ObservedPipeline(TranslationPipeline):
    """The translation pipeline, unchanged, that keeps its stage registers (the namespace
    its elaboration shares between its helpers) where the harness can read them."""

    def _response_stage(self, m, s):
        self.stages = s
        super()._response_stage(m, s)


class _ObservedIommu(Iommu):
    """The IOMMU, unchanged, whose pipeline is a :class:`_ObservedPipeline` (the same
    class but for the namespace it keeps)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        self.pipeline = m.submodules.pipeline
        self.pipeline.__class__ = _ObservedPipeline
        return m


class ResponseRepeated(wiring.Component):
    """Mutant: a response taken on port 0 is offered once more, the next cycle, with the
    same payload (a duplicate tag)."""

    def __init__(self, config):
        self.inner = _ObservedIommu(config)
        super().__init__(self.inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        for (path, member, mine), (_, _, theirs) in zip(
                self.signature.flatten(self), inner.signature.flatten(inner), strict=True):
            if path == ("tr", 0, "resp", "valid"):
                continue
            if member.flow == Out:
                m.d.comb += Value.cast(mine).eq(Value.cast(theirs))
            else:
                m.d.comb += Value.cast(theirs).eq(Value.cast(mine))
        again = Signal()
        resp = inner.tr[0].resp
        m.d.sync += again.eq(resp.valid & resp.ready)
        # The pipeline's response register no longer holds it: keep a copy.
        old = Signal.like(Value.cast(resp.payload))
        m.d.sync += old.eq(resp.payload)
        with m.If(again):
            m.d.comb += [self.tr[0].resp.valid.eq(1), self.tr[0].resp.payload.eq(old)]
        with m.Else():
            m.d.comb += self.tr[0].resp.valid.eq(resp.valid)
        return m

    @property
    def pipeline(self):
        return self.inner.pipeline


class ResponseLost(wiring.Component):
    """Mutant: a response with tag 3 on port 1 is taken from the pipeline and never offered
    (a lost request)."""

    def __init__(self, config):
        self.inner = _ObservedIommu(config)
        super().__init__(self.inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        skip = {("tr", 1, "resp", "valid"), ("tr", 1, "resp", "ready")}
        for (path, member, mine), (_, _, theirs) in zip(
                self.signature.flatten(self), inner.signature.flatten(inner), strict=True):
            if path in skip:
                continue
            if member.flow == Out:
                m.d.comb += Value.cast(mine).eq(Value.cast(theirs))
            else:
                m.d.comb += Value.cast(theirs).eq(Value.cast(mine))
        lost = inner.tr[1].resp.payload.tag == 3
        m.d.comb += [self.tr[1].resp.valid.eq(inner.tr[1].resp.valid & ~lost),
                     inner.tr[1].resp.ready.eq(self.tr[1].resp.ready | lost)]
        return m

    @property
    def pipeline(self):
        return self.inner.pipeline


def _legal_source(m, valid, ready, payload):
    """``valid`` and the values ``payload`` (inputs of the DUT) driven by a free source
    that holds them until ``ready``."""
    held = Signal()
    m.d.sync += held.eq(valid & ~ready)
    m.d.comb += valid.eq(AnySeq(1))
    with m.If(held):
        m.d.comb += Assume(valid)
    for p in payload:
        p = Value.cast(p)
        old = Signal(len(p))
        m.d.sync += old.eq(p)
        m.d.comb += p.eq(AnySeq(len(p)))
        with m.If(held):
            m.d.comb += Assume(p == old)


def _held_response(m, valid, ready, payload, name):
    """``valid``/``payload`` (DUT outputs) under the stream rules."""
    was = Signal(name=f"{name}_was")
    old = Signal(len(payload), name=f"{name}_old")
    m.d.sync += [was.eq(valid & ~ready), old.eq(payload)]
    with m.If(was):
        m.d.comb += [Assert(valid), Assert(payload == old)]


class PortsHarness(Elaboratable):
    """The IOMMU between free requesters, a free register-bus manager and a free memory,
    with the properties of the module docstring."""

    PORTS, TAG_WIDTH = 2, 2

    def __init__(self, *, mutant=None):
        self.config = Config.icebreaker().replace(ports=self.PORTS, tag_width=self.TAG_WIDTH,
                                                  dbg=True)
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        dut = {None: _ObservedIommu, "repeated": ResponseRepeated,
               "lost": ResponseLost}[self.mutant](self.config)
        # Elaborated here, so that the pipeline's stage registers exist for property 2.
        m.submodules.dut = Fragment.get(dut, platform)
        stages = dut.pipeline.stages
        n, tw = self.PORTS, self.TAG_WIDTH

        # --- The register-bus manager.
        bus = dut.mmio
        _legal_source(m, bus.awvalid, bus.awready, [bus.awaddr, bus.awprot])
        _legal_source(m, bus.wvalid, bus.wready, [bus.wdata, bus.wstrb])
        _legal_source(m, bus.arvalid, bus.arready, [bus.araddr, bus.arprot])
        m.d.comb += [bus.bready.eq(AnySeq(1)), bus.rready.eq(AnySeq(1))]

        # --- The memory.
        mem = dut.mem
        m.d.comb += [mem.arready.eq(AnySeq(1)), mem.awready.eq(AnySeq(1)),
                     mem.wready.eq(AnySeq(1))]
        rd_busy, rd_id = Signal(), Signal(len(mem.arid))
        aw_taken, w_taken, wr_id = Signal(), Signal(), Signal(len(mem.awid))
        with m.If(mem.arvalid & mem.arready):
            m.d.sync += [rd_busy.eq(1), rd_id.eq(mem.arid)]
        with m.If(mem.rvalid & mem.rready):
            m.d.sync += rd_busy.eq(0)
        with m.If(mem.awvalid & mem.awready):
            m.d.sync += [aw_taken.eq(1), wr_id.eq(mem.awid)]
        with m.If(mem.wvalid & mem.wready):
            m.d.sync += w_taken.eq(1)
        with m.If(mem.bvalid & mem.bready):
            m.d.sync += [aw_taken.eq(0), w_taken.eq(0)]
        # One read and one write outstanding at a time (the memory master's rule; its own
        # proof, axi-master, shows it): the subordinate answers the one it took.
        for valid, ready, busy, free, fixed in (
                (mem.rvalid, mem.rready, rd_busy, [mem.rdata, mem.rresp],
                 [(mem.rid, rd_id), (mem.rlast, 1)]),
                (mem.bvalid, mem.bready, aw_taken & w_taken, [mem.bresp],
                 [(mem.bid, wr_id)])):
            was = Signal()
            m.d.sync += was.eq(valid & ~ready)
            m.d.comb += valid.eq(AnySeq(1) & busy)
            with m.If(was):
                m.d.comb += Assume(valid)
            for p in free:
                p = Value.cast(p)
                old = Signal(len(p))
                m.d.sync += old.eq(p)
                m.d.comb += p.eq(AnySeq(len(p)))
                with m.If(was):
                    m.d.comb += Assume(p == old)
            for p, v in fixed:
                m.d.comb += p.eq(v)

        # --- The requesters, and the chosen (P, T).
        k_port = Signal(range(n))
        k_tag = Signal(tw)
        m.d.comb += [k_port.eq(AnyConst(len(k_port))), k_tag.eq(AnyConst(tw))]
        m.d.comb += Assume(k_port < n)
        k_out = Signal()                 # a request (P, T) is outstanding
        accepted, answered = [], []
        k_req, k_resp, k_took = [], [], []
        for i in range(n):
            port = dut.tr[i]
            _legal_source(m, port.req.valid, port.req.ready, [port.req.payload])
            # A legal request asks one of the three accesses (the fourth code is none).
            m.d.comb += Assume(Value.cast(port.req.payload.access) != 3)
            m.d.comb += port.resp.ready.eq(AnySeq(1))
            _held_response(m, port.resp.valid, port.resp.ready,
                           Value.cast(port.resp.payload), f"resp{i}")
            accepted.append(port.req.valid & port.req.ready)
            answered.append(port.resp.valid & port.resp.ready)
            k_req.append(accepted[i] & (k_port == i) & (port.req.payload.tag == k_tag))
            k_resp.append(port.resp.valid & (k_port == i) & (port.resp.payload.tag == k_tag))
            k_took.append(k_resp[i] & port.resp.ready)
        req_k = Signal()
        resp_k, took_k = Signal(), Signal()
        m.d.comb += [req_k.eq(Cat(k_req).any()), resp_k.eq(Cat(k_resp).any()),
                     took_k.eq(Cat(k_took).any())]
        # The requester does not reuse T on P while it is outstanding.
        with m.If(k_out & ~took_k):
            m.d.comb += Assume(~req_k)
        with m.If(req_k):
            m.d.sync += k_out.eq(1)
        with m.Elif(took_k):
            m.d.sync += k_out.eq(0)

        # Property 1.
        with m.If(resp_k):
            m.d.comb += Assert(k_out)

        # Property 2: while (P, T) is outstanding exactly one stage holds it, else none.
        held = []
        for valid, req in ((stages.s1_valid, stages.s1), (stages.w_valid, stages.w),
                           (stages.out_valid, stages.out)):
            held.append(valid & (req.src == k_port) & (req.tag == k_tag))
        holders = Signal(2)
        m.d.comb += holders.eq(sum(Value.cast(h) for h in held))
        m.d.comb += Assert(holders == k_out)
        # And over all ports: no more requests in flight than the stages hold.
        in_flight = Signal(range(2 * CAPACITY + 2))
        taken = sum(Value.cast(a) for a in accepted)
        given = sum(Value.cast(a) for a in answered)
        m.d.sync += in_flight.eq(in_flight + taken - given)
        m.d.comb += Assert(in_flight <= CAPACITY)

        # Covers.
        cause = Value.cast(stages.out.cause)
        walked = stages.out.fault & ((cause == Cause.DDT_LOAD_ACCESS_FAULT)
                                     | (cause == Cause.DDT_ENTRY_NOT_VALID))
        m.d.comb += [Cover(took_k), Cover(answered[0]), Cover(answered[1]),
                     Cover(took_k & walked), Cover(took_k & ~stages.out.fault),
                     Cover(in_flight == 2), Cover(held[1])]
        # (P, T) answered from the walk slot, and after a page-table read for it (ARID 1:
        # the page-table walker's client of the memory master).
        in_walk, pt_read = Signal(), Signal()
        with m.If(held[1]):
            m.d.sync += in_walk.eq(1)
        with m.If(held[1] & mem.rvalid & mem.rready & (mem.rid == 1)):
            m.d.sync += pt_read.eq(1)
        with m.If(req_k):
            m.d.sync += [in_walk.eq(0), pt_read.eq(0)]
        m.d.comb += [Cover(took_k & in_walk), Cover(took_k & pt_read)]
        return m
