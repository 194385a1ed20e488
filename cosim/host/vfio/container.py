"""``VfioContainer``: a VFIO container (``/dev/vfio/vfio``) backed by an iogate.

Linux ``drivers/vfio/container.c`` (the container ioctls and SET_IOMMU), ``group.c`` and
``vfio_main.c`` (which devices may join), with the type1 IOMMU of :mod:`.type1`. A
container is one IOVA space shared by its devices. Adding a device here stands for the
two steps a VFIO user takes: the device is registered with VFIO, then its group joins the
container (``VFIO_GROUP_SET_CONTAINER``).

Registration refuses, with ``-EINVAL`` as ``__vfio_register_dev`` and
``vfio_group_find_or_alloc`` do:

* a device whose IOMMU does not report ``IOMMU_CAP_CACHE_COHERENCY``: VFIO maps every page
  with ``IOMMU_CACHE`` and offers no way for user space to restore coherency;
* a device that bypasses the IOMMU: it has no IOMMU group, so nothing would confine its DMA.

A device in the container is owned by it (``iommu_group_claim_dma_owner``; another owner
gives ``-EBUSY``) and is blocked until SET_IOMMU puts it in the container's domain. When
its group leaves, it is blocked again, and when the last one leaves the type1 IOMMU is
released: every mapping is unmapped and the container returns to its unset state.
"""

import errno
from typing import TYPE_CHECKING

from iogate.cosim.host.core import BLOCKED, Cap, HostIommu
from iogate.cosim.host.user import USER_MEMORY, ArgBuffer, UserFault, UserSpace
from iogate.cosim.host.vfio import uapi
from iogate.cosim.host.vfio.type1 import ALLOW_UNSAFE_INTERRUPTS, Type1
from iogate.cosim.host.vfio.uapi import Extension, Ioctl

if TYPE_CHECKING:
    from iogate.firmware.bus import Bus
    from iogate.firmware.driver import Iommu

__all__ = ["VfioContainer"]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class VfioContainer:
    """A VFIO container with the type1 IOMMU driver.

    Parameters
    ----------
    backend : HostIommu, iogate.firmware.driver.Iommu, iogate.firmware.bus.Bus or None
        The IOMMU; ``None`` makes a new architectural model.
    user_memory : sequence of (int, int)
        The process's memory (virtual == physical), where MAP_DMA ``vaddr`` must lie.
    dma_entry_limit : int
        type1's ``dma_entry_limit`` module parameter.
    eoverflow : bool
        Report overflow and wrap with ``-EOVERFLOW`` (Linux from 2025) instead of
        ``-EINVAL``.
    allow_unsafe_interrupts : bool
        type1's module parameter: accept a group whose MSIs the IOMMU cannot isolate
        (without it SET_IOMMU, or adding a group after it, is ``-EPERM``; see
        :mod:`.type1`). The default is :data:`.type1.ALLOW_UNSAFE_INTERRUPTS` (False, as
        Linux).

    Raises
    ------
    TypeError
        If ``dma_entry_limit`` is not an integer.
    ValueError
        If ``dma_entry_limit`` is negative.
    """

    def __init__(self, backend: "HostIommu | Iommu | Bus | None" = None, *,
                 user_memory: tuple[tuple[int, int], ...] = USER_MEMORY,
                 dma_entry_limit: int = uapi.DMA_ENTRY_LIMIT, eoverflow: bool = False,
                 allow_unsafe_interrupts: bool = ALLOW_UNSAFE_INTERRUPTS) -> None:
        if not _is_int(dma_entry_limit):
            raise TypeError(f"dma_entry_limit must be an integer, not {dma_entry_limit!r}")
        if dma_entry_limit < 0:
            raise ValueError(f"dma_entry_limit must not be negative, not {dma_entry_limit}")
        self.host = HostIommu.of(backend)
        self.user = UserSpace(self.host.bus, user_memory)
        self.dma_entry_limit = dma_entry_limit
        self.eoverflow = bool(eoverflow)
        self.allow_unsafe_interrupts = bool(allow_unsafe_interrupts)
        self.devices: list[int] = []
        self.iommu = None

    # -- groups -----------------------------------------------------------------------------

    def add_device(self, device_id: int, coherent: bool = True, bypass: bool = False) -> int:
        """Register ``device_id`` with VFIO and add its group to this container.

        Parameters
        ----------
        device_id : int
        coherent : bool
            The device's IOMMU reports ``IOMMU_CAP_CACHE_COHERENCY``; this IOMMU does (see
            :meth:`iogate.cosim.host.core.HostIommu.capable`), so False stands for a device
            behind an IOMMU that does not.
        bypass : bool
            The device's DMA bypasses the IOMMU (it has no IOMMU group).

        Returns
        -------
        int
            0, or ``-EINVAL`` (bypass, not coherent, already in the container), ``-ENODEV``
            (not a device_id the IOMMU reaches), ``-EBUSY`` (owned by another user),
            ``-ENOMEM``, ``-EPERM`` (after SET_IOMMU: MSIs not isolated).
        """
        if not _is_int(device_id):
            raise TypeError(f"device_id must be an integer, not {device_id!r}")
        if not self.host.valid_device_id(device_id):
            return -errno.ENODEV
        if bypass:
            return -errno.EINVAL             # no iommu_group: vfio_group_find_or_alloc
        if not (coherent and self.host.capable(device_id, Cap.CACHE_COHERENCY)):
            return -errno.EINVAL             # __vfio_register_dev
        if device_id in self.devices:
            return -errno.EINVAL             # the group is already in a container
        if self.iommu is not None:
            # vfio_iommu_type1_attach_group's MSI isolation check, made before the claim
            # so that a refused group leaves the device and the IOMMU as they were.
            rc = self.iommu.check_isolation()
            if rc:
                return rc
        if not self.host.claim(device_id, self):
            return -errno.EBUSY              # iommu_group_claim_dma_owner
        if self.iommu is not None:
            rc = self.iommu.attach(device_id)
            if rc:
                self.host.release(device_id, self)
                return rc
        self.devices.append(device_id)
        return 0

    def remove_device(self, device_id: int) -> int:
        """The group of ``device_id`` leaves the container (``VFIO_GROUP_UNSET_CONTAINER``).

        Returns
        -------
        int
            0, or ``-EINVAL`` if the device is not in this container.
        """
        if device_id not in self.devices:
            return -errno.EINVAL
        self.devices.remove(device_id)
        if self.iommu is not None:
            self.iommu.detach(device_id)
        self.host.release(device_id, self)
        if not self.devices and self.iommu is not None:
            self.iommu.release()
            self.iommu = None
        return 0

    # -- ioctl ------------------------------------------------------------------------------

    def ioctl(self, request: int, arg: int = 0) -> int:
        """A container ioctl, answered as Linux answers it.

        Parameters
        ----------
        request : int
            The ioctl number (:class:`~iogate.cosim.host.vfio.uapi.Ioctl`).
        arg : int or bytearray
            An integer for ``VFIO_CHECK_EXTENSION`` and ``VFIO_SET_IOMMU``; the struct,
            updated in place, for the others.

        Returns
        -------
        int
            0 (or the extension answer) or a negative errno.
        """
        if request == Ioctl.GET_API_VERSION:
            return uapi.VFIO_API_VERSION
        if request == Ioctl.CHECK_EXTENSION:
            return self._check_extension(arg)
        if request == Ioctl.SET_IOMMU:
            return self._set_iommu(arg)
        if self.iommu is None:
            return -errno.EINVAL             # no driver to pass the ioctl to
        handler = {
            Ioctl.IOMMU_GET_INFO: self.iommu.get_info,
            Ioctl.IOMMU_MAP_DMA: self.iommu.map_dma,
            Ioctl.IOMMU_UNMAP_DMA: self.iommu.unmap_dma,
        }.get(request) if _is_int(request) else None
        if handler is None:
            return -errno.ENOTTY
        try:
            return handler(ArgBuffer(arg))
        except UserFault:
            return -errno.EFAULT

    def _check_extension(self, arg):
        # vfio_container_ioctl_check_extension: before SET_IOMMU every registered driver
        # (type1 only here) is asked; after, only the container's.
        if not _is_int(arg):
            return 0
        return Type1.check_extension(self.iommu, arg)

    def _set_iommu(self, arg):
        # vfio_ioctl_set_iommu: groups needed, once only; the driver must report the
        # extension, then open() accepts only TYPE1 and TYPE1v2.
        if not self.devices or self.iommu is not None:
            return -errno.EINVAL
        if not _is_int(arg) or Type1.check_extension(None, arg) <= 0:
            return -errno.ENODEV
        if arg not in (Extension.TYPE1_IOMMU, Extension.TYPE1v2_IOMMU):
            return -errno.EINVAL
        iommu = Type1(self.host, self.user, v2=arg == Extension.TYPE1v2_IOMMU,
                      dma_entry_limit=self.dma_entry_limit, eoverflow=self.eoverflow,
                      allow_unsafe_interrupts=self.allow_unsafe_interrupts)
        for device_id in self.devices:
            rc = iommu.attach(device_id)
            if rc:
                for done in list(iommu.devices):
                    self.host.attach(done, BLOCKED)
                iommu.release()
                return rc
        self.iommu = iommu
        return 0

    # -- interrupt files ------------------------------------------------------------------

    def grant_interrupt_file(self, index: int) -> int:
        """Let the container's devices raise interrupt file ``index`` of the platform's
        MSI window (:meth:`.type1.Type1.grant`): 0, or ``-EINVAL`` before SET_IOMMU,
        without MSI translation, or for an index outside the window."""
        if self.iommu is None:
            return -errno.EINVAL
        return self.iommu.grant(index)

    def grant_mrif(self, index: int, mrif: int, notice_ppn: int, nid: int) -> int:
        """Interrupt file ``index`` is the MRIF at ``mrif`` with its notice MSI
        (:meth:`.type1.Type1.grant_mrif`)."""
        if self.iommu is None:
            return -errno.EINVAL
        return self.iommu.grant_mrif(index, mrif, notice_ppn, nid)

    def revoke_interrupt_file(self, index: int) -> int:
        """Take interrupt file ``index`` back (MSIs there then fault with cause 262)."""
        if self.iommu is None:
            return -errno.EINVAL
        return self.iommu.revoke(index)

    def state(self) -> tuple[object, ...]:
        """A comparable snapshot of the container."""
        return (tuple(self.devices), None if self.iommu is None else self.iommu.state())

