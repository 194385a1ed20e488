"""Byte-exact codec of virtio-iommu requests (the device-readable part) and the tail.

Virtio specification, section "IOMMU device / Device operations", v0.12 layout of Linux's
``virtio_iommu.h``. Every request starts with ``struct virtio_iommu_req_head`` (``u8 type;
u8 reserved[3]``) and ends with ``struct virtio_iommu_req_tail`` (``u8 status; u8
reserved[3]``) in the device-writable part. All fields are little-endian and naturally
aligned, so the packed and unpacked layouts are the same::

    ATTACH  @0 head  @4 le32 domain  @8 le32 endpoint  @12 le32 flags   @16 u8 reserved[4]
    DETACH  @0 head  @4 le32 domain  @8 le32 endpoint  @12 u8 reserved[8]
    MAP     @0 head  @4 le32 domain  @8 le64 virt_start @16 le64 virt_end
                     @24 le64 phys_start  @32 le32 flags
    UNMAP   @0 head  @4 le32 domain  @8 le64 virt_start @16 le64 virt_end @24 u8 reserved[4]
    PROBE   @0 head  @4 le32 endpoint  @8 u8 reserved[64]

:func:`decode` turns the readable bytes into one of the request classes below; each class
also encodes itself, which the driver side (stream generators, tests) uses. Bytes beyond a
request's readable part are ignored: the PROBE ``reserved`` padding exists so "future
extensions can add fields to the device-readable part".
"""

import dataclasses
import struct

from iogate.cosim.host.virtio.abi import HEAD_SIZE, TAIL_SIZE, RequestType, Status

__all__ = [
    "Attach", "Detach", "Map", "Unmap", "Probe", "REQUEST_CLASSES",
    "RequestError", "NoHead", "UnknownType", "Truncated",
    "decode", "encode_tail", "decode_tail",
]


class RequestError(Exception):
    """The readable part cannot be decoded as a request."""


class NoHead(RequestError):
    """Fewer than 4 readable bytes: not even the request type can be read."""


class UnknownType(RequestError):
    """``head.type`` is not a request type the device knows."""

    def __init__(self, type_):
        super().__init__(f"unknown request type {type_}")
        self.type = type_


class Truncated(RequestError):
    """The readable part is shorter than its request type needs."""

    def __init__(self, type_, length):
        super().__init__(f"{type_.name} needs {_CLASSES[type_].SIZE} readable bytes, "
                         f"got {length}")
        self.type = type_
        self.length = length


class _Request:
    # Subclasses set TYPE, FORMAT (after the 4-byte head) and the dataclass fields, in
    # FORMAT order.
    TYPE = None
    FORMAT = ""

    @classmethod
    def _struct(cls):
        return struct.Struct("<B3x" + cls.FORMAT)

    def encode(self, head_reserved=b"\0\0\0"):
        """The device-readable bytes of this request.

        ``head_reserved`` fills ``head.reserved``, which the device MUST ignore.
        """
        values = [getattr(self, f.name) for f in dataclasses.fields(self)]
        raw = bytearray(self._struct().pack(self.TYPE, *values))
        raw[1:HEAD_SIZE] = bytes(head_reserved)[:3].ljust(3, b"\0")
        return bytes(raw)

    @classmethod
    def from_bytes(cls, readable):
        s = cls._struct()
        if len(readable) < s.size:
            raise Truncated(cls.TYPE, len(readable))
        return cls(*s.unpack_from(readable)[1:])


@dataclasses.dataclass(frozen=True)
class Attach(_Request):
    """``struct virtio_iommu_req_attach`` (readable part: 20 bytes)."""
    TYPE = RequestType.ATTACH
    FORMAT = "III4s"
    SIZE = 20
    domain: int
    endpoint: int
    flags: int = 0
    reserved: bytes = bytes(4)


@dataclasses.dataclass(frozen=True)
class Detach(_Request):
    """``struct virtio_iommu_req_detach`` (readable part: 20 bytes)."""
    TYPE = RequestType.DETACH
    FORMAT = "II8s"
    SIZE = 20
    domain: int
    endpoint: int
    reserved: bytes = bytes(8)


@dataclasses.dataclass(frozen=True)
class Map(_Request):
    """``struct virtio_iommu_req_map`` (readable part: 36 bytes). ``virt_end`` is inclusive."""
    TYPE = RequestType.MAP
    FORMAT = "IQQQI"
    SIZE = 36
    domain: int
    virt_start: int
    virt_end: int
    phys_start: int
    flags: int


@dataclasses.dataclass(frozen=True)
class Unmap(_Request):
    """``struct virtio_iommu_req_unmap`` (readable part: 28 bytes). ``virt_end`` is inclusive."""
    TYPE = RequestType.UNMAP
    FORMAT = "IQQ4s"
    SIZE = 28
    domain: int
    virt_start: int
    virt_end: int
    reserved: bytes = bytes(4)


@dataclasses.dataclass(frozen=True)
class Probe(_Request):
    """``struct virtio_iommu_req_probe`` (readable part: 72 bytes)."""
    TYPE = RequestType.PROBE
    FORMAT = "I64s"
    SIZE = 72
    endpoint: int
    reserved: bytes = bytes(64)


_CLASSES = {cls.TYPE: cls for cls in (Attach, Detach, Map, Unmap, Probe)}
#: The request class of each request type.
REQUEST_CLASSES = dict(_CLASSES)

for _cls in _CLASSES.values():
    assert _cls._struct().size == _cls.SIZE, _cls


def decode(readable):
    """The request held in the device-readable bytes ``readable``.

    Raises
    ------
    NoHead
        If ``readable`` is shorter than the 4-byte head.
    UnknownType
        If ``head.type`` is not one of :class:`~iogate.cosim.host.virtio.abi.RequestType`.
    Truncated
        If ``readable`` is shorter than the request type's readable part.
    """
    readable = bytes(readable)
    if len(readable) < HEAD_SIZE:
        raise NoHead("a request needs at least the 4-byte head")
    try:
        type_ = RequestType(readable[0])
    except ValueError:
        raise UnknownType(readable[0]) from None
    return _CLASSES[type_].from_bytes(readable)


def encode_tail(status):
    """``struct virtio_iommu_req_tail``; the device SHOULD zero ``reserved``."""
    return bytes([Status(status), 0, 0, 0])


def decode_tail(written):
    """The status in the last 4 bytes of what the device wrote; ``IOERR`` for used length 0.

    Spec: "When a device uses a buffer without having written to it (i.e. used length is
    zero), the driver SHOULD interpret it as a request failure"; Linux reports -EIO, as for
    ``S_IOERR``. The driver MUST ignore ``tail.reserved``.
    """
    if len(written) < TAIL_SIZE:
        return Status.IOERR
    status = written[-TAIL_SIZE]
    try:
        return Status(status)
    except ValueError:
        return status
