"""IODIR.INVAL_PDT and the process-context invalidation recipes, decoded by hand.

RISC-V IOMMU spec "IOMMU directory cache invalidation commands" (IODIR: opcode 3 in bits
6:0, func3 bits 9:7 = 1 for INVAL_PDT, PID bits 31:12, DV bit 33, DID bits 63:40) and
"IOMMU Page-Table cache invalidation commands" (IOTINVAL: opcode 1, func3 0 = VMA, AV bit 10,
PSCID bits 31:12, PSCV bit 32, GV bit 33, GSCID bits 59:44); the recipes are the reference's
N.1.7 ("Software guidelines"). Field positions are written out here from those tables.
"""

import pytest

from iogate.hdl.formats import IosatpMode

from iogate.firmware import commands, invalidate
from iogate.firmware.pdt import ProcessContext


def field(word, low, width):
    return (word >> low) & ((1 << width) - 1)


def decode(cmd):
    d0 = cmd & ((1 << 64) - 1)
    return {"opcode": field(d0, 0, 7), "func3": field(d0, 7, 3), "av": field(d0, 10, 1),
            "pid_pscid": field(d0, 12, 20), "bit32": field(d0, 32, 1), "bit33": field(d0, 33, 1),
            "did": field(d0, 40, 24), "gscid": field(d0, 44, 16), "dword1": cmd >> 64}


def test_inval_pdt_fields():
    c = decode(commands.iodir_inval_pdt(did=0xABCDEF, pid=0xFEDCB))
    assert (c["opcode"], c["func3"], c["bit33"], c["did"], c["pid_pscid"]) == \
        (3, 1, 1, 0xABCDEF, 0xFEDCB)
    # Every other bit is reserved and 0 (else cmd_ill).
    cmd = commands.iodir_inval_pdt(did=0xABCDEF, pid=0xFEDCB)
    assert cmd & ~((0x7F) | (0x7 << 7) | (0xFFFFF << 12) | (1 << 33) | (0xFFFFFF << 40)) == 0


@pytest.mark.parametrize("kwargs, exc, text", [
    ({"did": 1 << 24, "pid": 0}, ValueError, "did must be between 0 and 0xffffff"),
    ({"did": 0, "pid": 1 << 20}, ValueError, "pid must be between 0 and 0xfffff"),
    ({"did": 0, "pid": True}, TypeError, "pid must be an integer"),
])
def test_inval_pdt_refuses_bad_operands(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        commands.iodir_inval_pdt(**kwargs)


def test_inval_pdt_needs_both_operands():
    with pytest.raises(TypeError):
        commands.iodir_inval_pdt(did=1)     # DV=0 would be cmd_ill: no such call


def pc(pscid):
    return ProcessContext.make(pscid=pscid, mode=IosatpMode.SV39, root=0x5000)


def test_pc_change_host():
    # iohgatp Bare: INVAL_PDT(DV=1, DID, PID), then VMA(PSCV=1, old PSCID, GV=0).
    first, second = (decode(c) for c in invalidate.pc_change(0x42, 0x1234, pc(77)))
    assert (first["opcode"], first["func3"], first["bit33"], first["did"],
            first["pid_pscid"]) == (3, 1, 1, 0x42, 0x1234)
    assert (second["opcode"], second["func3"], second["av"], second["bit32"], second["bit33"],
            second["pid_pscid"], second["gscid"]) == (1, 0, 0, 1, 0, 77, 0)


def test_pc_change_guest():
    # iohgatp not Bare: the VMA also has GV=1 and the GSCID.
    _, vma = (decode(c) for c in invalidate.pc_change(3, 9, pc(5), gscid=0x321))
    assert (vma["bit32"], vma["pid_pscid"], vma["bit33"], vma["gscid"]) == (1, 5, 1, 0x321)


def test_an_invalid_old_pc_needs_nothing():
    assert invalidate.pc_change(3, 9, ProcessContext()) == []


def test_nonleaf_pdte_change_is_inval_ddt_for_the_device():
    (c,) = (decode(c) for c in invalidate.pdt_nonleaf_change(0x77))
    assert (c["opcode"], c["func3"], c["bit33"], c["did"]) == (3, 0, 1, 0x77)
