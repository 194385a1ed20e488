"""The host software stack: the host kernel's IOMMU core and the front-ends on it.

Layer: above :mod:`iogate.firmware` (the driver it lowers onto) and :mod:`iogate.hdl`'s
layouts; below the scenarios. It knows nothing of the model, the checkers or the targets:
everything it does goes through a :class:`iogate.firmware.bus.Bus`, so the same stack runs
on the model, the simulated RTL and a board.

========================  =============================================================
:mod:`.core`              :class:`HostIommu`: domains, attach, map/unmap, ownership,
                          faults (Linux's IOMMU core over the driver), shared by every
                          front-end
:mod:`.intervals`         IOVA areas made by one map call, with the no-split rule
:mod:`.ids`               PSCID/GSCID/object-ID allocators
:mod:`.user`              a process's ioctl argument and memory (``copy_from_user``)
:mod:`.iommufd`           iommufd with nesting (``/dev/iommu``)
:mod:`.vfio`              a VFIO type1 container (``/dev/vfio/vfio``)
:mod:`.virtio`            the virtio-iommu device
========================  =============================================================
"""

from iogate.cosim.host.core import HostIommu

__all__ = ["HostIommu"]
