"""iogate.hdl.translate: the pipeline's caches under invalidation, and request routing.

The top ties the invalidation inputs off until the command queue drives them, so they are
exercised here. Expected behaviour from the RISC-V IOMMU spec: after IODIR.INVAL_DDT a DC
is read again ("IOMMU directory cache invalidation commands"); after IOTINVAL.VMA a page is
walked again ("IOMMU Page-Table cache invalidation commands"); a walk that an invalidation
overtook must not leave what it read in a cache ("IOMMU Command-queue Fence commands", IOFENCE.C:
once the invalidation completes, only the new tables may be used). Tables and numbers as in
test_iommu: DDT at PPN 0x100, device 5 with Sv39 (mode 8) root 0x200 and PSCID 7.

The full Config (Sv48, Sv39x4, Sv48x4, 3LVL) is driven end to end at the bottom: a 3LVL
directory (spec "Process to locate the Device-context"), VMs with two-stage and second-stage-only
device contexts ("Process to translate an IOVA" steps 10-19), and the IOTLB tags that keep them
apart ("Caching in-memory data structures": GSCID+PSCID+IOVA for the first stage, GSCID+GPA for the
second stage alone).
"""

from amaranth.sim import Simulator

from iogate.hdl import Config, bits
from iogate.hdl.iotlb import InvalKind
from iogate.hdl.port import Access
from iogate.hdl.translate import TranslationPipeline, pipeline_response_layout

V, R, W, U, A, D = 1, 2, 4, 16, 64, 128
IOVA = 0x4040_3123
DC_BASE = 0x10_0000 + 5 * 32
DC_READS = [DC_BASE + 8 * k for k in range(4)]
PT_READS = [0x20_0008, 0x20_1010, 0x20_2018]
MEMORY = {
    DC_BASE: V, DC_BASE + 16: 7 << 12, DC_BASE + 24: 8 << 60 | 0x200,
    0x20_0008: 0x201 << 10 | V,
    0x20_1010: 0x202 << 10 | V,
    0x20_2018: 0x12345 << 10 | V | R | W | U | A | D,
}


class Harness:
    def __init__(self, config=Config(ports=2), memory=MEMORY, iommu_mode=2):
        self.config = config
        self.memory = memory
        self.iommu_mode = iommu_mode
        self.dut = TranslationPipeline(config)
        self.reads = []
        self.on_read = {}            # read index -> async hook(ctx)

    async def request(self, ctx, *, src=0, tag=0, device_id=5, iova=IOVA,
                      access=Access.READ, pv=0):
        dut = self.dut
        ctx.set(dut.req.payload, {"src": src, "tag": tag, "device_id": device_id,
                                  "iova": iova, "access": access, "pv": pv})
        ctx.set(dut.req.valid, 1)
        await ctx.tick().until(dut.req.ready)
        ctx.set(dut.req.valid, 0)
        ctx.set(dut.resp.ready, 1)
        resp, = await ctx.tick().sample(dut.resp.payload).until(dut.resp.valid)
        ctx.set(dut.resp.ready, 0)
        return bits.unpack(pipeline_response_layout(self.config), resp.as_value().value)

    async def pulse(self, ctx, stream, payload):
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick()
        ctx.set(stream.valid, 0)

    def run(self, body):
        dut = self.dut
        done = []

        def memory(client):
            async def process(ctx):
                while True:
                    ctx.set(client.req.ready, 1)
                    _, _, req, valid = await ctx.tick().sample(client.req.payload,
                                                               client.req.valid)
                    if not valid:
                        continue
                    ctx.set(client.req.ready, 0)
                    self.reads.append(req.addr)
                    hook = self.on_read.pop(len(self.reads) - 1, None)
                    if hook:
                        await hook(ctx)
                    ctx.set(client.resp.payload, {"data": self.memory.get(req.addr, 0),
                                                  "err": 0})
                    ctx.set(client.resp.valid, 1)
                    while True:
                        _, _, ready = await ctx.tick().sample(client.resp.ready)
                        if ready:
                            break
                    ctx.set(client.resp.valid, 0)
            return process

        async def testbench(ctx):
            ctx.set(dut.iommu_mode, self.iommu_mode)   # 1LVL unless said otherwise
            ctx.set(dut.fault.ready, 1)            # fault reports are always taken
            ctx.set(dut.ddtp_ppn, 0x100)
            await body(ctx, self)
            done.append(True)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(memory(dut.ddt_mem), background=True)
        sim.add_testbench(memory(dut.ptw_mem), background=True)
        sim.add_testbench(testbench)
        sim.run()
        assert done


def answer(resp):
    return (resp["fault"], resp["cause"], resp["ppn"], resp["hit"])


OK_WALKED, OK_HIT = (0, 0, 0x12345, 0), (0, 0, 0x12345, 1)


def test_ddt_invalidation_rereads_the_dc():
    async def body(ctx, h):
        assert answer(await h.request(ctx)) == OK_WALKED
        assert answer(await h.request(ctx)) == OK_HIT
        await h.pulse(ctx, h.dut.ddtc_inval, {"all": 0, "device_id": 5})
        before = len(h.reads)
        # The DC is read again; the IOTLB (tagged by PSCID) still holds the page.
        assert answer(await h.request(ctx)) == OK_WALKED
        assert h.reads[before:] == DC_READS
    Harness().run(body)


def test_iotlb_invalidation_rewalks():
    async def body(ctx, h):
        await h.request(ctx)
        await h.pulse(ctx, h.dut.iotlb_inval, {"kind": InvalKind.VMA, "gv": 0, "av": 0,
                                               "pscv": 1, "gscid": 0, "pscid": 7, "vpn": 0})
        before = len(h.reads)
        assert answer(await h.request(ctx)) == OK_WALKED
        assert h.reads[before:] == PT_READS
        # Another PSCID's invalidation leaves the page cached.
        await h.pulse(ctx, h.dut.iotlb_inval, {"kind": InvalKind.VMA, "gv": 0, "av": 0,
                                               "pscv": 1, "gscid": 0, "pscid": 8, "vpn": 0})
        assert answer(await h.request(ctx)) == OK_HIT
    Harness().run(body)


def test_invalidation_during_ddt_walk_is_not_lost():
    # IODIR.INVAL_DDT arrives while the DC is being read: the DC read is used for this
    # request (it was in flight) but not cached, so the next request reads it again.
    async def body(ctx, h):
        async def invalidate(ctx):
            await h.pulse(ctx, h.dut.ddtc_inval, {"all": 1, "device_id": 0})
        h.on_read[1] = invalidate
        assert answer(await h.request(ctx)) == OK_WALKED
        # Replayed lookup missed the cache: the DC was read twice, then the page table.
        assert h.reads == DC_READS + DC_READS + PT_READS
    Harness().run(body)


def test_invalidation_during_pt_walk_is_not_lost():
    async def body(ctx, h):
        async def invalidate(ctx):
            await h.pulse(ctx, h.dut.iotlb_inval, {"kind": InvalKind.ALL, "gv": 0, "av": 0,
                                                   "pscv": 0, "gscid": 0, "pscid": 0,
                                                   "vpn": 0})
        h.on_read[5] = invalidate                 # during the second PTE read
        assert answer(await h.request(ctx)) == OK_WALKED
        before = len(h.reads)
        assert answer(await h.request(ctx)) == OK_WALKED
        assert h.reads[before:] == PT_READS
    Harness().run(body)


def test_source_and_tag_are_carried():
    async def body(ctx, h):
        resp = await h.request(ctx, src=2, tag=0x5A)
        assert (resp["src"], resp["tag"]) == (2, 0x5A)
        resp = await h.request(ctx, src=1, tag=0xA5, access=Access.WRITE)
        assert (resp["src"], resp["tag"], resp["w"], resp["hit"]) == (1, 0xA5, 1, 1)
    Harness().run(body)


# --- Hit-under-miss: a page-table walk leaves the lookup stage free (issue 5).
IOVA_B = IOVA + 0x1000                     # the next 4 KiB page: same tables, leaf index 4
MEMORY_B = {**MEMORY, 0x20_2020: 0x12346 << 10 | V | R | W | U | A | D}
OK_B_WALKED = (0, 0, 0x12346, 0)


async def issue(ctx, h, requests):
    """Offer ``requests`` (dicts of request fields) back to back; returns nothing."""
    dut = h.dut
    for fields in requests:
        ctx.set(dut.req.payload, {"src": 0, "device_id": 5, "iova": IOVA,
                                  "access": Access.READ, "pv": 0, **fields})
        ctx.set(dut.req.valid, 1)
        await ctx.tick().until(dut.req.ready)
    ctx.set(dut.req.valid, 0)


async def collect(ctx, h, count):
    """The next ``count`` responses in the order they leave, with the read count then."""
    dut = h.dut
    ctx.set(dut.resp.ready, 1)
    got = []
    while len(got) < count:
        _, _, payload, valid = await ctx.tick().sample(dut.resp.payload, dut.resp.valid)
        if valid:
            got.append((bits.unpack(pipeline_response_layout(h.config),
                                    payload.as_value().value), len(h.reads)))
    ctx.set(dut.resp.ready, 0)
    return got


def test_hit_is_answered_while_a_miss_is_walked():
    # Page B misses and its leaf read is held for 40 cycles; a request to the cached page
    # behind it is answered first, before the walk has read its leaf.
    async def body(ctx, h):
        assert answer(await h.request(ctx, tag=1)) == OK_WALKED     # reads 0..6
        async def slow(ctx):
            await ctx.tick().repeat(40)
        h.on_read[9] = slow                                         # B's leaf PTE
        await issue(ctx, h, [{"tag": 2, "iova": IOVA_B}, {"tag": 3, "iova": IOVA}])
        (first, reads_then), (second, _) = await collect(ctx, h, 2)
        assert (first["tag"], answer(first)) == (3, OK_HIT)
        assert reads_then < 10               # the walk had not read its leaf yet
        assert (second["tag"], answer(second)) == (2, OK_B_WALKED)
        assert h.reads[7:] == [0x20_0008, 0x20_1010, 0x20_2020]
    Harness(memory=MEMORY_B).run(body)


def test_second_miss_waits_for_the_walk_slot():
    # Two misses back to back: one walk at a time, both answered, in order of their walks.
    async def body(ctx, h):
        await issue(ctx, h, [{"tag": 1, "iova": IOVA}, {"tag": 2, "iova": IOVA_B}])
        got = await collect(ctx, h, 2)
        assert [(r["tag"], answer(r)) for r, _ in got] == [(1, OK_WALKED), (2, OK_B_WALKED)]
        assert h.reads == DC_READS + PT_READS + [0x20_0008, 0x20_1010, 0x20_2020]
    Harness(memory=MEMORY_B).run(body)


def test_miss_to_the_page_being_walked_hits_after_the_fill():
    # The second request needs the page the walk is filling: it waits, then hits.
    async def body(ctx, h):
        await issue(ctx, h, [{"tag": 1}, {"tag": 2}])
        got = await collect(ctx, h, 2)
        assert [(r["tag"], answer(r)) for r, _ in got] == [(1, OK_WALKED), (2, OK_HIT)]
        assert h.reads == DC_READS + PT_READS
    Harness().run(body)


def test_fault_record_of_a_walk_names_the_walked_request():
    # A walk that faults while a hit was answered: the fault report carries the walked
    # request's address, not the hit's (spec "Fault/Event-Queue (FQ)": iotval is the faulting IOVA).
    async def body(ctx, h):
        assert answer(await h.request(ctx, tag=1)) == OK_WALKED
        async def slow(ctx):
            await ctx.tick().repeat(20)
        h.on_read[9] = slow
        await issue(ctx, h, [{"tag": 2, "iova": IOVA_B}, {"tag": 3, "iova": IOVA}])
        ctx.set(h.dut.fault.ready, 0)
        ctx.set(h.dut.resp.ready, 1)
        reports = []
        for _ in range(80):
            _, _, valid, report = await ctx.tick().sample(h.dut.fault.valid,
                                                          h.dut.fault.payload)
            ctx.set(h.dut.fault.ready, 1)
            if valid:
                reports.append(report)
        assert len(reports) == 1
        assert reports[0].iova == IOVA_B and reports[0].cause == 13   # load page fault
    Harness().run(body)      # MEMORY has no PTE for page B: V=0 leaf


def test_process_id_without_pdtv():
    # A request with a process_id to a DC with PDTV=0: cause 260 (spec "Process to translate an
    # IOVA" step 7).
    async def body(ctx, h):
        assert answer(await h.request(ctx, pv=1)) == (1, 260, 0, 0)
        assert answer(await h.request(ctx, pv=1)) == (1, 260, 0, 1)
    Harness().run(body)


# --- The full Config: 3LVL directory, two-stage and second-stage-only walks.
FULL = Config.full().replace(ports=2)
LVL2, LVL3 = 3, 4
SV39, SV48, SV39X4 = 8, 9, 8


def pte(ppn, flags):
    return ppn << 10 | flags


def dc_words(base, tc=V, iohgatp=0, ta=0, fsc=0):
    return {base: tc, base + 8: iohgatp, base + 16: ta, base + 24: fsc}


RW = V | R | W | U | A | D
GSCID = 0x55
IOHGATP = SV39X4 << 60 | GSCID << 44 | 0x90000
# Devices 0x1_0203..0x1_0206: DDI[2]=1 -> DDTE at 0x10_0008 (to PPN 0x110); DDI[1]=4 ->
# DDTE at 0x11_0020 (to PPN 0x120); DDI[0]=3..6 -> DC at 0x12_0000 + DDI[0]*32.
VM_S1, VM_S2, VM_PDTV, HOST48 = 0x1_0203, 0x1_0204, 0x1_0205, 0x1_0206
DDT_READS = [0x10_0008, 0x11_0020]


def dc_reads(device_id):
    base = 0x12_0000 + (device_id & 0x7F) * 32
    return DDT_READS + [base + 8 * k for k in range(4)]


FULL_MEMORY = {
    0x10_0008: pte(0x110, V), 0x11_0020: pte(0x120, V),
    # A VM's device: Sv39 (guest root PPN 0x100, PSCID 0) over Sv39x4 (root 0x90000).
    **dc_words(0x12_0060, iohgatp=IOHGATP, fsc=SV39 << 60 | 0x100),
    # The same VM, first stage Bare: the IOVA is a GPA.
    **dc_words(0x12_0080, iohgatp=IOHGATP),
    # The same VM, PDTV=1 with pdtp Bare and no process_id: first stage Bare too.
    **dc_words(0x12_00A0, tc=V | 1 << 5, iohgatp=IOHGATP),
    # A host device: Sv48 (root 0x80000), PSCID 0 as well, no second stage.
    **dc_words(0x12_00C0, fsc=SV48 << 60 | 0x80000),
    # Second stage: GPA 0-2 MiB -> SPA 0x8000_0000 (2 MiB leaf); GPA page 0x8020_0 ->
    # 0x12345 (root index 2, level-1 index 1, level-0 index 0).
    0x9000_0000: pte(0x91000, V), 0x9100_0000: pte(0x80000, RW),
    0x9000_0010: pte(0x93000, V), 0x9300_0008: pte(0x94000, V),
    0x9400_0000: pte(0x12345, RW),
    # First stage (guest pages 0x100-0x102 at SPA 0x8010_0000-): IOVA 0x4040_3123 ->
    # GPA 0x8020_0123.
    0x8010_0008: pte(0x101, V), 0x8010_1010: pte(0x102, V), 0x8010_2018: pte(0x80200, RW),
    # Sv48 tables of the host device: IOVA 0x80_8060_4567 (VPN 1, 2, 3, 4) -> 0x6789A.
    0x8000_0008: pte(0x80001, V), 0x8000_1010: pte(0x80002, V),
    0x8000_2018: pte(0x80003, V), 0x8000_3020: pte(0x6789A, RW),
}
G_FOR_TABLES = [0x9000_0000, 0x9100_0000]
G_FINAL = [0x9000_0010, 0x9300_0008, 0x9400_0000]
TWO_STAGE_READS = (G_FOR_TABLES + [0x8010_0008] + G_FOR_TABLES + [0x8010_1010]
                   + G_FOR_TABLES + [0x8010_2018] + G_FINAL)
GPA = 0x8020_0123
IOVA48 = 0x80_8060_4567
SV48_READS = [0x8000_0008, 0x8000_1010, 0x8000_2018, 0x8000_3020]


def full_harness():
    return Harness(FULL, FULL_MEMORY, iommu_mode=LVL3)


async def translate(ctx, h, device_id, iova, access=Access.READ):
    """(answer, reads made for it)."""
    before = len(h.reads)
    resp = await h.request(ctx, device_id=device_id, iova=iova, access=access)
    return answer(resp), h.reads[before:]


def test_three_level_two_stage_walk_then_hits():
    async def body(ctx, h):
        got, reads = await translate(ctx, h, VM_S1, IOVA)
        assert got == (0, 0, 0x12345, 0)
        assert reads == dc_reads(VM_S1) + TWO_STAGE_READS
        # Hits: the same page, and another offset in it, tagged GSCID 0x55 + PSCID 0.
        assert await translate(ctx, h, VM_S1, IOVA) == ((0, 0, 0x12345, 1), [])
        assert await translate(ctx, h, VM_S1, IOVA + 0xE00, Access.WRITE) == \
            ((0, 0, 0x12345, 1), [])
        # The host device with the same PSCID but no GSCID does not share it: its Sv48
        # walk (4 reads) gives its own page, and then hits.
        got, reads = await translate(ctx, h, HOST48, IOVA48)
        assert (got, reads) == ((0, 0, 0x6789A, 0), dc_reads(HOST48) + SV48_READS)
        assert await translate(ctx, h, HOST48, IOVA48) == ((0, 0, 0x6789A, 1), [])
        assert await translate(ctx, h, VM_S1, IOVA) == ((0, 0, 0x12345, 1), [])
    full_harness().run(body)


def test_second_stage_only_entries_stay_apart():
    async def body(ctx, h):
        await translate(ctx, h, VM_S1, IOVA)                     # caches IOVA 0x4040_3
        # First stage Bare: the IOVA is a GPA; three G-stage reads.
        got, reads = await translate(ctx, h, VM_S2, GPA)
        assert (got, reads) == ((0, 0, 0x12345, 0), dc_reads(VM_S2) + G_FINAL)
        assert await translate(ctx, h, VM_S2, GPA) == ((0, 0, 0x12345, 1), [])
        # Same GSCID, page number and PSCID field (0) as VM_S1's cached two-stage entry,
        # but no first stage: walked as a GPA (root index 1, not mapped) -> read
        # guest-page fault.
        got, reads = await translate(ctx, h, VM_S2, IOVA)
        assert (got, reads) == ((1, 21, 0, 0), [0x9000_0008])
        # And the other way round: VM_S1's IOVA 0x8020_0123 is walked by the first
        # stage (root index 2: GPA 0x10_0010, an empty PTE) -> read page fault.
        got, reads = await translate(ctx, h, VM_S1, GPA)
        assert (got, reads) == ((1, 13, 0, 0), G_FOR_TABLES + [0x8010_0010])
        # PDTV=1 without a process_id: first stage Bare under the DC's second stage; it
        # shares VM_S2's cached GPA entry (same GSCID, no PSCID): the DC is read, no
        # page table (hit=0 only because the request waited for its DC).
        got, reads = await translate(ctx, h, VM_PDTV, GPA)
        assert (got, reads) == ((0, 0, 0x12345, 0), dc_reads(VM_PDTV))
        assert await translate(ctx, h, VM_PDTV, GPA) == ((0, 0, 0x12345, 1), [])
    full_harness().run(body)


def test_gpa_beyond_the_second_stage_never_hits():
    # The IOTLB keeps 38 VPN bits (Sv48x4). GPA 0x8020_0123 with bit 50 set has the same
    # 38 bits as the cached page, but is too wide for Sv39x4: a guest-page fault, without
    # a read, and never the cached translation.
    async def body(ctx, h):
        await translate(ctx, h, VM_S2, GPA)
        got, reads = await translate(ctx, h, VM_S2, GPA | 1 << 50, Access.WRITE)
        assert (got, reads) == ((1, 23, 0, 0), [])
        # Likewise a non-canonical Sv39 IOVA aliasing VM_S1's cached page.
        await translate(ctx, h, VM_S1, IOVA)
        got, reads = await translate(ctx, h, VM_S1, IOVA | 1 << 45)
        assert (got, reads) == ((1, 13, 0, 0), [])
    full_harness().run(body)


def test_vm_invalidations():
    async def body(ctx, h):
        await translate(ctx, h, VM_S1, IOVA)
        await translate(ctx, h, VM_S2, GPA)
        # IOTINVAL.VMA GV=1 GSCID 0x55 PSCV=1 PSCID 0: the first-stage entry only.
        await h.pulse(ctx, h.dut.iotlb_inval, {"kind": InvalKind.VMA, "gv": 1, "av": 0,
                                               "pscv": 1, "gscid": GSCID, "pscid": 0,
                                               "vpn": 0})
        assert await translate(ctx, h, VM_S2, GPA) == ((0, 0, 0x12345, 1), [])
        assert await translate(ctx, h, VM_S1, IOVA) == ((0, 0, 0x12345, 0), TWO_STAGE_READS)
        # IOTINVAL.GVMA GV=1 AV=1 GPA 0x8020_0000: the GPA-tagged entry holding it, and
        # every two-stage entry of the GSCID (they are tagged by IOVA).
        await h.pulse(ctx, h.dut.iotlb_inval, {"kind": InvalKind.GVMA, "gv": 1, "av": 1,
                                               "pscv": 0, "gscid": GSCID, "pscid": 0,
                                               "vpn": 0x80200})
        assert await translate(ctx, h, VM_S2, GPA) == ((0, 0, 0x12345, 0), G_FINAL)
        assert await translate(ctx, h, VM_S1, IOVA) == ((0, 0, 0x12345, 0), TWO_STAGE_READS)
        # Another VM's GVMA leaves them.
        await h.pulse(ctx, h.dut.iotlb_inval, {"kind": InvalKind.GVMA, "gv": 1, "av": 0,
                                               "pscv": 0, "gscid": GSCID + 1, "pscid": 0,
                                               "vpn": 0})
        assert await translate(ctx, h, VM_S2, GPA) == ((0, 0, 0x12345, 1), [])
        assert await translate(ctx, h, VM_S1, IOVA) == ((0, 0, 0x12345, 1), [])
    full_harness().run(body)


def test_vma_with_address_and_a_partial_entry():
    # VM_S1 with a 2 MiB first-stage leaf (guest PPN 0x80200, at level 1) over 4 KiB
    # second-stage pages: IOVA 0x4040_3123 -> GPA 0x8020_3123 -> level-0 index 3 ->
    # 0x55555. The cached 4 KiB entry is part of the 2 MiB first-stage leaf, so
    # IOTINVAL.VMA AV=1 naming IOVA 0x4040_0000 (same leaf, another 4 KiB page) must
    # remove it; with the 4 KiB first-stage leaf of FULL_MEMORY it stays.
    memory = {**FULL_MEMORY, 0x8010_1010: pte(0x80200, RW), 0x9400_0018: pte(0x55555, RW)}
    vma = {"kind": InvalKind.VMA, "gv": 1, "av": 1, "pscv": 1, "gscid": GSCID,
           "pscid": 0, "vpn": 0x40400}

    async def partial(ctx, h):
        got, reads = await translate(ctx, h, VM_S1, IOVA)
        assert got == (0, 0, 0x55555, 0)
        assert await translate(ctx, h, VM_S1, IOVA) == ((0, 0, 0x55555, 1), [])
        await h.pulse(ctx, h.dut.iotlb_inval, vma)
        got, reads = await translate(ctx, h, VM_S1, IOVA)
        assert (got, len(reads)) == ((0, 0, 0x55555, 0), 9)

    async def whole(ctx, h):
        await translate(ctx, h, VM_S1, IOVA)
        await h.pulse(ctx, h.dut.iotlb_inval, vma)
        assert await translate(ctx, h, VM_S1, IOVA) == ((0, 0, 0x12345, 1), [])

    Harness(FULL, memory, iommu_mode=LVL3).run(partial)
    full_harness().run(whole)


def test_two_level_directory():
    # 2LVL: device 0x203 has DDI[1]=4 (DDTE at 0x10_0020, to PPN 0x120) and DDI[0]=3: the
    # same DC as VM_S1. A device_id above 16 bits is too wide for 2LVL (260, no read).
    memory = {**FULL_MEMORY, 0x10_0020: pte(0x120, V)}

    async def body(ctx, h):
        got, reads = await translate(ctx, h, 0x203, IOVA)
        assert got == (0, 0, 0x12345, 0)
        assert reads == [0x10_0020] + [0x12_0060 + 8 * k for k in range(4)] + TWO_STAGE_READS
        # (Decided in the lookup stage without a walk: hit=1.)
        assert await translate(ctx, h, 0x1_0203, IOVA) == ((1, 260, 0, 1), [])
    Harness(FULL, memory, iommu_mode=LVL2).run(body)


def test_three_level_directory_faults():
    # DDI[2]=2 has no DDTE (258 after one read); a DDTE with a reserved bit (259).
    memory = {**FULL_MEMORY, 0x10_0018: pte(0x110, V) | 1 << 63}

    async def body(ctx, h):
        assert await translate(ctx, h, 0x2_0203, IOVA) == ((1, 258, 0, 0), [0x10_0010])
        assert await translate(ctx, h, 0x3_0203, IOVA) == ((1, 259, 0, 0), [0x10_0018])
    Harness(FULL, memory, iommu_mode=LVL3).run(body)


def test_bare_mode_fault_is_reported_whatever_the_cached_dc_says():
    # Device 5's DC has DTF=1 (TC bit 4) and is cached in 1LVL. In Bare mode no DC is
    # located, so DTF is taken as 0 (spec "Fault/Event-Queue (FQ)", "If no valid DC could be
    # located, DTF is assumed to be 0"): an access fault on an address beyond the PAS is reported
    # with dtf=0. Found by iogate regress --seed 7 (a Bare phase after 1LVL).
    DTF = 1 << 4

    async def body(ctx, h):
        assert answer(await h.request(ctx)) == OK_WALKED       # caches the DTF=1 DC
        ctx.set(h.dut.iommu_mode, 1)                            # ddtp.iommu_mode = Bare
        reports = []
        await issue(ctx, h, [{"tag": 2, "iova": 1 << 60}])
        ctx.set(h.dut.resp.ready, 1)
        for _ in range(10):
            _, _, valid, report = await ctx.tick().sample(h.dut.fault.valid,
                                                          h.dut.fault.payload)
            if valid:
                reports.append(report)
        assert len(reports) == 1
        assert (reports[0].cause, reports[0].dtf, reports[0].iova) == (5, 0, 1 << 60)
    Harness(memory={**MEMORY, DC_BASE: V | DTF}).run(body)
