"""``Config``: validation messages and the capabilities value it derives (spec
"IOMMU capabilities (capabilities)")."""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.regs import CAPABILITIES, Igs, IommuMode


def test_default_capabilities():
    # version 0x10, Sv39 (bit 9), IGS=WSI (bits 29:28 = 1), DBG (bit 31), PAS=56 (bits 37:32).
    assert Config().capabilities == 0x10 | 1 << 9 | 1 << 28 | 1 << 31 | 56 << 32


def test_full_capabilities():
    c = Config.full()
    expected = (0x10 | 1 << 9 | 1 << 10 | 1 << 15 | 1 << 17 | 1 << 18 | 1 << 28 | 1 << 31
                | 56 << 32)
    assert c.capabilities == expected


def test_nothing_unbuilt_is_advertised():
    caps = Config.full().capabilities
    # ATS (25), T2GPA (26), HPM (30), MSI_FLAT (22), MSI_MRIF (23), AMO_HWAD (24),
    # PD8/17/20 (38-40), QOSID/NL/S (41-43), Sv57 (11), Sv57x4 (19), END (27): all 0.
    for bit in (11, 19, 22, 23, 24, 25, 26, 27, 30, 38, 39, 40, 41, 42, 43):
        assert not caps >> bit & 1, bit


@pytest.mark.parametrize("kwargs, message", [
    (dict(sv39=False, sv48=True), r"sv48 requires sv39"),
    (dict(sv48x4=True), r"sv48x4 requires sv39x4"),
    (dict(ddt_levels=4), r"ddt_levels must be 1, 2 or 3, not 4"),
    (dict(pas=57), r"pas must be between 32 and 56, not 57"),
    (dict(iotlb_entries=12, iotlb_ways=8),
     r"iotlb_entries \(12\) must be a multiple of iotlb_ways \(8\)"),
    (dict(iotlb_entries=24, iotlb_ways=8),
     r"iotlb_entries / iotlb_ways must be a power of two, not 3"),
    (dict(ddtc_entries=0), r"ddtc_entries must be at least 1, not 0"),
    (dict(ports=0), r"ports must be at least 1, not 0"),
    (dict(mmio_data_width=16), r"mmio_data_width must be 32 or 64, not 16"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Config(**kwargs)


def test_iommu_modes_follow_ddt_levels():
    assert [int(m) for m in Config(ddt_levels=1).iommu_modes] == [0, 1, 2]
    assert [int(m) for m in Config(ddt_levels=3).iommu_modes] == [0, 1, 2, 3, 4]


def test_full_is_the_first_target():
    c = Config.full()
    assert (c.sv39, c.sv48, c.sv39x4, c.sv48x4, c.svpbmt) == (True,) * 5
    assert c.ddt_levels == 3 and c.max_device_id_bits == 24
    assert IommuMode.LVL3 in c.iommu_modes
    # Everything else is the default build's.
    assert c == Config(sv48=True, sv39x4=True, sv48x4=True, svpbmt=True, ddt_levels=3)
    caps = bits.unpack(CAPABILITIES, c.capabilities)
    assert {k for k in ("sv39", "sv48", "sv57", "sv39x4", "sv48x4", "sv57x4", "svpbmt")
            if caps[k]} == {"sv39", "sv48", "sv39x4", "sv48x4", "svpbmt"}
    assert caps["pas"] == 56 and caps["dbg"] and caps["igs"] == Igs.WSI


def test_icebreaker_is_the_small_board_build():
    c = Config.icebreaker()
    assert (c.sv39, c.sv48, c.sv39x4, c.svpbmt, c.dbg) == (True, False, False, False, False)
    assert c.iommu_modes == (IommuMode.OFF, IommuMode.BARE, IommuMode.LVL1)
    assert c.max_device_id_bits == 7
    assert (c.iotlb_entries, c.iotlb_ways, c.ddtc_entries) == (1, 1, 1)
    assert (c.pas, c.tag_width, c.mmio_data_width) == (32, 1, 32)
    # version 0x10, Sv39 (bit 9), IGS=WSI (bit 28), PAS=32 (bits 37:32); no DBG (bit 31).
    assert c.capabilities == 0x10 | 1 << 9 | 1 << 28 | 32 << 32


def test_presets_are_fresh_equal_values():
    assert Config.full() == Config.full() and Config.full() is not Config.full()
    assert Config.icebreaker() != Config() != Config.full()


@pytest.mark.parametrize("levels, bits_", [(1, 7), (2, 16), (3, 24)])
def test_max_device_id_bits_follow_the_ddt_split(levels, bits_):
    # Base-format DDI[0] 7 bits, DDI[1] 9, DDI[2] 8 (spec "Device-Directory-Table (DDT)").
    assert Config(ddt_levels=levels).max_device_id_bits == bits_


def test_process_contexts_capabilities():
    # PD8/PD17/PD20 are bits 38/39/40; Sv57 bit 11, Sv57x4 bit 19 (spec "IOMMU capabilities").
    for levels, pd_bits in ((0, 0), (1, 0b001), (2, 0b011), (3, 0b111)):
        caps = Config(pd_levels=levels).capabilities
        assert caps >> 38 & 0b111 == pd_bits
    caps = Config.process().capabilities
    assert caps >> 11 & 1 and caps >> 19 & 1
    assert Config.process().replace(sv57=False, sv57x4=False).capabilities >> 11 & 1 == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(sv57=True), r"sv57 requires sv48"),
    (dict(sv39x4=True, sv57x4=True), r"sv57x4 requires sv48x4"),
    (dict(pd_levels=4), r"pd_levels must be 0, 1, 2 or 3, not 4"),
    (dict(pdtc_entries=0), r"pdtc_entries must be at least 1, not 0"),
])
def test_process_context_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Config(**kwargs)


def test_process_id_bits_follow_the_deepest_mode():
    # IODIR.INVAL_PDT's PID check: PD20 -> 20 bits, PD17 -> 17, PD8 -> 8 (reference N.1.7).
    assert [Config(pd_levels=n).process_id_bits for n in range(4)] == [0, 8, 17, 20]
    assert [int(m) for m in Config(pd_levels=2).pdtp_modes] == [1, 2]


def test_process_is_full_plus_process_contexts():
    assert Config.process() == Config.full().replace(sv57=True, sv57x4=True, pd_levels=3)


def test_msi_capabilities():
    # MSI_FLAT is bit 22, MSI_MRIF bit 23, AMO_MRIF bit 21, IGS bits 29:28 (0 MSI, 1 WSI,
    # 2 BOTH) (spec "IOMMU capabilities (capabilities)").
    assert Config().capabilities >> 21 & 0b111 == 0
    assert Config(sv39x4=True, msi_flat=True).capabilities >> 21 & 0b111 == 0b010
    assert Config(sv39x4=True, msi_flat=True, msi_mrif=True).capabilities >> 21 & 0b111 == 0b110
    for igs, field in ((Igs.MSI, 0), (Igs.WSI, 1), (Igs.BOTH, 2)):
        assert Config(igs=igs).capabilities >> 28 & 0b11 == field
    assert Config.msi() == Config.full().replace(msi_flat=True, msi_mrif=True, igs=Igs.BOTH)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sv39x4=True, msi_mrif=True), r"msi_mrif requires msi_flat"),
    (dict(msi_flat=True), r"msi_flat requires sv39x4"),
    (dict(msi_ptc_entries=0), r"msi_ptc_entries must be at least 1, not 0"),
    (dict(interrupt_vectors=3), r"interrupt_vectors must be 1, 2, 4, 8 or 16, not 3"),
    (dict(interrupt_vectors=32), r"interrupt_vectors must be 1, 2, 4, 8 or 16, not 32"),
])
def test_msi_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Config(**kwargs)


@pytest.mark.parametrize("levels, base, extended", [(1, 7, 6), (2, 16, 15), (3, 24, 24)])
def test_extended_device_contexts_change_the_device_id_split(levels, base, extended):
    # Extended-format (64-byte) DCs: DDI[0] 6 bits, DDI[1] 9, DDI[2] 9 (reference N.3.2).
    assert Config(ddt_levels=levels).max_device_id_bits == base
    assert Config(ddt_levels=levels, sv39x4=True, msi_flat=True).max_device_id_bits == extended
    assert Config.msi().dc_size == 64 and Config().dc_size == 32
    mode = IommuMode.for_levels(3)
    assert mode.ddi(0xABCDEF, extended=True) == (0xABCDEF & 0x3F, 0xABCDEF >> 6 & 0x1FF,
                                                  0xABCDEF >> 15)
    assert mode.ddi(0xABCDEF) == (0xABCDEF & 0x7F, 0xABCDEF >> 7 & 0x1FF, 0xABCDEF >> 16)


def test_mgpaw_follows_the_widest_second_stage():
    # MGPAW: Sv57x4 59, Sv48x4 50, Sv39x4 41, else PAS (reference N.3.3).
    assert Config.process().mgpaw == 59
    assert Config.full().mgpaw == 50
    assert Config(sv39x4=True).mgpaw == 41
    assert Config(pas=40).mgpaw == 40
