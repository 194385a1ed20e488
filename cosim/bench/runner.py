"""Running one cocotb benchmark module on a built IOMMU and reading its JSON report."""

import json

from iogate.cosim.targets import sim as simulators

__all__ = ["run_module"]


def run_module(config, sim, module, work, report_name, env, testcase=None):
    """Build ``config`` for ``sim`` (cached), run cocotb ``module`` in folder ``work`` and
    return the JSON it wrote to ``work / report_name``.

    The module finds the report path in ``IOGATE_BENCH_REPORT``; ``env`` adds its own
    settings. A stale report is removed first, so a run that wrote none cannot pass for
    one that did.

    Raises
    ------
    AssertionError
        If a test of the module failed in the simulator.
    """
    work.mkdir(parents=True, exist_ok=True)
    report = work / report_name
    report.unlink(missing_ok=True)
    b = simulators.build_iommu(config, sim, waves=False)
    simulators.run(b, module, testcase=testcase, test_dir=work, log_file=work / "sim.log",
                   extra_env={"IOGATE_BENCH_REPORT": str(report), **env})
    return json.loads(report.read_text())
