"""Tests of the cycle benchmarks (cosim/bench): a tiny hw run on Icarus whose figures must
hang together, and the summary, plot and argument checks without a simulator.

No test asserts a time against a target: the targets are reported as ratios. The checks
are consistency facts of the spec and the test bench: a walk's table reads are dependent
(each PTE holds the next table's PPN, Privileged spec "Virtual Address Translation Process" /
IOMMU spec "Process to translate an IOVA"), so a walk
takes at least its reads back to back and slows by at least ``reads * delta`` when every
read slows by ``delta``; an Sv39 walk to a 4 KiB page reads 3 PTEs, Sv48 reads 4; each
directory level adds one non-leaf DDTE read (spec "Non-leaf DDT entry"); a port hands over at most
one response per clock.
"""

import pytest

from iogate.cosim.bench import run as bench_run

LATENCIES = (1, 10)


@pytest.fixture(scope="module")
def hw(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    return bench_run.run_hw("icarus", latencies=LATENCIES, samples=1, hits=8,
                            work_dir=work)


def figures(hw, kind):
    return [hw[kind][str(latency)] for latency in LATENCIES]


@pytest.mark.cocotb
def test_hw_report_has_the_headline_keys(hw):
    s = bench_run.summarize(hw)
    assert isinstance(s["hit_latency_cycles"], (int, float))
    assert isinstance(s["hit_translations_per_cycle"], float)
    assert isinstance(s["sv39_miss_cycles_mem1"], int)
    for kind in bench_run.WALK_KINDS:
        for latency in LATENCIES:
            short = "sv39_miss" if kind == "miss_sv39" else kind
            assert isinstance(s[f"{short}_cycles_mem{latency}"], int)
            assert isinstance(s[f"{short}_ratio_mem{latency}"], float)
    assert s["hw"]["sim"] == "icarus"


@pytest.mark.cocotb
def test_hits_take_a_cycle_at_least_and_one_response_per_clock_at_most(hw):
    h = hw["hits"]
    assert h["latency_cycles"] >= 1
    assert all(c >= 1 for c in h["latency_cycles_all"])
    # 8 responses, one per clock at most: the burst spans at least 8 cycles.
    assert h["burst_requests"] == 8 and h["burst_cycles"] >= 8
    assert 0 < h["translations_per_cycle"] <= 1
    assert h["translations_per_cycle"] == round(8 / h["burst_cycles"], 4)


@pytest.mark.cocotb
@pytest.mark.parametrize("kind, reads", [("miss_sv39", 3), ("miss_sv48", 4)])
def test_first_stage_walk_reads_one_pte_per_level(hw, kind, reads):
    for f in figures(hw, kind):
        assert f["reads"] == reads


@pytest.mark.cocotb
@pytest.mark.parametrize("kind", bench_run.WALK_KINDS)
def test_miss_latency_grows_with_memory_latency(hw, kind):
    low, high = figures(hw, kind)
    assert high["cycles"] > low["cycles"]
    assert high["mem_read_cycles"] - low["mem_read_cycles"] >= LATENCIES[1] - LATENCIES[0]
    if kind.startswith("miss_"):
        for f in (low, high):
            # Never faster than the walk's dependent reads one after another (the words
            # of one device context need not be read one after another, so not for DDT).
            assert f["cycles"] >= f["reads"] * f["mem_read_cycles"]


@pytest.mark.cocotb
@pytest.mark.parametrize("kind", ["miss_sv39", "miss_sv48", "miss_sv39_over_sv39x4",
                                  "miss_sv48_over_sv48x4"])
def test_dependent_reads_each_pay_the_extra_latency(hw, kind):
    low, high = figures(hw, kind)
    assert high["cycles"] - low["cycles"] >= low["reads"] * (LATENCIES[1] - LATENCIES[0])


@pytest.mark.cocotb
def test_each_directory_level_adds_one_read(hw):
    one, two, three = (hw[k]["1"]["reads"] for k in ("ddt_1lvl", "ddt_2lvl", "ddt_3lvl"))
    assert two == one + 1 and three == two + 1
    for kind in ("ddt_1lvl", "ddt_2lvl", "ddt_3lvl"):
        for f in figures(hw, kind):
            assert 1 <= f["warm_cycles"] < f["cycles"]
            assert isinstance(f["after_ddtp_cycles"], int) and f["after_ddtp_cycles"] >= 1


@pytest.mark.cocotb
def test_command_latency_grows_with_memory_latency(hw):
    low, high = (hw["command"][str(latency)] for latency in LATENCIES)
    # At least the command fetch and the completion store each pay the extra latency.
    assert high["cycles"] - low["cycles"] >= 2 * (LATENCIES[1] - LATENCIES[0])
    for f in (low, high):
        assert f["cycles"] > f["cycles_after_write_response"] >= 1


def test_summary_of_the_model_figures():
    model = {"full_walk": 1000.0, "cached": 5000.0, "two_stage_walk": 300.0,
             "allowed": 900.0, "seconds": 0.1}
    s = bench_run.summarize(None, model)
    assert s["model_walk_tps"] == 1000.0 and s["model_cached_tps"] == 5000.0
    assert s["model"] is model and "hw" not in s


def test_summary_names_the_sv39_figures():
    hw = {"miss_sv39": {"1": {"cycles": 18, "ratio_to_target": 1.2}},
          "hits": {"latency_cycles": 2, "translations_per_cycle": 0.5,
                   "latency_ratio_to_target": 1.0, "throughput_ratio_to_target": 0.5}}
    s = bench_run.summarize(hw)
    assert s["sv39_miss_cycles_mem1"] == 18 and s["sv39_miss_ratio_mem1"] == 1.2
    assert s["hit_latency_cycles"] == 2 and s["hit_translations_per_cycle"] == 0.5


def test_plot_skips_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    assert bench_run.plot_misses({"miss_sv39": {"1": {"cycles": 18}}},
                                 tmp_path / "p.png") is None
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(latencies=()), "latencies must be non-negative integers, not []"),
    (dict(latencies=(1, -1)), "latencies must be non-negative integers, not [1, -1]"),
    (dict(samples=0), "samples must be a positive integer, not 0"),
    (dict(hits=1), "hits must be an integer of at least 2, not 1"),
])
def test_run_hw_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError) as e:
        bench_run.run_hw("icarus", **kwargs)
    assert str(e.value) == message


def test_run_bench_rejects_an_unknown_benchmark():
    with pytest.raises(ValueError) as e:
        bench_run.run_bench("nothing")
    assert str(e.value) == ("what must be one of hw, model, workloads, sweep, concurrency, "
                            "speed, resources, all, readme, not 'nothing'")


def test_plot_is_a_png_when_matplotlib_is_there(tmp_path):
    import importlib.util
    hw = {"sim": "icarus", "miss_sv39": {"1": {"cycles": 18}, "10": {"cycles": 45}}}
    path = bench_run.plot_misses(hw, tmp_path / "p.png")
    if importlib.util.find_spec("matplotlib") is None:
        assert path is None
    else:
        assert path == tmp_path / "p.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
