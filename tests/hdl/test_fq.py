"""iogate.hdl.fq: the fault-queue writer alone, with a memory responder and fake registers.

Records are written here as the spec's numbers (RISC-V IOMMU spec "Fault/Event-Queue (FQ)"),
worked by hand:
doubleword 0 = CAUSE 11:0 | PID 31:12 | PV 32 | PRIV 33 | TTYP 39:34 | DID 63:40;
doubleword 1 = 0 (custom and reserved); doubleword 2 = iotval; doubleword 3 = iotval2.
TTYP: 1 untranslated read-for-execute, 2 untranslated read, 3 untranslated write.
The queue is at PPN 0x400 (0x40_0000), record ``i`` at 0x40_0000 + 32 * i.
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl.fq import REPORT_FIFO_DEPTH, FaultQueueWriter
from iogate.hdl.port import Access

BASE_PPN = 0x400


def report(cause=13, device_id=0x2A, iova=0x1234_5678_9ABC, access=Access.READ, *, pv=0,
           pid=0, priv=0, dtf=0, iotval2=0):
    return dict(cause=cause, device_id=device_id, iova=iova, access=access, pv=pv, pid=pid,
                priv=priv, dtf=dtf, iotval2=iotval2)


def dword0(cause, ttyp, did, pv=0, pid=0, priv=0):
    return cause | pid << 12 | pv << 32 | priv << 33 | ttyp << 34 | did << 40


def record_writes(index, dwords):
    base = (BASE_PPN << 12) + 32 * index
    return [(base + 8 * k, dw, 0xFF) for k, dw in enumerate(dwords)]


class Harness:
    """The writer, a write-only memory and the fault-queue registers in Python."""

    def __init__(self, *, entries=8, head=0, tail=0, on=1, store_errors=(), latency=0):
        self.dut = FaultQueueWriter(pas=56)
        self.entries = entries
        self.head = head                  # fqh (software's)
        self.tail = tail                  # fqt
        self.on = on
        self.fqof = self.fqmf = 0
        self.store_errors = set(store_errors)
        self.latency = latency
        self.writes = []
        self.advances = 0

    @property
    def full(self):
        return self.tail == (self.head - 1) % self.entries

    async def send(self, ctx, reports):
        """Offer ``reports`` back to back; returns the cycles each waited for ready."""
        port = self.dut.report
        waits = []
        for r in reports:
            ctx.set(port.payload, r)
            ctx.set(port.valid, 1)
            n = 0
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                if ready:
                    break
                n += 1
            waits.append(n)
        ctx.set(port.valid, 0)
        return waits

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
                ctx.set(regs.error, self.fqof | self.fqmf)
                _, _, adv, of, mf = await ctx.tick().sample(regs.advance, regs.set_fqof,
                                                            regs.set_fqmf)
                if adv:
                    self.tail = (self.tail + 1) % self.entries
                    self.advances += 1
                self.fqof |= of
                self.fqmf |= mf

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

        async def testbench(ctx):
            await body(ctx, self)
            done.append(True)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(registers, background=True)
        sim.add_testbench(memory, background=True)
        sim.add_testbench(testbench)
        sim.run()
        assert done

    async def clear(self, ctx, bit):
        """Software clears ``fqof`` or ``fqmf``; the registers show it from the next cycle."""
        setattr(self, bit, 0)
        await ctx.tick()

    async def settle(self, ctx, cycles=30):
        for _ in range(cycles):
            await ctx.tick()


IOVA = 0x1234_5678_9ABC

# (name, report, dword 0 of its record, or None if it is dropped)
RECORDS = [
    ("read_page_fault", report(13, 0x2A, IOVA, Access.READ), dword0(13, 2, 0x2A)),
    ("write_page_fault", report(15, 0x2A, IOVA, Access.WRITE), dword0(15, 3, 0x2A)),
    ("instruction_page_fault", report(12, 0x2A, IOVA, Access.EXECUTE), dword0(12, 1, 0x2A)),
    ("all_inbound_disallowed", report(256, 0xFFFFFF, IOVA), dword0(256, 2, 0xFFFFFF)),
    # PV=1: PID and PRIV are reported.
    ("with_process_id", report(260, 5, IOVA, pv=1, pid=0xABCDE, priv=1),
     dword0(260, 2, 5, pv=1, pid=0xABCDE, priv=1)),
    # PV=0: PID and PRIV are 0 whatever came with the request.
    ("pid_without_pv", report(260, 5, IOVA, pv=0, pid=0xABCDE, priv=1), dword0(260, 2, 5)),
    # DTF=1 suppresses translation faults (spec "Fault/Event-Queue (FQ)" CAUSE table, "Reported if
    # DTF is 1?").
    ("dtf_page_fault", report(13, dtf=1), None),
    ("dtf_access_fault", report(5, dtf=1), None),
    ("dtf_transaction_type", report(260, dtf=1), None),
    ("dtf_guest_page_fault", report(21, dtf=1), None),
    # ... but not the device-directory causes, 256 and 272/273.
    ("dtf_256", report(256, dtf=1), dword0(256, 2, 0x2A)),
    ("dtf_257", report(257, dtf=1), dword0(257, 2, 0x2A)),
    ("dtf_258", report(258, dtf=1), dword0(258, 2, 0x2A)),
    ("dtf_259", report(259, dtf=1), dword0(259, 2, 0x2A)),
    ("dtf_268", report(268, dtf=1), dword0(268, 2, 0x2A)),
    ("dtf_272", report(272, dtf=1), dword0(272, 2, 0x2A)),
    ("dtf_273", report(273, dtf=1), dword0(273, 2, 0x2A)),
]


@pytest.mark.parametrize("name, rep, dw0", RECORDS, ids=[r[0] for r in RECORDS])
def test_record(name, rep, dw0):
    async def body(ctx, h):
        await h.send(ctx, [rep])
        await h.settle(ctx)
        if dw0 is None:
            assert h.writes == [] and h.tail == 3
        else:
            # Record 3 of the queue; iotval is the whole IOVA, iotval2 0.
            assert h.writes == record_writes(3, [dw0, 0, IOVA, 0])
            assert h.tail == 4
    Harness(tail=3).run(body)


def test_iotval2_is_carried():
    async def body(ctx, h):
        await h.send(ctx, [report(21, 1, 0x5000, iotval2=0xABC0_0001)])
        await h.settle(ctx)
        assert h.writes == record_writes(0, [dword0(21, 2, 1), 0, 0x5000, 0xABC0_0001])
    Harness().run(body)


def test_wraparound():
    # A 4-entry queue with fqh=fqt=2 (empty): three records go to 2, 3 and 0 (fqt wraps);
    # then fqt=1 == fqh - 1, full, with no record lost.
    async def body(ctx, h):
        await h.send(ctx, [report(13, did) for did in (1, 2, 3)])
        await h.settle(ctx, 60)
        assert [w[0] for w in h.writes[::4]] == [(BASE_PPN << 12) + 32 * i for i in (2, 3, 0)]
        assert [w[1] >> 40 for w in h.writes[::4]] == [1, 2, 3]
        assert h.tail == 1 and h.fqof == 0
    Harness(entries=4, head=2, tail=2).run(body)


def test_full_sets_fqof_and_drops():
    # fqt == fqh - 1: the record is discarded and fqof set; the next ones are dropped
    # while fqof is 1 even when there is room again (spec "Fault queue CSR (fqcsr)").
    async def body(ctx, h):
        await h.send(ctx, [report(13, 1)])
        await h.settle(ctx)
        assert (h.writes, h.fqof, h.tail) == ([], 1, 3)
        h.head = 1                          # software drains: room again
        await h.send(ctx, [report(13, 2)])
        await h.settle(ctx)
        assert (h.writes, h.tail) == ([], 3)
        await h.clear(ctx, "fqof")          # software clears fqof: records flow again
        await h.send(ctx, [report(13, 3)])
        await h.settle(ctx)
        assert h.writes == record_writes(3, [dword0(13, 2, 3), 0, IOVA, 0])
        assert h.tail == 0
    Harness(entries=4, head=0, tail=3).run(body)


@pytest.mark.parametrize("beat", [0, 2, 3])
def test_store_fault_sets_fqmf(beat):
    # A store of the record answered with an error: fqmf, fqt stays, later records are
    # dropped until software clears fqmf.
    bad = (BASE_PPN << 12) + 8 * beat
    async def body(ctx, h):
        await h.send(ctx, [report(13, 1)])
        await h.settle(ctx)
        assert [w[0] for w in h.writes] == [(BASE_PPN << 12) + 8 * k for k in range(beat + 1)]
        assert (h.fqmf, h.tail, h.advances) == (1, 0, 0)
        await h.send(ctx, [report(13, 2)])
        await h.settle(ctx)
        assert len(h.writes) == beat + 1
        h.store_errors.clear()
        await h.clear(ctx, "fqmf")
        await h.send(ctx, [report(13, 3)])
        await h.settle(ctx)
        assert h.writes[beat + 1:] == record_writes(0, [dword0(13, 2, 3), 0, IOVA, 0])
        assert h.tail == 1
    Harness(store_errors={bad}).run(body)


def test_off_drops_without_stalling():
    # Queue off: every report is taken at once and dropped.
    async def body(ctx, h):
        waits = await h.send(ctx, [report(13, i) for i in range(3 * REPORT_FIFO_DEPTH)])
        await h.settle(ctx)
        assert waits == [0] * (3 * REPORT_FIFO_DEPTH)
        assert h.writes == [] and h.tail == 0
    Harness(on=0).run(body)


def test_burst_is_buffered_then_back_pressured():
    # A slow memory (3 extra cycles per store): the FIFO takes the first reports at once,
    # then the writer back-pressures; every record is stored, in order.
    async def body(ctx, h):
        n = REPORT_FIFO_DEPTH + 4
        waits = await h.send(ctx, [report(13, i) for i in range(n)])
        assert waits[:REPORT_FIFO_DEPTH] == [0] * REPORT_FIFO_DEPTH
        assert sum(waits) > 0
        await h.settle(ctx, 40 * n)
        assert [w[1] >> 40 for w in h.writes[::4]] == list(range(n))
        assert [w[0] for w in h.writes] == [(BASE_PPN << 12) + 8 * k for k in range(4 * n)]
        assert h.tail == n
    Harness(entries=16, latency=3).run(body)


def test_turning_off_drops_queued_reports():
    # Reports still in the FIFO when the queue turns off are dropped, not stored later.
    async def body(ctx, h):
        await h.send(ctx, [report(13, i) for i in range(3)])
        while not h.writes:
            await ctx.tick()
        h.on = 0
        await h.settle(ctx, 80)
        # The first record was being stored when the queue turned off: it completes.
        assert [w[1] >> 40 for w in h.writes[::4]] == [0]
        assert h.tail == 1
    Harness(latency=5).run(body)


@pytest.mark.parametrize("pas", [31, 57, "56"])
def test_constructor_checks(pas):
    with pytest.raises(ValueError, match=rf"^pas must be an integer between 32 and 56, "
                                         rf"not {pas!r}$"):
        FaultQueueWriter(pas=pas)
