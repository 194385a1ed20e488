"""Bitstream builds (marker ``fpga``) run only when asked for with ``-m fpga``.

They need the ``fpga`` extra (YoWASP Yosys and nextpnr) and take minutes, so a plain
``pytest`` or ``make test`` leaves them out (deselected, not skipped); ``make bitstream``
selects them.
"""


def pytest_collection_modifyitems(config, items):
    if "fpga" in (config.getoption("markexpr") or ""):
        return
    kept = [item for item in items if item.get_closest_marker("fpga") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
