"""The geometry of each mode, against the specs' own numbers.

Privileged spec "Sv39"/"Sv48"/"Sv57": 3/4/5 levels of 9 index bits over 4 KiB pages, VAs of
39/48/57 bits whose bits above the top one copy it; "Two-Stage Address Translation": the
x4 schemes take GPAs 2 bits wider and a 16 KiB root (11 index bits). RISC-V IOMMU spec
"Device-Directory-Table (DDT)": base-format device_id split DDI[0] = bits 6:0,
DDI[1] = 15:7, DDI[2] = 23:16.
"""

import pytest

from iogate.hdl.formats import IohgatpMode, IosatpMode
from iogate.hdl.regs import IommuMode


@pytest.mark.parametrize("mode,levels,va_bits", [
    (IosatpMode.BARE, 0, 0), (IosatpMode.SV39, 3, 39), (IosatpMode.SV48, 4, 48),
    (IosatpMode.SV57, 5, 57)])
def test_first_stage_levels_and_widths(mode, levels, va_bits):
    assert (mode.levels, mode.va_bits) == (levels, va_bits)
    assert mode.vpn_bits == max(va_bits - 12, 0)
    assert mode.index_bits == 9


@pytest.mark.parametrize("mode,levels,gpa_bits", [
    (IohgatpMode.BARE, 0, 0), (IohgatpMode.SV39X4, 3, 41), (IohgatpMode.SV48X4, 4, 50),
    (IohgatpMode.SV57X4, 5, 59)])
def test_second_stage_levels_and_widths(mode, levels, gpa_bits):
    assert (mode.levels, mode.gpa_bits) == (levels, gpa_bits)
    assert mode.vpn_bits == max(gpa_bits - 12, 0)
    assert mode.root_index_bits == 11


@pytest.mark.parametrize("va,canonical", [
    (0x0000_003F_FFFF_FFFF, True),      # top of the lower half
    (0x0000_0040_0000_0000, False),     # bit 38 set, 63:39 clear
    (0xFFFF_FFC0_0000_0000, True),      # bottom of the upper half
    (0xFFFF_FF80_0000_0000, False),     # 63:39 set, bit 38 clear
    (0x8000_0000_0000_0000, False),
    (0x7FFF_FFC0_0000_0000, False)])
def test_sv39_canonical_addresses(va, canonical):
    assert IosatpMode.SV39.is_canonical(va) is canonical


def test_sv48_canonical_boundary():
    assert IosatpMode.SV48.is_canonical(0x0000_7FFF_FFFF_FFFF)
    assert not IosatpMode.SV48.is_canonical(0x0000_8000_0000_0000)
    assert IosatpMode.SV48.is_canonical(0xFFFF_8000_0000_0000)


@pytest.mark.parametrize("mode,levels,split,width", [
    (IommuMode.OFF, 0, (), 0), (IommuMode.BARE, 0, (), 0), (IommuMode.LVL1, 1, (7,), 7),
    (IommuMode.LVL2, 2, (7, 9), 16), (IommuMode.LVL3, 3, (7, 9, 8), 24)])
def test_directory_modes(mode, levels, split, width):
    assert (mode.levels, mode.ddi_bits, mode.device_id_bits) == (levels, split, width)
    if levels:
        assert IommuMode.for_levels(levels) is mode


def test_device_id_split_takes_the_spec_bit_ranges():
    did = 0xABCDEF
    assert IommuMode.LVL3.ddi(did) == (did & 0x7F, (did >> 7) & 0x1FF, (did >> 16) & 0xFF)
    assert IommuMode.LVL2.ddi(0x1234) == (0x1234 & 0x7F, 0x1234 >> 7)
    assert IommuMode.LVL1.ddi(0x45) == (0x45,)
