"""The workloads' check of the performance counters against their own counts can fail.

Spec "Hardware performance monitor" (decisions 9 and 10 of issue 17 (HPM)): a counter that
disagrees with the bench's count, or an ``iohpmcycles`` delta shorter than the cycles the
bench measured, fails the workload with an AssertionError instead of giving a figure; on
the RTL (both simulators) a deliberately wrong expected count of first-stage PTE reads
fails the run.
"""

import pytest

from iogate.hdl import Config

from iogate.cosim.bench import hpm_counts
from iogate.cosim.bench.sweep import run_workloads
from iogate.cosim.targets import sim

COUNTS = {"requests": 10, "ioatc_misses": 4, "s1_reads": 12, "ddt_reads": 1}


def test_equal_counts_pass_and_give_the_counters_hit_rate():
    hpm_counts.check({**COUNTS, "cycles": 100}, COUNTS, 100)
    f = hpm_counts.figures({**COUNTS, "cycles": 100})
    assert f["hit_rate_hpm"] == 0.6                   # 1 - 4 misses / 10 requests
    assert f["hpm"]["s1_reads"] == 12


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_a_count_off_by_one_fails(key):
    counted = {**COUNTS, key: COUNTS[key] + 1, "cycles": 100}
    with pytest.raises(AssertionError, match=key):
        hpm_counts.check(counted, COUNTS, 100)


def test_cycles_short_of_the_measured_fail():
    with pytest.raises(AssertionError, match="iohpmcycles"):
        hpm_counts.check({**COUNTS, "cycles": 99}, COUNTS, 100)


def test_a_build_without_enough_counters_fails():
    class Monitor:
        counters = hpm_counts.COUNTERS - 1
    with pytest.raises(AssertionError, match="HPM counters"):
        hpm_counts.program(Monitor(), 0x21)
    with pytest.raises(AssertionError, match="HPM counters"):
        hpm_counts.program(None, 0x21)


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_a_wrong_expected_walk_count_fails_the_workload(simulator, tmp_path):
    with pytest.raises(AssertionError):
        run_workloads(Config(), simulator, names=["random"], translations=40,
                      work_dir=tmp_path, hpm_skew=1)
    log = "".join(p.read_text() for p in tmp_path.rglob("sim.log"))
    assert "HPM counters disagree" in log and "s1_reads" in log
