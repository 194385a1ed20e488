"""MSI isolation in VFIO type1 and iommufd (issue 16 item 6).

Linux's rules: ``vfio_iommu_type1_attach_group`` refuses a group without isolated MSIs with
``-EPERM`` and the ``pr_warn`` "%s: No interrupt remapping support.  Use the module param
"allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform" unless the module
parameter is set; ``iommufd_device_bind`` refuses with ``-EPERM`` (allowed, it warns "MSI
interrupts are not secure, ..."). The strings and errnos are copied from Linux
(drivers/vfio/vfio_iommu_type1.c, drivers/iommu/iommufd/device.c), not from the code under
test. With MSI translation (``capabilities.MSI_FLAT``) the device's MSI page table maps
exactly the interrupt files granted: a write to a granted file reaches its page, a write to
any other file of the window faults with cause 262 (MSI PTE not valid, iotval2 0).
"""

import errno
import struct

from iogate.hdl import Config
from iogate.hdl.formats import Cause, IohgatpMode, MsiptpMode
from iogate.hdl.port import Access

from frontend_helpers import snapshot
from iogate.cosim.host.core import BLOCKED, HostIommu, MsiDomain, PagingDomain
from iogate.cosim.host.iommufd import Iommufd
from iogate.cosim.host.iommufd.uapi import HWPT_ALLOC, IOAS_ALLOC, IOAS_MAP, IoasMapFlag
from iogate.cosim.host.iommufd.uapi import Ioctl as FdIoctl
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.vfio.uapi import DMA_MAP, Extension, Ioctl, MapFlag

VFIO_WARN = ('vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module '
             'param "allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform')
IOMMUFD_WARN = ("MSI interrupts are not secure, they cannot be isolated by the platform. "
                "Check that platform features like interrupt remapping are enabled. "
                'Use the "allow_unsafe_interrupts" module parameter to override')
USER = 0x2_0000_0000
WINDOW = 0x0800_0000          # the platform's interrupt files: file k at WINDOW + k * 4 KiB
DEV = 3


def _file(k):
    return WINDOW + k * 4096


def _state(c):
    return c.state(), c.host.domain_of(DEV), snapshot(c.host), dict(c.host.driver._contexts)


def _write(host, device_id, address, data=0x55):
    return host.model.translate(device_id, address, Access.WRITE, data=data)


# -- VFIO type1 --------------------------------------------------------------------------------

def test_vfio_refuses_unisolated_msis_with_eperm_and_nothing_changes():
    c = VfioContainer(HostIommu.on_model(Config.full()))
    assert c.add_device(DEV) == 0
    before = _state(c)
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == -errno.EPERM
    assert c.host.log[-1] == VFIO_WARN
    assert _state(c) == before and c.iommu is None
    assert c.host.domain_of(DEV) is BLOCKED
    # Still refused the second time, and MAP_DMA has no IOMMU to go to.
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == -errno.EPERM
    assert c.ioctl(Ioctl.IOMMU_MAP_DMA, bytearray(DMA_MAP.pack(32, 3, USER, 0, 4096))) \
        == -errno.EINVAL


def test_the_default_is_linux_s_allow_unsafe_interrupts_off():
    """Linux's vfio_iommu_type1 and iommufd module parameters both default to N: without the
    argument a container and an iommufd context refuse a device whose MSIs are not isolated,
    with Linux's errno, and leave everything as it was."""
    assert VfioContainer(HostIommu.on_model(Config.full())).allow_unsafe_interrupts is False
    host = HostIommu.on_model(Config.full())
    c = VfioContainer(host)
    assert c.add_device(DEV) == 0
    before = _state(c)
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == -errno.EPERM
    assert host.log[-1] == VFIO_WARN and _state(c) == before
    host = HostIommu.on_model(Config.full())
    fd = Iommufd(host)
    assert fd.allow_unsafe_interrupts is False
    before = (fd.state(), snapshot(host), host.owner_of(10))
    assert fd.bind(10) == -errno.EPERM
    assert (fd.state(), snapshot(host), host.owner_of(10)) == before


def test_vfio_group_added_after_set_iommu_is_refused_too():
    host = HostIommu.on_model(Config.full())
    c = VfioContainer(host, allow_unsafe_interrupts=True)
    assert c.add_device(DEV) == 0
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == 0
    assert isinstance(c.iommu.domain, PagingDomain)       # unsafe: first stage, no MSI PT
    c.iommu.allow_unsafe_interrupts = False                # the parameter cleared later
    before = _state(c)
    assert c.add_device(4) == -errno.EPERM
    assert _state(c) == before and host.owner_of(4) is None
    assert host.log == [VFIO_WARN]


def test_vfio_allow_unsafe_interrupts_accepts_without_isolation():
    c = VfioContainer(HostIommu.on_model(Config.full()), allow_unsafe_interrupts=True)
    assert c.add_device(DEV) == 0
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == 0
    assert c.host.log == []
    # Not isolated: the window is mapped IOVA = PA, every interrupt file is reachable.
    r = _write(c.host, DEV, _file(9))
    assert not r.fault and r.pa == _file(9)
    assert c.grant_interrupt_file(0) == -errno.EINVAL


def _isolated_container():
    host = HostIommu.on_model(Config.msi())
    c = VfioContainer(host)
    assert c.add_device(DEV) == 0
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == 0
    return c


def test_vfio_with_msi_translation_accepts_and_isolates():
    c = _isolated_container()
    assert c.host.msi_isolation and c.host.log == []
    domain = c.iommu.domain
    assert isinstance(domain, MsiDomain)
    dc = c.host.driver.device_context(DEV)
    assert dc.msiptp >> 60 == MsiptpMode.FLAT and dc.iohgatp >> 60 == IohgatpMode.SV48X4
    # The window (1 MiB, 256 files) is the pattern, under mask 0xFF.
    assert dc.msi_addr_pattern == WINDOW >> 12 and dc.msi_addr_mask == 0xFF
    # No file granted: every one faults with 262.
    for k in (0, 7, 255):
        r = _write(c.host, DEV, _file(k) + 4)
        assert r.fault and r.cause == Cause.MSI_PTE_NOT_VALID
    assert c.grant_interrupt_file(7) == 0
    r = _write(c.host, DEV, _file(7) + 4)
    assert not r.fault and r.pa == _file(7) + 4
    # Another guest's file next door is still stopped, with its record.
    c.host.faults([DEV])
    r = _write(c.host, DEV, _file(8))
    assert r.fault and r.cause == Cause.MSI_PTE_NOT_VALID
    (rec,) = c.host.faults([DEV])
    assert (rec.cause, rec.iotval, rec.iotval2, rec.did) == (262, _file(8), 0, DEV)
    assert c.revoke_interrupt_file(7) == 0
    assert _write(c.host, DEV, _file(7)).cause == Cause.MSI_PTE_NOT_VALID


def test_vfio_msi_domain_still_maps_dma_and_reserves_the_window():
    c = _isolated_container()
    arg = bytearray(DMA_MAP.pack(32, MapFlag.READ | MapFlag.WRITE, USER + 0x10_0000,
                                 0x10_0000, 0x2000))
    assert c.ioctl(Ioctl.IOMMU_MAP_DMA, arg) == 0
    r = c.host.model.translate(DEV, 0x10_1008, Access.WRITE)
    assert not r.fault and r.pa == USER + 0x10_1008
    # The window is not a valid IOVA range: MAP_DMA over it is -EINVAL.
    arg = bytearray(DMA_MAP.pack(32, 3, USER, WINDOW, 0x1000))
    assert c.ioctl(Ioctl.IOMMU_MAP_DMA, arg) == -errno.EINVAL
    # GET_INFO's IOVA ranges: the Sv48x4 aperture (50 bits) minus the window.
    info = bytearray(24 + 16 + 16 + 32)
    info[0:4] = len(info).to_bytes(4, "little")
    assert c.ioctl(Ioctl.IOMMU_GET_INFO, info) == 0
    assert struct.unpack_from("<4Q", info, 56) == (0, WINDOW - 1, WINDOW + 0x10_0000,
                                                   (1 << 50) - 1)


def test_vfio_grant_errors_change_nothing():
    c = _isolated_container()
    before = _state(c)
    assert c.grant_interrupt_file(256) == -errno.EINVAL
    assert c.grant_interrupt_file(-1) == -errno.EINVAL
    assert c.grant_mrif(3, 0x100, 1, 1) == -errno.EINVAL      # MRIF not 512-byte aligned
    assert _state(c) == before
    empty = VfioContainer(HostIommu.on_model(Config.msi()))
    assert empty.grant_interrupt_file(0) == -errno.EINVAL     # no SET_IOMMU yet


def test_vfio_mrif_grant_records_and_notifies():
    c = _isolated_container()
    io = c.host.driver
    mrif = io.mrifs.alloc_mrif()
    notice = io.alloc.alloc()
    assert c.grant_mrif(12, mrif.address, notice >> 12, 0x321) == 0
    r = _write(c.host, DEV, _file(12), data=1000)
    assert r.absorbed and not r.fault
    assert mrif.pending() == [1000]
    assert int.from_bytes(c.host.bus.mem_read(notice, 4), "little") == 0x321


def test_vfio_release_frees_the_msi_table():
    c = _isolated_container()
    table = c.iommu.domain.msi.base
    assert c.remove_device(DEV) == 0
    assert table not in c.host.driver.alloc.allocated


# -- iommufd ------------------------------------------------------------------------------------

def _ioas(fd):
    arg = bytearray(IOAS_ALLOC.pack(12, 0, 0))
    assert fd.ioctl(FdIoctl.IOAS_ALLOC, arg) == 0
    return IOAS_ALLOC.unpack(arg)[2]


def _hwpt(fd, dev, pt, flags=0):
    arg = bytearray(HWPT_ALLOC.pack(48, flags, dev, pt, 0, 0, 0, 0, 0, 0, 0))
    rc = fd.ioctl(FdIoctl.HWPT_ALLOC, arg)
    return rc, HWPT_ALLOC.unpack(arg)[4]


def test_iommufd_bind_refuses_unisolated_msis():
    host = HostIommu.on_model(Config.full())
    fd = Iommufd(host)
    before = (fd.state(), snapshot(host), host.owner_of(10))
    assert fd.bind(10) == -errno.EPERM
    assert (fd.state(), snapshot(host), host.owner_of(10)) == before
    assert host.log == []              # Linux refuses without a message
    # -ENODEV (no such device) still comes first.
    assert fd.bind(1 << 16) == -errno.ENODEV


def test_iommufd_allow_unsafe_interrupts_binds_and_warns():
    host = HostIommu.on_model(Config.full())
    fd = Iommufd(host, allow_unsafe_interrupts=True)
    assert fd.bind(10) > 0
    assert host.log[-1].endswith(IOMMUFD_WARN)


def test_iommufd_with_msi_translation():
    host = HostIommu.on_model(Config.msi())
    fd = Iommufd(host)
    dev = fd.bind(10)
    assert dev > 0 and host.log == []
    ioas = _ioas(fd)
    arg = bytearray(IOAS_MAP.pack(40, IoasMapFlag.READABLE | IoasMapFlag.WRITEABLE
                                  | IoasMapFlag.FIXED_IOVA, ioas, 0, USER, 0x1000, 0x4000))
    assert fd.ioctl(FdIoctl.IOAS_MAP, arg) == 0
    rc, hwpt = _hwpt(fd, dev, ioas)
    assert rc == 0 and isinstance(fd.objects[hwpt].domain, MsiDomain)
    assert fd.attach(dev, hwpt) == 0
    assert host.model.translate(10, 0x4010, Access.READ).pa == USER + 0x10
    assert _write(host, 10, _file(2)).cause == Cause.MSI_PTE_NOT_VALID
    before = fd.state()
    assert fd.grant_interrupt_file(hwpt, 256) == -errno.EINVAL
    assert fd.grant_interrupt_file(ioas, 2) == -errno.EINVAL
    assert fd.grant_interrupt_file(999, 2) == -errno.ENOENT
    assert fd.state() == before
    assert fd.grant_interrupt_file(hwpt, 2) == 0
    assert _write(host, 10, _file(2)).pa == _file(2)
    assert _write(host, 10, _file(3)).cause == Cause.MSI_PTE_NOT_VALID
    # The IOAS may not map over the window either (it is the MSI page table's).
    arg = bytearray(IOAS_MAP.pack(40, IoasMapFlag.READABLE | IoasMapFlag.FIXED_IOVA, ioas, 0,
                                  USER, 0x1000, WINDOW))
    assert fd.ioctl(FdIoctl.IOAS_MAP, arg) == -errno.EINVAL       # a reserved range


def test_iommufd_nested_inherits_the_parents_msi_table():
    host = HostIommu.on_model(Config.msi())
    fd = Iommufd(host)
    dev = fd.bind(11)
    ioas = _ioas(fd)
    from iogate.cosim.host.iommufd.uapi import HwptAllocFlag
    rc, parent = _hwpt(fd, dev, ioas, flags=HwptAllocFlag.NEST_PARENT)
    assert rc == 0
    domain = fd.objects[parent].domain
    assert isinstance(domain, MsiDomain)
    assert fd.attach(dev, parent) == 0
    assert host.driver.device_context(11).msiptp == domain.msi.msiptp


def test_mrif_grant_needs_msi_mrif():
    host = HostIommu.on_model(Config.full().replace(msi_flat=True))
    assert host.msi_isolation
    c = VfioContainer(host)
    assert c.add_device(DEV) == 0
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == 0
    before = _state(c)
    assert c.grant_mrif(1, 0x4000_0000, 1, 1) == -errno.EOPNOTSUPP
    assert _state(c) == before
    assert c.grant_interrupt_file(1) == 0          # basic mode needs only MSI_FLAT


def test_iommufd_mrif_revoke_and_unbind():
    host = HostIommu.on_model(Config.msi())
    fd = Iommufd(host)
    dev = fd.bind(12)
    ioas = _ioas(fd)
    _, hwpt = _hwpt(fd, dev, ioas)
    assert fd.attach(dev, hwpt) == 0
    mrif = host.driver.mrifs.alloc_mrif()
    notice = host.driver.alloc.alloc()
    assert fd.grant_mrif(hwpt, 4, mrif.address, notice >> 12, 7) == 0
    r = _write(host, 12, _file(4) + 4, data=0x0500_0000)   # A[2]=1: big-endian data 5
    assert r.absorbed and mrif.pending() == [5]
    assert fd.revoke_interrupt_file(hwpt, 4) == 0
    assert _write(host, 12, _file(4), data=6).cause == Cause.MSI_PTE_NOT_VALID
    assert mrif.pending() == [5]
    assert fd.unbind(dev) == 0
    assert host.domain_of(12) is BLOCKED
