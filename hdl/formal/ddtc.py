"""Formal harness of the device-context cache: IODIR.INVAL_DDT never leaves a stale device
context, and a hit returns exactly the DC last filled for its device_id (spec "IOMMU directory
cache invalidation commands", "Caching in-memory data structures").

The cache (:class:`iogate.hdl.ddt.DeviceContextCache`) is its own component beside the DDT
walker: the walker (and the memory it reads) is abstracted as free fills of any device_id
with any DC, the command queue as free IODIR.INVAL_DDT invalidations (DV=0 all, DV=1 one
DID), the pipeline as free lookups. A fill in the cycle of an invalidation is dropped (the
interface contract the pipeline relies on: a walk overtaken by an invalidation does not
fill), so the harness counts only fills without one.

The solver picks one device_id K for the whole run; the harness keeps the DC of the latest
fill of K. Properties:

1. **Invalidation**: once an IODIR.INVAL_DDT with DV=0, or with DV=1 and DID = K, is
   accepted, K misses until a new fill of K.
2. **Hit correctness**: a hit for K returns the whole 256-bit DC of K's latest fill: the
   fields kept in flip-flops (TC, TA, the modes, GSCID) and those read from the entry
   memory (the PPNs, PSCID and the rest) alike.

Covers: K filled; an IODIR.INVAL_DDT with DV=0 and one with DV=1 for K accepted while K
is cached; K then missing; K refilled after
that invalidation and hitting.

Method: BMC to depth 6 (CI 4). k-induction, tried to depth 6, fails from unreachable states
(a valid entry tagged K whose DC is not the harness's copy of K's latest fill): the
invariant it needs is the link between the cache's valid bits, tags and entry memory and
the harness's copy, from inside the cache. Every change takes one cycle (a fill, an
IODIR.INVAL_DDT, a lookup), so 4 cycles hold fill, invalidate, refill and lookup, and 6
that with both entries filled first; the covers are reached by step 3.

Mutant: :class:`DroppedInvalDid` (IODIR.INVAL_DDT with DV=1 never reaches the cache): a
stale DC hits.

Size: 2 entries, so the DCs sit in the entry memory (a :class:`iogate.hdl.lutram.EntryRam`
of depth 2, read by the OR of the matching indices) and not in the one-entry register.
Every other entry is one that cannot answer K; two are enough for a fill of another
device_id to take K's entry (round-robin) or a free one.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib import wiring

from iogate.hdl.ddt import DeviceContextCache
from iogate.hdl.formats import DC

__all__ = ["DdtcHarness", "DroppedInvalDid"]


class DroppedInvalDid(wiring.Component):
    """Mutant: the cache never sees IODIR.INVAL_DDT with DV=1 (one DID)."""

    def __init__(self, entries):
        self._inner = DeviceContextCache(entries)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        m.d.comb += [inner.lookup_device_id.eq(self.lookup_device_id),
                     self.lookup_hit.eq(inner.lookup_hit), self.lookup_dc.eq(inner.lookup_dc)]
        wiring.connect(m, wiring.flipped(self.fill), inner.fill)
        inv = self.inval
        m.d.comb += [inner.inval.payload.eq(inv.payload),
                     inner.inval.valid.eq(inv.valid & inv.payload.all), inv.ready.eq(1)]
        return m


class DdtcHarness(Elaboratable):
    """The device-context cache with free fills, invalidations and lookups, and the
    properties of the module docstring.

    Parameters
    ----------
    mutant : bool
        Use :class:`DroppedInvalDid` instead of the real cache.
    """

    ENTRIES = 2

    def __init__(self, *, mutant=False):
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        cls = DroppedInvalDid if self.mutant else DeviceContextCache
        m.submodules.dut = dut = cls(self.ENTRIES)

        k = Signal(24)
        m.d.comb += k.eq(AnyConst(24))
        lookup_k = Signal()
        m.d.comb += [lookup_k.eq(AnySeq(1)),
                     dut.lookup_device_id.eq(Mux(lookup_k, k, AnySeq(24)))]
        f, inv = dut.fill.payload, dut.inval.payload
        m.d.comb += [
            f.device_id.eq(AnySeq(24)), f.dc.eq(AnySeq(DC.size)),
            inv.all.eq(AnySeq(1)), inv.device_id.eq(AnySeq(24)),
            dut.fill.valid.eq(AnySeq(1)), dut.inval.valid.eq(AnySeq(1)),
        ]
        # Both are always ready (the cache's contract); the harness relies on it.
        m.d.comb += Assert(dut.fill.ready & dut.inval.ready)
        fill_k = dut.fill.valid & ~dut.inval.valid & (f.device_id == k)

        live = Signal()                      # K's latest fill may still be cached
        dc = Signal(DC)
        with m.If(fill_k):
            m.d.sync += [live.eq(1), dc.eq(f.dc)]
        in_scope = dut.inval.valid & (inv.all | (inv.device_id == k))
        with m.If(in_scope):
            m.d.sync += live.eq(0)

        # Property 1.
        m.d.comb += Assert(~(lookup_k & ~live & dut.lookup_hit))
        # Property 2.
        with m.If(lookup_k & dut.lookup_hit):
            m.d.comb += Assert(dut.lookup_dc.as_value() == dc.as_value())

        filled, invalidated = Signal(), Signal()
        with m.If(fill_k):
            m.d.sync += filled.eq(1)
        with m.If(in_scope & live):
            m.d.sync += invalidated.eq(1)
        m.d.comb += [Cover(filled),
                     Cover(in_scope & live & inv.all),
                     Cover(in_scope & live & ~inv.all),
                     Cover(invalidated & lookup_k & ~dut.lookup_hit),
                     Cover(invalidated & lookup_k & dut.lookup_hit)]
        return m
