"""iogate.boards.memory: the on-chip memory as an AXI4 subordinate and through its host ports.

Burst addresses are the AXI spec's (A3.4.1): INCR adds the transfer size each beat; WRAP
wraps at (AxLEN + 1) x size bytes, aligned (a 4-beat wrap of 8-byte beats from 0x18 goes
0x18, 0x00, 0x08, 0x10); FIXED repeats the address. Outside the memory every beat is
DECERR (A3.4.4).
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl.axi import Burst, Resp

from iogate.boards.memory import OnChipMemory

BASE = 0x8000_0000
SIZE = 16 * 1024


class Axi:
    """A testbench AXI4 manager for one OnChipMemory."""

    def __init__(self, ctx, dut):
        self.ctx = ctx
        self.bus = dut.bus

    async def write(self, addr, beats, *, size=3, burst=Burst.INCR, strb=0xFF, awid=5):
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.awlen, len(beats) - 1)
        ctx.set(bus.awsize, size)
        ctx.set(bus.awburst, burst)
        ctx.set(bus.awid, awid)
        ctx.set(bus.awvalid, 1)
        await ctx.tick().until(bus.awready)
        ctx.set(bus.awvalid, 0)
        for i, data in enumerate(beats):
            ctx.set(bus.wdata, data)
            ctx.set(bus.wstrb, strb)
            ctx.set(bus.wlast, i == len(beats) - 1)
            ctx.set(bus.wvalid, 1)
            await ctx.tick().until(bus.wready)
        ctx.set(bus.wvalid, 0)
        ctx.set(bus.bready, 1)
        bid, bresp = await ctx.tick().sample(bus.bid, bus.bresp).until(bus.bvalid)
        ctx.set(bus.bready, 0)
        return bid, Resp(bresp)

    async def read(self, addr, n=1, *, size=3, burst=Burst.INCR, arid=9):
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arlen, n - 1)
        ctx.set(bus.arsize, size)
        ctx.set(bus.arburst, burst)
        ctx.set(bus.arid, arid)
        ctx.set(bus.arvalid, 1)
        await ctx.tick().until(bus.arready)
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.rready, 1)
        beats = []
        for _ in range(n):
            beats.append(await ctx.tick().sample(bus.rid, bus.rdata, bus.rresp, bus.rlast)
                         .until(bus.rvalid))
        ctx.set(bus.rready, 0)
        return [(rid, data, Resp(rresp), last) for rid, data, rresp, last in beats]


def simulate(body, *, size=SIZE):
    dut = OnChipMemory(base=BASE, size=size, addr_width=56)
    out = {}

    async def tb(ctx):
        await body(ctx, dut, Axi(ctx, dut), out)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return out


def test_single_beats_and_ids():
    async def body(ctx, dut, axi, out):
        out["b"] = await axi.write(BASE + 0x40, [0x0102_0304_0506_0708], awid=3)
        out["r"] = await axi.read(BASE + 0x40, arid=12)
    out = simulate(body)
    assert out["b"] == (3, Resp.OKAY)
    assert out["r"] == [(12, 0x0102_0304_0506_0708, Resp.OKAY, 1)]


def test_incr_burst_and_rlast():
    async def body(ctx, dut, axi, out):
        await axi.write(BASE + 0x100, [0x10, 0x11, 0x12, 0x13])
        out["r"] = await axi.read(BASE + 0x100, 4)
    assert simulate(body)["r"] == [(9, 0x10 + i, Resp.OKAY, int(i == 3)) for i in range(4)]


def test_wrap_burst_addresses():
    async def body(ctx, dut, axi, out):
        await axi.write(BASE + 0x18, [0xA, 0xB, 0xC, 0xD], burst=Burst.WRAP)
        out["r"] = [beat[1] for beat in await axi.read(BASE, 4)]
        out["wrapped_read"] = [beat[1] for beat in
                               await axi.read(BASE + 0x10, 4, burst=Burst.WRAP)]
    out = simulate(body)
    # Beats went to 0x18, 0x00, 0x08, 0x10.
    assert out["r"] == [0xB, 0xC, 0xD, 0xA]
    # A wrapping read from 0x10 reads 0x10, 0x18, 0x00, 0x08.
    assert out["wrapped_read"] == [0xD, 0xA, 0xB, 0xC]


def test_fixed_burst_and_narrow_write():
    async def body(ctx, dut, axi, out):
        await axi.write(BASE + 0x200, [1, 2, 3], burst=Burst.FIXED)
        await axi.write(BASE + 0x208, [0xFFFF_FFFF_FFFF_FFFF])
        # A 4-byte write to 0x20c uses lanes 4-7 (A3.4.3).
        await axi.write(BASE + 0x20C, [0x1234_5678 << 32], size=2, strb=0xF0)
        out["r"] = [beat[1] for beat in await axi.read(BASE + 0x200, 2)]
    assert simulate(body)["r"] == [3, 0x1234_5678_FFFF_FFFF]


def test_outside_is_decerr_and_does_not_alias():
    async def body(ctx, dut, axi, out):
        await axi.write(BASE, [0x5A5A])
        out["w"] = await axi.write(BASE + SIZE, [0xDEAD])          # offset 0 beyond
        out["w_high"] = await axi.write((1 << 55) | BASE, [0xDEAD])
        out["r"] = await axi.read(BASE - 8, 2)
        out["inside"] = await axi.read(BASE)
    out = simulate(body)
    assert out["w"] == (5, Resp.DECERR) and out["w_high"] == (5, Resp.DECERR)
    assert [(beat[2], beat[3]) for beat in out["r"]] == [(Resp.DECERR, 0), (Resp.DECERR, 1)]
    assert out["inside"][0][1:3] == (0x5A5A, Resp.OKAY)


def test_host_ports_and_axi_share_the_ram():
    async def body(ctx, dut, axi, out):
        w = dut.host_write
        ctx.set(w.req.payload.addr, BASE + 0x80)
        ctx.set(w.req.payload.data, 0x1111_2222_3333_4444)
        ctx.set(w.req.payload.strb, 0b1100_0011)
        ctx.set(w.req.valid, 1)
        # The AXI write is offered in the same cycle: the two are served in turn.
        axi_write = await axi.write(BASE + 0x80, [0xAAAA_BBBB_CCCC_DDDD])
        out["axi_write"] = axi_write
        # A stream's valid holds until taken.
        await ctx.tick().until(w.req.ready)
        ctx.set(w.req.valid, 0)
        ctx.set(w.resp.ready, 1)
        out["host_write_err"], = await ctx.tick().sample(w.resp.payload.err) \
            .until(w.resp.valid)
        ctx.set(w.resp.ready, 0)
        r = dut.host_read
        for addr in (BASE + 0x80, BASE + SIZE):
            ctx.set(r.req.payload.addr, addr)
            ctx.set(r.req.valid, 1)
            await ctx.tick().until(r.req.ready)
            ctx.set(r.req.valid, 0)
            ctx.set(r.resp.ready, 1)
            out[addr] = await ctx.tick().sample(r.resp.payload.data, r.resp.payload.err) \
                .until(r.resp.valid)
            ctx.set(r.resp.ready, 0)
    out = simulate(body)
    assert out["axi_write"] == (5, Resp.OKAY) and out["host_write_err"] == 0
    # Round-robin from reset serves AR, AW, host read, host write in that order, so the
    # AXI write lands first and the host's strobed bytes over it.
    assert out[BASE + 0x80] == (0x1111_BBBB_CCCC_4444, 0)
    assert out[BASE + SIZE][1] == 1


@pytest.mark.parametrize("kw, error, message", [
    (dict(base=BASE, size=3000), ValueError,
     "size must be a power of two of at least 4096, not 3000"),
    (dict(base=BASE + 0x1000, size=0x4000), ValueError,
     "base must be a non-negative multiple of size (0x4000), not 0x80001000"),
    (dict(base="0", size=0x4000), TypeError, "base must be an integer, not '0'"),
    (dict(base=1 << 32, size=0x4000, addr_width=40), ValueError,
     "base + size (0x100004000) must fit in 32 address bits"),
    (dict(base=BASE, size=0x4000, spram=True), ValueError,
     "spram needs size 0x20000, not 0x4000"),
])
def test_constructor_checks(kw, error, message):
    kw.setdefault("addr_width", 56)
    with pytest.raises(error) as info:
        OnChipMemory(**kw)
    assert str(info.value) == message
