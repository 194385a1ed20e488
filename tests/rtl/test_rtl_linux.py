"""``iogate run linux``: the Linux riscv-iommu driver replay (iogate.cosim.scenarios.linux) on
Verilator and Icarus, for the default Config, the full Config and a 32-bit register bus.

The replay raises where Linux would give up on the hardware (a WARL read-back it does not
accept, a queue that is not on once busy clears, a mode it cannot set) or where DMA does not
get what Linux's mappings say; every register read, DMA answer and interrupt line is
checked against the model.
"""

import pytest

from iogate.cosim.client.config import config_named
from iogate.cosim.client.run import run
from iogate.cosim.targets import sim

#: What the driver must find (``riscv_iommu_iodir_set_mode``,
#: ``riscv_iommu_alloc_paging_domain``): the deepest directory and the highest first stage.
EXPECTED = {"default": ("1LVL", "Sv39"), "full": ("3LVL", "Sv48"), "bus32": ("1LVL", "Sv39")}


@pytest.mark.cocotb
@pytest.mark.parametrize("config", tuple(EXPECTED))
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_linux_replay_on(simulator, config, tmp_path):
    r = run("iogate.cosim.scenarios.linux:replay", target=simulator,
            config=config_named(config), out=tmp_path)
    assert r["error"] is None, r["error"]
    assert r["mismatches"] == 0, r["mismatch_details"]
    result = r["result"]
    assert (result["ddt_mode"], result["first_stage"]) == EXPECTED[config]
    assert result["split_64bit_accesses"] == (config == "bus32")
    # Every fault the replay's DMA took was reported and consumed by the fault handler.
    assert result["fault_records"] == 9
    assert r["interrupts"]["handled"].get("1", 0) >= 1
    assert result["queue_errors"] == []
