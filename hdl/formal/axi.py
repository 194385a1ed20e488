"""Formal harness of the AXI4 memory master (:class:`iogate.hdl.mem_master.MemoryMaster`):
AXI handshake rules on the manager side, one answer per client request.

Abstractions: free clients (two read, two write) under the stream rules (``valid`` held
with a stable payload until ``ready``), and a free AXI subordinate that is legal: it
answers only a request it took (``rvalid``/``bvalid`` only with a read/write outstanding),
holds a response with a stable payload until ``ready``, and otherwise chooses every
``ready``, delay and ``resp`` freely.

Properties (AMBA AXI, "Handshake process" and "Channel signaling requirements"):

1. ``arvalid``, ``awvalid`` and ``wvalid`` stay high until their ``ready``, with
   ``araddr``/``arid``, ``awaddr``/``awid``/``awsize`` and ``wdata``/``wstrb`` stable.
2. Every burst is one beat: ``arlen = awlen = 0``, ``arsize = 3``, INCR, ``wlast = 1``.
3. One read and one write at a time: no new address while one is outstanding.
4. The address and ID on the bus are those of the client whose request was taken
   (``arid``/``awid`` = the client's index).
5. A client gets a response only for a request it made, exactly once, and only while the
   bus answers it (``resp.valid`` only with ``rvalid``/``bvalid``).

Covers: each read and write client answered, a write with AW before W and one with W
before AW.

Size: 2 read and 2 write clients, PAS 32: the arbitration is per client index, so two
clients have every case (contention, round-robin turn) of more.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from iogate.hdl.mem_master import MemoryMaster

__all__ = ["MemoryMasterHarness", "ValidDroppedEarly"]


class ValidDroppedEarly(wiring.Component):
    """Mutant: ARVALID is dropped after one cycle without ARREADY (and raised again)."""

    def __init__(self, addr_width, clients, write_clients):
        self._inner = MemoryMaster(addr_width, clients, write_clients)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        for i in range(len(self.clients)):
            wiring.connect(m, wiring.flipped(self.clients[i]), inner.clients[i])
        for i in range(len(self.write_clients)):
            wiring.connect(m, wiring.flipped(self.write_clients[i]), inner.write_clients[i])
        waited = Signal()
        m.d.sync += waited.eq(inner.bus.arvalid & ~self.bus.arready & ~waited)
        for name, member in self.bus.signature.members.items():
            outer, mine = getattr(self.bus, name), getattr(inner.bus, name)
            if member.flow == Out:
                m.d.comb += outer.eq(mine)
            else:
                m.d.comb += mine.eq(outer)
        m.d.comb += [self.bus.arvalid.eq(inner.bus.arvalid & ~waited),
                     inner.bus.arready.eq(self.bus.arready & ~waited)]
        return m


def _stream_source(m, port):
    """``port`` (a stream the DUT receives) driven by a free, legal source."""
    width = len(port.payload.as_value())
    held_valid, held = Signal(), Signal(width)
    m.d.sync += [held_valid.eq(port.valid & ~port.ready), held.eq(port.payload.as_value())]
    m.d.comb += port.valid.eq(AnySeq(1))
    with m.If(held_valid):
        m.d.comb += [Assume(port.valid), port.payload.eq(held)]
    with m.Else():
        m.d.comb += port.payload.eq(AnySeq(width))


def _held(m, valid, ready, payload):
    """Assert: once ``valid`` is high without ``ready``, it stays high with ``payload``."""
    was, old = Signal(), Signal(len(payload))
    m.d.sync += [was.eq(valid & ~ready), old.eq(payload)]
    with m.If(was):
        m.d.comb += [Assert(valid), Assert(payload == old)]


class MemoryMasterHarness(Elaboratable):
    """The memory master between free clients and a free legal AXI subordinate."""

    PAS, CLIENTS = 32, 2

    def __init__(self, *, mutant=False):
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        n = self.CLIENTS
        cls = ValidDroppedEarly if self.mutant else MemoryMaster
        m.submodules.dut = dut = cls(self.PAS, n, n)
        bus = dut.bus

        # --- The subordinate.
        rd_out, wr_out = Signal(), Signal()
        aw_taken, w_taken = Signal(), Signal()
        m.d.comb += [bus.arready.eq(AnySeq(1)), bus.awready.eq(AnySeq(1)),
                     bus.wready.eq(AnySeq(1))]
        for valid, ready, payload, busy in (
                (bus.rvalid, bus.rready, [bus.rdata, bus.rresp, bus.rid, bus.rlast], rd_out),
                (bus.bvalid, bus.bready, [bus.bresp, bus.bid], wr_out)):
            was = Signal()
            m.d.sync += was.eq(valid & ~ready)
            m.d.comb += valid.eq(AnySeq(1) & busy)
            for p in payload:
                p = Value.cast(p)
                old = Signal(len(p))
                m.d.sync += old.eq(p)
                m.d.comb += p.eq(AnySeq(len(p)))
                with m.If(was):
                    m.d.comb += Assume(p == old)
            with m.If(was):
                m.d.comb += Assume(valid)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += rd_out.eq(1)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += rd_out.eq(0)
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += aw_taken.eq(1)
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += w_taken.eq(1)
        m.d.comb += wr_out.eq(aw_taken & w_taken)
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += [aw_taken.eq(0), w_taken.eq(0)]

        # --- The clients.
        for c in list(dut.clients) + list(dut.write_clients):
            _stream_source(m, c.req)
            m.d.comb += c.resp.ready.eq(AnySeq(1))

        # Property 1 and 2.
        _held(m, bus.arvalid, bus.arready, bus.araddr)
        _held(m, bus.arvalid, bus.arready, bus.arid)
        _held(m, bus.awvalid, bus.awready, bus.awaddr)
        _held(m, bus.awvalid, bus.awready, bus.awid)
        _held(m, bus.awvalid, bus.awready, bus.awsize)
        _held(m, bus.wvalid, bus.wready, bus.wdata)
        _held(m, bus.wvalid, bus.wready, bus.wstrb)
        m.d.comb += [Assert(bus.arlen == 0), Assert(bus.arsize == 3),
                     Assert(bus.arburst.as_value() == 1), Assert(bus.awlen == 0),
                     Assert(bus.awburst.as_value() == 1), Assert(~bus.wvalid | bus.wlast)]
        # Property 3.
        m.d.comb += [Assert(~(bus.arvalid & rd_out)),
                     Assert(~(bus.awvalid & (aw_taken | wr_out))),
                     Assert(~(bus.wvalid & (w_taken | wr_out)))]

        # Property 4 and 5, per client.
        answered = []
        for kind, ports, valid, _ready, addr, ident in (
                ("r", dut.clients, bus.arvalid, bus.arready, bus.araddr, bus.arid),
                ("w", dut.write_clients, bus.awvalid, bus.awready, bus.awaddr, bus.awid)):
            bus_resp = bus.rvalid if kind == "r" else bus.bvalid
            for i, c in enumerate(ports):
                pending, req_addr = Signal(name=f"{kind}{i}_pending"), Signal(self.PAS)
                with m.If(c.req.valid & c.req.ready):
                    m.d.sync += [pending.eq(1), req_addr.eq(c.req.payload.addr)]
                    m.d.comb += Assert(~pending)
                with m.If(c.resp.valid & c.resp.ready):
                    m.d.sync += pending.eq(0)
                with m.If(c.resp.valid):
                    m.d.comb += [Assert(pending), Assert(bus_resp)]
                with m.If(valid & (ident == i)):
                    m.d.comb += Assert(pending)
                    if kind == "r":
                        m.d.comb += Assert(addr == req_addr)
                answered.append(c.resp.valid & c.resp.ready)
        m.d.comb += [
            Cover(answered[0]), Cover(answered[1]),
            Cover(bus.awvalid & bus.awready & ~bus.wready & ~w_taken),
            Cover(bus.wvalid & bus.wready & ~bus.awready & ~aw_taken),
            Cover(answered[2]), Cover(answered[3]),
        ]
        return m
