"""iogate.cosim.model.pageq: reference N.6.7, row by row, on the real model RegisterFile.

The RegisterFile does not have the page-request registers yet: the tests set ``pqb``,
``pqh``, ``pqt`` and ``pqcsr`` as attributes of a real instance (what the RegisterFile will
hold), and use its ``queue_entries``/``queue_base``/``ipsr``. Expected values are the
reference's numbers: record doubleword 0 = PID 31:12 | PV 32 | PRIV 33 | EXEC 34 | DID 63:40,
doubleword 1 = R 0 | W 1 | L 2 | PRG index 11:3 | page 63:12 (N.6.6); codes Success 0,
Invalid Request 1, Response Failure 0xF; fault records TTYP 9, iotval 0x04 (N.6.7).
"""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import TC
from iogate.hdl.regs import DDTP, IPSR, PQCSR, QB, IommuMode, Offset

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.ddt import DeviceContext
from iogate.cosim.model.pageq import PageRequestOutcome, PageRequestQueue
from iogate.cosim.model.registers import RegisterFile
from iogate.cosim.model.walk import TranslationFault

BASE = 0x40_0000
DID = 0x12_3456
PID = 0xABCDE
PAGE = 0x8_7654_3210_F
PIP = bits.mask(IPSR, "pip")


def dwords(*, device_id=DID, pv=1, pid=PID, priv=1, exec=0, r=1, w=1, last=1, prg_index=0x155,
           page=PAGE):
    return (pid << 12 | pv << 32 | priv << 33 | exec << 34 | device_id << 40,
            r | w << 1 | last << 2 | prg_index << 3 | page << 12)


class Rig:
    """A real RegisterFile with the pq registers set as attributes, memory and a fault log."""

    def __init__(self, *, entries=8, head=0, tail=0, pqcsr=None):
        self.regs = RegisterFile(Config(ats=True), lambda: None)
        self.regs.pqb = bits.pack(QB, log2szm1=entries.bit_length() - 2, ppn=BASE >> 12)
        self.regs.pqh, self.regs.pqt = head, tail
        self.regs.pqcsr = (bits.pack(PQCSR, pqen=1, pqon=1, pie=1) if pqcsr is None
                           else pqcsr)
        self.memory = Memory()
        self.faults = []
        self.queue = PageRequestQueue(self.regs, self.memory.write,
                                      lambda *a: self.faults.append(a))

    def send(self, lookup, *, pasid=PID, priv=True, exec=False, r=True, w=True, last=True,
             prg_index=0x155, device_id=DID):
        return self.queue.page_request(lookup, device_id, PAGE, pasid=pasid, priv=priv,
                                       exec=exec, r=r, w=w, last=last, prg_index=prg_index)

    def record(self, index):
        raw = self.memory.read(BASE + 16 * index, 16)
        return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")

    def csr(self, field):
        return bits.get(PQCSR, self.regs.pqcsr, field)


def dc(*, en_ats=1, en_pri=1, prpr=0, dtf=0):
    tc = bits.pack(TC, v=1, en_ats=en_ats, en_pri=en_pri, prpr=prpr, dtf=dtf)
    words = (tc, 0, 0, 0)
    return lambda device_id: DeviceContext(words)


def raises(cause):
    def lookup(device_id):
        raise TranslationFault(cause)
    return lookup


def bare(device_id):
    return None


def fault(cause, pv=1, pid=PID, priv=1):
    # (cause, ttyp, did, iotval, iotval2, pv, pid, priv): TTYP 9, iotval 0x04.
    return (cause, 9, DID, 0x04, 0, pv, pid, priv)


# (name, rig options, lookup, response code, response PASID, fault cause, pqof, pqmf after)
ROWS = [
    ("off", {}, raises(256), 0xF, PID, 256, 0, 0),
    ("bare", {}, bare, 0x1, None, 260, 0, 0),
    ("did_wide", {}, raises(260), 0x1, None, 260, 0, 0),
    ("ddt_load_fault", {}, raises(257), 0xF, PID, 257, 0, 0),
    ("dc_not_valid", {}, raises(258), 0xF, PID, 258, 0, 0),
    ("dc_misconfigured", {}, raises(259), 0xF, PID, 259, 0, 0),
    ("ddt_corruption", {}, raises(268), 0xF, PID, 268, 0, 0),
    ("en_pri_0", {}, dc(en_pri=0), 0x1, None, 260, 0, 0),
    ("en_ats_0", {}, dc(en_ats=0, en_pri=0), 0x1, None, 260, 0, 0),
    ("pqen_0", {"pqcsr": 0}, dc(), 0xF, PID, None, 0, 0),
    ("pqon_0", {"pqcsr": bits.pack(PQCSR, pqen=1)}, dc(), 0xF, PID, None, 0, 0),
    ("pqmf", {"pqcsr": bits.pack(PQCSR, pqen=1, pqon=1, pqmf=1)}, dc(prpr=1), 0xF, PID,
     None, 0, 1),
    ("pqof_prpr_0", {"pqcsr": bits.pack(PQCSR, pqen=1, pqon=1, pqof=1)}, dc(), 0x0, None,
     None, 1, 0),
    ("pqof_prpr_1", {"pqcsr": bits.pack(PQCSR, pqen=1, pqon=1, pqof=1)}, dc(prpr=1), 0x0, PID,
     None, 1, 0),
    ("full_prpr_0", {"head": 4, "tail": 3}, dc(), 0x0, None, None, 1, 0),
    ("full_prpr_1", {"head": 4, "tail": 3}, dc(prpr=1), 0x0, PID, None, 1, 0),
]


@pytest.mark.parametrize("name, opts, lookup, code, pasid, cause, pqof, pqmf", ROWS,
                         ids=[r[0] for r in ROWS])
def test_table_row(name, opts, lookup, code, pasid, cause, pqof, pqmf):
    rig = Rig(**opts)
    out = rig.send(lookup)
    assert out == PageRequestOutcome(False, code, pasid, cause)
    assert rig.faults == ([fault(cause)] if cause else [])
    assert (rig.csr("pqof"), rig.csr("pqmf")) == (pqof, pqmf)
    assert rig.regs.pqt == opts.get("tail", 0)


def test_queued_record():
    rig = Rig(tail=5)
    out = rig.send(dc(), exec=True)
    assert out == PageRequestOutcome(True) and not out.dropped
    assert rig.record(5) == dwords(exec=1)
    assert rig.regs.pqt == 6 and rig.regs.ipsr & PIP
    assert rig.faults == []


def test_no_pasid():
    # "yes, if the request had one" gives none; the record's PV, PID, PRIV, EXEC are 0.
    rig = Rig()
    assert rig.send(raises(256), pasid=None) == PageRequestOutcome(False, 0xF, None, 256)
    assert rig.faults == [fault(256, pv=0, pid=0, priv=0)]
    rig.send(dc(), pasid=None, exec=True)
    assert rig.record(0) == dwords(pv=0, pid=0, priv=0)


def test_store_fault_sets_pqmf_and_pip():
    rig = Rig()
    rig.memory.inject_fault(BASE + 8)
    assert rig.send(dc()) == PageRequestOutcome(False, 0xF, PID)
    assert rig.csr("pqmf") == 1 and rig.regs.pqt == 0 and rig.regs.ipsr & PIP
    # pqmf stays: the next one is Response Failure too, without a store.
    rig.memory.clear_faults()
    assert rig.send(dc(), prg_index=3).response == 0xF and rig.regs.pqt == 0


@pytest.mark.parametrize("pie", [0, 1])
def test_overflow_raises_pip_only_with_pie(pie):
    rig = Rig(head=1, tail=0, pqcsr=bits.pack(PQCSR, pqen=1, pqon=1, pie=pie))
    assert rig.send(dc()).response == 0x0
    assert bool(rig.regs.ipsr & PIP) == bool(pie)


def test_wraparound_then_full():
    rig = Rig(entries=4, head=2, tail=2)
    for i in (1, 2, 3):
        assert rig.send(dc(), prg_index=i).queued
    assert [rig.record(k)[1] >> 3 & 0x1FF for k in (2, 3, 0)] == [1, 2, 3]
    assert rig.regs.pqt == 1
    assert rig.send(dc(), prg_index=4) == PageRequestOutcome(False, 0x0)
    assert rig.csr("pqof") == 1


@pytest.mark.parametrize("kind", ["l0", "stop_marker"])
@pytest.mark.parametrize("opts, lookup, cause", [
    ({}, raises(256), 256), ({}, bare, 260), ({}, raises(260), 260), ({}, raises(259), 259),
    ({}, dc(en_pri=0), 260), ({"pqcsr": 0}, dc(), None),
    ({"head": 1, "tail": 0}, dc(prpr=1), None),
], ids=["off", "bare", "did_wide", "dc_fault", "en_pri_0", "queue_off", "full"])
def test_unqueued_l0_and_stop_marker_are_dropped(kind, opts, lookup, cause):
    rig = Rig(**opts)
    flags = {"last": False} if kind == "l0" else {"r": False, "w": False}
    out = rig.send(lookup, **flags)
    assert out.dropped and out.cause == cause
    assert rig.faults == ([fault(cause)] if cause else [])
    assert rig.queue.dropped == 1 and rig.queue.answered == 0


def test_stop_marker_is_queued():
    rig = Rig()
    assert rig.send(dc(), r=False, w=False).queued
    assert rig.record(0) == dwords(r=0, w=0)


@pytest.mark.parametrize("lookup, cause", [
    (raises(256), 256), (bare, 260), (raises(258), 258), (dc(en_pri=0, dtf=1), None)])
def test_dtf_only_for_en_pri(lookup, cause):
    # DTF=1 suppresses the EN_PRI=0 record only (rows 1-4 have no located DC).
    rig = Rig()
    assert rig.send(lookup).cause == cause


def test_with_the_models_own_lookup():
    # IommuModel._device_context: Off raises 256, Bare returns None, a 1LVL DDT with a
    # zero entry raises 258, a device_id over 7 bits (base format, DDI[0]) raises 260.
    model = IommuModel(Config(ats=True), Memory())
    rig = Rig()
    lookup = model._device_context
    assert rig.send(lookup) == PageRequestOutcome(False, 0xF, PID, 256)
    model.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.BARE))
    assert rig.send(lookup) == PageRequestOutcome(False, 0x1, None, 260)
    model.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.LVL1, ppn=0x100))
    assert rig.send(lookup, device_id=5).cause == 258
    assert rig.send(lookup, device_id=128) == PageRequestOutcome(False, 0x1, None, 260)
