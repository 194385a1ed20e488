"""The regression world's devices with MSI page tables (cosim.regress.world_msi), on the
architectural model alone: both kinds appear, requests reach every MSI outcome (261-264,
absorbed MRIF accesses, 260 for non-word ones), and an undamaged basic-mode MSI PTE sends an
MSI where the table the driver wrote says (AIA "MSI page tables"; reference N.4)."""

import random
from collections import Counter

from iogate.hdl import bits
from iogate.hdl.formats import MSI_PTE_BASIC, Cause, MsiPteMode
from iogate.hdl.port import Access
from iogate.hdl.regs import FCTL, ICVEC, Offset

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.model import IommuModel
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.memory import Memory
from iogate.cosim.regress.world import CONFIGS, build_world, churn, random_requests, settle


def _world(seed, **kwargs):
    memory = Memory()
    model = IommuModel(CONFIGS["msi"], memory)
    rng = random.Random(seed)
    world = build_world(rng, ModelBus(model), memory, config_name="msi", **kwargs)
    return rng, model, world


def test_msi_worlds_reach_every_msi_outcome():
    kinds, outcomes = Counter(), Counter()
    for seed in range(10):
        rng, model, world = _world(seed)
        kinds.update(world.devices.values())
        for r in random_requests(rng, world, 300):
            assert len(r) == 7                       # word and data: the ports carry them
            req = TranslationRequest(*r)
            if req.access is Access.WRITE:
                assert req.data is not None
            got = model.translate(req.device_id, req.iova, req.access, word=req.word,
                                  data=req.data, report=False)
            outcomes["absorbed" if got.absorbed else got.cause if got.fault else "ok"] += 1
        settle(world, churn(rng, world))
    assert kinds["msi"] and kinds["msi/nested"]
    for cause in (Cause.MSI_PTE_LOAD_ACCESS_FAULT, Cause.MSI_PTE_NOT_VALID,
                  Cause.MSI_PTE_MISCONFIGURED, Cause.MRIF_ACCESS_FAULT,
                  Cause.TRANSACTION_TYPE_DISALLOWED):
        assert outcomes[cause], (cause.name, outcomes)
    assert outcomes["absorbed"] > 20


def test_undamaged_basic_msi_ptes_send_msis_where_the_table_says():
    checked = 0
    for seed in range(6):
        _, model, world = _world(seed, damage=0, faults=0)
        for did, device in world.msi.items():
            if world.devices[did] != "msi":
                continue                      # nested: the guest's leaf may refuse writes
            t = device.table
            for index in range(t.entries):
                dw0, _ = t.read(index)
                if not dw0 & 1 or bits.get(MSI_PTE_BASIC, dw0, "m") != MsiPteMode.BASIC:
                    continue
                gpa = t.gpa_of(index)
                got = model.translate(did, gpa | 0x40, Access.WRITE, data=5, report=False)
                assert not got.fault and not got.absorbed
                assert got.pa == bits.get(MSI_PTE_BASIC, dw0, "ppn") << 12 | 0x40
                assert (got.r, got.w, got.x) == (True, True, False)
                checked += 1
    assert checked > 10


def test_msi_churn_replays_and_settles():
    rng, model, world = _world(3, damage=0, faults=0)
    record = []
    pending = churn(rng, world, record)
    msi_ops = [op for op in record if op[0] == "msi"]
    settle(world, pending)
    for _, did, index, dw0, dw1 in msi_ops:
        assert world.msi[did].table.read(index) == (dw0, dw1)


def test_msi_worlds_take_their_interrupts_as_msis_in_some_runs():
    """With IGS=BOTH the driver takes its interrupts as MSIs in some worlds (fctl.WSI=0 and
    msi_cfg_tbl unmasked, reference N.5) and as wires in others; a fault record then raises
    fip, which is one message to the entry icvec.fiv names, in the model's memory too."""
    seen = Counter()
    for seed in range(12):
        rng, model, world = _world(seed, interrupts=True)
        wsi = bits.get(FCTL, model.mmio_read(Offset.FCTL, 4), "wsi")
        assert wsi == (not world.msi_interrupts), seed
        seen[world.msi_interrupts] += 1
        if world.msi_interrupts:
            before = len(model.interrupts.messages)
            model.report_fault(0x12, 0x1000, Access.READ, Cause.READ_PAGE_FAULT)
            fiv = bits.get(ICVEC, model.mmio_read(Offset.ICVEC, 8), "fiv")
            new = model.interrupts.messages[before:]
            address, data, _ = model.regs.msi_entry(fiv)
            assert [(m.address, m.data) for m in new] == [(address, data)], (seed, new)
            assert world.driver.pending_msis() == (fiv,), seed
    assert seen[True] and seen[False], seen
