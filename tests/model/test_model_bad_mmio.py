"""Register accesses the model refuses (spec "Memory-mapped register interface": misaligned
accesses, sizes other than 4 and 8 and accesses spanning several registers are UNSPECIFIED;
"Register layout": the reserved ranges hold no register), and those it still takes.

A refused access raises :class:`RegisterAccessError` naming the access and the rule, and
leaves every register as it was.
"""

import pytest

from iogate.hdl.regs import Offset

from iogate.cosim.model.access import LAYOUT, RegisterAccessError, refusal, register_at
from iogate.cosim.model.bus import ModelBus
from model_tables import FULL, Rig, cmd_bytes, iofence_c

#: Every register of the layout at its own size, worked out by hand from "Register layout"
#: (the custom and reserved ranges excepted).
SPEC_REGISTERS = (
    [(0x000, 8), (0x008, 4), (0x010, 8), (0x018, 8), (0x020, 4), (0x024, 4), (0x028, 8),
     (0x030, 4), (0x034, 4), (0x038, 8), (0x040, 4), (0x044, 4), (0x048, 4), (0x04C, 4),
     (0x050, 4), (0x054, 4), (0x058, 4), (0x05C, 4), (0x060, 8)]
    + [(0x068 + 8 * i, 8) for i in range(31)] + [(0x160 + 8 * i, 8) for i in range(31)]
    + [(0x258, 8), (0x260, 8), (0x268, 8), (0x270, 4), (0x2F8, 8)]
    + [(0x300 + 16 * x + at, size) for x in range(16) for at, size in ((0, 8), (8, 4), (12, 4))]
)


def snapshot(iommu):
    return {offset: iommu.mmio_read(offset, size) for offset, size in SPEC_REGISTERS}


def busy_model():
    """A model whose registers are not all 0: queues on, a directory mode, icvec set."""
    rig = Rig(FULL)
    m = rig.iommu
    m.mmio_write(Offset.CQB, 8, rig.page() << 10 | 3)
    m.mmio_write(Offset.FQB, 8, rig.page() << 10 | 2)
    m.mmio_write(Offset.CQCSR, 4, 0b11)
    m.mmio_write(Offset.FQCSR, 4, 0b11)
    m.mmio_write(Offset.DDTP, 8, rig.page() << 10 | 4)
    m.mmio_write(Offset.ICVEC, 4, 0x4321)
    return m


REFUSED = [
    # offset, size, what the message must say
    (0x010, 2, "size must be 4 or 8, not 2"),
    (0x010, 1, "size must be 4 or 8, not 1"),
    (0x048, 16, "size must be 4 or 8, not 16"),
    (0x012, 4, "offset 0x12 is not aligned to 4 bytes"),
    (0x014, 8, "offset 0x14 is not aligned to 8 bytes"),
    (0x04E, 4, "offset 0x4e is not aligned to 4 bytes"),
    (0x1000, 4, "offset must be within the 4 KiB register page, not 4096"),
    (0xFFC, 8, "offset must be within the 4 KiB register page, not 4092"),
    (-4, 4, "offset must be within the 4 KiB register page, not -4"),
    (0x020, 8, "8-byte access to the 4-byte register cqh spans cqh and cqt"),
    (0x030, 8, "8-byte access to the 4-byte register fqh spans fqh and fqt"),
    (0x048, 8, "8-byte access to the 4-byte register cqcsr spans cqcsr and fqcsr"),
    (0x050, 8, "8-byte access to the 4-byte register pqcsr spans pqcsr and ipsr"),
    (0x008, 8, "8-byte access to the 4-byte register fctl spans fctl and custom"),
    (0x270, 8, "8-byte access to the 4-byte register iommu_qosid spans iommu_qosid and reserved"),
    (0x308, 8, "8-byte access to the 4-byte register msi_data_0 spans msi_data_0 and "
               "msi_vec_ctl_0"),
    (0x274, 4, "offset 0x274 is reserved"),
    (0x2A8, 8, "offset 0x2a8 is reserved"),
    (0x400, 4, "offset 0x400 is reserved"),
    (0xFF8, 8, "offset 0xff8 is reserved"),
]


@pytest.mark.parametrize("op", ["read", "write"])
@pytest.mark.parametrize("offset, size, rule", REFUSED)
def test_refused_with_a_clear_error(op, offset, size, rule):
    m = busy_model()
    before = snapshot(m)
    with pytest.raises(RegisterAccessError, match=rule) as caught:
        if op == "read":
            m.mmio_read(offset, size)
        else:
            m.mmio_write(offset, size, 0)
    error = caught.value
    assert (error.op, error.offset, error.size) == (op, offset, size)
    assert str(error).startswith(f"register {op} of {size} bytes at ")
    assert snapshot(m) == before


def test_a_refused_write_of_ones_changes_nothing():
    """All ones would set cqen, clear RW1C bits, change ddtp's mode... if any of it were
    taken."""
    m = busy_model()
    before = snapshot(m)
    for offset, size, _ in REFUSED:
        with pytest.raises(RegisterAccessError):
            m.mmio_write(offset, size, (1 << (8 * min(size, 8))) - 1)
    assert snapshot(m) == before


def test_refusal_is_a_value_error():
    """Callers that caught ``ValueError`` before the access rule had its own class still do."""
    assert issubclass(RegisterAccessError, ValueError)


def test_model_bus_refuses_and_runs_no_command():
    """An 8-byte write over cqh and cqt would start the queue if it were taken."""
    rig = Rig()
    bus = ModelBus(rig.iommu)
    cq = rig.page()
    bus.mmio_write(Offset.CQB, 8, (cq << 10) | 1)
    bus.mmio_write(Offset.CQCSR, 4, 1)
    bus.mem_write(cq << 12, cmd_bytes(iofence_c(av=1, addr=0x8000, data=0x55)))
    with pytest.raises(RegisterAccessError, match="spans cqh and cqt"):
        bus.mmio_write(Offset.CQH, 8, 1 << 32)
    assert bus.mmio_read(Offset.CQT, 4) == 0 and bus.mmio_read(Offset.CQH, 4) == 0
    assert bus.mem_read(0x8000, 1) == b"\x00"


@pytest.mark.parametrize("offset, size", SPEC_REGISTERS)
def test_every_register_is_taken_at_its_size(offset, size):
    assert refusal(offset, size) is None
    if size == 8:                       # and as two 4-byte halves
        assert refusal(offset, 4) is None and refusal(offset + 4, 4) is None


@pytest.mark.parametrize("offset, size", [(0x00C, 4), (0x2B0, 8), (0x2B4, 4), (0x2F0, 8)])
def test_custom_ranges_read_0_and_ignore_writes(offset, size):
    """iogate has no custom register: the custom slots answer like an absent register."""
    m = busy_model()
    before = snapshot(m)
    m.mmio_write(offset, size, (1 << (8 * size)) - 1)
    assert m.mmio_read(offset, size) == 0
    assert snapshot(m) == before


@pytest.mark.parametrize("offset, size", [(0x038, 8), (0x040, 4), (0x050, 4), (0x060, 8),
                                          (0x0A0, 8), (0x200, 8), (0x270, 4), (0x330, 8),
                                          (0x33C, 4)])
def test_absent_registers_read_0_and_ignore_writes(offset, size):
    """pqb/pqh/pqcsr (no ATS), HPM, iommu_qosid, msi_cfg_tbl (IGS=WSI): spec
    "Memory-mapped register interface", "a read ... returns 0 and writes ... are ignored"."""
    m = busy_model()
    before = snapshot(m)
    m.mmio_write(offset, size, (1 << (8 * size)) - 1)
    assert m.mmio_read(offset, size) == 0
    assert snapshot(m) == before


@pytest.mark.parametrize("offset, expected", [
    (0x014, ("ddtp", 0x010, 8)),
    (0x024, ("cqt", 0x024, 4)),
    (0x068, ("iohpmctr1", 0x068, 8)),
    (0x15C, ("iohpmctr31", 0x158, 8)),
    (0x160, ("iohpmevt1", 0x160, 8)),
    (0x250, ("iohpmevt31", 0x250, 8)),
    (0x2FC, ("icvec", 0x2F8, 8)),
    (0x3F4, ("msi_addr_15", 0x3F0, 8)),
    (0x3F8, ("msi_data_15", 0x3F8, 4)),
    (0x30C, ("msi_vec_ctl_0", 0x30C, 4)),
    (0x2C0, ("custom", 0x2B0, None)),
    (0x800, ("reserved", 0x400, None)),
])
def test_register_at(offset, expected):
    assert register_at(offset) == expected


def test_layout_covers_the_page_once():
    at = 0
    for start, length, size, _ in LAYOUT:
        assert start == at and (size is None or length % size == 0)
        at += length
    assert at == 4096
