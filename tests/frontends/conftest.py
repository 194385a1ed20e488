"""Fixtures of the front-end tests: a host over a fresh model, and a virtio device on it."""

import pytest

from cosim.iommufd.host import HostIommu
from cosim.virtio import VirtioIommu


@pytest.fixture
def host():
    return HostIommu.on_model()


@pytest.fixture
def dev(host):
    return VirtioIommu([8, 9, 10], backend=host)
