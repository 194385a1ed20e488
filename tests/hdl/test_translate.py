"""hdl.translate: the pipeline's caches under invalidation, and request routing.

The top ties the invalidation inputs off until the command queue drives them, so they are
exercised here. Expected behaviour from the RISC-V IOMMU spec: after IODIR.INVAL_DDT a DC
is read again (4.1.3); after IOTINVAL.VMA a page is walked again (4.1.1); a walk that an
invalidation overtook must not leave what it read in a cache (4.1.2, IOFENCE.C: once the
invalidation completes, only the new tables may be used). Tables and numbers as in
test_iommu: DDT at PPN 0x100, device 5 with Sv39 (mode 8) root 0x200 and PSCID 7.
"""

from amaranth.sim import Simulator

from hdl import Config, bits
from hdl.iotlb import InvalKind
from hdl.port import Access
from hdl.translate import TranslationPipeline, pipeline_response_layout

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
    def __init__(self, config=Config(ports=2)):
        self.config = config
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
                    ctx.set(client.resp.payload, {"data": MEMORY.get(req.addr, 0), "err": 0})
                    ctx.set(client.resp.valid, 1)
                    while True:
                        _, _, ready = await ctx.tick().sample(client.resp.ready)
                        if ready:
                            break
                    ctx.set(client.resp.valid, 0)
            return process

        async def testbench(ctx):
            ctx.set(dut.iommu_mode, 2)             # 1LVL
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


def test_process_id_without_pdtv():
    # A request with a process_id to a DC with PDTV=0: cause 260 (spec 3.3 step 7).
    async def body(ctx, h):
        assert answer(await h.request(ctx, pv=1)) == (1, 260, 0, 0)
        assert answer(await h.request(ctx, pv=1)) == (1, 260, 0, 1)
    Harness().run(body)
