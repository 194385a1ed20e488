"""The type1 IOMMU backend of a VFIO container: GET_INFO, MAP_DMA, UNMAP_DMA.

Linux ``drivers/vfio/vfio_iommu_type1.c``: each ioctl makes its checks in the order the
kernel makes them and returns the kernel's errno, so a caller sees the same answers it
would see on Linux. The container's devices share one paging domain of the host layer
(:class:`iogate.cosim.host.core.PagingDomain`): they sit behind the same IOMMU and none
enforces cache coherency, so Linux would put them in one domain too.

VFIO always maps with ``IOMMU_CACHE`` ("because we offer no way for userspace to restore
cache coherency"), which the host turns into PMA leaves (Svpbmt).

Departures from Linux, all on features this container does not offer:

* no dirty-page tracking: ``VFIO_IOMMU_DIRTY_PAGES`` is not implemented (``-ENOTTY``), so
  GET_INFO has no migration capability and an unmap asking for a dirty bitmap fails with
  ``-EINVAL``, as Linux's does while tracking is off;
* no mediated devices, so ``VFIO_UPDATE_VADDR`` is always available after SET_IOMMU.

Field overflow and address wrap give ``-EINVAL``, as Linux has for a decade; pass
``eoverflow=True`` for the ``-EOVERFLOW`` of the 2025 change.

Interrupt isolation (``vfio_iommu_type1_attach_group``): a group whose MSIs the platform
cannot isolate (``iommu_group_has_isolated_msi`` false: here, an IOMMU without
``capabilities.MSI_FLAT``, :attr:`~iogate.cosim.host.core.HostIommu.msi_isolation`) is
refused with ``-EPERM`` and the kernel's ``pr_warn`` line, :data:`NO_INTR_REMAP`, unless the
``allow_unsafe_interrupts`` module parameter is set; nothing changes on the refusal. With
MSI translation the container's domain is an :class:`~iogate.cosim.host.core.MsiDomain`
(a second stage: the IOVA space is the guest's physical space) whose MSI page table maps
only the interrupt files granted with :meth:`Type1.grant` (iogate's stand-in for the
interrupt-file assignment KVM's irqbypass does on ``VFIO_DEVICE_SET_IRQS``).
"""

import errno

from iogate.firmware.errors import OutOfMemory

from iogate.cosim.host.core import Cap, MsiDomain, Prot
from iogate.cosim.host.ids import IdsExhausted
from iogate.cosim.host.intervals import IntervalMap
from iogate.cosim.host.user import UserFault
from iogate.cosim.host.vfio import uapi
from iogate.cosim.host.vfio.uapi import InfoCap, InfoFlag, MapFlag, UnmapFlag

__all__ = ["Type1", "NO_INTR_REMAP", "ALLOW_UNSAFE_INTERRUPTS"]

_U64 = (1 << 64) - 1
#: ``vfio_iommu_type1_attach_group``'s ``pr_warn`` when a group's MSIs are not isolated
#: (``drivers/vfio/vfio_iommu_type1.c``; ``%s`` is ``__func__``), then ``-EPERM``.
NO_INTR_REMAP = ('vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the '
                 'module param "allow_unsafe_interrupts" to enable VFIO IOMMU support on this '
                 'platform')
#: Default of the ``allow_unsafe_interrupts`` module parameter: False (refuse), as Linux's
#: ``vfio_iommu_type1`` and ``iommufd`` parameters (both default N). A caller on a host without
#: MSI translation (a Config without ``msi_flat``) passes ``allow_unsafe_interrupts=True``, as
#: an administrator of such a host sets the module parameter.
ALLOW_UNSAFE_INTERRUPTS = False


class _Dma:
    """One ``struct vfio_dma``: a MAP_DMA's user address and permissions."""

    __slots__ = ("vaddr", "prot", "vaddr_invalid")

    def __init__(self, vaddr, prot):
        self.vaddr = vaddr
        self.prot = prot
        self.vaddr_invalid = False

    def key(self):
        return (self.vaddr, int(self.prot), self.vaddr_invalid)


class Type1:
    """One opened type1 IOMMU (``vfio_iommu_type1_open``).

    Parameters
    ----------
    host : iogate.cosim.host.core.HostIommu
    user : iogate.cosim.host.user.UserSpace
        The process whose pages MAP_DMA pins.
    v2 : bool
        ``VFIO_TYPE1v2_IOMMU`` semantics (unmap must not bisect a mapping).
    dma_entry_limit : int
        How many mappings may exist.
    eoverflow : bool
        Report overflow and wrap with ``-EOVERFLOW`` instead of ``-EINVAL``.
    allow_unsafe_interrupts : bool
        The module parameter: accept groups whose MSIs are not isolated.
    """

    def __init__(self, host, user, *, v2, dma_entry_limit, eoverflow=False,
                 allow_unsafe_interrupts=False):
        self.host = host
        self.allow_unsafe_interrupts = bool(allow_unsafe_interrupts)
        self.user = user
        self.v2 = v2
        self.dma_avail = dma_entry_limit
        self.overflow = -errno.EOVERFLOW if eoverflow else -errno.EINVAL
        self.domain = None
        self.devices = set()
        self.iova_ranges = []
        self.pgsize_bitmap = 0
        self.dmas = IntervalMap()

    # -- groups (vfio_iommu_type1_attach_group / detach_group) ----------------------------

    def attach(self, device_id):
        """Put ``device_id`` in the container's domain; 0 or a negative errno.

        ``-EPERM`` (and :data:`NO_INTR_REMAP` in the host's log) when the device's MSIs
        cannot be isolated and ``allow_unsafe_interrupts`` is off; Linux checks after its
        ``iommu_attach_group`` and undoes it (``out_detach``), here the check comes first,
        so nothing was changed either way.
        """
        rc = self.check_isolation()
        if rc:
            return rc
        isolated = self.host.msi_isolation
        if self.domain is None:
            try:
                self.domain = (self.host.msi_domain() if isolated
                               else self.host.paging_domain())
            except (OutOfMemory, IdsExhausted):
                return -errno.ENOMEM
            self.pgsize_bitmap = (self.domain.page_sizes if isolated
                                  else self.host.stage1_page_sizes)
            self.iova_ranges = self._valid_ranges()
        self.host.attach(device_id, self.domain)
        self.devices.add(device_id)
        return 0

    def check_isolation(self):
        """0, or ``-EPERM`` with :data:`NO_INTR_REMAP` logged, for a group about to join
        (the container asks before it claims the group, so a refusal touches nothing)."""
        if not self.host.msi_isolation and not self.allow_unsafe_interrupts:
            self.host.warn(NO_INTR_REMAP)
            return -errno.EPERM
        return 0

    def _valid_ranges(self):
        # The domain aperture minus the reserved regions of the groups: here the platform
        # MSI window, which the host maps itself (vfio_iommu_resv_exclude).
        first, last = (self.domain.aperture if isinstance(self.domain, MsiDomain)
                       else self.host.stage1_aperture)
        ranges = [(first, last)]
        if self.host.msi_window is not None:
            lo, hi = self.host.msi_window
            ranges = [piece for a, b in ranges
                      for piece in ((a, min(b, lo - 1)), (max(a, hi + 1), b))
                      if piece[0] <= piece[1]]
        return ranges

    # -- interrupt files (MSI isolation) ----------------------------------------------------

    def _file(self, index):
        if not isinstance(self.domain, MsiDomain):
            return -errno.EINVAL    # no MSI translation: nothing to grant (or unsafe)
        if not isinstance(index, int) or isinstance(index, bool) or not (
                0 <= index < self.domain.files):
            return -errno.EINVAL
        return 0

    def grant(self, index):
        """Interrupt file ``index`` of the window becomes reachable by the container's
        devices (basic-translate MSI PTE); 0 or ``-EINVAL``."""
        rc = self._file(index)
        if rc:
            return rc
        try:
            self.domain.grant(index)
        except OutOfMemory:
            return -errno.ENOMEM
        return 0

    def grant_mrif(self, index, mrif, notice_ppn, nid):
        """Interrupt file ``index`` is a memory-resident one (MRIF PTE): 0, ``-EINVAL``,
        or ``-EOPNOTSUPP`` without ``capabilities.MSI_MRIF``."""
        rc = self._file(index)
        if rc:
            return rc
        if not self.host.driver.capabilities["msi_mrif"]:
            return -errno.EOPNOTSUPP
        try:
            self.domain.grant_mrif(index, mrif, notice_ppn, nid)
        except ValueError:
            return -errno.EINVAL
        return 0

    def revoke(self, index):
        """Interrupt file ``index`` is unreachable again (V=0); 0 or ``-EINVAL``."""
        rc = self._file(index)
        if rc:
            return rc
        self.domain.revoke(index)
        return 0

    def detach(self, device_id):
        """Take ``device_id`` out; its DMA is blocked by the caller's ownership release."""
        self.devices.discard(device_id)

    def release(self):
        """``vfio_iommu_type1_release``: unmap everything and free the domain."""
        if self.domain is not None:
            if self.dmas:
                self.domain.unmap_many([(a.start, a.size) for a in self.dmas])
            for area in list(self.dmas):
                self.dmas.remove(area)
            self.host.free_domain(self.domain)
            self.domain = None

    # -- CHECK_EXTENSION --------------------------------------------------------------------

    @staticmethod
    def check_extension(iommu, arg):
        """``vfio_iommu_type1_check_extension``; ``iommu`` is None before SET_IOMMU."""
        if arg in (uapi.Extension.TYPE1_IOMMU, uapi.Extension.TYPE1v2_IOMMU,
                   uapi.Extension.UNMAP_ALL):
            return 1
        if arg == uapi.Extension.UPDATE_VADDR:
            return int(iommu is not None)
        if arg == uapi.Extension.DMA_CC_IOMMU:
            if iommu is None:
                return 0
            # vfio_domains_have_enforce_cache_coherency: 1 unless a domain does not.
            if iommu.domain is None:
                return 1
            return int(all(iommu.host.capable(d, Cap.ENFORCE_CACHE_COHERENCY)
                           for d in iommu.devices))
        return 0

    # -- GET_INFO ---------------------------------------------------------------------------

    def get_info(self, arg):
        """``vfio_iommu_type1_get_info``: page sizes and the capability chain."""
        argsz = int.from_bytes(arg.read(0, uapi.INFO_MINSZ)[:4], "little")
        if argsz < uapi.INFO_MINSZ:
            return -errno.EINVAL
        minsz = min(argsz, uapi.INFO.size)
        caps = self._caps()
        flags = InfoFlag.PGSIZES
        cap_offset = 0
        if caps:
            flags |= InfoFlag.CAPS
            if argsz < uapi.INFO.size + len(caps):
                argsz = uapi.INFO.size + len(caps)
            else:
                arg.write(uapi.INFO.size, _shift_chain(caps, uapi.INFO.size))
                cap_offset = uapi.INFO.size
        info = uapi.INFO.pack(argsz, flags, self.pgsize_bitmap, cap_offset, 0)
        arg.write(0, info[:minsz])
        return 0

    def _caps(self):
        # Built in the kernel's order (after the migration capability, not offered here):
        # DMA_AVAIL, then IOVA_RANGE if there are ranges. Each is padded to 8 bytes and
        # chained with offsets from the start of the chain (vfio_info_cap_add).
        chain = []
        chain.append((InfoCap.DMA_AVAIL, 1, uapi.DMA_AVAIL.pack(self.dma_avail)))
        if self.iova_ranges:
            body = uapi.IOVA_RANGE.pack(len(self.iova_ranges), 0)
            body += b"".join(a.to_bytes(8, "little") + b.to_bytes(8, "little")
                             for a, b in self.iova_ranges)
            chain.append((InfoCap.IOVA_RANGE, 1, body))
        out = bytearray()
        for i, (cap_id, version, body) in enumerate(chain):
            size = -(-(uapi.CAP_HEADER.size + len(body)) // 8) * 8
            nxt = len(out) + size if i + 1 < len(chain) else 0
            out += (uapi.CAP_HEADER.pack(cap_id, version, nxt) + body).ljust(size, b"\0")
        return bytes(out)

    # -- MAP_DMA ----------------------------------------------------------------------------

    def map_dma(self, arg):
        """``vfio_iommu_type1_map_dma`` + ``vfio_dma_do_map``."""
        argsz, flags, vaddr, iova, size = uapi.DMA_MAP.unpack(arg.read(0, uapi.DMA_MAP_MINSZ))
        if argsz < uapi.DMA_MAP_MINSZ or flags & ~int(MapFlag.READ | MapFlag.WRITE
                                                      | MapFlag.VADDR):
            return -errno.EINVAL
        # (The "__u64 fields fit size_t/dma_addr_t" check cannot fail on a 64-bit host.)
        set_vaddr = bool(flags & MapFlag.VADDR)
        prot = Prot(0)
        if flags & MapFlag.WRITE:
            prot |= Prot.WRITE
        if flags & MapFlag.READ:
            prot |= Prot.READ
        if bool(prot) == set_vaddr:
            return -errno.EINVAL
        pgsize = self.pgsize_bitmap & -self.pgsize_bitmap
        if not size or (size | iova | vaddr) & (pgsize - 1):
            return -errno.EINVAL
        if iova + size - 1 > _U64 or vaddr + size - 1 > _U64:
            return self.overflow
        found = self.dmas.overlapping(iova, iova + size - 1)
        if set_vaddr:
            if not found:
                return -errno.ENOENT
            area = found[0]
            if not area.value.vaddr_invalid or area.start != iova or area.size != size:
                return -errno.EINVAL
            area.value.vaddr = vaddr
            area.value.vaddr_invalid = False
            return 0
        if found:
            return -errno.EEXIST
        if not self.dma_avail:
            return -errno.ENOSPC
        if not self._iova_valid(iova, iova + size - 1):
            return -errno.EINVAL
        try:
            pa = self.user.pin(vaddr, size)
        except UserFault:
            return -errno.EFAULT
        try:
            self.domain.map(iova, pa, size, prot | Prot.CACHE)
        except OutOfMemory:
            return -errno.ENOMEM
        self.dmas.add(iova, iova + size - 1, _Dma(vaddr, prot))
        self.dma_avail -= 1
        return 0

    def _iova_valid(self, first, last):
        # vfio_iommu_iova_dma_valid: inside one valid range; anything goes if none.
        return (not self.iova_ranges
                or any(a <= first and last <= b for a, b in self.iova_ranges))

    # -- UNMAP_DMA --------------------------------------------------------------------------

    def unmap_dma(self, arg):
        """``vfio_iommu_type1_unmap_dma`` + ``vfio_dma_do_unmap``."""
        argsz, flags, iova, size = uapi.DMA_UNMAP.unpack(arg.read(0, uapi.DMA_UNMAP_MINSZ))
        mask = int(UnmapFlag.GET_DIRTY_BITMAP | UnmapFlag.VADDR | UnmapFlag.ALL)
        if argsz < uapi.DMA_UNMAP_MINSZ or flags & ~mask:
            return -errno.EINVAL
        dirty = bool(flags & UnmapFlag.GET_DIRTY_BITMAP)
        if dirty and flags & (UnmapFlag.ALL | UnmapFlag.VADDR):
            return -errno.EINVAL
        if dirty:
            if argsz < uapi.DMA_UNMAP_MINSZ + uapi.BITMAP.size:
                return -errno.EINVAL
            arg.read(uapi.DMA_UNMAP_MINSZ, uapi.BITMAP.size)   # copy_from_user: -EFAULT
            # verify_bitmap_size, and then "dirty tracking is not enabled", both -EINVAL.
            return -errno.EINVAL
        unmapped = self._do_unmap(iova, size, bool(flags & UnmapFlag.ALL),
                                  bool(flags & UnmapFlag.VADDR))
        if isinstance(unmapped, int) and unmapped < 0:
            return unmapped
        arg.write(0, uapi.DMA_UNMAP.pack(argsz, flags, iova, unmapped[0]))
        return 0

    def _do_unmap(self, iova, size, unmap_all, invalidate_vaddr):
        # Returns (bytes unmapped,) or a negative errno; nothing changes on an error.
        pgsize = self.pgsize_bitmap & -self.pgsize_bitmap
        if iova & (pgsize - 1):
            return -errno.EINVAL
        if unmap_all:
            if iova or size:
                return -errno.EINVAL
            size = _U64
        elif not size or size & (pgsize - 1):
            return -errno.EINVAL
        elif iova + size - 1 > _U64:
            return self.overflow
        last = min(iova + size - 1, _U64)
        if self.v2 and not unmap_all:
            # Neither end may bisect a mapping (checked before anything is removed).
            head = self.dmas.find(iova)
            if head is not None and head.start != iova:
                return -errno.EINVAL
            tail = self.dmas.find(last)
            if tail is not None and tail.end != last:
                return -errno.EINVAL
        areas = self.dmas.overlapping(iova, last)
        if not self.v2:
            # v1: a range starting inside a mapping stops there; a mapping whose first
            # IOVA is covered goes entirely.
            if areas and areas[0].start < iova:
                areas = []
            areas = [a for a in areas if a.start >= iova]
        if invalidate_vaddr:
            if any(a.value.vaddr_invalid for a in areas):
                return -errno.EINVAL
            for a in areas:
                a.value.vaddr_invalid = True
            return (sum(a.size for a in areas),)
        if areas:
            self.domain.unmap_many([(a.start, a.size) for a in areas])
            for a in areas:
                self.dmas.remove(a)
                self.dma_avail += 1
        return (sum(a.size for a in areas),)

    def state(self):
        """A comparable snapshot."""
        granted = (tuple(sorted(self.domain.granted.items()))
                   if isinstance(self.domain, MsiDomain) else ())
        return (self.v2, self.dma_avail, tuple(sorted(self.devices)),
                tuple((a.start, a.end, a.value.key()) for a in self.dmas), granted)


def _shift_chain(caps, offset):
    # vfio_info_cap_shift: make every "next" an offset from the start of the info struct.
    out = bytearray(caps)
    pos = 0
    while True:
        cap_id, version, nxt = uapi.CAP_HEADER.unpack_from(out, pos)
        if not nxt:
            break
        uapi.CAP_HEADER.pack_into(out, pos, cap_id, version, nxt + offset)
        pos = nxt
    return bytes(out)
