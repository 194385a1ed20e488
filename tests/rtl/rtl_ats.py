"""ATS and PRI on the RTL, checked against the architectural model (reference N.6; issue 17).

Every register access goes through the mirrored bus, every translation through the
scoreboard (the model's ``allowed`` with the request's ``kind``), every page request into
the RTL and the model alike; then the ``ats_msg`` messages, the page-request queue records,
``pqt``/``pqcsr``/``ipsr`` and the fault records of both are compared. Nothing here is an
expected value of the RTL's: the model is written from the spec (cosim.model.ats,
cosim.model.pageq), the RTL from the same reference, by different hands.

The tables: a 1LVL directory at PPN 0x100; device 5 Sv39 (PSCID 7) with EN_ATS and EN_PRI;
device 6 without EN_ATS; device 7 with EN_ATS, EN_PRI, PRPR and DTF; device 8 not valid;
device 9 two-stage (Sv39 over Sv39x4, GSCID 3) with EN_ATS and T2GPA; IOVA 0x4040_3123 maps to
0x12345 (R W), 0x4040_4123 to a read-only page, 0x4040_5123 is not mapped. The queues: the
command queue at 0x30_0000, the fault queue (64 entries) at 0x40_0000, the page-request queue
(4 entries) at 0x50_0000.
"""

import os
import random

import cocotb
from cocotb.triggers import ClockCycles

from iogate.hdl import Config, bits
from iogate.hdl.port import Access
from iogate.hdl.regs import DDTP, IommuMode, Offset

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.scenarios.session import open_session
from rtl_tables import A, D, R, U, V, W, pte, sv39x4_map

CONFIG = Config.full().replace(ats=True, t2gpa=True)
#: The random stream's seed (cocotb's; replay: COCOTB_RANDOM_SEED=N with the test's command).
SEED = int(os.environ.get("COCOTB_RANDOM_SEED", "1"))

EN_ATS, EN_PRI, T2GPA, DTF, PRPR = 2, 4, 8, 16, 64
SV39, SV39X4 = 8 << 60, 8 << 60
DDT_ROOT, G_ROOT = 0x100, 0x600
IOVA, RO_IOVA, UNMAPPED = 0x4040_3123, 0x4040_4123, 0x4040_5123
PQ_BASE, FQ_BASE, CQ_BASE = 0x50_0000, 0x40_0000, 0x30_0000


def tables():
    mem = {}

    def dc(device_id, tc, iohgatp=0, ta=7 << 12, fsc=SV39 | 0x200):
        for k, word in enumerate((tc, iohgatp, ta, fsc)):
            mem[(DDT_ROOT << 12) + device_id * 32 + 8 * k] = word
    dc(5, V | EN_ATS | EN_PRI)
    dc(6, V)
    dc(7, V | EN_ATS | EN_PRI | PRPR | DTF)
    dc(8, 0)
    dc(9, V | EN_ATS | T2GPA, iohgatp=SV39X4 | 3 << 44 | G_ROOT)
    # Sv39: VPN[2]=1, VPN[1]=2, VPN[0]=3/4/5.
    mem.update({0x20_0008: pte(0x201, V), 0x20_1010: pte(0x202, V),
                0x20_2018: pte(0x12345, V | R | W | U | A | D),
                0x20_2020: pte(0x12346, V | R | U | A)})
    # Sv39x4: the first-stage tables' pages GPA = SPA, the leaves' SPA = GPA + 0x1000 pages
    # (so that a completion's GPA under T2GPA and the SPA differ).
    return sv39x4_map(mem, G_ROOT, ((0x200, 0x200), (0x201, 0x201), (0x202, 0x202),
                                    (0x12345, 0x13345), (0x12346, 0x13346)),
                      [0x700 + i for i in range(8)])


async def start(dut):
    s = await open_session(dut, CONFIG)
    for addr, word in tables().items():
        s.memory.write(addr, word.to_bytes(8, "little"))
    bus = s.bus
    # 64 fault records: a round of the random mix never overflows it (answers leave out of
    # order, so which records an overflow drops is not the model's to predict).
    await bus.awrite(Offset.FQB, 8, 5 | (FQ_BASE >> 12) << 10)
    await bus.awrite(Offset.FQH, 4, 0)
    await bus.awrite(Offset.FQCSR, 4, 1)
    await bus.awrite(Offset.CQB, 8, 3 | (CQ_BASE >> 12) << 10)
    await bus.awrite(Offset.CQT, 4, 0)
    await bus.awrite(Offset.CQCSR, 4, 1)
    await bus.awrite(Offset.PQB, 8, 1 | (PQ_BASE >> 12) << 10)
    await bus.awrite(Offset.PQH, 4, 0)
    await bus.awrite(Offset.PQCSR, 4, 3)              # pqen, pie
    for offset in (Offset.FQCSR, Offset.CQCSR, Offset.PQCSR):
        await ClockCycles(dut.clk, 4)
        await bus.aread(offset, 4)
    return s


async def set_mode(s, mode):
    await s.bus.awrite(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=mode, ppn=DDT_ROOT))


def tr(device_id, iova, kind, access=Access.READ, nw=False):
    return TranslationRequest(device_id, iova, access, kind=kind, nw=nw)


async def settle(s, cycles=200):
    await ClockCycles(s.tb.dut.clk, cycles)


async def compare_queues(s):
    """The messages, the page-request records and registers, the fault records."""
    if s.tb.ats.messages != s.model.ats_messages:
        s.bus.mismatches.append(f"ats_msg: rtl {s.tb.ats.messages} model {s.model.ats_messages}")
    pqt = await s.bus.aread(Offset.PQT, 4)
    for i in range(pqt):
        address = PQ_BASE + 16 * i
        got, want = s.memory.read(address, 16), s.model.memory.read(address, 16)
        if got != want:
            s.bus.mismatches.append(f"pq record {i}: rtl {got.hex()} model {want.hex()}")
    for offset in (Offset.PQCSR, Offset.IPSR, Offset.FQT):
        await s.bus.aread(offset, 4)
    await s.check_fault_records()


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


@cocotb.test()
async def request_kinds(dut):
    """Translated requests (T2GPA=0 and 1) and ATS Translation Requests against the model:
    completions (NW, read-only, not mapped: R=W=0), refusals (EN_ATS=0, Bare) and records."""
    s = await start(dut)
    await set_mode(s, IommuMode.LVL1)
    requests = [
        tr(5, IOVA, "ats"), tr(5, IOVA, "ats"), tr(5, IOVA, "ats", nw=True),
        tr(5, RO_IOVA, "ats"), tr(5, UNMAPPED, "ats"),
        tr(5, 0x7_6543_2100, "translated", Access.WRITE), tr(5, IOVA, "untranslated"),
        tr(6, IOVA, "ats"), tr(6, IOVA, "translated"),
        tr(9, IOVA, "ats"), tr(9, IOVA, "ats"), tr(9, 0x1234_5123, "translated"),
        tr(9, 0x1234_5123, "translated", Access.WRITE), tr(9, UNMAPPED, "ats"),
        tr(8, IOVA, "ats"),
    ]
    for request in requests:
        await s.translate_all([request])
    await set_mode(s, IommuMode.BARE)
    await s.translate_all([tr(5, IOVA, "ats"), tr(5, IOVA, "translated"),
                           tr(5, IOVA, "untranslated")])
    await settle(s)
    await compare_queues(s)
    assert_clean(s)
    assert s.scoreboard.translations == len(requests) + 3


def model_page_request(s, device_id, **fields):
    s.model.page_request(device_id, **{"pv": False, "pid": 0, "priv": False, "exec": False,
                                       "r": True, "w": False, "l": True, "prg_index": 0,
                                       **fields})


async def page_request(s, device_id, **fields):
    """One Page Request into the RTL and the model, and time for the RTL to decide it."""
    model_page_request(s, device_id, **fields)
    await s.tb.ats.page_request(device_id, **fields)
    await settle(s, 60)


@cocotb.test()
async def page_requests(dut):
    """Every row of N.6.7 on the RTL and the model: Off, Bare, a DC fault, EN_PRI=0, DTF, a
    queued record, the full queue (pqof, Success with and without PRPR's PASID), L=0 and Stop
    Markers that get no response, pqof cleared."""
    s = await start(dut)
    await page_request(s, 5, page=0x111, pv=True, pid=0x42, prg_index=1)        # Off
    await set_mode(s, IommuMode.BARE)
    await page_request(s, 5, page=0x111, prg_index=2)
    await set_mode(s, IommuMode.LVL1)
    await page_request(s, 8, page=0x222, pv=True, pid=3, prg_index=3)           # 258
    await page_request(s, 6, page=0x333, prg_index=4)                           # EN_ATS=0
    for i in range(3):                                 # 4 entries: the third fills it
        await page_request(s, 5, page=0x400 + i, pv=True, pid=9, priv=True, exec=True,
                           w=True, prg_index=5 + i)
    await page_request(s, 7, page=0x500, pv=True, pid=9, prg_index=8)           # full: PRPR
    await page_request(s, 5, page=0x501, pv=True, pid=9, prg_index=9, l=False)  # no answer
    await page_request(s, 5, page=0x502, pv=True, pid=9, r=False, w=False)      # Stop Marker
    await compare_queues(s)
    # Software takes the records and clears pqof: records are queued again.
    await s.bus.awrite(Offset.PQH, 4, 3)
    await s.bus.awrite(Offset.PQCSR, 4, 3 | 1 << 9)
    await s.bus.awrite(Offset.IPSR, 4, 1 << 3)
    await page_request(s, 5, page=0x600, prg_index=10)
    await compare_queues(s)
    assert_clean(s)
    # The IOMMU answered Off, Bare, 258, EN_ATS=0 and the full queue's L=1 request: 5; the
    # queued records are software's to answer, L=0 and the Stop Marker get none.
    assert len(s.tb.ats.messages) == 5


@cocotb.test()
async def ats_commands(dut):
    """ATS.INVAL and ATS.PRGR through the command queue, an Invalidation Completion that
    lets an IOFENCE.C finish, and a stray completion that matches nothing (dropped)."""
    s = await start(dut)
    await set_mode(s, IommuMode.LVL1)
    commands = [
        (4 | 1 << 7 | 5 << 40, 3 << 32 | 0xF << 44),             # ATS.PRGR to RID 5
        (4 | 0 << 7 | 5 << 40, (0x4040_3000 >> 12) << 12),       # ATS.INVAL, one page
        (2 | 1 << 10 | 0xD0 << 32, 0x60_0000 >> 2),              # IOFENCE.C, AV
    ]
    for i, (dw0, dw1) in enumerate(commands):
        s.memory.write(CQ_BASE + 16 * i, dw0.to_bytes(8, "little") + dw1.to_bytes(8, "little"))
    await s.bus.awrite(Offset.CQT, 4, len(commands))
    await settle(s, 100)
    await s.bus.aread(Offset.CQH, 4)                  # at the fence: 2 on both
    s.model.ats_completion(0x7, 0, 1)                 # stray: RID 7 has nothing outstanding
    await s.tb.ats.completion(0x7, itag_vector=1)
    s.model.ats_completion(5, 0, 1)
    await s.tb.ats.completion(5, itag_vector=1)
    await settle(s, 100)
    await s.bus.aread(Offset.CQH, 4)
    await s.bus.aread(Offset.CQCSR, 4)
    if s.memory.read(0x60_0000, 4) != s.model.memory.read(0x60_0000, 4):
        s.bus.mismatches.append("IOFENCE.C data: rtl and model differ")
    await compare_queues(s)
    assert_clean(s)
    assert [m["kind"] for m in s.tb.ats.messages] == [1, 0]


@cocotb.test()
async def random_mix(dut):
    """A seeded random mix against the model: every kind of request on every device and
    address above, with and without NW, page requests of every shape between them, software
    consuming records and clearing pqof/pqmf at random, and IODIR.INVAL_DDT after a random DC
    change (EN_PRI and PRPR flipped on device 5). Replay: COCOTB_RANDOM_SEED=N."""
    rng = random.Random(SEED)
    dut._log.info(f"seed {SEED}")
    s = await start(dut)
    await set_mode(s, IommuMode.LVL1)
    devices = (5, 6, 7, 8, 9)
    iovas = (IOVA, RO_IOVA, UNMAPPED, 0x1234_5123, 0x7_6543_2100)
    translations = 0
    for _ in range(4):
        batch = []
        for _ in range(rng.randrange(8, 20)):
            kind = rng.choice(("untranslated", "translated", "ats", "ats"))
            access = Access.READ if kind == "ats" else rng.choice(list(Access))
            batch.append(tr(rng.choice(devices), rng.choice(iovas), kind, access,
                            nw=kind == "ats" and rng.random() < 0.3))
        await s.translate_all(batch)
        translations += len(batch)
        for _ in range(rng.randrange(2, 8)):
            r, w = rng.random() < 0.8, rng.random() < 0.4
            pv = rng.random() < 0.6
            await page_request(s, rng.choice(devices), page=rng.randrange(1 << 20), pv=pv,
                               pid=rng.randrange(1 << 20) if pv else 0,
                               priv=pv and rng.random() < 0.5, exec=pv and rng.random() < 0.3,
                               r=r, w=w, l=rng.random() < 0.7, prg_index=rng.randrange(512))
        await compare_queues(s)
        await s.bus.awrite(Offset.FQH, 4, await s.bus.aread(Offset.FQT, 4))
        if rng.random() < 0.6:
            # Software takes every record, clears the error bits and pip.
            pqt = await s.bus.aread(Offset.PQT, 4)
            await s.bus.awrite(Offset.PQH, 4, pqt)
            await s.bus.awrite(Offset.PQCSR, 4, 3 | 3 << 8)
            await s.bus.awrite(Offset.IPSR, 4, 1 << 3)
        if rng.random() < 0.5:
            tc = V | EN_ATS | (rng.choice((0, EN_PRI, EN_PRI | PRPR)))
            s.memory.write((DDT_ROOT << 12) + 5 * 32, tc.to_bytes(8, "little"))
            await inval_ddt(s)
    await settle(s)
    await compare_queues(s)
    assert_clean(s)
    assert s.scoreboard.translations == translations


async def inval_ddt(s):
    """IODIR.INVAL_DDT (DV=0) and IOFENCE.C through the command queue, waited for."""
    cqt = await s.bus.aread(Offset.CQT, 4)
    for i, (dw0, dw1) in enumerate(((3, 0), (2, 0))):
        slot = (cqt + i) % 16
        s.memory.write(CQ_BASE + 16 * slot, dw0.to_bytes(8, "little") + dw1.to_bytes(8, "little"))
    await s.bus.awrite(Offset.CQT, 4, (cqt + 2) % 16)
    await settle(s, 60)
    await s.bus.aread(Offset.CQH, 4)
