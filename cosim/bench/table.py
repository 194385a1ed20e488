"""The README's performance tables, rendered from ``results/bench.json``.

:func:`render` turns a bench report (:func:`iogate.cosim.bench.run.summarize` plus the workload,
sweep, concurrency, speed and resource sections when they ran) into Markdown;
:func:`rewrite_readme` puts it between the ``<!-- bench:begin -->`` and
``<!-- bench:end -->`` markers of a README, leaving the rest untouched. A section whose
figures are absent from the report is left out.

The process-directory walks (``hw["pdt"]``, :mod:`iogate.cosim.bench.hw_pdt`) have a table
of their own, :func:`render_pdt`, between ``<!-- bench-pdt:begin -->`` and
``<!-- bench-pdt:end -->``: :func:`rewrite_readme` fills it when the README has those markers
and the report has those figures, and otherwise leaves it as it is. The MSI translations
(``hw["msi"]``, :mod:`iogate.cosim.bench.hw_msi`) likewise: :func:`render_msi`, between
``<!-- bench-msi:begin -->`` and ``<!-- bench-msi:end -->``.
"""

import pathlib

__all__ = ["render", "render_pdt", "render_msi", "rewrite_readme", "BEGIN", "END",
           "PDT_BEGIN", "PDT_END", "MSI_BEGIN", "MSI_END", "WALK_ROWS", "PDT_ROWS", "MSI_ROWS"]

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
PDT_BEGIN = "<!-- bench-pdt:begin -->"
PDT_END = "<!-- bench-pdt:end -->"
MSI_BEGIN = "<!-- bench-msi:begin -->"
MSI_END = "<!-- bench-msi:end -->"

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

#: Process-directory kinds of the PDT table: (key in ``hw["pdt"]``, row label).
PDT_ROWS = (
    ("pdt_pd8", "PD8 + Sv39"),
    ("pdt_pd17", "PD17 + Sv39"),
    ("pdt_pd20", "PD20 + Sv39"),
    ("pdt_pd17_over_sv48x4", "PD17 + Sv39 in guest memory, over Sv48x4"),
)


#: MSI figures of the MSI table: (key in ``hw["msi"]["msi"][<L>]``, row label).
MSI_ROWS = (
    ("basic_pte_read", "basic-translate MSI page (M=3), MSI PTE read (cache cold)"),
    ("basic_iotlb_hit", "basic-translate MSI page, IOTLB hit (the same page again)"),
    ("mrif_pte_read", "MRIF-mode write (M=1), MSI PTE read (cache cold) + MRIF update"),
    ("mrif_pte_cached", "MRIF-mode write, MSI PTE cached + MRIF update"),
    ("mrif_read", "MRIF-mode read (absorbed), MSI PTE cached"),
    ("g_stage_walk", "for comparison: Sv39x4 walk outside the MSI window (cold)"),
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


def render_pdt(report):
    """Markdown for the process-directory walks of ``report`` (``report["hw"]["pdt"]``), or
    ``""`` when it has none.

    Per kind three rows: the PC cold (a process's first request after IODIR.INVAL_PDT), the
    PC cached (its next request, to a fresh page) and the PDT walk alone (their difference);
    the read columns are from the lowest latency.
    """
    pdt = (report.get("hw") or {}).get("pdt") or {}
    kinds = [(k, label) for k, label in PDT_ROWS if pdt.get(k)]
    hits = pdt.get("pdt_hits")
    if not kinds and not hits:
        return ""
    latencies = sorted({int(v) for k, _ in kinds for v in pdt[k]}) or [0]   # [0]: hits only
    header = (["figure"] + [f"mem {v}" for v in latencies] +
              ["PDT entries", "PDT doublewords", "PTE reads", "G-stage PTE reads",
               f"target ratio (mem {latencies[0]})"])
    rows = []
    for kind, label in kinds:
        figures = pdt[kind]
        first = figures.get(str(latencies[0]), {})
        warm = first.get("warm", {})
        at = [figures.get(str(v), {}) for v in latencies]
        rows.append([f"{label}, PC cold"] + [f.get("cycles") for f in at] +
                    [first.get("pdt_reads"), first.get("pdt_bus_reads"), first.get("pte_reads"),
                     first.get("g_pte_reads"), first.get("ratio_to_target")])
        rows.append([f"{label}, PC cached"] + [f.get("warm_cycles") for f in at] +
                    [warm.get("pdt_reads"), warm.get("pdt_bus_reads"), warm.get("pte_reads"),
                     warm.get("g_pte_reads"), warm.get("ratio_to_target")])
        rows.append([f"{label}, PDT walk (cold - cached)"] +
                    [f.get("pdt_walk_cycles") for f in at] + ["", "", "", "", ""])
    title = (f"Process-directory walks ({pdt.get('sim', '?')}; full first target, "
             f"{pdt.get('config', '?')}; mem L = MemoryTarget latency; cold = a process's "
             "first request after IODIR.INVAL_PDT, DC cached, IOTLB miss):")
    lines = [title, ""] + (_table(header, rows) if kinds else [])
    if hits:
        lines += ["", f"IOTLB hits of a PASID-tagged request (PD20): "
                  f"{_fmt(hits.get('latency_cycles'))} cycles, "
                  f"{_fmt(hits.get('translations_per_cycle'))} per clock back to back."]
    return "\n".join(lines) + "\n"


def render_msi(report):
    """Markdown for the MSI translations of ``report`` (``report["hw"]["msi"]``), or ``""``
    when it has none: one row per figure of :data:`MSI_ROWS` that ran, one column per
    memory latency."""
    msi = (report.get("hw") or {}).get("msi") or {}
    figures = msi.get("msi") or {}
    if not figures:
        return ""
    latencies = sorted(int(v) for v in figures)
    rows = [[label] + [figures[str(v)].get(kind, {}).get("cycles") for v in latencies]
            for kind, label in MSI_ROWS if any(kind in figures[str(v)] for v in latencies)]
    title = (f"MSI translation ({msi.get('sim', '?')}; Config.msi(): {msi.get('config', '?')}; "
             "cycles from request accepted to response; mem L = MemoryTarget latency; "
             "cold = first access after IOTINVAL.GVMA + IOFENCE.C, DC cached):")
    return "\n".join([title, ""] + _table(["figure"] + [f"mem {v}" for v in latencies],
                                          rows)) + "\n"


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
    """Replace what is between the markers in the file at ``path`` with ``render(report)``,
    and what is between the PDT markers (when there are both) with ``render_pdt(report)``
    (when it has figures), and the MSI markers with ``render_msi(report)`` likewise.

    Raises
    ------
    ValueError
        If the markers are missing or out of order (the PDT or MSI markers: out of order, or
        one without the other).
    """
    path = pathlib.Path(path)
    text = _replace(path, path.read_text(), BEGIN, END, render(report))
    for begin, end, body in ((PDT_BEGIN, PDT_END, render_pdt(report)),
                             (MSI_BEGIN, MSI_END, render_msi(report))):
        if (begin in text or end in text) and body:
            text = _replace(path, text, begin, end, body)
        elif (begin in text) != (end in text):
            raise ValueError(f"{path} has no {begin} ... {end} section")
    path.write_text(text)
    return path


def _replace(path, text, begin_marker, end_marker, body):
    begin, end = text.find(begin_marker), text.find(end_marker)
    if begin < 0 or end < begin:
        raise ValueError(f"{path} has no {begin_marker} ... {end_marker} section")
    return text[:begin + len(begin_marker)] + "\n" + body + text[end:]
