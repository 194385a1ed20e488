"""iogate.firmware.pq: the page-request driver against the model's page-request queue.

The model's RegisterFile has no pq registers yet: :class:`PqRegisterFile` (a subclass, here
only) gives ``pqb``/``pqh``/``pqt``/``pqcsr`` the MMIO behaviour of reference N.6.5, and
:class:`iogate.cosim.model.pageq.PageRequestQueue` writes the records. Expected ATS.PRGR
commands are the reference's numbers (N.6.4): dword0 = opcode 4 | func3 1 << 7 | PID << 12 |
PV << 32 | DSV << 33 | RID << 40 | DSEG << 56; dword1 = PRG index << 32 | code << 44.
"""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import TC
from iogate.hdl.regs import IPSR, PQCSR, QB, Offset

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.mmio import Registers
from iogate.firmware.pq import PageRequest, PageRequestQueue, prg_response

from iogate.cosim.model import Memory
from iogate.cosim.model.ddt import DeviceContext
from iogate.cosim.model.pageq import PageRequestQueue as ModelQueue
from iogate.cosim.model.registers import RegisterFile

PQ = {Offset.PQB: "pqb", Offset.PQH: "pqh", Offset.PQT: "pqt", Offset.PQCSR: "pqcsr"}
_RW1C = bits.mask(PQCSR, "pqof") | bits.mask(PQCSR, "pqmf")
_RW = bits.mask(PQCSR, "pqen") | bits.mask(PQCSR, "pie")
PID = 0x4321


class PqRegisterFile(RegisterFile):
    """RegisterFile with the page-request registers of reference N.6.5."""

    def __init__(self, config):
        super().__init__(config, lambda: None)
        self.pqb = self.pqh = self.pqt = self.pqcsr = 0
        self.writes = []

    def read(self, offset, size):
        if offset in PQ:
            return getattr(self, PQ[offset])
        return super().read(offset, size)

    def write(self, offset, size, value):
        if offset not in PQ:
            return super().write(offset, size, value)
        self.writes.append((Offset(offset), value))
        if offset == Offset.PQB:
            self.pqb = value & (bits.mask(QB, "log2szm1") | bits.mask(QB, "ppn"))
            self.pqh &= self.queue_entries(self.pqb) - 1
        elif offset == Offset.PQH:
            self.pqh = value & (self.queue_entries(self.pqb) - 1)
        elif offset == Offset.PQCSR:
            old = self.pqcsr
            new = (old & ~_RW & ~(value & _RW1C)) | (value & _RW)
            en, on = bits.mask(PQCSR, "pqen"), bits.mask(PQCSR, "pqon")
            if new & en and not old & en:           # pqen 0->1: pqt, pqof, pqmf zeroed
                self.pqt = 0
                new = (new & ~_RW1C) | on
            elif not new & en:
                new &= ~on
            self.pqcsr = new
        # pqt is read-only.


class Bus:
    def __init__(self, regs, memory):
        self.regs, self.memory = regs, memory

    def mmio_read(self, offset, size):
        return self.regs.read(offset, size)

    def mmio_write(self, offset, size, value):
        self.regs.write(offset, size, value)

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, data)


class System:
    def __init__(self, entries=8, prpr=0):
        self.regs = PqRegisterFile(Config(ats=True))
        self.memory = Memory()
        bus = Bus(self.regs, self.memory)
        self.driver = PageRequestQueue(Registers(bus), PageAllocator(bus, 0x1_0000_0000, 1 << 24),
                                       entries=entries)
        self.faults = []
        self.iommu = ModelQueue(self.regs, self.memory.write, lambda *a: self.faults.append(a))
        tc = bits.pack(TC, v=1, en_ats=1, en_pri=1, prpr=prpr)
        self.lookup = lambda did: DeviceContext((tc, 0, 0, 0))
        self.commands = []
        self.faulted_in = []

    def request(self, page, *, device_id=7, pasid=PID, last=True, prg_index=1, r=True, w=False):
        return self.iommu.page_request(self.lookup, device_id, page, pasid=pasid, r=r, w=w,
                                       last=last, prg_index=prg_index)

    def fault_in(self, *args):
        self.faulted_in.append(args)
        return args[2] != 0xBAD

    def handle(self):
        return self.driver.handle(self.fault_in, self.commands.append)


def prgr(device_id, prg_index, code, pid=None):
    dseg = device_id >> 16
    dw0 = 4 | 1 << 7 | (device_id & 0xFFFF) << 40 | dseg << 56 | (1 << 33 if dseg else 0)
    if pid is not None:
        dw0 |= pid << 12 | 1 << 32
    return dw0 | (prg_index << 32 | code << 44) << 64


def test_prg_response_bits():
    # One builder (commands.ats_prgr): device_id[15:0] in RID, the segment in DSEG with DSV=1.
    assert prg_response(0x0102, 0x1FF, 0xF) == prgr(0x102, 0x1FF, 0xF)
    assert prg_response(0xAB_0102, 3, 1, 0xFFFFF) == prgr(0xAB_0102, 3, 1, 0xFFFFF)


@pytest.mark.parametrize("args, error", [
    ((1 << 24, 0, 0), ValueError),
    ((0, 512, 0), ValueError),
    ((0, 0, 16), ValueError),
    ((0, 0, 0, 1 << 20), ValueError),
    ((True, 0, 0), TypeError),
])
def test_prg_response_checks(args, error):
    with pytest.raises(error):
        prg_response(*args)


def test_record_decoding():
    # dword0: PID 0x12345, PV, PRIV, EXEC, DID 0xABCDEF; dword1: R, L, PRG 0x1A5, page.
    dw0 = 0x12345 << 12 | 1 << 32 | 1 << 33 | 1 << 34 | 0xABCDEF << 40
    dw1 = 1 | 1 << 2 | 0x1A5 << 3 | 0xF_FFFF_FFFF_FFFF << 12
    rec = PageRequest.from_bytes(dw0.to_bytes(8, "little") + dw1.to_bytes(8, "little"))
    assert rec == PageRequest(device_id=0xABCDEF, pasid=0x12345, priv=True, exec=True, r=True,
                              w=False, last=True, prg_index=0x1A5, page=0xF_FFFF_FFFF_FFFF)
    assert not rec.stop_marker
    with pytest.raises(ValueError, match=r"^a page-request record is 16 bytes, not 32$"):
        PageRequest.from_bytes(bytes(32))


def test_enable_sequence():
    # N.6.5 Init: pqb, then pqh = 0, then pqen = 1 (then pqon polled).
    s = System(entries=16)
    s.driver.enable(interrupts=True)
    assert [w[0] for w in s.regs.writes] == [Offset.PQB, Offset.PQH, Offset.PQCSR]
    assert s.regs.pqcsr == bits.pack(PQCSR, pqen=1, pie=1, pqon=1)
    assert s.regs.queue_base(s.regs.pqb) == s.driver.base
    assert s.regs.queue_entries(s.regs.pqb) == 16
    s.driver.disable()
    assert not bits.get(PQCSR, s.regs.pqcsr, "pqon")


def test_group_faulted_in_and_answered():
    s = System()
    s.driver.enable()
    assert s.request(0x100, last=False).queued
    assert s.request(0x101, last=False, w=True).queued
    assert s.request(0x102).queued
    drain = s.handle()
    assert len(drain.records) == 3
    assert s.faulted_in == [(7, PID, 0x100, True, False, False, False),
                            (7, PID, 0x101, True, True, False, False),
                            (7, PID, 0x102, True, False, False, False)]
    assert s.commands == [prgr(7, 1, 0x0, PID)]
    assert s.regs.pqh == 3 == s.regs.pqt


def test_interleaved_groups_and_invalid_request():
    # Two groups interleaved (another PRG index, another device without a PASID); a page
    # fault_in cannot map makes its group Invalid Request.
    s = System()
    s.driver.enable()
    s.request(0x10, last=False, prg_index=1)
    s.request(0x20, last=False, prg_index=2, device_id=0x1_0009, pasid=None)
    s.request(0xBAD, prg_index=2, device_id=0x1_0009, pasid=None)
    s.request(0x11, prg_index=1)
    drain = s.handle()
    assert s.commands == [prgr(0x1_0009, 2, 0x1), prgr(7, 1, 0x0, PID)]
    assert [r[1] for r in drain.responses] == [0x1, 0x0]


def test_group_split_over_two_handler_runs():
    s = System()
    s.driver.enable()
    s.request(0x30, last=False, prg_index=5)
    assert s.handle().responses == () and s.commands == []
    s.request(0x31, prg_index=5)
    s.handle()
    assert [a[2] for a in s.faulted_in] == [0x30, 0x31]
    assert s.commands == [prgr(7, 5, 0x0, PID)]


def test_stop_marker_gets_no_response():
    s = System()
    s.driver.enable()
    s.request(0, r=False, w=False, last=True)
    drain = s.handle()
    assert drain.records[0].stop_marker
    assert s.commands == [] and s.faulted_in == []


def test_wraparound():
    s = System(entries=4)
    s.driver.enable()
    for round_ in range(3):
        for i in range(3):
            assert s.request(0x100 + i, prg_index=round_ * 3 + i).queued
        s.handle()
    assert s.commands == [prgr(7, i, 0x0, PID) for i in range(9)]
    assert s.regs.pqh == s.regs.pqt == 9 % 4


def test_overflow_clears_pqof_and_drops_incomplete_groups():
    # A 4-entry queue holds 3 records. Group 1's L=0 records fill it; its L=1 finds the
    # queue full: pqof, auto Success (N.6.7). The handler clears pqof, answers nothing for
    # group 1 (the device retries it) and the queue takes records again.
    s = System(entries=4)
    s.driver.enable(interrupts=True)
    for page in (1, 2, 3):
        assert s.request(page, last=False).queued
    out = s.request(4)
    assert out.response == 0x0 and bits.get(PQCSR, s.regs.pqcsr, "pqof")
    assert s.regs.ipsr & bits.mask(IPSR, "pip")
    drain = s.handle()
    assert drain.overflow and drain.dropped_groups == ((7, PID, 1),)
    assert s.commands == [] and s.faulted_in == []
    assert not bits.get(PQCSR, s.regs.pqcsr, "pqof")
    assert not s.regs.ipsr & bits.mask(IPSR, "pip")
    # The retry is queued and answered.
    assert s.request(5).queued
    s.handle()
    assert s.commands == [prgr(7, 1, 0x0, PID)] and [a[2] for a in s.faulted_in] == [5]


def test_memory_fault_reported_and_cleared():
    s = System()
    s.driver.enable()
    s.memory.inject_fault(s.driver.base, 16)
    assert s.request(1).response == 0xF
    s.memory.clear_faults()
    drain = s.handle()
    assert drain.memory_fault and drain.records == ()
    assert not bits.get(PQCSR, s.regs.pqcsr, "pqmf")
    assert s.request(2).queued


class Sink:
    """What report() hands on, logged in order."""

    def __init__(self):
        self.log = []

    def page_request(self, rec):
        self.log.append((rec.page, rec.last))

    def discard_partial(self):
        self.log.append("discard")


def test_report_hands_each_record_to_the_sink_and_answers_nothing():
    s = System()
    s.driver.enable()
    sink = Sink()
    s.request(0x10, last=False)
    s.request(0, r=False, w=False)                  # a Stop Marker: not reported
    s.request(0x11)
    drain = s.driver.report(sink)
    assert sink.log == [(0x10, False), (0x11, True)]
    assert len(drain.records) == 3 and drain.responses == () and s.commands == []
    assert s.regs.pqh == 3 and s.driver.pending == {}


def test_report_discards_partial_groups_on_overflow():
    s = System(entries=4)
    s.driver.enable()
    for page in (1, 2, 3):
        s.request(page, last=False)
    s.request(4)                                    # full: pqof, auto Success
    sink = Sink()
    drain = s.driver.report(sink)
    assert sink.log == ["discard", (1, False), (2, False), (3, False), "discard"]
    assert drain.overflow and drain.dropped_groups == ((7, PID, 1),)
    assert not bits.get(PQCSR, s.regs.pqcsr, "pqof")


def test_forget_drops_one_devices_incomplete_groups():
    s = System()
    s.driver.enable()
    s.request(0x10, last=False, prg_index=1)
    s.request(0x20, last=False, prg_index=2, device_id=9, pasid=None)
    s.handle()
    assert s.driver.forget(7) == ((7, PID, 1),)
    assert list(s.driver.pending) == [(9, None, 2)]


def test_report_into_iommufd_end_to_end():
    # The model's queue -> report() -> iommufd's fault object -> read() -> write() ->
    # ATS.PRGR through the host's driver (struct iommu_hwpt_pgfault is 40 bytes, the
    # response 8; the PRGR payload PRG index << 32 | code << 44, reference N.6.4).
    import struct

    from iogate.cosim.host.core import HostIommu
    from iogate.cosim.host.iommufd.ictx import Iommufd
    from iogate.cosim.host.iommufd.uapi import (
        FAULT_ALLOC,
        HWPT_ALLOC,
        IOAS_ALLOC,
        HwptAllocFlag,
        Ioctl,
    )

    host = HostIommu.on_model(Config.full().replace(ats=True))
    fd = Iommufd(host, allow_unsafe_interrupts=True)
    dev = fd.bind(7)
    arg = bytearray(IOAS_ALLOC.pack(12, 0, 0))
    assert fd.ioctl(Ioctl.IOAS_ALLOC, arg) == 0
    ioas = IOAS_ALLOC.unpack(arg)[2]
    arg = bytearray(FAULT_ALLOC.pack(16, 0, 0, 0))
    assert fd.ioctl(Ioctl.FAULT_QUEUE_ALLOC, arg) == 0
    _, _, fault_id, ffd = FAULT_ALLOC.unpack(arg)
    arg = bytearray(HWPT_ALLOC.pack(48, HwptAllocFlag.FAULT_ID_VALID, dev, ioas, 0, 0, 0, 0,
                                    0, fault_id, 0))
    assert fd.ioctl(Ioctl.HWPT_ALLOC, arg) == 0
    assert fd.attach(dev, HWPT_ALLOC.unpack(arg)[4]) == 0

    s = System()
    s.driver.enable()
    s.request(0x100, last=False, prg_index=3, pasid=None)
    s.request(0x101, prg_index=3, pasid=None, w=True)
    s.driver.report(fd)
    raw = fd.read(ffd, 80)
    got = [struct.unpack_from("<IIIIIIQII", raw, i) for i in (0, 40)]
    assert got == [(0, dev, 0, 3, 1, 0, 0x100_000, 0, 1), (2, dev, 0, 3, 3, 0, 0x101_000, 0, 1)]
    assert fd.write(ffd, struct.pack("<II", 1, 0)) == 8
    prgr_msgs = [m for m in host.model.command_queue.sent if m["kind"] == 1]
    assert [(m["rid"], m["payload"]) for m in prgr_msgs] == [(7, 3 << 32)]
    assert s.commands == []         # the queue's own handler answered nothing
