"""Formal harness of the IOTLB: invalidation never leaves a stale translation, and a hit
returns exactly its entry (spec "IOMMU Page-Table cache invalidation commands",
"Caching in-memory data structures").

The IOTLB (:class:`iogate.hdl.iotlb.IOTLB`) gets free fills, free invalidations and free
lookups (the translation pipeline and the command queue abstracted). A fill in the cycle of
an invalidation is dropped: that is the IOTLB's interface contract, which the pipeline
relies on (a walk overtaken by an invalidation does not fill), so the harness counts only
fills without one.

The solver picks one lookup key K (GV/GSCID, PSCV/PSCID, VPN) for the whole run. The only
entry that can answer K is the latest fill that covers K (a fill removes every entry a
lookup could confuse with it), and the harness keeps its tags and result. Properties:

1. **Invalidation**: once an invalidation is accepted whose scope, per the spec's tables,
   holds that entry, K misses until a new fill covers K. Scope of IOTINVAL.VMA (table
   "IOTINVAL.VMA operands"): first-stage entries (PSCV=1) of the host (GV=0) or of the VM
   GSCID (GV=1); AV=1 only the entry whose page holds ADDR (any address for an entry
   smaller than its first-stage leaf, ``partial``); PSCV=1 only PSCID and not global
   entries. IOTINVAL.GVMA: entries of VMs (GV=1); with GV=1 only GSCID; with AV=1 a
   second-stage-only entry only if its page holds the GPA, a two-stage entry always (its
   GPA is not kept). Invalidate-all: every entry.
2. **Hit correctness**: a hit for K returns the entry's permissions, PBMT, G and size, and
   the PPN of K's 4 KiB page: the entry's PPN above the page offset, K's VPN below it
   (superpages and 64 KiB NAPOT alike).

Covers: K invalidated and then missing, K refilled after an invalidation and hitting, a
hit on a NAPOT and on a global entry.

Size: 2 entries in one set, Sv39's 27-bit VPN. The property is about one key and the one
entry that can answer it; more entries only add entries that cannot answer K (their
removal on a clashing fill is what the property checks).
"""

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Const, Cover, Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import wiring

from iogate.hdl.iotlb import (
    IOTLB,
    iotlb_fill_layout,
    iotlb_inval_layout,
    iotlb_key_layout,
)

__all__ = ["IotlbHarness", "DroppedGvmaAv"]

#: VPN bits inside a page by PageSize (4 KiB, 64 KiB NAPOT, 2 MiB, 1 GiB, 512 GiB).
_OFFSET_BITS = {0: 0, 1: 4, 2: 9, 3: 18, 4: 27}


class DroppedGvmaAv(wiring.Component):
    """Mutant: the IOTLB never sees IOTINVAL.GVMA with AV=1."""

    def __init__(self, entries, ways, vpn_w):
        self._inner = IOTLB(entries, ways, vpn_w)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        m.d.comb += [inner.lookup_key.eq(self.lookup_key), self.lookup_hit.eq(inner.lookup_hit),
                     self.lookup_result.eq(inner.lookup_result),
                     inner.lookup_touch.eq(self.lookup_touch)]
        wiring.connect(m, wiring.flipped(self.fill), inner.fill)
        inv = self.inval.payload
        drop = (Value.cast(inv.kind) == 1) & inv.av
        m.d.comb += [inner.inval.payload.eq(inv), inner.inval.valid.eq(self.inval.valid & ~drop),
                     self.inval.ready.eq(1)]
        return m


def _mask(size, width):
    mask = Const(0, width)
    for s, bits in _OFFSET_BITS.items():
        with_bits = (1 << min(bits, width)) - 1
        mask = Mux(Value.cast(size) == s, with_bits, mask)
    return mask


class IotlbHarness(Elaboratable):
    """The IOTLB with free fills, invalidations and lookups, and the properties of the
    module docstring.

    Parameters
    ----------
    mutant : bool
        Use :class:`DroppedGvmaAv` instead of the real IOTLB.
    """

    ENTRIES, WAYS, VPN_W = 2, 2, 27

    def __init__(self, *, mutant=False):
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        vpn_w = self.VPN_W
        cls = DroppedGvmaAv if self.mutant else IOTLB
        m.submodules.dut = dut = cls(self.ENTRIES, self.WAYS, vpn_w)

        key = Signal(iotlb_key_layout(vpn_w))
        m.d.comb += key.eq(AnyConst(len(key.as_value())))
        lookup_k = Signal()
        m.d.comb += [lookup_k.eq(AnySeq(1)),
                     dut.lookup_key.eq(Mux(lookup_k, key.as_value(),
                                           AnySeq(len(key.as_value())))),
                     dut.lookup_touch.eq(AnySeq(1))]
        fl, iv = Signal(iotlb_fill_layout(vpn_w)), Signal(iotlb_inval_layout(vpn_w))
        m.d.comb += [fl.eq(AnySeq(len(fl.as_value()))), iv.eq(AnySeq(len(iv.as_value()))),
                     dut.fill.payload.eq(fl), dut.inval.payload.eq(iv),
                     dut.fill.valid.eq(AnySeq(1)), dut.inval.valid.eq(AnySeq(1))]
        fill = dut.fill.valid & ~dut.inval.valid
        inval = dut.inval.valid

        # --- Does the fill cover K (could a lookup of K hit the new entry)?
        fmask = _mask(fl.result.size, vpn_w)
        covers = ((fl.key.gv == key.gv) & (fl.key.gscid == key.gscid)
                  & (fl.key.pscv == key.pscv) & (fl.result.g | (fl.key.pscid == key.pscid))
                  & ((fl.key.vpn & ~fmask) == (key.vpn & ~fmask)))
        live = Signal()                      # an entry that can answer K exists
        ent = Signal(iotlb_fill_layout(vpn_w))
        with m.If(fill & covers):
            m.d.sync += [live.eq(1), ent.eq(fl)]

        # --- Is that entry in the invalidation's scope?
        emask = _mask(ent.result.size, vpn_w)
        holds = (iv.vpn & ~emask) == (ent.key.vpn & ~emask)
        vm = Mux(iv.gv, key.gv & (iv.gscid == key.gscid), ~key.gv)
        vma = (key.pscv & vm & (~iv.av | holds | ent.partial)
               & (~iv.pscv | ((iv.pscid == key.pscid) & ~ent.result.g)))
        gvma = key.gv & (~iv.gv | ((iv.gscid == key.gscid) & (~iv.av | key.pscv | holds)))
        kind = Value.cast(iv.kind)
        in_scope = Mux(kind == 0, vma, Mux(kind == 1, gvma, 1))
        with m.If(inval & in_scope):
            m.d.sync += live.eq(0)

        # Property 1.
        stale = lookup_k & ~live
        m.d.comb += Assert(~(stale & dut.lookup_hit))
        # Property 2.
        res = dut.lookup_result
        wide = _mask(ent.result.size, len(res.ppn))   # widened before ~, to the PPN
        ppn = (ent.result.ppn & ~wide) | (key.vpn & wide)
        with m.If(lookup_k & dut.lookup_hit):
            m.d.comb += [
                Assert(res.ppn == ppn), Assert(res.r == ent.result.r),
                Assert(res.w == ent.result.w), Assert(res.x == ent.result.x),
                Assert(Value.cast(res.pbmt) == Value.cast(ent.result.pbmt)),
                Assert(res.g == ent.result.g),
                Assert(Value.cast(res.size) == Value.cast(ent.result.size)),
            ]

        invalidated = Signal()
        with m.If(inval & in_scope & live):
            m.d.sync += invalidated.eq(1)
        m.d.comb += [
            Cover(invalidated & lookup_k & ~dut.lookup_hit),
            Cover(invalidated & lookup_k & dut.lookup_hit),
            Cover(lookup_k & dut.lookup_hit & (Value.cast(res.size) == 1)),
            Cover(lookup_k & dut.lookup_hit & res.g & key.pscv),
        ]
        return m
