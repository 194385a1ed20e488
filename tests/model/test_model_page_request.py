"""IommuModel.page_request and the ats_msg stream (reference N.6.4, N.6.6, N.6.7; docs/ats-pri.md
"Ports"): the model's own DC lookup, fault records in its fault queue, records in its
page-request queue, and the IOMMU's PRG responses beside the ATS commands' messages.

Numbers worked by hand from the reference:

* fault record (32 bytes): dw0 = CAUSE 11:0 | PID 31:12 | PV 32 | PRIV 33 | TTYP 39:34 |
  DID 63:40, dw2 = iotval; a Page Request's is TTYP 9, iotval 0x04 (N.6.7);
* page-request record (16 bytes, N.6.6): dw0 = PID 31:12 | PV 32 | PRIV 33 | EXEC 34 |
  DID 63:40, dw1 = R 0 | W 1 | L 2 | PRG index 11:3 | page 63:12;
* ATS command (N.6.4): dw0 = opcode 4 | func3 << 7 | PID << 12 | PV << 32 | DSV << 33 |
  RID << 40 | DSEG << 56; an ATS.PRGR's dw1 = PRG index << 32 | Response Code << 44;
* response codes: Success 0, Invalid Request 1, Response Failure 0xF.
"""

import pytest

from iogate.hdl import Config

from model_tables import Queues, Rig

DDTP, PQB, PQH, PQCSR = 0x010, 0x038, 0x040, 0x050
DID = 0x12_3456            # RID 0x3456, segment 0x12
PID = 0xABCDE
PAGE = 0x8_7654_3210_F
TC_OK = 0b111              # V, EN_ATS, EN_PRI
TC_DTF = 1 << 4
TC_PRPR = 1 << 6


def rig(tc=TC_OK, levels=3, pq=True, **kw):
    r = Rig(Config(ats=True, ddt_levels=3), **kw)
    r.q = Queues(r)
    root = r.page()
    # 3LVL is mode 4, 1LVL mode 2; PPN at bit 10.
    r.iommu.mmio_write(DDTP, 8, {3: 4, 1: 2}[levels] | root << 10)
    r.root = root
    if tc is not None:
        r.write_dc(root, DID if levels == 3 else DID & 0x7F, (tc, 0, 0, 0), levels)
    if pq:
        r.pq = r.page()
        r.iommu.mmio_write(PQB, 8, 1 | r.pq << 10)          # 4 entries
        r.iommu.mmio_write(PQH, 4, 0)
        r.iommu.mmio_write(PQCSR, 4, 1)
    return r


def send(m, device_id=DID, **kw):
    args = dict(pv=True, pid=PID, priv=True, exec=False, r=True, w=True, l=True,
                prg_index=0x155, page=PAGE)
    args.update(kw)
    return m.page_request(device_id, **args)


def prgr(code, pv, pid=0, prg_index=0x155, rid=0x3456, dseg=0x12):
    return {"kind": 1, "rid": rid, "dsv": 1, "dseg": dseg, "pv": pv, "pid": pid,
            "payload": prg_index << 32 | code << 44, "itag": 0}


def fault_dw0(cause, pv=1, pid=PID, priv=1, did=DID):
    return cause | pid << 12 | pv << 32 | priv << 33 | 9 << 34 | did << 40


def test_queued_record_no_message():
    r = rig()
    out = send(r.iommu, exec=True)
    assert out.queued and out.response is None and out.message is None
    base = r.pq << 12
    assert r.mem.read64(base) == PID << 12 | 1 << 32 | 1 << 33 | 1 << 34 | DID << 40
    assert r.mem.read64(base + 8) == 0b011 | 1 << 2 | 0x155 << 3 | PAGE << 12
    assert r.iommu.mmio_read(0x044, 4) == 1
    assert r.iommu.ats_messages == []
    assert r.q.fqt == 0


def test_off_response_failure_with_the_pasid_and_record_256():
    r = rig()
    r.iommu.mmio_write(DDTP, 8, 0)                           # Off
    out = send(r.iommu)
    assert not out.queued and out.response == 0xF and out.cause == 256
    assert out.message == prgr(0xF, 1, PID)
    assert r.iommu.ats_messages == [prgr(0xF, 1, PID)]
    rec = r.q.record(0)
    assert rec[0] == fault_dw0(256) and rec[2] == 0x04 and rec[3] == 0


def test_bare_invalid_request_without_pasid():
    r = rig()
    r.iommu.mmio_write(DDTP, 8, 1)                           # Bare
    assert send(r.iommu).message == prgr(0x1, 0)
    assert r.q.record(0)[0] == fault_dw0(260)


def test_device_id_too_wide_for_1lvl():
    # 1LVL, base format: device_id[23:7] must be 0.
    r = rig(levels=1)
    assert send(r.iommu).message == prgr(0x1, 0)
    assert r.q.record(0)[0] == fault_dw0(260)


def test_dc_not_valid_response_failure_record_258():
    r = rig(tc=None)
    assert send(r.iommu).message == prgr(0xF, 1, PID)
    assert r.q.record(0)[0] == fault_dw0(258)


def test_dc_misconfigured_en_pri_without_en_ats():
    # D.2: EN_PRI=1 needs EN_ATS=1 (259), reported although DTF=1 (no DC located).
    r = rig(tc=0b101 | TC_DTF)
    assert send(r.iommu).message == prgr(0xF, 1, PID)
    assert r.q.record(0)[0] == fault_dw0(259)


@pytest.mark.parametrize("tc, records", [(0b011, 1), (0b011 | TC_DTF, 0)])
def test_en_pri_0_invalid_request_record_unless_dtf(tc, records):
    r = rig(tc=tc)
    assert send(r.iommu).message == prgr(0x1, 0)
    assert r.q.fqt == records
    if records:
        assert r.q.record(0)[0] == fault_dw0(260)


def test_queue_off_response_failure_no_record():
    r = rig(pq=False)
    assert send(r.iommu, pv=False, pid=0, priv=False).message == prgr(0xF, 0)
    assert r.q.fqt == 0


@pytest.mark.parametrize("tc, pv", [(TC_OK, 0), (TC_OK | TC_PRPR, 1)])
def test_full_queue_success_pasid_only_with_prpr(tc, pv):
    r = rig(tc=tc)
    for i in range(3):
        assert send(r.iommu, prg_index=i).queued
    out = send(r.iommu, prg_index=7)
    assert out.message == prgr(0x0, pv, PID if pv else 0, prg_index=7)
    assert r.iommu.mmio_read(PQCSR, 4) & 1 << 9                 # pqof


@pytest.mark.parametrize("flags", [dict(l=False), dict(r=False, w=False)],
                         ids=["l0", "stop_marker"])
def test_dropped_sends_nothing(flags):
    r = rig()
    r.iommu.mmio_write(DDTP, 8, 0)
    out = send(r.iommu, **flags)
    assert out.dropped and out.message is None and r.iommu.ats_messages == []
    assert r.q.record(0)[0] == fault_dw0(256)                   # decision pq-1


def test_one_stream_in_order_with_the_commands():
    r = rig()
    # ATS.PRGR (func3 1) to RID 0x0102, DSV=0, PV=0, PRG index 5, Success.
    cmd = 4 | 1 << 7 | 0x0102 << 40 | (5 << 32 | 0 << 44) << 64
    r.q.submit(cmd)
    r.iommu.mmio_write(DDTP, 8, 1)                           # Bare: Invalid Request
    send(r.iommu)
    # ATS.INVAL (func3 0), RID 0x0304, DSV=1, DSEG 2, payload address 0x5000 >> 12 << 12.
    r.q.submit(4 | 1 << 33 | 0x0304 << 40 | 2 << 56 | 0x5000 << 64)
    assert r.iommu.ats_messages == [
        {"kind": 1, "rid": 0x0102, "dsv": 0, "dseg": 0, "pv": 0, "pid": 0,
         "payload": 5 << 32, "itag": 0},
        prgr(0x1, 0),
        {"kind": 0, "rid": 0x0304, "dsv": 1, "dseg": 2, "pv": 0, "pid": 0,
         "payload": 0x5000, "itag": 0},
    ]
    assert r.iommu.ats_messages is r.iommu.command_queue.sent


def test_ats_completion_and_timeout_wrappers():
    r = rig()
    inval = 4 | 1 << 33 | 0x0304 << 40 | 2 << 56
    fence = 2                                                # IOFENCE.C
    r.q.submit(inval, fence)
    assert r.q.cqh == 1                                      # the fence waits
    assert not r.iommu.ats_completion(0x0304, 3, 1)          # wrong segment: dropped
    assert r.iommu.ats_completion(0x0304, 2, 1)              # ITAG 0, CC 1
    assert r.q.cqh == 2
    r.q.submit(inval, fence)
    r.iommu.ats_timeout(1)
    assert r.q.cqcsr & 1 << 9 and r.q.cqh == 3               # cmd_to, cqh at the fence


@pytest.mark.parametrize("name, value, width", [
    ("device_id", 1 << 24, 24), ("pid", 1 << 20, 20), ("prg_index", 512, 9),
    ("page", 1 << 52, 52), ("device_id", -1, 24), ("page", "x", 52)])
def test_page_request_range_checks(name, value, width):
    m = rig().iommu
    kw = {"device_id": DID}
    kw[name] = value
    device_id = kw.pop("device_id")
    with pytest.raises(ValueError, match=f"^{name} must be a {width}-bit integer"):
        send(m, device_id, **kw)


@pytest.mark.parametrize("name", ["pv", "priv", "exec", "r", "w", "l"])
def test_page_request_flag_checks(name):
    with pytest.raises(ValueError, match=f"^{name} must be a bool, not 2"):
        send(rig().iommu, **{name: 2})


@pytest.mark.parametrize("call", [
    lambda m: send(m), lambda m: m.ats_completion(0, 0, 1), lambda m: m.ats_timeout(1)])
def test_needs_ats(call):
    m = Rig(Config()).iommu
    with pytest.raises(ValueError, match="needs Config.ats"):
        call(m)


@pytest.mark.parametrize("kw, message", [
    (dict(rid=1 << 16), "rid must be a 16-bit"), (dict(dseg=256), "dseg must be a 8-bit"),
    (dict(itag_vector=1 << 32), "itag_vector must be a 32-bit"),
    (dict(cc=8), "cc must be a 3-bit")])
def test_ats_completion_range_checks(kw, message):
    args = dict(rid=0, dseg=0, itag_vector=1, cc=1) | kw
    with pytest.raises(ValueError, match=message):
        rig().iommu.ats_completion(**args)


def test_dc_from_the_models_cache():
    # With cache=True the lookup answers from the DC cache, as a translation would: a DC
    # cleared in memory without IODIR.INVAL_DDT is still used.
    r = rig(cache=True)
    assert send(r.iommu).queued
    r.write_dc(r.root, DID, (0, 0, 0, 0), 3)
    assert send(r.iommu).queued
