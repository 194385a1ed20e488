"""One ``Access`` enum through the model: the TTYP of an Untranslated request (spec
"Fault/Event-Queue (FQ)", fault record TTYP), the fault cause tables of the walk, and the
one conversion from a name at ``IommuModel.translate``."""

import re

import pytest

from iogate.hdl.formats import Cause, Ttyp
from iogate.hdl.port import Access
from iogate.hdl.regs import IommuMode

from iogate.cosim.model.walk import ACCESS_FAULT, GUEST_PAGE_FAULT, PAGE_FAULT
from model_tables import UR, Rig, dc_words, iosatp, pte, ta


def test_ttyp_of_an_untranslated_request():
    assert {a: Ttyp.untranslated(a) for a in Access} == {
        Access.READ: Ttyp.UNTRANSLATED_READ,       # 2
        Access.WRITE: Ttyp.UNTRANSLATED_WRITE,     # 3
        Access.EXECUTE: Ttyp.UNTRANSLATED_EXEC,    # 1: read-for-execute
    }


@pytest.mark.parametrize("bad", ["read", 3, None])
def test_ttyp_rejects_what_is_no_access(bad):
    with pytest.raises(ValueError):
        Ttyp.untranslated(bad)


def test_walk_causes_are_keyed_by_access():
    assert PAGE_FAULT[Access.EXECUTE] == Cause.INSTRUCTION_PAGE_FAULT
    assert ACCESS_FAULT[Access.WRITE] == Cause.WRITE_ACCESS_FAULT
    assert GUEST_PAGE_FAULT[Access.READ] == Cause.READ_GUEST_PAGE_FAULT
    assert set(PAGE_FAULT) == set(ACCESS_FAULT) == set(GUEST_PAGE_FAULT) == set(Access)


def _rig():
    rig = Rig()
    root, s = rig.page(), rig.page()
    rig.map(s, 0x4000_1000, pte(0x87654, **UR))
    rig.write_dc(root, 5, dc_words(ta=ta(3), fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    return rig


@pytest.mark.parametrize("name, access", [(a.name.lower(), a) for a in Access])
def test_a_name_is_the_same_request_as_its_enum(name, access):
    rig = _rig()
    for iova in (0x4000_1008, 0x4000_2000):
        assert rig.iommu.translate(5, iova, name, report=False) == \
            rig.iommu.translate(5, iova, access, report=False)
        assert rig.iommu.allowed(5, iova, name) == rig.iommu.allowed(5, iova, access)


@pytest.mark.parametrize("bad", [0, "READ", Ttyp.UNTRANSLATED_READ])
def test_translate_names_an_access_it_does_not_take(bad):
    with pytest.raises((TypeError, ValueError), match=re.escape(repr(bad))):
        _rig().iommu.translate(5, 0x4000_1000, bad)
