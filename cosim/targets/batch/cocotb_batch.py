"""The cocotb side of batch mode, and the interactive run of the same trace.

``batch`` runs on the :class:`~iogate.cosim.targets.batch.harness.BatchHarness` build: it replays
the setup of the trace (registers through cocotbext-axi's AXI4-Lite master, RAM through the
host write port), then for each batch of up to ``DEPTH`` requests loads them (``LANES``
per clock), pulses ``start``, waits for ``done`` with one trigger and reads the responses
back (``LANES`` per read). No Python runs per translation while the batch plays.

``interactive`` runs the same trace on the plain :class:`iogate.hdl.iommu.Iommu` build through the
test bench's :class:`~iogate.cosim.targets.tb.translation.TranslationRequester` (one coroutine step
per request and per response), as the regression does.

Both write the raw responses (arrival order, :mod:`.check`) and the wall-clock seconds of
the request phase; checking against the model happens outside the simulator, with the
same code for every mode. Environment: ``IOGATE_BATCH_TRACE`` (the trace file),
``IOGATE_BATCH_OUT`` (responses), ``IOGATE_BATCH_TIMING`` (JSON).
"""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from iogate.hdl import Config, bits
from iogate.hdl.mem_master import write_request_layout
from iogate.hdl.port import response_layout

from iogate.cosim.check.batch import write_responses
from iogate.cosim.model.memory import Memory
from iogate.cosim.targets.batch.harness import DEPTH, LANES, request_bits
from iogate.cosim.targets.batch.trace import read_trace, restrict
from iogate.cosim.targets.tb.testbench import Testbench

__all__ = ["batch", "interactive"]

#: Reads of a register before the RTL is declared to disagree with the model.
POLLS = 10_000


def _pack_request(r):
    return r.device_id | r.iova << 24 | r.access.value << 88


async def _replay(ops, mmio_write, mmio_read, mem_write):
    """The setup: returns the register reads on which the RTL never reached the model."""
    errors = []
    for op in ops:
        if op[0] == "W":
            await mmio_write(op[1], op[2], op[3])
        elif op[0] == "R":
            for _ in range(POLLS):
                value = await mmio_read(op[1], op[2])
                if value == op[3]:
                    break
            else:
                errors.append(f"mmio read {op[1]:#05x}/{op[2]}: rtl {value:#x} "
                              f"model {op[3]:#x}")
        else:
            await mem_write(op[1], op[2])
    return errors


def _finish(raws, seconds, cycles, errors, **extra):
    write_responses(raws, os.environ["IOGATE_BATCH_OUT"])
    with open(os.environ["IOGATE_BATCH_TIMING"], "w") as f:
        json.dump({"seconds": seconds, "cycles": cycles, "setup_mismatches": errors, **extra},
                  f)


class _AxiLiteDriver:
    """Register accesses on the harness's ``mmio`` port, with no coroutine of its own.

    cocotbext-axi's agents sample their channels on every clock for as long as they exist;
    in batch mode that would put Python back into every cycle of the run, so the setup's
    few hundred accesses use this instead: handshakes are sampled in the read-only phase
    before the edge that completes them (AMBA AXI A3.2.1), and between accesses nothing
    waits on the clock.
    """

    def __init__(self, dut):
        self.dut = dut
        self.clk = dut.clk
        for name in ("awvalid", "wvalid", "bready", "arvalid", "rready", "awprot", "arprot",
                     "awaddr", "araddr", "wdata", "wstrb"):
            getattr(dut, f"mmio__{name}").value = 0

    async def _until(self, *channels):
        """Hold each ``(valid, ready)`` pair until it has fired; drop ``valid`` after."""
        pending = list(channels)
        while pending:
            await ReadOnly()
            fired = [c for c in pending if c[1].value == 1]
            await RisingEdge(self.clk)
            for valid, ready in fired:
                if valid is not None:
                    valid.value = 0
                pending.remove((valid, ready))

    async def write(self, offset, size, value):
        d, lane = self.dut, offset & 7
        d.mmio__awaddr.value = offset
        d.mmio__wdata.value = (value & ((1 << (8 * size)) - 1)) << (8 * lane)
        d.mmio__wstrb.value = ((1 << size) - 1) << lane
        d.mmio__awvalid.value = 1
        d.mmio__wvalid.value = 1
        d.mmio__bready.value = 1
        await self._until((d.mmio__awvalid, d.mmio__awready), (d.mmio__wvalid, d.mmio__wready))
        await self._until((None, d.mmio__bvalid))
        d.mmio__bready.value = 0

    async def read(self, offset, size):
        d, lane = self.dut, offset & 7
        d.mmio__araddr.value = offset
        d.mmio__arvalid.value = 1
        d.mmio__rready.value = 1
        await self._until((d.mmio__arvalid, d.mmio__arready))
        while True:
            await ReadOnly()
            if d.mmio__rvalid.value == 1:
                data = int(d.mmio__rdata.value)
                break
            await RisingEdge(self.clk)
        await RisingEdge(self.clk)
        d.mmio__rready.value = 0
        return (data >> (8 * lane)) & ((1 << (8 * size)) - 1)


@cocotb.test()
async def batch(dut):
    trace = read_trace(os.environ["IOGATE_BATCH_TRACE"])
    config = Config()
    # The clock in the simulator's own code (cocotb's GPI clock): with the Python clock
    # coroutine every cycle of the run would resume Python twice.
    clock = Clock(dut.clk, 10, unit="ns", impl="gpi")
    clock.start()
    for name in ("load_en", "start", "count", "load_addr", "load_data", "read_addr",
                 "host_write__req__valid", "host_read__req__valid"):
        getattr(dut, name).value = 0
    dut.host_write__resp__ready.value = 1
    dut.host_read__resp__ready.value = 1
    mmio = _AxiLiteDriver(dut)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    layout = write_request_layout(32)

    async def mem_write(address, value):
        dut.host_write__req__payload.value = bits.pack(
            layout, addr=address, data=value, strb=0xFF)
        dut.host_write__req__valid.value = 1
        # The write is done when its response is offered (the RAM was idle or not).
        await RisingEdge(dut.host_write__resp__valid)
        dut.host_write__req__valid.value = 0

    errors = await _replay(trace.ops, mmio.write, mmio.read, mem_write)

    width = request_bits()
    resp_width = response_layout(config.tag_width).size
    raws, seconds, cycles, run_seconds = [], 0.0, 0, 0.0
    requests = trace.requests
    for first in range(0, len(requests), DEPTH):
        chunk = requests[first:first + DEPTH]
        start = time.perf_counter()
        for row in range(0, len(chunk), LANES):
            word = 0
            for j, r in enumerate(chunk[row:row + LANES]):
                word |= _pack_request(r) << (j * width)
            dut.load_addr.value = row // LANES
            dut.load_data.value = word
            dut.load_en.value = 1
            await RisingEdge(dut.clk)
        dut.load_en.value = 0
        dut.count.value = len(chunk)
        dut.start.value = 1
        played = time.perf_counter()
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await RisingEdge(dut.done)
        run_seconds += time.perf_counter() - played
        cycles += int(dut.cycles.value)
        mask = (1 << resp_width) - 1
        for row in range(0, len(chunk), LANES):
            dut.read_addr.value = row // LANES
            # Two edges: the registered read has the row whichever side of the edge the
            # simulator samples on.
            await ClockCycles(dut.clk, 2)
            word = int(dut.read_data.value)
            for j in range(min(LANES, len(chunk) - row)):
                raws.append(word >> (j * resp_width) & mask)
        seconds += time.perf_counter() - start
    _finish(raws, seconds, cycles, errors, run_seconds=run_seconds)


@cocotb.test()
async def interactive(dut):
    trace = read_trace(os.environ["IOGATE_BATCH_TRACE"])
    config = Config()
    memory = Memory()
    restrict(memory)
    tb = Testbench(dut, config, memory)
    await tb.start()

    async def mem_write(address, value):
        memory.write64(address, value)

    errors = await _replay(trace.ops, tb.mmio_write, tb.mmio_read, mem_write)
    requester = tb.ports[0]
    layout = response_layout(config.tag_width)
    start_cycle = get_sim_time(unit="ns") // 10
    start = time.perf_counter()
    events = [await requester.submit(r) for r in trace.requests]
    raws = []
    for i, event in enumerate(events):
        await event.wait()
        g = event.response
        raws.append(bits.pack(layout, tag=i % (1 << config.tag_width), fault=g.fault,
                              cause=g.cause, ppn=g.ppn, r=g.r, w=g.w, x=g.x, pbmt=g.pbmt,
                              hit=g.hit))
    seconds = time.perf_counter() - start
    cycles = get_sim_time(unit="ns") // 10 - start_cycle
    _finish(raws, seconds, int(cycles), errors)
