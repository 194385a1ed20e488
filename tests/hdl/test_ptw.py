"""iogate.hdl.ptw: the walker against a dictionary of memory.

Every expected value here is worked by hand from the Privileged spec's walks (Sv39, Sv48,
the G-stage Sv39x4/Sv48x4 with their 16 KiB root and 2-bit-wider top index, two-stage
translation with implicit reads of first-stage PTEs, Svnapot, Svpbmt) and the RISC-V
IOMMU fault record (spec "Fault/Event-Queue (FQ)": causes, and iotval2 = GPA[63:2] with bit 0 for an
implicit access). PTE bits are written as literals (V=bit 0 ... D=bit 7, PPN at bit 10, PBMT at
62:61, N at 63), not through the layouts under test; modes as numbers (Sv39 = 8, Sv48 = 9,
Sv39x4 = 8, Sv48x4 = 9, Bare = 0).
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import bits
from iogate.hdl.formats import IosatpMode
from iogate.hdl.port import Access
from iogate.hdl.ptw import PageTableWalker, ptw_result_layout

V, R, W, X, U, G, A, D = (1 << i for i in range(8))
RW_LEAF = V | R | W | U | A | D


def pte(ppn, flags, pbmt=0, n=0, rsvd=0):
    """A PTE from the Privileged spec's Sv39 figure."""
    return flags | (ppn << 10) | (rsvd << 54) | (pbmt << 61) | (n << 63)


# Page-table layout shared by the cases: root at PPN 0x80000, IOVA with VPN[2]=1,
# VPN[1]=2, VPN[0]=3, offset 0x123.
ROOT = 0x80000
IOVA = (1 << 30) | (2 << 21) | (3 << 12) | 0x123        # 0x4040_3123
L2_ADDR = 0x8000_0000 + 1 * 8                            # root + VPN[2]*8
L1_ADDR = 0x8000_1000 + 2 * 8                            # table 0x80001 + VPN[1]*8
L0_ADDR = 0x8000_2000 + 3 * 8                            # table 0x80002 + VPN[0]*8
TO_L1 = pte(0x80001, V)
TO_L0 = pte(0x80002, V)

READ_PF, WRITE_PF, EXEC_PF = 13, 15, 12
READ_AF, WRITE_AF, EXEC_AF = 5, 7, 1

SIZE_4K, SIZE_64K, SIZE_2M, SIZE_1G = 0, 1, 2, 3

OK = "ok"


SV39, SV48, BARE = 8, 9, 0
SV39X4, SV48X4 = 8, 9
SMALL = dict(modes=(SV39,))
FULL = dict(modes=(SV39, SV48), g_modes=(SV39X4, SV48X4))


def walk(memory, iova=IOVA, access=Access.READ, *, root=ROOT, mode=SV39, g_mode=BARE,
         g_root=0, errors=(), svpbmt=False, pas=56, walks=1, build=SMALL, priv=None, sum_=0):
    """Run ``walks`` identical walks; return the results and the addresses read.

    ``priv`` (0 User, 1 supervisor) builds a walker with the privilege inputs and gives it
    ``priv`` and ``sum_``; ``None`` builds one without them."""
    dut = PageTableWalker(pas=pas, svpbmt=svpbmt, priv=priv is not None, **build)
    extra = {} if priv is None else {"priv": priv, "sum": sum_}
    results, reads = [], []

    async def memory_model(ctx):
        # A background process: plain ticks only, since `until` cannot be abandoned
        # cleanly when the simulation ends.
        while True:
            ctx.set(dut.mem.req.ready, 1)
            _, _, req, valid = await ctx.tick().sample(dut.mem.req.payload, dut.mem.req.valid)
            if not valid:
                continue
            ctx.set(dut.mem.req.ready, 0)
            reads.append(req.addr)
            for _ in range(2):                      # some memory latency
                await ctx.tick()
            ctx.set(dut.mem.resp.payload, {"data": memory.get(req.addr, 0),
                                           "err": req.addr in errors})
            ctx.set(dut.mem.resp.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.mem.resp.ready)
                if ready:
                    break
            ctx.set(dut.mem.resp.valid, 0)

    async def testbench(ctx):
        for _ in range(walks):
            ctx.set(dut.start.payload, {"root_ppn": root, "iova": iova, "access": access,
                                        "mode": mode, "g_mode": g_mode, "g_root": g_root,
                                        **extra})
            ctx.set(dut.start.valid, 1)
            await ctx.tick().until(dut.start.ready)
            ctx.set(dut.start.valid, 0)
            ctx.set(dut.result.ready, 1)
            res, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
            ctx.set(dut.result.ready, 0)
            results.append(bits.unpack(ptw_result_layout(priv is not None),
                                       res.as_value().value))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(memory_model, background=True)
    sim.add_testbench(testbench)
    sim.run_until(1e-3)
    assert len(results) == walks, "the walker hung"
    return results, reads


def three_level(leaf, l1=TO_L0, l2=TO_L1):
    return {L2_ADDR: l2, L1_ADDR: l1, L0_ADDR: leaf}


# (name, memory, access, expected): expected is (ppn, size, r, w, x, pbmt) or a cause;
# the number of reads is checked separately.
LEAVES = [
    ("4k_rw_read", three_level(pte(0x12345, RW_LEAF)), Access.READ,
     (0x12345, SIZE_4K, 1, 1, 0, 0)),
    ("4k_rw_write", three_level(pte(0x12345, RW_LEAF)), Access.WRITE,
     (0x12345, SIZE_4K, 1, 1, 0, 0)),
    ("4k_x_exec", three_level(pte(0x12345, V | X | U | A)), Access.EXECUTE,
     (0x12345, SIZE_4K, 0, 0, 1, 0)),
    # 2 MiB leaf at level 1: PPN[0] (9 bits) comes from VPN[0]=3.
    ("2m", {L2_ADDR: TO_L1, L1_ADDR: pte(0x12200, RW_LEAF)}, Access.READ,
     (0x12203, SIZE_2M, 1, 1, 0, 0)),
    # 1 GiB leaf at level 2: PPN[1:0] (18 bits) come from VPN[1]=2, VPN[0]=3.
    ("1g", {L2_ADDR: pte(0x40000, RW_LEAF)}, Access.READ,
     (0x40000 | (2 << 9) | 3, SIZE_1G, 1, 1, 0, 0)),
    # Svnapot 64 KiB: N=1, PPN[3:0]=1000; PPN[3:0] of the result is VPN[3:0]=3.
    ("64k_napot", three_level(pte(0x12348, RW_LEAF, n=1)), Access.READ,
     (0x12343, SIZE_64K, 1, 1, 0, 0)),
    # D=0: a read succeeds, the write permission is not granted (w = W & D).
    ("d0_read", three_level(pte(0x12345, V | R | W | U | A)), Access.READ,
     (0x12345, SIZE_4K, 1, 0, 0, 0)),
]

FAULTS = [
    ("l2_invalid", {L2_ADDR: 0}, Access.READ, READ_PF, 1),
    ("l2_invalid_write", {L2_ADDR: 0}, Access.WRITE, WRITE_PF, 1),
    ("l2_invalid_exec", {L2_ADDR: 0}, Access.EXECUTE, EXEC_PF, 1),
    ("w_without_r", three_level(pte(0x12345, V | W | U | A | D)), Access.WRITE, WRITE_PF, 3),
    ("reserved_bit_54", three_level(pte(0x12345, RW_LEAF, rsvd=1)), Access.READ, READ_PF, 3),
    ("reserved_bit_60", three_level(pte(0x12345, RW_LEAF, rsvd=0x40)), Access.READ,
     READ_PF, 3),
    ("reserved_in_nonleaf", three_level(pte(0x12345, RW_LEAF), l2=pte(0x80001, V, rsvd=2)),
     Access.READ, READ_PF, 1),
    ("pbmt_without_svpbmt", three_level(pte(0x12345, RW_LEAF, pbmt=1)), Access.READ,
     READ_PF, 3),
    ("nonleaf_a", three_level(pte(0x12345, RW_LEAF), l1=pte(0x80002, V | A)), Access.READ,
     READ_PF, 2),
    ("nonleaf_d", three_level(pte(0x12345, RW_LEAF), l1=pte(0x80002, V | D)), Access.READ,
     READ_PF, 2),
    ("nonleaf_u", three_level(pte(0x12345, RW_LEAF), l2=pte(0x80001, V | U)), Access.READ,
     READ_PF, 1),
    ("nonleaf_n", three_level(pte(0x12345, RW_LEAF), l1=pte(0x80002, V, n=1)), Access.READ,
     READ_PF, 2),
    ("nonleaf_pbmt", three_level(pte(0x12345, RW_LEAF), l1=pte(0x80002, V, pbmt=2)),
     Access.READ, READ_PF, 2),
    ("no_leaf_at_level_0", three_level(pte(0x80003, V)), Access.READ, READ_PF, 3),
    ("misaligned_2m", {L2_ADDR: TO_L1, L1_ADDR: pte(0x12201, RW_LEAF)}, Access.READ,
     READ_PF, 2),
    ("misaligned_1g", {L2_ADDR: pte(0x40200, RW_LEAF)}, Access.WRITE, WRITE_PF, 1),
    ("napot_bad_ppn", three_level(pte(0x12340, RW_LEAF, n=1)), Access.READ, READ_PF, 3),
    ("napot_bad_ppn_1001", three_level(pte(0x12349, RW_LEAF, n=1)), Access.READ, READ_PF, 3),
    ("napot_at_level_1", {L2_ADDR: TO_L1, L1_ADDR: pte(0x12208, RW_LEAF, n=1)}, Access.READ,
     READ_PF, 2),
    ("u0", three_level(pte(0x12345, V | R | W | A | D)), Access.READ, READ_PF, 3),
    ("a0", three_level(pte(0x12345, V | R | W | U | D)), Access.READ, READ_PF, 3),
    ("a0_exec", three_level(pte(0x12345, V | R | X | U | D)), Access.EXECUTE, EXEC_PF, 3),
    ("d0_write", three_level(pte(0x12345, V | R | W | U | A)), Access.WRITE, WRITE_PF, 3),
    ("read_only_write", three_level(pte(0x12345, V | R | U | A | D)), Access.WRITE,
     WRITE_PF, 3),
    ("exec_only_read", three_level(pte(0x12345, V | X | U | A)), Access.READ, READ_PF, 3),
    ("no_x_exec", three_level(pte(0x12345, RW_LEAF)), Access.EXECUTE, EXEC_PF, 3),
]


BUILDS = pytest.mark.parametrize("build", [SMALL, FULL], ids=["sv39_only", "full"])


@BUILDS
@pytest.mark.parametrize("name, memory, access, expected", LEAVES, ids=[c[0] for c in LEAVES])
def test_leaf(name, memory, access, expected, build):
    (res,), reads = walk(memory, access=access, build=build)
    ppn, size, r, w, x, pbmt = expected
    assert res["fault"] == 0
    assert (res["ppn"], res["size"], res["r"], res["w"], res["x"], res["pbmt"]) == expected
    levels = {SIZE_1G: 1, SIZE_2M: 2}.get(size, 3)
    assert reads == [L2_ADDR, L1_ADDR, L0_ADDR][:levels]


@BUILDS
@pytest.mark.parametrize("name, memory, access, cause, nreads", FAULTS,
                         ids=[c[0] for c in FAULTS])
def test_page_fault(name, memory, access, cause, nreads, build):
    (res,), reads = walk(memory, access=access, build=build)
    assert (res["fault"], res["cause"], res["iotval2"]) == (1, cause, 0)
    assert reads == [L2_ADDR, L1_ADDR, L0_ADDR][:nreads]
    assert (res["r"], res["w"], res["x"], res["ppn"]) == (0, 0, 0, 0)


@pytest.mark.parametrize("iova, nreads", [
    (1 << 39, 0),                                # bit 39 set, bit 38 clear
    (1 << 63, 0),
    ((1 << 38) | 0x1000, 0),                     # bit 38 set, 63:39 clear
    (0xFFFF_FFC0_0000_0000, 1),                  # canonical: 63:38 all set, VPN[2]=256
])
def test_canonical(iova, nreads):
    (res,), reads = walk({}, iova=iova)
    assert (res["fault"], res["cause"]) == (1, READ_PF)
    assert len(reads) == nreads
    if nreads:
        assert reads == [0x8000_0000 + 256 * 8]


@pytest.mark.parametrize("error_at, access, cause, nreads", [
    (L2_ADDR, Access.READ, READ_AF, 1),
    (L1_ADDR, Access.WRITE, WRITE_AF, 2),
    (L0_ADDR, Access.EXECUTE, EXEC_AF, 3),
])
def test_access_fault(error_at, access, cause, nreads):
    # Two walks: the error must not leave the walker stuck.
    memory = three_level(pte(0x12345, V | R | W | X | U | A | D))
    results, reads = walk(memory, access=access, errors={error_at}, walks=2)
    for res in results:
        assert (res["fault"], res["cause"]) == (1, cause)
    assert reads == [L2_ADDR, L1_ADDR, L0_ADDR][:nreads] * 2


def test_beyond_pas_is_access_fault_without_read():
    # PAS=40: a root table at PPN 1<<28 is at 2**40, outside the physical address space.
    (res,), reads = walk({}, root=1 << 28, pas=40, access=Access.WRITE)
    assert (res["fault"], res["cause"]) == (1, WRITE_AF)
    assert reads == []


@pytest.mark.parametrize("pbmt, expected", [(0, (0, 0)), (1, (0, 1)), (2, (0, 2)),
                                            (3, (1, READ_PF))])
def test_svpbmt(pbmt, expected):
    (res,), _ = walk(three_level(pte(0x12345, RW_LEAF, pbmt=pbmt)), svpbmt=True)
    if expected[0]:
        assert (res["fault"], res["cause"]) == expected
    else:
        assert (res["fault"], res["pbmt"]) == expected


@pytest.mark.parametrize("memory, g", [
    (three_level(pte(0x12345, RW_LEAF)), 0),
    (three_level(pte(0x12345, RW_LEAF | G)), 1),
    # A global non-leaf makes every mapping below it global (Privileged spec, G bit).
    (three_level(pte(0x12345, RW_LEAF), l2=pte(0x80001, V | G)), 1),
])
def test_global(memory, g):
    (res,), _ = walk(memory)
    assert (res["fault"], res["g"]) == (0, g)


def translation(res):
    return (res["ppn"], res["size"], res["r"], res["w"], res["x"])


# --- Sv48: root 0x80000; IOVA 0x80_8060_4567 has VPN[3]=1, VPN[2]=2, VPN[1]=3, VPN[0]=4.
IOVA48 = (1 << 39) | (2 << 30) | (3 << 21) | (4 << 12) | 0x567
S48 = [0x8000_0008, 0x8000_1010, 0x8000_2018, 0x8000_3020]     # table + VPN[i]*8
SIZE_512G = 4
S48_L1 = pte(0x80003, V)


def four_level(leaf, l1=S48_L1, l2=TO_L0, l3=TO_L1):
    return {S48[0]: l3, S48[1]: l2, S48[2]: l1, S48[3]: leaf}


# (name, memory, access, expected (ppn, size, r, w, x) or a cause, reads)
SV48_CASES = [
    ("4k", four_level(pte(0x12345, RW_LEAF)), Access.WRITE, (0x12345, SIZE_4K, 1, 1, 0), 4),
    # 2 MiB at level 1: PPN[0] from VPN[0]=4.
    ("2m", {S48[0]: TO_L1, S48[1]: TO_L0, S48[2]: pte(0x12200, RW_LEAF)}, Access.READ,
     (0x12204, SIZE_2M, 1, 1, 0), 3),
    # 1 GiB at level 2: PPN[1:0] from VPN[1]=3, VPN[0]=4.
    ("1g", {S48[0]: TO_L1, S48[1]: pte(0x40000, RW_LEAF)}, Access.READ,
     (0x40000 | 3 << 9 | 4, SIZE_1G, 1, 1, 0), 2),
    # 512 GiB at level 3: PPN[2:0] (27 bits) from VPN[2]=2, VPN[1]=3, VPN[0]=4.
    ("512g", {S48[0]: pte(0x800_0000, RW_LEAF)}, Access.READ,
     (0x800_0000 | 2 << 18 | 3 << 9 | 4, SIZE_512G, 1, 1, 0), 1),
    ("64k_napot", four_level(pte(0x12348, RW_LEAF, n=1)), Access.READ,
     (0x12344, SIZE_64K, 1, 1, 0), 4),
    ("misaligned_512g", {S48[0]: pte(0x800_0100, RW_LEAF)}, Access.READ, READ_PF, 1),
    ("misaligned_1g", {S48[0]: TO_L1, S48[1]: pte(0x40100, RW_LEAF)}, Access.WRITE,
     WRITE_PF, 2),
    ("nonleaf_a_level_3", four_level(pte(0x12345, RW_LEAF), l3=pte(0x80001, V | A)),
     Access.READ, READ_PF, 1),
    ("no_leaf_at_level_0", four_level(pte(0x80004, V)), Access.EXECUTE, EXEC_PF, 4),
    ("d0_write", four_level(pte(0x12345, V | R | W | U | A)), Access.WRITE, WRITE_PF, 4),
]


@pytest.mark.parametrize("name, memory, access, expected, nreads", SV48_CASES,
                         ids=[c[0] for c in SV48_CASES])
def test_sv48(name, memory, access, expected, nreads):
    (res,), reads = walk(memory, IOVA48, access, mode=SV48, build=FULL)
    if isinstance(expected, tuple):
        assert (res["fault"], translation(res)) == (0, expected)
    else:
        assert (res["fault"], res["cause"], res["iotval2"]) == (1, expected, 0)
    assert reads == S48[:nreads]


@pytest.mark.parametrize("iova, reads", [
    (1 << 48, []),                                   # bit 48 set, bit 47 clear
    (1 << 47, []),                                   # bit 47 set, 63:48 clear
    (0xFFFF_8000_0000_0000, [0x8000_0000 + 256 * 8]),  # canonical: VPN[3]=256
    (1 << 39, [0x8000_0000 + 1 * 8]),                # not Sv39-canonical, Sv48-canonical
])
def test_sv48_canonical(iova, reads):
    (res,), got = walk({}, iova, mode=SV48, build=FULL)
    assert (res["fault"], res["cause"]) == (1, READ_PF)
    assert got == reads


# --- Second stage only (iosatp Bare): the IOVA is a GPA.
# Sv39x4: 16 KiB root at PPN 0x90000. GPA 0x180_4040_3123 has VPN[2] = GPA[40:30] = 0x601
# (11 bits: the root index), VPN[1]=2, VPN[0]=3.
GPA39 = (3 << 39) | (1 << 30) | (2 << 21) | (3 << 12) | 0x123
G39 = [0x9000_0000 + 0x601 * 8, 0x9100_0000 + 2 * 8, 0x9200_0000 + 3 * 8]
G_TO_L1, G_TO_L0 = pte(0x91000, V), pte(0x92000, V)
# Sv48x4: root at PPN 0xA0000. GPA 0x3_0080_8060_4567 has VPN[3] = GPA[49:39] = 0x601,
# VPN[2]=2 (GPA bits 40:39 belong to VPN[3] here, not to this index), VPN[1]=3, VPN[0]=4.
GPA48 = (3 << 48) | (1 << 39) | (2 << 30) | (3 << 21) | (4 << 12) | 0x567
G48 = [0xA000_0000 + 0x601 * 8, 0xA100_0000 + 2 * 8, 0xA200_0000 + 3 * 8,
       0xA300_0000 + 4 * 8]
READ_GPF, WRITE_GPF, EXEC_GPF = 21, 23, 20


def g39(leaf, l1=G_TO_L0, l2=G_TO_L1):
    return {G39[0]: l2, G39[1]: l1, G39[2]: leaf}


def g48(leaf):
    return {G48[0]: pte(0xA1000, V), G48[1]: pte(0xA2000, V), G48[2]: pte(0xA3000, V),
            G48[3]: leaf}


# (name, g_mode, memory, iova, access, expected translation or (cause, iotval2), reads)
SECOND_STAGE = [
    ("sv39x4_4k", SV39X4, g39(pte(0x12345, RW_LEAF)), GPA39, Access.READ,
     (0x12345, SIZE_4K, 1, 1, 0), G39),
    # 1 GiB at the root: PPN[1:0] from GPA VPN[1]=2, VPN[0]=3.
    ("sv39x4_1g", SV39X4, {G39[0]: pte(0x40000, RW_LEAF)}, GPA39, Access.READ,
     (0x40000 | 2 << 9 | 3, SIZE_1G, 1, 1, 0), G39[:1]),
    ("sv39x4_2m", SV39X4, {G39[0]: G_TO_L1, G39[1]: pte(0x12200, RW_LEAF)}, GPA39,
     Access.WRITE, (0x12203, SIZE_2M, 1, 1, 0), G39[:2]),
    ("sv39x4_64k", SV39X4, g39(pte(0x12348, RW_LEAF, n=1)), GPA39, Access.READ,
     (0x12343, SIZE_64K, 1, 1, 0), G39),
    # G bits are ignored in G-stage PTEs (not reserved, not a global mapping).
    ("sv39x4_g_ignored", SV39X4, g39(pte(0x12345, RW_LEAF | G), l2=pte(0x91000, V | G)),
     GPA39, Access.READ, (0x12345, SIZE_4K, 1, 1, 0), G39),
    ("sv39x4_d0_read", SV39X4, g39(pte(0x12345, V | R | W | U | A)), GPA39, Access.READ,
     (0x12345, SIZE_4K, 1, 0, 0), G39),
    # Guest-page faults at each level: iotval2 = GPA[63:2] (bit 0 clear: not implicit).
    ("sv39x4_root_invalid", SV39X4, {}, GPA39, Access.READ,
     (READ_GPF, 0x180_4040_3120), G39[:1]),
    ("sv39x4_l1_invalid", SV39X4, {G39[0]: G_TO_L1}, GPA39, Access.WRITE,
     (WRITE_GPF, 0x180_4040_3120), G39[:2]),
    ("sv39x4_l0_invalid", SV39X4, g39(0), GPA39, Access.EXECUTE,
     (EXEC_GPF, 0x180_4040_3120), G39),
    # The G-stage checks every access as User: U=0 faults.
    ("sv39x4_u0", SV39X4, g39(pte(0x12345, V | R | W | A | D)), GPA39, Access.READ,
     (READ_GPF, 0x180_4040_3120), G39),
    ("sv39x4_a0", SV39X4, g39(pte(0x12345, V | R | W | U | D)), GPA39, Access.READ,
     (READ_GPF, 0x180_4040_3120), G39),
    ("sv39x4_d0_write", SV39X4, g39(pte(0x12345, V | R | W | U | A)), GPA39, Access.WRITE,
     (WRITE_GPF, 0x180_4040_3120), G39),
    ("sv39x4_no_x", SV39X4, g39(pte(0x12345, RW_LEAF)), GPA39, Access.EXECUTE,
     (EXEC_GPF, 0x180_4040_3120), G39),
    ("sv39x4_misaligned_2m", SV39X4, {G39[0]: G_TO_L1, G39[1]: pte(0x12201, RW_LEAF)},
     GPA39, Access.READ, (READ_GPF, 0x180_4040_3120), G39[:2]),
    ("sv39x4_reserved_bit", SV39X4, g39(pte(0x12345, RW_LEAF, rsvd=1)), GPA39, Access.READ,
     (READ_GPF, 0x180_4040_3120), G39),
    # GPA bits 63:41 must be zero: a guest-page fault before any read.
    ("sv39x4_gpa_bit_41", SV39X4, {}, 1 << 41, Access.READ, (READ_GPF, 1 << 41), []),
    ("sv39x4_gpa_all_ones", SV39X4, {}, 0xFFFF_FFFF_FFFF_F123, Access.WRITE,
     (WRITE_GPF, 0xFFFF_FFFF_FFFF_F120), []),
    # The highest Sv39x4 GPA page: root index 0x7FF, the last doubleword of 16 KiB.
    ("sv39x4_top_of_root", SV39X4, {}, (1 << 41) - 0x1000, Access.READ,
     (READ_GPF, (1 << 41) - 0x1000), [0x9000_0000 + 0x7FF * 8]),
    ("sv48x4_4k", SV48X4, g48(pte(0x12345, RW_LEAF)), GPA48, Access.READ,
     (0x12345, SIZE_4K, 1, 1, 0), G48),
    # 512 GiB at the root: PPN[2:0] from VPN[2]=2, VPN[1]=3, VPN[0]=4.
    ("sv48x4_512g", SV48X4, {G48[0]: pte(0x800_0000, RW_LEAF)}, GPA48, Access.READ,
     (0x800_0000 | 2 << 18 | 3 << 9 | 4, SIZE_512G, 1, 1, 0), G48[:1]),
    ("sv48x4_l0_invalid", SV48X4, g48(0), GPA48, Access.READ,
     (READ_GPF, 0x3_0080_8060_4564), G48),
    ("sv48x4_gpa_bit_50", SV48X4, {}, 1 << 50, Access.EXECUTE, (EXEC_GPF, 1 << 50), []),
    ("sv48x4_top_of_root", SV48X4, {}, (1 << 50) - 0x1000, Access.READ,
     (READ_GPF, (1 << 50) - 0x1000), [0xA000_0000 + 0x7FF * 8]),
]


@pytest.mark.parametrize("name, g_mode, memory, iova, access, expected, reads", SECOND_STAGE,
                         ids=[c[0] for c in SECOND_STAGE])
def test_second_stage_only(name, g_mode, memory, iova, access, expected, reads):
    g_root = {SV39X4: 0x90000, SV48X4: 0xA0000}[g_mode]
    (res,), got = walk(memory, iova, access, root=0, mode=BARE, g_mode=g_mode, g_root=g_root,
                       build=FULL)
    if len(expected) == 5:
        assert (res["fault"], translation(res), res["g"]) == (0, expected, 0)
    else:
        assert (res["fault"], res["cause"], res["iotval2"]) == (1, *expected)
        assert translation(res) == (0, 0, 0, 0, 0)
    assert got == reads


# --- Two stages: Sv39 over Sv39x4, IOVA 0x4040_3123 (VPN 1, 2, 3), first-stage root at
# guest PPN 0x100. The second stage maps:
#   GPA 0 - 2 MiB        -> SPA 0x8000_0000 (a 2 MiB leaf under root index 0): the
#                           first-stage tables, guest pages 0x100-0x102;
#   GPA 0x8020_0000 page -> PPN 0x12345 (root index 2, level-1 index 1, level-0 index 0).
# The first-stage leaf maps the IOVA's page to guest PPN 0x80200: GPA 0x8020_0123.
G_RW = V | R | W | U | A | D
TWO_STAGE_MEMORY = {
    0x9000_0000: pte(0x91000, V),
    0x9100_0000: pte(0x80000, G_RW),
    0x9000_0010: pte(0x93000, V),
    0x9300_0008: pte(0x94000, V),
    0x9400_0000: pte(0x12345, G_RW),
    0x8010_0008: pte(0x101, V),
    0x8010_1010: pte(0x102, V),
    0x8010_2018: pte(0x80200, RW_LEAF),
}
G_TABLES = [0x9000_0000, 0x9100_0000]               # the second stage for a table's GPA
TWO_STAGE_READS = (G_TABLES + [0x8010_0008] + G_TABLES + [0x8010_1010] + G_TABLES
                   + [0x8010_2018] + [0x9000_0010, 0x9300_0008, 0x9400_0000])
FINAL_GPA = 0x8020_0123


def two_stage(changes=None, access=Access.READ, *, root=0x100, errors=(), svpbmt=False,
              walks=1):
    memory = {**TWO_STAGE_MEMORY, **(changes or {})}
    results, reads = walk(memory, IOVA, access, root=root, mode=SV39, g_mode=SV39X4,
                          g_root=0x90000, errors=errors, svpbmt=svpbmt, walks=walks,
                          build=FULL)
    return (results[0] if walks == 1 else results), reads


# (name, changes, access, expected (ppn, size, r, w, x), number of reads)
TWO_STAGE_LEAVES = [
    ("4k_4k", {}, Access.READ, (0x12345, SIZE_4K, 1, 1, 0), 12),
    # The G-stage checks a first-stage PTE read as a read, whatever the access: tables
    # mapped read-only and clean still serve a write.
    ("implicit_is_a_read", {0x9100_0000: pte(0x80000, V | R | U | A)}, Access.WRITE,
     (0x12345, SIZE_4K, 1, 1, 0), 12),
    # Permissions are those of both stages.
    ("g_read_only", {0x9400_0000: pte(0x12345, V | R | U | A | D)}, Access.READ,
     (0x12345, SIZE_4K, 1, 0, 0), 12),
    ("g_d0", {0x9400_0000: pte(0x12345, V | R | W | U | A)}, Access.READ,
     (0x12345, SIZE_4K, 1, 0, 0), 12),
    ("s1_read_only", {0x8010_2018: pte(0x80200, V | R | U | A | D)}, Access.READ,
     (0x12345, SIZE_4K, 1, 0, 0), 12),
    ("exec_both", {0x8010_2018: pte(0x80200, V | R | X | U | A),
                   0x9400_0000: pte(0x12345, V | R | X | U | A)}, Access.EXECUTE,
     (0x12345, SIZE_4K, 1, 0, 1), 12),
    # The pair maps the smaller page. A 2 MiB first-stage leaf at level 1 gives GPA
    # 0x8020_0000 | IOVA[20:0] = 0x8020_3123, whose second-stage level-0 index is 3.
    ("s1_2m_g_4k", {0x8010_1010: pte(0x80200, RW_LEAF), 0x9400_0018: pte(0x55555, G_RW)},
     Access.READ, (0x55555, SIZE_4K, 1, 1, 0), 9),
    # A 2 MiB second-stage leaf (level-1 index 1) under a 4 KiB first-stage page.
    ("s1_4k_g_2m", {0x9300_0008: pte(0x12200, G_RW)}, Access.READ,
     (0x12200, SIZE_4K, 1, 1, 0), 11),
    ("s1_2m_g_2m", {0x8010_1010: pte(0x80200, RW_LEAF), 0x9300_0008: pte(0x12200, G_RW)},
     Access.READ, (0x12203, SIZE_2M, 1, 1, 0), 8),
    # A 1 GiB first-stage leaf at the root: GPA 0x8000_0000 | IOVA[29:0] = 0x8040_3123,
    # second-stage level-1 index 2: a 2 MiB leaf 0x12400; PPN[0] from GPA VPN[0]=3.
    ("s1_1g_g_2m", {0x8010_0008: pte(0x80000, RW_LEAF), 0x9300_0010: pte(0x12400, G_RW)},
     Access.READ, (0x12403, SIZE_2M, 1, 1, 0), 5),
    # 64 KiB NAPOT first-stage: guest PPN 0x80200 | VPN[3:0]=3, under a 2 MiB G leaf.
    ("s1_64k_g_2m", {0x8010_2018: pte(0x80208, RW_LEAF, n=1),
                     0x9300_0008: pte(0x12200, G_RW)}, Access.READ,
     (0x12203, SIZE_64K, 1, 1, 0), 11),
    # 64 KiB NAPOT second stage under a 2 MiB first-stage page (GPA VPN[3:0]=3).
    ("s1_2m_g_64k", {0x8010_1010: pte(0x80200, RW_LEAF),
                     0x9400_0018: pte(0x55558, G_RW, n=1)}, Access.READ,
     (0x55553, SIZE_64K, 1, 1, 0), 9),
]


@pytest.mark.parametrize("name, changes, access, expected, nreads", TWO_STAGE_LEAVES,
                         ids=[c[0] for c in TWO_STAGE_LEAVES])
def test_two_stage_leaf(name, changes, access, expected, nreads):
    res, reads = two_stage(changes, access)
    assert (res["fault"], translation(res), res["iotval2"]) == (0, expected, 0)
    assert len(reads) == nreads
    assert reads[:min(nreads, 3)] == TWO_STAGE_READS[:min(nreads, 3)]


@pytest.mark.parametrize("changes, partial", [
    ({}, 0),
    # A 2 MiB first-stage leaf over a 4 KiB second-stage page: the entry is part of it.
    ({0x8010_1010: pte(0x80200, RW_LEAF), 0x9400_0018: pte(0x55555, G_RW)}, 1),
    ({0x8010_1010: pte(0x80200, RW_LEAF), 0x9400_0018: pte(0x55558, G_RW, n=1)}, 1),
    ({0x8010_0008: pte(0x80000, RW_LEAF), 0x9300_0010: pte(0x12400, G_RW)}, 1),
    # The second-stage page is the larger one, or both are 2 MiB: all of the first-stage
    # leaf.
    ({0x9300_0008: pte(0x12200, G_RW)}, 0),
    ({0x8010_1010: pte(0x80200, RW_LEAF), 0x9300_0008: pte(0x12200, G_RW)}, 0),
])
def test_two_stage_partial(changes, partial):
    res, _ = two_stage(changes)
    assert (res["fault"], res["partial"]) == (0, partial)


def test_second_stage_only_is_never_partial():
    # No first stage: the 4 KiB page is all of what the (Bare) first stage maps.
    (res,), _ = walk(g39(pte(0x12345, RW_LEAF)), GPA39, root=0, mode=BARE, g_mode=SV39X4,
                     g_root=0x90000, build=FULL)
    assert (res["fault"], res["size"], res["partial"]) == (0, SIZE_4K, 0)


def test_two_stage_reads():
    # Each first-stage PTE's GPA is translated (two G-stage reads) before it is read;
    # then the final GPA is (three G-stage reads).
    _, reads = two_stage()
    assert reads == TWO_STAGE_READS


# (name, changes, access, cause, iotval2, number of reads)
TWO_STAGE_FAULTS = [
    # Implicit accesses: a guest-page fault translating a first-stage PTE's GPA reports
    # that GPA with bit 0 set, for the original access type.
    ("implicit_root_g_root_invalid", {0x9000_0000: 0}, Access.READ, READ_GPF,
     0x10_0008 | 1, 1),
    ("implicit_root_g_l1_invalid", {0x9100_0000: 0}, Access.WRITE, WRITE_GPF,
     0x10_0008 | 1, 2),
    ("implicit_root_exec", {0x9000_0000: 0}, Access.EXECUTE, EXEC_GPF, 0x10_0008 | 1, 1),
    # At first-stage level 1: the root PTE points at guest page 0x40000, whose
    # second-stage root index (1) is empty. The PTE's GPA is 0x4000_0000 + VPN[1]*8.
    ("implicit_level_1", {0x8010_0008: pte(0x40000, V)}, Access.READ, READ_GPF,
     0x4000_0010 | 1, 4),
    ("implicit_level_0", {0x8010_1010: pte(0x40000, V)}, Access.WRITE, WRITE_GPF,
     0x4000_0018 | 1, 7),
    ("implicit_u0", {0x9100_0000: pte(0x80000, V | R | W | A | D)}, Access.READ, READ_GPF,
     0x10_0008 | 1, 2),
    ("implicit_a0", {0x9100_0000: pte(0x80000, V | R | W | U | D)}, Access.READ, READ_GPF,
     0x10_0008 | 1, 2),
    ("implicit_no_r", {0x9100_0000: pte(0x80000, V | X | U | A)}, Access.EXECUTE, EXEC_GPF,
     0x10_0008 | 1, 2),
    # The final GPA: a guest-page fault at each second-stage level, bit 0 clear.
    ("final_root_invalid", {0x9000_0010: 0}, Access.READ, READ_GPF, 0x8020_0120, 10),
    ("final_l1_invalid", {0x9300_0008: 0}, Access.READ, READ_GPF, 0x8020_0120, 11),
    ("final_l0_invalid", {0x9400_0000: 0}, Access.WRITE, WRITE_GPF, 0x8020_0120, 12),
    ("final_u0", {0x9400_0000: pte(0x12345, V | R | W | A | D)}, Access.READ, READ_GPF,
     0x8020_0120, 12),
    ("final_read_only_write", {0x9400_0000: pte(0x12345, V | R | U | A | D)}, Access.WRITE,
     WRITE_GPF, 0x8020_0120, 12),
    ("final_d0_write", {0x9400_0000: pte(0x12345, V | R | W | U | A)}, Access.WRITE,
     WRITE_GPF, 0x8020_0120, 12),
    ("final_no_x", {0x8010_2018: pte(0x80200, V | R | X | U | A)}, Access.EXECUTE, EXEC_GPF,
     0x8020_0120, 12),
    # A first-stage leaf giving a GPA with bit 41 set: too wide for Sv39x4.
    ("final_gpa_too_wide", {0x8010_2018: pte(1 << 29, RW_LEAF)}, Access.READ, READ_GPF,
     (1 << 41) | 0x120, 9),
    # First-stage faults come before the second stage sees the final GPA.
    ("s1_leaf_u0_first", {0x8010_2018: pte(0x80200, V | R | W | A | D), 0x9000_0010: 0},
     Access.READ, READ_PF, 0, 9),
    ("s1_root_invalid", {0x8010_0008: 0}, Access.READ, READ_PF, 0, 3),
    ("s1_read_only_write", {0x8010_2018: pte(0x80200, V | R | U | A | D)}, Access.WRITE,
     WRITE_PF, 0, 9),
    ("s1_nonleaf_d", {0x8010_1010: pte(0x102, V | D)}, Access.READ, READ_PF, 0, 6),
]


@pytest.mark.parametrize("name, changes, access, cause, iotval2, nreads", TWO_STAGE_FAULTS,
                         ids=[c[0] for c in TWO_STAGE_FAULTS])
def test_two_stage_fault(name, changes, access, cause, iotval2, nreads):
    res, reads = two_stage(changes, access)
    assert (res["fault"], res["cause"], res["iotval2"]) == (1, cause, iotval2)
    assert translation(res) == (0, 0, 0, 0, 0)
    assert len(reads) == nreads
    # Up to the fault, the reads are those of the successful walk, except where the
    # changed tables send the walk elsewhere (checked by the count).
    if name.startswith(("implicit_root", "final", "s1_")):
        assert reads == TWO_STAGE_READS[:nreads]


def test_two_stage_root_gpa_too_wide():
    # iosatp.PPN is a guest PPN: 1 << 29 puts the root PTE's GPA at bit 41, an implicit
    # guest-page fault before any read.
    res, reads = two_stage(root=1 << 29)
    assert (res["fault"], res["cause"], res["iotval2"]) == (1, READ_GPF, (1 << 41) | 8 | 1)
    assert reads == []


@pytest.mark.parametrize("error_at, access, cause, nreads", [
    (0x9100_0000, Access.READ, READ_AF, 2),          # a G-stage PTE, implicit access
    (0x8010_1010, Access.WRITE, WRITE_AF, 6),        # a first-stage PTE at its SPA
    (0x9400_0000, Access.READ, READ_AF, 12),         # a G-stage PTE of the final GPA
])
def test_two_stage_access_fault(error_at, access, cause, nreads):
    # Two walks: an AXI error never leaves the walker stuck; no iotval2 for access faults.
    results, reads = two_stage(access=access, errors={error_at}, walks=2)
    for res in results:
        assert (res["fault"], res["cause"], res["iotval2"]) == (1, cause, 0)
    assert reads == TWO_STAGE_READS[:nreads] * 2


@pytest.mark.parametrize("s1, g, pbmt", [
    (0, 1, 1),          # PMA first stage: the G-stage's NC
    (2, 1, 2),          # a non-PMA first stage overrides: IO
    (1, 0, 1),
    (1, 2, 1),
])
def test_two_stage_svpbmt(s1, g, pbmt):
    res, _ = two_stage({0x8010_2018: pte(0x80200, RW_LEAF, pbmt=s1),
                        0x9400_0000: pte(0x12345, G_RW, pbmt=g)}, svpbmt=True)
    assert (res["fault"], res["pbmt"]) == (0, pbmt)


@pytest.mark.parametrize("changes, g", [
    ({0x8010_2018: pte(0x80200, RW_LEAF | G)}, 1),
    # A G bit in the second stage does not make the mapping global.
    ({0x9400_0000: pte(0x12345, G_RW | G), 0x9100_0000: pte(0x80000, G_RW | G)}, 0),
])
def test_two_stage_global(changes, g):
    res, _ = two_stage(changes)
    assert (res["fault"], res["g"]) == (0, g)


def test_sv48_over_sv48x4():
    # The second stage maps GPA 0 - 512 GiB to itself with one leaf at root index 0; the
    # Sv48 tables of test_sv48 sit at those GPAs. Each level costs one G-stage read.
    memory = {0xA000_0000: pte(0, G_RW), **four_level(pte(0x12345, RW_LEAF))}
    (res,), reads = walk(memory, IOVA48, Access.WRITE, mode=SV48, g_mode=SV48X4,
                         g_root=0xA0000, build=FULL)
    assert (res["fault"], translation(res)) == (0, (0x12345, SIZE_4K, 1, 1, 0))
    g = 0xA000_0000
    assert reads == [g, S48[0], g, S48[1], g, S48[2], g, S48[3], g]


@pytest.mark.parametrize("build, mode, g_mode", [
    (SMALL, SV39, SV39X4),          # no second stage built
    (SMALL, SV48, BARE),            # no Sv48 built
    (FULL, BARE, BARE),             # nothing to walk
    (FULL, SV39, 10),               # Sv57x4
    (FULL, 10, SV39X4),             # Sv57
])
def test_modes_not_offered(build, mode, g_mode):
    (res,), reads = walk(three_level(pte(0x12345, RW_LEAF)), mode=mode, g_mode=g_mode,
                         g_root=0x90000, build=build)
    assert (res["fault"], res["cause"], reads) == (1, READ_PF, [])


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"^pas must be an integer between 32 and 56, "
                                         r"not 60$"):
        PageTableWalker(pas=60, svpbmt=False)
    with pytest.raises(ValueError, match=r"^modes must be a non-empty subset"):
        PageTableWalker(pas=56, svpbmt=False, modes=(IosatpMode.BARE,))
    with pytest.raises(ValueError, match=r"^modes must be a non-empty subset"):
        PageTableWalker(pas=56, svpbmt=False, modes=())
    with pytest.raises(ValueError, match=r"^g_modes must be a subset of \('SV39X4', "
                                         r"'SV48X4', 'SV57X4'\), not "
                                         r"\(<IohgatpMode.BARE: 0>,\)$"):
        PageTableWalker(pas=56, svpbmt=False, g_modes=(0,))


def test_modes_geometry_from_the_mode_enums():
    # The walker offers Sv39/Sv48/Sv57 and Sv39x4/Sv48x4/Sv57x4 (Privileged spec "Sv57",
    # "Two-Stage Address Translation"); Bare is not a mode to walk.
    from iogate.hdl.formats import IohgatpMode
    from iogate.hdl.ptw import G_MODES, MODES
    assert [m.levels for m in MODES] == [3, 4, 5]
    assert [m.va_bits for m in MODES] == [39, 48, 57]
    assert [m.gpa_bits for m in G_MODES] == [41, 50, 59]
    with pytest.raises(ValueError, match="modes must be a non-empty subset"):
        PageTableWalker(pas=56, svpbmt=False, modes=(IosatpMode.BARE,))
    with pytest.raises(ValueError, match="g_modes must be a subset"):
        PageTableWalker(pas=56, svpbmt=False, g_modes=(IohgatpMode.BARE,))


# --- Sv57 and Sv57x4 (Privileged spec "Sv57": five levels, VA bits 63:57 equal to bit 56,
# a level-4 leaf maps 256 TiB; "Two-Stage Address Translation": Sv57x4 takes GPA bits 58:0,
# its 16 KiB root indexed by GPA[58:48]). Built only with these modes in the walker.
SV57, SV57X4 = 10, 10
SIZE_256T = 5
FULL57 = dict(modes=(SV39, SV48, SV57), g_modes=(SV39X4, SV48X4, SV57X4))
# Sv57: root 0x80000; IOVA 0x1_0100_C010_0567 has VPN[4]=1, VPN[3]=2, VPN[2]=3, VPN[1]=4,
# VPN[0]=5; the tables below the root are at PPNs 0x80001 to 0x80004.
IOVA57 = (1 << 48) | (2 << 39) | (3 << 30) | (4 << 21) | (5 << 12) | 0x678
S57 = [0x8000_0000 + 1 * 8, 0x8000_1000 + 2 * 8, 0x8000_2000 + 3 * 8, 0x8000_3000 + 4 * 8,
       0x8000_4000 + 5 * 8]


def five_level(leaf, top=None):
    tables = {S57[0]: pte(0x80001, V), S57[1]: pte(0x80002, V), S57[2]: pte(0x80003, V),
              S57[3]: pte(0x80004, V), S57[4]: leaf}
    if top is not None:
        tables[S57[0]] = top
    return tables


T256 = 1 << 36                     # the lowest 256 TiB-aligned PPN above 0
SV57_CASES = [
    ("4k", five_level(pte(0x12345, RW_LEAF)), Access.WRITE, (0x12345, SIZE_4K, 1, 1, 0), 5),
    # 256 TiB at level 4: PPN[3:0] (36 bits) from VPN[3]=2, VPN[2]=3, VPN[1]=4, VPN[0]=5.
    ("256t", {S57[0]: pte(T256, RW_LEAF)}, Access.READ,
     (T256 | 2 << 27 | 3 << 18 | 4 << 9 | 5, SIZE_256T, 1, 1, 0), 1),
    # 512 GiB at level 3.
    ("512g", {S57[0]: pte(0x80001, V), S57[1]: pte(0x800_0000, RW_LEAF)}, Access.READ,
     (0x800_0000 | 3 << 18 | 4 << 9 | 5, SIZE_512G, 1, 1, 0), 2),
    ("64k_napot", five_level(pte(0x12348, RW_LEAF, n=1)), Access.READ,
     (0x12345, SIZE_64K, 1, 1, 0), 5),
    # A level-4 leaf needs PPN[3:0] zero: PPN[3] (bit 27) and PPN[0] (bit 0) each misalign.
    ("misaligned_256t_ppn3", {S57[0]: pte(T256 | 1 << 27, RW_LEAF)}, Access.READ, READ_PF, 1),
    ("misaligned_256t_ppn0", {S57[0]: pte(T256 | 1, RW_LEAF)}, Access.WRITE, WRITE_PF, 1),
    # Svnapot: N=1 is defined only on a level-0 leaf.
    ("napot_at_level_4", {S57[0]: pte(T256, RW_LEAF, n=1)}, Access.READ, READ_PF, 1),
    ("nonleaf_u_level_4", five_level(pte(0x12345, RW_LEAF), top=pte(0x80001, V | U)),
     Access.READ, READ_PF, 1),
    ("no_leaf_at_level_0", five_level(pte(0x80005, V)), Access.EXECUTE, EXEC_PF, 5),
    ("u0", five_level(pte(0x12345, V | R | W | A | D)), Access.READ, READ_PF, 5),
]


@pytest.mark.parametrize("name, memory, access, expected, nreads", SV57_CASES,
                         ids=[c[0] for c in SV57_CASES])
def test_sv57(name, memory, access, expected, nreads):
    (res,), reads = walk(memory, IOVA57, access, mode=SV57, build=FULL57)
    if isinstance(expected, tuple):
        assert (res["fault"], translation(res)) == (0, expected)
    else:
        assert (res["fault"], res["cause"], res["iotval2"]) == (1, expected, 0)
    assert reads == S57[:nreads]


@pytest.mark.parametrize("iova, reads", [
    (1 << 57, []),                                   # bit 57 set, bit 56 clear
    (1 << 56, []),                                   # bit 56 set, 63:57 clear
    (1 << 63 | (1 << 56) - 1, []),                   # only bit 63 of 63:56 set
    (0xFF00_0000_0000_0000, [0x8000_0000 + 256 * 8]),  # canonical: VPN[4]=256
    (1 << 48, [0x8000_0000 + 1 * 8]),                # not Sv48-canonical, Sv57-canonical
])
def test_sv57_canonical(iova, reads):
    (res,), got = walk({}, iova, mode=SV57, build=FULL57)
    assert (res["fault"], res["cause"]) == (1, READ_PF)
    assert got == reads


# Sv57x4: root at PPN 0xB0000. GPA 0x601_0100_C010_0567 ... has VPN[4] = GPA[58:48] = 0x601,
# VPN[3]=2, VPN[2]=3, VPN[1]=4, VPN[0]=5.
GPA57 = (3 << 57) | (1 << 48) | (2 << 39) | (3 << 30) | (4 << 21) | (5 << 12) | 0x678
G57 = [0xB000_0000 + 0x601 * 8, 0xB100_0000 + 2 * 8, 0xB200_0000 + 3 * 8,
       0xB300_0000 + 4 * 8, 0xB400_0000 + 5 * 8]


def g57(leaf):
    return {G57[0]: pte(0xB1000, V), G57[1]: pte(0xB2000, V), G57[2]: pte(0xB3000, V),
            G57[3]: pte(0xB4000, V), G57[4]: leaf}


SECOND_STAGE_57 = [
    ("4k", g57(pte(0x12345, RW_LEAF)), GPA57, Access.READ, (0x12345, SIZE_4K, 1, 1, 0), G57),
    # 256 TiB at the root: PPN[3:0] from GPA VPN[3]=2 ... VPN[0]=5.
    ("256t", {G57[0]: pte(T256, RW_LEAF)}, GPA57, Access.WRITE,
     (T256 | 2 << 27 | 3 << 18 | 4 << 9 | 5, SIZE_256T, 1, 1, 0), G57[:1]),
    ("512g", {G57[0]: pte(0xB1000, V), G57[1]: pte(0x800_0000, RW_LEAF)}, GPA57, Access.READ,
     (0x800_0000 | 3 << 18 | 4 << 9 | 5, SIZE_512G, 1, 1, 0), G57[:2]),
    ("misaligned_256t", {G57[0]: pte(T256 | 1 << 18, RW_LEAF)}, GPA57, Access.READ,
     (READ_GPF, GPA57 & ~3), G57[:1]),
    ("l0_invalid", g57(0), GPA57, Access.EXECUTE, (EXEC_GPF, GPA57 & ~3), G57),
    # GPA bits 63:59 must be zero: a guest-page fault before any read.
    ("gpa_bit_59", {}, 1 << 59, Access.READ, (READ_GPF, 1 << 59), []),
    ("gpa_bit_63", {}, 1 << 63 | 0x123, Access.WRITE, (WRITE_GPF, 1 << 63 | 0x120), []),
    # The highest Sv57x4 GPA page: root index 0x7FF, the last doubleword of 16 KiB.
    ("top_of_root", {}, (1 << 59) - 0x1000, Access.READ, (READ_GPF, (1 << 59) - 0x1000),
     [0xB000_0000 + 0x7FF * 8]),
]


@pytest.mark.parametrize("name, memory, iova, access, expected, reads", SECOND_STAGE_57,
                         ids=[c[0] for c in SECOND_STAGE_57])
def test_sv57x4_second_stage_only(name, memory, iova, access, expected, reads):
    (res,), got = walk(memory, iova, access, root=0, mode=BARE, g_mode=SV57X4,
                       g_root=0xB0000, build=FULL57)
    if len(expected) == 5:
        assert (res["fault"], translation(res), res["partial"]) == (0, expected, 0)
    else:
        assert (res["fault"], res["cause"], res["iotval2"]) == (1, *expected)
        assert translation(res) == (0, 0, 0, 0, 0)
    assert got == reads


def test_sv57_over_sv57x4():
    # The second stage maps GPA 0 - 256 TiB to itself with one 256 TiB leaf at root index 0;
    # the Sv57 tables of test_sv57 sit at those GPAs. Each level costs one G-stage read.
    g = 0xB000_0000
    memory = {g: pte(0, G_RW), **five_level(pte(0x12345, RW_LEAF))}
    (res,), reads = walk(memory, IOVA57, Access.WRITE, mode=SV57, g_mode=SV57X4,
                         g_root=0xB0000, build=FULL57)
    assert (res["fault"], translation(res), res["partial"]) == (
        0, (0x12345, SIZE_4K, 1, 1, 0), 0)
    assert reads == [g, S57[0], g, S57[1], g, S57[2], g, S57[3], g, S57[4], g]


def test_sv57_256t_over_sv57x4_256t():
    # A 256 TiB first-stage leaf at guest PPN 0 over the 256 TiB identity: one 256 TiB page.
    g = 0xB000_0000
    memory = {g: pte(0, G_RW), S57[0]: pte(0, RW_LEAF)}
    (res,), reads = walk(memory, IOVA57, Access.READ, mode=SV57, g_mode=SV57X4,
                         g_root=0xB0000, build=FULL57)
    gpa = IOVA57 & ((1 << 48) - 1)
    assert (res["fault"], translation(res), res["partial"]) == (
        0, (gpa >> 12, SIZE_256T, 1, 1, 0), 0)
    assert reads == [g, S57[0], g]


def test_sv57_256t_over_sv48x4_512g_is_partial():
    # Sv57 over Sv48x4: the 256 TiB first-stage leaf's GPA 0x102_0100_C010_0678 ... falls in a
    # 512 GiB G-stage leaf (root index GPA[49:39] = 2): the pair maps 512 GiB, partial.
    g = 0xA000_0000
    memory = {g: pte(0, G_RW), g + 2 * 8: pte(2 << 27, G_RW), S57[0]: pte(0, RW_LEAF)}
    (res,), reads = walk(memory, IOVA57, Access.READ, mode=SV57, g_mode=SV48X4,
                         g_root=0xA0000, build=FULL57)
    gpa = IOVA57 & ((1 << 48) - 1)
    assert (res["fault"], translation(res), res["partial"]) == (
        0, (gpa >> 12, SIZE_512G, 1, 1, 0), 1)
    assert reads == [g, S57[0], g + 2 * 8]


def test_sv57_root_gpa_too_wide_for_sv39x4():
    # Sv57 over Sv39x4: the first-stage root's PTE address is a GPA; root PPN 1 << 30 puts
    # it above Sv39x4's 41 bits: an implicit guest-page fault, iotval2 bit 0 set.
    (res,), reads = walk({}, IOVA57, Access.READ, root=1 << 30, mode=SV57, g_mode=SV39X4,
                         g_root=0x90000, build=FULL57)
    assert (res["fault"], res["cause"], res["iotval2"]) == (1, READ_GPF, (1 << 42) + 8 | 1)
    assert reads == []


def test_sv57_over_sv57x4_misaligned_g_leaf():
    # The G-stage leaf for the first-stage root's GPA is a misaligned 256 TiB page.
    g = 0xB000_0000
    (res,), reads = walk({g: pte(1, G_RW)}, IOVA57, Access.WRITE, mode=SV57, g_mode=SV57X4,
                         g_root=0xB0000, build=FULL57)
    assert (res["fault"], res["cause"], res["iotval2"]) == (1, WRITE_GPF, S57[0] | 1)
    assert reads == [g]


@pytest.mark.parametrize("mode, g_mode", [(SV57, BARE), (BARE, SV57X4), (SV57, SV57X4)])
def test_sv57_not_built_is_refused(mode, g_mode):
    # A 4-level walker has no Sv57/Sv57x4: a start with them faults before any read.
    (res,), reads = walk(five_level(pte(0x12345, RW_LEAF)), IOVA57, mode=mode, g_mode=g_mode,
                         g_root=0xB0000, build=FULL)
    assert (res["fault"], res["cause"], reads) == (1, READ_PF, [])


# --- The request's privilege (reference N.1.6; Privileged spec "Memory Privilege in mstatus
# Register", SUM), with a walker built for process contexts: User needs U=1; supervisor
# U=0, or U=1 with SUM and no execute. The result keeps the leaf's own permissions and U (the
# pipeline takes execute from a supervisor answer of a U=1 page). The second stage always
# checks as User. (name, leaf flags, priv, sum, access, expected: (r, w, x, u) or a cause)
RWX_U = V | R | W | X | U | A | D
RWX_S = V | R | W | X | A | D
PRIVILEGE = [
    ("user_u1", RWX_U, 0, 0, Access.EXECUTE, (1, 1, 1, 1)),
    ("user_u0", RWX_S, 0, 1, Access.READ, READ_PF),
    ("sup_u0_exec", RWX_S, 1, 0, Access.EXECUTE, (1, 1, 1, 0)),
    ("sup_u0_write", RWX_S, 1, 1, Access.WRITE, (1, 1, 1, 0)),
    ("sup_u1_no_sum", RWX_U, 1, 0, Access.READ, READ_PF),
    ("sup_u1_no_sum_write", RWX_U, 1, 0, Access.WRITE, WRITE_PF),
    ("sup_u1_sum_read", RWX_U, 1, 1, Access.READ, (1, 1, 1, 1)),
    ("sup_u1_sum_exec", RWX_U, 1, 1, Access.EXECUTE, EXEC_PF),
]


@pytest.mark.parametrize("name, flags, priv, sum_, access, expected", PRIVILEGE,
                         ids=[c[0] for c in PRIVILEGE])
def test_privilege(name, flags, priv, sum_, access, expected):
    (res,), reads = walk(three_level(pte(0x12345, flags)), access=access, priv=priv, sum_=sum_)
    if isinstance(expected, tuple):
        assert (res["fault"], res["r"], res["w"], res["x"], res["u"]) == (0, *expected)
        assert res["ppn"] == 0x12345
    else:
        assert (res["fault"], res["cause"], res["u"]) == (1, expected, 0)
    assert reads == [L2_ADDR, L1_ADDR, L0_ADDR]


@pytest.mark.parametrize("priv, sum_", [(0, 0), (1, 0), (1, 1)])
def test_privilege_second_stage_is_user(priv, sum_):
    # A supervisor request through the G-stage only: U=0 there is a guest-page fault, and
    # U=1 is fine whatever SUM (the first stage is Bare: u=1).
    (res,), _ = walk(g39(pte(0x12345, V | R | W | A | D)), GPA39, root=0, mode=BARE,
                     g_mode=SV39X4, g_root=0x90000, build=FULL, priv=priv, sum_=sum_)
    assert (res["fault"], res["cause"]) == (1, READ_GPF)
    (res,), _ = walk(g39(pte(0x12345, RW_LEAF)), GPA39, Access.WRITE, root=0, mode=BARE,
                     g_mode=SV39X4, g_root=0x90000, build=FULL, priv=priv, sum_=sum_)
    assert (res["fault"], translation(res), res["u"]) == (0, (0x12345, SIZE_4K, 1, 1, 0), 1)


def test_privilege_two_stage_supervisor_u0():
    # Sv39 over Sv39x4 with a U=0 first-stage leaf: a supervisor walk passes it (the G-stage
    # leaves keep U=1), a User one faults at the first stage.
    leaf = {0x8010_2018: pte(0x80200, V | R | W | A | D)}
    memory = {**TWO_STAGE_MEMORY, **leaf}
    (res,), reads = walk(memory, IOVA, root=0x100, mode=SV39, g_mode=SV39X4, g_root=0x90000,
                         build=FULL, priv=1)
    assert (res["fault"], translation(res), res["u"]) == (0, (0x12345, SIZE_4K, 1, 1, 0), 0)
    assert reads == list(TWO_STAGE_READS)
    (res,), _ = walk(memory, IOVA, root=0x100, mode=SV39, g_mode=SV39X4, g_root=0x90000,
                     build=FULL, priv=0)
    assert (res["fault"], res["cause"], res["iotval2"]) == (1, READ_PF, 0)
