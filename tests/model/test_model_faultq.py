"""The fault queue: record layout, wraparound, overflow, memory faults, fip
(RISC-V IOMMU spec "Fault/Event-Queue (FQ)"; registers fqb, fqh, fqt, fqcsr, ipsr)."""

from iogate.hdl.regs import IommuMode, Offset

from model_tables import Queues, Rig, dc_words, iosatp

FQMF = 1 << 8
FQOF = 1 << 9
FQON = 1 << 16


def rig_fq(fq_log2szm1=1, fie=0):
    """Device 5 has an empty Sv39 table: every request page-faults."""
    rig = Rig()
    root, s = rig.page(), rig.page()
    rig.write_dc(root, 5, dc_words(fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    q = Queues(rig, fq_log2szm1=fq_log2szm1, fie=fie)
    return rig, q


def fqcsr(rig):
    return rig.iommu.mmio_read(Offset.FQCSR, 4)


def test_record_layout_for_each_access():
    rig, q = rig_fq()
    rig.iommu.translate(5, 0x1234_5678, "read")
    rig.iommu.translate(5, 0x9ABC, "write")
    rig.iommu.translate(5, 0xDEF0, "execute")
    # dword0 = CAUSE | TTYP << 34 | DID << 40; dword1 0; iotval = IOVA; iotval2 0.
    assert q.record(0) == (13 | 2 << 34 | 5 << 40, 0, 0x1234_5678, 0)
    assert q.record(1) == (15 | 3 << 34 | 5 << 40, 0, 0x9ABC, 0)
    assert q.record(2) == (12 | 1 << 34 | 5 << 40, 0, 0xDEF0, 0)


def test_off_record_has_did_and_ttyp():
    rig = Rig()
    q = Queues(rig)
    rig.iommu.translate(0x12_3456, 0x1000, "write")
    assert q.record(0) == (256 | 3 << 34 | 0x12_3456 << 40, 0, 0x1000, 0)


def test_full_queue_sets_fqof_and_drops_until_cleared():
    rig, q = rig_fq(fq_log2szm1=1)                            # 4 entries, 3 usable
    for i in range(4):
        rig.iommu.translate(5, i << 12, "read")
    assert q.fqt == 3 and fqcsr(rig) & FQOF
    assert q.record(3) == (0, 0, 0, 0)                        # the 4th was discarded
    rig.iommu.mmio_write(Offset.FQH, 4, 3)                    # software consumed all
    rig.iommu.translate(5, 0x5000, "read")
    assert q.fqt == 3                                         # still dropped: fqof is set
    rig.iommu.mmio_write(Offset.FQCSR, 4, 1 | FQOF)           # RW1C
    rig.iommu.translate(5, 0x6000, "read")
    assert q.fqt == 0                                         # stored at 3, wrapped to 0
    assert q.record(3)[2] == 0x6000


def test_store_fault_sets_fqmf():
    rig, q = rig_fq()
    rig.mem.inject_fault(q.fq << 12, 32)
    rig.iommu.translate(5, 0x1000, "read")
    assert fqcsr(rig) & FQMF and q.fqt == 0
    rig.mem.clear_faults()
    rig.iommu.translate(5, 0x2000, "read")
    assert q.fqt == 0                                         # dropped until cleared
    rig.iommu.mmio_write(Offset.FQCSR, 4, 1 | FQMF)
    rig.iommu.translate(5, 0x3000, "read")
    assert q.fqt == 1 and q.record(0)[2] == 0x3000


def test_fqen_0_to_1_clears_tail_and_errors():
    rig, q = rig_fq()
    for i in range(4):
        rig.iommu.translate(5, i << 12, "read")
    rig.iommu.mmio_write(Offset.FQCSR, 4, 0)
    assert fqcsr(rig) == FQOF                                 # off, error kept
    rig.iommu.mmio_write(Offset.FQCSR, 4, 1)
    assert q.fqt == 0 and fqcsr(rig) == FQON | 1


def test_queue_off_writes_nothing():
    rig, q = rig_fq()
    rig.iommu.mmio_write(Offset.FQCSR, 4, 0)
    rig.iommu.translate(5, 0x1000, "read")
    assert q.record(0) == (0, 0, 0, 0) and q.fqt == 0


def test_fip_on_new_record_and_rw1c():
    rig, q = rig_fq(fie=1)
    rig.iommu.mmio_write(Offset.ICVEC, 8, 0x50)               # fiv = 5
    rig.iommu.translate(5, 0x1000, "read")
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 2 and rig.iommu.wsi_lines == 1 << 5
    rig.iommu.mmio_write(Offset.IPSR, 4, 2)
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 0           # an event, not a level


def test_fip_resets_while_fqof_persists():
    rig, q = rig_fq(fie=1)
    for i in range(4):
        rig.iommu.translate(5, i << 12, "read")
    rig.iommu.mmio_write(Offset.IPSR, 4, 2)
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 2
    rig.iommu.mmio_write(Offset.FQCSR, 4, 0x3 | FQOF)
    rig.iommu.mmio_write(Offset.IPSR, 4, 2)
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 0


def test_no_fip_without_fie():
    rig, q = rig_fq(fie=0)
    rig.iommu.translate(5, 0x1000, "read")
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 0
