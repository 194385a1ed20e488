"""iogate.cosim.model.explain: the mismatch report lists the request, the allowed and the received
answers, the DC and every table entry a walk reads (addresses worked out by hand from the
Sv39/Sv39x4 index rules and the 1LVL/2LVL device_id split, spec "Device-Directory-Table (DDT)" and
"Process to translate an IOVA")."""

from types import SimpleNamespace

from iogate.hdl.port import Access
from iogate.hdl.regs import IommuMode

from iogate.cosim.model.explain import explain
from model_tables import FULL, UR, Rig, dc_words, iosatp, pte, ta
from test_model_two_stage import rig2, vs_map

GIB = 1 << 30


def _request(did, iova, access=Access.READ):
    return SimpleNamespace(device_id=did, iova=iova, access=access)


def _text(rig, did, iova, access=Access.READ):
    req = _request(did, iova, access)
    allowed = [rig.iommu.translate(did, iova, access.name.lower(), report=False)]
    return explain(rig.iommu, req, allowed, "fault cause=1 (INSTRUCTION_ACCESS_FAULT)")


def test_first_stage_walk_lists_every_pte_read():
    rig = Rig()
    root, s = rig.page(), rig.page()
    iova = (5 << 30) | (6 << 21) | (7 << 12) | 0x123
    leaf_at = rig.map(s, iova, pte(0x4242, **UR))
    rig.write_dc(root, 0x11, dc_words(ta=ta(3), fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    lines = _text(rig, 0x11, iova).splitlines()
    assert lines[0] == f"MISMATCH read did=0x11 iova={iova:#x}"
    assert lines[1] == "  expected: pa=0x4242123 r-- pbmt=0"
    assert lines[2] == "  got:      fault cause=1 (INSTRUCTION_ACCESS_FAULT)"
    text = "\n".join(lines)
    # 1LVL: the DC of device 0x11 is entry 0x11 of the root page, 32 bytes each.
    assert f"DC @{(root << 12) + 0x11 * 32:#x}" in text
    assert "fsc: SV39" in text and "pscid=3" in text
    # Sv39 indices 5, 6, 7 at levels 2, 1, 0; the leaf last, with its flags.
    assert f"L2 pte @{(s << 12) + 5 * 8:#x}" in text
    assert f"L0 pte @{leaf_at:#x} = {pte(0x4242, **UR):#018x} [VR--U-A- ppn=0x4242]" in text
    assert text.count(" pte @") == 3


def test_walk_stops_at_an_invalid_pte_and_shows_reserved_bits():
    rig = Rig()
    root, s = rig.page(), rig.page()
    bad = pte(0x10, **UR) | 1 << 55                       # bit 55: reserved
    rig.w64((s << 12) + 2 * 8, bad)                        # level-2 leaf, index 2
    rig.write_dc(root, 3, dc_words(fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    text = _text(rig, 3, 2 << 30)
    assert "expected: fault cause=13 (READ_PAGE_FAULT)" in text
    assert f"RESERVED {1 << 55:#x}" in text
    assert text.count(" pte @") == 1


def test_two_level_directory_and_bus_error_on_the_dc():
    rig = Rig(FULL)
    root = rig.page()
    did = (3 << 7) | 9
    dc_at = rig.write_dc(root, did, dc_words(), levels=2)
    rig.set_ddtp(IommuMode.LVL2, root)
    rig.mem.inject_fault(dc_at, 32)
    text = _text(rig, did, 0x1000)
    assert "expected: fault cause=257 (DDT_LOAD_ACCESS_FAULT)" in text
    assert f"DDT level 1 entry @{(root << 12) + 3 * 8:#x}" in text
    assert f"DC @{dc_at:#x}: BUS ERROR (cause 257)" in text


def test_nested_walk_shows_the_g_stage_of_each_table_read_and_of_the_gpa():
    rig = rig2()                        # G-stage: GPA [1 GiB, 2 GiB) -> SPA [0, 1 GiB)
    va = 0x1234_5000
    gpa_leaf = GIB + 0x77_7000
    vs_map(rig, va, pte(gpa_leaf >> 12, **UR))
    text = _text(rig, 5, va + 0x10)
    assert "iohgatp: SV39X4 gscid=3" in text
    # The guest root is read at its GPA, through the G-stage, then at its SPA.
    root_gpa = rig.gpa(rig.s << 12) + ((va >> 30) & 0x1FF) * 8
    assert f"G-stage (SV39X4) of gpa {root_gpa:#x}:" in text
    assert f"L2 pte gpa {root_gpa:#x} -> @{rig.spa(root_gpa):#x}" in text
    # The final GPA goes through the G-stage too: a 1 GiB leaf at root index 1.
    assert f"G-stage (SV39X4) of gpa {gpa_leaf + 0x10:#x}:" in text
    assert f"L2 pte @{(rig.g << 12) + 1 * 8:#x}" in text
    assert "expected: pa=0x777010 r-- pbmt=0" in text
