"""IOMMU-generated MSIs on the RTL against the model (reference N.5, decision 8 of issue 16).

``Config.full()`` with ``igs=BOTH``: ``cmd_ill`` and fault records raise ``cip``/``fip``; with
``fctl.WSI=0`` each 0->1 of those bits is one 4-byte store of ``msi_data_x`` to
``msi_addr_x`` of the entry ``icvec`` names. Every register access goes through the mirrored
bus (read values compared with the model's), the interrupt monitor compares the wires and
the MSI writes (AXI AWID 2) with the model's (``model.interrupts.messages``), and the fault
records are compared record by record. The expected values are the model's, written from
N.5. Built and run by tests/rtl/test_rtl_irq_msi.py on Verilator and Icarus.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time

from iogate.hdl import Config, bits
from iogate.hdl.regs import CQCSR, FCTL, FQCSR, ICVEC, IPSR, MSI_VEC_CTL, QB, Igs, Offset

from iogate.firmware import commands

from iogate.cosim.scenarios.session import open_session, request

#: The builds: Config.full() with both interrupt kinds, and Config.msi() (MSI translation
#: too: its MRIF writer is the last write client, after the MSI generator's).
CONFIGS = {"full-both": Config.full().replace(igs=Igs.BOTH), "msi": Config.msi()}
CONFIG = CONFIGS[os.environ.get("IOGATE_IRQ_MSI_CONFIG", "full-both")]
PERIOD_NS = 10                # the Testbench's default clock period
CQ = 0x1_0000
FQ = 0x2_0000
DOORBELLS = 0x8000_0000
ILLEGAL = (0x7F).to_bytes(16, "little")       # opcode 127: reserved, cmd_ill


def entry(x):
    return Offset.MSI_CFG_TBL + 16 * x


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


async def start(dut):
    s = await open_session(dut, CONFIG)
    s.tb.interrupts.watch_msis(dut)
    bus = s.bus
    await bus.awrite(Offset.CQB, 8, bits.pack(QB, log2szm1=3, ppn=CQ >> 12))
    await bus.awrite(Offset.FQB, 8, bits.pack(QB, log2szm1=3, ppn=FQ >> 12))
    await bus.awrite(Offset.FQCSR, 4, bits.pack(FQCSR, fqen=1, fie=1))
    await bus.awrite(Offset.ICVEC, 8, bits.pack(ICVEC, civ=3, fiv=9))
    for x in range(16):
        await program(s, x, DOORBELLS + 4 * x, 0x1A0 + x, masked=False)
    await bus.awrite(Offset.FCTL, 4, bits.pack(FCTL, wsi=0))
    return s


async def program(s, x, address, data, masked):
    await s.bus.awrite(entry(x), 8, address)
    await s.bus.awrite(entry(x) + 8, 4, data)
    await s.bus.awrite(entry(x) + 12, 4, bits.pack(MSI_VEC_CTL, m=int(masked)))


async def illegal_command(s, slot):
    """An illegal command at ``slot`` of the CQ, and cqt past it: cmd_ill."""
    s.memory.write(CQ + 16 * slot, ILLEGAL)
    await s.bus.awrite(Offset.CQT, 4, slot + 1)


async def settle(s, what, cycles=400):
    """Wait until the RTL is where the model is (the mirrored bus re-reads fqt, cqh, cqcsr
    and ipsr until they agree), then long enough for any MSI those raised to go out, and
    only then compare the wires and the MSIs: an early comparison could pass before a late
    message."""
    for offset, size in ((Offset.FQT, 4), (Offset.CQH, 4), (Offset.CQCSR, 4), (Offset.IPSR, 4)):
        await s.bus.aread(offset, size)
    await ClockCycles(s.tb.dut.clk, 40)
    return await s.tb.interrupts.check(s.model, settle_cycles=cycles, what=what)


async def recover(s, slot):
    """A legal command (IOFENCE.C) in place of the illegal one at ``slot``, cmd_ill W1C (the
    queue runs on), then cip W1C: cip 0 with no condition left."""
    s.memory.write(CQ + 16 * slot, commands.to_bytes(commands.iofence_c()))
    await s.bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1, cie=1, cmd_ill=1))
    await settle(s, "recovered")
    await clear(s, cip=1)


async def clear(s, **fields):
    await s.bus.awrite(Offset.IPSR, 4, bits.pack(IPSR, **fields))


@cocotb.test()
async def registers_reset_and_warl(dut):
    """fctl.WSI resets to 0 with IGS=BOTH and is writable; icvec keeps 4 bits; msi_cfg_tbl
    resets to 0/0/M=1, ADDR drops bits [1:0] and those at and above PAS, 4-byte halves of
    msi_addr merge; every read is checked against the model."""
    s = await open_session(dut, CONFIG)
    bus = s.bus
    assert await bus.aread(Offset.FCTL, 4) == 0
    await bus.awrite(Offset.FCTL, 4, 0xFFFF_FFFF)
    assert await bus.aread(Offset.FCTL, 4) == bits.pack(FCTL, wsi=1)
    await bus.awrite(Offset.ICVEC, 8, (1 << 64) - 1)
    await bus.aread(Offset.ICVEC, 8)
    for x in (0, 7, 15):
        await bus.aread(entry(x), 8)
        await bus.aread(entry(x) + 8, 4)
        assert await bus.aread(entry(x) + 12, 4) == 1
    await bus.awrite(entry(5), 8, (1 << 64) - 1)
    await bus.aread(entry(5), 8)
    await bus.awrite(entry(5) + 4, 4, 0x1234)
    await bus.awrite(entry(5), 4, 0x89AB_CDEF)
    await bus.aread(entry(5), 8)
    await bus.aread(entry(5) + 4, 4)
    await bus.awrite(entry(5) + 8, 4, 0xDEAD_BEEF)
    await bus.awrite(entry(5) + 12, 4, 0xFFFF_FFFE)
    await bus.aread(entry(5) + 8, 4)
    assert await bus.aread(entry(5) + 12, 4) == 0
    assert_clean(s)


@cocotb.test()
async def cmd_ill_and_records_raise_msis(dut):
    """cmd_ill -> cip -> one MSI to entry civ=3; a fault record -> fip -> one MSI to entry
    fiv=9; while the bits stay 1 more events send nothing; after W1C a new event sends again.
    Setting cie while cmd_ill is already 1 raises cip (N.9 P7): that is an edge too. Prints
    the cycles from the register write that causes the edge to the MSI's AW handshake."""
    s = await start(dut)
    bus, mon, clk = s.bus, s.tb.interrupts, dut.clk
    # cie set after the error: the edge comes from the cqcsr write (N.9 P7).
    await bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1))
    await illegal_command(s, 0)
    await settle(s, "cmd_ill without cie")
    assert mon.msis == []
    t0 = await cycle_now(clk)
    await bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1, cie=1))
    await settle(s, "cie with cmd_ill pending")
    assert [(m.address, m.data) for m in mon.msis] == [(DOORBELLS + 12, 0x1A3)]
    latency = mon.msis[0].cycle - t0
    cocotb.log.info(f"cycles from the cqcsr write's AW to the MSI's AW: {latency}")
    # A fault record: ddtp Off, so cause 256.
    t1 = await cycle_now(clk)
    await s.translate_all([request(1, 0x1000, "read")])
    await settle(s, "fault record")
    assert [m.address for m in mon.msis] == [DOORBELLS + 12, DOORBELLS + 36]
    cocotb.log.info(f"cycles from the request to the fip MSI's AW: {mon.msis[1].cycle - t1}")
    # More records while fip stays 1: nothing more.
    await s.translate_all([request(1, 0x2000, "write"), request(2, 0x3000, "read")])
    await settle(s, "records with fip pending")
    assert len(mon.msis) == 2
    # W1C fip, then a record: a new edge.
    await clear(s, fip=1)
    await s.translate_all([request(3, 0x4000, "read")])
    await settle(s, "record after W1C")
    assert len(mon.msis) == 3
    await s.check_fault_records()
    assert len(s.model.interrupts.messages) == 3
    assert_clean(s)


async def cycle_now(clk):
    await RisingEdge(clk)
    return round(get_sim_time(unit="ns") / PERIOD_NS)


@cocotb.test()
async def masked_vector_held_then_sent_once(dut):
    """M=1 holds the message; M 1->0 sends it once; toggling M again sends nothing."""
    s = await start(dut)
    bus, mon = s.bus, s.tb.interrupts
    await bus.awrite(entry(9) + 12, 4, bits.pack(MSI_VEC_CTL, m=1))
    await s.translate_all([request(1, 0x1000, "read")])
    await settle(s, "masked")
    assert mon.msis == []
    await bus.awrite(entry(9) + 8, 4, 0xCAFE)       # the values at unmask time count
    await bus.awrite(entry(9) + 12, 4, 0)
    await settle(s, "unmasked")
    assert [(m.address, m.data) for m in mon.msis] == [(DOORBELLS + 36, 0xCAFE)]
    for m in (1, 0, 1, 0):
        await bus.awrite(entry(9) + 12, 4, m)
    await settle(s, "toggled")
    assert len(mon.msis) == 1
    assert_clean(s)


@cocotb.test()
async def faulting_msi_gives_273(dut):
    """The MSI of cip goes to a faulting address: the store is made, answered SLVERR, and a
    record CAUSE 273 / TTYP 0 / iotval = the address is written (whatever DTF: no DC); the
    record raises fip, whose MSI (to a good address) goes out. Then the generator still
    works: a new cip edge after W1C sends again (to the same faulting address: a second
    273)."""
    s = await start(dut)
    bad = 0x9000_0040
    s.tb.target.inject_fault(bad, 4)
    await program(s, 3, bad, 0x55, masked=False)
    bus = s.bus
    await bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1, cie=1))
    await illegal_command(s, 0)
    await settle(s, "faulting msi")
    records = await s.check_fault_records()
    assert [(r.cause, r.ttyp, r.iotval, r.did) for r in records] == [(273, 0, bad, 0)]
    assert [m.faulted for m in s.model.interrupts.messages] == [True, False]
    await clear(s, cip=1)          # cmd_ill still 1: cip set again at once, no edge
    await settle(s, "cip W1C with cmd_ill")
    assert len(s.model.interrupts.messages) == 2
    await recover(s, 0)
    await illegal_command(s, 1)
    await settle(s, "second faulting msi")
    records = await s.check_fault_records()
    assert [r.cause for r in records] == [273, 273]
    assert [m.faulted for m in s.model.interrupts.messages] == [True, False, True]
    assert_clean(s)


@cocotb.test()
async def wsi_msi_switching(dut):
    """IGS=BOTH: with fctl.WSI=1 cmd_ill drives wire civ and sends nothing; switching to
    WSI=0 while cip is 1 sends nothing (no edge) and drops the wire; the next edge is an
    MSI; back to WSI=1 the wire follows ipsr again."""
    s = await start(dut)
    bus, mon = s.bus, s.tb.interrupts
    await bus.awrite(Offset.FCTL, 4, bits.pack(FCTL, wsi=1))
    await bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1, cie=1))
    await illegal_command(s, 0)
    await settle(s, "wired")
    assert mon.lines == 1 << 3 and mon.msis == []
    await bus.awrite(Offset.FCTL, 4, 0)
    await settle(s, "switched to msi with cip 1")
    assert mon.lines == 0 and mon.msis == []
    await recover(s, 0)
    await illegal_command(s, 1)
    await settle(s, "msi")
    assert len(mon.msis) == 1 and mon.lines == 0
    await bus.awrite(Offset.FCTL, 4, bits.pack(FCTL, wsi=1))
    await settle(s, "back to wires")
    assert mon.lines == 1 << 3 and len(mon.msis) == 1
    assert_clean(s)


@cocotb.test()
async def fence_w_ip_raises_msi_through_cie(dut):
    """fence_w_ip exists only with fctl.WSI=1: an IOFENCE.C with WSI=1 sets it (cie=0, so
    no cip). After switching to WSI=0, setting cie raises cip (N.9 P7) and that 0->1 is an
    MSI to entry civ."""
    s = await start(dut)
    bus, mon = s.bus, s.tb.interrupts
    await bus.awrite(Offset.FCTL, 4, bits.pack(FCTL, wsi=1))
    await bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1))
    s.memory.write(CQ, commands.to_bytes(commands.iofence_c(wsi=True)))
    await bus.awrite(Offset.CQT, 4, 1)
    await settle(s, "fence_w_ip without cie")
    assert bits.get(CQCSR, await bus.aread(Offset.CQCSR, 4), "fence_w_ip") == 1
    assert mon.msis == [] and mon.lines == 0
    await bus.awrite(Offset.FCTL, 4, 0)
    await bus.awrite(Offset.CQCSR, 4, bits.pack(CQCSR, cqen=1, cie=1))
    await settle(s, "cie with fence_w_ip")
    assert [(m.address, m.data) for m in mon.msis] == [(DOORBELLS + 12, 0x1A3)]
    assert_clean(s)
