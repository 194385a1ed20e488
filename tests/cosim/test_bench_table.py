"""Tests of the README table renderer (cosim/bench/table.py): every figure of a small
report must appear in its row, formatted as the test formats it, and the README outside
the markers must come back byte for byte."""

import pytest

from iogate.cosim.bench import table

REPORT = {
    "hw": {
        "sim": "icarus",
        "hits": {"latency_cycles": 2, "translations_per_cycle": 0.9961,
                 "latency_ratio_to_target": 1.0, "throughput_ratio_to_target": 0.9961},
        "miss_sv39": {"1": {"cycles": 18, "reads": 3, "ratio_to_target": 1.2},
                      "10": {"cycles": 45, "reads": 3, "ratio_to_target": 1.25}},
        "command": {"1": {"cycles": 30}, "10": {"cycles": 75}},
    },
    "workloads": {
        "sim": "verilator",
        "net_rx_strict": {"translations": 2095, "hit_rate": 0.8344,
                          "cycles_per_translation": 16.089,
                          "dma_translations_per_cycle": 0.1232, "total_cycles": 46237,
                          "mismatches": 0, "iotlb_entries": 8, "iotlb_ways": 8,
                          "mem_latency": 10},
    },
    "iotlb_sweep": {"sim": "icarus", "translations": 500, "points": [
        {"entries": 4, "ways": 1, "workloads": {"random": {"hit_rate": 0.0126}}},
        {"entries": 8, "ways": 8, "workloads": {"random": {"hit_rate": 0.031}}},
    ]},
    "concurrency": {"sim": "icarus", "two_ports": {
        "per_port": [{"translations_per_cycle": 0.5}, {"translations_per_cycle": 0.5}],
        "total_translations_per_cycle": 0.9942}},
    "model_walk_tps": 41234.5,
    "cosim_translations_per_second": 1500,
    "ecp5_85_lut4": 23456,
    "unrelated": 7,
}


def row(markdown, first_cell):
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, (first_cell, markdown)
    return [c.strip() for c in rows[0].strip("|").split("|")]


def test_cycle_rows_hold_every_latency():
    md = table.render(REPORT)
    sv39 = REPORT["hw"]["miss_sv39"]
    assert row(md, "Sv39 miss") == ["Sv39 miss", str(sv39["1"]["cycles"]),
                                    str(sv39["10"]["cycles"]), str(sv39["1"]["reads"]),
                                    "1.2"]
    command = REPORT["hw"]["command"]
    assert row(md, "IOTINVAL.VMA + IOFENCE.C")[1:3] == [str(command["1"]["cycles"]),
                                                        str(command["10"]["cycles"])]
    assert row(md, "IOTLB hit (cycles)")[1] == "2"
    assert row(md, "hit throughput, one port (per clock)")[1] == "0.996"
    # Walk kinds absent from the report get no row.
    assert "Sv48 miss" not in md


def test_workload_row():
    md = table.render(REPORT)
    f = REPORT["workloads"]["net_rx_strict"]
    assert row(md, "net_rx_strict") == [
        "net_rx_strict", f"{f['translations']:,}", f"{f['hit_rate']:.3f}",
        f"{f['cycles_per_translation']:.3f}", f"{f['dma_translations_per_cycle']:.3f}",
        f"{f['total_cycles']:,}", "0"]
    assert "IOTLB 8 entries / 8 ways, mem 10" in md


def test_sweep_rows_one_per_geometry():
    md = table.render(REPORT)
    header = next(line for line in md.splitlines() if line.startswith("| entries |"))
    assert header == "| entries | ways | random |"
    assert row(md, "4") == ["4", "1", "0.013"]
    assert row(md, "8") == ["8", "8", "0.031"]


def test_concurrency_speed_and_resources():
    md = table.render(REPORT)
    assert row(md, "two ports loaded: port 1 (hits per clock)")[1] == "0.5"
    assert row(md, "two ports loaded: both (hits per clock)")[1] == "0.994"
    assert row(md, "model_walk_tps")[1] == f"{round(REPORT['model_walk_tps']):,}"
    assert row(md, "cosim_translations_per_second")[1] == "1,500"
    assert row(md, "ecp5_85_lut4")[1] == "23,456"
    assert "unrelated" not in md


def test_sections_without_figures_are_left_out():
    md = table.render({"model_walk_tps": 1000.0})
    assert "Cycles" not in md and "Workloads" not in md and "IOTLB hit rate" not in md
    assert row(md, "model_walk_tps")[1] == "1,000"


def test_rewrite_keeps_everything_outside_the_markers(tmp_path):
    before = "# Title\n\nintro\n\n" + table.BEGIN + "\n"
    after = table.END + "\n\n## Next\ntext\n"
    readme = tmp_path / "README.md"
    readme.write_text(before + "old table\n" + after)
    table.rewrite_readme(readme, REPORT)
    text = readme.read_text()
    assert text == before + table.render(REPORT) + after
    assert "old table" not in text
    table.rewrite_readme(readme, REPORT)          # idempotent
    assert readme.read_text() == text


def test_rewrite_needs_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError) as e:
        table.rewrite_readme(readme, REPORT)
    assert str(e.value) == f"{readme} has no {table.BEGIN} ... {table.END} section"
    assert readme.read_text() == "# no markers\n"
