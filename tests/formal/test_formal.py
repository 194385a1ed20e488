"""iogate.hdl.formal: every property proves (or bounds) at its CI depth with its covers
reached, and every mutant's proof fails.

Each test runs SymbiYosys (the formal extra) in its own folder under pytest's tmp_path, so
the tests can run side by side.
"""

import pytest

from iogate.hdl.formal import MUTANTS, PROPERTIES
from iogate.hdl.formal.run import run_property

pytestmark = pytest.mark.formal


@pytest.mark.parametrize("name", sorted(n for n, p in PROPERTIES.items() if p.ci))
def test_property_holds_and_its_covers_are_reached(name, tmp_path):
    result = run_property(name, PROPERTIES[name], build=tmp_path, ci=True)
    print(result.line())
    assert result.status == "PASS", (result.failed, result.workdir)
    assert result.cover == "PASS", result.workdir
    assert result.covers_reached, "the cover run reached no cover statement"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_breaks_the_proof(name, tmp_path):
    result = run_property(name, MUTANTS[name], build=tmp_path, ci=True)
    print(result.line())
    assert result.status == "FAIL", result.workdir
    assert result.failed, "a failing proof names the assertion it broke"
