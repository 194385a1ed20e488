"""iogate.cosim.regress.farm and .campaign without a simulator: seed ranges and campaign files
(bad input refused with a message naming the fix), the jobqueue argument mapping, an
unreachable scheduler, and campaigns of a fake seed runner on a 2-worker LocalCluster:
resume, a worker dying mid-run (retried once, reported if it dies again), the merged report."""

import io
import json
import socket
import time

import cloudpickle
import dask
import pytest
from dask.distributed import Client, LocalCluster

import farm_fakes
from iogate.cosim import cli
from iogate.cosim.regress import farm
from iogate.cosim.regress.farm import Campaign, CampaignError, FarmError, Task

cloudpickle.register_pickle_by_value(farm_fakes)


def test_seed_ranges():
    assert farm.parse_seeds("1-3,7, 9-10") == [1, 2, 3, 7, 9, 10]
    assert farm.parse_seeds([4, "1-2", 4]) == [1, 2, 4]
    assert farm.parse_seeds(5) == [5]
    for bad in ("5-1", "", [], "x", "1-y", ","):
        with pytest.raises(CampaignError, match="seeds"):
            farm.parse_seeds(bad)


def test_campaign_file(tmp_path):
    f = tmp_path / "nightly.toml"
    f.write_text('seeds = "1-3"\nsims = ["verilator", "icarus"]\ntranslations = [300, 1000]\n'
                 'workers = 2\n[cluster_options]\nqueue = "short"\n')
    campaign, dispatch = farm.load_campaign(f)
    assert campaign.name == "nightly" and campaign.seeds == [1, 2, 3]
    assert dispatch == {"workers": 2, "cluster_options": {"queue": "short"}}
    tasks = campaign.tasks()
    assert len(tasks) == 3 * 2 * 2 and len({t.key for t in tasks}) == 12
    assert tasks[0] == Task(1, "verilator", 300) and tasks[-1].seed == 3
    assert campaign.folder.as_posix() == "build/farm/nightly"


@pytest.mark.parametrize("text, message", [
    ('seeds = "1-3"\nseed_count = 4\n', r"unknown keys \['seed_count'\]"),
    ('seeds = "9-2"\n', "is empty"),
    ('seeds = []\n', "names no seed"),
    ('sims = ["verilator"]\n', "no seeds"),
    ('seeds = "1"\nsims = ["modelsim"]\n', "unknown; the simulators"),
    ('seeds = "1"\nconfigs = ["huge"]\n', "unknown; the Configs"),
    ('seeds = "1"\ntranslations = 0\n', "positive"),
    ('seeds = "1"\nmutant = "nope"\n', "mutants"),
    ('seeds = "1\n', "not TOML"),
])
def test_campaign_file_refused(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(CampaignError, match=message):
        farm.load_campaign(f)


def test_cli_refuses_bad_input(tmp_path, capsys):
    assert cli.main(["farm", "--seeds", "7-3", "--out", str(tmp_path)]) == 2
    assert "the range '7-3' is empty" in capsys.readouterr().err
    f = tmp_path / "c.toml"
    f.write_text('seeds = "1-2"\nsim = "icarus"\n')
    assert cli.main(["farm", str(f)]) == 2
    assert "unknown keys ['sim']" in capsys.readouterr().err


def test_jobqueue_arguments():
    kw = farm.jobqueue_kwargs(["queue=short", "walltime=01:00:00", "cores=2",
                               'job_extra_directives=["--exclusive"]', "account=hw"])
    assert kw == {"cores": 2, "processes": 1, "memory": "4GB", "queue": "short",
                  "walltime": "01:00:00", "job_extra_directives": ["--exclusive"],
                  "account": "hw"}
    with pytest.raises(CampaignError, match="KEY=VALUE"):
        farm.jobqueue_kwargs(["queue"])
    with pytest.raises(CampaignError, match="one of"):
        farm.make_jobqueue_cluster("sge", {})


@pytest.mark.parametrize("kind, directive", [("slurm", "#SBATCH -p short"),
                                             ("pbs", "#PBS -q short"),
                                             ("lsf", "#BSUB -q short")])
def test_jobqueue_cluster_is_built_from_the_options(kind, directive):
    """Only the construction: the job script carries the options (no batch system here)."""
    cluster = farm.make_jobqueue_cluster(kind, ["queue=short", "walltime=00:30:00"])
    try:
        script = cluster.job_script()
        assert directive in script and "00:30" in script
        assert "--nthreads 1" in script or "--nworkers 1" in script
    finally:
        cluster.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error():
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(FarmError, match=f"cannot reach the Dask scheduler at {address}"):
        with farm.open_client(scheduler=address, timeout=2):
            pass
    assert time.monotonic() - start < 30


@pytest.fixture(scope="module")
def client():
    # As open_client makes it: a worker that dies fails its task at once, the farm retries.
    with dask.config.set(farm.SCHEDULER_CONFIG):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        c = Client(cluster)
        yield c
        c.close()
        cluster.close()


def _campaign(tmp_path, plan, **kwargs):
    (tmp_path / "fake.json").write_text(json.dumps(plan))
    return Campaign(**{"seeds": "1-4", "sims": "verilator,icarus", "translations": 100,
                       "name": "t", "out": str(tmp_path), **kwargs})


def _run(campaign, client):
    out = io.StringIO()
    report = farm.run_campaign(campaign, client=client, runner=farm_fakes.fake_seed,
                               stream=out, plot=False)
    return report, out.getvalue()


def _calls(tmp_path):
    return (tmp_path / "calls.log").read_text().split()


def test_resume_skips_finished_runs(tmp_path, client):
    campaign = _campaign(tmp_path, {})
    first = [t.key for t in campaign.tasks()[:3]]
    # An interrupted campaign: three runs finished, the fourth line torn by the interrupt.
    partial = Campaign(seeds="1-2", sims="verilator,icarus", translations=100, name="t",
                       out=str(tmp_path))
    partial.tasks = lambda: campaign.tasks()[:3]
    _run(partial, client)
    assert sorted(_calls(tmp_path)) == sorted(first)
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write('{"key": "icarus-seed2-t100-au')
    report, text = _run(campaign, client)
    assert "3 done before" in text and "5 to run" in text
    assert sorted(_calls(tmp_path)) == sorted(t.key for t in campaign.tasks())
    assert report["runs"] == 8 and report["missing"] == [] and report["seeds"] == 4
    assert report["verilator_translations"] == report["icarus_translations"] == 400
    report2, text = _run(campaign, client)            # all done: nothing runs again
    assert "8 done before" in text and len(_calls(tmp_path)) == 8
    assert report2["translations"] == 800
    assert report2["sessions"] == 2 and report2["wall_s"] >= report["wall_s_this_session"]


def test_worker_death_is_retried_once_and_reported(tmp_path, client):
    campaign = _campaign(tmp_path, {"die_once": [3], "die_always": [4], "mismatch": [2],
                                    "raise_always": [1]}, sims="verilator")
    report, text = _run(campaign, client)
    results = farm.load_results(tmp_path / "results.jsonl")
    assert results["verilator-seed3-t100-auto"]["status"] == "ok"
    assert results["verilator-seed3-t100-auto"]["attempt"] == 2
    assert "verilator-seed3-t100-auto: KilledWorker" in text and "retrying once" in text
    errors = {e["key"]: e for e in report["errors"]}
    assert set(errors) == {"verilator-seed4-t100-auto", "verilator-seed1-t100-auto"}
    assert errors["verilator-seed4-t100-auto"]["attempts"] == 2
    assert "KilledWorker" in errors["verilator-seed4-t100-auto"]["error"]
    assert "without a report" in errors["verilator-seed1-t100-auto"]["error"]
    assert report["runs"] == 4 and report["missing"] == []      # nothing lost
    assert [f["seed"] for f in report["failing"]] == [2] and report["mismatches"] == 1
    summary = (tmp_path / "summary.md").read_text()
    assert "iogate regress --seed 2 --translations 100 --sim verilator" in summary
    assert "iogate shrink 2 --sim verilator --translations 100" in summary
    assert "Runs in error" in summary and "KilledWorker" in summary
    # A rerun tries the runs in error again, and only those.
    (tmp_path / "fake.json").write_text("{}")
    (tmp_path / "calls.log").unlink()
    report, _ = _run(campaign, client)
    assert sorted(_calls(tmp_path)) == ["verilator-seed1-t100-auto", "verilator-seed4-t100-auto"]
    assert report["errors"] == [] and report["runs"] == 4


def test_report_merges_coverage_across_runs(tmp_path, client):
    campaign = _campaign(tmp_path, {}, seeds="1-3")
    report, _ = _run(campaign, client)
    bins = report["coverage"]["iogate.outcome"]["bins"]
    # Each run hit "ok" seed times and read_page_fault seed % 2 times, on both simulators.
    assert bins == {"ok": 2 * (1 + 2 + 3), "read_page_fault": 2 * (1 + 0 + 1),
                    "write_page_fault": 0}
    assert report["coverage_merged_with"] == "cocotb_coverage.coverage.merge_coverage"
    assert report["never_hit"] == ["iogate.outcome: write_page_fault"]
    assert report["coverage_percent"] == pytest.approx(66.7)
    assert report["growth"][-1] == [600, pytest.approx(66.7)]
    assert sum(w["runs"] for w in report["workers"].values()) == 6
    assert all(w["translations_per_second"] > 0 for w in report["workers"].values())
    summary = (tmp_path / "summary.md").read_text()
    assert "- iogate.outcome: write_page_fault" in summary
    assert "matplotlib is not installed" in summary or "coverage_growth.png" in summary
    assert json.loads((tmp_path / "campaign.json").read_text())["translations"] == 600


def test_report_merges_runs_with_a_bin_more(tmp_path, client):
    """A resumed campaign may mix runs from before and after a change to the cover points."""
    campaign = _campaign(tmp_path, {"extra_bin": [2]}, seeds="1-2", sims="verilator")
    report, _ = _run(campaign, client)
    assert report["coverage_merged_with"] == "cocotb_coverage.coverage.merge_coverage"
    assert report["coverage"]["iogate.outcome"]["bins"] == {
        "ok": 3, "read_page_fault": 1, "write_page_fault": 0, "cause256": 2}


def test_cli_maps_its_options_to_the_campaign_and_the_cluster(tmp_path, monkeypatch):
    seen = {}

    def fake_run(campaign, **kwargs):
        seen.update(kwargs, campaign=campaign)
        return {"mismatches": 0, "errors": []}

    monkeypatch.setattr(farm, "run_campaign", fake_run)
    f = tmp_path / "c.toml"
    f.write_text('seeds = "1-2"\ntranslations = 500\ncluster = "pbs"\n'
                 '[cluster_options]\nqueue = "long"\naccount = "hw"\ncores = 4\n')
    assert cli.main(["farm", str(f), "--seeds", "3-5", "--sim", "icarus", "--cluster",
                     "slurm", "--cluster-option", "queue=short", "--cluster-option",
                     "walltime=01:00:00", "--workers", "8"]) == 0
    c = seen["campaign"]
    assert (c.seeds, c.sims, c.translations, c.name) == ([3, 4, 5], ["icarus"], [500], "c")
    assert seen["cluster"] == "slurm" and seen["workers"] == 8
    # The command line wins over the file; the defaults fill in only what neither says.
    assert seen["cluster_options"] == {"queue": "short", "account": "hw", "cores": 4,
                                       "walltime": "01:00:00"}
    assert farm.jobqueue_kwargs(seen["cluster_options"])["processes"] == 1


def test_a_scheduler_without_workers_is_a_clear_error():
    cluster = LocalCluster(n_workers=0, dashboard_address=":0")
    try:
        with pytest.raises(FarmError, match="no Dask worker joined"):
            with farm.open_client(scheduler=cluster.scheduler_address, timeout=2):
                pass
    finally:
        cluster.close()
