"""Running a trace in each mode and checking what came back: the pieces the regression,
the speed benchmark and the tests share.

A mode's run writes the trace file, runs it (cocotb ``batch`` on the harness build,
cocotb ``interactive`` on the plain IOMMU build, or the plain Verilator harness) and
returns a :class:`Run`: the raw responses in arrival order and the seconds of the request
phase. :func:`check` verifies them against a fresh model of the same seed.
"""

import json
import pathlib
import time
from dataclasses import dataclass, field

from iogate.hdl import Config

from iogate.cosim.check.batch import read_responses, verify
from iogate.cosim.regress.trace import make_trace
from iogate.cosim.targets import sim as simulators
from iogate.cosim.targets.batch.build import build_harness
from iogate.cosim.targets.batch.plain import build_plain, run_plain
from iogate.cosim.targets.batch.trace import write_trace

__all__ = ["Run", "MODES", "run_trace", "check"]

#: ``(mode, simulator)`` pairs a trace can run in.
MODES = (("batch", "verilator"), ("batch", "icarus"), ("interactive", "verilator"),
         ("interactive", "icarus"), ("plain", "verilator"))


@dataclass
class Run:
    mode: str
    sim: str
    raws: list
    seconds: float                 # the request phase: load + run + read back
    cycles: int
    setup_mismatches: list = field(default_factory=list)


def run_trace(trace, mode, sim="verilator", *, work="build/batch", config=None):
    """Run ``trace`` in ``mode`` (``batch``, ``interactive`` or ``plain``) on ``sim``."""
    if (mode, sim) not in MODES:
        raise ValueError(f"(mode, sim) must be one of {MODES}, not {(mode, sim)!r}")
    config = Config() if config is None else config
    work = pathlib.Path(work).resolve() / f"{mode}-{sim}"
    work.mkdir(parents=True, exist_ok=True)
    trace_file, out, timing = work / "trace.txt", work / "responses.txt", work / "timing.json"
    write_trace(trace, trace_file)
    out.unlink(missing_ok=True)
    if mode == "plain":
        t = run_plain(build_plain(config), trace_file, out, timing)
        errors = [line for line in t["stderr"].splitlines() if line.startswith("mmio read")]
    else:
        b = (build_harness(config, sim) if mode == "batch"
             else simulators.build_iommu(config, sim, waves=False))
        timing.unlink(missing_ok=True)
        simulators.run(b, "iogate.cosim.targets.batch.cocotb_batch", testcase=mode, test_dir=work,
                       log_file=work / "sim.log",
                       extra_env={"IOGATE_BATCH_TRACE": str(trace_file),
                                  "IOGATE_BATCH_OUT": str(out),
                                  "IOGATE_BATCH_TIMING": str(timing)})
        t = json.loads(timing.read_text())
        errors = t["setup_mismatches"]
    return Run(mode, sim, read_responses(out), t["seconds"], t["cycles"], list(errors))


def check(seed, translations, raws, *, config=None):
    """Verify ``raws`` against a fresh model of ``seed``; returns ``(scoreboard, seconds)``."""
    config = Config() if config is None else config
    trace, model = make_trace(seed, translations, config)
    start = time.perf_counter()
    board = verify(model, trace.requests, raws, config.tag_width)
    return board, time.perf_counter() - start
