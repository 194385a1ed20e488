"""The board link: a :class:`firmware.bus.Bus` over a board's serial port, and the foundation
workload run on a board, checked against the architectural model.

A board built by ``iogate build`` carries a host bridge (:mod:`boards.bridge`) on its UART;
:class:`BoardLink` speaks its frame format (:mod:`boards.protocol`) over anything with
pyserial's ``write(bytes)`` and ``read(n)`` (a ``serial.Serial``, or the cocotb test
bench's bit-banging stand-in), so the driver, the scenarios and the streams run against a
board exactly as against the simulator. :meth:`BoardLink.translate` sends translation
requests through the board's DMA requester.

:func:`run_foundation` is the board's counterpart of the cosimulation session
(:mod:`cosim.scenarios.session`): every register write goes to the board and to an
:class:`~cosim.model.IommuModel` (:class:`MirroredLink`), every table write to the board
and to a shadow of its memory that the model walks, every register read and translation
answer is compared with what the model allows.
"""

import dataclasses
import random
import time

from boards.protocol import (
    MAGIC, VERSION, Op, ProtocolError, Status, decode_reply, encode_request, reply_bytes,
)
from hdl import bits
from hdl.config import Config
from hdl.formats import IOSATP, TA, TC, IosatpMode
from hdl.port import Access
from hdl.regs import CAPABILITIES, DDTP, IommuMode, Offset

from .memory import AccessFault, Memory

__all__ = ["BoardLink", "LinkError", "BoardTranslation", "TranslationRequest",
           "MirroredLink", "config_of", "run_foundation", "DEFAULT_BAUD"]

#: The boards' UART speed (``boards.icebreaker.BAUD``, ``boards.ecpix5.BAUD``).
DEFAULT_BAUD = 1_000_000

#: MEM_FILL's ``count`` is 16 bits wide.
_MAX_FILL = 0xFFFF

_MASK64 = (1 << 64) - 1


class LinkError(Exception):
    """A request the board answered with an error status, or did not answer.

    Attributes
    ----------
    status : boards.protocol.Status or None
        None when the board did not answer in time.
    """

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class TranslationRequest:
    """One Untranslated request (RISC-V IOMMU spec 2.3), as the scoreboard takes it."""
    device_id: int
    iova: int
    access: Access

    def __str__(self):
        return f"{self.access.name.lower()} did={self.device_id:#x} iova={self.iova:#x}"


@dataclasses.dataclass(frozen=True)
class BoardTranslation:
    """What the board's DMA requester got back (``boards.protocol.REPLIES[TRANSLATE]``).

    ``pa`` is derived: ``ppn << 12 | iova[11:0]``. ``hits`` counts the IOTLB hits of the
    whole run and ``cycles`` its clock cycles, first request offered to last response.
    """
    fault: bool
    cause: int
    ppn: int
    r: bool
    w: bool
    x: bool
    pbmt: int
    hit: bool
    hits: int
    cycles: int
    pa: int

    def __str__(self):
        if self.fault:
            return f"fault cause={self.cause}"
        perm = "".join(c if f else "-" for c, f in zip("rwx", (self.r, self.w, self.x)))
        return f"pa={self.pa:#x} {perm} pbmt={self.pbmt}"


class BoardLink:
    """A :class:`firmware.bus.Bus` whose IOMMU is on a board, reached over a serial port.

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

    def __init__(self, serial, *, resync=True):
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
    def open(cls, port, baud=DEFAULT_BAUD, *, timeout=1.0, **kwargs):
        """A link over the serial port named ``port`` (pyserial)."""
        import serial
        return cls(serial.Serial(port, baud, timeout=timeout), **kwargs)

    # -- frames ------------------------------------------------------------------------------

    def request(self, op, **fields):
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

    def mmio_read(self, offset, size):
        return self.request(Op.MMIO_READ, offset=offset, size=size)["data"]

    def mmio_write(self, offset, size, value):
        self.request(Op.MMIO_WRITE, offset=offset, size=size,
                     data=value & ((1 << (8 * size)) - 1))

    def mem_read(self, address, length):
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

    def mem_write(self, address, data):
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

    def translate(self, device_id, iova, access, count=1):
        """Send ``count`` requests ``(device_id, iova, access)`` through the board's DMA
        requester; returns the last answer as a :class:`BoardTranslation`.

        Parameters
        ----------
        access : hdl.port.Access or str
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
    # The bridge's memory addresses are 32 bits (boards.protocol): the on-chip memory is in
    # the low 4 GiB, and nothing above answers but with DECERR.
    if address < 0 or address + length > 1 << 32:
        raise AccessFault(address, length)


# -- the board beside the model --------------------------------------------------------------

#: Register writes after which the model's command queue may have work (as ModelBus).
_KICK = (Offset.CQT, Offset.CQCSR)


class MirroredLink:
    """A ``Bus`` that drives the board and an :class:`~cosim.model.IommuModel` together.

    Register writes go to both; register reads come from the board and are compared with
    the model (read again, up to ``settle_reads`` times, while the board is still busy with
    what the model did at once). Memory writes go to the board and to ``model.memory``, the
    shadow the model walks; memory reads come from the board.

    Attributes
    ----------
    mismatches : list of str
        One line per register read on which board and model disagreed.
    """

    def __init__(self, link, model, *, settle_reads=16):
        self.link = link
        self.model = model
        self.settle_reads = settle_reads
        self.mismatches = []

    def mmio_read(self, offset, size):
        value = self.link.mmio_read(offset, size)
        expected = self.model.mmio_read(offset, size)
        for _ in range(self.settle_reads):
            if value == expected:
                return value
            value = self.link.mmio_read(offset, size)
        self.mismatches.append(
            f"mmio read {offset:#05x}/{size}: board {value:#x} model {expected:#x}")
        return value

    def mmio_write(self, offset, size, value):
        self.link.mmio_write(offset, size, value)
        self.model.mmio_write(offset, size, value)
        if any(offset <= k < offset + size for k in _KICK):
            self.model.process_commands()

    def mem_read(self, address, length):
        return self.link.mem_read(address, length)

    def mem_write(self, address, data):
        self.link.mem_write(address, data)
        self.model.memory.write(address, data)


def config_of(link):
    """The :class:`hdl.Config` a board was built with, as far as the model needs it.

    ``capabilities`` gives the modes, Svpbmt, PAS and the debug interface (spec 5.3); the
    deepest directory mode is what ``ddtp.iommu_mode`` keeps (a WARL field, spec 5.5),
    tried from 3LVL down with the IOMMU Off in between. The IOMMU is left Off.
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


#: A device whose first-stage root table is outside the on-chip memory: its walks end in
#: DECERR, the access faults of spec 3.2 (1, 5, 7) on real hardware.
OUTSIDE_DEVICE = 0x35


def run_foundation(link, *, seed=1, translations=200, burst=16):
    """The foundation workload (:mod:`cosim.scenarios.foundation`) on a board.

    1. Off (ddtp's reset value, and where ``config_of`` leaves it): every request faults.
    2. Bare: identity.
    3. 1LVL with the foundation's devices and tables, in the board's memory; the device
       whose table the simulator makes answer SLVERR is replaced by one whose table is
       outside the memory (DECERR), since a board cannot poison its own RAM. Every
       directed fault case, then a seeded stream of ``translations`` requests, then one
       ``burst`` of repeated requests per translated device (IOTLB hits back to back).

    Every answer is checked against what the model allows. Returns a report dict whose
    ``mismatches`` must be 0.
    """
    from .model import IommuModel
    from .scenarios import foundation
    from .tb.scoreboard import Scoreboard

    started = time.monotonic()
    config = config_of(link)
    shadow = Memory()
    # Beyond the on-chip memory the board answers DECERR: the model's memory faults there.
    shadow.inject_fault(0, link.ram_base)
    shadow.inject_fault(link.ram_base + link.ram_size, shadow.size)
    model = IommuModel(config, shadow)
    bus = MirroredLink(link, model)
    board = Scoreboard(model)
    rng = random.Random(seed)

    def check(device_id, iova, access, count=1):
        request = TranslationRequest(device_id, iova & _MASK64, Access(access))
        for _ in range(count):
            allowed = board.expect(request)
        board.check(request, link.translate(device_id, iova, access, count), allowed)

    # 1. Off.
    for access in Access:
        check(0x05, 0x1000_0000, access)
    # 2. Bare.
    foundation.set_mode(bus, IommuMode.BARE)
    for access in Access:
        check(rng.randrange(1 << 24), rng.randrange(1 << config.pas), access)
    # 3. 1LVL.
    foundation.set_mode(bus, IommuMode.OFF)
    layout = foundation.program(bus, shadow)
    # program() poisoned device 0x33's table in the shadow only; the board's copy reads
    # as zeros, and so must the model's.
    shadow.clear_faults()
    shadow.inject_fault(0, link.ram_base)
    shadow.inject_fault(link.ram_base + link.ram_size, shadow.size)
    _add_outside_device(bus, layout, link)
    foundation.set_mode(bus, IommuMode.LVL1, layout.ddt_root)
    for did, iova, access, _ in layout.faulting:
        check(did, iova, access)
    for did, iova, access in foundation.random_requests(layout, rng, translations):
        check(did, iova, access)
    for did, base, _, allowed in layout.mapped:
        if allowed:
            check(did, base, min(allowed, key=lambda a: a.value), count=burst)

    report = board.summary()
    mismatches = [str(m) for m in board.mismatches] + bus.mismatches
    report.update(mismatches=len(mismatches), mismatch_details=mismatches[:20],
                  seed=seed, devices={f"{d:#x}": what for d, what in layout.devices.items()},
                  frames=link.frames, bytes=link.bytes_sent + link.bytes_received,
                  seconds=round(time.monotonic() - started, 2), clk_hz=link.clk_hz)
    return report


def _add_outside_device(bus, layout, link):
    """Device :data:`OUTSIDE_DEVICE`: Sv39 with its root table just past the memory."""
    from firmware.ddt import DeviceContext, DeviceDirectory
    from firmware.alloc import PageAllocator
    outside = link.ram_base + link.ram_size
    dc = DeviceContext(tc=bits.pack(TC, v=1), ta=bits.pack(TA, pscid=4),
                       fsc=bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=outside >> 12))
    # The directory's pages are all allocated already (1LVL: one page), so the allocator
    # is never asked for memory here.
    ddt = DeviceDirectory(bus, PageAllocator(bus, link.ram_base, link.ram_size),
                          IommuMode.LVL1, layout.ddt_root)
    ddt.write(OUTSIDE_DEVICE, dc)
    layout.devices[OUTSIDE_DEVICE] = "Sv39 table outside the on-chip memory (DECERR)"
    layout.faulting += [(OUTSIDE_DEVICE, 0x1000_0000, a, "page table outside memory")
                        for a in Access]
