"""The front-end scenarios on the RTL (``iogate run``), one ``@cocotb.test`` each.

Every scenario drives the host software stack -- the VFIO type1 container, iommufd, the
virtio-iommu device -- over the :class:`~iogate.cosim.targets.tb.bus.MirroredBus`, so each register
access reaches the RTL and the architectural model alike, and asks what DMA gets through
an :class:`~iogate.cosim.scenarios.rtl_probe.RtlProbe`, so each DMA is a real request on the
RTL's translation port checked against the model. A scenario passes when its own checks
hold, every fault record the RTL wrote equals the model's, and there are 0 mismatches.

The configuration is the full first target (3LVL, Sv48, Sv39x4/Sv48x4, Svpbmt).
One scenario is chosen with the runner's ``testcase=`` filter (:func:`cocotb_name_of`);
``IOGATE_SEED`` seeds the random ones, ``IOGATE_REPORT`` is the JSON report written.
:func:`probe_detects_disagreement` (``self-check``) shows that a disagreement between the
RTL and the model is counted.
"""

import json
import os
import random

import cocotb

from iogate.hdl import Config, bits
from iogate.hdl.formats import IOSATP, TA, TC, IosatpMode
from iogate.hdl.port import Access

from iogate.firmware import commands

from iogate.cosim.host.core import HostIommu, Prot
from iogate.cosim.host.iommufd import uapi as fdapi
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.vfio import uapi as vfapi
from iogate.cosim.host.virtio import VirtioIommu
from iogate.cosim.scenarios import seeds
from iogate.cosim.scenarios.rtl_probe import RtlProbe
from iogate.cosim.scenarios.seeds import USER, check
from iogate.cosim.scenarios.session import open_session
from iogate.cosim.scenarios.streams import LinuxGuest

__all__ = ["SCENARIOS", "FULL", "SELF_CHECK", "vfio_flow", "nested_flow", "virtio_streams",
           "run_scenario"]

#: The full first-target configuration every scenario runs on.
FULL = Config.full()
_PAGE = 0x1000


def _reaches(result, pa):
    return not result.fault and result.pa == pa


# -- the flows that are not seed problems ----------------------------------------------------

def virtio_streams(host, probe, seed):
    """A Linux-like virtio-iommu guest, strict then lazy (``iommu.strict=1`` / ``=0``).

    Each mode gets its own virtio-iommu device with four endpoints; the streams are
    short (two rounds of three buffers) to keep the simulation in seconds.
    """
    out = {}
    for strict, endpoints in ((True, range(0x100, 0x104)), (False, range(0x104, 0x108))):
        dev = VirtioIommu(endpoints, backend=host)
        report = LinuxGuest(dev, seed=seed, strict=strict, probe=probe).run(rounds=2,
                                                                           buffers=3)
        dev.reset()
        out["strict" if strict else "lazy"] = report.as_dict()
    return out


def vfio_flow(host, probe, seed, *, devices=(0x71, 0x72)):
    """VFIO type1v2: two devices in one container, map, DMA, unmap, DMA again.

    Expected answers follow from the ioctls alone: a mapped byte at ``iova + off`` reaches
    ``vaddr + off`` (the process's memory is identity-mapped), and after
    ``VFIO_IOMMU_UNMAP_DMA`` returns, no answer may reach it any more (the host fences
    before the ioctl returns).
    """
    rng = random.Random(seed)
    c = VfioContainer(host, allow_unsafe_interrupts=True)
    for device in devices:
        check(c.add_device(device) == 0, f"add_device {device:#x}")
    check(c.ioctl(vfapi.Ioctl.SET_IOMMU, vfapi.Extension.TYPE1v2_IOMMU) == 0, "SET_IOMMU")
    maps = [(0x10_0000, _PAGE, USER + 0x10_0000, vfapi.MapFlag.READ),
            (0x20_0000, 0x1_0000, USER + 0x30_0000,
             vfapi.MapFlag.READ | vfapi.MapFlag.WRITE),
            (0x40_0000, 0x20_0000, USER + 0x60_0000,
             vfapi.MapFlag.READ | vfapi.MapFlag.WRITE)]
    for iova, size, vaddr, flags in maps:
        arg = bytearray(vfapi.DMA_MAP.pack(32, flags, vaddr, iova, size))
        check(c.ioctl(vfapi.Ioctl.IOMMU_MAP_DMA, arg) == 0, f"MAP_DMA {iova:#x}")
    dma = 0
    for iova, size, vaddr, flags in maps:
        for device in devices:
            for offset in (0, rng.randrange(size) // 8 * 8, size - 8):
                r = probe.translate(device, iova + offset, Access.READ)
                check(_reaches(r, vaddr + offset), f"read {iova + offset:#x}: {r!r}")
                w = probe.translate(device, iova + offset, Access.WRITE)
                writable = bool(flags & vfapi.MapFlag.WRITE)
                check(_reaches(w, vaddr + offset) if writable else w.fault,
                      f"write {iova + offset:#x}: {w!r}")
                dma += 2
    for iova, size, _vaddr, _flags in maps:
        arg = bytearray(vfapi.DMA_UNMAP.pack(24, 0, iova, size))
        check(c.ioctl(vfapi.Ioctl.IOMMU_UNMAP_DMA, arg) == 0, f"UNMAP_DMA {iova:#x}")
        check(vfapi.DMA_UNMAP.unpack(arg)[3] == size, "UNMAP_DMA reports the size unmapped")
        for device in devices:
            answers = probe.possible(device, iova + size // 2, Access.READ)
            check(all(a.fault for a in answers),
                  f"after UNMAP_DMA, {device:#x} at {iova + size // 2:#x} may get {answers}")
            dma += 1
    for device in devices:
        check(c.remove_device(device) == 0, f"remove_device {device:#x}")
    return {"maps": len(maps), "dma": dma}


def _hwpt_invalidate(fd, hwpt, entries, uptr=USER + 0x3000_0000):
    raw = b"".join(entries)
    fd.host.bus.mem_write(uptr, raw)
    arg = bytearray(fdapi.HWPT_INVALIDATE.pack(
        32, hwpt, uptr, fdapi.HwptInvalidateDataType.RISCV_IOGATE, 16, len(entries), 0))
    rc = fd.ioctl(fdapi.Ioctl.HWPT_INVALIDATE, arg)
    return rc, fdapi.HWPT_INVALIDATE.unpack(arg)[5]


def nested_flow(host, probe, seed, *, device=0x81, guest_pscid=3, pages=4):
    """iommufd nesting: a guest's Sv39 stage over a nest parent, remapped and invalidated.

    The guest maps ``pages`` pages, DMA reaches guest RAM through both stages; the guest
    moves every page and propagates one ``IOMMU_HWPT_INVALIDATE`` array with one
    ``IOTINVAL.VMA`` per page; once it returns, only the new mappings may answer.
    """
    rng = random.Random(seed)
    fd, dev, parent, gmem, table = seeds.nested_guest(host, device)
    iovas = [0x4000_0000 + i * _PAGE for i in range(pages)]
    old = {iova: 0x10_0000 + rng.randrange(0x100) * _PAGE for iova in iovas}
    new = {iova: 0x180_0000 + rng.randrange(0x100) * _PAGE for iova in iovas}
    for iova in iovas:
        table.map(iova, old[iova], _PAGE, r=True, w=True)
    data = fdapi.HWPT_RISCV.pack(bits.pack(TC, v=1), bits.pack(TA, pscid=guest_pscid),
                                 bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=table.root >> 12))
    host.bus.mem_write(USER + 0x2FFF_0000, data)
    arg = bytearray(fdapi.HWPT_ALLOC.pack(48, 0, dev, parent, 0, 0,
                                          fdapi.HwptDataType.RISCV_IOGATE, len(data),
                                          USER + 0x2FFF_0000, 0, 0))
    check(fd.ioctl(fdapi.Ioctl.HWPT_ALLOC, arg) == 0, "HWPT_ALLOC (nested)")
    nested = fdapi.HWPT_ALLOC.unpack(arg)[4]
    check(fd.attach(dev, nested) == 0, "attach")
    for iova in iovas:
        r = probe.translate(device, iova + 0x10, Access.WRITE)
        check(_reaches(r, USER + old[iova] + 0x10), f"nested DMA at {iova:#x}: {r!r}")
    for iova in iovas:
        table.map(iova, new[iova], _PAGE, r=True, w=True)
    entries = [commands.to_bytes(commands.iotinval_vma(pscid=guest_pscid, addr=iova))
               for iova in iovas]
    rc, done = _hwpt_invalidate(fd, nested, entries)
    check((rc, done) == (0, pages), f"HWPT_INVALIDATE: expected (0, {pages}), got "
                                    f"{(rc, done)}")
    for iova in iovas:
        answers = probe.possible(device, iova, Access.READ)
        check(len(answers) == 1 and _reaches(next(iter(answers)), USER + new[iova]),
              f"after HWPT_INVALIDATE only the new mapping of {iova:#x} may answer: "
              f"{answers}")
    fd.detach(dev)
    fd.unbind(dev)
    return {"pages": pages, "invalidated": done}


def _seed(fn):
    def run(host, probe, seed):
        return fn(host, probe)
    run.__doc__ = fn.__doc__
    return run


#: ``{name: (one-line description, fn(host, probe, seed) -> report dict)}``.
SCENARIOS = {
    "virtio": ("virtio-iommu with a Linux-like guest, strict and lazy unmap",
               virtio_streams),
    "vfio": ("VFIO type1v2 container: map, DMA, unmap, DMA faults", vfio_flow),
    "nested": ("iommufd nesting: guest stage-1 remap, HWPT_INVALIDATE, new mapping only",
               nested_flow),
    "coherency": ("seed 1: VFIO needs coherent DMA; Svpbmt types of each mapping kind",
                  _seed(seeds.coherency)),
    "ownership": ("seed 2: blocking domain and owner change leave no stale translation",
                  _seed(seeds.ownership_change)),
    "bypass": ("seed 3: a bypassing device is refused by VFIO; bypass and translation coexist",
               _seed(seeds.bypass)),
    "restricted-dma": ("seed 4: restricted-dma-pool windows and the linux,dma-default pool",
                       _seed(seeds.restricted_dma_pool)),
    "nested-invalidation": ("seed 5: HWPT_INVALIDATE errnos, partial arrays, propagation",
                            _seed(seeds.nested_invalidation)),
}


def cocotb_name_of(name):
    """The ``@cocotb.test`` function that runs scenario ``name`` (for the runner's
    ``testcase=`` filter, which selects it without skipping anything)."""
    return "probe_detects_disagreement" if name == SELF_CHECK else name.replace("-", "_")


async def run_scenario(dut, name):
    """Run scenario ``name`` on the RTL; write its report; fail on any mismatch."""
    seed = int(os.environ.get("IOGATE_SEED", "1"))
    s = await open_session(dut, FULL)
    probe = RtlProbe(s)
    fn = SCENARIOS[name][1]
    error = None
    result = {}
    try:
        host = await s.run(HostIommu.of, s.bus)
        result = await s.run(fn, host, probe, seed)
        await s.check_fault_records()
    except Exception as e:  # reported, then raised again: the test fails
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        report = s.report(scenario=name, seed=seed, sim=os.environ.get("IOGATE_SIM", "?"),
                          probes=probe.requests, result=result, error=error)
        path = os.environ.get("IOGATE_REPORT")
        if path:
            with open(path, "w") as f:
                json.dump(report, f, indent=2, default=str)
    dut._log.info("%s: %d translations, %d mismatches", name, report["translations"],
                  report["mismatches"])
    assert not s.mismatches, "\n".join(s.mismatches[:10])


@cocotb.test()
async def virtio(dut):
    await run_scenario(dut, "virtio")


@cocotb.test()
async def vfio(dut):
    await run_scenario(dut, "vfio")


@cocotb.test()
async def nested(dut):
    await run_scenario(dut, "nested")


@cocotb.test()
async def coherency(dut):
    await run_scenario(dut, "coherency")


@cocotb.test()
async def ownership(dut):
    await run_scenario(dut, "ownership")


@cocotb.test()
async def bypass(dut):
    await run_scenario(dut, "bypass")


@cocotb.test()
async def restricted_dma(dut):
    await run_scenario(dut, "restricted-dma")


@cocotb.test()
async def nested_invalidation(dut):
    await run_scenario(dut, "nested-invalidation")


#: Not a scenario: the check that a disagreement between the RTL and the model is caught.
SELF_CHECK = "self-check"


def _leaf_pte_address(memory, table, iova):
    # The Sv39/Sv48 walk of the Privileged spec ("Virtual Address Translation Process"):
    # VPN[i] indexes level i; a non-leaf PTE's PPN (bits 53:10) is the next table.
    address = table.root
    for level in range(table.levels - 1, 0, -1):
        pte = memory.read64(address + table.index(iova, level) * 8)
        address = (pte >> 10 & (1 << 44) - 1) << 12
    return address + table.index(iova, 0) * 8


@cocotb.test()
async def probe_detects_disagreement(dut):
    """A leaf PTE cleared in the model's memory only: the RTL still translates (its
    memory is unchanged), the model says page fault, and the probe counts one mismatch."""
    s = await open_session(dut, FULL)
    probe = RtlProbe(s)
    host = await s.run(HostIommu.of, s.bus)
    device, iova, pa = 0x91, 0x10_0000, 0x50_0000

    def setup():
        domain = host.paging_domain()
        host.attach(device, domain)
        domain.map(iova, pa, 0x2000, Prot.READ | Prot.WRITE)
        return domain.table

    table = await s.run(setup)
    first = await s.run(probe.translate, device, iova + 8, Access.READ)
    assert (first.fault, first.pa, s.mismatches) == (False, pa + 8, [])
    # The second page was never translated, so neither side can have it cached.
    address = _leaf_pte_address(s.memory, table, iova + 0x1000)
    assert s.memory.read64(address) >> 10 & (1 << 44) - 1 == (pa + 0x1000) >> 12
    s.model.memory.write(address, bytes(8))
    got = await s.run(probe.translate, device, iova + 0x1000, Access.READ)
    assert (got.fault, got.pa) == (False, pa + 0x1000), got
    assert len(s.mismatches) == 1 and "cause=13" in s.mismatches[0], s.mismatches
