"""The seed scenarios, each run on the architectural model (the RTL bench runs them too)."""

import pytest

from iogate.hdl import Config
from iogate.hdl.port import Access

from iogate.cosim.host.core import HostIommu
from iogate.cosim.scenarios import seeds
from iogate.cosim.scenarios.seeds import ModelProbe, ScenarioError


@pytest.mark.parametrize("name", sorted(seeds.SCENARIOS))
def test_scenario_on_the_model(name):
    report = seeds.SCENARIOS[name](HostIommu.on_model())
    assert isinstance(report, dict) and report


def test_all_scenarios_share_one_iommu():
    host = HostIommu.on_model()
    for name in sorted(seeds.SCENARIOS):
        seeds.SCENARIOS[name](host)


def test_coherency_without_svpbmt():
    host = HostIommu.on_model(Config.full().replace(svpbmt=False, ddt_levels=2))
    report = seeds.coherency(host)
    assert report == {"vfio_pbmt": "PMA", "noncoherent_pbmt": "PMA", "mmio_pbmt": "PMA"}


def test_coherency_with_svpbmt():
    assert seeds.coherency(HostIommu.on_model()) == {
        "vfio_pbmt": "PMA", "noncoherent_pbmt": "NC", "mmio_pbmt": "IO"}


class _ForgetfulProbe(ModelProbe):
    """A probe of an IOMMU that never drops a cached translation: every answer it ever
    gave stays possible. The ownership scenario must catch it."""

    def __init__(self, model):
        super().__init__(model)
        self.seen = {}

    def translate(self, device_id, iova, access=Access.READ):
        r = super().translate(device_id, iova, access)
        if not r.fault:
            self.seen.setdefault((device_id, iova, access), set()).add(r)
        return r

    def possible(self, device_id, iova, access=Access.READ):
        return super().possible(device_id, iova, access) | self.seen.get(
            (device_id, iova, access), set())


def test_ownership_scenario_catches_a_stale_iotlb():
    host = HostIommu.on_model()
    with pytest.raises(ScenarioError, match="after the move to a blocking domain"):
        seeds.ownership_change(host, _ForgetfulProbe(host.model))


def test_scenarios_need_a_probe_without_a_model():
    host = HostIommu.on_model()
    host.model = None
    with pytest.raises(ValueError, match="the backend has no architectural model: pass a probe"):
        seeds.bypass(host)


def test_scenarios_on_a_small_iommu():
    # 1LVL directory (7-bit device_ids), Sv39 and Sv39x4 only: what the first hardware
    # slices offer. Every scenario's device_ids fit.
    host = HostIommu.on_model(Config(sv39x4=True, svpbmt=True, ddt_levels=1))
    assert host.device_id_bits == 7
    for name in sorted(seeds.SCENARIOS):
        seeds.SCENARIOS[name](host)
