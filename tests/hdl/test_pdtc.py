"""iogate.hdl.pdtc: the process-context cache.

The rules checked (spec "Caching in-memory data structures", "IOMMU directory cache invalidation
commands"; reference N.1.7): a filled PC hits under its (device_id, process_id) and no other;
IODIR.INVAL_PDT removes exactly the one tag; IODIR.INVAL_DDT removes every PC of its device
(DV=1) or all (DV=0); a hit returns the PC last filled under its tag.
"""

import random

from amaranth.hdl import Value
from amaranth.sim import Simulator

from iogate.hdl.pdtc import ProcessContextCache


def run(entries, ops):
    """Apply ``ops`` and return, per ``("look", did, pid)``, (hit, pc)."""
    dut = ProcessContextCache(entries)
    out = []

    async def testbench(ctx):
        for op in ops:
            kind = op[0]
            if kind == "look":
                ctx.set(dut.lookup_device_id, op[1])
                ctx.set(dut.lookup_pid, op[2])
                out.append((bool(ctx.get(dut.lookup_hit)),
                            ctx.get(dut.lookup_pc).as_value().value))
                continue
            stream = {"fill": dut.fill, "pdt": dut.pdt_inval, "ddt": dut.ddt_inval}[kind]
            if kind == "fill":
                fields = {"device_id": op[1], "pid": op[2], "pc": op[3]}
            elif kind == "pdt":
                fields = {"device_id": op[1], "pid": op[2]}
            else:
                fields = {"all": op[1] is None, "device_id": op[1] or 0}
            for name, value in fields.items():
                ctx.set(Value.cast(getattr(stream.payload, name)), value)
            ctx.set(stream.valid, 1)
            await ctx.tick()
            ctx.set(stream.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return out


def test_fill_hit_and_invalidate_by_hand():
    pc = 1 | 0x77 << 12 | (8 << 60 | 0x1234) << 64
    got = run(2, [("fill", 5, 9, pc), ("look", 5, 9), ("look", 5, 8), ("look", 4, 9),
                  ("pdt", 5, 8), ("look", 5, 9), ("pdt", 5, 9), ("look", 5, 9)])
    assert got == [(True, pc), (False, 0), (False, 0), (True, pc), (False, 0)]


def test_random_against_the_rules():
    seed = random.randrange(1 << 32)
    print("seed", seed)
    rng = random.Random(seed)
    entries = 3
    dids, pids = [1, 2, 0xFFFFFF], [0, 1, 0xFFFFF]
    ops, present = [], {}         # tag -> PC the cache may hold (never a stale one)
    checks = []
    for _ in range(300):
        r = rng.random()
        did, pid = rng.choice(dids), rng.choice(pids)
        if r < 0.35:
            pc = rng.randrange(1 << 128) | 1
            ops.append(("fill", did, pid, pc))
            present[(did, pid)] = pc
            # The last fill always hits right after (it takes a free or replaced entry).
            ops.append(("look", did, pid))
            checks.append(("must", (did, pid), pc))
        elif r < 0.5:
            ops.append(("pdt", did, pid))
            present.pop((did, pid), None)
        elif r < 0.6:
            dev = None if rng.random() < 0.3 else did
            ops.append(("ddt", dev))
            present = {t: v for t, v in present.items() if dev is not None and t[0] != dev}
        else:
            ops.append(("look", did, pid))
            checks.append(("may", (did, pid), present.get((did, pid))))
    got = run(entries, ops)
    assert len(got) == len(checks)
    for (kind, tag, pc), (hit, value) in zip(checks, got, strict=True):
        if kind == "must":
            assert (hit, value) == (True, pc), (seed, tag)
        elif hit:
            # A hit is never a PC invalidated or replaced since.
            assert pc is not None and value == pc, (seed, tag)
