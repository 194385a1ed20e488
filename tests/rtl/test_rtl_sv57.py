"""Builds Config.process() (Sv57, Sv57x4, process contexts) and runs tests/rtl/rtl_sv57.py on
Verilator and Icarus: every answer and fault record checked against the model; the walk
cycles of Sv48/Sv57 and Sv48x4/Sv57x4 at memory latencies 0 and 4 are printed."""

import json

import pytest

from iogate.cosim.targets import sim
from rtl_sv57 import SV57


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_sv57_on(simulator, tmp_path):
    build = sim.build_iommu(SV57, simulator)
    cycles = tmp_path / "cycles.jsonl"
    sim.run(build, "rtl_sv57", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env={"SV57_CYCLES": str(cycles)})
    rows = [json.loads(line) for line in cycles.read_text().splitlines()]
    assert sorted(row["latency"] for row in rows) == [0, 4]
    for row in rows:
        print(f"{simulator}: walk cycles at memory latency {row.pop('latency')}: {row}")
