"""An IOAS: the user's IOVA space, mirrored into every kernel-managed HWPT built on it.

Linux ``drivers/iommu/iommufd/io_pagetable.c`` and ``ioas.c``. An area is one
``IOMMU_IOAS_MAP`` (pinned user pages at an IOVA); each kernel-managed HWPT on the IOAS
(a host paging domain, or a nest parent whose IOVAs are the guest's physical addresses)
holds the same mappings. IOVAs outside a HWPT's aperture, and the MSI window a first-stage
domain keeps for itself, are reserved.

Unlike VFIO type1 v2, an unmap is not atomic: areas are removed in IOVA order and the first
one the range would split stops the call with ``-ENOENT``, the earlier ones gone; an
unmap that finds nothing is ``-ENOENT`` too, except for "unmap all" (``iova=0,
length=U64_MAX``), which succeeds on an empty IOAS.

Every IOVA, ``user_va`` and length is a whole number of 4 KiB pages here (``-EINVAL``
otherwise); Linux also accepts a ``user_va`` and a length that are not page aligned.
"""

import errno

from iogate.firmware.errors import OutOfMemory

from iogate.cosim.host.core import Prot
from iogate.cosim.host.intervals import IntervalMap
from iogate.cosim.host.iommufd.uapi import IoasMapFlag
from iogate.cosim.host.user import UserFault

__all__ = ["Ioas"]

_PAGE = 4096
_U64 = (1 << 64) - 1
_ULONG_MAX = _U64


class Ioas:
    """One IOAS of an iommufd context.

    Parameters
    ----------
    user : iogate.cosim.host.user.UserSpace
        The process whose pages are mapped.
    """

    def __init__(self, user):
        self.user = user
        self.areas = IntervalMap()
        self.domains = []

    # -- reserved IOVAs -------------------------------------------------------------------

    def reserved(self):
        """Inclusive ``(first, last)`` ranges no area may overlap."""
        out = []
        for d in self.domains:
            first, last = d.aperture
            if first:
                out.append((0, first - 1))
            if last < _U64:
                out.append((last + 1, _U64))
            if getattr(d, "msi_reserved", None) is not None:
                out.append(d.msi_reserved)
        return out

    def _is_reserved(self, first, last):
        return any(a <= last and first <= b for a, b in self.reserved())

    # -- domains --------------------------------------------------------------------------

    def add_domain(self, domain):
        """Mirror every area into ``domain`` (``iopt_table_add_domain``); 0 or -errno."""
        first, last = domain.aperture
        reserved = [(0, first - 1)] if first else []
        reserved += [(last + 1, _U64)] if last < _U64 else []
        if getattr(domain, "msi_reserved", None) is not None:
            reserved.append(domain.msi_reserved)
        if any(self.areas.overlapping(a, b) for a, b in reserved):
            return -errno.EADDRINUSE
        done = []
        for area in self.areas:
            pa, prot = area.value
            try:
                domain.map(area.start, pa, area.size, prot)
            except OutOfMemory:
                if done:
                    domain.unmap_many(done)
                return -errno.ENOMEM
            done.append((area.start, area.size))
        self.domains.append(domain)
        return 0

    def remove_domain(self, domain):
        self.domains.remove(domain)

    # -- IOMMU_IOAS_MAP -------------------------------------------------------------------

    def map(self, flags, user_va, length, iova):
        """Map ``length`` bytes of the user's memory; ``(0, iova)`` or ``(-errno, None)``.

        The caller has checked the flags, ``__reserved`` and overflow of the fields.
        """
        if not length or length % _PAGE or user_va % _PAGE:
            return -errno.EINVAL, None
        if flags & IoasMapFlag.FIXED_IOVA:
            if iova % _PAGE:
                return -errno.EINVAL, None
            last = iova + length - 1
            if last > _ULONG_MAX:
                return -errno.EOVERFLOW, None
            if self._is_reserved(iova, last):
                return -errno.EINVAL, None
            if self.areas.overlapping(iova, last):
                return -errno.EEXIST, None
        else:
            iova = self._alloc_iova(user_va, length)
            if iova is None:
                return -errno.ENOSPC, None
        try:
            pa = self.user.pin(user_va, length)
        except UserFault:
            return -errno.EFAULT, None
        # iommufd always maps with IOMMU_CACHE (conv_iommu_prot).
        prot = Prot.CACHE
        if flags & IoasMapFlag.WRITEABLE:
            prot |= Prot.WRITE
        if flags & IoasMapFlag.READABLE:
            prot |= Prot.READ
        done = []
        for d in self.domains:
            try:
                d.map(iova, pa, length, prot)
            except OutOfMemory:
                for dd in done:
                    dd.unmap(iova, length)
                return -errno.ENOMEM, None
            done.append(d)
        self.areas.add(iova, iova + length - 1, (pa, prot))
        return 0, iova

    def _alloc_iova(self, user_va, length):
        # iopt_alloc_iova: keep the alignment of user_va (up to the length rounded up to
        # a power of two), so large pages stay possible; lowest free range first.
        align = 1 << (length - 1).bit_length()
        if user_va:
            align = min(align, user_va & -user_va)
        align = max(align, _PAGE)
        busy = sorted([(a.start, a.end) for a in self.areas] + self.reserved())
        candidate = 0
        for first, last in busy + [(_U64 + 1, _U64 + 1)]:
            candidate = -(-candidate // align) * align
            if candidate + length - 1 < first:
                return candidate if candidate + length - 1 <= _U64 else None
            candidate = max(candidate, last + 1)
        return None

    # -- IOMMU_IOAS_UNMAP -----------------------------------------------------------------

    def unmap(self, iova, length):
        """``(rc, bytes unmapped)``; see the module docstring for the partial case."""
        if iova == 0 and length == _U64:
            rc, unmapped = self._unmap_range(0, _ULONG_MAX)
            return (0 if rc == -errno.ENOENT else rc), unmapped
        if iova >= _ULONG_MAX or length >= _ULONG_MAX:
            return -errno.EOVERFLOW, 0
        if not length:
            return -errno.EINVAL, 0
        if iova + length - 1 > _U64:
            return -errno.EOVERFLOW, 0
        return self._unmap_range(iova, iova + length - 1)

    def _unmap_range(self, first, last):
        unmapped = 0
        for area in self.areas.overlapping(first, last):
            if area.start < first or area.end > last:
                return -errno.ENOENT, unmapped
            for d in self.domains:
                d.unmap(area.start, area.size)
            self.areas.remove(area)
            unmapped += area.size
        return (0 if unmapped else -errno.ENOENT), unmapped

    def state(self):
        return tuple((a.start, a.end, a.value[0], int(a.value[1])) for a in self.areas)
