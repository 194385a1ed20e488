"""The model's page-request queue registers and the pip interrupt (reference N.6.5, N.5; spec
"Page-request-queue base (pqb)", "Page-request-queue head (pqh)", "Page-request-queue tail
(pqt)", "Page-request-queue CSR (pqcsr)").

Numbers are the spec's: pqb 0x038 (LOG2SZ-1 4:0, PPN 53:10), pqh 0x040, pqt 0x044, pqcsr
0x050 (pqen 0, pie 1, pqmf 8, pqof 9, pqon 16, busy 17, custom 31:28), ipsr 0x054 (pip bit 3),
icvec 0x2F8 (piv 15:12), fctl 0x008 (WSI bit 1), msi_cfg_tbl 0x300 + 16x. Queue conditions
are made by real Page Requests of a device whose DC has V, EN_ATS and EN_PRI (tc bits 0-2).
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import Igs

from model_tables import Rig

PQB, PQH, PQT, PQCSR, IPSR, ICVEC, FCTL, TBL = (0x038, 0x040, 0x044, 0x050, 0x054, 0x2F8,
                                                0x008, 0x300)
DDTP = 0x010
PQEN, PIE, PQMF, PQOF, PQON = 1, 1 << 1, 1 << 8, 1 << 9, 1 << 16
PIP = 1 << 3
DID = 0x2A
PQ_BASE = 0x20_0000        # the queue's page (PPN 0x200)


def rig(**cfg):
    r = Rig(Config(ats=True, **cfg))
    root = r.page()
    # 1LVL (mode 2), PPN at bit 10; DC tc = V | EN_ATS | EN_PRI.
    r.iommu.mmio_write(DDTP, 8, 2 | root << 10)
    r.write_dc(root, DID, (0b111, 0, 0, 0))
    return r


def start(m, log2szm1=1, csr=PQEN | PIE):
    """N.6.5 "Init": pqb, pqh = 0, pqen = 1 (4 entries by default: 3 usable)."""
    m.mmio_write(PQB, 8, log2szm1 | (PQ_BASE >> 12) << 10)
    m.mmio_write(PQH, 4, 0)
    m.mmio_write(PQCSR, 4, csr)


def request(m, last=True):
    return m.page_request(DID, pv=False, pid=0, priv=False, exec=False, r=True, w=False,
                          l=last, prg_index=1, page=0x1234)


def fill(m, entries=4):
    """Fill the queue (entries - 1 records), then one more request finds it full."""
    for _ in range(entries - 1):
        assert request(m).queued
    assert not request(m).queued


@pytest.mark.parametrize("offset, size", [(PQB, 8), (PQH, 4), (PQT, 4), (PQCSR, 4)])
def test_absent_without_ats(offset, size):
    m = Rig(Config()).iommu
    m.mmio_write(offset, size, (1 << 8 * size) - 1)
    assert m.mmio_read(offset, size) == 0
    assert m.mmio_read_care(offset, size) == (0, (1 << 8 * size) - 1)


@pytest.mark.parametrize("offset, size", [(PQB, 8), (PQH, 4), (PQT, 4), (PQCSR, 4)])
def test_reset_values(offset, size):
    # N.6.5 "Reset": pqen, pie, pqon, busy 0; the model picks 0 for the rest.
    assert rig().iommu.mmio_read(offset, size) == 0


def test_pqb_warl():
    m = rig(queue_log2sz_max=10).iommu
    m.mmio_write(PQB, 8, (1 << 64) - 1)
    # LOG2SZ-1 31 reads as 10 - 1 = 9; PPN 53:10 all ones below PAS 56 (44 bits); reserved
    # 9:5 and 63:54 read 0.
    assert m.mmio_read(PQB, 8) == 9 | ((1 << 44) - 1) << 10
    assert m.mmio_read(PQB + 4, 4) == ((1 << 44) - 1) << 10 >> 32


def test_pqb_ppn_above_pas_reads_0():
    m = rig(pas=40).iommu
    m.mmio_write(PQB, 8, (1 << 64) - 1)
    assert m.mmio_read(PQB, 8) == 0x1F | ((1 << 28) - 1) << 10


def test_pqh_warl_to_the_queue_size():
    m = rig().iommu
    m.mmio_write(PQB, 8, 3)                        # 16 entries
    m.mmio_write(PQH, 4, 0xFFFF_FFFF)
    assert m.mmio_read(PQH, 4) == 0xF
    m.mmio_write(PQB, 8, 1)                        # 4 entries: pqh[31:2] reads 0
    assert m.mmio_read(PQH, 4) == 0x3


def test_pqt_read_only_and_advanced_by_records():
    m = rig().iommu
    start(m)
    m.mmio_write(PQT, 4, 2)
    assert m.mmio_read(PQT, 4) == 0
    assert request(m).queued
    assert m.mmio_read(PQT, 4) == 1


def test_pqcsr_write_all_ones():
    m = rig().iommu
    m.mmio_write(PQCSR, 4, 0xFFFF_FFFF)
    # pqen, pie, and pqon at once; pqmf/pqof are RW1C (were 0), busy RO 0, custom 0.
    assert m.mmio_read(PQCSR, 4) == PQEN | PIE | PQON


def test_pqen_0_to_1_clears_pqt_and_errors():
    m = rig().iommu
    start(m)
    fill(m)
    assert m.mmio_read(PQCSR, 4) == PQEN | PIE | PQOF | PQON
    assert m.mmio_read(PQT, 4) == 3
    m.mmio_write(PQCSR, 4, PIE)                    # pqen 1->0: pqon 0, pqof stays
    assert m.mmio_read(PQCSR, 4) == PIE | PQOF
    m.mmio_write(PQCSR, 4, PQEN | PIE)             # pqen 0->1: pqt, pqof, pqmf read 0
    assert m.mmio_read(PQCSR, 4) == PQEN | PIE | PQON
    assert m.mmio_read(PQT, 4) == 0


def test_pqof_rw1c():
    m = rig().iommu
    start(m)
    fill(m)
    m.mmio_write(PQCSR, 4, PQEN | PIE)             # writing 0 keeps it
    assert m.mmio_read(PQCSR, 4) & PQOF
    m.mmio_write(PQCSR, 4, PQEN | PIE | PQOF)      # writing 1 clears it
    assert m.mmio_read(PQCSR, 4) == PQEN | PIE | PQON


def test_pqmf_on_a_faulting_record_store():
    r = rig()
    m = r.iommu
    start(m)
    r.mem.inject_fault(PQ_BASE, 4096)
    assert not request(m).queued
    assert m.mmio_read(PQCSR, 4) == PQEN | PIE | PQMF | PQON
    assert m.mmio_read(IPSR, 4) == PIP


def test_pip_held_while_pqof_and_pie():
    m = rig().iommu
    start(m)
    fill(m)
    assert m.mmio_read(IPSR, 4) == PIP
    m.mmio_write(IPSR, 4, PIP)                     # pqof still 1 with pie: pip stays
    assert m.mmio_read(IPSR, 4) == PIP
    m.mmio_write(PQCSR, 4, PQEN | PIE | PQOF)
    m.mmio_write(IPSR, 4, PIP)
    assert m.mmio_read(IPSR, 4) == 0


def test_pip_on_a_record_is_not_held():
    m = rig().iommu
    start(m)
    assert request(m).queued
    assert m.mmio_read(IPSR, 4) == PIP
    m.mmio_write(IPSR, 4, PIP)                     # a new record is an event, not a state
    assert m.mmio_read(IPSR, 4) == 0


def test_no_pip_without_pie():
    m = rig().iommu
    start(m, csr=PQEN)
    fill(m)
    assert m.mmio_read(IPSR, 4) == 0


def test_setting_pie_with_pqof_pending_raises_pip():
    # N.9 P7 (issue #98): setting pie while an error bit is already 1 raises pip.
    m = rig().iommu
    start(m, csr=PQEN)
    fill(m)
    m.mmio_write(PQCSR, 4, PQEN | PIE)
    assert m.mmio_read(IPSR, 4) == PIP


@pytest.mark.parametrize("vectors, read", [(16, 0xF000), (4, 0x3000), (1, 0)])
def test_piv_warl(vectors, read):
    m = rig(interrupt_vectors=vectors).iommu
    m.mmio_write(ICVEC, 8, 0xF000)
    assert m.mmio_read(ICVEC, 8) == read


def test_pip_drives_its_wire():
    m = rig(igs=Igs.WSI).iommu
    m.mmio_write(ICVEC, 8, 5 << 12 | 1 << 4)       # piv 5, fiv 1
    start(m)
    assert m.wsi_lines == 0
    assert request(m).queued
    assert m.wsi_lines == 1 << 5
    m.mmio_write(IPSR, 4, PIP)
    assert m.wsi_lines == 0


def test_pip_sends_one_msi_per_rise():
    m = rig(igs=Igs.BOTH).iommu
    m.mmio_write(FCTL, 4, 0)                       # WSI=0: messages
    for x in range(16):
        m.mmio_write(TBL + 16 * x, 8, 0x8000_0000 + 4 * x)
        m.mmio_write(TBL + 16 * x + 8, 4, 0x100 + x)
        m.mmio_write(TBL + 16 * x + 12, 4, 0)      # M=0
    m.mmio_write(ICVEC, 8, 6 << 12)                # piv 6
    start(m)
    assert request(m).queued
    assert request(m).queued                        # pip still 1: nothing more
    assert [(x.vector, x.address, x.data) for x in m.interrupts.messages] == [
        (6, 0x8000_0018, 0x106)]
    assert m.memory.read(0x8000_0018, 4) == (0x106).to_bytes(4, "little")
    m.mmio_write(IPSR, 4, PIP)
    assert request(m).queued
    assert len(m.interrupts.messages) == 2
