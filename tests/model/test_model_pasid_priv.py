"""Supervisor requests: ENS, SUM and the U bit (spec "Process to translate an IOVA" steps
15-17; reference N.1.6, "Privilege checks"). The table below is the reference's, typed in by
hand: for each (privilege, access, leaf U, SUM) the expected outcome."""

import itertools

import pytest

from iogate.hdl.formats import Cause
from iogate.hdl.port import Access
from iogate.hdl.regs import Offset

from iogate.cosim.check.request import TranslationRequest, TranslationResponse
from iogate.cosim.model.explain import explain
from model_tables import pte
from pdt_tables import DEVICE, PdtRig, fsc, pc_ta, pdtp, tc

IOVA = 0x7000_0000
PID = 0x42
PAGE_FAULT = {"read": 13, "write": 15, "execute": 12}


def expected(priv, access, u, sum_):
    """Reference N.1.6's table: True for ok, else the page-fault cause."""
    if not priv:
        ok = u
    elif not u:
        ok = True
    elif access == "execute":
        ok = False                                  # regardless of SUM
    else:
        ok = sum_
    return True if ok else PAGE_FAULT[access]


def rig_for(u, sum_, ens=1, cache=False, dpe=0):
    rig = PdtRig(cache=cache)
    root, s1 = rig.page(), rig.page()
    rig.map(s1, IOVA, pte(0x9_9999, v=1, r=1, w=1, x=1, u=u, a=1, d=1))
    rig.set_dc(tc_=tc(pdtv=1, dpe=dpe), fsc_=pdtp(1, root))
    rig.write_pc(1, root, PID, pc_ta(pscid=1, ens=ens, sum_=sum_), fsc(8, s1))
    return rig


@pytest.mark.parametrize("priv,access,u,sum_", list(itertools.product(
    (False, True), ("read", "write", "execute"), (0, 1), (0, 1))))
@pytest.mark.parametrize("cache", [False, True])
def test_privilege_table(priv, access, u, sum_, cache):
    rig = rig_for(u, sum_, cache=cache)
    want = expected(priv, access, u, sum_)
    # With cache=True a second request answers from the IOTLB: the U check must hold
    # there too (the entry was filled by a request of the other privilege).
    if cache:
        rig.translate(IOVA, "read", process_id=PID, priv=not priv)
    r = rig.translate(IOVA, access, process_id=PID, priv=priv)
    if want is True:
        assert not r.fault
    else:
        assert r.cause == want
        rec = rig.record(rig.q.fqt - 1)
        assert (rec["pv"], rec["pid"], rec["priv"]) == (1, PID, int(priv))


@pytest.mark.parametrize("u,sum_", [(0, 0), (1, 0), (1, 1)])
def test_reported_permissions_follow_the_privilege(u, sum_):
    """The model's decision: R/W/X in the answer are what this request may do (a supervisor
    request on a U=1 page never gets X, and R/W only with SUM)."""
    rig = rig_for(u, sum_)
    results = {(priv, a): rig.translate(IOVA, a, process_id=PID, priv=priv)
               for priv in (False, True) for a in ("read", "write", "execute")}
    for (priv, _access), r in results.items():
        if r.fault:
            continue
        perms = {a: expected(priv, a, u, sum_) is True for a in ("read", "write", "execute")}
        assert (r.r, r.w, r.x) == (perms["read"], perms["write"], perms["execute"])


def test_supervisor_with_ens_0_is_260():
    """Step 15: ENS=0 refuses supervisor requests (after GET_PC), with the record's PRIV=1."""
    rig = rig_for(1, 0, ens=0)
    assert rig.translate(IOVA, "read", process_id=PID, priv=True).cause == 260
    assert rig.record() == dict(cause=260, pid=PID, pv=1, priv=1, ttyp=2, did=DEVICE,
                                iotval=IOVA, iotval2=0)
    assert not rig.translate(IOVA, "read", process_id=PID).fault


def test_sum_ens_do_not_apply_without_a_pc():
    """Reference N.9 P15 and the briefing: with DPE=1 and no PASID the request is User even
    though PC[0] has ENS=SUM=1; a U=0 page faults."""
    rig = PdtRig()
    root, s1 = rig.page(), rig.page()
    rig.map(s1, IOVA, pte(0x9_9999, v=1, r=1, w=1, a=1, d=1))     # U=0
    rig.set_dc(tc_=tc(pdtv=1, dpe=1), fsc_=pdtp(1, root))
    rig.write_pc(1, root, 0, pc_ta(pscid=1, ens=1, sum_=1), fsc(8, s1))
    assert rig.translate(IOVA, "read").cause == Cause.READ_PAGE_FAULT
    assert not rig.translate(IOVA, "read", process_id=0, priv=True).fault


def test_exec_without_pasid_is_accepted():
    """Reference N.1.6 "Exec without a PASID": accepted, as libiommu does."""
    r = PdtRig()
    r.set_dc()
    assert not r.translate(0x1000, "execute").fault
    rig = PdtRig()
    root, s1 = rig.page(), rig.page()
    rig.map(s1, IOVA, pte(0x9_9999, v=1, x=1, u=1, a=1))
    rig.set_dc(tc_=tc(pdtv=1, dpe=1), fsc_=pdtp(1, root))
    rig.write_pc(1, root, 0, pc_ta(pscid=1), fsc(8, s1))
    assert rig.translate(IOVA, "execute").ppn == 0x9_9999


def test_priv_without_process_id_is_refused():
    rig = PdtRig()
    with pytest.raises(ValueError, match="priv"):
        rig.translate(0, process_id=None, priv=True)
    with pytest.raises(ValueError, match="process_id"):
        rig.translate(0, process_id=1 << 20)


def test_debug_interface_carries_pv_pid_priv():
    """Spec "Debug support": tr_req_ctl PV (bit 32), PID (31:12), Priv (bit 1) go through the
    same path: a supervisor read of a U=1 page without SUM faults; with a U=0 page it works."""
    go, nw = 1 << 0, 1 << 3
    for u, fault in ((1, 1), (0, 0)):
        rig = rig_for(u, 0)
        ctl = go | nw | 1 << 1 | PID << 12 | 1 << 32 | DEVICE << 40
        rig.iommu.mmio_write(Offset.TR_REQ_IOVA, 8, IOVA)
        rig.iommu.mmio_write(Offset.TR_REQ_CTL, 8, ctl)
        resp = rig.iommu.mmio_read(Offset.TR_RESPONSE, 8)
        assert resp & 1 == fault
        if fault:
            assert rig.record() == dict(cause=13, pid=PID, pv=1, priv=1, ttyp=2, did=DEVICE,
                                        iotval=IOVA, iotval2=0)
        else:
            assert resp >> 10 == 0x9_9999


def test_explain_names_the_process_and_the_pdtp():
    rig = rig_for(1, 0)
    req = TranslationRequest(DEVICE, IOVA, Access.READ, process_id=PID, priv=True)
    got = TranslationResponse(fault=False, cause=0, ppn=1, r=1, w=0, x=0, pbmt=0, hit=False,
                              pa=0x1000)
    text = explain(rig.iommu, req, rig.iommu.allowed(DEVICE, IOVA, "read", process_id=PID,
                                                     priv=True), got)
    assert text.splitlines()[0].endswith(f"pid={PID:#x} S")
    assert "pdtp: PD8" in text
