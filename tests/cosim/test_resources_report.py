"""iogate.cosim.bench.resources: parsing Yosys's statistics, rolling them up per unit, and the
bench keys from nextpnr's reports. No toolchain runs: the inputs are written here in the
tools' formats (Yosys ``stat -json``, nextpnr ``--report``)."""

import json

import pytest

from iogate.boards.build import report_of

from iogate.cosim.bench.resources import cell_counts, group_breakdown, parse_yosys_stat, summarize


def _module(cells):
    return {"num_cells": sum(cells.values()), "num_cells_by_type": cells}


#: A board top as ``synth_ecp5 -noflatten`` leaves it: instances of the design's own
#: modules appear among the cells and are not primitives.
STAT = {"modules": {
    "\\top": _module({"top.top": 1, "top.reset": 1}),
    "\\top.reset": _module({"LUT4": 1, "TRELLIS_FF": 2}),
    "\\top.top": _module({"top.top.iommu": 1, "top.top.bridge": 1, "LUT4": 5}),
    "\\top.top.bridge": _module({"LUT4": 700, "CCU2C": 20, "TRELLIS_FF": 100}),
    "\\top.top.iommu": _module({"LUT4": 200, "TRELLIS_FF": 1, "top.top.iommu.pipeline": 1,
                                "top.top.iommu.fq": 1}),
    "\\top.top.iommu.fq": _module({"LUT4": 150, "CCU2C": 10, "top.top.iommu.fq.fifo": 1}),
    "\\top.top.iommu.fq.fifo": _module({"LUT4": 13, "TRELLIS_DPR16X4": 48,
                                        "TRELLIS_FF": 196}),
    "\\top.top.iommu.pipeline": _module({"LUT4": 1000, "TRELLIS_FF": 600,
                                         "top.top.iommu.pipeline.iotlb": 1}),
    "\\top.top.iommu.pipeline.iotlb": _module({"LUT4": 2000, "TRELLIS_FF": 660,
                                               "top.top.iommu.pipeline.iotlb.data": 1}),
    "\\top.top.iommu.pipeline.iotlb.data": _module({"TRELLIS_DPR16X4": 13}),
}}


def test_parse_keeps_primitives_only():
    cells = parse_yosys_stat(STAT)
    assert cells["top.top"] == {"LUT4": 5}
    assert cells["top"] == {}
    assert cells["top.top.iommu.fq"] == {"LUT4": 150, "CCU2C": 10}


def test_cell_counts_weigh_carries_and_distributed_ram_as_nextpnr_does():
    # nextpnr packs a CCU2C into two TRELLIS_COMB and a 16x4 distributed RAM's data
    # half into two: 10 + 2*3 + 2*4 = 24.
    counts = cell_counts({"LUT4": 10, "CCU2C": 3, "TRELLIS_DPR16X4": 4, "TRELLIS_FF": 7,
                          "DP16KD": 2, "PFUMX": 9})
    assert counts == {"lut4": 10, "ccu2c": 3, "dpr16x4": 4, "ff": 7, "dp16kd": 2,
                      "comb": 24}


def test_group_breakdown_rolls_up_units_and_board_parts():
    b = group_breakdown(parse_yosys_stat(STAT))
    units = b["core_units"]
    # The IOTLB's data memory counts as the IOTLB: 2000 + 2*13.
    assert units["pipeline.iotlb"]["comb"] == 2026
    assert units["pipeline.iotlb"]["ff"] == 660
    # The pipeline's own cells, not its children's.
    assert units["pipeline"]["comb"] == 1000
    # The fault queue with its FIFO: 150 + 2*10 + 13 + 2*48.
    assert units["fq"]["comb"] == 279
    assert units["iommu"]["comb"] == 200
    assert b["core"]["comb"] == 2026 + 1000 + 279 + 200
    assert b["core"]["ff"] == 660 + 600 + 196 + 1
    assert b["board_parts"]["bridge"]["comb"] == 740
    # top.top's own LUTs and the reset synchroniser outside it: no named part.
    assert b["board_parts"]["other"]["comb"] == 5 + 1
    assert b["board"]["comb"] == 740 + 5 + 1
    assert b["total"]["comb"] == b["core"]["comb"] + b["board"]["comb"]
    # Largest first.
    assert list(units)[0] == "pipeline.iotlb"


def test_group_breakdown_needs_the_core():
    with pytest.raises(ValueError, match="expected one module named 'iommu'"):
        group_breakdown({"top": {"LUT4": 1}})


def _nextpnr(path, utilization, fmax):
    path.mkdir(parents=True, exist_ok=True)
    (path / "nextpnr-report.json").write_text(json.dumps({
        "utilization": {k: {"used": u, "available": a} for k, (u, a) in utilization.items()},
        "fmax": {"$glbnet$clk": {"achieved": fmax, "constraint": 40.0}},
    }))


def test_summarize_takes_the_figures_from_the_reports(tmp_path):
    for entries, (comb, fmax) in {8: (8100, 59.5), 16: (9300, 57.25)}.items():
        _nextpnr(tmp_path / f"e{entries}", {"TRELLIS_COMB": (comb, 83640),
                                            "TRELLIS_FF": (comb // 2, 83640),
                                            "DP16KD": (64, 208)}, fmax)
    _nextpnr(tmp_path / "ice", {"ICESTORM_LC": (5000, 5280), "ICESTORM_RAM": (3, 30),
                                "ICESTORM_SPRAM": (4, 4)}, 17.25)
    (tmp_path / "ice" / "top.rpt").write_text(
        "=== top ===\n\n   Number of cells: 9\n     2000 SB_DFF\n      300 SB_DFFE\n"
        "     1000 SB_LUT4\n")

    from iogate.hdl.config import Config
    reports = {e: report_of("ecpix5", tmp_path / f"e{e}", target_mhz=40, device="LFE5U-85F",
                            config=Config(iotlb_entries=e))
               for e in (8, 16)}
    for r in reports.values():
        r["speed"] = "6"
    ice = report_of("icebreaker", tmp_path / "ice", target_mhz=12)
    out = summarize(ice, reports[8], [reports[16], reports[8]],
                    cell_counts({"LUT4": 7000, "CCU2C": 50, "TRELLIS_FF": 3900}))
    assert out["ecp5_85_device"] == "LFE5U-85F-6"
    assert (out["ecp5_85_lut4"], out["ecp5_85_ff"], out["ecp5_85_bram"]) == (8100, 4050, 64)
    assert out["ecp5_85_fmax_mhz"] == 59.5
    assert out["ecp5_85_core_lut4"] == 7100 and out["ecp5_85_core_ff"] == 3900
    assert (out["ice40_up5k_lc"], out["ice40_up5k_ff"]) == (5000, 2300)
    assert out["ice40_up5k_fmax_mhz"] == 17.25
    assert out["ecp5_85_iotlb_sweep"] == [
        {"entries": 8, "ways": 8, "lut4": 8100, "ff": 4050, "bram": 64, "fmax_mhz": 59.5},
        {"entries": 16, "ways": 8, "lut4": 9300, "ff": 4650, "bram": 64,
         "fmax_mhz": 57.25},
    ]
