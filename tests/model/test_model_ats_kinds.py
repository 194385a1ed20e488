"""Translated requests and ATS Translation Requests in IommuModel.translate (kind=; reference
N.0, N.6.1-N.6.3, D.4; docs/ats-pri.md "Translation pipeline").

Expected values worked by hand:

* Bare mode, ``DC.tc.EN_ATS=0`` (tc bit 1), a PASID with ``PDTV=0``: 260 (UR) with a record;
  TTYP 5/6/7 for a Translated execute/read/write, 8 for an ATS Translation Request.
* Translated, ``T2GPA=0`` (tc bit 3): the IOVA is the SPA, no walk.
* Translated, ``T2GPA=1``: first stage Bare, the second stage with its faults (21/23 with
  ``iotval2`` = GPA).
* ATS Translation Request: the completion of N.6.2: R of both stages, W of both stages with
  D=1 and NW=0, Exe only with a PASID and Execute Requested and R, Priv = Privilege Mode
  Requested with a PASID, Global = first-stage G with a PASID, the size the smaller of the two
  stages' leaves, the GPA with T2GPA=1; Success with R=W=0 and no record for page and
  guest-page faults, 266 and U/SUM mismatches; CA (a fault with its record) for access
  faults.

Fault records: dw0 = CAUSE 11:0 | PID 31:12 | PV 32 | PRIV 33 | TTYP 39:34 | DID 63:40,
iotval the IOVA, iotval2 the GPA >> 2 << 2.
"""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import TC
from iogate.hdl.regs import IommuMode

from iogate.cosim.model import Result
from model_tables import UR, URW, URWX, iohgatp, pte, ta
from msi_tables import MSI, MSI_GPA, basic_pte, msi_rig, write_msi_pte
from pdt_tables import DEVICE, PdtRig, fsc, pc_ta, pdtp, tc

ATS = Config.process().replace(ats=True, t2gpa=True)
#: Config.msi() without MRIFs (Config refuses ats with msi_mrif for now).
MSI_ATS = MSI.replace(msi_mrif=False, ats=True, t2gpa=True)
GIB = 1 << 30
VA = 0x1000_2345
PID = 0x21
NONE = Result(fault=False, size_log2=12)         # Success, R=W=0


def done(ppn, size_log2=12, *, r=True, w=True, x=False, g=False, priv=False, u=False):
    return Result(fault=False, ppn=ppn, r=r, w=w, x=x, g=g, priv=priv, u=u,
                  size_log2=size_log2)


def one_stage(tc_=None, config=ATS, **kw):
    """A 1LVL DDT, queues, DEVICE with first stage Sv39 (PDTV=0) at ``rig.s``."""
    rig = PdtRig(config, **kw)
    rig.s = rig.page()
    rig.set_dc(tc_=tc(en_ats=1) if tc_ is None else tc_, ta=ta(7), fsc_=fsc(8, rig.s))
    return rig


def ats(rig, iova=VA, access="read", **kw):
    return rig.translate(iova, access, kind="ats", **kw)


def test_4k_leaf():
    rig = one_stage()
    rig.map(rig.s, VA, pte(0x48765, **URW))
    assert ats(rig) == done(0x48765)
    assert rig.q.fqt == 0


def test_no_write_clears_w():
    rig = one_stage()
    rig.map(rig.s, VA, pte(0x48765, **URW))
    assert ats(rig, nw=True) == done(0x48765, w=False)


@pytest.mark.parametrize("flags, r, w", [
    (UR, True, False),                                   # read-only page
    (dict(v=1, r=1, w=1, u=1, a=1), True, False),        # D=0: W needs D (decision ats-1)
])
def test_partial_permissions(flags, r, w):
    rig = one_stage()
    rig.map(rig.s, VA, pte(0x48765, **flags))
    assert ats(rig) == done(0x48765, r=r, w=w)


def test_execute_without_pasid_is_not_granted():
    rig = one_stage()
    rig.map(rig.s, VA, pte(0x48765, **URWX))
    assert ats(rig, access="execute") == done(0x48765)


@pytest.mark.parametrize("level, va, leaf_ppn, iova, ppn, size_log2", [
    (1, 0x4000_0000, 0x80200, 0x4012_3456, 0x80323, 21),          # 2 MiB
    (2, 0x8000_0000, 0x40000, 0x8765_4321, 0x47654, 30),          # 1 GiB
])
def test_superpage_size(level, va, leaf_ppn, iova, ppn, size_log2):
    rig = one_stage()
    rig.map(rig.s, va, pte(leaf_ppn, **URW), level=level)
    assert ats(rig, iova) == done(ppn, size_log2)


@pytest.mark.parametrize("leaf", [
    None,                                                # not mapped: 13
    pte(0x48765, v=1, r=1, w=1, u=1),                    # A=0: 13
    pte(0x48765, v=1, r=1, w=1, a=1, d=1),               # U=0 for a User request: 13
    pte(0x48765, v=1, x=1, u=1, a=1),                    # execute-only: no R, no Exe
])
def test_page_faults_answer_r_w_0_without_record(leaf):
    rig = one_stage()
    if leaf is not None:
        rig.map(rig.s, VA, leaf)
    assert ats(rig) == NONE
    assert ats(rig, access="execute") == NONE
    assert rig.q.fqt == 0


def test_access_fault_is_ca_with_a_record():
    rig = one_stage()
    rig.mem.inject_fault(rig.s << 12, 4096)              # the root table
    r = ats(rig)
    assert r.fault and r.cause == 5                      # walked as a read
    assert rig.record() == dict(cause=5, pid=0, pv=0, priv=0, ttyp=8, did=DEVICE,
                                iotval=VA, iotval2=0)


@pytest.mark.parametrize("kind, access, ttyp", [
    ("ats", "read", 8), ("ats", "execute", 8), ("translated", "read", 6),
    ("translated", "write", 7), ("translated", "execute", 5)])
def test_bare_mode_refuses(kind, access, ttyp):
    rig = one_stage()
    rig.set_ddtp(IommuMode.BARE, 0)
    r = rig.translate(VA, access, kind=kind)
    assert r.fault and r.cause == 260
    assert rig.record() == dict(cause=260, pid=0, pv=0, priv=0, ttyp=ttyp, did=DEVICE,
                                iotval=VA, iotval2=0)
    assert rig.translate(VA, access) == Result(fault=False, ppn=VA >> 12, r=True, w=True,
                                               x=True)


@pytest.mark.parametrize("kind, access, ttyp", [
    ("ats", "read", 8), ("translated", "read", 6), ("translated", "write", 7)])
@pytest.mark.parametrize("dtf", [0, 1])
def test_en_ats_0_refuses(kind, access, ttyp, dtf):
    rig = one_stage(tc_=tc(dtf=dtf))
    rig.map(rig.s, VA, pte(0x48765, **URW))
    r = rig.translate(VA, access, kind=kind)
    assert r.fault and r.cause == 260
    assert rig.q.fqt == 1 - dtf
    if not dtf:
        assert rig.record()["ttyp"] == ttyp
    assert not rig.translate(VA, access).fault          # Untranslated still works


def test_off_is_256_for_every_kind():
    rig = one_stage()
    rig.set_ddtp(IommuMode.OFF, 0)
    for kind in ("untranslated", "translated", "ats"):
        assert rig.translate(VA, "read", kind=kind).cause == 256


@pytest.mark.parametrize("access", ["read", "write", "execute"])
def test_translated_without_t2gpa_is_the_spa(access):
    rig = one_stage()                                     # nothing mapped at VA
    assert rig.translate(VA, access, kind="translated") == Result(
        fault=False, ppn=VA >> 12, r=True, w=True, x=True)
    assert rig.q.fqt == 0


def test_translated_beyond_pas_is_an_access_fault():
    rig = one_stage()
    r = rig.translate(1 << 56, "write", kind="translated")
    assert r.fault and r.cause == 7 and rig.record()["ttyp"] == 7


def test_translated_pasid_with_pdtv_0_is_260():
    rig = one_stage()
    assert rig.translate(VA, "read", kind="translated", process_id=3).cause == 260


# -- two stages: the G-stage maps GPA 1 GiB..2 GiB onto SPA 0..1 GiB (one 1 GiB leaf) -------

def two_stage(t2gpa=1, g_flags=URWX):
    rig = PdtRig(ATS)
    rig.g = rig.page(4, align=4)
    rig.map(rig.g, GIB, pte(0, **g_flags), level=2, levels=3, x4=True)
    rig.s = rig.page()
    rig.set_dc(tc_=tc(en_ats=1, t2gpa=t2gpa), iohgatp=iohgatp(8, rig.g, gscid=3), ta=ta(7),
               fsc_=fsc(8, (rig.s << 12) + GIB >> 12))
    rig.tr = lambda gpa: gpa - GIB
    return rig


def vs_map(rig, va, leaf, level=0):
    """Map ``va`` in the first stage, whose tables the rig allocates at SPA p = GPA p+1 GiB."""
    a = rig.s << 12
    for i in range(2, level - 1, -1):
        address = a + ((va >> (12 + 9 * i)) & 0x1FF) * 8
        if i == level:
            rig.w64(address, leaf)
            return
        entry = rig.mem.read64(address)
        if not entry & 1:
            p = rig.page()
            entry = pte(p + (GIB >> 12), v=1)
            rig.w64(address, entry)
        a = ((entry >> 10) - (GIB >> 12)) << 12


def test_translated_with_t2gpa_runs_the_second_stage():
    rig = two_stage()
    r = rig.translate(0x4876_5345, "write", kind="translated")
    assert r == Result(fault=False, ppn=0x08765, r=True, w=True, x=True) and r.offset == 0x345


@pytest.mark.parametrize("access, cause, ttyp", [("read", 21, 6), ("write", 23, 7),
                                                 ("execute", 20, 5)])
def test_translated_with_t2gpa_faults(access, cause, ttyp):
    rig = two_stage()
    r = rig.translate(0x9000_0124, access, kind="translated")      # GPA not mapped
    assert r.fault and r.cause == cause
    assert rig.record() == dict(cause=cause, pid=0, pv=0, priv=0, ttyp=ttyp, did=DEVICE,
                                iotval=0x9000_0124, iotval2=0x9000_0124)


@pytest.mark.parametrize("t2gpa, ppn", [(1, 0x48765), (0, 0x08765)])
def test_ats_two_stages_gpa_with_t2gpa(t2gpa, ppn):
    rig = two_stage(t2gpa)
    vs_map(rig, VA, pte(0x48765, **URW))                  # GPA page 0x48765
    assert ats(rig) == done(ppn)


def test_ats_size_is_the_smaller_leaf():
    rig = two_stage(0)
    vs_map(rig, 0x4000_0000, pte(0x48000, **URW), level=1)   # 2 MiB over the 1 GiB leaf
    assert ats(rig, 0x4012_3456) == done(0x08123, 21)


def test_ats_w_needs_both_stages():
    rig = two_stage(0, g_flags=UR)
    vs_map(rig, VA, pte(0x48765, **URW))
    assert ats(rig) == done(0x08765, w=False)


def test_ats_guest_page_fault_is_r_w_0_without_record():
    rig = two_stage()
    vs_map(rig, VA, pte(0x90000, **URW))                  # GPA beyond the G-stage mapping
    assert ats(rig) == NONE and rig.q.fqt == 0


# -- with a PASID: PDTV=1, PD8, the PC of PID 0x21 ---------------------------------------

def with_pasid(ens=1, sum_=0, pc_valid=1):
    rig = PdtRig(ATS)
    pdt, rig.s = rig.page(), rig.page()
    rig.set_dc(tc_=tc(en_ats=1, pdtv=1), fsc_=pdtp(1, pdt))
    rig.write_pc(1, pdt, PID, pc_ta(pscid=9, ens=ens, sum_=sum_, v=pc_valid), fsc(8, rig.s))
    return rig


def test_global_and_priv_with_a_pasid():
    rig = with_pasid()
    rig.map(rig.s, VA, pte(0x48765, g=1, **URWX))
    assert ats(rig, process_id=PID) == done(0x48765, g=True)
    assert ats(rig, access="execute", process_id=PID) == done(0x48765, x=True, g=True)


def test_supervisor_page_with_execute():
    rig = with_pasid()
    rig.map(rig.s, VA, pte(0x48765, v=1, r=1, w=1, x=1, a=1, d=1))  # U=0
    assert ats(rig, access="execute", process_id=PID, priv=True) == done(
        0x48765, x=True, priv=True)
    assert ats(rig, access="execute", process_id=PID) == NONE       # User on U=0


@pytest.mark.parametrize("sum_, access, expected", [
    (0, "read", NONE), (1, "read", done(0x48765, priv=True)),
    (0, "execute", NONE), (1, "execute", NONE)])
def test_supervisor_on_a_user_page(sum_, access, expected):
    # U=1: a supervisor request needs SUM for R/W; read-for-execute is a privilege mismatch
    # whatever SUM says (N.1.6), hence R=W=0.
    rig = with_pasid(sum_=sum_)
    rig.map(rig.s, VA, pte(0x48765, **URWX))
    assert ats(rig, access=access, process_id=PID, priv=True) == expected
    assert rig.q.fqt == 0


def test_pc_not_valid_is_r_w_0_without_record():
    rig = with_pasid(pc_valid=0)
    assert ats(rig, process_id=PID) == NONE and rig.q.fqt == 0


def test_supervisor_with_ens_0_is_ur_with_record():
    rig = with_pasid(ens=0)
    r = ats(rig, process_id=PID, priv=True)
    assert r.fault and r.cause == 260
    assert rig.record() == dict(cause=260, pid=PID, pv=1, priv=1, ttyp=8, did=DEVICE,
                                iotval=VA, iotval2=0)


# -- caching, counting, arguments ----------------------------------------------------------

def test_completion_fills_the_iotlb():
    rig = one_stage(cache=True)
    leaf = rig.map(rig.s, VA, pte(0x48765, **URW))
    assert ats(rig) == done(0x48765)
    rig.w64(leaf, pte(0x11111, **URW))                    # no IOTINVAL: the entry stays
    assert ats(rig) == done(0x48765)
    assert rig.translate(VA, "write").ppn == 0x48765


def test_hpm_counts_each_kind():
    rig = one_stage(config=ATS.replace(hpm_counters=3))
    m = rig.iommu
    m.mmio_write(0x05C, 4, 0)                             # iocountinh: nothing inhibited
    for x, event in ((1, 1), (2, 2), (3, 3)):             # iohpmevtX at 0x160 + 8(X-1)
        m.mmio_write(0x160 + 8 * (x - 1), 8, event)
    rig.translate(VA, "read")
    for _ in range(2):
        rig.translate(VA, "read", kind="translated")
    for _ in range(3):
        ats(rig)
    # iohpmctrX at 0x068 + 8(X-1).
    assert [m.mmio_read(0x068 + 8 * k, 8) for k in range(3)] == [1, 2, 3]


@pytest.mark.parametrize("kw, message", [
    (dict(kind="atc"), "kind must be one of 'untranslated', 'translated', 'ats', not 'atc'"),
    (dict(kind="ats", access="write"), "an ATS Translation Request asks for access 'read' or"),
    (dict(nw=True), "nw \\(No Write\\) belongs to kind 'ats', not 'untranslated'"),
    (dict(kind="translated", nw=True), "nw \\(No Write\\) belongs to kind 'ats'"),
])
def test_argument_checks(kw, message):
    rig = one_stage()
    access = kw.pop("access", "read")
    with pytest.raises(ValueError, match=message):
        rig.translate(VA, access, **kw)


@pytest.mark.parametrize("kind", ["translated", "ats"])
def test_kinds_need_ats(kind):
    rig = one_stage(config=Config.process(), tc_=tc())
    with pytest.raises(ValueError, match=f"kind '{kind}' needs Config.ats"):
        rig.translate(VA, "read", kind=kind)


# -- MSI pages (reference N.4.4 "ATS TR to an MSI page"): msi_tables' standard world --------

@pytest.mark.parametrize("t2gpa, ppn", [(0, 0x77777), (1, 0x28000)])
def test_basic_msi_page(t2gpa, ppn):
    # Basic mode: R=W=1, Exe=0, U=0, Global=0, 4 KiB; the MSI PTE's PPN, or the GPA.
    rig = msi_rig(MSI_ATS, tc=bits.pack(TC, v=1, en_ats=1, t2gpa=t2gpa))
    write_msi_pte(rig, rig.msi_pt, 0, basic_pte(0x77777))
    assert rig.iommu.translate(5, MSI_GPA + 0x10, "read", kind="ats") == done(ppn)


def test_msi_pte_not_valid_is_r_w_0():
    rig = msi_rig(MSI_ATS, tc=bits.pack(TC, v=1, en_ats=1))
    assert rig.iommu.translate(5, MSI_GPA, "read", kind="ats") == NONE        # 262
