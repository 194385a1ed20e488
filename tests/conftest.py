"""Shared pytest setup for the simulator tests.

Builds live under build/sim/<design>/<sim>; iogate.cosim.targets.sim reuses a build whose Verilog
has not changed and serialises concurrent builds with a lock, so pytest-xdist workers that ask
for the same design wait for one build instead of racing.
"""

import pytest


def pytest_collection_modifyitems(config, items):
    # Keep the tests of one simulator on one xdist worker (with --dist loadgroup), so the
    # two cores build the Verilator and Icarus models side by side.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and "simulator" in callspec.params:
            item.add_marker(pytest.mark.xdist_group(callspec.params["simulator"]))
