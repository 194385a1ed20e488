"""8-byte registers written as two 4-byte halves on a 32-bit register bus
(``Config(mmio_data_width=32)``): iogate never acts on a half-written ``ddtp``, ``cqb`` or
``fqb`` when the halves come in the spec's order.

Spec "Memory-mapped register interface": a 4-byte access must be single-copy atomic, and
"the 8-byte IOMMU registers are defined in such a way that software can perform two
individual 4-byte accesses ... to the high and low halves of the register, in that order"
(an 8-byte access itself "may appear, internally to the IOMMU, as if two separate 4 byte
accesses -- first to the high half and second to the low half -- were performed").

iogate's choice, where the spec leaves one: each 4-byte write is a complete register write
that acts at once (no staging register holding one half until the other comes: a lone
4-byte write, which the spec allows, would then never act). What is safe is decided by the
order, and the layouts make the spec's order safe: every field of these registers whose
write has an effect (``ddtp.iommu_mode``, ``cqb``/``fqb`` LOG2SZ-1) is in the low half, so
written high half first, the register only acts when it is whole. Linux on a 32-bit bus
does this (``hi_lo_writeq``). Written low half first, the intermediate value is exactly
what was written, and the hardware uses it like the model does; for ``cqb``/``fqb`` that
is harmless while the queue is off (the spec makes writing a base while the queue is on
UNSPECIFIED), for ``ddtp`` a DMA between the halves walks the half-written root. The tests
write the halves themselves: a bus master that splits an 8-byte access by itself sends the
low half first (cocotbext-axi's AXI4-Lite master does, so the test bench's own 8-byte writes
reach a 32-bit iogate low half first).

Every register access goes through the mirrored bus (and so is checked against the model,
which carries out an 8-byte write as two 4-byte ones, high half first), and every DMA
answer is checked by the scoreboard. Built and run by tests/rtl/test_rtl_mmio32.py on
Verilator and Icarus.
"""

import cocotb

from iogate.hdl import Config, bits
from iogate.hdl.formats import TC
from iogate.hdl.regs import CQCSR, DDTP, FQCSR, QB, IommuMode, Offset

from iogate.firmware import commands
from iogate.firmware.fq import FaultRecord

from iogate.cosim.scenarios.session import open_session, request

CONFIG = Config(mmio_data_width=32)

#: A directory root whose PPN has bits in both halves of ddtp (PPN[21:0] sit in bits 31:10,
#: PPN[43:22] in bits 53:32): address bits 33:12 in the low half, 55:34 in the high half.
ROOT = 0x5_0000_3000
#: Where a root with only the low half written points (the high half still 0 from reset).
HALF = ROOT & ((1 << 34) - 1)
DEVICE = 5
IOVA = 0x1234_5000


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


def watch_reads(s):
    """Record the address of every memory read the RTL makes."""
    target, seen = s.tb.target, []
    read = target.read

    async def logged(address, length, **kwargs):
        seen.append(address)
        return await read(address, length, **kwargs)

    target.read = logged
    return seen


def in_page(addresses, page):
    return [a for a in addresses if a >> 12 == page >> 12]


async def write_halves(s, offset, value, order):
    """``value`` into the 8-byte register at ``offset`` as two 4-byte writes; ``order`` is
    ``"high first"`` or ``"low first"``. Returns a coroutine function to run between them."""
    low, high = (offset, value & 0xFFFF_FFFF), (offset + 4, value >> 32)
    first, second = (high, low) if order == "high first" else (low, high)
    await s.bus.awrite(first[0], 4, first[1])
    return lambda: s.bus.awrite(second[0], 4, second[1])


def bypass_dc():
    return bits.pack(TC, v=1).to_bytes(8, "little") + bytes(24)


@cocotb.test()
async def ddtp_high_half_first_never_walks_a_half_written_root(dut):
    """ddtp from Off to 1LVL at ROOT, high half (PPN[43:22]) first: between the halves the
    mode is still Off (a DMA gets cause 256 and nothing is walked); after the low half (mode
    and PPN[21:0]) the DMA is translated through ROOT. No read ever touches HALF, the root
    a half-written ddtp would name."""
    s = await open_session(dut, CONFIG)
    reads = watch_reads(s)
    s.memory.write(ROOT + DEVICE * 32, bypass_dc())
    s.memory.write(HALF + DEVICE * 32, bypass_dc())         # would translate too: only the
    ddtp = bits.pack(DDTP, iommu_mode=IommuMode.LVL1, ppn=ROOT >> 12)  # read log tells
    second = await write_halves(s, Offset.DDTP, ddtp, "high first")
    assert bits.get(DDTP, await s.bus.aread(Offset.DDTP, 8), "iommu_mode") == IommuMode.OFF
    await s.translate_all([request(DEVICE, IOVA, "read")])
    assert s.scoreboard.faults.get(256) == 1 and reads == []
    await second()
    assert await s.bus.aread(Offset.DDTP, 8) == ddtp
    await s.translate_all([request(DEVICE, IOVA, "read"), request(DEVICE, IOVA, "write")])
    assert s.scoreboard.faults.get(256) == 1 and sum(s.scoreboard.faults.values()) == 1
    assert in_page(reads, ROOT) and not in_page(reads, HALF)
    assert_clean(s)


@cocotb.test()
async def ddtp_low_half_first_acts_on_what_was_written(dut):
    """The other order, which the spec does not make safe: the low half sets 1LVL with the
    root's high PPN bits still 0, so a DMA between the halves walks HALF, as the model says
    it must (a DC with V=0 there: cause 258, which no cache may keep); after the high half,
    the DMA is translated through ROOT."""
    s = await open_session(dut, CONFIG)
    reads = watch_reads(s)
    s.memory.write(ROOT + DEVICE * 32, bypass_dc())
    ddtp = bits.pack(DDTP, iommu_mode=IommuMode.LVL1, ppn=ROOT >> 12)
    second = await write_halves(s, Offset.DDTP, ddtp, "low first")
    assert await s.bus.aread(Offset.DDTP, 8) == bits.pack(DDTP, iommu_mode=IommuMode.LVL1,
                                                          ppn=HALF >> 12)
    await s.translate_all([request(DEVICE, IOVA, "read")])
    assert s.scoreboard.faults.get(258) == 1 and in_page(reads, HALF)
    await second()
    assert await s.bus.aread(Offset.DDTP, 8) == ddtp
    await s.translate_all([request(DEVICE, IOVA, "read")])
    assert sum(s.scoreboard.faults.values()) == 1 and in_page(reads, ROOT)
    assert_clean(s)


CQ = 0x6_0000_4000            # PPN bits in both halves of cqb, as ROOT in ddtp
FQ = 0x6_0000_8000
FENCE_AT = 0x8000_0100


async def _queue_halves(s, order):
    """cqb and fqb written half by half in ``order`` while both queues are off; nothing is
    read or written through either base until the queue is enabled."""
    reads = watch_reads(s)
    for base_reg, base in ((Offset.CQB, CQ), (Offset.FQB, FQ)):
        second = await write_halves(s, base_reg, bits.pack(QB, ppn=base >> 12, log2szm1=1),
                                    order)
        await s.bus.aread(base_reg, 8)
        await second()
        assert await s.bus.aread(base_reg, 8) == bits.pack(QB, ppn=base >> 12, log2szm1=1)
    assert reads == []
    return reads


async def _queues_then_enabled(dut, order, data):
    s = await open_session(dut, CONFIG)
    reads = await _queue_halves(s, order)
    half_cq = CQ & ((1 << 34) - 1)
    for base, value in ((CQ, data), (half_cq, 0xEE)):
        s.memory.write(base, commands.to_bytes(commands.iofence_c(addr=FENCE_AT, data=value)))
    await s.bus.awrite(Offset.CQT, 4, 0)
    await s.bus.awrite(Offset.FQH, 4, 0)
    await s.bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1))
    await s.bus.awrite(Offset.FQCSR, 4, bits.pack(FQCSR, fqen=1))
    await s.bus.awrite(Offset.CQT, 4, 1)
    for _ in range(200):
        if await s.tb.mmio_read(Offset.CQH, 4) == 1:
            break
    assert await s.bus.aread(Offset.CQH, 4) == 1
    assert s.memory.read(FENCE_AT, 1) == bytes([data])
    await s.translate_all([request(DEVICE, IOVA, "read")])
    records = await s.check_fault_records()
    assert [int(r.cause) for r in records] == [256]
    assert int(FaultRecord.from_bytes(s.memory.read(FQ, 32)).cause) == 256
    assert s.memory.read(FQ & ((1 << 34) - 1), 32) == bytes(32)
    assert in_page(reads, CQ) and not in_page(reads, half_cq)
    assert_clean(s)


@cocotb.test()
async def queue_bases_high_half_first_then_enabled(dut):
    """cqb and fqb, LOG2SZ-1 = 1 (4 entries), each written high half first while its queue
    is off (cqen = fqen = 0): an off queue reads and writes nothing through its base
    (checked); once enabled, the command queue fetches from CQ (an IOFENCE.C there stores
    its DATA, a different one at the half-written base would store another) and the fault
    queue writes its record at FQ (cause 256: ddtp is Off), nothing at the half-written
    bases."""
    await _queues_then_enabled(dut, "high first", 0x11)


@cocotb.test()
async def queue_bases_low_half_first_then_enabled(dut):
    """The same, low half first: as safe as the other order here, since the base is only
    used once the queue is enabled, and by then both halves are written."""
    await _queues_then_enabled(dut, "low first", 0x22)
