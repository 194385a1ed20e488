"""iogate.cosim.regress.world on the architectural model alone (no simulator): the random worlds
reach every directory mode, stage combination and page size, and what they build means
what the driver's own software walk (PageTable.lookup) says it means."""

import random
from collections import Counter

import pytest

from iogate.hdl.formats import Cause
from iogate.hdl.regs import IommuMode

from iogate.cosim.model import IommuModel
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.memory import Memory
from iogate.cosim.regress.world import (
    CONFIGS,
    build_world,
    choose_config,
    churn,
    random_requests,
    settle,
)


def _world(seed, config_name, **kwargs):
    memory = Memory()
    model = IommuModel(CONFIGS[config_name], memory)
    world = build_world(random.Random(seed), ModelBus(model), memory,
                        config_name=config_name, **kwargs)
    return model, world


def test_config_choice_is_a_function_of_the_seed_and_takes_every_build():
    assert [choose_config(s) for s in range(20)] == [choose_config(s) for s in range(20)]
    assert {choose_config(s)[0] for s in range(20)} == {"default", "full", "process", "msi"}


def test_full_config_worlds_reach_every_directory_mode_and_kind():
    modes, kinds = set(), Counter()
    for seed in range(12):
        _, world = _world(seed, "full", damage=0, faults=0)
        modes.add(world.ddt_mode)
        kinds.update(world.devices.values())
    assert modes == {"LVL1", "LVL2", "LVL3"}
    assert set(kinds) >= {"sv39", "sv48", "sv39x4", "sv48x4", "sv39/sv39x4",
                          "sv48/sv48x4", "sv39/sv48x4", "bypass", "invalid", "noise",
                          "ddt_fault"}


@pytest.mark.parametrize("seed", range(6))
def test_undamaged_mappings_translate_as_the_tables_say(seed):
    """Spec "Process to translate an IOVA": first stage, then the G-stage on the GPA; the expected
    address is the driver's software walk of each table, not the model's."""
    model, world = _world(seed, "full", damage=0, faults=0)
    checked = Counter()
    for did, iova, _size in world.ranges:
        spaces = world.tables.get(did)
        if not spaces or world.devices[did] == "noise":      # noise: a damaged DC
            continue
        address = iova
        for space in spaces:                   # first stage (if any), then second
            t = space.table.lookup(address)
            address = None if t is None or not t.r else t.pa
            if address is None:
                break
        got = model.translate(did, iova, "read", report=False)
        if address is None or address >> 56:
            assert got.fault
            continue
        assert not got.fault and got.pa == address, (world.devices[did], hex(iova))
        checked[world.devices[did]] += 1
    assert sum(checked.values()) > 5


@pytest.mark.parametrize("config_name", ["default", "full"])
def test_ddt_faults_and_blocked_devices_give_their_causes(config_name):
    seen = Counter()
    for seed in range(10):
        model, world = _world(seed, config_name)
        for did, kind in world.devices.items():
            cause = model.translate(did, 0x1000, "read", report=False).cause
            if kind == "ddt_fault":
                assert cause == Cause.DDT_LOAD_ACCESS_FAULT          # 257
            elif kind == "invalid":
                assert cause == Cause.DDT_ENTRY_NOT_VALID            # 258
            seen[kind] += 1
    assert seen["ddt_fault"] and seen["invalid"]


def test_churn_then_settle_leaves_the_model_on_the_new_tables():
    model, world = _world(3, "full", damage=0, faults=0)
    rng = random.Random(1)
    for _ in range(5):
        settle(world, churn(rng, world))
    assert any(line.startswith("churn:") for line in world.damaged)
    assert model.mmio_read(0x10, 8) & 0xF in (IommuMode.LVL1, IommuMode.LVL2, IommuMode.LVL3)


@pytest.mark.parametrize("config_name", ["default", "full"])
def test_damaged_worlds_survive_churn_and_reach_the_rare_causes(config_name):
    """Damage, bus errors and churn never break the driver; across seeds the worlds give
    DDT load access faults (257), misconfigured DCs (259) and access faults (1/5/7)."""
    causes = Counter()
    for seed in range(20):
        model, world = _world(seed, config_name, fq_entries=1024)
        rng = random.Random(seed)
        for _ in range(4):
            settle(world, churn(rng, world))
        for did, iova, access, pid, priv in random_requests(rng, world, 40):
            assert pid is None and not priv          # no process contexts in these worlds
            result = model.translate(did, iova, access, report=False)
            causes[int(result.cause) if result.fault else 0] += 1
    assert {0, 1, 5, 7, 12, 13, 15, 257, 258, 259, 260} <= set(causes)
    if config_name == "full":
        assert {20, 21, 23} <= set(causes)          # guest-page faults
