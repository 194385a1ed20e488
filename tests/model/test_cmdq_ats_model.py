"""The model's ATS commands: ATS.INVAL, ATS.PRGR, completions, timeouts and cmd_to.

Expected values from reference N.6.4 (spec "IOMMU PCIe ATS commands"), worked by hand: opcode
4, func3 INVAL 0 / PRGR 1 at 9:7, reserved 11:10 and 39:34, PID 31:12, PV 32, DSV 33, RID
55:40, DSEG 63:56, dword1 the PAYLOAD; cqcsr: cqen 0, cie 1, cmd_ill 10, cmd_to 9, fence_w_ip
11, cqon 16; ipsr.cip 0. Without capabilities.ATS both are cmd_ill (libiommu PR #696).
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import Offset

from model_tables import Queues, Rig, iofence_c

CMD_TO = 1 << 9
CMD_ILL = 1 << 10
FENCE_W_IP = 1 << 11
CQON = 1 << 16
ATS_CFG = Config().replace(ats=True)


def ats(func3=0, *, pid=0, pv=0, dsv=0, rid=0, dseg=0, payload=0, extra0=0):
    return (4 | func3 << 7 | pid << 12 | pv << 32 | dsv << 33 | rid << 40 | dseg << 56
            | extra0 | payload << 64)


def msg(kind=0, *, rid=0, dsv=0, dseg=0, pv=0, pid=0, payload=0, itag=0):
    return dict(kind=kind, rid=rid, dsv=dsv, dseg=dseg, pv=pv, pid=pid, payload=payload,
                itag=itag)


def setup(config=ATS_CFG, **kw):
    rig = Rig(config)
    return rig, Queues(rig, **kw), rig.iommu.command_queue


@pytest.mark.parametrize("func3", [0, 1])
def test_cmd_ill_without_ats(func3):
    rig, q, cq = setup(Config())
    q.submit(ats(func3))
    assert q.cqh == 0 and q.cqcsr == CQON | CMD_ILL | 1 and cq.sent == []


def test_inval_message_and_cqh():
    # dword0 of PID 0xABCDE, PV, DSV, RID 0x1234, DSEG 0x56, worked by hand.
    cmd = 0x5612_3403_ABCD_E004 | (1 | 1 << 11 | 0x8000_0000) << 64
    assert cmd == ats(pid=0xABCDE, pv=1, dsv=1, rid=0x1234, dseg=0x56,
                      payload=1 | 1 << 11 | 0x8000_0000)
    rig, q, cq = setup()
    q.submit(cmd)
    assert cq.sent == [msg(rid=0x1234, dsv=1, dseg=0x56, pv=1, pid=0xABCDE,
                           payload=1 | 1 << 11 | 0x8000_0000)]
    assert q.cqh == 1 and cq.ats_outstanding == [0]


@pytest.mark.parametrize("func3, bit", [(0, 10), (0, 11), (0, 34), (0, 39), (1, 11),
                                        (1, 34)])
def test_reserved_bits(func3, bit):
    rig, q, cq = setup()
    q.submit(ats(func3, extra0=1 << bit))
    assert q.cqh == 0 and q.cqcsr & CMD_ILL and cq.sent == []


@pytest.mark.parametrize("func3", range(2, 8))
def test_reserved_func3(func3):
    rig, q, cq = setup()
    q.submit(ats(func3))
    assert q.cqh == 0 and q.cqcsr & CMD_ILL


def test_payload_zero_fields_not_checked():
    rig, q, cq = setup()
    q.submit(ats(payload=0x7FE), ats(1, payload=0xFFFF_FFFF | 7 << 41 | 0xFFFF << 48))
    assert q.cqcsr == CQON | 1 and q.cqh == 2
    assert [m["payload"] for m in cq.sent] == [0x7FE, 0xFFFF_FFFF | 7 << 41 | 0xFFFF << 48]


def test_prgr_completes_at_once():
    rig, q, cq = setup()
    q.submit(ats(1, rid=0x800, pv=1, pid=3, payload=0x1A5 << 32 | 0xF << 44), iofence_c(wsi=1))
    assert cq.sent == [msg(1, rid=0x800, pv=1, pid=3, payload=0x1A5 << 32 | 0xF << 44)]
    assert q.cqh == 2 and q.cqcsr == CQON | FENCE_W_IP | 1


def test_waits_for_a_free_tag():
    rig, q, cq = setup()                                   # 4 ITAGs (Config default)
    q.submit(*(ats(rid=0x100 + i) for i in range(5)))
    assert [m["itag"] for m in cq.sent] == [0, 1, 2, 3]
    assert q.cqh == 4 and q.cqcsr == CQON | 1 and cq.waiting
    assert cq.ats_completion(0x102, 0, 1 << 2)
    assert cq.sent[4] == msg(rid=0x104, itag=2) and q.cqh == 5


def test_completions_dropped():
    rig, q, cq = setup()
    q.submit(ats(rid=0x42, dsv=1, dseg=7), ats(rid=0x42, dseg=3))
    assert not cq.ats_completion(0x42, 0, 1 << 2)          # not outstanding
    assert not cq.ats_completion(0x43, 7, 1 << 0)          # another RID
    assert not cq.ats_completion(0x42, 8, 1 << 0)          # another segment (DSV=1)
    assert not cq.ats_completion(0x42, 7, 0)               # names nothing
    assert not cq.ats_completion(0x42, 7, 0b101)           # one stray ITAG: dropped whole
    assert cq.ats_dropped == 5 and cq.ats_outstanding == [0, 1]
    assert cq.ats_completion(0x42, 0x99, 1 << 1)           # DSV=0: DSEG not compared
    assert cq.ats_completion(0x42, 7, 1 << 0)
    assert cq.ats_outstanding == [] and cq.ats_dropped == 5


def test_several_itags_and_completion_count():
    rig, q, cq = setup()
    q.submit(ats(rid=1), ats(rid=1), ats(rid=1))
    assert cq.ats_completion(1, 0, 0b101, cc=2)
    assert cq.ats_outstanding == [0, 1, 2]                 # one of two
    assert cq.ats_completion(1, 0, 0b101, cc=2)
    assert cq.ats_outstanding == [1]
    for _ in range(7):                                     # CC=0: eight completions
        cq.ats_completion(1, 0, 0b010, cc=0)
    assert cq.ats_outstanding == [1]
    cq.ats_completion(1, 0, 0b010, cc=0)
    assert cq.ats_outstanding == []


def test_fence_waits_then_completes():
    rig, q, cq = setup()
    q.submit(ats(rid=9), iofence_c(av=1, addr=0x3000, data=0xAB, wsi=1))
    assert q.cqh == 1 and rig.mem.read(0x3000, 1) == b"\x00" and q.cqcsr == CQON | 1
    cq.ats_completion(9, 0, 1)
    assert q.cqh == 2 and rig.mem.read(0x3000, 1) == b"\xAB"
    assert q.cqcsr == CQON | FENCE_W_IP | 1


def test_timeout_cmd_to_then_rerun():
    rig, q, cq = setup(cie=1)
    q.submit(ats(rid=9), iofence_c(av=1, addr=0x3000, data=0xAB, wsi=1))
    cq.ats_timeout(1 << 0)
    # cqh at the fence, not completed: no store, no fence_w_ip; cip since cie.
    assert q.cqh == 1 and q.cqcsr == CQON | CMD_TO | 3
    assert rig.mem.read(0x3000, 1) == b"\x00"
    assert rig.iommu.mmio_read(Offset.IPSR, 4) & 1
    assert not cq.ats_completion(9, 0, 1)                  # forgotten: a late completion drops
    rig.iommu.process_commands()
    assert q.cqh == 1                                      # stopped until cmd_to is cleared
    rig.iommu.mmio_write(Offset.CQCSR, 4, 3 | CMD_TO)
    rig.iommu.process_commands()
    assert q.cqh == 2 and rig.mem.read(0x3000, 1) == b"\xAB"
    assert q.cqcsr == CQON | FENCE_W_IP | 3


def test_timeout_reported_by_a_later_fence():
    rig, q, cq = setup()
    q.submit(ats(rid=9))
    cq.ats_timeout(1)
    q.submit(ats(1, rid=9))                                # runs: no fence yet
    assert q.cqh == 2 and q.cqcsr == CQON | 1
    q.submit(iofence_c())
    assert q.cqh == 2 and q.cqcsr == CQON | CMD_TO | 1


def test_timeout_of_nothing_is_a_bench_error():
    rig, q, cq = setup()
    with pytest.raises(ValueError):
        cq.ats_timeout(1)
