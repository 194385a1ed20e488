"""``iogate run sva`` and ``iogate run vsva`` on Verilator and Icarus: every DMA goes through
the RTL's translation port with its PASID (pv/pid/priv) and is checked against the
architectural model (``mismatches``); the scenarios' own checks (the process's and the
guest's mappings, old-or-fault before the fence, the fault or the new page after) must hold.

The Config is the ``process`` preset (``Config.process()``: full with PD8/PD17/PD20 and
Sv57/Sv57x4), the default of ``iogate run sva|vsva`` and the build the other process-context
tests share.
"""

import pytest

from iogate.hdl import Config

from iogate.cosim.client.run import run
from iogate.cosim.scenarios.run import HOST_SCENARIOS
from iogate.cosim.targets import sim

CONFIG = Config.process()


@pytest.mark.cocotb
@pytest.mark.parametrize("name", sorted(HOST_SCENARIOS))
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_scenario_on(simulator, name, tmp_path):
    r = run(HOST_SCENARIOS[name][0], target=simulator, config=CONFIG, out=tmp_path)
    assert r["error"] is None, r["error"]
    assert r["mismatches"] == 0, r["mismatch_details"]
    result = r["result"]
    assert result["pdt_mode"] == "PD20"
    assert r["translations"] == result["dma_checked"]
    # What the device saw between the change and the fence is one of the two the spec
    # allows (the scenario raised otherwise); either is reported.
    window = result.get("before_fence", result.get("before_invalidation"))
    assert window in ("old", "fault", "new")
