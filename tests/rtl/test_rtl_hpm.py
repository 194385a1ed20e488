"""Builds the iogate top with the performance monitor (Config.hpm() on a 32-bit register bus,
and Config.msi() with 7 counters) and runs tests/rtl/rtl_hpm.py on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_hpm import CONFIGS


@pytest.mark.cocotb
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_hpm_on(simulator, name, tmp_path):
    build = sim.build_iommu(CONFIGS[name], simulator)
    sim.run(build, "rtl_hpm", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env={"IOGATE_HPM_CONFIG": name})
