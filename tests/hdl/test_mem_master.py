"""iogate.hdl.mem_master: read and write clients onto one AXI4 manager port.

Expected bus values from the AXI spec (A3.4: ARLEN/AWLEN=0 is one beat, ARSIZE/AWSIZE=3 is
8 bytes and 2 is 4 bytes, ARBURST/AWBURST INCR=1; RRESP/BRESP OKAY=0, EXOKAY=1, SLVERR=2,
DECERR=3).
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl.axi import Resp
from iogate.hdl.mem_master import MemoryMaster


def run(clients, requests, *, rresp=lambda addr: Resp.OKAY, client_ready_after=0):
    """Each client i sends requests[i] back to back; returns (bus reads, answers per client).

    ``client_ready_after`` delays each client's resp.ready by that many cycles.
    """
    dut = MemoryMaster(56, clients)
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
        MemoryMaster(56, clients)


@pytest.mark.parametrize("write_clients", [-1, 17, "1"])
def test_constructor_checks_write_clients(write_clients):
    with pytest.raises(ValueError, match=rf"^write_clients must be an integer between 0 and "
                                         rf"16, not {write_clients!r}$"):
        MemoryMaster(56, 1, write_clients)


def run_writes(clients, requests, *, bresp=lambda addr: Resp.OKAY, aw_delay=0, w_delay=0,
               reads=()):
    """Write client i sends requests[i] (addr, data, strb) back to back; read client 0
    sends ``reads`` at the same time. Returns (bus writes, write answers, read answers).

    ``aw_delay``/``w_delay`` hold awready/wready low that many cycles after the channel
    becomes valid, so the two handshakes happen apart.
    """
    dut = MemoryMaster(56, 1, clients)
    bus_writes = []
    answers = [[] for _ in range(clients)]
    read_answers = []

    async def subordinate_writes(ctx):
        bus = dut.bus
        while True:
            aw = w = None
            waited = {"aw": 0, "w": 0}
            while aw is None or w is None:
                ctx.set(bus.awready, aw is None and waited["aw"] >= aw_delay)
                ctx.set(bus.wready, w is None and waited["w"] >= w_delay)
                _, _, awv, awr, *rest = await ctx.tick().sample(
                    bus.awvalid, bus.awready,
                    bus.awid, bus.awaddr, bus.awlen, bus.awsize, bus.awburst,
                    bus.wvalid, bus.wready, bus.wdata, bus.wstrb, bus.wlast)
                aw_p, (wv, wr, *w_p) = rest[:5], rest[5:]
                if aw is None and awv:
                    if awr:
                        aw = aw_p
                    waited["aw"] += 1
                if w is None and wv:
                    if wr:
                        w = w_p
                    waited["w"] += 1
            ctx.set(bus.awready, 0)
            ctx.set(bus.wready, 0)
            awid, awaddr, awlen, awsize, awburst = aw
            wdata, wstrb, wlast = w
            bus_writes.append((awid, awaddr, awlen, awsize, awburst.value, wdata, wstrb,
                               wlast))
            ctx.set(bus.bid, awid)
            ctx.set(bus.bresp, bresp(awaddr))
            ctx.set(bus.bvalid, 1)
            await ctx.tick().until(bus.bready)
            ctx.set(bus.bvalid, 0)

    async def subordinate_reads(ctx):
        bus = dut.bus
        while True:
            ctx.set(bus.arready, 1)
            _, _, valid, addr = await ctx.tick().sample(bus.arvalid, bus.araddr)
            if not valid:
                continue
            ctx.set(bus.arready, 0)
            ctx.set(bus.rdata, addr * 3)
            ctx.set(bus.rresp, Resp.OKAY)
            ctx.set(bus.rlast, 1)
            ctx.set(bus.rvalid, 1)
            await ctx.tick().until(bus.rready)
            ctx.set(bus.rvalid, 0)

    def client(i):
        async def process(ctx):
            port = dut.write_clients[i]
            for addr, data, strb in requests[i]:
                ctx.set(port.req.payload, {"addr": addr, "data": data, "strb": strb})
                ctx.set(port.req.valid, 1)
                await ctx.tick().until(port.req.ready)
                ctx.set(port.req.valid, 0)
                ctx.set(port.resp.ready, 1)
                resp, = await ctx.tick().sample(port.resp.payload).until(port.resp.valid)
                ctx.set(port.resp.ready, 0)
                answers[i].append(resp.err)
        return process

    async def reader(ctx):
        port = dut.clients[0]
        for addr in reads:
            ctx.set(port.req.payload.addr, addr)
            ctx.set(port.req.valid, 1)
            await ctx.tick().until(port.req.ready)
            ctx.set(port.req.valid, 0)
            ctx.set(port.resp.ready, 1)
            resp, = await ctx.tick().sample(port.resp.payload).until(port.resp.valid)
            ctx.set(port.resp.ready, 0)
            read_answers.append(resp.data)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(subordinate_writes, background=True)
    sim.add_testbench(subordinate_reads, background=True)
    for i in range(clients):
        sim.add_testbench(client(i))
    sim.add_testbench(reader)
    sim.run_until(1e-3)
    assert [len(a) for a in answers] == [len(r) for r in requests], "a write client hung"
    assert len(read_answers) == len(reads), "the read client hung"
    return bus_writes, answers, read_answers


@pytest.mark.parametrize("addr, data, strb, awsize", [
    # A doubleword (a fault-record beat): 8 bytes.
    (0x40_0000, 0x0123_4567_89AB_CDEF, 0xFF, 3),
    # The IOFENCE.C store, 4 bytes: low half at an address with bit 2 clear, high half
    # at one with bit 2 set.
    (0x8000_1000, 0x0000_0000_DEAD_BEEF, 0x0F, 2),
    (0x8000_1004, 0xDEAD_BEEF_0000_0000, 0xF0, 2),
])
def test_single_beat_writes(addr, data, strb, awsize):
    writes, answers, _ = run_writes(1, [[(addr, data, strb)]])
    # (AWID, AWADDR, AWLEN, AWSIZE, AWBURST, WDATA, WSTRB, WLAST)
    assert writes == [(0, addr, 0, awsize, 1, data, strb, 1)]
    assert answers == [[0]]


@pytest.mark.parametrize("aw_delay, w_delay", [(0, 0), (3, 0), (0, 3), (2, 5)])
def test_address_and_data_handshakes_apart(aw_delay, w_delay):
    writes, answers, _ = run_writes(1, [[(0x100, 1, 0xFF), (0x108, 2, 0xFF)]],
                                    aw_delay=aw_delay, w_delay=w_delay)
    assert [(w[1], w[5]) for w in writes] == [(0x100, 1), (0x108, 2)]
    assert answers == [[0, 0]]


@pytest.mark.parametrize("resp, err", [
    (Resp.OKAY, 0), (Resp.EXOKAY, 0), (Resp.SLVERR, 1), (Resp.DECERR, 1)])
def test_write_errors(resp, err):
    writes, answers, _ = run_writes(1, [[(0x40, 5, 0xFF), (0x48, 6, 0xFF)]],
                                    bresp=lambda addr: resp if addr == 0x40 else Resp.OKAY)
    assert answers == [[err, 0]]


def test_write_round_robin():
    # Both write clients ask at once, twice: served 1, 0, 1, 0 (the grant starts after
    # the last client served, which resets to 0). Write client i uses AWID i.
    writes, answers, _ = run_writes(2, [[(0x000, 10, 0xFF), (0x008, 11, 0xFF)],
                                        [(0x100, 20, 0xFF), (0x108, 21, 0xFF)]])
    assert [(w[0], w[1], w[5]) for w in writes] == [
        (1, 0x100, 20), (0, 0x000, 10), (1, 0x108, 21), (0, 0x008, 11)]
    assert answers == [[0, 0], [0, 0]]


def test_reads_and_writes_together():
    # The read and write sides run independently: both finish, with the right answers.
    writes, answers, reads = run_writes(1, [[(0x200 + 8 * i, i, 0xFF) for i in range(4)]],
                                        reads=[0x10, 0x18, 0x20])
    assert [w[5] for w in writes] == [0, 1, 2, 3]
    assert reads == [0x30, 0x48, 0x60]
