"""iogate.hdl.iommu with the performance monitor: what each event counts, end to end.

Decision 10 of issue 17 (HPM) says what one event is; the expected counts below follow from
the spec's walks ("Process to locate the Device-context", the Privileged spec's Sv39 walk and
"Two-Stage Address Translation"), worked by hand:

* a 3LVL directory (spec "Process to translate an IOVA" step 3): device_id 0x01_0205 has
  DDI[2] = 0x01, DDI[1] = 0x04, DDI[0] = 0x05; a cold device reads the two DDTEs and its DC:
  3 DDT_WALK events (one per table read, reference N.9 P17);
* an Sv39 miss reads 3 PTEs (3 S1_WALK) and is one IOATC_MISS; the same page again is an
  IOTLB hit: no IOATC_MISS, no read;
* Sv39 over Sv39x4 (all 4 KiB pages): each of the 3 first-stage PTEs' GPAs is translated by a
  3-level second-stage walk before it is read, then the leaf's GPA: 3 S1_WALK and
  3 * 3 + 3 = 12 S2_WALK;
* second stage alone: 3 S2_WALK.

Registers: ddtp 0x10 (3LVL = 4), iohpmctrX 0x68 + 8(X-1), iohpmevtX 0x160 + 8(X-1) (eventID
14:0, DMASK 15, PID_PSCID 35:16, DID_GSCID 59:36, PV_PSCV 60, DV_GSCV 61, IDT 62),
tr_req_iova 0x258, tr_req_ctl 0x260 (Go 0, NW 3, PID 31:12, PV 32, DID 63:40). A DDTE is
V (bit 0) | PPN << 10; DC: tc, iohgatp (MODE 63:60, Sv39x4 = 8; GSCID 59:44; PPN), ta (PSCID
31:12), fsc (MODE 63:60, Sv39 = 8; PPN).
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.port import Access

from test_hpm import ctr, evt, evt_value
from test_iommu import DDTP, IOVA, SV39, A, D, Harness, R, U, V, W, dc, pte, tables

LVL3 = 4
DDT_ROOT = 0x100
DEV = 0x01_0205           # DDI[2] 1, DDI[1] 4, DDI[0] 5
NESTED = 0x01_0206        # the same tables, DDI[0] 6
GONLY = 0x01_0207
OTHER = 0x01_0285         # DDI[1] 5: its own level-1 entry
SV39X4 = 8 << 60
G_ROOT = 0x600            # 16 KiB second-stage root
GSCID = 0x2A
PSCID = 7
OTHER_PSCID = 8
LEAF_GPPN, LEAF_SPPN = 0x12345, 0x54321
EVENTS = {"untranslated": 1, "miss": 2, "ddt": 3, "pdt": 4, "s1": 5, "s2": 6, "filtered": 7}


def directory():
    """The 3LVL directory of DEV, NESTED, GONLY (DDI[1] 4) and OTHER (DDI[1] 5)."""
    mem = {(DDT_ROOT << 12) + 1 * 8: pte(0x110, V),
           0x11_0000 + 4 * 8: pte(0x120, V), 0x11_0000 + 5 * 8: pte(0x130, V)}

    def put(table, ddi0, words):
        for k, word in enumerate(words):
            mem[(table << 12) + ddi0 * 32 + 8 * k] = word
    sv39 = dc(ta=PSCID << 12, fsc=SV39 | 0x200)
    put(0x120, 5, sv39)
    put(0x120, 6, dc(iohgatp=SV39X4 | GSCID << 44 | G_ROOT, ta=PSCID << 12,
                     fsc=SV39 | 0x200))
    put(0x120, 7, dc(iohgatp=SV39X4 | GSCID << 44 | G_ROOT))
    put(0x130, 5, dc(ta=OTHER_PSCID << 12, fsc=SV39 | 0x200))
    return mem


def g_map(mem, gppn, sppn, alloc):
    """Map guest page ``gppn`` to ``sppn`` in the Sv39x4 tables at G_ROOT, 4 KiB leaf."""
    table = G_ROOT << 12
    for level, bits in ((2, 11), (1, 9)):
        addr = table + ((gppn >> (9 * level)) & ((1 << bits) - 1)) * 8
        if addr not in mem:
            mem[addr] = pte(alloc.pop(0), V)
        table = (mem[addr] >> 10) << 12
    mem[table + (gppn & 0x1FF) * 8] = pte(sppn, V | R | W | U | A | D)


def memory():
    mem = directory()
    mem.update(tables(pte(LEAF_GPPN, V | R | W | U | A | D)))
    alloc = [0x700, 0x701, 0x702, 0x703]
    for page in (0x200, 0x201, 0x202):           # the first-stage tables: GPA = SPA
        g_map(mem, page, page, alloc)
    g_map(mem, LEAF_GPPN, LEAF_SPPN, alloc)
    return mem


async def program(ctx, h, filtered=0):
    await h.mmio_write(ctx, DDTP, LVL3 | DDT_ROOT << 10)
    for name, event_id in (("untranslated", 1), ("miss", 4), ("ddt", 5), ("pdt", 6),
                           ("s1", 7), ("s2", 8)):
        await h.mmio_write(ctx, evt(EVENTS[name]), evt_value(event_id))
    await h.mmio_write(ctx, evt(EVENTS["filtered"]), filtered)


async def counts(ctx, h):
    await ctx.tick().repeat(4)
    return {name: await h.mmio_read(ctx, ctr(x)) for name, x in EVENTS.items()}


def expect(**changes):
    out = dict.fromkeys(EVENTS, 0)
    out.update(changes)
    return out


def run(body, config=None):
    Harness(config or Config.hpm(), memory=memory()).run(body)


def test_cold_device_then_hit():
    async def body(ctx, h):
        await program(ctx, h)
        resp, reads = await h.translate(ctx, DEV, IOVA)
        assert resp["fault"] == 0 and resp["ppn"] == LEAF_GPPN
        assert len(reads) == 2 + 4 + 3             # 2 DDTEs, the DC's 4 doublewords, 3 PTEs
        assert await counts(ctx, h) == expect(untranslated=1, miss=1, ddt=3, s1=3)
        # The same page again: a hit.
        resp, reads = await h.translate(ctx, DEV, IOVA + 0x10)
        assert resp["hit"] == 1 and reads == []
        assert await counts(ctx, h) == expect(untranslated=2, miss=1, ddt=3, s1=3)
        # Execute: the hit does not grant it, so the request walks (and page-faults).
        resp, _ = await h.translate(ctx, DEV, IOVA, Access.EXECUTE)
        assert resp["fault"] == 1
        assert await counts(ctx, h) == expect(untranslated=3, miss=2, ddt=3, s1=6)
    run(body)


def test_nested_walk():
    async def body(ctx, h):
        await program(ctx, h)
        resp, reads = await h.translate(ctx, NESTED, IOVA)
        assert resp["fault"] == 0 and resp["ppn"] == LEAF_SPPN
        assert await counts(ctx, h) == expect(untranslated=1, miss=1, ddt=3, s1=3, s2=12)
        resp, _ = await h.translate(ctx, GONLY, 0x20_1008)
        assert resp["fault"] == 0 and resp["ppn"] == 0x201
        # A DC read: the DDTEs of the path are read again (no DDTE cache), 3 more.
        assert await counts(ctx, h) == expect(untranslated=2, miss=2, ddt=6, s1=3, s2=15)
    run(body)


def test_requests_never_looked_up():
    """Off and Bare, and a device_id's DC-less faults, count only UNTRANSLATED_REQ (decision
    10: whatever its outcome); the debug interface's requests count too."""
    async def body(ctx, h):
        await h.mmio_write(ctx, evt(1), evt_value(1))
        await h.mmio_write(ctx, evt(2), evt_value(4))
        resp, _ = await h.translate(ctx, DEV, IOVA)              # Off: 256
        assert resp["cause"] == 256
        await h.mmio_write(ctx, DDTP, 1)                         # Bare
        await h.translate(ctx, DEV, IOVA)
        await h.mmio_write(ctx, 0x258, IOVA & ~0xFFF)
        await h.mmio_write(ctx, 0x260, DEV << 40 | 1 << 3 | 1)   # Go, NW: a read
        for _ in range(50):
            if not await h.mmio_read(ctx, 0x260) & 1:
                break
        await ctx.tick().repeat(4)
        assert await h.mmio_read(ctx, ctr(1)) == 3
        assert await h.mmio_read(ctx, ctr(2)) == 0
    run(body)


@pytest.mark.parametrize("filtered, expected", [
    # IDT=0, device_id: only DEV's requests.
    (evt_value(1, dv_gscv=1, did_gscid=DEV), 2),
    # DMASK: 0x01_0207 = ...0111 ignores bits 3:0: DEV (twice), NESTED, GONLY, not OTHER.
    (evt_value(1, dv_gscv=1, dmask=1, did_gscid=0x01_0207), 4),
    # IDT=1 GSCID on S2 reads: NESTED's 12 and GONLY's 3.
    (evt_value(8, idt=1, dv_gscv=1, did_gscid=GSCID), 15),
    (evt_value(8, idt=1, dv_gscv=1, did_gscid=GSCID + 1), 0),
    # IDT=1 PSCID on S1 reads: DEV and NESTED have a first stage with PSCID 7 (OTHER 8).
    (evt_value(7, idt=1, pv_pscv=1, pid_pscid=PSCID), 6),
    (evt_value(7, idt=1, pv_pscv=1, pid_pscid=OTHER_PSCID), 3),
    # IDT=1 PSCID on IOATC misses: GONLY's first stage is Bare (no PSCID).
    (evt_value(4, idt=1, pv_pscv=1, pid_pscid=PSCID), 2),
    (evt_value(4, idt=1, dv_gscv=1, did_gscid=GSCID), 2),
    # IDT=1 on DDT walks: never.
    (evt_value(5, idt=1), 0),
    # PV_PSCV=1 with IDT=0: none of these requests carries a PASID.
    (evt_value(1, pv_pscv=1, pid_pscid=0), 0),
])
def test_filters(filtered, expected):
    """Spec table "iohpmevt filtering" on the identities of decision 11."""
    async def body(ctx, h):
        await program(ctx, h, filtered)
        for device, iova in ((DEV, IOVA), (OTHER, IOVA), (NESTED, IOVA), (GONLY, 0x20_1008),
                             (DEV, IOVA)):
            resp, _ = await h.translate(ctx, device, iova)
            assert resp["fault"] == 0
        assert (await counts(ctx, h))["filtered"] == expected
    run(body)


def test_debug_request_with_pasid():
    """The debug interface's request with PV=1 (a fault: PDTV=0) counts under a PV_PSCV
    filter with its PID (decision 11: the request carries a process_id)."""
    async def body(ctx, h):
        await program(ctx, h, evt_value(1, pv_pscv=1, pid_pscid=0x123))
        for pid in (0x123, 0x124):
            await h.mmio_write(ctx, 0x258, IOVA & ~0xFFF)
            await h.mmio_write(ctx, 0x260, DEV << 40 | 1 << 32 | pid << 12 | 1 << 3 | 1)
            for _ in range(50):
                if not await h.mmio_read(ctx, 0x260) & 1:
                    break
        got = await counts(ctx, h)
        assert got["untranslated"] == 2 and got["filtered"] == 1
    run(body)


def test_no_hpm_reads_0_in_the_iommu():
    """Decision 1: Config.hpm_counters=0 leaves 0x58..0x257 reading 0, writes ignored."""
    async def body(ctx, h):
        for offset in range(0x58, 0x258, 8):
            await h.mmio_write(ctx, offset, (1 << 64) - 1)
        await h.translate(ctx, DEV, IOVA)
        for offset in range(0x58, 0x258, 8):
            assert await h.mmio_read(ctx, offset) == 0, hex(offset)
    run(body, Config.full())


def test_pmip_as_msi():
    """Decision 5: with MSIs (fctl.WSI=0, IGS=BOTH after reset) each 0->1 of ipsr.pmip is one
    MSI through msi_cfg_tbl[icvec.pmiv]; pmip staying 1 (OF still 1, pmip not cleared) sends
    nothing more. msi_cfg_tbl entry x: msi_addr 0x300 + 16x, msi_data + 8, msi_vec_ctl + 12
    (M bit 0); icvec.pmiv 11:8; ipsr.pmip bit 2; iohpmcycles 0x60 (OF 63)."""
    async def body(ctx, h):
        entry = 0x300 + 16 * 3
        await h.mmio_write(ctx, entry, 0x1000_0040)
        await h.mmio_write32(ctx, entry + 8, 0xCAFE)
        await h.mmio_write32(ctx, entry + 12, 0)                 # M=0
        await h.mmio_write32(ctx, 0x2F8, 3 << 8)                 # pmiv = 3
        for _ in range(2):
            await h.mmio_write(ctx, 0x60, (1 << 40) - 40)        # OF 0, 40 cycles to wrap
            await ctx.tick().repeat(80)
            assert await h.mmio_read32(ctx, 0x54) == 0b100
            await h.mmio_write32(ctx, 0x54, 0b100)               # clear pmip
        await ctx.tick().repeat(20)
        msis = [(addr, data >> (32 * (addr >> 2 & 1)) & 0xFFFF_FFFF)
                for addr, _, data, _ in h.writes if addr == 0x1000_0040]
        assert msis == [(0x1000_0040, 0xCAFE)] * 2
    run(body, Config.msi().replace(hpm_counters=1))


# Process contexts (Config.process(): PD8/PD17/PD20): DEV's DC has PDTV=1 (tc bit 5) and
# pdtp PD17 (fsc MODE 2) at PPN 0x300. process_id 0x15A: PDI[1] = 0x1 indexes the PDTE at
# 0x30_0008 (-> PPN 0x310), PDI[0] = 0x5A the 16-byte PC at 0x31_05A0 (ta: V, PSCID 9 at
# 31:12; fsc: Sv39, root 0x200). GET_PC reads the PDTE and the PC: 2 PDT_WALK events.
PDTV = 1 << 5
PD17 = 2 << 60
PID = 0x15A
PC = 0x31_0000 + 0x5A * 16


def process_memory():
    mem = memory()
    base = 0x12_0000 + 5 * 32
    mem.update({base: V | PDTV, base + 16: 0, base + 24: PD17 | 0x300,
                0x30_0000 + 1 * 8: pte(0x310, V), PC: V | 9 << 12, PC + 8: SV39 | 0x200})
    return mem


async def send(ctx, h, *, pid, pv=1):
    """One port-0 request from DEV with a PASID; its response."""
    port = h.dut.tr[0].req
    n = len(h.responses)
    ctx.set(port.payload, {"tag": 0, "device_id": DEV, "iova": IOVA, "access": Access.READ,
                           "pv": pv, "pid": pid, "priv": 0})
    ctx.set(port.valid, 1)
    await h.tick_until(ctx, port.ready)
    ctx.set(port.valid, 0)
    while len(h.responses) == n:
        await ctx.tick()
    return h.responses[n][1]


@pytest.mark.parametrize("filtered, expected", [
    (evt_value(0), 0),
    # PDT_WALK for the request's process_id (IDT=0, PV_PSCV).
    (evt_value(6, pv_pscv=1, pid_pscid=PID), 2),
    (evt_value(6, pv_pscv=1, pid_pscid=PID + 1), 0),
    # S1_WALK under the PC's PSCID (IDT=1).
    (evt_value(7, idt=1, pv_pscv=1, pid_pscid=9), 3),
    (evt_value(7, idt=1, pv_pscv=1, pid_pscid=PSCID), 0),
    # UNTRANSLATED_REQ with the PASID: the first two requests, not the one without.
    (evt_value(1, pv_pscv=1, pid_pscid=PID), 2),
])
def test_process_directory(filtered, expected):
    async def body(ctx, h):
        await program(ctx, h, filtered)
        resp = await send(ctx, h, pid=PID)
        assert resp["fault"] == 0 and resp["ppn"] == LEAF_GPPN
        assert (await send(ctx, h, pid=PID))["hit"] == 1    # PC cached, IOTLB hit
        got = await counts(ctx, h)
        assert got == dict(expect(untranslated=2, miss=1, ddt=3, pdt=2, s1=3),
                           filtered=expected)
        # Without a PASID on a DPE=0 DC: first stage Bare, second Bare: no PDT read.
        resp = await send(ctx, h, pid=0, pv=0)
        assert resp["fault"] == 0
        got = await counts(ctx, h)
        assert got["untranslated"] == 3 and got["pdt"] == 2
    h = Harness(Config.process().replace(hpm_counters=7), memory=process_memory())
    h.run(body)
