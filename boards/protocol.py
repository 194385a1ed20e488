"""The host bridge's frame format, shared by the gateware (:mod:`iogate.boards.bridge`) and the host
(:mod:`iogate.cosim.targets.board`).

Both sides describe a frame with the same ``data.StructLayout``: the gateware views its
receive and reply registers through it, the host packs and unpacks integers with
:mod:`iogate.hdl.bits`. A frame is the layout's value sent little-endian, byte 0 first, so a field
never sits at one place on the wire in one side and another in the other.

::

    request:  op | payload (REQUESTS[op], fixed length per op)
    reply:    op | status | payload (REPLIES[op], fixed length per op, zero unless OK)

The host sends one request and waits for its reply; the board starts replying only once the
whole request is in, so the link is half duplex and never overruns. A byte that is not a
known ``Op`` where a request should start is dropped. If the host stops in the middle of a
request, a UART break (the line held low for more than a frame) makes the board forget
the partial request (:class:`iogate.boards.bridge.Bridge`): that is how a host regains frame sync
after an interrupted session.

Addresses and data are the IOMMU's: MMIO ``offset``/``size`` as in the RISC-V IOMMU spec
5.1 (4- or 8-byte, naturally aligned, little-endian), memory ``addr`` a physical address,
``data`` a little-endian doubleword with one ``strb`` bit per byte. The bridge reaches only
the board's on-chip memory, which sits in the low 4 GiB, so memory addresses are 32 bits
(the IOMMU itself addresses all of ``capabilities.PAS``).
"""

from amaranth.lib import data, enum

from iogate.hdl import bits
from iogate.hdl.formats import Cause, Pbmt
from iogate.hdl.port import Access

__all__ = ["Op", "Status", "MAGIC", "VERSION", "REQUESTS", "REPLIES", "request_bytes",
           "reply_bytes", "encode_request", "decode_reply", "ProtocolError",
           "MAX_REQUEST_BYTES", "MAX_REPLY_BYTES"]

#: ``IDENT``'s ``magic``: the bytes ``iogt``.
MAGIC = int.from_bytes(b"iogt", "little")
#: Frame format version; bumped on any change to the layouts below.
VERSION = 1


class Op(enum.Enum, shape=8):
    """What a request asks for. 0x00 is not an op, so a line idling low reads as noise."""
    IDENT = 0x01        #: who is there: magic, version, on-chip memory, clock
    MMIO_READ = 0x02    #: a 4- or 8-byte register read
    MMIO_WRITE = 0x03   #: a 4- or 8-byte register write
    MEM_READ = 0x04     #: one doubleword of on-chip memory
    MEM_WRITE = 0x05    #: one doubleword, byte strobes
    MEM_FILL = 0x06     #: ``count`` doublewords of the same value (zeroing a table page)
    TRANSLATE = 0x07    #: ``count`` translation requests on the requester's port


class Status(enum.Enum, shape=8):
    """How a request went. SLVERR and DECERR carry the AXI ``RRESP``/``BRESP`` encoding."""
    OK = 0x00
    SLVERR = 0x02
    DECERR = 0x03
    #: A size that is not 4 or 8, a misaligned offset or address, or an op-specific limit.
    BAD_ARGUMENT = 0x10


#: Request payloads, by op.
REQUESTS = {
    Op.IDENT: data.StructLayout({}),
    Op.MMIO_READ: data.StructLayout({"offset": 16, "size": 8}),
    Op.MMIO_WRITE: data.StructLayout({"offset": 16, "size": 8, "data": 64}),
    Op.MEM_READ: data.StructLayout({"addr": 32}),
    Op.MEM_WRITE: data.StructLayout({"addr": 32, "data": 64, "strb": 8}),
    # ``addr`` and ``data`` sit where MEM_WRITE has them, so both ops share one data path.
    Op.MEM_FILL: data.StructLayout({"addr": 32, "data": 64, "count": 16}),
    # ``count`` requests of the same (device_id, iova, access), pipelined; 0 counts as 1.
    Op.TRANSLATE: data.StructLayout({"device_id": 24, "iova": 64, "access": Access,
                                     "_pad0": 6, "count": 16}),
}

#: Reply payloads, by op.
REPLIES = {
    # The on-chip memory: its first byte and log2 of its size in bytes.
    Op.IDENT: data.StructLayout({"magic": 32, "version": 8, "ram_base": 32,
                                 "ram_size_log2": 8, "clk_hz": 32}),
    Op.MMIO_READ: data.StructLayout({"data": 64}),
    Op.MMIO_WRITE: data.StructLayout({}),
    Op.MEM_READ: data.StructLayout({"data": 64}),
    Op.MEM_WRITE: data.StructLayout({}),
    Op.MEM_FILL: data.StructLayout({}),
    # The last response's fields (iogate.hdl.port.response_layout without the tag), how many of the
    # ``count`` responses were IOTLB hits, and the clock cycles from the first request
    # offered to the last response.
    Op.TRANSLATE: data.StructLayout({"fault": 1, "r": 1, "w": 1, "x": 1, "hit": 1,
                                     "pbmt": Pbmt, "_pad0": 1, "cause": Cause, "_pad1": 4,
                                     "ppn": 44, "_pad2": 4, "hits": 16, "cycles": 32}),
}


def _bytes_of(layout):
    assert layout.size % 8 == 0, layout
    return layout.size // 8


def request_bytes(op):
    """Bytes of ``op``'s request payload (the op byte not counted)."""
    return _bytes_of(REQUESTS[Op(op)])


def reply_bytes(op):
    """Bytes of ``op``'s reply payload (the op and status bytes not counted)."""
    return _bytes_of(REPLIES[Op(op)])


#: The longest payloads, which size the bridge's receive and reply registers.
MAX_REQUEST_BYTES = max(request_bytes(op) for op in Op)
MAX_REPLY_BYTES = max(reply_bytes(op) for op in Op)


class ProtocolError(Exception):
    """A reply that does not answer the request that was sent (lost frame sync)."""


def encode_request(op, **fields):
    """The bytes of request ``op`` with payload ``fields`` (missing fields are 0).

    Raises
    ------
    ValueError
        If a field does not fit its width (from :func:`iogate.hdl.bits.put`).
    """
    op = Op(op)
    payload = bits.pack(REQUESTS[op], **fields)
    return bytes([op.value]) + payload.to_bytes(request_bytes(op), "little")


def decode_reply(op, frame):
    """``(status, fields)`` of ``frame``, the reply to request ``op`` (op byte included).

    Raises
    ------
    ProtocolError
        If the frame has the wrong length, echoes another op or carries an unknown status.
    """
    op = Op(op)
    frame = bytes(frame)
    if len(frame) != 2 + reply_bytes(op):
        raise ProtocolError(f"reply to {op.name} has {len(frame)} bytes, "
                            f"not {2 + reply_bytes(op)}")
    if frame[0] != op.value:
        raise ProtocolError(f"reply to {op.name} echoes op {frame[0]:#04x}")
    try:
        status = Status(frame[1])
    except ValueError:
        raise ProtocolError(f"reply to {op.name} has unknown status {frame[1]:#04x}") from None
    fields = bits.unpack(REPLIES[op], int.from_bytes(frame[2:], "little"))
    return status, {k: v for k, v in fields.items() if not k.startswith("_pad")}
