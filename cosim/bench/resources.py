"""``iogate bench resources``: FPGA resources with the YoWASP toolchain (issues #5 and #8).

:func:`measure_resources` builds, with :func:`iogate.boards.build.build` and nextpnr's reports:

* the ICEBreaker top with its small Config (iCE40UP5K: logic cells, flip-flops, Fmax);
* the ECPIX-5 top with the full first-target Config on an ECP5-85 at speed grade 6, the
  grade the cost target is stated for (:func:`iogate.boards.ecpix5.grade6_platform`: LFE5U-85F,
  same CABGA554 package), once per IOTLB size of the sweep; the Config's own size gives
  the headline figures (``ecp5_85_*``);
* the core alone (:func:`core_lut4`): Yosys's ``synth_ecp5`` of :class:`iogate.hdl.iommu.Iommu`
  with its ports as the design's ports, no board logic;
* where the LUTs go (:func:`breakdown`): the headline build's netlist synthesised again
  with ``synth_ecp5 -noflatten``, counted per module and rolled up into the IOMMU's units
  and the board's logic. Without flattening Yosys cannot remove logic across a module
  boundary (device-context fields nobody reads, constant ports), so the modules add up to
  more than the flattened design; the shares are what the breakdown is for.

ECP5 logic is counted as nextpnr counts it (``TRELLIS_COMB``): a LUT4 is one, a carry
(``CCU2C``) and a 16x4 distributed RAM (``TRELLIS_DPR16X4``) two each.
"""

import json
import pathlib
import subprocess
import sys
import time

__all__ = ["UNITS", "parse_yosys_stat", "cell_counts", "group_breakdown", "breakdown",
           "core_lut4", "summarize", "measure_resources"]

#: The IOMMU's units, as module paths under the ``Iommu`` (:mod:`iogate.hdl.iommu`); a module
#: belongs to the longest unit its path starts with, the rest to ``iommu`` (its own glue).
UNITS = ("regfile", "cmdq", "fq", "mem_master", "pipeline", "pipeline.ddtw",
         "pipeline.ddtc", "pipeline.ptw", "pipeline.iotlb")

#: What the Iommu's instance is called in the board top (:class:`iogate.boards.top.BoardTop`).
CORE_NAME = "iommu"

#: Primitive cells counted, and what each costs in nextpnr's ``TRELLIS_COMB``.
_COMB_WEIGHT = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 2}
_KEYS = {"LUT4": "lut4", "TRELLIS_FF": "ff", "CCU2C": "ccu2c", "TRELLIS_DPR16X4": "dpr16x4",
         "DP16KD": "dp16kd"}


def _yosys():
    import os

    from iogate.boards.build import _use_yowasp
    _use_yowasp()
    return os.environ["YOSYS"]


def parse_yosys_stat(stat):
    """Cells per module from Yosys's ``stat -json`` (a dict).

    Returns ``{module name: {cell type: count}}``, primitive cells only (an instance of
    another module of the design is not a cell of its own), module names without Yosys's
    leading backslash.
    """
    modules = stat["modules"]
    names = {name.lstrip("\\") for name in modules}
    out = {}
    for name, module in modules.items():
        cells = module.get("num_cells_by_type", {})
        out[name.lstrip("\\")] = {cell: n for cell, n in cells.items()
                                  if cell.lstrip("\\") not in names}
    return out


def cell_counts(cells):
    """``{lut4, ff, ccu2c, dpr16x4, dp16kd, comb}`` of a ``{cell type: count}``."""
    out = {key: cells.get(cell, 0) for cell, key in _KEYS.items()}
    out["comb"] = sum(w * cells.get(cell, 0) for cell, w in _COMB_WEIGHT.items())
    return out


def _add(a, b):
    return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}


def group_breakdown(cells_by_module, core=CORE_NAME):
    """Roll a per-module count up into the core's :data:`UNITS` and the board's parts.

    Module names are Amaranth's dotted instance paths (``top.top.iommu.pipeline.iotlb``);
    the core is the module whose last component is ``core``. Board modules are rolled up
    by their first component under the core's parent (``bridge``, ``memory``...); the
    rest (the pins, the PLL's reset) count as ``other``.

    Returns
    -------
    dict
        ``core`` and ``board`` (totals), ``core_units`` and ``board_parts`` (each
        ``{name: counts}`` as :func:`cell_counts` gives them), ``total``.

    Raises
    ------
    ValueError
        If no module is the core.
    """
    cores = [name for name in cells_by_module if name.split(".")[-1] == core]
    if len(cores) != 1:
        raise ValueError(f"expected one module named {core!r}, found {sorted(cores)}")
    core_path = cores[0]
    parent = core_path.rsplit(".", 1)[0] if "." in core_path else ""
    units, parts = {}, {}
    for name, cells in cells_by_module.items():
        counts = cell_counts(cells)
        if name == core_path or name.startswith(core_path + "."):
            rel = name[len(core_path) + 1:]
            unit = max((u for u in UNITS if rel == u or rel.startswith(u + ".")),
                       key=len, default=core)
            units[unit] = _add(units.get(unit, {}), counts)
        else:
            rel = name[len(parent) + 1:] if parent and name.startswith(parent + ".") else ""
            part = rel.split(".")[0] if rel else "other"
            parts[part] = _add(parts.get(part, {}), counts)
    core_total = {}
    for counts in units.values():
        core_total = _add(core_total, counts)
    board_total = {}
    for counts in parts.values():
        board_total = _add(board_total, counts)

    def order(d):
        return dict(sorted(d.items(), key=lambda kv: -kv[1]["comb"]))

    return {"core": core_total, "board": board_total, "total": _add(core_total, board_total),
            "core_units": order(units), "board_parts": order(parts)}


def _synth_stat(il, work_dir, *, flatten):
    """Run ``synth_ecp5`` on the RTLIL file ``il``; Yosys's ``stat -json`` as a dict.

    ``work_dir`` (for the script, the log and the statistics) must be ``il``'s folder or
    below it: YoWASP's Yosys sees the folder it runs in and nothing above it.
    """
    il = pathlib.Path(il).resolve()
    work_dir = pathlib.Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    rel = work_dir.relative_to(il.parent).as_posix()
    (work_dir / "synth.ys").write_text(
        f"read_rtlil {il.name}\n"
        f"synth_ecp5 {'' if flatten else '-noflatten '}-top top\n"
        f"tee -q -o {rel}/stat.json stat -json\n")
    subprocess.run([_yosys(), "-q", "-l", f"{rel}/synth.log", f"{rel}/synth.ys"],
                   cwd=il.parent, check=True)
    return json.loads((work_dir / "stat.json").read_text())


def breakdown(build_dir, *, out=None):
    """LUTs and flip-flops per unit of a finished ECP5 build in ``build_dir``.

    Synthesises the build's ``top.il`` again with ``synth_ecp5 -noflatten`` (in
    ``build_dir/breakdown``) and returns :func:`group_breakdown` of it, with
    ``flattened`` (what the same synthesis counts flattened, from the build's own
    ``top.rpt``, for comparison) when the log is there. Written to ``out`` (default
    ``build_dir/breakdown.json``).
    """
    build_dir = pathlib.Path(build_dir)
    stat = _synth_stat(build_dir / "top.il", build_dir / "breakdown", flatten=False)
    report = group_breakdown(parse_yosys_stat(stat))
    report["method"] = "yosys synth_ecp5 -noflatten, per module"
    flat = _flattened_counts(build_dir / "top.rpt")
    if flat is not None:
        report["flattened"] = flat
    out = pathlib.Path(out) if out else build_dir / "breakdown.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _flattened_counts(rpt):
    """:func:`cell_counts` of the last statistics of a flattened build's Yosys log."""
    import re
    if not rpt.exists():
        return None
    last = rpt.read_text().rsplit("=== top ===", 1)[-1]
    cells = {cell: int(n) for n, cell in re.findall(r"^\s+(\d+)\s+(\w+)\s*$", last, re.M)
             if cell in _KEYS}
    return cell_counts(cells) if cells else None


def core_lut4(config, work_dir):
    """LUT4 equivalents of :class:`iogate.hdl.iommu.Iommu` alone, ``synth_ecp5`` flattened.

    The Iommu is the top, so its ports are the design's: nothing is pruned for being
    unconnected, and no board logic is counted. Returns :func:`cell_counts`.
    """
    from amaranth.back import rtlil

    from iogate.hdl.iommu import Iommu
    work_dir = pathlib.Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "top.il").write_text(rtlil.convert(Iommu(config), name="top"))
    stat = _synth_stat(work_dir / "top.il", work_dir, flatten=True)
    return cell_counts(stat["design"]["num_cells_by_type"])


def _figures(report):
    return {"lut4": report["logic"]["used"], "ff": report["flip_flops"]["used"],
            "bram": report["block_ram"]["used"], "fmax_mhz": report["fmax_mhz"]}


def summarize(ice40, ecp5, sweep=(), core=None):
    """The bench keys from :func:`iogate.boards.build.report_of` reports.

    Parameters
    ----------
    ice40 : dict or None
        The ICEBreaker build's report.
    ecp5 : dict or None
        The ECP5-85 (speed grade 6) build of the full Config.
    sweep : sequence of dict
        ECP5-85 builds differing in ``config["iotlb_entries"]``.
    core : dict, optional
        :func:`cell_counts` of the core alone (:func:`core_lut4`).
    """
    out = {}
    if ecp5 is not None:
        f = _figures(ecp5)
        out.update(ecp5_85_device=f"{ecp5['device']}-{ecp5.get('speed', '?')}",
                   ecp5_85_lut4=f["lut4"], ecp5_85_ff=f["ff"], ecp5_85_bram=f["bram"],
                   ecp5_85_fmax_mhz=f["fmax_mhz"])
    if core is not None:
        out["ecp5_85_core_lut4"] = core["comb"]
        out["ecp5_85_core_ff"] = core["ff"]
    if ice40 is not None:
        out.update(ice40_up5k_lc=ice40["logic"]["used"],
                   ice40_up5k_ff=ice40["flip_flops"]["used"],
                   ice40_up5k_fmax_mhz=ice40["fmax_mhz"])
    out["ecp5_85_iotlb_sweep"] = sorted(
        ({"entries": r["config"]["iotlb_entries"], "ways": r["config"]["iotlb_ways"],
          **_figures(r)} for r in sweep), key=lambda row: row["entries"])
    return out


def measure_resources(sweep=(4, 8), *, build_root="build/resources", config=None,
                      progress=print):
    """Build and measure; returns :func:`summarize`'s keys plus the breakdown.

    Parameters
    ----------
    sweep : sequence of int
        IOTLB entries to build the full Config with on the ECP5-85 (ways as in the
        Config, so larger sizes have more sets). The Config's own size is always built:
        it gives the ``ecp5_85_*`` keys.
    build_root : path
        One folder per build below it.
    config : iogate.hdl.Config, optional
        Default :data:`iogate.boards.ecpix5.FULL_CONFIG`.

    Each ECP5 build takes about four minutes, the ICEBreaker's about one. The default
    sweep stops at the Config's own 8 entries: with 16 (8 ways), nextpnr-ecp5 0.11.1's
    router had not converged after 15 minutes (over 5,000 overused wires), which would
    take ``make bench`` past its hour; ask for larger sizes explicitly.
    """
    from iogate.boards import ecpix5
    from iogate.boards.build import build, format_report
    root = pathlib.Path(build_root)
    config = ecpix5.FULL_CONFIG if config is None else config
    started = time.monotonic()

    def step(what):
        progress(f"  resources: {what} ({time.monotonic() - started:.0f} s)")

    def ecp5(entries):
        step(f"ecp5-85 speed 6, {entries} IOTLB entries")
        variant = config.replace(iotlb_entries=entries,
                                 iotlb_ways=min(config.iotlb_ways, entries))
        report = build("ecpix5", config=variant, platform=ecpix5.grade6_platform(),
                       build_dir=root / f"ecp5_85_iotlb{entries}", allow_timing_fail=True)
        progress(format_report(report))
        return report

    # The headline figures first, the sweep last.
    builds = {config.iotlb_entries: ecp5(config.iotlb_entries)}
    step("breakdown")
    parts = breakdown(root / f"ecp5_85_iotlb{config.iotlb_entries}")
    step("core alone")
    core = core_lut4(ecpix5.richest_config(config), root / "core")
    step("icebreaker, small Config")
    ice40 = build("icebreaker", build_dir=root / "icebreaker", allow_timing_fail=True)
    progress(format_report(ice40))
    for entries in sweep:
        if entries not in builds:
            builds[entries] = ecp5(entries)
    out = summarize(ice40, builds[config.iotlb_entries],
                    [builds[e] for e in sweep], core)
    out["ecp5_85_breakdown"] = parts
    out["build_seconds"] = round(time.monotonic() - started, 1)
    (root / "resources.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":   # python -m iogate.cosim.bench.resources [entries...]
    sizes = tuple(int(a) for a in sys.argv[1:]) or (4, 8)
    print(json.dumps({k: v for k, v in measure_resources(sizes).items()
                      if k != "ecp5_85_breakdown"}, indent=2))
