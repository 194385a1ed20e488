"""``VirtioIommu``: the virtio-iommu device, answering requests on an iogate.

Virtio specification, section "IOMMU device" (text unchanged from v1.2 to v1.4). One
handler per request type; each validates its request completely before touching any state,
so a rejected request changes nothing, and the status it returns is visible at a glance.
The requests are lowered through the host layer (:mod:`iogate.cosim.host.core`):

* endpoint = ``device_id``;
* domain = a paging domain: a first-stage Sv48 (or Sv39) table and a PSCID;
* bypass domain, or an unattached endpoint while ``config.bypass`` is 1 = a device context
  with ``fsc`` and ``iohgatp`` Bare;
* unattached and not in bypass = ``DC.V=0`` (DMA faults with cause 258, reported on the
  eventq as ``FAULT_R_DOMAIN``);
* MAP/UNMAP = PTE writes, ``IOTINVAL.VMA`` and ``IOFENCE.C``; a request is answered only
  after the fence has completed.

Page tables do not remember which MAP made which PTE, so the mappings of each domain are
also kept as an interval list (:class:`iogate.cosim.host.intervals.IntervalMap`) that decides
overlaps and splits.

Spec over QEMU
--------------
QEMU's ``hw/virtio/virtio-iommu.c`` departs from the specification in places; this device
follows the specification:

1. ATTACH with a non-zero ``reserved`` field returns ``S_INVAL`` ("MUST"); QEMU does not
   look at it.
2. ATTACH is validated completely before the endpoint leaves its old domain, so a rejected
   ATTACH (for example a bypass flag inconsistent with the domain) leaves the endpoint where
   it was; QEMU detaches first and leaves it detached.
3. MAP checks granule alignment (``S_RANGE``), ``input_range`` (``S_RANGE``),
   ``virt_end >= virt_start`` (``S_INVAL``) and overlap with the endpoints' ``RESV_MEM``
   regions (``S_INVAL``); QEMU checks none of these.
4. UNMAP that would split a mapping returns ``S_RANGE`` and removes nothing; QEMU removes
   the mappings it met before the split one.
5. An unknown request type, a PROBE while PROBE is not offered, and a buffer too short for
   the head or the tail are returned unwritten (used length 0); QEMU writes ``S_UNSUPP`` for
   an unknown type and marks the device broken (``virtio_error``) for a missing head or tail.
6. ATTACH of an endpoint to the domain it is already in is a no-op: the spec's
   "detach, then attach" applies to an endpoint "attached to *another* domain". QEMU
   detaches first, which destroys the domain and its mappings when the endpoint was its last.

Other choices, all permitted by the specification
-------------------------------------------------
* ``config.bypass`` starts at 0 unless ``boot_bypass=True`` (QEMU's ``boot-bypass`` default
  is true): DMA is refused until the guest says otherwise.
* The legacy ``VIRTIO_IOMMU_F_BYPASS`` is not offered ("New devices SHOULD NOT").
* A MAP whose physical range leaves the guest's memory returns ``S_RANGE``: the spec
  requires the range to be "within the guest-physical address space", including "any
  carving of guest-physical addresses for use by the host" such as the IOMMU's own tables.
* A non-zero UNMAP ``reserved`` field: ``S_INVAL``, and nothing is unmapped (the spec says
  the device MAY unmap).
* ATTACH to a domain ID outside ``domain_range``: ``S_RANGE``.
* A short device-readable part with a findable tail gets ``S_INVAL`` (as QEMU does).
* The tail is the last 4 bytes of the device-writable part; the device writes the whole
  writable part (properties or zeros, then the tail), so the used length is its size.
* A mapping without READ or WRITE is recorded (it occupies its range) but installs no PTE:
  the RISC-V PTE has no "valid, no permission" leaf.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from iogate.firmware.errors import OutOfMemory

from iogate.cosim.host.core import BLOCKED, IDENTITY, HostIommu, Prot
from iogate.cosim.host.ids import IdsExhausted
from iogate.cosim.host.intervals import IntervalMap
from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import (
    TAIL_SIZE,
    VIRTIO_F_VERSION_1,
    AttachFlag,
    Feature,
    MapFlag,
    ResvMemSubtype,
    Status,
)
from iogate.cosim.host.virtio.config import ConfigSpace
from iogate.cosim.host.virtio.events import from_record
from iogate.cosim.host.virtio.probe import RESV_MEM_SIZE, ResvMem, encode_properties

if TYPE_CHECKING:
    from iogate.firmware.bus import Bus
    from iogate.firmware.driver import Iommu

__all__ = ["VirtioIommu", "GUEST_MEMORY", "OFFERED_FEATURES"]

#: The guest's physical memory by default: ``[(first, last)]``, inclusive. Everything
#: below the host's table pool (:data:`iogate.cosim.host.core.TABLE_POOL`).
GUEST_MEMORY = ((0, 0xF_FFFF_FFFF),)

#: The features this device offers.
OFFERED_FEATURES = (VIRTIO_F_VERSION_1 | Feature.INPUT_RANGE | Feature.DOMAIN_RANGE
                    | Feature.MAP_UNMAP | Feature.PROBE | Feature.MMIO
                    | Feature.BYPASS_CONFIG)

# Plain ints: ``~`` of an IntFlag complements within its members, not all bits.
_MAP_FLAGS = int(MapFlag.READ | MapFlag.WRITE | MapFlag.MMIO)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class _Domain:
    """One virtio-iommu domain: bypass or a paging domain, its endpoints and mappings."""

    def __init__(self, bypass, hw):
        self.bypass = bypass
        self.hw = hw
        self.endpoints = set()
        self.mappings = IntervalMap()


class VirtioIommu:
    """A virtio-iommu device for ``endpoints``.

    Parameters
    ----------
    endpoints : iterable of int
        The endpoint IDs (``device_id`` values) the device manages.
    backend : HostIommu, iogate.firmware.driver.Iommu, iogate.firmware.bus.Bus or None
        Where requests are lowered; ``None`` runs them on a new architectural model
        (:meth:`iogate.cosim.host.core.HostIommu.on_model`).
    boot_bypass : bool
        Initial ``config.bypass``.
    probe_size : int
        ``config.probe_size``: bytes of PROBE properties.
    reserved_regions : dict or None
        ``{endpoint: [(first, last), ...]}``: extra ``RESV_MEM_T_RESERVED`` regions.
    domain_range : (int, int)
        ``config.domain_range``, inclusive.
    guest_memory : sequence of (int, int)
        Inclusive guest physical ranges a MAP may point at.

    Raises
    ------
    TypeError
        If an endpoint or a region bound is not an integer.
    ValueError
        If an endpoint is repeated or not reachable by the IOMMU, an endpoint's properties
        do not fit ``probe_size``, or a region is empty.
    """

    def __init__(self, endpoints: Iterable[int], *,
                 backend: "HostIommu | Iommu | Bus | None" = None,
                 boot_bypass: bool = False, probe_size: int = 512,
                 reserved_regions: Mapping[int, Sequence[tuple[int, int]]] | None = None,
                 domain_range: tuple[int, int] = (0, 0xFFFF_FFFF),
                 guest_memory: Sequence[tuple[int, int]] = GUEST_MEMORY) -> None:
        endpoints = list(endpoints)
        for ep in endpoints:
            if not _is_int(ep):
                raise TypeError(f"endpoint must be an integer, not {ep!r}")
        if len(set(endpoints)) != len(endpoints):
            raise ValueError(f"endpoints must be distinct, not {endpoints!r}")
        self.host = HostIommu.of(backend)
        for ep in endpoints:
            if not self.host.valid_device_id(ep):
                raise ValueError(f"endpoint {ep:#x} is not a device_id the IOMMU reaches")
        reserved_regions = dict(reserved_regions or {})
        unknown = set(reserved_regions) - set(endpoints)
        if unknown:
            raise ValueError(f"reserved_regions names unknown endpoints {sorted(unknown)}")
        self.features = OFFERED_FEATURES
        self.config = ConfigSpace(
            page_size_mask=self.host.stage1_page_sizes,
            input_range=self.host.stage1_aperture,
            domain_range=tuple(domain_range), probe_size=probe_size,
            bypass=int(bool(boot_bypass)), bypass_writable=True)
        self.guest_memory = tuple((int(a), int(b)) for a, b in guest_memory)
        self._regions = {}
        for ep in endpoints:
            regions = [ResvMem(ResvMemSubtype.RESERVED, a, b)
                       for a, b in reserved_regions.get(ep, ())]
            if self.host.msi_window is not None:
                regions.append(ResvMem(ResvMemSubtype.MSI, *self.host.msi_window))
            if len(regions) * RESV_MEM_SIZE > probe_size:
                raise ValueError(f"the {len(regions)} properties of endpoint {ep:#x} do not "
                                 f"fit probe_size {probe_size}")
            self._regions[ep] = regions
        self.endpoints = tuple(endpoints)
        for ep in endpoints:
            if self.host.owner_of(ep) is not None:
                raise ValueError(f"endpoint {ep:#x} is already owned by another user")
        self._domains: dict[int, _Domain] = {}
        self._attached = dict.fromkeys(endpoints)
        for ep in endpoints:
            self.host.claim(ep, self)
        self._apply_bypass()

    # -- configuration space --------------------------------------------------------------

    def config_read(self, offset: int, size: int) -> int:
        """Read ``size`` bytes of ``struct virtio_iommu_config`` at ``offset``."""
        return self.config.read(offset, size)

    def config_write(self, offset: int, size: int, value: int) -> None:
        """A driver's write; only ``bypass`` changes, and then so do unattached endpoints."""
        if self.config.write(offset, size, value):
            self._apply_bypass()

    def _apply_bypass(self):
        # Spec "bypass mode": with BYPASS_CONFIG offered, an unattached endpoint is in
        # bypass iff config.bypass is 1, even if the driver did not accept the feature.
        target = IDENTITY if self.config.bypass else BLOCKED
        for ep in self.endpoints:
            if self._attached[ep] is None and self.host.domain_of(ep) is not target:
                self.host.attach(ep, target)

    def reset(self) -> None:
        """Device reset: every endpoint unattached, every domain gone; ``bypass`` kept."""
        for ep in self.endpoints:
            if self._attached[ep] is not None:
                self._leave(ep)
        self._apply_bypass()

    # -- requests -------------------------------------------------------------------------

    def request(self, readable: bytes, writable_size: int) -> bytes:
        """Handle one request; the bytes written to the device-writable part.

        Parameters
        ----------
        readable : bytes
            The device-readable part.
        writable_size : int
            Bytes in the device-writable part.

        Returns
        -------
        bytes
            ``writable_size`` bytes ending with the tail, or ``b""`` for "used length 0"
            (the request could not be parsed).
        """
        if not _is_int(writable_size):
            raise TypeError(f"writable_size must be an integer, not {writable_size!r}")
        if writable_size < TAIL_SIZE:
            return b""                       # no tail to write a status into
        try:
            req = rq.decode(readable)
        except (rq.NoHead, rq.UnknownType):
            return b""
        except rq.Truncated as e:
            if e.type == rq.RequestType.PROBE and not self.features & Feature.PROBE:
                return b""
            return self._respond(writable_size, Status.INVAL)
        if isinstance(req, rq.Probe):
            return self._probe(req, writable_size)
        handler = {rq.Attach: self._attach, rq.Detach: self._detach,
                   rq.Map: self._map, rq.Unmap: self._unmap}[type(req)]
        return self._respond(writable_size, handler(req))

    @staticmethod
    def _respond(writable_size, status, body=b""):
        return body.ljust(writable_size - TAIL_SIZE, b"\0") + rq.encode_tail(status)

    def _attach(self, req):
        """ATTACH (spec "ATTACH request")."""
        if any(req.reserved):
            return Status.INVAL              # MUST
        if req.flags & ~int(AttachFlag.BYPASS):
            return Status.INVAL              # MUST: unknown flag
        if req.endpoint not in self._attached:
            return Status.NOENT              # MUST
        first, last = self.config.domain_range
        if not first <= req.domain <= last:
            return Status.RANGE
        bypass = bool(req.flags & AttachFlag.BYPASS)
        domain = self._domains.get(req.domain)
        if domain is not None and domain.bypass != bypass:
            return Status.INVAL              # SHOULD: flag inconsistent with the domain
        if self._attached[req.endpoint] == req.domain:
            return Status.OK
        if domain is not None and not bypass and self._conflicts(req.endpoint, domain):
            return Status.UNSUPP             # incompatible PROBE properties
        if domain is None:
            try:
                hw = None if bypass else self.host.paging_domain()
            except (OutOfMemory, IdsExhausted):
                return Status.NOMEM
            domain = self._domains[req.domain] = _Domain(bypass, hw)
        self.host.attach(req.endpoint, IDENTITY if bypass else domain.hw)
        if self._attached[req.endpoint] is not None:
            self._leave(req.endpoint, switch=False)
        domain.endpoints.add(req.endpoint)
        self._attached[req.endpoint] = req.domain
        return Status.OK

    def _conflicts(self, endpoint, domain):
        # An endpoint whose reserved regions overlap the domain's mappings cannot share
        # the domain: a MAP there would have been rejected for it.
        return any(domain.mappings.overlapping(r.start, r.end)
                   for r in self._regions[endpoint])

    def _detach(self, req):
        """DETACH (spec "DETACH request"); ``reserved`` is ignored (MUST)."""
        if req.endpoint not in self._attached:
            return Status.NOENT              # MUST
        if self._attached[req.endpoint] != req.domain:
            return Status.INVAL              # MAY: unknown domain, or not attached to it
        self._leave(req.endpoint)
        return Status.OK

    def _leave(self, endpoint, switch=True):
        # The endpoint leaves its domain; with switch, its context becomes the unattached
        # one first, so it cannot reach the domain's mappings once this returns. The last
        # endpoint out destroys the domain and its mappings (spec "DETACH request").
        domain_id = self._attached[endpoint]
        domain = self._domains[domain_id]
        self._attached[endpoint] = None
        if switch:
            self.host.attach(endpoint, IDENTITY if self.config.bypass else BLOCKED)
        domain.endpoints.discard(endpoint)
        if not domain.endpoints:
            del self._domains[domain_id]
            if domain.hw is not None:
                self.host.free_domain(domain.hw)

    def _map(self, req):
        """MAP (spec "MAP request")."""
        if req.flags & ~_MAP_FLAGS:
            return Status.INVAL              # MUST: unknown flag
        domain = self._domains.get(req.domain)
        if domain is None:
            return Status.NOENT
        if domain.bypass:
            return Status.INVAL
        if req.virt_end < req.virt_start:
            return Status.INVAL              # "virt_end MUST be strictly greater"
        granule = self.config.granule
        if (req.virt_start | req.phys_start | (req.virt_end + 1)) % granule:
            return Status.RANGE
        first, last = self.config.input_range
        if req.virt_start < first or req.virt_end > last:
            return Status.RANGE              # "Any mapping request ... outside ... fails"
        size = req.virt_end - req.virt_start + 1
        if not any(a <= req.phys_start and req.phys_start + size - 1 <= b
                   for a, b in self.guest_memory):
            return Status.RANGE
        if any(r.overlaps(req.virt_start, req.virt_end)
               for ep in domain.endpoints for r in self._regions[ep]):
            return Status.INVAL              # SHOULD reject a MAP overlapping RESV_MEM
        if domain.mappings.overlapping(req.virt_start, req.virt_end):
            return Status.INVAL              # SHOULD: a mapping exists in the range
        prot = Prot(0)
        if req.flags & MapFlag.READ:
            prot |= Prot.READ
        if req.flags & MapFlag.WRITE:
            prot |= Prot.WRITE
        prot |= Prot.MMIO if req.flags & MapFlag.MMIO else Prot.CACHE
        if prot & (Prot.READ | Prot.WRITE):
            try:
                domain.hw.map(req.virt_start, req.phys_start, size, prot)
            except OutOfMemory:
                return Status.NOMEM
        domain.mappings.add(req.virt_start, req.virt_end, (req.phys_start, req.flags))
        return Status.OK

    def _unmap(self, req):
        """UNMAP (spec "UNMAP request"): atomic, holes allowed, no split."""
        if any(req.reserved):
            return Status.INVAL              # MAY
        domain = self._domains.get(req.domain)
        if domain is None:
            return Status.NOENT
        if domain.bypass:
            return Status.INVAL
        if req.virt_end < req.virt_start:
            return Status.INVAL
        if domain.mappings.split_by(req.virt_start, req.virt_end):
            return Status.RANGE              # SHOULD NOT remove any mapping
        gone = domain.mappings.covered(req.virt_start, req.virt_end)
        if gone:
            domain.hw.unmap_many([(a.start, a.size) for a in gone])
            for area in gone:
                domain.mappings.remove(area)
        return Status.OK

    def _probe(self, req, writable_size):
        """PROBE (spec "PROBE request"): ``RESV_MEM`` properties, zero-filled."""
        if not self.features & Feature.PROBE:
            return b""                       # SHOULD NOT write, used length 0
        if req.endpoint not in self._attached:
            return self._respond(writable_size, Status.NOENT)
        if writable_size - TAIL_SIZE < self.config.probe_size:
            return self._respond(writable_size, Status.INVAL)
        body = encode_properties(self._regions[req.endpoint], self.config.probe_size)
        return self._respond(writable_size, Status.OK, body)

    # -- events ---------------------------------------------------------------------------

    def events(self) -> list[bytes]:
        """The eventq fault records (24 bytes each) since the last call, oldest first."""
        out = []
        for record in self.host.faults(self.endpoints):
            fault = from_record(record)
            if fault is not None:
                out.append(fault.encode())
        return out

    # -- introspection (tests, generators) ------------------------------------------------

    def attached(self, endpoint: int) -> int | None:
        """The domain ID ``endpoint`` is attached to, or ``None``."""
        return self._attached[endpoint]

    def mappings(self, domain_id: int) -> list[tuple[int, ...]]:
        """``[(virt_start, virt_end, phys_start, flags)]`` of a domain, in order."""
        return [(a.start, a.end, *a.value) for a in self._domains[domain_id].mappings]

    def state(self) -> tuple[object, ...]:
        """A comparable snapshot of everything the device remembers."""
        return (
            self.config.to_bytes(),
            tuple(sorted(self._attached.items())),
            tuple(sorted((i, d.bypass, tuple(sorted(d.endpoints)),
                          tuple((a.start, a.end, a.value) for a in d.mappings))
                         for i, d in self._domains.items())),
        )

