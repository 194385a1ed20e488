"""iogate.cosim.model.explain with MSI translation: the extended DC (64 bytes, split 6/9/9,
reference N.3.2) with its msiptp/mask/pattern line, the MSI match and interrupt file number,
the MSI PTE read in place of the G-stage walk (reference N.4), and absorbed answers."""

from types import SimpleNamespace

from iogate.hdl.port import Access

from iogate.cosim.model import Result
from iogate.cosim.model.explain import describe_result, explain
from msi_tables import MSI_GPA, basic_pte, mrif_pte, msi_rig, write_msi_pte


def _text(rig, iova, access=Access.READ):
    req = SimpleNamespace(device_id=5, iova=iova, access=access)
    allowed = [rig.iommu.translate(5, iova, access.name.lower(), report=False, data=1)]
    return explain(rig.iommu, req, allowed, "fault cause=1 (INSTRUCTION_ACCESS_FAULT)")


def test_basic_msi_pte_is_traced_instead_of_the_g_stage():
    rig = msi_rig()
    # File 1 = GPA page 0x28001 (mask 0b101: page bit 0 is file bit 0): PTE at +0x10.
    at = write_msi_pte(rig, rig.msi_pt, 1, basic_pte(0x4_5678))
    text = _text(rig, MSI_GPA + 0x1010)
    # 3LVL extended: device 5 is DC 5 of its leaf page, 64 bytes each.
    assert f"DC @{rig.dc_address:#x}" in text and rig.dc_address & 0xFFF == 5 * 64
    assert f"msiptp: FLAT table={rig.msi_pt << 12:#x} mask=0x5 pattern=0x28000" in text
    assert f"gpa {MSI_GPA + 0x1010:#x}: MSI address, interrupt file 1" in text
    assert f"MSI PTE @{at:#x}" in text and "basic ppn=0x45678" in text
    assert "G-stage" not in text
    assert "expected: pa=0x45678010 rw- pbmt=0" in text


def test_mrif_pte_and_absorbed():
    rig = msi_rig()
    write_msi_pte(rig, rig.msi_pt, 0, mrif_pte(0x30_0200, 0x40, 0x5A5))
    text = _text(rig, MSI_GPA, Access.WRITE)
    assert "MRIF @0x300200 notice @0x40000 nid=0x5a5" in text
    assert "expected: absorbed" in text


def test_reserved_bits_and_non_matching_gpa():
    rig = msi_rig()
    write_msi_pte(rig, rig.msi_pt, 0, (basic_pte(1)[0] | 1 << 4, 0))
    assert f"RESERVED {1 << 4:#x}" in _text(rig, MSI_GPA)
    text = _text(rig, MSI_GPA + 0x2000)                  # page 0x28002: no match
    assert "no MSI match" in text and "G-stage (SV48X4)" in text


def test_pte_bus_error():
    rig = msi_rig()
    rig.mem.inject_fault(rig.msi_pt << 12, 16)
    assert "BUS ERROR (cause 261)" in _text(rig, MSI_GPA)


def test_describe_absorbed():
    assert describe_result(Result(fault=False, absorbed=True)).startswith("absorbed")
