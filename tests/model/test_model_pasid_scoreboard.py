"""The scoreboard passes a request's process_id and privilege to the model (the agreed
interface): a PASID request is checked against the answer of its own process context."""

from iogate.hdl.port import Access

from iogate.cosim.check.request import TranslationRequest, TranslationResponse
from iogate.cosim.check.scoreboard import Scoreboard
from model_tables import URWX, pte
from pdt_tables import DEVICE, PdtRig, fsc, pc_ta, pdtp, tc

IOVA = 0x4000_1000


def response(ppn):
    return TranslationResponse(fault=False, cause=0, ppn=ppn, r=1, w=1, x=1, pbmt=0,
                               hit=False, pa=ppn << 12 | (IOVA & 0xFFF))


def test_scoreboard_checks_each_process_against_its_pc():
    rig = PdtRig()
    root = rig.page()
    rig.set_dc(tc_=tc(pdtv=1), fsc_=pdtp(1, root))
    for pid, ppn in ((1, 0x111), (2, 0x222)):
        s1 = rig.page()
        rig.map(s1, IOVA, pte(ppn, **URWX))
        rig.write_pc(1, root, pid, pc_ta(pscid=pid), fsc(8, s1))
    sb = Scoreboard(rig.iommu)
    for pid, ppn in ((1, 0x111), (2, 0x222)):
        req = TranslationRequest(DEVICE, IOVA, Access.READ, process_id=pid)
        allowed = sb.expect(req)
        assert sb.check(req, response(ppn), allowed)
        other = 0x333 - ppn
        assert not sb.check(req, response(other), sb.expect(req))
    # Without a PASID (DPE=0) the first stage is Bare: the IOVA itself.
    req = TranslationRequest(DEVICE, IOVA, Access.READ)
    assert sb.check(req, response(IOVA >> 12), sb.expect(req))
    assert len(sb.mismatches) == 2


def test_a_fault_from_a_cached_pc_gets_its_own_record():
    # Regression seed 7 (process Config): a PC is rewritten to point at a table that maps
    # the IOVA, without IODIR.INVAL_PDT yet. The target still uses its cached PC, whose
    # old table has no mapping there: a read page fault (13), which the model's allowed
    # set holds. The model's walk of the new PC maps the page, so re-translating gives no
    # record; the scoreboard must write the record of the fault the target gave.
    rig = PdtRig()          # the checking model walks memory; allowed() tracks the caches
    root = rig.page()
    rig.set_dc(tc_=tc(pdtv=1), fsc_=pdtp(1, root))
    old, new = rig.page(), rig.page()
    rig.map(new, IOVA, pte(0x444, **URWX))
    rig.map(old, IOVA + 0x10_0000, pte(0x555, **URWX))     # the old table: elsewhere only
    rig.write_pc(1, root, 3, pc_ta(pscid=3), fsc(8, old))
    sb = Scoreboard(rig.iommu, defer_reports=True)
    warm = TranslationRequest(DEVICE, IOVA + 0x10_0000, Access.READ, process_id=3)
    assert sb.check(warm, response(0x555), sb.expect(warm))
    rig.write_pc(1, root, 3, pc_ta(pscid=3), fsc(8, new))  # no invalidation yet
    req = TranslationRequest(DEVICE, IOVA, Access.READ, process_id=3)
    allowed = sb.expect(req)
    fault = TranslationResponse(fault=True, cause=13, ppn=0, r=0, w=0, x=0, pbmt=0,
                                hit=False, pa=0)
    before = rig.q.fqt
    assert sb.check(req, fault, allowed)
    assert rig.q.fqt == before + 1
    cause = rig.q.record(before)[0] & 0xFFF
    assert cause == 13
    assert sb.check(req, response(0x444), sb.expect(req))  # the new PC's answer too
    assert rig.q.fqt == before + 1 and not sb.mismatches
