"""The layer order of DESIGN (docs/design.md, "Layers and folders"), kept true.

``pyproject.toml`` states it as import-linter contracts: in ``iogate``, cosim above firmware
and boards, all above hdl; in ``iogate.cosim``, cli, bench, regress, scenarios, targets,
check and host, model, each importing only from its own layer and those below. And the
layers that promise to need no simulator import with cocotb made unimportable.
"""

import pathlib
import shutil
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=str(pathlib.Path(sys.executable).parent))

#: Packages that must import without cocotb (or a simulator) installed.
COCOTB_FREE = ["iogate.hdl", "iogate.firmware", "iogate.boards", "iogate.cosim.model",
               "iogate.cosim.host", "iogate.cosim.check"]


def test_import_linter_contracts_are_kept():
    assert LINT_IMPORTS is not None, "import-linter (the test extra) is not installed"
    run = subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 kept, 0 broken" in run.stdout, run.stdout


def test_every_cosim_layer_is_named_in_the_contract():
    """The contract is exhaustive: a new cosim package must be placed in a layer."""
    import tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    cosim = next(c for c in contracts if c["containers"] == ["iogate.cosim"])
    named = {name.strip() for layer in cosim["layers"] for name in layer.split("|")}
    present = {p.name for p in (ROOT / "cosim").iterdir()
               if (p / "__init__.py").exists()} | {
        p.stem for p in (ROOT / "cosim").glob("*.py") if p.name != "__init__.py"}
    assert present == named


def _import_everything_without_cocotb(packages):
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, pkgutil, sys

        class NoCocotb(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("cocotb", "cocotbext", "cocotb_tools",
                                          "cocotb_coverage"):
                    raise ImportError(f"{{name}} is not installed here")
                return None

        sys.meta_path.insert(0, NoCocotb())
        for top in {packages!r}:
            package = importlib.import_module(top)
            for info in pkgutil.walk_packages(package.__path__, top + "."):
                importlib.import_module(info.name)
        print("ok")
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_cocotb_free_layers_import_without_cocotb():
    run = _import_everything_without_cocotb(COCOTB_FREE)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_the_cocotb_blocker_does_block():
    """The check above can fail: the test bench itself needs cocotb."""
    run = _import_everything_without_cocotb(["iogate.cosim.targets.tb"])
    assert run.returncode != 0
    assert "cocotb" in run.stderr
