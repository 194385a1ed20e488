"""A seeded guest-side virtio-iommu driver, modelled on Linux's (drivers/iommu/virtio-iommu.c).

It produces the request streams a Linux guest sends (what Linux's virtio-iommu driver emits) and
checks, after each request, what the device promised against what DMA gets (through a probe, see
:class:`iogate.cosim.scenarios.seeds.ModelProbe`):

* probe: refuse a device without ``VIRTIO_F_VERSION_1`` or ``MAP_UNMAP``, read the config,
  PROBE each endpoint and parse its ``RESV_MEM`` properties; without an MSI region, reserve
  the software MSI window (IOVA 0x8000000, 1 MiB) and map the doorbell there with MMIO;
* attach: domain IDs from ``domain_range``; identity domains with ``ATTACH_F_BYPASS``;
* map in batches (the driver queues requests and kicks at ``iotlb_sync_map``), DMA, then
  unmap each buffer at once (strict) or collect them and unmap in batches (lazy, the flush
  queue), with one UNMAP covering neighbouring buffers;
* detach, and re-attach with replay: a detached domain loses its mappings in the device
  and the driver sends them again on the first attach.

Every request a Linux driver sends is valid, so every status must be ``S_OK``.
"""

import collections
import dataclasses
import random

from iogate.hdl.port import Access

from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import VIRTIO_F_VERSION_1, AttachFlag, Feature, MapFlag, Status
from iogate.cosim.host.virtio.probe import decode_properties
from iogate.cosim.scenarios.seeds import ModelProbe, ScenarioError

__all__ = ["LinuxGuest", "StreamReport", "SOFTWARE_MSI"]

#: Linux's software MSI window (``MSI_IOVA_BASE``, ``MSI_IOVA_LENGTH``).
SOFTWARE_MSI = (0x800_0000, 0x10_0000)
_PAGE = 4096


@dataclasses.dataclass
class StreamReport:
    """What a run sent and checked."""
    requests: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    dma_checks: int = 0
    replays: int = 0

    def as_dict(self):
        return {"requests": dict(self.requests), "dma_checks": self.dma_checks,
                "replays": self.replays}


class _Domain:
    def __init__(self, domain_id, identity):
        self.id = domain_id
        self.identity = identity
        self.endpoints = []
        self.mappings = {}          # iova -> (size, phys, flags), tracked by the driver
        self.attached = False


class LinuxGuest:
    """A guest driving ``dev`` the way Linux does.

    Parameters
    ----------
    dev : iogate.cosim.host.virtio.VirtioIommu
    seed : int
    strict : bool
        Unmap each buffer at once (``iommu.strict=1``) or in batches (lazy).
    guest_ram : (int, int)
        ``(base, size)`` of the guest memory buffers are allocated from.
    probe : object or None
        How DMA is checked; the device's model by default.
    """

    def __init__(self, dev, *, seed=0, strict=True, guest_ram=(0x1000_0000, 0x1000_0000),
                 probe=None):
        self.dev = dev
        self.rng = random.Random(seed)
        self.strict = strict
        self.ram_base, self.ram_size = guest_ram
        self.probe = probe if probe is not None else ModelProbe(dev.host.model)
        self.report = StreamReport()
        self.reserved = {}
        self.domains = []
        self._next_domain = None
        self._next_iova = None
        self._next_phys = self.ram_base

    # -- transport --------------------------------------------------------------------------

    def _send(self, request, writable=4):
        written = self.dev.request(request.encode(), writable)
        self.report.requests[type(request).__name__.upper()] += 1
        return written

    def _batch(self, requests):
        # Queued without waiting, then one kick: every status must be OK.
        for request in requests:
            status = rq.decode_tail(self._send(request))
            if status != Status.OK:
                raise ScenarioError(f"{request} -> {Status(status).name}")

    # -- probe (viommu_probe, viommu_probe_endpoint) ---------------------------------------

    def probe_device(self):
        features = self.dev.features
        if not features & VIRTIO_F_VERSION_1 or not features & Feature.MAP_UNMAP:
            raise ScenarioError("Linux refuses a device without VERSION_1 or MAP_UNMAP")
        read = self.dev.config_read
        mask = read(0, 8)
        if mask & -mask > _PAGE:
            raise ScenarioError("granule larger than PAGE_SIZE: the first attach would fail")
        self.input_range = (read(8, 8), read(16, 8))
        self._next_domain = read(24, 4)
        self.domain_last = read(28, 4)
        probe_size = read(32, 4)
        self._next_iova = max(self.input_range[0], 0x10_0000)
        for ep in self.dev.endpoints:
            regions = []
            if probe_size:
                written = self._send(rq.Probe(ep), probe_size + 4)
                if rq.decode_tail(written) != Status.OK:
                    raise ScenarioError(f"PROBE of {ep:#x} failed")
                regions = decode_properties(written[:probe_size])
            self.reserved[ep] = regions
        return self

    def _reserved(self, ep):
        regions = [(r.start, r.end) for r in self.reserved[ep]]
        if not any(r.subtype == 1 for r in self.reserved[ep]):
            regions.append((SOFTWARE_MSI[0], SOFTWARE_MSI[0] + SOFTWARE_MSI[1] - 1))
        return regions

    # -- domains ---------------------------------------------------------------------------

    def make_domains(self):
        """One domain per pair of endpoints; one endpoint in four is an identity domain."""
        eps = list(self.dev.endpoints)
        self.rng.shuffle(eps)
        while eps:
            identity = self.rng.random() < 0.25 and self.dev.features & Feature.BYPASS_CONFIG
            group = [eps.pop()] if identity or len(eps) < 2 else [eps.pop(), eps.pop()]
            domain = _Domain(self._alloc_domain_id(), bool(identity))
            domain.endpoints = group
            self.domains.append(domain)
        for domain in self.domains:
            self.attach(domain)
        return self

    def _alloc_domain_id(self):
        domain_id = self._next_domain
        if domain_id > self.domain_last:
            raise ScenarioError("out of domain IDs")
        self._next_domain += 1
        return domain_id

    def attach(self, domain):
        flags = AttachFlag.BYPASS if domain.identity else 0
        self._batch([rq.Attach(domain.id, ep, flags) for ep in domain.endpoints])
        if not domain.attached and domain.mappings:
            # viommu_replay_mappings: the device forgot them when the domain died.
            self._batch([rq.Map(domain.id, iova, iova + size - 1, phys, flags)
                         for iova, (size, phys, flags) in sorted(domain.mappings.items())])
            self.report.replays += 1
        domain.attached = True
        for ep in domain.endpoints:
            self._check_msi(domain, ep)

    def detach(self, domain):
        self._batch([rq.Detach(domain.id, ep) for ep in domain.endpoints])
        domain.attached = False
        bypass = self.dev.config_read(36, 1)
        for ep in domain.endpoints:
            iova = next(iter(domain.mappings), 0x10_0000)
            r = self.probe.possible(ep, iova)
            if bypass:
                ok = r == {self.probe.translate(ep, iova)} and not next(iter(r)).fault
            else:
                ok = all(a.fault for a in r)
            self._checked(ok, f"detached endpoint {ep:#x} at {iova:#x}: {r}")

    def _check_msi(self, domain, ep):
        if domain.identity or not any(r.subtype == 1 for r in self.reserved[ep]):
            return
        msi = next(r for r in self.reserved[ep] if r.subtype == 1)
        r = self.probe.translate(ep, msi.start, Access.WRITE)
        self._checked(not r.fault, f"the MSI doorbell of {ep:#x} must be reachable: {r!r}")

    # -- mappings --------------------------------------------------------------------------

    def _alloc_iova(self, size, ep_regions):
        align = size if size & (size - 1) == 0 else _PAGE
        while True:
            iova = -(-self._next_iova // align) * align
            self._next_iova = iova + size
            if not any(a <= iova + size - 1 and iova <= b for a, b in ep_regions):
                return iova

    def _alloc_phys(self, size):
        align = size if size & (size - 1) == 0 and size <= 0x20_0000 else _PAGE
        phys = -(-self._next_phys // align) * align
        if phys + size > self.ram_base + self.ram_size:
            phys = self.ram_base
        self._next_phys = phys + size
        return phys

    def map_batch(self, domain, count):
        """``count`` buffers of random sizes, mapped with one kick; returns their IOVAs."""
        regions = [r for ep in domain.endpoints for r in self._reserved(ep)]
        requests, iovas = [], []
        for _ in range(count):
            size = self.rng.choice([_PAGE, 2 * _PAGE, 0x1_0000, 0x3000, 0x20_0000])
            iova = self._alloc_iova(size, regions)
            phys = self._alloc_phys(size)
            flags = self.rng.choice([MapFlag.READ, MapFlag.READ | MapFlag.WRITE])
            domain.mappings[iova] = (size, phys, int(flags))
            requests.append(rq.Map(domain.id, iova, iova + size - 1, phys, flags))
            iovas.append(iova)
        self._batch(requests)
        return iovas

    def dma(self, domain, iova):
        """Check DMA by every endpoint of ``domain`` around the buffer at ``iova``."""
        size, phys, flags = domain.mappings[iova]
        for ep in domain.endpoints:
            for offset in (0, self.rng.randrange(size), size - 1):
                self._expect(ep, iova + offset, Access.READ, phys + offset)
                want = phys + offset if flags & MapFlag.WRITE else None
                self._expect(ep, iova + offset, Access.WRITE, want)

    def _expect(self, ep, iova, access, want):
        answers = self.probe.possible(ep, iova, access)
        if want is None:
            ok = all(a.fault for a in answers)
        else:
            ok = len(answers) == 1 and not next(iter(answers)).fault \
                and next(iter(answers)).pa == want
        self._checked(ok, f"DMA {access.name.lower()} by {ep:#x} at {iova:#x}: expected "
                          f"{'a fault' if want is None else hex(want)}, allowed {answers}")

    def _checked(self, ok, message):
        self.report.dma_checks += 1
        if not ok:
            raise ScenarioError(message)

    def unmap(self, domain, iovas):
        """Strict: one UNMAP per buffer. Lazy: neighbouring buffers share one UNMAP."""
        iovas = sorted(iovas)
        runs = []
        for iova in iovas:
            size = domain.mappings[iova][0]
            if not self.strict and runs and runs[-1][1] == iova:
                runs[-1][1] = iova + size
            else:
                runs.append([iova, iova + size])
        self._batch([rq.Unmap(domain.id, a, b - 1) for a, b in runs])
        for iova in iovas:
            size = domain.mappings.pop(iova)[0]
            for ep in domain.endpoints:
                self._expect(ep, iova + size // 2, Access.READ, None)

    # -- the whole run -----------------------------------------------------------------------

    def run(self, rounds=3, buffers=4):
        """Probe, attach, then ``rounds`` of map/DMA/unmap and a detach/re-attach."""
        self.probe_device().make_domains()
        for _ in range(rounds):
            pending = []
            for domain in self.domains:
                if domain.identity:
                    continue
                iovas = self.map_batch(domain, buffers)
                for iova in iovas:
                    self.dma(domain, iova)
                keep = self.rng.randrange(len(iovas))
                done = [i for n, i in enumerate(iovas) if n != keep]
                if self.strict:
                    for iova in done:
                        self.unmap(domain, [iova])
                else:
                    pending.append((domain, done))
            for domain, done in pending:
                self.unmap(domain, done)
            victim = self.rng.choice(self.domains)
            self.detach(victim)
            self.attach(victim)
            for iova in list(victim.mappings):
                self.dma(victim, iova)
        for domain in self.domains:
            self.detach(domain)
        return self.report
