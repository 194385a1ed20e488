"""The model's IOMMU-generated MSIs (reference N.5, decision 8 of issue 16).

Offsets and bits are the spec's: fctl 0x008 (WSI bit 1), cqcsr 0x048 (cqen 0, cie 1, cmd_ill
10), fqcsr 0x04C (fqen 0, fie 1), ipsr 0x054 (cip 0, fip 1), icvec 0x2F8 (civ 3:0, fiv 7:4),
msi_cfg_tbl 0x300 + 16x (msi_addr_x ADDR 55:2, msi_data_x +8, msi_vec_ctl_x +12, M bit 0).
A fault record is four little-endian doublewords: CAUSE 11:0, TTYP 39:34, DID 63:40; iotval
the third doubleword.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iogate.hdl import Config
from iogate.hdl.regs import Igs

from iogate.cosim.model import IommuModel
from iogate.cosim.model.memory import Memory

FCTL, CQB, CQT, FQB, CQCSR, FQCSR, IPSR, ICVEC = (0x008, 0x018, 0x024, 0x028, 0x048, 0x04C,
                                                  0x054, 0x2F8)
TBL = 0x300
CQ, FQ, BELLS = 0x1_0000, 0x2_0000, 0x8000_0000
CMD_ILL, CIE, CQEN, FIE, FQEN = 1 << 10, 1 << 1, 1, 1 << 1, 1


def make(igs=Igs.BOTH, **cfg):
    m = IommuModel(Config(igs=igs, **cfg), Memory())
    m.mmio_write(CQB, 8, 3 | CQ >> 2)            # LOG2SZ-1 3, PPN at bit 10: CQ >> 12 << 10
    m.mmio_write(FQB, 8, 3 | FQ >> 2)
    return m


def program(m, x, address, data, masked=False):
    m.mmio_write(TBL + 16 * x, 8, address)
    m.mmio_write(TBL + 16 * x + 8, 4, data)
    m.mmio_write(TBL + 16 * x + 12, 4, int(masked))


def msi_rig(**kw):
    m = make(**kw)
    for x in range(16):
        program(m, x, BELLS + 4 * x, 0x1A0 + x)
    m.mmio_write(ICVEC, 8, 3 | 9 << 4)            # civ 3, fiv 9
    m.mmio_write(FQCSR, 4, FQEN | FIE)
    m.mmio_write(FCTL, 4, 0)
    return m


def cmd_ill(m):
    """An illegal command (opcode 127) at cqh, cqt past it."""
    cqh = m.mmio_read(0x020, 4)
    m.memory.write(CQ + 16 * cqh, (0x7F).to_bytes(16, "little"))
    m.mmio_write(CQT, 4, cqh + 1)
    m.process_commands()


def sent(m):
    return [(x.address, x.data) for x in m.interrupts.messages]


def test_reset_and_warl():
    m = make(pas=40, interrupt_vectors=4)
    assert m.mmio_read(FCTL, 4) == 0
    m.mmio_write(FCTL, 4, 0xFFFF_FFFF)
    assert m.mmio_read(FCTL, 4) == 0b010
    for x in range(16):
        assert (m.mmio_read(TBL + 16 * x, 8), m.mmio_read(TBL + 16 * x + 8, 4),
                m.mmio_read(TBL + 16 * x + 12, 4)) == (0, 0, 1)
    m.mmio_write(TBL + 16 * 2, 8, (1 << 64) - 1)
    assert m.mmio_read(TBL + 16 * 2, 8) == (1 << 40) - 4
    m.mmio_write(TBL + 16 * 2 + 4, 4, 0x12)
    m.mmio_write(TBL + 16 * 2, 4, 0x8765_4323)
    assert m.mmio_read(TBL + 16 * 2, 8) == 0x12_8765_4320
    m.mmio_write(TBL + 16 * 2 + 12, 4, 0xFFFF_FFFE)
    assert m.mmio_read(TBL + 16 * 2 + 12, 4) == 0
    m.mmio_write(ICVEC, 8, (1 << 64) - 1)
    assert m.mmio_read(ICVEC, 8) == 0x3333


@pytest.mark.parametrize("igs, fctl, table", [(Igs.MSI, 0, True), (Igs.WSI, 0b010, False)])
def test_fctl_and_table_per_igs(igs, fctl, table):
    m = make(igs=igs)
    for value in (0xFFFF_FFFF, 0):
        m.mmio_write(FCTL, 4, value)
        assert m.mmio_read(FCTL, 4) == fctl
    m.mmio_write(TBL + 8, 4, 0x55)
    assert m.mmio_read(TBL + 8, 4) == (0x55 if table else 0)
    assert m.mmio_read(TBL + 12, 4) == (1 if table else 0)


def test_wsi_igs_sends_nothing():
    m = make(igs=Igs.WSI)
    m.mmio_write(CQCSR, 4, CQEN | CIE)
    cmd_ill(m)
    assert m.mmio_read(IPSR, 4) & 1 and m.wsi_lines == 1
    assert m.interrupts.messages == []


def test_cmd_ill_and_records():
    """cmd_ill -> one MSI to civ's entry; setting cie while cmd_ill is 1 is the edge (N.9 P7);
    W1C of cip while cmd_ill holds: no new edge; a fault record -> fip -> fiv's entry, once
    while fip stays 1."""
    m = msi_rig()
    m.mmio_write(CQCSR, 4, CQEN)
    cmd_ill(m)
    assert sent(m) == []
    m.mmio_write(CQCSR, 4, CQEN | CIE)
    assert sent(m) == [(BELLS + 12, 0x1A3)]
    m.mmio_write(IPSR, 4, 1)
    assert m.mmio_read(IPSR, 4) & 1 and len(sent(m)) == 1
    assert m.wsi_lines == 0
    for iova in (0x1000, 0x2000):
        m.translate(1, iova, "read")                 # ddtp Off: 256, recorded
    assert sent(m)[1:] == [(BELLS + 36, 0x1A9)]
    m.mmio_write(IPSR, 4, 2)
    m.translate(1, 0x3000, "read")
    assert len(sent(m)) == 3
    assert int.from_bytes(m.memory.read(BELLS + 36, 4), "little") == 0x1A9


def test_iofence_wsi_with_msis_is_cmd_ill():
    m = msi_rig()
    m.mmio_write(CQCSR, 4, CQEN | CIE)
    m.memory.write(CQ, (2 | 1 << 11).to_bytes(16, "little"))    # IOFENCE.C, WSI=1
    m.mmio_write(CQT, 4, 1)
    m.process_commands()
    assert m.mmio_read(CQCSR, 4) & CMD_ILL and sent(m) == [(BELLS + 12, 0x1A3)]


def test_mask_holds_once():
    m = msi_rig()
    m.mmio_write(TBL + 16 * 9 + 12, 4, 1)
    m.translate(1, 0x1000, "read")
    m.mmio_write(IPSR, 4, 2)
    m.translate(1, 0x2000, "read")                   # a second edge: still one held
    assert sent(m) == [] and m.interrupts.pending == {9}
    m.mmio_write(TBL + 16 * 9 + 8, 4, 0xCAFE)
    m.mmio_write(TBL + 16 * 9 + 12, 4, 0)
    assert sent(m) == [(BELLS + 36, 0xCAFE)]
    for v in (1, 0, 1, 0):
        m.mmio_write(TBL + 16 * 9 + 12, 4, v)
    assert len(sent(m)) == 1


def test_faulting_msi_gives_273():
    """The record: CAUSE 273, TTYP 0, DID 0, iotval = the address, iotval2 0; then fip's
    MSI goes out."""
    m = msi_rig()
    m.memory.inject_fault(0x9000_0040, 4)
    program(m, 3, 0x9000_0040, 0x55)
    m.mmio_write(CQCSR, 4, CQEN | CIE)
    cmd_ill(m)
    assert [x.faulted for x in m.interrupts.messages] == [True, False]
    assert sent(m) == [(0x9000_0040, 0x55), (BELLS + 36, 0x1A9)]
    record = m.memory.read(FQ, 32)
    dw = [int.from_bytes(record[8 * i:8 * i + 8], "little") for i in range(4)]
    assert dw == [273, 0, 0x9000_0040, 0]
    assert m.mmio_read(0x034, 4) == 1                # fqt


# --- Random sequences against a reference written from the N.5 rules ---------------------

OPS = st.one_of(
    st.tuples(st.just("cq_error")), st.tuples(st.just("record")),
    st.tuples(st.just("clear_cip")), st.tuples(st.just("clear_fip")),
    st.tuples(st.just("clear_cmd_ill")), st.tuples(st.just("toggle_cie")),
    st.tuples(st.just("mask"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("wsi"), st.booleans()),
    st.tuples(st.just("icvec"), st.integers(0, 1), st.integers(0, 1)),
)


class Reference:
    """N.5 in a few lines: per ipsr 0->1 with WSI=0, entry icvec.<field> gets a message,
    or, with M=1, one held message sent when M goes 1->0."""

    def __init__(self):
        self.wsi, self.civ, self.fiv = False, 0, 1
        self.masked, self.held, self.sent = [False] * 16, set(), []

    def ipsr_change(self, old, new):
        if self.wsi:
            return
        for bit, vector in ((1, self.civ), (2, self.fiv)):
            if new & bit and not old & bit:
                if self.masked[vector]:
                    self.held.add(vector)
                else:
                    self.sent.append(vector)

    def set_mask(self, vector, masked):
        if self.masked[vector] and not masked and vector in self.held:
            self.held.discard(vector)
            self.sent.append(vector)
        self.masked[vector] = masked


@settings(max_examples=200, deadline=None)
@given(st.lists(OPS, max_size=30))
def test_random_sequences(ops):
    m = make(interrupt_vectors=2)           # two vectors: causes share them often
    for x in range(16):
        program(m, x, BELLS + 4 * x, x)
    m.mmio_write(FQCSR, 4, FQEN | FIE)
    m.mmio_write(ICVEC, 8, 0 | 1 << 4)
    ref = Reference()
    cie = False
    for op in ops:
        before = m.mmio_read(IPSR, 4)
        kind = op[0]
        if kind == "cq_error":
            m.regs.cqcsr |= CMD_ILL                 # the command queue's event
            m.regs.update_ipsr()
        elif kind == "record":
            m.fault_queue.report(256, 2, 1, 0x1000)
            m.mmio_write(0x030, 4, m.mmio_read(0x034, 4))     # fqh = fqt: never full
        elif kind == "clear_cip":
            m.mmio_write(IPSR, 4, 1)
        elif kind == "clear_fip":
            m.mmio_write(IPSR, 4, 2)
        elif kind == "clear_cmd_ill":
            m.mmio_write(CQCSR, 4, CMD_ILL | (CIE if cie else 0))
        elif kind == "toggle_cie":
            cie = not cie
            m.mmio_write(CQCSR, 4, CIE if cie else 0)
        elif kind == "mask":
            m.mmio_write(TBL + 16 * op[1] + 12, 4, int(op[2]))
        elif kind == "wsi":
            m.mmio_write(FCTL, 4, 2 if op[1] else 0)
            ref.wsi = op[1]
        else:
            m.mmio_write(ICVEC, 8, op[1] | op[2] << 4)
            ref.civ, ref.fiv = op[1], op[2]
        ref.ipsr_change(before, m.mmio_read(IPSR, 4))
        if kind == "mask":
            ref.set_mask(op[1], op[2])
    assert [x.vector for x in m.interrupts.messages] == ref.sent
    assert [x.address for x in m.interrupts.messages] == [BELLS + 4 * v for v in ref.sent]
    assert m.interrupts.pending == ref.held
