"""iogate.hdl.msi and iogate.hdl.mrif: the MSI page-table walker, its MSI PTE cache, and the
MRIF update, on the Amaranth simulator.

Expected values come from the spec and the AIA (reference N.4), through the model's pure
functions (``cosim.model.msi``, written from them): ``I = extract(A, mask)``, the PTE at
``(PPN << 12) | I * 16`` (both doublewords read), the causes in the order of issue 16
decision 3 (261 on a fault of either doubleword or an address >= 2**PAS, 262 V=0, 263 C=1,
M=0/2, reserved bits, M=1 without MRIF); the MSI PTE cache invalidated by IOTINVAL.GVMA (GV=0
all, AV=0 the GSCID's, AV=1 one page) and not by VMA, with no fill from a walk that saw a
GVMA; the MRIF update reads the pending doubleword at ``MRIF + (D // 64) * 16``, sets bit
``D % 64``, writes it back and writes NID (4 bytes) to ``NPPN << 12``; any bus error → err,
and no notice after a failed MRIF access.
"""

import random

import pytest
from amaranth.sim import Simulator

from iogate.hdl import bits
from iogate.hdl.formats import MSI_PTE_BASIC, MSI_PTE_MRIF, Cause
from iogate.hdl.iotlb import InvalKind
from iogate.hdl.mrif import MrifUpdater
from iogate.hdl.msi import MsiWalker, extract

from iogate.cosim.model import msi as model_msi
from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.walk import TranslationFault

WIDTH = 38                   # Config.msi(): Sv48x4, MGPAW 50
VPN_W = 38
PPN = 0x12345


def basic(ppn, **extra):
    return bits.pack(MSI_PTE_BASIC, v=1, m=3, ppn=ppn, **extra), 0


def mrif(address, nppn, nid):
    w = bits.pack(MSI_PTE_MRIF, v=1, m=1, mrif_addr=address >> 9, nid=nid & 0x3FF,
                  nid10=nid >> 10, nppn=nppn)
    return w & (2**64 - 1), w >> 64


def model_answer(memory, errors, gpa, mask, *, ppn=PPN, pas=56, mrif_ok=True):
    """What the spec says the walk answers: a cause, or the model's MsiPte."""
    address = model_msi.pte_address(ppn, model_msi.extract(gpa, mask))

    def load(a, n):
        if a >> pas or any(a <= e < a + n for e in errors):
            raise AccessFault(a, n)
        return b"".join(memory.get(a + i, 0).to_bytes(8, "little") for i in range(0, n, 8))
    try:
        return model_msi.check_pte(*model_msi.read_pte(load, address), mrif_ok)
    except TranslationFault as f:
        return int(f.cause)


class Rig:
    """One MsiWalker with a memory ({address: doubleword}) and a list of walks to run."""

    def __init__(self, memory, *, errors=(), pas=56, mrif_ok=True, entries=2):
        self.dut = MsiWalker(pas=pas, width=WIDTH, mrif=mrif_ok, entries=entries, vpn_w=VPN_W)
        self.memory, self.errors = memory, set(errors)
        self.reads = []
        self.results = []

    def run(self, steps):
        """``steps``: ("walk", gpa, gscid, mask, ppn) or ("inval", kind, gv, av, gscid, vpn)
        or ("inval_during", <walk step>, <inval step>)."""
        dut = self.dut

        async def memory_model(ctx):
            while True:
                ctx.set(dut.mem.req.ready, 1)
                _, _, req, valid = await ctx.tick().sample(dut.mem.req.payload,
                                                           dut.mem.req.valid)
                if not valid:
                    continue
                ctx.set(dut.mem.req.ready, 0)
                self.reads.append(req.addr)
                ctx.set(dut.mem.resp.payload, {"data": self.memory.get(req.addr, 0),
                                               "err": req.addr in self.errors})
                ctx.set(dut.mem.resp.valid, 1)
                await ctx.tick().until(dut.mem.resp.ready)
                ctx.set(dut.mem.resp.valid, 0)

        async def inval(ctx, kind, gv, av, gscid, vpn):
            ctx.set(dut.inval.payload, {"kind": kind, "gv": gv, "av": av, "gscid": gscid,
                                        "vpn": vpn})
            ctx.set(dut.inval.valid, 1)
            await ctx.tick()
            ctx.set(dut.inval.valid, 0)

        async def testbench(ctx):
            for step in steps:
                if step[0] == "inval":
                    await inval(ctx, *step[1:])
                    continue
                during = None
                if step[0] == "inval_during":
                    step, during = step[1], step[2]
                _, gpa, gscid, mask, ppn = step
                ctx.set(dut.start.payload, {"gpa": gpa, "gscid": gscid, "ppn": ppn,
                                            "mask": mask})
                ctx.set(dut.start.valid, 1)
                await ctx.tick().until(dut.start.ready)
                ctx.set(dut.start.valid, 0)
                if during is not None:
                    await ctx.tick()
                    await inval(ctx, *during[1:])
                ctx.set(dut.result.ready, 1)
                res, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
                ctx.set(dut.result.ready, 0)
                self.results.append(res.fault and int(res.cause) or res.pte)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_process(memory_model)
        sim.add_testbench(testbench)
        sim.run()
        return self.results


def same(got, want):
    """The walker's result is the model's answer."""
    if isinstance(want, int):
        return got == want
    if want.mode == 3:
        return not isinstance(got, int) and got.ppn == want.ppn and not got.mrif
    return (not isinstance(got, int) and got.mrif and (got.mrif_addr << 9) == want.mrif
            and (got.nppn << 12) == want.notice and got.nid == want.nid)


def test_extract_reference():
    # The spec's example: x=abcdefgh, mask=10100110 -> 0000acfg.
    assert extract(0b10110101, 0b10100110) == 0b1110      # a=1 c=1 f=1 g=0
    rng = random.Random(5)
    for _ in range(200):
        x, mask = rng.getrandbits(WIDTH), rng.getrandbits(WIDTH)
        assert extract(x, mask) == model_msi.extract(x, mask)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_ptes_agree_with_the_model(seed):
    """Random masks and GPAs, PTEs well formed and damaged, bus errors on either doubleword."""
    rng = random.Random(seed)
    print(f"seed {seed}")
    memory, errors, steps, wanted = {}, set(), [], []
    for n in range(24):
        mask = rng.choice([0, 0x7, 0x1F, 0x3C3, rng.getrandbits(10), rng.getrandbits(WIDTH)])
        gpa = rng.getrandbits(WIDTH)
        ppn = PPN + 0x100 * n
        address = model_msi.pte_address(ppn, model_msi.extract(gpa, mask))
        kind = rng.randrange(9)
        if kind == 0:
            words = basic(rng.getrandbits(44))
        elif kind == 1:
            words = mrif(rng.getrandbits(47) << 9, rng.getrandbits(44), rng.getrandbits(11))
        elif kind == 2:
            words = (0, 0)                                         # V=0
        elif kind == 3:
            words = (basic(1)[0] | 1 << 63, 0)                     # C=1
        elif kind == 4:
            words = (1 | rng.choice([0, 2]) << 1, 0)               # M=0 or 2
        elif kind == 5:
            words = (basic(1)[0] | 1 << rng.choice([3, 9, 54, 62]), 0)
        elif kind == 6:
            dw0, dw1 = mrif(0x1000, 2, 3)
            words = (dw0, dw1 | 1 << rng.choice([54, 59, 61, 63]))
        elif kind == 7:
            words = basic(7)
            errors.add(address + 8 * rng.randrange(2))
        else:
            dw0, dw1 = mrif(0x2000, 3, 4)
            words = (dw0 | 1 << rng.choice([3, 6, 54]), dw1)
        memory[address], memory[address + 8] = words
        steps.append(("walk", gpa, n, mask, ppn))
    for step in steps:
        wanted.append(model_answer(memory, errors, step[1], step[3], ppn=step[4]))
    rig = Rig(memory, errors=errors)
    got = rig.run(steps)
    for step, g, w in zip(steps, got, wanted, strict=True):
        assert same(g, w), (step, g, w)
    assert {261, 262, 263} <= {w for w in wanted if isinstance(w, int)}


def test_reads_both_doublewords_at_the_or_address():
    mask = 0b1011_0000
    gpa = 0b1010_0000 | 0x77 << 20
    memory = {}
    address = (PPN << 12) | model_msi.extract(gpa, mask) * 16
    memory[address], memory[address + 8] = basic(0xABC)
    rig = Rig(memory)
    got, = rig.run([("walk", gpa, 1, mask, PPN)])
    assert got.ppn == 0xABC
    assert rig.reads == [address, address + 8]


def test_mrif_without_capability_and_beyond_pas():
    memory = {}
    memory[PPN << 12], memory[(PPN << 12) + 8] = mrif(0x1000, 1, 1)
    rig = Rig(memory, mrif_ok=False)
    assert rig.run([("walk", 0, 1, 0, PPN)]) == [Cause.MSI_PTE_MISCONFIGURED]
    # A table at or above 2**PAS: 261 without a read.
    rig = Rig(memory, pas=40)
    assert rig.run([("walk", 0, 1, 0, 1 << 30)]) == [Cause.MSI_PTE_LOAD_ACCESS_FAULT]
    assert rig.reads == []


def test_cache_hits_and_gvma():
    """Hits skip the reads; GVMA GV=0 / AV=0 / AV=1 remove what they name, VMA nothing."""
    memory = {}
    for i in range(4):
        memory[(PPN << 12) | i * 16] = basic(0x500 + i)[0]
    walk = lambda gpa, gscid=1: ("walk", gpa, gscid, 0x3, PPN)  # noqa: E731
    rig = Rig(memory)
    got = rig.run([walk(0), walk(1), walk(0), walk(1),            # fill 2, hit 2
                   ("inval", InvalKind.VMA, 1, 0, 1, 0), walk(0),  # VMA: still a hit
                   ("inval", InvalKind.GVMA, 1, 1, 1, 1), walk(0), walk(1),   # AV=1 page 1
                   ("inval", InvalKind.GVMA, 1, 0, 2, 0), walk(0),  # another GSCID's
                   ("inval", InvalKind.GVMA, 1, 0, 1, 0), walk(0),  # the GSCID's
                   ("inval", InvalKind.GVMA, 0, 0, 9, 0), walk(0)])  # all
    assert [g.ppn for g in got] == [0x500, 0x501, 0x500, 0x501, 0x500, 0x500, 0x501, 0x500,
                                    0x500, 0x500]
    reads = [a >> 4 & 3 for a in rig.reads[::2]]
    # Misses: 0, 1, then page 1 after AV=1, page 0 after AV=0 of GSCID 1 and after GV=0.
    assert reads == [0, 1, 1, 0, 0], reads


def test_no_fill_after_gvma_during_the_walk():
    memory = {PPN << 12: basic(0x600)[0]}
    rig = Rig(memory)
    gvma = ("inval", InvalKind.GVMA, 1, 0, 1, 0)
    got = rig.run([("inval_during", ("walk", 0, 1, 0, PPN), gvma), ("walk", 0, 1, 0, PPN)])
    assert [g.ppn for g in got] == [0x600, 0x600]
    assert len(rig.reads) == 4                                   # read twice: no fill


def test_cache_tag_is_gscid_and_page():
    memory = {PPN << 12: basic(0x700)[0]}
    rig = Rig(memory, entries=1)
    rig.run([("walk", 0, 1, 0, PPN), ("walk", 0, 2, 0, PPN), ("walk", 1, 2, 0, PPN),
             ("walk", 1, 2, 0, PPN)])
    assert len(rig.reads) == 6                                    # 3 misses, 1 hit


# --- The MRIF update.

def mrif_update(memory, d, *, mrif_addr=0x8000_0000, nppn=0x9_0000, nid=0x5A5, errors=(),
                write_errors=None, pas=56):
    """Run one update; returns (err, reads, writes) with writes (addr, data, strb).
    ``errors``: addresses whose reads (and, unless ``write_errors`` is given, writes)
    answer a bus error."""
    write_errors = errors if write_errors is None else write_errors
    dut = MrifUpdater(pas=pas)
    reads, writes, out = [], [], []

    async def read_model(ctx):
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
            await ctx.tick().until(dut.mem.resp.ready)
            ctx.set(dut.mem.resp.valid, 0)

    async def write_model(ctx):
        while True:
            ctx.set(dut.wmem.req.ready, 1)
            _, _, req, valid = await ctx.tick().sample(dut.wmem.req.payload,
                                                       dut.wmem.req.valid)
            if not valid:
                continue
            ctx.set(dut.wmem.req.ready, 0)
            writes.append((req.addr, req.data, req.strb))
            ctx.set(dut.wmem.resp.payload, {"err": req.addr in write_errors})
            ctx.set(dut.wmem.resp.valid, 1)
            await ctx.tick().until(dut.wmem.resp.ready)
            ctx.set(dut.wmem.resp.valid, 0)

    async def testbench(ctx):
        ctx.set(dut.start.payload, {"mrif_addr": mrif_addr >> 9, "nppn": nppn, "nid": nid,
                                    "d": d})
        ctx.set(dut.start.valid, 1)
        await ctx.tick().until(dut.start.ready)
        ctx.set(dut.start.valid, 0)
        ctx.set(dut.result.ready, 1)
        res, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
        out.append(res.err)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(read_model)
    sim.add_process(write_model)
    sim.add_testbench(testbench)
    sim.run()
    return out[0], reads, writes


@pytest.mark.parametrize("d", [0, 1, 63, 64, 0x123, 2047])
def test_mrif_sets_the_pending_bit_and_sends_the_notice(d):
    base = 0x8000_0000
    pending = base + (d // 64) * 16
    err, reads, writes = mrif_update({pending: 0x8000_0000_0000_0001}, d, mrif_addr=base)
    assert not err
    assert reads == [pending]
    assert writes == [(pending, 0x8000_0000_0000_0001 | 1 << (d % 64), 0xFF),
                      (0x9_0000 << 12, 0x5A5, 0x0F)]


@pytest.mark.parametrize("where", ["read", "write", "notice"])
def test_mrif_bus_errors(where):
    base, d = 0x8000_0000, 70
    pending = base + 16
    notice = 0x9_0000 << 12
    reads_fail = {pending} if where == "read" else set()
    writes_fail = {"read": set(), "write": {pending}, "notice": {notice}}[where]
    err, reads, writes = mrif_update({pending: 0}, d, errors=reads_fail,
                                     write_errors=writes_fail, mrif_addr=base)
    assert err
    assert reads == [pending]
    if where != "notice":
        assert all(w[0] != notice for w in writes)               # no notice after a failure
    assert len(writes) == {"read": 0, "write": 1, "notice": 2}[where]


def test_mrif_beyond_pas():
    err, reads, writes = mrif_update({}, 5, nppn=1 << 30, pas=40)
    assert err and writes[1:] == [] and len(writes) == 1          # MRIF written, no notice
    err, reads, writes = mrif_update({}, 5, mrif_addr=1 << 45, pas=40)
    assert err and reads == [] and writes == []
