"""firmware.devicetree: ``msi-parent`` for an IOMMU that signals with MSIs (Linux binding
iommu/riscv,iommu.yaml, "Example 3 (IOMMU device with MSIs)")."""

import pytest

from iogate.firmware.devicetree import fragment


def _node(text):
    start = text.index("iommu@")
    return text[start:text.index("};", start)]


def test_msi_parent():
    node = _node(fragment(address=0x1bcc_d000, msi_parent="imsics_smode"))
    assert "\t\tmsi-parent = <&imsics_smode>;" in node
    assert "interrupts" not in node and "#iommu-cells = <1>;" in node


def test_wires_and_msi_parent_together():
    node = _node(fragment(address=0x1bcc_d000, interrupts=(32, 33), interrupt_parent="aplic",
                          msi_parent="imsics"))
    assert "interrupts = <32 4>, <33 4>;" in node and "msi-parent = <&imsics>;" in node
    # The binding's order: interrupts, then msi-parent, then #iommu-cells.
    assert node.index("interrupts") < node.index("msi-parent") < node.index("#iommu-cells")


def test_no_msi_parent_by_default():
    assert "msi-parent" not in fragment(address=0x1000)


def test_bad_msi_parent():
    with pytest.raises(ValueError, match="node name"):
        fragment(address=0x1000, msi_parent="im sic")
