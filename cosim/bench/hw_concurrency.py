"""cocotb: hits while a miss is walked, and hit throughput with two ports loaded.

Run by :mod:`iogate.cosim.bench.concurrency` on a two-port build of the full first target
(``FULL.replace(ports=2)``). Latencies are cycles from a request's handshake to its
response's (:class:`~iogate.cosim.check.request.TranslationResponse`).

Environment
-----------
IOGATE_BENCH_REPORT
    The JSON file to merge into (required).
IOGATE_BENCH_HITS
    Requests per port in the two-port burst, default 256.
IOGATE_BENCH_WALK_LATENCY
    ``MemoryTarget`` latency during the long walk, default 50.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles

from iogate.hdl.formats import IosatpMode

from iogate.cosim.bench.hw import DEVICE, FULL, _ok, _read, program_first_stage, record
from iogate.cosim.bench.hw_workloads import quiet
from iogate.cosim.bench.probe import cycle_now
from iogate.cosim.scenarios.session import open_session

#: The build these tests run on.
TWO_PORTS = FULL.replace(ports=2)
HITS = int(os.environ.get("IOGATE_BENCH_HITS", "256"))
WALK_LATENCY = int(os.environ.get("IOGATE_BENCH_WALK_LATENCY", "50"))
#: Cycles after the miss is accepted before the hits are sent (the walk is under way).
HIT_DELAY = 10
#: Hits sent during the walk.
HITS_DURING_WALK = 8


async def _hits_during_walk(s, iovas, hit_port):
    """A miss on port 0 at the walk latency; ``HIT_DELAY`` cycles later,
    ``HITS_DURING_WALK`` hits on ``hit_port``. Returns the figures."""
    miss_port, port = s.tb.ports[0], s.tb.ports[hit_port]
    s.tb.target.latency = WALK_LATENCY
    miss = await miss_port.submit(_read(DEVICE, iovas.pop()))
    await ClockCycles(s.tb.dut.clk, HIT_DELAY)
    events = [await port.submit(_read(DEVICE, iovas[i % 2] + 64 * i))
              for i in range(HITS_DURING_WALK)]
    done = []
    for e in events:
        await e.wait()
        done.append(cycle_now(s.tb.period_ns))
    await miss.wait()
    miss_done = cycle_now(s.tb.period_ns)
    s.tb.target.latency = 1
    responses = [_ok(e.response, "hit during walk") for e in events]
    return {
        "miss_cycles": _ok(miss.response, "walk").cycles,
        "hit_cycles": [r.cycles for r in responses],
        "hit_bits": sum(r.hit for r in responses),
        "hits_answered_before_the_walk": sum(d < miss_done for d in done),
    }


@cocotb.test()
async def hit_under_miss(dut):
    """Hit latency on port 0, and on port 1, while port 0's miss is walked."""
    s = await open_session(dut, TWO_PORTS, mem_latency=1)
    quiet(dut)
    _, iovas = await s.run(program_first_stage, s.bus, IosatpMode.SV39, 4)
    for iova in iovas[:2]:
        _ok(await s.tb.ports[0].translate(_read(DEVICE, iova)), "fill")
    alone = [_ok(await s.tb.ports[0].translate(_read(DEVICE, iovas[0] + 8 * i)), "hit").cycles
             for i in range(4)]
    record("hit_under_miss", {
        "walk_mem_latency": WALK_LATENCY,
        "hit_delay_cycles": HIT_DELAY,
        "hit_cycles_alone": max(alone),
        "same_port": await _hits_during_walk(s, iovas, 0),
        "other_port": await _hits_during_walk(s, iovas, 1),
    })


@cocotb.test()
async def two_ports(dut):
    """Both ports send ``HITS`` hits back to back at the same time."""
    s = await open_session(dut, TWO_PORTS, mem_latency=1)
    quiet(dut)
    _, iovas = await s.run(program_first_stage, s.bus, IosatpMode.SV39, 8)
    for iova in iovas:
        _ok(await s.tb.ports[0].translate(_read(DEVICE, iova)), "fill")

    async def burst(port, out):
        events = [await port.submit(_read(DEVICE, iovas[i % 8] + 8 * (i % 512)))
                  for i in range(HITS)]
        for e in events:
            await e.wait()
            out.append((cycle_now(s.tb.period_ns), _ok(e.response, "hit")))

    start = cycle_now(s.tb.period_ns)
    results = [[], []]
    tasks = [cocotb.start_soon(burst(p, out)) for p, out in zip(s.tb.ports, results, strict=False)]
    for t in tasks:
        await t
    per_port = []
    for out in results:
        end = max(c for c, _ in out)
        first = min(c - r.cycles for c, r in out)
        per_port.append({
            "requests": HITS,
            "cycles": end - first,
            "translations_per_cycle": round(HITS / (end - first), 4),
            "latency_max": max(r.cycles for _, r in out),
            "hit_bits": sum(r.hit for _, r in out),
        })
    end = max(c for out in results for c, _ in out)
    record("two_ports", {
        "per_port": per_port,
        "total_translations_per_cycle": round(2 * HITS / (end - start), 4),
    })
