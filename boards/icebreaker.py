"""The ICEBreaker board (iCE40UP5K, 5,280 logic cells, 12 MHz oscillator).

The UP5K is small, so it carries the smallest iogate that still does everything the first
target does for one device at a time: 1LVL device directory, Sv39 only, one IOTLB entry and
one device-context entry, a 32-bit physical address space (``capabilities.PAS``: the board
has 128 KiB at 2 GiB; leaf PTEs may still name pages above it, which the IOMMU does not
access), a 32-bit register interface, and no debug translation interface (the DMA
requester translates instead). Each IOTLB entry costs about 400 of the 5,280 logic cells;
with the command and fault queues the IOMMU is about four fifths of the chip, so one entry
is what fits beside the bridge, with about 4% to spare.

Its four SPRAMs are the 128 KiB of on-chip memory for tables and queues; the fault queue's
record FIFO goes to block RAM (``ram_style``), where Yosys would otherwise spend hundreds
of flip-flops on a three-entry memory. The UART is the FT2232H's second channel, as on
every ICEBreaker. The red LED lights while an interrupt line is up. The design runs on
the 12 MHz oscillator directly.
"""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from iogate.hdl.config import Config

from iogate.boards.memory import SPRAM_BYTES
from iogate.boards.top import BoardTop
from iogate.boards.uart import divisor_for

__all__ = ["ICEBreakerTop", "CONFIG", "BAUD", "platform"]

#: What fits the UP5K (see the module docstring).
CONFIG = Config.icebreaker()

#: The UART speed: 12 MHz / 12, exact, and a rate the FT2232H makes exactly.
BAUD = 1_000_000


def platform():
    """The amaranth-boards platform object."""
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


class ICEBreakerTop(Elaboratable):
    """:class:`iogate.boards.top.BoardTop` on the ICEBreaker's pins.

    Parameters
    ----------
    config : iogate.hdl.Config
        Defaults to :data:`CONFIG`.
    baud : int
        UART speed.
    """

    #: The clock the design must meet: the board oscillator.
    target_hz = 12_000_000
    #: Extra arguments of ``platform.build()``: every memory to block RAM.
    build_options = {"script_after_read": 'setattr -set ram_style "block" m:*'}
    #: Extra nextpnr arguments. The design fills 5,222 of the iCE40UP5K's 5,280 logic
    #: cells (99 %); at that utilisation nextpnr-ice40's default placer seed finds no legal
    #: placement ("failed to place chain"), seed 2 places and routes it (23.8 MHz against
    #: 12). A fixed seed keeps the build reproducible; the real cure is area (issue 19).
    nextpnr_opts = " --seed 2"

    def __init__(self, config=CONFIG, *, baud=BAUD):
        self.config = config
        self.baud = baud
        self.top = BoardTop(config, clk_hz=self.target_hz,
                            divisor=divisor_for(self.target_hz, baud),
                            ram_size=SPRAM_BYTES, spram=True)

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self.top
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.led = led = io.Buffer("o", platform.request("led_r", 0, dir="-"))
        m.d.comb += [top.rx.eq(rx.i), tx.o.eq(top.tx), led.o.eq(top.irq)]
        return m
