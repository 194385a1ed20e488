"""``iogate bench``'s concurrency figures: hit-under-miss and two loaded ports.

Builds ``FULL.replace(ports=2)`` (on Icarus by default: cycles do not depend on the
simulator, and Icarus compiles in seconds) and runs :mod:`iogate.cosim.bench.hw_concurrency`.
"""

import pathlib

from iogate.cosim.bench.runner import run_module

__all__ = ["run_concurrency"]


def run_concurrency(sim="icarus", *, hits=256, walk_latency=50,
                    work_dir="build/bench/concurrency"):
    """Run the hit-under-miss and two-port tests; returns their figures as a dict.

    Raises
    ------
    ValueError
        If ``hits`` is below 2 or ``walk_latency`` is negative.
    AssertionError
        If a test failed in the simulator.
    """
    if not isinstance(hits, int) or hits < 2:
        raise ValueError(f"hits must be an integer of at least 2, not {hits!r}")
    if not isinstance(walk_latency, int) or walk_latency < 0:
        raise ValueError(f"walk_latency must be a non-negative integer, not {walk_latency!r}")
    from iogate.cosim.bench.hw_concurrency import TWO_PORTS
    raw = run_module(TWO_PORTS, sim, "iogate.cosim.bench.hw_concurrency",
                     pathlib.Path(work_dir).resolve() / sim, "concurrency.json",
                     {"IOGATE_BENCH_HITS": str(hits),
                      "IOGATE_BENCH_WALK_LATENCY": str(walk_latency)})
    raw["sim"] = sim
    return raw
