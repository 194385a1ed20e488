"""iogate.hdl.pdt_walk: the process-directory walker (GET_PC) and the PC checks.

Expected values come from the spec (reference N.1.2-N.1.5): PDI[0] = pid[7:0], PDI[1] =
pid[16:8], PDI[2] = pid[19:17]; a non-leaf PDTE is read at table + PDI[i]*8 (PDI[i], not the
spec text's PDI[2] typo), the 16-byte PC at table + PDI[0]*16, ta first; 265 on a read fault or
an address >= 2**PAS, 266 on V=0, 267 on a reserved bit (PDTE 9:1, 63:54; PC.ta 11:3, 63:32;
PC.fsc 59:44) or an fsc.MODE that is not Bare nor a built first-stage mode (SXL=0: 8 Sv39,
9 Sv48, 10 Sv57). PC.ta: V=0, ENS=1, SUM=2, PSCID 31:12; fsc PPN 43:0, MODE 63:60.
"""

import random

import pytest
from amaranth.sim import Simulator

from iogate.hdl import bits
from iogate.hdl.formats import IosatpMode, PdtpMode
from iogate.hdl.pdt_walk import ProcessDirectoryWalker, pdtw_result_layout

ROOT = 0x100
SV39, SV48 = IosatpMode.SV39, IosatpMode.SV48
PD8, PD17, PD20 = PdtpMode.PD8, PdtpMode.PD17, PdtpMode.PD20
ALL = (PD8, PD17, PD20)


def walk(memory, pid, *, mode, modes=ALL, errors=(), root=ROOT, pas=56,
         iosatp_modes=(SV39, SV48), gmap=None, g_access_faults=(), access=0, out=None):
    """Walk ``pid`` through ``memory`` ({address: doubleword}); (cause or None, pc, reads).

    With ``gmap`` ({GPA page: SPA page}) the PDT is in guest memory: a page not in it is a
    guest-page fault, one in ``g_access_faults`` an access fault; ``out`` gets the result's
    fields and the GPAs translated (``out["gpas"]``).
    """
    dut = ProcessDirectoryWalker(pas=pas, modes=modes, iosatp_modes=iosatp_modes,
                                 gstage=gmap is not None)
    reads, results, gpas = [], [], []

    async def second_stage(ctx):
        while True:
            ctx.set(dut.g_req.ready, 1)
            _, _, req, valid = await ctx.tick().sample(dut.g_req.payload, dut.g_req.valid)
            if not valid:
                continue
            ctx.set(dut.g_req.ready, 0)
            gpas.append(req.gpa)
            page = req.gpa >> 12
            ctx.set(dut.g_resp.payload, {"fault": page not in gmap or page in g_access_faults,
                                         "guest": page not in gmap, "ppn": gmap.get(page, 0)})
            ctx.set(dut.g_resp.valid, 1)
            await ctx.tick().until(dut.g_resp.ready)
            ctx.set(dut.g_resp.valid, 0)

    async def memory_model(ctx):
        while True:
            ctx.set(dut.mem.req.ready, 1)
            _, _, req, valid = await ctx.tick().sample(dut.mem.req.payload, dut.mem.req.valid)
            if not valid:
                continue
            ctx.set(dut.mem.req.ready, 0)
            reads.append(req.addr)
            ctx.set(dut.mem.resp.payload, {"data": memory.get(req.addr, 0),
                                           "err": req.addr in errors})
            ctx.set(dut.mem.resp.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.mem.resp.ready)
                if ready:
                    break
            ctx.set(dut.mem.resp.valid, 0)

    async def testbench(ctx):
        ctx.set(dut.start.payload, {"ppn": root, "mode": mode, "pid": pid,
                                    "g_on": gmap is not None, "access": access})
        ctx.set(dut.start.valid, 1)
        await ctx.tick().until(dut.start.ready)
        ctx.set(dut.start.valid, 0)
        ctx.set(dut.result.ready, 1)
        res, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
        fields = bits.unpack(pdtw_result_layout(), res.as_value().value)
        results.append((fields["cause"] if fields["fault"] else None, fields["pc"]))
        if out is not None:
            out.update(fields, gpas=gpas)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(memory_model, background=True)
    if gmap is not None:
        sim.add_testbench(second_stage, background=True)
    sim.add_testbench(testbench)
    sim.run_until(1e-3)
    assert results, "the walker hung"
    return (*results[0], reads)


def pdi(pid, i):
    return (pid >> (0, 8, 17)[i]) & ((1 << (8, 9, 3)[i]) - 1)


def build(pid, mode, ta, fsc, tables=(0x200, 0x300)):
    """A PDT for ``pid`` in ``mode`` with its PC = (ta, fsc); (memory, addresses in order)."""
    memory, order, table = {}, [], ROOT
    for i, nxt in zip(range(mode.levels - 1, 0, -1), tables, strict=False):
        a = (table << 12) + pdi(pid, i) * 8
        memory[a] = nxt << 10 | 1
        order.append(a)
        table = nxt
    a = (table << 12) + pdi(pid, 0) * 16
    memory[a], memory[a + 8] = ta, fsc
    return memory, order + [a, a + 8]


GOOD_TA = 1 | 1 << 1 | 1 << 2 | 0xABCDE << 12
GOOD_FSC = 8 << 60 | 0x12345


def test_pd8_by_hand():
    # pid 0x5A: PC at 0x10_0000 + 0x5A*16 = 0x10_05A0.
    memory = {0x10_05A0: GOOD_TA, 0x10_05A8: GOOD_FSC}
    cause, pc, reads = walk(memory, 0x5A, mode=PD8)
    assert (cause, reads) == (None, [0x10_05A0, 0x10_05A8])
    assert pc == GOOD_TA | GOOD_FSC << 64


def test_pd20_by_hand():
    # pid 0xA_BCDE: PDI[2] = 5, PDI[1] = 0x0BC, PDI[0] = 0xDE. Root PDTE at 0x10_0028 -> PPN
    # 0x200; middle PDTE at 0x20_0000 + 0xBC*8 = 0x20_05E0 -> PPN 0x300; PC at 0x30_0DE0.
    memory = {0x10_0028: 0x200 << 10 | 1, 0x20_05E0: 0x300 << 10 | 1,
              0x30_0DE0: GOOD_TA, 0x30_0DE8: GOOD_FSC}
    cause, pc, reads = walk(memory, 0xA_BCDE, mode=PD20)
    assert (cause, reads) == (None, [0x10_0028, 0x20_05E0, 0x30_0DE0, 0x30_0DE8])
    assert pc == GOOD_TA | GOOD_FSC << 64


@pytest.mark.parametrize("mode", ALL, ids=lambda m: m.name)
def test_random_walks(mode):
    seed = random.randrange(1 << 32)
    print("seed", seed)
    rng = random.Random(seed)
    for _ in range(8):
        pid = rng.randrange(1 << mode.pid_bits)
        ta = 1 | rng.randrange(4) << 1 | rng.randrange(1 << 20) << 12
        fsc = rng.choice([0, 8, 9]) << 60 | rng.randrange(1 << 44)
        memory, order = build(pid, mode, ta, fsc, tables=(rng.randrange(1, 1 << 30),
                                                          rng.randrange(1, 1 << 30)))
        cause, pc, reads = walk(memory, pid, mode=mode)
        assert (cause, reads, pc) == (None, order, ta | fsc << 64)


@pytest.mark.parametrize("mode", ALL, ids=lambda m: m.name)
def test_read_faults_are_265(mode):
    pid = 0x9_8765 & ((1 << mode.pid_bits) - 1)
    memory, order = build(pid, mode, GOOD_TA, GOOD_FSC)
    for k, bad in enumerate(order):
        cause, _, reads = walk(memory, pid, mode=mode, errors={bad})
        assert (cause, reads) == (265, order[:k + 1])


def test_beyond_pas_is_265_without_a_read():
    cause, _, reads = walk({}, 1, mode=PD8, root=1 << 28, pas=40)
    assert (cause, reads) == (265, [])


@pytest.mark.parametrize("mode", (PD17, PD20), ids=lambda m: m.name)
@pytest.mark.parametrize("pdte, cause", [
    (0x200 << 10, 266),                 # V=0
    (0x200 << 10 | 1 | 1 << 1, 267),    # bit 1 reserved
    (0x200 << 10 | 1 | 1 << 9, 267),    # bit 9 reserved
    (0x200 << 10 | 1 | 1 << 54, 267),   # bit 54 reserved
    (0x200 << 10 | 1 | 1 << 63, 267),   # bit 63 reserved
    (1 << 1, 266),                      # V=0: the rest is not looked at
])
def test_non_leaf_pdte(mode, pdte, cause):
    pid = 0x1_2345 & ((1 << mode.pid_bits) - 1)
    memory, order = build(pid, mode, GOOD_TA, GOOD_FSC)
    memory[order[0]] = pdte
    got, _, reads = walk(memory, pid, mode=mode)
    assert (got, reads) == (cause, order[:1])


@pytest.mark.parametrize("ta, fsc, cause, n_reads", [
    (0, GOOD_FSC, 266, 1),                       # V=0: fsc not read
    (0xFFFF_FFFF_FFFF_FFFE, 0xFFFF << 44, 266, 1),   # V=0 with junk
    (GOOD_TA | 1 << 3, GOOD_FSC, 267, 2),        # ta bit 3 reserved
    (GOOD_TA | 1 << 11, GOOD_FSC, 267, 2),       # ta bit 11 reserved
    (GOOD_TA | 1 << 32, GOOD_FSC, 267, 2),       # ta bit 32 reserved (no RCID/MCID in a PC)
    (GOOD_TA | 1 << 63, GOOD_FSC, 267, 2),
    (GOOD_TA, GOOD_FSC | 1 << 44, 267, 2),       # fsc bit 44 reserved
    (GOOD_TA, GOOD_FSC | 1 << 59, 267, 2),
    (GOOD_TA, 10 << 60, 267, 2),                 # Sv57 not built here
    (GOOD_TA, 1 << 60, 267, 2),                  # reserved encoding
    (GOOD_TA, 14 << 60, 267, 2),                 # custom encoding
    (GOOD_TA, 9 << 60, None, 2),                 # Sv48 built
    (GOOD_TA, 0x123, None, 2),                   # Bare with a PPN: legal
    (1, 0, None, 2),                             # ENS=SUM=0, PSCID 0
])
def test_pc_checks(ta, fsc, cause, n_reads):
    memory, order = build(0x33, PD8, ta, fsc)
    got, pc, reads = walk(memory, 0x33, mode=PD8)
    assert (got, reads) == (cause, order[:n_reads])
    if cause is None:
        assert pc == ta | fsc << 64


def test_modes_not_built_are_refused():
    with pytest.raises(ValueError, match="modes must be"):
        ProcessDirectoryWalker(pas=56, modes=(), iosatp_modes=(SV39,))
    with pytest.raises(ValueError, match="pas must be"):
        ProcessDirectoryWalker(pas=60, modes=(PD8,), iosatp_modes=(SV39,))


# --- A PDT in guest memory (GET_PC with iohgatp not Bare): every entry's GPA is translated
# before it is read; the PC's two doublewords share one translation.
GPA_PAGES = {ROOT: 0x9100, 0x200: 0x9200, 0x300: 0x9300}


def guest_to_host(memory):
    """``memory`` (at GPAs) moved to the SPAs GPA_PAGES gives."""
    return {(GPA_PAGES[a >> 12] << 12) | (a & 0xFFF): v for a, v in memory.items()}


@pytest.mark.parametrize("mode", ALL, ids=lambda m: m.name)
def test_guest_pdt_walk(mode):
    pid = 0xA_BCDE & ((1 << mode.pid_bits) - 1)
    memory, order = build(pid, mode, GOOD_TA, GOOD_FSC)
    out = {}
    cause, pc, reads = walk(guest_to_host(memory), pid, mode=mode, gmap=GPA_PAGES, out=out)
    assert cause is None and pc == GOOD_TA | GOOD_FSC << 64
    assert reads == [(GPA_PAGES[a >> 12] << 12) | (a & 0xFFF) for a in order]
    assert out["gpas"] == order[:-1]          # one translation per PDTE and one per PC


@pytest.mark.parametrize("access, cause", [(0, 21), (1, 23), (2, 20)])
def test_guest_pdt_guest_page_fault(access, cause):
    # The middle PDT page is not mapped by the second stage: the original access's
    # guest-page fault, iotval2 = the PDTE's GPA with bit 0 (implicit) set.
    pid = 0x1_2345
    memory, order = build(pid, PD17, GOOD_TA, GOOD_FSC)
    gmap = {ROOT: 0x9100}
    out = {}
    got, _, reads = walk(guest_to_host({order[0]: memory[order[0]]}), pid, mode=PD17,
                         gmap=gmap, access=access, out=out)
    assert got == cause and out["iotval2"] == order[1] | 1
    assert len(reads) == 1


def test_guest_pdt_access_fault_is_265():
    memory, order = build(0x33, PD8, GOOD_TA, GOOD_FSC)
    got, _, reads = walk(guest_to_host(memory), 0x33, mode=PD8, gmap=GPA_PAGES,
                         g_access_faults={ROOT})
    assert (got, reads) == (265, [])
