"""``iogate demo`` and ``iogate run``: a scenario built, run on the RTL and checked against
the model, with its report printed.

``iogate demo`` is the main job: the demo scenario (:mod:`iogate.cosim.scenarios.demo`)
on the default Config, its report giving translations, faults by cause, IOTLB hits and
misses, cycles, and ``mismatches: <n>`` against the architectural model.

``iogate run`` builds the full first-target iogate RTL for a simulator (reusing an unchanged build),
runs one scenario of :mod:`iogate.cosim.scenarios.on_rtl` in cocotb -- the VFIO, iommufd and
virtio-iommu front-ends driving the hardware through the mirrored bus, every DMA a real
translation request checked against the architectural model -- and prints a summary
ending in ``mismatches: <n>``. The exit status is non-zero unless the scenario passed
with 0 mismatches.
"""

import json
import pathlib

from iogate.cosim.targets import sim as simulators

__all__ = ["run_demo", "format_report", "run_scenario", "list_scenarios", "format_summary",
           "run_linux", "run_host_scenario", "HOST_SCENARIOS", "run_msi_scenario",
           "MSI_SCENARIOS"]


def list_scenarios():
    """One line per scenario: its name and what it does."""
    from iogate.cosim.scenarios.on_rtl import SCENARIOS
    every = {name: doc for name, (doc, _) in SCENARIOS.items()}
    every[LINUX] = ("the Linux riscv-iommu driver's probe, attach, map/unmap and fault "
                    "handling (--config default|full|bus32)")
    every.update({name: doc for name, (_, doc) in HOST_SCENARIOS.items()})
    from iogate.cosim.scenarios.msi import SCENARIOS as MSI
    every.update({name: doc for name, (_, doc) in MSI.items()})
    width = max(map(len, every))
    return "\n".join(f"{name:{width}s}  {doc}" for name, doc in every.items())


#: ``iogate run linux``: :func:`iogate.cosim.scenarios.linux.replay` on the ``iogate host`` API.
LINUX = "linux"

#: Scenarios written on the ``iogate host`` API that need process contexts (Config preset
#: ``process``): name -> (``module:function``, description). ``target`` "model" runs them
#: in-process on the architectural model (``iogate host SPEC --target model --config process``
#: does the same from the command line).
HOST_SCENARIOS = {
    "sva": ("iogate.cosim.scenarios.sva:sva",
            "shared virtual addressing: a process's page table under one PASID, its unmap, "
            "the invalidation, old-or-fault before the fence and the fault after "
            "(--config process)"),
    "vsva": ("iogate.cosim.scenarios.vsva:vsva",
             "seed 004's vSVA: a guest owns PDT and page tables behind iommufd's nest parent; "
             "a remap is seen only after the forwarded IOTINVAL.VMA (--config process)"),
}


#: The MSI scenarios of :mod:`iogate.cosim.scenarios.msi` (Config.msi(): MSI_FLAT, MSI_MRIF).
MSI_SCENARIOS = ("msi-isolation", "msi-mrif")


def _simulate(name, build, module, out, report, *, extra_env, **kwargs):
    """Run scenario ``name``'s cocotb ``module`` on ``build`` in ``out``; returns ``(report
    dict, error)``, or ``(None, error)`` after saying so when it wrote no ``report``."""
    log = out / "sim.log"
    print(f"running scenario {name} (simulator log: {log}) ...", flush=True)
    error = None
    try:
        simulators.run(build, module, test_dir=out, log_file=log,
                       extra_env={**extra_env, "IOGATE_REPORT": str(report)}, **kwargs)
    except AssertionError as e:
        error = e
    if not report.exists():
        print(f"scenario {name} did not finish: {error}\nlog: {log}")
        print(f"{name} FAILED: mismatches: unknown")
        return None, error
    return json.loads(report.read_text()), error


def run_msi_scenario(name, sim="verilator", config=None, waves=False, out="build/run"):
    """``iogate run msi-isolation|msi-mrif``: on the architectural model in-process
    (``sim="model"``) or on the RTL built with ``Config.msi()`` (verilator, icarus), every
    RTL answer checked against the model; prints the summary, returns the exit status."""
    from iogate.cosim.scenarios import msi
    if config not in (None, "msi"):
        raise ValueError(f"scenario {name} runs on Config.msi() only (MSI_FLAT and MSI_MRIF)")
    out = pathlib.Path(out).resolve() / f"{name}-{sim}"
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.json"
    report.unlink(missing_ok=True)
    error = None
    if sim == "model":
        try:
            r = msi.run_on_model(name)
        except msi.ScenarioFailed as e:
            r = {"scenario": name, "sim": "model", "seed": 0, "result": {}, "translations": 0,
                 "faults": {}, "iotlb_hits": 0, "iotlb_misses": 0, "cycles": 0,
                 "mismatches": 0, "error": f"ScenarioFailed: {e}"}
        report.write_text(json.dumps(r, indent=2, default=str) + "\n")
    else:
        print(f"building the iogate RTL (Config.msi()) for {sim} (reused when unchanged) ...",
              flush=True)
        b = simulators.build_iommu(msi.CONFIG, sim, waves=waves)
        r, error = _simulate(name, b, "iogate.cosim.scenarios.msi", out, report,
                             testcase=name.replace("-", "_") + "_rtl",
                             extra_env={"IOGATE_SIM": sim})
        if r is None:
            return 2
    print(f"report: {report}")
    print(format_summary(r))
    return 0 if error is None and r["mismatches"] == 0 and not r.get("error") else 1


def run_host_scenario(name, sim="verilator", config="process", waves=False, out="build/run"):
    """``iogate run sva|vsva``: scenario ``name`` of :data:`HOST_SCENARIOS` on ``sim``
    (``"model"`` too) for the Config preset ``config``; prints the summary, returns the
    exit status."""
    from iogate.cosim.client.config import config_named
    from iogate.cosim.client.run import format_summary, run
    spec, _ = HOST_SCENARIOS[name]
    out = pathlib.Path(out).resolve() / f"{name}-{sim}-{config}"
    if sim != "model":
        print(f"building the iogate RTL ({config} config) for {sim} (reused when unchanged) ...",
              flush=True)
    r = run(spec, target=sim, config=config_named(config), waves=waves, out=out)
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.json"
    report.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(format_summary(r))
    print(f"report: {report}")
    status = "passed" if r["mismatches"] == 0 and not r.get("error") else "FAILED"
    print(f"{name} {status}: translations: {r.get('translations', 0)} "
          f"mismatches: {r['mismatches']}")
    return 0 if status == "passed" else 1


def run_linux(sim="verilator", config="default", waves=False, out="build/run"):
    """``iogate run linux``: the Linux driver replay on ``sim`` for the Config preset
    ``config``; prints the summary, returns the exit status."""
    from iogate.cosim.client.config import config_named
    from iogate.cosim.client.run import format_summary, run
    out = pathlib.Path(out).resolve() / f"linux-{sim}-{config}"
    print(f"building the iogate RTL ({config} config) for {sim} (reused when unchanged) ...",
          flush=True)
    r = run("iogate.cosim.scenarios.linux:replay", target=sim, config=config_named(config),
            waves=waves, out=out)
    report = out / "report.json"
    report.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(format_summary(r))
    print(f"report: {report}")
    status = "passed" if r["mismatches"] == 0 and not r.get("error") else "FAILED"
    print(f"linux {status}: translations: {r.get('translations', 0)} "
          f"mismatches: {r['mismatches']}")
    return 0 if status == "passed" else 1


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


def run_scenario(name, sim="verilator", seed=1, waves=False, out="build/run", config=None):
    """Build, run scenario ``name``, print the summary; returns the exit status.

    Raises
    ------
    ValueError
        If ``name`` is not a scenario of :data:`iogate.cosim.scenarios.on_rtl.SCENARIOS`.
    """
    from iogate.cosim.scenarios.on_rtl import FULL, SCENARIOS, cocotb_name_of
    if name == LINUX:
        return run_linux(sim, config or "default", waves, out)
    if name in HOST_SCENARIOS:
        return run_host_scenario(name, sim, config or "process", waves, out)
    if name in MSI_SCENARIOS:
        return run_msi_scenario(name, sim, config, waves, out)
    if config not in (None, "full"):
        raise ValueError(f"scenario {name} runs on the full config only")
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")
    out = pathlib.Path(out).resolve() / f"{name}-{sim}-seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.json"
    report.unlink(missing_ok=True)
    print(f"building the iogate RTL (full config) for {sim} (reused when unchanged) ...",
          flush=True)
    b = simulators.build_iommu(FULL, sim, waves=waves)
    r, error = _simulate(name, b, "iogate.cosim.scenarios.on_rtl", out, report, seed=seed,
                         testcase=cocotb_name_of(name),
                         extra_env={"IOGATE_SEED": str(seed), "IOGATE_SIM": sim})
    if r is None:
        return 2
    if waves:
        # Icarus's dump module names its file in the build folder, Verilator writes into
        # the run folder: report the one this run left.
        wave = next((w for w in (b.waveform(out), b.waveform()) if w.exists()), None)
        print(f"waveform: {wave}" if wave else "waveform: none was written")
    print(f"report: {report}")
    print(format_summary(r))
    return 0 if error is None and r["mismatches"] == 0 and not r.get("error") else 1


def format_report(r):
    """The human-readable report of a demo or scenario run."""
    from iogate.hdl.formats import Cause
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
    from iogate.hdl import Config
    config = Config()
    report = pathlib.Path(report).resolve()
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    print(f"building the iogate RTL for {sim} (reused when unchanged) ...", flush=True)
    b = simulators.build_iommu(config, sim, waves=waves)
    log = report.parent / f"sim-{sim}.log"
    print(f"running the demo scenario (simulator log: {log}) ...", flush=True)
    try:
        simulators.run(b, "iogate.cosim.scenarios.demo", seed=seed, test_dir=report.parent,
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
