"""``iogate regress``: build, run the seeded regression, show progress, summarise."""

import json
import pathlib
import sys
import threading
import time

from iogate.cosim.targets import sim as simulators

__all__ = ["regress", "replay_command", "model_build"]


def _progress(path, stop, interactive):
    last = None
    while not stop.wait(0.5):
        try:
            p = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        line = f"  {p['done']}/{p['total']} translations checked, {p['mismatches']} mismatches"
        if interactive:
            print("\r" + line, end="", flush=True)
        elif p["done"] != last and (p["done"] == p["total"] or p["done"] % 2000 == 0):
            print(line, flush=True)
        last = p["done"]
    if interactive:
        print()


def model_build(config, sim, *, mutant=None, waves=False):
    """The simulator build of ``config`` (with ``mutant``, if named) for ``sim``."""
    if mutant:
        from iogate.cosim.regress.mutants import build_mutant
        return build_mutant(mutant, config, sim, waves=waves)
    return simulators.build_iommu(config, sim, waves=waves)


def replay_command(seed, translations, sim, config=None, mutant=None):
    """The ``iogate regress`` command line that runs this seed again."""
    cmd = f"iogate regress --seed {seed} --translations {translations} --sim {sim}"
    if config:
        cmd += f" --config {config}"
    if mutant:
        cmd += f" --mutant {mutant}"
    return cmd


def regress(seed, translations, sim="verilator", waves=False, out="build/regress", *,
            config=None, mutant=None, events=None, record=None, build=None):
    """Run one seeded regression; returns the process exit status (0: no mismatch).

    ``config``: a name of :data:`~iogate.cosim.regress.world.CONFIGS` instead of the seed's
    own choice; ``mutant``: build a deliberately broken RTL of
    :mod:`iogate.cosim.regress.mutants` (its tests: a campaign must catch it); ``events``:
    a JSON file of events to play instead of drawing them (``iogate shrink``); ``record``:
    where the run writes the events it played; ``build``: the simulator build to run
    (:func:`model_build`, made once by a caller that runs many seeds).
    """
    from iogate.cosim.regress.world import CONFIGS, choose_config
    config_name, config_obj = (config, CONFIGS[config]) if config else choose_config(seed)
    out = pathlib.Path(out).resolve() / f"{sim}-seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    report, progress = out / "report.json", out / "progress.json"
    report.unlink(missing_ok=True)
    progress.unlink(missing_ok=True)
    print(f"iogate regress: seed {seed}, {translations} translations on {sim}, "
          f"{config_name} Config", flush=True)
    b = build or model_build(config_obj, sim, mutant=mutant, waves=waves)
    env = {"IOGATE_SEED": str(seed), "IOGATE_TRANSLATIONS": str(translations),
           "IOGATE_REPORT": str(report), "IOGATE_PROGRESS": str(progress)}
    if config:
        env["IOGATE_CONFIG"] = config
    if events:
        env["IOGATE_EVENTS"] = str(pathlib.Path(events).resolve())
    if record:
        env["IOGATE_EVENTS_OUT"] = str(pathlib.Path(record).resolve())
    stop = threading.Event()
    shower = threading.Thread(target=_progress, args=(progress, stop, sys.stdout.isatty()),
                              daemon=True)
    shower.start()
    start = time.monotonic()
    error = None
    try:
        simulators.run(b, "iogate.cosim.regress.cocotb_regress", seed=seed, test_dir=out,
                       log_file=out / "sim.log", extra_env=env)
    except AssertionError as e:
        error = e
    finally:
        stop.set()
        shower.join()
    elapsed = time.monotonic() - start
    if not report.exists():
        print(f"regression did not finish: {error}\nlog: {out / 'sim.log'}")
        print(f"replay: {replay_command(seed, translations, sim, config, mutant)}")
        return 2
    r = json.loads(report.read_text())
    for m in r["mismatch_details"][:5]:
        print(m)
    cov = r["coverage"]
    print(f"  outcomes covered: {cov['iogate.outcome']['coverage_percent']}%  "
          f"cause x access: {cov['iogate.outcome_x_access']['coverage_percent']}%  "
          f"iotlb hits {r['iotlb_hits']} misses {r['iotlb_misses']}")
    if waves:
        print(f"waveform: {b.waveform(out)}")
    print(f"report: {report}")
    print(f"seed {seed} ({config_name} Config, {r['ddt_mode']}): "
          f"translations: {r['translations']} "
          f"({r['translations_per_second']:.0f}/s checked; {elapsed:.0f} s with the build) "
          f"mismatches: {r['mismatches']}")
    if r["mismatches"]:
        print(f"replay: {replay_command(seed, translations, sim, config, mutant)}")
    return 0 if r["mismatches"] == 0 and error is None else 1
