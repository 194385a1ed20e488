"""IommuModel.allowed with request kinds (spec "Guidelines for invalidations"; reference N.6.2,
N.6.3): the answers a Translated request or an ATS Translation Request may get while an
invalidation is not yet fenced.

Expected completions are worked by hand as in test_model_ats_kinds (N.6.2: R/W of the leaf,
W only with D=1, the leaf's page and size); the stale ones are what the tables held before a
change that no IOTINVAL/IODIR + IOFENCE.C has yet covered.
"""

import pytest

from iogate.hdl import Config

from iogate.cosim.model import Result
from model_tables import (
    URW,
    iodir_inval_ddt,
    iofence_c,
    iohgatp,
    iotinval_gvma,
    iotinval_vma,
    pte,
    ta,
)
from pdt_tables import PdtRig, fsc, tc

ATS = Config.process().replace(ats=True, t2gpa=True)
GIB = 1 << 30
VA = 0x1000_2345
NONE = Result(fault=False, size_log2=12)
UR_260 = Result(fault=True, cause=260)


def done(ppn, size_log2=12, *, r=True, w=True):
    return Result(fault=False, ppn=ppn, r=r, w=w, size_log2=size_log2)


def one_stage(tc_=None):
    rig = PdtRig(ATS)
    rig.s = rig.page()
    rig.set_dc(tc_=tc(en_ats=1) if tc_ is None else tc_, ta=ta(7), fsc_=fsc(8, rig.s))
    return rig


def allowed(rig, iova=VA, access="read", **kw):
    return rig.iommu.allowed(5, iova, access, **kw)


def test_matches_translate_without_caches():
    rig = one_stage()
    rig.map(rig.s, VA, pte(0x48765, **URW))
    assert allowed(rig, kind="ats") == {done(0x48765)} == {rig.translate(VA, kind="ats")}
    assert allowed(rig, 0x5000_0000, kind="ats") == {NONE}                  # unmapped
    assert allowed(rig, kind="translated") == {Result(fault=False, ppn=VA >> 12, r=True,
                                                      w=True, x=True)}


def test_stale_completion_until_the_fence():
    rig = one_stage()
    leaf = rig.map(rig.s, VA, pte(0x48765, **URW))
    allowed(rig, kind="ats")                              # a cache may now hold it
    rig.w64(leaf, pte(0x11111, **URW))
    assert allowed(rig, kind="ats") == {done(0x48765), done(0x11111)}
    rig.q.submit(iotinval_vma(), iofence_c())
    assert allowed(rig, kind="ats") == {done(0x11111)}


def test_unmapped_now_gives_r_w_0_beside_the_stale_one():
    rig = one_stage()
    leaf = rig.map(rig.s, VA, pte(0x48765, **URW))
    allowed(rig, kind="ats", nw=True)
    rig.w64(leaf, 0)
    assert allowed(rig, kind="ats", nw=True) == {done(0x48765, w=False), NONE}


def test_stale_dc_with_en_ats():
    rig = one_stage()
    rig.map(rig.s, VA, pte(0x48765, **URW))
    allowed(rig, kind="ats")
    rig.set_dc(tc_=tc(), ta=ta(7), fsc_=fsc(8, rig.s))    # EN_ATS=0 now
    assert allowed(rig, kind="ats") == {done(0x48765), UR_260}
    rig.q.submit(iodir_inval_ddt(), iotinval_vma(), iofence_c())
    assert allowed(rig, kind="ats") == {UR_260}


@pytest.mark.parametrize("kind", ["ats", "translated"])
def test_bare_mode(kind):
    rig = one_stage()
    rig.set_ddtp(1, 0)
    assert allowed(rig, kind=kind) == {UR_260}


def test_translated_with_t2gpa_stale_second_stage():
    # G-stage: GPA 1 GiB..2 GiB onto SPA 0..1 GiB, one 1 GiB leaf; then moved to SPA 1 GiB.
    rig = PdtRig(ATS)
    g = rig.page(4, align=4)
    leaf = rig.map(g, GIB, pte(0, **URW), level=2, levels=3, x4=True)
    rig.set_dc(tc_=tc(en_ats=1, t2gpa=1), iohgatp=iohgatp(8, g, gscid=3))
    gpa = 0x4876_5345
    first = Result(fault=False, ppn=0x08765, r=True, w=True)
    assert allowed(rig, gpa, "write", kind="translated") == {first}
    rig.w64(leaf, pte(0x40000, **URW))
    assert allowed(rig, gpa, "write", kind="translated") == {
        first, Result(fault=False, ppn=0x48765, r=True, w=True)}
    rig.q.submit(iotinval_gvma(), iofence_c())
    assert allowed(rig, gpa, "write", kind="translated") == {
        Result(fault=False, ppn=0x48765, r=True, w=True)}


def test_kind_checks():
    rig = one_stage()
    with pytest.raises(ValueError, match="nw \\(No Write\\) belongs to kind 'ats'"):
        allowed(rig, nw=True)
    with pytest.raises(ValueError, match="an ATS Translation Request asks for access"):
        allowed(rig, access="write", kind="ats")


@pytest.mark.parametrize("kind, access, ttyp", [
    ("ats", "read", 8), ("translated", "write", 7), ("untranslated", "read", 2)])
def test_report_fault_takes_the_kinds_ttyp(kind, access, ttyp):
    rig = one_stage()
    rig.iommu.report_fault(5, VA, access, 5, kind=kind)
    assert rig.record() == dict(cause=5, pid=0, pv=0, priv=0, ttyp=ttyp, did=5, iotval=VA,
                                iotval2=0)
