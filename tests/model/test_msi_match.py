"""The MSI address match and the interrupt-file number (reference N.4.1; issue 16 decision 2).

``(A >> 12) & ~mask == pattern & ~mask`` over all 52 page-number bits of the 64-bit GPA A;
``I = extract(A >> 12, mask)``; the PTE at ``(msiptp.PPN << 12) | I * 16``.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from iogate.hdl.formats import Cause

from iogate.cosim.model import msi
from msi_tables import MSI, MSI_GPA, addr_mask, basic_pte, msi_rig, rewrite_dc, write_msi_pte

PAGE = st.integers(0, (1 << 52) - 1)


def extract_bitwise(x, mask):
    """extract, bit by bit from the spec's words: the mask's 1 positions, low to high,
    become result bits 0, 1, 2, ..."""
    out = []
    for i in range(64):
        if mask >> i & 1:
            out.append(x >> i & 1)
    return sum(b << k for k, b in enumerate(out))


def test_extract_spec_example():
    # x = abcdefgh, mask = 10100110 -> 0000acfg. With a=1, c=0, f=1, g=1 (x = 1?0??11?):
    # a c f g = 1 0 1 1 -> 0b1011.
    x = 0b1_0_0_0_0_1_1_0
    assert msi.extract(x, 0b10100110) == 0b1011
    # Every other bit of x is ignored: b, d, e, h all set changes nothing.
    assert msi.extract(x | 0b01011001, 0b10100110) == 0b1011
    # a=0 c=1 f=0 g=0.
    assert msi.extract(0b00100000, 0b10100110) == 0b0100


@given(PAGE, PAGE)
@settings(max_examples=300)
def test_extract_matches_bitwise(x, mask):
    assert msi.extract(x, mask) == extract_bitwise(x, mask)


@given(PAGE, PAGE, PAGE)
@settings(max_examples=300)
def test_match_is_the_spec_formula(page, mask, pattern):
    gpa = page << 12 | 0x123
    expected = all((page >> i & 1) == (pattern >> i & 1) for i in range(52)
                   if not mask >> i & 1)
    assert msi.matches(gpa, mask, pattern) == expected


@given(st.integers(0, 40), st.integers(0, (1 << 40) - 1), PAGE, PAGE)
@settings(max_examples=300)
def test_range_overlaps_is_any_page_matching(log2_pages, base, mask, pattern):
    # A naturally aligned range of 2**log2_pages pages holds a matching page iff one does;
    # checked by brute force on ranges of up to 2**8 pages, by the free-bit rule above.
    pages = 1 << min(log2_pages, 8)
    base_page = (base >> 12) & ~(pages - 1)
    brute = any(msi.matches((base_page + k) << 12, mask, pattern) for k in range(pages))
    assert msi.range_overlaps(base_page << 12, pages << 12, mask, pattern) == brute


def test_pte_address_is_or_of_index():
    assert msi.pte_address(0x1234, 0) == 0x123_4000
    assert msi.pte_address(0x1234, 5) == 0x123_4050
    assert msi.pte_address(0x1234, 255) == 0x123_4FF0


def test_match_and_index_in_translation():
    # mask 0b101, pattern 0x2_8000: GPA pages 0x28000, 0x28001, 0x28004, 0x28005 match,
    # interrupt files (page bit 2, page bit 0) = 0, 1, 2, 3. Page 0x28002 does not match.
    rig = msi_rig()
    for i in range(4):
        write_msi_pte(rig, rig.msi_pt, i, basic_pte(0x100 + i))
    m = rig.iommu
    for page, ppn in ((0x28000, 0x100), (0x28001, 0x101), (0x28004, 0x102), (0x28005, 0x103)):
        r = m.translate(5, page << 12 | 0xABC, "write")
        assert (r.fault, r.pa, r.r, r.w, r.x) == (False, ppn << 12 | 0xABC, True, True, False)
    # Non-matching pages go to the second stage, which maps nothing below 1 GiB.
    for page in (0x28002, 0x28008, 0x2_0000, 0xA_8000):
        r = m.translate(5, page << 12, "read")
        assert r.cause == Cause.READ_GUEST_PAGE_FAULT and r.iotval2 == page << 12


def test_mask_with_many_bits():
    # mask = 0xFF (256 interrupt files): page 0x2_80A7 is file 0xA7, its PTE at +0xA70.
    rig = msi_rig(mask=0xFF)
    write_msi_pte(rig, rig.msi_pt, 0xA7, basic_pte(0x4_4444))
    assert rig.iommu.translate(5, 0x2_80A7_008, "read").pa == 0x4_4444_008


def test_gpa_wider_than_mgpaw_never_matches():
    # N.9 P3 with Sv39x4 only (MGPAW 41): GPA 0x1234_5000 | 1 << 45. The spec formula
    # compares page bit 33, which the pattern cannot have set (bits [51:29] are reserved,
    # 259), so it does not match and the G-stage rejects the wide GPA: 21, iotval2 = GPA.
    config = MSI.replace(sv48x4=False)
    rig = msi_rig(config=config, g_mode=8, mask=0, pattern=0x1_2345)
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(0x40))
    gpa = 0x1234_5000 | 1 << 45
    assert rig.iommu.translate(5, 0x1234_5000, "read").pa == 0x40 << 12     # matches
    r = rig.iommu.translate(5, gpa, "read")
    assert r.cause == Cause.READ_GUEST_PAGE_FAULT and r.iotval2 == gpa
    # Even a mask of every legal bit (28:0) leaves bit 33 compared.
    rewrite_dc(rig, mask=addr_mask((1 << 29) - 1), pattern=addr_mask(0))
    r = rig.iommu.translate(5, gpa, "write")
    assert r.cause == Cause.WRITE_GUEST_PAGE_FAULT and r.iotval2 == gpa


def test_top_gpa_bits_are_compared():
    # GPA bit 63 (page bit 51) is compared like any other: MSI_GPA | 1 << 63 is no MSI.
    rig = msi_rig()
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(0x40))
    r = rig.iommu.translate(5, MSI_GPA | 1 << 63, "read")
    assert r.cause == Cause.READ_GUEST_PAGE_FAULT


def test_msiptp_off_means_no_msi_translation():
    rig = msi_rig()
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(0x40))
    rewrite_dc(rig, msiptp=0)
    assert rig.iommu.translate(5, MSI_GPA, "read").cause == Cause.READ_GUEST_PAGE_FAULT
