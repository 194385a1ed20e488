"""iommufd-style nesting: the dispatcher's size rules, IOAS map/unmap, HWPT_ALLOC with the
guest's device-context fields, and HWPT_INVALIDATE with raw IOTINVAL commands
(drivers/iommu/iommufd/main.c, ioas.c, hw_pagetable.c; the project's RISC-V data types)."""

import errno

import pytest

from iogate.hdl import bits
from iogate.hdl.formats import CMD_SIZE, IOSATP, IOTINVAL, TA, TC, Cause, IosatpMode, Opcode

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.host.iommufd.ictx import Iommufd
from iogate.cosim.host.iommufd.uapi import (
    DESTROY,
    HWPT_ALLOC,
    HWPT_INVALIDATE,
    HWPT_RISCV,
    IOAS_ALLOC,
    IOAS_MAP,
    IOAS_UNMAP,
    HwptAllocFlag,
    HwptDataType,
    HwptInvalidateDataType,
    IoasMapFlag,
    Ioctl,
)

USER = 0x2_0000_0000
RW = IoasMapFlag.READABLE | IoasMapFlag.WRITEABLE
FIXED = IoasMapFlag.FIXED_IOVA
GUEST_RAM = 64 << 20                  # guest physical [0, 64 MiB) = user memory at USER
DATA = USER + 0x1000_0000             # where the test puts HWPT data and invalidations
U64 = (1 << 64) - 1


def ioas_alloc(fd):
    arg = bytearray(IOAS_ALLOC.pack(12, 0, 0))
    assert fd.ioctl(Ioctl.IOAS_ALLOC, arg) == 0
    return IOAS_ALLOC.unpack(arg)[2]


def ioas_map(fd, ioas, iova, length, user_va=None, flags=RW | FIXED, reserved=0):
    user_va = USER + iova if user_va is None else user_va
    arg = bytearray(IOAS_MAP.pack(40, flags, ioas, reserved, user_va, length, iova))
    return fd.ioctl(Ioctl.IOAS_MAP, arg), IOAS_MAP.unpack(arg)[6]


def ioas_unmap(fd, ioas, iova, length):
    arg = bytearray(IOAS_UNMAP.pack(24, ioas, iova, length))
    return fd.ioctl(Ioctl.IOAS_UNMAP, arg), IOAS_UNMAP.unpack(arg)[3]


def hwpt_alloc(fd, dev, pt, flags=0, data_type=0, data_len=0, data_uptr=0, size=48,
               reserved=0):
    arg = bytearray(HWPT_ALLOC.pack(size, flags, dev, pt, 0, reserved, data_type, data_len,
                                    data_uptr, 0, 0))
    return fd.ioctl(Ioctl.HWPT_ALLOC, arg), HWPT_ALLOC.unpack(arg)[4]


def put(fd, address, data):
    fd.host.bus.mem_write(address, data)
    return address


def guest_dc(fsc, tc=None, ta=None):
    tc = bits.pack(TC, v=1) if tc is None else tc
    ta = bits.pack(TA, pscid=7) if ta is None else ta
    return HWPT_RISCV.pack(tc, ta, fsc)


class Nest:
    """A device, an IOAS holding 64 MiB of guest RAM, a nest parent, and a guest Sv39
    table built in guest memory through the parent's second stage."""

    def __init__(self):
        self.fd = fd = Iommufd(allow_unsafe_interrupts=True)
        self.dev = fd.bind(10)
        self.ioas = ioas_alloc(fd)
        assert ioas_map(fd, self.ioas, 0, GUEST_RAM)[0] == 0
        rc, self.parent = hwpt_alloc(fd, self.dev, self.ioas, HwptAllocFlag.NEST_PARENT)
        assert rc == 0
        s2 = fd.objects[self.parent].domain.table
        gmem = GuestMemory(fd.host.bus, s2)
        self.table = PageTable(gmem, PageAllocator(gmem, 0x100_0000, 0x100_0000),
                               IosatpMode.SV39, svpbmt=True)
        self.fsc = bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=self.table.root >> 12)

    def nested(self, data=None):
        data = guest_dc(self.fsc) if data is None else data
        return hwpt_alloc(self.fd, self.dev, self.parent, data_type=HwptDataType.RISCV_IOGATE,
                          data_len=len(data), data_uptr=put(self.fd, DATA, data))

    def invalidate(self, hwpt, entries, entry_len=16, data_type=HwptInvalidateDataType.RISCV_IOGATE,
                   entry_num=None, uptr=DATA + 0x1000, reserved=0):
        raw = b"".join(e.ljust(entry_len, b"\0") if len(e) <= entry_len else e for e in entries)
        if raw:
            put(self.fd, uptr, raw)
        n = len(entries) if entry_num is None else entry_num
        arg = bytearray(HWPT_INVALIDATE.pack(32, hwpt, uptr, data_type, entry_len, n, reserved))
        return self.fd.ioctl(Ioctl.HWPT_INVALIDATE, arg), HWPT_INVALIDATE.unpack(arg)[5]

    def dma(self, iova, access="read"):
        r = self.fd.host.model.translate(10, iova, access, report=False)
        return ("fault", int(r.cause)) if r.fault else r.pa


@pytest.fixture
def nest():
    return Nest()


def vma(**kw):
    return commands.to_bytes(commands.iotinval_vma(**kw))


# -- the dispatcher -------------------------------------------------------------------------

def test_dispatcher_size_rules():
    fd = Iommufd(allow_unsafe_interrupts=True)
    assert fd.ioctl(0x3B8A, bytearray(64)) == -errno.ENOTTY          # GET_HW_INFO: not here
    assert fd.ioctl(0x1234, bytearray(64)) == -errno.ENOTTY
    assert fd.ioctl(Ioctl.IOAS_ALLOC, bytearray(IOAS_ALLOC.pack(11, 0, 0))) == -errno.EINVAL
    assert fd.ioctl(Ioctl.IOAS_ALLOC, bytearray(b"\x0c\0")) == -errno.EFAULT     # no size
    assert fd.ioctl(Ioctl.IOAS_ALLOC, bytearray(IOAS_ALLOC.pack(16, 0, 0))) == -errno.EFAULT
    longer = bytearray(IOAS_ALLOC.pack(16, 0, 0) + b"\0\0\0\x01")
    assert fd.ioctl(Ioctl.IOAS_ALLOC, longer) == -errno.E2BIG
    longer = bytearray(IOAS_ALLOC.pack(16, 0, 0) + bytes(4))
    assert fd.ioctl(Ioctl.IOAS_ALLOC, longer) == 0
    assert IOAS_ALLOC.unpack_from(longer)[2] == 1 and longer[12:] == bytes(4)
    assert fd.ioctl(Ioctl.IOAS_ALLOC, 0x1000) == -errno.EFAULT
    assert fd.ioctl(Ioctl.IOAS_ALLOC, bytearray(IOAS_ALLOC.pack(12, 1, 0))) == -errno.EOPNOTSUPP


def test_destroy():
    fd = Iommufd(allow_unsafe_interrupts=True)
    dev = fd.bind(10)
    ioas = ioas_alloc(fd)
    rc, hwpt = hwpt_alloc(fd, dev, ioas)

    def destroy(obj_id):
        return fd.ioctl(Ioctl.DESTROY, bytearray(DESTROY.pack(8, obj_id)))

    assert destroy(99) == -errno.ENOENT
    assert destroy(ioas) == -errno.EBUSY            # a HWPT uses it
    assert destroy(dev) == -errno.EBUSY             # devices are unbound, not destroyed
    assert fd.attach(dev, hwpt) == 0
    assert destroy(hwpt) == -errno.EBUSY            # a device is attached
    assert fd.detach(dev) == 0
    assert destroy(hwpt) == 0
    assert destroy(ioas) == 0
    assert set(fd.objects) == {dev}


# -- IOAS -----------------------------------------------------------------------------------

def test_ioas_map_errors():
    fd = Iommufd(allow_unsafe_interrupts=True)
    ioas = ioas_alloc(fd)
    assert ioas_map(fd, ioas, 0, 0x1000, flags=RW | FIXED | 8)[0] == -errno.EOPNOTSUPP
    assert ioas_map(fd, ioas, 0, 0x1000, reserved=1)[0] == -errno.EOPNOTSUPP
    assert ioas_map(fd, ioas, U64, 0x1000, user_va=USER)[0] == -errno.EOVERFLOW
    assert ioas_map(fd, ioas, 0, 0x1000, flags=FIXED)[0] == -errno.EINVAL     # no access
    assert ioas_map(fd, ioas + 1, 0, 0x1000)[0] == -errno.ENOENT
    assert ioas_map(fd, ioas, 0, 0)[0] == -errno.EINVAL
    assert ioas_map(fd, ioas, 0x800, 0x1000, user_va=USER)[0] == -errno.EINVAL
    assert ioas_map(fd, ioas, 0, 0x1000, user_va=0x1000)[0] == -errno.EFAULT
    assert ioas_map(fd, ioas, (1 << 64) - 0x1000, 0x2000, user_va=USER)[0] == -errno.EOVERFLOW
    assert ioas_map(fd, ioas, 0, 0x2000)[0] == 0
    assert ioas_map(fd, ioas, 0x1000, 0x1000)[0] == -errno.EEXIST


def test_ioas_map_allocates_an_aligned_iova():
    fd = Iommufd(allow_unsafe_interrupts=True)
    ioas = ioas_alloc(fd)
    assert ioas_map(fd, ioas, 0, 0x1000) == (0, 0)
    # user_va aligned to 64 KiB, 16 KiB long: aligned to 16 KiB, after [0, 4 KiB).
    assert ioas_map(fd, ioas, 0, 0x4000, user_va=USER + 0x1_0000, flags=RW) == (0, 0x4000)


def test_ioas_unmap_is_not_atomic():
    fd = Iommufd(allow_unsafe_interrupts=True)
    ioas = ioas_alloc(fd)
    ioas_map(fd, ioas, 0x1_0000, 0x1000)
    ioas_map(fd, ioas, 0x2_0000, 0x2000)
    # The first area goes, the second would be split: -ENOENT, length not written back.
    assert ioas_unmap(fd, ioas, 0x1_0000, 0x1_1000) == (-errno.ENOENT, 0x1_1000)
    assert [(a.start, a.size) for a in fd.objects[ioas].ioas.areas] == [(0x2_0000, 0x2000)]
    assert ioas_unmap(fd, ioas, 0x5_0000, 0x1000) == (-errno.ENOENT, 0x1000)   # empty
    assert ioas_unmap(fd, ioas, 0, 0) == (-errno.EINVAL, 0)
    assert ioas_unmap(fd, ioas, 0x2_0000, 0x2000) == (0, 0x2000)
    assert ioas_unmap(fd, ioas, 0, U64) == (0, 0)                             # all, empty


def test_ioas_mappings_reach_a_paging_hwpt():
    fd = Iommufd(allow_unsafe_interrupts=True)
    dev = fd.bind(10)
    ioas = ioas_alloc(fd)
    ioas_map(fd, ioas, 0x10_0000, 0x1000)
    rc, hwpt = hwpt_alloc(fd, dev, ioas, size=24)              # the first release's size
    assert rc == 0 and hwpt > 0
    assert fd.attach(dev, hwpt) == 0
    assert fd.host.model.translate(10, 0x10_0010, "read").pa == USER + 0x10_0010
    ioas_map(fd, ioas, 0x20_0000, 0x1000)                      # mirrored after the fact
    assert fd.host.model.translate(10, 0x20_0010, "read").pa == USER + 0x20_0010
    # The MSI window the paging domain keeps is now reserved in the IOAS.
    assert ioas_map(fd, ioas, 0x800_0000, 0x1000)[0] == -errno.EINVAL


def test_bind_attach_detach_unbind():
    fd = Iommufd(allow_unsafe_interrupts=True)
    dev = fd.bind(10)
    assert fd.bind(10) == -errno.EBUSY
    assert fd.bind(1 << 16) == -errno.ENODEV
    assert fd.attach(dev, 99) == -errno.ENOENT
    ioas = ioas_alloc(fd)
    assert fd.attach(dev, ioas) == -errno.EINVAL                # an IOAS: not here
    assert fd.unbind(dev) == 0 and fd.unbind(dev) == -errno.ENOENT
    assert fd.bind(10) > 0


# -- HWPT_ALLOC -----------------------------------------------------------------------------

def test_hwpt_alloc_checks_on_an_ioas(nest):
    fd, dev, ioas = nest.fd, nest.dev, nest.ioas
    assert hwpt_alloc(fd, dev, ioas, reserved=1)[0] == -errno.EOPNOTSUPP
    assert hwpt_alloc(fd, dev, ioas, data_len=24)[0] == -errno.EINVAL          # NONE + len
    assert hwpt_alloc(fd, dev, ioas, data_type=HwptDataType.RISCV_IOGATE)[0] == -errno.EINVAL
    assert hwpt_alloc(fd, 77, ioas)[0] == -errno.ENOENT
    assert hwpt_alloc(fd, dev, 77)[0] == -errno.EINVAL
    assert hwpt_alloc(fd, dev, dev)[0] == -errno.EINVAL                        # a device
    assert hwpt_alloc(fd, dev, ioas, HwptAllocFlag.DIRTY_TRACKING)[0] == -errno.EOPNOTSUPP
    assert hwpt_alloc(fd, dev, ioas, 1 << 7)[0] == -errno.EOPNOTSUPP
    assert hwpt_alloc(fd, dev, ioas, data_type=HwptDataType.RISCV_IOGATE, data_len=24,
                      data_uptr=DATA)[0] == -errno.EOPNOTSUPP


def test_hwpt_alloc_nested(nest):
    rc, hwpt = nest.nested()
    assert rc == 0
    domain = nest.fd.objects[hwpt].domain
    assert domain.parent is nest.fd.objects[nest.parent].domain
    assert domain.fsc == nest.fsc and domain.pscid != 7        # the host's PSCID


@pytest.mark.parametrize("data, expected", [
    (guest_dc(0, tc=0), -errno.EINVAL),                                     # V=0
    (guest_dc(0, tc=bits.pack(TC, v=1, en_ats=1)), -errno.EOPNOTSUPP),
    (guest_dc(0, tc=bits.pack(TC, v=1, pdtv=1)), -errno.EOPNOTSUPP),
    (guest_dc(0, tc=1 | 1 << 40), -errno.EINVAL),                           # reserved
    (guest_dc(0, ta=1), -errno.EINVAL),                                     # ta reserved
    (guest_dc(bits.pack(IOSATP, mode=IosatpMode.SV57)), -errno.EOPNOTSUPP),
    (guest_dc(3 << 60), -errno.EINVAL),                                     # reserved mode
    (guest_dc(bits.pack(IOSATP, ppn=5)), -errno.EINVAL),                    # Bare with a PPN
    (guest_dc(1 << 50), -errno.EINVAL),                                     # fsc reserved
    (guest_dc(0)[:16], -errno.EINVAL),                                      # shorter than 24
    (guest_dc(0) + b"\0" * 7 + b"\x01", -errno.E2BIG),                      # non-zero tail
])
def test_hwpt_alloc_nested_refusals(nest, data, expected):
    assert nest.nested(data)[0] == expected


def test_hwpt_alloc_nested_type_and_parent_rules(nest):
    fd = nest.fd
    data = guest_dc(nest.fsc)
    assert nest.nested(data + bytes(8))[0] == 0                             # zero tail: fine
    put(fd, DATA, data)
    assert hwpt_alloc(fd, nest.dev, nest.parent, data_type=HwptDataType.VTD_S1, data_len=24,
                      data_uptr=DATA)[0] == -errno.EOPNOTSUPP
    assert hwpt_alloc(fd, nest.dev, nest.parent, HwptAllocFlag.NEST_PARENT,
                      HwptDataType.RISCV_IOGATE, 24, DATA)[0] == -errno.EOPNOTSUPP
    assert hwpt_alloc(fd, nest.dev, nest.parent, data_type=HwptDataType.RISCV_IOGATE,
                      data_len=24, data_uptr=0x1000)[0] == -errno.EFAULT
    rc, plain = hwpt_alloc(fd, nest.dev, nest.ioas)                         # not a parent
    assert hwpt_alloc(fd, nest.dev, plain, data_type=HwptDataType.RISCV_IOGATE, data_len=24,
                      data_uptr=DATA)[0] == -errno.EINVAL
    rc, nested = nest.nested()
    assert hwpt_alloc(fd, nest.dev, nested, data_type=HwptDataType.RISCV_IOGATE,
                      data_len=24, data_uptr=DATA)[0] == -errno.EINVAL


def test_nested_translation_goes_through_both_stages(nest):
    nest.table.map(0x4000_0000, 0x20_0000, 0x1000, r=True, w=True)
    rc, hwpt = nest.nested()
    assert nest.fd.attach(nest.dev, hwpt) == 0
    # IOVA -> guest PA 0x20_0000 (stage 1) -> USER + 0x20_0000 (stage 2, the IOAS).
    assert nest.dma(0x4000_0123) == USER + 0x20_0123
    assert nest.dma(0x4000_1000) == ("fault", Cause.READ_PAGE_FAULT)


# -- HWPT_INVALIDATE ------------------------------------------------------------------------

@pytest.fixture
def nested(nest):
    rc, hwpt = nest.nested()
    assert rc == 0
    return hwpt


def test_invalidate_argument_checks(nest, nested):
    inv = nest.invalidate
    assert inv(nested, [vma()], reserved=1) == (-errno.EOPNOTSUPP, 0)
    assert inv(nested, [vma()], uptr=0) == (-errno.EINVAL, 0)
    assert inv(nested, [], entry_len=0, entry_num=1) == (-errno.EINVAL, 0)
    assert inv(99, [vma()]) == (-errno.ENOENT, 0)
    assert inv(nest.parent, [vma()]) == (-errno.EINVAL, 0)                 # not nested
    assert inv(nested, [vma()], data_type=HwptInvalidateDataType.VTD_S1) == (-errno.EINVAL, 0)
    # entry_num = 0 only probes the data type.
    assert inv(nested, [], entry_num=0, uptr=0, entry_len=0) == (0, 0)
    assert inv(nested, [], entry_num=0, data_type=HwptInvalidateDataType.ARM_SMMUV3) \
        == (-errno.EINVAL, 0)


def test_invalidate_entry_rules(nest, nested):
    inv = nest.invalidate
    assert inv(nested, [vma(), vma()], entry_len=8) == (-errno.EINVAL, 0)   # below 16
    good = vma(pscid=7)
    tail = good + b"\0" * 7 + b"\x01"
    assert inv(nested, [good, good, tail], entry_len=24) == (-errno.E2BIG, 2)
    assert inv(nested, [good, good + bytes(8)], entry_len=24) == (0, 2)
    fence = commands.to_bytes(commands.iofence_c())
    assert inv(nested, [good, fence, good]) == (-errno.EOPNOTSUPP, 1)
    gvma = commands.to_bytes(commands.iotinval_gvma(gscid=1))
    assert inv(nested, [gvma]) == (-errno.EOPNOTSUPP, 0)
    reserved = (int.from_bytes(good, "little") | 1 << 11).to_bytes(16, "little")
    assert inv(nested, [good, good, good, reserved]) == (-errno.EINVAL, 3)
    # Entries past the user's memory: -EFAULT at the first one that cannot be read.
    end = USER + 0x1_0000_0000 - 32
    assert inv(nested, [good, good, good], uptr=end) == (-errno.EFAULT, 2)


def _ring(fd):
    cq = fd.host.driver.cq
    return cq, [int.from_bytes(fd.host.bus.mem_read(cq.base + i * CMD_SIZE, CMD_SIZE), "little")
                for i in range(cq.entries)]


def test_invalidate_rewrites_pscid_and_gscid_and_fences(nest, nested):
    fd = nest.fd
    domain = fd.objects[nested].domain
    cq, _ = _ring(fd)
    start = cq.tail
    entries = [vma(pscid=7, addr=0x4000_0000), vma(addr=0x5000_0000),
               vma(pscid=7, gscid=0x33)]
    assert nest.invalidate(nested, entries) == (0, 3)
    _, ring = _ring(fd)
    sent = [ring[(start + i) % cq.entries] for i in range(4)]

    def g(cmd, name):
        return bits.get(IOTINVAL, cmd, name)

    for cmd in sent[:3]:
        assert g(cmd, "opcode") == Opcode.IOTINVAL and g(cmd, "gv") == 1
        assert g(cmd, "gscid") == domain.parent.gscid
    assert [g(c, "pscv") for c in sent[:3]] == [1, 0, 1]
    assert g(sent[0], "pscid") == domain.pscid and g(sent[2], "pscid") == domain.pscid
    assert g(sent[0], "av") == 1 and g(sent[0], "addr") == 0x4000_0000 >> 12
    assert g(sent[1], "pscid") == 0                          # PSCV=0 keeps the whole VM
    assert g(sent[3], "opcode") == Opcode.IOFENCE
    assert cq.tail == (start + 4) % cq.entries


def test_handled_entries_are_fenced_even_on_error(nest, nested):
    cq, _ = _ring(nest.fd)
    start = cq.tail
    bad = commands.to_bytes(commands.iofence_c())
    assert nest.invalidate(nested, [vma(pscid=7), bad]) == (-errno.EOPNOTSUPP, 1)
    assert cq.tail == (start + 2) % cq.entries                # one IOTINVAL, one fence


def test_ioas_unmap_reaches_the_second_stage_at_once(nest):
    # The guest maps IOVA 0x4000_0000 to guest page 0x30_0000; the host then takes that
    # guest page away (IOAS_UNMAP on the nest parent's IOAS).
    nest.table.map(0x4000_0000, 0x30_0000, 0x1000, r=True)
    rc, hwpt = nest.nested()
    nest.fd.attach(nest.dev, hwpt)
    assert nest.dma(0x4000_0000) == USER + 0x30_0000              # the IOTLB holds it
    assert ioas_unmap(nest.fd, nest.ioas, 0, GUEST_RAM) == (0, GUEST_RAM)
    answers = nest.fd.host.model.allowed(10, 0x4000_0000, "read")
    assert answers and all(a.fault for a in answers)
