"""The board link: a :class:`iogate.firmware.bus.Bus` over a board's serial port.

A board built by ``iogate build`` carries a host bridge (:mod:`iogate.boards.bridge`) on its
UART; :class:`BoardLink` speaks its frame format (:mod:`iogate.boards.protocol`) over
anything with pyserial's ``write(bytes)`` and ``read(n)`` (a ``serial.Serial``, or the cocotb
test bench's bit-banging stand-in), so the driver, the scenarios and the streams run against
a board exactly as against the simulator. :meth:`BoardLink.translate` sends translation
requests through the board's DMA requester. Checking a board against the model is the
scenarios' business (:mod:`iogate.cosim.scenarios.on_board`), with the same
:class:`~iogate.cosim.check.mirror.Mirror` the simulator uses.
"""

import time
from typing import Any, Protocol

from iogate.hdl import bits
from iogate.hdl.config import Config
from iogate.hdl.port import Access
from iogate.hdl.regs import CAPABILITIES, DDTP, IommuMode, Offset

from iogate.boards.protocol import (
    MAGIC,
    VERSION,
    Op,
    ProtocolError,
    Status,
    decode_reply,
    encode_request,
    reply_bytes,
)

from iogate.cosim.check.request import BoardTranslation
from iogate.cosim.model.memory import AccessFault

__all__ = ["BoardLink", "LinkError", "config_of", "DEFAULT_BAUD"]

#: The boards' UART speed (``iogate.boards.icebreaker.BAUD``, ``iogate.boards.ecpix5.BAUD``).
DEFAULT_BAUD = 1_000_000

#: MEM_FILL's ``count`` is 16 bits wide.
_MAX_FILL = 0xFFFF

_MASK64 = (1 << 64) - 1



class SerialPort(Protocol):
    """What a link needs of its port: pyserial's ``write`` and ``read`` (``send_break`` and
    ``reset_input_buffer`` are used when present)."""

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int, /) -> bytes: ...


class LinkError(Exception):
    """A request the board answered with an error status, or did not answer.

    Attributes
    ----------
    status : iogate.boards.protocol.Status or None
        None when the board did not answer in time.
    """

    def __init__(self, message: str, status: Status | None = None) -> None:
        super().__init__(message)
        self.status = status


class BoardLink:
    """A :class:`iogate.firmware.bus.Bus` whose IOMMU is on a board, reached over a serial port.

    Parameters
    ----------
    serial
        Anything with ``write(data)`` and ``read(n)`` (returning up to ``n`` bytes, fewer on
        a timeout), such as a ``serial.Serial`` with a ``timeout``.
    resync : bool
        Before the first request, send a UART break (``serial.send_break``), so that a
        board left in the middle of a request by an earlier session drops it, and discard
        what the board still had to say (``serial.reset_input_buffer``), where the serial
        object has those. False skips it (a board fresh from reset).

    Attributes
    ----------
    ram_base, ram_size : int
        The board's on-chip memory, from ``IDENT``: tables and queues go there.
    clk_hz : int
        The board's clock.
    frames, bytes_sent, bytes_received : int
        Traffic so far.

    Raises
    ------
    LinkError
        If the board does not answer ``IDENT``.
    ProtocolError
        If what answers is not an iogate bridge of this protocol version.
    """

    def __init__(self, serial: "SerialPort", *, resync: bool = True) -> None:
        if not (callable(getattr(serial, "write", None))
                and callable(getattr(serial, "read", None))):
            raise TypeError(f"serial must have write() and read(), not {serial!r}")
        self.serial = serial
        self.frames = self.bytes_sent = self.bytes_received = 0
        if resync:
            send_break = getattr(serial, "send_break", None)
            if send_break is not None:
                send_break(0.01)
            # A reply already on its way lands within a frame time; then it is dropped.
            time.sleep(0.01)
            reset = getattr(serial, "reset_input_buffer", None)
            if reset is not None:
                reset()
        ident = self.request(Op.IDENT)
        if ident["magic"] != MAGIC:
            raise ProtocolError(f"IDENT magic {ident['magic']:#010x} is not an iogate bridge")
        if ident["version"] != VERSION:
            raise ProtocolError(f"bridge protocol version {ident['version']}, "
                                f"this host speaks {VERSION}")
        self.ram_base = ident["ram_base"]
        self.ram_size = 1 << ident["ram_size_log2"]
        self.clk_hz = ident["clk_hz"]

    @classmethod
    def open(cls, port: str, baud: int = DEFAULT_BAUD, *, timeout: float = 1.0,
             **kwargs: Any) -> "BoardLink":
        """A link over the serial port named ``port`` (pyserial)."""
        import serial
        return cls(serial.Serial(port, baud, timeout=timeout), **kwargs)

    # -- frames ------------------------------------------------------------------------------

    def request(self, op: Op, **fields: int) -> dict[str, int]:
        """Send request ``op`` and return its reply's fields.

        Raises
        ------
        LinkError
            If the board answers with an error status, or not within the port's timeout.
        ProtocolError
            If the reply does not answer this request.
        """
        op = Op(op)
        frame = encode_request(op, **fields)
        self.serial.write(frame)
        want = 2 + reply_bytes(op)
        reply = b""
        while len(reply) < want:
            chunk = self.serial.read(want - len(reply))
            if not chunk:
                raise LinkError(f"no reply to {op.name} ({len(reply)} of {want} bytes)")
            reply += chunk
        self.frames += 1
        self.bytes_sent += len(frame)
        self.bytes_received += len(reply)
        status, values = decode_reply(op, reply)
        if status != Status.OK:
            raise LinkError(f"{op.name} {fields} answered {status.name}", status)
        return values

    # -- the Bus -----------------------------------------------------------------------------

    def mmio_read(self, offset: int, size: int) -> int:
        return self.request(Op.MMIO_READ, offset=offset, size=size)["data"]

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        self.request(Op.MMIO_WRITE, offset=offset, size=size,
                     data=value & ((1 << (8 * size)) - 1))

    def mem_read(self, address: int, length: int) -> bytes:
        """Bytes of the board's memory, read a doubleword at a time.

        Raises
        ------
        AccessFault
            If any byte is outside the on-chip memory (the board answers DECERR).
        """
        _check_reach(address, length)
        first = address & ~7
        out = bytearray()
        try:
            for dw in range(first, address + length, 8):
                out += self.request(Op.MEM_READ, addr=dw)["data"].to_bytes(8, "little")
        except LinkError as e:
            if e.status == Status.DECERR:
                raise AccessFault(address, length) from None
            raise
        return bytes(out[address - first:address - first + length])

    def mem_write(self, address: int, data: bytes) -> None:
        """Write ``data`` to the board's memory.

        Runs of two or more equal whole doublewords (the zeroed pages of every new table)
        go as one ``MEM_FILL``; the rest a doubleword at a time with byte strobes.

        Raises
        ------
        AccessFault
            If any byte is outside the on-chip memory (the board answers DECERR).
        """
        data = bytes(data)
        _check_reach(address, len(data))
        try:
            self._write(address, data)
        except LinkError as e:
            if e.status == Status.DECERR:
                raise AccessFault(address, len(data)) from None
            raise

    def _write(self, address, data):
        end = address + len(data)
        dw = address & ~7
        while dw < end:
            lo, hi = max(dw, address), min(dw + 8, end)
            word = bytearray(8)
            word[lo - dw:hi - dw] = data[lo - address:hi - address]
            strb = ((1 << (hi - lo)) - 1) << (lo - dw)
            value = int.from_bytes(word, "little")
            if strb == 0xFF:
                run = 1
                while (run < _MAX_FILL and dw + 8 * (run + 1) <= end
                       and data[dw + 8 * run - address:dw + 8 * run + 8 - address]
                       == word):
                    run += 1
                if run > 1:
                    self.request(Op.MEM_FILL, addr=dw, data=value, count=run)
                    dw += 8 * run
                    continue
            self.request(Op.MEM_WRITE, addr=dw, data=value, strb=strb)
            dw += 8

    # -- the DMA requester -------------------------------------------------------------------

    def translate(self, device_id: int, iova: int, access: Access,
                  count: int = 1) -> BoardTranslation:
        """Send ``count`` requests ``(device_id, iova, access)`` through the board's DMA
        requester; returns the last answer as a :class:`BoardTranslation`.

        Parameters
        ----------
        access : iogate.hdl.port.Access or str
            ``"read"``, ``"write"`` or ``"execute"``.
        count : int
            1 to 65535 requests, pipelined on the translation port.

        Raises
        ------
        ValueError
            If ``count`` is out of range.
        """
        if isinstance(access, str):
            access = Access[access.upper()]
        if not isinstance(count, int) or not 1 <= count <= 0xFFFF:
            raise ValueError(f"count must be between 1 and 65535, not {count!r}")
        f = self.request(Op.TRANSLATE, device_id=device_id, iova=iova & _MASK64,
                         access=Access(access).value, count=count)
        return BoardTranslation(
            fault=bool(f["fault"]), cause=f["cause"], ppn=f["ppn"], r=bool(f["r"]),
            w=bool(f["w"]), x=bool(f["x"]), pbmt=f["pbmt"], hit=bool(f["hit"]),
            hits=f["hits"], cycles=f["cycles"], pa=(f["ppn"] << 12) | (iova & 0xFFF))


def _check_reach(address, length):
    # The bridge's memory addresses are 32 bits (iogate.boards.protocol): the on-chip memory is in
    # the low 4 GiB, and nothing above answers but with DECERR.
    if address < 0 or address + length > 1 << 32:
        raise AccessFault(address, length)


def config_of(link: "BoardLink") -> Config:
    """The :class:`iogate.hdl.Config` a board was built with, as far as the model needs it.

    ``capabilities`` gives the modes, Svpbmt, PAS and the debug interface (spec "IOMMU capabilities
    (capabilities)"); the deepest directory mode is what ``ddtp.iommu_mode`` keeps (a WARL field,
    spec "Device-directory-table pointer (ddtp)"), tried from 3LVL down with the IOMMU Off in
    between. The IOMMU is left Off.
    """
    caps = bits.unpack(CAPABILITIES, link.mmio_read(Offset.CAPABILITIES, 8))
    levels = 1
    for mode, n in ((IommuMode.LVL3, 3), (IommuMode.LVL2, 2)):
        link.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.OFF))
        link.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=mode))
        got = bits.get(DDTP, link.mmio_read(Offset.DDTP, 8), "iommu_mode")
        link.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.OFF))
        if got == mode:
            levels = n
            break
    return Config(sv39=bool(caps["sv39"]), sv48=bool(caps["sv48"]),
                  sv39x4=bool(caps["sv39x4"]), sv48x4=bool(caps["sv48x4"]),
                  svpbmt=bool(caps["svpbmt"]), ddt_levels=levels, pas=caps["pas"],
                  dbg=bool(caps["dbg"]))
