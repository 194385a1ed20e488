"""iommufd-style nesting, and the host's IOMMU layer every front-end lowers onto.

==================  ==============================================================
:mod:`.ictx`        :class:`Iommufd`: the context, its objects and ioctls
:mod:`.uapi`        ioctl numbers, struct layouts, the project's RISC-V data types
:mod:`.ioas`        an IOAS: user IOVA space mirrored into kernel-managed HWPTs
:mod:`.nesting`     checking a guest's DC fields, rewriting its invalidations
:mod:`.host`        :class:`HostIommu`: domains, attach, map/unmap, ownership, faults
                    (the host kernel's IOMMU core over :mod:`firmware`), shared by the
                    virtio-iommu device and the VFIO container too
:mod:`.intervals`   IOVA areas made by one map call, with the no-split rule
:mod:`.ids`         PSCID/GSCID/object-ID allocators
:mod:`.user`        a process's ioctl argument and memory (``copy_from_user``, pinning)
==================  ==============================================================
"""

from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.iommufd.ictx import Iommufd

__all__ = ["HostIommu", "Iommufd"]
