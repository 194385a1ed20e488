"""iogate.hdl.regfile: reset values, RO/WARL/RW1S/RW1C behaviour, 4- and 8-byte accesses.

Register offsets and bit positions are written here as the spec's numbers ("Memory-mapped
register interface"), not taken from iogate.hdl.regs: capabilities 0x000, fctl 0x008, ddtp 0x010
(iommu_mode 3:0, busy 4, PPN 53:10), cqb 0x018 and fqb 0x028 (LOG2SZ-1 4:0, PPN 53:10), cqh 0x020,
cqt 0x024, fqh 0x030, fqt 0x034, cqcsr 0x048 (cqen 0, cie 1, cqmf 8, cmd_to 9, cmd_ill 10,
fence_w_ip 11, cqon 16, busy 17), fqcsr 0x04C (fqen 0, fie 1, fqmf 8, fqof 9, fqon 16,
busy 17), ipsr 0x054 (cip 0, fip 1), icvec 0x2F8 (civ 3:0, fiv 7:4, pmiv 11:8, piv
15:12), tr_req_iova 0x258, tr_req_ctl 0x260 (Go 0, Priv 1, Exe 2, NW 3, PID 31:12, PV 32,
DID 63:40), tr_response 0x268 (fault 0, PBMT 8:7, S 9, PPN 53:10).
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config
from iogate.hdl.port import Access
from iogate.hdl.regfile import RegFile

CAPABILITIES, FCTL, DDTP, CQB, ICVEC = 0x000, 0x008, 0x010, 0x018, 0x2F8
CQH, CQT, FQB, FQH, FQT = 0x020, 0x024, 0x028, 0x030, 0x034
CQCSR, FQCSR, IPSR = 0x048, 0x04C, 0x054
TR_REQ_IOVA, TR_REQ_CTL, TR_RESPONSE = 0x258, 0x260, 0x268
OFF, BARE, LVL1, LVL2, LVL3 = 0, 1, 2, 3, 4
M64 = (1 << 64) - 1

# capabilities of Config(): version 0x10, Sv39 (bit 9), IGS=WSI (29:28 = 1), DBG (bit 31),
# PAS=56 (37:32).
CAPS_DEFAULT = 0x10 | 1 << 9 | 1 << 28 | 1 << 31 | 56 << 32          # 0x38_9000_0210


class Bus:
    """An AXI4-Lite manager driving ``dut.mmio``; 4- and 8-byte accesses."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut, self.dw = ctx, dut, len(dut.mmio.wdata)

    async def _write(self, addr, data, strb):
        ctx, bus = self.ctx, self.dut.mmio
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, strb)
        ctx.set(bus.wvalid, 1)
        await ctx.tick().until(bus.awready & bus.wready)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        ctx.set(bus.bready, 1)
        resp, = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
        ctx.set(bus.bready, 0)
        assert resp.value == 0                 # OKAY

    async def _read(self, addr):
        ctx, bus = self.ctx, self.dut.mmio
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arvalid, 1)
        await ctx.tick().until(bus.arready)
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.rready, 1)
        data, resp = await ctx.tick().sample(bus.rdata, bus.rresp).until(bus.rvalid)
        ctx.set(bus.rready, 0)
        assert resp.value == 0
        return data

    async def write32(self, offset, value):
        if self.dw == 64:
            lane = (offset >> 2) & 1
            await self._write(offset, value << (32 * lane), 0xF << (4 * lane))
        else:
            await self._write(offset, value, 0xF)

    async def read32(self, offset):
        data = await self._read(offset)
        return (data >> (32 * ((offset >> 2) & 1))) & 0xFFFF_FFFF if self.dw == 64 else data

    async def write64(self, offset, value):
        if self.dw == 64:
            await self._write(offset, value, 0xFF)
        else:
            # Two 4-byte accesses, high half first (spec "Memory-mapped register
            # interface": the order an 8-byte access may be split into).
            await self._write(offset + 4, value >> 32, 0xF)
            await self._write(offset, value & 0xFFFF_FFFF, 0xF)

    async def read64(self, offset):
        if self.dw == 64:
            return await self._read(offset)
        hi = await self._read(offset + 4)
        lo = await self._read(offset)
        return hi << 32 | lo


def run(config, body):
    dut = RegFile(config)
    done = []

    async def testbench(ctx):
        await body(ctx, dut, Bus(ctx, dut))
        done.append(True)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert done


BUSES = [pytest.param(64, id="bus64"), pytest.param(32, id="bus32")]


@pytest.mark.parametrize("dw", BUSES)
@pytest.mark.parametrize("config, offset, value", [
    (dict(), CAPABILITIES, CAPS_DEFAULT),
    (dict(svpbmt=True), CAPABILITIES, CAPS_DEFAULT | 1 << 15),
    (dict(pas=48), CAPABILITIES, CAPS_DEFAULT & ~(0x3F << 32) | 48 << 32),
    (dict(), FCTL, 0b010),                       # BE=0, WSI=1, GXL=0
    (dict(), DDTP, 0),                           # iommu_mode=Off, busy=0
    (dict(), TR_REQ_CTL, 0),                     # Go=0
    (dict(), TR_RESPONSE, 0),
    (dict(), CQB, 0),
    (dict(), CQH, 0),                            # cqh | cqt
    (dict(), FQB, 0),
    (dict(), FQH, 0),                            # fqh | fqt
    (dict(), CQCSR, 0),                          # cqcsr | fqcsr: queues off, not busy
    (dict(), IPSR - 4, 0),                       # pqcsr (absent) | ipsr
    (dict(), ICVEC, 0),
    (dict(), 0x400, 0),
])
def test_reset_values(dw, config, offset, value):
    async def body(ctx, dut, bus):
        if offset == FCTL:
            assert await bus.read32(offset) == value
        else:
            assert await bus.read64(offset) == value
    run(Config(mmio_data_width=dw, **config), body)


@pytest.mark.parametrize("dw", BUSES)
@pytest.mark.parametrize("writes, expected", [
    # A supported mode with a PPN: both retained.
    ([LVL1 | 0x12345 << 10], LVL1 | 0x12345 << 10),
    ([BARE], BARE),
    # busy (bit 4) is RO 0; reserved 9:5 and 63:54 read 0.
    ([LVL1 | 1 << 4 | 0x3E0 | 0x3FF << 54], LVL1),
    # 2LVL, 3LVL and reserved modes are not offered: the old mode stays (WARL, spec
    # software guidelines: "writing legal values and reading it to see if the value was
    # retained"), while the PPN is written.
    ([LVL1, LVL2 | 0x5 << 10], LVL1 | 0x5 << 10),
    ([LVL1, LVL3], LVL1),
    ([BARE, 5], BARE),
    ([BARE, 15], BARE),
    ([LVL1, OFF], OFF),
    # PPN is the full 44 bits.
    ([(1 << 44) - 1 << 10], (1 << 44) - 1 << 10),
])
def test_ddtp(dw, writes, expected):
    async def body(ctx, dut, bus):
        for value in writes:
            await bus.write64(DDTP, value)
        assert await bus.read64(DDTP) == expected
        assert ctx.get(dut.iommu_mode) == expected & 0xF
        assert ctx.get(dut.ddtp_ppn) == expected >> 10
    run(Config(mmio_data_width=dw), body)


@pytest.mark.parametrize("dw", BUSES)
def test_ddtp_4byte_halves(dw):
    async def body(ctx, dut, bus):
        await bus.write64(DDTP, LVL1 | 0xFFFF_FFFF_FFFF << 10 & (((1 << 44) - 1) << 10))
        # The upper half alone (offset 0x14): PPN[43:22] = 0x12345.
        await bus.write32(DDTP + 4, 0x12345)
        assert await bus.read64(DDTP) == LVL1 | 0x12345 << 32 | 0x3F_FFFF << 10
        assert await bus.read32(DDTP + 4) == 0x12345
        # The lower half alone: mode Bare and PPN[21:0] = 0.
        await bus.write32(DDTP, BARE)
        assert await bus.read64(DDTP) == BARE | 0x12345 << 32
        assert await bus.read32(DDTP) == BARE
    run(Config(mmio_data_width=dw), body)


def test_partial_writes_are_ignored():
    """A write whose strobes cover less than a register changes nothing (spec "Memory-mapped
    register interface": other sizes are UNSPECIFIED; iogate ignores them, answered OKAY);
    a whole register's strobes take the write. Byte 2 of ddtp holds PPN[13:6]."""
    async def body(ctx, dut, bus):
        await bus._write(DDTP, 0xFF << 16 | LVL1, 0b0000_0100)
        assert await bus.read64(DDTP) == 0
        await bus._write(DDTP, LVL1, 0b0000_0001)
        assert await bus.read64(DDTP) == 0
        await bus._write(DDTP, 0xFF << 16 | LVL1, 0b0000_1111)   # the low half: a register's
        assert await bus.read64(DDTP) == 0xFF << 16 | LVL1
    run(Config(), body)


@pytest.mark.parametrize("dw", BUSES)
@pytest.mark.parametrize("offset, write, expected", [
    (CAPABILITIES, M64, CAPS_DEFAULT),                   # RO
    (0x800, M64, 0),
    (0x050, M64, 0),                                     # pqcsr (no ATS) | ipsr
    (TR_RESPONSE, M64, 0),                               # RO
    (TR_REQ_IOVA, M64, M64 & ~0xFFF),                    # vpn 63:12
    # tr_req_ctl without Go: Priv, Exe, NW, PID, PV, DID; reserved and custom read 0.
    (TR_REQ_CTL, M64 & ~1, 0xE | 0xFFFFF << 12 | 1 << 32 | 0xFFFFFF << 40),
])
def test_read_only_and_ignored(dw, offset, write, expected):
    async def body(ctx, dut, bus):
        await bus.write64(offset, write)
        assert await bus.read64(offset) == expected
    run(Config(mmio_data_width=dw), body)


@pytest.mark.parametrize("dw", BUSES)
def test_custom_register_reads_0(dw):
    # 0x00C is a 4-byte custom register (spec "Register layout"); this design has none there.
    async def body(ctx, dut, bus):
        await bus.write32(0x0C, 0xFFFF_FFFF)
        assert await bus.read32(0x0C) == 0
        assert await bus.read32(FCTL) == 0b010
    run(Config(mmio_data_width=dw), body)


def test_fctl_is_hardwired():
    async def body(ctx, dut, bus):
        await bus.write32(FCTL, 0xFFFF_FFFF)
        assert await bus.read32(FCTL) == 0b010
        await bus.write32(FCTL, 0)
        assert await bus.read32(FCTL) == 0b010
    run(Config(), body)


def tr_ctl(*, go=1, exe=0, nw=0, pv=0, pid=0, did=0):
    return go | exe << 2 | nw << 3 | pid << 12 | pv << 32 | did << 40


async def get_dbg_req(ctx, dut):
    ctx.set(dut.dbg_req.ready, 1)
    req, = await ctx.tick().sample(dut.dbg_req.payload).until(dut.dbg_req.valid)
    ctx.set(dut.dbg_req.ready, 0)
    return req


async def put_dbg_resp(ctx, dut, **payload):
    ctx.set(dut.dbg_resp.payload, payload)
    ctx.set(dut.dbg_resp.valid, 1)
    await ctx.tick().until(dut.dbg_resp.ready)
    ctx.set(dut.dbg_resp.valid, 0)


@pytest.mark.parametrize("dw", BUSES)
@pytest.mark.parametrize("ctl, access", [
    (tr_ctl(nw=1), Access.READ),                 # NW=1: read only
    (tr_ctl(nw=0), Access.WRITE),                # NW=0: read and write
    (tr_ctl(nw=1, exe=1), Access.EXECUTE),       # Exe=1 (with NW=1): read for execute
])
def test_debug_request(dw, ctl, access):
    async def body(ctx, dut, bus):
        await bus.write64(TR_REQ_IOVA, 0x1234_5678_9ABC_DEF0)
        await bus.write64(TR_REQ_CTL, ctl | 0xABCDEF << 40 | 1 << 32)
        req = await get_dbg_req(ctx, dut)
        assert (req.device_id, req.iova, req.access, req.pv) == \
            (0xABCDEF, 0x1234_5678_9ABC_D000, access, 1)
        # Busy: Go reads 1, and writes are ignored until the response.
        assert await bus.read64(TR_REQ_CTL) & 1 == 1
        await bus.write64(TR_REQ_CTL, tr_ctl(go=0, did=7))
        await bus.write64(TR_REQ_IOVA, 0)
        assert await bus.read64(TR_REQ_CTL) >> 40 == 0xABCDEF
        assert await bus.read64(TR_REQ_IOVA) == 0x1234_5678_9ABC_D000
        # The request is offered once.
        assert not ctx.get(dut.dbg_req.valid)
        await put_dbg_resp(ctx, dut, fault=0, ppn=0xABC, pbmt=2)
        assert await bus.read64(TR_REQ_CTL) & 1 == 0
        # PBMT 8:7 = 2, S=0, PPN 53:10 = 0xABC.
        assert await bus.read64(TR_RESPONSE) == 2 << 7 | 0xABC << 10
    run(Config(mmio_data_width=dw), body)


def test_debug_fault_response():
    async def body(ctx, dut, bus):
        await bus.write64(TR_REQ_CTL, tr_ctl(did=3))
        await get_dbg_req(ctx, dut)
        await put_dbg_resp(ctx, dut, fault=1, ppn=0x55, pbmt=1)
        # fault=1; PBMT and PPN are UNSPECIFIED with a fault: this design reports 0.
        assert await bus.read64(TR_RESPONSE) == 1
        # A second Go starts a second request.
        await bus.write64(TR_REQ_CTL, tr_ctl(did=4, nw=1))
        req = await get_dbg_req(ctx, dut)
        assert (req.device_id, req.access) == (4, Access.READ)
    run(Config(), body)


def test_go_is_rw1s():
    # Writing 0 to Go leaves it 0 and sends nothing; DID is still written.
    async def body(ctx, dut, bus):
        await bus.write64(TR_REQ_CTL, tr_ctl(go=0, did=9))
        for _ in range(3):
            await ctx.tick()
            assert not ctx.get(dut.dbg_req.valid)
        assert await bus.read64(TR_REQ_CTL) == 9 << 40
    run(Config(), body)


def test_no_debug_interface_without_dbg():
    async def body(ctx, dut, bus):
        assert await bus.read64(CAPABILITIES) == CAPS_DEFAULT & ~(1 << 31)
        await bus.write64(TR_REQ_IOVA, M64)
        await bus.write64(TR_REQ_CTL, tr_ctl())
        for _ in range(3):
            await ctx.tick()
            assert not ctx.get(dut.dbg_req.valid)
        assert await bus.read64(TR_REQ_IOVA) == 0
        assert await bus.read64(TR_REQ_CTL) == 0
    run(Config(dbg=False), body)


def test_write_channels_in_any_order():
    # Address first, data two cycles later, and a late bready: one write, answered once.
    async def body(ctx, dut, bus):
        mmio = dut.mmio
        ctx.set(mmio.awaddr, DDTP)
        ctx.set(mmio.awvalid, 1)
        for _ in range(2):
            await ctx.tick()
            assert not ctx.get(mmio.awready)
        ctx.set(mmio.wdata, BARE)
        ctx.set(mmio.wstrb, 0xFF)
        ctx.set(mmio.wvalid, 1)
        await ctx.tick().until(mmio.awready)
        ctx.set(mmio.awvalid, 0)
        ctx.set(mmio.wvalid, 0)
        for _ in range(3):
            await ctx.tick()
            assert ctx.get(mmio.bvalid)
        ctx.set(mmio.bready, 1)
        await ctx.tick()
        ctx.set(mmio.bready, 0)
        assert not ctx.get(mmio.bvalid)
        assert await bus.read64(DDTP) == BARE
    run(Config(), body)


def test_constructor_checks():
    with pytest.raises(TypeError, match=r"^config must be a Config, not 64$"):
        RegFile(64)


# --- Queue registers (spec "Command-queue base (cqb)" to "Fault queue tail (fqt)", "Command-queue
# CSR (cqcsr)", "Fault queue CSR (fqcsr)"), interrupts ("Interrupt pending status register (ipsr)",
# "Interrupt-cause-to-vector register (icvec)").

async def pulse(ctx, *strobes):
    """Assert engine strobes for one cycle."""
    for s in strobes:
        ctx.set(s, 1)
    await ctx.tick()
    for s in strobes:
        ctx.set(s, 0)


PPN44 = (1 << 44) - 1


@pytest.mark.parametrize("dw", BUSES)
@pytest.mark.parametrize("base", [CQB, FQB])
@pytest.mark.parametrize("pas, write, expected", [
    # LOG2SZ-1 (5 bits) and the 44-bit PPN; reserved 9:5 and 63:54 read 0.
    (56, M64, 0x1F | PPN44 << 10),
    (56, 0x3 | 0x12345 << 10, 0x3 | 0x12345 << 10),
    # PAS=48: PPN bits 43:36 (addresses at and above 2**48) are not retained.
    (48, M64, 0x1F | ((1 << 36) - 1) << 10),
])
def test_queue_base(dw, base, pas, write, expected):
    async def body(ctx, dut, bus):
        await bus.write64(base, write)
        assert await bus.read64(base) == expected
        regs = dut.cq if base == CQB else dut.fq
        assert ctx.get(regs.ppn) == expected >> 10
    run(Config(mmio_data_width=dw, pas=pas), body)


def test_ddtp_ppn_below_pas():
    async def body(ctx, dut, bus):
        await bus.write64(DDTP, LVL1 | M64 & ~0xF)
        assert await bus.read64(DDTP) == LVL1 | ((1 << 36) - 1) << 10
    run(Config(pas=48), body)


@pytest.mark.parametrize("dw", BUSES)
@pytest.mark.parametrize("base, index, ro_index", [(CQB, CQT, CQH), (FQB, FQH, FQT)])
def test_queue_index_warl(dw, base, index, ro_index):
    async def body(ctx, dut, bus):
        # LOG2SZ-1 = 2: 8 entries, only bits 2:0 of cqt/fqh are writable.
        await bus.write64(base, 2)
        await bus.write32(index, 0xFFFF_FFFF)
        assert await bus.read32(index) == 7
        # 32 entries: 0x1D is kept; then a base write with 4 entries leaves 0x1D & 3.
        await bus.write64(base, 4)
        await bus.write32(index, 0x1D)
        assert await bus.read32(index) == 0x1D
        await bus.write64(base, 1)
        assert await bus.read32(index) == 1
        # LOG2SZ-1 = 31: all 32 bits.
        await bus.write64(base, 31)
        await bus.write32(index, 0xFFFF_FFFF)
        assert await bus.read32(index) == 0xFFFF_FFFF
        # cqh/fqt are RO.
        await bus.write32(ro_index, 0x5)
        assert await bus.read32(ro_index) == 0
        assert await bus.read32(index) == 0xFFFF_FFFF
    run(Config(mmio_data_width=dw), body)


@pytest.mark.parametrize("dw", BUSES)
@pytest.mark.parametrize("base, index", [(CQB, CQT), (FQB, FQH)])
def test_queue_size_limit(dw, base, index):
    """Config.queue_log2sz_max=8: LOG2SZ-1 is WARL (spec "Command-queue base (cqb)"), a
    larger value reads back as 7 (256 entries), which is how software finds the limit."""
    async def body(ctx, dut, bus):
        await bus.write64(base, 0x1F | 0x42 << 10)       # LOG2SZ all ones, as Linux probes
        assert await bus.read64(base) == 7 | 0x42 << 10
        await bus.write32(index, 0xFFFF_FFFF)
        assert await bus.read32(index) == 0xFF
        await bus.write64(base, 3)                       # a legal size is kept as written
        assert await bus.read64(base) == 3
        assert await bus.read32(index) == 0xF
    run(Config(mmio_data_width=dw, queue_log2sz_max=8), body)


def test_queue_index_wraps_at_limit():
    """cqh and fqt wrap at the largest size: 2**queue_log2sz_max entries."""
    async def body(ctx, dut, bus):
        await bus.write64(CQB, 0x1F)
        await bus.write64(FQB, 0x1F)
        await bus.write32(CQCSR, 1)
        await bus.write32(FQCSR, 1)
        for _ in range(15):
            await pulse(ctx, dut.cq.advance, dut.fq.advance)
        assert await bus.read32(CQH) == 15
        assert await bus.read32(FQT) == 15
        await pulse(ctx, dut.cq.advance, dut.fq.advance)
        assert await bus.read32(CQH) == 0
        assert await bus.read32(FQT) == 0
    run(Config(queue_log2sz_max=4), body)


@pytest.mark.parametrize("dw", BUSES)
def test_cqcsr(dw):
    async def body(ctx, dut, bus):
        cq = dut.cq
        await bus.write64(CQB, 1)                           # 4 entries
        await bus.write32(CQT, 3)
        # cqen=1, cie=1: the queue is on at once (cqon 16), not busy (17).
        await bus.write32(CQCSR, 0b11)
        assert await bus.read32(CQCSR) == 1 << 16 | 0b11
        assert ctx.get(cq.run) == 1
        assert (ctx.get(cq.head), ctx.get(cq.tail)) == (0, 3)
        # The engine completes three commands, then a fetch faults: cqh wraps mod 4.
        for _ in range(3):
            await pulse(ctx, cq.advance)
        assert await bus.read32(CQH) == 3
        await pulse(ctx, cq.advance)
        assert await bus.read32(CQH) == 0
        await pulse(ctx, cq.set_cqmf)
        assert await bus.read32(CQCSR) == 1 << 16 | 1 << 8 | 0b11
        assert ctx.get(cq.run) == 0                         # the queue stalls
        # Writing 0 to an RW1C bit leaves it; writing 1 clears it.
        await bus.write32(CQCSR, 0b11)
        assert await bus.read32(CQCSR) == 1 << 16 | 1 << 8 | 0b11
        await bus.write32(CQCSR, 1 << 8 | 0b11)
        assert await bus.read32(CQCSR) == 1 << 16 | 0b11
        assert ctx.get(cq.run) == 1
        # cmd_ill stops the queue too; fence_w_ip does not.
        await pulse(ctx, cq.set_cmd_ill, cq.set_fence_w_ip)
        assert await bus.read32(CQCSR) == 1 << 16 | 1 << 11 | 1 << 10 | 0b11
        assert ctx.get(cq.run) == 0
        await bus.write32(CQCSR, 1 << 10 | 0b11)
        assert ctx.get(cq.run) == 1
        assert await bus.read32(CQCSR) == 1 << 16 | 1 << 11 | 0b11
    run(Config(mmio_data_width=dw), body)


def test_cqen_off_and_on():
    async def body(ctx, dut, bus):
        cq = dut.cq
        await bus.write64(CQB, 3)                           # 16 entries
        await bus.write32(CQCSR, 1)
        for _ in range(5):
            await pulse(ctx, cq.advance)
        await pulse(ctx, cq.set_cqmf, cq.set_cmd_ill, cq.set_fence_w_ip)
        # cqen 1->0 while a command is in flight: cqon stays 1 and busy reads 1 until
        # the engine is done.
        ctx.set(cq.busy, 1)
        await bus.write32(CQCSR, 0)
        assert await bus.read32(CQCSR) == 1 << 17 | 1 << 16 | 0b1101 << 8
        ctx.set(cq.busy, 0)
        await ctx.tick()
        assert await bus.read32(CQCSR) == 0b1101 << 8
        assert ctx.get(cq.run) == 0
        # cqen 0->1: cqh and the four error bits read 0, the queue is on.
        assert await bus.read32(CQH) == 5
        await bus.write32(CQCSR, 1)
        assert await bus.read32(CQCSR) == 1 << 16 | 1
        assert await bus.read32(CQH) == 0
        # cqen 1->1 clears nothing.
        await pulse(ctx, cq.advance)
        await bus.write32(CQCSR, 1)
        assert await bus.read32(CQH) == 1
    run(Config(), body)


@pytest.mark.parametrize("dw", BUSES)
def test_fqcsr(dw):
    async def body(ctx, dut, bus):
        fq = dut.fq
        await bus.write64(FQB, 1)                           # 4 entries
        await bus.write32(FQH, 2)
        await bus.write32(FQCSR, 0b11)                      # fqen, fie
        assert await bus.read32(FQCSR) == 1 << 16 | 0b11
        assert (ctx.get(fq.on), ctx.get(fq.error), ctx.get(fq.full)) == (1, 0, 0)
        # fqt advances 0 -> 1: full, since fqt == fqh - 1.
        await pulse(ctx, fq.advance)
        assert await bus.read32(FQT) == 1
        assert ctx.get(fq.full) == 1
        await bus.write32(FQH, 3)
        assert ctx.get(fq.full) == 0
        # fqt wraps: 1 -> 2 -> 3 -> 0.
        for _ in range(3):
            await pulse(ctx, fq.advance)
        assert await bus.read32(FQT) == 0
        await pulse(ctx, fq.set_fqof)
        await pulse(ctx, fq.set_fqmf)
        assert await bus.read32(FQCSR) == 1 << 16 | 0b11 << 8 | 0b11
        assert ctx.get(fq.error) == 1
        await bus.write32(FQCSR, 1 << 9 | 0b11)             # clear fqof only
        assert await bus.read32(FQCSR) == 1 << 16 | 1 << 8 | 0b11
        await bus.write32(FQCSR, 1 << 8 | 0b11)
        assert ctx.get(fq.error) == 0
        # fqen 1->0 while a record is being stored: fqon and busy stay until it is done.
        ctx.set(fq.busy, 1)
        await pulse(ctx, fq.advance)
        await pulse(ctx, fq.set_fqmf)
        await bus.write32(FQCSR, 0)
        assert await bus.read32(FQCSR) == 1 << 17 | 1 << 16 | 1 << 8
        assert ctx.get(fq.on) == 0                          # no new record starts
        ctx.set(fq.busy, 0)
        await ctx.tick()
        assert await bus.read32(FQCSR) == 1 << 8
        # fqen 0->1 clears fqt, fqmf and fqof.
        assert await bus.read32(FQT) == 1
        await bus.write32(FQCSR, 1)
        assert await bus.read32(FQCSR) == 1 << 16 | 1
        assert await bus.read32(FQT) == 0
    run(Config(mmio_data_width=dw), body)


def test_csr_halves_are_independent():
    # cqcsr and fqcsr share a doubleword: a 4-byte write to one leaves the other alone,
    # and an 8-byte write over both (two registers at once) changes neither.
    async def body(ctx, dut, bus):
        await pulse(ctx, dut.fq.set_fqof)
        await bus.write32(CQCSR, 1 << 9 | 0b11)
        assert await bus.read64(CQCSR) == (1 << 9) << 32 | 1 << 16 | 0b11
        await bus.write64(CQCSR, (1 << 9 | 1) << 32 | 0)
        assert await bus.read64(CQCSR) == (1 << 9) << 32 | 1 << 16 | 0b11
        # cqen 1->0 with no command in flight: cqon off; fqen 0->1: fqon on, fqof 0.
        await bus.write32(CQCSR + 4, 1 << 9 | 1)
        await bus.write32(CQCSR, 0)
        assert await bus.read64(CQCSR) == (1 << 16 | 1) << 32
    run(Config(), body)


@pytest.mark.parametrize("dw", BUSES)
def test_ipsr_cip(dw):
    async def body(ctx, dut, bus):
        cq = dut.cq
        await bus.write64(ICVEC, 5)                          # civ = 5
        await bus.write32(CQCSR, 1)                          # cqen, cie=0
        await pulse(ctx, cq.set_cmd_ill)
        await ctx.tick()
        assert await bus.read32(IPSR) == 0                   # cie=0: not pending
        assert ctx.get(dut.wsi) == 0
        await bus.write32(CQCSR, 0b11)                       # cie=1: cip set
        assert await bus.read32(IPSR) == 1
        assert ctx.get(dut.wsi) == 1 << 5
        # Cleared while cmd_ill is still 1: set again.
        await bus.write32(IPSR, 1)
        assert await bus.read32(IPSR) == 1
        # cmd_ill cleared: cip stays until software clears it.
        await bus.write32(CQCSR, 1 << 10 | 0b11)
        assert await bus.read32(IPSR) == 1
        await bus.write32(IPSR, 1)
        assert await bus.read32(IPSR) == 0
        assert ctx.get(dut.wsi) == 0
        # fence_w_ip also sets cip.
        await pulse(ctx, cq.set_fence_w_ip)
        await ctx.tick()
        assert await bus.read32(IPSR) == 1
        assert ctx.get(dut.wsi) == 1 << 5
    run(Config(mmio_data_width=dw), body)


def test_ipsr_fip():
    async def body(ctx, dut, bus):
        fq = dut.fq
        await bus.write64(ICVEC, 0xA << 4 | 3)               # fiv = 10, civ = 3
        await bus.write64(FQB, 3)
        await bus.write32(FQCSR, 0b11)                       # fqen, fie
        # A new record: fip, an event that does not persist once cleared.
        await pulse(ctx, fq.advance)
        assert await bus.read32(IPSR) == 0b10
        assert ctx.get(dut.wsi) == 1 << 10
        await bus.write32(IPSR, 0b10)
        assert await bus.read32(IPSR) == 0
        # fqof persists: fip is set again after a clear, until fqof is cleared.
        await pulse(ctx, fq.set_fqof)
        await ctx.tick()
        await bus.write32(IPSR, 0b10)
        assert await bus.read32(IPSR) == 0b10
        await bus.write32(FQCSR, 1 << 9 | 0b11)
        await bus.write32(IPSR, 0b10)
        assert await bus.read32(IPSR) == 0
        # fie=0: a record sets nothing.
        await bus.write32(FQCSR, 0b01)
        await pulse(ctx, fq.advance)
        assert await bus.read32(IPSR) == 0
    run(Config(), body)


def test_wsi_shared_vector():
    # cip and fip on the same vector drive the one line; pmip/pip bits are read-only 0.
    async def body(ctx, dut, bus):
        await bus.write64(ICVEC, M64)
        assert await bus.read64(ICVEC) == 0xFFFF             # reserved and custom read 0
        await bus.write64(ICVEC, 0x77)                       # civ = fiv = 7
        await bus.write32(CQCSR, 0b11)
        await bus.write32(FQCSR, 0b11)
        await pulse(ctx, dut.cq.set_cqmf, dut.fq.set_fqmf)
        await ctx.tick()
        assert await bus.read32(IPSR) == 0b11
        assert ctx.get(dut.wsi) == 1 << 7
        await bus.write32(IPSR, 0xFFFF_FFFF)
        assert await bus.read32(IPSR) == 0b11                # both conditions persist
        await bus.write32(CQCSR, 1 << 8 | 0b11)
        await bus.write32(IPSR, 0b01)
        assert await bus.read32(IPSR) == 0b10
        assert ctx.get(dut.wsi) == 1 << 7
    run(Config(), body)
