"""iogate.hdl.iommu: the top, end to end, in the Amaranth simulator.

Software programs the registers over AXI4-Lite; a dictionary of doublewords behind an AXI4
subordinate holds the device directory, the page tables and the queues; devices send
requests on port 0. Expected values are worked by hand from the RISC-V IOMMU spec ("Process to
translate an IOVA", "In-memory queue interface" for commands and fault records, "Memory-mapped
register interface") and the Privileged spec's Sv39 walk. Numbers, not layouts:

* ``ddtp`` = iommu_mode (3:0) | PPN << 10; DDT root at PPN 0x100 (0x10_0000);
* a DC is 4 doublewords at 0x10_0000 + device_id * 32: tc (V bit 0, DTF bit 4), iohgatp,
  ta (PSCID 31:12), fsc (PPN 43:0, MODE 63:60, Sv39 = 8);
* Sv39 tables for IOVA 0x4040_3123 (VPN[2]=1, VPN[1]=2, VPN[0]=3): root 0x20_0000,
  level-1 table 0x20_1000, level-0 table 0x20_2000, leaf PPN 0x12345;
* the command queue at PPN 0x300 (command i at 0x30_0000 + 16 i), the fault queue at PPN
  0x400 (record i at 0x40_0000 + 32 i), ``cqb``/``fqb`` = LOG2SZ-1 | PPN << 10; cqcsr:
  cqen 0, cie 1, cqmf 8, cmd_ill 10, fence_w_ip 11, cqon 16; fqcsr: fqen 0, fie 1, fqmf 8,
  fqof 9, fqon 16; ipsr: cip 0, fip 1; icvec: civ 3:0, fiv 7:4;
* commands and records as in test_cmdq and test_fq (spec "Command-Queue (CQ)" and "Fault/Event-Queue
  (FQ)" bit positions).
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config, bits
from iogate.hdl.axi import Resp
from iogate.hdl.iommu import Iommu
from iogate.hdl.port import Access

OFF, BARE, LVL1 = 0, 1, 2
DDTP, TR_REQ_IOVA, TR_REQ_CTL, TR_RESPONSE = 0x010, 0x258, 0x260, 0x268
CQB, CQH, CQT, FQB, FQH, FQT = 0x018, 0x020, 0x024, 0x028, 0x030, 0x034
CQCSR, FQCSR, IPSR, ICVEC = 0x048, 0x04C, 0x054, 0x2F8
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


DEFAULT_LEAF = pte(0x12345, V | R | W | U | A | D)


def tables(leaf=DEFAULT_LEAF):
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

    def __init__(self, config=Config(), memory=None, errors=(), write_errors=()):
        self.dut = Iommu(config)
        self.memory = memory if memory is not None else {}
        self.errors = set(errors)
        self.write_errors = set(write_errors)     # doubleword addresses answering SLVERR
        self.reads = []
        self.writes = []             # (awaddr, awsize, wdata, wstrb)
        self.cq_tail = 0
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

    async def mmio_write32(self, ctx, offset, value):
        """A 4-byte write: the byte lanes of its half of the doubleword."""
        half = (offset >> 2) & 1
        await self._write(ctx, offset, value << (32 * half), 0xF << (4 * half))

    async def _write(self, ctx, offset, data, strb):
        bus = self.dut.mmio
        ctx.set(bus.awaddr, offset)
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, strb)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        await self.tick_until(ctx, bus.awready)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        await self.tick_until(ctx, bus.bvalid)
        ctx.set(bus.bready, 0)

    async def mmio_read32(self, ctx, offset):
        data = await self.mmio_read(ctx, offset)
        return (data >> (32 * ((offset >> 2) & 1))) & 0xFFFF_FFFF

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
        layout = dut.tr[0].resp.payload.shape()    # the Config's response fields
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

        async def memory_writes(ctx):
            bus = dut.mem
            while True:
                aw = w = None
                ctx.set(bus.awready, 1)
                ctx.set(bus.wready, 1)
                while aw is None or w is None:
                    _, _, awv, awaddr, awsize, awid, wv, wdata, wstrb = \
                        await ctx.tick().sample(bus.awvalid, bus.awaddr, bus.awsize, bus.awid,
                                                bus.wvalid, bus.wdata, bus.wstrb)
                    if aw is None and awv:
                        aw = (awaddr, awsize, awid)
                        ctx.set(bus.awready, 0)
                    if w is None and wv:
                        w = (wdata, wstrb)
                        ctx.set(bus.wready, 0)
                (awaddr, awsize, awid), (wdata, wstrb) = aw, w
                self.writes.append((awaddr, awsize, wdata, wstrb))
                dword = awaddr & ~7
                error = dword in self.write_errors
                if not error:
                    old = self.memory.get(dword, 0)
                    mask = sum(0xFF << (8 * i) for i in range(8) if wstrb >> i & 1)
                    self.memory[dword] = old & ~mask | wdata & mask
                ctx.set(bus.bresp, Resp.SLVERR if error else Resp.OKAY)
                ctx.set(bus.bid, awid)
                ctx.set(bus.bvalid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(bus.bready)
                    if ready:
                        break
                ctx.set(bus.bvalid, 0)

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
        sim.add_testbench(memory_writes, background=True)
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
    # A DC with V=0 is read again on every request (spec "Caching in-memory data
    # structures": no invalid entries cached).
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


def test_every_config_option_is_built():
    # Sv48, Sv39x4, Sv48x4, Svpbmt and 3LVL are all built (iogate.hdl.ptw, iogate.hdl.ddt):
    # accepted.
    from amaranth.hdl import Fragment
    full = Config.full()
    top = Iommu(full)
    assert top.config is full
    Fragment.get(top, None)              # elaborates, down to every walker
    with pytest.raises(TypeError, match=r"^config must be a Config, not 3$"):
        Iommu(3)


def test_port_names():
    # The cocotb benches bind to these flattened names.
    from iogate.cosim.targets.sim import verilog_of
    text = verilog_of(Iommu(Config(ports=2)), "top")
    for name in ("mmio__awaddr", "mmio__rdata", "mem__arvalid", "mem__rresp", "mem__awvalid",
                 "mem__wstrb", "mem__bresp", "tr__0__req__payload", "tr__1__resp__valid",
                 "tr__1__req__ready", "wsi"):
        assert f" {name};" in text or f" {name} " in text, name


# --- Command queue, fault queue and interrupts (spec "In-memory queue interface", the queue
# registers, "Interrupt pending status register (ipsr)", "Interrupt-cause-to-vector register
# (icvec)").

CQ_PPN, FQ_PPN = 0x300, 0x400
DONE = 0x50_0000                         # where IOFENCE.C stores its DATA
M32 = 0xFFFF_FFFF


def cq_entry(i):
    return (CQ_PPN << 12) + 16 * i


def fq_record(i):
    return [(FQ_PPN << 12) + 32 * i + 8 * k for k in range(4)]


def iotinval_vma(*, av=0, pscid=0, pscv=0, addr=0):
    return 1 | av << 10 | pscid << 12 | pscv << 32, (addr >> 12) << 10


def iofence_c(*, av=0, wsi=0, data=0, addr=0):
    return 2 | av << 10 | wsi << 11 | data << 32, addr >> 2


def iodir_inval_ddt(*, dv=0, did=0):
    return 3 | dv << 33 | did << 40, 0


def record(cause, ttyp, did, iotval, *, pv=0, pid=0, priv=0):
    """The four doublewords of a fault record (spec "Fault/Event-Queue (FQ)")."""
    return [cause | pid << 12 | pv << 32 | priv << 33 | ttyp << 34 | did << 40, 0, iotval, 0]


async def init_queues(ctx, h, *, cq_log2szm1=3, fq_log2szm1=2, cie=0, fie=0):
    """The software init sequence (spec "Guidelines for initialization"): cqb, cqt=0, cqen, poll
    cqon; then the same for the fault queue with fqb, fqh=0, fqen, poll fqon."""
    await h.mmio_write(ctx, CQB, cq_log2szm1 | CQ_PPN << 10)
    await h.mmio_write32(ctx, CQT, 0)
    await h.mmio_write32(ctx, CQCSR, 1 | cie << 1)
    while not await h.mmio_read32(ctx, CQCSR) >> 16 & 1:
        pass
    await h.mmio_write(ctx, FQB, fq_log2szm1 | FQ_PPN << 10)
    await h.mmio_write32(ctx, FQH, 0)
    await h.mmio_write32(ctx, FQCSR, 1 | fie << 1)
    while not await h.mmio_read32(ctx, FQCSR) >> 16 & 1:
        pass
    h.cq_tail = 0


async def submit(ctx, h, *commands, entries=16):
    """Write commands at cqt, publish the new cqt, and wait until cqh reaches it or an
    error bit stops the queue; returns (cqh, cqcsr)."""
    for dw0, dw1 in commands:
        h.memory[cq_entry(h.cq_tail)] = dw0
        h.memory[cq_entry(h.cq_tail) + 8] = dw1
        h.cq_tail = (h.cq_tail + 1) % entries
    await h.mmio_write32(ctx, CQT, h.cq_tail)
    return await wait_commands(ctx, h)


async def wait_commands(ctx, h):
    for _ in range(200):
        cqh = await h.mmio_read32(ctx, CQH)
        cqcsr = await h.mmio_read32(ctx, CQCSR)
        if cqh == h.cq_tail or cqcsr & 0xF00:
            return cqh, cqcsr
    raise AssertionError("the command queue hung")


async def wait_fqt(ctx, h, fqt):
    for _ in range(200):
        if await h.mmio_read32(ctx, FQT) == fqt:
            return
    raise AssertionError(f"fqt never reached {fqt}")


def stored(h, addrs):
    return [h.memory.get(a, 0) for a in addrs]


def test_init_sequence():
    async def body(ctx, h):
        await init_queues(ctx, h)
        assert await h.mmio_read(ctx, CQB) == 3 | CQ_PPN << 10
        assert await h.mmio_read(ctx, FQB) == 2 | FQ_PPN << 10
        assert await h.mmio_read32(ctx, CQCSR) == 1 << 16 | 1
        assert await h.mmio_read32(ctx, FQCSR) == 1 << 16 | 1
        assert (await h.mmio_read(ctx, CQH), await h.mmio_read(ctx, FQH)) == (0, 0)
        # An empty command queue is not read.
        for _ in range(20):
            await ctx.tick()
        assert h.reads == [] and h.writes == []
    Harness().run(body)


def test_iotinval_and_fence_make_a_changed_pte_visible():
    new_leaf = pte(0x54321, V | R | W | U | A | D)

    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        resp, _ = await h.translate(ctx, 5, IOVA)
        check(resp, translation(0x12345, hit=0))
        # Software changes the leaf: until the invalidation the cached answer may stay.
        h.memory[PT_READS[2]] = new_leaf
        resp, reads = await h.translate(ctx, 5, IOVA)
        check(resp, translation(0x12345, hit=1))
        # IOTINVAL.VMA(AV, PSCV, PSCID 7, the IOVA's page), IOFENCE.C(AV, DATA 0x600D).
        before = len(h.reads)
        cqh, cqcsr = await submit(ctx, h, iotinval_vma(av=1, pscv=1, pscid=7, addr=IOVA),
                                  iofence_c(av=1, data=0x600D, addr=DONE))
        assert (cqh, cqcsr) == (2, 1 << 16 | 1)
        assert h.reads[before:] == [cq_entry(0), cq_entry(0) + 8, cq_entry(1), cq_entry(1) + 8]
        # The 4-byte store: DONE is 8-byte aligned, so the low half (AWSIZE 2, WSTRB 0x0F).
        assert h.writes == [(DONE, 2, 0x600D << 32 | 0x600D, 0x0F)]
        assert h.memory[DONE] == 0x600D
        # After the fence the new PTE is used: walked again.
        resp, reads = await h.translate(ctx, 5, IOVA)
        check(resp, translation(0x54321, hit=0))
        assert reads == PT_READS
    Harness(memory=memory_with(DEVICES)).run(body)


def test_iodir_inval_ddt_rereads_the_dc():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        resp, _ = await h.translate(ctx, 9, 0x5000)
        check(resp, translation(0x5, x=1, hit=0))
        h.memory[dc_addr(9)] = 0                         # DC.V=0
        resp, _ = await h.translate(ctx, 9, 0x5000)
        check(resp, translation(0x5, x=1, hit=1))       # still cached
        # An INVAL_DDT for another device leaves it cached; for device 9 it goes.
        assert await submit(ctx, h, iodir_inval_ddt(dv=1, did=8), iofence_c()) == \
            (2, 1 << 16 | 1)
        resp, _ = await h.translate(ctx, 9, 0x5000)
        check(resp, translation(0x5, x=1, hit=1))
        assert await submit(ctx, h, iodir_inval_ddt(dv=1, did=9), iofence_c()) == \
            (4, 1 << 16 | 1)
        resp, reads = await h.translate(ctx, 9, 0x5000)
        check(resp, fault(258, hit=0))
        assert reads == dc_reads(9, 1)
    Harness(memory=memory_with(DEVICES)).run(body)


# Each kind of illegal or unsupported command (spec "Command-Queue (CQ)").
CMD_ILL = [
    ("reserved_opcode", (5, 0)),
    ("custom_opcode", (0x40, 0)),
    ("reserved_func3", (1 | 2 << 7, 0)),
    ("reserved_bit", (1 | 1 << 11, 0)),
    ("gvma_pscv", (1 | 1 << 7 | 1 << 32, 0)),
    ("ats", (4, 0)),
    ("inval_pdt", (3 | 1 << 7 | 1 << 33, 0)),
    ("did_too_wide", iodir_inval_ddt(dv=1, did=0x80)),
]


@pytest.mark.parametrize("name, command", CMD_ILL, ids=[c[0] for c in CMD_ILL])
def test_cmd_ill(name, command):
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        cqh, cqcsr = await submit(ctx, h, iofence_c(), command,
                                  iofence_c(av=1, data=1, addr=DONE))
        # cmd_ill, with cqh at the bad command; the fence after it did not run.
        assert (cqh, cqcsr) == (1, 1 << 16 | 1 << 10 | 1)
        for _ in range(20):
            await ctx.tick()
        assert await h.mmio_read32(ctx, CQH) == 1
        assert h.writes == []
        # Software replaces the command and clears cmd_ill: processing resumes at cqh.
        h.memory[cq_entry(1)], h.memory[cq_entry(1) + 8] = iofence_c()
        await h.mmio_write32(ctx, CQCSR, 1 << 10 | 1)
        assert await wait_commands(ctx, h) == (3, 1 << 16 | 1)
        assert h.memory[DONE] == 1
    Harness(memory=memory_with(DEVICES)).run(body)


def test_cqmf_on_fetch():
    async def body(ctx, h):
        await init_queues(ctx, h)
        cqh, cqcsr = await submit(ctx, h, iofence_c(), iofence_c())
        assert (cqh, cqcsr) == (1, 1 << 16 | 1 << 8 | 1)
        # Stalled until cqmf is cleared; then command 1 is fetched again.
        h.errors.clear()
        await h.mmio_write32(ctx, CQCSR, 1 << 8 | 1)
        assert await wait_commands(ctx, h) == (2, 1 << 16 | 1)
        assert h.reads.count(cq_entry(1)) == 2
    Harness(errors={cq_entry(1)}).run(body)


@pytest.mark.parametrize("addr", [DONE, 1 << 56])
def test_cqmf_on_fence_store(addr):
    # The IOFENCE.C store faults (a bus error, or beyond PAS=56): cqmf, cqh at the fence.
    async def body(ctx, h):
        await init_queues(ctx, h)
        cqh, cqcsr = await submit(ctx, h, iotinval_vma(),
                                  iofence_c(av=1, wsi=1, data=3, addr=addr))
        assert (cqh, cqcsr) == (1, 1 << 16 | 1 << 8 | 1)       # no fence_w_ip either
        assert DONE not in h.memory
    Harness(write_errors={DONE}).run(body)


def test_command_queue_wraparound():
    # A 4-entry queue (LOG2SZ-1 = 1): seven fences go round it almost twice.
    async def body(ctx, h):
        await init_queues(ctx, h, cq_log2szm1=1)
        for n in range(7):
            assert await submit(ctx, h, iofence_c(av=1, data=n, addr=DONE), entries=4) == \
                ((n + 1) % 4, 1 << 16 | 1)
            assert h.memory[DONE] == n
        assert [a for a in h.reads if a & 8 == 0] == [cq_entry(i % 4) for i in range(7)]
    Harness().run(body)


def test_fault_records_with_wraparound():
    # A 4-entry fault queue (LOG2SZ-1 = 1): three records fill it; software reads them
    # and moves fqh; the next two go to index 3 and, wrapping, 0.
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h, fq_log2szm1=1)
        iovas = [0x1000 * (i + 1) + 0x10 * i for i in range(5)]
        for i in range(3):
            resp, _ = await h.translate(ctx, 6, iovas[i], Access.WRITE)
            check(resp, fault(258, hit=0))
        await wait_fqt(ctx, h, 3)
        for i in range(3):
            assert stored(h, fq_record(i)) == record(258, 3, 6, iovas[i])
        await h.mmio_write32(ctx, FQH, 3)
        for i in (3, 4):
            await h.translate(ctx, 6, iovas[i], Access.WRITE)
        await wait_fqt(ctx, h, 1)
        assert stored(h, fq_record(3)) == record(258, 3, 6, iovas[3])
        assert stored(h, fq_record(0)) == record(258, 3, 6, iovas[4])
        assert await h.mmio_read32(ctx, FQCSR) == 1 << 16 | 1
    Harness(memory=memory_with({6: dc(tc=0)})).run(body)


def test_record_fields():
    # A page fault (Sv39, non-canonical IOVA): CAUSE 15, TTYP 3, the whole IOVA; an Off
    # fault: 256 for any device; a device_id too wide for 1LVL: 260.
    async def body(ctx, h):
        await init_queues(ctx, h)
        await h.translate(ctx, 0x123456, 0xABCD_E123, Access.EXECUTE)        # Off
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await h.translate(ctx, 5, 1 << 39 | 0x777, Access.WRITE)
        await h.translate(ctx, 0x80, 0x1000, Access.READ)
        await wait_fqt(ctx, h, 3)
        assert stored(h, fq_record(0)) == record(256, 1, 0x123456, 0xABCD_E123)
        assert stored(h, fq_record(1)) == record(15, 3, 5, 1 << 39 | 0x777)
        assert stored(h, fq_record(2)) == record(260, 2, 0x80, 0x1000)
    Harness(memory=memory_with(DEVICES)).run(body)


def test_fqof():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h, fq_log2szm1=1)
        for i in range(3):
            await h.translate(ctx, 6, 0x1000 * i)
        await wait_fqt(ctx, h, 3)
        # Full (fqt == fqh - 1): the fourth record is discarded and fqof set; responses
        # keep flowing.
        resp, _ = await h.translate(ctx, 6, 0x9000)
        check(resp, fault(258, hit=0))
        for _ in range(20):
            await ctx.tick()
        assert await h.mmio_read32(ctx, FQCSR) == 1 << 16 | 1 << 9 | 1
        # Room again, but records are dropped until fqof is cleared.
        await h.mmio_write32(ctx, FQH, 3)
        resp, _ = await h.translate(ctx, 6, 0xA000)
        check(resp, fault(258, hit=0))
        for _ in range(20):
            await ctx.tick()
        assert await h.mmio_read32(ctx, FQT) == 3
        await h.mmio_write32(ctx, FQCSR, 1 << 9 | 1)
        await h.translate(ctx, 6, 0xB000)
        await wait_fqt(ctx, h, 0)
        assert stored(h, fq_record(3)) == record(258, 2, 6, 0xB000)
        assert await h.mmio_read32(ctx, FQCSR) == 1 << 16 | 1
    Harness(memory=memory_with({6: dc(tc=0)})).run(body)


def test_fqmf():
    # The second doubleword of record 0 answers SLVERR: fqmf, fqt stays 0, later records
    # are dropped; translations are answered throughout.
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        for i in range(3):
            resp, _ = await h.translate(ctx, 6, 0x1000 * i)
            check(resp, fault(258, hit=0))
        for _ in range(20):
            await ctx.tick()
        assert await h.mmio_read32(ctx, FQCSR) == 1 << 16 | 1 << 8 | 1
        assert await h.mmio_read32(ctx, FQT) == 0
        assert [w[0] for w in h.writes] == fq_record(0)[:2]
        h.write_errors.clear()
        await h.mmio_write32(ctx, FQCSR, 1 << 8 | 1)
        await h.translate(ctx, 6, 0x7000)
        await wait_fqt(ctx, h, 1)
        assert stored(h, fq_record(0)) == record(258, 2, 6, 0x7000)
    Harness(memory=memory_with({6: dc(tc=0)}), write_errors={fq_record(0)[1]}).run(body)


def test_fault_queue_off_drops_records():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        for i in range(8):                                  # more than the report FIFO
            resp, _ = await h.translate(ctx, 6, 0x1000 * i)
            check(resp, fault(258, hit=0))
        assert h.writes == []
    Harness(memory=memory_with({6: dc(tc=0)})).run(body)


def test_dtf():
    # Device 12: DTF=1, Sv39, PSCID 7. Its page fault and its 260 (a debug request with a
    # process_id, PDTV=0) are not reported; its 259 (reserved tc bit, no valid DC) and the
    # 258 of device 13 (DTF=1 but V=0: no valid DC, so DTF counts as 0) are.
    DTF = 1 << 4
    devices = {12: dc(tc=V | DTF, ta=7 << 12, fsc=SV39 | 0x200),
               13: dc(tc=DTF), 14: dc(tc=V | DTF | 1 << 12)}

    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        resp, _ = await h.translate(ctx, 12, 0x7000_0000)
        check(resp, fault(13, hit=0))
        await h.mmio_write(ctx, TR_REQ_IOVA, 0x5000)
        await h.mmio_write(ctx, TR_REQ_CTL, 1 | 1 << 3 | 1 << 32 | 12 << 40)
        while await h.mmio_read(ctx, TR_REQ_CTL) & 1:
            pass
        assert await h.mmio_read(ctx, TR_RESPONSE) == 1
        resp, _ = await h.translate(ctx, 13, 0x1000)
        check(resp, fault(258, hit=0))
        resp, _ = await h.translate(ctx, 14, 0x2000, Access.WRITE)
        check(resp, fault(259, hit=0))
        await wait_fqt(ctx, h, 2)
        assert stored(h, fq_record(0)) == record(258, 2, 13, 0x1000)
        assert stored(h, fq_record(1)) == record(259, 3, 14, 0x2000)
        for _ in range(20):
            await ctx.tick()
        assert await h.mmio_read32(ctx, FQT) == 2
    Harness(memory=memory_with(devices)).run(body)


def test_debug_interface_fault_record():
    # tr_req_ctl: Go, Priv, NW (a read), PID 0x1234, PV, DID 5. DC 5 has PDTV=0: cause 260,
    # recorded with PV=1, PID and PRIV, TTYP 2 and iotval = tr_req_iova.
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        await h.mmio_write(ctx, TR_REQ_IOVA, 0x4040_3000)
        await h.mmio_write(ctx, TR_REQ_CTL, 1 | 1 << 1 | 1 << 3 | 0x1234 << 12 | 1 << 32
                           | 5 << 40)
        while await h.mmio_read(ctx, TR_REQ_CTL) & 1:
            pass
        await wait_fqt(ctx, h, 1)
        assert stored(h, fq_record(0)) == record(260, 2, 5, 0x4040_3000, pv=1, pid=0x1234,
                                                 priv=1)
    Harness(memory=memory_with(DEVICES)).run(body)


def test_interrupts():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await h.mmio_write(ctx, ICVEC, 9 << 4 | 2)          # civ = 2, fiv = 9
        await init_queues(ctx, h, cie=1, fie=1)
        assert ctx.get(h.dut.wsi) == 0
        # A fault record: fip, on line 9.
        await h.translate(ctx, 6, 0x1000)
        await wait_fqt(ctx, h, 1)
        assert await h.mmio_read32(ctx, IPSR) == 0b10
        assert ctx.get(h.dut.wsi) == 1 << 9
        # An illegal command: cip, on line 2.
        await submit(ctx, h, (5, 0))
        assert await h.mmio_read32(ctx, IPSR) == 0b11
        assert ctx.get(h.dut.wsi) == 1 << 9 | 1 << 2
        # fip is cleared for good; cip comes back while cmd_ill is 1.
        await h.mmio_write32(ctx, IPSR, 0b11)
        assert await h.mmio_read32(ctx, IPSR) == 0b01
        assert ctx.get(h.dut.wsi) == 1 << 2
        h.memory[cq_entry(0)], h.memory[cq_entry(0) + 8] = iofence_c()
        await h.mmio_write32(ctx, CQCSR, 1 << 10 | 0b11)
        await h.mmio_write32(ctx, IPSR, 0b01)
        assert await h.mmio_read32(ctx, IPSR) == 0
        assert ctx.get(h.dut.wsi) == 0
        # IOFENCE.C with WSI=1: fence_w_ip, hence cip.
        assert await submit(ctx, h, iofence_c(wsi=1)) == (2, 1 << 16 | 1 << 11 | 0b11)
        assert await h.mmio_read32(ctx, IPSR) == 0b01
        assert ctx.get(h.dut.wsi) == 1 << 2
    Harness(memory=memory_with({6: dc(tc=0)})).run(body)


@pytest.mark.parametrize("fsc, iova, iotval2", [
    # First stage Bare: the IOVA is the GPA; no G-stage table maps it (the 16 KiB root
    # at 0x60_0000 is all zero): iotval2 = GPA[63:2] << 2.
    (0, 0x1234_5677, 0x1234_5674),
    # First stage Sv39 with its root at GPA 0x20_0000: reading the level-2 PTE (GPA
    # 0x20_0000 + VPN[2]=1 * 8) faults in the G-stage, an implicit access: bit 0 set.
    (SV39 | 0x200, IOVA, 0x20_0008 | 1),
])
def test_guest_page_fault_record(fsc, iova, iotval2):
    # Device 20: iohgatp Sv39x4 (MODE 8), GSCID 3, root PPN 0x600. A read: cause 21.
    devices = {20: dc(iohgatp=8 << 60 | 3 << 44 | 0x600, fsc=fsc)}

    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        resp, _ = await h.translate(ctx, 20, iova)
        check(resp, fault(21, hit=0))
        await wait_fqt(ctx, h, 1)
        assert stored(h, fq_record(0)) == record(21, 2, 20, iova)[:3] + [iotval2]
    Harness(Config(sv39x4=True), memory=memory_with(devices)).run(body)
