"""Directed cocotb tests of what the random regression reaches rarely or not at all: DDT
load access faults (cause 257) on SLVERR and DECERR, bus errors in page-table walks of
either stage, ddtp switched Off and back (cause 256), command- and fault-queue memory faults
(cqmf, fqmf), IOFENCE.C with WSI, every IOTINVAL operand combination and IODIR.INVAL_DDT,
with the wired interrupt lines checked by the test bench's InterruptMonitor. Every answer,
register read and fault record is checked against the model. Built and run by
tests/rtl/test_rtl_directed.py on Verilator and Icarus (the full first-target build).
"""

import cocotb

from iogate.hdl import Config, bits
from iogate.hdl.formats import IohgatpMode, IosatpMode
from iogate.hdl.regs import CQCSR, DDTP, FQCSR, IPSR, IommuMode, Offset

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import CommandMemoryFault

from iogate.cosim.model.memory import AccessFault
from iogate.cosim.scenarios.session import open_session, request

FULL = Config.full()
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


def _driver(bus, *, device_id_bits=24, **kwargs):
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 16 * MiB), interrupts=True, **kwargs)
    drv.init(device_id_bits=device_id_bits)
    return drv


async def _lines_agree(s, what):
    assert await s.tb.interrupts.check(s.model, what=what), s.tb.interrupts.mismatches


@cocotb.test()
async def ddt_load_access_faults_on_slverr_and_decerr(dut):
    """Spec "Process to locate the Device-context": a bus error reading a DC or a directory page is
    cause 257, whether the slave answers SLVERR or DECERR; other devices are untouched."""
    s = await open_session(dut, FULL)
    # 3LVL; A and B share no directory page with each other or with C.
    a, b, c = 0x01_0005, 0x02_0106, 0x03_0207

    def setup(bus):
        drv = _driver(bus)
        for did in (a, b, c):
            drv.set_bypass(did)
        return drv

    drv = await s.run(setup, s.bus)
    s.tb.target.inject_fault(drv.ddt.dc_address(a), 32, "SLVERR")          # A's DC
    s.tb.target.inject_fault(drv.ddt.dc_address(b) & ~0xFFF, 4096, "DECERR")  # B's DC page
    await s.translate_all([request(d, 0x1234_5000, acc) for d in (a, b, c)
                           for acc in ("read", "write", "execute")])
    assert s.scoreboard.faults[257] == 6 and s.scoreboard.translations == 9
    assert s.tb.target.responses["SLVERR"] >= 1 and s.tb.target.responses["DECERR"] >= 1
    records = await s.check_fault_records()
    assert sorted(r.did for r in records) == [a] * 3 + [b] * 3
    await _lines_agree(s, "after the 257 records")
    assert s.tb.interrupts.raised                     # fip, on the line icvec.fiv names
    assert_clean(s)


@cocotb.test()
async def page_table_bus_errors_are_access_faults(dut):
    """A bus error reading a PTE is an access fault of the request's type (1, 5, 7), in
    the first stage, in a nested first-stage read through the G-stage, and in the G-stage."""
    s = await open_session(dut, FULL, mem_latency=1)

    def setup(bus):
        drv = _driver(bus)
        t = drv.page_table(IosatpMode.SV48)
        drv.set_first_stage(0x10, t, pscid=1)
        drv.map(t, 0x4000_0000, 0x1_0000_0000, 2 * MiB, r=True, w=True, x=True, pscid=1)
        g = drv.page_table(IohgatpMode.SV39X4)
        drv.set_second_stage(0x20, g, gscid=2)
        drv.map(g, 0x8000_0000, 0x2_0000_0000, 4 * KiB, r=True, w=True, x=True, gscid=2)
        return drv, t, g

    drv, t, g = await s.run(setup, s.bus)
    s.tb.target.inject_fault(t.root, 4096, "DECERR")
    s.tb.target.inject_fault(g.root, 16 * KiB, "SLVERR")
    await s.translate_all([request(d, iova, acc) for d, iova in ((0x10, 0x4000_0008),
                                                                 (0x20, 0x8000_0010))
                           for acc in ("read", "write", "execute")])
    assert {k: s.scoreboard.faults[k] for k in (1, 5, 7)} == {1: 2, 5: 2, 7: 2}
    await s.check_fault_records()
    await _lines_agree(s, "after the access faults")
    assert_clean(s)


@cocotb.test()
async def ddtp_off_and_back(dut):
    """Spec "Device-directory-table pointer (ddtp)": with iommu_mode Off every request is cause 256;
    back in 3LVL (through Off) the tables answer again."""
    s = await open_session(dut, FULL)

    def setup(bus):
        drv = _driver(bus)
        t = drv.page_table(IosatpMode.SV39)
        drv.set_first_stage(0x33, t, pscid=4)
        drv.map(t, 0x10_0000, 0x5_0000_0000, 64 * KiB, r=True, pscid=4)
        return drv

    await s.run(setup, s.bus)
    ddtp = await s.bus.aread(Offset.DDTP, 8)
    pages = [request(0x33, 0x10_0000 + i * 0x1000, "read") for i in range(16)]
    await s.translate_all(pages)                      # warm the caches
    assert sum(s.scoreboard.faults.values()) == 0
    await s.bus.awrite(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.OFF))
    await s.bus.aread(Offset.DDTP, 8)
    await s.translate_all(pages)
    assert s.scoreboard.faults[256] == 16             # even for what the IOTLB holds
    await s.bus.awrite(Offset.DDTP, 8, ddtp)
    await s.bus.aread(Offset.DDTP, 8)
    await s.translate_all(pages)
    assert s.scoreboard.faults[256] == 16 and s.scoreboard.translations == 48
    await s.check_fault_records()
    assert_clean(s)


@cocotb.test()
async def command_queue_memory_faults(dut):
    """cqmf (spec "Command-queue CSR (cqcsr)"): a fetch of a command from a faulting page, and an
    IOFENCE.C whose AV store faults; cip rises with cie and drives the line icvec.civ names (spec
    "Interrupt pending status register (ipsr)")."""
    s = await open_session(dut, FULL)
    drv = await s.run(_driver, s.bus)
    civ = drv.vectors["civ"]
    for how in ("fetch", "fence store"):
        if how == "fetch":
            # The command is stored, then its slot stops answering, then cqt is written:
            # the IOMMU's fetch is the first access to fail.
            store = s.bus.mem_write

            def mem_write(address, data, store=store):
                store(address, data)
                if drv.cq.base <= address < drv.cq.base + drv.cq.entries * 16:
                    s.tb.target.inject_fault(address, len(data), "DECERR")
            s.bus.mem_write = mem_write
            cmd = None
        else:
            bad = drv.alloc.alloc(4096)
            s.tb.target.inject_fault(bad, 4096, "SLVERR")
            cmd = commands.iofence_c(addr=bad, data=7)

        def provoke(cmd=cmd):
            if cmd is not None:
                drv.cq.submit(cmd)
            try:
                drv.cq.fence()
            except (CommandMemoryFault, AccessFault):
                return True          # (AccessFault: the driver's own look at the slot)
            return False

        assert await s.run(provoke), how
        if how == "fetch":
            del s.bus.mem_write
        assert bits.get(CQCSR, await s.bus.aread(Offset.CQCSR, 4), "cqmf")
        assert bits.get(IPSR, await s.bus.aread(Offset.IPSR, 4), "cip")
        await _lines_agree(s, f"cqmf on {how}")
        assert s.tb.interrupts.lines >> civ & 1
        s.memory.clear_faults()
        await s.run(drv.cq.recover)
        await s.bus.awrite(Offset.IPSR, 4, bits.pack(IPSR, cip=1))
        await _lines_agree(s, "after clearing cip")
        await s.run(drv.fence)
    assert_clean(s)


@cocotb.test()
async def fault_queue_memory_fault(dut):
    """fqmf (spec "Fault queue CSR (fqcsr)"): a fault record store that faults sets fqmf and fip;
    records are dropped until software clears fqmf."""
    s = await open_session(dut, FULL)
    drv = await s.run(_driver, s.bus)
    s.tb.target.inject_fault(drv.fq.base, drv.fq.entries * 32, "DECERR")
    await s.translate_all([request(0x4242, 0x1000, "read")] * 3)    # 258, never written
    assert s.scoreboard.faults[258] == 3
    assert bits.get(FQCSR, await s.bus.aread(Offset.FQCSR, 4), "fqmf")
    await s.bus.aread(Offset.IPSR, 4)
    await _lines_agree(s, "after fqmf")
    assert s.tb.interrupts.lines >> drv.vectors["fiv"] & 1
    s.memory.clear_faults()
    drained = await s.run(drv.drain_faults)
    assert drained.memory_fault and not drained.records
    await s.translate_all([request(0x4242, 0x1000, "write")])
    assert len(await s.check_fault_records()) == 1
    assert_clean(s)


@cocotb.test()
async def every_command_and_operand(dut):
    """IOTINVAL.VMA (every PSCV/GV/AV combination), IOTINVAL.GVMA (GV/AV), IODIR.INVAL_DDT
    (DV 0/1), IOFENCE.C with AV and with WSI (fence_w_ip, cip, the civ line). After each
    invalidation of a changed table, only the new answer is allowed."""
    s = await open_session(dut, FULL)

    def setup(bus):
        drv = _driver(bus)
        g = drv.page_table(IohgatpMode.SV48X4)
        drv.map(g, 0, 0x40_0000_0000, 1 * GiB, r=True, w=True, x=True, gscid=6)
        t = drv.page_table(IosatpMode.SV39)
        drv.set_first_stage(0x50, t, pscid=8)
        drv.set_second_stage(0x60, g, gscid=6)
        drv.map(t, 0x7000, 0x9_0000_7000, 4 * KiB, r=True, pscid=8)
        return drv, t, g

    drv, t, g = await s.run(setup, s.bus)
    probes = [request(0x50, 0x7010, "read"), request(0x60, 0x2000_0010, "read")]
    vma = [dict(), dict(pscid=8), dict(addr=0x7000), dict(pscid=8, addr=0x7000),
           dict(gscid=6), dict(gscid=6, pscid=8), dict(gscid=6, addr=0x7000),
           dict(gscid=6, pscid=8, addr=0x7000)]
    gvma = [dict(), dict(gscid=6), dict(gscid=6, addr=0x2000_0000)]
    ddt = [dict(), dict(did=0x50), dict(did=0x60)]
    cmds = ([commands.iotinval_vma(**k) for k in vma]
            + [commands.iotinval_gvma(**k) for k in gvma]
            + [commands.iodir_inval_ddt(**k) for k in ddt])
    for i, cmd in enumerate(cmds):
        await s.translate_all(probes)
        # Change both tables without invalidating, then the command under test.
        t.map(0x7000, 0x9_0000_7000 + (i + 1) * 0x1000, 4 * KiB, r=True)
        await s.run(lambda cmd=cmd: drv.run([cmd]))
        await s.run(lambda i=i: drv.sync(t, t.map(0x7000, 0x9_1000_0000 + i * 0x1000, 4 * KiB,
                                                      r=True), pscid=8))
        await s.translate_all(probes)
    # IOFENCE.C with WSI: fence_w_ip, then cip on the civ line (spec "IOMMU Command-queue
    # Fence commands", "Command-queue CSR (cqcsr)").
    await s.run(lambda: drv.cq.submit(commands.iofence_c(wsi=True)))
    await s.run(drv.fence)
    csr = await s.bus.aread(Offset.CQCSR, 4)
    assert bits.get(CQCSR, csr, "fence_w_ip")
    await _lines_agree(s, "after IOFENCE.C WSI=1")
    assert s.tb.interrupts.lines >> drv.vectors["civ"] & 1
    await s.bus.awrite(Offset.CQCSR, 4, csr)                   # RW1C fence_w_ip
    await s.bus.awrite(Offset.IPSR, 4, bits.pack(IPSR, cip=1))
    await _lines_agree(s, "after clearing fence_w_ip and cip")
    assert not s.tb.interrupts.lines
    assert s.scoreboard.translations == 2 * 2 * len(cmds)
    assert_clean(s)


@cocotb.test()
async def every_fault_of_a_pipelined_burst_is_recorded(dut):
    """Spec "Fault/Event-Queue (FQ)": each faulting request leaves one record. Page-table walks that
    fault (a miss) interleaved with requests that fault without a walk (device_id beyond 1LVL,
    cause 260) and IOTLB hits, back to back: fqt must count them all."""
    s = await open_session(dut, FULL)

    def setup(bus):
        drv = _driver(bus, device_id_bits=7, fq_entries=1024)
        t = drv.page_table(IosatpMode.SV39)
        drv.set_first_stage(0x21, t, pscid=1)
        drv.map(t, 0x40_0000, 0x3_0000_0000, 2 * MiB, r=True, pscid=1)
        return drv

    await s.run(setup, s.bus)
    burst = []
    for i in range(64):
        burst += [request(0x21, 0x4000_0000 + i * 0x1000, "read"),       # walk, 13
                  request(0x200 + i, 0x1000, "write"),                   # 260 at once
                  request(0x21, 0x40_0000 + i * 8, "write")]             # hit or walk, 15
    await s.translate_all(burst)
    assert sum(s.scoreboard.faults.values()) == 3 * 64
    fqt = await s.bus.aread(Offset.FQT, 4)
    assert fqt == 3 * 64, f"fqt {fqt}: {3 * 64 - fqt} fault records lost"
    await s.check_fault_records()
    assert_clean(s)
