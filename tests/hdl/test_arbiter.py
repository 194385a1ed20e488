"""iogate.hdl.arbiter: the round-robin arbiter shared by the memory port, the translation
ports and the board RAM."""

import pytest
from amaranth.sim import Simulator

from iogate.hdl.arbiter import RoundRobin


def run(dut, steps):
    """Drive ``(requests, advance)`` one cycle each; return the (grant, valid) seen."""
    seen = []

    async def bench(ctx):
        for requests, advance in steps:
            ctx.set(dut.requests, requests)
            ctx.set(dut.advance, advance)
            seen.append((ctx.get(dut.grant), ctx.get(dut.valid)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_nothing_asked():
    assert run(RoundRobin(3), [(0, 0), (0, 1)]) == [(0, 0), (0, 0)]


def test_out_of_reset_starts_after_last():
    # last=0 makes requester 1 the first choice; last=count-1 makes requester 0 first.
    assert run(RoundRobin(4), [(0b1111, 0)]) == [(1, 1)]
    assert run(RoundRobin(4, last=3), [(0b1111, 0)]) == [(0, 1)]


def test_fair_under_full_load():
    # Everyone asking and every grant taken: each requester in turn, none twice in a row.
    seen = run(RoundRobin(3, last=2), [(0b111, 1)] * 6)
    assert [g for g, _ in seen] == [0, 1, 2, 0, 1, 2]


def test_skips_idle_requesters():
    seen = run(RoundRobin(4, last=3), [(0b1010, 1)] * 4)
    assert [g for g, _ in seen] == [1, 3, 1, 3]


def test_grant_held_while_busy():
    # Without ``advance`` the search order stays put: the same requester keeps the grant.
    seen = run(RoundRobin(3, last=2), [(0b111, 1), (0b111, 0), (0b111, 0), (0b111, 1),
                                       (0b111, 1)])
    assert [g for g, _ in seen] == [0, 1, 1, 1, 2]


def test_served_requester_goes_last():
    # Requester 0 was served; when 2 and 0 ask, 2 goes first even though 0 is lower.
    seen = run(RoundRobin(3, last=2), [(0b001, 1), (0b101, 1), (0b101, 1)])
    assert [g for g, _ in seen] == [0, 2, 0]


def test_single_requester():
    assert run(RoundRobin(1), [(1, 1), (0, 0), (1, 1)]) == [(0, 1), (0, 0), (0, 1)]


@pytest.mark.parametrize("count, last", [(0, 0), (65, 0), ("2", 0), (2, 2), (2, -1)])
def test_refuses_bad_parameters(count, last):
    with pytest.raises(ValueError):
        RoundRobin(count, last=last)
