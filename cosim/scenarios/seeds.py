"""The seed scenarios: the mailing-list problems iogate must handle well, each a plain function.

Each scenario takes a backend (anything :meth:`iogate.cosim.host.core.HostIommu.of` accepts)
and a probe (:class:`ModelProbe`, or anything with its two methods; by default one over
the backend's architectural model), drives the front-ends the way their users would,
checks what DMA then does, raises :class:`ScenarioError` on anything the specification
does not allow, and returns a small report. The RTL test bench runs the same functions
with its own bus and probe.

1. :func:`coherency` -- "vfio: Require that devices support DMA cache coherence" and the
   virtio-iommu fix that followed: VFIO refuses an IOMMU without
   ``IOMMU_CAP_CACHE_COHERENCY``; VFIO's mappings carry ``IOMMU_CACHE``; a mapping without
   it becomes Svpbmt ``NC`` (``PMA`` when the IOMMU has no Svpbmt), MMIO becomes ``IO``.
2. :func:`ownership_change` -- "It is important when this returns that the iommu
   translation is all emptied" (powerpc blocking domains): after a device moves to a
   blocking domain or to a new owner, no answer that reaches an earlier mapping is allowed,
   even one the IOTLB held.
3. :func:`bypass` -- "If someone runs an L1 guest with an IOMMU-bypassing virtio device and
   assigns it to L2 using vfio, then *boom*": a bypassing device cannot go to a VFIO
   container; bypassed and translated devices coexist.
4. :func:`restricted_dma_pool` -- ``restricted-dma-pool`` with a catch-all
   ``linux,dma-default``: a device confined to its pool window reaches only the pool, and
   devices without their own pool share the default one.
5. :func:`nested_invalidation` -- VFIO_IOMMU_CACHE_INVALIDATE's successor: a guest's
   stage-1 change is visible only after its invalidation is propagated; bad sizes, flags
   and data types get the right errno; a failure mid-array reports how far it got.
"""

import errno

from iogate.hdl import bits
from iogate.hdl.formats import IOSATP, TA, TC, Cause, IosatpMode, Pbmt
from iogate.hdl.port import Access

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.host.core import IDENTITY, HostIommu, Prot
from iogate.cosim.host.iommufd import uapi as fdapi
from iogate.cosim.host.iommufd.ictx import Iommufd
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.vfio import uapi as vfapi
from iogate.cosim.host.virtio import VirtioIommu
from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import AttachFlag, MapFlag, Status

__all__ = ["coherency", "ownership_change", "bypass", "restricted_dma_pool",
           "nested_invalidation", "confine_to_pools", "SCENARIOS",
           "ModelProbe", "ScenarioError", "check"]

# -- probes: how a scenario asks what DMA would do -------------------------------------------
#
# A scenario drives the front-ends synchronously and then needs to know what a device's DMA
# gets. On the architectural model that is IommuModel.translate (what the model answers
# now) and IommuModel.allowed (every answer the spec allows now: the current tables plus
# whatever a cache may still hold before an invalidation and its IOFENCE.C complete). An RTL
# test bench passes its own probe with the same two methods, sending real translation
# requests; that is why scenarios take a probe and never reach into the model themselves.

class ScenarioError(AssertionError):
    """A scenario saw something the specification does not allow."""


def check(condition, message):
    """Raise :class:`ScenarioError` with ``message`` unless ``condition`` (not an ``assert``:
    scenarios must also check under ``python -O``)."""
    if not condition:
        raise ScenarioError(message)


class ModelProbe:
    """A probe over an :class:`iogate.cosim.model.IommuModel`.

    Parameters
    ----------
    model : iogate.cosim.model.IommuModel

    Raises
    ------
    ValueError
        If ``model`` is None (the backend does not run on the model).
    """

    def __init__(self, model):
        if model is None:
            raise ValueError("the backend has no architectural model: pass a probe")
        self.model = model

    def translate(self, device_id, iova, access=Access.READ):
        """The answer a DMA request gets now (the model's caches included)."""
        return self.model.translate(device_id, iova, access, report=False)

    def possible(self, device_id, iova, access=Access.READ):
        """Every answer the specification allows for this request now (a set)."""
        return self.model.allowed(device_id, iova, access)


#: The process's memory in the VFIO and iommufd scenarios (virtual == physical).
USER = 0x2_0000_0000


def _setup(backend, probe):
    host = HostIommu.of(backend)
    return host, probe if probe is not None else ModelProbe(host.model)


def _reaches(result, pa):
    return not result.fault and result.pa == pa


def _vfio_map(c, iova, size, vaddr, flags=vfapi.MapFlag.READ | vfapi.MapFlag.WRITE):
    return c.ioctl(vfapi.Ioctl.IOMMU_MAP_DMA,
                   bytearray(vfapi.DMA_MAP.pack(32, flags, vaddr, iova, size)))


def _virtio(dev, request):
    return rq.decode_tail(dev.request(request.encode(), 4))


# -- 1. coherency -------------------------------------------------------------------------

def coherency(backend=None, probe=None, *, device=0x21, other=0x22):
    """VFIO needs cache-coherent DMA; how each kind of mapping is typed (Svpbmt)."""
    host, probe = _setup(backend, probe)
    c = VfioContainer(host, allow_unsafe_interrupts=True)
    check(c.add_device(other, coherent=False) == -errno.EINVAL,
          "a device whose IOMMU lacks IOMMU_CAP_CACHE_COHERENCY must be refused")
    check(c.add_device(device) == 0, "a device behind iogate must be accepted")
    check(c.ioctl(vfapi.Ioctl.SET_IOMMU, vfapi.Extension.TYPE1v2_IOMMU) == 0, "SET_IOMMU")
    # iogate is coherent but cannot stop no-snoop DMA: the extension says so.
    check(c.ioctl(vfapi.Ioctl.CHECK_EXTENSION, vfapi.Extension.DMA_CC_IOMMU) == 0,
          "VFIO_DMA_CC_IOMMU must be 0: iogate does not enforce cache coherency")
    check(_vfio_map(c, 0x10_0000, 0x1_0000, USER + 0x40_0000) == 0, "MAP_DMA")
    r = probe.translate(device, 0x10_0040, Access.WRITE)
    check(_reaches(r, USER + 0x40_0040) and r.pbmt == Pbmt.PMA,
          f"a VFIO mapping carries IOMMU_CACHE, so its memory type is PMA, not {r!r}")
    # A kernel mapping without IOMMU_CACHE (a non-coherent device's buffer) and an MMIO
    # one, in a domain of their own.
    domain = host.paging_domain()
    host.attach(other, domain)
    domain.map(0x20_0000, 0x50_0000, 0x1000, Prot.READ | Prot.WRITE)
    domain.map(0x30_0000, 0x6000_0000, 0x1000, Prot.READ | Prot.WRITE | Prot.MMIO)
    noncoherent = probe.translate(other, 0x20_0000, Access.READ).pbmt
    mmio = probe.translate(other, 0x30_0000, Access.READ).pbmt
    want = (Pbmt.NC, Pbmt.IO) if host.svpbmt else (Pbmt.PMA, Pbmt.PMA)
    check((noncoherent, mmio) == want,
          f"non-coherent and MMIO mappings must be {want}, not {(noncoherent, mmio)}")
    host.attach(other, IDENTITY)
    host.free_domain(domain)
    return {"vfio_pbmt": Pbmt.PMA.name, "noncoherent_pbmt": Pbmt(noncoherent).name,
            "mmio_pbmt": Pbmt(mmio).name}


# -- 2. ownership change -------------------------------------------------------------------

def _no_stale(probe, device, iova, pa, what):
    answers = probe.possible(device, iova, Access.READ)
    stale = [a for a in answers if _reaches(a, pa)]
    check(not stale, f"after {what}, DMA at {iova:#x} may still reach {pa:#x}: {answers}")
    return answers


def ownership_change(backend=None, probe=None, *, device=0x31):
    """Blocking domain and change of owner leave nothing of the earlier mappings."""
    host, probe = _setup(backend, probe)
    iova, old_pa, new_pa = 0x10_0000, USER + 0x80_0000, 0x90_0000
    c = VfioContainer(host, allow_unsafe_interrupts=True)
    check(c.add_device(device) == 0, "add_device")
    c.ioctl(vfapi.Ioctl.SET_IOMMU, vfapi.Extension.TYPE1v2_IOMMU)
    check(_vfio_map(c, iova, 0x1000, old_pa) == 0, "MAP_DMA")
    # Warm the IOTLB with the mapping, as a device's DMA would.
    check(_reaches(probe.translate(device, iova), old_pa), "the mapping must be reachable")
    # 1) The container gives the device up: blocking domain.
    check(c.remove_device(device) == 0, "remove_device")
    answers = _no_stale(probe, device, iova, old_pa, "the move to a blocking domain")
    check(all(a.fault and a.cause == Cause.DDT_ENTRY_NOT_VALID for a in answers),
          f"a blocked device must fault with cause 258, not {answers}")
    # 2) A new owner (a virtio-iommu device) maps something else at the same IOVA.
    dev = VirtioIommu([device], backend=host)
    check(_virtio(dev, rq.Attach(1, device)) == Status.OK, "ATTACH")
    check(_virtio(dev, rq.Map(1, iova, iova + 0xFFF, new_pa, MapFlag.READ)) == Status.OK,
          "MAP")
    answers = _no_stale(probe, device, iova, old_pa, "the change of owner")
    check(answers == {probe.translate(device, iova)} and _reaches(next(iter(answers)), new_pa),
          f"only the new owner's mapping may answer, not {answers}")
    # 3) Within the new owner: the endpoint moves to another domain.
    check(_virtio(dev, rq.Attach(2, device)) == Status.OK, "ATTACH to domain 2")
    _no_stale(probe, device, iova, new_pa, "the move to another domain")
    check(_virtio(dev, rq.Detach(2, device)) == Status.OK, "DETACH")
    _no_stale(probe, device, iova, new_pa, "DETACH")
    dev.reset()
    host.release(device, dev)
    return {"moves": 3}


# -- 3. bypass ---------------------------------------------------------------------------

def bypass(backend=None, probe=None, *, bypassed=0x41, translated=0x42, endpoints=(0x43, 0x44)):
    """A bypassing device is refused by VFIO; bypassed and translated DMA coexist."""
    host, probe = _setup(backend, probe)
    # The platform leaves one device untranslated (an identity device context).
    host.attach(bypassed, IDENTITY)
    c = VfioContainer(host, allow_unsafe_interrupts=True)
    check(c.add_device(bypassed, bypass=True) == -errno.EINVAL,
          "a device that bypasses the IOMMU must not be handed to VFIO")
    check(c.add_device(translated) == 0, "add_device")
    c.ioctl(vfapi.Ioctl.SET_IOMMU, vfapi.Extension.TYPE1v2_IOMMU)
    check(_vfio_map(c, 0x10_0000, 0x2000, USER + 0x10_0000) == 0, "MAP_DMA")
    # A virtio-iommu device with one endpoint in a bypass domain, one translated.
    ep_bypass, ep_mapped = endpoints
    dev = VirtioIommu(endpoints, backend=host)
    check(_virtio(dev, rq.Attach(7, ep_bypass, AttachFlag.BYPASS)) == Status.OK, "ATTACH")
    check(_virtio(dev, rq.Attach(8, ep_mapped)) == Status.OK, "ATTACH")
    check(_virtio(dev, rq.Map(8, 0x10_0000, 0x10_0FFF, 0x70_0000, 3)) == Status.OK, "MAP")
    samples = 0
    for iova in (0x10_0000, 0x10_1ABC, 0x55_0000, 0x1234_5678):
        for device in (bypassed, ep_bypass):
            check(_reaches(probe.translate(device, iova, Access.WRITE), iova),
                  f"bypassed device {device:#x} must reach {iova:#x} untranslated")
        r = probe.translate(translated, iova)
        inside = 0x10_0000 <= iova < 0x10_2000
        check(_reaches(r, USER + iova) if inside else r.fault,
              f"VFIO device at {iova:#x}: {r!r}")
        r = probe.translate(ep_mapped, iova)
        inside = 0x10_0000 <= iova < 0x10_1000
        check(_reaches(r, 0x70_0000 + iova - 0x10_0000) if inside else r.fault,
              f"virtio endpoint at {iova:#x}: {r!r}")
        samples += 4
    dev.reset()
    for ep in endpoints:
        host.release(ep, dev)
    return {"samples": samples}


# -- 4. restricted DMA pools -----------------------------------------------------------------

def confine_to_pools(host, devices, pools, default):
    """Confine each device's DMA to a pool window (``restricted-dma-pool``).

    A pool is a paging domain that maps its window onto itself (IOVA = PA: the bounce
    buffers are addressed physically), read-write; everything else faults. Devices named
    in ``pools`` get their own pool, the others share ``default`` (``linux,dma-default``).

    Parameters
    ----------
    host : HostIommu
    devices : iterable of int
    pools : dict
        ``{device_id: (base, size)}``.
    default : (int, int)
        The catch-all pool.

    Returns
    -------
    dict
        ``{device_id: domain}``.
    """
    domains = {}
    made = {}
    for device in devices:
        window = pools.get(device, default)
        if window not in made:
            domain = made[window] = host.paging_domain()
            domain.map(window[0], window[0], window[1], Prot.READ | Prot.WRITE | Prot.CACHE)
        host.attach(device, made[window])
        domains[device] = made[window]
    return domains


def restricted_dma_pool(backend=None, probe=None, *, devices=(0x51, 0x52, 0x53)):
    """A device with its own pool reaches only it; the others share the default pool."""
    host, probe = _setup(backend, probe)
    own, *others = devices
    pools = {own: (0x4000_0000, 0x40_0000)}
    default = (0x5000_0000, 0x20_0000)
    domains = confine_to_pools(host, devices, pools, default)
    check(domains[others[0]] is domains[others[1]], "devices without a pool share one domain")
    checks = 0
    for device in devices:
        base, size = pools.get(device, default)
        for iova in (base, base + 0x1234, base + size - 8):
            check(_reaches(probe.translate(device, iova, Access.WRITE), iova),
                  f"device {device:#x} must reach its pool at {iova:#x}")
            checks += 1
        elsewhere = [base - 0x1000, base + size, 0x1000, 0x2_0000_0000]
        elsewhere += [b + 0x10 for b, _ in list(pools.values()) + [default] if b != base]
        for iova in elsewhere:
            r = probe.translate(device, iova, Access.READ)
            check(r.fault, f"device {device:#x} must not reach {iova:#x} outside its pool")
            checks += 1
    for device in devices:
        host.attach(device, IDENTITY)
    for domain in {id(d): d for d in domains.values()}.values():
        host.free_domain(domain)
    return {"checks": checks}


# -- 5. nested invalidation -------------------------------------------------------------------

def _invalidate(fd, hwpt, entries, *, entry_len=16, entry_num=None, data_type=None,
                reserved=0, uptr=USER + 0x3000_0000):
    raw = b"".join(e.ljust(entry_len, b"\0") for e in entries)
    if raw:
        fd.host.bus.mem_write(uptr, raw)
    data_type = fdapi.HwptInvalidateDataType.RISCV_IOGATE if data_type is None else data_type
    n = len(entries) if entry_num is None else entry_num
    arg = bytearray(fdapi.HWPT_INVALIDATE.pack(32, hwpt, uptr, data_type, entry_len, n,
                                               reserved))
    rc = fd.ioctl(fdapi.Ioctl.HWPT_INVALIDATE, arg)
    return rc, fdapi.HWPT_INVALIDATE.unpack(arg)[5]


def nested_guest(host, device):
    """An iommufd stage-2 parent for ``device`` and a guest's empty Sv39 table.

    Binds ``device``, gives the IOAS 64 MiB of guest RAM (guest physical [0, 64 MiB) is the
    process's memory at ``USER``), allocates a NEST_PARENT HWPT over it, and builds the
    guest's first-stage table in guest memory, through that second stage, as the guest's
    own driver would. Returns ``(iommufd, dev_id, parent_hwpt_id, guest_memory, table)``.
    """
    fd = Iommufd(host, allow_unsafe_interrupts=True)
    dev = fd.bind(device)
    check(dev > 0, "bind")
    arg = bytearray(fdapi.IOAS_ALLOC.pack(12, 0, 0))
    check(fd.ioctl(fdapi.Ioctl.IOAS_ALLOC, arg) == 0, "IOAS_ALLOC")
    ioas = fdapi.IOAS_ALLOC.unpack(arg)[2]
    flags = (fdapi.IoasMapFlag.FIXED_IOVA | fdapi.IoasMapFlag.READABLE
             | fdapi.IoasMapFlag.WRITEABLE)
    arg = bytearray(fdapi.IOAS_MAP.pack(40, flags, ioas, 0, USER, 64 << 20, 0))
    check(fd.ioctl(fdapi.Ioctl.IOAS_MAP, arg) == 0, "IOAS_MAP")
    arg = bytearray(fdapi.HWPT_ALLOC.pack(48, fdapi.HwptAllocFlag.NEST_PARENT, dev, ioas,
                                          0, 0, 0, 0, 0, 0, 0))
    check(fd.ioctl(fdapi.Ioctl.HWPT_ALLOC, arg) == 0, "HWPT_ALLOC (nest parent)")
    parent = fdapi.HWPT_ALLOC.unpack(arg)[4]
    gmem = GuestMemory(host.bus, fd.objects[parent].domain.table)
    table = PageTable(gmem, PageAllocator(gmem, 0x200_0000, 0x100_0000), IosatpMode.SV39)
    return fd, dev, parent, gmem, table


def nested_invalidation(backend=None, probe=None, *, device=0x61, guest_pscid=5):
    """A guest's first-stage change, its invalidation through iommufd, and the errnos."""
    host, probe = _setup(backend, probe)
    fd, dev, parent, gmem, table = nested_guest(host, device)
    iova_a, iova_b = 0x4000_0000, 0x4000_1000
    table.map(iova_a, 0x10_0000, 0x1000, r=True, w=True)
    table.map(iova_b, 0x11_0000, 0x1000, r=True, w=True)
    data = fdapi.HWPT_RISCV.pack(bits.pack(TC, v=1), bits.pack(TA, pscid=guest_pscid),
                                 bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=table.root >> 12))
    host.bus.mem_write(USER + 0x2FFF_0000, data)
    arg = bytearray(fdapi.HWPT_ALLOC.pack(48, 0, dev, parent, 0, 0,
                                          fdapi.HwptDataType.RISCV_IOGATE, len(data),
                                          USER + 0x2FFF_0000, 0, 0))
    check(fd.ioctl(fdapi.Ioctl.HWPT_ALLOC, arg) == 0, "HWPT_ALLOC (nested)")
    nested = fdapi.HWPT_ALLOC.unpack(arg)[4]
    check(fd.attach(dev, nested) == 0, "attach")
    check(_reaches(probe.translate(device, iova_a), USER + 0x10_0000),
          "the guest's mapping must reach guest RAM through both stages")
    probe.translate(device, iova_b)

    # The guest moves both pages; until it invalidates, the old answer may still come.
    table.map(iova_a, 0x20_0000, 0x1000, r=True, w=True)
    table.map(iova_b, 0x21_0000, 0x1000, r=True, w=True)
    before = probe.possible(device, iova_a)
    check(any(_reaches(a, USER + 0x10_0000) for a in before),
          f"before the invalidation a cached answer may remain: {before}")
    vma_a = commands.to_bytes(commands.iotinval_vma(pscid=guest_pscid, addr=iova_a))
    vma_b = commands.to_bytes(commands.iotinval_vma(pscid=guest_pscid, addr=iova_b))
    fence = commands.to_bytes(commands.iofence_c())

    # Refusals that change nothing: entry_num comes back 0 and the old answer remains.
    refusals = [
        (dict(entries=[vma_a], entry_len=8), -errno.EINVAL),          # entry too short
        (dict(entries=[vma_a], reserved=1), -errno.EOPNOTSUPP),       # __reserved
        (dict(entries=[vma_a], data_type=fdapi.HwptInvalidateDataType.VTD_S1),
         -errno.EINVAL),                                               # wrong data type
        (dict(entries=[vma_a + b"\x01"], entry_len=24), -errno.E2BIG),  # non-zero tail
        (dict(entries=[fence]), -errno.EOPNOTSUPP),                   # not IOTINVAL.VMA
    ]
    for kwargs, expected in refusals:
        rc, done = _invalidate(fd, nested, **kwargs)
        check((rc, done) == (expected, 0), f"{kwargs}: expected ({expected}, 0), got "
                                           f"({rc}, {done})")
    check(any(_reaches(a, USER + 0x10_0000) for a in probe.possible(device, iova_a)),
          "a refused invalidation must not have been applied")
    # A failure in the middle of an array: the first entry is handled, the second is not.
    rc, done = _invalidate(fd, nested, [vma_a, fence, vma_b])
    check((rc, done) == (-errno.EOPNOTSUPP, 1), f"expected (-EOPNOTSUPP, 1), got {(rc, done)}")
    after_a = probe.possible(device, iova_a)
    check(after_a == {probe.translate(device, iova_a)}
          and _reaches(next(iter(after_a)), USER + 0x20_0000),
          f"the handled entry must be in effect, fenced: {after_a}")
    check(any(_reaches(a, USER + 0x11_0000) for a in probe.possible(device, iova_b)),
          "the entry after the failure must not have been handled")
    rc, done = _invalidate(fd, nested, [vma_b])
    check((rc, done) == (0, 1), f"expected (0, 1), got {(rc, done)}")
    after_b = probe.possible(device, iova_b)
    check(len(after_b) == 1 and _reaches(next(iter(after_b)), USER + 0x21_0000),
          f"after propagation only the new mapping may answer: {after_b}")
    fd.detach(dev)
    fd.unbind(dev)
    return {"refusals": len(refusals), "partial": done}


#: Every scenario, by name.
SCENARIOS = {
    "coherency": coherency,
    "ownership_change": ownership_change,
    "bypass": bypass,
    "restricted_dma_pool": restricted_dma_pool,
    "nested_invalidation": nested_invalidation,
}
