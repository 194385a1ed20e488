"""``iogate shrink SEED``: a failing regression seed cut to the shortest event sequence that
still mismatches, written as a directed cocotb test.

The seed's run is recorded as events (:mod:`iogate.cosim.regress.cocotb_regress`: request
batches, churn, settle, interrupt checks, ``ipsr`` clears, fault-queue drains, ``ddtp``
phases), after the world the seed builds. Delta debugging (:func:`ddmin`, Zeller and
Hildebrandt's minimising algorithm) then replays subsets of them on the simulator, first
whole events, then the remaining request batches one request at a time (and churns one
change at a time), keeping a subset whenever its replay still mismatches. The result is
1-minimal: dropping any one event makes the mismatch go away.

The directed test (``tests/regress_shrunk/test_shrunk_seed<N>_<sim>.py``) replays exactly
those events on both simulators and checks every answer against the model, like the
regression: it fails while the bug is there and passes once it is fixed.
"""

import functools
import json
import math
import pathlib
import pprint
import time
from contextlib import redirect_stderr, redirect_stdout

__all__ = ["ddmin", "replay", "split_requests", "shrink", "directed_test_source"]


def ddmin(items, fails, *, log=None):
    """The 1-minimal sublist of ``items`` (order kept) for which ``fails`` still holds.

    ``fails(sublist)`` is True when the sublist still shows the failure; it must hold for
    ``items`` itself. Each distinct sublist is tried once (cached).
    """
    cache = {}

    def test(idx):
        key = tuple(idx)
        if key not in cache:
            cache[key] = bool(fails([items[i] for i in idx]))
            if log:
                log(f"  try {len(idx)} of {len(items)} events: "
                    f"{'still fails' if cache[key] else 'passes'}")
        return cache[key]

    current = list(range(len(items)))
    n = 2
    while len(current) >= 2:
        size = math.ceil(len(current) / n)
        chunks = [current[i:i + size] for i in range(0, len(current), size)]
        for chunk in chunks:
            if test(chunk):
                current, n = chunk, 2
                break
        else:
            for k in range(len(chunks)):
                rest = [i for j, c in enumerate(chunks) if j != k for i in c]
                if len(chunks) > 2 and test(rest):
                    current, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(current):
                    break
                n = min(2 * n, len(current))
    return [items[i] for i in current]


def split_requests(events):
    """``events`` with every request batch cut into batches of one request and every churn
    into churns of one change."""
    out = []
    for event in events:
        if event[0] in ("translate", "churn") and len(event[1]) > 1:
            out += [[event[0], [item]] for item in event[1]]
        else:
            out.append(event)
    return out


def _requests(events):
    return sum(len(e[1]) for e in events if e[0] == "translate") + \
        sum(len(e[2]) for e in events if e[0] == "ddtp")


@functools.cache
def _build(config_name, sim, mutant):
    # Elaborating the design to check the build cache takes seconds: once per shrink.
    from iogate.cosim.regress.run import model_build
    from iogate.cosim.regress.world import CONFIGS
    return model_build(CONFIGS[config_name], sim, mutant=mutant)


def replay(seed, events, sim, *, config=None, mutant=None, work="build/shrink"):
    """Build the world of ``seed``, play ``events`` on ``sim``; the run's report (None when
    the simulator ended without one)."""
    from iogate.cosim.regress.run import regress
    from iogate.cosim.regress.world import choose_config
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    file = work / "events.json"
    file.write_text(json.dumps(events))
    with open(work / "replay.log", "w") as log, redirect_stdout(log), redirect_stderr(log):
        regress(seed, _requests(events), sim, out=work, config=config, mutant=mutant,
                events=file, build=_build(config or choose_config(seed)[0], sim, mutant))
    try:
        return json.loads((work / f"{sim}-seed{seed}" / "report.json").read_text())
    except (OSError, ValueError):
        return None


def directed_test_source(seed, sim, config, events, *, translations, first, tried,
                         mutant=None):
    """The directed cocotb test of a shrunk run (Python source, ruff-clean)."""
    body = "\n".join(
        "    " + pprint.pformat(e, width=92, compact=True).replace("\n", "\n    ") + ","
        for e in events)
    found = f"iogate regress --seed {seed} --translations {translations} --sim {sim}" + \
        (f" --config {config}" if config else "") + (f" --mutant {mutant}" if mutant else "")
    lines = [""]
    for part in found.split(" --"):                  # wrap between options, not inside one
        part = part if not lines[0] else "--" + part
        if lines[-1] and len(lines[-1]) + len(part) > 86:
            lines.append(part)
        else:
            lines[-1] = f"{lines[-1]} {part}".strip()
    found = "\n      ".join(lines)
    mismatch = "\n".join("    " + line.strip()[:92] for line in first.splitlines()[:3])
    return f'''"""A directed test shrunk by `iogate shrink {seed}` from the run of

    {found}

{len(events)} events ({_requests(events)} requests) after the seed's world, of the run's {tried}.
The first mismatch when shrunk:

{mismatch}

Replays exactly these events (:mod:`iogate.cosim.regress.cocotb_regress`) on Verilator and
Icarus, every answer checked against the model: it fails while the bug is there and passes
once it is fixed."""

import pytest

from iogate.cosim.regress.shrink import replay
from iogate.cosim.targets.sim import SIMULATORS

SEED = {seed}
CONFIG = {config!r}
EVENTS = [
{body}
]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_shrunk_seed{seed}(simulator, tmp_path):
    report = replay(SEED, EVENTS, simulator, config=CONFIG, work=tmp_path)
    assert report is not None, f"the simulator ended without a report; see {{tmp_path}}"
    assert report["mismatches"] == 0, report["mismatch_details"]
'''


def shrink(seed, *, sim="verilator", translations=10_000, config=None, mutant=None,
           tests="tests/regress_shrunk", work="build/shrink", log=None):
    """Record ``seed``'s run, shrink its events, print them and write the directed test.

    Returns 0 when a test was written, 1 when the seed does not fail (or its replay does
    not), 2 when the simulator did not finish.
    """
    from iogate.cosim.regress.run import regress
    from iogate.cosim.regress.world import choose_config
    log = log or functools.partial(print, flush=True)
    config_name = config or choose_config(seed)[0]
    work = pathlib.Path(work) / f"{sim}-seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    log(f"iogate shrink: seed {seed}, {translations} translations on {sim} "
        f"({config_name} Config{', mutant ' + mutant if mutant else ''})")
    record = work / "recorded.json"
    with open(work / "record.log", "w") as f, redirect_stdout(f), redirect_stderr(f):
        regress(seed, translations, sim, out=work / "record", config=config, mutant=mutant,
                record=record)
    try:
        report = json.loads((work / "record" / f"{sim}-seed{seed}" / "report.json").read_text())
        events = json.loads(record.read_text())
    except (OSError, ValueError):
        log(f"the run did not finish; see {work / 'record'}")
        return 2
    if not report["mismatches"]:
        log(f"seed {seed}: no mismatch in {report['translations']} translations on {sim}; "
            f"nothing to shrink")
        return 1
    log(f"  {report['mismatches']} mismatches; first: "
        f"{report['mismatch_details'][0].splitlines()[0]}")
    log(f"  recorded {len(events)} events ({_requests(events)} requests) up to the failing "
        f"batch")
    runs = [0]
    last = {}

    def fails(subset):
        runs[0] += 1
        r = replay(seed, subset, sim, config=config, mutant=mutant, work=work / "try")
        if r is not None and r["mismatches"]:
            last[len(subset)] = r["mismatch_details"][0]
            return True
        return False

    if not fails(events):
        log("  the replay of the recorded events does not mismatch: nothing to shrink")
        return 1
    coarse = ddmin(events, fails, log=log)
    log(f"  whole events: {len(coarse)} of {len(events)} ({runs[0]} replays)")
    fine = ddmin(split_requests(coarse), fails, log=log)
    log(f"  one request a batch: {len(fine)} events ({_requests(fine)} requests; "
        f"{runs[0]} replays, {time.monotonic() - start:.0f} s)")
    first = last.get(len(fine)) or report["mismatch_details"][0]
    for event in fine:
        log(f"    {json.dumps(event)}")
    folder = pathlib.Path(tests)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"test_shrunk_seed{seed}_{sim}" + (f"_{mutant.replace('-', '_')}" if mutant else "")
    path = folder / f"{name}.py"
    path.write_text(directed_test_source(seed, sim, config, fine, translations=translations,
                                first=first, tried=len(events), mutant=mutant))
    log(f"wrote {path} (replay: pytest {path})")
    return 0
