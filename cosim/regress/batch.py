"""``iogate regress --batch``: the seeded regression in batch mode.

The same random world as :mod:`iogate.cosim.regress` (default Config, no injected bus errors:
the harness's on-chip RAM has none), set up once, then every request streamed through the
harness's player in batches of ``DEPTH`` and every response checked against the model.
There is no churn (no table change, so nothing to invalidate): the model's answer is exact
up to the caching freedom ``allowed()`` expresses. The last line ends with
``mismatches: <n>``; the exit status is non-zero when n > 0.
"""

import pathlib
import time

from iogate.cosim.regress.batch_runs import check, run_trace
from iogate.cosim.regress.trace import make_trace

__all__ = ["regress_batch"]


def regress_batch(seed, translations, sim="verilator", out="build/regress"):
    """Run one seeded batch-mode regression; returns the exit status (0: no mismatch)."""
    print(f"iogate regress --batch: seed {seed}, {translations} translations on {sim}",
          flush=True)
    start = time.monotonic()
    trace, _ = make_trace(seed, translations)
    work = pathlib.Path(out) / f"batch-seed{seed}"
    run = run_trace(trace, "batch", sim, work=work)
    board, verify_seconds = check(seed, translations, run.raws)
    elapsed = time.monotonic() - start
    mismatches = [str(m) for m in board.mismatches] + run.setup_mismatches
    for m in mismatches[:5]:
        print(m)
    s = board.summary()
    rate = translations / (run.seconds + verify_seconds)
    print(f"  iotlb hits {s['iotlb_hits']} misses {s['iotlb_misses']}  "
          f"cycles {run.cycles} ({run.cycles / max(translations, 1):.2f} per translation)")
    print(f"  responses: {work.resolve() / f'batch-{sim}' / 'responses.txt'}")
    print(f"seed {seed}: translations: {s['translations']} ({rate:.0f}/s checked; "
          f"{elapsed:.0f} s with the build) mismatches: {len(mismatches)}")
    if mismatches:
        print(f"replay: iogate regress --batch --seed {seed} --translations {translations} "
              f"--sim {sim}")
    return 1 if mismatches else 0
