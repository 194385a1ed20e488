"""The VFIO type1 container: Linux's checks in Linux's order, errnos, argsz and the
capability chain, worked out from drivers/vfio/vfio_iommu_type1.c and container.c."""

import errno
import struct

import pytest

from iogate.hdl.formats import Cause, Pbmt

from iogate.cosim.host.core import IDENTITY, Cap, HostIommu
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.vfio.uapi import (
    DMA_MAP,
    DMA_UNMAP,
    INFO,
    Extension,
    InfoFlag,
    Ioctl,
    MapFlag,
    UnmapFlag,
)
from iogate.cosim.host.virtio import VirtioIommu

USER = 0x2_0000_0000           # start of the process's memory (virtual == physical)
RW = MapFlag.READ | MapFlag.WRITE
MSI_FIRST, MSI_LAST = 0x800_0000, 0x80F_FFFF


def dma_map(c, iova, size, vaddr=None, flags=RW, argsz=32):
    vaddr = (USER + iova) % (1 << 64) if vaddr is None else vaddr
    return c.ioctl(Ioctl.IOMMU_MAP_DMA, bytearray(DMA_MAP.pack(argsz, flags, vaddr, iova, size)))


def dma_unmap(c, iova, size, flags=0, argsz=24, extra=b""):
    arg = bytearray(DMA_UNMAP.pack(argsz, flags, iova, size) + extra)
    rc = c.ioctl(Ioctl.IOMMU_UNMAP_DMA, arg)
    return rc, DMA_UNMAP.unpack_from(arg)[3]


def dma(c, device_id, iova, access="read"):
    r = c.host.model.translate(device_id, iova, access, report=False)
    return ("fault", int(r.cause)) if r.fault else r.pa


@pytest.fixture
def c():
    c = VfioContainer(allow_unsafe_interrupts=True)
    assert c.add_device(3) == 0
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == 0
    return c


# -- extensions and SET_IOMMU -------------------------------------------------------------

@pytest.mark.parametrize("ext, before, after", [
    (Extension.TYPE1_IOMMU, 1, 1), (Extension.TYPE1v2_IOMMU, 1, 1),
    (Extension.UNMAP_ALL, 1, 1), (Extension.UPDATE_VADDR, 0, 1),
    (Extension.DMA_CC_IOMMU, 0, 0), (Extension.SPAPR_TCE_IOMMU, 0, 0),
    (Extension.TYPE1_NESTING_IOMMU, 0, 0), (Extension.NOIOMMU_IOMMU, 0, 0), (99, 0, 0),
])
def test_check_extension(ext, before, after):
    c = VfioContainer(allow_unsafe_interrupts=True)
    assert c.ioctl(Ioctl.CHECK_EXTENSION, ext) == before
    c.add_device(3)
    c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU)
    assert c.ioctl(Ioctl.CHECK_EXTENSION, ext) == after


def test_dma_cc_iommu_follows_enforcement():
    class Enforcing(HostIommu):
        def capable(self, device_id, cap):
            return True
    host = HostIommu.on_model()
    host.__class__ = Enforcing
    c = VfioContainer(host, allow_unsafe_interrupts=True)
    c.add_device(3)
    c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU)
    assert c.ioctl(Ioctl.CHECK_EXTENSION, Extension.DMA_CC_IOMMU) == 1


def test_iogate_does_not_enforce_cache_coherency():
    host = HostIommu.on_model()
    assert host.capable(3, Cap.CACHE_COHERENCY)
    assert not host.capable(3, Cap.ENFORCE_CACHE_COHERENCY)


def test_set_iommu():
    c = VfioContainer(allow_unsafe_interrupts=True)
    assert c.ioctl(Ioctl.GET_API_VERSION) == 0
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == -errno.EINVAL   # no group
    c.add_device(3)
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.DMA_CC_IOMMU) == -errno.ENODEV
    assert c.ioctl(Ioctl.SET_IOMMU, 42) == -errno.ENODEV
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.UNMAP_ALL) == -errno.EINVAL      # open() refuses
    assert c.ioctl(Ioctl.IOMMU_GET_INFO, bytearray(24)) == -errno.EINVAL       # no driver yet
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == 0
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == -errno.EINVAL  # once only
    assert c.ioctl(Ioctl.IOMMU_DIRTY_PAGES, bytearray(8)) == -errno.ENOTTY
    assert c.ioctl(0x3B99, bytearray(8)) == -errno.ENOTTY


# -- devices ------------------------------------------------------------------------------

def test_add_device_refusals():
    host = HostIommu.on_model()
    host.attach(7, IDENTITY)
    VirtioIommu([5], backend=host)
    c = VfioContainer(host, allow_unsafe_interrupts=True)
    assert c.add_device(6, coherent=False) == -errno.EINVAL
    assert c.add_device(7, bypass=True) == -errno.EINVAL
    assert c.add_device(5) == -errno.EBUSY                     # the virtio device owns it
    assert c.add_device(1 << 16) == -errno.ENODEV
    assert c.add_device(3) == 0
    assert c.add_device(3) == -errno.EINVAL
    assert c.devices == [3]
    # The refused bypass device keeps its identity translation.
    assert host.model.translate(7, 0x1234, "write").pa == 0x1234


def test_devices_are_blocked_until_set_iommu():
    c = VfioContainer(allow_unsafe_interrupts=True)
    c.add_device(3)
    assert dma(c, 3, 0x1000) == ("fault", Cause.DDT_ENTRY_NOT_VALID)


def test_device_added_later_joins_the_domain(c):
    assert dma_map(c, 0x10_0000, 0x1000) == 0
    assert c.add_device(4) == 0
    assert dma(c, 4, 0x10_0008) == USER + 0x10_0008


def test_last_device_leaving_releases_the_iommu(c):
    dma_map(c, 0x10_0000, 0x1000)
    assert c.remove_device(3) == 0
    assert c.remove_device(3) == -errno.EINVAL
    assert dma(c, 3, 0x10_0000) == ("fault", Cause.DDT_ENTRY_NOT_VALID)
    assert c.ioctl(Ioctl.IOMMU_GET_INFO, bytearray(24)) == -errno.EINVAL
    c.add_device(3)
    assert c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU) == 0
    assert dma(c, 3, 0x10_0000) == ("fault", Cause.READ_PAGE_FAULT)       # nothing kept
    assert dma_map(c, 0x10_0000, 0x1000) == 0


# -- GET_INFO -----------------------------------------------------------------------------

PGSIZES = 0x80_4021_1000       # 4K | 64K | 2M | 1G | 512G (Sv48)
CAPS_SIZE = 16 + 16 + 2 * 16   # DMA_AVAIL (12 -> 16), IOVA_RANGE with two ranges


def _info(c, argsz, buflen=None):
    arg = bytearray(max(buflen or 0, 24))
    arg[0:4] = argsz.to_bytes(4, "little")
    arg = arg[:buflen] if buflen is not None else arg
    return c.ioctl(Ioctl.IOMMU_GET_INFO, arg), arg


def test_get_info_argsz_too_small_for_caps(c):
    rc, arg = _info(c, 16)
    assert rc == 0
    argsz, flags, pgsizes = struct.unpack_from("<IIQ", arg)
    assert (argsz, flags, pgsizes) == (24 + CAPS_SIZE, InfoFlag.PGSIZES | InfoFlag.CAPS, PGSIZES)
    assert arg[16:] == bytes(8)                    # only minsz bytes were copied back
    rc, arg = _info(c, 24)
    assert INFO.unpack(arg) == (24 + CAPS_SIZE, 3, PGSIZES, 0, 0)


def test_get_info_capability_chain(c):
    rc, arg = _info(c, 24 + CAPS_SIZE, 24 + CAPS_SIZE)
    assert rc == 0
    assert INFO.unpack_from(arg) == (24 + CAPS_SIZE, 3, PGSIZES, 24, 0)
    # DMA_AVAIL (id 3, version 1) at 24, next at 40; avail = 65535.
    assert struct.unpack_from("<HHII", arg, 24) == (3, 1, 40, 65535)
    # IOVA_RANGE (id 1, version 1) at 40, last; the aperture minus the MSI window.
    assert struct.unpack_from("<HHIII", arg, 40) == (1, 1, 0, 2, 0)
    assert struct.unpack_from("<4Q", arg, 56) == (0, MSI_FIRST - 1, MSI_LAST + 1, (1 << 47) - 1)


def test_get_info_dma_avail_counts_mappings(c):
    dma_map(c, 0x10_0000, 0x1000)
    dma_map(c, 0x20_0000, 0x1000)
    rc, arg = _info(c, 24 + CAPS_SIZE, 24 + CAPS_SIZE)
    assert struct.unpack_from("<I", arg, 32) == (65533,)


def test_get_info_errors(c):
    assert _info(c, 15)[0] == -errno.EINVAL
    assert _info(c, 24, buflen=12)[0] == -errno.EFAULT           # cannot copy minsz
    assert _info(c, 24 + CAPS_SIZE, buflen=24)[0] == -errno.EFAULT   # caps beyond buffer
    assert c.ioctl(Ioctl.IOMMU_GET_INFO, 0x1000) == -errno.EFAULT    # not a buffer


# -- MAP_DMA ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, expected", [
    (dict(argsz=31), -errno.EINVAL),
    (dict(flags=8), -errno.EINVAL),                                   # unknown flag
    (dict(flags=0), -errno.EINVAL),                                   # neither READ nor WRITE
    (dict(flags=MapFlag.READ | MapFlag.VADDR), -errno.EINVAL),
    (dict(size=0), -errno.EINVAL),
    (dict(iova=0x10_0800), -errno.EINVAL),
    (dict(vaddr=USER + 0x10), -errno.EINVAL),
    (dict(size=0x1800), -errno.EINVAL),
    (dict(iova=(1 << 64) - 0x1000, size=0x2000), -errno.EINVAL),     # IOVA wraps
    (dict(vaddr=(1 << 64) - 0x1000, size=0x2000), -errno.EINVAL),    # vaddr wraps
    (dict(iova=MSI_FIRST, size=0x1000), -errno.EINVAL),              # reserved IOVA
    (dict(iova=1 << 47, size=0x1000), -errno.EINVAL),                # beyond the aperture
    (dict(vaddr=0x1000), -errno.EFAULT),                             # not the process's
])
def test_map_dma_errors(c, kwargs, expected):
    args = dict(iova=0x10_0000, size=0x1000)
    args.update(kwargs)
    assert dma_map(c, **args) == expected
    assert c.iommu.dmas.overlapping(0, (1 << 64) - 1) == []


def test_map_dma_overflow_errno_of_new_kernels():
    c = VfioContainer(eoverflow=True, allow_unsafe_interrupts=True)
    c.add_device(3)
    c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU)
    assert dma_map(c, (1 << 64) - 0x1000, 0x2000) == -errno.EOVERFLOW


def test_map_dma_order_of_checks():
    c = VfioContainer(dma_entry_limit=1, allow_unsafe_interrupts=True)
    c.add_device(3)
    c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU)
    assert dma_map(c, 0x10_0000, 0x2000) == 0
    # Overlap is checked before the entry limit and before the IOVA ranges.
    assert dma_map(c, 0x10_1000, 0x1000) == -errno.EEXIST
    # The entry limit before the IOVA ranges.
    assert dma_map(c, MSI_FIRST, 0x1000) == -errno.ENOSPC
    # Alignment before overlap.
    assert dma_map(c, 0x10_1000, 0x800) == -errno.EINVAL


def test_map_dma_translates_with_iommu_cache(c):
    assert dma_map(c, 0x10_0000, 0x20_0000, flags=MapFlag.READ) == 0
    r = c.host.model.translate(3, 0x11_2345, "read")
    assert r.pa == USER + 0x11_2345 and r.pbmt == Pbmt.PMA
    assert dma(c, 3, 0x11_2345, "write") == ("fault", Cause.WRITE_PAGE_FAULT)


# -- UNMAP_DMA ----------------------------------------------------------------------------

@pytest.fixture
def mapped(c):
    # Three mappings: [1M, 1M+8K), [1M+8K, 1M+12K), and [2M, 2M+16K).
    assert dma_map(c, 0x10_0000, 0x2000) == 0
    assert dma_map(c, 0x10_2000, 0x1000) == 0
    assert dma_map(c, 0x20_0000, 0x4000) == 0
    return c


def _left(c):
    return [(a.start, a.size) for a in c.iommu.dmas]


ALL3 = [(0x10_0000, 0x2000), (0x10_2000, 0x1000), (0x20_0000, 0x4000)]


@pytest.mark.parametrize("iova, size, flags, rc, unmapped, left", [
    (0x10_0000, 0x3000, 0, 0, 0x3000, ALL3[2:]),                  # two whole mappings
    (0x10_0000, 0x20_0000, 0, 0, 0x7000, []),                     # all three, holes
    (0x30_0000, 0x1000, 0, 0, 0, ALL3),                           # nothing there
    (0x10_1000, 0x2000, 0, -errno.EINVAL, None, ALL3),            # head bisects
    (0x10_0000, 0x1000, 0, -errno.EINVAL, None, ALL3),            # tail bisects
    (0x1F_F000, 0x2000, 0, -errno.EINVAL, None, ALL3),            # tail bisects the third
    (0x10_0800, 0x1000, 0, -errno.EINVAL, None, ALL3),            # misaligned
    (0x10_0000, 0, 0, -errno.EINVAL, None, ALL3),                 # size 0
    (0, 0, UnmapFlag.ALL, 0, 0x7000, []),
    (0x10_0000, 0, UnmapFlag.ALL, -errno.EINVAL, None, ALL3),     # ALL needs iova=size=0
    (0, 0, 8, -errno.EINVAL, None, ALL3),                         # unknown flag
    (0, 0, UnmapFlag.ALL | UnmapFlag.GET_DIRTY_BITMAP, -errno.EINVAL, None, ALL3),
    (0x10_0000, 0x1000, UnmapFlag.GET_DIRTY_BITMAP, -errno.EINVAL, None, ALL3),  # argsz
])
def test_unmap_dma_v2(mapped, iova, size, flags, rc, unmapped, left):
    for start, _ in ALL3:                   # DMA first, so the IOTLB holds the mappings
        assert dma(mapped, 3, start) == USER + start
    got_rc, got_size = dma_unmap(mapped, iova, size, flags)
    assert got_rc == rc
    assert got_size == (size if unmapped is None else unmapped)   # unchanged on error
    assert _left(mapped) == left
    for start, length in ALL3:
        answers = mapped.host.model.allowed(3, start, "read")
        if (start, length) in left:
            assert [a.pa for a in answers] == [USER + start]
        else:                               # no stale answer once the ioctl has returned
            assert answers and all(a.fault and a.cause == Cause.READ_PAGE_FAULT
                                   for a in answers)


def test_unmap_dma_dirty_bitmap(mapped):
    # argsz covers the vfio_bitmap but the buffer does not: copy_from_user faults.
    assert dma_unmap(mapped, 0x10_0000, 0x3000, UnmapFlag.GET_DIRTY_BITMAP, argsz=48)[0] \
        == -errno.EFAULT
    # With the bitmap present, dirty tracking is off: -EINVAL.
    assert dma_unmap(mapped, 0x10_0000, 0x3000, UnmapFlag.GET_DIRTY_BITMAP, argsz=48,
                     extra=struct.pack("<QQQ", 0x1000, 8, USER))[0] == -errno.EINVAL
    assert _left(mapped) == ALL3


def test_unmap_dma_v1():
    c = VfioContainer(allow_unsafe_interrupts=True)
    c.add_device(3)
    c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1_IOMMU)
    dma_map(c, 0x10_0000, 0x4000)
    # Starting inside a mapping: success, 0 bytes.
    assert dma_unmap(c, 0x10_1000, 0x1000) == (0, 0)
    # Covering the first IOVA removes the whole mapping.
    assert dma_unmap(c, 0x10_0000, 0x1000) == (0, 0x4000)
    assert dma(c, 3, 0x10_3000) == ("fault", Cause.READ_PAGE_FAULT)


def test_update_vaddr(mapped):
    c = mapped
    assert dma_unmap(c, 0x20_0000, 0x4000, UnmapFlag.VADDR) == (0, 0x4000)
    assert dma(c, 3, 0x20_0000) == USER + 0x20_0000            # DMA is not affected
    assert dma_unmap(c, 0x20_0000, 0x4000, UnmapFlag.VADDR)[0] == -errno.EINVAL
    flags = MapFlag.VADDR
    assert dma_map(c, 0x30_0000, 0x4000, flags=flags) == -errno.ENOENT
    assert dma_map(c, 0x20_0000, 0x2000, flags=flags) == -errno.EINVAL    # not exact
    assert dma_map(c, 0x10_0000, 0x2000, flags=flags) == -errno.EINVAL    # vaddr valid
    assert dma_map(c, 0x20_0000, 0x4000, vaddr=USER + 0x100_0000, flags=flags) == 0
    assert c.iommu.dmas.find(0x20_0000).value.vaddr == USER + 0x100_0000


def test_dma_entry_limit_is_given_back():
    c = VfioContainer(dma_entry_limit=1, allow_unsafe_interrupts=True)
    c.add_device(3)
    c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU)
    assert dma_map(c, 0x10_0000, 0x1000) == 0
    assert dma_map(c, 0x20_0000, 0x1000) == -errno.ENOSPC
    assert dma_unmap(c, 0x10_0000, 0x1000) == (0, 0x1000)
    assert dma_map(c, 0x20_0000, 0x1000) == 0


def test_constructor_validation():
    with pytest.raises(TypeError, match="dma_entry_limit must be an integer, not '1'"):
        VfioContainer(dma_entry_limit="1")
    with pytest.raises(ValueError, match="dma_entry_limit must not be negative, not -1"):
        VfioContainer(dma_entry_limit=-1)
    with pytest.raises(TypeError, match="device_id must be an integer"):
        VfioContainer().add_device("3")
