"""Builds the iogate top with ATS, PRI and T2GPA (Config.full() + ats + t2gpa) and runs
tests/rtl/rtl_ats.py (RTL against the model) on Verilator and Icarus."""

import pytest

from iogate.cosim.targets import sim
from rtl_ats import CONFIG


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_ats_on(simulator, tmp_path):
    build = sim.build_iommu(CONFIG, simulator)
    sim.run(build, "rtl_ats", test_dir=tmp_path, log_file=tmp_path / "sim.log")
