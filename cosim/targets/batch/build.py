"""Generating and building the batch harness: once per design, cached under ``build/sim``.

The harness's SystemVerilog comes from :func:`iogate.cosim.targets.sim.verilog_of`, as every
design's does. Two things are added here:

* Yosys writes an all-zero memory initialiser as one assignment per word (65536 lines for
  the on-chip RAM); both simulators compile that slowly, so such a block becomes a loop,
  which means the same (IEEE 1800-2017 21.5 leaves no difference between the two forms).
* Generating the text takes tens of seconds, so it is kept beside the builds, keyed by the
  sources it comes from (the gateware, the board memory, this package) and the Config.
"""

import hashlib
import re

from iogate.cosim.targets import sim as simulators
from iogate.cosim.targets.batch.harness import DEPTH, BatchHarness

__all__ = ["harness_verilog", "harness_design", "build_harness", "zero_init_loops"]

_SOURCES = ("hdl/*.py", "boards/memory.py", "boards/top.py", "cosim/targets/batch/harness.py",
            "cosim/targets/batch/build.py")

_ZERO_INIT = re.compile(
    r"  initial begin\n(    (\\?[\w$.]+) ?\[\d+\] = \d+'h0+;\n)+  end\n")


def zero_init_loops(text):
    """``text`` with every all-zero memory ``initial`` block written as a ``for`` loop."""
    def loop(match):
        name = match.group(2)
        words = match.group(0).count("\n") - 2
        index = "_zi_" + re.sub(r"\W", "_", name)
        return (f"  integer {index};\n"
                f"  initial for ({index} = 0; {index} < {words}; {index} = {index} + 1)\n"
                f"    {name}[{index}] = 0;\n")
    return _ZERO_INIT.sub(loop, text)


def _key(config, depth):
    import amaranth
    h = hashlib.sha256(f"{config!r} {depth} {amaranth.__version__}".encode())
    for pattern in _SOURCES:
        for path in sorted(simulators.ROOT.glob(pattern)):
            h.update(path.read_bytes())
    return h.hexdigest()


def harness_design(config, depth=DEPTH):
    """Build-folder name of the harness for ``config``."""
    return "batch-" + hashlib.sha1(f"{config!r} {depth}".encode()).hexdigest()[:10]


def harness_verilog(config, depth=DEPTH):
    """The harness's SystemVerilog (module ``top``), generated once per source change."""
    folder = simulators.ROOT / "build" / "sim" / harness_design(config, depth)
    key = _key(config, depth)
    text_file, key_file = folder / "top.sv", folder / "top.sv.key"
    with simulators._locked(folder / ".generate.lock"):
        if key_file.exists() and key_file.read_text() == key and text_file.exists():
            return text_file.read_text()
        text = zero_init_loops(simulators.verilog_of(BatchHarness(config, depth=depth), "top"))
        text_file.write_text(text)
        key_file.write_text(key)
        return text


def build_harness(config, sim, depth=DEPTH):
    """The cocotb build of the harness on ``sim`` (reused while its Verilog is unchanged)."""
    # The batch runner touches only the harness's own ports: the rest of the design is
    # left to Verilator's optimiser (see iogate.cosim.targets.sim.build).
    return simulators.build(harness_verilog(config, depth), harness_design(config, depth), sim,
                            public_top_only=True)
