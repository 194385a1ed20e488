"""A directed test shrunk by `iogate shrink 6` from the run of

    iogate regress --seed 6 --translations 3000 --sim verilator --config default
      --mutant iotlb-drop-vma-av

4 events (2 requests) after the seed's world, of the run's 22.
The first mismatch when shrunk:

    MISMATCH read did=0x5f iova=0x31d99e12c8
    expected: fault cause=13 (READ_PAGE_FAULT)
    got:      pa=0x723cbf312c8 rw- pbmt=0

Replays exactly these events (:mod:`iogate.cosim.regress.cocotb_regress`) on Verilator and
Icarus, every answer checked against the model: it fails while the bug is there and passes
once it is fixed."""

import pytest

from iogate.cosim.regress.shrink import replay
from iogate.cosim.targets.sim import SIMULATORS

SEED = 6
CONFIG = 'default'
EVENTS = [
    ['translate', [[95, 214104465280, 'write', None, False]]],
    ['churn', [['unmap', 95, 0, 214104408064, 65536]]],
    ['settle'],
    ['translate', [[95, 214104412872, 'read', None, False]]],
]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_shrunk_seed6(simulator, tmp_path):
    report = replay(SEED, EVENTS, simulator, config=CONFIG, work=tmp_path)
    assert report is not None, f"the simulator ended without a report; see {tmp_path}"
    assert report["mismatches"] == 0, report["mismatch_details"]
