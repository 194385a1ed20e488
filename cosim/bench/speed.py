"""Cosimulation speed (issue #8): verified translations per second in every mode.

One seeded trace (:mod:`iogate.cosim.targets.batch.trace`) runs, in the same invocation,
interactively through the test bench's ``TranslationRequester`` (Verilator and Icarus), in batch
mode (the harness's player and recorder, Verilator and Icarus) and under the plain Verilator
C++ harness. For each, the figure is translations / (seconds of the request phase + seconds
of checking every response against the model): a translation counts once it is verified.
The headline ``cosim_batch_ratio`` is batch-mode Verilator over the plain harness (the
target is at least 0.5). Builds are reused, and no run counts its build.
"""

import json
import pathlib

from iogate.cosim.regress.batch_runs import check, run_trace
from iogate.cosim.regress.trace import make_trace

__all__ = ["measure_speed"]

#: Result key of each (mode, simulator).
KEYS = {("interactive", "verilator"): "cosim_interactive_tps",
        ("interactive", "icarus"): "cosim_interactive_tps_icarus",
        ("batch", "verilator"): "cosim_batch_tps",
        ("batch", "icarus"): "cosim_batch_tps_icarus",
        ("plain", "verilator"): "cosim_plain_tps"}


def measure_speed(translations=2000, seed=1, *, out="build/bench/speed.json",
                  work="build/batch/speed", modes=tuple(KEYS)):
    """Measure every mode on one trace; write and return the figures.

    Raises
    ------
    ValueError
        If ``translations`` is not a positive integer.
    AssertionError
        If any mode's responses do not all verify (a speed of wrong answers is no figure).
    """
    if not isinstance(translations, int) or translations < 1:
        raise ValueError(f"translations must be a positive integer, not {translations!r}")
    trace, _ = make_trace(seed, translations)
    result = {"seed": seed, "translations": translations, "modes": {}}
    for mode, sim in modes:
        run = run_trace(trace, mode, sim, work=work)
        board, verify_seconds = check(seed, translations, run.raws)
        mismatches = len(board.mismatches) + len(run.setup_mismatches)
        if mismatches:
            details = [str(m) for m in board.mismatches[:3]] + run.setup_mismatches[:3]
            raise AssertionError(f"{mode} on {sim}: {mismatches} mismatches\n"
                                 + "\n".join(details))
        tps = translations / (run.seconds + verify_seconds)
        result["modes"][f"{mode}-{sim}"] = {
            "sim_seconds": round(run.seconds, 4), "verify_seconds": round(verify_seconds, 4),
            "cycles": run.cycles, "sim_tps": round(translations / run.seconds, 1),
            "verified_tps": round(tps, 1)}
        result[KEYS[mode, sim]] = round(tps, 1)
    if "cosim_batch_tps" in result and "cosim_plain_tps" in result:
        result["cosim_batch_ratio"] = round(result["cosim_batch_tps"]
                                            / result["cosim_plain_tps"], 3)
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result
