"""cocotb tests of process contexts on the RTL (Config.full() with PD8/PD17/PD20), built and
run by tests/rtl/test_rtl_pdt.py on both simulators.

The PDTs and page tables are built by the driver (``iogate.firmware``) in the test bench's
memory. Every answer and fault record is checked against what the spec says (reference N.1.2-
N.1.6), computed here from the driver's own tables (``PageTable.lookup``), not from the RTL:

* a PID wider than pdtp.MODE indexes: 260; a PASID on a PDTV=0 device: 260;
* no PASID: process_id 0 as User with DPE=1, first stage Bare with DPE=0 (fault record pv=0);
* a PC not valid (or a PDTE on its path): 266; a reserved bit in a PC: 267; a PDT page that
  answers with a bus error: 265;
* supervisor with ENS=0: 260; with ENS=1 a U=1 page (the driver maps every page U=1) is
  reached only with SUM and without execute, else a page fault;
* an IODIR.INVAL_PDT after a PC change makes the new PC visible;
* a guest's PDT and page tables in guest memory (iohgatp Sv48x4): every PDT entry is read
  through the second stage; a PDT page the second stage does not map is the original access's
  guest-page fault (20/21/23) with iotval2 = the entry's GPA | 1 (implicit).

The architectural model (cosim/model) gains process contexts in parallel; until it has them
these checks are the spec's, written out below.
"""

import os
import random
from collections import Counter

import cocotb
from cocotb.triggers import ClockCycles

from iogate.hdl import Config, bits
from iogate.hdl.formats import PDTE, IohgatpMode, IosatpMode, PdtpMode
from iogate.hdl.port import Access

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.model.memory import Memory
from iogate.cosim.targets.tb.bus import TestbenchBus
from iogate.cosim.targets.tb.testbench import Testbench

PDT = Config.process()   # the process-context build the RTL tests share
SEED = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))
MiB = 1 << 20
PAGE_FAULT = {Access.READ: 13, Access.WRITE: 15, Access.EXECUTE: 12}
GUEST_PAGE_FAULT = {Access.READ: 21, Access.WRITE: 23, Access.EXECUTE: 20}
GUEST_RAM_SPA, GiB = 0x80_0000_0000, 1 << 30

# One device per PDT mode, over the three DDT levels; PLAIN has no process directory.
PD8_DEV, PD17_DEV, PD20_DEV, PLAIN_DEV = 0x01_0203, 0x04_0506, 0x07_0809, 0x0A_0B0C
GUEST_DEV = 0x0D_0E0F     # a guest's PD17 directory (DPE=1) behind a Sv48x4 second stage
# (device, mode bits, DPE) and the PIDs each gets: pid -> (ens, sum) of an attached process.
DEVICES = {PD8_DEV: (8, True), PD17_DEV: (17, False), PD20_DEV: (20, True),
           GUEST_DEV: (17, True)}
PROCESSES = {
    PD8_DEV: {0: (False, False), 0x5A: (True, False), 0xFF: (True, True)},
    PD17_DEV: {0x1_2345: (True, True), 0x80: (False, False)},
    PD20_DEV: {0xA_BCDE: (True, False), 0: (True, True), 0xF_FFFF: (False, False)},
    GUEST_DEV: {0: (False, False), 0x1_0042: (True, True)},
}
GUEST_HOLE_PID = 0x0_7700   # its PDTE points at a GPA the second stage does not map
IOVAS = (0x4000_0000, 0x7F_FFE0_0000, 0x1240_0000)   # 2 MiB aligned


class World:
    """The devices, their processes' tables and the damaged entries; ``expect`` is the spec."""

    def __init__(self, drv):
        self.drv = drv
        self.tables = {}          # (device, pid) -> (PageTable, ens, sum)
        self.damaged = {}         # (device, pid) -> cause
        self.dpe = {}
        self.bits = {}
        self.hole = None          # (device, pid) -> GPA of its PC, outside guest RAM

    def build(self, rng):
        drv = self.drv
        # The guest: GPA [0, 1 GiB) is SPA GUEST_RAM_SPA on; its tables are in its memory.
        second = drv.page_table(IohgatpMode.SV48X4)
        drv.map(second, 0, GUEST_RAM_SPA, 1 * GiB, r=True, w=True, x=True, gscid=6)
        guest = GuestMemory(drv.bus, second)
        galloc = PageAllocator(guest, 512 * MiB, 64 * MiB)
        for dev, (pid_bits, dpe) in DEVICES.items():
            if dev == GUEST_DEV:
                pdt = drv.process_directory(pid_bits, bus=guest, alloc=galloc)
                drv.set_process_directory(dev, pdt, dpe=dpe, second=second, gscid=6)
            else:
                pdt = drv.process_directory(pid_bits)
                drv.set_process_directory(dev, pdt, dpe=dpe)
            assert pdt.mode.pid_bits == pid_bits
            self.dpe[dev], self.bits[dev] = dpe, pid_bits
            for pid, (ens, sum_) in PROCESSES[dev].items():
                table = (PageTable(guest, galloc, IosatpMode.SV48) if dev == GUEST_DEV
                         else drv.page_table(IosatpMode.SV48))
                pscid = rng.randrange(1, 1 << 20)
                top = 1 << 9 if dev == GUEST_DEV else 1 << 20   # guest RAM: 512 x 2 MiB
                for iova in IOVAS:
                    drv.map(table, iova, rng.randrange(1, top) << 21, 2 * MiB,
                            r=True, w=rng.random() < 0.7, x=rng.random() < 0.5, pscid=pscid,
                            gscid=6 if dev == GUEST_DEV else None)
                drv.attach_process(dev, pid, table, pscid=pscid, ens=ens, sum=sum_)
                self.tables[(dev, pid)] = (table, ens, sum_)
        # Damaged entries: a PC with a reserved bit (267), one in a page that answers with a
        # bus error (265); a PID never attached is 266 (its PC or a PDTE on its path V=0).
        pdt17 = drv._device_pdt(PD17_DEV)
        address = pdt17.pc_address(0x80)
        ta = int.from_bytes(drv.bus.mem_read(address, 8), "little")
        drv.bus.mem_write(address, (ta | 1 << 40).to_bytes(8, "little"))
        self.damaged[(PD17_DEV, 0x80)] = 267
        del self.tables[(PD17_DEV, 0x80)]
        self.faulty_pc = (drv._device_pdt(PD20_DEV).pc_address(0xF_FFFF), (PD20_DEV, 0xF_FFFF))
        self.damaged[self.faulty_pc[1]] = 265
        del self.tables[self.faulty_pc[1]]
        # A guest PDTE whose next level is at GPA 2 GiB, which the second stage does not map.
        gpdt = drv._device_pdt(GUEST_DEV)
        entry = gpdt.root + PdtpMode.pdi(GUEST_HOLE_PID, 1) * 8
        guest.mem_write(entry, bits.pack(PDTE, v=1, ppn=(2 * GiB) >> 12).to_bytes(8, "little"))
        self.hole = (GUEST_DEV, GUEST_HOLE_PID), 2 * GiB + PdtpMode.pdi(GUEST_HOLE_PID, 0) * 16
        # The plain device: first stage only, no PDTV.
        table = drv.page_table(IosatpMode.SV48)
        drv.set_first_stage(PLAIN_DEV, table, pscid=3)
        drv.map(table, IOVAS[0], 0x40_0000, 2 * MiB, r=True, pscid=3)

    def expect(self, dev, iova, access, pid, priv):
        """(cause, None, iotval2) or (None, pa, 0) by the spec."""
        cause, pa = self._expect(dev, iova, access, pid, priv)
        iotval2 = 0
        if cause in GUEST_PAGE_FAULT.values():
            iotval2 = self.hole[1] | 1
        return cause, pa, iotval2

    def _expect(self, dev, iova, access, pid, priv):
        if dev == PLAIN_DEV:
            return (260, None) if pid is not None else (None, None)   # not checked further
        if pid is not None and pid >> self.bits[dev]:
            return 260, None
        eff = pid if pid is not None else (0 if self.dpe[dev] else None)
        if eff is None:
            return None, iova                     # first stage Bare: the identity
        if (dev, eff) == self.hole[0]:
            return GUEST_PAGE_FAULT[access], None
        if (dev, eff) in self.damaged:
            return self.damaged[(dev, eff)], None
        if (dev, eff) not in self.tables:
            return 266, None
        table, ens, sum_ = self.tables[(dev, eff)]
        priv = priv and pid is not None           # after DPE the request is User
        if priv and not ens:
            return 260, None
        t = table.lookup(iova)
        granted = t is not None and {Access.READ: t.r, Access.WRITE: t.w,
                                     Access.EXECUTE: t.x}[access]
        if not granted or (priv and (access is Access.EXECUTE or not sum_)):
            return PAGE_FAULT[access], None
        # The guest's first stage gives a GPA in guest RAM, which the second stage maps rwx.
        return None, t.pa + (GUEST_RAM_SPA if dev == GUEST_DEV else 0)

    def request(self, rng):
        dev = rng.choice(list(DEVICES) + [PLAIN_DEV] * (rng.random() < 0.1))
        access = rng.choice(list(Access))
        iova = rng.choice(IOVAS) + rng.randrange(4 * MiB) // 8 * 8
        pid, priv = None, False
        if dev != PLAIN_DEV or rng.random() < 0.5:
            r = rng.random()
            if r < 0.6:
                known = [p for d, p in list(self.tables) + list(self.damaged) + [self.hole[0]]
                         if d == dev]
                pid = rng.choice(known or [1])
            elif r < 0.8:
                pid = rng.randrange(1 << 20)      # often too wide, or never attached
            priv = pid is not None and rng.random() < 0.4
        if dev == PLAIN_DEV and pid is None:
            return None
        return TranslationRequest(dev, iova, access, process_id=pid, priv=priv)


async def start(dut, latency=1):
    memory = Memory()
    tb = Testbench(dut, PDT, memory, mem_latency=latency)
    await tb.start()
    bus = TestbenchBus(tb)
    return tb, bus


def check(world, req, resp, faults):
    cause, pa, iotval2 = world.expect(req.device_id, req.iova, req.access, req.process_id,
                                      req.priv)
    got = (resp.cause if resp.fault else None, None if resp.fault else resp.pa)
    assert got == (cause, pa), f"{req}: rtl {got}, spec {(cause, pa)}"
    if cause is not None:
        faults.append((req, cause, iotval2))


@cocotb.test()
async def process_contexts_follow_the_spec(dut):
    rng = random.Random(SEED)
    dut._log.info(f"seed {SEED}")
    tb, bus = await start(dut)
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=1024)
    world = World(drv)

    def program():
        drv.init(device_id_bits=24)
        world.build(rng)
    await cocotb.task.bridge(program)()
    tb.target.inject_fault(world.faulty_pc[0], 16)

    faults = []
    reqs = [r for r in (world.request(rng) for _ in range(700)) if r is not None]
    for batch in range(0, len(reqs), 16):
        chunk = reqs[batch:batch + 16]
        events = [await tb.ports[0].submit(r) for r in chunk]
        for req, event in zip(chunk, events, strict=True):
            await event.wait()
            check(world, req, event.response, faults)
    causes = {cause for _, cause, _ in faults}
    assert {260, 265, 266, 267} <= causes and causes & {12, 13, 15} and causes & {20, 21, 23}, \
        causes

    # Fault records (spec "Fault/Event-Queue (FQ)"): one per fault, the request's original
    # PV/PID/PRIV (PV=0 after a DPE substitution), iotval the IOVA, iotval2 0.
    await ClockCycles(dut.clk, 200)          # the last records reach memory
    drain = await cocotb.task.bridge(drv.drain_faults)()
    records = list(drain)
    wanted = [(c, r.device_id, r.process_id is not None, r.process_id or 0,
               bool(r.priv), r.iova, iotval2) for r, c, iotval2 in faults]
    got = [(int(x.cause), x.did, x.pv, x.pid, x.priv, x.iotval, x.iotval2) for x in records]
    # Answers (and records) of different requests may leave out of order: hit-under-miss.
    missing, extra = Counter(wanted) - Counter(got), Counter(got) - Counter(wanted)
    assert not drain.overflow and not missing and not extra, (missing, extra)

    # A PC change: the old one may be cached; after the driver's IODIR.INVAL_PDT (+
    # IOTINVAL.VMA) the new table is used.
    dev, pid = PD8_DEV, 0x5A
    table = drv.page_table(IosatpMode.SV48)
    pa = 0x77 << 21

    def remap():
        drv.map(table, IOVAS[0], pa, 2 * MiB, r=True, pscid=0x999)
        drv.attach_process(dev, pid, table, pscid=0x999, ens=True, sum=False)
    await cocotb.task.bridge(remap)()
    world.tables[(dev, pid)] = (table, True, False)
    resp = await tb.ports[0].translate(TranslationRequest(dev, IOVAS[0] + 0x123, Access.READ,
                                                          process_id=pid))
    assert (resp.fault, resp.pa) == (False, pa + 0x123)


@cocotb.test()
async def pdt_walk_cycles(dut):
    """PDT walk cycles per mode at the test bench's memory latency: the latency of a request
    whose PC is not cached minus that of the same request once its PC is cached but its page
    is not (both walk the same Sv48 page table, the DC is cached)."""
    latency = int(os.environ.get("PDT_MEM_LATENCY", "1"))
    tb, bus = await start(dut, latency)
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=64)
    world = World(drv)

    def program():
        drv.init(device_id_bits=24)
        world.build(random.Random(SEED))
    await cocotb.task.bridge(program)()
    results = {}
    for dev, pid in ((PD8_DEV, 0xFF), (PD17_DEV, 0x1_2345), (PD20_DEV, 0xA_BCDE),
                     (GUEST_DEV, 0x1_0042)):
        port = tb.ports[0]
        # The DC, through another PID of the device (DPE=0 for PD17: no PASID is Bare).
        await port.translate(TranslationRequest(dev, IOVAS[0], Access.READ, process_id=0x1))
        cold = await port.translate(TranslationRequest(dev, IOVAS[1], Access.READ,
                                                       process_id=pid))
        warm = await port.translate(TranslationRequest(dev, IOVAS[2], Access.READ,
                                                       process_id=pid))
        assert not cold.fault and not warm.fault and not cold.hit and not warm.hit
        name = f"PD{DEVICES[dev][0]}" + (" in guest memory (Sv48x4)" if dev == GUEST_DEV
                                         else "")
        results[name] = cold.cycles - warm.cycles
    text = ", ".join(f"{name}: {cycles}" for name, cycles in results.items())
    dut._log.info(f"PDT walk cycles at memory latency {latency}: {text}")
    # Each level reads one doubleword (the PC two): more levels, more cycles.
    assert 0 < results["PD8"] < results["PD17"] < results["PD20"]
    assert results["PD17 in guest memory (Sv48x4)"] > results["PD17"]


@cocotb.test()
async def process_contexts_agree_with_the_model(dut):
    """The same world through the mirrored bus: every answer checked by the scoreboard
    against the architectural model (cosim/model, written from the spec), and the fault
    records compared with the model's."""
    from iogate.cosim.scenarios.session import open_session

    rng = random.Random(SEED + 1)
    s = await open_session(dut, PDT, mem_latency=1)
    drv = Iommu(s.bus, PageAllocator(s.bus, 0x8000_0000, 64 * MiB), fq_entries=1024)
    world = World(drv)

    def program():
        drv.init(device_id_bits=24)
        world.build(rng)
    await s.run(program)
    s.tb.target.inject_fault(world.faulty_pc[0], 16)
    reqs = [r for r in (world.request(rng) for _ in range(500)) if r is not None]
    await s.translate_all(reqs)
    await ClockCycles(dut.clk, 200)
    await s.check_fault_records()
    assert not s.mismatches, "\n".join(s.mismatches[:10])
    assert s.scoreboard.faults.keys() & {260, 265, 266, 267}
