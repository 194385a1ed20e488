"""cocotb tests of the full first-target top (3LVL, Sv48, Sv39x4/Sv48x4, Svpbmt), through
the driver, every answer and fault record checked against the model. Built and run by
tests/rtl/test_rtl_full.py on both simulators.
"""

import os
import random

import cocotb

from iogate.hdl import Config
from iogate.hdl.formats import IohgatpMode, IosatpMode, Pbmt
from iogate.hdl.port import Access

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.scenarios.session import open_session, request

FULL = Config.full()
SEED = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
GUEST_RAM_SPA = 0x80_0000_0000

# device_ids spread over the three DDT levels (DDI2, DDI1, DDI0 all non-zero).
SV48_DEV, GSTAGE_DEV, NESTED_DEV = 0x12_3456, 0x01_0080, 0xAB_CDEF


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


def program(bus):
    """Three devices, one per kind of translation; returns the driver, the tables and
    the mapped ranges as (device_id, iova, size)."""
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=256)
    drv.init(device_id_bits=24)
    ranges = []
    # First stage only, Sv48: every leaf size and the memory types.
    t48 = drv.page_table(IosatpMode.SV48)
    drv.set_first_stage(SV48_DEV, t48, pscid=7)
    for iova, pa, size, kw in (
            (0x7F_0000_0000, 0x12_4000_0000, 1 * GiB, dict(r=True, w=True)),
            (0x1000_0000, 0x3_0020_0000, 2 * MiB, dict(r=True, x=True, pbmt=Pbmt.NC)),
            (0x2000_0000, 0x4_0001_0000, 64 * KiB, dict(r=True, w=True, pbmt=Pbmt.IO)),
            (0xFFFF_8000_0000_0000, 0x5_0000_0000, 4 * KiB, dict(r=True))):
        drv.map(t48, iova, pa, size, pscid=7, **kw)
        ranges.append((SV48_DEV, iova, size))
    # Second stage only, Sv39x4 (a 41-bit GPA space).
    g39 = drv.page_table(IohgatpMode.SV39X4)
    drv.set_second_stage(GSTAGE_DEV, g39, gscid=3)
    for gpa, pa, size in ((0x1_8000_0000, 0x6_0000_0000, 2 * MiB),
                          (0x100_0000_0000 - 4 * KiB, 0x7_0000_0000, 4 * KiB)):
        drv.map(g39, gpa, pa, size, r=True, w=True, gscid=3)
        ranges.append((GSTAGE_DEV, gpa, size))
    # Nested: a guest's Sv39 table in guest RAM (GPA [0, 1 GiB) at GUEST_RAM_SPA) over
    # the host's Sv48x4; one guest mapping points outside guest RAM (guest-page faults).
    second = drv.page_table(IohgatpMode.SV48X4)
    drv.map(second, 0, GUEST_RAM_SPA, 1 * GiB, r=True, w=True, x=True, gscid=5)
    guest = GuestMemory(bus, second)
    first = PageTable(guest, PageAllocator(guest, 512 * MiB, 64 * MiB), IosatpMode.SV39,
                      svpbmt=True)
    drv.set_nested(NESTED_DEV, first, second, pscid=9, gscid=5)
    for iova, gpa, size, kw in ((0x4000_0000, 0x100_0000, 2 * MiB, dict(r=True, w=True)),
                                (0x5000_0000, 0x20_0000, 64 * KiB, dict(r=True, x=True)),
                                (0x6000_0000, 2 * GiB, 4 * KiB, dict(r=True, w=True))):
        drv.map(first, iova, gpa, size, pscid=9, gscid=5, **kw)
        ranges.append((NESTED_DEV, iova, size))
    return drv, t48, ranges


def requests(rng, ranges, n):
    for _ in range(n):
        did, iova, size = rng.choice(ranges)
        if rng.random() < 0.15:
            iova = iova + size + rng.randrange(1 << 20)        # just past the mapping
        else:
            iova = iova + rng.randrange(min(size, 1 << 18)) // 8 * 8
        yield request(did, iova & (2**64 - 1), rng.choice(list(Access)))


@cocotb.test()
async def every_mode_agrees_with_the_model(dut):
    rng = random.Random(SEED)
    s = await open_session(dut, FULL, mem_latency=1)
    drv, t48, ranges = await s.run(program, s.bus)
    await s.translate_all(list(requests(rng, ranges, 600)))
    faults = s.scoreboard.faults
    # Page faults, guest-page faults and successes all occurred (spec "Fault/Event-Queue (FQ)"
    # causes).
    assert faults.keys() & {12, 13, 15} and faults.keys() & {20, 21, 23}
    assert s.scoreboard.translations - sum(faults.values()) > 100
    # Unmap the Sv48 gigapage: after the driver's IOTINVAL.VMA + IOFENCE.C nothing of it
    # is left in the IOTLB.
    await s.run(lambda: drv.unmap(t48, 0x7F_0000_0000, 1 * GiB, pscid=7))
    await s.translate_all([request(SV48_DEV, 0x7F_0000_0000 + i * 0x20_0000, "read")
                           for i in range(8)])
    records = await s.check_fault_records()
    assert any(r.iotval2 for r in records)          # guest-page faults carry the GPA
    assert_clean(s)
