"""Runs the msi-isolation and msi-mrif scenarios (cosim/scenarios/msi.py) on the Config.msi()
RTL, on Verilator and on Icarus: each must pass its own checks (written from the grants and
the spec) with 0 mismatches against the architectural model."""

import json

import pytest

from iogate.cosim.scenarios import msi
from iogate.cosim.targets import sim


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
@pytest.mark.parametrize("scenario", list(msi.SCENARIOS))
def test_msi_scenario_on(scenario, simulator, tmp_path):
    build = sim.build_iommu(msi.CONFIG, simulator)
    report = tmp_path / "report.json"
    sim.run(build, "iogate.cosim.scenarios.msi", test_dir=tmp_path,
            log_file=tmp_path / "sim.log", testcase=scenario.replace("-", "_") + "_rtl",
            extra_env={"IOGATE_REPORT": str(report), "IOGATE_SIM": simulator})
    r = json.loads(report.read_text())
    assert (r["scenario"], r["error"], r["mismatches"]) == (scenario, None, 0)
    # Every access went through the RTL's port, and the isolation faults were seen there.
    assert r["translations"] == r["probes"] > 5
    assert r["faults"].get("262", r["faults"].get(262, 0)) >= 1
