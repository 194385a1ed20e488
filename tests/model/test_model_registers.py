"""The register file: reset values and access behaviour (RISC-V IOMMU spec
"Memory-mapped register interface")."""

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import IommuMode, Offset

from model_tables import FULL, Rig


def model(config=None):
    return Rig(config).iommu


def test_capabilities_default_config():
    # version 0x10 | Sv39 (bit 9) | IGS=WSI (1 << 28) | DBG (bit 31) | PAS=56 (bits 37:32).
    assert model().mmio_read(Offset.CAPABILITIES, 8) == 0x38_9000_0210


def test_capabilities_full_config():
    # ... plus Sv48 (bit 10), Svpbmt (bit 15), Sv39x4 (bit 17), Sv48x4 (bit 18).
    assert model(FULL).mmio_read(Offset.CAPABILITIES, 8) == 0x38_9006_8610


def test_capabilities_read_only_and_halves():
    m = model()
    m.mmio_write(Offset.CAPABILITIES, 8, 0)
    assert m.mmio_read(0, 4) == 0x9000_0210
    assert m.mmio_read(4, 4) == 0x38


@pytest.mark.parametrize("offset, value", [
    (Offset.FCTL, 0x2),          # BE=0, WSI=1 (IGS=WSI), GXL=0
    (Offset.DDTP, 0),            # Off, busy 0
    (Offset.CQCSR, 0), (Offset.FQCSR, 0), (Offset.IPSR, 0),
    (Offset.TR_REQ_CTL, 0),      # Go/Busy 0
])
def test_reset_values(offset, value):
    size = 8 if offset in (Offset.DDTP, Offset.TR_REQ_CTL) else 4
    assert model().mmio_read(offset, size) == value


@pytest.mark.parametrize("value", [0, 0x5, 0xFFFF_FFFF])
def test_fctl_has_one_legal_value(value):
    m = model()
    m.mmio_write(Offset.FCTL, 4, value)
    assert m.mmio_read(Offset.FCTL, 4) == 0x2


def test_ddtp_write_and_reserved_bits():
    m = model()
    # mode 1LVL (2), busy (bit 4) and reserved bits 9:5 and 63:54 set: they read 0.
    m.mmio_write(Offset.DDTP, 8, 0xFFC0_0000_0012_33F2)
    assert m.mmio_read(Offset.DDTP, 8) == 0x0000_0000_0012_3002


@pytest.mark.parametrize("mode", [IommuMode.LVL2, IommuMode.LVL3, 5, 13, 14, 15])
def test_ddtp_mode_warl_keeps_legal_value(mode):
    m = model()
    m.mmio_write(Offset.DDTP, 8, 0x4000 | IommuMode.LVL1)
    m.mmio_write(Offset.DDTP, 8, 0x8000 | mode)
    # 1LVL is kept; the PPN (also WARL, all bits legal) takes the new value.
    assert m.mmio_read(Offset.DDTP, 8) == 0x8000 | IommuMode.LVL1


def test_ddtp_three_levels_when_configured():
    m = model(FULL)
    m.mmio_write(Offset.DDTP, 8, IommuMode.LVL3)
    assert m.mmio_read(Offset.DDTP, 4) == 4


def test_ddtp_4_byte_halves():
    m = model()
    m.mmio_write(Offset.DDTP + 4, 4, 0x1)          # PPN bit 22
    m.mmio_write(Offset.DDTP, 4, 0x1002)           # 1LVL, PPN bit 2
    assert m.mmio_read(Offset.DDTP, 8) == 0x1_0000_1002


def test_cqb_and_cqt_index_bits():
    m = model()
    m.mmio_write(Offset.CQB, 8, (0x123 << 10) | 2)            # 8 entries
    assert m.mmio_read(Offset.CQB, 8) == 0x48C02
    m.mmio_write(Offset.CQT, 4, 0xFF)
    assert m.mmio_read(Offset.CQT, 4) == 7                    # only LOG2SZ-1:0 writable
    m.mmio_write(Offset.CQB, 8, 0x123 << 10)                  # 2 entries
    assert m.mmio_read(Offset.CQT, 4) == 1                    # bits 31:1 cleared


def test_fqb_and_fqh_index_bits():
    m = model()
    m.mmio_write(Offset.FQB, 8, (0x77 << 10) | 3)             # 16 entries
    m.mmio_write(Offset.FQH, 4, 0x1234)
    assert m.mmio_read(Offset.FQH, 4) == 0x4
    m.mmio_write(Offset.FQB, 8, (0x77 << 10) | 1)             # 4 entries
    assert m.mmio_read(Offset.FQH, 4) == 0x0


def test_qb_reserved_bits_read_0():
    m = model()
    m.mmio_write(Offset.CQB, 8, 0xFFFF_FFFF_FFFF_FFFF)
    assert m.mmio_read(Offset.CQB, 8) == 0x003F_FFFF_FFFF_FC1F


def test_cqh_and_fqt_read_only():
    m = model()
    m.mmio_write(Offset.CQB, 8, 4)
    m.mmio_write(Offset.CQH, 4, 3)
    m.mmio_write(Offset.FQT, 4, 3)
    assert m.mmio_read(Offset.CQH, 4) == 0 and m.mmio_read(Offset.FQT, 4) == 0


def test_cqen_turns_queue_on_and_off():
    m = model()
    m.mmio_write(Offset.CQCSR, 4, 0x3)                        # cqen, cie
    assert m.mmio_read(Offset.CQCSR, 4) == 0x1_0003           # cqon (bit 16), busy 0
    m.mmio_write(Offset.CQCSR, 4, 0x0)
    assert m.mmio_read(Offset.CQCSR, 4) == 0x0


def test_fqen_turns_queue_on_and_off():
    m = model()
    m.mmio_write(Offset.FQCSR, 4, 0x1)
    assert m.mmio_read(Offset.FQCSR, 4) == 0x1_0001
    m.mmio_write(Offset.FQCSR, 4, 0x2)                        # fie only
    assert m.mmio_read(Offset.FQCSR, 4) == 0x2


def test_csr_read_only_and_reserved_bits():
    m = model()
    m.mmio_write(Offset.CQCSR, 4, 0xFFFE_F0FC)                # everything but cqen/cie
    assert m.mmio_read(Offset.CQCSR, 4) == 0


def test_ipsr_write_1_without_condition():
    m = model()
    m.mmio_write(Offset.IPSR, 4, 0xFFFF_FFFF)
    assert m.mmio_read(Offset.IPSR, 4) == 0


def test_icvec_vector_fields():
    m = model()
    m.mmio_write(Offset.ICVEC, 8, 0xFFFF_FFFF_FFFF_FFFF)
    assert m.mmio_read(Offset.ICVEC, 8) == 0xFFFF


def test_tr_req_iova_low_bits_reserved():
    m = model()
    m.mmio_write(Offset.TR_REQ_IOVA, 8, 0xFFFF_FFFF_FFFF_FFFF)
    assert m.mmio_read(Offset.TR_REQ_IOVA, 8) == 0xFFFF_FFFF_FFFF_F000


@pytest.mark.parametrize("offset", [0x00C, 0x038, 0x040, 0x050, 0x058, 0x060, 0x270, 0x300])
def test_absent_registers_read_0(offset):
    m = model()
    m.mmio_write(offset, 4, 0xFFFF_FFFF)
    assert m.mmio_read(offset, 4) == 0


def test_debug_registers_absent_without_dbg():
    m = model(Config(dbg=False))
    m.mmio_write(Offset.TR_REQ_IOVA, 8, 0x1000)
    m.mmio_write(Offset.TR_REQ_CTL, 8, 1)
    assert m.mmio_read(Offset.TR_REQ_IOVA, 8) == 0
    assert m.mmio_read(Offset.TR_RESPONSE, 8) == 0
    assert m.mmio_read(Offset.CAPABILITIES, 8) >> 31 & 1 == 0


def test_8_byte_read_of_two_4_byte_registers_is_refused():
    m = model()
    with pytest.raises(ValueError, match="spans cqh and cqt"):
        m.mmio_read(Offset.CQH, 8)


@pytest.mark.parametrize("offset, size, value, message", [
    (0x10, 2, 0, "size must be 4 or 8, not 2"),
    (0x14, 8, 0, "offset 0x14 is not aligned to 8 bytes"),
    (0x1002, 4, 0, "offset must be within the 4 KiB register page"),
    (0x10, 4, 1 << 32, "does not fit 4 bytes"),
    (0x10, 8, -1, "does not fit 8 bytes"),
])
def test_bad_accesses(offset, size, value, message):
    m = model()
    with pytest.raises(ValueError, match=message):
        m.mmio_write(offset, size, value)


def test_by_kind_applies_the_access_table():
    # cqcsr: cqen/cie RW take the write, cqmf..fence_w_ip (bits 11:8) RW1C, cqon/busy
    # (bits 17:16) RO keep the old value, reserved bits read 0.
    from iogate.cosim.model.registers import _by_kind
    old = 0x3_0A01                      # busy, cqon, fence_w_ip, cmd_to, cqen
    new = 0xFFFF_F302                   # cie, clear cqmf and cmd_to, reserved ones
    assert _by_kind(Offset.CQCSR, old, new) == 0x3_0802
    # tr_req_ctl.Go is RW1S: a 0 leaves it set.
    assert _by_kind(Offset.TR_REQ_CTL, 1, 0) == 1
    # ddtp.busy is not implemented: it reads 0 whatever is written.
    assert _by_kind(Offset.DDTP, 0, 1 << 4) == 0


@pytest.mark.parametrize("offset, index", [(Offset.CQB, Offset.CQT), (Offset.FQB, Offset.FQH)])
def test_queue_size_warl(offset, index):
    """LOG2SZ-1 above queue_log2sz_max - 1 reads back as that maximum (spec "Command-queue
    base (cqb)", "Fault queue base (fqb)": the field is WARL); the index keeps LOG2SZ bits."""
    m = model(Config(queue_log2sz_max=5))
    m.mmio_write(offset, 8, 0x1F | 0x77 << 10)
    assert m.mmio_read(offset, 8) == 4 | 0x77 << 10
    m.mmio_write(index, 4, 0xFFFF_FFFF)
    assert m.mmio_read(index, 4) == 0x1F
    m.mmio_write(offset, 8, 2)
    assert m.mmio_read(offset, 8) == 2
