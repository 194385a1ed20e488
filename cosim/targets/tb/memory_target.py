"""The RTL's system memory: cocotbext-axi's AXI4 slave serving a model ``Memory``.

The same :class:`iogate.cosim.model.memory.Memory` object is walked by the architectural model, so
the RTL and the model read identical tables. An access that touches an injected fault range raises,
and cocotbext-axi's ``AxiSlave`` answers such an access with SLVERR: that is how memory access
faults (causes 1/5/7/257, cqmf, fqmf) are provoked on the RTL.

A fault range may instead answer DECERR (no slave at that address, AXI4 spec A3.4.4).
cocotbext-axi (0.1.x, ``axi_slave.py``) answers *every* failed target access with SLVERR
and offers no hook for the response code, so :meth:`MemoryTarget.attach` wraps the slave's
R and B channel ``send`` and turns the SLVERR of a beat (or burst) that failed on a DECERR
range into DECERR. For the IOMMU both are the same bus error (spec "Process to translate an IOVA":
any error response is an access fault); the model sees both as
:class:`iogate.cosim.model.memory.AccessFault`.
"""

from cocotb.triggers import ClockCycles
from cocotbext.axi.constants import AxiResp

from iogate.cosim.model.memory import AccessFault

__all__ = ["MemoryTarget"]


class MemoryTarget:
    """The ``target`` of a ``cocotbext.axi.AxiSlave``: reads and writes ``memory``.

    Parameters
    ----------
    memory : iogate.cosim.model.memory.Memory
        The shared system memory.
    clock : cocotb handle, optional
        Needed when ``latency`` is non-zero.
    latency : int
        Extra clock cycles before each beat is answered (a slow memory).

    Attributes
    ----------
    responses : dict
        Error responses sent, by name (``"SLVERR"``, ``"DECERR"``).
    """

    def __init__(self, memory, clock=None, latency=0):
        if latency and clock is None:
            raise ValueError("a non-zero latency needs the clock")
        self.memory = memory
        self.clock = clock
        self.latency = latency
        self.reads = 0
        self.writes = 0
        self.responses = {"SLVERR": 0, "DECERR": 0}
        self._decerr = []
        self._read_decerr = False
        self._write_decerr = False

    def inject_fault(self, address, length=8, resp="SLVERR"):
        """Make accesses overlapping ``[address, address+length)`` fail with ``resp``.

        The range goes into the shared ``Memory`` (so the model sees the bus error too).
        """
        if resp not in self.responses:
            raise ValueError(f"resp must be 'SLVERR' or 'DECERR', not {resp!r}")
        self.memory.inject_fault(address, length)
        if resp == "DECERR":
            self._decerr.append((address, address + length))

    def _is_decerr(self, address, length):
        return any(address < hi and lo < address + length for lo, hi in self._decerr)

    def attach(self, slave):
        """Wrap ``slave``'s R and B channels so that DECERR ranges answer DECERR."""
        r_send = slave.read_if.r_channel.send
        b_send = slave.write_if.b_channel.send

        async def send_r(r):
            if r.rresp == AxiResp.SLVERR:
                r.rresp = AxiResp.DECERR if self._read_decerr else AxiResp.SLVERR
                self.responses[AxiResp(r.rresp).name] += 1
            self._read_decerr = False
            await r_send(r)

        async def send_b(b):
            if b.bresp == AxiResp.SLVERR:
                b.bresp = AxiResp.DECERR if self._write_decerr else AxiResp.SLVERR
                self.responses[AxiResp(b.bresp).name] += 1
            self._write_decerr = False
            await b_send(b)

        slave.read_if.r_channel.send = send_r
        slave.write_if.b_channel.send = send_b

    async def read(self, address, length, **kwargs):
        if self.latency:
            await ClockCycles(self.clock, self.latency)
        self.reads += 1
        try:
            return self.memory.read(address, length)
        except AccessFault:
            # One read process in the slave: the beat that failed is the next R sent.
            self._read_decerr = self._is_decerr(address, length)
            raise

    async def write(self, address, data, **kwargs):
        if self.latency:
            await ClockCycles(self.clock, self.latency)
        self.writes += 1
        try:
            self.memory.write(address, data)
        except AccessFault:
            # The B response answers the whole burst: DECERR if any beat hit a DECERR range.
            self._write_decerr |= self._is_decerr(address, len(data))
            raise
