"""Builds the full first-target top and runs tests/rtl/rtl_directed.py on Verilator and
Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_directed import FULL


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_directed_on(simulator, tmp_path):
    build = sim.build_iommu(FULL, simulator)
    sim.run(build, "rtl_directed", test_dir=tmp_path, log_file=tmp_path / "sim.log")
