"""iogate.cosim.scenarios.on_board: the ``iogate run`` scenarios over a board link.

The board here is made of a second, independent architectural model behind the link's API
(register and memory access, and the DMA requester's ``translate``), with the on-chip RAM
of the boards (128 KiB at 0x8000_0000; outside it every access faults, as the bridge answers
DECERR). A faithful board must give 0 mismatches and pass the scenario's own checks; a board
whose answers are wrong must be caught.
"""


import pytest

from iogate.hdl import Config
from iogate.hdl.port import Access

from iogate.cosim.check.request import BoardTranslation
from iogate.cosim.model import IommuModel
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.memory import Memory
from iogate.cosim.scenarios.on_board import BOARD_SCENARIOS, BoardProbe, run_on_board

RAM_BASE, RAM_SIZE = 0x8000_0000, 128 * 1024


class ModelBoard(ModelBus):
    """The link API over an IommuModel; ``corrupt`` flips PPN bit 0 of every answer."""

    def __init__(self, config=Config.full(), corrupt=False):
        memory = Memory()
        memory.inject_fault(0, RAM_BASE)
        memory.inject_fault(RAM_BASE + RAM_SIZE, memory.size)
        super().__init__(IommuModel(config, memory))
        self.ram_base, self.ram_size = RAM_BASE, RAM_SIZE
        self.corrupt = corrupt
        self.requests = 0

    def translate(self, device_id, iova, access, count=1):
        self.requests += 1
        r = self.iommu.translate(device_id, iova, access)
        ppn = r.ppn ^ 1 if self.corrupt and not r.fault else r.ppn
        return BoardTranslation(fault=r.fault, cause=int(r.cause), ppn=ppn, r=r.r, w=r.w,
                                x=r.x, pbmt=int(r.pbmt), hit=False, hits=0, cycles=0,
                                pa=ppn << 12 | iova & 0xFFF)


@pytest.mark.parametrize("name", BOARD_SCENARIOS)
def test_scenario_on_a_faithful_board(name):
    board = ModelBoard()
    report = run_on_board(board, name, seed=3)
    assert report["error"] is None, report["error"]
    assert report["mismatches"] == 0, report["mismatch_details"]
    # Every DMA the scenario asked about went through the board's requester.
    assert report["translations"] == board.requests > 0


def test_a_wrong_board_is_caught():
    report = run_on_board(ModelBoard(corrupt=True), "vfio", seed=3)
    assert report["mismatches"] > 0
    assert report["error"] is not None      # the scenario's own check saw it too


def test_probe_answers_with_the_models_result():
    board = ModelBoard()
    probe = BoardProbe(board, IommuModel(Config.full(), Memory()))
    got = probe.translate(0x21, 0x1000, Access.WRITE)
    # Both are Off after reset: all inbound transactions disallowed (cause 256).
    assert (got.fault, got.cause) == (True, 256)
    assert probe.scoreboard.mismatches == []


def test_unknown_scenario():
    with pytest.raises(ValueError, match="nested"):
        run_on_board(ModelBoard(), "nested")


def test_the_icebreaker_runs_what_fits_it():
    # PAS 32 and 1LVL: process memory at 0x2_0000_0000 cannot be mapped (the driver says
    # so before touching the board), restricted-dma's pools are below 4 GiB.
    from iogate.boards import icebreaker
    ok = run_on_board(ModelBoard(icebreaker.CONFIG), "restricted-dma", seed=1)
    assert (ok["error"], ok["mismatches"]) == (None, 0) and ok["translations"] > 0
    refused = run_on_board(ModelBoard(icebreaker.CONFIG), "vfio", seed=1)
    assert "32-bit output space" in refused["error"] and refused["translations"] == 0
