"""The ``iogate`` namespace: the package list in pyproject.toml matches the folders, and the
wheel installs into a fresh virtual environment and imports from there.

Only the ``iogate`` name is installed (``hdl``, ``cosim``, ``firmware`` and ``boards`` are
folders of the repository, installed as ``iogate.hdl`` and so on), so another package with
one of those generic names cannot clash with iogate.
"""

import pathlib
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import venv
import zipfile
from collections import Counter

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = ("hdl", "cosim", "firmware", "boards")


def _packages_in_tree():
    found = {"iogate"}
    for top in FOLDERS:
        for init in (ROOT / top).rglob("__init__.py"):
            found.add("iogate." + ".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_the_package_list_names_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"iogate": "."}
    assert set(config["packages"]) == _packages_in_tree()


def test_the_editable_install_serves_the_namespace_and_its_entry_points():
    from iogate.hdl.config import Config

    import iogate
    from iogate.cosim.model import IommuModel
    assert pathlib.Path(iogate.__file__).resolve() == ROOT / "__init__.py"
    assert iogate.Config is Config and iogate.IommuModel is IommuModel
    assert callable(iogate.main)


def test_the_wheel_installs_into_a_fresh_venv_and_imports(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "-w", str(dist), str(ROOT)], check=True, capture_output=True)
    wheel, = dist.glob("iogate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("iogate-")}
    assert tops == {"iogate"}, f"the wheel installs top-level names {sorted(tops)}"
    assert "iogate/cosim/targets/batch/plain_main.cpp" in names

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, capture_output=True)
    # The dependencies (amaranth, cocotb, ...) come from this test's own environment,
    # appended after the fresh venv's site-packages; its editable-install hook is not
    # run from there, so iogate can only come from the wheel.
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (pathlib.Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = textwrap.dedent("""
        import importlib, pkgutil, iogate
        print(iogate.__file__)
        for info in pkgutil.walk_packages(iogate.__path__, "iogate."):
            if info.name.startswith("iogate.tests"):
                raise SystemExit("tests are installed")
            importlib.import_module(info.name)
        print(iogate.Config.__module__, iogate.IommuModel.__name__)
    """)
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    where, entry = run.stdout.split("\n")[:2]
    assert pathlib.Path(where).is_relative_to(env), where
    assert entry == "iogate.hdl.config IommuModel"


def test_test_modules_have_unique_basenames():
    # The test folders have no __init__.py, so pytest imports each module by its basename:
    # two test_x.py in different folders collide ("import file mismatch") and one of them
    # never runs. conftest.py is the exception pytest handles itself.
    names = Counter(p.name for p in (ROOT / "tests").rglob("*.py")
                    if p.name != "conftest.py" and "__pycache__" not in p.parts)
    assert [name for name, n in names.items() if n > 1] == []
