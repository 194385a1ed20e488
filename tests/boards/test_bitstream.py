"""The ICEBreaker bitstream: built with YoWASP through amaranth-boards, it fits the
iCE40UP5K and meets the 12 MHz of the board's oscillator.

Device figures are the iCE40 UltraPlus datasheet's (Lattice FPGA-DS-02008): 5,280 logic
cells, 30 4-Kbit block RAMs, 4 256-Kbit SPRAMs. Needs the ``fpga`` extra; selected with
``-m fpga`` (``make bitstream``). The build stays in ``build/icebreaker``, where
``iogate build --board icebreaker`` puts it, so the bitstream can be programmed after.
"""

import json

import pytest

from iogate.boards import icebreaker
from iogate.boards.build import build, format_report

from iogate.cosim.targets.sim import ROOT


@pytest.mark.fpga
def test_icebreaker_bitstream():
    out = ROOT / "build" / "icebreaker"
    report = build("icebreaker", build_dir=out)
    print(format_report(report))
    assert json.loads((out / "report.json").read_text()) == report
    assert report["device"] == "iCE40UP5K"
    assert report["config"]["iotlb_entries"] == icebreaker.CONFIG.iotlb_entries
    assert report["logic"]["available"] == 5280
    assert report["block_ram"]["available"] == 30
    assert report["spram"] == {"used": 4, "available": 4}
    assert report["fits"] and report["logic"]["used"] <= 5280
    assert report["target_mhz"] == 12 and report["constraint_mhz"] == 12
    assert report["met"] and report["fmax_mhz"] >= 12
    # The iCE40UP5K's bitstream is 104,090 bytes whatever the design (icepack writes every
    # configuration bit).
    assert (out / "top.bin").stat().st_size == 104_090
