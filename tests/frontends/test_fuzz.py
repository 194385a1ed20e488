"""Bad input: random bytes, truncations and extensions into every parser and ioctl.

Never an exception; always a spec status (or used length 0) or an errno; and after an error
the state is exactly what it was: the front-end's own state, every table, context and
queue page the driver allocated, the queue registers, and the caller's argument buffer.
The documented exceptions are iommufd's: IOAS_UNMAP may have removed areas before the one
it stops at, and HWPT_INVALIDATE writes ``entry_num`` back and fences the entries it
handled.
"""

import errno
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontend_helpers import snapshot
from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.iommufd import uapi as fdapi
from iogate.cosim.host.iommufd.ictx import Iommufd
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.vfio import uapi as vfapi
from iogate.cosim.host.virtio import VirtioIommu
from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import Status

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
ERRNOS = {-e for e in (errno.EINVAL, errno.EFAULT, errno.ENOTTY, errno.EEXIST, errno.ENOSPC,
                       errno.ENOENT, errno.ENODEV, errno.ENOMEM, errno.EOVERFLOW,
                       errno.EOPNOTSUPP, errno.E2BIG, errno.EBUSY, errno.EADDRINUSE)}


# -- virtio-iommu -------------------------------------------------------------------------

class _Virtio:
    """One device reused across examples, with a mapping to keep the state interesting."""

    def __init__(self):
        self.host = HostIommu.on_model()
        self.dev = VirtioIommu([1, 2, 3], backend=self.host, probe_size=64)
        for request in (rq.Attach(1, 1), rq.Map(1, 0x10_0000, 0x10_FFFF, 0x40_0000, 3)):
            assert self.dev.request(request.encode(), 4) == b"\0\0\0\0"

    def send(self, readable, writable):
        before = (self.dev.state(), snapshot(self.host))
        written = self.dev.request(readable, writable)
        assert written == b"" or len(written) == writable
        if written:
            status = written[-4]
            assert status in tuple(Status) and written[-3:] == b"\0\0\0"
        if not written or written[-4] != Status.OK:
            assert (self.dev.state(), snapshot(self.host)) == before
        return written


_VIRTIO = None


def virtio():
    global _VIRTIO
    if _VIRTIO is None:
        _VIRTIO = _Virtio()
    return _VIRTIO


@SETTINGS
@given(st.binary(max_size=100), st.integers(-4, 200))
def test_virtio_random_bytes(readable, writable):
    virtio().send(readable, writable)


# Requests of every type whose fields come from small sets, so that the handlers' deeper
# checks (ranges, overlaps, splits, endpoints, domains) are reached.
_addr = st.sampled_from([0, 0xFFF, 0x1000, 0x10_0000, 0x10_0FFF, 0x10_8000, 0x10_FFFF,
                         0x11_0000, 0x800_0000, 0x80F_FFFF, (1 << 47) - 1, 1 << 47,
                         (1 << 64) - 1, 0x40_0000, 0x10_0000_0000])
_small = st.integers(0, 4) | st.sampled_from([0xFFFF_FFFF, 1 << 31])
_reserved = st.sampled_from([bytes(8), b"\x01" + bytes(7)])

_requests = st.one_of(
    st.builds(rq.Attach, _small, _small, st.sampled_from([0, 1, 2, 3]),
              _reserved.map(lambda b: b[:4])),
    st.builds(rq.Detach, _small, _small, _reserved),
    st.builds(rq.Map, _small, _addr, _addr, _addr, st.integers(0, 9)),
    st.builds(rq.Unmap, _small, _addr, _addr, _reserved.map(lambda b: b[:4])),
    st.builds(rq.Probe, _small),
)


@SETTINGS
@given(_requests, st.integers(0, 40), st.binary(max_size=8),
       st.sampled_from([4, 4, 68, 80, 3]))
def test_virtio_requests_truncated_and_extended(request, cut, extra, writable):
    raw = request.encode()
    raw = raw[:len(raw) - cut] if cut < len(raw) and cut % 3 else raw + extra
    virtio().send(raw, writable)


@SETTINGS
@given(st.lists(_requests, max_size=12))
def test_virtio_request_sequences_keep_invariants(requests):
    v = _Virtio()
    for request in requests:
        v.send(request.encode(), 68 if isinstance(request, rq.Probe) else 4)
    # The device's mappings stay disjoint, and each one is what DMA reaches.
    for domain_id in {d for _, d in v.dev.state()[1] if d is not None}:
        areas = v.dev.mappings(domain_id)
        assert all(a[1] < b[0] for a, b in zip(areas, areas[1:], strict=False))


# -- VFIO ----------------------------------------------------------------------------------

class _Vfio:
    def __init__(self):
        self.c = VfioContainer(dma_entry_limit=8, allow_unsafe_interrupts=True)
        assert self.c.add_device(3) == 0
        assert self.c.ioctl(vfapi.Ioctl.SET_IOMMU, vfapi.Extension.TYPE1v2_IOMMU) == 0
        arg = bytearray(vfapi.DMA_MAP.pack(32, 3, 0x2_0010_0000, 0x10_0000, 0x1_0000))
        assert self.c.ioctl(vfapi.Ioctl.IOMMU_MAP_DMA, arg) == 0

    def call(self, request, arg):
        before = (self.c.state(), snapshot(self.c.host),
                  bytes(arg) if isinstance(arg, bytearray) else arg)
        rc = self.c.ioctl(request, arg)
        assert isinstance(rc, int)
        if rc < 0:
            assert rc in ERRNOS
            after = (self.c.state(), snapshot(self.c.host),
                     bytes(arg) if isinstance(arg, bytearray) else arg)
            assert after == before
        return rc


_VFIO = None


def vfio():
    global _VFIO
    if _VFIO is None:
        _VFIO = _Vfio()
    return _VFIO


# Two thirds of the requests are the ioctls the container answers beyond -ENOTTY.
_VFIO_MAIN = [vfapi.Ioctl.IOMMU_GET_INFO, vfapi.Ioctl.IOMMU_MAP_DMA, vfapi.Ioctl.IOMMU_UNMAP_DMA]
_vfio_requests = st.one_of(st.sampled_from(_VFIO_MAIN), st.sampled_from(_VFIO_MAIN),
                           st.sampled_from(list(vfapi.Ioctl)) | st.integers(0, 0xFFFF))


def _struct(layout, fields):
    return st.tuples(*fields).map(lambda t: layout.pack(*t))


_u32 = st.integers(0, 40) | st.sampled_from([0xFFFF_FFFF, 1 << 31])
_u64 = (st.sampled_from([0, 0x1000, 0x10_0000, 0x10_8000, 0x1_0000, 0x800_0000,
                         0x2_0010_0000, 0x2_0000_0000, (1 << 64) - 0x1000, (1 << 64) - 1])
        | st.integers(0, 1 << 64).map(lambda v: v & ((1 << 64) - 1)))
_vfio_structs = st.one_of(
    st.binary(max_size=96),
    _struct(vfapi.DMA_MAP, (st.sampled_from([32, 31, 40]), st.integers(0, 9), _u64, _u64, _u64)),
    _struct(vfapi.DMA_UNMAP, (st.sampled_from([24, 23, 48]), st.integers(0, 9), _u64, _u64)),
    _struct(vfapi.INFO, (st.sampled_from([16, 15, 24, 88, 200]), _u32, _u64, _u32, _u32)),
)


@SETTINGS
@given(_vfio_requests, _vfio_structs, st.integers(0, 24), st.binary(max_size=16))
def test_vfio_ioctl_structs(request, raw, cut, extra):
    raw = raw[:max(0, len(raw) - cut)] if cut % 2 else raw + extra
    vfio().call(request, bytearray(raw))


@SETTINGS
@given(st.sampled_from([vfapi.Ioctl.CHECK_EXTENSION, vfapi.Ioctl.SET_IOMMU,
                        vfapi.Ioctl.GET_API_VERSION, vfapi.Ioctl.IOMMU_MAP_DMA]),
       st.integers(-5, 1 << 64) | st.none() | st.binary(max_size=8) | st.just(bytearray(4)))
def test_vfio_integer_ioctls(request, arg):
    rc = vfio().call(request, arg)
    if request == vfapi.Ioctl.CHECK_EXTENSION:
        assert rc in (0, 1)


# -- iommufd --------------------------------------------------------------------------------

class _Fd:
    USER = 0x2_0000_0000

    def __init__(self):
        fd = self.fd = Iommufd(allow_unsafe_interrupts=True)
        self.dev = fd.bind(4)
        arg = bytearray(fdapi.IOAS_ALLOC.pack(12, 0, 0))
        fd.ioctl(fdapi.Ioctl.IOAS_ALLOC, arg)
        self.ioas = fdapi.IOAS_ALLOC.unpack(arg)[2]
        arg = bytearray(fdapi.IOAS_MAP.pack(40, 7, self.ioas, 0, self.USER, 0x10_0000, 0))
        assert fd.ioctl(fdapi.Ioctl.IOAS_MAP, arg) == 0
        arg = bytearray(fdapi.HWPT_ALLOC.pack(48, 1, self.dev, self.ioas, 0, 0, 0, 0, 0, 0, 0))
        assert fd.ioctl(fdapi.Ioctl.HWPT_ALLOC, arg) == 0
        self.parent = fdapi.HWPT_ALLOC.unpack(arg)[4]
        fd.host.bus.mem_write(self.USER + 0x8000, fdapi.HWPT_RISCV.pack(1, 0, 0))
        arg = bytearray(fdapi.HWPT_ALLOC.pack(48, 0, self.dev, self.parent, 0, 0,
                                              fdapi.HwptDataType.RISCV_IOGATE, 24,
                                              self.USER + 0x8000, 0, 0))
        assert fd.ioctl(fdapi.Ioctl.HWPT_ALLOC, arg) == 0
        self.nested = fdapi.HWPT_ALLOC.unpack(arg)[4]
        # An array of valid and invalid invalidation entries in user memory.
        from iogate.firmware import commands
        good = commands.to_bytes(commands.iotinval_vma(pscid=1, addr=0x1000))
        fd.host.bus.mem_write(self.USER + 0x9000, good * 3 + bytes(16) + good)

    def call(self, request, arg):
        fd = self.fd
        before = (fd.state(), snapshot(fd.host), bytes(arg))
        rc = fd.ioctl(request, arg)
        assert isinstance(rc, int)
        if rc < 0:
            assert rc in ERRNOS
            partial = False
            if request == fdapi.Ioctl.HWPT_INVALIDATE and len(arg) >= 28:
                done = struct.unpack_from("<I", arg, 24)[0]
                partial = done > 0
                if bytes(arg[:24]) == before[2][:24] and not partial:
                    before = (before[0], before[1], bytes(arg))   # entry_num came back 0
            if request == fdapi.Ioctl.IOAS_UNMAP and rc == -errno.ENOENT:
                partial = True
            if not partial:
                assert (fd.state(), snapshot(fd.host), bytes(arg)) == before
        return rc


_FD = None


def fd():
    global _FD
    if _FD is None:
        _FD = _Fd()
    return _FD


def _ids():
    return st.integers(0, 8)


_RISCV_INVALIDATE = fdapi.HwptInvalidateDataType.RISCV_IOGATE
_fd_structs = st.one_of(
    st.binary(max_size=64),
    _struct(fdapi.DESTROY, (st.sampled_from([8, 7, 12]), _ids())),
    _struct(fdapi.IOAS_ALLOC, (st.sampled_from([12, 11, 16]), st.integers(0, 2), _u32)),
    _struct(fdapi.IOAS_MAP, (st.sampled_from([40, 39, 48]), st.integers(0, 9), _ids(),
                             st.integers(0, 1), _u64, _u64, _u64)),
    _struct(fdapi.IOAS_UNMAP, (st.sampled_from([24, 23, 32]), _ids(), _u64, _u64)),
    _struct(fdapi.HWPT_ALLOC, (st.sampled_from([48, 24, 23, 56]), st.integers(0, 17), _ids(),
                               _ids(), _u32, st.integers(0, 1),
                               st.sampled_from([0, 1, 2, fdapi.HwptDataType.RISCV_IOGATE]),
                               st.sampled_from([0, 8, 24, 32]),
                               st.sampled_from([0, 0x2_0000_8000, 0x1000]), _u32,
                               st.integers(0, 1))),
    _struct(fdapi.HWPT_INVALIDATE, (st.sampled_from([32, 31, 40]), _ids(),
                                    st.sampled_from([0, 0x2_0000_9000, 0x1000]),
                                    st.sampled_from([0, 1, _RISCV_INVALIDATE]),
                                    st.sampled_from([0, 8, 16, 24]), st.integers(0, 6),
                                    st.integers(0, 1))),
)


@SETTINGS
@given(st.one_of(st.sampled_from(list(fdapi.OPS)), st.sampled_from(list(fdapi.OPS)),
                st.integers(0x3B70, 0x3B9F)), _fd_structs,
       st.integers(0, 24), st.binary(max_size=16))
def test_iommufd_ioctl_structs(request, raw, cut, extra):
    raw = raw[:max(0, len(raw) - cut)] if cut % 2 else raw + extra
    fd().call(request, bytearray(raw))
