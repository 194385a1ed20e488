"""The debug translation interface: tr_req_iova, tr_req_ctl, tr_response
(RISC-V IOMMU spec "Debug support")."""

from iogate.hdl.formats import Pbmt
from iogate.hdl.regs import IommuMode, Offset

from model_tables import FULL, URW, URWX, Queues, Rig, dc_words, iosatp, pte, ta

GO, EXE, NW = 1 << 0, 1 << 2, 1 << 3


def setup(config=FULL):
    rig = Rig(config)
    rig.root, rig.s = rig.page(), rig.page()
    rig.write_dc(rig.root, 5, dc_words(ta=ta(7), fsc=iosatp(8, rig.s)))
    rig.set_ddtp(IommuMode.LVL1, rig.root)
    rig.q = Queues(rig)
    return rig


def request(rig, iova, ctl):
    rig.iommu.mmio_write(Offset.TR_REQ_IOVA, 8, iova)
    rig.iommu.mmio_write(Offset.TR_REQ_CTL, 8, ctl)
    return rig.iommu.mmio_read(Offset.TR_RESPONSE, 8)


def test_4k_translation():
    rig = setup()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, pbmt=Pbmt.NC, **URW))
    resp = request(rig, 0x4000_1000, GO | NW | 5 << 40)
    # fault 0, PBMT=NC (1) in bits 8:7, S=0, PPN in bits 53:10.
    assert resp == 0x87654 << 10 | 1 << 7
    assert rig.iommu.mmio_read(Offset.TR_REQ_CTL, 8) & GO == 0    # done
    assert rig.iommu.mmio_read(Offset.TR_REQ_CTL, 8) == NW | 5 << 40


def test_2m_superpage_napot_size():
    rig = setup()
    rig.map(rig.s, 0x4020_0000, pte(0x80200, **URW), level=1)
    resp = request(rig, 0x4021_2000, GO | 5 << 40)
    # S=1; PPN = superpage PPN with bits 7:0 set and bit 8 clear: 0x802FF.
    assert resp == 0x802FF << 10 | 1 << 9


def test_64k_napot_size():
    rig = setup()
    rig.map(rig.s, 0x4000_5000, pte(0x87658, n=1, **URWX))
    resp = request(rig, 0x4000_5000, GO | EXE | NW | 5 << 40)
    assert resp == 0x87657 << 10 | 1 << 9                     # ...0111: 64 KiB


def test_fault_sets_fault_bit_and_records():
    rig = setup()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, v=1, r=1, u=1, a=1))
    assert request(rig, 0x4000_1000, GO | NW | 5 << 40) == 0x87654 << 10    # read is fine
    assert request(rig, 0x4000_1000, GO | 5 << 40) == 1           # NW=0 asks for write
    assert request(rig, 0x4000_1000, GO | EXE | NW | 5 << 40) == 1
    assert rig.q.record(0) == (15 | 3 << 34 | 5 << 40, 0, 0x4000_1000, 0)
    assert rig.q.record(1) == (12 | 1 << 34 | 5 << 40, 0, 0x4000_1000, 0)


def test_process_id_without_pdtv_is_260():
    rig = setup()
    # PV=1 (bit 32), PID=0x12345 (bits 31:12), Priv=1 (bit 1).
    ctl = GO | NW | 1 << 1 | 0x12345 << 12 | 1 << 32 | 5 << 40
    assert request(rig, 0x1000, ctl) == 1
    assert rig.q.record(0) == (260 | 0x12345 << 12 | 1 << 32 | 1 << 33 | 2 << 34 | 5 << 40,
                               0, 0x1000, 0)


def test_go_is_write_1_to_set_only():
    rig = setup()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **URW))
    request(rig, 0x4000_1000, GO | NW | 5 << 40)
    fqt = rig.q.fqt
    rig.iommu.mmio_write(Offset.TR_REQ_CTL + 4, 4, 6 << 8)       # high half: DID only
    assert rig.iommu.mmio_read(Offset.TR_RESPONSE, 8) == 0x87654 << 10
    assert rig.iommu.mmio_read(Offset.TR_REQ_CTL, 8) == NW | 6 << 40
    assert rig.q.fqt == fqt


def test_off_faults():
    rig = Rig()
    q = Queues(rig)
    assert request(rig, 0x1000, GO | 3 << 40) == 1
    assert q.record(0)[0] == 256 | 3 << 34 | 3 << 40
