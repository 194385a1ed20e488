"""iogate.hdl.translate with process contexts: the PC cache in the pipeline, under IODIR.

Expected behaviour from the spec (reference N.1.5-N.1.7): a request with a PASID on a PDTV=1
device reads its PC once (then the PC cache answers); PSCID comes from the PC, so two processes
mapping the same IOVA differently stay apart in the IOTLB; IODIR.INVAL_PDT drops the one
(device_id, process_id), IODIR.INVAL_DDT DV=1 the device's DC and PCs; a PDT walk overtaken by
an IODIR does not fill the PC cache ("IOMMU Command-queue Fence commands"); a PID wider than
PD8's 8 bits and a supervisor request with ENS=0 are 260 without reading the PDT.

Tables: DDT at PPN 0x100 (1LVL), device 5 with PDTV=1 and pdtp PD8 at PPN 0x300; PID 0x5A's PC
at 0x30_0000 + 0x5A*16 (Sv39 root 0x200, PSCID 7, ENS=0), PID 0x11's at 0x30_0110 (Sv39 root
0x400, PSCID 9, ENS=1).
"""

from amaranth.sim import Simulator

from iogate.hdl import Config, bits
from iogate.hdl.port import Access
from iogate.hdl.translate import TranslationPipeline, pipeline_response_layout

V, R, W, U, A, D = 1, 2, 4, 16, 64, 128
PDTV = 1 << 5
IOVA = 0x4040_3123
DC_BASE = 0x10_0000 + 5 * 32
DC_READS = [DC_BASE + 8 * k for k in range(4)]
PC_5A, PC_11 = 0x30_0000 + 0x5A * 16, 0x30_0000 + 0x11 * 16
PT_200 = [0x20_0008, 0x20_1010, 0x20_2018]
PT_400 = [0x40_0008, 0x40_1010, 0x40_2018]
MEMORY = {
    DC_BASE: V | PDTV, DC_BASE + 24: 1 << 60 | 0x300,
    PC_5A: V | 7 << 12, PC_5A + 8: 8 << 60 | 0x200,
    PC_11: V | 1 << 1 | 9 << 12, PC_11 + 8: 8 << 60 | 0x400,
    0x20_0008: 0x201 << 10 | V, 0x20_1010: 0x202 << 10 | V,
    0x20_2018: 0x12345 << 10 | V | R | W | U | A | D,
    0x40_0008: 0x401 << 10 | V, 0x40_1010: 0x402 << 10 | V,
    0x40_2018: 0x54321 << 10 | V | R | W | U | A | D,
}
CONFIG = Config(ports=2, pd_levels=1)


class Harness:
    def __init__(self):
        self.dut = TranslationPipeline(CONFIG)
        self.reads = []
        self.on_read = {}            # read index -> async hook(ctx)

    async def request(self, ctx, *, pid=None, priv=0, iova=IOVA):
        dut = self.dut
        ctx.set(dut.req.payload, {"src": 0, "tag": 0, "device_id": 5, "iova": iova,
                                  "access": Access.READ, "pv": pid is not None,
                                  "pid": pid or 0, "priv": priv})
        ctx.set(dut.req.valid, 1)
        await ctx.tick().until(dut.req.ready)
        ctx.set(dut.req.valid, 0)
        ctx.set(dut.resp.ready, 1)
        resp, = await ctx.tick().sample(dut.resp.payload).until(dut.resp.valid)
        ctx.set(dut.resp.ready, 0)
        f = bits.unpack(pipeline_response_layout(CONFIG), resp.as_value().value)
        return (f["cause"] if f["fault"] else None, None if f["fault"] else f["ppn"],
                bool(f["hit"]))

    async def pulse(self, ctx, stream, payload):
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick()
        ctx.set(stream.valid, 0)

    def since(self, mark):
        return self.reads[mark:]

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
                    await ctx.tick().until(client.resp.ready)
                    ctx.set(client.resp.valid, 0)
            return process

        async def testbench(ctx):
            ctx.set(dut.iommu_mode, 2)
            ctx.set(dut.fault.ready, 1)
            ctx.set(dut.ddtp_ppn, 0x100)
            await body(ctx, self)
            done.append(True)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        for client in (dut.ddt_mem, dut.ptw_mem, dut.pdt_mem):
            sim.add_testbench(memory(client), background=True)
        sim.add_testbench(testbench)
        sim.run()
        assert done


def test_pc_is_read_once_and_pscid_keeps_processes_apart():
    async def body(ctx, h):
        assert await h.request(ctx, pid=0x5A) == (None, 0x12345, False)
        assert h.reads == DC_READS + [PC_5A, PC_5A + 8] + PT_200
        assert await h.request(ctx, pid=0x5A) == (None, 0x12345, True)
        mark = len(h.reads)
        # The same IOVA in another process: its own PC and table, no hit on PSCID 7's page.
        assert await h.request(ctx, pid=0x11) == (None, 0x54321, False)
        assert h.since(mark) == [PC_11, PC_11 + 8] + PT_400
        assert await h.request(ctx, pid=0x5A) == (None, 0x12345, True)
        assert await h.request(ctx, pid=0x11) == (None, 0x54321, True)
    Harness().run(body)


def test_inval_pdt_drops_one_pc():
    async def body(ctx, h):
        await h.request(ctx, pid=0x5A)
        await h.request(ctx, pid=0x11)
        await h.pulse(ctx, h.dut.pdtc_inval, {"device_id": 5, "pid": 0x5A})
        mark = len(h.reads)
        # The PC is read again; the IOTLB (not touched by IODIR) still holds the page.
        assert await h.request(ctx, pid=0x5A) == (None, 0x12345, False)
        assert h.since(mark) == [PC_5A, PC_5A + 8]
        mark = len(h.reads)
        assert await h.request(ctx, pid=0x11) == (None, 0x54321, True)
        assert h.since(mark) == []
    Harness().run(body)


def test_inval_ddt_drops_the_device_pcs():
    async def body(ctx, h):
        await h.request(ctx, pid=0x5A)
        await h.pulse(ctx, h.dut.ddtc_inval, {"all": 0, "device_id": 5})
        mark = len(h.reads)
        await h.request(ctx, pid=0x5A)
        assert h.since(mark) == DC_READS + [PC_5A, PC_5A + 8]
    Harness().run(body)


def test_inval_during_pdt_walk_does_not_fill():
    async def body(ctx, h):
        async def invalidate(ctx):
            await h.pulse(ctx, h.dut.pdtc_inval, {"device_id": 5, "pid": 0x5A})
        h.on_read[4] = invalidate              # during the PC's first doubleword
        assert await h.request(ctx, pid=0x5A) == (None, 0x12345, False)
        # The PC read under the invalidation was used, not cached: read again, then walked.
        assert h.reads == DC_READS + [PC_5A, PC_5A + 8] * 2 + PT_200
        mark = len(h.reads)
        await h.request(ctx, pid=0x5A)
        assert h.since(mark) == []
    Harness().run(body)


def test_pid_too_wide_and_ens_are_260_without_a_pdt_read():
    async def body(ctx, h):
        assert await h.request(ctx, pid=0x100) == (260, None, False)
        assert h.reads == DC_READS
        # ENS=0 is known only from the PC: read once, then 260.
        assert await h.request(ctx, pid=0x5A, priv=1) == (260, None, False)
        assert h.since(4) == [PC_5A, PC_5A + 8]
        # Without a PASID and DPE=0 the first stage is Bare: the identity.
        assert await h.request(ctx) == (None, IOVA >> 12, True)
    Harness().run(body)
