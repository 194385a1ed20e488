"""iogate.hdl.cmdq with Config.ats: ATS.INVAL, ATS.PRGR, completions, timeouts and cmd_to.

Expected values from reference N.6.4 (spec "IOMMU PCIe ATS commands"), worked by hand:

* dword0: opcode 6:0 = 4, func3 9:7 (INVAL 0, PRGR 1), reserved 11:10 and 39:34, PID 31:12,
  PV 32, DSV 33, RID 55:40, DSEG 63:56; dword1 is the PAYLOAD (its '0' fields not checked:
  N.10, decision of docs/ats-pri.md);
* ATS.INVAL completes on the Invalidation Completion(s) or on the timeout; cqh may advance
  meanwhile; IOFENCE.C waits for every earlier ATS.INVAL; if one timed out, cmd_to is set,
  cqh stays at the fence, no AV store, no fence_w_ip; clearing cmd_to re-runs the fence, which
  has forgotten the timeout (libiommu);
* a completion is matched by RID (and DSEG when the request had DSV=1) and ITAG; an ITAG
  completes after CC completions, CC=0 meaning 8 (PCIe Invalidate Completion, as libiommu).

The queue base is PPN 0x300; command ``i`` is at 0x30_0000 + 16 * i.
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config
from iogate.hdl.cmdq import AtsMsgKind, CommandQueue

BASE_PPN = 0x300
LVL1 = 2
INVAL, PRGR = 0, 1


def ats(func3=0, *, pid=0, pv=0, dsv=0, rid=0, dseg=0, payload=0, extra0=0):
    return (4 | func3 << 7 | pid << 12 | pv << 32 | dsv << 33 | rid << 40 | dseg << 56
            | extra0, payload)


def iofence(*, av=0, wsi=0, data=0, addr=0):
    return 2 | av << 10 | wsi << 11 | data << 32, addr >> 2


def msg(kind=INVAL, *, rid=0, dsv=0, dseg=0, pv=0, pid=0, payload=0, itag=0):
    return dict(kind=kind, rid=rid, dsv=dsv, dseg=dseg, pv=pv, pid=pid, payload=payload,
                itag=itag)


class Harness:
    """The engine with a memory, Python command-queue registers (``run`` drops on cmd_ill
    and cmd_to, as the register file does) and a device side that takes ``ats_msg`` while
    ``msg_ready``."""

    def __init__(self, commands, *, tags=4, timeout=1 << 16, entries=16):
        cfg = Config().replace(ats=True, ats_inval_tags=tags, ats_timeout_cycles=timeout)
        self.dut = CommandQueue(cfg)
        self.entries = entries
        self.mem = {}
        for i, (dw0, dw1) in enumerate(commands):
            self.mem[(BASE_PPN << 12) + 16 * i] = dw0
            self.mem[(BASE_PPN << 12) + 16 * i + 8] = dw1
        self.head = self.tail = 0
        self.run_bit = 1
        self.msg_ready = 1
        self.cycle = 0
        self.msgs = []                    # (cycle, fields)
        self.events = []                  # ("cmd_ill"/"cmd_to", head), "fence_w_ip", stores
        self.expired = []                 # (cycle, mask)
        self.status = None

    def submit(self, n):
        self.tail = (self.tail + n) % self.entries

    def clear_error(self):
        """Software writes 1 to cmd_to / cmd_ill: the queue runs again."""
        self.run_bit = 1

    async def complete(self, ctx, rid, itag_vector, *, dseg=0, cc=1):
        """One Invalidation Completion on ``ats_cpl`` (held one cycle)."""
        ctx.set(self.dut.ats_cpl.payload, {"rid": rid, "dseg": dseg,
                                           "itag_vector": itag_vector, "cc": cc})
        ctx.set(self.dut.ats_cpl.valid, 1)
        await ctx.tick()
        ctx.set(self.dut.ats_cpl.valid, 0)

    async def settle(self, ctx, cycles=40):
        for _ in range(cycles):
            await ctx.tick()

    def run(self, body):
        dut = self.dut
        done = []

        async def environment(ctx):
            regs = dut.regs
            while True:
                ctx.set(regs.ppn, BASE_PPN)
                ctx.set(regs.head, self.head)
                ctx.set(regs.tail, self.tail)
                ctx.set(regs.run, self.run_bit)
                ctx.set(dut.iommu_mode, LVL1)
                ctx.set(dut.ats_msg.ready, self.msg_ready)
                (_, _, adv, ill, to, fw, mv, mr, mp, st) = await ctx.tick().sample(
                    regs.advance, regs.set_cmd_ill, regs.set_cmd_to, regs.set_fence_w_ip,
                    dut.ats_msg.valid, dut.ats_msg.ready, dut.ats_msg.payload, dut.ats_status)
                self.cycle += 1
                self.status = {"busy": st.busy, "timed_out": st.timed_out,
                               "dropped": st.dropped}
                if st.expired:
                    self.expired.append((self.cycle, st.expired))
                if mv and mr:
                    self.msgs.append((self.cycle, {k: int(getattr(mp, k)) for k in
                                                   ("kind", "rid", "dsv", "dseg", "pv",
                                                    "pid", "payload", "itag")}))
                if fw:
                    self.events.append("fence_w_ip")
                if ill:
                    self.events.append(("cmd_ill", self.head))
                    self.run_bit = 0
                if to:
                    self.events.append(("cmd_to", self.head))
                    self.run_bit = 0
                if adv:
                    self.head = (self.head + 1) % self.entries

        async def fetch(ctx):
            port = dut.fetch
            while True:
                ctx.set(port.req.ready, 1)
                _, _, valid, req = await ctx.tick().sample(port.req.valid, port.req.payload)
                if not valid:
                    continue
                ctx.set(port.req.ready, 0)
                ctx.set(port.resp.payload, {"data": self.mem.get(req.addr, 0), "err": 0})
                ctx.set(port.resp.valid, 1)
                await ctx.tick().until(port.resp.ready)
                ctx.set(port.resp.valid, 0)

        async def store(ctx):
            port = dut.store
            while True:
                ctx.set(port.req.ready, 1)
                _, _, valid, req = await ctx.tick().sample(port.req.valid, port.req.payload)
                if not valid:
                    continue
                ctx.set(port.req.ready, 0)
                self.events.append(("store", req.addr, req.data, req.strb))
                ctx.set(port.resp.payload, {"err": 0})
                ctx.set(port.resp.valid, 1)
                await ctx.tick().until(port.resp.ready)
                ctx.set(port.resp.valid, 0)

        async def testbench(ctx):
            await body(ctx, self)
            done.append(True)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(environment, background=True)
        sim.add_testbench(fetch, background=True)
        sim.add_testbench(store, background=True)
        sim.add_testbench(testbench)
        sim.run()
        assert done

    def sent(self):
        return [m for _, m in self.msgs]


# --- Decode -----------------------------------------------------------------------------

def test_inval_fields():
    # PID 0xABCDE, PV, DSV, RID 0x1234, DSEG 0x56: dword0 = 4 | 0xABCDE<<12 | 1<<32 | 1<<33 |
    # 0x1234<<40 | 0x56<<56 = 0x5612_3403_ABCD_E004; PAYLOAD G=1, S=1, address 0x8000_0000.
    dw0 = 0x5612_3403_ABCD_E004
    payload = 1 | 1 << 11 | 0x8000_0000
    assert ats(pid=0xABCDE, pv=1, dsv=1, rid=0x1234, dseg=0x56)[0] == dw0

    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        assert h.sent() == [msg(rid=0x1234, dsv=1, dseg=0x56, pv=1, pid=0xABCDE,
                                payload=payload)]
        assert h.head == 1                # cqh moves on once the message is out
        assert h.status["busy"] == 0b1    # ITAG 0 outstanding
        assert h.events == []
    Harness([(dw0, payload)]).run(body)


def test_prgr_completes_at_once():
    # PRG Index 0x1A5 at 40:32, Response Code 0xF at 47:44: nothing outstanding after it,
    # so a fence after it completes.
    payload = 0x1A5 << 32 | 0xF << 44

    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx)
        assert h.sent() == [msg(PRGR, rid=0x0800, pv=1, pid=3, payload=payload)]
        assert h.status["busy"] == 0
        assert h.head == 2
        assert h.events == ["fence_w_ip"]
    Harness([ats(1, rid=0x0800, pv=1, pid=3, payload=payload), iofence(wsi=1)]).run(body)


@pytest.mark.parametrize("func3, bit", [(0, 10), (0, 11), (0, 34), (0, 39), (1, 10),
                                        (1, 39)])
def test_reserved_bits(func3, bit):
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        assert h.events == [("cmd_ill", 0)]
        assert h.sent() == []
        assert h.head == 0
    Harness([ats(func3, extra0=1 << bit)]).run(body)


@pytest.mark.parametrize("func3", range(2, 8))
def test_reserved_func3(func3):
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        assert h.events == [("cmd_ill", 0)]
        assert h.sent() == []
    Harness([ats(func3)]).run(body)


def test_payload_zero_fields_not_checked():
    # INVAL bits 10:1 and PRGR bits 31:0, 43:41, 63:48 are '0' fields: sent as they are.
    inval = 0x7FE
    prgr = 0xFFFF_FFFF | 0x7 << 41 | 0xFFFF << 48

    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx)
        assert h.events == []
        assert h.sent() == [msg(payload=inval), msg(PRGR, payload=prgr)]
    Harness([ats(payload=inval), ats(1, payload=prgr)]).run(body)


# --- ITAGs and completions ------------------------------------------------------------------

def test_waits_for_a_free_tag():
    cmds = [ats(rid=0x100 + i) for i in range(5)]

    async def body(ctx, h):
        h.submit(5)
        await h.settle(ctx, 80)
        # Four tags: the fifth waits in the queue, cqh at it.
        assert [m["itag"] for m in h.sent()] == [0, 1, 2, 3]
        assert h.head == 4
        assert h.status["busy"] == 0b1111
        await h.complete(ctx, 0x102, 1 << 2)
        await h.settle(ctx)
        assert h.sent()[4] == msg(rid=0x104, itag=2)
        assert h.head == 5
        assert h.status["busy"] == 0b1111
        assert h.status["dropped"] == 0
    Harness(cmds).run(body)


def test_several_itags_in_one_vector():
    async def body(ctx, h):
        h.submit(3)
        await h.settle(ctx, 60)
        assert h.status["busy"] == 0b111
        await h.complete(ctx, 0x42, 0b101)
        await h.settle(ctx, 3)
        assert h.status["busy"] == 0b010
        assert h.status["dropped"] == 0
    Harness([ats(rid=0x42)] * 3).run(body)


def test_completion_for_nothing_is_dropped():
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        assert h.status["busy"] == 0b1
        await h.complete(ctx, 0x42, 1 << 1)          # ITAG 1: not outstanding
        await h.complete(ctx, 0x43, 1 << 0)          # another RID
        await h.complete(ctx, 0x42, 0)               # names nothing
        await h.complete(ctx, 0x42, 1 << 31)         # beyond the tags built
        await h.complete(ctx, 0x42, 0b11)            # ITAG 0 with a stray ITAG 1: whole drop
        await h.settle(ctx, 3)
        assert h.status["dropped"] == 5
        assert h.status["busy"] == 0b1
        await h.complete(ctx, 0x42, 1 << 0)
        await h.settle(ctx, 3)
        assert h.status["busy"] == 0
        assert h.status["dropped"] == 5
    Harness([ats(rid=0x42)]).run(body)


def test_dseg_matched_only_with_dsv():
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx)
        assert h.status["busy"] == 0b11
        await h.complete(ctx, 0x42, 1 << 0, dseg=0x08)   # DSV=1, DSEG 7: wrong segment
        await h.settle(ctx, 2)
        assert h.status == {"busy": 0b11, "timed_out": 0, "dropped": 1}
        await h.complete(ctx, 0x42, 1 << 0, dseg=0x07)
        await h.complete(ctx, 0x42, 1 << 1, dseg=0x99)   # DSV=0: DSEG not compared
        await h.settle(ctx, 2)
        assert h.status == {"busy": 0, "timed_out": 0, "dropped": 1}
    Harness([ats(rid=0x42, dsv=1, dseg=7), ats(rid=0x42, dseg=3)]).run(body)


@pytest.mark.parametrize("cc, needed", [(1, 1), (2, 2), (7, 7), (0, 8)])
def test_completion_count(cc, needed):
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        for i in range(needed):
            assert h.status["busy"] == 1, i
            await h.complete(ctx, 5, 1, cc=cc)
            await h.settle(ctx, 2)
        assert h.status["busy"] == 0
        assert h.status["dropped"] == 0
    Harness([ats(rid=5)]).run(body)


def test_back_pressure():
    async def body(ctx, h):
        h.msg_ready = 0
        h.submit(2)
        await h.settle(ctx, 30)
        # Not sent: cqh stays and no ITAG is taken.
        assert h.sent() == [] and h.head == 0 and h.status["busy"] == 0
        h.msg_ready = 1
        await h.settle(ctx)
        assert h.sent() == [msg(rid=1), msg(PRGR, rid=2)]
        assert h.head == 2 and h.status["busy"] == 0b1
    Harness([ats(rid=1), ats(1, rid=2)]).run(body)


# --- IOFENCE.C, timeouts, cmd_to ----------------------------------------------------------

def test_fence_waits_for_inval():
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx, 60)
        assert h.head == 1 and h.events == []        # the fence waits, no store yet
        await h.settle(ctx, 1)
        await h.complete(ctx, 9, 1)
        await h.settle(ctx)
        assert h.events == [("store", 0x1000, 0xAB << 32 | 0xAB, 0x0F), "fence_w_ip"]
        assert h.head == 2
    Harness([ats(rid=9), iofence(av=1, wsi=1, data=0xAB, addr=0x1000)]).run(body)


def test_late_completion_before_timeout():
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx, 60)                      # well within 100 cycles
        await h.complete(ctx, 9, 1)
        await h.settle(ctx, 150)
        assert h.expired == []
        assert h.events == ["fence_w_ip"] and h.head == 2
    Harness([ats(rid=9), iofence(wsi=1)], timeout=100).run(body)


def test_timeout_cmd_to_and_rerun():
    timeout = 50

    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx, 120)
        # The ITAG was outstanding for exactly `timeout` cycles after it was sent.
        assert len(h.msgs) == 1
        assert h.expired == [(h.msgs[0][0] + timeout, 0b1)]
        # The fence reports it: cqh at the fence, no store, no fence_w_ip.
        assert h.events == [("cmd_to", 1)]
        assert h.head == 1 and h.status["busy"] == 0
        assert h.status["timed_out"] == 0              # reported once: forgotten
        await h.settle(ctx, 20)
        assert h.events == [("cmd_to", 1)]             # stopped until software clears it
        h.clear_error()
        await h.settle(ctx)
        assert h.events == [("cmd_to", 1), ("store", 0x2004, 0x11 << 32 | 0x11, 0xF0),
                            "fence_w_ip"]
        assert h.head == 2
        # A completion after the timeout names nothing outstanding.
        await h.complete(ctx, 9, 1)
        await h.settle(ctx, 3)
        assert h.status["dropped"] == 1
    Harness([ats(rid=9), iofence(av=1, wsi=1, data=0x11, addr=0x2004)],
            timeout=timeout).run(body)


def test_timeout_reported_by_a_later_fence():
    # Commands after the ATS.INVAL run while it is outstanding; its timeout stays noted
    # until a fence reports it.
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx, 100)
        assert [m["kind"] for m in h.sent()] == [AtsMsgKind.INVAL, AtsMsgKind.PRGR]
        assert h.status["timed_out"] == 1 and h.head == 2 and h.events == []
        h.submit(1)
        await h.settle(ctx)
        assert h.events == [("cmd_to", 2)]
    Harness([ats(rid=9), ats(1, rid=9), iofence(wsi=1)], timeout=30).run(body)
