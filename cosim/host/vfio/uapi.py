"""Linux VFIO user API numbers and struct layouts (``include/uapi/linux/vfio.h``).

Ioctls are ``_IO(VFIO_TYPE, VFIO_BASE + n)`` with ``VFIO_TYPE = ';'`` (0x3B) and
``VFIO_BASE = 100``: no size is encoded in the number; every struct carries its own
``argsz``. The kernel copies ``minsz = offsetofend(struct, last mandatory field)`` bytes
and refuses ``argsz < minsz`` with ``-EINVAL``.
"""

import enum
import struct

__all__ = [
    "VFIO_TYPE", "VFIO_BASE", "VFIO_API_VERSION", "Ioctl", "Extension",
    "InfoFlag", "InfoCap", "MapFlag", "UnmapFlag",
    "INFO", "DMA_MAP", "DMA_UNMAP", "CAP_HEADER", "IOVA_RANGE", "DMA_AVAIL",
    "INFO_MINSZ", "DMA_MAP_MINSZ", "DMA_UNMAP_MINSZ", "BITMAP", "DMA_ENTRY_LIMIT",
]

VFIO_TYPE = ord(";")
VFIO_BASE = 100
#: ``VFIO_GET_API_VERSION`` returns this.
VFIO_API_VERSION = 0
#: Default of type1's ``dma_entry_limit`` module parameter.
DMA_ENTRY_LIMIT = 65535


def _io(nr):
    return (VFIO_TYPE << 8) | (VFIO_BASE + nr)


class Ioctl(enum.IntEnum):
    """Container ioctl numbers."""
    GET_API_VERSION = _io(0)          # 0x3B64
    CHECK_EXTENSION = _io(1)          # 0x3B65
    SET_IOMMU = _io(2)                # 0x3B66
    IOMMU_GET_INFO = _io(12)          # 0x3B70
    IOMMU_MAP_DMA = _io(13)           # 0x3B71
    IOMMU_UNMAP_DMA = _io(14)         # 0x3B72
    IOMMU_ENABLE = _io(15)
    IOMMU_DISABLE = _io(16)
    IOMMU_DIRTY_PAGES = _io(17)


assert Ioctl.CHECK_EXTENSION == 0x3B65 and Ioctl.IOMMU_UNMAP_DMA == 0x3B72


class Extension(enum.IntEnum):
    """``VFIO_CHECK_EXTENSION``/``VFIO_SET_IOMMU`` arguments."""
    TYPE1_IOMMU = 1
    SPAPR_TCE_IOMMU = 2
    TYPE1v2_IOMMU = 3
    DMA_CC_IOMMU = 4
    EEH = 5
    TYPE1_NESTING_IOMMU = 6           # removed from Linux; the number stays reserved
    SPAPR_TCE_v2_IOMMU = 7
    NOIOMMU_IOMMU = 8
    UNMAP_ALL = 9
    UPDATE_VADDR = 10


class InfoFlag(enum.IntFlag):
    PGSIZES = 1 << 0
    CAPS = 1 << 1


class InfoCap(enum.IntEnum):
    """Capability IDs in the ``VFIO_IOMMU_GET_INFO`` chain."""
    IOVA_RANGE = 1
    MIGRATION = 2
    DMA_AVAIL = 3


class MapFlag(enum.IntFlag):
    """``vfio_iommu_type1_dma_map.flags``; READ/WRITE are from the device's view."""
    READ = 1 << 0
    WRITE = 1 << 1
    VADDR = 1 << 2


class UnmapFlag(enum.IntFlag):
    GET_DIRTY_BITMAP = 1 << 0
    ALL = 1 << 1
    VADDR = 1 << 2


#: ``struct vfio_iommu_type1_info { u32 argsz; u32 flags; u64 iova_pgsizes;
#: u32 cap_offset; u32 pad; }`` (24 bytes).
INFO = struct.Struct("<IIQII")
#: ``offsetofend(struct vfio_iommu_type1_info, iova_pgsizes)``.
INFO_MINSZ = 16
#: ``struct vfio_iommu_type1_dma_map { u32 argsz; u32 flags; u64 vaddr; u64 iova;
#: u64 size; }`` (32 bytes, all mandatory).
DMA_MAP = struct.Struct("<IIQQQ")
DMA_MAP_MINSZ = 32
#: ``struct vfio_iommu_type1_dma_unmap { u32 argsz; u32 flags; u64 iova; u64 size;
#: u8 data[]; }`` (24 bytes before ``data``).
DMA_UNMAP = struct.Struct("<IIQQ")
DMA_UNMAP_MINSZ = 24
#: ``struct vfio_bitmap { u64 pgsize; u64 size; u64 *data; }`` after an unmap with
#: ``GET_DIRTY_BITMAP``.
BITMAP = struct.Struct("<QQQ")
#: ``struct vfio_info_cap_header { u16 id; u16 version; u32 next; }``.
CAP_HEADER = struct.Struct("<HHI")
#: ``struct vfio_iommu_type1_info_cap_iova_range`` header part: ``u32 nr_iovas;
#: u32 reserved;`` after the cap header, then ``{u64 start; u64 end;}`` per range.
IOVA_RANGE = struct.Struct("<II")
#: ``struct vfio_iommu_type1_info_dma_avail``: ``u32 avail`` after the cap header.
DMA_AVAIL = struct.Struct("<I")

assert INFO.size == 24 and DMA_MAP.size == DMA_MAP_MINSZ and DMA_UNMAP.size == 24
