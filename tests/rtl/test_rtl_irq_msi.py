"""Builds the iogate top with ``Config.full()`` and ``igs=BOTH`` and runs
tests/rtl/rtl_irq_msi.py (IOMMU-generated MSIs against the model) on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_irq_msi import CONFIG


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_irq_msi_on(simulator, tmp_path):
    build = sim.build_iommu(CONFIG, simulator)
    sim.run(build, "rtl_irq_msi", test_dir=tmp_path, log_file=tmp_path / "sim.log")
