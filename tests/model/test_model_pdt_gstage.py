"""GET_PC through the second stage (reference N.1.5, N.9 P2/P2a): every PDT entry's GPA is
translated by the G-stage as an implicit read; a guest-page fault there is 20/21/23 by the
original access with iotval2 = the entry's GPA [63:2] | 1; an access fault is 265."""

import pytest

from model_tables import iodir_inval_ddt, iofence_c, iohgatp, iotinval_gvma, pte
from pdt_tables import PdtRig, fsc, iodir_inval_pdt, pc_ta, pdtp, tc

IOVA = 0x4000_1000
GUEST_PAGE_FAULT = {"read": 21, "write": 23, "execute": 20}
G_LEAF = dict(v=1, r=1, w=1, x=1, u=1, a=1, d=1)


class GRig(PdtRig):
    """Guest-physical PDT and first-stage tables, identity-mapped page by page by an
    Sv39x4 G-stage (so a GPA of the tables is also its SPA)."""

    def __init__(self, mode, pid, **kw):
        super().__init__(**kw)
        self.g = self.page(4, align=4)               # 16 KiB root, 16 KiB aligned
        self.gleaf = {}
        self.root = self.page()
        s1 = self.page()
        # Build the guest's tables first, then map each of their pages in the G-stage.
        self.entries = self.pdt_entry_addresses(mode, self.root, pid)
        self.map(s1, IOVA, pte(0x3_0000, **G_LEAF))
        for ppn in range(self.root, self._next >> 12):
            self.gmap(ppn)
        self.gmap(0x3_0000)
        self.set_dc(tc_=tc(pdtv=1), iohgatp=iohgatp(8, self.g, gscid=2),
                    fsc_=pdtp(mode, self.root))
        self.write_pc(mode, self.root, pid, pc_ta(pscid=5), fsc(8, s1))

    def gmap(self, ppn, **flags):
        self.gleaf[ppn] = self.map(self.g, ppn << 12, pte(ppn, **(flags or G_LEAF)),
                                   levels=3, x4=True)


@pytest.mark.parametrize("mode,pid", [(1, 0x33), (2, 0x1_2233), (3, 0xF_1234)])
def test_pdt_in_guest_physical_space(mode, pid):
    rig = GRig(mode, pid)
    r = rig.translate(IOVA, "write", process_id=pid)
    assert not r.fault and r.ppn == 0x3_0000


@pytest.mark.parametrize("access", ["read", "write", "execute"])
@pytest.mark.parametrize("mode,pid", [(1, 0x33), (3, 0xF_1234)])
def test_guest_page_fault_on_every_pdt_level(mode, pid, access):
    for level, gpa in enumerate(GRig(mode, pid).entries):
        rig = GRig(mode, pid)
        rig.w64(rig.gleaf[gpa >> 12], 0)             # that table's page unmapped
        r = rig.translate(IOVA, access, process_id=pid)
        assert r.cause == GUEST_PAGE_FAULT[access], level
        rec = rig.record()
        assert rec["iotval2"] == (gpa >> 2 << 2) | 1, level
        assert (rec["iotval"], rec["pv"], rec["pid"]) == (IOVA, 1, pid)


def test_g_stage_pte_without_r_is_a_guest_page_fault_even_for_a_write():
    """The PDT read is an implicit read: the G-stage leaf needs R (reference N.1.5)."""
    rig = GRig(1, 0x33)
    a = rig.entries[0]
    rig.gmap(a >> 12, v=1, w=0, x=1, u=1, a=1)      # X only
    assert rig.translate(IOVA, "write", process_id=0x33).cause == 23


@pytest.mark.parametrize("mode,pid", [(1, 0x33), (2, 0x1_2233), (3, 0xF_1234)])
def test_g_stage_access_fault_on_every_pdt_level_is_265(mode, pid):
    """Issue #587 (reference N.9 P2): 265, not 1/5/7, for every access type."""
    for level in range(mode):
        rig = GRig(mode, pid)
        rig.mem.inject_fault(rig.gleaf[rig.entries[level] >> 12])
        for access in ("read", "write", "execute"):
            assert rig.translate(IOVA, access, process_id=pid).cause == 265, level
        assert rig.record()["iotval2"] == 0


def test_dtf_suppresses_pdt_guest_page_faults():
    rig = GRig(1, 0x33)
    rig.set_dc(tc_=tc(pdtv=1, dtf=1), iohgatp=iohgatp(8, rig.g, gscid=2),
               fsc_=pdtp(1, rig.root))
    rig.w64(rig.gleaf[rig.entries[0] >> 12], 0)
    assert rig.translate(IOVA, process_id=0x33).cause == 21
    assert rig.q.fqt == 0


def test_dpe_0_no_pasid_still_uses_the_second_stage():
    """Reference N.1.6: no PASID, DPE=0: first stage Bare, iohgatp still applies."""
    rig = GRig(1, 0x33)
    assert rig.translate(0x3_0000_123, "read").ppn == 0x3_0000
    assert rig.translate(0x3_1000, "read").cause == 21


def test_remapped_pdt_root_gpa_needs_iodir():
    """Reference N.1.7: a second-stage change that remaps the GPA of pdtp needs IODIR too
    (caches may hold translated SPA pointers): the old root's PC stays allowed after
    IOTINVAL.GVMA + IODIR.INVAL_PDT (leaf only) + IOFENCE.C, until IODIR.INVAL_DDT +
    IOFENCE.C."""
    rig = GRig(1, 0x33)

    def allowed():
        return {r.ppn if not r.fault else int(r.cause)
                for r in rig.iommu.allowed(5, IOVA, "read", process_id=0x33)}

    assert allowed() == {0x3_0000}
    # A second copy of the root page at another SPA, whose PC maps elsewhere.
    new_root = rig.page()
    s1 = rig.page()
    rig.map(s1, IOVA, pte(0x3_1000, **G_LEAF))
    for ppn in range(new_root, rig._next >> 12):
        if ppn != new_root:
            rig.gmap(ppn)
    rig.gmap(0x3_1000)
    pc = (new_root << 12) + 0x33 * 16
    rig.w64(pc, pc_ta(pscid=6))
    rig.w64(pc + 8, fsc(8, s1))
    rig.w64(rig.gleaf[rig.root], pte(new_root, **G_LEAF))  # GPA root -> new SPA page
    rig.q.submit(iotinval_gvma(), iodir_inval_pdt(did=5, pid=0x33), iofence_c())
    assert allowed() == {0x3_0000, 0x3_1000}
    rig.q.submit(iodir_inval_ddt(dv=1, did=5), iofence_c())
    assert allowed() == {0x3_1000}
