"""``iogate run``: one front-end scenario on the RTL, checked against the model.

Builds the full first-target iogate RTL for a simulator (reusing an unchanged build), runs
one scenario of :mod:`cosim.scenarios.on_rtl` in cocotb -- the VFIO, iommufd and
virtio-iommu front-ends driving the hardware through the mirrored bus, every DMA a real
translation request checked against the architectural model -- and prints a summary
ending in ``mismatches: <n>``. The exit status is non-zero unless the scenario passed
with 0 mismatches.
"""

import json
import pathlib

from . import sim as simulators

__all__ = ["run_scenario", "list_scenarios", "format_summary"]


def list_scenarios():
    """One line per scenario: its name and what it does."""
    from .scenarios.on_rtl import SCENARIOS
    width = max(map(len, SCENARIOS))
    return "\n".join(f"{name:{width}s}  {doc}" for name, (doc, _) in SCENARIOS.items())


def format_summary(r):
    """The human-readable summary of a scenario report (see ``Session.report``)."""
    faults = ", ".join(f"{cause}: {n}" for cause, n in r["faults"].items()) or "none"
    lines = [f"iogate run {r['scenario']} on {r['sim']} (seed {r['seed']})",
             f"  result:        {json.dumps(r['result'], default=str)}",
             f"  translations:  {r['translations']} on the RTL's port, faults by cause: "
             f"{faults}",
             f"  iotlb hits:    {r['iotlb_hits']}  misses: {r['iotlb_misses']}",
             f"  cycles:        {r['cycles']} simulated"]
    if r.get("error"):
        lines.append(f"  error:         {r['error']}")
    lines += list(r.get("mismatch_details", [])[:10])
    status = "FAILED" if r.get("error") or r["mismatches"] else "passed"
    lines.append(f"{r['scenario']} {status}: translations: {r['translations']} "
                 f"mismatches: {r['mismatches']}")
    return "\n".join(lines)


def run_scenario(name, sim="verilator", seed=1, waves=False, out="build/run"):
    """Build, run scenario ``name``, print the summary; returns the exit status.

    Raises
    ------
    ValueError
        If ``name`` is not a scenario of :data:`cosim.scenarios.on_rtl.SCENARIOS`.
    """
    from .scenarios.on_rtl import FULL, SCENARIOS, cocotb_name_of
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")
    out = pathlib.Path(out).resolve() / f"{name}-{sim}-seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.json"
    report.unlink(missing_ok=True)
    print(f"building the iogate RTL (full config) for {sim} (reused when unchanged) ...",
          flush=True)
    b = simulators.build_iommu(FULL, sim, waves=waves)
    log = out / "sim.log"
    print(f"running scenario {name} (simulator log: {log}) ...", flush=True)
    error = None
    try:
        simulators.run(b, "cosim.scenarios.on_rtl", seed=seed, test_dir=out, log_file=log,
                       testcase=cocotb_name_of(name),
                       extra_env={"IOGATE_SEED": str(seed),
                                  "IOGATE_REPORT": str(report), "IOGATE_SIM": sim})
    except AssertionError as e:
        error = e
    if not report.exists():
        print(f"scenario {name} did not finish: {error}\nlog: {log}")
        print(f"{name} FAILED: mismatches: unknown")
        return 2
    r = json.loads(report.read_text())
    if waves:
        # Icarus's dump module names its file in the build folder, Verilator writes into
        # the run folder: report the one this run left.
        wave = next((w for w in (b.waveform(out), b.waveform()) if w.exists()), None)
        print(f"waveform: {wave}" if wave else "waveform: none was written")
    print(f"report: {report}")
    print(format_summary(r))
    return 0 if error is None and r["mismatches"] == 0 and not r.get("error") else 1
