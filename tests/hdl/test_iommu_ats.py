"""iogate.hdl.iommu with Config.ats: Translated requests and ATS Translation Requests on the
ports, in the Amaranth simulator.

Expected values by hand from reference N.6.2 (the Translation Completion: R; W only without
No Write and with D=1; X only with Execute Requested; the size; G and Priv with a PASID;
page faults are a success with R=W=0 and no record), N.6.3 (Translated: T2GPA=0 grants the
address as presented, T2GPA=1 walks the second stage only with full checks) and D.4 (Bare
refuses both with 260, EN_ATS=0 with 260). The tables are test_iommu's: device 5 is Sv39
with PSCID 7, IOVA 0x4040_3123 walks 0x20_0008, 0x20_1010, 0x20_2018 to PPN 0x12345
(V R W U A D). Fault records: TTYP 5/6/7 Translated exec/read/write, 8 Translation Request.
"""

from iogate.hdl import Config
from iogate.hdl.port import Access, AtsKind

from test_iommu import (
    BARE,
    DDT_PPN,
    DDTP,
    FQT,
    IOVA,
    LVL1,
    PT_READS,
    SV39,
    A,
    D,
    Harness,
    R,
    U,
    V,
    W,
    dc,
    fq_record,
    init_queues,
    memory_with,
    pte,
    record,
    wait_fqt,
)

EN_ATS, T2GPA = 2, 8
UNTRANSLATED, TRANSLATED, ATS_REQUEST = (AtsKind.UNTRANSLATED, AtsKind.TRANSLATED,
                                         AtsKind.ATS_REQUEST)
ATS_DEVICES = {5: dc(tc=V | EN_ATS, ta=7 << 12, fsc=SV39 | 0x200),
               6: dc(ta=7 << 12, fsc=SV39 | 0x200)}


def completion(ppn, *, r=1, w=1, x=0, size_log2=12, g=0, priv=0, hit):
    # PBMT is not part of a completion: PMA (0).
    return dict(fault=0, cause=0, ppn=ppn, r=r, w=w, x=x, pbmt=0, size_log2=size_log2, g=g,
                priv=priv, hit=hit)


NO_PERMISSION = dict(fault=0, cause=0, ppn=0, r=0, w=0, x=0, pbmt=0, size_log2=12, g=0,
                     priv=0)


def refused(cause):
    return dict(fault=1, cause=cause, r=0, w=0, x=0, size_log2=0)


def check(resp, expected):
    assert {k: resp[k] for k in expected} == expected


async def ats(ctx, h, device_id, iova, kind, access=Access.READ, nw=0):
    """One request of ``kind``; its response and the reads it caused."""
    port = h.dut.tr[0].req
    before, n = len(h.reads), len(h.responses)
    ctx.set(port.payload, {"tag": 1, "device_id": device_id, "iova": iova, "access": access,
                           "kind": kind, "nw": nw})
    ctx.set(port.valid, 1)
    await h.tick_until(ctx, port.ready)
    ctx.set(port.valid, 0)
    while len(h.responses) == n:
        await ctx.tick()
        h.edge += 1
    return h.responses[n][1], h.reads[before:]


async def start(ctx, h, mode=LVL1):
    await h.mmio_write(ctx, DDTP, mode | DDT_PPN << 10)
    await init_queues(ctx, h)


def test_a_translation_request_gets_the_completion_then_hits():
    async def body(ctx, h):
        await start(ctx, h)
        resp, reads = await ats(ctx, h, 5, IOVA, ATS_REQUEST)
        check(resp, completion(0x12345, hit=0))
        assert reads[-3:] == PT_READS
        resp, reads = await ats(ctx, h, 5, IOVA, ATS_REQUEST)
        check(resp, completion(0x12345, hit=1))
        assert reads == []
        # No Write: W is not granted; the untranslated write is, from the same entry.
        resp, _ = await ats(ctx, h, 5, IOVA, ATS_REQUEST, nw=1)
        check(resp, completion(0x12345, w=0, hit=1))
        resp, _ = await ats(ctx, h, 5, IOVA, UNTRANSLATED, Access.WRITE)
        check(resp, dict(fault=0, ppn=0x12345, w=1, size_log2=0))
        # Execute Requested needs a PASID: without one (no process contexts) X stays 0.
        resp, _ = await ats(ctx, h, 5, IOVA, ATS_REQUEST, Access.EXECUTE)
        check(resp, completion(0x12345, x=0, hit=1))
    Harness(config=Config(ats=True), memory=memory_with(ATS_DEVICES)).run(body)


def test_missing_permissions_are_cleared_not_faulted():
    cases = [
        (pte(0x12345, V | R | U | A), dict(r=1, w=0)),            # read-only
        (pte(0x12345, V | R | W | U | A), dict(r=1, w=0)),        # D=0: no W
        (pte(0x12345, V | R | W | U | D), None),                  # A=0: a page fault
        (pte(0x12345, R | W | U | A | D), None),                  # not valid
        (pte(0x12345, V | R | W | A | D), None),                  # U=0: a User request's page fault
    ]
    for leaf, perms in cases:
        async def body(ctx, h, perms=perms):
            await start(ctx, h)
            resp, _ = await ats(ctx, h, 5, IOVA, ATS_REQUEST)
            if perms is None:
                check(resp, dict(NO_PERMISSION, hit=0))
            else:
                check(resp, completion(0x12345, hit=0, **perms))
            for _ in range(30):
                await ctx.tick()
            assert await h.mmio_read32(ctx, FQT) == 0       # no record: a success
        memory = memory_with(ATS_DEVICES, {PT_READS[2]: leaf})
        Harness(config=Config(ats=True), memory=memory).run(body)


def test_a_superpage_completion_has_its_size():
    # A 2 MiB leaf at level 1 (0x20_1010): PPN 0x12200 + VPN[0] 3.
    memory = memory_with(ATS_DEVICES, {PT_READS[1]: pte(0x12200, V | R | W | U | A | D)})

    async def body(ctx, h):
        await start(ctx, h)
        resp, _ = await ats(ctx, h, 5, IOVA, ATS_REQUEST)
        check(resp, completion(0x12203, size_log2=21, hit=0))
        resp, _ = await ats(ctx, h, 5, IOVA, ATS_REQUEST)
        check(resp, completion(0x12203, size_log2=21, hit=1))
    Harness(config=Config(ats=True), memory=memory).run(body)


def test_access_faults_are_refused_with_a_ttyp_8_record():
    async def body(ctx, h):
        await start(ctx, h)
        resp, _ = await ats(ctx, h, 5, IOVA, ATS_REQUEST)
        check(resp, refused(5))                 # the PTE read's bus error: CA
        await wait_fqt(ctx, h, 1)
        got = [h.memory.get(a, 0) for a in fq_record(0)]
        assert got == record(5, 8, 5, IOVA)
    Harness(config=Config(ats=True), memory=memory_with(ATS_DEVICES),
            errors={PT_READS[1]}).run(body)


def test_en_ats_0_and_bare_refuse_with_260():
    async def body(ctx, h):
        await start(ctx, h)
        resp, _ = await ats(ctx, h, 6, IOVA, ATS_REQUEST)
        check(resp, refused(260))
        resp, _ = await ats(ctx, h, 6, IOVA, TRANSLATED, Access.WRITE)
        check(resp, refused(260))
        await wait_fqt(ctx, h, 2)
        assert [h.memory.get(a, 0) for a in fq_record(0)] == record(260, 8, 6, IOVA)
        assert [h.memory.get(a, 0) for a in fq_record(1)] == record(260, 7, 6, IOVA)
        # Untranslated requests of device 6 are translated as ever.
        resp, _ = await ats(ctx, h, 6, IOVA, UNTRANSLATED)
        check(resp, dict(fault=0, ppn=0x12345))
        await h.mmio_write(ctx, DDTP, BARE)
        for kind in (TRANSLATED, ATS_REQUEST):
            resp, _ = await ats(ctx, h, 5, IOVA, kind)
            check(resp, refused(260))
        resp, _ = await ats(ctx, h, 5, IOVA, UNTRANSLATED)
        check(resp, dict(fault=0, ppn=IOVA >> 12, r=1, w=1, x=1))
    Harness(config=Config(ats=True), memory=memory_with(ATS_DEVICES)).run(body)


def test_a_translated_request_without_t2gpa_is_granted_as_presented():
    async def body(ctx, h):
        await start(ctx, h)
        for access in Access:
            resp, reads = await ats(ctx, h, 5, 0x7_6543_2100, TRANSLATED, access)
            check(resp, dict(fault=0, ppn=0x7_6543_2, r=1, w=1, x=1))
            assert all(a not in PT_READS for a in reads)     # no walk
    Harness(config=Config(ats=True), memory=memory_with(ATS_DEVICES)).run(body)


# Sv39x4 for GPA 0x4040_3123 (VPN[2]=1, VPN[1]=2, VPN[0]=3): root 0x80_0000 (16 KiB
# aligned), then 0x80_4000, 0x80_5000, leaf PPN 0x777 (second-stage leaves need U=1).
SV39X4 = 8 << 60
G_READS = [0x80_0008, 0x80_4010, 0x80_5018]
G_TABLES = {G_READS[0]: pte(0x804, V), G_READS[1]: pte(0x805, V),
            G_READS[2]: pte(0x777, V | R | U | A | D)}
T2GPA_DEVICES = {9: dc(tc=V | EN_ATS | T2GPA, iohgatp=SV39X4 | 3 << 44 | 0x800,
                       fsc=SV39 | 0x200)}


def test_a_translated_request_with_t2gpa_walks_the_second_stage_only():
    async def body(ctx, h):
        await start(ctx, h)
        resp, reads = await ats(ctx, h, 9, IOVA, TRANSLATED)
        check(resp, dict(fault=0, ppn=0x777, r=1, w=0))
        assert reads[-3:] == G_READS and not set(reads) & set(PT_READS)
        # The leaf has no W: a Translated write is a guest-page fault (23), TTYP 7.
        resp, _ = await ats(ctx, h, 9, IOVA, TRANSLATED, Access.WRITE)
        check(resp, refused(23))
        await wait_fqt(ctx, h, 1)
        got = [h.memory.get(a, 0) for a in fq_record(0)]
        assert got[0] == record(23, 7, 9, IOVA)[0] and got[2] == IOVA
    config = Config(ats=True, t2gpa=True, sv39x4=True)
    Harness(config=config, memory=memory_with(T2GPA_DEVICES, G_TABLES)).run(body)


def test_a_translation_request_under_t2gpa_gets_the_gpa_and_always_walks():
    # DC 10: T2GPA, first stage Bare: the GPA is the IOVA; R from the second-stage leaf.
    devices = {10: dc(tc=V | EN_ATS | T2GPA, iohgatp=SV39X4 | 3 << 44 | 0x800)}

    async def body(ctx, h):
        await start(ctx, h)
        for hit in (0, 0):        # the IOTLB keeps SPAs: a T2GPA completion walks again
            resp, reads = await ats(ctx, h, 10, IOVA, ATS_REQUEST)
            check(resp, completion(IOVA >> 12, r=1, w=0, hit=hit))
            assert reads[-3:] == G_READS
        # An Untranslated read of the same device gets the SPA, from the IOTLB.
        resp, reads = await ats(ctx, h, 10, IOVA, UNTRANSLATED)
        check(resp, dict(fault=0, ppn=0x777, hit=1))
    config = Config(ats=True, t2gpa=True, sv39x4=True)
    Harness(config=config, memory=memory_with(devices, G_TABLES)).run(body)


def test_hpm_events_1_2_3_count_by_request_kind():
    # iohpmevtX at 0x160 + 8 (X - 1), iohpmctrX at 0x068 + 8 (X - 1); eventID in bits 14:0
    # (spec "Performance-monitoring event selectors": 1 Untranslated, 2 Translated, 3 ATS
    # Translation Requests).
    async def body(ctx, h):
        await start(ctx, h)
        for x in (1, 2, 3):
            await h.mmio_write(ctx, 0x160 + 8 * (x - 1), x)
        for kind in (UNTRANSLATED, UNTRANSLATED, TRANSLATED, ATS_REQUEST, ATS_REQUEST,
                     ATS_REQUEST):
            await ats(ctx, h, 5, IOVA, kind)
        await ats(ctx, h, 6, IOVA, ATS_REQUEST)           # refused (260): still a request
        for _ in range(8):
            await ctx.tick()
        got = [await h.mmio_read(ctx, 0x068 + 8 * (x - 1)) for x in (1, 2, 3)]
        assert got == [2, 1, 4]
    config = Config(ats=True, hpm_counters=3)
    Harness(config=config, memory=memory_with(ATS_DEVICES)).run(body)
