"""iogate.cosim.client: host scripts on the model and on a model-backed board (no simulator).

The README's example must run with 0 mismatches; a script that raises must give a report
naming its line and a non-zero status; a target that disagrees with the model must be
counted; a register access the spec does not allow must be refused on the model and be
answered by the board as its bridge answers.
"""

import json
import pathlib

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import Offset

from iogate.cosim import cli
from iogate.cosim.client.run import run
from iogate.cosim.client.targets import ModelTarget
from model_board import ModelBoard

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "cosim" / "client" / "examples" / "readme_example.py")


def script(tmp_path, text, name="user_script.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("config", [Config(), Config.full(), Config.icebreaker()])
def test_the_readme_example_on_the_model(config):
    r = run(EXAMPLE, target="model", config=config)
    assert r["error"] is None, r["error"]
    assert r["mismatches"] == 0, r["mismatch_details"]
    # Mapped: the buffer's page; unmapped: a read page fault, reported on the fault line
    # (icvec.fiv = 1 as the driver distributes the vectors).
    assert r["result"]["cause"] == 13 and r["result"]["line"] == 1
    assert r["result"]["faults"] == 1
    assert r["translations"] == 2 and r["faults"] == {13: 1}


def test_the_command_writes_the_report_and_ends_in_mismatches(tmp_path, capsys):
    report = tmp_path / "r.json"
    assert cli.main(["host", EXAMPLE, "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-2] == "mismatches: 0"
    assert json.loads(report.read_text())["mismatches"] == 0


def test_a_script_that_raises_names_its_line(tmp_path, capsys):
    path = script(tmp_path, "value = host.bus.mmio_read(0, 8)\n\n"
                            "def helper():\n    raise RuntimeError('driver gave up')\n\n"
                            "helper()\n")
    report = tmp_path / "r.json"
    assert cli.main(["host", path, "--report", str(report)]) == 1
    r = json.loads(report.read_text())
    assert r["error"]["type"] == "RuntimeError"
    assert r["error"]["line"] == "user_script.py:4"
    # Only the script's frames: where it called, and where it raised.
    assert [t.split(" in ")[0] for t in r["error"]["traceback"]] == ["user_script.py:6",
                                                                    "user_script.py:4"]
    assert "script failed at user_script.py:4: RuntimeError: driver gave up" in \
        capsys.readouterr().out


def test_a_disagreeing_target_is_counted():
    """The target's capabilities register is perturbed (one Sv48 bit the model does not
    have): the read returns what the target said, and is one mismatch."""
    from iogate.cosim.client.host import Host
    target = ModelTarget(Config())
    target.iommu.regs.capabilities ^= 1 << 10
    host = Host(target)
    value = host.bus.mmio_read(Offset.CAPABILITIES, 8)
    assert value == Config().capabilities ^ 1 << 10
    assert host.mismatches == [f"mmio read 0x000/8: target {value:#x} model "
                               f"{Config().capabilities:#x}"]


def test_a_disagreeing_translation_is_counted(tmp_path):
    """The target walks other tables than the model (one PTE changed in the target's
    memory only): the DMA answer is counted as a mismatch."""
    from iogate.cosim.client.host import Host
    from iogate.cosim.client.script import execute
    target = ModelTarget(Config())
    host = Host(target)
    path = script(tmp_path, EXAMPLE_PREFIX + "ok = host.dma(0x42, 0x10_0010, 'read')\n")
    original = target.iommu.memory.write

    def perturb(address, data):
        # Every leaf PTE the target stores points one page further.
        if len(data) == 8 and int.from_bytes(data, "little") & 0xCF == 0xC7:
            data = (int.from_bytes(data, "little") + (1 << 10)).to_bytes(8, "little")
        original(address, data)

    target.iommu.memory.write = perturb
    r = execute(path, host)
    assert r["mismatches"] == 1 and "MISMATCH" in r["mismatch_details"][0]


EXAMPLE_PREFIX = """
from iogate.hdl.formats import IosatpMode
from iogate.firmware.driver import Iommu
iommu = Iommu(host.bus, host.alloc)
iommu.init(device_id_bits=7)
table = iommu.page_table(IosatpMode.SV39)
iommu.set_first_stage(0x42, table, pscid=1)
buffer = host.alloc.alloc()
iommu.map(table, 0x10_0000, buffer, 0x1000, r=True, w=True, pscid=1)
"""


def test_no_check_compares_nothing():
    target = ModelTarget(Config())
    target.iommu.regs.capabilities ^= 1 << 10
    from iogate.cosim.client.host import Host
    host = Host(target, check=False)
    host.bus.mmio_read(Offset.CAPABILITIES, 8)
    assert host.mismatches == [] and host.report()["checked"] is False


@pytest.mark.parametrize("access, message", [
    ("host.bus.mmio_read(0x10, 2)", "size must be 4 or 8, not 2"),
    ("host.bus.mmio_read(0x14, 8)", "offset 0x14 is not aligned to 8 bytes"),
    ("host.bus.mmio_write(0x1000, 4, 1)", "within the 4 KiB register page, not 4096"),
    ("host.bus.mmio_write(0xFFC, 8, 1)", "offset must be within the 4 KiB register page, not 4092"),
])
def test_a_bad_register_access_is_refused_on_the_model(tmp_path, access, message):
    r = run(script(tmp_path, f"x = 1\n{access}\n"), target="model")
    assert r["error"]["type"] == "RegisterAccessError"
    assert message in r["error"]["message"]
    assert r["error"]["line"] == "user_script.py:2"


def test_dma_arguments_are_checked(tmp_path):
    r = run(script(tmp_path, "host.dma(1, 0x1000, 'read', pasid=5)\n"), target="model")
    assert r["error"]["type"] == "ValueError" and "pasid" in r["error"]["message"]
    r = run(script(tmp_path, "host.dma(1, 0x1000, 'fetch')\n"), target="model")
    assert r["error"]["type"] == "ValueError" and "access" in r["error"]["message"]


def test_waiting_for_an_interrupt_that_never_comes(tmp_path):
    r = run(script(tmp_path, "host.wait_interrupt(1, timeout_cycles=500)\n"), target="model")
    assert r["error"]["type"] == "InterruptTimeout"
    assert r["cycles"] == 500


def test_an_interrupt_handler_runs_when_its_line_rises(tmp_path):
    text = EXAMPLE_PREFIX.replace("Iommu(host.bus, host.alloc)",
                                  "Iommu(host.bus, host.alloc, interrupts=True)") + """
seen = []
def on_fault(line):
    seen.append((line, len(iommu.drain_faults().records)))
    host.bus.mmio_write(0x54, 4, 2)          # ipsr.fip, RW1C
host.on_interrupt(1, on_fault)
iommu.unmap(table, 0x10_0000, 0x1000, pscid=1)
host.dma(0x42, 0x10_0000, 'write')
host.dma(0x42, 0x10_0000, 'read')
result = seen
"""
    r = run(script(tmp_path, text), target="model")
    assert r["error"] is None, r["error"]
    assert [tuple(s) for s in r["result"]] == [(1, 1), (1, 1)]
    assert r["interrupts"]["handled"] == {"1": 2}


def test_the_readme_example_on_a_model_backed_board(tmp_path):
    with ModelBoard() as board:
        report = tmp_path / "r.json"
        status = cli.main(["host", EXAMPLE, "--target", "board", "--port", board.port,
                           "--report", str(report)])
        r = json.loads(report.read_text())
    assert status == 0, r
    assert r["mismatches"] == 0 and r["error"] is None
    assert r["result"]["cause"] == 13
    assert r["target"] == "board"


def test_a_bad_register_access_on_the_board_is_answered_by_the_bridge(tmp_path):
    with ModelBoard() as board:
        r = run(script(tmp_path, "host.bus.mmio_read(0x12, 4)\n"), target="board",
                port=board.port)
    assert r["error"]["type"] == "LinkError"
    assert "BAD_ARGUMENT" in r["error"]["message"]
    assert len(r["unchecked_accesses"]) == 1
    assert r["unchecked_accesses"][0].startswith("read 4 bytes at 0x12: offset 0x12 is not "
                                                 "aligned to 4 bytes")


def test_a_board_that_disagrees_is_caught():
    with ModelBoard(corrupt=True) as board:
        r = run(EXAMPLE, target="board", port=board.port)
    # The mapped read's answer is one page off: the model counts it, and the example's
    # own assertion fails on it.
    assert r["mismatches"] == 1 and "MISMATCH" in r["mismatch_details"][0]
    assert r["error"]["type"] == "AssertionError"


@pytest.mark.parametrize("config", ["default", "full", "bus32", "icebreaker"])
def test_the_linux_replay_on_the_model(config):
    from iogate.cosim.client.config import config_named
    r = run("iogate.cosim.scenarios.linux:replay", target="model", config=config_named(config))
    assert r["error"] is None, r["error"]
    assert r["mismatches"] == 0, r["mismatch_details"]
    assert r["result"]["fault_records"] == 9
