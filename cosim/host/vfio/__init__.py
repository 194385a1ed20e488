"""A VFIO type1 container backed by an iogate.

==================  ==============================================================
:mod:`.uapi`        ioctl numbers, extensions, flags, struct layouts (``vfio.h``)
:mod:`.container`   :class:`VfioContainer`: devices, CHECK_EXTENSION, SET_IOMMU
:mod:`.type1`       GET_INFO, MAP_DMA, UNMAP_DMA with Linux's checks and errnos
==================  ==============================================================
"""

from iogate.cosim.host.vfio.container import VfioContainer

__all__ = ["VfioContainer"]
