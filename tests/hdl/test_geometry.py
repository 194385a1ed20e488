"""The geometry of each mode, against the specs' own numbers.

Privileged spec "Sv39"/"Sv48"/"Sv57": 3/4/5 levels of 9 index bits over 4 KiB pages, VAs of
39/48/57 bits whose bits above the top one copy it; "Two-Stage Address Translation": the
x4 schemes take GPAs 2 bits wider and a 16 KiB root (11 index bits). RISC-V IOMMU spec
"Device-Directory-Table (DDT)": base-format device_id split DDI[0] = bits 6:0,
DDI[1] = 15:7, DDI[2] = 23:16; "Process-Directory-Table (PDT)": PDI[0] = process_id 7:0,
PDI[1] = 16:8, PDI[2] = 19:17, PD8/PD17/PD20 with 1/2/3 levels (reference N.1.2).
"""

import pytest

from iogate.hdl.formats import IohgatpMode, IosatpMode, PdtpMode
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


@pytest.mark.parametrize("mode,levels,pid_bits", [
    (PdtpMode.BARE, 0, 0), (PdtpMode.PD8, 1, 8), (PdtpMode.PD17, 2, 17),
    (PdtpMode.PD20, 3, 20)])
def test_pdtp_modes(mode, levels, pid_bits):
    assert (mode.levels, mode.pid_bits) == (levels, pid_bits)


def test_process_id_split_takes_the_spec_bit_ranges():
    assert [(PdtpMode.index_low(i), PdtpMode.index_bits(i)) for i in range(3)] == \
        [(0, 8), (8, 9), (17, 3)]
    # 0xABCDE = 0b101_0_1011_1100_1101_1110: PDI[2] = 0b101, PDI[1] = 0x0BC, PDI[0] = 0xDE.
    assert [PdtpMode.pdi(0xA_BCDE, i) for i in range(3)] == [0xDE, 0xBC, 0x5]
    assert [PdtpMode.pdi(0xF_FFFF, i) for i in range(3)] == [0xFF, 0x1FF, 0x7]
    # A leaf page holds 256 16-byte PCs; a non-leaf page 512 8-byte PDTEs (4 KiB each).
    assert (1 << PdtpMode.index_bits(0)) * 16 == 4096
    assert (1 << PdtpMode.index_bits(1)) * 8 == 4096
