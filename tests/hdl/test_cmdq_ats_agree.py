"""iogate.hdl.cmdq against iogate.cosim.model.cmdq: random ATS command streams, a device that
answers late, several times (CC), never (timeout) or for nothing, and IOFENCE.C with cmd_to.

Both follow reference N.6.4; this checks they agree, message by message (the RTL's
``ats_msg`` against the model's ``sent``), ITAG by ITAG (``ats_status.busy`` against
``ats_outstanding``), and on cqh at every cmd_to. The model is driven in lockstep: it sees a
command when the RTL sends, completes or stops at it, and a completion or a timeout in the
cycle the RTL takes it (the model learns timeouts from ``ats_status.expired``, as its
``ats_timeout`` says).
"""

import random

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.regs import QB, Offset

from iogate.cosim.model import IommuModel, Memory
from test_cmdq_ats import BASE_PPN, Harness, ats, iofence

CMD_TO = 1 << 9
TIMEOUT = 50
TAGS = 2


def random_commands(rng, n):
    out = []
    for _ in range(n):
        r = rng.random()
        rid, dsv, dseg = rng.choice([1, 2]), rng.randrange(2), rng.randrange(3)
        if r < 0.6:
            out.append(ats(rid=rid, dsv=dsv, dseg=dseg, pv=rng.randrange(2),
                           pid=rng.randrange(1 << 20), payload=rng.randrange(1 << 64)))
        elif r < 0.75:
            out.append(ats(1, rid=rid, dsv=dsv, dseg=dseg, payload=rng.randrange(1 << 64)))
        else:
            out.append(iofence(wsi=1))
    return out


class Model:
    def __init__(self, commands):
        cfg = Config().replace(ats=True, ats_inval_tags=TAGS, ats_timeout_cycles=TIMEOUT)
        self.mem = Memory()
        for i, (dw0, dw1) in enumerate(commands):
            self.mem.write((BASE_PPN << 12) + 16 * i, (dw0 | dw1 << 64).to_bytes(16, "little"))
        self.m = IommuModel(cfg, self.mem)
        self.cq = self.m.command_queue
        self.m.mmio_write(Offset.CQB, 8, bits.pack(QB, log2szm1=5, ppn=BASE_PPN))
        self.m.mmio_write(Offset.CQT, 4, 0)
        self.m.mmio_write(Offset.CQCSR, 4, 1)
        self.tail = 0

    def reach(self, index):
        """Let the model run up to and including command ``index``."""
        if index + 1 > self.tail:
            self.tail = index + 1
            self.m.mmio_write(Offset.CQT, 4, self.tail)
            self.m.process_commands()

    @property
    def cqh(self):
        return self.m.mmio_read(Offset.CQH, 4)

    @property
    def cqcsr(self):
        return self.m.mmio_read(Offset.CQCSR, 4)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_rtl_and_model_agree(seed):
    print(f"seed {seed}")
    rng = random.Random(seed)
    n = 40
    commands = random_commands(rng, n)
    model = Model(commands)
    h = Harness(commands, tags=TAGS, timeout=TIMEOUT, entries=64)
    log = []                       # (cycle, kind, data), in the RTL's order within a cycle

    # The Harness's environment logs what it sees; add completions and the cmd_to head.
    dut = h.dut
    seen = {"msgs": 0, "events": 0, "expired": 0}

    async def body(ctx, h):
        schedule = {}              # cycle -> [(rid, dseg, vector, cc)]
        clear_at = None
        prev = None
        h.submit(n)
        for cycle in range(1, 20000):
            due = schedule.pop(cycle, [])
            if due and ctx.get(dut.ats_msg.valid) and h.msg_ready:
                # The device does not answer in the cycle it receives a message (a
                # completion and an ITAG allocation in one cycle see the state before both:
                # the model takes events one at a time).
                schedule.setdefault(cycle + 1, []).extend(due)
                due = []
            if len(due) > 1:
                schedule.setdefault(cycle + 1, []).extend(due[1:])
            if due:
                rid, dseg, vector, cc = due[0]
                ctx.set(dut.ats_cpl.payload, {"rid": rid, "dseg": dseg,
                                              "itag_vector": vector, "cc": cc})
            ctx.set(dut.ats_cpl.valid, bool(due))
            if clear_at == cycle:
                h.clear_error()
                model.m.mmio_write(Offset.CQCSR, 4, 1 | CMD_TO)
                model.m.process_commands()
                clear_at = None
            head_before = h.head
            await ctx.tick()
            # What the RTL did in this cycle, in its order.
            for c, m in h.msgs[seen["msgs"]:]:
                model.reach(head_before)
                assert model.cq.sent[len([e for e in log if e[1] == "msg"])] == m, (c, m)
                log.append((c, "msg", m))
                if m["kind"] == 0:
                    rid, dseg = m["rid"], m["dseg"]
                    if rng.random() < 0.7:
                        cc = rng.choice([1, 1, 2, 0])
                        start = cycle + rng.randrange(1, 45)
                        for j in range(cc or 8):
                            schedule.setdefault(start + 3 * j, []).append(
                                (rid, dseg, 1 << m["itag"], cc))
                    if rng.random() < 0.1:
                        schedule.setdefault(cycle + rng.randrange(1, 30), []).append(
                            (0x7777, 0, 1 << rng.randrange(TAGS), 1))
            seen["msgs"] = len(h.msgs)
            for e in h.events[seen["events"]:]:
                if isinstance(e, tuple) and e[0] == "cmd_to":
                    model.reach(e[1])
                    assert model.cqcsr & CMD_TO and model.cqh == e[1], e
                    log.append((cycle, "cmd_to", e[1]))
                    clear_at = cycle + rng.randrange(1, 10)
                assert not (isinstance(e, tuple) and e[0] == "cmd_ill"), e
            seen["events"] = len(h.events)
            if due:
                accepted = model.cq.ats_completion(*due[0][:3], cc=due[0][3])
                log.append((cycle, "cpl", due[0], accepted))
            for c, mask in h.expired[seen["expired"]:]:
                model.cq.ats_timeout(mask)
                log.append((c, "expired", mask))
            seen["expired"] = len(h.expired)
            if head_before != h.head:
                model.reach(head_before)
            # busy sampled in this cycle is the state after the previous cycle's events.
            if prev is not None:
                assert [i for i in range(TAGS) if h.status["busy"] >> i & 1] == prev, cycle
            prev = model.cq.ats_outstanding
            if h.head == n and not schedule and h.status["busy"] == 0 and clear_at is None:
                break
        await h.settle(ctx, 3)
        model.reach(n - 1)
        assert h.head == n and model.cqh == n
        assert model.cq.sent == h.sent()
        assert model.cq.ats_outstanding == []
        assert model.cq.ats_dropped == h.status["dropped"] % 256
        kinds = {e[1] for e in log}
        print(f"{len(h.msgs)} messages, {sum(e[1] == 'expired' for e in log)} timeouts, "
              f"{sum(e[1] == 'cmd_to' for e in log)} cmd_to, {model.cq.ats_dropped} dropped")
        assert "msg" in kinds
    h.run(body)
