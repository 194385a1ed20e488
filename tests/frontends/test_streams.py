"""The seeded Linux-like guest stream, run against the virtio-iommu device on the model."""

import pytest

from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.virtio import VirtioIommu
from iogate.cosim.scenarios.seeds import ScenarioError
from iogate.cosim.scenarios.streams import LinuxGuest


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lazy"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_linux_like_stream(seed, strict):
    dev = VirtioIommu(range(0x100, 0x106), backend=HostIommu.on_model())
    report = LinuxGuest(dev, seed=seed, strict=strict).run(rounds=3, buffers=4)
    counts = report.requests
    assert counts["PROBE"] == 6
    assert counts["MAP"] > 0 and counts["UNMAP"] > 0 and counts["DETACH"] >= 6
    assert report.replays >= 1 and report.dma_checks > 50


def test_lazy_unmaps_in_fewer_requests():
    counts = {}
    for strict in (True, False):
        dev = VirtioIommu(range(0x100, 0x104), backend=HostIommu.on_model())
        counts[strict] = LinuxGuest(dev, seed=7, strict=strict).run(rounds=2).requests
    assert counts[True]["MAP"] == counts[False]["MAP"]
    assert counts[False]["UNMAP"] < counts[True]["UNMAP"]


def test_same_seed_same_stream():
    runs = []
    for _ in range(2):
        dev = VirtioIommu(range(0x100, 0x104), backend=HostIommu.on_model())
        runs.append(LinuxGuest(dev, seed=11).run(rounds=2).as_dict())
    assert runs[0] == runs[1]


def test_stream_catches_a_device_that_ignores_unmap():
    class Lazy(VirtioIommu):
        def _unmap(self, req):                 # answers OK and unmaps nothing
            return 0
    dev = Lazy(range(0x100, 0x104), backend=HostIommu.on_model())
    with pytest.raises(ScenarioError, match="expected a fault"):
        LinuxGuest(dev, seed=1).run(rounds=1)
