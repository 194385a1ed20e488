"""The Config presets of ``iogate host --config NAME`` and how a Config crosses into a
simulator process.

``default`` is ``Config()``, ``full`` is :meth:`Config.full` (3LVL, Sv48, Sv39x4/Sv48x4,
Svpbmt), ``process`` is :meth:`Config.process` (``full`` with PD8/PD17/PD20 and
Sv57/Sv57x4), ``icebreaker`` is :meth:`Config.icebreaker` (the smallest board build: a 32-bit
register bus, PAS 32) and ``bus32`` is ``Config()`` with a 32-bit register bus. A cocotb
run gets its Config as JSON in the environment (:func:`config_to_json`), so any Config, not
only a preset, reaches the test bench.
"""

import dataclasses
import json

from iogate.hdl import Config

__all__ = ["PRESETS", "config_named", "config_to_json", "config_from_json", "ram_of"]

#: ``--config`` names.
PRESETS = {
    "default": Config,
    "full": Config.full,
    "icebreaker": Config.icebreaker,
    # full plus process contexts (PD8/PD17/PD20) and Sv57/Sv57x4.
    "process": Config.process,
    # full plus MSI translation (flat and MRIF page tables) and IGS=BOTH interrupts.
    "msi": Config.msi,
    # Config() behind a 32-bit register bus: 8-byte registers take two 4-byte accesses.
    "bus32": lambda: Config(mmio_data_width=32),
}


def config_named(name: str) -> Config:
    """The preset ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`PRESETS`.
    """
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown config {name!r}; one of {', '.join(PRESETS)}") from None


def config_to_json(config: Config) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_json(text: str) -> Config:
    return Config(**json.loads(text))


def ram_of(config: Config) -> tuple[int, int]:
    """The memory a script's tables and queues come from on the model and the simulators:
    64 MiB at 64 GiB, where the project's host stack keeps its tables (so the high halves
    of ``ddtp``, ``cqb`` and ``fqb`` are not zero), or at 2 GiB when ``PAS`` is under 37
    bits (the ICEBreaker's 32)."""
    size = 64 << 20
    base = 0x10_0000_0000 if config.pas >= 37 else 0x8000_0000
    return base, size
