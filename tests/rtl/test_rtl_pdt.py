"""Builds Config.full() with PD8/PD17/PD20 and runs tests/rtl/rtl_pdt.py on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_pdt import PDT


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_process_contexts_on(simulator, tmp_path):
    build = sim.build_iommu(PDT, simulator)
    sim.run(build, "rtl_pdt", test_dir=tmp_path, log_file=tmp_path / "sim.log")
