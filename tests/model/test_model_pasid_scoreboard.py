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
