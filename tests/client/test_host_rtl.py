"""iogate.cosim.client on the RTL: host scripts on Verilator and Icarus.

The README's example must pass with 0 mismatches; register accesses the spec does not
allow must come back with the RTL's answer (never a hang), an address the 12-bit register
bus cannot carry must be refused, and a script that raises must end the simulation with a
report naming its line; a disagreement with the model must be counted.
"""

import json
import pathlib

import pytest

from iogate.hdl import Config

from iogate.cosim import cli
from iogate.cosim.client.run import run
from iogate.cosim.targets import sim

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "cosim" / "client" / "examples" / "readme_example.py")

BAD_ACCESSES = """
result = {}
result["misaligned read"] = host.bus.mmio_read(0x12, 4)      # ddtp's bytes 2..5
host.bus.mmio_write(0x56, 2, 0xFFFF)                           # ipsr's reserved half
result["ipsr"] = host.bus.mmio_read(0x54, 4)
result["8 bytes at 4"] = host.bus.mmio_read(0x4, 8)
host.bus.mmio_read(0x1000, 4)                                  # line 7: not on the bus
"""


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_the_readme_example_on(simulator, tmp_path):
    report = tmp_path / "r.json"
    status = cli.main(["host", EXAMPLE, "--target", simulator, "--report", str(report)])
    r = json.loads(report.read_text())
    assert status == 0, r
    assert r["mismatches"] == 0 and r["error"] is None
    assert r["result"]["cause"] == 13 and r["result"]["line"] == 1
    assert r["result"]["faults"] == 1
    assert r["interrupts"]["rose"] == {"1": 1}


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_bad_register_accesses_are_answered_by_the_rtl(simulator, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(BAD_ACCESSES)
    r = run(str(path), target=simulator, config=Config(), out=tmp_path)
    # ddtp reads Off (0) after reset: its bytes 2..5 too; capabilities' high word
    # (PAS 56 at bits 37:32 of the register, bits 5:0 of the upper half) is bytes 4..7.
    assert r["result"]["misaligned read"] == 0
    assert r["result"]["ipsr"] == 0 and r["mismatches"] == 0
    assert r["result"]["8 bytes at 4"] & 0xFFFF_FFFF == Config().capabilities >> 32
    assert r["error"]["type"] == "RegisterAccessError"
    assert r["error"]["line"] == "bad.py:7"
    assert len(r["unchecked_accesses"]) == 4
    assert (pathlib.Path(r["log"]).parent / "results.xml").exists()   # the simulator ended


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_a_disagreement_with_the_model_is_counted_on(simulator, tmp_path):
    """The checking model's capabilities lose Sv39: the RTL's read is one mismatch."""
    path = tmp_path / "disagree.py"
    path.write_text("host.model.regs.capabilities &= ~(1 << 9)\n"
                    "result = host.bus.mmio_read(0, 8)\n")
    report = tmp_path / "r.json"
    status = cli.main(["host", str(path), "--target", simulator, "--report", str(report)])
    r = json.loads(report.read_text())
    assert status == 1
    assert r["mismatches"] == 1 and r["result"] == Config().capabilities
    assert r["mismatch_details"][0].startswith(f"mmio read 0x000/8: {simulator} ")
