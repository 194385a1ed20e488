"""``BoardTop``: everything a board carries inside its pins.

::

    uart rx ─> UARTReceiver ─> Bridge ─> UARTTransmitter ─> uart tx
                                │ │ │
            mmio (AXI4-Lite) ┌──┘ │ └── translate/result ─> Requester ─ tr[0] ─┐
                             v    │ host_read/host_write                       │
                           Iommu ─┼── mem (AXI4) ─> OnChipMemory <─────────────┘
                             │    └───────────────────────^
                             └─ wsi ─> irq (an LED)

The board files (:mod:`iogate.boards.icebreaker`, :mod:`iogate.boards.ecpix5`) add the clock, the
reset and the pins; the cocotb test bench simulates this top alone, driving ``rx`` and sampling
``tx`` the way a USB-serial chip would.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.config import Config
from iogate.hdl.iommu import Iommu
from iogate.hdl.mem_master import ID_WIDTH

from iogate.boards.bridge import Bridge
from iogate.boards.memory import OnChipMemory
from iogate.boards.requester import Requester
from iogate.boards.uart import UARTReceiver, UARTTransmitter

__all__ = ["BoardTop", "RAM_BASE"]

#: Where the on-chip memory sits in the physical address space. 2 GiB is where RISC-V
#: platforms usually start DRAM, and where iogate's scenarios allocate their tables.
RAM_BASE = 0x8000_0000


class BoardTop(wiring.Component):
    """The IOMMU, its on-chip memory, a DMA requester and the host bridge.

    Parameters
    ----------
    config : iogate.hdl.Config
        The IOMMU's configuration (:class:`iogate.hdl.iommu.Iommu` refuses what is not built).
    clk_hz : int
        The clock frequency (reported to the host by ``IDENT``).
    divisor : int
        UART clock cycles per bit (:func:`iogate.boards.uart.divisor_for`).
    ram_size : int
        Bytes of on-chip memory (a power of two).
    ram_base : int
        Its first byte address.
    spram : bool
        Build the memory from the iCE40 UP5K's SPRAMs (``ram_size`` 128 KiB).

    Members
    -------
    rx : ``In(1)``
        The UART receive pin (idles high).
    tx : ``Out(1)``
        The UART transmit pin (idles high).
    irq : ``Out(1)``
        Any of the IOMMU's wired interrupt lines (spec "Interrupt pending status register
        (ipsr)", "Interrupt-cause-to-vector register (icvec)"), for an LED.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`iogate.hdl.Config`.
    ValueError
        From the parts, on a configuration they cannot build.
    """

    def __init__(self, config, *, clk_hz, divisor, ram_size, ram_base=RAM_BASE, spram=False,
                 ):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        self._config = config
        self._clk_hz = clk_hz
        self._divisor = divisor
        self._ram_base = ram_base
        self._ram_size = ram_size
        self._spram = spram
        # Built here rather than in elaborate() so that a bad parameter fails at once.
        parts = []
        try:
            parts.append(Iommu(config))
            parts.append(OnChipMemory(base=ram_base, size=ram_size, addr_width=config.pas,
                                      id_width=ID_WIDTH, spram=spram))
            parts.append(Requester(config.tag_width, pasid=config.pd_levels > 0))
            parts.append(Bridge(mmio_data_width=config.mmio_data_width, ram_base=ram_base,
                                ram_size=ram_size, clk_hz=clk_hz))
            parts.append(UARTReceiver(divisor))
            parts.append(UARTTransmitter(divisor))
        except (TypeError, ValueError):
            # Parts built before the one that refused are not unused designs.
            for part in parts:
                part._MustUse__silence = True
            raise
        (self.iommu, self.memory, self.requester, self.bridge, self.uart_rx,
         self.uart_tx) = parts
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "irq": Out(1),
        })

    @property
    def config(self):
        return self._config

    @property
    def clk_hz(self):
        return self._clk_hz

    @property
    def ram_base(self):
        return self._ram_base

    @property
    def ram_size(self):
        return self._ram_size

    def elaborate(self, platform):
        m = Module()
        m.submodules.iommu = iommu = self.iommu
        m.submodules.memory = memory = self.memory
        m.submodules.requester = requester = self.requester
        m.submodules.bridge = bridge = self.bridge
        m.submodules.uart_rx = uart_rx = self.uart_rx
        m.submodules.uart_tx = uart_tx = self.uart_tx

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.stream, bridge.rx)
        m.d.comb += bridge.abort.eq(uart_rx.frame_error)
        wiring.connect(m, bridge.tx, uart_tx.stream)
        wiring.connect(m, bridge.mmio, iommu.mmio)
        wiring.connect(m, bridge.mem_read, memory.host_read)
        wiring.connect(m, bridge.mem_write, memory.host_write)
        wiring.connect(m, bridge.translate, requester.cmd)
        m.d.comb += bridge.result.eq(requester.result)
        wiring.connect(m, iommu.mem, memory.bus)
        wiring.connect(m, iommu.tr[0], requester.tr)
        # Further ports have no device behind them on a board: idle, and never stalled.
        for port in list(iommu.tr)[1:]:
            m.d.comb += [port.req.valid.eq(0), port.resp.ready.eq(1)]
        if "wsi" in iommu.signature.members:
            m.d.comb += self.irq.eq(iommu.wsi.any())
        return m
