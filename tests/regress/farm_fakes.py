"""A stand-in for :func:`iogate.cosim.regress.farm.run_seed` that needs no simulator: what it
does per seed is read from ``fake.json`` in the campaign folder (``mismatch``: seeds that
mismatch; ``die_once``: seeds whose worker process dies the first time; ``die_always``;
``raise_always``: seeds whose run raises; ``extra_bin``: seeds whose coverage has a bin more)."""

import json
import os
import pathlib
import time

_XML = """<top abs_name="top" size="3" coverage="0" cover_percentage="0">
  <iogate abs_name="top.iogate" size="3" coverage="0" cover_percentage="0">
    <outcome abs_name="top.iogate.outcome" size="3" coverage="0" cover_percentage="0"
             weight="1" at_least="1">
      <bin0 bin="ok" hits="{ok}" abs_name="top.iogate.outcome.bin0" />
      <bin1 bin="read_page_fault" hits="{rpf}" abs_name="top.iogate.outcome.bin1" />
      <bin2 bin="write_page_fault" hits="0" abs_name="top.iogate.outcome.bin2" />{extra}
    </outcome>
  </iogate>
</top>
"""


def fake_seed(task, folder, mutant=None):
    folder = pathlib.Path(folder)
    plan = json.loads((folder / "fake.json").read_text())
    marker = folder / f"died-{task.key}"
    if task.seed in plan.get("die_always", []) or (
            task.seed in plan.get("die_once", []) and not marker.exists()):
        marker.touch()
        os._exit(3)                      # the worker process dies mid-run
    if task.seed in plan.get("raise_always", []):
        raise RuntimeError(f"seed {task.seed}: the simulator ended without a report")
    with open(folder / "calls.log", "a") as f:
        f.write(task.key + "\n")
    time.sleep(0.1)                      # a run takes time: throughput is measurable
    ok, rpf = task.seed, task.seed % 2
    xml = folder / f"{task.key}.xml"
    # A run of a newer world: one bin more (merge_coverage only adds bins it has first).
    newer = task.seed in plan.get("extra_bin", [])
    extra = ('\n      <bin3 bin="cause256" hits="2" abs_name="top.iogate.outcome.bin3" />'
             if newer else "")
    xml.write_text(_XML.format(ok=ok, rpf=rpf, extra=extra))
    bad = task.seed in plan.get("mismatch", [])
    return {"config": task.config or "default", "translations": task.translations,
            "mismatches": 1 if bad else 0,
            "mismatch_details": [f"seed {task.seed}: rtl 0x1000 model 0x2000"] if bad else [],
            "translations_per_second": 1000.0,
            "coverage": {"iogate.outcome": {"ok": ok, "read_page_fault": rpf,
                                            "write_page_fault": 0,
                                            **({"cause256": 2} if newer else {})}},
            "coverage_xml": str(xml),
            "replay": f"iogate regress --seed {task.seed} --translations {task.translations} "
                      f"--sim {task.sim}"}
