"""The ECPIX-5 85F board (LFE5UM5G-85F, 83,640 LUTs, 100 MHz oscillator).

The ECP5-85 takes the full first-target iogate, or as much of it as the RTL builds today:
:func:`richest_config` asks :class:`iogate.hdl.iommu.Iommu` which of the first target's modes it
accepts and keeps the richest combination, so the board grows with the RTL and its report
says which Config it carried. 128 KiB of block RAM holds tables and queues; the UART is the
FT2232's second channel. The first RGB LED's red lights while an interrupt line is up.

The IOMMU does not close timing at the oscillator's 100 MHz, so an EHXPLLL makes a clock it
closes at with margin (:data:`TARGET_MHZ`); the PLL's lock, and the user button, hold the
design in reset.
"""

import itertools

from amaranth.hdl import ClockDomain, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from iogate.hdl.config import Config

from iogate.boards.top import BoardTop
from iogate.boards.uart import divisor_for

__all__ = ["ECPIX5Top", "FULL_CONFIG", "richest_config", "TARGET_MHZ", "BAUD", "platform",
           "grade6_platform"]

#: The first target of ``docs/design.md``, in full.
FULL_CONFIG = Config.full()

#: The design clock, made by the PLL from the 100 MHz oscillator. The full first target
#: has closed at 52 to 55 MHz depending on placement; 40 MHz leaves room for the RTL to grow.
TARGET_MHZ = 40

#: The UART speed: 40 MHz / 40, exact.
BAUD = 1_000_000

#: On-chip memory for tables and queues.
RAM_SIZE = 128 * 1024

#: EHXPLLL settings from 100 MHz, as ``yowasp-ecppll -i 100 -o <MHz>`` prints them:
#: (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE). VCO = 100 / CLKI_DIV * CLKFB_DIV *
#: CLKOP_DIV must lie in 400-800 MHz (ECP5 sysCLOCK PLL guide, TN1263).
PLL_SETTINGS = {
    25: (4, 1, 24, 11),
    40: (5, 2, 15, 7),
    50: (2, 1, 12, 5),
    60: (5, 3, 10, 4),
}


def platform():
    """The amaranth-boards platform object."""
    from amaranth_boards.ecpix5 import ECPIX585Platform
    return ECPIX585Platform()


def grade6_platform():
    """The ECPIX-5 platform on an LFE5U-85F at speed grade 6, for measurement only.

    The board's LFE5UM5G-85F exists only at speed grade 8; the cost target of the first
    target is stated for an ECP5-85 at grade 6, the slowest. The LFE5U-85F comes in the
    same CABGA554 package with the same pins, so the same top places and routes on it and
    nextpnr's timing is that of grade 6. Its bitstream is not for the board.
    """
    from amaranth_boards.ecpix5 import ECPIX585Platform

    class ECPIX585Grade6Platform(ECPIX585Platform):
        device = "LFE5U-85F"
        speed = "6"

    return ECPIX585Grade6Platform()


def richest_config(base=FULL_CONFIG):
    """The richest variant of ``base`` that :class:`iogate.hdl.iommu.Iommu` accepts.

    Candidates drop, from ``base``, the second stage (Sv48x4, then Sv39x4), Sv48 and
    directory levels; the one keeping the most of ``base``'s features wins, ties going to
    the deeper directory.
    """
    from iogate.hdl.iommu import Iommu
    stage2 = [(base.sv39x4, base.sv48x4), (base.sv39x4, False), (False, False)]
    candidates = []
    for (sv39x4, sv48x4), sv48, levels in itertools.product(
            dict.fromkeys(stage2), dict.fromkeys((base.sv48, False)),
            range(base.ddt_levels, 0, -1)):
        config = base.replace(sv39x4=sv39x4, sv48x4=sv48x4, sv48=sv48, ddt_levels=levels)
        try:
            iommu = Iommu(config)
        except ValueError:
            continue
        # Only asked whether it would build: not an unused design.
        iommu._MustUse__silence = True
        candidates.append(config)
    if not candidates:
        raise ValueError(f"iogate.hdl.iommu.Iommu accepts no variant of {base!r}")
    return max(candidates, key=lambda c: (c.sv39x4 + c.sv48x4 + c.sv48 + c.ddt_levels,
                                          c.ddt_levels))


class ECPIX5Top(Elaboratable):
    """:class:`iogate.boards.top.BoardTop` on the ECPIX-5's pins, clocked by the PLL.

    Parameters
    ----------
    config : iogate.hdl.Config or None
        Defaults to :func:`richest_config`.
    target_mhz : int
        The design clock; one of :data:`PLL_SETTINGS`.
    baud : int
        UART speed.

    Raises
    ------
    ValueError
        If ``target_mhz`` has no PLL setting.
    """

    #: Extra arguments of ``platform.build()``.
    build_options = {}

    def __init__(self, config=None, *, target_mhz=TARGET_MHZ, baud=BAUD):
        if target_mhz not in PLL_SETTINGS:
            raise ValueError(f"target_mhz must be one of {sorted(PLL_SETTINGS)}, "
                             f"not {target_mhz!r}")
        self.config = richest_config() if config is None else config
        self.target_hz = target_mhz * 1_000_000
        self.baud = baud
        self.top = BoardTop(self.config, clk_hz=self.target_hz,
                            divisor=divisor_for(self.target_hz, baud), ram_size=RAM_SIZE)

    def elaborate(self, platform):
        m = Module()
        m.submodules.clk100 = clk100 = io.Buffer("i", platform.request("clk100", 0, dir="-"))
        m.submodules.button = button = io.Buffer("i", platform.request("rst", 0, dir="-"))
        clki_div, clkfb_div, clkop_div, cphase = PLL_SETTINGS[self.target_hz // 1_000_000]
        clkop = Signal()
        locked = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI="100", a_FREQUENCY_PIN_CLKOP=str(self.target_hz // 1_000_000),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=clkop_div,
            p_CLKOP_CPHASE=cphase, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=clkfb_div,
            i_RST=0, i_STDBY=0, i_CLKI=clk100.i, i_CLKFB=clkop, i_PHASESEL0=0,
            i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clkop, o_LOCK=locked)
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.d.comb += cd_sync.clk.eq(clkop)
        # No constraint of our own on the PLL's output: nextpnr derives it from the 100 MHz
        # input's and the PLL's dividers (an LPF constraint would name a net that Yosys's
        # flattening renames).
        m.submodules.reset = ResetSynchronizer(~locked | button.i, domain="sync")

        m.submodules.top = top = self.top
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.led = led = io.Buffer("o", platform.request("rgb_led", 0, dir="-").r)
        m.d.comb += [top.rx.eq(rx.i), tx.o.eq(top.tx), led.o.eq(top.irq)]
        return m
