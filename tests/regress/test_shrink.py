"""iogate.cosim.regress.shrink without a simulator: ddmin finds the 1-minimal failing event
list of synthetic predicates, request batches split to single requests, the directed test
it writes is valid Python that replays exactly the events; and the churn a run records is
replayed to the same tables (iogate.cosim.regress.world.replay_churn) on the model."""

import ast
import random
import subprocess
import sys

import pytest

from iogate.cosim.model import IommuModel
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.memory import Memory
from iogate.cosim.regress import shrink
from iogate.cosim.regress.world import CONFIGS, build_world, churn, replay_churn


def test_ddmin_finds_the_two_events_that_matter():
    """A failure needing event 13 (the table change) and then event 71 (the request)."""
    events = list(range(100))
    calls = []

    def fails(sub):
        calls.append(len(sub))
        return 13 in sub and 71 in sub and sub.index(13) < sub.index(71)

    assert shrink.ddmin(events, fails) == [13, 71]
    assert len(calls) < 60                      # far fewer than the 2^100 subsets


@pytest.mark.parametrize("seed", range(5))
def test_ddmin_result_is_one_minimal(seed):
    rng = random.Random(seed)
    print(f"seed {seed}")
    needed = set(rng.sample(range(40), rng.randint(1, 5)))
    events = list(range(40))

    def fails(sub):
        return needed <= set(sub)

    out = shrink.ddmin(events, fails)
    assert set(out) == needed and out == sorted(out)
    for i in range(len(out)):                   # 1-minimal: no single event can go
        assert not fails(out[:i] + out[i + 1:])


def test_ddmin_of_a_failure_that_needs_everything_keeps_everything():
    assert shrink.ddmin([1, 2, 3], lambda sub: len(sub) == 3) == [1, 2, 3]


def test_split_requests_and_the_directed_test(tmp_path):
    events = [["translate", [[1, 0x1000, "read", None, False], [2, 0x2000, "write", 5, True]]],
              ["churn", [["unmap", 1, 0, 4096, 4096], ["pc", 9, 1, 0, True, False]]],
              ["settle"],
              ["ddtp", "BARE", [[3, 0, "read", None, False]]], ["check", "after 2"]]
    split = shrink.split_requests(events)
    assert split[:2] == [["translate", [[1, 0x1000, "read", None, False]]],
                         ["translate", [[2, 0x2000, "write", 5, True]]]]
    assert split[2:4] == [["churn", [["unmap", 1, 0, 4096, 4096]]],
                          ["churn", [["pc", 9, 1, 0, True, False]]]]
    assert split[4:] == events[2:]
    source = shrink.directed_test_source(7, "icarus", "full", split, translations=400,
                                         first="MISMATCH read\n  expected: x\n  got: y",
                                         tried=40, mutant="iotlb-drop-vma-av")
    path = tmp_path / "test_shrunk_seed7_icarus.py"
    path.write_text(source)
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(path)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout                # ready to commit as it is
    tree = ast.parse(source)
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
              if isinstance(node, ast.Assign)}
    assert values == {"SEED": 7, "CONFIG": "full", "EVENTS": split}
    assert "def test_shrunk_seed7(simulator, tmp_path)" in source
    assert 'assert report["mismatches"] == 0' in source
    assert "--seed 7 --translations 400 --sim icarus --config full" in source
    assert "--mutant iotlb-drop-vma-av" in source


@pytest.mark.parametrize("seed", [1, 5, 8])
def test_recorded_churn_replays_to_the_same_tables(seed):
    """Two worlds of one seed: churn drawn on one, its record replayed on the other, give
    the same memory and the same pending invalidations (on the model, no simulator)."""
    print(f"seed {seed}")
    config_name = ["default", "full", "process"][seed % 3]

    def world():
        memory = Memory()
        model = IommuModel(CONFIGS[config_name], memory)
        rng = random.Random(seed)
        return memory, build_world(rng, ModelBus(model), memory, config_name=config_name), rng

    mem_a, world_a, rng = world()
    mem_b, world_b, _ = world()
    for _ in range(6):
        ops = []
        pending_a = churn(rng, world_a, ops)
        pending_b = replay_churn(world_b, ops)
        assert len(pending_a) == len(pending_b) == len(ops)
        for (space_a, ch_a), (space_b, ch_b) in zip(pending_a, pending_b, strict=True):
            assert (space_a is None) == (space_b is None)
            if space_a is not None:
                assert ch_a.leaves == ch_b.leaves and ch_a.nonleaf == ch_b.nonleaf
    # The same changes described (a replayed PC change names its table and both bits).
    assert [d.split(" pc -> ")[0] for d in world_a.damaged] == \
        [d.split(" pc -> ")[0] for d in world_b.damaged]
    # Same memory, page for page (the private page map: no public walk over all memory).
    assert mem_a._pages.keys() == mem_b._pages.keys()
    assert all(mem_a._pages[k] == mem_b._pages[k] for k in mem_a._pages)
