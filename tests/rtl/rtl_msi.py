"""cocotb tests of MSI translation on the RTL (``Config.msi()``: the full target with
MSI_FLAT, MSI_MRIF and IGS=BOTH), built and run by tests/rtl/test_rtl_msi.py on both
simulators.

The tables are built by the driver (``iogate.firmware``: extended DCs, flat MSI page tables,
MRIFs) through the mirrored bus, and every answer (``absorbed`` included) and fault record is
checked by a scoreboard against the architectural model (cosim/model, written from reference
N.3/N.4 and issue 16's decisions):

* extended DCs: every 259 check of decision 1, device_ids spread over the 6/9/9 split;
* the match on the GPA after the first stage: second-stage-only and nested devices, a
  first-stage leaf landing on an MSI page, a 1 GiB G-stage page holding the MSI window (its
  IOTLB entry must not cover the window), GPAs next to the window;
* every MSI cause (261 bus error and beyond PAS, 262, 263 for C=1, M=0/2, reserved bits of
  either mode, 1 for execute, 260 for a non-word or misaligned MRIF access and for the debug
  interface, 264 on the MRIF read and the notice write), basic results and their IOTLB hits,
  MRIF updates (little- and big-endian, discards, absorbed reads) with the MRIF and notice
  memory compared with the model's;
* IOTINVAL.GVMA (the driver's MSI PTE changes: AV=1 and AV=0) of cached MSI PTEs and basic
  IOTLB entries;
* the extended format's device_id split at the bounds of 1LVL and 2LVL (260 one bit above).
"""

import json
import os
import random

import cocotb

from iogate.hdl import Config, bits
from iogate.hdl.formats import (
    IOHGATP,
    MSI_PTE_BASIC,
    MSI_PTE_MRIF,
    MSIPTP,
    TC,
    IohgatpMode,
    IosatpMode,
)
from iogate.hdl.port import Access
from iogate.hdl.regs import DDTP, IommuMode, Offset

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.scenarios.session import open_session

MSI = Config.msi()
SEED = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

# The MSI window: 8 interrupt files at GPA pages 0x28000-0x28007 (mask 0x7).
WINDOW = 0x2800_0000
MASK, PATTERN = 0x7, WINDOW >> 12
# Files of the main table: what each one's PTE is.
BASIC0, BASIC1, MRIF2, INVALID3, CUSTOM4, M2_5, RSVD6, RSVD_MRIF7 = range(8)

G_DEV, N_DEV, E_DEV = 0x00_0041, 0x00_7F80, 0x80_0003          # spread over DDI 6/9/9
GSCID_G, GSCID_N, GSCID_E = 3, 5, 7
N_BASIC, N_MRIF, N_INVALID, N_PLAIN, N_2M = (0x4000_0000, 0x4000_1000, 0x4000_2000,
                                             0x4000_3000, 0x4020_0000)
GUEST_RAM_SPA = 0x1_0000_0000
NOTICE_PPN = 0xA_0000


def file_gpa(index):
    return WINDOW + index * 4 * KiB


def req(did, iova, access, *, word=True, data=None):
    if isinstance(access, str):
        access = Access[access.upper()]
    if access is Access.WRITE and data is None:
        data = 0
    return TranslationRequest(did, iova, access, word=word, data=data)


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


def program(bus):
    """The devices and tables; returns a dict of what the tests need."""
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=1024)
    drv.init(device_id_bits=24)
    out = {"drv": drv}
    mrif = drv.mrifs.alloc_mrif()
    out["mrif"] = mrif.address
    t = drv.msi_page_table(MASK, PATTERN)
    out["table"] = t
    for f in (BASIC0, BASIC1):
        drv.msi_map_basic(t, ppn=0x5_0000 + f, index=f)
    drv.msi_map_mrif(t, mrif=mrif.address, notice_ppn=NOTICE_PPN, nid=0x42A, index=MRIF2)
    basic = bits.pack(MSI_PTE_BASIC, v=1, m=3, ppn=0x5_0009)
    t.write_raw(INVALID3, basic & ~1)                             # V=0
    t.write_raw(CUSTOM4, basic | 1 << 63)                         # C=1
    t.write_raw(M2_5, bits.pack(MSI_PTE_BASIC, v=1, m=2, ppn=0x5_0009))
    t.write_raw(RSVD6, basic | 1 << 5)                            # dw0 [9:3]
    w = bits.pack(MSI_PTE_MRIF, v=1, m=1, mrif_addr=mrif.address >> 9, nppn=NOTICE_PPN)
    t.write_raw(RSVD_MRIF7, w & (2**64 - 1), (w >> 64) | 1 << 62)  # dw1 [63:61]

    # Second stage only: GPA [0, 1 GiB) as one 1 GiB page, which holds the MSI window.
    g = drv.page_table(IohgatpMode.SV48X4)
    drv.map(g, 0, GUEST_RAM_SPA, GiB, r=True, w=True, x=True, gscid=GSCID_G)
    drv.set_second_stage(G_DEV, g, gscid=GSCID_G, msi=t)

    # Nested: Sv39 over Sv48x4 (GSCID 5), with first-stage leaves onto MSI pages.
    second = drv.page_table(IohgatpMode.SV48X4)
    drv.map(second, 0, GUEST_RAM_SPA + GiB, GiB, r=True, w=True, x=True, gscid=GSCID_N)
    guest = GuestMemory(bus, second)
    first = PageTable(guest, PageAllocator(guest, 512 * MiB, 16 * MiB), IosatpMode.SV39)
    drv.set_nested(N_DEV, first, second, pscid=9, gscid=GSCID_N, msi=t)
    for iova, gpa, size, kw in ((N_BASIC, file_gpa(BASIC1), 4 * KiB, dict(r=True, w=True)),
                                (N_MRIF, file_gpa(MRIF2), 4 * KiB, dict(r=True, w=True,
                                                                         x=True)),
                                (N_INVALID, file_gpa(INVALID3), 4 * KiB, dict(r=True)),
                                (N_PLAIN, 0x1000_0000, 4 * KiB, dict(r=True, w=True)),
                                (N_2M, WINDOW, 2 * MiB, dict(r=True, x=True))):
        drv.map(first, iova, gpa, size, pscid=9, gscid=GSCID_N, **kw)

    # A table for bus errors: file 0 basic (its PTE will fault), 1 MRIF in faulting memory,
    # 2 MRIF with a faulting notice page, 3 a table entry beyond PAS is impossible here.
    e = drv.msi_page_table(MASK, PATTERN)
    out["etable"] = e
    bad_mrif = drv.mrifs.alloc_mrif().address
    good_mrif = drv.mrifs.alloc_mrif().address
    drv.msi_map_basic(e, ppn=0x6_0000, index=0)
    drv.msi_map_mrif(e, mrif=bad_mrif, notice_ppn=NOTICE_PPN, nid=1, index=1)
    drv.msi_map_mrif(e, mrif=good_mrif, notice_ppn=NOTICE_PPN + 1, nid=2, index=2)
    drv.msi_map_basic(e, ppn=0x6_0003, index=3)
    ge = drv.page_table(IohgatpMode.SV39X4)
    drv.map(ge, 0, GUEST_RAM_SPA, GiB, r=True, w=True, gscid=GSCID_E)
    drv.set_second_stage(E_DEV, ge, gscid=GSCID_E, msi=e)
    out["faults"] = [(e.pte_address(0), 16), (bad_mrif, MRIF_BYTES), ((NOTICE_PPN + 1) << 12, 8)]
    out["good_mrif"] = good_mrif
    out["g"] = g
    return out


MRIF_BYTES = 512


def misconfigured(drv, g):
    """Device contexts that each break one check of decision 1 (-> 259)."""
    iohgatp = bits.pack(IOHGATP, mode=IohgatpMode.SV48X4, gscid=11, ppn=g.root >> 12)
    tc = bits.pack(TC, v=1)
    ok = dict(msiptp=bits.pack(MSIPTP, mode=1, ppn=0x9_0000), msi_addr_mask=MASK,
              msi_addr_pattern=PATTERN)
    cases = {
        0x01_0001: dict(ok, msiptp=bits.pack(MSIPTP, mode=2, ppn=0x9_0000)),
        0x01_0002: dict(ok, msiptp=bits.pack(MSIPTP, mode=15, ppn=0x9_0000)),
        0x01_0003: dict(ok, msiptp=bits.pack(MSIPTP, mode=1, ppn=0x9_0000) | 1 << 50),
        0x01_0004: dict(ok, msi_addr_mask=MASK | 1 << 60),
        0x01_0005: dict(ok, msi_addr_pattern=PATTERN | 1 << 38),       # bit MGPAW-12
        0x01_0006: dict(ok, msi_addr_mask=MASK | 1 << 51),
        0x01_0007: dict(ok, rsvd=1 << 17),
    }
    for did, kw in cases.items():
        drv.set_dc(did, tc=tc, iohgatp=iohgatp, check=False, **kw)
    # Flat with iohgatp Bare.
    drv.set_dc(0x01_0008, tc=tc, check=False, **ok)
    # Mask/pattern bits just below MGPAW-12 are fine.
    drv.set_dc(0x01_0009, tc=tc, iohgatp=iohgatp, check=False,
               **dict(ok, msi_addr_mask=MASK | 1 << 37))
    return [*cases, 0x01_0008, 0x01_0009]


def msi_requests(rng, n):
    """Random requests to the window, next to it and elsewhere, on both devices."""
    out = []
    for _ in range(n):
        did = rng.choice([G_DEV, G_DEV, N_DEV])
        if did == G_DEV:
            r = rng.random()
            if r < 0.7:
                page = file_gpa(rng.randrange(8))
            elif r < 0.85:
                page = WINDOW + rng.choice([-1, 8, 9, 0x100]) * 4 * KiB
            else:
                page = rng.randrange(GiB) & ~0xFFF
        else:
            page = rng.choice([N_BASIC, N_MRIF, N_INVALID, N_PLAIN, N_2M + rng.randrange(512)
                               * 4 * KiB])
        offset = rng.choice([0, 4, 8, 0x10, 0xFFC, rng.randrange(4096)])
        access = rng.choice([Access.READ, Access.WRITE, Access.WRITE, Access.EXECUTE])
        word = rng.random() < 0.85
        data = None
        if access is Access.WRITE:
            identity = rng.choice([rng.randrange(2048), rng.randrange(64),
                                   2048 + rng.randrange(100), rng.getrandbits(32)])
            # A[2]=1: a big-endian MSI, its data byte-swapped on the wire.
            data = identity if not offset & 4 else int.from_bytes(
                identity.to_bytes(4, "little"), "big")
        out.append(req(did, page + offset, access, word=word, data=data))
    return out


def compare_memory(s, ranges):
    """The MRIF and notice memory the RTL wrote equals what the model wrote."""
    for address, length in ranges:
        got = s.memory.read(address, length)
        want = s.model.memory.read(address, length)
        if got != want:
            s.bus.mismatches.append(f"memory at {address:#x}: rtl {got.hex()} model "
                                    f"{want.hex()}")


@cocotb.test()
async def msi_agrees_with_the_model(dut):
    rng = random.Random(SEED)
    dut._log.info(f"seed {SEED}")
    s = await open_session(dut, MSI, mem_latency=1)
    out = await s.run(program, s.bus)
    drv, t, mrif = out["drv"], out["table"], out["mrif"]
    notice = NOTICE_PPN << 12

    # The 1 GiB G-stage page first (a non-MSI GPA in it), then the window: its IOTLB entry
    # must not cover the MSI pages.
    await s.translate_all([req(G_DEV, 0x1000_0008, "read"), req(G_DEV, 0x1000_0010, "read"),
                           req(G_DEV, file_gpa(BASIC0) + 8, "write", data=5),
                           req(G_DEV, WINDOW - 4 * KiB, "read"),
                           req(G_DEV, WINDOW + 8 * 4 * KiB, "read")])
    # Every cause, each twice (the second may come from a cache).
    directed = [
        req(G_DEV, file_gpa(BASIC0), "read"), req(G_DEV, file_gpa(BASIC1) + 0x80, "write"),
        req(G_DEV, file_gpa(BASIC1), "execute"),                           # 1
        req(G_DEV, file_gpa(INVALID3), "write"), req(G_DEV, file_gpa(CUSTOM4), "read"),
        req(G_DEV, file_gpa(M2_5), "write"), req(G_DEV, file_gpa(RSVD6), "read"),
        req(G_DEV, file_gpa(RSVD_MRIF7), "write", data=3),
        req(G_DEV, file_gpa(MRIF2), "write", data=0x123),                  # recorded
        req(G_DEV, file_gpa(MRIF2) + 4, "write", data=0x0203_0000),        # BE: 0x302
        req(G_DEV, file_gpa(MRIF2), "write", data=0),                      # identity 0
        req(G_DEV, file_gpa(MRIF2), "write", data=2047),
        req(G_DEV, file_gpa(MRIF2), "write", data=2048),                   # discarded
        req(G_DEV, file_gpa(MRIF2) + 8, "write", data=7),                  # discarded
        req(G_DEV, file_gpa(MRIF2), "read"),                               # absorbed
        req(G_DEV, file_gpa(MRIF2) + 2, "write", data=7),                  # 260
        req(G_DEV, file_gpa(MRIF2), "write", word=False, data=7),          # 260
        req(G_DEV, file_gpa(MRIF2), "execute"),                            # 1
        req(N_DEV, N_BASIC + 0x40, "write"), req(N_DEV, N_BASIC, "execute"),
        req(N_DEV, N_MRIF, "write", data=77), req(N_DEV, N_MRIF + 4, "read"),
        req(N_DEV, N_MRIF, "execute"), req(N_DEV, N_INVALID, "read"),
        req(N_DEV, N_INVALID, "write"),                                    # 15 first
        req(N_DEV, N_PLAIN + 8, "write"), req(N_DEV, N_2M + 0x1000, "read"),
        req(N_DEV, N_2M + 0x2000, "execute"), req(N_DEV, N_2M + 0x9000, "read"),
    ]
    await s.translate_all([r for x in directed for r in (x, x)])
    await s.translate_all(msi_requests(rng, 500))
    faults = s.scoreboard.faults
    assert {1, 260, 262, 263} <= faults.keys() and s.scoreboard.absorbed, faults
    compare_memory(s, [(mrif, MRIF_BYTES), (notice, 8)])
    assert s.memory.read(mrif + 4 * 16, 8) != bytes(8)                # 0x123: pair 4

    # The debug interface on an MRIF page: 260 (decision 5); on a basic page: translated.
    await s.debug_translate(req(G_DEV, file_gpa(MRIF2), "write", data=1))
    await s.debug_translate(req(G_DEV, file_gpa(BASIC0), "read"))
    await s.debug_translate(req(G_DEV, file_gpa(MRIF2), "execute"))

    # 259: every extended-DC check.
    dids = await s.run(misconfigured, drv, out["g"])
    await s.translate_all([req(d, file_gpa(BASIC0), "read") for d in dids])
    assert faults[259] >= len(dids) - 1, faults

    # IOTINVAL.GVMA: basic IOTLB entries and cached MSI PTEs of files 0 and 1 go.
    warm = [req(G_DEV, file_gpa(BASIC0), "read"), req(G_DEV, file_gpa(BASIC1), "write"),
            req(N_DEV, N_BASIC, "read"), req(G_DEV, file_gpa(MRIF2), "write", data=9)]
    await s.translate_all(warm + warm)
    await s.run(lambda: drv.msi_map_basic(t, ppn=0x5_1000, index=BASIC0))        # AV=1
    await s.run(lambda: drv.msi_map_basic(t, ppn=0x5_1001, index=BASIC1))
    await s.translate_all(warm + warm)
    await s.run(lambda: drv.msi_unmap(t, index=MRIF2))                            # 262 now
    await s.translate_all(warm)
    await s.run(lambda: (t.map_basic(ppn=0x5_2000, index=BASIC0), drv.msi_sync_table(t)))
    await s.translate_all(warm)                                                   # AV=0
    compare_memory(s, [(mrif, MRIF_BYTES), (notice, 8)])
    await s.check_fault_records()
    assert_clean(s)


@cocotb.test()
async def msi_bus_errors(dut):
    """Bus errors on the MSI PT read (261), the MRIF read (264) and the notice (264, after
    the MRIF update); the walkers finish and answer every request."""
    s = await open_session(dut, MSI, mem_latency=2)
    out = await s.run(program, s.bus)
    for address, length in out["faults"]:
        s.memory.inject_fault(address, length)
    reqs = [req(E_DEV, file_gpa(0), "read"), req(E_DEV, file_gpa(1), "write", data=3),
            req(E_DEV, file_gpa(2), "write", data=100), req(E_DEV, file_gpa(2), "read"),
            req(E_DEV, file_gpa(3) + 4, "write", data=1), req(E_DEV, 0x3000, "read")]
    await s.translate_all(reqs + reqs)
    faults = s.scoreboard.faults
    assert faults[261] >= 2 and faults[264] >= 4, faults
    s.memory.clear_faults()
    compare_memory(s, [(out["good_mrif"], MRIF_BYTES)])
    await s.translate_all(reqs)
    await s.check_fault_records()
    assert_clean(s)


def cycles_program(bus):
    out = program(bus)
    return out


async def walk_cycles(dut, latency):
    """Latency (cycles from acceptance to answer) of MSI translations at memory latency
    ``latency``, DC cached: a basic MSI PTE miss, its IOTLB hit, an MRIF write with the MSI
    PTE read (miss) and with it cached (the update itself is in both), and a non-MSI
    second-stage walk for comparison. Written to the file named by ``MSI_CYCLES``."""
    s = await open_session(dut, MSI, mem_latency=latency)
    await s.run(cycles_program, s.bus)
    port = s.tb.ports[0]
    results = {}
    for name, r in (("dc", req(G_DEV, 0x2000_0000, "read")),
                    ("g_stage_walk", req(G_DEV, 0x2000_1000, "read")),
                    ("basic_miss", req(G_DEV, file_gpa(BASIC0), "write", data=1)),
                    ("basic_hit", req(G_DEV, file_gpa(BASIC0) + 4, "write", data=1)),
                    ("mrif_miss", req(G_DEV, file_gpa(MRIF2), "write", data=10)),
                    ("mrif_pte_cached", req(G_DEV, file_gpa(MRIF2), "write", data=11)),
                    ("mrif_read_cached", req(G_DEV, file_gpa(MRIF2), "read"))):
        allowed = s.scoreboard.expect(r)
        resp = await port.translate(r)
        s.scoreboard.check(r, resp, allowed)
        results[name] = resp.cycles
    del results["dc"]
    assert_clean(s)
    dut._log.info(f"MSI cycles at memory latency {latency}: {results}")
    path = os.environ.get("MSI_CYCLES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"latency": latency, **results}) + "\n")
    assert results["basic_hit"] < results["basic_miss"]
    assert results["mrif_pte_cached"] < results["mrif_miss"]


@cocotb.test()
async def walk_cycles_latency_0(dut):
    await walk_cycles(dut, 0)


@cocotb.test()
async def walk_cycles_latency_4(dut):
    await walk_cycles(dut, 4)


def program_split(bus, device_id_bits):
    """A directory of the shallowest mode that reaches ``device_id_bits`` (1LVL for 6,
    2LVL for 15, with extended DCs: reference N.3.2), the widest device_id of that mode mapped
    second-stage only; returns the driver and the device_id."""
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB), fq_entries=64)
    drv.init(device_id_bits=device_id_bits)
    did = (1 << device_id_bits) - 1
    g = drv.page_table(IohgatpMode.SV39X4)
    drv.map(g, 0, GUEST_RAM_SPA, 2 * MiB, r=True, w=True, gscid=GSCID_G)
    drv.set_second_stage(did, g, gscid=GSCID_G)
    return drv, did


@cocotb.test()
async def extended_split_bounds(dut):
    """The extended format's device_id split in 1LVL (6 bits) and 2LVL (15 bits): the widest
    device_id of the mode is located and translated; one bit more is 260 (spec "Process to
    translate an IOVA" step 3 with reference N.3.2: 6/9/9, not 7/9/8)."""
    s = await open_session(dut, MSI, mem_latency=1)
    for device_id_bits, mode in ((6, IommuMode.LVL1), (15, IommuMode.LVL2)):
        drv, did = await s.run(program_split, s.bus, device_id_bits)
        ddtp = await s.run(lambda: s.bus.mmio_read(Offset.DDTP, 8))
        assert bits.unpack(DDTP, ddtp)["iommu_mode"] == mode, (device_id_bits, ddtp)
        # The base format's widths (7 and 16 bits) reach one bit further: those device_ids
        # must be refused here.
        await s.translate_all([req(did, 0x1000, "read"), req(did, 0x2008, "write"),
                               req(did + 1, 0x1000, "read"),
                               req((did << 1) | 1, 0x1000, "write")])
    faults = s.scoreboard.faults
    assert faults[260] == 4, faults
    await s.check_fault_records()
    assert_clean(s)
