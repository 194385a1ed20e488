"""iogate.hdl.pq: the page-request queue alone, with a memory responder, fake registers and
sinks for its PRG responses and fault records.

Expected values are the reference's numbers, worked by hand (reference N.6.6, N.6.7):
record doubleword 0 = PID 31:12 | PV 32 | PRIV 33 | EXEC 34 | DID 63:40; doubleword 1 =
R 0 | W 1 | L 2 | PRG index 11:3 | page 63:12. Response codes: Success 0x0, Invalid Request
0x1, Response Failure 0xF. The queue is at PPN 0x400 (0x40_0000), record ``i`` at
0x40_0000 + 16 * i.
"""

import random

import pytest
from amaranth.sim import Simulator

from iogate.hdl import bits
from iogate.hdl.formats import TC
from iogate.hdl.pq import PageRequestQueue, PqVerdict
from iogate.hdl.regs import PQCSR

from iogate.cosim.model.ddt import DeviceContext
from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.pageq import PageRequestQueue as ModelQueue
from iogate.cosim.model.walk import TranslationFault

BASE_PPN = 0x400
DID = 0x12_3456
PID = 0xABCDE
PAGE = 0x8_7654_3210_F
SUCCESS, INVALID, FAILURE = 0x0, 0x1, 0xF


def request(*, device_id=DID, pv=1, pid=PID, priv=1, exec=0, r=1, w=1, last=1, prg_index=0x155,
            page=PAGE):
    return dict(device_id=device_id, pv=pv, pid=pid, priv=priv, exec=exec, r=r, w=w, l=last,
                prg_index=prg_index, page=page)


def verdict(kind=PqVerdict.DC, *, cause=257, en_ats=1, en_pri=1, prpr=0, dtf=0):
    return dict(kind=kind, cause=cause, en_ats=en_ats, en_pri=en_pri, prpr=prpr, dtf=dtf)


def dwords(*, device_id=DID, pv=1, pid=PID, priv=1, exec=0, r=1, w=1, last=1,
           prg_index=0x155, page=PAGE):
    return [pid << 12 | pv << 32 | priv << 33 | exec << 34 | device_id << 40,
            r | w << 1 | last << 2 | prg_index << 3 | page << 12]


def record_writes(index, dws):
    base = (BASE_PPN << 12) + 16 * index
    return [(base + 8 * k, dw, 0xFF) for k, dw in enumerate(dws)]


def response(code, pv=0, pid=0, device_id=DID, prg_index=0x155):
    return dict(device_id=device_id, pv=pv, pid=pid, prg_index=prg_index, response_code=code)


def fault(cause, device_id=DID, pv=1, pid=PID, priv=1):
    return dict(cause=cause, device_id=device_id, pv=pv, pid=pid, priv=priv)


class Harness:
    """The queue, a write-only memory, the pq registers in Python and two sinks."""

    def __init__(self, *, entries=8, head=0, tail=0, on=1, pqof=0, pqmf=0, pie=1,
                 store_errors=(), latency=0, ready=None):
        self.dut = PageRequestQueue(pas=56)
        self.entries, self.head, self.tail, self.on = entries, head, tail, on
        self.pqof, self.pqmf, self.pie = pqof, pqmf, pie
        self.store_errors = set(store_errors)
        self.latency = latency
        # ready(cycle) -> bool for the sinks: back-pressure patterns.
        self.ready = ready or (lambda rng: True)
        self.rng = random.Random(0)
        self.writes, self.responses, self.faults = [], [], []
        self.advances = 0
        self.pip_cycles = 0

    @property
    def full(self):
        return self.tail == (self.head - 1) % self.entries

    async def send(self, ctx, items):
        """Offer ``(request, verdict)`` pairs back to back."""
        port = self.dut.request
        for req, ver in items:
            ctx.set(port.payload, {"req": req, "verdict": ver})
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)

    def run(self, body):
        dut = self.dut
        done = []

        async def registers(ctx):
            regs = dut.regs
            while True:
                ctx.set(regs.ppn, BASE_PPN)
                ctx.set(regs.tail, self.tail)
                ctx.set(regs.full, self.full)
                ctx.set(regs.on, self.on)
                ctx.set(regs.pqof, self.pqof)
                ctx.set(regs.pqmf, self.pqmf)
                ctx.set(regs.pie, self.pie)
                _, _, adv, of, mf, pip = await ctx.tick().sample(
                    regs.advance, regs.set_pqof, regs.set_pqmf, dut.pip)
                if adv:
                    self.tail = (self.tail + 1) % self.entries
                    self.advances += 1
                self.pqof |= of
                self.pqmf |= mf
                self.pip_cycles += pip

        async def memory(ctx):
            port = dut.mem
            while True:
                ctx.set(port.req.ready, 1)
                _, _, valid, req = await ctx.tick().sample(port.req.valid, port.req.payload)
                if not valid:
                    continue
                ctx.set(port.req.ready, 0)
                self.writes.append((req.addr, req.data, req.strb))
                for _ in range(self.latency):
                    await ctx.tick()
                ctx.set(port.resp.payload, {"err": req.addr in self.store_errors})
                ctx.set(port.resp.valid, 1)
                await ctx.tick().until(port.resp.ready)
                ctx.set(port.resp.valid, 0)

        def sink(stream, out, fields):
            async def process(ctx):
                while True:
                    ctx.set(stream.ready, self.ready(self.rng))
                    _, _, valid, ready, payload = await ctx.tick().sample(
                        stream.valid, stream.ready, stream.payload)
                    if valid and ready:
                        out.append({f: int(getattr(payload, f)) for f in fields})
            return process

        async def testbench(ctx):
            await body(ctx, self)
            done.append(True)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(registers, background=True)
        sim.add_testbench(memory, background=True)
        sim.add_testbench(sink(dut.response, self.responses,
                               ("device_id", "pv", "pid", "prg_index", "response_code")),
                          background=True)
        sim.add_testbench(sink(dut.fault, self.faults,
                               ("cause", "device_id", "pv", "pid", "priv")), background=True)
        sim.add_testbench(testbench)
        sim.run()
        assert done

    async def settle(self, ctx, cycles=30):
        for _ in range(cycles):
            await ctx.tick()


def one(harness, req, ver, cycles=30):
    async def body(ctx, h):
        await h.send(ctx, [(req, ver)])
        await h.settle(ctx, cycles)
    harness.run(body)
    return harness


# The N.6.7 table, row by row, for an L=1 request with a PASID (PV=1, PRIV=1).
# (name, harness options, verdict, response, fault record, stored, pqof, pqmf after)
ROWS = [
    ("off", {}, verdict(PqVerdict.OFF), response(FAILURE, 1, PID), fault(256), False, 0, 0),
    ("bare", {}, verdict(PqVerdict.BARE), response(INVALID), fault(260), False, 0, 0),
    ("did_wide", {}, verdict(PqVerdict.DID_WIDE), response(INVALID), fault(260), False, 0, 0),
    ("ddt_load_fault", {}, verdict(PqVerdict.DC_FAULT, cause=257), response(FAILURE, 1, PID),
     fault(257), False, 0, 0),
    ("dc_not_valid", {}, verdict(PqVerdict.DC_FAULT, cause=258), response(FAILURE, 1, PID),
     fault(258), False, 0, 0),
    ("dc_misconfigured", {}, verdict(PqVerdict.DC_FAULT, cause=259),
     response(FAILURE, 1, PID), fault(259), False, 0, 0),
    ("ddt_corruption", {}, verdict(PqVerdict.DC_FAULT, cause=268), response(FAILURE, 1, PID),
     fault(268), False, 0, 0),
    ("en_pri_0", {}, verdict(en_pri=0), response(INVALID), fault(260), False, 0, 0),
    ("en_ats_0", {}, verdict(en_ats=0, en_pri=0), response(INVALID), fault(260), False, 0, 0),
    ("en_pri_0_prpr_1", {}, verdict(en_pri=0, prpr=1), response(INVALID), fault(260),
     False, 0, 0),
    ("queue_off", {"on": 0}, verdict(), response(FAILURE, 1, PID), None, False, 0, 0),
    ("pqmf", {"pqmf": 1}, verdict(), response(FAILURE, 1, PID), None, False, 0, 1),
    ("pqmf_and_pqof", {"pqmf": 1, "pqof": 1}, verdict(prpr=1), response(FAILURE, 1, PID),
     None, False, 1, 1),
    ("pqof_prpr_0", {"pqof": 1}, verdict(), response(SUCCESS), None, False, 1, 0),
    ("pqof_prpr_1", {"pqof": 1}, verdict(prpr=1), response(SUCCESS, 1, PID), None, False, 1, 0),
    ("full_prpr_0", {"head": 4, "tail": 3}, verdict(), response(SUCCESS), None, False, 1, 0),
    ("full_prpr_1", {"head": 4, "tail": 3}, verdict(prpr=1), response(SUCCESS, 1, PID), None,
     False, 1, 0),
    ("store_fault", {"store_errors": {BASE_PPN << 12}}, verdict(prpr=0),
     response(FAILURE, 1, PID), None, False, 0, 1),
    ("queued", {}, verdict(prpr=1), None, None, True, 0, 0),
]


@pytest.mark.parametrize("name, opts, ver, resp, rec, stored, pqof, pqmf", ROWS,
                         ids=[r[0] for r in ROWS])
def test_table_row(name, opts, ver, resp, rec, stored, pqof, pqmf):
    h = one(Harness(**opts), request(), ver)
    assert h.responses == ([resp] if resp else [])
    assert h.faults == ([rec] if rec else [])
    if stored:
        assert h.writes == record_writes(0, dwords())
        assert (h.tail, h.advances) == (1, 1)
    else:
        assert h.advances == 0
        assert h.writes == ([(BASE_PPN << 12, dwords()[0], 0xFF)] if "store_errors" in opts
                            else [])
    assert (h.pqof, h.pqmf) == (pqof, pqmf)


def test_no_pasid_response_and_record():
    # A request without a PASID: "yes, if the request had one" gives none; the record has
    # PV=0 and PID/PRIV 0 whatever the message carried; the stored record has PRIV/EXEC 0.
    req = request(pv=0, priv=1, exec=1)
    h = one(Harness(), req, verdict(PqVerdict.OFF))
    assert h.responses == [response(FAILURE)]
    assert h.faults == [fault(256, pv=0, pid=0, priv=0)]
    h = one(Harness(pqof=1), req, verdict(prpr=1))
    assert h.responses == [response(SUCCESS)]
    h = one(Harness(), req, verdict())
    assert h.writes == record_writes(0, dwords(pv=0, pid=0, priv=0, exec=0))


@pytest.mark.parametrize("kind, cause, reported", [
    (PqVerdict.OFF, 257, 256), (PqVerdict.BARE, 257, 260), (PqVerdict.DID_WIDE, 257, 260),
    (PqVerdict.DC_FAULT, 259, 259), (PqVerdict.DC, 257, None)])
def test_dtf_suppresses_only_en_pri(kind, cause, reported):
    # DC.tc.DTF=1 suppresses the EN_PRI=0 row's 260 only; rows 1-4 have no located DC.
    ver = verdict(kind, cause=cause, en_pri=0, dtf=1)
    h = one(Harness(), request(), ver)
    assert h.faults == ([fault(reported)] if reported else [])
    assert len(h.responses) == 1


L0 = request(last=0)
STOP = request(r=0, w=0, last=1)


@pytest.mark.parametrize("req", [L0, STOP], ids=["l0", "stop_marker"])
@pytest.mark.parametrize("opts, ver, rec", [
    ({}, verdict(PqVerdict.OFF), 256), ({}, verdict(PqVerdict.BARE), 260),
    ({}, verdict(PqVerdict.DID_WIDE), 260), ({}, verdict(PqVerdict.DC_FAULT, cause=258), 258),
    ({}, verdict(en_pri=0), 260), ({"on": 0}, verdict(), None), ({"pqmf": 1}, verdict(), None),
    ({"pqof": 1}, verdict(prpr=1), None), ({"head": 1, "tail": 0}, verdict(prpr=1), None),
    ({"store_errors": {(BASE_PPN << 12) + 8}}, verdict(), None),
], ids=["off", "bare", "did_wide", "dc_fault", "en_pri_0", "queue_off", "pqmf", "pqof", "full",
        "store_fault"])
def test_unqueued_l0_and_stop_marker_get_no_response(req, opts, ver, rec):
    # First filter of N.6.7: no response; the record of rows 1-5 is still written
    # (decision pq-1).
    h = one(Harness(**opts), req, ver)
    assert h.responses == []
    assert h.faults == ([fault(rec)] if rec else [])
    assert h.advances == 0


@pytest.mark.parametrize("req", [L0, STOP], ids=["l0", "stop_marker"])
def test_l0_and_stop_marker_are_queued(req):
    h = one(Harness(tail=5), req, verdict())
    fields = {"r": req["r"], "w": req["w"], "last": req["l"]}
    assert h.writes == record_writes(5, dwords(**fields))
    assert h.responses == [] and h.tail == 6


def test_full_then_pqof_until_cleared():
    # Full: pqof set, auto Success. Room again: still Success while pqof is 1; records are
    # queued again only after software clears pqof.
    async def body(ctx, h):
        await h.send(ctx, [(request(prg_index=1), verdict())])
        await h.settle(ctx)
        assert (h.pqof, h.writes, h.responses) == (1, [], [response(SUCCESS, prg_index=1)])
        h.head = 2                                   # software drains: room again
        await h.send(ctx, [(request(prg_index=2), verdict())])
        await h.settle(ctx)
        assert h.writes == [] and h.responses[1] == response(SUCCESS, prg_index=2)
        h.pqof = 0
        await ctx.tick()
        await h.send(ctx, [(request(prg_index=3), verdict())])
        await h.settle(ctx)
        assert h.writes == record_writes(3, dwords(prg_index=3))
        assert len(h.responses) == 2 and h.tail == 0
    Harness(entries=4, head=0, tail=3).run(body)


def test_wraparound():
    # A 4-entry queue with pqh=pqt=2: records go to 2, 3, 0; then pqt=1 == pqh-1 is full.
    async def body(ctx, h):
        await h.send(ctx, [(request(prg_index=i), verdict()) for i in (1, 2, 3)])
        await h.settle(ctx, 60)
        assert [w[0] for w in h.writes[::2]] == [(BASE_PPN << 12) + 16 * i for i in (2, 3, 0)]
        assert [(w[1] >> 3) & 0x1FF for w in h.writes[1::2]] == [1, 2, 3]
        assert (h.tail, h.pqof) == (1, 0)
        await h.send(ctx, [(request(prg_index=4), verdict())])
        await h.settle(ctx)
        assert (h.pqof, len(h.writes)) == (1, 6)
        assert h.responses == [response(SUCCESS, prg_index=4)]
    Harness(entries=4, head=2, tail=2).run(body)


@pytest.mark.parametrize("beat", [0, 1])
def test_store_fault_sets_pqmf_then_failure(beat):
    # A store answered with an error: pqmf, pqt stays, Response Failure with the PASID;
    # the next request is answered Response Failure without a store until pqmf is cleared.
    async def body(ctx, h):
        await h.send(ctx, [(request(), verdict())])
        await h.settle(ctx)
        assert len(h.writes) == beat + 1
        assert (h.pqmf, h.tail, h.responses) == (1, 0, [response(FAILURE, 1, PID)])
        await h.send(ctx, [(request(prg_index=7), verdict(prpr=1))])
        await h.settle(ctx)
        assert len(h.writes) == beat + 1
        assert h.responses[1] == response(FAILURE, 1, PID, prg_index=7)
        h.store_errors.clear()
        h.pqmf = 0
        await ctx.tick()
        await h.send(ctx, [(request(prg_index=8), verdict())])
        await h.settle(ctx)
        assert h.writes[beat + 1:] == record_writes(0, dwords(prg_index=8))
        assert h.tail == 1 and len(h.responses) == 2
    Harness(store_errors={(BASE_PPN << 12) + 8 * beat}).run(body)


@pytest.mark.parametrize("pie", [0, 1])
def test_pip_condition(pie):
    # pip: pie and (a record stored, or pqof or pqmf set).
    async def body(ctx, h):
        await h.send(ctx, [(request(), verdict())])
        await h.settle(ctx)
        stored = h.pip_cycles
        assert stored == pie                         # the advance strobe, one cycle
        h.pqmf = 1
        await ctx.tick()                             # the registers show it from now on
        stored = h.pip_cycles
        await h.settle(ctx, 5)
        assert (h.pip_cycles - stored) == 5 * pie
    Harness(pie=pie).run(body)


def test_back_pressure_loses_nothing():
    seed = 1717
    print(f"seed {seed}")
    rng = random.Random(seed)
    kinds = [
        (verdict(PqVerdict.OFF), FAILURE, 256), (verdict(PqVerdict.BARE), INVALID, 260),
        (verdict(PqVerdict.DC_FAULT, cause=259), FAILURE, 259), (verdict(en_pri=0), INVALID, 260),
    ]
    items, expected_resp, expected_fault = [], [], []
    for i in range(40):
        ver, code, cause = rng.choice(kinds)
        items.append((request(prg_index=i), ver))
        pasid = code == FAILURE
        expected_resp.append(response(code, int(pasid), PID if pasid else 0, prg_index=i))
        expected_fault.append(fault(cause))

    async def body(ctx, h):
        await h.send(ctx, items)
        await h.settle(ctx, 400)
        assert h.responses == expected_resp
        assert h.faults == expected_fault
    h = Harness(ready=lambda r: r.random() < 0.3)
    h.rng = random.Random(seed)
    h.run(body)


@pytest.mark.parametrize("pas", [31, 57, "56"])
def test_constructor_checks(pas):
    with pytest.raises(ValueError, match=rf"^pas must be an integer between 32 and 56, "
                                         rf"not {pas!r}$"):
        PageRequestQueue(pas=pas)


class _ModelRegs:
    """The pq registers of cosim.model.pageq, mirrored from the harness before each request."""

    queue_entries = staticmethod(lambda qb: 2 << (qb & 0x1F))
    queue_base = staticmethod(lambda qb: (qb >> 10) << 12)

    def __init__(self, h):
        self.pqb = BASE_PPN << 10 | (h.entries.bit_length() - 2)
        self.pqh, self.pqt, self.ipsr = h.head, h.tail, 0
        self.pqcsr = bits.pack(PQCSR, pqen=h.on, pqon=h.on, pie=h.pie, pqof=h.pqof, pqmf=h.pqmf)


def _store(stored, errors):
    def store(address, data):
        if any(address <= e < address + len(data) for e in errors):
            raise AccessFault(address, len(data))
        stored.append((address, data))
    return store


def _log(out):
    return lambda *a: out.append(a)


def test_agrees_with_the_model():
    # Random requests, verdicts and queue states; the RTL and cosim.model.pageq (written
    # from the reference on its own) must do the same with each.
    seed = 20261203
    print(f"seed {seed}")
    rng = random.Random(seed)

    def lookup_for(ver):
        def lookup(device_id):
            if ver["kind"] == PqVerdict.OFF:
                raise TranslationFault(256)
            if ver["kind"] == PqVerdict.BARE:
                return None
            if ver["kind"] == PqVerdict.DID_WIDE:
                raise TranslationFault(260)
            if ver["kind"] == PqVerdict.DC_FAULT:
                raise TranslationFault(ver["cause"])
            tc = bits.pack(TC, v=1, en_ats=ver["en_ats"], en_pri=ver["en_pri"],
                           prpr=ver["prpr"], dtf=ver["dtf"])
            return DeviceContext((tc, 0, 0, 0))
        return lookup

    async def body(ctx, h):
        for n in range(300):
            # Software's moves between requests.
            if rng.random() < 0.3:
                h.head = rng.randrange(h.entries)
            if rng.random() < 0.2:
                h.pqof = 0
            if rng.random() < 0.2:
                h.pqmf = 0
            h.on = int(rng.random() < 0.9)
            h.pie = rng.randrange(2)
            h.store_errors = ({(BASE_PPN << 12) + 16 * h.tail + 8 * rng.randrange(2)}
                              if rng.random() < 0.1 else set())
            await ctx.tick()
            req = request(pv=rng.randrange(2), pid=rng.randrange(1 << 20),
                          priv=rng.randrange(2), exec=rng.randrange(2), r=rng.randrange(2),
                          w=rng.randrange(2), last=rng.randrange(2),
                          prg_index=rng.randrange(512), device_id=rng.randrange(1 << 24),
                          page=rng.randrange(1 << 52))
            ver = verdict(rng.choice(list(PqVerdict)), cause=rng.choice([257, 258, 259, 268]),
                          en_ats=int(rng.random() < 0.9), en_pri=int(rng.random() < 0.9),
                          prpr=rng.randrange(2), dtf=rng.randrange(2))
            regs = _ModelRegs(h)
            stored, faults = [], []
            model = ModelQueue(regs, _store(stored, set(h.store_errors)), _log(faults))
            out = model.page_request(lookup_for(ver), req["device_id"], req["page"],
                                     pasid=req["pid"] if req["pv"] else None,
                                     priv=req["priv"], exec=req["exec"], r=req["r"],
                                     w=req["w"], last=req["l"], prg_index=req["prg_index"])
            before = (len(h.responses), len(h.faults), len(h.writes), h.pip_cycles)
            await h.send(ctx, [(req, ver)])
            await h.settle(ctx, 12)
            what = f"request {n}: {req} {ver} -> {out}"
            responses = h.responses[before[0]:]
            if out.response is None:
                assert responses == [], what
            else:
                pv = out.pasid is not None
                assert responses == [response(out.response, int(pv), out.pasid or 0,
                                              req["device_id"], req["prg_index"])], what
            assert [(f["cause"], f["device_id"], f["pv"], f["pid"], f["priv"])
                    for f in h.faults[before[1]:]] == [(c, d, pv, pid, priv)
                                                       for c, _, d, _, _, pv, pid, priv in faults]
            assert all(f[1] == 9 and f[3] == 0x04 and f[4] == 0 for f in faults), what
            if out.queued:
                address, data = stored[0]
                words = [int.from_bytes(data[k:k + 8], "little") for k in (0, 8)]
                assert h.writes[before[2]:] == [(address + 8 * k, words[k], 0xFF)
                                                for k in (0, 1)], what
            assert (h.tail, h.pqof, h.pqmf) == (regs.pqt, int(bool(regs.pqcsr >> 9 & 1)),
                                                int(bool(regs.pqcsr >> 8 & 1))), what
            # pip is the RegFile's level condition: pie and (pqof or pqmf), or the store's
            # advance; the model sets ipsr.pip on the events.
            level = h.pie and (h.pqof or h.pqmf)
            assert bool(regs.ipsr or level) == bool(h.pip_cycles > before[3]), what

    Harness(entries=4).run(body)
