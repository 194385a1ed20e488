"""Builds Config.msi() (MSI_FLAT, MSI_MRIF, IGS=BOTH) and runs tests/rtl/rtl_msi.py on Verilator
and Icarus: every answer (absorbed included), fault record and MRIF/notice memory effect
checked against the model; the latency of MSI translations (basic miss and hit, MRIF with the
MSI PTE read and cached) at memory latencies 0 and 4 is printed."""

import json

import pytest

from iogate.cosim.targets import sim
from rtl_msi import MSI


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_msi_on(simulator, tmp_path):
    build = sim.build_iommu(MSI, simulator)
    cycles = tmp_path / "cycles.jsonl"
    sim.run(build, "rtl_msi", test_dir=tmp_path, log_file=tmp_path / "sim.log",
            extra_env={"MSI_CYCLES": str(cycles)})
    rows = [json.loads(line) for line in cycles.read_text().splitlines()]
    assert sorted(row["latency"] for row in rows) == [0, 4]
    for row in rows:
        print(f"{simulator}: MSI cycles at memory latency {row.pop('latency')}: {row}")
