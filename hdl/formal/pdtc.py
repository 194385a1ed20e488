"""Formal harness of the process-context cache: IODIR never leaves a stale process context, and
a hit returns exactly the PC last filled under its tag (spec "IOMMU directory cache invalidation
commands", "Caching in-memory data structures"; reference N.1.7).

The cache (:class:`iogate.hdl.pdtc.ProcessContextCache`) gets free fills, free IODIR.INVAL_PDT
and IODIR.INVAL_DDT invalidations and free lookups. A fill in the cycle of an invalidation is
dropped (the interface contract the pipeline relies on: a walk overtaken by an invalidation
does not fill), so the harness counts only fills without one.

The solver picks one tag K = (device_id, process_id) for the whole run; the harness keeps
the PC of the latest fill of K. Properties:

1. **Invalidation**: once an IODIR.INVAL_PDT of K, an IODIR.INVAL_DDT of K's device (DV=1)
   or of all devices (DV=0) is accepted, K misses until a new fill of K.
2. **Hit correctness**: a hit for K returns the PC of K's latest fill.

Covers: K invalidated and then missing; K refilled after an invalidation and hitting.

Size: 2 entries. Every other entry is one that cannot answer K; two are enough for a fill
of another tag to take K's entry (round-robin) or a free one.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib import wiring

from iogate.hdl.formats import PC
from iogate.hdl.pdtc import ProcessContextCache

__all__ = ["PdtcHarness", "DroppedInvalAll"]


class DroppedInvalAll(wiring.Component):
    """Mutant: the cache never sees IODIR.INVAL_DDT with DV=0 (invalidate all)."""

    def __init__(self, entries):
        self._inner = ProcessContextCache(entries)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        m.d.comb += [inner.lookup_device_id.eq(self.lookup_device_id),
                     inner.lookup_pid.eq(self.lookup_pid),
                     self.lookup_hit.eq(inner.lookup_hit), self.lookup_pc.eq(inner.lookup_pc)]
        wiring.connect(m, wiring.flipped(self.fill), inner.fill)
        wiring.connect(m, wiring.flipped(self.pdt_inval), inner.pdt_inval)
        d = self.ddt_inval
        m.d.comb += [inner.ddt_inval.payload.eq(d.payload),
                     inner.ddt_inval.valid.eq(d.valid & ~d.payload.all), d.ready.eq(1)]
        return m


class PdtcHarness(Elaboratable):
    """The process-context cache with free fills, invalidations and lookups, and the
    properties of the module docstring.

    Parameters
    ----------
    mutant : bool
        Use :class:`DroppedInvalAll` instead of the real cache.
    """

    ENTRIES = 2

    def __init__(self, *, mutant=False):
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        cls = DroppedInvalAll if self.mutant else ProcessContextCache
        m.submodules.dut = dut = cls(self.ENTRIES)

        k_did, k_pid = Signal(24), Signal(20)
        m.d.comb += [k_did.eq(AnyConst(24)), k_pid.eq(AnyConst(20))]
        lookup_k = Signal()
        m.d.comb += [lookup_k.eq(AnySeq(1)),
                     dut.lookup_device_id.eq(Mux(lookup_k, k_did, AnySeq(24))),
                     dut.lookup_pid.eq(Mux(lookup_k, k_pid, AnySeq(20)))]
        f, pdt, ddt = dut.fill.payload, dut.pdt_inval.payload, dut.ddt_inval.payload
        m.d.comb += [
            f.device_id.eq(AnySeq(24)), f.pid.eq(AnySeq(20)), f.pc.eq(AnySeq(PC.size)),
            pdt.device_id.eq(AnySeq(24)), pdt.pid.eq(AnySeq(20)),
            ddt.all.eq(AnySeq(1)), ddt.device_id.eq(AnySeq(24)),
            dut.fill.valid.eq(AnySeq(1)), dut.pdt_inval.valid.eq(AnySeq(1)),
            dut.ddt_inval.valid.eq(AnySeq(1)),
        ]
        inval = dut.pdt_inval.valid | dut.ddt_inval.valid
        fill_k = dut.fill.valid & ~inval & (f.device_id == k_did) & (f.pid == k_pid)

        live = Signal()                      # K's latest fill may still be cached
        pc = Signal(PC)
        with m.If(fill_k):
            m.d.sync += [live.eq(1), pc.eq(f.pc)]
        in_scope = ((dut.pdt_inval.valid & (pdt.device_id == k_did) & (pdt.pid == k_pid))
                    | (dut.ddt_inval.valid & (ddt.all | (ddt.device_id == k_did))))
        with m.If(in_scope):
            m.d.sync += live.eq(0)

        # Property 1.
        m.d.comb += Assert(~(lookup_k & ~live & dut.lookup_hit))
        # Property 2.
        with m.If(lookup_k & dut.lookup_hit):
            m.d.comb += Assert(dut.lookup_pc.as_value() == pc.as_value())

        invalidated = Signal()
        with m.If(in_scope & live):
            m.d.sync += invalidated.eq(1)
        m.d.comb += [Cover(invalidated & lookup_k & ~dut.lookup_hit),
                     Cover(invalidated & lookup_k & dut.lookup_hit)]
        return m
