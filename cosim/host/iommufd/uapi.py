"""iommufd user API numbers and struct layouts (``include/uapi/linux/iommufd.h``), and the
project's private RISC-V data types.

Every ioctl is ``_IO(';', nr)`` and every struct starts with ``__u32 size``: the kernel
accepts any ``size`` of at least the struct's first release (``min_size``), zero-extends a
shorter one and requires the bytes of a longer one beyond what it knows to be zero
(``-E2BIG``). Mainline has no RISC-V nesting types (an RFC proposed some whose numbers now
collide with mainline's), so iogate defines its own, far from mainline's small numbers:

``IOMMU_HWPT_DATA_RISCV_IOGATE``
    ``struct iommu_hwpt_riscv_iogate { __aligned_u64 tc; __aligned_u64 ta;
    __aligned_u64 fsc; }`` (24 bytes): the guest's device-context fields (RISC-V IOMMU
    spec "Device-context fields"). ``fsc`` is the guest's ``iosatp``: a first-stage table rooted at
    a guest physical address. The host keeps ``iohgatp`` (the parent's second stage) and chooses
    the PSCID.

``IOMMU_HWPT_INVALIDATE_DATA_RISCV_IOGATE``
    ``struct iommu_hwpt_riscv_iogate_invalidate { __aligned_u64 cmd[2]; }`` (16 bytes):
    one raw command-queue command (spec "Command-Queue (CQ)"), as the RFC and ARM's ``cmd[2]`` do.
"""

import enum
import struct

__all__ = [
    "IOMMUFD_TYPE", "Ioctl", "IoasMapFlag", "HwptAllocFlag", "HwptDataType",
    "HwptInvalidateDataType", "OPS", "Op", "HWPT_RISCV", "HWPT_RISCV_MIN",
    "INVALIDATE_ENTRY_SIZE", "DESTROY", "IOAS_ALLOC", "IOAS_MAP", "IOAS_UNMAP",
    "HWPT_ALLOC", "HWPT_INVALIDATE", "FAULT_ALLOC", "HWPT_PGFAULT", "HWPT_PAGE_RESPONSE",
    "PgfaultFlag", "PgfaultPerm", "PageResponseCode",
]

IOMMUFD_TYPE = ord(";")


class Ioctl(enum.IntEnum):
    """``IOMMU_*`` ioctl numbers (``_IO(IOMMUFD_TYPE, 0x80 + n)``)."""
    DESTROY = 0x3B80
    IOAS_ALLOC = 0x3B81
    IOAS_ALLOW_IOVAS = 0x3B82
    IOAS_COPY = 0x3B83
    IOAS_IOVA_RANGES = 0x3B84
    IOAS_MAP = 0x3B85
    IOAS_UNMAP = 0x3B86
    OPTION = 0x3B87
    VFIO_IOAS = 0x3B88
    HWPT_ALLOC = 0x3B89
    GET_HW_INFO = 0x3B8A
    HWPT_SET_DIRTY_TRACKING = 0x3B8B
    HWPT_GET_DIRTY_BITMAP = 0x3B8C
    HWPT_INVALIDATE = 0x3B8D
    FAULT_QUEUE_ALLOC = 0x3B8E


class IoasMapFlag(enum.IntFlag):
    FIXED_IOVA = 1 << 0
    WRITEABLE = 1 << 1
    READABLE = 1 << 2


class HwptAllocFlag(enum.IntFlag):
    NEST_PARENT = 1 << 0
    DIRTY_TRACKING = 1 << 1
    FAULT_ID_VALID = 1 << 2
    PASID = 1 << 3


class HwptDataType(enum.IntEnum):
    """``enum iommu_hwpt_data_type``; the last one is iogate's own."""
    NONE = 0
    VTD_S1 = 1
    ARM_SMMUV3 = 2
    RISCV_IOGATE = 0x10_0001


class HwptInvalidateDataType(enum.IntEnum):
    """``enum iommu_hwpt_invalidate_data_type``; the last one is iogate's own."""
    VTD_S1 = 0
    ARM_SMMUV3 = 1
    RISCV_IOGATE = 0x10_0001


#: ``struct iommu_destroy { u32 size; u32 id; }``
DESTROY = struct.Struct("<II")
#: ``struct iommu_ioas_alloc { u32 size; u32 flags; u32 out_ioas_id; }``
IOAS_ALLOC = struct.Struct("<III")
#: ``struct iommu_ioas_map { u32 size; u32 flags; u32 ioas_id; u32 __reserved;
#: u64 user_va; u64 length; u64 iova; }``
IOAS_MAP = struct.Struct("<IIIIQQQ")
#: ``struct iommu_ioas_unmap { u32 size; u32 ioas_id; u64 iova; u64 length; }``
IOAS_UNMAP = struct.Struct("<IIQQ")
#: ``struct iommu_hwpt_alloc { u32 size; u32 flags; u32 dev_id; u32 pt_id;
#: u32 out_hwpt_id; u32 __reserved; u32 data_type; u32 data_len; u64 data_uptr;
#: u32 fault_id; u32 __reserved2; }``
HWPT_ALLOC = struct.Struct("<IIIIIIIIQII")
#: ``struct iommu_hwpt_invalidate { u32 size; u32 hwpt_id; u64 data_uptr;
#: u32 data_type; u32 entry_len; u32 entry_num; u32 __reserved; }``
HWPT_INVALIDATE = struct.Struct("<IIQIIII")

#: ``struct iommu_fault_alloc { u32 size; u32 flags; u32 out_fault_id; u32 out_fault_fd; }``
FAULT_ALLOC = struct.Struct("<IIII")
#: ``struct iommu_hwpt_pgfault { u32 flags; u32 dev_id; u32 pasid; u32 grpid; u32 perm;
#: u32 __reserved; __aligned_u64 addr; u32 length; u32 cookie; }``: what ``read()`` of a
#: fault fd yields, one per page request.
HWPT_PGFAULT = struct.Struct("<IIIIIIQII")
#: ``struct iommu_hwpt_page_response { u32 cookie; u32 code; }``: what ``write()`` takes.
HWPT_PAGE_RESPONSE = struct.Struct("<II")


class PgfaultFlag(enum.IntFlag):
    """``enum iommu_hwpt_pgfault_flags``."""
    PASID_VALID = 1 << 0
    LAST_PAGE = 1 << 1


class PgfaultPerm(enum.IntFlag):
    """``enum iommu_hwpt_pgfault_perm`` (EXEC and PRIV: PCIe's Execute / Privileged Mode
    Requested of a request with a PASID)."""
    READ = 1 << 0
    WRITE = 1 << 1
    EXEC = 1 << 2
    PRIV = 1 << 3


class PageResponseCode(enum.IntEnum):
    """``enum iommufd_page_response_code``: PCIe's Success and Invalid Request (Response
    Failure is not offered to user space: it disables a PRI other functions may share)."""
    SUCCESS = 0
    INVALID = 1


#: ``struct iommu_hwpt_riscv_iogate { u64 tc; u64 ta; u64 fsc; }``
HWPT_RISCV = struct.Struct("<QQQ")
#: Its ``offsetofend(..., fsc)``: shorter data is refused.
HWPT_RISCV_MIN = 24
#: ``struct iommu_hwpt_riscv_iogate_invalidate``: one 16-byte command.
INVALIDATE_ENTRY_SIZE = 16


class Op:
    """How the dispatcher copies one ioctl's struct (``IOCTL_OP`` in iommufd/main.c)."""

    def __init__(self, layout, min_size):
        self.layout = layout
        self.size = layout.size
        self.min_size = min_size


#: The ioctls implemented here, with ``min_size = offsetofend(struct, last field of its
#: first release)``.
OPS = {
    Ioctl.DESTROY: Op(DESTROY, 8),
    Ioctl.IOAS_ALLOC: Op(IOAS_ALLOC, 12),
    Ioctl.IOAS_MAP: Op(IOAS_MAP, 40),
    Ioctl.IOAS_UNMAP: Op(IOAS_UNMAP, 24),
    Ioctl.HWPT_ALLOC: Op(HWPT_ALLOC, 24),
    Ioctl.HWPT_INVALIDATE: Op(HWPT_INVALIDATE, 32),
    Ioctl.FAULT_QUEUE_ALLOC: Op(FAULT_ALLOC, 16),
}

assert HWPT_ALLOC.size == 48 and HWPT_INVALIDATE.size == 32 and IOAS_MAP.size == 40
assert HWPT_PGFAULT.size == 40 and HWPT_PAGE_RESPONSE.size == 8 and FAULT_ALLOC.size == 16
