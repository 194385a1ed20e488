"""Runs every front-end scenario of cosim/scenarios/on_rtl.py on the full first-target RTL,
on Verilator and on Icarus: each must end with its own checks passed and 0 mismatches
against the architectural model (the report's ``mismatches``)."""

import json

import pytest

from iogate.cosim.scenarios.on_rtl import FULL, SCENARIOS, SELF_CHECK, cocotb_name_of
from iogate.cosim.scenarios.rtl_probe import RtlProbe
from iogate.cosim.targets import sim


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_on(scenario, simulator, tmp_path):
    build = sim.build_iommu(FULL, simulator)
    report = tmp_path / "report.json"
    sim.run(build, "iogate.cosim.scenarios.on_rtl", test_dir=tmp_path,
            log_file=tmp_path / "sim.log",
            testcase=cocotb_name_of(scenario),
            extra_env={"IOGATE_REPORT": str(report),
                       "IOGATE_SIM": simulator})
    r = json.loads(report.read_text())
    assert (r["scenario"], r["error"], r["mismatches"]) == (scenario, None, 0)
    # The scenario really went through the RTL's port: every probe call is a request.
    assert r["translations"] == r["probes"] > 0


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_probe_counts_a_disagreement_on(simulator, tmp_path):
    # The cocotb test asserts that exactly one mismatch (a page fault, cause 13, the
    # model expects and the RTL does not give) is recorded.
    build = sim.build_iommu(FULL, simulator)
    sim.run(build, "iogate.cosim.scenarios.on_rtl", test_dir=tmp_path,
            log_file=tmp_path / "sim.log",
            testcase=cocotb_name_of(SELF_CHECK))


class _FakeSession:
    class tb:
        ports = [object()]


@pytest.mark.parametrize("port, error, message", [
    ("0", TypeError, "port must be an integer, not '0'"),
    (True, TypeError, "port must be an integer, not True"),
    (1, ValueError, "port must be in [0, 1), not 1"),
    (-1, ValueError, "port must be in [0, 1), not -1"),
])
def test_probe_rejects_port(port, error, message):
    with pytest.raises(error) as e:
        RtlProbe(_FakeSession(), port)
    assert str(e.value) == message
