"""The workload and concurrency benchmarks on the RTL, small, on both simulators.

Checks that hold whatever the IOTLB's figures: every answer agrees with the model, no
transaction faults (each falls on a mapped page), a hit-rate is a fraction of the
responses; storage over 2 MiB superpages touches far fewer pages than over 4 KiB ones, so
it cannot hit less; a port hands over at most one response per clock.

The performance counters the workloads read (spec "Hardware performance monitor",
decisions 9 and 10 of issue 17 (HPM)), from the spec's walks: one UNTRANSLATED_REQ per
request, one IOATC_MISS per response that missed, so the counters' hit rate is the
responses'; a Sv39 walk to a 4 KiB leaf reads 3 PTEs (S1_WALK), to a 2 MiB leaf 2; the one
device's context is read once (1LVL: one DDT_WALK), as only IOTINVAL.VMA is issued;
``iohpmcycles`` counts every clock of the workload.
"""

import pytest

from iogate.hdl import Config

from iogate.cosim.bench.concurrency import run_concurrency
from iogate.cosim.bench.sweep import run_workloads
from iogate.cosim.bench.workloads import generate
from iogate.cosim.targets import sim

TRANSLATIONS = 300


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_workloads_agree_with_the_model(simulator, tmp_path):
    figures = run_workloads(Config(), simulator, translations=TRANSLATIONS,
                            work_dir=tmp_path)
    for name, f in figures.items():
        assert f["mismatches"] == 0 and f["faults"] == 0, (name, f)
        assert f["translations"] == generate(name, translations=TRANSLATIONS).translations
        assert 0 <= f["iotlb_hits"] <= f["translations"]
        assert f["hit_rate"] == round(f["iotlb_hits"] / f["translations"], 4)
        assert f["cycles_per_translation"] >= 1
        assert 0 < f["dma_translations_per_cycle"] <= 1
        hpm = f["hpm"]
        assert hpm["requests"] == f["translations"], (name, hpm)
        assert hpm["ioatc_misses"] == f["translations"] - f["iotlb_hits"], (name, hpm)
        assert f["hit_rate_hpm"] == f["hit_rate"]
        assert hpm["ddt_reads"] == 1, (name, hpm)
        assert hpm["cycles"] >= f["total_cycles"], (name, hpm)
        if name == "storage":
            # Buffers on 2 MiB leaves, rings on 4 KiB ones.
            assert 2 * hpm["ioatc_misses"] <= hpm["s1_reads"] <= 3 * hpm["ioatc_misses"]
        else:
            assert hpm["s1_reads"] == 3 * hpm["ioatc_misses"], (name, hpm)
    assert figures["storage"]["hit_rate"] > figures["storage_4k"]["hit_rate"]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_concurrency_figures(simulator, tmp_path):
    c = run_concurrency(simulator, hits=16, work_dir=tmp_path)
    hum = c["hit_under_miss"]
    for where in ("same_port", "other_port"):
        f = hum[where]
        assert f["hit_bits"] == len(f["hit_cycles"])
        assert f["miss_cycles"] > max(f["hit_cycles"]) >= 1
    two = c["two_ports"]
    for p in two["per_port"]:
        assert p["hit_bits"] == 16 and p["cycles"] >= 16
        assert 0 < p["translations_per_cycle"] <= 1
    assert 0 < two["total_translations_per_cycle"] <= 2
