"""cocotb tests of Sv57 and Sv57x4 on the RTL (``Config.process()``: the full target with Sv57,
Sv57x4 and process contexts), built and run by tests/rtl/test_rtl_sv57.py on both simulators.

The tables are built by the driver (``iogate.firmware``) through the mirrored bus, and every
answer and fault record is checked by the scoreboard against the architectural model
(cosim/model, written from the Privileged spec "Sv57" and "Two-Stage Address Translation" and
the IOMMU spec "Process to translate an IOVA"):

* Sv57 alone: 256 TiB, 512 GiB, 2 MiB and 4 KiB pages, IOVAs above bit 47 and in the upper
  canonical half; non-canonical IOVAs (bits 63:56 not all equal) are page faults;
* Sv57x4 alone: 256 TiB and 512 GiB pages high in the 59-bit GPA space (the 16 KiB root's two
  extra index bits), the top page; a GPA with a bit from 59 up is a guest-page fault;
* Sv57 over Sv57x4 and Sv48 over Sv57x4: the guest's tables in guest memory, a first-stage
  256 TiB leaf over smaller second-stage pages, guest-page faults outside guest memory;
* misaligned superpages at level 4 (256 TiB) and level 3 (512 GiB) in either stage;
* IOTINVAL.VMA and IOTINVAL.GVMA (through the driver's remaps and unmaps) at addresses above
  bit 47, with a cached page that differs from the invalidated one only above bit 47 beside it.
"""

import json
import os
import random

import cocotb

from iogate.hdl import Config, bits
from iogate.hdl.formats import PTE, IohgatpMode, IosatpMode
from iogate.hdl.port import Access

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.scenarios.session import open_session, request

SV57 = Config.process()
SEED = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))
KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
GUEST_RAM_SPA = 0x80_0000_0000

# device_ids over the three DDT levels.
S57_DEV, G57_DEV, NESTED_DEV, N48_DEV = 0x12_3456, 0x01_0080, 0xAB_CDEF, 0x33_0001

# First stage Sv57 (PSCID 7).
S57_256T = 3 << 48                                   # -> 0x21 << 48, rw
S57_512G = (0x7A << 48) | (0x1F3 << 39)              # -> 0x9 << 39, rx
S57_HI = 0xAB_CDEF_0123_4000                         # 4 KiB above bit 47
S57_LO = S57_HI & ((1 << 47) - 1)                    # the same page below bit 47
S57_UPPER = 0xFF80_0000_0000_0000                    # upper canonical half, 2 MiB
S57_MIS_256T = 5 << 48                               # a level-4 leaf with PPN[0] != 0
S57_MIS_512G = (6 << 48) | (0x10 << 39)              # a level-3 leaf with PPN[2] != 0
# Second stage Sv57x4 (GSCID 3).
G57_256T = (3 << 57) | (5 << 48)                     # root index 0x605 -> 0x23 << 48, rw
G57_512G = (1 << 58) | (0x1F3 << 39)                 # -> 0xB << 39, r
G57_TOP = (1 << 59) - 4 * KiB                        # root index 0x7FF
G57_LO = G57_TOP & ((1 << 47) - 1)
G57_MIS_256T = 1 << 57                                # root index 0x200
# Nested: Sv57 (PSCID 9) and Sv48 (PSCID 10) over one Sv57x4 (GSCID 5), which maps GPA
# [0, 1 GiB) to GUEST_RAM_SPA and GPA [1 << 55, + 512 GiB) to 0xC << 39.
N_256T = 0x12 << 48                                  # 256 TiB at GPA 0
N_HIGH = 0xFF00_0000_4000_0000                       # 2 MiB at GPA 1 << 55
N_HOLE = 0x40_0000_0000_0000                         # 4 KiB at GPA 2 GiB: not mapped
N48_1G = 0x7F_0000_0000                              # Sv48: 1 GiB at GPA (1 << 55) + 1 GiB


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


def entry_address(table, va, level):
    """Where the PTE for ``va`` at ``level`` of ``table`` lives (the walk down to it)."""
    a = table.root
    for lvl in range(table.levels - 1, level, -1):
        pte = int.from_bytes(table.bus.mem_read(a + table.index(va, lvl) * 8, 8), "little")
        a = bits.get(PTE, pte, "ppn") << 12
    return a + table.index(va, level) * 8


def write_pte(table, address, **fields):
    table.bus.mem_write(address, bits.pack(PTE, **fields).to_bytes(8, "little"))


def program(bus):
    """The devices and their tables; returns the driver, the tables by name and the mapped
    ranges as (device_id, iova, size)."""
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=1024)
    drv.init(device_id_bits=24)
    ranges = []
    t57 = drv.page_table(IosatpMode.SV57)
    drv.set_first_stage(S57_DEV, t57, pscid=7)
    for iova, pa, size, kw in ((S57_256T, 0x21 << 48, 256 * TiB, dict(r=True, w=True)),
                               (S57_512G, 0x9 << 39, 512 * GiB, dict(r=True, x=True)),
                               (S57_HI, 0x5_0000_0000, 4 * KiB, dict(r=True, w=True)),
                               (S57_LO, 0x5_0000_1000, 4 * KiB, dict(r=True, w=True)),
                               (S57_UPPER, 0x6_0020_0000, 2 * MiB, dict(r=True)),
                               (S57_MIS_512G, 0xA << 39, 512 * GiB, dict(r=True))):
        drv.map(t57, iova, pa, size, pscid=7, **kw)
        ranges.append((S57_DEV, iova, size))
    # Misaligned superpages (Privileged spec "Virtual Address Translation Process" step 6):
    # nothing of these was cached yet, so no invalidation is due.
    write_pte(t57, t57.root + t57.index(S57_MIS_256T, 4) * 8, v=1, r=1, w=1, u=1, a=1, d=1,
              ppn=(0x22 << 36) | 1)
    write_pte(t57, entry_address(t57, S57_MIS_512G, 3), v=1, r=1, u=1, a=1, d=1,
              ppn=(0xA << 27) | 1 << 18)
    ranges.append((S57_DEV, S57_MIS_256T, 256 * TiB))

    g57 = drv.page_table(IohgatpMode.SV57X4)
    drv.set_second_stage(G57_DEV, g57, gscid=3)
    for gpa, pa, size, kw in ((G57_256T, 0x23 << 48, 256 * TiB, dict(r=True, w=True)),
                              (G57_512G, 0xB << 39, 512 * GiB, dict(r=True)),
                              (G57_TOP, 0x7_0000_0000, 4 * KiB, dict(r=True, w=True)),
                              (G57_LO, 0x7_0000_1000, 4 * KiB, dict(r=True, w=True))):
        drv.map(g57, gpa, pa, size, gscid=3, **kw)
        ranges.append((G57_DEV, gpa, size))
    write_pte(g57, g57.root + g57.index(G57_MIS_256T, 4) * 8, v=1, r=1, w=1, u=1, a=1, d=1,
              ppn=(0x24 << 36) | 1 << 27)
    ranges.append((G57_DEV, G57_MIS_256T, 256 * TiB))

    second = drv.page_table(IohgatpMode.SV57X4)
    drv.map(second, 0, GUEST_RAM_SPA, 1 * GiB, r=True, w=True, x=True, gscid=5)
    drv.map(second, 1 << 55, 0xC << 39, 512 * GiB, r=True, w=True, gscid=5)
    guest = GuestMemory(bus, second)
    galloc = PageAllocator(guest, 512 * MiB, 64 * MiB)
    first = PageTable(guest, galloc, IosatpMode.SV57)
    drv.set_nested(NESTED_DEV, first, second, pscid=9, gscid=5)
    for iova, gpa, size, kw in ((N_256T, 0, 256 * TiB, dict(r=True, w=True, x=True)),
                                (N_HIGH, 1 << 55, 2 * MiB, dict(r=True, w=True)),
                                (N_HOLE, 2 * GiB, 4 * KiB, dict(r=True))):
        drv.map(first, iova, gpa, size, pscid=9, gscid=5, **kw)
        ranges.append((NESTED_DEV, iova, size))
    first48 = PageTable(guest, galloc, IosatpMode.SV48)
    drv.set_nested(N48_DEV, first48, second, pscid=10, gscid=5)
    drv.map(first48, N48_1G, (1 << 55) + GiB, GiB, r=True, w=True, pscid=10, gscid=5)
    ranges.append((N48_DEV, N48_1G, GiB))
    return drv, {"t57": t57, "g57": g57, "second": second}, ranges


# Addresses no walk may accept: non-canonical Sv57 IOVAs, GPAs too wide for Sv57x4.
OUT_OF_RANGE = [(S57_DEV, 1 << 56), (S57_DEV, 1 << 57), (S57_DEV, 1 << 63 | 0x1000),
                (S57_DEV, 0xFE00_0000_0000_0000), (NESTED_DEV, 1 << 56 | N_256T),
                (G57_DEV, 1 << 59), (G57_DEV, 1 << 63 | G57_256T), (G57_DEV, 0x1F << 59)]


def requests(rng, ranges, n):
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            did, iova = rng.choice(OUT_OF_RANGE)
            iova += rng.randrange(1 << 20) // 8 * 8
        else:
            did, iova, size = rng.choice(ranges)
            if r < 0.2:
                iova = iova + size + rng.randrange(1 << 20) // 8 * 8     # just past it
            else:
                # Anywhere in the page, low and high offsets alike (bits above 47 of a
                # 256 TiB page's offset too).
                offset = rng.randrange(size) if rng.random() < 0.5 else rng.randrange(
                    min(size, 1 << 18))
                iova = iova + offset // 8 * 8
        yield request(did, iova & (2**64 - 1), rng.choice(list(Access)))


def repeat(reqs):
    """Each request twice: the second one may hit what the first one's walk filled."""
    return [r for req in reqs for r in (req, req)]


@cocotb.test()
async def sv57_agrees_with_the_model(dut):
    rng = random.Random(SEED)
    dut._log.info(f"seed {SEED}")
    s = await open_session(dut, SV57, mem_latency=1)
    drv, tables, ranges = await s.run(program, s.bus)
    await s.translate_all(list(requests(rng, ranges, 700)))
    faults = s.scoreboard.faults
    assert faults.keys() & {12, 13, 15} and faults.keys() & {20, 21, 23}, faults
    assert s.scoreboard.translations - sum(faults.values()) > 150
    # The directed ones: misaligned superpages, out-of-range addresses, every size.
    await s.translate_all(repeat([
        request(S57_DEV, S57_MIS_256T + 0x1234_5678_9000, "read"),
        request(S57_DEV, S57_MIS_512G + 0x40_0000_0008, "read"),
        request(G57_DEV, G57_MIS_256T + 0x8000_0000_0000, "write"),
        request(S57_DEV, 1 << 56, "read"), request(G57_DEV, 1 << 59, "write"),
        request(S57_DEV, S57_256T + 0xFFFF_FFFF_F008, "write"),
        request(S57_DEV, S57_512G + 0x7F_FFFF_F000, "execute"),
        request(S57_DEV, S57_UPPER + 0x1F_F000, "read"),
        request(G57_DEV, G57_256T + 0xABCD_0000_0000, "write"),
        request(G57_DEV, G57_TOP + 0xFF8, "read"),
        request(NESTED_DEV, N_256T + 0x3FFF_F000, "execute"),
        request(NESTED_DEV, N_256T + 0x4000_0000, "read"),        # GPA 1 GiB: unmapped
        request(NESTED_DEV, N_HIGH + 0x1000, "write"),
        request(NESTED_DEV, N_HOLE, "read"),
        request(N48_DEV, N48_1G + 0x3FFF_F000, "write"),
    ]))
    assert {13, 15, 21, 23} <= faults.keys(), faults

    # IOTINVAL.VMA above bit 47 (spec "IOMMU Page-Table cache invalidation commands"): the
    # page S57_HI and its twin S57_LO (equal below bit 47) are cached; S57_HI is remapped.
    t57, g57, second = tables["t57"], tables["g57"], tables["second"]
    warm = [request(S57_DEV, S57_HI + 8, "read"), request(S57_DEV, S57_LO + 8, "read"),
            request(S57_DEV, S57_512G + 0x123_4567_8000, "read"),
            request(G57_DEV, G57_TOP, "read"), request(G57_DEV, G57_LO, "read"),
            request(G57_DEV, G57_256T + 0x55_0000_0000, "read"),
            request(NESTED_DEV, N_HIGH + 0x8, "read"), request(N48_DEV, N48_1G + 8, "read")]
    await s.translate_all(repeat(warm))

    def remap():
        drv.map(t57, S57_HI, 0x5_0000_8000, 4 * KiB, r=True, pscid=7)
        drv.map(t57, S57_512G, 0x19 << 39, 512 * GiB, r=True, pscid=7)
        drv.map(g57, G57_TOP, 0x7_0000_8000, 4 * KiB, r=True, gscid=3)
        drv.map(g57, G57_256T, 0x25 << 48, 256 * TiB, r=True, gscid=3)
        # IOTINVAL.GVMA of GPA 1 << 55: the two-stage entries of GSCID 5 go.
        drv.map(second, 1 << 55, 0xD << 39, 512 * GiB, r=True, gscid=5)
    await s.run(remap)
    await s.translate_all(repeat(warm))
    # Unmapping the 256 TiB page: nothing of it is left.
    await s.run(lambda: drv.unmap(t57, S57_256T, 256 * TiB, pscid=7))
    await s.translate_all([request(S57_DEV, S57_256T + i * 0x1357_9BDF_0000, "read")
                           for i in range(8)])
    records = await s.check_fault_records()
    assert any(r.iotval2 for r in records)          # guest-page faults carry the GPA
    assert_clean(s)


def cycles_program(bus):
    """One 4 KiB page per mode, each in its own table, two pages apart; second-stage-only
    devices for Sv48x4 and Sv57x4. Returns the devices and their two IOVAs."""
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=64)
    drv.init(device_id_bits=24)
    devices = {}
    for name, dev, mode in (("Sv48", 0x00_0048, IosatpMode.SV48),
                            ("Sv57", 0x00_0057, IosatpMode.SV57),
                            ("Sv48x4", 0x01_0048, IohgatpMode.SV48X4),
                            ("Sv57x4", 0x01_0057, IohgatpMode.SV57X4)):
        table = drv.page_table(mode)
        iova = 0x42_1234_5000 if mode.levels == 4 else 0xAB_CDEF_0123_4000
        if isinstance(mode, IosatpMode):
            drv.set_first_stage(dev, table, pscid=dev)
            kw = dict(pscid=dev)
        else:
            drv.set_second_stage(dev, table, gscid=dev & 0xFFFF)
            kw = dict(gscid=dev & 0xFFFF)
        for i in range(3):
            drv.map(table, iova + i * 8 * KiB, 0x9_0000_0000 + i * 4 * KiB, 4 * KiB, r=True,
                    **kw)
        devices[name] = (dev, iova)
    return devices


async def walk_cycles(dut, latency):
    """Walk cycles per mode at memory latency ``latency``: a request to a page not in the
    IOTLB (its DC cached) minus the same request once it hits. Written to the file named by
    ``SV57_CYCLES`` for the pytest side to report."""
    s = await open_session(dut, SV57, mem_latency=latency)
    devices = await s.run(cycles_program, s.bus)
    port = s.tb.ports[0]
    results = {}
    for name, (dev, iova) in devices.items():
        cycles = []
        for req in (request(dev, iova, "read"),                   # the DC, and a walk
                    request(dev, iova + 8 * KiB, "read"),          # a walk, DC cached
                    request(dev, iova + 8 * KiB, "read")):         # a hit
            allowed = s.scoreboard.expect(req)
            resp = await port.translate(req)
            s.scoreboard.check(req, resp, allowed)
            cycles.append((resp.cycles, resp.hit))
        (_, _), (cold, cold_hit), (warm, warm_hit) = cycles
        assert not cold_hit and warm_hit, cycles
        results[name] = cold - warm
    assert_clean(s)
    dut._log.info(f"walk cycles at memory latency {latency}: {results}")
    path = os.environ.get("SV57_CYCLES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"latency": latency, **results}) + "\n")
    # A level more is a read more: more cycles (Privileged spec "Sv57").
    assert results["Sv57"] > results["Sv48"] and results["Sv57x4"] > results["Sv48x4"]


@cocotb.test()
async def walk_cycles_latency_0(dut):
    await walk_cycles(dut, 0)


@cocotb.test()
async def walk_cycles_latency_4(dut):
    await walk_cycles(dut, 4)


# --- Supervisor and User requests with process contexts (reference N.1.6): the walker checks
# the leaf's U against the request's privilege and PC.ta.SUM, and the IOTLB keeps U so that
# walks of either privilege fill it and every hit is checked again.
PRIV_DEV = 0x05_0607
PRIV_PAGES = (0x7_0000_0000, 0x7_0000_1000, 0x1_2345_6000_0000, 0x1_2345_6000_1000,
              0xFF80_0000_0020_0000)
PRIV_U0 = {PRIV_PAGES[1], PRIV_PAGES[3], PRIV_PAGES[4]}       # supervisor pages (U=0)


def priv_program(bus):
    """PID 1 (SUM=0) and PID 3 (SUM=1) share one Sv57 table and PSCID 0x41, PID 2 (SUM=1)
    has its own (PSCID 0x42); ENS=1; the PRIV_U0 pages are U=0. Returns the PIDs."""
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=1024)
    drv.init(device_id_bits=24)
    pdt = drv.process_directory(8)
    drv.set_process_directory(PRIV_DEV, pdt, dpe=True)
    tables = {}
    for pscid in (0x41, 0x42):
        table = tables[pscid] = drv.page_table(IosatpMode.SV57)
        for i, iova in enumerate(PRIV_PAGES):
            drv.map(table, iova, (0x100 + 8 * pscid + i) << 12, 4 * KiB, r=True,
                    w=i % 2 == 0, x=True, pscid=pscid)
            if iova in PRIV_U0:
                # The driver maps every page U=1; a supervisor page clears it (nothing is
                # cached yet: no invalidation due).
                address = entry_address(table, iova, 0)
                old = int.from_bytes(table.bus.mem_read(address, 8), "little")
                table.bus.mem_write(address, bits.put(PTE, old, "u", 0).to_bytes(8, "little"))
    pids = {1: (0x41, False), 2: (0x42, True), 3: (0x41, True)}
    for pid, (pscid, sum_) in pids.items():
        drv.attach_process(PRIV_DEV, pid, tables[pscid], pscid=pscid, ens=True, sum=sum_)
    return pids


@cocotb.test()
async def privilege_agrees_with_the_model(dut):
    """Supervisor and User requests to U=0 and U=1 pages, each page asked again and again in
    shuffled privileges and accesses, so that hits of one privilege follow fills of the
    other; PID 3 shares PID 1's PSCID with SUM=1 (the IOTLB entry is one, the rule is the
    request's). Every answer and fault record checked against the model."""
    rng = random.Random(SEED + 57)
    dut._log.info(f"seed {SEED + 57}")
    s = await open_session(dut, SV57, mem_latency=1)
    pids = await s.run(priv_program, s.bus)
    reqs = []
    for _ in range(400):
        pid = rng.choice([*pids, None])
        priv = pid is not None and rng.random() < 0.5
        iova = rng.choice(PRIV_PAGES) + rng.randrange(0, 4096, 8)
        reqs.append(request(PRIV_DEV, iova, rng.choice(list(Access)), process_id=pid,
                            priv=priv))
    await s.translate_all(reqs)
    faults = s.scoreboard.faults
    assert s.scoreboard.translations - sum(faults.values()) > 100
    assert faults.keys() & {12, 13, 15}, faults
    await s.check_fault_records()
    assert_clean(s)
