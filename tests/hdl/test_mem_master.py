"""hdl.mem_master: read clients onto one AXI4 manager port.

Expected bus values from the AXI spec (A3.4: ARLEN=0 is one beat, ARSIZE=3 is 8 bytes,
ARBURST INCR=1; RRESP OKAY=0, EXOKAY=1, SLVERR=2, DECERR=3).
"""

import pytest
from amaranth.sim import Simulator

from hdl.axi import Resp
from hdl.mem_master import MemReadMaster


def run(clients, requests, *, rresp=lambda addr: Resp.OKAY, client_ready_after=0):
    """Each client i sends requests[i] back to back; returns (bus reads, answers per client).

    ``client_ready_after`` delays each client's resp.ready by that many cycles.
    """
    dut = MemReadMaster(56, clients)
    bus_reads = []
    answers = [[] for _ in range(clients)]
    idle_checks = []

    async def subordinate(ctx):
        bus = dut.bus
        while True:
            ctx.set(bus.arready, 1)
            _, _, valid, addr, arid, arlen, arsize, arburst, awvalid, wvalid, bready = \
                await ctx.tick().sample(bus.arvalid, bus.araddr, bus.arid, bus.arlen,
                                        bus.arsize, bus.arburst, bus.awvalid, bus.wvalid,
                                        bus.bready)
            idle_checks.append((awvalid, wvalid, bready))
            if not valid:
                continue
            ctx.set(bus.arready, 0)
            bus_reads.append((arid, addr, arlen, arsize, arburst.value))
            ctx.set(bus.rdata, addr * 3)
            ctx.set(bus.rresp, rresp(addr))
            ctx.set(bus.rid, arid)
            ctx.set(bus.rlast, 1)
            ctx.set(bus.rvalid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(bus.rready)
                if ready:
                    break
            ctx.set(bus.rvalid, 0)

    def client(i):
        async def process(ctx):
            port = dut.clients[i]
            for addr in requests[i]:
                ctx.set(port.req.payload.addr, addr)
                ctx.set(port.req.valid, 1)
                await ctx.tick().until(port.req.ready)
                ctx.set(port.req.valid, 0)
                for _ in range(client_ready_after):
                    await ctx.tick()
                    assert not ctx.get(dut.bus.rready)
                ctx.set(port.resp.ready, 1)
                resp, = await ctx.tick().sample(port.resp.payload).until(port.resp.valid)
                ctx.set(port.resp.ready, 0)
                answers[i].append((resp.data, resp.err))
        return process

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(subordinate, background=True)
    for i in range(clients):
        sim.add_testbench(client(i))
    sim.run_until(1e-3)
    assert [len(a) for a in answers] == [len(r) for r in requests], "a client hung"
    assert all(check == (0, 0, 1) for check in idle_checks)
    return bus_reads, answers


def test_single_beat_reads():
    reads, answers = run(1, [[0x1000, 0xFF_FFFF_FFFF_FFF8]])
    assert reads == [(0, 0x1000, 0, 3, 1), (0, 0xFF_FFFF_FFFF_FFF8, 0, 3, 1)]
    assert answers == [[(0x3000, 0), (0xFF_FFFF_FFFF_FFF8 * 3 & (1 << 64) - 1, 0)]]


def test_round_robin():
    # All three clients ask at once, twice: served 1, 2, 0, 1, 2, 0 (the grant starts
    # after the last client served, which resets to 0). Client i's reads use ARID i.
    reads, answers = run(3, [[0x000, 0x008], [0x100, 0x108], [0x200, 0x208]])
    assert [(arid, addr) for arid, addr, *_ in reads] == [
        (1, 0x100), (2, 0x200), (0, 0x000), (1, 0x108), (2, 0x208), (0, 0x008)]
    assert answers == [[(a * 3, 0) for a in addrs]
                       for addrs in ([0x000, 0x008], [0x100, 0x108], [0x200, 0x208])]


@pytest.mark.parametrize("resp, err", [
    (Resp.OKAY, 0), (Resp.EXOKAY, 0), (Resp.SLVERR, 1), (Resp.DECERR, 1)])
def test_errors(resp, err):
    reads, answers = run(1, [[0x40, 0x48]], rresp=lambda addr: resp if addr == 0x40
                         else Resp.OKAY)
    assert answers == [[(0x40 * 3, err), (0x48 * 3, 0)]]


def test_client_back_pressure():
    # rready follows the owning client's ready: the beat waits on the bus.
    reads, answers = run(2, [[0x10], [0x20]], client_ready_after=3)
    assert sorted(answers) == [[(0x30, 0)], [(0x60, 0)]]


@pytest.mark.parametrize("clients", [0, 17, "2"])
def test_constructor_checks(clients):
    with pytest.raises(ValueError, match=rf"^clients must be an integer between 1 and 16, "
                                         rf"not {clients!r}$"):
        MemReadMaster(56, clients)
