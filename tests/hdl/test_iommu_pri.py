"""iogate.hdl.iommu with Config.ats: Page Requests end to end, in the Amaranth simulator.

A Page Request enters on ``page_req``, its device context is located by the translation
pipeline, and the page-request queue stores its record or answers it itself on ``ats_msg``
(reference N.6.5-N.6.7); ATS.PRGR and ATS.INVAL commands go out on the same ``ats_msg``
(N.6.4). Expected values are worked by hand from the reference, in numbers:

* ``pqb`` 0x038 (LOG2SZ-1 | PPN << 10), ``pqh`` 0x040, ``pqt`` 0x044, ``pqcsr`` 0x050 (pqen 0,
  pie 1, pqmf 8, pqof 9, pqon 16), ``ipsr.pip`` bit 3, ``icvec.piv`` bits 15:12;
* a record (N.6.6) is two doublewords: PID 31:12, PV 32, PRIV 33, EXEC 34, DID 63:40; then R
  0, W 1, L 2, PRG index 11:3, page address 63:12;
* a fault record of a Page Request (N.6.7): TTYP 9, ``iotval`` 0x04 (the message code);
* DC.tc: V 0, EN_ATS 1, EN_PRI 2, T2GPA 3, DTF 4, PRPR 6;
* PRG response codes (PCIe): Success 0, Invalid Request 1, Response Failure 0xF; an
  ``ats_msg`` PRGR carries RID = device_id[15:0], DSV=1, DSEG = device_id[23:16] and the
  payload PRG index 40:32, response code 47:44 (N.6.4 ATS.PRGR).
"""

from amaranth.sim import Simulator

from iogate.hdl import Config, bits
from iogate.hdl.cmdq import ATS_MSG

from test_iommu import (
    DDT_PPN,
    DDTP,
    LVL1,
    OFF,
    Harness,
    dc_addr,
    fq_record,
    init_queues,
    iofence_c,
    record,
    submit,
    wait_fqt,
)

ATS_CONFIG = Config(ats=True)
PQB, PQH, PQT, PQCSR, IPSR = 0x038, 0x040, 0x044, 0x050, 0x054
PQ_PPN = 0x500
V, EN_ATS, EN_PRI, T2GPA, DTF, PRPR = 1, 2, 4, 8, 16, 64
SUCCESS, INVALID_REQUEST, RESPONSE_FAILURE = 0x0, 0x1, 0xF
PCIE_MESSAGE = 9
INVAL, PRGR = 0, 1


def pq_record(i):
    return [(PQ_PPN << 12) + 16 * i + 8 * k for k in range(2)]


def page_request(device_id, *, page=0x1234, pv=0, pid=0, priv=0, exec=0, r=1, w=0,
                 l=1, prg_index=5):  # noqa: E741 (PCIe's L)
    return dict(device_id=device_id, pv=pv, pid=pid, priv=priv, exec=exec, r=r, w=w, l=l,
                prg_index=prg_index, page=page)


def expected_record(req):
    pv = req["pv"]
    return [(req["pid"] if pv else 0) << 12 | pv << 32 | (pv & req["priv"]) << 33
            | (pv & req["exec"]) << 34 | req["device_id"] << 40,
            req["r"] | req["w"] << 1 | req["l"] << 2 | req["prg_index"] << 3
            | req["page"] << 12]


def prgr(device_id, code, *, prg_index=5, pv=0, pid=0):
    return dict(kind=PRGR, rid=device_id & 0xFFFF, dsv=1, dseg=device_id >> 16, pv=pv,
                pid=pid, payload=prg_index << 32 | code << 44, itag=0)


class PriHarness(Harness):
    """test_iommu's harness with the device side of ATS: ``page_req`` driven, ``ats_msg``
    collected (always ready), ``ats_cpl`` driven."""

    def __init__(self, **kw):
        super().__init__(config=kw.pop("config", ATS_CONFIG), **kw)
        self.messages = []

    async def page_requests(self, ctx, *reqs):
        port = self.dut.page_req
        for req in reqs:
            ctx.set(port.payload, req)
            ctx.set(port.valid, 1)
            await self.tick_until(ctx, port.ready)
        ctx.set(port.valid, 0)

    async def completion(self, ctx, *, rid, dseg=0, itag_vector, cc=1):
        port = self.dut.ats_cpl
        ctx.set(port.payload, dict(rid=rid, dseg=dseg, itag_vector=itag_vector, cc=cc))
        ctx.set(port.valid, 1)
        await self.tick_until(ctx, port.ready)
        ctx.set(port.valid, 0)

    async def settle(self, ctx, cycles=60):
        for _ in range(cycles):
            await ctx.tick()
            self.edge += 1


def collector_run(h, body, **kw):
    """Run ``body`` with a background process collecting ``ats_msg``."""
    h_run = Harness.run

    async def collect(ctx):
        ctx.set(h.dut.ats_msg.ready, 1)
        while True:
            _, _, valid, payload = await ctx.tick().sample(h.dut.ats_msg.valid,
                                                           h.dut.ats_msg.payload)
            if valid:
                h.messages.append(dict(bits.unpack(ATS_MSG, payload.as_value().value)))

    original = Simulator.add_testbench
    added = []

    def add_testbench(sim, fn, *, background=False):
        if not added:
            added.append(True)
            original(sim, collect, background=True)
        return original(sim, fn, background=background)

    Simulator.add_testbench = add_testbench
    try:
        h_run(h, body, **kw)
    finally:
        Simulator.add_testbench = original


async def init_pq(ctx, h, *, log2szm1=1, pie=0):
    """N.6.5: pqb, pqh=0, pqen (and pie), poll pqon."""
    await h.mmio_write(ctx, PQB, log2szm1 | PQ_PPN << 10)
    await h.mmio_write32(ctx, PQH, 0)
    await h.mmio_write32(ctx, PQCSR, 1 | pie << 1)
    while not await h.mmio_read32(ctx, PQCSR) >> 16 & 1:
        pass


def with_dc(tc):
    return {dc_addr(7) + 8 * k: word for k, word in enumerate([tc, 0, 0, 0])}


def test_a_page_request_is_queued_and_pip_is_raised():
    req = page_request(7, page=0xABCDE, pv=1, pid=0x1234, priv=1, exec=1, r=1, w=1,
                       prg_index=0x1A5)

    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        await init_pq(ctx, h, pie=1)
        await h.page_requests(ctx, req)
        for _ in range(100):
            if await h.mmio_read32(ctx, PQT) == 1:
                break
        else:
            raise AssertionError("pqt never moved")
        assert [h.memory.get(a) for a in pq_record(0)] == expected_record(req)
        assert await h.mmio_read32(ctx, IPSR) & 0b1111 == 0b1000      # pip only
        await h.mmio_write32(ctx, IPSR, 0b1000)
        assert await h.mmio_read32(ctx, IPSR) & 0b1000 == 0
        await h.settle(ctx)
        assert h.messages == []            # software answers a queued request
        assert await h.mmio_read32(ctx, 0x034) == 0     # no fault record

    h = PriHarness(memory=with_dc(V | EN_ATS | EN_PRI))
    collector_run(h, body)


def test_off_answers_response_failure_with_a_256_record():
    req = page_request(0x12_0007, pv=1, pid=9)

    async def body(ctx, h):
        assert await h.mmio_read(ctx, DDTP) & 0xF == OFF
        await init_queues(ctx, h)
        await init_pq(ctx, h)
        await h.page_requests(ctx, req)
        await wait_fqt(ctx, h, 1)
        assert [h.memory.get(a, 0) for a in fq_record(0)] == record(
            256, PCIE_MESSAGE, 0x12_0007, 0x04, pv=1, pid=9)
        await h.settle(ctx)
        assert h.messages == [prgr(0x12_0007, RESPONSE_FAILURE, pv=1, pid=9)]
        assert await h.mmio_read32(ctx, PQT) == 0

    h = PriHarness()
    collector_run(h, body)


def test_dc_without_en_pri_is_invalid_request_and_dtf_hides_the_record():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        await init_pq(ctx, h)
        await h.page_requests(ctx, page_request(7, pv=1, pid=3))
        await wait_fqt(ctx, h, 1)
        # Invalid Request never carries the PASID (N.6.7 row 5); the record is 260.
        assert [h.memory.get(a, 0) for a in fq_record(0)] == record(
            260, PCIE_MESSAGE, 7, 0x04, pv=1, pid=3)
        await h.settle(ctx)
        assert h.messages == [prgr(7, INVALID_REQUEST)]
        # With DTF=1 the same request is answered the same, with no record.
        h.memory[dc_addr(7)] = V | EN_ATS | DTF
        await submit(ctx, h, (3, 0))            # IODIR.INVAL_DDT, all
        await h.page_requests(ctx, page_request(7, pv=1, pid=3))
        await h.settle(ctx)
        assert h.messages[1:] == [prgr(7, INVALID_REQUEST)]
        assert await h.mmio_read32(ctx, 0x034) == 1
        assert await h.mmio_read32(ctx, PQT) == 0

    h = PriHarness(memory=with_dc(V | EN_ATS))
    collector_run(h, body)


def test_dc_faults_answer_response_failure_with_their_cause():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        await init_pq(ctx, h)
        # Device 7: V=0 (258). Device 8: EN_PRI without EN_ATS (259, misconfigured).
        await h.page_requests(ctx, page_request(7, pv=1, pid=1), page_request(8))
        await wait_fqt(ctx, h, 2)
        assert [h.memory.get(a, 0) for a in fq_record(0)] == record(
            258, PCIE_MESSAGE, 7, 0x04, pv=1, pid=1)
        assert [h.memory.get(a, 0) for a in fq_record(1)] == record(
            259, PCIE_MESSAGE, 8, 0x04)
        await h.settle(ctx)
        assert h.messages == [prgr(7, RESPONSE_FAILURE, pv=1, pid=1),
                              prgr(8, RESPONSE_FAILURE)]

    memory = {dc_addr(7): 0, dc_addr(8): V | EN_PRI}
    h = PriHarness(memory=memory)
    collector_run(h, body)


def test_a_full_queue_sets_pqof_and_answers_success():
    reqs = [page_request(7, page=0x100 + i, prg_index=i, pv=1, pid=2) for i in range(3)]

    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        await init_pq(ctx, h, log2szm1=0)     # 2 entries: one record fills it
        await h.page_requests(ctx, *reqs)
        await h.settle(ctx, 100)
        assert await h.mmio_read32(ctx, PQT) == 1
        assert [h.memory.get(a) for a in pq_record(0)] == expected_record(reqs[0])
        assert await h.mmio_read32(ctx, PQCSR) >> 9 & 1          # pqof
        # PRPR=0: Success without the PASID, for both requests that did not fit.
        assert h.messages == [prgr(7, SUCCESS, prg_index=1), prgr(7, SUCCESS, prg_index=2)]

    h = PriHarness(memory=with_dc(V | EN_ATS | EN_PRI))
    collector_run(h, body)


def test_prpr_puts_the_pasid_into_an_overflow_success():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        await init_pq(ctx, h, log2szm1=0)
        await h.page_requests(ctx, page_request(7, pv=1, pid=2, prg_index=1),
                              page_request(7, pv=1, pid=2, prg_index=2))
        await h.settle(ctx, 100)
        assert h.messages == [prgr(7, SUCCESS, prg_index=2, pv=1, pid=2)]

    h = PriHarness(memory=with_dc(V | EN_ATS | EN_PRI | PRPR))
    collector_run(h, body)


def test_a_record_store_error_sets_pqmf_and_answers_failure():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        await init_pq(ctx, h, pie=1)
        await h.page_requests(ctx, page_request(7, pv=1, pid=4))
        await h.settle(ctx, 100)
        assert await h.mmio_read32(ctx, PQT) == 0
        assert await h.mmio_read32(ctx, PQCSR) >> 8 & 1          # pqmf
        assert await h.mmio_read32(ctx, IPSR) >> 3 & 1           # pip
        assert h.messages == [prgr(7, RESPONSE_FAILURE, pv=1, pid=4)]
        # pqmf answers every later request with failure, until cleared.
        await h.page_requests(ctx, page_request(7, prg_index=6))
        await h.settle(ctx)
        assert h.messages[1:] == [prgr(7, RESPONSE_FAILURE, prg_index=6)]

    h = PriHarness(memory=with_dc(V | EN_ATS | EN_PRI), write_errors={PQ_PPN << 12})
    collector_run(h, body)


def test_unanswerable_requests_get_no_response():
    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        # The queue is off: an L=0 request and a Stop Marker get no response (N.6.7);
        # an L=1 request gets Response Failure.
        await h.page_requests(ctx, page_request(7, l=0), page_request(7, r=0, w=0, pv=1),
                              page_request(7, prg_index=9))
        await h.settle(ctx, 100)
        assert h.messages == [prgr(7, RESPONSE_FAILURE, prg_index=9)]
        assert await h.mmio_read32(ctx, 0x034) == 0

    h = PriHarness(memory=with_dc(V | EN_ATS | EN_PRI))
    collector_run(h, body)


def test_ats_commands_go_out_and_a_fence_waits_for_the_completion():
    def ats(func3, *, rid, payload, pv=0, pid=0, dsv=0, dseg=0):
        return (4 | func3 << 7 | pid << 12 | pv << 32 | dsv << 33 | rid << 40 | dseg << 56,
                payload)

    async def body(ctx, h):
        await h.mmio_write(ctx, DDTP, LVL1 | DDT_PPN << 10)
        await init_queues(ctx, h)
        cqh, cqcsr = await submit(ctx, h, ats(1, rid=7, payload=3 << 32 | 0xF << 44),
                                  ats(0, rid=7, payload=0x5000 << 12 | 1 << 11))
        assert (cqh, cqcsr & 0xF00) == (2, 0)
        await h.settle(ctx, 10)
        assert h.messages == [
            dict(kind=PRGR, rid=7, dsv=0, dseg=0, pv=0, pid=0, payload=3 << 32 | 0xF << 44,
                 itag=0),
            dict(kind=INVAL, rid=7, dsv=0, dseg=0, pv=0, pid=0,
                 payload=0x5000 << 12 | 1 << 11, itag=0),
        ]
        # The fence waits for ITAG 0's completion, then stores its AV data.
        h.memory[0x60_0000] = 0
        h.memory[(0x300 << 12) + 16 * 2] = iofence_c(av=1, data=0xD0, addr=0x60_0000)[0]
        h.memory[(0x300 << 12) + 16 * 2 + 8] = iofence_c(av=1, data=0xD0, addr=0x60_0000)[1]
        h.cq_tail = 3
        await h.mmio_write32(ctx, 0x024, 3)
        await h.settle(ctx, 40)
        assert await h.mmio_read32(ctx, 0x020) == 2
        assert h.memory[0x60_0000] == 0
        await h.completion(ctx, rid=7, itag_vector=1)
        await h.settle(ctx, 40)
        assert await h.mmio_read32(ctx, 0x020) == 3
        assert h.memory[0x60_0000] == 0xD0

    h = PriHarness()
    collector_run(h, body)


def test_without_ats_the_pq_registers_read_0():
    async def body(ctx, h):
        for offset, value in ((PQB, 1 | PQ_PPN << 10), (PQH, 1), (PQCSR, 3)):
            await h.mmio_write32(ctx, offset, value)
        for offset in (PQB, PQH, PQT, PQCSR):
            assert await h.mmio_read32(ctx, offset) == 0
        assert not hasattr(h.dut, "page_req")

    Harness().run(body)


def test_with_ats_the_pq_registers_are_warl_as_the_fault_queue():
    async def body(ctx, h):
        await h.mmio_write(ctx, PQB, 0x1F | 0xFFFF_FFFF_FFFF << 10)
        # LOG2SZ-1 saturates at queue_log2sz_max - 1; PPN bits at and above PAS read 0.
        cfg = h.dut.config
        assert await h.mmio_read(ctx, PQB) == (
            (cfg.queue_log2sz_max - 1) | ((1 << (cfg.pas - 12)) - 1) << 10)
        await h.mmio_write(ctx, PQB, 1 | PQ_PPN << 10)        # 4 entries
        await h.mmio_write32(ctx, PQH, 0xFFFF)
        assert await h.mmio_read32(ctx, PQH) == 3
        await h.mmio_write32(ctx, PQT, 2)                     # RO
        assert await h.mmio_read32(ctx, PQT) == 0
        await h.mmio_write32(ctx, PQCSR, 0x3 | 0x300)         # pqen, pie; W1C of 0 bits
        assert await h.mmio_read32(ctx, PQCSR) == 1 << 16 | 0x3

    h = PriHarness()
    collector_run(h, body)
