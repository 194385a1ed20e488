"""Builds the iogate top with a 64- and a 32-bit register bus and runs
tests/rtl/rtl_bad_mmio.py (register accesses the spec does not allow) on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_bad_mmio import CONFIGS


@pytest.mark.cocotb
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_bad_mmio_on(simulator, config, tmp_path):
    build = sim.build_iommu(CONFIGS[config], simulator)
    sim.run(build, "rtl_bad_mmio", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env={"IOGATE_BAD_MMIO_CONFIG": config})
