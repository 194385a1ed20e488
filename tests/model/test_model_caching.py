"""Caching freedom: which answers the spec allows between a table change and its
invalidation + IOFENCE.C (RISC-V IOMMU spec "IOMMU Page-Table cache invalidation
commands", "IOMMU Command-queue Fence commands", "IOMMU directory cache invalidation commands")."""

import pytest

from iogate.hdl.regs import IommuMode

from model_tables import (
    FULL,
    UR,
    URW,
    Queues,
    Rig,
    dc_words,
    iodir_inval_ddt,
    iofence_c,
    iohgatp,
    iosatp,
    iotinval_gvma,
    iotinval_vma,
    pte,
    ta,
)

VA = 0x4000_1000
GIB = 1 << 30


def setup(config=None, **kwargs):
    rig = Rig(config, **kwargs)
    rig.root, rig.s = rig.page(), rig.page()
    rig.write_dc(rig.root, 5, dc_words(ta=ta(7), fsc=iosatp(8, rig.s)))
    rig.set_ddtp(IommuMode.LVL1, rig.root)
    rig.q = Queues(rig)
    return rig


def pas(results):
    return {r.pa for r in results if not r.fault}


def test_old_leaf_allowed_until_invalidation_is_fenced():
    rig = setup()
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    assert rig.iommu.translate(5, VA, "read").pa == 0x1111_1000
    rig.w64(leaf, pte(0x22222, **URW))                        # remap, no invalidation yet
    assert rig.iommu.translate(5, VA, "read").pa == 0x2222_2000
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x1111_1000, 0x2222_2000}
    rig.q.submit(iotinval_vma(pscv=1, pscid=7, av=1, addr=VA))
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x1111_1000, 0x2222_2000}
    rig.q.submit(iofence_c())
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x2222_2000}


def test_faults_are_never_cached():
    rig = setup()
    assert rig.iommu.translate(5, VA, "read").cause == 13
    rig.map(rig.s, VA, pte(0x11111, **URW))
    assert rig.iommu.allowed(5, VA, "read") == {rig.iommu.translate(5, VA, "read")}


def test_only_produced_answers_count():
    rig = setup()
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    rig.w64(leaf, pte(0x22222, **URW))                        # 0x11111 never translated
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x2222_2000}


def test_unmap_allows_old_answer_or_fault():
    rig = setup()
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    rig.iommu.translate(5, VA + 0x10, "write")
    rig.w64(leaf, 0)
    allowed = rig.iommu.allowed(5, VA + 0x20, "write")
    assert {(r.fault, r.cause, r.pa) for r in allowed} == {(False, 0, 0x1111_1020),
                                                          (True, 15, None)}


def test_stale_entry_denying_access_faults():
    rig = setup()
    leaf = rig.map(rig.s, VA, pte(0x11111, **UR))
    rig.iommu.translate(5, VA, "read")
    rig.w64(leaf, pte(0x11111, **URW))                        # upgrade to writable
    allowed = rig.iommu.allowed(5, VA, "write")
    assert {(r.fault, r.cause) for r in allowed} == {(True, 15), (False, 0)}


def test_superpage_entry_covers_whole_range():
    rig = setup()
    leaf = rig.map(rig.s, 0x4020_0000, pte(0x80200, **URW), level=1)
    rig.iommu.translate(5, 0x4020_0000, "read")
    rig.w64(leaf, 0)
    # Another 4 KiB page of the same 2 MiB entry may still hit.
    assert pas(rig.iommu.allowed(5, 0x403F_F000, "read")) == {0x803F_F000}
    # AV=1 anywhere inside the superpage covers the entry (Privileged spec SFENCE.VMA).
    rig.q.submit(iotinval_vma(av=1, addr=0x4030_0000), iofence_c())
    assert pas(rig.iommu.allowed(5, 0x403F_F000, "read")) == set()


@pytest.mark.parametrize("cmd, stays", [
    (iotinval_vma(), False),                                   # all host spaces
    (iotinval_vma(pscv=1, pscid=7), False),
    (iotinval_vma(pscv=1, pscid=8), True),                     # other address space
    (iotinval_vma(av=1, addr=VA), False),
    (iotinval_vma(av=1, addr=VA + 0x1000), True),              # other page
    (iotinval_vma(pscv=1, pscid=7, av=1, addr=VA), False),
    (iotinval_vma(gv=1, gscid=0), True),                       # VM entries only
    (iotinval_gvma(), True),                                   # second stage only
    (iodir_inval_ddt(), True),                                 # directory cache only
])
def test_vma_operands(cmd, stays):
    rig = setup()
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    rig.iommu.translate(5, VA, "read")
    rig.w64(leaf, pte(0x22222, **URW))
    rig.q.submit(cmd, iofence_c())
    expected = {0x1111_1000, 0x2222_2000} if stays else {0x2222_2000}
    assert pas(rig.iommu.allowed(5, VA, "read")) == expected


@pytest.mark.parametrize("cmd, stays", [
    (iotinval_vma(), False),                                   # GV=AV=PSCV=0: global too
    (iotinval_vma(pscv=1, pscid=7), True),                     # global: spared by PSCV
    (iotinval_vma(pscv=1, pscid=7, av=1, addr=VA), True),
    (iotinval_vma(av=1, addr=VA), False),
])
def test_global_entries(cmd, stays):
    rig = setup()
    # G on the non-leaf at level 2 makes everything below it global.
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    top = (rig.s << 12) + 8
    rig.w64(top, rig.mem.read64(top) | 1 << 5)
    rig.iommu.translate(5, VA, "read")
    rig.w64(leaf, pte(0x22222, **URW))
    rig.q.submit(cmd, iofence_c())
    expected = {0x1111_1000, 0x2222_2000} if stays else {0x2222_2000}
    assert pas(rig.iommu.allowed(5, VA, "read")) == expected


def test_old_dc_allowed_until_iodir_is_fenced():
    rig = setup()
    rig.map(rig.s, VA, pte(0x11111, **URW))
    rig.iommu.translate(5, VA, "read")
    s2 = rig.page()
    rig.map(s2, VA, pte(0x33333, **URW))
    # New DC for device 5: another table and another PSCID.
    rig.write_dc(rig.root, 5, dc_words(ta=ta(8), fsc=iosatp(8, s2)))
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x1111_1000, 0x3333_3000}
    rig.q.submit(iodir_inval_ddt(dv=1, did=6), iofence_c())   # another device
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x1111_1000, 0x3333_3000}
    rig.q.submit(iodir_inval_ddt(dv=1, did=5))
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x1111_1000, 0x3333_3000}
    rig.q.submit(iofence_c())
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x3333_3000}


def test_old_dc_walks_current_tables():
    rig = setup()
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    rig.iommu.translate(5, 0x9000, "read")                   # locates the DC, faults
    rig.write_dc(rig.root, 5, dc_words(tc=0))                # DC now invalid
    rig.w64(leaf, pte(0x44444, **URW))
    allowed = rig.iommu.allowed(5, VA, "read")
    assert {(r.fault, r.cause, r.pa) for r in allowed} == {(True, 258, None),
                                                          (False, 0, 0x4444_4000)}


def test_iodir_dv0_covers_every_device():
    rig = setup()
    rig.iommu.translate(5, 0x9000, "read")
    rig.write_dc(rig.root, 5, dc_words(tc=0))
    rig.q.submit(iodir_inval_ddt(), iofence_c())
    assert {r.cause for r in rig.iommu.allowed(5, VA, "read")} == {258}


def test_fence_that_faults_does_not_complete():
    rig = setup()
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    rig.iommu.translate(5, VA, "read")
    rig.w64(leaf, pte(0x22222, **URW))
    rig.mem.inject_fault(0x7000, 4)
    rig.q.submit(iotinval_vma(), iofence_c(av=1, addr=0x7000, data=1))
    assert pas(rig.iommu.allowed(5, VA, "read")) == {0x1111_1000, 0x2222_2000}


def test_off_and_bare_consult_no_cache():
    rig = setup()
    rig.map(rig.s, VA, pte(0x11111, **URW))
    rig.iommu.translate(5, VA, "read")
    rig.set_ddtp(IommuMode.OFF, rig.root)
    assert {r.cause for r in rig.iommu.allowed(5, VA, "read")} == {256}
    rig.set_ddtp(IommuMode.BARE, 0)
    assert pas(rig.iommu.allowed(5, VA, "read")) == {VA}


# -- second stage -----------------------------------------------------------------------

def setup2():
    rig = Rig(FULL)
    rig.root, rig.g = rig.page(), rig.page(4, align=4)
    rig.g_leaf = rig.map(rig.g, GIB, pte(0x40000, **URW), level=2, x4=True)   # GPA 1G -> 1G
    rig.write_dc(rig.root, 5, dc_words(iohgatp=iohgatp(8, rig.g, gscid=3)))
    rig.set_ddtp(IommuMode.LVL1, rig.root)
    rig.q = Queues(rig)
    return rig


@pytest.mark.parametrize("cmd, stays", [
    (iotinval_gvma(), False),
    (iotinval_gvma(gv=1, gscid=3), False),
    (iotinval_gvma(gv=1, gscid=4), True),
    (iotinval_gvma(gv=1, gscid=3, av=1, addr=GIB + 0x3FFF_F000), False),   # same G leaf
    (iotinval_gvma(gv=1, gscid=3, av=1, addr=2 * GIB), True),
    (iotinval_vma(gv=1, gscid=3), True),           # first-stage entries only
])
def test_gvma_operands(cmd, stays):
    rig = setup2()
    rig.iommu.translate(5, GIB + 0x5000, "read")
    rig.w64(rig.g_leaf, pte(0x80000, **URW))                 # GPA 1G -> SPA 2G now
    rig.q.submit(cmd, iofence_c())
    expected = {GIB + 0x5000, 2 * GIB + 0x5000} if stays else {2 * GIB + 0x5000}
    assert pas(rig.iommu.allowed(5, GIB + 0x5000, "read")) == expected


def test_vma_gv_covers_vm_first_stage_entries():
    rig = setup2()
    # First-stage tables in guest memory at GPA = SPA 1 GiB + 1 MiB (identity G leaf).
    tables = GIB + 0x10_0000
    rig.write_dc(rig.root, 6, dc_words(iohgatp=iohgatp(8, rig.g, gscid=3), ta=ta(7),
                                       fsc=iosatp(8, tables >> 12)))
    rig._next = tables
    leaf = rig.map(tables >> 12, VA, pte(0x40011, **URW))
    rig.iommu.translate(6, VA, "read")
    rig.w64(leaf, pte(0x40022, **URW))
    rig.q.submit(iotinval_vma(pscv=1, pscid=7), iofence_c())   # host space 7: not this
    assert pas(rig.iommu.allowed(6, VA, "read")) == {0x4001_1000, 0x4002_2000}
    rig.q.submit(iotinval_vma(gv=1, gscid=3, pscv=1, pscid=7), iofence_c())
    assert pas(rig.iommu.allowed(6, VA, "read")) == {0x4002_2000}


def test_cache_mode_translate_uses_stale_entries():
    rig = setup(cache=True)
    leaf = rig.map(rig.s, VA, pte(0x11111, **URW))
    assert rig.iommu.translate(5, VA, "read").pa == 0x1111_1000
    rig.w64(leaf, pte(0x22222, **URW))
    assert rig.iommu.translate(5, VA, "read").pa == 0x1111_1000   # a missing invalidation
    rig.q.submit(iotinval_vma(pscv=1, pscid=7, av=1, addr=VA))
    assert rig.iommu.translate(5, VA, "read").pa == 0x2222_2000


def test_cache_mode_dc_is_cached():
    rig = setup(cache=True)
    rig.iommu.translate(5, VA, "read")
    rig.write_dc(rig.root, 5, dc_words(tc=0))
    assert rig.iommu.translate(5, VA, "read").cause == 13        # old DC still used
    rig.q.submit(iodir_inval_ddt(dv=1, did=5))
    assert rig.iommu.translate(5, VA, "read").cause == 258
