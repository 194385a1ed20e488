"""The virtio-iommu device: the request codec, config space, PROBE, eventq, and the device.

==================  ==============================================================
:mod:`.abi`         feature bits, request types, status codes, flags
:mod:`.requests`    byte-exact request and tail codec (v0.12 layout)
:mod:`.config`      ``struct virtio_iommu_config``
:mod:`.probe`       PROBE properties (``RESV_MEM``)
:mod:`.events`      eventq fault records from the IOMMU's fault-queue records
:mod:`.device`      :class:`VirtioIommu`: where a request is answered
==================  ==============================================================

Usage::

    from iogate.cosim.host.virtio import VirtioIommu
    dev = VirtioIommu(endpoints=[8, 9])
    written = dev.request(readable, writable_size)   # b"" means used length 0
"""

from iogate.cosim.host.virtio.abi import Feature, RequestType, Status
from iogate.cosim.host.virtio.device import VirtioIommu

__all__ = ["VirtioIommu", "Feature", "RequestType", "Status"]
