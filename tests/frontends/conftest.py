"""Fixtures of the front-end tests: a host over a fresh model, and a virtio device on it."""

import pytest

from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.virtio import VirtioIommu


@pytest.fixture
def host():
    return HostIommu.on_model()


@pytest.fixture
def dev(host):
    return VirtioIommu([8, 9, 10], backend=host)
