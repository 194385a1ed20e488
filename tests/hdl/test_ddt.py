"""iogate.hdl.ddt: the device-directory walker, the DC configuration checks, the DC cache.

Expected values come from the RISC-V IOMMU spec: the DC address ("Process to locate the
Device-context": ddtp.PPN * 4096 + DDI[0] * 32), the causes 257/258/259 ("Fault/Event-Queue (FQ)")
and the numbered list of "Device-context configuration checks" for an IOMMU whose capabilities say
ATS=T2GPA=AMO_HWAD=END=0, no PD8/PD17/PD20, no QOSID, Sv39 only, and whose fctl.BE/GXL are hardwired
to 0. DC bits are written as the spec's numbers: tc V=0, EN_ATS=1, EN_PRI=2, T2GPA=3, DTF=4, PDTV=5,
PRPR=6, GADE=7, SADE=8, DPE=9, SBE=10, SXL=11; iohgatp MODE 63:60; ta PSCID 31:12, RCID 51:40,
MCID 63:52; fsc PPN 43:0, MODE 63:60. 2LVL/3LVL: DDI[1] = device_id[15:7], DDI[2] =
device_id[23:16]; a non-leaf DDTE is V (bit 0), reserved 9:1, PPN 53:10, reserved 63:54
("Non-leaf DDT entry"), read at table + DDI[i]*8 ("Process to locate the Device-context").
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import bits
from iogate.hdl.ddt import DeviceContextCache, DeviceDirectoryWalker, ddtw_result_layout
from iogate.hdl.formats import DC, IohgatpMode, IosatpMode

TC_V, EN_ATS, EN_PRI, T2GPA, DTF, PDTV, PRPR, GADE, SADE, DPE, SBE, SXL = \
    (1 << i for i in range(12))
DDT_PPN = 0x100
SV39 = IosatpMode.SV39
LVL1, LVL2, LVL3 = 2, 3, 4


def mode(m):
    return m << 60


def walk(dc_words, device_id=0x45, *, errors=(), ddtp_ppn=DDT_PPN, pas=56,
         iosatp_modes=(SV39,), iohgatp_modes=(IohgatpMode.BARE,), mode=LVL1, levels=1,
         base=None, ddtes=None):
    """Walk for ``device_id`` with its DC (at ``base``) holding ``dc_words``, and the
    non-leaf entries ``ddtes`` ({address: DDTE}); (cause or None, dc, reads, base)."""
    dut = DeviceDirectoryWalker(pas=pas, iosatp_modes=iosatp_modes,
                                iohgatp_modes=iohgatp_modes, levels=levels)
    if base is None:
        base = (ddtp_ppn << 12) + (device_id & 0x7F) * 32
    memory = {base + 8 * k: word for k, word in enumerate(dc_words)}
    memory.update(ddtes or {})
    reads, results = [], []

    async def memory_model(ctx):
        while True:
            ctx.set(dut.mem.req.ready, 1)
            _, _, req, valid = await ctx.tick().sample(dut.mem.req.payload, dut.mem.req.valid)
            if not valid:
                continue
            ctx.set(dut.mem.req.ready, 0)
            reads.append(req.addr)
            ctx.set(dut.mem.resp.payload, {"data": memory.get(req.addr, 0),
                                           "err": req.addr in errors})
            ctx.set(dut.mem.resp.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.mem.resp.ready)
                if ready:
                    break
            ctx.set(dut.mem.resp.valid, 0)

    async def testbench(ctx):
        ctx.set(dut.start.payload, {"ddtp_ppn": ddtp_ppn, "mode": mode, "device_id": device_id})
        ctx.set(dut.start.valid, 1)
        await ctx.tick().until(dut.start.ready)
        ctx.set(dut.start.valid, 0)
        ctx.set(dut.result.ready, 1)
        res, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
        fields = bits.unpack(ddtw_result_layout(), res.as_value().value)
        results.append((fields["cause"] if fields["fault"] else None, fields["dc"]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(memory_model, background=True)
    sim.add_testbench(testbench)
    sim.run_until(1e-3)
    assert results, "the walker hung"
    return (*results[0], reads, base)


def test_reads_the_dc():
    words = [TC_V | DTF, 0, 7 << 12, mode(8) | 0x200]
    cause, dc, reads, base = walk(words, device_id=0x45)
    assert base == 0x10_0000 + 0x45 * 32 == 0x10_08A0
    assert reads == [0x10_08A0, 0x10_08A8, 0x10_08B0, 0x10_08B8]
    assert cause is None
    assert dc == words[0] | words[1] << 64 | words[2] << 128 | words[3] << 192


def test_not_valid_stops_after_tc():
    cause, _, reads, base = walk([0, 0, 0, 0])
    assert (cause, reads) == (258, [base])


@pytest.mark.parametrize("word", [0, 1, 3])
def test_load_access_fault(word):
    base = (DDT_PPN << 12) + 0x45 * 32
    cause, _, reads, _ = walk([TC_V, 0, 0, 0], errors={base + 8 * word})
    assert (cause, reads) == (257, [base + 8 * k for k in range(word + 1)])


def test_beyond_pas():
    # PAS=40 and a directory at PPN 1<<28 (byte address 2**40): no read, cause 257.
    cause, _, reads, _ = walk([TC_V, 0, 0, 0], ddtp_ppn=1 << 28, pas=40)
    assert (cause, reads) == (257, [])


# (name, [tc, iohgatp, ta, fsc], misconfigured)
DC_CHECKS = [
    ("plain", [TC_V, 0, 0, 0], False),
    ("sv39", [TC_V, 0, 0xFFFFF << 12, mode(8) | (1 << 44) - 1], False),
    ("dtf", [TC_V | DTF, 0, 0, 0], False),
    ("tc_custom_bits", [TC_V | 0xFF << 24, 0, 0, 0], False),
    ("pdtv_pdtp_bare", [TC_V | PDTV, 0, 0, 0], False),
    ("pdtv_dpe_pdtp_bare", [TC_V | PDTV | DPE, 0, 0, 0], False),
    ("iohgatp_bare_fields", [TC_V, 0xFFFF << 44 | 0x123, 0, 0], False),
    # 1: reserved bits and encodings.
    ("tc_bit_12", [TC_V | 1 << 12, 0, 0, 0], True),
    ("tc_bit_23", [TC_V | 1 << 23, 0, 0, 0], True),
    ("tc_bit_32", [TC_V | 1 << 32, 0, 0, 0], True),
    ("tc_bit_63", [TC_V | 1 << 63, 0, 0, 0], True),
    ("ta_bit_0", [TC_V, 0, 1, 0], True),
    ("ta_bit_11", [TC_V, 0, 1 << 11, 0], True),
    ("ta_bit_32", [TC_V, 0, 1 << 32, 0], True),
    ("ta_rcid_without_qosid", [TC_V, 0, 1 << 40, 0], True),
    ("ta_mcid_without_qosid", [TC_V, 0, 1 << 52, 0], True),
    ("fsc_bit_44", [TC_V, 0, 0, mode(8) | 1 << 44], True),
    ("fsc_bit_59", [TC_V, 0, 0, 1 << 59], True),
    ("fsc_reserved_mode_1", [TC_V, 0, 0, mode(1)], True),
    ("iohgatp_reserved_mode_1", [TC_V, mode(1), 0, 0], True),
    ("iohgatp_reserved_mode_11", [TC_V, mode(11), 0, 0], True),
    # 2-7: no ATS, no T2GPA.
    ("en_ats", [TC_V | EN_ATS, 0, 0, 0], True),
    ("en_pri", [TC_V | EN_ATS | EN_PRI, 0, 0, 0], True),
    ("prpr", [TC_V | PRPR, 0, 0, 0], True),
    ("t2gpa", [TC_V | T2GPA, 0, 0, 0], True),
    # 8: PDTV with a PDT mode not offered (PD8, PD17, PD20, reserved, custom).
    ("pdtv_pd8", [TC_V | PDTV, 0, 0, mode(1)], True),
    ("pdtv_pd17", [TC_V | PDTV, 0, 0, mode(2)], True),
    ("pdtv_pd20", [TC_V | PDTV, 0, 0, mode(3)], True),
    ("pdtv_custom", [TC_V | PDTV, 0, 0, mode(14)], True),
    # 9, 10: iosatp modes not offered.
    ("sv48", [TC_V, 0, 0, mode(9)], True),
    ("sv57", [TC_V, 0, 0, mode(10)], True),
    ("iosatp_custom", [TC_V, 0, 0, mode(14)], True),
    # 12: DPE without PDTV.
    ("dpe_without_pdtv", [TC_V | DPE, 0, 0, 0], True),
    # 13, 14: second stage not offered.
    ("sv39x4", [TC_V, mode(8), 0, 0], True),
    ("sv48x4", [TC_V, mode(9), 0, 0], True),
    ("sv57x4", [TC_V, mode(10), 0, 0], True),
    # 17: no AMO_HWAD.
    ("sade", [TC_V | SADE, 0, 0, 0], True),
    ("gade", [TC_V | GADE, 0, 0, 0], True),
    # 18, 20: END=0 and fctl.BE=0.
    ("sbe", [TC_V | SBE, 0, 0, 0], True),
    # 19: GXL=0 and not writable.
    ("sxl", [TC_V | SXL, 0, 0, 0], True),
]


@pytest.mark.parametrize("name, words, bad", DC_CHECKS, ids=[c[0] for c in DC_CHECKS])
def test_dc_configuration_checks(name, words, bad):
    cause, _, reads, _ = walk(words)
    assert cause == (259 if bad else None)
    assert len(reads) == 4


# The same checks for an IOMMU offering Sv39/Sv48 and Sv39x4/Sv48x4.
FULL_CHECKS = [
    ("sv48", [TC_V, 0, 0, mode(9)], False),
    ("sv39x4", [TC_V, mode(8) | 0x1234 << 44 | 0x90000, 0, 0], False),
    ("sv48x4", [TC_V, mode(9) | 0xA0000, 0, mode(9) | 0x100], False),
    ("sv57", [TC_V, 0, 0, mode(10)], True),
    ("sv57x4", [TC_V, mode(10), 0, 0], True),
    ("iohgatp_reserved_mode_7", [TC_V, mode(7), 0, 0], True),
    # 16: the second-stage root is 16 KiB: PPN[1:0] must be 0.
    ("sv39x4_root_ppn_bit_0", [TC_V, mode(8) | 0x90001, 0, 0], True),
    ("sv48x4_root_ppn_bit_1", [TC_V, mode(9) | 0x90002, 0, 0], True),
    # With iohgatp Bare the PPN is not a root: no alignment rule.
    ("bare_ppn_unaligned", [TC_V, 0x90003, 0, 0], False),
    ("gade", [TC_V | GADE, mode(8) | 0x90000, 0, 0], True),
]


@pytest.mark.parametrize("name, words, bad", FULL_CHECKS, ids=[c[0] for c in FULL_CHECKS])
def test_dc_configuration_checks_full(name, words, bad):
    cause, _, reads, _ = walk(words, iosatp_modes=(SV39, IosatpMode.SV48),
                              iohgatp_modes=(IohgatpMode.BARE, IohgatpMode.SV39X4,
                                             IohgatpMode.SV48X4), levels=3)
    assert cause == (259 if bad else None)
    assert len(reads) == 4


# --- 2LVL and 3LVL directories.
DC_WORDS = [TC_V | DTF, 0, 7 << 12, mode(8) | 0x200]
DC_VALUE = DC_WORDS[0] | DC_WORDS[1] << 64 | DC_WORDS[2] << 128 | DC_WORDS[3] << 192
# 2LVL, device 0xABCD: DDI[1] = 0x157 -> DDTE at 0x10_0000 + 0x157*8 = 0x10_0AB8, pointing
# at PPN 0x200; DDI[0] = 0x4D -> DC at 0x20_0000 + 0x4D*32 = 0x20_09A0.
DID2, DDTE2, DC2 = 0xABCD, 0x10_0AB8, 0x20_09A0
# 3LVL, device 0xAB_CDEF: DDI[2] = 0xAB -> 0x10_0558 (to PPN 0x200); DDI[1] = 0x19B ->
# 0x20_0CD8 (to PPN 0x300); DDI[0] = 0x6F -> DC at 0x30_0000 + 0x6F*32 = 0x30_0DE0.
DID3, DDTE3_2, DDTE3_1, DC3 = 0xAB_CDEF, 0x10_0558, 0x20_0CD8, 0x30_0DE0


def ddte(ppn, v=1, rsvd=0):
    return v | rsvd | ppn << 10


def dc_reads(base):
    return [base + 8 * k for k in range(4)]


def test_two_level():
    cause, dc, reads, _ = walk(DC_WORDS, DID2, mode=LVL2, levels=2, base=DC2,
                               ddtes={DDTE2: ddte(0x200)})
    assert (cause, dc) == (None, DC_VALUE)
    assert reads == [DDTE2] + dc_reads(DC2)


def test_three_level():
    cause, dc, reads, _ = walk(DC_WORDS, DID3, mode=LVL3, levels=3, base=DC3,
                               ddtes={DDTE3_2: ddte(0x200), DDTE3_1: ddte(0x300)})
    assert (cause, dc) == (None, DC_VALUE)
    assert reads == [DDTE3_2, DDTE3_1] + dc_reads(DC3)


@pytest.mark.parametrize("mode, levels", [(LVL1, 3), (LVL2, 3)])
def test_shallower_modes_of_a_deep_walker(mode, levels):
    # 1LVL on a 3-level walker reads the DC at DDI[0] directly; 2LVL reads one DDTE.
    if mode == LVL1:
        cause, dc, reads, base = walk(DC_WORDS, 0x45, mode=mode, levels=levels)
        assert reads == dc_reads(0x10_0000 + 0x45 * 32)
    else:
        cause, dc, reads, base = walk(DC_WORDS, DID2, mode=mode, levels=levels, base=DC2,
                                      ddtes={DDTE2: ddte(0x200)})
        assert reads == [DDTE2] + dc_reads(DC2)
    assert (cause, dc) == (None, DC_VALUE)


# (name, ddtes, errors, cause, reads) for the 3LVL device.
NON_LEAF = [
    ("l2_not_valid", {DDTE3_2: ddte(0x200, v=0)}, (), 258, [DDTE3_2]),
    ("l1_not_valid", {DDTE3_2: ddte(0x200), DDTE3_1: 0}, (), 258, [DDTE3_2, DDTE3_1]),
    # V=0 wins over reserved bits ("Process to locate the Device-context": step 5 before
    # step 6).
    ("not_valid_and_reserved", {DDTE3_2: ddte(0x200, v=0, rsvd=1 << 63)}, (), 258,
     [DDTE3_2]),
    ("reserved_bit_1", {DDTE3_2: ddte(0x200, rsvd=1 << 1)}, (), 259, [DDTE3_2]),
    ("reserved_bit_9", {DDTE3_2: ddte(0x200), DDTE3_1: ddte(0x300, rsvd=1 << 9)}, (), 259,
     [DDTE3_2, DDTE3_1]),
    ("reserved_bit_54", {DDTE3_2: ddte(0x200, rsvd=1 << 54)}, (), 259, [DDTE3_2]),
    ("reserved_bit_63", {DDTE3_2: ddte(0x200), DDTE3_1: ddte(0x300, rsvd=1 << 63)}, (), 259,
     [DDTE3_2, DDTE3_1]),
    ("l2_load_fault", {DDTE3_2: ddte(0x200)}, {DDTE3_2}, 257, [DDTE3_2]),
    ("l1_load_fault", {DDTE3_2: ddte(0x200), DDTE3_1: ddte(0x300)}, {DDTE3_1}, 257,
     [DDTE3_2, DDTE3_1]),
    ("dc_load_fault", {DDTE3_2: ddte(0x200), DDTE3_1: ddte(0x300)}, {DC3 + 8}, 257,
     [DDTE3_2, DDTE3_1, DC3, DC3 + 8]),
    ("dc_not_valid_after_ddtes", {DDTE3_2: ddte(0x200), DDTE3_1: ddte(0x300)}, (), 258,
     [DDTE3_2, DDTE3_1, DC3]),
]


@pytest.mark.parametrize("name, ddtes, errors, cause, reads", NON_LEAF,
                         ids=[c[0] for c in NON_LEAF])
def test_non_leaf_entries(name, ddtes, errors, cause, reads):
    words = [0, 0, 0, 0] if name == "dc_not_valid_after_ddtes" else DC_WORDS
    got, _, got_reads, _ = walk(words, DID3, mode=LVL3, levels=3, base=DC3, ddtes=ddtes,
                                errors=errors)
    assert (got, got_reads) == (cause, reads)


def test_non_leaf_beyond_pas():
    # PAS=40: a DDTE pointing at PPN 1<<28 (byte address 2**40) gives 257 without a read
    # of the next level.
    cause, _, reads, _ = walk(DC_WORDS, DID2, mode=LVL2, levels=2, pas=40, base=DC2,
                              ddtes={DDTE2: ddte(1 << 28)})
    assert (cause, reads) == (257, [DDTE2])


def test_sv39_not_offered():
    cause, _, _, _ = walk([TC_V, 0, 0, mode(8)], iosatp_modes=())
    assert cause == 259


# --- The device-context cache.

def dc_value(pscid):
    return DC.from_bits(bits.pack(DC, tc=1, ta=pscid << 12))


def run_cache(entries, body):
    dut = DeviceContextCache(entries)

    class Cache:
        def __init__(self, ctx):
            self.ctx = ctx

        async def fill(self, device_id, pscid):
            self.ctx.set(dut.fill.payload, {"device_id": device_id, "dc": dc_value(pscid)})
            self.ctx.set(dut.fill.valid, 1)
            await self.ctx.tick()
            self.ctx.set(dut.fill.valid, 0)

        async def inval(self, device_id=0, all=0):
            self.ctx.set(dut.inval.payload, {"all": all, "device_id": device_id})
            self.ctx.set(dut.inval.valid, 1)
            await self.ctx.tick()
            self.ctx.set(dut.inval.valid, 0)

        def lookup(self, device_id):
            """The cached DC's PSCID, or None on a miss."""
            self.ctx.set(dut.lookup_device_id, device_id)
            if not self.ctx.get(dut.lookup_hit):
                return None
            return (self.ctx.get(dut.lookup_dc).as_value().value >> (128 + 12)) & 0xFFFFF

        def contents(self, device_ids):
            return {d: self.lookup(d) for d in device_ids if self.lookup(d) is not None}

    done = []

    async def testbench(ctx):
        await body(ctx, Cache(ctx), dut)
        done.append(True)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert done


def test_cache_fill_lookup_and_replacement():
    # Four entries: devices 1..4 fill the free entries; 5 replaces the first (round
    # robin from entry 0), 6 the second; re-filling 3 replaces its own entry.
    async def body(ctx, cache, dut):
        assert cache.lookup(1) is None
        for did in (1, 2, 3, 4):
            await cache.fill(did, pscid=did)
        assert cache.contents(range(8)) == {1: 1, 2: 2, 3: 3, 4: 4}
        await cache.fill(5, pscid=5)
        assert cache.contents(range(8)) == {2: 2, 3: 3, 4: 4, 5: 5}
        await cache.fill(6, pscid=6)
        assert cache.contents(range(8)) == {3: 3, 4: 4, 5: 5, 6: 6}
        await cache.fill(3, pscid=33)
        assert cache.contents(range(8)) == {3: 33, 4: 4, 5: 5, 6: 6}
    run_cache(4, body)


def test_cache_invalidation():
    # IODIR.INVAL_DDT: DV=1 one device, DV=0 all; the freed entry is reused first.
    async def body(ctx, cache, dut):
        for did in (10, 11, 12):
            await cache.fill(did, pscid=did)
        await cache.inval(device_id=11)
        assert cache.contents(range(16)) == {10: 10, 12: 12}
        await cache.inval(device_id=13)
        assert cache.contents(range(16)) == {10: 10, 12: 12}
        await cache.fill(13, pscid=13)
        await cache.fill(14, pscid=14)
        assert cache.contents(range(16)) == {10: 10, 12: 12, 13: 13, 14: 14}
        await cache.inval(all=1)
        assert cache.contents(range(16)) == {}
    run_cache(4, body)


def test_cache_fill_dropped_with_invalidation():
    async def body(ctx, cache, dut):
        ctx.set(dut.fill.payload, {"device_id": 3, "dc": dc_value(3)})
        ctx.set(dut.fill.valid, 1)
        await cache.inval(device_id=9)
        ctx.set(dut.fill.valid, 0)
        assert cache.lookup(3) is None
    run_cache(2, body)


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"^entries must be a positive integer, not 0$"):
        DeviceContextCache(0)
    with pytest.raises(ValueError, match=r"^pas must be an integer between 32 and 56, "
                                         r"not 57$"):
        DeviceDirectoryWalker(pas=57, iosatp_modes=())
    with pytest.raises(ValueError, match=r"^levels must be 1, 2 or 3, not 4$"):
        DeviceDirectoryWalker(pas=56, iosatp_modes=(), levels=4)
