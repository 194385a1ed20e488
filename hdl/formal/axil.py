"""Formal harness of the register file's AXI4-Lite subordinate port
(:class:`iogate.hdl.regfile.RegFile`): the AXI handshake rules on the subordinate side, one
response per request, in request order.

Abstractions: a free AXI4-Lite manager that is legal (AMBA AXI, "Handshake process": once
``awvalid``, ``wvalid`` or ``arvalid`` is high it stays high until its ``ready``, with
``awaddr``/``awprot``, ``wdata``/``wstrb`` and ``araddr``/``arprot`` stable; ``bready`` and
``rready`` free, back-pressure included), free command-queue, fault-queue and debug
translation neighbours (every input of the register file that is not the bus is free each
cycle), and a free reset. The register file is the real one of ``Config()`` (64-bit bus), or
of ``Config(mmio_data_width=32)``.

Properties (AMBA AXI, "Handshake process", "Channel signaling requirements", "Relationships
between the channels"; spec "Memory-mapped register interface"):

1. ``bvalid`` and ``rvalid``, once high, stay high until ``bready``/``rready``, with
   ``bresp``, ``rresp`` and ``rdata`` stable.
2. No response without a request: ``bvalid`` only while a write address and its data were
   accepted and not answered, ``rvalid`` only while a read address was.
3. Exactly one response per request: the count of B handshakes never passes the count of
   accepted AW+W pairs, nor that of R handshakes the count of accepted ARs, and a request
   accepted and not answered has its response offered from the next cycle on (the register
   file answers the cycle after it takes a request), so with 1 none is lost.
4. Responses in request order: at most one write and one read are outstanding (the next
   address is taken only after the response; a write's address and data are taken in the
   same cycle, so as many AWs as Ws are accepted), so response *k* is that of request *k*; its
   ``rdata`` is the word of request *k*'s address wherever the spec or the register file
   fixes it (``capabilities`` = ``Config.capabilities``; ``fctl`` = WSI=1; an offset that
   decodes no register reads 0), the half that ``araddr[2]`` selects on a 32-bit bus.
5. Every response is OKAY (the register file answers every access so).

Covers: a write answered; a read of ``capabilities`` answered with its value; a response
held under back-pressure and then taken; a write whose AW came before its W; reads and
writes at full rate (a response every other cycle).

Method: k-induction (unbounded) at length 4, CI too (it closes at length 1). The properties
are about the port's handshake state (``bvalid``, ``rvalid``, the captured ``rdata``) and
the harness's counters, which the assertions tie to each other directly (a response owed is
a response offered), so the induction closes without invariants from inside the register
file. The cover run is 8 cycles: a request and its response take 2, and the covers are
reached by step 3.

Mutant: :class:`BvalidDropped` (BVALID drops after one cycle without BREADY, the RTL
untouched) fails property 1.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from iogate.hdl import bits
from iogate.hdl.axi import Resp
from iogate.hdl.config import Config
from iogate.hdl.regfile import RegFile
from iogate.hdl.regs import FCTL, REGISTER_SIZE, Offset

__all__ = ["AxiLiteSlaveHarness", "BvalidDropped"]


def _passthrough(m, outer, inner, skip=()):
    """Connect every port of component ``outer`` to the same port of ``inner``, but those
    whose path is in ``skip``."""
    pairs = zip(outer.signature.flatten(outer), inner.signature.flatten(inner), strict=True)
    for (path, member, mine), (_, _, theirs) in pairs:
        if path in skip:
            continue
        if member.flow == Out:
            m.d.comb += Value.cast(mine).eq(Value.cast(theirs))
        else:
            m.d.comb += Value.cast(theirs).eq(Value.cast(mine))


class BvalidDropped(wiring.Component):
    """Mutant: BVALID drops after one cycle without BREADY (and comes back the next)."""

    def __init__(self, config):
        self._inner = RegFile(config)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        _passthrough(m, self, inner, skip={("mmio", "bvalid"), ("mmio", "bready")})
        waited = Signal()
        m.d.sync += waited.eq(inner.mmio.bvalid & ~self.mmio.bready & ~waited)
        m.d.comb += [self.mmio.bvalid.eq(inner.mmio.bvalid & ~waited),
                     inner.mmio.bready.eq(self.mmio.bready & ~waited)]
        return m


def _manager_channel(m, valid, ready, payload):
    """``valid`` and ``payload`` (bus inputs) driven by a free, legal manager."""
    held = Signal()
    m.d.sync += held.eq(valid & ~ready)
    m.d.comb += valid.eq(AnySeq(1))
    with m.If(held):
        m.d.comb += Assume(valid)
    for p in payload:
        old = Signal(len(p))
        m.d.sync += old.eq(p)
        m.d.comb += p.eq(AnySeq(len(p)))
        with m.If(held):
            m.d.comb += Assume(p == old)


def _held(m, valid, ready, payload):
    """Assert: once ``valid`` is high without ``ready``, it stays high with ``payload``."""
    was = Signal()
    m.d.sync += was.eq(valid & ~ready)
    with m.If(was):
        m.d.comb += Assert(valid)
    for p in payload:
        old = Signal(len(p))
        m.d.sync += old.eq(p)
        with m.If(was):
            m.d.comb += Assert(p == old)


def _known_words(config):
    """``{word index: 64-bit value}`` of the words whose read value is fixed:
    ``capabilities``, ``fctl`` (WSI=1; its upper half decodes nothing) and the first and last
    words of the page that decode no register (they read 0)."""
    decoded = {offset // 8 for offset in REGISTER_SIZE}
    free = [i for i in range(1 << 9) if i not in decoded]
    return {Offset.CAPABILITIES // 8: config.capabilities,
            Offset.FCTL // 8: bits.pack(FCTL, wsi=1),
            free[0]: 0, free[-1]: 0}


class AxiLiteSlaveHarness(Elaboratable):
    """The register file's AXI4-Lite port under a free legal manager, with the properties of
    the module docstring.

    Parameters
    ----------
    data_width : int
        ``Config.mmio_data_width`` (64, the default, or 32).
    mutant : bool
        Use :class:`BvalidDropped` instead of the real register file.
    """

    def __init__(self, *, data_width=64, mutant=False):
        self.config = Config(mmio_data_width=data_width)
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        cls = BvalidDropped if self.mutant else RegFile
        m.submodules.dut = dut = cls(cfg)
        bus = dut.mmio
        dw = cfg.mmio_data_width

        # --- Free neighbours: every input that is not the bus.
        for path, member, value in dut.signature.flatten(dut):
            if path[0] != "mmio" and member.flow != Out:
                value = Value.cast(value)
                m.d.comb += value.eq(AnySeq(len(value)))

        # --- The legal manager.
        _manager_channel(m, bus.awvalid, bus.awready, [bus.awaddr, bus.awprot])
        _manager_channel(m, bus.wvalid, bus.wready, [bus.wdata, bus.wstrb])
        _manager_channel(m, bus.arvalid, bus.arready, [bus.araddr, bus.arprot])
        m.d.comb += [bus.bready.eq(AnySeq(1)), bus.rready.eq(AnySeq(1))]

        aw_hs = bus.awvalid & bus.awready
        w_hs = bus.wvalid & bus.wready
        b_hs = bus.bvalid & bus.bready
        ar_hs = bus.arvalid & bus.arready
        r_hs = bus.rvalid & bus.rready

        # Outstanding counts: accepted minus answered (2 bits: property 4 keeps them at 1).
        aw_out, w_out, ar_out = Signal(2), Signal(2), Signal(2)
        m.d.sync += [aw_out.eq(aw_out + aw_hs - b_hs), w_out.eq(w_out + w_hs - b_hs),
                     ar_out.eq(ar_out + ar_hs - r_hs)]
        owed_b = (aw_out != 0) & (w_out != 0)
        owed_r = ar_out != 0

        # Property 1.
        _held(m, bus.bvalid, bus.bready, [Value.cast(bus.bresp)])
        _held(m, bus.rvalid, bus.rready, [Value.cast(bus.rresp), bus.rdata])
        # Property 2 and 3.
        m.d.comb += [Assert(bus.bvalid == owed_b), Assert(bus.rvalid == owed_r)]
        # Property 4.
        m.d.comb += [Assert(aw_out == w_out), Assert(aw_out <= 1), Assert(ar_out <= 1)]
        r_index, r_half = Signal(9), Signal()
        with m.If(ar_hs):
            m.d.sync += [r_index.eq(bus.araddr[3:12]), r_half.eq(bus.araddr[2])]
        for index, word in _known_words(cfg).items():
            with m.If(bus.rvalid & (r_index == index)):
                if dw == 64:
                    m.d.comb += Assert(bus.rdata == Const(word, 64))
                else:
                    lo, hi = Const(word & 0xFFFF_FFFF, 32), Const(word >> 32, 32)
                    with m.If(r_half):
                        m.d.comb += Assert(bus.rdata == hi)
                    with m.Else():
                        m.d.comb += Assert(bus.rdata == lo)
        # Property 5.
        with m.If(bus.bvalid):
            m.d.comb += Assert(Value.cast(bus.bresp) == Resp.OKAY)
        with m.If(bus.rvalid):
            m.d.comb += Assert(Value.cast(bus.rresp) == Resp.OKAY)

        # Covers.
        aw_first, stalled_b, stalled_r = Signal(), Signal(), Signal()
        with m.If(bus.awvalid & ~bus.wvalid):
            m.d.sync += aw_first.eq(1)
        with m.If(b_hs):
            m.d.sync += aw_first.eq(0)
        m.d.sync += [stalled_b.eq(bus.bvalid & ~bus.bready),
                     stalled_r.eq(bus.rvalid & ~bus.rready)]
        # Full rate: a response two cycles after the last (take, answer, take, answer).
        r_done, b_done = Signal(2), Signal(2)
        m.d.sync += [r_done.eq(Cat(r_hs, r_done[0])), b_done.eq(Cat(b_hs, b_done[0]))]
        m.d.comb += [
            Cover(b_hs),
            Cover(r_hs & (r_index == Offset.CAPABILITIES // 8) & (bus.rdata != 0)),
            Cover(b_hs & stalled_b),
            Cover(r_hs & stalled_r),
            Cover(b_hs & aw_first),
            Cover(r_hs & r_done[1]),
            Cover(b_hs & b_done[1]),
        ]
        return m
