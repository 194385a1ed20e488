"""hdl.ptw: the Sv39 walker against a dictionary of memory.

Every expected value here is worked by hand from the Privileged spec's walk (Sv39,
Svnapot, Svpbmt) and the RISC-V IOMMU cause table (spec 4.2): PTE bits are written as
literals (V=bit 0 ... D=bit 7, PPN at bit 10, PBMT at 62:61, N at 63), not through
the layouts under test.
"""

import pytest
from amaranth.sim import Simulator

from hdl import bits
from hdl.formats import IosatpMode
from hdl.port import Access
from hdl.ptw import PageTableWalker, ptw_result_layout

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


def walk(memory, iova=IOVA, access=Access.READ, *, root=ROOT, errors=(), svpbmt=False,
         pas=56, walks=1):
    """Run ``walks`` identical walks; return the results and the addresses read."""
    dut = PageTableWalker(pas=pas, svpbmt=svpbmt)
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
                                        "mode": IosatpMode.SV39})
            ctx.set(dut.start.valid, 1)
            await ctx.tick().until(dut.start.ready)
            ctx.set(dut.start.valid, 0)
            ctx.set(dut.result.ready, 1)
            res, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
            ctx.set(dut.result.ready, 0)
            results.append(bits.unpack(ptw_result_layout(), res.as_value().value))

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


@pytest.mark.parametrize("name, memory, access, expected", LEAVES, ids=[c[0] for c in LEAVES])
def test_leaf(name, memory, access, expected):
    (res,), reads = walk(memory, access=access)
    ppn, size, r, w, x, pbmt = expected
    assert res["fault"] == 0
    assert (res["ppn"], res["size"], res["r"], res["w"], res["x"], res["pbmt"]) == expected
    levels = {SIZE_1G: 1, SIZE_2M: 2}.get(size, 3)
    assert reads == [L2_ADDR, L1_ADDR, L0_ADDR][:levels]


@pytest.mark.parametrize("name, memory, access, cause, nreads", FAULTS,
                         ids=[c[0] for c in FAULTS])
def test_page_fault(name, memory, access, cause, nreads):
    (res,), reads = walk(memory, access=access)
    assert (res["fault"], res["cause"]) == (1, cause)
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


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"^pas must be an integer between 32 and 56, "
                                         r"not 60$"):
        PageTableWalker(pas=60, svpbmt=False)
    with pytest.raises(ValueError, match=r"^modes must be a non-empty subset"):
        PageTableWalker(pas=56, svpbmt=False, modes=(IosatpMode.SV57,))
