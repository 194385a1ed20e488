"""cocotb tests of the iogate top (the foundation slice), every answer checked against the
architectural model. Built and run by tests/rtl/test_rtl_foundation.py on both simulators.
"""

import itertools
import os
import random

import cocotb

from iogate.hdl import Config, bits
from iogate.hdl.port import Access
from iogate.hdl.regs import DDTP, REGISTER_SIZE, IommuMode, Offset

from iogate.cosim.scenarios.foundation import program, random_requests, set_mode
from iogate.cosim.scenarios.session import open_session, request

SEED = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


@cocotb.test()
async def reset_values_and_read_only_registers(dut):
    """Every decoded register reads as the model says after reset, at 4 and 8 bytes."""
    s = await open_session(dut, Config())
    for offset in (Offset.CAPABILITIES, Offset.FCTL, Offset.DDTP, Offset.TR_REQ_IOVA,
                   Offset.TR_REQ_CTL, Offset.TR_RESPONSE, Offset.CQCSR, Offset.IPSR):
        await s.bus.aread(offset, REGISTER_SIZE[offset])
        await s.bus.aread(offset, 4)
    # capabilities is read-only: writes change nothing.
    await s.bus.awrite(Offset.CAPABILITIES, 8, 0)
    caps = await s.bus.aread(Offset.CAPABILITIES, 8)
    assert caps == Config().capabilities
    assert_clean(s)


@cocotb.test()
async def ddtp_mode_is_warl(dut):
    """ddtp resets to Off; modes the Config does not offer do not stick (spec
    "Device-directory-table pointer (ddtp)")."""
    s = await open_session(dut, Config())
    assert bits.get(DDTP, await s.bus.aread(Offset.DDTP, 8), "iommu_mode") == IommuMode.OFF
    for mode in (IommuMode.BARE, IommuMode.LVL2, 1, IommuMode.LVL3, 5, 13, 14, 15,
                 IommuMode.OFF, IommuMode.LVL1, IommuMode.OFF):
        await s.bus.awrite(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=int(mode), ppn=0x12345))
        await s.bus.aread(Offset.DDTP, 8)
        await s.bus.aread(Offset.DDTP + 4, 4)
    # A 4-byte write of the low half leaves the high half (PPN bits 53:32) alone.
    await s.bus.awrite(Offset.DDTP + 4, 4, 0xABC)
    await s.bus.awrite(Offset.DDTP, 4, int(IommuMode.BARE))
    await s.bus.aread(Offset.DDTP, 8)
    assert_clean(s)


@cocotb.test()
async def off_then_bare(dut):
    """Off refuses everything (cause 256); Bare passes every access untranslated."""
    rng = random.Random(SEED)
    s = await open_session(dut, Config())
    await s.translate_all([request(rng.randrange(1 << 24), rng.randrange(1 << 56), a)
                           for a in Access for _ in range(4)])
    assert s.scoreboard.faults[256] == 12
    await s.run(set_mode, s.bus, IommuMode.BARE)
    await s.translate_all([request(rng.randrange(1 << 24), rng.randrange(1 << 56), a)
                           for a in Access for _ in range(4)])
    assert s.scoreboard.translations == 24 and sum(s.scoreboard.faults.values()) == 12
    assert_clean(s)


def _pauses(rng, ratio):
    return lambda: (rng.random() < ratio for _ in itertools.count())


async def _workload(dut, *, n, mem_latency, pause):
    rng = random.Random(SEED)
    s = await open_session(dut, Config(), mem_latency=mem_latency)
    if pause:
        s.tb.set_port_pauses(req=_pauses(rng, pause), resp=_pauses(rng, pause))
    layout = await s.run(program, s.bus, s.memory)
    await s.run(set_mode, s.bus, IommuMode.LVL1, layout.ddt_root)
    # Every directed fault case once, then a seeded random stream.
    await s.translate_all([request(did, iova, a) for did, iova, a, _ in layout.faulting])
    await s.translate_all([request(*r) for r in random_requests(layout, rng, n)])
    dut._log.info("seed %d: %s", SEED, s.scoreboard.summary())
    assert_clean(s)
    # The workload provokes every cause of the slice (spec "Fault/Event-Queue (FQ)"): mapped pages
    # must succeed and each faulting device must have produced its cause.
    assert set(s.scoreboard.faults) >= {1, 5, 7, 12, 13, 15, 258, 259, 260}
    assert s.scoreboard.hits > 0 and s.scoreboard.misses > 0
    return s


@cocotb.test()
async def mapped_unmapped_and_read_only_pages(dut):
    """The foundation workload: two Sv39 devices, bypass and every faulting device."""
    await _workload(dut, n=600, mem_latency=0, pause=0)


@cocotb.test()
async def back_pressure_and_slow_memory(dut):
    """The same under random request/response pauses and a 5-cycle memory."""
    await _workload(dut, n=300, mem_latency=5, pause=0.3)


@cocotb.test()
async def debug_translation_interface(dut):
    """tr_req_iova/tr_req_ctl/tr_response agree with the model for successes and faults."""
    rng = random.Random(SEED)
    s = await open_session(dut, Config())
    layout = await s.run(program, s.bus, s.memory)
    await s.run(set_mode, s.bus, IommuMode.LVL1, layout.ddt_root)
    cases = [(did, iova, a) for did, iova, a, _ in layout.faulting[::3]]
    cases += list(random_requests(layout, rng, 24, fault_ratio=0))
    faults = 0
    for did, iova, access in cases:
        r = await s.debug_translate(request(did, iova, access))
        faults += r["fault"]
    assert s.debug_translations == len(cases)
    assert 0 < faults < len(cases)
    assert_clean(s)


@cocotb.test()
async def high_physical_addresses_survive_the_iotlb(dut):
    """Regression (iogate regress --seed 1): an IOTLB hit cleared PPN bits above the VPN
    width, so a page at PA 0xb6ad037c000 came back as 0x6ad037c000 on its second use."""
    from iogate.hdl.formats import IOSATP, TA, TC, IosatpMode

    from iogate.firmware.alloc import PageAllocator
    from iogate.firmware.ddt import DeviceContext, DeviceDirectory
    from iogate.firmware.pagetable import PageTable

    def program_high(bus):
        alloc = PageAllocator(bus, 0x8000_0000, 1 << 20)
        root = alloc.alloc()
        table = PageTable(bus, alloc, IosatpMode.SV39)
        # PPN bits 43, 40, 31 and 27 (PA bits 55, 52, 43, 39) set, for every leaf size.
        for iova, pa, size in ((0x1000, 0xB6AD037C000, 4096),
                               (0x20_0000, 0xF0_0000_0020_0000, 2 << 20),
                               (0x4000_0000, 0x90_0080_4000_0000, 1 << 30),
                               (0x10_0000, 0x80_0000_0001_0000, 64 << 10)):
            table.map(iova, pa, size, r=True, w=True)
        DeviceDirectory(bus, alloc, IommuMode.LVL1, root).write(
            3, DeviceContext(tc=bits.pack(TC, v=1), ta=bits.pack(TA, pscid=9),
                             fsc=bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=table.root >> 12)))
        set_mode(bus, IommuMode.LVL1, root)

    s = await open_session(dut, Config())
    await s.run(program_high, s.bus)
    iovas = [0x1123, 0x20_0456, 0x4000_0789, 0x10_0abc, 0x10_fff8]
    await s.translate_all([request(3, iova, "read") for iova in iovas * 2])
    assert s.scoreboard.hits >= len(iovas)
    assert_clean(s)


@cocotb.test()
async def untranslated_addresses_beyond_pas_fault(dut):
    """Regression (iogate regress --seed 1): a bypassed IOVA at or above 2**PAS came back
    with its high bits cut off; it is an access fault, as the model says."""
    s = await open_session(dut, Config())
    await s.run(set_mode, s.bus, IommuMode.BARE)
    top = 1 << Config().pas
    await s.translate_all([request(1, iova, a) for iova in (top - 8, top, 0xE5C9_BEBC_D266_EA8)
                           for a in Access])
    assert sum(s.scoreboard.faults.values()) == 6
    assert_clean(s)
