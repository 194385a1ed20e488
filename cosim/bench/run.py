"""``iogate bench hw`` / ``iogate bench all``: run the cycle benchmarks and summarise.

:func:`run_hw` builds the full first-target top (reusing the cached build), runs the
cocotb module :mod:`iogate.cosim.bench.hw` and returns its raw figures (:func:`run_hw_pdt` the
same for the process-directory walks of :mod:`iogate.cosim.bench.hw_pdt`, on a build with
process contexts, and :func:`run_hw_msi` for the MSI translations of
:mod:`iogate.cosim.bench.hw_msi` on ``Config.msi()``; ``iogate bench hw`` puts them under
``hw["pdt"]`` and ``hw["msi"]``, ``iogate bench msi`` runs the MSI part alone and merges it
into the report's ``hw``); :func:`summarize` adds the
headline keys and the ratios to the targets of ``docs/design.md`` "Performance intent" (a hit: one
translation per clock, at most 2 cycles; a walk: its table reads plus at most 2 cycles per
level); :func:`plot_misses` draws miss cycles against memory latency when matplotlib is
installed (the ``bench`` extra); :func:`run_bench` runs any part (or all) of the
benchmarks, the workloads and the IOTLB sweep of :mod:`iogate.cosim.bench.sweep` and the
concurrency figures of :mod:`iogate.cosim.bench.concurrency` included, merges them into one
report and can rewrite the README's table (:mod:`iogate.cosim.bench.table`).
"""

import json
import pathlib

from iogate.cosim.bench import plotting
from iogate.cosim.bench.runner import run_module

__all__ = ["run_hw", "run_hw_pdt", "run_hw_msi", "summarize", "headlines", "plot_misses",
           "run_bench", "WALK_KINDS", "PDT_KINDS", "MSI_KINDS", "PARTS", "EXTRA_PARTS"]

#: The walk kinds of :mod:`iogate.cosim.bench.hw`, in plotting order.
WALK_KINDS = ("miss_sv39", "miss_sv48", "miss_sv39_over_sv39x4", "miss_sv48_over_sv48x4",
              "ddt_1lvl", "ddt_2lvl", "ddt_3lvl")
#: The process-directory kinds of :mod:`iogate.cosim.bench.hw_pdt` (under ``hw["pdt"]``).
PDT_KINDS = ("pdt_pd8", "pdt_pd17", "pdt_pd20", "pdt_pd17_over_sv48x4")
#: The MSI figures of :mod:`iogate.cosim.bench.hw_msi` (under ``hw["msi"]["msi"][<L>]``).
MSI_KINDS = ("basic_pte_read", "basic_iotlb_hit", "mrif_pte_read", "mrif_pte_cached",
             "mrif_read", "g_stage_walk")


def _check_sizes(latencies, samples):
    latencies = list(latencies)
    if not latencies or any(not isinstance(v, int) or v < 0 for v in latencies):
        raise ValueError(f"latencies must be non-negative integers, not {latencies!r}")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, not {samples!r}")
    return latencies


def run_hw(sim="verilator", *, latencies=(1, 10, 50), samples=3, hits=256,
           work_dir="build/bench", testcases=None):
    """Run :mod:`iogate.cosim.bench.hw` on ``sim`` and return its raw JSON as a dict.

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
    latencies = _check_sizes(latencies, samples)
    if not isinstance(hits, int) or hits < 2:
        raise ValueError(f"hits must be an integer of at least 2, not {hits!r}")
    from iogate.cosim.bench.hw import FULL
    raw = run_module(FULL, sim, "iogate.cosim.bench.hw", pathlib.Path(work_dir).resolve() / sim,
                     "hw.json", {"IOGATE_BENCH_LATENCIES": ",".join(map(str, latencies)),
                                 "IOGATE_BENCH_SAMPLES": str(samples),
                                 "IOGATE_BENCH_HITS": str(hits)}, testcase=testcases)
    raw["sim"] = sim
    return raw


def run_hw_pdt(sim="verilator", *, latencies=(1, 10, 50), samples=3, work_dir="build/bench",
               testcases=None):
    """Run :mod:`iogate.cosim.bench.hw_pdt` (process-directory walks, on its own build
    :data:`~iogate.cosim.bench.hw_pdt.PROCESS`) on ``sim`` and return its raw JSON as a dict,
    with ``sim`` and ``config`` (what the build changes of ``Config.full()``).

    Parameters as :func:`run_hw`; the run goes to ``work_dir/<sim>-pdt``.

    Raises
    ------
    ValueError
        If a latency is negative or ``samples`` is not positive.
    AssertionError
        If a benchmark test failed in the simulator.
    """
    latencies = _check_sizes(latencies, samples)
    from iogate.cosim.bench.hw_pdt import PROCESS, config_label
    raw = run_module(PROCESS, sim, "iogate.cosim.bench.hw_pdt",
                     pathlib.Path(work_dir).resolve() / f"{sim}-pdt", "hw_pdt.json",
                     {"IOGATE_BENCH_LATENCIES": ",".join(map(str, latencies)),
                      "IOGATE_BENCH_SAMPLES": str(samples)}, testcase=testcases)
    raw["sim"] = sim
    raw["config"] = config_label(PROCESS)
    return raw


def run_hw_msi(sim="verilator", *, latencies=(1, 10, 50), samples=3, work_dir="build/bench",
               testcases=None):
    """Run :mod:`iogate.cosim.bench.hw_msi` (MSI translations, on its own build
    :data:`~iogate.cosim.bench.hw_msi.MSI`) on ``sim`` and return its raw JSON as a dict,
    with ``sim`` and ``config`` (what the build changes of ``Config.full()``).

    Parameters as :func:`run_hw`; the run goes to ``work_dir/<sim>-msi``.

    Raises
    ------
    ValueError
        If a latency is negative or ``samples`` is not positive.
    AssertionError
        If a benchmark test failed in the simulator (an answer not the model's included).
    """
    latencies = _check_sizes(latencies, samples)
    from iogate.cosim.bench.hw_msi import MSI, config_label
    raw = run_module(MSI, sim, "iogate.cosim.bench.hw_msi",
                     pathlib.Path(work_dir).resolve() / f"{sim}-msi", "hw_msi.json",
                     {"IOGATE_BENCH_LATENCIES": ",".join(map(str, latencies)),
                      "IOGATE_BENCH_SAMPLES": str(samples)}, testcase=testcases)
    raw["sim"] = sim
    raw["config"] = config_label(MSI)
    return raw


def summarize(hw=None, model=None):
    """The report: raw figures under ``hw``/``model`` plus the headline keys.

    Headline keys (present when their measurement ran): ``hit_latency_cycles``,
    ``hit_translations_per_cycle``, ``hit_latency_ratio``,
    ``hit_throughput_ratio`` (1.0 = the target), ``<kind>_cycles_mem<L>`` and
    ``<kind>_ratio_mem<L>`` for every walk kind and latency (``sv39_miss_cycles_mem1``
    for the Sv39 walk at latency 1), ``command_cycles_mem<L>`` and ``model_walk_tps``.
    With process-directory figures (``hw["pdt"]``, :func:`run_hw_pdt`), for every kind of
    :data:`PDT_KINDS` and latency: ``<kind>_miss_cycles_mem<L>`` (the PC cold),
    ``<kind>_warm_cycles_mem<L>`` (the PC cached), ``<kind>_walk_cycles_mem<L>`` (their
    difference: the PDT walk) and ``<kind>_ratio_mem<L>`` (cold against its walk target),
    e.g. ``pdt_pd20_miss_cycles_mem10``; and ``pdt_hit_latency_cycles`` and
    ``pdt_hit_translations_per_cycle`` (hits of a PASID-tagged request). With MSI figures
    (``hw["msi"]``, :func:`run_hw_msi`): ``msi_<kind>_cycles_mem<L>`` for every kind of
    :data:`MSI_KINDS` and latency, e.g. ``msi_basic_pte_read_cycles_mem10``.
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
        pdt_hits = hw.get("pdt", {}).get("pdt_hits")
        if pdt_hits:
            out["pdt_hit_latency_cycles"] = pdt_hits["latency_cycles"]
            out["pdt_hit_translations_per_cycle"] = pdt_hits["translations_per_cycle"]
        for kind in PDT_KINDS:
            for latency, f in hw.get("pdt", {}).get(kind, {}).items():
                out[f"{kind}_miss_cycles_mem{latency}"] = f["cycles"]
                out[f"{kind}_warm_cycles_mem{latency}"] = f.get("warm_cycles")
                out[f"{kind}_walk_cycles_mem{latency}"] = f.get("pdt_walk_cycles")
                out[f"{kind}_ratio_mem{latency}"] = f.get("ratio_to_target")
        for latency, f in hw.get("msi", {}).get("msi", {}).items():
            for kind in MSI_KINDS:
                if kind in f:
                    out[f"msi_{kind}_cycles_mem{latency}"] = f[kind]["cycles"]
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
    pyplot = plotting.pyplot()
    if pyplot is None:
        return None
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


#: What ``run_bench`` can run; ``"all"`` runs every one, in this order.
PARTS = ("hw", "model", "workloads", "sweep", "concurrency", "speed", "resources")
#: Parts run only when asked for: ``msi`` (the MSI figures alone, merged into ``hw``).
EXTRA_PARTS = ("msi",)


def headlines(report):
    """Headline keys of the workload, sweep and concurrency sections of ``report``:
    ``<workload>_hit_rate``, ``<workload>_cycles_per_translation``,
    ``hit_under_miss_cycles`` (the slowest hit sent during a walk, on the walking port),
    ``two_port_translations_per_cycle`` (both ports together)."""
    out = {}
    for name, f in report.get("workloads", {}).items():
        if isinstance(f, dict) and "hit_rate" in f:
            out[f"{name}_hit_rate"] = f["hit_rate"]
            out[f"{name}_cycles_per_translation"] = f["cycles_per_translation"]
    concurrency = report.get("concurrency", {})
    if "hit_under_miss" in concurrency:
        out["hit_under_miss_cycles"] = max(
            concurrency["hit_under_miss"]["same_port"]["hit_cycles"])
    if "two_ports" in concurrency:
        out["two_port_translations_per_cycle"] = \
            concurrency["two_ports"]["total_translations_per_cycle"]
    return out


def _optional(module, function, progress):
    """``iogate.cosim.bench.<module>.<function>()`` if that module exists, else None.

    Speed and FPGA resources are measured by modules of their own; a checkout without
    them (or without their tools) still benchmarks everything else.
    """
    import importlib
    try:
        mod = importlib.import_module(f"{__package__}.{module}")
    except ImportError as e:
        progress(f"  {module}: not measured ({e})")
        return None
    try:
        return getattr(mod, function)()
    except Exception as e:    # a missing toolchain must not lose the other figures
        progress(f"  {module}: not measured ({type(e).__name__}: {e})")
        return None


def run_bench(what, *, sim="verilator", seconds=2.0, out="results/bench.json",
              plot="results/miss_latency.png", hit_rate_plot="results/iotlb_hit_rate.png",
              readme=None, translations=2000, sweep_translations=2000, sweep_sim="icarus",
              progress=print, **hw_options):
    """Run ``what`` and merge its figures into the report ``out``; returns the report.

    ``what`` is one of :data:`PARTS`, ``"all"`` (every part, starting a new report) or
    ``"readme"`` (nothing run: only the README rewritten from ``out``) or ``"msi"`` (only
    :func:`run_hw_msi`, its figures merged into the report's ``hw`` as ``hw["msi"]``, the
    other keys kept). ``readme`` names
    a README whose ``bench`` section is rewritten from the report afterwards
    (:func:`iogate.cosim.bench.table.rewrite_readme`). ``hw_options`` go to :func:`run_hw`.
    """
    if what not in PARTS + EXTRA_PARTS + ("all", "readme"):
        # The message names the parts of "all" (tests/cosim/test_bench.py pins it); msi is
        # the MSI half of hw, run alone.
        raise ValueError(f"what must be one of {', '.join(PARTS + ('all', 'readme'))}, "
                         f"not {what!r}")
    import time
    out = pathlib.Path(out)
    report = json.loads(out.read_text()) if out.exists() and what != "all" else {}
    parts = PARTS if what == "all" else () if what == "readme" else (what,)
    for i, part in enumerate(parts, start=1):
        t0 = time.monotonic()
        progress(f"bench {part} ({i}/{len(parts)}) ...", flush=True)
        if part == "hw":
            hw = run_hw(sim, **hw_options)
            sizes = {k: v for k, v in hw_options.items()
                     if k in ("latencies", "samples", "work_dir")}
            hw["pdt"] = run_hw_pdt(sim, **sizes)
            hw["msi"] = run_hw_msi(sim, **sizes)
            report.update(summarize(hw))
            if plot:
                plot_misses(hw, plot)
        elif part == "msi":
            hw = dict(report.get("hw") or {})
            hw["msi"] = run_hw_msi(sim, **{k: v for k, v in hw_options.items()
                                           if k in ("latencies", "samples", "work_dir")})
            report.update(summarize(hw))
        elif part == "model":
            from iogate.cosim.bench.model import bench_model
            report.update(summarize(None, bench_model(seconds=seconds)))
        elif part == "workloads":
            from iogate.cosim.bench.hw import FULL
            from iogate.cosim.bench.sweep import run_workloads
            report["workloads"] = dict(run_workloads(FULL, sim, translations=translations),
                                       sim=sim)
        elif part == "sweep":
            from iogate.hdl import Config

            from iogate.cosim.bench.sweep import plot_hit_rates, sweep_iotlb
            report["iotlb_sweep"] = sweep_iotlb(Config(), sweep_sim,
                                                translations=sweep_translations,
                                                progress=progress)
            if hit_rate_plot:
                plot_hit_rates(report["iotlb_sweep"], hit_rate_plot)
        elif part == "concurrency":
            from iogate.cosim.bench.concurrency import run_concurrency
            report["concurrency"] = run_concurrency(sweep_sim)
        else:   # speed, resources: modules of their own, when present
            module, function = {"speed": ("speed", "measure_speed"),
                                "resources": ("resources", "measure_resources")}[part]
            figures = _optional(module, function, progress)
            if figures is not None:
                report.update({k: v for k, v in figures.items()
                               if not isinstance(v, (dict, list))})
                report[part] = figures
        report.update(headlines(report))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        progress(f"bench {part}: {time.monotonic() - t0:.0f} s", flush=True)
    if readme:
        from iogate.cosim.bench.table import rewrite_readme
        rewrite_readme(readme, report)
        progress(f"rewrote the bench section of {readme}")
    return report
