"""The regression world as a batch trace (:mod:`iogate.cosim.targets.batch.trace`)."""

import random

from iogate.hdl import Config

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.model import IommuModel
from iogate.cosim.model.memory import Memory
from iogate.cosim.regress.world import build_world, random_requests
from iogate.cosim.targets.batch.harness import RAM_BASE, RAM_SIZE
from iogate.cosim.targets.batch.trace import RecordingBus, Trace, restrict

__all__ = ["make_trace"]


class _NoBusErrors:
    """The world's fault target for the harness: its RAM answers every access inside it,
    so a device the world meant to give a failing context stays a working one."""

    def inject_fault(self, address, length, *resp):
        pass



def make_trace(seed, translations, config=None):
    """The world of ``seed`` and ``translations`` random requests; returns ``(trace, model)``.

    ``model`` is the architectural model in the state the setup left it, with its memory
    restricted to the RAM: the oracle for the requests. The same ``seed`` always gives
    the same trace and an equal model, so each checker takes a fresh one.

    Raises
    ------
    ValueError
        If the world's tables do not fit in the harness's RAM.
    """
    config = Config() if config is None else config
    rng = random.Random(seed)
    memory = Memory()
    model = IommuModel(config, memory)
    bus = RecordingBus(model)
    # The default Config's world, with no injected bus errors: the on-chip RAM has none
    # (damaged PTEs and directory pointers outside it still give access faults).
    world = build_world(rng, bus, _NoBusErrors(), config_name="default", faults=0.0)
    top = max(a + s for a, s in world.driver.alloc.allocated.items())
    if top > RAM_BASE + RAM_SIZE:
        raise ValueError(f"seed {seed}: the world's tables end at {top:#x}, beyond the "
                         f"harness RAM [{RAM_BASE:#x}, {RAM_BASE + RAM_SIZE:#x})")
    restrict(memory)
    requests = [TranslationRequest(*r) for r in random_requests(rng, world, translations)]
    return Trace(seed, bus.ops, requests), model
