"""Register accesses the spec does not allow, on the RTL: what the AXI4-Lite port answers,
that it always answers, and that no register changes.

Spec "Memory-mapped register interface": a misaligned access, a size other than 4 or 8 bytes
and an access spanning several registers are UNSPECIFIED; "Register layout": the reserved
ranges hold no register. The model refuses all of them (:mod:`iogate.cosim.model.access`).
The hardware must answer something, and iogate's choice is:

* every access is answered, ``OKAY``, in the cycle after it is taken (never SLVERR): the
  spec gives no error response for any register access, its one rule for registers that do
  not exist is "reads return 0 and writes are ignored", and AXI4-Lite carries no access size
  for reads, so a read of the wrong size cannot be told from a right one; one quiet answer
  for all of them keeps a host from taking an (often imprecise) bus-error exception from an
  IOMMU register;
* a write changes nothing unless its byte strobes cover exactly one register: a whole
  4-byte register or half of an 8-byte one (``wstrb`` 0x0F or 0xF0 on a 64-bit bus, 0xF on a
  32-bit bus), or a whole 8-byte register (0xFF on a 64-bit bus). A write of 1, 2 or 3 bytes,
  a misaligned write (whose strobes straddle a 4-byte boundary) and, on a 64-bit bus, an
  8-byte write over two 4-byte registers are ignored whole;
* reads have no side effect in this register file: a read answers the bytes of the
  addressed word (the bus master picks the lanes it asked for), reserved space reads 0.

What the bus cannot show the IOMMU it cannot refuse: a master splits an access that crosses
a data-width boundary into several beats (a misaligned 8-byte access at 0x14 becomes the
high half of ``ddtp`` and the low half of ``cqb``), and on a 32-bit bus every 8-byte access
arrives as two 4-byte beats; each beat is judged alone. An address beyond the 4 KiB page is
not on iogate's 12-bit register bus at all (the interconnect decodes it elsewhere).

Every register is read through the mirrored bus before and after, so the state the RTL
keeps is also the model's. Runs on the Config named by ``IOGATE_BAD_MMIO_CONFIG``
(``default``: 64-bit bus; ``bus32``: ``mmio_data_width=32``); built and run by
tests/rtl/test_rtl_bad_mmio.py on Verilator and Icarus.
"""

import os

import cocotb
from cocotb.triggers import with_timeout
from cocotbext.axi.constants import AxiResp

from iogate.hdl import Config
from iogate.hdl.regs import Offset

from iogate.cosim.model.access import PAGE, register_at
from iogate.cosim.scenarios.session import open_session

CONFIGS = {"default": Config(), "bus32": Config(mmio_data_width=32)}
CONFIG = CONFIGS[os.environ.get("IOGATE_BAD_MMIO_CONFIG", "default")]
#: An access that takes longer than this has hung.
TIMEOUT_NS = 2_000


def registers():
    """``(offset, size)`` of every register of the layout (not the custom or reserved
    ranges), from the model's reading of "Register layout"."""
    out, offset = [], 0
    while offset < PAGE:
        name, base, size = register_at(offset)
        if size is None:
            offset += 4
            continue
        out.append((base, size))
        offset = base + size
    return out


async def snapshot(s):
    return {offset: await s.bus.aread(offset, size) for offset, size in registers()}


async def busy_state(s):
    """Registers that are not all 0 and that a stray write could visibly change: queue
    bases and sizes, indices, icvec; ddtp Off and the queues off, so that a byte setting a
    mode or an enable bit would show."""
    await s.bus.awrite(Offset.CQB, 8, 0x8000_1000 >> 2 | 3)          # 16 entries
    await s.bus.awrite(Offset.FQB, 8, 0x8000_2000 >> 2 | 3)
    await s.bus.awrite(Offset.CQT, 4, 5)
    await s.bus.awrite(Offset.FQH, 4, 6)
    await s.bus.awrite(Offset.ICVEC, 4, 0x4321)
    await s.bus.awrite(Offset.DDTP + 4, 4, 0x12)                     # PPN bits, mode Off


async def raw_write(s, offset, data):
    resp = await with_timeout(s.tb.mmio.write(offset, data), TIMEOUT_NS, "ns")
    return resp.resp


async def raw_read(s, offset, length):
    resp = await with_timeout(s.tb.mmio.read(offset, length), TIMEOUT_NS, "ns")
    return resp.resp, int.from_bytes(resp.data, "little")


#: Writes that would change a register if any byte of them were taken, and why each is bad.
BAD_WRITES = [
    (0x010, b"\x02", "1 byte: ddtp.iommu_mode = 1LVL"),
    (0x010, b"\x01\x00", "2 bytes: ddtp.iommu_mode = Bare"),
    (0x048, b"\x03", "1 byte: cqcsr.cqen | cie"),
    (0x04C, b"\x03\x00", "2 bytes: fqcsr.fqen | fie"),
    (0x024, b"\x01\x00\x00", "3 bytes: cqt = 1"),
    (0x2F8, b"\xff", "1 byte: icvec civ, fiv = 15"),
    (0x012, b"\xff" * 4, "misaligned 4 bytes into ddtp"),
    (0x01A, b"\xff" * 4, "misaligned 4 bytes into cqb"),
    (0x026, b"\x01\x00\x01\x00", "misaligned 4 bytes over cqt and fqb"),
    (0x2FA, b"\xff\xff\x00\x00", "misaligned 4 bytes into icvec"),
]
#: On a 64-bit bus the strobes show an 8-byte write over two 4-byte registers.
BAD_WRITES_64 = [
    (0x020, (1 << 32 | 0).to_bytes(8, "little"), "8 bytes over cqh and cqt"),
    (0x048, (3 << 32 | 3).to_bytes(8, "little"), "8 bytes over cqcsr and fqcsr"),
    (0x030, (1).to_bytes(8, "little"), "8 bytes over fqh and fqt"),
]
#: Reserved space: nothing to write (the model refuses these too).
RESERVED_WRITES = [
    (0x274, b"\xff" * 4, "reserved 0x274"),
    (0x2A8, b"\xff" * 8, "reserved 0x2A8"),
    (0x400, b"\xff" * 4, "reserved 0x400"),
    (0x800, b"\xff" * 8, "reserved 0x800"),
    (0xFFC, b"\xff" * 4, "reserved 0xFFC"),
]


async def _writes_change_nothing(s, writes):
    await busy_state(s)
    before = await snapshot(s)
    for offset, data, what in writes:
        assert await raw_write(s, offset, data) == AxiResp.OKAY, what
        after = await snapshot(s)
        changed = {hex(k): (hex(before[k]), hex(after[k])) for k in before if before[k] != after[k]}
        assert not changed, f"{what}: changed {changed}"
    assert not s.mismatches, "\n".join(s.mismatches[:10])


@cocotb.test()
async def reserved_space_writes_are_ignored(dut):
    """A write into reserved space is answered OKAY and changes no register."""
    s = await open_session(dut, CONFIG)
    await _writes_change_nothing(s, RESERVED_WRITES)


@cocotb.test()
async def partial_and_misaligned_writes_are_ignored(dut):
    """1-, 2- and 3-byte writes and misaligned ones are answered OKAY and change nothing,
    not even the bytes their strobes cover."""
    s = await open_session(dut, CONFIG)
    await _writes_change_nothing(s, BAD_WRITES)


@cocotb.test()
async def wide_writes_over_two_4_byte_registers(dut):
    """On a 64-bit bus, an 8-byte write over two 4-byte registers (strobes 0xFF on their
    word) is answered OKAY and changes neither. On a 32-bit bus the same write reaches
    iogate as two 4-byte beats (the master splits it, low address first), each a register
    write the spec allows: over cqcsr and fqcsr both queues turn on, exactly as the model
    does given those two writes."""
    s = await open_session(dut, CONFIG)
    if CONFIG.mmio_data_width == 64:
        await _writes_change_nothing(s, BAD_WRITES_64)
        return
    await busy_state(s)
    assert await raw_write(s, Offset.CQCSR, (3 << 32 | 3).to_bytes(8, "little")) == AxiResp.OKAY
    # The model's bus, so that the command queue runs as the hardware's does.
    s.bus.model_bus.mmio_write(Offset.CQCSR, 4, 3)
    s.bus.model_bus.mmio_write(Offset.FQCSR, 4, 3)
    after = await snapshot(s)
    assert after[Offset.CQCSR] & 1 << 16 and after[Offset.FQCSR] & 1 << 16
    assert not s.mismatches, "\n".join(s.mismatches[:10])


@cocotb.test()
async def bad_reads_answer_okay_with_the_addressed_bytes(dut):
    """Reads of the wrong size, misaligned reads, 8-byte reads over two 4-byte registers and
    reads of reserved space: OKAY, the bytes of the addressed word(s) (the master picks its
    lanes), and no register changes (reads have no side effect)."""
    s = await open_session(dut, CONFIG)
    await busy_state(s)
    before = await snapshot(s)
    ddtp, cqb = before[Offset.DDTP], before[Offset.CQB]
    pair = before[Offset.CQH] | before[Offset.CQT] << 32
    reads = [
        (0x010, 1, ddtp & 0xFF),
        (0x010, 2, ddtp & 0xFFFF),
        (0x012, 4, ddtp >> 16 & 0xFFFF_FFFF),
        (0x016, 4, (ddtp >> 48 | cqb << 16) & 0xFFFF_FFFF),
        (0x014, 8, ddtp >> 32 | (cqb & 0xFFFF_FFFF) << 32),
        (0x020, 8, pair),
        (0x024, 3, before[Offset.CQT] & 0xFF_FFFF),
        (0x2F9, 1, before[Offset.ICVEC] >> 8 & 0xFF),
        (0x274, 4, 0), (0x2A8, 8, 0), (0x400, 4, 0), (0x800, 8, 0), (0xFFC, 4, 0),
    ]
    for offset, length, expected in reads:
        resp, value = await raw_read(s, offset, length)
        assert resp == AxiResp.OKAY, (hex(offset), length)
        assert value == expected, (hex(offset), length, hex(value), hex(expected))
    assert await snapshot(s) == before
    assert not s.mismatches, "\n".join(s.mismatches[:10])


@cocotb.test()
async def beyond_the_page_is_not_on_the_bus(dut):
    """An address at or above 4 KiB does not fit the 12-bit register bus: the test bench's
    master refuses it before any beat is sent, so iogate never sees it; the next access
    works."""
    s = await open_session(dut, CONFIG)
    for offset in (0x1000, 0x1_0010):
        try:
            await s.tb.mmio.write(offset, b"\x00" * 4)
        except ValueError as e:
            assert "out of range" in str(e)
        else:
            raise AssertionError(f"a write at {offset:#x} went onto the 12-bit bus")
    resp, value = await raw_read(s, Offset.CAPABILITIES, 8)
    assert resp == AxiResp.OKAY and value == CONFIG.capabilities
