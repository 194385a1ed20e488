"""The targets of ``iogate host`` that need no simulator: the model and a board.

A target is what a :class:`~iogate.cosim.client.host.Host` drives: the four
:class:`~iogate.firmware.bus.Bus` calls (legal register accesses only), ``translate``
(requests through a translation port), ``wait``, the wired interrupt lines, and what the
checking model needs (its memory, how long the target may lag behind it). The simulator's
target is :class:`iogate.cosim.client.on_rtl.RtlTarget`.

* :class:`ModelTarget`: an :class:`~iogate.cosim.model.IommuModel` *is* the iogate (behind
  :class:`~iogate.cosim.model.bus.ModelBus`, which runs the command queue when ``cqt`` or
  ``cqcsr`` is written). Time is a counter; the lines are what its ``ipsr``, ``icvec`` and
  ``fctl`` drive (:func:`~iogate.cosim.targets.tb.interrupts.expected_wsi`). It refuses
  register accesses the spec does not allow: it has no hardware answer to give.
* :class:`BoardTarget`: a board over its serial link
  (:class:`~iogate.cosim.targets.board.BoardLink`); DMA goes through the board's requester.
  The link carries no interrupt wires, so the lines are derived from ``ipsr``, ``icvec`` and
  ``fctl`` read over the link whenever the script lets time pass or sends DMA.
"""

import time

from iogate.hdl.config import Config
from iogate.hdl.regs import Offset

from iogate.cosim.check.request import TranslationResponse
from iogate.cosim.client.config import ram_of
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.iommu import IommuModel
from iogate.cosim.model.memory import Memory
from iogate.cosim.targets.board import BoardLink, config_of
from iogate.cosim.targets.tb.interrupts import expected_wsi

__all__ = ["ModelTarget", "BoardTarget", "open_board"]


class _Lines:
    """Rising edges from samples of the line levels."""

    def __init__(self):
        self._last = 0

    def rising(self):
        now = self.lines()
        rose = now & ~self._last
        self._last = now
        return rose


class ModelTarget(_Lines):
    """The architectural model as the iogate under the script.

    Parameters
    ----------
    config : iogate.hdl.Config

    Attributes
    ----------
    iommu : iogate.cosim.model.IommuModel
        The model that answers (not the one that checks it).
    """

    name = "model"
    mirror_memory = True      # the checking model walks its own copy of memory
    settle_reads = 1          # the target acts at once, like the checking model
    poll_on_access = True
    answers_illegal = False
    wait_step = 1 << 30       # nothing changes while time passes

    def __init__(self, config: Config = Config(), *, cache: bool = False) -> None:
        super().__init__()
        self.config = config
        self.ram = ram_of(config)
        # cache=True: the target answers from its own caches as the RTL does, so a missing
        # invalidation shows as a stale answer (the checking model's allowed set holds both
        # only until the fence).
        self.iommu = IommuModel(config, Memory(), cache=cache)
        self._bus = ModelBus(self.iommu)
        self.cycles = 0

    def checker_memory(self) -> Memory:
        return Memory()

    def mmio_read(self, offset, size):
        return self._bus.mmio_read(offset, size)

    def mmio_write(self, offset, size, value):
        self._bus.mmio_write(offset, size, value)

    def mem_read(self, address, length):
        return self._bus.mem_read(address, length)

    def mem_write(self, address, data):
        self._bus.mem_write(address, data)

    def translate(self, request, count):
        out = []
        for _ in range(count):
            r = self.iommu.translate(request.device_id, request.iova, request.access,
                                     process_id=request.process_id, priv=request.priv)
            ppn = 0 if r.fault else r.ppn
            out.append(TranslationResponse(
                fault=r.fault, cause=int(r.cause) if r.fault else 0, ppn=ppn,
                r=bool(r.r), w=bool(r.w), x=bool(r.x), pbmt=0 if r.fault else int(r.pbmt),
                hit=False, pa=ppn << 12 | request.iova & 0xFFF))
        return out

    def wait(self, cycles):
        self.cycles += cycles

    def lines(self):
        regs = self.iommu.regs
        return expected_wsi(regs.ipsr, regs.icvec, regs.fctl)

    def check_lines(self, model, what):
        regs = model.regs
        want = expected_wsi(regs.ipsr, regs.icvec, regs.fctl)
        got = self.lines()
        if got != want:
            return f"wsi {what}: model target {got:#06x} expected {want:#06x}"
        return None

    def close(self):
        pass


class BoardTarget(_Lines):
    """A board behind its serial link.

    Parameters
    ----------
    link : iogate.cosim.targets.board.BoardLink
        Or anything with its API (the test suite's model-backed boards).
    """

    name = "board"
    mirror_memory = True      # the checking model walks a shadow of the board's RAM
    settle_reads = 16
    poll_on_access = False    # three register reads over a UART per sample
    answers_illegal = True    # the bridge answers them (BAD_ARGUMENT for a bad size)
    wait_step = 1000

    def __init__(self, link) -> None:
        super().__init__()
        self.link = link
        # The board's capabilities and deepest directory mode; the probe leaves it Off,
        # as the checking model starts.
        self.config = config_of(link)
        self.ram = (link.ram_base, link.ram_size)
        self.clk_hz = getattr(link, "clk_hz", 0) or 0
        self.cycles = 0

    def checker_memory(self) -> Memory:
        shadow = Memory()
        # Outside the on-chip memory the bridge answers DECERR; so does the shadow.
        shadow.inject_fault(0, self.link.ram_base)
        shadow.inject_fault(self.link.ram_base + self.link.ram_size, shadow.size)
        return shadow

    def mmio_read(self, offset, size):
        return self.link.mmio_read(offset, size)

    def mmio_write(self, offset, size, value):
        self.link.mmio_write(offset, size, value)

    raw_read = mmio_read
    raw_write = mmio_write

    def mem_read(self, address, length):
        return self.link.mem_read(address, length)

    def mem_write(self, address, data):
        self.link.mem_write(address, data)

    def translate(self, request, count):
        if request.process_id is not None or request.priv:
            # The board's link frames carry no PASID or privilege (boards/uart_link.py):
            # refuse rather than send an untagged request the model would judge otherwise.
            raise ValueError("the board link carries no process_id/privilege")
        r = self.link.translate(request.device_id, request.iova, request.access, count)
        self.cycles += getattr(r, "cycles", 0)
        return [r]

    def wait(self, cycles):
        self.cycles += cycles
        if self.clk_hz:
            time.sleep(cycles / self.clk_hz)

    def lines(self):
        link = self.link
        return expected_wsi(link.mmio_read(Offset.IPSR, 4), link.mmio_read(Offset.ICVEC, 8),
                            link.mmio_read(Offset.FCTL, 4))

    def check_lines(self, model, what):
        # The lines are derived from registers the reads already check.
        return None

    def close(self):
        close = getattr(getattr(self.link, "serial", None), "close", None)
        if close is not None:
            close()


def open_board(port: str, baud: int) -> BoardLink:
    """A :class:`BoardLink` on ``port``: a serial device (``/dev/ttyUSB1``) or a pyserial
    URL (``socket://host:port``, ``rfc2217://...``)."""
    import serial
    return BoardLink(serial.serial_for_url(port, baudrate=baud, timeout=1.0))
