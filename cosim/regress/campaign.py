"""The report of an ``iogate farm`` campaign: ``campaign.json`` and ``summary.md``.

Seeds, translations (per simulator), mismatches with their replay commands, runs that ended
in an error (after their retry), throughput per worker, wall time and cores, and functional
coverage merged across every run with cocotb-coverage's ``merge_coverage`` (the XML
databases the runs exported), with the bins never hit listed. With matplotlib installed, a
plot of coverage growth against translations (``coverage_growth.png``); the summary says
whether it was drawn.
"""

import json
import pathlib
import time
from collections import defaultdict
from xml.etree import ElementTree

__all__ = ["write_report", "merge_xml", "union_bins", "growth"]


def merge_xml(files, out):
    """Merge cocotb-coverage XML databases into ``out``; ``{item: {bin: hits}}`` of it."""
    from cocotb_coverage.coverage import merge_coverage
    # merge_coverage adds cover items the first database lacks but not bins: the database
    # with the most elements goes first (a run of a newer world may have more bins).
    files = sorted((str(f) for f in files),
                   key=lambda f: -sum(1 for _ in ElementTree.parse(f).getroot().iter()))
    if len(files) == 1:
        pathlib.Path(out).write_bytes(pathlib.Path(files[0]).read_bytes())
    else:
        merge_coverage(lambda _msg: None, str(out), *files)
    bins = defaultdict(dict)
    root = ElementTree.parse(out).getroot()
    for parent in root.iter():
        for child in parent:
            if "bin" in child.attrib:
                item = parent.attrib["abs_name"].removeprefix("top.")
                bins[item][child.attrib["bin"]] = int(child.attrib["hits"])
    return dict(bins)


def union_bins(results):
    """``{item: {bin: hits}}`` summed over the runs' JSON reports."""
    out = defaultdict(lambda: defaultdict(int))
    for r in results:
        for item, bins in (r.get("coverage") or {}).items():
            for b, hits in bins.items():
                out[item][b] += hits
    return {item: dict(bins) for item, bins in out.items()}


def _percent(bins):
    total = sum(len(b) for b in bins.values())
    hit = sum(1 for b in bins.values() for v in b.values() if v)
    return round(100 * hit / total, 1) if total else 0.0


def growth(results):
    """``[[translations so far, % of bins hit so far], ...]`` in the order runs finished."""
    points, seen, total = [], {}, 0
    for r in sorted(results, key=lambda r: r.get("finished_at", 0)):
        total += r.get("translations", 0)
        for item, bins in (r.get("coverage") or {}).items():
            mine = seen.setdefault(item, {})
            for b, hits in bins.items():
                mine[b] = mine.get(b, 0) + hits
        points.append([total, _percent(seen)])
    return points


def _plot(points, out):
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
    ax.set_xlabel("translations checked")
    ax.set_ylabel("coverage bins hit (%)")
    ax.set_title("iogate farm: merged coverage")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return str(out)


def write_report(campaign, results, folder, *, wall_s, cores=None, workers=None, plot=True,
                 sessions=()):
    """Write ``campaign.json`` and ``summary.md`` in ``folder``; returns the report dict.

    ``results``: the final result of every run that has one (from ``results.jsonl``);
    the campaign's runs without a result are listed as ``missing``. ``sessions``: each
    invocation that ran something (``wall_s``, ``cores``), for a resumed campaign's totals.
    """
    folder = pathlib.Path(folder)
    by_key = {r["key"]: r for r in results}
    tasks = campaign.tasks()
    checked = [r for r in results if r["status"] != "error"]
    per_sim = defaultdict(int)
    for r in checked:
        per_sim[r["sim"]] += r.get("translations", 0)
    failing = [{"key": r["key"], "seed": r["seed"], "sim": r["sim"], "config": r.get("config"),
                "mismatches": r["mismatches"], "first": (r.get("mismatch_details") or [""])[0],
                "replay": r.get("replay"), "shrink": _shrink_command(r, campaign.mutant)}
               for r in checked if r.get("mismatches")]
    errors = [{"key": r["key"], "seed": r["seed"], "sim": r["sim"], "attempts": r["attempt"],
               "error": r["error"]} for r in results if r["status"] == "error"]
    per_worker = defaultdict(lambda: {"runs": 0, "translations": 0, "busy_s": 0.0})
    for r in checked:
        w = per_worker[r.get("worker") or "?"]
        w["runs"] += 1
        w["translations"] += r.get("translations", 0)
        w["busy_s"] = round(w["busy_s"] + r.get("wall_s", 0.0), 2)
    for w in per_worker.values():
        w["translations_per_second"] = round(w["translations"] / w["busy_s"], 1) \
            if w["busy_s"] else 0.0
    xmls = [r["coverage_xml"] for r in checked
            if r.get("coverage_xml") and pathlib.Path(r["coverage_xml"]).exists()]
    bins = None
    if xmls:
        try:
            bins = merge_xml(xmls, folder / "coverage.xml")
            merged_with = "cocotb_coverage.coverage.merge_coverage"
        except (KeyError, ValueError, ElementTree.ParseError) as e:
            # merge_coverage cannot add a bin the first database lacks (KeyError
            # 'coverage'): runs of different cover points, e.g. before and after a change
            # to the world's device kinds, in one resumed campaign.
            merged_with = (f"sum of the runs' JSON coverage (merge_coverage failed: "
                           f"{type(e).__name__} {e}; the runs' cover points differ)")
    if not xmls:
        merged_with = "sum of the runs' JSON coverage (no XML databases)"
    if bins is None:
        bins = union_bins(checked)
    never = [f"{item}: {b}" for item in sorted(bins) for b, hits in bins[item].items()
             if not hits]
    points = growth(checked)
    drawn = _plot(points, folder / "coverage_growth.png") if plot and points else None
    translations = sum(per_sim.values())
    report = {
        "name": campaign.name,
        "campaign": {"seeds": campaign.seeds, "sims": campaign.sims,
                     "translations": campaign.translations, "configs": campaign.configs,
                     "mutant": campaign.mutant},
        "runs": len(results), "runs_planned": len(tasks),
        "missing": [t.key for t in tasks if t.key not in by_key],
        "seeds": len({r["seed"] for r in results}),
        "translations": translations,
        **{f"{sim}_translations": per_sim.get(sim, 0) for sim in campaign.sims},
        "mismatches": sum(r.get("mismatches", 0) for r in checked),
        "failing": failing, "errors": errors,
        "wall_s": round(sum(s["wall_s"] for s in sessions) if sessions else wall_s, 1),
        "wall_s_this_session": round(wall_s, 1), "sessions": len(sessions),
        "cores": cores or max((s["cores"] or 0 for s in sessions), default=None) or None,
        "busy_s": round(sum(r.get("wall_s", 0.0) for r in checked), 1),
        "workers": dict(per_worker),
        "workers_this_session": sorted(workers or ()),
        "coverage": {item: {"coverage_percent": _percent({item: b}), "bins": b}
                     for item, b in sorted(bins.items())},
        "coverage_percent": _percent(bins), "coverage_merged_with": merged_with,
        "never_hit": never, "growth": points,
        "plot": drawn,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    report["translations_per_second"] = _rate(report)
    (folder / "campaign.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "summary.md").write_text(summary(report))
    return report


def summary(report):
    """The readable summary of a report (Markdown)."""
    c = report["campaign"]
    lines = [f"# Campaign {report['name']}", "",
             f"- seeds: {report['seeds']} ({_ranges(c['seeds'])}), simulators: "
             f"{', '.join(c['sims'])}, sizes: {c['translations']}, Configs: "
             f"{c['configs'] or 'each seed its own'}"
             + (f", mutant: {c['mutant']}" if c["mutant"] else ""),
             f"- runs: {report['runs']} of {report['runs_planned']}"
             + (f" (missing: {', '.join(report['missing'])})" if report["missing"] else ""),
             f"- translations checked: {report['translations']} ("
             + ", ".join(f"{s}: {report.get(f'{s}_translations', 0)}" for s in c["sims"]) + ")",
             f"- mismatches: {report['mismatches']}, runs in error: {len(report['errors'])}",
             f"- wall time: {report['wall_s']} s over {report['sessions']} session(s) "
             f"on {report['cores'] or '?'} cores; run time summed: {report['busy_s']} s; "
             f"{_rate(report) or '?'} translations/s",
             f"- coverage: {report['coverage_percent']}% of the bins, merged with "
             f"{report['coverage_merged_with']}", ""]
    if report["failing"]:
        lines += ["## Mismatches", "", "| run | mismatches | first | replay | shrink |",
                  "|---|---|---|---|---|"]
        lines += [f"| {f['key']} | {f['mismatches']} | {_cell(f['first'])} | `{f['replay']}` "
                  f"| `{f['shrink']}` |" for f in report["failing"]]
        lines.append("")
    if report["errors"]:
        lines += ["## Runs in error (after a retry)", "", "| run | attempts | error |",
                  "|---|---|---|"]
        lines += [f"| {e['key']} | {e['attempts']} | {_cell(e['error'])} |"
                  for e in report["errors"]]
        lines.append("")
    lines += ["## Throughput per worker", "", "| worker | runs | translations | busy s | "
              "translations/s |", "|---|---|---|---|---|"]
    lines += [f"| {w} | {v['runs']} | {v['translations']} | {v['busy_s']} | "
              f"{v['translations_per_second']} |" for w, v in sorted(report["workers"].items())]
    lines += ["", "## Coverage", "", "| cover point | % |", "|---|---|"]
    lines += [f"| {item} | {v['coverage_percent']} |" for item, v in report["coverage"].items()]
    lines += ["", f"Bins never hit ({len(report['never_hit'])}):", ""]
    lines += [f"- {b}" for b in report["never_hit"]] or ["- none"]
    lines += ["", f"Coverage growth plot: {report['plot']}" if report["plot"] else
              "Coverage growth plot: not drawn (matplotlib is not installed; the points are "
              "`growth` in campaign.json)", ""]
    return "\n".join(lines)


def _shrink_command(r, mutant):
    cmd = f"iogate shrink {r['seed']} --sim {r['sim']} --translations {r['translations_requested']}"
    if r.get("config_requested"):
        cmd += f" --config {r['config_requested']}"
    return cmd + (f" --mutant {mutant}" if mutant else "")


def _rate(report):
    return round(report["translations"] / report["wall_s"]) if report["wall_s"] else None


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")[:160]


def _ranges(seeds):
    out, start = [], None
    for i, s in enumerate(seeds):
        if start is None:
            start = s
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            out.append(f"{start}" if start == s else f"{start}-{s}")
            start = None
    return ",".join(out)
