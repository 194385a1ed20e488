"""MSI address translation through the flat MSI page table (reference N.0 step 18, N.4.1-N.4.3;
issue 16 decisions 2-4): every cause of N.4.3 in its order, fault records, basic-mode
results, two-stage requests, the debug interface.

The standard world is ``msi_tables.msi_rig``: MSI GPA 0x2800_0000 is interrupt file 0,
whose PTE is at ``rig.msi_pt << 12``.
"""

import pytest

from iogate.hdl import bits
from iogate.hdl.formats import MSI_PTE_BASIC, TC, Cause, Pbmt
from iogate.hdl.regs import Offset

from model_tables import UR, URW, URWX, Queues, iosatp, nonleaf, pte, ta
from msi_tables import (
    GIB,
    MSI,
    MSI_GPA,
    PATTERN,
    addr_mask,
    basic_pte,
    mrif_pte,
    msi_rig,
    msiptp,
    record,
    rewrite_dc,
    write_msi_pte,
)

IOVA = MSI_GPA | 0x123
TTYP_READ, TTYP_WRITE, TTYP_EXEC = 2, 3, 1           # spec "Fault record TTYP"


def rig_with(pte_words, config=MSI, **kwargs):
    rig = msi_rig(config=config, **kwargs)
    rig.q = Queues(rig)
    write_msi_pte(rig, rig.msi_pt, 0, pte_words)
    return rig


def cause_of(pte_words, access="read", config=MSI):
    return rig_with(pte_words, config).iommu.translate(5, IOVA, access, data=1).cause


# -- basic translate (M=3) -----------------------------------------------------------------

@pytest.mark.parametrize("access", ["read", "write"])
def test_basic_result(access):
    rig = rig_with(basic_pte(0xAB_CDEF))
    r = rig.iommu.translate(5, IOVA, access)
    # SPA = PPN << 12 | A[11:0], R=W=1, X=0, PMA, 4 KiB (reference N.4.3 "Results").
    assert not r.fault and not r.absorbed
    assert (r.pa, r.r, r.w, r.x, r.pbmt, r.size) == (0xAB_CDEF_123, True, True, False,
                                                     Pbmt.PMA, 4096)
    assert rig.q.fqt == 0


def test_basic_dw1_is_ignored():
    rig = rig_with((basic_pte(0x777)[0], 0xFFFF_FFFF_FFFF_FFFF))
    assert rig.iommu.translate(5, IOVA, "write").pa == 0x777_123


def test_basic_pte_ppn_is_44_bits():
    # PPN [53:10]: the top PPN bit is PTE bit 53.
    rig = rig_with(basic_pte((1 << 44) - 1), config=MSI)
    assert rig.iommu.translate(5, IOVA, "read").ppn == (1 << 44) - 1


# -- the causes, in order (N.4.3, decision 3) ----------------------------------------------

def test_pte_load_access_fault_is_261_with_record():
    rig = rig_with(basic_pte(0x777))
    rig.mem.inject_fault(rig.msi_pt << 12, 8)
    r = rig.iommu.translate(5, IOVA, "write")
    assert r.fault and r.cause == Cause.MSI_PTE_LOAD_ACCESS_FAULT and r.iotval2 == 0
    assert record(rig, 0) == (261, TTYP_WRITE, 5, IOVA, 0)


def test_pte_dw1_load_fault_is_261_even_for_basic():
    # Both doublewords are read in one access (a choice: the PTE is 16 bytes).
    rig = rig_with(basic_pte(0x777))
    rig.mem.inject_fault((rig.msi_pt << 12) + 8, 8)
    assert rig.iommu.translate(5, IOVA, "read").cause == Cause.MSI_PTE_LOAD_ACCESS_FAULT


def test_pte_above_pas_is_261():
    # PAS 40: an MSI PT at 2**40 is outside the physical address space.
    config = MSI.replace(pas=40)
    rig = msi_rig(config=config)
    rewrite_dc(rig, msiptp=msiptp(1 << 28))
    assert rig.iommu.translate(5, IOVA, "read").cause == Cause.MSI_PTE_LOAD_ACCESS_FAULT


def test_v0_is_262():
    assert cause_of((basic_pte(0x777)[0] & ~1, 0)) == Cause.MSI_PTE_NOT_VALID
    assert cause_of((0, 0)) == Cause.MSI_PTE_NOT_VALID


def test_v0_comes_before_c_and_m():
    # V=0 with C=1 and M=0: still 262 (V is check 3, C check 4, M check 5).
    assert cause_of((1 << 63, 0)) == Cause.MSI_PTE_NOT_VALID


def test_c1_is_263():
    assert cause_of((basic_pte(0x777)[0] | 1 << 63, 0)) == Cause.MSI_PTE_MISCONFIGURED


@pytest.mark.parametrize("m", [0, 2])
def test_reserved_modes_are_263(m):
    assert cause_of((1 | m << 1 | 0x777 << 10, 0)) == Cause.MSI_PTE_MISCONFIGURED


@pytest.mark.parametrize("bit", [3, 4, 9, 54, 60, 62])
def test_basic_reserved_bits_are_263(bit):
    assert cause_of((basic_pte(0x777)[0] | 1 << bit, 0)) == Cause.MSI_PTE_MISCONFIGURED


def test_mrif_without_msi_mrif_is_263():
    config = MSI.replace(msi_mrif=False)
    assert cause_of(mrif_pte(0x10_0000, 0x20, 1), config=config) == \
        Cause.MSI_PTE_MISCONFIGURED


@pytest.mark.parametrize("dw, bit", [(0, 3), (0, 6), (0, 54), (0, 62),
                                     (1, 54), (1, 59), (1, 61), (1, 63)])
def test_mrif_reserved_bits_are_263(dw, bit):
    words = list(mrif_pte(0x10_0000, 0x20, 1))
    words[dw] |= 1 << bit
    assert cause_of(tuple(words), "write") == Cause.MSI_PTE_MISCONFIGURED


def test_mrif_bits_that_are_fields_are_fine():
    # dw0 bit 7 is MRIF_Address[9], dw1 bit 60 is NID[10]: not reserved.
    words = mrif_pte(0x10_0200, 0x20, 1 << 10)
    assert words[0] >> 7 & 1 and words[1] >> 60 & 1
    rig = rig_with(words)
    assert rig.iommu.translate(5, IOVA & ~0xFFF, "write", data=1).absorbed


@pytest.mark.parametrize("pte_words", [basic_pte(0x777), mrif_pte(0x10_0000, 0x20, 1)])
def test_execute_is_instruction_access_fault(pte_words):
    rig = rig_with(pte_words)
    r = rig.iommu.translate(5, IOVA, "execute")
    assert r.cause == Cause.INSTRUCTION_ACCESS_FAULT and r.iotval2 == 0
    assert record(rig, 0) == (1, TTYP_EXEC, 5, IOVA, 0)


def test_execute_comes_after_the_pte_checks():
    assert cause_of((0, 0), "execute") == Cause.MSI_PTE_NOT_VALID
    assert cause_of((basic_pte(1)[0] | 1 << 5, 0), "execute") == Cause.MSI_PTE_MISCONFIGURED


@pytest.mark.parametrize("pte_words, cause", [
    ((0, 0), 262), ((basic_pte(1)[0] | 1 << 63, 0), 263)])
def test_records_of_pte_causes(pte_words, cause):
    rig = rig_with(pte_words)
    rig.iommu.translate(5, IOVA, "read")
    assert record(rig, 0) == (cause, TTYP_READ, 5, IOVA, 0)


def test_dtf_suppresses_msi_records():
    rig = rig_with((0, 0), tc=bits.pack(TC, v=1, dtf=1))
    assert rig.iommu.translate(5, IOVA, "read").cause == Cause.MSI_PTE_NOT_VALID
    assert rig.q.fqt == 0


# -- two-stage: the first stage's output GPA is what matches ------------------------------

def two_stage_rig(pte_words, leaf_flags=URW, pbmt=0):
    """Sv39 over Sv39x4: guest tables at GPA = SPA + 1 GiB; IOVA 0x4000_0000 -> GPA
    MSI_GPA through a 4 KiB first-stage leaf."""
    rig = msi_rig(g_mode=8, ta=ta(9))
    rig.q = Queues(rig)
    s_root = rig.page()
    rewrite_dc(rig, fsc=iosatp(8, rig.gpa(s_root << 12) >> 12))
    rig.vs_map = lambda va, leaf: _vs_map(rig, s_root, va, leaf)
    rig.vs_map(0x4000_0000, pte(MSI_GPA >> 12, pbmt=pbmt, **leaf_flags))
    write_msi_pte(rig, rig.msi_pt, 0, pte_words)
    return rig


def _vs_map(rig, s_root, va, leaf):
    a = rig.gpa(s_root << 12)
    for i in (2, 1, 0):
        address = a + ((va >> (12 + 9 * i)) & 0x1FF) * 8
        if i == 0:
            rig.w64(rig.spa(address), leaf)
            return
        entry = rig.mem.read64(rig.spa(address))
        if not entry & 1:
            entry = nonleaf(rig.gpa(rig.page() << 12) >> 12)
            rig.w64(rig.spa(address), entry)
        a = (entry >> 10 & ((1 << 44) - 1)) << 12


def test_two_stage_first_stage_output_matches():
    rig = two_stage_rig(basic_pte(0x5_5555))
    r = rig.iommu.translate(5, 0x4000_0abc, "write")
    assert (r.pa, r.r, r.w, r.x) == (0x5_5555_abc, True, True, False)
    # The IOVA itself is no MSI address: IOVA 0x2800_0000 is not mapped by the first stage.
    assert rig.iommu.translate(5, MSI_GPA, "read").cause == Cause.READ_PAGE_FAULT


def test_two_stage_first_stage_permissions_apply():
    rig = two_stage_rig(basic_pte(0x5_5555), leaf_flags=UR)
    r = rig.iommu.translate(5, 0x4000_0000, "read")
    assert (r.pa, r.r, r.w, r.x) == (0x5_5555_000, True, False, False)
    # A write faults in the first stage (15) before any MSI check.
    assert rig.iommu.translate(5, 0x4000_0000, "write").cause == Cause.WRITE_PAGE_FAULT


def test_two_stage_first_stage_fault_comes_first():
    rig = two_stage_rig((0, 0))                     # V=0 MSI PTE
    rig.vs_map(0x4000_0000, pte(MSI_GPA >> 12, v=1, r=1, u=1))   # A=0: page fault
    assert rig.iommu.translate(5, 0x4000_0000, "read").cause == Cause.READ_PAGE_FAULT


def test_two_stage_execute_after_first_stage_x():
    rig = two_stage_rig(basic_pte(0x5_5555), leaf_flags=URWX)
    r = rig.iommu.translate(5, 0x4000_0000, "execute")
    assert r.cause == Cause.INSTRUCTION_ACCESS_FAULT and r.iotval2 == 0
    assert record(rig, 0) == (1, TTYP_EXEC, 5, 0x4000_0000, 0)


def test_two_stage_first_stage_pbmt_overrides():
    rig = two_stage_rig(basic_pte(0x5_5555), pbmt=Pbmt.IO)
    assert rig.iommu.translate(5, 0x4000_0000, "read").pbmt == Pbmt.IO


def test_first_stage_table_reads_are_not_msi_translated():
    # The guest's root table sits at a GPA that matches the MSI pattern: its read still goes
    # through the G-stage (step 18 is for the request's GPA only).
    rig = msi_rig(g_mode=8)
    s_root = rig.page()
    root_gpa = rig.gpa(s_root << 12)
    rewrite_dc(rig, fsc=iosatp(8, root_gpa >> 12), mask=0, pattern=addr_mask(root_gpa >> 12))
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(0x9_9999))
    _vs_map(rig, s_root, 0x4000_0000, pte(0x4100_0, **URW))      # GPA 0x4100_0000
    r = rig.iommu.translate(5, 0x4000_0000, "read")
    assert r.pa == 0x0100_0000                                   # G-stage: GPA - 1 GiB
    # The same GPA as a request's output GPA is MSI-translated.
    _vs_map(rig, s_root, 0x4000_1000, pte(root_gpa >> 12, **URW))
    assert rig.iommu.translate(5, 0x4000_1000, "read").pa == 0x9_9999 << 12


# -- G-stage superpages never cover an MSI page ---------------------------------------------

def test_gstage_superpage_holding_an_msi_page_is_answered_as_4k():
    # The MSI page moved into the G-stage's 1 GiB leaf (GPA 1 GiB + 1 MiB): a translation of
    # another page in that leaf is a 4 KiB range, so no cached answer can cover the MSI page.
    page = (GIB + 0x10_0000) >> 12
    rig = msi_rig(mask=0, pattern=page)
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(0x9_9999))
    r = rig.iommu.translate(5, GIB + 0x20_0000, "read")
    assert r.pa == 0x20_0000 and r.size == 4096
    assert rig.iommu.translate(5, GIB + 0x10_0000, "read").pa == 0x9_9999 << 12
    # With the MSI page outside the leaf, the whole 1 GiB range is one translation.
    rewrite_dc(rig, pattern=addr_mask(PATTERN))
    assert rig.iommu.translate(5, GIB + 0x20_0000, "read").size == GIB


def test_cached_superpage_does_not_bypass_the_msi_page_table():
    page = (GIB + 0x10_0000) >> 12
    rig = msi_rig(mask=0, pattern=page, cache=True)
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(0x9_9999))
    assert rig.iommu.translate(5, GIB + 0x20_0000, "read").pa == 0x20_0000
    assert rig.iommu.translate(5, GIB + 0x10_0000, "read").pa == 0x9_9999 << 12
    assert rig.iommu.allowed(5, GIB + 0x10_0000, "read") == {
        rig.iommu.translate(5, GIB + 0x10_0000, "read")}


# -- the debug interface ----------------------------------------------------------------------

GO, EXE, NW = 1 << 0, 1 << 2, 1 << 3


def debug(rig, iova, ctl):
    rig.iommu.mmio_write(Offset.TR_REQ_IOVA, 8, iova)
    rig.iommu.mmio_write(Offset.TR_REQ_CTL, 8, ctl | 5 << 40)
    return rig.iommu.mmio_read(Offset.TR_RESPONSE, 8)


def test_debug_basic():
    rig = rig_with(basic_pte(0x5_4321))
    # PPN in bits 53:10, PBMT PMA, S=0.
    assert debug(rig, MSI_GPA, GO | NW) == 0x5_4321 << 10
    assert debug(rig, MSI_GPA, GO) == 0x5_4321 << 10
    assert debug(rig, MSI_GPA, GO | EXE | NW) == 1                 # fault: cause 1
    assert record(rig, 0) == (1, TTYP_EXEC, 5, MSI_GPA, 0)


@pytest.mark.parametrize("ctl", [GO | NW, GO])
def test_debug_on_mrif_page_is_260(ctl):
    rig = rig_with(mrif_pte(0x10_0000, 0x20, 1))
    assert debug(rig, MSI_GPA, ctl) == 1
    assert record(rig, 0)[0] == Cause.TRANSACTION_TYPE_DISALLOWED
    assert rig.mem.read64(0x10_0000) == 0 and rig.mem.read64(0x20_000) == 0


def test_layouts_used_here():
    # The basic PTE's PPN sits at bits 53:10 (AIA; reference N.4.2).
    assert bits.field_range(MSI_PTE_BASIC, "ppn") == (10, 44)
