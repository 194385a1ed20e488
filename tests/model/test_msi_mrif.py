"""Accesses to pages mapped by MRIF-mode MSI PTEs (AIA "Memory-resident interrupt files";
reference N.4.4; issue 16 decision 5): the pending-bit update, the notice MSI, discards,
byte order, 260 for accesses that are not aligned words, 264 on each faulting memory
access, absorbed reads, and ``allowed`` without side effects.

The MRIF sits at SPA 0x30_0200 (512-byte aligned, not page aligned); the notice MSI goes to
page 0x40 (SPA 0x4_0000) with NID 0x5A5 (NID[10]=1, NID[9:0]=0x1A5). Pending doubleword k
(identities 64k..64k+63) is at MRIF + 16k; its enable doubleword at MRIF + 16k + 8.
"""

import pytest

from iogate.hdl.formats import Cause

from iogate.cosim.model import IommuModel, Memory, Result
from iogate.cosim.model.memory import AccessFault
from model_tables import Queues
from msi_tables import MSI, MSI_GPA, mrif_pte, msi_rig, record, write_msi_pte

MRIF = 0x30_0200
NOTICE = 0x4_0000
NID = 0x5A5
TTYP_READ, TTYP_WRITE = 2, 3
ABSORBED = Result(fault=False, absorbed=True)


def mrif_rig(config=MSI, mrif=MRIF, nppn=NOTICE >> 12, nid=NID):
    rig = msi_rig(config=config)
    rig.q = Queues(rig)
    write_msi_pte(rig, rig.msi_pt, 0, mrif_pte(mrif, nppn, nid))
    return rig


def write(rig, data, offset=0, **kw):
    return rig.iommu.translate(5, MSI_GPA + offset, "write", data=data, **kw)


def snapshot(rig):
    """The MRIF's 512 bytes and the notice doubleword."""
    return rig.mem.read(MRIF, 512), rig.mem.read64(NOTICE)


@pytest.mark.parametrize("identity, dword, bit", [
    (0, 0, 0),            # the faux identity 0 is set like any other
    (1, 0, 1),
    (63, 0, 63),
    (64, 1, 0),
    (130, 2, 2),
    (1000, 15, 40),       # 1000 = 15*64 + 40
    (2047, 31, 63),
])
def test_pending_bit_position(identity, dword, bit):
    rig = mrif_rig()
    r = write(rig, identity)
    assert not r.fault and r.absorbed
    assert (r.ppn, r.r, r.w, r.x, r.pa) == (0, False, False, False, None)
    for k in range(32):
        assert rig.mem.read64(MRIF + 16 * k) == (1 << bit if k == dword else 0)
        assert rig.mem.read64(MRIF + 16 * k + 8) == 0          # enable bits untouched
    assert rig.q.fqt == 0


def test_update_is_read_modify_write():
    rig = mrif_rig()
    rig.mem.write64(MRIF + 16, 0x8000_0000_0000_0005)
    rig.mem.write64(MRIF + 24, 0xFFFF)                          # enables of 64..127
    write(rig, 64 + 1)
    assert rig.mem.read64(MRIF + 16) == 0x8000_0000_0000_0007
    assert rig.mem.read64(MRIF + 24) == 0xFFFF
    write(rig, 64 + 1)                                          # already pending: unchanged
    assert rig.mem.read64(MRIF + 16) == 0x8000_0000_0000_0007


def test_notice_msi_data_and_address():
    rig = mrif_rig()
    rig.mem.write(NOTICE, b"\xee" * 8)
    write(rig, 7)
    # NID 0x5A5 zero-extended to 32 bits, little-endian, 4 bytes: a5 05 00 00; the next
    # four bytes are not written.
    assert rig.mem.read(NOTICE, 8) == b"\xa5\x05\x00\x00\xee\xee\xee\xee"


def test_notice_after_every_write_whatever_the_enables_say():
    rig = mrif_rig()
    for identity, enables in ((5, 0), (5, 0), (6, 1 << 6), (2047, 0)):
        rig.mem.write64(MRIF + 8 + 16 * (identity // 64), enables)
        rig.mem.write64(NOTICE, 0)
        assert write(rig, identity).absorbed
        assert rig.mem.read64(NOTICE) == NID


@pytest.mark.parametrize("nid", [0, 1, 0x3FF, 0x400, 0x7FF])
def test_notice_data_is_the_11_bit_nid(nid):
    rig = mrif_rig(nid=nid)
    rig.mem.write64(NOTICE, 0xFFFF_FFFF_0000_0000)
    write(rig, 3)
    assert rig.mem.read64(NOTICE) == 0xFFFF_FFFF_0000_0000 | nid


@pytest.mark.parametrize("offset, data", [
    (0x8, 5),            # A[11:3] != 0
    (0x10, 5),
    (0xFF8, 5),
    (0x800, 5),
    (0, 2048),           # D >= 2048
    (0, 0xFFFF_FFFF),
    (0, 0x0001_0000),
    (4, 5),              # big-endian: D = 0x0500_0000 >= 2048
])
def test_discarded_writes(offset, data):
    rig = mrif_rig()
    before = snapshot(rig)
    r = write(rig, data, offset)
    assert not r.fault and r.absorbed
    assert snapshot(rig) == before
    assert rig.q.fqt == 0


@pytest.mark.parametrize("data, identity", [(0x0500_0000, 5), (0xFF07_0000, 2047),
                                            (0x0000_0000, 0), (0x4000_0000, 64)])
def test_big_endian_at_a2(data, identity):
    # A[2]=1: the device's bytes are big-endian, D is the byte-swapped data.
    rig = mrif_rig()
    assert write(rig, data, 4).absorbed
    dword, bit = divmod(identity, 64)
    assert rig.mem.read64(MRIF + 16 * dword) == 1 << bit
    assert rig.mem.read64(NOTICE) == NID


@pytest.mark.parametrize("access, offset, word", [
    ("write", 0, False), ("read", 0, False),             # not a 32-bit access
    ("write", 1, True), ("write", 2, True), ("write", 3, True),
    ("read", 2, True), ("read", 0xFFE, True),            # not 4-byte aligned
])
def test_not_an_aligned_word_is_260(access, offset, word):
    rig = mrif_rig()
    before = snapshot(rig)
    r = rig.iommu.translate(5, MSI_GPA + offset, access, word=word,
                            data=5 if access == "write" else None)
    assert r.fault and r.cause == Cause.TRANSACTION_TYPE_DISALLOWED
    ttyp = TTYP_WRITE if access == "write" else TTYP_READ
    assert record(rig, 0) == (260, ttyp, 5, MSI_GPA + offset, 0)
    assert snapshot(rig) == before


@pytest.mark.parametrize("offset", [0, 4, 8, 0xFFC])
def test_aligned_reads_are_absorbed(offset):
    rig = mrif_rig()
    rig.mem.write64(MRIF, 0xFF)
    before = snapshot(rig)
    r = rig.iommu.translate(5, MSI_GPA + offset, "read")
    assert not r.fault and r.absorbed and r.ppn == 0
    assert snapshot(rig) == before and rig.q.fqt == 0


def test_execute_is_1():
    rig = mrif_rig()
    r = rig.iommu.translate(5, MSI_GPA, "execute")
    assert r.cause == Cause.INSTRUCTION_ACCESS_FAULT


def test_write_without_data_is_refused():
    rig = mrif_rig()
    with pytest.raises(ValueError, match="data"):
        rig.iommu.translate(5, MSI_GPA, "write")
    with pytest.raises(ValueError, match="data"):
        rig.iommu.translate(5, MSI_GPA, "write", data=1 << 32)


# -- 264: access faults on the MRIF and the notice ------------------------------------------

class WriteFaultMemory(Memory):
    """A memory whose writes (only) fault in the given ranges."""

    def __init__(self, *ranges):
        super().__init__()
        self.armed = False
        self.write_ranges = list(ranges)

    def write(self, address, data):
        if self.armed:
            for lo, hi in self.write_ranges:
                if address < hi and lo < address + len(data):
                    raise AccessFault(address, len(data))
        super().write(address, data)


def _rig_armed(*ranges):
    """The standard world copied into a :class:`WriteFaultMemory`, armed."""
    mem = WriteFaultMemory(*ranges)
    rig = msi_rig()
    ddtp = rig.iommu.mmio_read(0x10, 8)
    for base, page in rig.mem._pages.items():
        mem.write(base, bytes(page))
    rig.mem = mem
    rig.iommu = IommuModel(MSI, mem)
    rig.iommu.mmio_write(0x10, 8, ddtp)
    rig.q = Queues(rig)
    write_msi_pte(rig, rig.msi_pt, 0, mrif_pte(MRIF, NOTICE >> 12, NID))
    mem.armed = True
    return rig


def test_mrif_read_fault_is_264_and_no_notice():
    rig = mrif_rig()
    rig.mem.inject_fault(MRIF + 32, 8)                      # pending dw of 128..191
    r = write(rig, 130)
    assert r.fault and r.cause == Cause.MRIF_ACCESS_FAULT and not r.absorbed
    assert record(rig, 0) == (264, TTYP_WRITE, 5, MSI_GPA, 0)
    assert rig.mem.read64(NOTICE) == 0
    # Other identities still work.
    assert write(rig, 1).absorbed and rig.mem.read64(NOTICE) == NID


def test_mrif_write_back_fault_is_264_and_no_notice():
    rig = _rig_armed((MRIF, MRIF + 8))
    rig.mem.armed = False
    rig.mem.write64(MRIF, 0x10)
    rig.mem.armed = True
    r = write(rig, 1)
    assert r.cause == Cause.MRIF_ACCESS_FAULT
    assert record(rig, 0) == (264, TTYP_WRITE, 5, MSI_GPA, 0)
    assert rig.mem.read64(MRIF) == 0x10 and rig.mem.read64(NOTICE) == 0


def test_notice_write_fault_is_264_after_the_pending_bit():
    rig = mrif_rig()
    rig.mem.inject_fault(NOTICE, 4)
    r = write(rig, 3)
    assert r.cause == Cause.MRIF_ACCESS_FAULT
    assert record(rig, 0) == (264, TTYP_WRITE, 5, MSI_GPA, 0)
    assert rig.mem.read64(MRIF) == 1 << 3                   # the update happened first


def test_mrif_beyond_pas_is_264():
    config = MSI.replace(pas=40)
    rig = mrif_rig(config=config, mrif=1 << 40)
    assert write(rig, 3).cause == Cause.MRIF_ACCESS_FAULT
    rig = mrif_rig(config=config, nppn=1 << 28)              # notice at 2**40
    assert write(rig, 3).cause == Cause.MRIF_ACCESS_FAULT
    assert rig.mem.read64(MRIF) == 1 << 3


def test_discard_and_read_touch_no_faulting_memory():
    rig = mrif_rig()
    rig.mem.inject_fault(MRIF, 512)
    rig.mem.inject_fault(NOTICE, 4)
    assert write(rig, 5, 8).absorbed                        # A[11:3] != 0
    assert write(rig, 4096).absorbed                        # D >= 2048
    assert rig.iommu.translate(5, MSI_GPA, "read").absorbed
    assert rig.q.fqt == 0


# -- allowed() has no side effects ------------------------------------------------------------

def test_allowed_predicts_without_writing():
    rig = mrif_rig()
    before = snapshot(rig)
    assert rig.iommu.allowed(5, MSI_GPA, "write", data=9) == {ABSORBED}
    assert snapshot(rig) == before
    rig.mem.inject_fault(NOTICE, 4)
    faults = rig.iommu.allowed(5, MSI_GPA, "write", data=9)
    assert {(r.fault, r.cause) for r in faults} == {(True, Cause.MRIF_ACCESS_FAULT)}
    assert rig.mem.read(MRIF, 512) == before[0] and rig.q.fqt == 0
    assert {r.cause for r in rig.iommu.allowed(5, MSI_GPA + 1, "write", data=9)} == {260}
    assert rig.iommu.allowed(5, MSI_GPA, "read") == {ABSORBED}
    assert rig.iommu.allowed(5, MSI_GPA, "execute") == {
        Result(fault=True, cause=Cause.INSTRUCTION_ACCESS_FAULT)}
