"""The ``sva`` and ``vsva`` scenarios on the model target, checked against the model, and
what they catch: a host that leaves out the invalidation.

The expected answers come from the scenarios' own mappings (the process's page table, the
guest's): each DMA is also compared with the architectural model's ``allowed`` set by the
host's scoreboard (``mismatches``). A model target that caches (as hardware does) makes a
missing ``IOTINVAL.VMA`` visible: the scenario must then fail.
"""

import pytest

from iogate.hdl import Config

from iogate.firmware.driver import Iommu

from iogate.cosim.client.host import Host
from iogate.cosim.client.run import run
from iogate.cosim.client.script import execute
from iogate.cosim.client.targets import ModelTarget
from iogate.cosim.scenarios.run import HOST_SCENARIOS, list_scenarios

PROCESS = Config.process()


@pytest.mark.parametrize("name", ["sva", "vsva"])
def test_scenario_passes_on_the_model(name):
    r = execute(HOST_SCENARIOS[name][0], caching_host(cache=False))
    assert r["error"] is None, r["error"]
    assert r["mismatches"] == 0, r["mismatch_details"]
    assert r["result"]["dma_checked"] >= 6
    assert r["result"]["pdt_mode"] == "PD20"


def test_scenarios_are_listed():
    text = list_scenarios()
    assert "\nsva " in text and "\nvsva " in text


def caching_host(cache=True, config=PROCESS):
    return Host(ModelTarget(config, cache=cache))


@pytest.mark.parametrize("name", ["sva", "vsva"])
def test_a_caching_target_passes_too(name):
    r = execute(HOST_SCENARIOS[name][0], caching_host())
    assert r["error"] is None, r["error"]
    assert r["mismatches"] == 0


def test_a_missing_invalidation_is_caught(monkeypatch):
    # The host "forgets" the IOTINVAL.VMA after the process's unmap: the fence alone
    # leaves the IOTLB entry, and the post-fence DMA still reaches the old page.
    monkeypatch.setattr(Iommu, "sync", lambda self, table, changes, **kw: self.fence())
    r = execute(HOST_SCENARIOS["sva"][0], caching_host())
    assert r["error"] is not None and "ScenarioFailed" in r["error"]["type"]


def test_a_missing_forwarded_invalidation_is_caught(monkeypatch):
    from iogate.cosim.host.core import HostIommu
    monkeypatch.setattr(HostIommu, "invalidate", lambda self, cmds: self.driver.fence())
    r = execute(HOST_SCENARIOS["vsva"][0], caching_host())
    assert r["error"] is not None and "ScenarioFailed" in r["error"]["type"]


def test_sva_needs_process_contexts():
    r = run(HOST_SCENARIOS["sva"][0], target="model", config=Config.full())
    assert r["error"]["type"] == "UnsupportedError"
    r = execute(HOST_SCENARIOS["vsva"][0], caching_host(config=Config.full()))
    assert r["error"]["type"] == "UnsupportedError"
