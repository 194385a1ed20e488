"""The regression world's devices with process directories (cosim.regress.world_pdt), on the
architectural model alone: they reach every PDT mode, DPE both ways, tagged and untagged and
supervisor requests, the PDT causes; and a process's undamaged mappings translate as the
driver's own software walk of its tables says (spec "Process to translate an IOVA" steps
7-17; reference N.1)."""

import random
from collections import Counter

from iogate.cosim.model import IommuModel
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.memory import Memory
from iogate.cosim.regress.world import CONFIGS, build_world, churn, random_requests, settle


def _world(seed, **kwargs):
    memory = Memory()
    model = IommuModel(CONFIGS["process"], memory)
    world = build_world(random.Random(seed), ModelBus(model), memory,
                        config_name="process", **kwargs)
    return model, world


def test_process_worlds_reach_every_pdt_mode_and_dpe_both_ways():
    modes, dpe, kinds = set(), set(), Counter()
    for seed in range(12):
        _, world = _world(seed, damage=0, faults=0)
        kinds.update(world.devices.values())
        for pdt, d, _ in world.pdt.values():
            modes.add(pdt.mode.name)
            dpe.add(d)
    assert modes == {"PD8", "PD17", "PD20"}
    assert dpe == {True, False}
    assert kinds["pdt"] and kinds["pdt/nested"]


def test_undamaged_processes_translate_as_their_tables_say():
    checked = Counter()
    for seed in range(6):
        model, world = _world(seed, damage=0, faults=0)
        for did, processes in world.processes.items():
            if world.devices[did] == "noise":
                continue                  # a PDT device whose DC then got random bit flips
            second = world.tables[did][0].table if world.devices[did] == "pdt/nested" else None
            for p in processes:
                table = p.tables[p.current]
                for iova, _ in p.ranges:
                    t = table.lookup(iova)
                    address = None if t is None or not t.r else t.pa
                    if address is not None and second is not None:
                        s = second.lookup(address)
                        address = None if s is None or not s.r else s.pa
                    got = model.translate(did, iova, "read", process_id=p.process_id,
                                          report=False)
                    if address is None or address >> 56:
                        assert got.fault
                        continue
                    assert not got.fault and got.pa == address, (world.devices[did], hex(iova))
                    checked[world.devices[did]] += 1
    assert checked["pdt"] > 5 and checked["pdt/nested"] > 5


def test_damaged_process_worlds_survive_churn_and_reach_the_pdt_causes():
    causes, tagged, supervisor = Counter(), 0, 0
    for seed in range(20):
        model, world = _world(seed, fq_entries=1024)
        rng = random.Random(seed)
        for _ in range(4):
            settle(world, churn(rng, world))
        for did, iova, access, pid, priv in random_requests(rng, world, 60):
            tagged += pid is not None
            supervisor += priv
            result = model.translate(did, iova, access, process_id=pid, priv=priv,
                                     report=False)
            causes[int(result.cause) if result.fault else 0] += 1
    assert tagged > 200 and supervisor > 50
    # 260: PASID too wide or ENS=0; 265: bus error on a PDT page; 266/267: damaged entries.
    assert {0, 260, 265, 266, 267} <= set(causes), causes
    assert any(line.startswith("churn:") and " pc -> " in line
               for line in world.damaged)
