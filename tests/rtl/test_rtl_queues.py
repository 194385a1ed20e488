"""Builds the iogate top and runs tests/rtl/rtl_queues.py on Verilator and Icarus."""

import pytest

from iogate.hdl import Config

from iogate.cosim.targets import sim


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_queues_on(simulator, tmp_path):
    build = sim.build_iommu(Config(), simulator)
    sim.run(build, "rtl_queues", test_dir=tmp_path, log_file=tmp_path / "sim.log")
