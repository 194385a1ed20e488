"""Caching of MSI translations (reference N.4.5; issue 16 decisions 4 and 6): basic results
in the IOTLB, MSI PTEs (both modes) in an MSI PTE cache tagged by (GSCID, GPA page), and
which commands make a stale answer go away: ``IOTINVAL.GVMA`` of the GSCID (AV=1 with the
MSI page's GPA, or AV=0, or GV=0) followed by ``IOFENCE.C``; ``IOTINVAL.VMA`` and
``IODIR.INVAL_DDT`` are not enough.

The model runs with ``cache=True``, so its own answers come from what it cached; ``allowed``
lists every answer a correct IOMMU may give.
"""

import pytest

from iogate.hdl.formats import Cause

from iogate.cosim.model import Result
from model_tables import (
    URW,
    Queues,
    iodir_inval_ddt,
    iofence_c,
    iosatp,
    iotinval_gvma,
    iotinval_vma,
    pte,
    ta,
)
from msi_tables import (
    MSI_GPA,
    basic_pte,
    mrif_pte,
    msi_rig,
    msiptp,
    rewrite_dc,
    write_msi_pte,
)
from test_msi_translation import _vs_map

OLD, NEW = 0x1_1111, 0x2_2222
ABSORBED = Result(fault=False, absorbed=True)


def basic(ppn, offset=0):
    return Result(fault=False, ppn=ppn, r=True, w=True, offset=offset)


def cached_rig(first=None):
    rig = msi_rig(cache=True)
    rig.q = Queues(rig)
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(OLD) if first is None else first)
    return rig


def answers(rig, access="read", iova=MSI_GPA, **kw):
    return rig.iommu.allowed(5, iova, access, **kw)


def test_stale_basic_until_gvma_av1_and_fence():
    rig = cached_rig()
    m = rig.iommu
    assert m.translate(5, MSI_GPA, "read").ppn == OLD
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(NEW))
    assert m.translate(5, MSI_GPA, "read").ppn == OLD           # the model's cache answers
    assert answers(rig) == {basic(OLD), basic(NEW)}
    # Not enough: VMA (any operands), IODIR, a GVMA of another GSCID or another page, and
    # a GVMA without its fence.
    rig.q.submit(iotinval_vma(), iotinval_vma(gv=1, gscid=3), iofence_c())
    assert answers(rig) == {basic(OLD), basic(NEW)}
    rig.q.submit(iodir_inval_ddt(), iofence_c())
    assert answers(rig) == {basic(OLD), basic(NEW)}
    rig.q.submit(iotinval_gvma(gv=1, gscid=4), iofence_c())
    assert answers(rig) == {basic(OLD), basic(NEW)}
    rig.q.submit(iotinval_gvma(gv=1, gscid=3, av=1, addr=MSI_GPA + 0x1000), iofence_c())
    assert answers(rig) == {basic(OLD), basic(NEW)}
    rig.q.submit(iotinval_gvma(gv=1, gscid=3, av=1, addr=MSI_GPA))
    assert answers(rig) == {basic(OLD), basic(NEW)}
    rig.q.submit(iofence_c())
    assert answers(rig) == {basic(NEW)}
    assert m.translate(5, MSI_GPA, "read").ppn == NEW


@pytest.mark.parametrize("gvma", [iotinval_gvma(gv=1, gscid=3), iotinval_gvma()])
def test_gvma_av0_and_gv0_cover_msi_entries(gvma):
    rig = cached_rig()
    rig.iommu.translate(5, MSI_GPA, "write")
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(NEW))
    rig.q.submit(gvma, iofence_c())
    assert answers(rig, "write") == {basic(NEW)}


def test_stale_answer_includes_the_access_check():
    # A cached basic entry answers an execute with 1, as the walk does.
    rig = cached_rig()
    rig.iommu.translate(5, MSI_GPA, "read")
    assert rig.iommu.translate(5, MSI_GPA, "execute").cause == Cause.INSTRUCTION_ACCESS_FAULT
    assert answers(rig, "execute") == {Result(fault=True, cause=Cause.INSTRUCTION_ACCESS_FAULT)}


def test_invalidated_pte_made_invalid():
    rig = cached_rig()
    rig.iommu.translate(5, MSI_GPA, "read")
    write_msi_pte(rig, rig.msi_pt, 0, (0, 0))
    assert answers(rig) == {basic(OLD), Result(fault=True, cause=Cause.MSI_PTE_NOT_VALID)}
    rig.q.submit(iotinval_gvma(gv=1, gscid=3, av=1, addr=MSI_GPA), iofence_c())
    assert answers(rig) == {Result(fault=True, cause=Cause.MSI_PTE_NOT_VALID)}


def test_faults_are_not_cached():
    rig = cached_rig(first=(0, 0))
    assert rig.iommu.translate(5, MSI_GPA, "read").cause == Cause.MSI_PTE_NOT_VALID
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(NEW))
    assert answers(rig) == {basic(NEW)}
    assert rig.iommu.translate(5, MSI_GPA, "read").ppn == NEW


def test_mrif_pte_is_cached_but_not_its_result():
    # MRIF PTE first, then the PTE becomes basic: a cache may still hold the MRIF PTE.
    rig = cached_rig(first=mrif_pte(0x30_0000, 0x40, 9))
    m = rig.iommu
    assert m.translate(5, MSI_GPA, "write", data=3).absorbed
    assert rig.mem.read64(0x30_0000) == 1 << 3 and rig.mem.read64(0x4_0000) == 9
    assert len(m.iotlb) == 0                                   # never an IOTLB entry
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(NEW))
    # The model's translate answers from its cached PTE and does the update.
    assert m.translate(5, MSI_GPA, "write", data=5).absorbed
    assert rig.mem.read64(0x30_0000) == 1 << 3 | 1 << 5
    # allowed() has both answers, and records nothing (identity 6 stays clear).
    assert answers(rig, "write", data=6) == {ABSORBED, basic(NEW)}
    assert rig.mem.read64(0x30_0000) == 1 << 3 | 1 << 5
    rig.q.submit(iotinval_vma(gv=1, gscid=3), iodir_inval_ddt(), iofence_c())
    assert answers(rig, "write", data=5) == {ABSORBED, basic(NEW)}
    rig.q.submit(iotinval_gvma(gv=1, gscid=3, av=1, addr=MSI_GPA), iofence_c())
    assert answers(rig, "write", data=5) == {basic(NEW)}


def test_stale_mrif_pte_answers_with_its_own_memory_faults():
    rig = cached_rig(first=mrif_pte(0x30_0000, 0x40, 9))
    rig.iommu.translate(5, MSI_GPA, "read")                    # caches the MRIF PTE
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(NEW))
    rig.mem.inject_fault(0x4_0000, 4)                          # the old notice page
    assert answers(rig, "write", data=5) == {
        Result(fault=True, cause=Cause.MRIF_ACCESS_FAULT), basic(NEW)}
    # A 260 from the old MRIF PTE stays possible for a misaligned access.
    assert answers(rig, "write", iova=MSI_GPA + 2, data=5) == {
        Result(fault=True, cause=Cause.TRANSACTION_TYPE_DISALLOWED), basic(NEW, 2)}


def test_dc_change_needs_iodir_and_gvma():
    # A new MSI page table for the device (a DC change): IODIR.INVAL_DDT + fence drops the
    # old DC, but the cached MSI PTE (GSCID 3, page) stays until a GVMA.
    rig = cached_rig()
    rig.iommu.translate(5, MSI_GPA, "read")
    table = rig.page()
    write_msi_pte(rig, table, 0, basic_pte(NEW))
    rewrite_dc(rig, msiptp=msiptp(table))
    rig.q.submit(iodir_inval_ddt(dv=1, did=5), iofence_c())
    assert answers(rig) == {basic(OLD), basic(NEW)}
    rig.q.submit(iotinval_gvma(gv=1, gscid=3), iofence_c())
    assert answers(rig) == {basic(NEW)}


def test_dc_change_of_pattern_needs_iodir_and_gvma():
    # The pattern moves away (a DC change, N.4.5: IODIR.INVAL_DDT + IOTINVAL.GVMA): the old
    # DC may still match until IODIR + fence, and the IOTLB entry of the basic result
    # (GSCID 3, GPA page) stays until a GVMA + fence.
    rig = cached_rig()
    rig.iommu.translate(5, MSI_GPA, "read")
    rewrite_dc(rig, mask=0, pattern=0)
    fault = Result(fault=True, cause=Cause.READ_GUEST_PAGE_FAULT)
    assert answers(rig) == {basic(OLD), fault}
    rig.q.submit(iodir_inval_ddt(dv=1, did=5), iofence_c())
    assert answers(rig) == {basic(OLD), fault}
    rig.q.submit(iotinval_gvma(gv=1, gscid=3), iofence_c())
    assert answers(rig) == {fault}


def test_with_a_first_stage_vma_is_not_enough():
    # Sv39 over Sv48x4: IOVA 0x4000_0000 -> GPA MSI_GPA. The basic result is a
    # first-stage-tagged IOTLB entry (VMA removes it), but the MSI PTE cache still holds the
    # old PTE until a GVMA.
    rig = msi_rig(cache=True, ta=ta(9))
    rig.q = Queues(rig)
    s_root = rig.page()
    rewrite_dc(rig, fsc=iosatp(8, rig.gpa(s_root << 12) >> 12))
    _vs_map(rig, s_root, 0x4000_0000, pte(MSI_GPA >> 12, **URW))
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(OLD))
    m = rig.iommu
    assert m.translate(5, 0x4000_0000, "read").ppn == OLD
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(NEW))
    assert answers(rig, iova=0x4000_0000) == {basic(OLD), basic(NEW)}
    rig.q.submit(iotinval_vma(gv=1, gscid=3, pscv=1, pscid=9), iofence_c())
    assert answers(rig, iova=0x4000_0000) == {basic(OLD), basic(NEW)}
    rig.q.submit(iotinval_gvma(gv=1, gscid=3, av=1, addr=MSI_GPA), iofence_c())
    assert answers(rig, iova=0x4000_0000) == {basic(NEW)}
    assert m.translate(5, 0x4000_0000, "read").ppn == NEW


def test_first_stage_change_needs_vma():
    # The first stage now maps the IOVA to a non-MSI GPA (unmapped in the G-stage): the
    # basic IOTLB entry stays possible until a VMA (a GVMA of the GSCID also covers it).
    rig = msi_rig(cache=True, ta=ta(9))
    rig.q = Queues(rig)
    s_root = rig.page()
    rewrite_dc(rig, fsc=iosatp(8, rig.gpa(s_root << 12) >> 12))
    _vs_map(rig, s_root, 0x4000_0000, pte(MSI_GPA >> 12, **URW))
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(OLD))
    rig.iommu.translate(5, 0x4000_0000, "read")
    _vs_map(rig, s_root, 0x4000_0000, pte(0x3_0000, **URW))   # GPA 0x3000_0000
    fault = Result(fault=True, cause=Cause.READ_GUEST_PAGE_FAULT)
    assert answers(rig, iova=0x4000_0000) == {basic(OLD), fault}
    rig.q.submit(iotinval_vma(gv=1, gscid=3, pscv=1, pscid=9, av=1, addr=0x4000_0000),
                 iofence_c())
    assert answers(rig, iova=0x4000_0000) == {fault}


def test_live_cached_pte_may_fill_the_iotlb_for_another_iova():
    # IOVAs A and B both map to GPA MSI_GPA. A's walk caches the old PTE; after the PTE
    # changes, B's walk may use the cached PTE and put B -> OLD in the IOTLB, which then
    # answers B even once B's first stage maps elsewhere, until a VMA for B.
    a, b = 0x4000_0000, 0x4000_1000
    rig = msi_rig(cache=True, ta=ta(9))
    rig.q = Queues(rig)
    s_root = rig.page()
    rewrite_dc(rig, fsc=iosatp(8, rig.gpa(s_root << 12) >> 12))
    for iova in (a, b):
        _vs_map(rig, s_root, iova, pte(MSI_GPA >> 12, **URW))
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(OLD))
    rig.iommu.translate(5, a, "read")
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(NEW))
    assert answers(rig, iova=b) == {basic(OLD), basic(NEW)}
    _vs_map(rig, s_root, b, pte(0x3_0000, **URW))             # GPA 0x3000_0000, unmapped
    fault = Result(fault=True, cause=Cause.READ_GUEST_PAGE_FAULT)
    assert answers(rig, iova=b) == {basic(OLD), basic(NEW), fault}
    rig.q.submit(iotinval_vma(gv=1, gscid=3, pscv=1, pscid=9, av=1, addr=b), iofence_c())
    assert answers(rig, iova=b) == {fault}
