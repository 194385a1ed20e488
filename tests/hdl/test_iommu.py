"""hdl.iommu: the top, end to end, in the Amaranth simulator.

Software programs ``ddtp`` over AXI4-Lite; a dictionary behind an AXI4 subordinate holds
the device directory and the page tables; devices send requests on port 0. Expected values
are worked by hand from the RISC-V IOMMU spec (3.3 translation process, 4.2 causes, chapter 6
registers) and the Privileged spec's Sv39 walk. Numbers, not layouts:

* ``ddtp`` = iommu_mode (3:0) | PPN << 10; DDT root at PPN 0x100 (0x10_0000);
* a DC is 4 doublewords at 0x10_0000 + device_id * 32: tc (V bit 0), iohgatp, ta (PSCID
  31:12), fsc (PPN 43:0, MODE 63:60, Sv39 = 8);
* Sv39 tables for IOVA 0x4040_3123 (VPN[2]=1, VPN[1]=2, VPN[0]=3): root 0x20_0000,
  level-1 table 0x20_1000, level-0 table 0x20_2000, leaf PPN 0x12345.
"""

import pytest
from amaranth.sim import Simulator

from hdl import Config, bits
from hdl.axi import Resp
from hdl.iommu import Iommu
from hdl.port import Access, response_layout

OFF, BARE, LVL1 = 0, 1, 2
DDTP, TR_REQ_IOVA, TR_REQ_CTL, TR_RESPONSE = 0x010, 0x258, 0x260, 0x268
V, R, W, X, U, G, A, D = (1 << i for i in range(8))
SV39 = 8 << 60

DDT_PPN = 0x100
IOVA = 0x4040_3123


def pte(ppn, flags):
    return ppn << 10 | flags


def dc_addr(device_id):
    return (DDT_PPN << 12) + device_id * 32


def dc(tc=V, iohgatp=0, ta=0, fsc=0):
    return [tc, iohgatp, ta, fsc]


def tables(leaf=pte(0x12345, V | R | W | U | A | D)):
    return {
        0x20_0000 + 1 * 8: pte(0x201, V),
        0x20_1000 + 2 * 8: pte(0x202, V),
        0x20_2000 + 3 * 8: leaf,
    }


PT_READS = [0x20_0008, 0x20_1010, 0x20_2018]


def memory_with(dcs, extra=None):
    """Memory holding the DCs ({device_id: [4 doublewords]}) and the page tables."""
    mem = dict(tables())
    for did, words in dcs.items():
        for k, word in enumerate(words):
            mem[dc_addr(did) + 8 * k] = word
    mem.update(extra or {})
    return mem


def dc_reads(device_id, n=4):
    return [dc_addr(device_id) + 8 * k for k in range(n)]


# Device 5: Sv39 with PSCID 7, root 0x200. Device 9: first stage Bare.
DEVICES = {5: dc(ta=7 << 12, fsc=SV39 | 0x200), 9: dc()}


class Harness:
    """Drives an Iommu: MMIO writes/reads, port-0 requests, an AXI4 memory model."""

    def __init__(self, config=Config(), memory=None, errors=()):
        self.dut = Iommu(config)
        self.memory = memory if memory is not None else {}
        self.errors = set(errors)
        self.reads = []
        self.responses = []          # (edge, response fields)
        self.edge = 0                # edges seen by the driver

    # --- MMIO (AXI4-Lite, 64-bit).
    async def mmio_write(self, ctx, offset, value):
        bus = self.dut.mmio
        ctx.set(bus.awaddr, offset)
        ctx.set(bus.wdata, value)
        ctx.set(bus.wstrb, 0xFF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        await self.tick_until(ctx, bus.awready)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        await self.tick_until(ctx, bus.bvalid)
        ctx.set(bus.bready, 0)

    async def mmio_read(self, ctx, offset):
        bus = self.dut.mmio
        ctx.set(bus.araddr, offset)
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.rready, 1)
        await self.tick_until(ctx, bus.arready)
        ctx.set(bus.arvalid, 0)
        data, = await self.tick_until(ctx, bus.rvalid, bus.rdata)
        ctx.set(bus.rready, 0)
        return data

    async def tick_until(self, ctx, cond, *exprs):
        while True:
            _, _, *values, done = await ctx.tick().sample(*exprs, cond)
            self.edge += 1
            if done:
                return values

    # --- Port 0.
    async def requests(self, ctx, reqs, port=0):
        """Send requests back to back on ``port``; return the edge each was accepted at."""
        port = self.dut.tr[port].req
        accepted = []
        for device_id, iova, access in reqs:
            ctx.set(port.payload, {"tag": len(accepted) & 0xFF, "device_id": device_id,
                                   "iova": iova, "access": access})
            ctx.set(port.valid, 1)
            await self.tick_until(ctx, port.ready)
            accepted.append(self.edge)
        ctx.set(port.valid, 0)
        return accepted

    async def translate(self, ctx, device_id, iova, access=Access.READ):
        """One request; its response and the reads it caused."""
        before = len(self.reads)
        n = len(self.responses)
        await self.requests(ctx, [(device_id, iova, access)])
        while len(self.responses) == n:
            await ctx.tick()
            self.edge += 1
        return self.responses[n][1], self.reads[before:]

    def run(self, body, *, latency=1):
        dut = self.dut
        layout = response_layout(8)
        done = []

        async def memory(ctx):
            bus = dut.mem
            while True:
                ctx.set(bus.arready, 1)
                _, _, valid, addr, arid, arlen, arsize = await ctx.tick().sample(
                    bus.arvalid, bus.araddr, bus.arid, bus.arlen, bus.arsize)
                if not valid:
                    continue
                assert (arlen, arsize) == (0, 3)     # single-beat, 8-byte reads
                ctx.set(bus.arready, 0)
                self.reads.append(addr)
                for _ in range(latency):
                    await ctx.tick()
                ctx.set(bus.rdata, self.memory.get(addr, 0))
                ctx.set(bus.rresp, Resp.SLVERR if addr in self.errors else Resp.OKAY)
                ctx.set(bus.rid, arid)
                ctx.set(bus.rlast, 1)
                ctx.set(bus.rvalid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(bus.rready)
                    if ready:
                        break
                ctx.set(bus.rvalid, 0)

        async def monitor(ctx):
            ports = dut.config.ports
            for i in range(ports):
                ctx.set(dut.tr[i].resp.ready, 1)
            edge = 0
            while True:
                _, _, *samples = await ctx.tick().sample(
                    *(x for i in range(ports) for x in (dut.tr[i].resp.valid,
                                                        dut.tr[i].resp.payload)))
                edge += 1
                for i in range(ports):
                    valid, payload = samples[2 * i], samples[2 * i + 1]
                    if valid:
                        fields = bits.unpack(layout, payload.as_value().value)
                        self.responses.append((edge, dict(fields, port=i)))

        async def testbench(ctx):
            await body(ctx, self)
            done.append(True)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(memory, background=True)
        sim.add_testbench(monitor, background=True)
        sim.add_testbench(testbench)
        sim.run()
        assert done


def translation(ppn, r=1, w=1, x=0, pbmt=0, hit=1):
    return dict(fault=0, cause=0, ppn=ppn, r=r, w=w, x=x, pbmt=pbmt, hit=hit)


def fault(cause, hit):
    return dict(fault=1, cause=cause, ppn=0, r=0, w=0, x=0, pbmt=0, hit=hit)


def check(resp, expected):
    got = {k: resp[k] for k in expected}
    assert got == expected


def test_reset_is_off():
    async def body(ctx, h):
        resp, reads = await h.translate(ctx, 5, IOVA)
        check(resp, fault(256, hit=1))
        assert reads == []
    Harness(memory=memory_with(DEVICES)).run(body)


def test_bare_is_identity():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, BARE)
        resp, reads = await h.translate(ctx, 0xFFFFFF, 0x1234_5678_9ABC, Access.WRITE)
        check(resp, translation(0x1_2345_6789, r=1, w=1, x=1))
        assert reads == []
    Harness().run(body)


def test_sv39_walk_then_hits():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        # A miss: the DC (4 reads) and three PTEs.
        resp, reads = await h.translate(ctx, 5, IOVA)
        check(resp, translation(0x12345, hit=0))
        assert reads == dc_reads(5) + PT_READS
        # The same page again, for read and write: IOTLB hits, no reads.
        for access in (Access.READ, Access.WRITE):
            resp, reads = await h.translate(ctx, 5, IOVA + 0x100, access)
            check(resp, translation(0x12345, hit=1))
            assert reads == []
        # Execute is not granted by the cached entry: re-walked (DC cached), page fault.
        resp, reads = await h.translate(ctx, 5, IOVA, Access.EXECUTE)
        check(resp, fault(12, hit=0))
        assert reads == PT_READS
    Harness(memory=memory_with(DEVICES)).run(body)


def test_hit_latency_and_throughput():
    # A hit answers 2 edges after its request is accepted, one per clock.
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await h.translate(ctx, 5, IOVA)
        start = len(h.responses)
        accepted = await h.requests(ctx, [(5, IOVA + 8 * i, Access.READ) for i in range(4)])
        assert accepted == list(range(accepted[0], accepted[0] + 4))
        for _ in range(4):
            await ctx.tick()
            h.edge += 1
        got = h.responses[start:]
        assert [resp["tag"] for _, resp in got] == [0, 1, 2, 3]
        assert all(resp["hit"] and resp["ppn"] == 0x12345 for _, resp in got)
        # The monitor counts edges from the same start as the driver.
        assert [edge for edge, _ in got] == [a + 2 for a in accepted]
    Harness(memory=memory_with(DEVICES)).run(body)


# (memory changes, device_id, iova, access, expected response, expected reads)
FAULTS = [
    ("device_id_too_wide", {}, 128, IOVA, Access.READ, fault(260, hit=1), []),
    ("dc_not_valid", {6: dc(tc=0)}, 6, IOVA, Access.READ, fault(258, hit=0), dc_reads(6, 1)),
    ("dc_misconfigured", {7: dc(tc=V | 1 << 1)}, 7, IOVA, Access.WRITE, fault(259, hit=0),
     dc_reads(7)),
    ("dc_sv48_not_offered", {7: dc(fsc=9 << 60)}, 7, IOVA, Access.READ, fault(259, hit=0),
     dc_reads(7)),
    ("first_stage_bare", {9: dc()}, 9, 0xABC_DEF0_1234, Access.EXECUTE,
     translation(0xABCDEF01, r=1, w=1, x=1, hit=0), dc_reads(9)),
    ("non_canonical", {}, 5, 1 << 39, Access.WRITE, fault(15, hit=0), dc_reads(5)),
]

# A leaf with U=0 (requests are User mode): page fault after the whole walk.
U0_LEAF = pte(0x12345, V | R | W | A | D)


@pytest.mark.parametrize("name, changes, device_id, iova, access, expected, reads", FAULTS,
                         ids=[f[0] for f in FAULTS])
def test_translation_outcomes(name, changes, device_id, iova, access, expected, reads):
    memory = memory_with({**DEVICES, **changes})

    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        resp, got_reads = await h.translate(ctx, device_id, iova, access)
        check(resp, expected)
        assert got_reads == reads
    Harness(memory=memory).run(body)


def test_user_bit():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        resp, reads = await h.translate(ctx, 5, IOVA)
        check(resp, fault(13, hit=0))
        assert reads == dc_reads(5) + PT_READS
    Harness(memory=memory_with(DEVICES, tables(U0_LEAF))).run(body)


def test_two_ports():
    # Requests on ports 0 and 1 at once: each answer comes back on its own port, with
    # its own tag (round-robin between the ports).
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, BARE)
        dut = h.dut
        for i, iova in ((0, 0x1000), (1, 0x2000)):
            ctx.set(dut.tr[i].req.payload, {"tag": 0x10 + i, "device_id": i, "iova": iova,
                                            "access": Access.READ})
            ctx.set(dut.tr[i].req.valid, 1)
        pending = {0, 1}
        while pending:
            _, _, r0, r1 = await ctx.tick().sample(dut.tr[0].req.ready, dut.tr[1].req.ready)
            for i, ready in ((0, r0), (1, r1)):
                if ready and i in pending:
                    ctx.set(dut.tr[i].req.valid, 0)
                    pending.discard(i)
        for _ in range(4):
            await ctx.tick()
        got = sorted((r["port"], r["tag"], r["ppn"]) for _, r in h.responses)
        assert got == [(0, 0x10, 0x1), (1, 0x11, 0x2)]
    Harness(Config(ports=2)).run(body)


def test_faults_are_not_cached():
    # A DC with V=0 is read again on every request (spec 3.8: no invalid entries cached).
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        for _ in range(2):
            resp, reads = await h.translate(ctx, 6, IOVA)
            check(resp, fault(258, hit=0))
            assert reads == dc_reads(6, 1)
    Harness(memory=memory_with({6: dc(tc=0)})).run(body)


def test_dc_is_cached():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        resp, reads = await h.translate(ctx, 9, 0x5000)
        check(resp, translation(0x5, x=1, hit=0))
        assert reads == dc_reads(9)
        resp, reads = await h.translate(ctx, 9, 0x6000)
        check(resp, translation(0x6, x=1, hit=1))
        assert reads == []
    Harness(memory=memory_with(DEVICES)).run(body)


@pytest.mark.parametrize("error_at, access, cause, reads", [
    (dc_addr(5) + 8, Access.READ, 257, dc_reads(5, 2)),          # DC load access fault
    (PT_READS[1], Access.WRITE, 7, dc_reads(5) + PT_READS[:2]),  # PTE: write access fault
    (PT_READS[0], Access.EXECUTE, 1, dc_reads(5) + PT_READS[:1]),
])
def test_memory_errors(error_at, access, cause, reads):
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        resp, got = await h.translate(ctx, 5, IOVA, access)
        check(resp, fault(cause, hit=0))
        assert got == reads
        # Nothing hangs: the next request is served (and faults the same way).
        resp, _ = await h.translate(ctx, 5, IOVA, access)
        check(resp, fault(cause, hit=0))
    Harness(memory=memory_with(DEVICES), errors={error_at}).run(body)


def test_debug_translation_interface():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await h.mmio_write(ctx, TR_REQ_IOVA, IOVA & ~0xFFF)
        # Go | NW=1 (read) | DID=5.
        await h.mmio_write(ctx, TR_REQ_CTL, 1 | 1 << 3 | 5 << 40)
        while await h.mmio_read(ctx, TR_REQ_CTL) & 1:
            pass
        # fault=0, PBMT=0, S=0, PPN 53:10.
        assert await h.mmio_read(ctx, TR_RESPONSE) == 0x12345 << 10
        assert h.reads == dc_reads(5) + PT_READS
        # Exe=1 on a page without X: a fault.
        await h.mmio_write(ctx, TR_REQ_CTL, 1 | 1 << 2 | 1 << 3 | 5 << 40)
        while await h.mmio_read(ctx, TR_REQ_CTL) & 1:
            pass
        assert await h.mmio_read(ctx, TR_RESPONSE) == 1
        # PV=1 with DC.tc.PDTV=0: transaction type disallowed, reported as a fault.
        await h.mmio_write(ctx, TR_REQ_CTL, 1 | 1 << 3 | 1 << 32 | 5 << 40)
        while await h.mmio_read(ctx, TR_REQ_CTL) & 1:
            pass
        assert await h.mmio_read(ctx, TR_RESPONSE) == 1
    Harness(memory=memory_with(DEVICES)).run(body)


@pytest.mark.parametrize("changes, message", [
    (dict(sv48=True), r"^config.sv48 is not built yet"),
    (dict(sv39x4=True), r"^config.sv39x4 is not built yet"),
    (dict(sv39x4=True, sv48x4=True), r"^config.sv39x4 is not built yet"),
    (dict(ddt_levels=3), r"^config.ddt_levels must be 1 \(1LVL only is built yet\), not 3$"),
])
def test_refuses_what_is_not_built(changes, message):
    with pytest.raises(ValueError, match=message):
        Iommu(Config(**changes))


def test_port_names():
    # The cocotb benches bind to these flattened names.
    from cosim.sim import verilog_of
    text = verilog_of(Iommu(Config(ports=2)), "top")
    for name in ("mmio__awaddr", "mmio__rdata", "mem__arvalid", "mem__rresp", "mem__awvalid",
                 "tr__0__req__payload", "tr__1__resp__valid", "tr__1__req__ready"):
        assert f" {name};" in text or f" {name} " in text, name
