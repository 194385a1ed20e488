"""iogate farm on the RTL: a small campaign (seeds 1 and 3, which choose the default Config, on
Verilator and Icarus, 300 translations each) on a 2-worker LocalCluster through the command
line, resumed without rerunning; the same campaign on a separately started `dask scheduler`
with two `dask worker` processes; and the broken RTL of cosim.regress.mutants (a dropped
IOTINVAL.VMA AV=1) caught by a campaign and shrunk to a directed test that fails on it and
passes on the real RTL."""

import ast
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

from iogate.cosim import cli
from iogate.cosim.regress import farm, shrink

SEEDS = "1,3"
BIN = pathlib.Path(sys.executable).parent
MUTANT = "iotlb-drop-vma-av"
#: What `iogate shrink 6 --translations 3000 --config default --mutant iotlb-drop-vma-av`
#: wrote (22 events of 800 requests down to 4 events), committed as a directed test.
SHRUNK = (pathlib.Path(__file__).parents[1] / "regress_shrunk"
          / "test_shrunk_seed6_verilator_iotlb_drop_vma_av.py")


def _check_clean(report, runs=4):
    assert report["runs"] == runs and report["missing"] == [] and report["errors"] == []
    assert report["mismatches"] == 0, report["failing"]
    assert report["verilator_translations"] >= 600 and report["icarus_translations"] >= 600
    assert report["coverage_merged_with"] == "cocotb_coverage.coverage.merge_coverage"
    # Merged: a bin is hit in the campaign when some run hit it, and only then.
    runs_bins = [json.loads(pathlib.Path(r).read_text())["coverage"]["iogate.outcome"]["bins"]
                 for r in _reports(report)]
    merged = report["coverage"]["iogate.outcome"]["bins"]
    assert merged == {b: sum(r[b] for r in runs_bins) for b in merged}
    assert "iogate.outcome: instruction_guest_page_fault" in report["never_hit"]  # default


def _reports(report):
    folder = pathlib.Path(report["_folder"])
    return [json.loads(line)["report"]
            for line in (folder / "results.jsonl").read_text().splitlines()]


@pytest.mark.cocotb
def test_local_campaign_on_two_workers(tmp_path, capsys):
    argv = ["farm", "--seeds", SEEDS, "--sim", "verilator,icarus", "--translations", "300",
            "--workers", "2", "--out", str(tmp_path), "--name", "ci"]
    start = time.monotonic()
    assert cli.main(argv) == 0
    wall = time.monotonic() - start
    out = capsys.readouterr().out
    assert "dashboard: http" in out and "4 to run" in out
    report = json.loads((tmp_path / "campaign.json").read_text())
    report["_folder"] = str(tmp_path)
    _check_clean(report)
    rate = report["translations"] / report["wall_s"]
    print(f"2-worker campaign: {report['translations']} translations in {report['wall_s']} s "
          f"({rate:.0f}/s; {wall:.0f} s with the cluster), per worker: {report['workers']}")
    assert cli.main(argv) == 0                           # resumed: nothing to run
    assert "4 done before" in capsys.readouterr().out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler(tmp_path):
    """`dask scheduler` and two single-threaded `dask worker` processes on free ports."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
           "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("scheduler", "worker0", "worker1")]
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], env=env, stdout=logs[0],
                              stderr=subprocess.STDOUT)]
    try:
        for log in logs[1:]:
            procs.append(subprocess.Popen(
                [BIN / "dask", "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--host", "127.0.0.1"], env=env, stdout=log,
                stderr=subprocess.STDOUT))
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()


@pytest.mark.cocotb
def test_campaign_on_a_separate_scheduler(tmp_path, scheduler):
    campaign = farm.Campaign(seeds=SEEDS, sims="verilator,icarus", translations=300,
                             name="ci", out=str(tmp_path / "farm"))
    with farm.open_client(scheduler=scheduler, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        report = farm.run_campaign(campaign, client=client)
    report["_folder"] = str(tmp_path / "farm")
    _check_clean(report)
    assert len(report["workers_this_session"]) >= 1
    assert all(w.startswith("tcp://127.0.0.1:") for w in report["workers"])


@pytest.mark.cocotb
def test_a_campaign_catches_the_dropped_invalidation(tmp_path):
    """Seed 6 on the mutant: the campaign reports the mismatch with its replay and shrink
    commands (the good RTL runs the same seed clean in test_local_campaign...)."""
    campaign = farm.Campaign(seeds="6", sims="verilator", translations=1000,
                             configs=["default"], mutant=MUTANT, name="mutant",
                             out=str(tmp_path))
    report = farm.run_campaign(campaign, workers=1)
    assert report["mismatches"] > 0 and report["errors"] == []
    (failing,) = report["failing"]
    assert failing["replay"] == ("iogate regress --seed 6 --translations 1000 --sim verilator "
                                 f"--config default --mutant {MUTANT}")
    assert failing["shrink"].startswith("iogate shrink 6 --sim verilator --translations 1000")


def _shrunk():
    tree = ast.parse(SHRUNK.read_text())
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
            if isinstance(n, ast.Assign)}


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ("verilator", "icarus"))
def test_the_shrunk_test_fails_on_the_broken_rtl(simulator, tmp_path):
    """The directed test's events mismatch on the mutant (a stale translation after the
    unmap's IOTINVAL.VMA and IOFENCE.C); on the real RTL they pass (the directed test)."""
    shrunk = _shrunk()
    assert len(shrunk["EVENTS"]) <= 40                    # a few dozen events at most
    report = shrink.replay(shrunk["SEED"], shrunk["EVENTS"], simulator,
                           config=shrunk["CONFIG"], mutant=MUTANT, work=tmp_path)
    assert report is not None and report["mismatches"] > 0
    assert "expected: fault" in report["mismatch_details"][0]
