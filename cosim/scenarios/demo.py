"""The demo scenario (``iogate demo``), as a cocotb test on the iogate top.

1. With ``ddtp`` at its reset value (Off) every request faults with cause 256.
2. In Bare mode requests pass untranslated.
3. In 1LVL mode the foundation workload (:mod:`iogate.cosim.scenarios.foundation`): a seeded
   stream of DMA requests for two translated devices, a bypassed one and every kind of
   faulting device, plus a few translations through the debug interface.

Every response, and every register read made while programming, is checked against the
architectural model. The report goes to the JSON file named by ``IOGATE_REPORT``.
"""

import json
import os
import random

import cocotb

from iogate.hdl import Config
from iogate.hdl.port import Access
from iogate.hdl.regs import IommuMode

from iogate.cosim.scenarios.foundation import program, random_requests, set_mode
from iogate.cosim.scenarios.session import open_session, request

__all__ = ["demo"]

TRANSLATIONS = 2000
DEBUG_TRANSLATIONS = 16


async def run_workload(dut, config, seed, *, translations=TRANSLATIONS,
                       debug_translations=DEBUG_TRANSLATIONS):
    """The demo's three phases; returns the :class:`~iogate.cosim.scenarios.session.Session`."""
    rng = random.Random(seed)
    s = await open_session(dut, config)

    # 1. Off (the reset value): nothing passes.
    await s.translate_all([request(0x05, 0x1000_0000 + i * 0x1000, a)
                           for i, a in enumerate(Access)])

    # 2. Bare: identity, for any device.
    await s.run(set_mode, s.bus, IommuMode.BARE)
    await s.translate_all([request(rng.randrange(1 << 24), rng.randrange(1 << 48), a)
                           for a in Access for _ in range(2)])

    # 3. 1LVL with the foundation tables. Bare -> 1LVL is allowed directly (spec
    #    "Device-directory-table pointer (ddtp)"), but going through Off is what a driver does.
    await s.run(set_mode, s.bus, IommuMode.OFF)
    layout = await s.run(program, s.bus, s.memory)
    await s.run(set_mode, s.bus, IommuMode.LVL1, layout.ddt_root)
    await s.translate_all([request(*r) for r in random_requests(layout, rng, translations)])
    for did, iova, access in random_requests(layout, rng, debug_translations, fault_ratio=0.3):
        await s.debug_translate(request(did, iova, access))
    s.layout = layout
    return s


@cocotb.test()
async def demo(dut):
    seed = int(os.environ.get("IOGATE_SEED", "1"))
    config = Config()
    s = await run_workload(dut, config, seed)
    report = s.report(seed=seed, sim=os.environ.get("IOGATE_SIM", "?"),
                      devices={f"{did:#x}": what for did, what in s.layout.devices.items()})
    path = os.environ.get("IOGATE_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=2)
    dut._log.info("demo: %d translations, %d mismatches", report["translations"],
                  report["mismatches"])
