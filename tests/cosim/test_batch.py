"""Batch-mode cosimulation (iogate.cosim.targets.batch): the harness's player and recorder on
Verilator and Icarus, the interactive run of the same trace, and the plain Verilator harness.

Every response is checked against the architectural model; a corrupted response must be
reported, so the checker can fail. One trace spans two batches (more requests than the
harness holds), so the tag rule that puts responses back in request order is exercised
across a batch boundary.
"""


import pytest

from iogate.hdl import bits
from iogate.hdl.port import response_layout

from iogate.cosim.check.batch import in_request_order, verify
from iogate.cosim.regress.batch_runs import check, run_trace
from iogate.cosim.regress.trace import make_trace
from iogate.cosim.targets import sim
from iogate.cosim.targets.batch.harness import DEPTH
from iogate.cosim.targets.batch.trace import read_trace, write_trace

SEED = 5
#: Past one batch, so that the second batch is played too.
BATCH_TRANSLATIONS = DEPTH + 300
#: Interactive and plain runs: a few hundred.
SMALL = 300
TAG_WIDTH = 8

_runs = {}


def _run(mode, simulator, translations, tmp_path_factory):
    key = (mode, simulator, translations)
    if key not in _runs:
        trace, _ = make_trace(SEED, translations)
        work = tmp_path_factory.mktemp(f"{mode}-{simulator}")
        _runs[key] = run_trace(trace, mode, simulator, work=work)
    return _runs[key]


def _first_success(raws):
    layout = response_layout(TAG_WIDTH)
    for i, raw in enumerate(raws):
        if not bits.get(layout, raw, "fault"):
            return i
    raise AssertionError("no successful translation in the run")


def test_the_harness_build_key_covers_its_sources():
    """The batch harness's build is reused only while its sources are unchanged: every
    source pattern of its key names files under the checkout (a key that hashed no file
    would reuse a stale harness after an RTL change)."""
    from iogate.cosim.targets.batch import build
    assert (sim.ROOT / "pyproject.toml").exists()
    for pattern in build._SOURCES:
        assert sorted(sim.ROOT.glob(pattern)), pattern


def test_in_request_order_follows_the_tag_rule():
    # Tag width 2: request i has tag i % 4; the k-th answer with tag t is request t + 4k.
    arrival = [(1, "b"), (0, "a"), (3, "d"), (0, "e"), (2, "c"), (1, "f")]
    raws = [tag | ord(name) << 2 for tag, name in arrival]
    ordered = in_request_order(raws, 2)
    assert [chr(r >> 2) for r in ordered] == ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(ValueError, match="beyond the 2 sent"):
        in_request_order([1, 1], 2)


def test_trace_file_round_trip(tmp_path):
    trace, _ = make_trace(SEED, 50)
    write_trace(trace, tmp_path / "t.txt")
    again = read_trace(tmp_path / "t.txt")
    assert again.ops == trace.ops and again.requests == trace.requests
    # Setup writes registers and polls them; every RAM write is a doubleword of the RAM.
    kinds = {op[0] for op in trace.ops}
    assert kinds == {"W", "R", "M"}


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_batch_run_has_no_mismatch(simulator, tmp_path_factory):
    run = _run("batch", simulator, BATCH_TRANSLATIONS, tmp_path_factory)
    assert run.setup_mismatches == []
    assert len(run.raws) == BATCH_TRANSLATIONS
    board, _ = check(SEED, BATCH_TRANSLATIONS, run.raws)
    assert board.translations == BATCH_TRANSLATIONS
    assert [str(m) for m in board.mismatches] == []
    # The world has faults and successes; both kinds came back.
    assert board.faults and board.translations > sum(board.faults.values())
    assert run.cycles >= BATCH_TRANSLATIONS          # at most one request per clock


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_batch_corrupted_response_is_a_mismatch(simulator, tmp_path_factory):
    run = _run("batch", simulator, BATCH_TRANSLATIONS, tmp_path_factory)
    raws = list(run.raws)
    i = _first_success(raws)
    layout = response_layout(TAG_WIDTH)
    ppn = bits.get(layout, raws[i], "ppn")
    raws[i] = bits.put(layout, raws[i], "ppn", ppn ^ 1)
    trace, model = make_trace(SEED, BATCH_TRANSLATIONS)
    board = verify(model, trace.requests, raws, TAG_WIDTH)
    assert len(board.mismatches) == 1
    bad = board.mismatches[0]
    assert bad.got.ppn == ppn ^ 1 and bad.got.fault is False
    # A lost response is a mismatch too.
    trace, model = make_trace(SEED, BATCH_TRANSLATIONS)
    board = verify(model, trace.requests, run.raws[:-1], TAG_WIDTH)
    assert len(board.mismatches) == 1 and board.mismatches[0].got is None


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_interactive_run_of_the_trace_has_no_mismatch(simulator, tmp_path_factory):
    run = _run("interactive", simulator, SMALL, tmp_path_factory)
    assert run.setup_mismatches == []
    board, _ = check(SEED, SMALL, run.raws)
    assert board.translations == SMALL and [str(m) for m in board.mismatches] == []


def test_plain_verilator_harness_output_verifies(tmp_path_factory):
    # A Verilator C++ harness (no cocotb): Verilator only.
    run = _run("plain", "verilator", SMALL, tmp_path_factory)
    assert run.setup_mismatches == []
    board, _ = check(SEED, SMALL, run.raws)
    assert board.translations == SMALL and [str(m) for m in board.mismatches] == []
