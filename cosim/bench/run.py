"""``iogate bench hw`` / ``iogate bench all``: run the cycle benchmarks and summarise.

:func:`run_hw` builds the full first-target top (reusing the cached build), runs the
cocotb module :mod:`cosim.bench.hw` and returns its raw figures; :func:`summarize` adds the
headline keys and the ratios to the targets of DESIGN.md "Performance intent" (a hit: one
translation per clock, at most 2 cycles; a walk: its table reads plus at most 2 cycles per
level); :func:`plot_misses` draws miss cycles against memory latency when matplotlib is
installed (the ``bench`` extra).
"""

import json
import pathlib

from .. import sim as simulators

__all__ = ["run_hw", "summarize", "plot_misses", "run_bench", "WALK_KINDS"]

#: The walk kinds of :mod:`cosim.bench.hw`, in plotting order.
WALK_KINDS = ("miss_sv39", "miss_sv48", "miss_sv39_over_sv39x4", "miss_sv48_over_sv48x4",
              "ddt_1lvl", "ddt_2lvl", "ddt_3lvl")


def run_hw(sim="verilator", *, latencies=(1, 10, 50), samples=3, hits=256,
           work_dir="build/bench", testcases=None):
    """Run :mod:`cosim.bench.hw` on ``sim`` and return its raw JSON as a dict.

    Parameters
    ----------
    sim : str
        ``"verilator"`` or ``"icarus"``.
    latencies : sequence of int
        ``MemoryTarget`` latencies (extra cycles per memory beat) to measure walks at.
    samples : int
        Misses per walk kind and latency.
    hits : int
        Requests in the back-to-back hit burst.
    work_dir : path
        Where the simulator runs and the raw report goes.
    testcases : list of str, optional
        A subset of the module's tests (all by default).

    Raises
    ------
    ValueError
        If a latency is negative or ``samples``/``hits`` is not positive.
    AssertionError
        If a benchmark test failed in the simulator.
    """
    latencies = list(latencies)
    if not latencies or any(not isinstance(v, int) or v < 0 for v in latencies):
        raise ValueError(f"latencies must be non-negative integers, not {latencies!r}")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, not {samples!r}")
    if not isinstance(hits, int) or hits < 2:
        raise ValueError(f"hits must be an integer of at least 2, not {hits!r}")
    from .hw import FULL
    work = pathlib.Path(work_dir).resolve() / sim
    work.mkdir(parents=True, exist_ok=True)
    report = work / "hw.json"
    report.unlink(missing_ok=True)
    b = simulators.build_iommu(FULL, sim, waves=False)
    simulators.run(b, "cosim.bench.hw", testcase=testcases, test_dir=work,
                   log_file=work / "sim.log",
                   extra_env={"IOGATE_BENCH_REPORT": str(report),
                              "IOGATE_BENCH_LATENCIES": ",".join(map(str, latencies)),
                              "IOGATE_BENCH_SAMPLES": str(samples),
                              "IOGATE_BENCH_HITS": str(hits)})
    raw = json.loads(report.read_text())
    raw["sim"] = sim
    return raw


def summarize(hw=None, model=None):
    """The report: raw figures under ``hw``/``model`` plus the headline keys.

    Headline keys (present when their measurement ran): ``hit_latency_cycles``,
    ``hit_translations_per_cycle``, ``hit_latency_ratio``,
    ``hit_throughput_ratio`` (1.0 = the target), ``<kind>_cycles_mem<L>`` and
    ``<kind>_ratio_mem<L>`` for every walk kind and latency (``sv39_miss_cycles_mem1``
    for the Sv39 walk at latency 1), ``command_cycles_mem<L>`` and ``model_walk_tps``.
    """
    out = {}
    if hw is not None:
        hits = hw.get("hits")
        if hits:
            out["hit_latency_cycles"] = hits["latency_cycles"]
            out["hit_translations_per_cycle"] = hits["translations_per_cycle"]
            out["hit_latency_ratio"] = hits["latency_ratio_to_target"]
            out["hit_throughput_ratio"] = hits["throughput_ratio_to_target"]
        for kind in WALK_KINDS:
            short = "sv39_miss" if kind == "miss_sv39" else kind
            for latency, f in hw.get(kind, {}).items():
                out[f"{short}_cycles_mem{latency}"] = f["cycles"]
                out[f"{short}_ratio_mem{latency}"] = f.get("ratio_to_target")
        for latency, f in hw.get("command", {}).items():
            out[f"command_cycles_mem{latency}"] = f["cycles"]
        out["hw"] = hw
    if model is not None:
        out["model_walk_tps"] = model["full_walk"]
        out["model_cached_tps"] = model["cached"]
        out["model"] = model
    return out


def plot_misses(hw, path):
    """Miss cycles per walk kind against memory latency, as a PNG at ``path``.

    Returns the path, or None (with a message) when matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return None
    matplotlib.use("Agg")   # no display needed
    from matplotlib import pyplot
    fig, ax = pyplot.subplots(figsize=(7, 4.5))
    for kind in WALK_KINDS:
        figures = hw.get(kind)
        if not figures:
            continue
        xs = sorted(int(k) for k in figures)
        ax.plot(xs, [figures[str(x)]["cycles"] for x in xs], marker="o", label=kind)
    ax.set_xlabel("MemoryTarget latency (extra cycles per beat)")
    ax.set_ylabel("miss latency (cycles)")
    ax.set_title(f"iogate miss latency ({hw.get('sim', '?')})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    return path


def run_bench(what, *, sim="verilator", seconds=2.0, out="results/bench.json",
              plot="results/miss_latency.png", **hw_options):
    """``what`` = ``"hw"`` or ``"all"`` (hw and model): run, write ``out`` and the plot."""
    if what not in ("hw", "all"):
        raise ValueError(f"what must be 'hw' or 'all', not {what!r}")
    hw = run_hw(sim, **hw_options)
    model = None
    if what == "all":
        from ..model.bench import bench_model
        model = bench_model(seconds=seconds)
    result = summarize(hw, model)
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if plot:
        plot_misses(hw, plot)
    return result
