"""iogate.boards.requester: counts, tags and cycle counting under a port that stalls.

The port model takes a request only on even cycles (``ready`` on cycles 0, 2, 4, ... of
the run) and answers each one 2 cycles after taking it. For a run of 3: taken on cycles
0, 2 and 4, answered on 2, 4 and 6, so the run takes 6 cycles, worked by hand.
"""

import collections

import pytest
from amaranth.sim import Simulator

from iogate.boards.requester import Requester


@pytest.mark.parametrize("pasid", [False, True])
def test_stalling_port(pasid):
    # With a PASID the port is wider, and the board's requests all go out untagged.
    dut = Requester(2, pasid=pasid)
    seen = {}

    async def port(ctx):
        req, resp = dut.tr.req, dut.tr.resp
        pending = collections.deque()
        cycle = 0
        started = False
        tags = []
        while True:
            ready = int(cycle % 2 == 0) if started else 1
            ctx.set(req.ready, ready)
            head = pending[0] if pending and pending[0][0] <= cycle else None
            ctx.set(resp.valid, head is not None)
            if head is not None:
                ctx.set(resp.payload.tag, head[1])
                ctx.set(resp.payload.ppn, 0x100 + head[1])
                ctx.set(resp.payload.hit, head[1] != 0)
            _, _, valid, tag, taken = await ctx.tick().sample(req.valid, req.payload.tag,
                                                              resp.ready)
            if valid and not started:
                started, cycle = True, 0         # the run's first cycle is cycle 0
            if valid and ready:
                if pasid:
                    seen.setdefault("pv", []).append(ctx.get(req.payload.pv))
                tags.append(tag)
                pending.append((cycle + 2, tag))
                seen["tags"] = list(tags)
            if head is not None and taken:
                pending.popleft()
            cycle += 1 if started else 0

    async def host(ctx):
        ctx.set(dut.cmd.payload.device_id, 0x42)
        ctx.set(dut.cmd.payload.iova, 0xABC000)
        ctx.set(dut.cmd.payload.access, 1)
        ctx.set(dut.cmd.payload.count, 3)
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        await ctx.tick()
        r = dut.result
        seen["result"] = (ctx.get(r.ppn), ctx.get(r.hit), ctx.get(r.hits), ctx.get(r.cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(port, background=True)
    sim.add_testbench(host)
    sim.run()
    assert seen["tags"] == [0, 1, 2]
    assert seen.get("pv") == ([0, 0, 0] if pasid else None)
    # The last response (tag 2): ppn 0x102, a hit; two of three hits; 6 cycles.
    assert seen["result"] == (0x102, 1, 2, 6)


@pytest.mark.parametrize("tag_width, error, message", [
    (0, ValueError, "tag_width must be between 1 and 32, not 0"),
    (33, ValueError, "tag_width must be between 1 and 32, not 33"),
    (True, TypeError, "tag_width must be an integer, not True"),
])
def test_constructor_checks(tag_width, error, message):
    with pytest.raises(error) as info:
        Requester(tag_width)
    assert str(info.value) == message
