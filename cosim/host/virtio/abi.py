"""virtio-iommu numbers: device ID, feature bits, request types, status codes and flags.

Virtio specification, section "IOMMU device" (device-types/iommu/description.tex, text
unchanged from v1.2 to v1.4), and Linux ``include/uapi/linux/virtio_iommu.h`` in its v0.12
layout. The pre-standard v0.9 header differs (``MAP_F_MMIO`` was ``1 << 3``, ATTACH had no
``flags``, config had ``domain_bits``); nothing here follows it.
"""

import enum

__all__ = [
    "DEVICE_ID", "PCI_DEVICE_ID", "REQUESTQ", "EVENTQ",
    "Feature", "RequestType", "Status", "AttachFlag", "MapFlag",
    "ProbeType", "ResvMemSubtype", "FaultReason", "FaultFlag",
    "HEAD_SIZE", "TAIL_SIZE", "FAULT_SIZE", "PROBE_T_MASK", "VIRTIO_F_VERSION_1",
]

#: Virtio device ID of the IOMMU device (spec "Device ID").
DEVICE_ID = 23
#: Modern virtio-pci device ID: 0x1040 + 23.
PCI_DEVICE_ID = 0x1040 + DEVICE_ID
#: Virtqueue indices (spec "Virtqueues").
REQUESTQ, EVENTQ = 0, 1

#: Transport feature bit 32 (virtio spec "Reserved Feature Bits"); Linux's virtio-iommu
#: driver refuses a device without it.
VIRTIO_F_VERSION_1 = 1 << 32

#: ``struct virtio_iommu_req_head`` and ``struct virtio_iommu_req_tail``: 4 bytes each.
HEAD_SIZE = TAIL_SIZE = 4
#: ``struct virtio_iommu_fault``.
FAULT_SIZE = 24
#: Bits of ``virtio_iommu_probe_property.type`` that hold the type; 15:12 are reserved.
PROBE_T_MASK = 0xFFF


class Feature(enum.IntFlag):
    """Device feature bits (spec "Feature bits"), as bit masks."""
    INPUT_RANGE = 1 << 0
    DOMAIN_RANGE = 1 << 1
    MAP_UNMAP = 1 << 2
    #: Legacy; "New devices SHOULD NOT offer" it, and never together with BYPASS_CONFIG.
    BYPASS = 1 << 3
    PROBE = 1 << 4
    MMIO = 1 << 5
    BYPASS_CONFIG = 1 << 6


class RequestType(enum.IntEnum):
    """``virtio_iommu_req_head.type`` (spec "Device operations")."""
    ATTACH = 1
    DETACH = 2
    MAP = 3
    UNMAP = 4
    PROBE = 5


class Status(enum.IntEnum):
    """``virtio_iommu_req_tail.status`` (spec "Device operations")."""
    OK = 0
    IOERR = 1
    UNSUPP = 2
    DEVERR = 3
    INVAL = 4
    RANGE = 5
    NOENT = 6
    FAULT = 7
    NOMEM = 8


class AttachFlag(enum.IntFlag):
    """``virtio_iommu_req_attach.flags``."""
    BYPASS = 1 << 0


class MapFlag(enum.IntFlag):
    """``virtio_iommu_req_map.flags``. MMIO is a memory type, not a permission."""
    READ = 1 << 0
    WRITE = 1 << 1
    MMIO = 1 << 2


class ProbeType(enum.IntEnum):
    """``virtio_iommu_probe_property.type``; NONE ends the list."""
    NONE = 0
    RESV_MEM = 1


class ResvMemSubtype(enum.IntEnum):
    """``virtio_iommu_probe_resv_mem.subtype``."""
    RESERVED = 0
    MSI = 1


class FaultReason(enum.IntEnum):
    """``virtio_iommu_fault.reason`` (spec "Fault reporting")."""
    UNKNOWN = 0
    DOMAIN = 1
    MAPPING = 2


class FaultFlag(enum.IntFlag):
    """``virtio_iommu_fault.flags``. Linux's ``F_EXEC`` (1 << 2) is not in the spec."""
    READ = 1 << 0
    WRITE = 1 << 1
    ADDRESS = 1 << 8
