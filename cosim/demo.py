"""``iogate demo``: the main job, end to end on the RTL.

Builds the iogate RTL for a simulator (reusing an unchanged build), runs the demo scenario
(:mod:`cosim.scenarios.demo`) in cocotb, and prints its report: translations, faults by
cause, IOTLB hits and misses, cycles, and ``mismatches: <n>`` against the architectural
model. The exit status is non-zero unless the run finished with 0 mismatches.
"""

import json
import pathlib

from . import sim as simulators

__all__ = ["run_demo", "format_report"]


def format_report(r):
    """The human-readable report of a demo or scenario run."""
    from hdl.formats import Cause
    lines = [f"iogate demo on {r['sim']} (seed {r['seed']})", "  devices:"]
    lines += [f"    {did:>6s}  {what}" for did, what in r["devices"].items()]
    lines += [f"  translations:   {r['translations']} "
              f"({r['debug_translations']} through the debug interface)",
              "  faults by cause:"]
    for cause, n in sorted(r["faults"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"    {int(cause):4d} {Cause(int(cause)).name.lower():32s} {n}")
    if not r["faults"]:
        lines.append("    none")
    total = r["iotlb_hits"] + r["iotlb_misses"]
    rate = 100.0 * r["iotlb_hits"] / total if total else 0.0
    lines += [f"  iotlb hits:     {r['iotlb_hits']}  misses: {r['iotlb_misses']}  "
              f"(hit rate {rate:.1f}%)",
              f"  cycles:         {r['cycles']} simulated; per translation mean "
              f"{r['cycles_mean']}, max {r['cycles_max']}",
              f"mismatches: {r['mismatches']}"]
    for m in r.get("mismatch_details", [])[:10]:
        lines.append(m)
    return "\n".join(lines)


def run_demo(sim="verilator", waves=False, seed=1, report="build/demo/report.json"):
    from hdl import Config
    config = Config()
    report = pathlib.Path(report).resolve()
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    print(f"building the iogate RTL for {sim} (reused when unchanged) ...", flush=True)
    b = simulators.build_iommu(config, sim, waves=waves)
    log = report.parent / f"sim-{sim}.log"
    print(f"running the demo scenario (simulator log: {log}) ...", flush=True)
    try:
        simulators.run(b, "cosim.scenarios.demo", seed=seed, test_dir=report.parent,
                       log_file=log, extra_env={"IOGATE_REPORT": str(report),
                                                "IOGATE_SEED": str(seed),
                                                "IOGATE_SIM": sim})
    except AssertionError as e:
        print(f"demo failed: {e}")
        if report.exists():
            print(format_report(json.loads(report.read_text())))
        return 1
    r = json.loads(report.read_text())
    print(format_report(r))
    if waves:
        print(f"waveform: {b.waveform(report.parent)}")
    print(f"report: {report}")
    return 0 if r["mismatches"] == 0 else 1
