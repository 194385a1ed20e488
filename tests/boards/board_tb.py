"""cocotb tests of the board top (iogate.boards.top.BoardTop) through its UART pins.

The host side is the real one (:mod:`iogate.cosim.targets.board`): synchronous code running in a
thread under ``cocotb.task.bridge``, talking to :class:`SimSerial`, a pyserial stand-in that
bit-bangs the board's ``rx`` pin and samples its ``tx`` pin, each call hopping back into the
simulation with ``cocotb.task.resume`` (as ``iogate.cosim.targets.tb.bus`` does for the AXI agents).
Built and run by test_board_top.py on Verilator and Icarus.
"""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge, SimTimeoutError, Timer, with_timeout

from iogate.hdl.regs import Offset

from iogate.boards.protocol import Op, encode_request

from iogate.cosim.scenarios.on_board import run_foundation
from iogate.cosim.targets.board import BoardLink

PERIOD_NS = 10
DIVISOR = int(os.environ.get("IOGATE_DIVISOR", "4"))
BIT_NS = DIVISOR * PERIOD_NS
RAM_BASE = int(os.environ.get("IOGATE_RAM_BASE", "0"), 0)
RAM_SIZE = int(os.environ.get("IOGATE_RAM_SIZE", "0"), 0)
CAPABILITIES = int(os.environ.get("IOGATE_CAPABILITIES", "0"), 0)
#: How long a read waits for each byte, in simulated time (pyserial's ``timeout``): long
#: enough for a MEM_FILL of a page (512 doublewords, a few cycles each).
BYTE_TIMEOUT_NS = 200_000


class SimSerial:
    """A pyserial-like port on the board's UART pins (8N1, ``BIT_NS`` a bit).

    ``write`` and ``read`` are for synchronous code under ``cocotb.task.bridge``. A
    background coroutine receives every byte the board sends into a queue, so nothing is
    lost between calls; ``read(n)`` returns fewer than ``n`` bytes if the board goes quiet
    for ``BYTE_TIMEOUT_NS`` (pyserial's timeout behaviour).
    """

    def __init__(self, dut):
        self.dut = dut
        self.received = Queue()
        self.framing_errors = 0
        self.write = resume(self._write)
        self.read = resume(self._read)
        self.send_break = resume(self._break)
        cocotb.start_soon(self._receive())

    def reset_input_buffer(self):
        while not self.received.empty():
            self.received.get_nowait()

    async def _break(self, duration=None):
        # The line low for two frames: a start bit whose stop bit never comes. (The
        # duration is a host's wall-clock time; the board only needs a missing stop bit.)
        self.dut.rx.value = 0
        await Timer(20 * BIT_NS, unit="ns")
        self.dut.rx.value = 1
        await Timer(2 * BIT_NS, unit="ns")

    async def _write(self, data):
        for byte in bytes(data):
            for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.rx.value = level
                await Timer(BIT_NS, unit="ns")
        return len(data)

    async def _read(self, n):
        out = bytearray()
        while len(out) < n:
            try:
                out.append(await with_timeout(self.received.get(), BYTE_TIMEOUT_NS, "ns"))
            except SimTimeoutError:
                break
        return bytes(out)

    async def _receive(self):
        tx = self.dut.tx
        while True:
            await FallingEdge(tx)
            await Timer(BIT_NS + BIT_NS // 2, unit="ns")     # the middle of bit 0
            byte = 0
            for i in range(8):
                byte |= int(tx.value) << i
                await Timer(BIT_NS, unit="ns")
            if not int(tx.value):
                self.framing_errors += 1
                continue
            self.received.put_nowait(byte)


async def start(dut):
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return SimSerial(dut)


@cocotb.test()
async def bridge_basics(dut):
    """Resync after a half-sent request, IDENT, a register read, memory write/read back,
    through the pins."""
    serial = await start(dut)

    def host():
        # A session that died in the middle of a MEM_WRITE: without the break, the link's
        # IDENT would be taken as the rest of it.
        serial.write(encode_request(Op.MEM_WRITE, addr=RAM_BASE, data=-1 & (2**64 - 1),
                                    strb=0xFF)[:6])
        link = BoardLink(serial)
        caps = link.mmio_read(Offset.CAPABILITIES, 8)
        link.mem_write(link.ram_base + 0x1003, b"\x11\x22\x33\x44\x55\x66\x77")
        link.mem_write(link.ram_base + 0x2000, bytes(64))          # one MEM_FILL
        back = link.mem_read(link.ram_base + 0x1000, 16)
        return link, caps, back

    link, caps, back = await bridge(host)()
    assert (link.ram_base, link.ram_size) == (RAM_BASE, RAM_SIZE)
    assert caps == CAPABILITIES
    assert back == bytes(3) + b"\x11\x22\x33\x44\x55\x66\x77" + bytes(6)
    # IDENT, MMIO_READ, a MEM_WRITE for each of two doublewords, a MEM_FILL, two
    # MEM_READs.
    assert link.frames == 7
    assert serial.framing_errors == 0


@cocotb.test()
async def foundation_on_the_board(dut):
    """The foundation workload through the UART, every answer checked against the model."""
    serial = await start(dut)
    n = int(os.environ.get("IOGATE_TRANSLATIONS", "60"))

    def host():
        return run_foundation(BoardLink(serial, resync=False), seed=3, translations=n,
                              burst=8)

    report = await bridge(host)()
    dut._log.info("board report: %s", {k: v for k, v in report.items()
                                       if k != "mismatch_details"})
    assert report["mismatches"] == 0, "\n".join(report["mismatch_details"])
    faults = set(report["faults"])
    # Off (256), V=0 (258), misconfigured (259), device_id too wide (260), page faults
    # (12, 13, 15) and, from the table outside the memory, access faults (1, 5, 7).
    assert faults >= {1, 5, 7, 12, 13, 15, 256, 258, 259, 260}, faults
    assert report["iotlb_hits"] > 0
    assert serial.framing_errors == 0
