"""Builds the iogate top with ``Config.full()`` and ``igs=BOTH``, and with ``Config.msi()``, and
runs tests/rtl/rtl_irq_msi.py (IOMMU-generated MSIs against the model) on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_irq_msi import CONFIGS


@pytest.mark.cocotb
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_irq_msi_on(simulator, name, tmp_path):
    build = sim.build_iommu(CONFIGS[name], simulator)
    sim.run(build, "rtl_irq_msi", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env={"IOGATE_IRQ_MSI_CONFIG": name})
