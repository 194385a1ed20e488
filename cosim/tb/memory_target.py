"""The RTL's system memory: cocotbext-axi's AXI4 slave serving a :class:`cosim.memory.Memory`.

The same ``Memory`` object is walked by the architectural model, so the RTL and the model
read identical tables. An access that touches an injected fault range raises, and
cocotbext-axi's ``AxiSlave`` answers such an access with SLVERR: that is how memory access
faults (causes 1/5/7/257, cqmf, fqmf) are provoked on the RTL.
"""

from cocotb.triggers import ClockCycles

__all__ = ["MemoryTarget"]


class MemoryTarget:
    """The ``target`` of a ``cocotbext.axi.AxiSlave``: reads and writes ``memory``.

    Parameters
    ----------
    memory : cosim.memory.Memory
        The shared system memory.
    clock : cocotb handle, optional
        Needed when ``latency`` is non-zero.
    latency : int
        Extra clock cycles before each beat is answered (a slow memory).
    """

    def __init__(self, memory, clock=None, latency=0):
        if latency and clock is None:
            raise ValueError("a non-zero latency needs the clock")
        self.memory = memory
        self.clock = clock
        self.latency = latency
        self.reads = 0
        self.writes = 0

    async def read(self, address, length, **kwargs):
        if self.latency:
            await ClockCycles(self.clock, self.latency)
        self.reads += 1
        return self.memory.read(address, length)

    async def write(self, address, data, **kwargs):
        if self.latency:
            await ClockCycles(self.clock, self.latency)
        self.writes += 1
        self.memory.write(address, data)
