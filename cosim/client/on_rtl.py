"""The simulator side of ``iogate host``: the RTL as a host script's target (a cocotb module).

:func:`host_script` starts the test bench (:class:`~iogate.cosim.targets.tb.testbench.Testbench`:
clock, reset, the AXI4-Lite master on the registers, memory behind the AXI4 port, the
translation-port agents and the ``wsi`` monitor), and runs the script in a thread
(``cocotb.task.bridge``); each register access, DMA and wait of the script hops back into
the simulation (``cocotb.task.resume``) and returns when the RTL has answered. The script's
environment comes from the runner (:func:`iogate.cosim.client.run.run`):
``IOGATE_HOST_SCRIPT`` (a path or ``module:function``), ``IOGATE_HOST_CONFIG`` (the Config
as JSON), ``IOGATE_HOST_CHECK`` and ``IOGATE_HOST_REPORT`` (where the JSON report goes).

The test passes once the report is written: the verdict (mismatches, the script's error)
is the report's, read by the command.
"""

import json
import os

import cocotb
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiResp

from iogate.cosim.client.config import config_from_json, ram_of
from iogate.cosim.client.host import Host
from iogate.cosim.client.script import execute
from iogate.cosim.model.memory import Memory, OverlayMemory
from iogate.cosim.targets.tb.testbench import Testbench

__all__ = ["RtlTarget", "BusError", "host_script"]


#: Cycles a faulting DMA waits after its answer for the RTL's fault record (a queue store
#: through the memory port: a handful of cycles at the test bench's memory latency).
FAULT_RECORD_CYCLES = 32


class BusError(OSError):
    """The RTL answered a register access with an AXI error response."""


class RtlTarget:
    """The RTL in a cocotb test bench, for synchronous code under ``cocotb.task.bridge``.

    Memory is the test bench's; the checking model reads it through an overlay that keeps
    its own stores (fault records, fence data) apart from the RTL's.
    """

    mirror_memory = False     # one memory, shared through the overlay
    settle_reads = 1000       # the RTL takes cycles where the model acts at once
    poll_on_access = True
    answers_illegal = True
    wait_step = 16

    def __init__(self, tb, config, name):
        self.tb = tb
        self.config = config
        self.name = name
        self.ram = ram_of(config)
        self._read = resume(tb.mmio_read)
        self._write = resume(tb.mmio_write)
        self._translate = resume(self._atranslate)
        self._wait = resume(self._await_cycles)
        self._lines = resume(self._alines)
        self._check = resume(self._acheck)
        self._raw_read = resume(self._araw_read)
        self._raw_write = resume(self._araw_write)
        self._seen = {}

    def checker_memory(self):
        return OverlayMemory(self.tb.memory)

    def mmio_read(self, offset, size):
        return self._read(offset, size)

    def mmio_write(self, offset, size, value):
        self._write(offset, size, value)

    def mem_read(self, address, length):
        return self.tb.memory.read(address, length)

    def mem_write(self, address, data):
        self.tb.memory.write(address, data)

    # -- accesses the spec does not allow: the AXI4-Lite master carries them as they are

    async def _araw_read(self, offset, size):
        resp = await self.tb.mmio.read(offset, size)
        if resp.resp != AxiResp.OKAY:
            raise BusError(f"read of {size} bytes at {offset:#x}: the RTL answered "
                           f"{resp.resp.name}")
        return int.from_bytes(resp.data, "little")

    async def _araw_write(self, offset, size, value):
        data = (value or 0).to_bytes(max(size, 1), "little")[:size] if size > 0 else b""
        resp = await self.tb.mmio.write(offset, data)
        if resp.resp != AxiResp.OKAY:
            raise BusError(f"write of {size} bytes at {offset:#x}: the RTL answered "
                           f"{resp.resp.name}")

    def raw_read(self, offset, size):
        _reachable(offset, size)
        return self._raw_read(offset, size)

    def raw_write(self, offset, size, value):
        _reachable(offset, size)
        if value is not None and not 0 <= value < 1 << (8 * max(size, 0)):
            raise ValueError(f"value {value:#x} does not fit {size} bytes")
        self._raw_write(offset, size, value)

    # -- DMA, time, lines ----------------------------------------------------------------

    async def _atranslate(self, request, count):
        port = self.tb.ports[0]
        events = [await port.submit(request) for _ in range(count)]
        for event in events:
            await event.wait()
        if any(event.response.fault for event in events):
            # The fault record (and ipsr.fip) follows the answer by a few cycles; the
            # model reports it with the answer. A driver that cleared ipsr.fip in between
            # would see fip set again on the RTL only, so the DMA returns once the record
            # has had time to land.
            await ClockCycles(self.tb.dut.clk, FAULT_RECORD_CYCLES)
        return [event.response for event in events]

    def translate(self, request, count):
        return self._translate(request, count)

    async def _await_cycles(self, cycles):
        if cycles:
            await ClockCycles(self.tb.dut.clk, cycles)

    def wait(self, cycles):
        self._wait(cycles)

    @property
    def cycles(self):
        return round(get_sim_time(unit="ns") / self.tb.period_ns)

    async def _alines(self):
        return self.tb.interrupts.lines

    def lines(self):
        return self._lines()

    def rising(self):
        # The monitor counts every rise, so a pulse between two samples is not lost.
        raised = dict(self.tb.interrupts.raised)
        rose = 0
        for line, n in raised.items():
            if n > self._seen.get(line, 0):
                rose |= 1 << line
        self._seen = raised
        return rose

    async def _acheck(self, model, what):
        before = len(self.tb.interrupts.mismatches)
        await self.tb.interrupts.check(model, what=what)
        new = self.tb.interrupts.mismatches[before:]
        del self.tb.interrupts.mismatches[before:]
        return new[0] if new else None

    def check_lines(self, model, what):
        return self._check(model, what)

    def close(self):
        pass


def _reachable(offset, size):
    # The register bus has 12 address bits (hdl.regfile.MMIO_ADDR_WIDTH): an address beyond
    # the 4 KiB page is not one the RTL can be given.
    from iogate.cosim.client.host import RegisterAccessError
    if size < 1 or offset < 0 or offset + size > 4096:
        raise RegisterAccessError(f"{size} bytes at {offset:#x} are not on the iogate's "
                                  f"12-bit register bus (the 4 KiB register page)")


@cocotb.test()
async def host_script(dut):
    """Run ``IOGATE_HOST_SCRIPT`` against the RTL; write the report."""
    config = config_from_json(os.environ["IOGATE_HOST_CONFIG"])
    check = os.environ.get("IOGATE_HOST_CHECK", "1") == "1"
    tb = Testbench(dut, config, Memory())
    await tb.start()
    target = RtlTarget(tb, config, os.environ.get("IOGATE_SIM", "rtl"))
    host = Host(target, check=check)
    report = await bridge(execute)(os.environ["IOGATE_HOST_SCRIPT"], host)
    with open(os.environ["IOGATE_HOST_REPORT"], "w") as f:
        json.dump(report, f, indent=2, default=str)
