"""``iogate host SCRIPT.py``: a host script on the model, a simulator or a board, checked.

:func:`run` picks the target, runs the script (:func:`iogate.cosim.client.script.execute`)
and returns the report; :func:`main` is the command: it prints the summary ending in
``mismatches: N``, writes the JSON report and returns the exit status (0 only when the
script finished and there were no mismatches).

On ``verilator`` and ``icarus`` the RTL is built for the Config (reused when unchanged) and
the script runs inside the simulator process (:mod:`iogate.cosim.client.on_rtl`); when the
script ends, whether it returned or raised, the simulation ends with it.
"""

import json
import pathlib

from iogate.hdl.config import Config

from iogate.cosim.client.config import config_named, config_to_json
from iogate.cosim.client.host import Host
from iogate.cosim.client.script import execute
from iogate.cosim.client.targets import BoardTarget, ModelTarget, open_board
from iogate.cosim.targets import sim as simulators

__all__ = ["TARGETS", "run", "format_summary", "main"]

TARGETS = ("model", "verilator", "icarus", "board")


def run(spec: str, *, target: str = "model", config: Config = Config(), port: str | None = None,
        baud: int = 1_000_000, waves: bool = False, check: bool = True,
        out: str | pathlib.Path = "build/host", link=None) -> dict:
    """Run ``spec`` (a script path or ``module:function``) on ``target``; returns the report.

    Parameters
    ----------
    config : iogate.hdl.Config
        The iogate to build (model and simulators; a board says what it is).
    port, baud
        The board's serial port (or a pyserial URL) and speed.
    out
        Folder of the simulator's run (log, results, waveform).
    link
        A ready :class:`~iogate.cosim.targets.board.BoardLink` (or an object with its API)
        instead of ``port``.

    Raises
    ------
    ValueError
        On an unknown target, or ``board`` without a port.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if target == "model":
        return _in_process(spec, ModelTarget(config), check)
    if target == "board":
        if link is None:
            if port is None:
                raise ValueError("the board target needs --port")
            link = open_board(port, baud)
        return _in_process(spec, BoardTarget(link), check)
    return _on_simulator(spec, target, config, waves, check, pathlib.Path(out))


def _in_process(spec, target, check):
    try:
        report = execute(spec, Host(target, check=check))
    finally:
        target.close()
    report["config"] = _config_fields(target.config)
    return report


def _config_fields(config):
    return json.loads(config_to_json(config))


def _on_simulator(spec, sim, config, waves, check, out):
    out = out.resolve() / sim
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.json"
    report_path.unlink(missing_ok=True)
    if spec.endswith(".py"):
        spec = str(pathlib.Path(spec).resolve())
    build = simulators.build_iommu(config, sim, waves=waves)
    log = out / "sim.log"
    failure = None
    try:
        simulators.run(build, "iogate.cosim.client.on_rtl", test_dir=out, log_file=log,
                       extra_env={"IOGATE_HOST_SCRIPT": spec,
                                  "IOGATE_HOST_CONFIG": config_to_json(config),
                                  "IOGATE_HOST_CHECK": "1" if check else "0",
                                  "IOGATE_HOST_REPORT": str(report_path),
                                  "IOGATE_SIM": sim})
    except AssertionError as e:
        failure = str(e)
    if report_path.exists():
        report = json.loads(report_path.read_text())
    else:
        report = {"target": sim, "mismatches": 0, "mismatch_details": [], "script": spec,
                  "error": {"type": "SimulationError", "line": None, "code": None,
                            "traceback": [],
                            "message": f"the simulation ended without a report: {failure}"}}
    report["config"] = _config_fields(config)
    report["log"] = str(log)
    if waves:
        wave = next((w for w in (build.waveform(out), build.waveform()) if w.exists()), None)
        report["waveform"] = str(wave) if wave else None
    return report


def format_summary(r: dict) -> str:
    """The lines ``iogate host`` prints, ending in ``mismatches: N``."""
    lines = [f"iogate host {r.get('script')} on {r['target']}"]
    for key in ("translations", "faults", "iotlb_hits", "register_reads", "register_writes",
                "cycles", "interrupts"):
        if key in r:
            lines.append(f"  {key + ':':17s}{json.dumps(r[key])}")
    if r.get("unchecked_accesses"):
        lines.append(f"  {'unchecked:':17s}{len(r['unchecked_accesses'])} register accesses "
                     f"the spec does not allow")
        lines += [f"    {a}" for a in r["unchecked_accesses"][:10]]
    if r.get("result") is not None:
        lines.append(f"  {'result:':17s}{json.dumps(r['result'], default=str)}")
    if not r.get("checked", True):
        lines.append("  not checked against the model (--no-check)")
    if r.get("waveform"):
        lines.append(f"  waveform:        {r['waveform']}")
    e = r.get("error")
    if e:
        lines.append(f"script failed at {e.get('line')}: {e['type']}: {e['message']}")
        if e.get("code"):
            lines.append(f"    {e['code']}")
    lines += list(r.get("mismatch_details", [])[:10])
    lines.append(f"mismatches: {r['mismatches']}")
    return "\n".join(lines)


def main(script: str, *, target: str = "model", config: str = "default",
         port: str | None = None, baud: int = 1_000_000, waves: bool = False,
         check: bool = True, report: str = "build/host/report.json") -> int:
    """The ``iogate host`` command; returns the exit status."""
    if target == "board" and port is None:
        print("iogate host: --target board needs --port")
        return 2
    if script.endswith(".py") and not pathlib.Path(script).exists():
        print(f"iogate host: no script {script}")
        return 2
    r = run(script, target=target, config=config_named(config), port=port, baud=baud,
            waves=waves, check=check, out=pathlib.Path(report).parent)
    path = pathlib.Path(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(format_summary(r))
    print(f"report: {path}")
    return 0 if r["mismatches"] == 0 and not r.get("error") else 1
