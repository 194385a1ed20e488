"""The workloads on the RTL, and the IOTLB geometry sweep (hit rate against entries/ways).

:func:`run_workloads` builds the IOMMU for one ``Config`` (with a performance monitor of
at least :data:`iogate.cosim.bench.hpm_counts.COUNTERS` counters, which the workloads read
and check; the monitor changes no timing) and runs :mod:`iogate.cosim.bench.hw_workloads`
on it; :func:`sweep_iotlb` repeats that for several
``Config(iotlb_entries=E, iotlb_ways=W)`` (on Icarus by default: it compiles in seconds,
and a hit rate, counted in responses, does not depend on the simulator);
:func:`plot_hit_rates` draws one panel per workload, hit rate against entries, one line
per associativity.
"""

import dataclasses
import json
import pathlib
import time

from iogate.cosim.bench import hpm_counts, plotting
from iogate.cosim.bench.runner import run_module
from iogate.cosim.bench.workloads import WORKLOADS

__all__ = ["run_workloads", "sweep_points", "sweep_iotlb", "plot_hit_rates",
           "ENTRIES", "WAYS"]

#: IOTLB sizes of the sweep.
ENTRIES = (4, 8, 16, 32, 64)
#: Associativities of the sweep; ``"full"`` is ``ways == entries``.
WAYS = (1, 4, "full")


def run_workloads(config, sim="verilator", *, names=None, translations=2000,
                  mem_latency=10, seed=1, work_dir="build/bench/workloads", hpm_skew=0):
    """Run ``names`` (default: every workload) on the IOMMU built with ``config``, its
    ``hpm_counters`` raised to :data:`~iogate.cosim.bench.hpm_counts.COUNTERS` if fewer.
    ``hpm_skew`` is added to the bench's expected first-stage PTE reads (a test's way to
    see the counter check fail).

    Returns ``{workload: figures}`` (see :mod:`iogate.cosim.bench.hw_workloads`).

    Raises
    ------
    ValueError
        If a workload is unknown or ``translations`` is not a positive integer.
    AssertionError
        If a run failed in the simulator (a performance counter that disagrees with the
        bench's own count fails it).
    """
    config = config.replace(hpm_counters=max(config.hpm_counters, hpm_counts.COUNTERS))
    names = list(names or WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
    if not isinstance(translations, int) or translations < 1:
        raise ValueError(f"translations must be a positive integer, not {translations!r}")
    work = (pathlib.Path(work_dir).resolve() / sim /
            f"e{config.iotlb_entries}w{config.iotlb_ways}p{config.ports}")
    return run_module(config, sim, "iogate.cosim.bench.hw_workloads", work, "workloads.json",
                      {"IOGATE_BENCH_CONFIG": json.dumps(dataclasses.asdict(config)),
                       "IOGATE_BENCH_TRANSLATIONS": str(translations),
                       "IOGATE_BENCH_MEM_LATENCY": str(mem_latency),
                       "IOGATE_BENCH_SEED": str(seed),
                       "IOGATE_BENCH_HPM_SKEW": str(hpm_skew)}, testcase=names)


def sweep_points(entries=ENTRIES, ways=WAYS):
    """The ``(entries, ways)`` pairs a ``Config`` accepts, in order."""
    points = []
    for e in entries:
        for w in ways:
            w = e if w == "full" else w
            sets = e // w if w <= e and e % w == 0 else 0
            if sets and not sets & (sets - 1) and (e, w) not in points:
                points.append((e, w))
    return points


def sweep_iotlb(base_config, sim="icarus", *, entries=ENTRIES, ways=WAYS, names=None,
                translations=2000, mem_latency=10, seed=1, work_dir="build/bench/sweep",
                progress=print):
    """Hit rate and cycles per translation of each workload at each IOTLB geometry.

    Returns ``{"sim", "translations", "points": [{"entries", "ways", "workloads": {name:
    {"hit_rate", "cycles_per_translation", "mismatches"}}}]}``.
    """
    points = sweep_points(entries, ways)
    out = {"sim": sim, "translations": translations, "mem_latency": mem_latency,
           "points": []}
    for i, (e, w) in enumerate(points, start=1):
        t0 = time.monotonic()
        config = base_config.replace(iotlb_entries=e, iotlb_ways=w)
        figures = run_workloads(config, sim, names=names, translations=translations,
                                mem_latency=mem_latency, seed=seed, work_dir=work_dir)
        out["points"].append({"entries": e, "ways": w, "workloads": {
            name: {k: f[k] for k in ("hit_rate", "cycles_per_translation", "mismatches",
                                     "translations")}
            for name, f in figures.items()}})
        if progress:
            rates = ", ".join(f"{n} {f['hit_rate']:.3f}" for n, f in figures.items())
            progress(f"  iotlb sweep {i}/{len(points)}: {e} entries, {w} ways "
                     f"({time.monotonic() - t0:.0f} s): {rates}", flush=True)
    return out


def plot_hit_rates(sweep, path):
    """Hit rate against IOTLB entries, one panel per workload, one line per ways.

    Returns the path, or None (with a message) when matplotlib is not installed.
    """
    pyplot = plotting.pyplot()
    if pyplot is None:
        return None
    names = list(dict.fromkeys(n for p in sweep["points"] for n in p["workloads"]))
    cols = min(3, len(names)) or 1
    rows = -(-len(names) // cols) or 1
    fig, axes = pyplot.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        lines = {}
        for p in sweep["points"]:
            if name in p["workloads"]:
                label = "fully assoc." if p["ways"] == p["entries"] else f"{p['ways']} ways"
                lines.setdefault(label, []).append((p["entries"],
                                                    p["workloads"][name]["hit_rate"]))
        for label, xy in lines.items():
            xy.sort()
            ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.02)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("IOTLB entries")
        ax.set_ylabel("hit rate")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"iogate IOTLB hit rate ({sweep.get('sim', '?')}, "
                 f"{sweep.get('translations', '?')} translations per workload)", fontsize=10)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    return path
