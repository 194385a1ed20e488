"""Cycle stamps for benchmarks: memory read latency and completion-store times.

The stamps come from simulation time at handshakes seen by cocotbext-axi monitors, the
way :class:`iogate.cosim.targets.tb.translation.TranslationRequester` stamps translations, so all
the figures of one run are counted on the same edges. Everything here runs inside cocotb.
"""

from collections import deque

import cocotb
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus
from cocotbext.axi.axi_channels import AxiARMonitor, AxiRMonitor

__all__ = ["ReadLatencyProbe", "WriteProbe", "cycle_now"]


def cycle_now(period_ns):
    """The current clock cycle, from simulation time."""
    return round(get_sim_time(unit="ns") / period_ns)


class ReadLatencyProbe:
    """Cycles from each AXI read address handshake to its last read data handshake.

    Counts what the IOMMU sees of a memory read: the ``MemoryTarget`` latency plus the
    cycles cocotbext-axi's ``AxiSlave`` adds on its own. Reads are paired in order (the
    walkers issue one ID at a time).

    Parameters
    ----------
    tb : iogate.cosim.targets.tb.testbench.Testbench
        A started test bench.
    """

    def __init__(self, tb):
        bus = AxiBus.from_prefix(tb.dut, "mem", bus_separator="__")
        self.period_ns = tb.period_ns
        self._ar = AxiARMonitor(bus.read.ar, tb.dut.clk, tb.dut.rst)
        self._r = AxiRMonitor(bus.read.r, tb.dut.clk, tb.dut.rst)
        self._issued = deque()
        #: Latency in cycles of every read completed so far.
        self.samples = []
        cocotb.start_soon(self._watch_ar())
        cocotb.start_soon(self._watch_r())

    async def _watch_ar(self):
        while True:
            await self._ar.recv()
            self._issued.append(cycle_now(self.period_ns))

    async def _watch_r(self):
        while True:
            beat = await self._r.recv()
            if int(beat.rlast) and self._issued:
                self.samples.append(cycle_now(self.period_ns) - self._issued.popleft())


class WriteProbe:
    """Stamps the cycle at which a store to ``address`` lands in memory.

    Wraps the ``write`` of the test bench's ``MemoryTarget`` (the ``AxiSlave`` calls it
    once the write data is in and the target latency has passed).
    """

    def __init__(self, tb, address):
        self.period_ns = tb.period_ns
        self.address = address
        #: Cycle of every store that covered ``address``.
        self.stamps = []
        target = tb.target
        original = target.write

        async def write(addr, data, **kwargs):
            await original(addr, data, **kwargs)
            if addr <= self.address < addr + len(data):
                self.stamps.append(cycle_now(self.period_ns))
        target.write = write
