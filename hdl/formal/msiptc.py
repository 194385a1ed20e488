"""Formal harness of the MSI PTE cache: IOTINVAL.GVMA never leaves a stale MSI PTE, IOTINVAL.VMA
and IODIR do not reach it, and a hit returns exactly the PTE last filled under its tag (spec
"IOMMU Page-Table cache invalidation commands", reference N.4.5, issue 16 decision 6).

The cache (:class:`iogate.hdl.msi_ptc.MsiPteCache`) gets free fills, free invalidations of
every kind with free operands, and free lookups. Its contract with the MSI page-table walker
is assumed: a fill is only of a tag that misses in that cycle (the walker fills after a miss,
and only one walk is in flight), and a fill in the cycle of an IOTINVAL.GVMA or an
invalidate-all is dropped by the cache itself, so the harness counts only fills without one.

The solver picks one tag K = (GSCID, guest page) for the whole run; the harness keeps the PTE
of K's latest fill. Properties:

1. **Invalidation**: once an invalidate-all, an IOTINVAL.GVMA with GV=0, with GV=1 and K's
   GSCID (AV=0), or with GV=1, AV=1, K's GSCID and K's page is accepted, K misses until a new
   fill of K. Nothing else (IOTINVAL.VMA, a GVMA of another GSCID or page) makes it miss.
2. **Hit correctness**: a hit for K returns the PTE of K's latest fill.

Property 1's second sentence is the "only GVMA" half of decision 6: an entry filled and not
invalidated in scope still hits (while no other fill has taken its slot: the harness tracks
fills of other tags and asserts the hit only while none has come since K's fill).

Covers: K invalidated and then missing; K refilled after an invalidation and hitting; K
hitting after an IOTINVAL.VMA.

Size: 2 entries, Config.msi()'s tag width (Sv48x4: 38 guest page bits) and MRIF PTEs.
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib import wiring

from iogate.hdl.iotlb import InvalKind
from iogate.hdl.msi_ptc import MsiPteCache, msi_pte_layout

__all__ = ["MsiPtcHarness", "DroppedGvmaAv"]

_WIDTH = 38          # Config.msi().mgpaw - 12 (Sv48x4)
_VPN_W = 38


class DroppedGvmaAv(wiring.Component):
    """Mutant: the cache never sees IOTINVAL.GVMA with AV=1 (one page of one GSCID)."""

    def __init__(self, **kw):
        self._inner = MsiPteCache(**kw)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        m.d.comb += [inner.lookup_gscid.eq(self.lookup_gscid),
                     inner.lookup_gpa.eq(self.lookup_gpa),
                     self.lookup_hit.eq(inner.lookup_hit), self.lookup_pte.eq(inner.lookup_pte)]
        wiring.connect(m, wiring.flipped(self.fill), inner.fill)
        i = self.inval
        page = (i.payload.kind == InvalKind.GVMA) & i.payload.gv & i.payload.av
        m.d.comb += [inner.inval.payload.eq(i.payload), inner.inval.valid.eq(i.valid & ~page),
                     i.ready.eq(1)]
        return m


class MsiPtcHarness(Elaboratable):
    """The MSI PTE cache with free fills, invalidations and lookups, and the properties of
    the module docstring.

    Parameters
    ----------
    mutant : bool
        Use :class:`DroppedGvmaAv` instead of the real cache.
    """

    ENTRIES = 2

    def __init__(self, *, mutant=False):
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        cls = DroppedGvmaAv if self.mutant else MsiPteCache
        m.submodules.dut = dut = cls(width=_WIDTH, mrif=True, entries=self.ENTRIES,
                                     vpn_w=_VPN_W)
        pte_l = msi_pte_layout(True)

        k_gscid, k_gpa = Signal(16), Signal(_WIDTH)
        m.d.comb += [k_gscid.eq(AnyConst(16)), k_gpa.eq(AnyConst(_WIDTH))]
        f, inv = dut.fill.payload, dut.inval.payload
        m.d.comb += [
            f.gscid.eq(AnySeq(16)), f.gpa.eq(AnySeq(_WIDTH)), f.pte.eq(AnySeq(pte_l.size)),
            inv.kind.eq(AnySeq(2)), inv.gv.eq(AnySeq(1)), inv.av.eq(AnySeq(1)),
            inv.pscv.eq(AnySeq(1)), inv.gscid.eq(AnySeq(16)), inv.pscid.eq(AnySeq(20)),
            inv.vpn.eq(AnySeq(_VPN_W)),
            dut.fill.valid.eq(AnySeq(1)), dut.inval.valid.eq(AnySeq(1)),
        ]
        m.d.comb += Assume(inv.kind.as_value() != 3)          # no such InvalKind

        # The walker's contract: a fill is of a tag that misses now. In a fill's cycle the
        # lookup port looks that tag up; otherwise it looks up K or any tag.
        lookup_k = Signal()
        m.d.comb += lookup_k.eq(~dut.fill.valid & AnySeq(1))
        m.d.comb += [
            dut.lookup_gscid.eq(Mux(dut.fill.valid, f.gscid, Mux(lookup_k, k_gscid, AnySeq(16)))),
            dut.lookup_gpa.eq(Mux(dut.fill.valid, f.gpa, Mux(lookup_k, k_gpa, AnySeq(_WIDTH)))),
        ]
        with m.If(dut.fill.valid):
            m.d.comb += Assume(~dut.lookup_hit)

        gvma = dut.inval.valid & ((inv.kind == InvalKind.GVMA) | (inv.kind == InvalKind.ALL))
        fill_taken = dut.fill.valid & ~gvma
        is_k = (f.gscid == k_gscid) & (f.gpa == k_gpa)
        fill_k = fill_taken & is_k

        live = Signal()          # K's latest fill may still be cached
        alone = Signal()         # ... and no fill of another tag has come since (it is cached)
        pte = Signal(pte_l)
        in_scope = dut.inval.valid & (
            (inv.kind == InvalKind.ALL)
            | ((inv.kind == InvalKind.GVMA)
               & (~inv.gv | ((inv.gscid == k_gscid) & (~inv.av | (inv.vpn[:_WIDTH] == k_gpa))))))
        with m.If(fill_k):
            m.d.sync += [live.eq(1), alone.eq(1), pte.eq(f.pte)]
        with m.Elif(fill_taken):
            m.d.sync += alone.eq(0)
        with m.If(in_scope):
            m.d.sync += [live.eq(0), alone.eq(0)]

        # Property 1: invalidated in scope, K misses.
        m.d.comb += Assert(~(lookup_k & ~live & dut.lookup_hit))
        # Property 1, second half: filled, not invalidated in scope, not evicted: K hits.
        m.d.comb += Assert(~(lookup_k & live & alone & ~dut.lookup_hit))
        # Property 2.
        with m.If(lookup_k & dut.lookup_hit):
            m.d.comb += Assert(dut.lookup_pte.as_value() == pte.as_value())

        invalidated = Signal()
        with m.If(in_scope & live):
            m.d.sync += invalidated.eq(1)
        vma_seen = Signal()
        with m.If(dut.inval.valid & (inv.kind == InvalKind.VMA) & live):
            m.d.sync += vma_seen.eq(1)
        m.d.comb += [Cover(invalidated & lookup_k & ~dut.lookup_hit),
                     Cover(invalidated & lookup_k & dut.lookup_hit),
                     Cover(vma_seen & lookup_k & dut.lookup_hit)]
        return m
