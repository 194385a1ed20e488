"""Builds the iogate top (default, full, and full with ATS) and runs tests/rtl/rtl_qemu.py, QEMU's
riscv-iommu register checks, on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_qemu import CONFIGS


@pytest.mark.cocotb
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_qemu_checks_on(simulator, config, tmp_path):
    build = sim.build_iommu(CONFIGS[config], simulator)
    sim.run(build, "rtl_qemu", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env={"IOGATE_QEMU_CONFIG": config})
