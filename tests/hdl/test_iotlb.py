"""iogate.hdl.iotlb: lookup by address space and page size, tree pseudo-LRU, IOTINVAL.

Expected values are worked by hand: page sizes from the Privileged spec (a 2 MiB page
keeps VPN[8:0] from the IOVA, 64 KiB NAPOT VPN[3:0], 1 GiB VPN[17:0], 512 GiB VPN[26:0]);
tags from the RISC-V IOMMU spec's caching rules (first stage by GSCID+PSCID+IOVA, or
PSCID+IOVA for the host; second-stage-only by GSCID+GPA); invalidation scopes from the
IOTINVAL.VMA/GVMA operand tables of spec "IOMMU Page-Table cache invalidation
commands"; the victim order from the tree-PLRU definition (a node bit 0 points at the lower half,
and an access points every node on its path away from the accessed way).
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl.iotlb import IOTLB, InvalKind, PageSize, plru_touch, plru_victim

K4, K64, M2, G1 = PageSize.SIZE_4K, PageSize.SIZE_64K, PageSize.SIZE_2M, PageSize.SIZE_1G
G512 = PageSize.SIZE_512G


def entry(vpn, ppn, *, pscid=0, gscid=0, gv=0, pscv=1, g=0, size=K4, r=1, w=1, x=0,
          pbmt=0):
    """An entry; first-stage (``pscv=1``) unless said otherwise."""
    return {"key": {"gv": gv, "gscid": gscid, "pscv": pscv, "pscid": pscid, "vpn": vpn},
            "result": {"ppn": ppn, "r": r, "w": w, "x": x, "pbmt": pbmt, "g": g,
                       "size": size}}


def key(vpn, *, pscid=0, gscid=0, gv=0, pscv=1):
    return {"gv": gv, "gscid": gscid, "pscv": pscv, "pscid": pscid, "vpn": vpn}


def run(dut, body):
    """Run ``body(ctx, tlb)`` against ``dut`` with a small driver object."""
    class Driver:
        def __init__(self, ctx):
            self.ctx = ctx

        async def fill(self, e):
            ctx = self.ctx
            ctx.set(dut.fill.payload, e)
            ctx.set(dut.fill.valid, 1)
            await ctx.tick()
            ctx.set(dut.fill.valid, 0)

        async def inval(self, kind, *, gv=0, av=0, pscv=0, gscid=0, pscid=0, vpn=0):
            ctx = self.ctx
            ctx.set(dut.inval.payload, {"kind": kind, "gv": gv, "av": av, "pscv": pscv,
                                        "gscid": gscid, "pscid": pscid, "vpn": vpn})
            ctx.set(dut.inval.valid, 1)
            await ctx.tick()
            ctx.set(dut.inval.valid, 0)

        def lookup(self, k):
            """(hit, ppn) of a lookup, without touching the pseudo-LRU."""
            self.ctx.set(dut.lookup_key, k)
            hit = self.ctx.get(dut.lookup_hit)
            ppn = self.ctx.get(dut.lookup_result).ppn
            return hit, ppn

        def result(self, k):
            self.ctx.set(dut.lookup_key, k)
            r = self.ctx.get(dut.lookup_result)
            return (self.ctx.get(dut.lookup_hit), r.ppn, r.r, r.w, r.x, r.pbmt, r.g, r.size)

        async def touch(self, k):
            ctx = self.ctx
            ctx.set(dut.lookup_key, k)
            assert ctx.get(dut.lookup_hit)
            ctx.set(dut.lookup_touch, 1)
            await ctx.tick()
            ctx.set(dut.lookup_touch, 0)

    done = []

    async def testbench(ctx):
        await body(ctx, Driver(ctx))
        done.append(True)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert done


def fa8():
    return IOTLB(8, 8, 27)


# --- Matching by address space and page size.

# (fill, lookup key, expected (hit, ppn))
MATCHES = [
    # 4 KiB: exact VPN, PSCID, GSCID and gv.
    (entry(0x12345, 0xABCDE, pscid=5), key(0x12345, pscid=5), (1, 0xABCDE)),
    (entry(0x12345, 0xABCDE, pscid=5), key(0x12345, pscid=6), (0, 0)),
    (entry(0x12345, 0xABCDE, pscid=5), key(0x12346, pscid=5), (0, 0)),
    (entry(0x12345, 0xABCDE, pscid=5), key(0x12345, pscid=5, gv=1), (0, 0)),
    (entry(0x12345, 0xABCDE, pscid=5, gv=1, gscid=3), key(0x12345, pscid=5, gv=1, gscid=3),
     (1, 0xABCDE)),
    (entry(0x12345, 0xABCDE, pscid=5, gv=1, gscid=3), key(0x12345, pscid=5, gv=1, gscid=4),
     (0, 0)),
    # Global: any PSCID of the same VM, but not another VM.
    (entry(0x12345, 0xABCDE, pscid=5, g=1), key(0x12345, pscid=9), (1, 0xABCDE)),
    (entry(0x12345, 0xABCDE, pscid=5, g=1), key(0x12345, pscid=9, gv=1), (0, 0)),
    # 2 MiB: filled from 4 KiB page 0x12345 -> 0x40145; the page spans VPN 0x12200-0x123FF.
    (entry(0x12345, 0x40145, size=M2), key(0x12200), (1, 0x40000)),
    (entry(0x12345, 0x40145, size=M2), key(0x123FF), (1, 0x401FF)),
    (entry(0x12345, 0x40145, size=M2), key(0x12400), (0, 0)),
    (entry(0x12345, 0x40145, size=M2), key(0x121FF), (0, 0)),
    # 64 KiB NAPOT: VPN 0x12340-0x1234F -> PPN 0x55550-0x5555F.
    (entry(0x12345, 0x55555, size=K64), key(0x12340), (1, 0x55550)),
    (entry(0x12345, 0x55555, size=K64), key(0x1234F), (1, 0x5555F)),
    (entry(0x12345, 0x55555, size=K64), key(0x12350), (0, 0)),
    # 1 GiB: VPN 0x00000-0x3FFFF -> PPN 0x80000-0xBFFFF.
    (entry(0x12345, 0x92345, size=G1), key(0x3FFFF), (1, 0xBFFFF)),
    (entry(0x12345, 0x92345, size=G1), key(0x00000), (1, 0x80000)),
    (entry(0x12345, 0x92345, size=G1), key(0x40000), (0, 0)),
    # A second-stage-only entry (first stage Bare: pscv=0, tagged by GSCID+GPA) answers
    # only lookups without a first stage, and never one with PSCID 0 under a first stage.
    (entry(0x12345, 0xABCDE, gv=1, gscid=3, pscv=0), key(0x12345, gv=1, gscid=3, pscv=0),
     (1, 0xABCDE)),
    (entry(0x12345, 0xABCDE, gv=1, gscid=3, pscv=0), key(0x12345, gv=1, gscid=3), (0, 0)),
    (entry(0x12345, 0xABCDE, gv=1, gscid=3), key(0x12345, gv=1, gscid=3, pscv=0), (0, 0)),
    (entry(0x12345, 0xABCDE, gv=1, gscid=3, pscv=0), key(0x12345, gv=1, gscid=4, pscv=0),
     (0, 0)),
    # A global first-stage entry is still not a second-stage-only one.
    (entry(0x12345, 0xABCDE, gv=1, gscid=3, g=1), key(0x12345, gv=1, gscid=3, pscv=0),
     (0, 0)),
]


@pytest.mark.parametrize("fill, k, expected", MATCHES)
def test_match(fill, k, expected):
    async def body(ctx, tlb):
        assert tlb.lookup(k) == (0, 0)
        await tlb.fill(fill)
        assert tlb.lookup(k) == expected
    run(fa8(), body)


# Wide tags (Sv48 and the x4 modes: 38 VPN bits). A 512 GiB page keeps VPN[26:0]:
# filled from 4 KiB page 0x9_0000_0123 -> 0x800_0123, it maps VPN 0x9_0000_0000 -
# 0x9_07FF_FFFF to PPN 0x800_0000 - 0xFFF_FFFF.
WIDE = [
    (entry(0x9_0000_0123, 0x800_0123, size=G512), key(0x9_07FF_FFFF), (1, 0xFFF_FFFF)),
    (entry(0x9_0000_0123, 0x800_0123, size=G512), key(0x9_0000_0000), (1, 0x800_0000)),
    (entry(0x9_0000_0123, 0x800_0123, size=G512), key(0x8_FFFF_FFFF), (0, 0)),
    (entry(0x9_0000_0123, 0x800_0123, size=G512), key(0x9_0800_0000), (0, 0)),
    # Bit 37 of the VPN (GPA bit 49 of Sv48x4) is part of the tag.
    (entry(0x20_0000_0005, 0x5, gv=1, gscid=1, pscv=0), key(0x20_0000_0005, gv=1, gscid=1,
                                                             pscv=0), (1, 0x5)),
    (entry(0x20_0000_0005, 0x5, gv=1, gscid=1, pscv=0), key(0x5, gv=1, gscid=1, pscv=0),
     (0, 0)),
    # A 1 GiB second-stage page of Sv39x4 high in the 41-bit GPA space (VPN[28:27] = 3).
    (entry(0x1800_0001, 0x4_0001, gv=1, gscid=1, pscv=0, size=G1),
     key(0x1803_FFFF, gv=1, gscid=1, pscv=0), (1, 0x7_FFFF)),
]


@pytest.mark.parametrize("fill, k, expected", WIDE)
def test_match_wide(fill, k, expected):
    async def body(ctx, tlb):
        await tlb.fill(fill)
        assert tlb.lookup(k) == expected
    run(IOTLB(8, 2, 38), body)


def test_result_fields():
    async def body(ctx, tlb):
        await tlb.fill(entry(0x7, 0x1234, pscid=1, r=1, w=0, x=1, pbmt=2, g=1, size=K4))
        assert tlb.result(key(0x7, pscid=1)) == (1, 0x1234, 1, 0, 1, 2, 1, K4)
    run(fa8(), body)


# --- Fills replace whatever a lookup could confuse with the new entry.

@pytest.mark.parametrize("first, second, k, ppn", [
    # Same page re-filled (a re-walk after a permission miss).
    (entry(5, 0x111, pscid=1, w=0), entry(5, 0x222, pscid=1), key(5, pscid=1), 0x222),
    # A 2 MiB page filled over a 4 KiB page inside it (a promotion).
    (entry(0x12345, 0xAAAAA), entry(0x12200, 0x40000, size=M2), key(0x12345), 0x40145),
    # A 4 KiB page filled inside a cached 2 MiB page (a demotion).
    (entry(0x12200, 0x40000, size=M2), entry(0x12345, 0xAAAAA), key(0x12345), 0xAAAAA),
    # A global page over another address space's page.
    (entry(3, 0x111, pscid=1), entry(3, 0x222, pscid=2, g=1), key(3, pscid=1), 0x222),
])
def test_fill_replaces_overlap(first, second, k, ppn):
    async def body(ctx, tlb):
        await tlb.fill(first)
        await tlb.fill(second)
        assert tlb.lookup(k) == (1, ppn)
    run(fa8(), body)


def test_refill_reuses_the_way():
    # Page 5 filled twice, then 7 more pages: all 8 fit, nothing evicted.
    async def body(ctx, tlb):
        await tlb.fill(entry(5, 0x105))
        await tlb.fill(entry(5, 0x205))
        for vpn in range(10, 17):
            await tlb.fill(entry(vpn, 0x100 + vpn))
        assert [tlb.lookup(key(v))[0] for v in [5, *range(10, 17)]] == [1] * 8
        assert tlb.lookup(key(5)) == (1, 0x205)
    run(fa8(), body)


# --- Replacement.

def test_plru_functions():
    # 8 ways, nodes 0..6: after touching ways 0..7 in order every bit is 0 -> way 0.
    state = 0
    for way in range(8):
        state = plru_touch(8, state, way)
    assert state == 0 and plru_victim(8, state) == 0
    # Touch 0: bits 0, 1, 2 point right -> the victim is in 4..7: way 4.
    state = plru_touch(8, state, 0)
    assert plru_victim(8, state) == 4
    state = plru_touch(8, state, 4)
    assert plru_victim(8, state) == 2
    state = plru_touch(8, state, 2)
    assert plru_victim(8, state) == 6
    # Two ways: one bit, the other way is always the victim.
    assert [plru_victim(2, plru_touch(2, 0, w)) for w in (0, 1)] == [1, 0]
    # Three ways (unbalanced tree {0,1} | {2}): touching 2 sends the victim left.
    assert plru_victim(3, plru_touch(3, plru_touch(3, 0, 0), 2)) == 1


def test_plru_replacement_order():
    # Fill pages 0..7 (ways 0..7, free ways first), use page 0, then fill 8, 9, 10:
    # the tree evicts pages 4, 2, 6 (true LRU would evict 1, 2, 3; FIFO 0, 1, 2).
    async def body(ctx, tlb):
        for vpn in range(8):
            await tlb.fill(entry(vpn, 0x100 + vpn))
        await tlb.touch(key(0))
        present = set(range(8))
        for new, evicted in [(8, 4), (9, 2), (10, 6)]:
            await tlb.fill(entry(new, 0x100 + new))
            present = (present - {evicted}) | {new}
            hits = {v for v in range(11) if tlb.lookup(key(v))[0]}
            assert hits == present, (new, evicted)
    run(fa8(), body)


def test_set_associative_placement():
    # 8 entries, 2 ways: 4 sets. A 4 KiB page goes to set VPN[1:0]; a 2 MiB page to
    # set VPN[10:9]. Pages 0, 4, 8 share set 0: the third evicts the least recent (0).
    async def body(ctx, tlb):
        for vpn in (0, 4, 1, 8):
            await tlb.fill(entry(vpn, 0x100 + vpn))
        assert {v for v in (0, 1, 4, 8) if tlb.lookup(key(v))[0]} == {1, 4, 8}
        # 2 MiB pages at VPN 0x400, 0xC00, 0x1400 all index set 2 (VPN[10:9] = 2).
        for vpn in (0x400, 0xC00, 0x1400):
            await tlb.fill(entry(vpn, vpn, size=M2))
        assert {v for v in (0x400, 0xC00, 0x1400) if tlb.lookup(key(v))[0]} == {0xC00, 0x1400}
        # Sets 0 and 1 were not disturbed.
        assert {v for v in (1, 4, 8) if tlb.lookup(key(v))[0]} == {1, 4, 8}
    run(IOTLB(8, 2, 27), body)


# --- Invalidation.

# The population: E1..E8 (no two of them clash on fill).
POPULATION = {
    "E1": entry(0x100, 0x1, pscid=1),
    "E2": entry(0x200, 0x2, pscid=1),
    "E3": entry(0x100, 0x3, pscid=2),
    "E4": entry(0x180, 0x4, pscid=3, g=1),
    "E5": entry(0x300, 0x5, pscid=2, g=1),
    "E6": entry(0x100, 0x6, pscid=1, gv=1, gscid=7),
    "E7": entry(0x100, 0x7, pscid=1, gv=1, gscid=8),
    "E8": entry(0x400, 0x8, pscid=1, size=M2),           # VPN 0x400-0x5FF
    # Second-stage only (GPA-tagged) in VM 7: same VPN as E6, which they must not clash with.
    "E9": entry(0x100, 0x9, gv=1, gscid=7, pscv=0),
    "E10": entry(0x800, 0xA, gv=1, gscid=7, pscv=0, size=M2),   # GPA page 0x800-0x9FF
}

VMA, GVMA, ALL = InvalKind.VMA, InvalKind.GVMA, InvalKind.ALL

# (operands, entries removed)
INVALIDATIONS = [
    # IOTINVAL.VMA, GV=0: host address spaces.
    (dict(kind=VMA), {"E1", "E2", "E3", "E4", "E5", "E8"}),
    (dict(kind=VMA, pscv=1, pscid=1), {"E1", "E2", "E8"}),
    (dict(kind=VMA, pscv=1, pscid=2), {"E3"}),                   # E5 is global
    (dict(kind=VMA, pscv=1, pscid=3), set()),                    # E4 is global
    (dict(kind=VMA, av=1, vpn=0x100), {"E1", "E3"}),
    (dict(kind=VMA, av=1, vpn=0x300), {"E5"}),                   # global included
    (dict(kind=VMA, av=1, vpn=0x4A5), {"E8"}),                   # inside the 2 MiB page
    (dict(kind=VMA, av=1, vpn=0x600), set()),
    (dict(kind=VMA, av=1, pscv=1, pscid=1, vpn=0x100), {"E1"}),
    (dict(kind=VMA, av=1, pscv=1, pscid=2, vpn=0x300), set()),   # global excluded
    (dict(kind=VMA, av=1, pscv=1, pscid=1, vpn=0x5FF), {"E8"}),
    # IOTINVAL.VMA, GV=1: the VM's first-stage address spaces only (E9, E10 have none).
    (dict(kind=VMA, gv=1, gscid=7), {"E6"}),
    (dict(kind=VMA, gv=1, gscid=9), set()),
    (dict(kind=VMA, gv=1, gscid=7, av=1, vpn=0x100, pscv=1, pscid=1), {"E6"}),
    (dict(kind=VMA, gv=1, gscid=7, av=1, vpn=0x100, pscv=1, pscid=2), set()),
    (dict(kind=VMA, gv=1, gscid=7, pscv=1, pscid=0), set()),
    (dict(kind=VMA, gv=1, gscid=8, av=1, vpn=0x200), set()),
    # IOTINVAL.GVMA: GV=0 every VM; GV=1 one GSCID. With AV=1 the two-stage entries of the
    # GSCID go (they are IOVA-tagged), second-stage-only ones if they hold the GPA.
    (dict(kind=GVMA), {"E6", "E7", "E9", "E10"}),
    (dict(kind=GVMA, gv=1, gscid=8), {"E7"}),
    (dict(kind=GVMA, gv=1, gscid=7), {"E6", "E9", "E10"}),
    (dict(kind=GVMA, gv=1, gscid=8, av=1, vpn=0x12345), {"E7"}),
    (dict(kind=GVMA, gv=1, gscid=7, av=1, vpn=0x100), {"E6", "E9"}),
    (dict(kind=GVMA, gv=1, gscid=7, av=1, vpn=0x9AB), {"E6", "E10"}),
    (dict(kind=GVMA, gv=1, gscid=7, av=1, vpn=0x12345), {"E6"}),
    (dict(kind=GVMA, gv=1, gscid=9), set()),
    # Invalidate-all.
    (dict(kind=ALL), set(POPULATION)),
]


@pytest.mark.parametrize("operands, removed", INVALIDATIONS,
                         ids=[f"{i:02}" for i in range(len(INVALIDATIONS))])
def test_invalidation(operands, removed):
    async def body(ctx, tlb):
        for e in POPULATION.values():
            await tlb.fill(e)
        assert all(tlb.lookup(e["key"])[0] for e in POPULATION.values())
        await tlb.inval(**operands)
        left = {name for name, e in POPULATION.items() if tlb.lookup(e["key"])[0]}
        assert left == set(POPULATION) - removed
    run(IOTLB(10, 10, 27), body)         # room for the whole population


def test_partial_entries_and_vma_with_address():
    # Two-stage 4 KiB entries of VM 7, PSCID 1: P is part of a larger first-stage leaf
    # (partial), Q is not. IOTINVAL.VMA AV=1 naming another page (0x1FF) removes P: the
    # address may lie in P's first-stage leaf. Q stays, and so does P for a VMA of
    # another address space.
    def fill(vpn, ppn, partial):
        return {**entry(vpn, ppn, pscid=1, gv=1, gscid=7), "partial": partial}

    async def body(ctx, tlb):
        async def population():
            await tlb.fill(fill(0x100, 0x1, 1))
            await tlb.fill(fill(0x180, 0x2, 0))

        def left():
            return {n for n, v in (("P", 0x100), ("Q", 0x180))
                    if tlb.lookup(key(v, pscid=1, gv=1, gscid=7))[0]}

        await population()
        await tlb.inval(VMA, gv=1, gscid=7, av=1, vpn=0x1FF)
        assert left() == {"Q"}
        await population()
        await tlb.inval(VMA, gv=1, gscid=7, av=1, pscv=1, pscid=1, vpn=0x1FF)
        assert left() == {"Q"}
        await population()
        await tlb.inval(VMA, gv=1, gscid=7, av=1, pscv=1, pscid=2, vpn=0x1FF)
        await tlb.inval(VMA, gv=1, gscid=8, av=1, vpn=0x1FF)
        await tlb.inval(VMA, av=1, vpn=0x1FF)
        assert left() == {"P", "Q"}
    run(fa8(), body)


def test_fill_dropped_with_invalidation_in_same_cycle():
    dut = fa8()

    async def body(ctx, tlb):
        await tlb.fill(entry(1, 0x1))
        ctx.set(dut.fill.payload, entry(2, 0x2))
        ctx.set(dut.fill.valid, 1)
        await tlb.inval(VMA, av=1, vpn=0x77)
        ctx.set(dut.fill.valid, 0)
        assert tlb.lookup(key(1)) == (1, 0x1)
        assert tlb.lookup(key(2)) == (0, 0)
    run(dut, body)


@pytest.mark.parametrize("args, exc, message", [
    ((8, 3, 27), ValueError, r"^entries \(8\) must be a positive multiple of ways \(3\)$"),
    ((12, 4, 27), ValueError, r"^entries / ways must be a power of two, not 3$"),
    ((8, 8, 20), ValueError, r"^vpn_w must be between 27 and 52, not 20$"),
    ((8.0, 8, 27), TypeError, r"^entries must be an integer, not 8.0$"),
])
def test_constructor_checks(args, exc, message):
    with pytest.raises(exc, match=message):
        IOTLB(*args)


def test_plru_victim_is_never_touched_way_and_vpn_width_from_modes():
    # One tree walk serves victim and touch: a touched way is never the next victim, for
    # balanced and unbalanced trees; vpn_width follows the modes' geometry.
    from iogate.hdl.config import Config
    from iogate.hdl.iotlb import vpn_width
    for ways in (2, 3, 4, 5, 8):
        for state in range(1 << (ways - 1)):
            for way in range(ways):
                assert plru_victim(ways, plru_touch(ways, state, way)) != way
    assert vpn_width(Config()) == 27
    assert vpn_width(Config(sv48=True)) == 36
    assert vpn_width(Config(sv39x4=True)) == 29
    assert vpn_width(Config(sv48=True, sv39x4=True, sv48x4=True)) == 38


# --- Sv57/Sv57x4 (Privileged spec "Sv57", "Two-Stage Address Translation"): a 47-bit VPN
# (Sv57x4's 59-bit GPA) and 256 TiB pages, which ignore the low 36 VPN bits.
T256 = PageSize.SIZE_256T
SIZES57 = (K4, K64, M2, G1, G512, T256)


def tlb57():
    return IOTLB(8, 2, 47, sizes=SIZES57)


WIDE57 = [
    # A 256 TiB page holds every 4 KiB page with the same VPN[46:36] (VPN[4] and the two
    # Sv57x4 root bits); the PPN's low 36 bits come from the address.
    (entry(0x50_0000_0000, 0x10_0000_0000, size=T256), key(0x5F_1234_5678),
     (1, 0x1F_1234_5678)),
    (entry(0x50_0000_0000, 0x10_0000_0000, size=T256), key(0x4F_1234_5678), (0, 0)),
    (entry(0x50_0000_0000, 0x10_0000_0000, size=T256), key(0x150_0000_0000), (0, 0)),
    # 512 GiB keeps VPN[35:27]: bit 35 (IOVA bit 47) is compared.
    (entry(0x58_0000_0000, 0x800_0000, size=G512), key(0x58_07FF_FFFF), (1, 0xFFF_FFFF)),
    (entry(0x58_0000_0000, 0x800_0000, size=G512), key(0x50_07FF_FFFF), (0, 0)),
    # VPN bits 46:45 (GPA bits 58:57 of Sv57x4, the root's extra index) are in the tag.
    (entry(0x6000_0000_0005, 0x5, gv=1, gscid=1, pscv=0),
     key(0x6000_0000_0005, gv=1, gscid=1, pscv=0), (1, 0x5)),
    (entry(0x6000_0000_0005, 0x5, gv=1, gscid=1, pscv=0),
     key(0x2000_0000_0005, gv=1, gscid=1, pscv=0), (0, 0)),
    (entry(0x4000_0000_0000, 0x10_0000_0000, gv=1, gscid=1, pscv=0, size=T256),
     key(0x400F_FFFF_FFFF, gv=1, gscid=1, pscv=0), (1, 0x1F_FFFF_FFFF)),
]


@pytest.mark.parametrize("fill, k, expected", WIDE57)
def test_match_sv57(fill, k, expected):
    async def body(ctx, tlb):
        await tlb.fill(fill)
        assert tlb.lookup(k) == expected
        assert tlb.result(k)[-1] == (fill["result"]["size"] if expected[0] else K4)
    run(tlb57(), body)


def test_sv57_fill_replaces_overlap_and_invalidation_above_bit_47():
    # A 256 TiB entry replaces a 4 KiB one inside it; IOTINVAL.VMA/GVMA with an address
    # above IOVA bit 47 (VPN bit 35) remove the entries that hold it and only those.
    async def body(ctx, tlb):
        await tlb.fill(entry(0x50_0000_0001, 0x1))
        await tlb.fill(entry(0x50_0000_0000, 0x10_0000_0000, size=T256))
        assert tlb.lookup(key(0x50_0000_0001)) == (1, 0x10_0000_0001)
        await tlb.fill(entry(0x60_0000_0001, 0x2))
        await tlb.fill(entry(0x6000_0000_0003, 0x3, gv=1, gscid=2, pscv=0))
        await tlb.inval(VMA, av=1, vpn=0x4F_FFFF_FFFF)      # below the 256 TiB page
        assert tlb.lookup(key(0x50_0000_0001))[0] == 1
        await tlb.inval(VMA, av=1, vpn=0x58_0000_0000)      # inside it (VPN bit 35 set)
        assert tlb.lookup(key(0x50_0000_0001)) == (0, 0)
        assert tlb.lookup(key(0x60_0000_0001)) == (1, 0x2)
        await tlb.inval(GVMA, gv=1, gscid=2, av=1, vpn=0x2000_0000_0003)  # bit 46 differs
        assert tlb.lookup(key(0x6000_0000_0003, gv=1, gscid=2, pscv=0)) == (1, 0x3)
        await tlb.inval(GVMA, gv=1, gscid=2, av=1, vpn=0x6000_0000_0003)
        assert tlb.lookup(key(0x6000_0000_0003, gv=1, gscid=2, pscv=0)) == (0, 0)
    run(tlb57(), body)


def test_sizes_and_vpn_width_of_sv57():
    from iogate.hdl.config import Config
    from iogate.hdl.iotlb import SV48_PAGE_SIZES, page_sizes, vpn_width
    assert vpn_width(Config(sv48=True, sv57=True)) == 45
    assert vpn_width(Config.full().replace(sv57=True, sv57x4=True)) == 47
    assert vpn_width(Config(sv39x4=True, sv48x4=True, sv57x4=True)) == 47
    assert page_sizes(Config.full()) == SV48_PAGE_SIZES == (K4, K64, M2, G1, G512)
    assert page_sizes(Config(sv48=True, sv57=True)) == SIZES57
    assert page_sizes(Config(sv39x4=True, sv48x4=True, sv57x4=True)) == SIZES57
    with pytest.raises(ValueError, match=r"^sizes must hold SIZE_4K"):
        IOTLB(8, 8, 27, sizes=(M2,))


def test_u_bit_kept_per_entry():
    # Built with `u` (process contexts), an entry returns the U bit it was filled with
    # (reference N.1.6: the pipeline checks it against each request's privilege).
    from iogate.hdl.iotlb import iotlb_result_layout
    assert "u" not in iotlb_result_layout().members
    assert "u" in iotlb_result_layout(u=True).members
    dut = IOTLB(8, 2, 27, u=True)

    def with_u(e, u):
        e["result"]["u"] = u
        return e

    async def body(ctx, tlb):
        await tlb.fill(with_u(entry(0x100, 0x1), 1))
        await tlb.fill(with_u(entry(0x200, 0x2, size=M2), 0))
        await tlb.fill(with_u(entry(0x300, 0x3, pscid=4), 1))
        for vpn, u in ((0x100, 1), (0x2FF, 0), (0x300, 0)):
            ctx.set(dut.lookup_key, key(vpn))
            assert ctx.get(dut.lookup_result).u == u, hex(vpn)
        ctx.set(dut.lookup_key, key(0x300, pscid=4))
        assert (ctx.get(dut.lookup_hit), ctx.get(dut.lookup_result).u) == (1, 1)
    run(dut, body)
