"""Builds the iogate top with a 32-bit register bus and runs tests/rtl/rtl_mmio32.py (8-byte
registers written as two 4-byte halves) on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_mmio32 import CONFIG


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_mmio32_on(simulator, tmp_path):
    build = sim.build_iommu(CONFIG, simulator)
    sim.run(build, "rtl_mmio32", test_dir=tmp_path, log_file=tmp_path / "sim.log")
