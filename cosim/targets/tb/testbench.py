"""``Testbench``: clock, reset and every agent around one iogate top-level.

It binds to the flattened port names of :class:`iogate.hdl.iommu.Iommu` (``mmio__*``, ``mem__*``,
``tr__<n>__req__*``, ``tr__<n>__resp__*``) with cocotbext-axi's AXI4-Lite master and AXI4
slave and one :class:`~iogate.cosim.targets.tb.translation.TranslationRequester` per port, and
watches the wired interrupt lines with an
:class:`~iogate.cosim.targets.tb.interrupts.InterruptMonitor`.
"""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiSlave

from iogate.hdl.regs import Igs

from iogate.cosim.targets.tb.ats_port import AtsPort, drive_idle
from iogate.cosim.targets.tb.interrupts import InterruptMonitor
from iogate.cosim.targets.tb.memory_target import MemoryTarget
from iogate.cosim.targets.tb.translation import TranslationRequester

__all__ = ["Testbench"]


class Testbench:
    """Owns the clock, the reset and the agents of one simulation.

    Parameters
    ----------
    dut : cocotb handle
        The ``Iommu`` top.
    config : iogate.hdl.Config
        The configuration the top was built with.
    memory : iogate.cosim.model.memory.Memory
        System memory, shared with the model and the driver.
    period_ns : int
        Clock period.
    mem_latency : int
        Extra cycles per memory beat.
    """

    def __init__(self, dut, config, memory, *, period_ns=10, mem_latency=0):
        self.dut = dut
        self.config = config
        self.memory = memory
        self.period_ns = period_ns
        self.mem_latency = mem_latency
        self.mmio = None
        self.ports = []
        self.interrupts = None
        self.ats = None          # with Config.ats: the device side's AtsPort

    async def start(self):
        """Start the clock, hold reset, attach the agents, release reset."""
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, self.period_ns, unit="ns").start())
        # cocotbext agents sample their handshake inputs at construction: drive every DUT
        # input to a known value first (toolchain.md, "Set rst and every other input").
        dut.rst.value = 1
        for i in range(self.config.ports):
            getattr(dut, f"tr__{i}__req__valid").value = 0
            getattr(dut, f"tr__{i}__req__payload").value = 0
            getattr(dut, f"tr__{i}__resp__ready").value = 0
        if self.config.ats:
            drive_idle(dut)
        await ClockCycles(dut.clk, 2)
        self.mmio = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "mmio", bus_separator="__"),
                                  dut.clk, dut.rst)
        self.target = MemoryTarget(self.memory, dut.clk, self.mem_latency)
        self.mem = AxiSlave(AxiBus.from_prefix(dut, "mem", bus_separator="__"), dut.clk,
                            dut.rst, target=self.target)
        self.target.attach(self.mem)
        self.ports = [TranslationRequester(dut, i, dut.clk, dut.rst, self.config.tag_width,
                                           self.period_ns, pasid=self.config.pd_levels > 0)
                      for i in range(self.config.ports)]
        if self.config.ats:
            self.ats = AtsPort(dut, dut.clk, dut.rst)
        self.interrupts = InterruptMonitor(dut.wsi, dut.clk, self.period_ns)
        if self.config.igs != Igs.WSI:
            # Every check of the interrupts then compares the MSIs too (reference N.5).
            self.interrupts.watch_msis(dut)
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def mmio_read(self, offset, size):
        """A ``size``-byte (4 or 8) register read."""
        resp = await self.mmio.read(offset, size)
        return int.from_bytes(resp.data, "little")

    async def mmio_write(self, offset, size, value):
        """A ``size``-byte (4 or 8) register write."""
        await self.mmio.write(offset, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))

    def set_port_pauses(self, req=None, resp=None):
        """Random pacing: generators of booleans, True = pause this cycle."""
        for p in self.ports:
            if req is not None:
                p.source.set_pause_generator(req())
            if resp is not None:
                p.sink.set_pause_generator(resp())
