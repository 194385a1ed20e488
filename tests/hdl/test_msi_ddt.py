"""iogate.hdl.ddt with MSI_FLAT: the extended-format DC walk (reference N.3, issue 16 decision 1).

Expected values come from the spec through the model (``cosim.model.ddt.misconfiguration``,
written from N.3.3 and decision 1): the 64-byte DC at ``a + DDI[0] * 64`` with DDI[0] =
device_id[5:0], DDI[1] = [14:6], DDI[2] = [23:15] (N.3.2), read as eight doublewords; 259 for a
reserved bit of msiptp [59:44], msiptp.MODE 2-15, mask/pattern [63:52] or [51:MGPAW-12],
dw 7 non-zero, and Flat with iohgatp Bare. The walker keeps msiptp's mode and PPN and the
low MGPAW-12 bits of the mask and pattern.
"""

import random

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config, bits
from iogate.hdl.ddt import DeviceDirectoryWalker, ddtw_result_layout, msi_dc_layout
from iogate.hdl.formats import IOHGATP, MSIPTP, TC, IohgatpMode, IosatpMode
from iogate.hdl.regs import CAPABILITIES, IommuMode

from iogate.cosim.model import ddt as model_ddt

CFG = Config.msi()
MGPAW = CFG.mgpaw
CAPS = bits.unpack(CAPABILITIES, CFG.capabilities)
ROOT = 0x100


def walk(words, device_id, *, mode=IommuMode.LVL3, ddtes=None, errors=()):
    """(cause or None, dc fields, reads) of one walk of ``device_id`` whose leaf table is at
    ``ROOT`` (the non-leaf entries ``ddtes`` lead there)."""
    dut = DeviceDirectoryWalker(pas=56, iosatp_modes=(IosatpMode.SV39, IosatpMode.SV48),
                                iohgatp_modes=(IohgatpMode.BARE, IohgatpMode.SV39X4,
                                               IohgatpMode.SV48X4),
                                levels=3, mgpaw=MGPAW)
    base = (ROOT << 12) + (device_id & 0x3F) * 64
    memory = {base + 8 * k: w for k, w in enumerate(words)}
    memory.update(ddtes or {})
    reads, results = [], []

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
            await ctx.tick().until(dut.mem.resp.ready)
            ctx.set(dut.mem.resp.valid, 0)

    async def testbench(ctx):
        ctx.set(dut.start.payload, {"ddtp_ppn": ROOT if mode == IommuMode.LVL1 else 0x200,
                                    "mode": mode, "device_id": device_id})
        ctx.set(dut.start.valid, 1)
        await ctx.tick().until(dut.start.ready)
        ctx.set(dut.start.valid, 0)
        ctx.set(dut.result.ready, 1)
        res, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
        f = bits.unpack(ddtw_result_layout(msi_dc_layout(MGPAW)), res.as_value().value)
        results.append((f["cause"] if f["fault"] else None, f["dc"]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(memory_model, background=True)
    sim.add_testbench(testbench)
    sim.run_until(1e-3)
    assert results, "the walker hung"
    cause, dc = results[0]
    return cause, bits.unpack(msi_dc_layout(MGPAW), dc), reads


GOOD = (bits.pack(TC, v=1), bits.pack(IOHGATP, mode=IohgatpMode.SV48X4, gscid=3, ppn=0x400),
        0, 0, bits.pack(MSIPTP, mode=1, ppn=0x1234), 0x7, 0x28000, 0)


def expected(words):
    return None if model_ddt.misconfiguration(words, CAPS, 0, 0) is None else 259


def test_good_dc_is_kept():
    cause, dc, reads = walk(GOOD, 0x05, mode=IommuMode.LVL1)
    assert cause is None
    msi_layout = msi_dc_layout(MGPAW)["msi"].shape
    assert bits.unpack(msi_layout, dc["msi"]) == {"flat": 1, "ppn": 0x1234, "mask": 0x7,
                                                  "pattern": 0x28000}
    assert reads == [(ROOT << 12) + 5 * 64 + 8 * k for k in range(8)]


def test_three_level_split_6_9_9():
    did = (0x1AB << 15) | (0x155 << 6) | 0x2A
    l2, l1 = 0x200 << 12, 0x300 << 12
    ddtes = {l2 + 0x1AB * 8: 1 | 0x300 << 10, l1 + 0x155 * 8: 1 | ROOT << 10}
    cause, dc, reads = walk(GOOD, did, ddtes=ddtes)
    assert cause is None and dc["msi"] >> 1 & (2**44 - 1) == 0x1234      # msi.ppn
    assert reads[:2] == [l2 + 0x1AB * 8, l1 + 0x155 * 8]
    assert reads[2] == (ROOT << 12) + 0x2A * 64


def _damaged(rng):
    words = list(GOOD)
    k = rng.choice([4, 4, 5, 6, 7, 1])
    if k == 1:
        words[1] = 0                                       # iohgatp Bare with Flat
        if rng.random() < 0.5:
            words[4] = 0                                   # ... or msiptp Off: fine
    elif k == 4:
        words[4] = rng.choice([bits.pack(MSIPTP, mode=rng.randrange(16), ppn=7),
                               GOOD[4] | 1 << rng.randrange(44, 60)])
    else:
        words[k] ^= 1 << rng.randrange(64)
    return tuple(words)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_checks_agree_with_the_model(seed):
    rng = random.Random(seed)
    print(f"seed {seed}")
    seen = set()
    for _ in range(40):
        words = _damaged(rng)
        want = expected(words)
        cause, _, _ = walk(words, rng.randrange(64), mode=IommuMode.LVL1)
        assert cause == want, [hex(w) for w in words]
        seen.add(want)
    assert seen == {None, 259}


def test_bus_error_on_a_late_word():
    base = (ROOT << 12) + 3 * 64
    cause, _, _ = walk(GOOD, 3, mode=IommuMode.LVL1, errors={base + 56})
    assert cause == 257
