"""The regression's event hook on the RTL: a seeded run records its events, and replaying them
(IOGATE_EVENTS) after the same world gives the same run (the same translations, IOTLB hits
and misses, fault records and commands), on Verilator and Icarus; a filtered list plays
only what it keeps."""

import json

import pytest

from iogate.cosim.regress import shrink
from iogate.cosim.regress.run import regress
from iogate.cosim.targets.sim import SIMULATORS

SEED = 3                       # the default Config; its 300 translations have churn and ddtp
SAME = ("translations", "iotlb_hits", "iotlb_misses", "fault_records", "commands",
        "mismatches", "ddt_mode", "config")


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_a_recorded_run_replays_the_same(simulator, tmp_path):
    print(f"seed {SEED}")
    record = tmp_path / "events.json"
    assert regress(SEED, 300, simulator, out=tmp_path / "live", record=record) == 0
    live = json.loads((tmp_path / "live" / f"{simulator}-seed{SEED}" / "report.json")
                      .read_text())
    events = json.loads(record.read_text())
    kinds = {e[0] for e in events}
    assert {"translate", "churn", "settle", "check"} <= kinds
    replayed = shrink.replay(SEED, events, simulator, work=tmp_path / "replay")
    assert {k: replayed[k] for k in SAME} == {k: live[k] for k in SAME}
    requests = [e for e in events if e[0] == "translate"][:1]
    part = shrink.replay(SEED, requests, simulator, work=tmp_path / "part")
    assert part["translations"] == len(requests[0][1]) and part["commands"] == 0
