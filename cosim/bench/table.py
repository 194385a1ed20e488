"""The README's performance tables, rendered from ``results/bench.json``.

:func:`render` turns a bench report (:func:`iogate.cosim.bench.run.summarize` plus the workload,
sweep, concurrency, speed and resource sections when they ran) into Markdown;
:func:`rewrite_readme` puts it between the ``<!-- bench:begin -->`` and
``<!-- bench:end -->`` markers of a README, leaving the rest untouched. A section whose
figures are absent from the report is left out.
"""

import pathlib

__all__ = ["render", "rewrite_readme", "BEGIN", "END", "WALK_ROWS"]

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

#: Walk kinds of the cycle table: (key in ``hw``, row label).
WALK_ROWS = (
    ("miss_sv39", "Sv39 miss"),
    ("miss_sv48", "Sv48 miss"),
    ("miss_sv39_over_sv39x4", "Sv39 over Sv39x4 miss"),
    ("miss_sv48_over_sv48x4", "Sv48 over Sv48x4 miss"),
    ("ddt_1lvl", "1LVL directory walk (after IODIR.INVAL_DDT)"),
    ("ddt_2lvl", "2LVL directory walk"),
    ("ddt_3lvl", "3LVL directory walk"),
)


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{round(value):,}"      # rates: the fractions are noise
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _cycles(hw):
    latencies = sorted({int(k) for kind, _ in WALK_ROWS for k in hw.get(kind, {})} |
                       {int(k) for k in hw.get("command", {})})
    header = (["figure"] + [f"mem {v}" for v in latencies] +
              ["table reads", f"target ratio (mem {latencies[0]})" if latencies else "ratio"])
    rows = []
    hits = hw.get("hits")
    if hits:
        blank = [""] * max(len(latencies) - 1, 0)
        rows.append(["IOTLB hit (cycles)", hits["latency_cycles"]] + blank +
                    [0, hits["latency_ratio_to_target"]])
        rows.append(["hit throughput, one port (per clock)", hits["translations_per_cycle"]]
                    + blank + ["", hits["throughput_ratio_to_target"]])
    for kind, label in WALK_ROWS + (("command", "IOTINVAL.VMA + IOFENCE.C"),):
        figures = hw.get(kind)
        if not figures:
            continue
        first = figures.get(str(latencies[0]), {})
        rows.append([label] + [figures.get(str(v), {}).get("cycles") for v in latencies] +
                    [first.get("reads"), first.get("ratio_to_target")])
    return ["Cycles on the full first target "
            f"({hw.get('sim', '?')}; mem L = MemoryTarget latency):", ""] + _table(header, rows)


def _workloads(w):
    header = ["workload", "translations", "IOTLB hit rate", "cycles / translation",
              "DMA translations / clock", "total cycles", "mismatches"]
    rows = [[name, f["translations"], f["hit_rate"], f["cycles_per_translation"],
             f["dma_translations_per_cycle"], f["total_cycles"], f["mismatches"]]
            for name, f in w.items() if isinstance(f, dict) and "hit_rate" in f]
    some = next((f for f in w.values() if isinstance(f, dict) and "hit_rate" in f), {})
    return [f"Workloads ({w.get('sim', '?')}, IOTLB {some.get('iotlb_entries')} entries / "
            f"{some.get('iotlb_ways')} ways, mem {some.get('mem_latency')}):", ""] + \
        _table(header, rows)


def _sweep(sweep):
    names = list(dict.fromkeys(n for p in sweep["points"] for n in p["workloads"]))
    header = ["entries", "ways"] + names
    rows = [[p["entries"], p["ways"]] + [p["workloads"].get(n, {}).get("hit_rate")
                                         for n in names]
            for p in sweep["points"]]
    return [f"IOTLB hit rate against geometry ({sweep.get('sim', '?')}, "
            f"{sweep.get('translations', '?')} translations per workload):", ""] + \
        _table(header, rows)


def _concurrency(c):
    rows = []
    hum = c.get("hit_under_miss")
    if hum:
        rows.append(["hit latency, IOTLB idle (cycles)", hum["hit_cycles_alone"]])
        for where in ("same_port", "other_port"):
            f = hum[where]
            rows.append([f"hit latency during a mem-{hum['walk_mem_latency']} walk, "
                         f"{where.replace('_', ' ')} (cycles, max)", max(f["hit_cycles"])])
            rows.append([f"hits answered before the walk, {where.replace('_', ' ')}",
                         f"{f['hits_answered_before_the_walk']} of {len(f['hit_cycles'])}"])
        rows.append(["the walk itself (cycles)", hum["same_port"]["miss_cycles"]])
    two = c.get("two_ports")
    if two:
        for i, p in enumerate(two["per_port"]):
            rows.append([f"two ports loaded: port {i} (hits per clock)",
                         p["translations_per_cycle"]])
        rows.append(["two ports loaded: both (hits per clock)",
                     two["total_translations_per_cycle"]])
    return [f"Concurrency ({c.get('sim', '?')}, two-port build):", ""] + \
        _table(["figure", "value"], rows)


def _scalars(title, report, prefixes):
    rows = [[k, v] for k, v in report.items()
            if k.startswith(prefixes) and isinstance(v, (int, float)) and not
            isinstance(v, bool)]
    return [title, ""] + _table(["figure", "value"], rows) if rows else []


def render(report):
    """Markdown for ``report`` (a dict as written to ``results/bench.json``)."""
    parts = []
    if report.get("hw"):
        parts.append(_cycles(report["hw"]))
    if report.get("workloads"):
        parts.append(_workloads(report["workloads"]))
    if report.get("iotlb_sweep", {}).get("points"):
        parts.append(_sweep(report["iotlb_sweep"]))
    if report.get("concurrency"):
        parts.append(_concurrency(report["concurrency"]))
    speed = _scalars("Speed (translations per second):", report, ("model_", "cosim_"))
    resources = _scalars("FPGA resources:", report, ("ecp5_", "ice40_"))
    parts += [p for p in (speed, resources) if p]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


def rewrite_readme(path, report):
    """Replace what is between the markers in the file at ``path`` with ``render(report)``.

    Raises
    ------
    ValueError
        If the markers are missing or out of order.
    """
    path = pathlib.Path(path)
    text = path.read_text()
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"{path} has no {BEGIN} ... {END} section")
    head = text[:begin + len(BEGIN)]
    path.write_text(head + "\n" + render(report) + text[end:])
    return path
