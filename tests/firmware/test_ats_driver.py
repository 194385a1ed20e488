"""iogate.firmware.ats: the N.6.8 enable and disable sequences, ATS.INVAL ranges, unmap.

Against the architectural model (its command queue offers ATS.INVAL with Config.ats): a
:class:`DeviceAtc` bus answers every ATS.INVAL the model sends with an Invalidation
Completion, as a device with an ATC would, and keeps the messages. Expected commands are
the reference's numbers (N.6.4): ATS dword0 = opcode 4 | func3 << 7 | PID << 12 | PV << 32 |
DSV << 33 | RID << 40 | DSEG << 56; ATS.INVAL dword1 = G | S << 11 | address[63:12] << 12 with
PCIe's S encoding (N.6.2: the bits from 12 up are 1 below the first 0 at bit 12+X, size
2^(X+1) x 4 KiB). IODIR dword0 = 3 | func3 << 7 | DV << 33 | DID << 40; IOTINVAL.VMA
dword0 = 1 | AV << 10 | PSCID << 12 | PSCV << 32, dword1 = address[63:12] << 10; IOFENCE.C
opcode 2.
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.formats import IosatpMode

from iogate.firmware import ats, invalidate
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import IommuError, UnsupportedError
from iogate.firmware.pagetable import Stage, TableChanges

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus

REGION = 0x1_0000_0000
DID = 0x0102
PSCID = 5
V, EN_ATS, EN_PRI, T2GPA, PRPR = 1, 1 << 1, 1 << 2, 1 << 3, 1 << 6


class DeviceAtc(ModelBus):
    """Completes each ATS.INVAL the model sends (one Completion, CC=1) and keeps them."""

    def __init__(self, model):
        super().__init__(model)
        self.invalidations = []

    def mmio_write(self, offset, size, value):
        super().mmio_write(offset, size, value)
        cq = self.iommu.command_queue
        while cq.ats_outstanding:
            itag = cq.ats_outstanding[0]
            msg = [m for m in cq.sent if m["kind"] == 0 and m["itag"] == itag][-1]
            self.invalidations.append(msg)
            assert cq.ats_completion(msg["rid"], msg["dseg"], 1 << itag)


def system(config=Config(ats=True, sv39x4=True, t2gpa=True, ddt_levels=2)):
    model = IommuModel(config, Memory(), cache=True)
    bus = DeviceAtc(model)
    io = Iommu(bus, PageAllocator(bus, REGION, 64 << 20))
    io.init()
    sent = []
    submit = io.cq.submit

    def recording(*cmds):
        sent.extend(cmds)
        return submit(*cmds)
    io.cq.submit = recording
    return io, bus, sent


def dwords(cmd):
    return cmd & (1 << 64) - 1, cmd >> 64


def opcodes(sent):
    return [cmd & 0x7F for cmd in sent]


def ats_inval(rid, dw1, pid=None, dseg=None):
    dw0 = 4 | rid << 40
    if pid is not None:
        dw0 |= pid << 12 | 1 << 32
    if dseg is not None:
        dw0 |= 1 << 33 | dseg << 56
    return dw0 | dw1 << 64


IODIR_DID = 3 | 1 << 33 | DID << 40
IOTINVAL_PSCID = 1 | PSCID << 12 | 1 << 32
WHOLE = 0x7FFF_FFFF_FFFF_F000 | 1 << 11


# -- ATS.INVAL ranges (PCIe S encoding, spans as arm-smmu-v3) -----------------------------

@pytest.mark.parametrize("iova, size, dw1", [
    (0x1234_5000, 0x1000, 0x1234_5000),            # one page: S=0
    (0x1234_5FFF, 1, 0x1234_5000),                 # one byte: its page
    (0x2000, 0x2000, 0x2000 | 1 << 11),            # pages 2-3: 8 KiB at 0x2000, bit 12 = 0
    (0x1000, 0x2000, 0x1000 | 1 << 11),            # pages 1-2: 16 KiB at 0, bits 13:12 = 01
    (0xF000, 0x2000, 0xF000 | 1 << 11),            # pages F-10: 128 KiB at 0, bits 16:12 = 01111
    (0x20_0000, 0x20_0000, 0x2F_F000 | 1 << 11),   # 2 MiB aligned: bits 20:12 = 011111111
])
def test_ats_invalidate_range(iova, size, dw1):
    assert ats.ats_invalidate(DID, iova, size) == ats_inval(DID, dw1)


def test_ats_invalidate_pasid_segment_global():
    assert ats.ats_invalidate(0xAB_0102, 0x5000, 0x1000, pasid=0x55, g=True) == \
        ats_inval(0x0102, 0x5000 | 1, pid=0x55, dseg=0xAB)


def test_ats_invalidate_all_is_the_whole_space():
    assert ats.ats_invalidate_all(DID) == ats_inval(DID, WHOLE)
    assert ats.ats_invalidate(DID, 0, 1 << 64) == ats_inval(DID, WHOLE)
    # Any range with the top bit's half crossing is the whole space too.
    assert ats.ats_invalidate(DID, (1 << 63) - 0x1000, 0x2000) == ats_inval(DID, WHOLE)


@pytest.mark.parametrize("iova, size, error", [
    (0, 0, ValueError), (-0x1000, 0x1000, ValueError), ((1 << 64) - 0x1000, 0x2000, ValueError),
    (0, True, TypeError), (0.0, 0x1000, TypeError),
])
def test_ats_invalidate_checks(iova, size, error):
    with pytest.raises(error):
        ats.ats_invalidate(DID, iova, size)


def test_devatc_recipe():
    first = TableChanges(Stage.FIRST, leaves=[(0x10000, 0x1000), (0x20_0000, 0x20_0000)])
    assert invalidate.devatc(first, DID, pasid=7) == [
        ats_inval(DID, 0x10000, pid=7), ats_inval(DID, 0x2F_F000 | 1 << 11, pid=7)]
    assert invalidate.devatc(TableChanges(Stage.FIRST, nonleaf=True), DID) == \
        [ats_inval(DID, WHOLE)]
    many = TableChanges(Stage.FIRST, leaves=[(i << 12, 0x1000) for i in range(65)])
    assert invalidate.devatc(many, DID) == [ats_inval(DID, WHOLE)]
    second = TableChanges(Stage.SECOND, leaves=[(0x10000, 0x1000)])
    assert invalidate.devatc(second, DID) == [ats_inval(DID, WHOLE)]
    assert invalidate.devatc(TableChanges(Stage.FIRST), DID) == []


# -- enable / disable (N.6.8) ---------------------------------------------------------------

def attached(config=None):
    io, bus, sent = system() if config is None else system(config)
    table = io.page_table(IosatpMode.SV39)
    io.set_first_stage(DID, table, pscid=PSCID)
    sent.clear()
    return io, bus, sent, table


def test_enable_writes_the_bits_with_the_dc_update_rules():
    io, bus, sent, _ = attached()
    ats.enable(io, DID, pri=True, prpr=True)
    assert io.device_context(DID).tc == V | EN_ATS | EN_PRI | PRPR
    # V=0 then the old context's recipe (IODIR DV=1, IOTINVAL.VMA of its PSCID), fence; new
    # context, IODIR DV=1, fence.
    assert opcodes(sent) == [3, 1, 2, 3, 2]
    assert sent[0] == IODIR_DID and sent[1] == IOTINVAL_PSCID and sent[3] == IODIR_DID
    assert bus.invalidations == []
    assert not bus.iommu.command_queue.sent


def test_enable_t2gpa_needs_a_second_stage():
    io, _, sent, _ = attached()
    before = io.device_context(DID)
    with pytest.raises(ValueError, match="T2GPA"):
        ats.enable(io, DID, t2gpa=True)
    assert io.device_context(DID) == before and sent == []


@pytest.mark.parametrize("kwargs, error", [
    ({"prpr": True}, ValueError),
])
def test_enable_refuses_prpr_without_pri(kwargs, error):
    io, _, sent, _ = attached()
    before = io.device_context(DID)
    with pytest.raises(error, match="PRPR"):
        ats.enable(io, DID, **kwargs)
    assert io.device_context(DID) == before and sent == []


def test_enable_needs_capabilities_ats_and_a_valid_context():
    io, _, sent, _ = attached(Config(sv39x4=True, ddt_levels=2))
    with pytest.raises(UnsupportedError, match="ATS"):
        ats.enable(io, DID)
    assert io.device_context(DID).tc == V and sent == []
    io, _, sent = system()
    with pytest.raises(IommuError, match="no valid device context"):
        ats.enable(io, DID)
    assert not io.device_context(DID).valid and sent == []


class FakePq:
    """The page-request queue's two calls disable() makes, logged in order."""

    base = 0x1000

    def __init__(self, log):
        self.log = log

    def handle(self, fault_in, submit):
        self.log.append("handle")

    def forget(self, device_id):
        self.log.append(("forget", device_id))
        return ()


def test_disable_clears_pri_drains_invalidates_the_atc_then_clears_ats():
    io, bus, sent, _ = attached()
    ats.enable(io, DID, pri=True, prpr=True)
    sent.clear()
    log = []
    submit = io.cq.submit
    io.cq.submit = lambda *cmds: (log.append(("cmds", cmds)), submit(*cmds))[1]
    pq = FakePq(log)
    ats.disable(io, DID, pq=pq, fault_in=lambda *a: True)
    assert io.device_context(DID).tc == V
    # 1: EN_PRI/PRPR cleared (DC update: 5 commands); 2: the queue drained; 3: ATS.INVAL of
    # the whole ATC + fence; 4: EN_ATS cleared (5 commands).
    assert opcodes(sent) == [3, 1, 2, 3, 2, 4, 2, 3, 1, 2, 3, 2]
    assert sent[5] == ats_inval(DID, WHOLE)
    kinds = [k for e in log for k in (
        ["pq"] if e == "handle" or e[0] == "forget" else [c & 0x7F for c in e[1]])]
    assert kinds == [3, 1, 2, 3, 2, "pq", "pq", 4, 2, 3, 1, 2, 3, 2]
    assert log.index("handle") + 1 == log.index(("forget", DID))
    # The device answered the invalidation while EN_ATS was still 1.
    assert [m["payload"] for m in bus.invalidations] == [WHOLE]


def test_disable_without_pri_or_queue():
    io, bus, sent, _ = attached()
    ats.enable(io, DID)
    sent.clear()
    ats.disable(io, DID)
    assert io.device_context(DID).tc == V
    assert opcodes(sent) == [4, 2, 3, 1, 2, 3, 2]


def test_disable_refuses_a_context_without_ats():
    io, _, sent, _ = attached()
    with pytest.raises(IommuError, match="EN_ATS"):
        ats.disable(io, DID)
    assert sent == []
    ats.enable(io, DID, pri=True)
    with pytest.raises(TypeError, match="fault_in"):
        ats.disable(io, DID, pq=FakePq([]))


# -- unmap: IOTINVAL, then ATS.INVAL, then one fence (N.6.2 "Caching") ---------------------

def test_unmap_invalidates_the_iotlb_then_the_devatc_then_fences_once():
    io, bus, sent, table = attached()
    ats.enable(io, DID)
    io.map(table, 0x10000, 0x8000_0000, 0x2000, r=True, w=True, pscid=PSCID)
    sent.clear()
    changes = ats.unmap(io, table, 0x10000, 0x2000, pscid=PSCID,
                        devices=[(DID, None), (0x0203, 9)])
    assert changes.leaves == [(0x10000, 0x1000), (0x11000, 0x1000)]
    iotinval = [IOTINVAL_PSCID | 1 << 10 | (a >> 12) << 74 for a in (0x10000, 0x11000)]
    assert sent[:6] == iotinval + [
        ats_inval(DID, 0x10000), ats_inval(DID, 0x11000),
        ats_inval(0x0203, 0x10000, pid=9), ats_inval(0x0203, 0x11000, pid=9)]
    assert opcodes(sent[6:]) == [2] and len(sent) == 7
    assert [(m["rid"], m["payload"]) for m in bus.invalidations] == [
        (DID, 0x10000), (DID, 0x11000), (0x0203, 0x10000), (0x0203, 0x11000)]


def test_unmap_needs_the_ids():
    io, _, _, table = attached()
    io.map(table, 0x10000, 0x8000_0000, 0x1000, r=True, pscid=PSCID)
    with pytest.raises(TypeError, match="pscid"):
        ats.unmap(io, table, 0x10000, 0x1000, devices=[])
    assert table.lookup(0x10000) is not None      # nothing unmapped


def test_route_splits_the_device_id():
    from iogate.firmware import commands
    assert commands.route(0x0102) == {"rid": 0x0102, "dsv": False, "dseg": 0}
    assert commands.route(0xAB_0102) == {"rid": 0x0102, "dsv": True, "dseg": 0xAB}
    with pytest.raises(ValueError):
        commands.route(1 << 24)
