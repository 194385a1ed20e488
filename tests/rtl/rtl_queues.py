"""cocotb tests of the command and fault queues on the iogate top, through the driver.

The driver (``iogate.firmware.driver.Iommu``) runs unchanged on the RTL through the mirrored bus:
the spec's init sequence, page-table changes with their IOTINVAL + IOFENCE.C recipes,
fault-queue draining. Every translation, register read and fault record is checked against
the architectural model. Built and run by tests/rtl/test_rtl_queues.py on both simulators.
"""

import cocotb

from iogate.hdl import Config, bits
from iogate.hdl.formats import IOTINVAL, IosatpMode, Opcode
from iogate.hdl.regs import CQCSR, IPSR, Offset

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import CommandIllegal

from iogate.cosim.scenarios.session import open_session, request

KiB = 1 << 10
CONFIG = Config()


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


def _driver(bus, *, cq_entries=16, fq_entries=16):
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 16 << 20), cq_entries=cq_entries,
                fq_entries=fq_entries, interrupts=True)
    drv.init(device_id_bits=7)
    return drv


@cocotb.test()
async def map_translate_unmap_leaves_nothing_stale(dut):
    """After unmap + IOTINVAL.VMA + IOFENCE.C, no request reaches the old pages, even
    those the IOTLB held (seed problem 2); the faults land in the fault queue."""
    s = await open_session(dut, CONFIG)

    def setup(bus):
        drv = _driver(bus, fq_entries=32)     # room for all 16 records (capacity N-1)
        table = drv.page_table(IosatpMode.SV39)
        drv.set_first_stage(5, table, pscid=3)
        drv.map(table, 0x1000_0000, 0x2_0000_0000, 64 * KiB, r=True, w=True, pscid=3)
        return drv, table

    drv, table = await s.run(setup, s.bus)
    pages = [request(5, 0x1000_0000 + i * 0x1000 + 8, "read") for i in range(16)]
    await s.translate_all(pages * 2)
    assert s.scoreboard.hits >= 16
    await s.run(lambda: drv.unmap(table, 0x1000_0000, 64 * KiB, pscid=3))
    await s.translate_all(pages)
    assert s.scoreboard.faults[13] == 16
    records = await s.check_fault_records()
    assert [int(r.cause) for r in records] == [13] * 16
    assert_clean(s)


@cocotb.test()
async def command_queue_wraps_around(dut):
    """Many small map/unmap rounds through a 4-entry command queue (spec "Command-Queue (CQ)"
    head/tail)."""
    s = await open_session(dut, CONFIG)

    def rounds(bus):
        drv = _driver(bus, cq_entries=4)
        table = drv.page_table(IosatpMode.SV39)
        drv.set_first_stage(9, table, pscid=1)
        for i in range(12):
            drv.map(table, 0x4000_0000, 0x3_0000_0000 + i * 0x1000, 4 * KiB, r=True, pscid=1)
            drv.unmap(table, 0x4000_0000, 4 * KiB, pscid=1)
        drv.map(table, 0x4000_0000, 0x3_0000_7000, 4 * KiB, r=True, pscid=1)
        return drv

    await s.run(rounds, s.bus)
    await s.translate_all([request(9, 0x4000_0123, "read")] * 3)
    assert s.scoreboard.faults == {}
    await s.bus.aread(Offset.CQH, 4)
    await s.bus.aread(Offset.CQT, 4)
    assert_clean(s)


@cocotb.test()
async def illegal_command_stops_the_queue_at_it(dut):
    """A reserved opcode and PSCV=1 with IOTINVAL.GVMA give cmd_ill with cqh left at the
    command (spec "Command-Queue (CQ)", "Command-queue CSR (cqcsr)"); cip follows cie; the driver
    recovers."""
    s = await open_session(dut, CONFIG)
    bad = [bits.pack(bits_layout, **fields) for bits_layout, fields in (
        (IOTINVAL, dict(opcode=5)),                                  # reserved opcode
        (IOTINVAL, dict(opcode=Opcode.IOTINVAL, func3=1, pscv=1)),    # PSCV with GVMA
        (IOTINVAL, dict(opcode=Opcode.ATS)),                          # ATS not offered
    )]

    def provoke(bus, command):
        drv = _driver(bus)
        drv.cq.submit(command)
        try:
            drv.cq.fence()
        except CommandIllegal:
            pass
        else:
            raise AssertionError("the fence completed past an illegal command")
        return drv

    for command in bad:
        drv = await s.run(provoke, s.bus, command)
        csr = await s.bus.aread(Offset.CQCSR, 4)
        assert bits.get(CQCSR, csr, "cmd_ill")
        assert bits.get(IPSR, await s.bus.aread(Offset.IPSR, 4), "cip")
        await s.bus.aread(Offset.CQH, 4)
        await s.run(drv.cq.recover)
    assert_clean(s)


@cocotb.test()
async def fault_queue_overflow_and_dtf(dut):
    """A 4-entry fault queue holds 3 records; the next sets fqof and later ones are
    dropped until it is cleared (spec "Fault/Event-Queue (FQ)"); DTF=1 suppresses page faults but
    not 258."""
    s = await open_session(dut, CONFIG)

    def setup(bus):
        drv = _driver(bus, fq_entries=4)
        table = drv.page_table(IosatpMode.SV39)
        drv.set_first_stage(7, table, pscid=2, dtf=True)
        return drv

    drv = await s.run(setup, s.bus)
    await s.translate_all([request(7, 0x5000 + i * 0x1000, "write") for i in range(4)])
    assert await s.check_fault_records() == []          # DTF: page faults not recorded
    await s.translate_all([request(0x30 + i, 0x1000, "read") for i in range(6)])
    records = await s.check_fault_records()
    assert len(records) == 3 and all(int(r.cause) == 258 for r in records)
    await s.bus.aread(Offset.FQCSR, 4)
    drained = await s.run(drv.drain_faults)
    assert drained.overflow
    assert_clean(s)
