"""The regression as a cocotb test: random world, random requests, every answer checked.

Parameters come from the environment (set by :func:`cosim.regress.run.regress`):
``IOGATE_SEED``, ``IOGATE_TRANSLATIONS``, ``IOGATE_REPORT`` (JSON written at the end) and
``IOGATE_PROGRESS`` (a small JSON file rewritten as the run goes, for the progress display).
"""

import json
import os
import random
import time

import cocotb

from hdl import Config

from ..scenarios.session import open_session, request
from . import coverage
from .world import build_world, churn, random_requests, settle

__all__ = ["regress"]

BATCH = 200


@cocotb.test()
async def regress(dut):
    seed = int(os.environ["IOGATE_SEED"])
    total = int(os.environ["IOGATE_TRANSLATIONS"])
    progress = os.environ.get("IOGATE_PROGRESS")
    rng = random.Random(seed)
    config = Config()
    s = await open_session(dut, config, mem_latency=rng.choice([0, 0, 1, 3]))
    world = await s.run(build_world, rng, s.bus, s.memory)

    def kind_of(did):
        return world.devices.get(did, "unknown")

    s.scoreboard.listeners.append(
        lambda req, resp, allowed, ok: coverage.sample(
            req, resp, next(iter(allowed), None), kind_of(req.device_id)))
    requests = list(random_requests(rng, world, total))
    start = time.monotonic()
    done = 0
    while done < total:
        batch = [request(*r) for r in requests[done:done + BATCH]]
        before = len(s.scoreboard.mismatches)
        # Half the batch before the changes are invalidated (old or new answers allowed),
        # half after the fence (only the new ones).
        pending = await s.run(churn, rng, world) if done else []
        await s.translate_all(batch[:len(batch) // 2])
        await s.run(settle, world, pending)
        s.commands += 2 * len(pending)
        await s.translate_all(batch[len(batch) // 2:])
        done += len(batch)
        if progress:
            with open(progress, "w") as f:
                json.dump({"done": done, "total": total,
                           "mismatches": len(s.mismatches)}, f)
        if len(s.scoreboard.mismatches) > before:
            break          # stop at the first failing batch: the seed replays it
    elapsed = time.monotonic() - start
    records = await s.check_fault_records()
    report = s.report(seed=seed, requested=total, commands=s.commands,
                      fault_records=len(records),
                      translations_per_second=round(s.scoreboard.translations / elapsed, 1), world_devices=len(world.devices),
                      damaged=world.damaged[:50], coverage=coverage.report())
    with open(os.environ["IOGATE_REPORT"], "w") as f:
        json.dump(report, f, indent=2)
