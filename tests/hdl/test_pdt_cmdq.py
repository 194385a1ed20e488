"""iogate.hdl.cmdq with process contexts: IODIR.INVAL_PDT.

Expected values from spec "IOMMU directory cache invalidation commands" (reference N.1.7): the
command is opcode 3, func3 1, PID 31:12, DV 33, DID 63:40 (reserved 11:10, 32, 39:34, dword1);
DV=0 is cmd_ill; DID must fit ddtp.iommu_mode (1LVL 7 bits, 2LVL 16); PID must fit the widest
mode built (PD8 8 bits, PD17 17, PD20 20); without process contexts the command is cmd_ill.
IODIR.INVAL_DDT is unchanged.
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config
from iogate.hdl.cmdq import CommandQueue

BASE_PPN = 0x300
LVL1, LVL2, LVL3 = 2, 3, 4


def iodir(func3, *, pid=0, dv=0, did=0, extra0=0, extra1=0):
    return 3 | func3 << 7 | pid << 12 | dv << 33 | did << 40 | extra0, extra1


def execute(command, *, pd_levels, mode=LVL3):
    """Run one command; the events it caused: ("pdtc", did, pid), ("ddtc", all, did),
    "cmd_ill", "advance"."""
    cfg = Config.full().replace(pd_levels=pd_levels)
    dut = CommandQueue(cfg)
    events = []
    mem = {BASE_PPN << 12: command[0], (BASE_PPN << 12) + 8: command[1]}

    async def engine(ctx):
        ctx.set(dut.regs.ppn, BASE_PPN)
        ctx.set(dut.regs.tail, 1)
        ctx.set(dut.regs.run, 1)
        ctx.set(dut.iommu_mode, mode)
        ctx.set(dut.ddtc_inval.ready, 1)
        if pd_levels:
            ctx.set(dut.pdtc_inval.ready, 1)
        for _ in range(60):
            await ctx.tick()
            if ctx.get(dut.regs.advance):
                events.append("advance")
                ctx.set(dut.regs.head, 1)
            if ctx.get(dut.regs.set_cmd_ill):
                events.append("cmd_ill")
                ctx.set(dut.regs.run, 0)
            if ctx.get(dut.ddtc_inval.valid):
                p = ctx.get(dut.ddtc_inval.payload)
                events.append(("ddtc", p.all, p.device_id))
            if pd_levels and ctx.get(dut.pdtc_inval.valid):
                p = ctx.get(dut.pdtc_inval.payload)
                events.append(("pdtc", p.device_id, p.pid))

    async def fetch(ctx):
        port = dut.fetch
        while True:
            ctx.set(port.req.ready, 1)
            _, _, valid, req = await ctx.tick().sample(port.req.valid, port.req.payload)
            if not valid:
                continue
            ctx.set(port.req.ready, 0)
            ctx.set(port.resp.payload, {"data": mem.get(req.addr, 0), "err": 0})
            ctx.set(port.resp.valid, 1)
            await ctx.tick().until(port.resp.ready)
            ctx.set(port.resp.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(fetch, background=True)
    sim.add_testbench(engine)
    sim.run()
    return events


@pytest.mark.parametrize("pd_levels, pid, legal", [
    (1, 0xFF, True), (1, 0x100, False),
    (2, 0x1_FFFF, True), (2, 0x2_0000, False),
    (3, 0xF_FFFF, True),
])
def test_inval_pdt_pid_width(pd_levels, pid, legal):
    events = execute(iodir(1, dv=1, did=0x1234, pid=pid), pd_levels=pd_levels)
    assert events == ([("pdtc", 0x1234, pid), "advance"] if legal else ["cmd_ill"])


@pytest.mark.parametrize("mode, did, legal", [
    (LVL1, 0x7F, True), (LVL1, 0x80, False), (LVL2, 0xFFFF, True), (LVL2, 0x1_0000, False),
    (LVL3, 0xFF_FFFF, True),
])
def test_inval_pdt_did_width(mode, did, legal):
    events = execute(iodir(1, dv=1, did=did, pid=5), pd_levels=3, mode=mode)
    assert events == ([("pdtc", did, 5), "advance"] if legal else ["cmd_ill"])


@pytest.mark.parametrize("name, command", [
    ("dv_0", iodir(1, did=1, pid=1)),
    ("bit_10", iodir(1, dv=1, did=1, extra0=1 << 10)),
    ("bit_32", iodir(1, dv=1, did=1, extra0=1 << 32)),
    ("bit_39", iodir(1, dv=1, did=1, extra0=1 << 39)),
    ("dword1", iodir(1, dv=1, did=1, extra1=1)),
])
def test_inval_pdt_illegal(name, command):
    assert execute(command, pd_levels=3) == ["cmd_ill"]


def test_inval_pdt_without_process_contexts_is_illegal():
    assert execute(iodir(1, dv=1, did=1, pid=1), pd_levels=0) == ["cmd_ill"]


def test_inval_ddt_unchanged():
    assert execute(iodir(0, dv=1, did=7), pd_levels=3) == [("ddtc", 0, 7), "advance"]
    assert execute(iodir(0, pid=1), pd_levels=3) == ["cmd_ill"]   # PID reserved
