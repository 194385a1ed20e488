"""Extended-format device contexts (reference N.3; issue 16 decision 1): 64-byte DCs, the
6/9/9 device_id split, and every extended-format check (cause 259).

Expected values are worked out from N.3.1-N.3.3 by hand; the DDT is written by
``msi_tables.write_ext_dc``, which splits device_ids itself.
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.formats import Cause
from iogate.hdl.regs import IommuMode

from model_tables import Rig, dc_words, iohgatp
from msi_tables import (
    MSI,
    PATTERN,
    addr_mask,
    basic_pte,
    ext_dc_words,
    msi_rig,
    msiptp,
    rewrite_dc,
    write_ext_dc,
    write_msi_pte,
)

IDENTITY = 0x0123_4000


def bare_rig(levels, config=MSI):
    """A DDT of ``levels`` levels; every DC written is V=1, all stages Bare, msiptp Off."""
    rig = Rig(config)
    rig.root = rig.page()
    rig.set_ddtp({1: IommuMode.LVL1, 2: IommuMode.LVL2, 3: IommuMode.LVL3}[levels], rig.root)
    return rig


@pytest.mark.parametrize("levels, device_id", [
    (1, 0), (1, 63),
    (2, 64), (2, 0x7FFF), (2, 0x1234),
    (3, 0x8000), (3, 0xFF_FFFF), (3, 0x12_3456),
])
def test_extended_split_reaches_the_dc(levels, device_id):
    rig = bare_rig(levels)
    write_ext_dc(rig, rig.root, device_id, ext_dc_words(), levels)
    r = rig.iommu.translate(device_id, IDENTITY, "read")
    assert not r.fault and r.pa == IDENTITY


def test_dc_address_is_ddi0_times_64():
    # 1LVL: device 3's DC at root + 3*64 = +0xC0. A base-format walk would read +0x60,
    # which holds nothing (V=0 -> 258).
    rig = bare_rig(1)
    tc = ext_dc_words()[0]
    rig.w64((rig.root << 12) + 0xC0, tc)
    assert not rig.iommu.translate(3, IDENTITY, "read").fault
    rig.w64((rig.root << 12) + 0xC0, 0)
    rig.w64((rig.root << 12) + 0x60, tc)
    assert rig.iommu.translate(3, IDENTITY, "read").cause == Cause.DDT_ENTRY_NOT_VALID


def test_extended_2lvl_index_bits():
    # 2LVL extended: DDI[1] = did[14:6]. Device 0x40 uses root entry 1, DC 0 of that page.
    rig = bare_rig(2)
    leaf = rig.page()
    rig.w64((rig.root << 12) + 8, 1 | leaf << 10)
    rig.w64(leaf << 12, ext_dc_words()[0])
    assert not rig.iommu.translate(0x40, IDENTITY, "read").fault
    # Device 0x3F is root entry 0 (not valid): 258.
    assert rig.iommu.translate(0x3F, IDENTITY, "read").cause == Cause.DDT_ENTRY_NOT_VALID


@pytest.mark.parametrize("levels, device_id", [(1, 64), (1, 0x7F), (2, 0x8000), (2, 0xFFFF)])
def test_device_id_too_wide_is_260_before_any_ddt_read(levels, device_id):
    # Base format would take 7 bits (1LVL) and 16 bits (2LVL); extended takes 6 and 15.
    rig = bare_rig(levels)
    rig.mem.inject_fault(rig.root << 12, 4096)          # any DDT read would give 257
    r = rig.iommu.translate(device_id, IDENTITY, "read")
    assert r.fault and r.cause == Cause.TRANSACTION_TYPE_DISALLOWED


def test_base_format_without_msi_flat():
    # Without msi_flat: 32-byte DCs, the 7-bit DDI[0]; words 4-7 belong to the next DC.
    config = Config.full()
    rig = bare_rig(1, config)
    rig.write_dc(rig.root, 1, dc_words())               # at +0x20
    rig.w64((rig.root << 12) + 0x20 + 32, 0xFFFF_FFFF_FFFF_FFFE)   # device 2's tc, V=0
    assert not rig.iommu.translate(1, IDENTITY, "read").fault
    assert rig.iommu.translate(2, IDENTITY, "read").cause == Cause.DDT_ENTRY_NOT_VALID
    # 7-bit device_ids fit 1LVL in the base format.
    rig.write_dc(rig.root, 0x7F, dc_words())
    assert not rig.iommu.translate(0x7F, IDENTITY, "read").fault


@pytest.mark.parametrize("config, msi_translated", [(Config.full(), False), (MSI, True)])
def test_msi_translation_only_with_msi_flat(config, msi_translated):
    # The same eight words at device 0's DC (1LVL): a base-format IOMMU reads only the
    # first four, so msiptp does not exist for it (N.9 P4) and the G-stage decides.
    rig = Rig(config)
    root, g, pt = rig.page(), rig.page(4, align=4), rig.page()
    write_ext_dc(rig, root, 0, ext_dc_words(iohgatp_=iohgatp(9, g, gscid=1),
                                            msiptp=msiptp(pt), pattern=addr_mask(PATTERN)),
                 levels=1)
    write_msi_pte(rig, pt, 0, basic_pte(0x1234))
    rig.set_ddtp(IommuMode.LVL1, root)
    r = rig.iommu.translate(0, (PATTERN << 12) | 0x10, "read")
    if msi_translated:
        assert r.pa == 0x1234_010
    else:
        assert r.cause == Cause.READ_GUEST_PAGE_FAULT and r.iotval2 == (PATTERN << 12) | 0x10


# -- the 259 checks (reference N.3.3, decision 1) -------------------------------------------

@pytest.mark.parametrize("name, changes", [
    ("msiptp bit 44", dict(msiptp=msiptp(0x100) | 1 << 44)),
    ("msiptp bit 59", dict(msiptp=msiptp(0x100) | 1 << 59)),
    ("msiptp MODE 2", dict(msiptp=msiptp(0x100, mode=2))),
    ("msiptp MODE 13", dict(msiptp=msiptp(0x100, mode=13))),
    ("msiptp MODE 14 (custom)", dict(msiptp=msiptp(0x100, mode=14))),
    ("msiptp MODE 15 (custom)", dict(msiptp=msiptp(0x100, mode=15))),
    ("mask bit 52", dict(mask=1 << 52)),
    ("mask bit 63", dict(mask=1 << 63)),
    ("pattern bit 52", dict(pattern=PATTERN | 1 << 52)),
    ("pattern bit 63", dict(pattern=PATTERN | 1 << 63)),
    ("dw7 bit 0", dict(dw7=1)),
    ("dw7 bit 63", dict(dw7=1 << 63)),
    # MGPAW 50 (Sv48x4): mask/pattern bits [51:38] are reserved.
    ("mask bit 38", dict(mask=addr_mask(1 << 38))),
    ("mask bit 51", dict(mask=addr_mask(1 << 51))),
    ("pattern bit 38", dict(pattern=addr_mask(PATTERN | 1 << 38))),
    ("pattern bit 51", dict(pattern=addr_mask(PATTERN | 1 << 51))),
])
def test_extended_misconfiguration_is_259(name, changes):
    rig = msi_rig()
    rewrite_dc(rig, **changes)
    r = rig.iommu.translate(5, IDENTITY, "read")
    assert r.fault and r.cause == Cause.DDT_ENTRY_MISCONFIGURED, name


def test_bits_below_mgpaw_are_fine():
    # Bit 37 of mask and pattern is page bit 37 = GPA bit 49 < MGPAW 50.
    rig = msi_rig()
    rewrite_dc(rig, mask=addr_mask(1 << 37), pattern=addr_mask(PATTERN | 1 << 37))
    # IDENTITY is not an MSI address: the G-stage faults at GPA 0x0123_4000 (unmapped).
    assert rig.iommu.translate(5, IDENTITY, "read").cause == Cause.READ_GUEST_PAGE_FAULT


def test_mgpaw_follows_the_second_stage_modes():
    # Sv39x4 only: MGPAW 41, so mask bit 29 (GPA bit 41) is reserved and bit 28 is not.
    config = MSI.replace(sv48x4=False)
    rig = msi_rig(config=config, g_mode=8)
    rewrite_dc(rig, mask=addr_mask(1 << 28))
    assert rig.iommu.translate(5, IDENTITY, "read").cause == Cause.READ_GUEST_PAGE_FAULT
    rewrite_dc(rig, mask=addr_mask(1 << 29))
    assert rig.iommu.translate(5, IDENTITY, "read").cause == Cause.DDT_ENTRY_MISCONFIGURED


def test_msiptp_flat_with_iohgatp_bare_is_259():
    rig = bare_rig(3)
    write_ext_dc(rig, rig.root, 5, ext_dc_words(msiptp=msiptp(0x100)))
    assert rig.iommu.translate(5, IDENTITY, "read").cause == Cause.DDT_ENTRY_MISCONFIGURED
    # msiptp Off with iohgatp Bare: fine, and the PPN of an Off msiptp is not looked at.
    write_ext_dc(rig, rig.root, 5, ext_dc_words(msiptp=msiptp(0x100, mode=0)))
    assert rig.iommu.translate(5, IDENTITY, "read").pa == IDENTITY


def test_msiptp_off_still_checks_mask_and_dw7():
    rig = bare_rig(3)
    write_ext_dc(rig, rig.root, 5, ext_dc_words(mask=1 << 52))
    assert rig.iommu.translate(5, IDENTITY, "read").cause == Cause.DDT_ENTRY_MISCONFIGURED
    write_ext_dc(rig, rig.root, 5, ext_dc_words(dw7=2))
    assert rig.iommu.translate(5, IDENTITY, "read").cause == Cause.DDT_ENTRY_MISCONFIGURED


def test_dc_read_fault_in_upper_half_is_257():
    # All 64 bytes are read: a bus error on doubleword 6 is a DDT load access fault.
    rig = msi_rig()
    rig.mem.inject_fault(rig.dc_address + 48, 8)
    assert rig.iommu.translate(5, IDENTITY, "read").cause == Cause.DDT_LOAD_ACCESS_FAULT


def test_device_context_exposes_msi_fields():
    rig = msi_rig(mask=0x3F, pattern=0x1_0000)
    dc = rig.iommu._device_context(5)
    assert (dc.msi_mode, dc.msi_ppn, dc.msi_mask, dc.msi_pattern) == \
        (1, rig.msi_pt, 0x3F, 0x1_0000)
    assert dc.msi_flat


@pytest.mark.parametrize("config, width", [
    (MSI, 50),                                             # Sv48x4
    (MSI.replace(sv48x4=False), 41),                       # Sv39x4 only
    (Config.process().replace(msi_flat=True), 59),         # Sv57x4
])
def test_mgpaw_from_capabilities_agrees_with_config(config, width):
    # Reference N.3.3 defines MGPAW from capabilities; hdl's Config.mgpaw must say the same.
    from iogate.hdl import bits
    from iogate.hdl.regs import CAPABILITIES

    from iogate.cosim.model import ddt
    caps = bits.unpack(CAPABILITIES, config.capabilities)
    assert ddt.mgpaw(caps) == config.mgpaw == width
