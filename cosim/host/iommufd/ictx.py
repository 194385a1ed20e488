"""``Iommufd``: an iommufd context with nesting, backed by an iogate.

Linux ``drivers/iommu/iommufd/main.c`` (the dispatcher and ``IOMMU_DESTROY``), ``ioas.c``,
``hw_pagetable.c`` (``IOMMU_HWPT_ALLOC``, ``IOMMU_HWPT_INVALIDATE``), and the VFIO cdev
calls that bind a device and attach it (``VFIO_DEVICE_BIND_IOMMUFD``,
``VFIO_DEVICE_ATTACH_IOMMUFD_PT``), here the methods :meth:`Iommufd.bind` and
:meth:`Iommufd.attach`.

Nesting on the RISC-V IOMMU (project design, "iommufd-style nesting"):

* a kernel-managed HWPT with ``IOMMU_HWPT_ALLOC_NEST_PARENT`` is a second stage (Sv48x4 or
  Sv39x4) and a GSCID, holding the IOAS's mappings (IOVA = guest physical address);
* a nested HWPT (``pt_id`` = that parent, data type ``IOMMU_HWPT_DATA_RISCV_IOGATE``)
  carries the guest's ``tc``/``ta``/``fsc``: the guest's first stage lives in guest memory;
* ``IOMMU_HWPT_INVALIDATE`` (data type ``IOMMU_HWPT_INVALIDATE_DATA_RISCV_IOGATE``) takes
  raw 16-byte ``IOTINVAL.VMA`` commands, rewritten by the host (GSCID, PSCID) and followed
  by an ``IOFENCE.C``; ``entry_num`` comes back as the number handled before the first
  error, and those are fenced even then.

PASIDs (Linux 6.14's ``IOMMU_HWPT_ALLOC_PASID`` and ``VFIO_DEVICE_ATTACH_PASID``, as
``drivers/iommu/iommufd/device.c`` and ``vfio/device_cdev.c`` check them):

* a paging HWPT allocated with ``IOMMU_HWPT_ALLOC_PASID`` may be attached to a (device,
  PASID) pair (:meth:`Iommufd.attach` with ``pasid``, or :meth:`Iommufd.attach_pt` with the
  ``struct vfio_device_attach_iommufd_pt`` bytes). The IOMMU needs process contexts for it
  (else the flag is ``-EOPNOTSUPP``); a HWPT without the flag is ``-EINVAL`` on a PASID, and
  so is a device's own HWPT without it while the device has PASIDs attached;
* a PASID must be 1 to ``max_pasids - 1`` (0 is ``IOMMU_NO_PASID``): else ``-EINVAL``;
  unknown attach/detach ``flags`` or a short ``argsz`` are ``-EINVAL``;
* a nested HWPT may carry ``tc.PDTV=1``: the guest owns its process directory in guest memory
  behind the parent's second stage (seed 004's vSVA). Its invalidations then take
  ``IOTINVAL.VMA`` with the guest's PSCIDs and ``IODIR.INVAL_PDT``/``INVAL_DDT``
  (:func:`~iogate.cosim.host.iommufd.nesting.rewrite_pdt_invalidation`); ``entry_num`` counts
  the guest's entries handled, whatever number of commands each became. A device whose own
  HWPT is nested takes no PASID attach (``-EINVAL``): its guest's directory owns them.

Interrupt isolation (``iommufd_device_bind``): a device whose MSIs the platform cannot
isolate (:attr:`~iogate.cosim.host.core.HostIommu.msi_isolation` false: no
``capabilities.MSI_FLAT``) is refused with ``-EPERM`` unless the context was made with
``allow_unsafe_interrupts`` (the module parameter), which binds it and logs Linux's
``dev_warn``, :data:`UNSAFE_MSI`. Nothing changes on the refusal. With MSI translation a
paging HWPT (with or without ``NEST_PARENT``, not ``PASID``) is an
:class:`~iogate.cosim.host.core.MsiDomain`: a second stage with an MSI page table mapping
only the interrupt files granted with :meth:`Iommufd.grant_interrupt_file`.

I/O page faults (``IOMMU_FAULT_QUEUE_ALLOC``; :mod:`~iogate.cosim.host.iommufd.fault`): a
HWPT allocated with ``IOMMU_HWPT_FAULT_ID_VALID`` names a fault object in ``fault_id``
(``-ENOENT`` if it is not one, and no HWPT is made); the fault object is busy while a HWPT
uses it or its fd is open (:meth:`Iommufd.close`). Attaching such a HWPT needs PRI
(``capabilities.ATS``, else ``-ENODEV``). :meth:`Iommufd.page_request` is the IOMMU side's
entry, :meth:`Iommufd.read` and :meth:`Iommufd.write` the fd's.

Not implemented (the dispatcher answers ``-ENOTTY``): ``IOAS_ALLOW_IOVAS``, ``IOAS_COPY``,
``IOAS_IOVA_RANGES``, ``OPTION``, ``VFIO_IOAS``, ``GET_HW_INFO``, dirty tracking and vIOMMU
objects. ``IOMMU_HWPT_ALLOC`` answers ``-EOPNOTSUPP`` to ``DIRTY_TRACKING``, and an attach
needs a HWPT (Linux also accepts an IOAS and makes a HWPT for it).
"""

import errno
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from iogate.hdl import bits
from iogate.hdl.formats import TC, IosatpMode, PdtpMode, PrgResponse

from iogate.firmware.errors import OutOfMemory
from iogate.firmware.pq import prg_response

from iogate.cosim.host.core import BLOCKED, HostIommu, MsiDomain
from iogate.cosim.host.ids import IdAllocator, IdsExhausted
from iogate.cosim.host.iommufd.fault import FaultGroup, FaultQueue, PendingGroups
from iogate.cosim.host.iommufd.ioas import Ioas
from iogate.cosim.host.iommufd.nesting import (
    NestingError,
    check_guest_context,
    rewrite_invalidation,
    rewrite_pdt_invalidation,
)
from iogate.cosim.host.iommufd.uapi import (
    HWPT_RISCV,
    HWPT_RISCV_MIN,
    INVALIDATE_ENTRY_SIZE,
    OPS,
    HwptAllocFlag,
    HwptDataType,
    HwptInvalidateDataType,
    IoasMapFlag,
    Ioctl,
)
from iogate.cosim.host.user import USER_MEMORY, ArgBuffer, UserFault, UserSpace
from iogate.cosim.host.vfio.type1 import ALLOW_UNSAFE_INTERRUPTS

if TYPE_CHECKING:
    from iogate.firmware.bus import Bus
    from iogate.firmware.driver import Iommu
    from iogate.firmware.pq import PageRequest

__all__ = ["Iommufd", "UNSAFE_MSI"]

#: ``iommufd_device_bind``'s ``dev_warn`` when a device with unisolated MSIs is bound
#: under ``allow_unsafe_interrupts`` (``drivers/iommu/iommufd/device.c``).
UNSAFE_MSI = ("MSI interrupts are not secure, they cannot be isolated by the platform. "
              "Check that platform features like interrupt remapping are enabled. "
              'Use the "allow_unsafe_interrupts" module parameter to override')

_U64 = (1 << 64) - 1
#: ``VFIO_DEVICE_ATTACH_PASID`` (``include/uapi/linux/vfio.h``), the one attach/detach flag.
VFIO_DEVICE_ATTACH_PASID = 1 << 0
#: ``struct vfio_device_attach_iommufd_pt { u32 argsz; u32 flags; u32 pt_id; u32 pasid; }``
VFIO_ATTACH_PT = struct.Struct("<IIII")
#: ``struct vfio_device_detach_iommufd_pt { u32 argsz; u32 flags; u32 pasid; }``
VFIO_DETACH_PT = struct.Struct("<III")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class _Errno(Exception):
    # Carries a negative errno out of a helper.
    def __init__(self, rc):
        super().__init__(rc)
        self.rc = rc


class _Device:
    kind = "device"

    def __init__(self, device_id):
        self.device_id = device_id
        self.hwpt = None
        self.pasids = {}    # pasid -> HWPT


class _HwptPaging:
    kind = "hwpt_paging"

    fault = None    # the FaultQueue of IOMMU_HWPT_FAULT_ID_VALID

    def __init__(self, domain, ioas, nest_parent, pasid_compat=False):
        self.domain = domain
        self.ioas = ioas
        self.nest_parent = nest_parent
        self.pasid_compat = pasid_compat
        self.devices = set()    # dev_id, or (dev_id, pasid) for a PASID attachment
        self.children = set()


class _HwptNested:
    kind = "hwpt_nested"

    pasid_compat = False
    fault = None

    def __init__(self, domain, parent):
        self.domain = domain
        self.parent = parent
        self.devices = set()


class _IoasObj:
    kind = "ioas"

    def __init__(self, ioas):
        self.ioas = ioas
        self.hwpts = set()


_TAIL_CHUNK = 1 << 16


def copy_struct_from_user(read: Callable[[int, int], bytes], ksize: int, usize: int) -> bytes:
    """``copy_struct_from_user``: ``ksize`` bytes from a user struct of ``usize`` bytes.

    A shorter user struct is zero-extended; the bytes of a longer one beyond ``ksize``
    must be zero (``-E2BIG``). ``read(offset, n)`` raises :class:`UserFault`.
    """
    # The tail is scanned a chunk at a time, stopping at the first non-zero byte, as the
    # kernel's check_zeroed_user does: a 4 GiB usize (data_len is a __u32) must not be read
    # into one buffer.
    for offset in range(ksize, usize, _TAIL_CHUNK):
        chunk = read(offset, min(_TAIL_CHUNK, usize - offset))
        if chunk.count(0) != len(chunk):
            raise _Errno(-errno.E2BIG)
    return read(0, min(ksize, usize)).ljust(ksize, b"\0")


class Iommufd:
    """An iommufd context (``/dev/iommu``).

    Parameters
    ----------
    backend : HostIommu, iogate.firmware.driver.Iommu, iogate.firmware.bus.Bus or None
        The IOMMU; ``None`` makes a new architectural model.
    user_memory : sequence of (int, int)
        The process's memory (virtual == physical): mapped pages, HWPT data and
        invalidation arrays must lie there.
    allow_unsafe_interrupts : bool
        iommufd's module parameter (default
        :data:`iogate.cosim.host.vfio.type1.ALLOW_UNSAFE_INTERRUPTS`, False as Linux): bind
        devices whose MSIs are not isolated.
    """

    def __init__(self, backend: "HostIommu | Iommu | Bus | None" = None, *,
                 user_memory: tuple[tuple[int, int], ...] = USER_MEMORY,
                 allow_unsafe_interrupts: bool = ALLOW_UNSAFE_INTERRUPTS) -> None:
        self.host = HostIommu.of(backend)
        self.allow_unsafe_interrupts = bool(allow_unsafe_interrupts)
        self.user = UserSpace(self.host.bus, user_memory)
        self._ids = IdAllocator(1, (1 << 31) - 1)
        # Objects of five kinds, told apart by their .kind as the kernel's are by type.
        self.objects: dict[int, Any] = {}
        # The fault objects' fds (the process's file table: lowest free from 3).
        self.fds: dict[int, FaultQueue] = {}
        # Page requests of groups not complete yet (io-pgfault's partial list).
        self._partial = PendingGroups()

    def _add(self, obj):
        obj_id = self._ids.alloc()
        self.objects[obj_id] = obj
        return obj_id

    def _get(self, obj_id, *kinds):
        obj = self.objects.get(obj_id)
        if obj is None or (kinds and obj.kind not in kinds):
            raise _Errno(-errno.ENOENT)
        return obj

    # -- devices (the VFIO cdev side) -------------------------------------------------------

    def bind(self, device_id: int) -> int:
        """``VFIO_DEVICE_BIND_IOMMUFD``: the device's object ID, or a negative errno.

        The device is owned by this context and blocked until attached. ``-EPERM`` if its
        MSIs cannot be isolated and ``allow_unsafe_interrupts`` is off (checked, as Linux
        does, after the group lookup and before the DMA ownership claim).
        """
        if not _is_int(device_id):
            raise TypeError(f"device_id must be an integer, not {device_id!r}")
        if not self.host.valid_device_id(device_id):
            return -errno.ENODEV
        if any(o.kind == "device" and o.device_id == device_id
               for o in self.objects.values()):
            return -errno.EBUSY
        if not self.host.msi_isolation:
            if not self.allow_unsafe_interrupts:
                return -errno.EPERM
            self.host.warn(f"iommufd {device_id:#x}: {UNSAFE_MSI}")
        if not self.host.claim(device_id, self):
            return -errno.EBUSY
        return self._add(_Device(device_id))

    def unbind(self, dev_id: int) -> int:
        """Close the device: detached, blocked, ownership given back. 0 or ``-ENOENT``."""
        try:
            dev = self._get(dev_id, "device")
        except _Errno as e:
            return e.rc
        for pasid in sorted(dev.pasids):
            self.detach(dev_id, pasid=pasid)
        self.detach(dev_id)
        self.host.release(dev.device_id, self)
        del self.objects[dev_id]
        self._ids.free(dev_id)
        return 0

    def attach(self, dev_id: int, pt_id: int, *, pasid: int | None = None) -> int:
        """``VFIO_DEVICE_ATTACH_IOMMUFD_PT`` to a HWPT (with ``VFIO_DEVICE_ATTACH_PASID`` when
        ``pasid`` is given): 0 or a negative errno; on an error nothing changed."""
        try:
            dev = self._get(dev_id, "device")
            hwpt = self._get(pt_id)
        except _Errno as e:
            return e.rc
        if hwpt.kind not in ("hwpt_paging", "hwpt_nested"):
            return -errno.EINVAL
        if hwpt.fault is not None and not self.host.driver.capabilities["ats"]:
            # iommufd_fault_iopf_enable: no PRI behind this IOMMU (capabilities.ATS=0), as a
            # driver without IOPF support answers iommu_dev_enable_feature.
            return -errno.ENODEV
        if pasid is not None:
            return self._attach_pasid(dev_id, dev, pasid, hwpt)
        if dev.pasids and (not hwpt.pasid_compat or hwpt.kind != "hwpt_paging"):
            # iommufd_hwpt_pasid_compat: the RID's HWPT must be PASID-capable too.
            return -errno.EINVAL
        if dev.hwpt is hwpt:
            return 0
        self.host.attach(dev.device_id, hwpt.domain)
        if dev.hwpt is not None:
            dev.hwpt.devices.discard(dev_id)
            self._auto_respond(dev.hwpt, dev_id, None)
        hwpt.devices.add(dev_id)
        dev.hwpt = hwpt
        return 0

    def _attach_pasid(self, dev_id, dev, pasid, hwpt):
        # iommufd_device_attach with a PASID; a PASID already attached is replaced
        # (vfio_iommufd_physical_pasid_attach_ioas calls iommufd_device_replace).
        if not self.host.valid_pasid(pasid):
            return -errno.EINVAL
        if hwpt.kind != "hwpt_paging" or not hwpt.pasid_compat or hwpt.nest_parent:
            return -errno.EINVAL
        if dev.hwpt is not None and not dev.hwpt.pasid_compat:
            return -errno.EINVAL    # the RID's HWPT (nested or plain) cannot share a PDT
        old = dev.pasids.get(pasid)
        if old is hwpt:
            return 0
        try:
            self.host.attach_pasid(dev.device_id, pasid, hwpt.domain)
        except OutOfMemory:
            return -errno.ENOMEM
        dev_key = (dev_id, pasid)
        if old is not None:
            old.devices.discard(dev_key)
            self._auto_respond(old, dev_id, pasid)
        hwpt.devices.add(dev_key)
        dev.pasids[pasid] = hwpt
        return 0

    def attach_pt(self, dev_id: int, arg: bytearray) -> int:
        """``VFIO_DEVICE_ATTACH_IOMMUFD_PT`` from its struct bytes (``argsz``, ``flags``,
        ``pt_id``, ``pasid``): ``-EINVAL`` for ``argsz`` below ``offsetofend(pt_id)`` (or
        ``pasid`` with the flag), unknown flags. ``pt_id`` goes back on success."""
        raw = bytes(arg[:VFIO_ATTACH_PT.size]).ljust(VFIO_ATTACH_PT.size, b"\0")
        argsz, flags, pt_id, pasid = VFIO_ATTACH_PT.unpack(raw)
        if argsz < 12 or len(arg) < min(argsz, VFIO_ATTACH_PT.size):
            return -errno.EINVAL
        if flags & ~VFIO_DEVICE_ATTACH_PASID:
            return -errno.EINVAL
        if flags & VFIO_DEVICE_ATTACH_PASID:
            if argsz < 16:
                return -errno.EINVAL
            return self.attach(dev_id, pt_id, pasid=pasid)
        return self.attach(dev_id, pt_id)

    def detach_pt(self, dev_id: int, arg: bytearray) -> int:
        """``VFIO_DEVICE_DETACH_IOMMUFD_PT`` from its struct bytes (``argsz``, ``flags``,
        ``pasid``), with the same ``-EINVAL`` rules as :meth:`attach_pt`."""
        raw = bytes(arg[:VFIO_DETACH_PT.size]).ljust(VFIO_DETACH_PT.size, b"\0")
        argsz, flags, pasid = VFIO_DETACH_PT.unpack(raw)
        if argsz < 8 or len(arg) < min(argsz, VFIO_DETACH_PT.size):
            return -errno.EINVAL
        if flags & ~VFIO_DEVICE_ATTACH_PASID:
            return -errno.EINVAL
        if flags & VFIO_DEVICE_ATTACH_PASID:
            if argsz < 12:
                return -errno.EINVAL
            return self.detach(dev_id, pasid=pasid)
        return self.detach(dev_id)

    def detach(self, dev_id: int, *, pasid: int | None = None) -> int:
        """``VFIO_DEVICE_DETACH_IOMMUFD_PT``: the device (or its ``pasid``) is blocked.
        0 or a negative errno (``-EINVAL`` for a PASID out of range; detaching what is not
        attached is 0, as Linux's)."""
        try:
            dev = self._get(dev_id, "device")
        except _Errno as e:
            return e.rc
        if pasid is not None:
            if not self.host.valid_pasid(pasid):
                return -errno.EINVAL
            hwpt = dev.pasids.pop(pasid, None)
            if hwpt is not None:
                self.host.detach_pasid(dev.device_id, pasid)
                hwpt.devices.discard((dev_id, pasid))
                self._auto_respond(hwpt, dev_id, pasid)
            return 0
        if dev.hwpt is not None:
            self.host.attach(dev.device_id, BLOCKED)
            dev.hwpt.devices.discard(dev_id)
            self._auto_respond(dev.hwpt, dev_id, None)
            dev.hwpt = None
        return 0

    # -- ioctl dispatch (iommufd_fops_ioctl) ------------------------------------------------

    def ioctl(self, request: int, arg: int = 0) -> int:
        """An iommufd ioctl; ``arg`` is the struct (a ``bytearray``, updated in place).

        Returns
        -------
        int
            0 or a negative errno.
        """
        buf = ArgBuffer(arg)
        # OPS is keyed by Ioctl, an IntEnum: a plain int finds its member.
        op = OPS.get(request) if _is_int(request) else None  # type: ignore[call-overload]
        if op is None:
            return -errno.ENOTTY
        try:
            user_size = buf.read_u32(0)
        except UserFault:
            return -errno.EFAULT
        if user_size < op.min_size:
            return -errno.EINVAL
        try:
            raw = copy_struct_from_user(buf.read, op.size, user_size)
        except UserFault:
            return -errno.EFAULT
        except _Errno as e:
            return e.rc
        cmd = list(op.layout.unpack(raw))
        handler = {
            Ioctl.DESTROY: self._destroy,
            Ioctl.IOAS_ALLOC: self._ioas_alloc,
            Ioctl.IOAS_MAP: self._ioas_map,
            Ioctl.IOAS_UNMAP: self._ioas_unmap,
            Ioctl.HWPT_ALLOC: self._hwpt_alloc,
            Ioctl.HWPT_INVALIDATE: self._hwpt_invalidate,
            Ioctl.FAULT_QUEUE_ALLOC: self._fault_alloc,
        }[request]  # type: ignore[index]  # Ioctl keys, an IntEnum: the int finds its member
        try:
            rc, respond = handler(cmd)
        except _Errno as e:
            return e.rc
        if respond:
            # iommufd_ucmd_respond: min(user size, kernel size) bytes go back.
            try:
                buf.write(0, op.layout.pack(*cmd)[:min(user_size, op.size)])
            except UserFault:
                return -errno.EFAULT
        return rc

    # Each handler takes the kernel copy of the struct as a list of fields (updated in
    # place for the response) and returns (rc, respond).

    def _destroy(self, cmd):
        # iommufd_object_remove: an object something still uses is busy. A device
        # object belongs to the VFIO side (unbind), never to IOMMU_DESTROY.
        _, obj_id = cmd
        obj = self._get(obj_id)
        if obj.kind == "fault":
            # The HWPTs using it and its fd hold references (iommufd_eventq_init).
            if obj.users or obj.fd_open:
                return -errno.EBUSY, False
            obj.auto_respond()      # iommufd_fault_destroy
            del self.objects[obj_id]
            self._ids.free(obj_id)
            return 0, False
        if (obj.kind == "device"
                or (obj.kind == "ioas" and obj.hwpts)
                or (obj.kind != "ioas" and obj.devices)
                or (obj.kind == "hwpt_paging" and obj.children)):
            return -errno.EBUSY, False
        if obj.kind == "hwpt_paging":
            # Freeing the domain invalidates its whole address space and frees the table
            # with its leaves (iopt_table_remove_domain unmaps them first on Linux).
            obj.ioas.ioas.remove_domain(obj.domain)
            obj.ioas.hwpts.discard(obj)
            self.host.free_domain(obj.domain)
        elif obj.kind == "hwpt_nested":
            obj.parent.children.discard(obj)
            self.host.free_domain(obj.domain)
        if obj.kind != "ioas" and obj.fault is not None:
            obj.fault.users -= 1
        del self.objects[obj_id]
        self._ids.free(obj_id)
        return 0, False

    def _ioas_alloc(self, cmd):
        _, flags, _ = cmd
        if flags:
            return -errno.EOPNOTSUPP, False
        cmd[2] = self._add(_IoasObj(Ioas(self.user)))
        return 0, True

    def _ioas_map(self, cmd):
        _, flags, ioas_id, reserved, user_va, length, iova = cmd
        known = int(IoasMapFlag.FIXED_IOVA | IoasMapFlag.WRITEABLE | IoasMapFlag.READABLE)
        if flags & ~known or reserved:
            return -errno.EOPNOTSUPP, False
        if iova >= _U64 or length >= _U64:
            return -errno.EOVERFLOW, False
        if not flags & (IoasMapFlag.WRITEABLE | IoasMapFlag.READABLE):
            return -errno.EINVAL, False
        ioas = self._get(ioas_id, "ioas").ioas
        rc, iova = ioas.map(flags, user_va, length, iova)
        if rc:
            return rc, False
        cmd[6] = iova
        return 0, True

    def _ioas_unmap(self, cmd):
        _, ioas_id, iova, length = cmd
        ioas = self._get(ioas_id, "ioas").ioas
        rc, unmapped = ioas.unmap(iova, length)
        if rc:
            return rc, False
        cmd[3] = unmapped
        return 0, True

    def _hwpt_alloc(self, cmd):
        (_, flags, dev_id, pt_id, _, reserved, data_type, data_len, data_uptr, fault_id,
         reserved2) = cmd
        if reserved or reserved2:
            return -errno.EOPNOTSUPP, False
        if (data_type == HwptDataType.NONE) == bool(data_len):
            return -errno.EINVAL, False
        self._get(dev_id, "device")
        pt = self.objects.get(pt_id)
        if pt is None:
            return -errno.EINVAL, False
        if pt.kind == "ioas":
            rc, obj = self._alloc_paging(pt, flags, data_type)
        elif pt.kind == "hwpt_paging":
            rc, obj = self._alloc_nested(pt, flags, data_type, data_len, data_uptr)
        else:
            return -errno.EINVAL, False
        if rc:
            return rc, False
        if flags & HwptAllocFlag.FAULT_ID_VALID:
            # iommufd_get_fault after the domain exists: a bad fault_id aborts it.
            fault = self.objects.get(fault_id)
            if fault is None or fault.kind != "fault":
                self._abort_hwpt(obj)
                return -errno.ENOENT, False
            obj.fault = fault
            fault.users += 1
        cmd[4] = self._add(obj)
        return 0, True

    def _abort_hwpt(self, obj):
        # iommufd_object_abort_and_destroy of a HWPT never handed out.
        if obj.kind == "hwpt_paging":
            obj.ioas.ioas.remove_domain(obj.domain)
            obj.ioas.hwpts.discard(obj)
        else:
            obj.parent.children.discard(obj)
        self.host.free_domain(obj.domain)

    def _alloc_paging(self, ioas_obj, flags, data_type):
        # iommufd_hwpt_paging_alloc, and the driver's domain_alloc_paging_flags.
        valid = int(HwptAllocFlag.NEST_PARENT | HwptAllocFlag.DIRTY_TRACKING
                    | HwptAllocFlag.FAULT_ID_VALID | HwptAllocFlag.PASID)
        if flags & ~valid:
            return -errno.EOPNOTSUPP, None
        if flags & HwptAllocFlag.DIRTY_TRACKING:
            return -errno.EOPNOTSUPP, None
        pasid = bool(flags & HwptAllocFlag.PASID)
        if pasid and (not self.host.max_pasids or flags & HwptAllocFlag.NEST_PARENT):
            # No process contexts, or a second-stage table no PC can hold.
            return -errno.EOPNOTSUPP, None
        if data_type != HwptDataType.NONE:
            return -errno.EOPNOTSUPP, None   # no driver data for a paging domain
        nest_parent = bool(flags & HwptAllocFlag.NEST_PARENT)
        try:
            if self.host.msi_isolation and not pasid:
                domain = self.host.msi_domain()
            else:
                domain = (self.host.parent_domain() if nest_parent
                          else self.host.paging_domain())
        except ValueError:
            return -errno.EOPNOTSUPP, None   # no second stage
        except (OutOfMemory, IdsExhausted):
            return -errno.ENOMEM, None
        rc = ioas_obj.ioas.add_domain(domain)
        if rc:
            self.host.free_domain(domain)
            return rc, None
        obj = _HwptPaging(domain, ioas_obj, nest_parent, pasid_compat=pasid)
        ioas_obj.hwpts.add(obj)
        return 0, obj

    def _alloc_nested(self, parent, flags, data_type, data_len, data_uptr):
        # iommufd_hwpt_nested_alloc, then the driver's domain_alloc_nested.
        if flags & ~int(HwptAllocFlag.FAULT_ID_VALID | HwptAllocFlag.PASID) or not data_len:
            return -errno.EOPNOTSUPP, None
        if not parent.nest_parent:
            return -errno.EINVAL, None
        if flags & HwptAllocFlag.PASID:
            return -errno.EOPNOTSUPP, None   # no PASID here (FAULT_ID_VALID is the caller's)
        if data_type != HwptDataType.RISCV_IOGATE:
            return -errno.EOPNOTSUPP, None
        if data_len < HWPT_RISCV_MIN:
            return -errno.EINVAL, None
        try:
            raw = copy_struct_from_user(lambda o, n: self.user.read(data_uptr + o, n),
                                        HWPT_RISCV.size, data_len)
        except UserFault:
            return -errno.EFAULT, None
        tc, ta, fsc = HWPT_RISCV.unpack(raw)
        try:
            check_guest_context(tc, ta, fsc, sv48=self.host.stage1_mode is IosatpMode.SV48,
                                pdt_modes=self._pdt_modes())
        except NestingError as e:
            return -e.errno, None
        try:
            domain = self.host.nested_domain(parent.domain, fsc=fsc,
                                             dtf=bool(bits.get(TC, tc, "dtf")),
                                             pdtv=bool(bits.get(TC, tc, "pdtv")),
                                             dpe=bool(bits.get(TC, tc, "dpe")))
        except IdsExhausted:
            return -errno.ENOMEM, None
        obj = _HwptNested(domain, parent)
        parent.children.add(obj)
        return 0, obj

    def _pdt_modes(self):
        caps = self.host.driver.capabilities
        return {m for m, c in ((PdtpMode.PD8, "pd8"), (PdtpMode.PD17, "pd17"),
                               (PdtpMode.PD20, "pd20")) if caps[c]}

    def _hwpt_invalidate(self, cmd):
        # iommufd_hwpt_invalidate: entry_num always comes back as the number handled.
        _, hwpt_id, data_uptr, data_type, entry_len, entry_num, reserved = cmd
        done = 0
        rc = 0
        if reserved:
            rc = -errno.EOPNOTSUPP
        elif entry_num and (not data_uptr or not entry_len):
            rc = -errno.EINVAL
        else:
            hwpt = self.objects.get(hwpt_id)
            if hwpt is None:
                rc = -errno.ENOENT
            elif hwpt.kind != "hwpt_nested":
                rc = -errno.EINVAL
            else:
                rc, done = self._invalidate_user(hwpt, data_uptr, data_type, entry_len,
                                                 entry_num)
        cmd[5] = done
        return rc, True

    def _invalidate_user(self, hwpt, data_uptr, data_type, entry_len, entry_num):
        # The driver's cache_invalidate_user: type first (so entry_num=0 probes it), then
        # each entry copied (iommu_copy_struct_from_user_array), checked and rewritten.
        if data_type != HwptInvalidateDataType.RISCV_IOGATE:
            return -errno.EINVAL, 0
        domain = hwpt.domain
        cmds = []
        done = 0
        rc = 0
        dids = sorted(self.objects[d].device_id for d in hwpt.devices)
        for index in range(entry_num):
            base = data_uptr + index * entry_len
            try:
                if entry_len < INVALIDATE_ENTRY_SIZE:
                    raise _Errno(-errno.EINVAL)
                raw = copy_struct_from_user(lambda o, n, base=base: self.user.read(base + o, n),
                                            INVALIDATE_ENTRY_SIZE, entry_len)
                if domain.pdtv:
                    cmds += rewrite_pdt_invalidation(
                        raw, gscid=domain.parent.gscid, device_ids=dids,
                        process_id_bits=self.host.driver.process_id_bits)
                else:
                    cmds.append(rewrite_invalidation(raw, pscid=domain.pscid,
                                                     gscid=domain.parent.gscid))
            except _Errno as e:
                rc = e.rc
            except UserFault:
                rc = -errno.EFAULT
            except NestingError as e:
                rc = -e.errno
            if rc:
                break
            done += 1
        if cmds:
            self.host.invalidate(cmds)
        return rc, done

    # -- interrupt files (MSI isolation) ------------------------------------------------

    def _msi_hwpt(self, pt_id, index):
        obj = self.objects.get(pt_id)
        if obj is None:
            raise _Errno(-errno.ENOENT)
        if obj.kind != "hwpt_paging" or not isinstance(obj.domain, MsiDomain):
            raise _Errno(-errno.EINVAL)
        if not _is_int(index) or not 0 <= index < obj.domain.files:
            raise _Errno(-errno.EINVAL)
        return obj.domain

    def grant_interrupt_file(self, pt_id: int, index: int) -> int:
        """Devices attached to HWPT ``pt_id`` (or to a nested HWPT on it) may raise
        interrupt file ``index`` of the platform's MSI window: 0, ``-ENOENT``, or
        ``-EINVAL`` (not a HWPT with MSI translation, index outside the window)."""
        try:
            self._msi_hwpt(pt_id, index).grant(index)
        except _Errno as e:
            return e.rc
        return 0

    def grant_mrif(self, pt_id: int, index: int, mrif: int, notice_ppn: int, nid: int) -> int:
        """Interrupt file ``index`` of HWPT ``pt_id`` is the MRIF at ``mrif`` with its
        notice MSI: 0, ``-ENOENT``, ``-EINVAL``, ``-EOPNOTSUPP`` (no ``MSI_MRIF``)."""
        try:
            domain = self._msi_hwpt(pt_id, index)
        except _Errno as e:
            return e.rc
        if not self.host.driver.capabilities["msi_mrif"]:
            return -errno.EOPNOTSUPP
        try:
            domain.grant_mrif(index, mrif, notice_ppn, nid)
        except ValueError:
            return -errno.EINVAL
        return 0

    def revoke_interrupt_file(self, pt_id: int, index: int) -> int:
        """Interrupt file ``index`` of HWPT ``pt_id`` is unreachable again (262)."""
        try:
            self._msi_hwpt(pt_id, index).revoke(index)
        except _Errno as e:
            return e.rc
        return 0

    # -- I/O page faults (eventq.c, io-pgfault.c; cosim/host/iommufd/fault.py) ------------

    def _fault_alloc(self, cmd):
        # iommufd_fault_alloc: flags must be 0; the object and its fd.
        _, flags, _, _ = cmd
        if flags:
            return -errno.EOPNOTSUPP, False
        fd = 3
        while fd in self.fds:
            fd += 1
        fault = FaultQueue(fd)
        cmd[2] = self._add(fault)
        cmd[3] = fd
        self.fds[fd] = fault
        return 0, True

    def read(self, fd: int, count: int) -> bytes | int:
        """``read()`` of a fault fd: ``struct iommu_hwpt_pgfault`` records, or a negative
        errno (``-EBADF`` for an fd that is not one)."""
        fault = self.fds.get(fd)
        return -errno.EBADF if fault is None else fault.read(count)

    def write(self, fd: int, data: bytes) -> int:
        """``write()`` of ``struct iommu_hwpt_page_response`` records to a fault fd: the
        bytes taken, or a negative errno."""
        fault = self.fds.get(fd)
        return -errno.EBADF if fault is None else fault.write(data)

    def close(self, fd: int) -> int:
        """``close()`` of a fault fd: its reference on the object is dropped (the object
        stays until ``IOMMU_DESTROY``). 0 or ``-EBADF``."""
        fault = self.fds.pop(fd, None)
        if fault is None:
            return -errno.EBADF
        fault.fd_open = False
        return 0

    def page_request(self, request: "PageRequest") -> None:
        """One Page Request from the IOMMU (``iommu_report_device_fault``): the sink of
        :meth:`iogate.firmware.pq.PageRequestQueue.report`.

        A group is routed when its last request arrives: to the HWPT attached to the
        requester's PASID, or, without one, to the requester's own HWPT (a nested one
        whose guest owns the process directory takes PASID requests too, as
        ``find_fault_handler``); if that HWPT has a fault object the group goes there,
        else it is answered Invalid Request at once.
        """
        group = self._partial.add(request)
        if group is None:
            return
        last = group[-1]
        respond = self._responder(last)
        dev_id, dev = next(((i, o) for i, o in self.objects.items()
                            if o.kind == "device" and o.device_id == last.device_id),
                           (0, None))
        handle, hwpt = None, None
        if dev is not None:
            if last.pasid is not None and last.pasid in dev.pasids:
                handle, hwpt = last.pasid, dev.pasids[last.pasid]
            elif last.pasid is None or (dev.hwpt is not None
                                        and dev.hwpt.kind == "hwpt_nested"):
                hwpt = dev.hwpt
        if hwpt is None or hwpt.fault is None:
            respond(PrgResponse.INVALID_REQUEST)
            return
        hwpt.fault.add(FaultGroup(dev_id, group, respond, handle=handle))

    def discard_partial(self) -> None:
        """``iopf_queue_discard_partial``: the page-request queue overflowed."""
        self._partial.discard()

    def _responder(self, last):
        def respond(code):
            # PRG Response (N.6.4) with the group's PASID when the function requires it:
            # DC.tc.PRPR is programmed from its "PRG Response PASID Required" (N.6.1).
            driver = self.host.driver
            prpr = bits.get(TC, driver.device_context(last.device_id).tc, "prpr")
            driver.run([prg_response(last.device_id, last.prg_index, code,
                                     last.pasid if prpr else None)])
        return respond

    def _auto_respond(self, hwpt, dev_id, handle):
        # iommufd_auto_response_faults: the groups of a detached attachment.
        if hwpt.fault is not None:
            hwpt.fault.auto_respond(lambda g: g.dev_id == dev_id and g.handle == handle)

    def state(self) -> tuple[object, ...]:
        """A comparable snapshot of every object."""
        out: list[tuple[object, ...]] = []
        for obj_id, obj in sorted(self.objects.items()):
            if obj.kind == "device":
                out.append((obj_id, "device", obj.device_id,
                            None if obj.hwpt is None else id(obj.hwpt),
                            tuple(sorted((p, id(h)) for p, h in obj.pasids.items()))))
            elif obj.kind == "ioas":
                out.append((obj_id, "ioas", obj.ioas.state()))
            elif obj.kind == "fault":
                out.append((obj_id, "fault", obj.fd, obj.state()))
            else:
                # dev_ids and (dev_id, pasid) pairs: ordered by their text.
                granted = (tuple(sorted(obj.domain.granted.items()))
                           if isinstance(getattr(obj, "domain", None), MsiDomain) else ())
                out.append((obj_id, obj.kind, tuple(sorted(obj.devices, key=repr)), granted,
                            None if obj.fault is None else id(obj.fault)))
        return tuple(out)

