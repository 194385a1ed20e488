"""iommufd with PASIDs: IOMMU_HWPT_ALLOC_PASID, VFIO_DEVICE_ATTACH_PASID on a (device,
PASID) pair, and a nested HWPT whose guest owns its process directory.

Linux's rules (drivers/iommu/iommufd/device.c iommufd_hwpt_pasid_compat, vfio/device_cdev.c
vfio_df_ioctl_attach_pt/detach_pt, iommu.c iommu_attach_device_pasid): a PASID needs a HWPT
allocated with the PASID flag (-EINVAL), a PASID is 1 to max_pasids - 1 (-EINVAL), unknown
flags or a short argsz are -EINVAL, an IOMMU without PASIDs refuses the flag (-EOPNOTSUPP).
Every refusal leaves the context's objects and the device context in memory as they were.
The tables are decoded with the spec's bit positions written out by hand (RISC-V IOMMU spec
"Device-context fields": tc.PDTV bit 5, tc.DPE bit 9, pdtp MODE 63:60 PPN 43:0;
"Process-context fields": ta V bit 0, PSCID 31:12; fsc PPN 43:0).
"""

import errno
import struct

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import PDTP, TC, IosatpMode, PdtpMode

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable
from iogate.firmware.pdt import ProcessContext, ProcessDirectory

from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.iommufd.ictx import Iommufd
from iogate.cosim.host.iommufd.uapi import (
    HWPT_ALLOC,
    HWPT_INVALIDATE,
    HWPT_RISCV,
    IOAS_ALLOC,
    IOAS_MAP,
    HwptAllocFlag,
    HwptDataType,
    HwptInvalidateDataType,
    IoasMapFlag,
    Ioctl,
)

USER = 0x2_0000_0000
DATA = USER + 0x1000_0000
GUEST_RAM = 64 << 20
RW = IoasMapFlag.READABLE | IoasMapFlag.WRITEABLE | IoasMapFlag.FIXED_IOVA
DEVICE = 10


def ioas_alloc(fd):
    arg = bytearray(IOAS_ALLOC.pack(12, 0, 0))
    assert fd.ioctl(Ioctl.IOAS_ALLOC, arg) == 0
    return IOAS_ALLOC.unpack(arg)[2]


def ioas_map(fd, ioas, iova, length):
    arg = bytearray(IOAS_MAP.pack(40, RW, ioas, 0, USER + iova, length, iova))
    assert fd.ioctl(Ioctl.IOAS_MAP, arg) == 0


def hwpt_alloc(fd, dev, pt, flags=0, data=b""):
    uptr = 0
    if data:
        fd.host.bus.mem_write(DATA, data)
        uptr = DATA
    arg = bytearray(HWPT_ALLOC.pack(48, flags, dev, pt, 0, 0,
                                    HwptDataType.RISCV_IOGATE if data else 0, len(data),
                                    uptr, 0, 0))
    return fd.ioctl(Ioctl.HWPT_ALLOC, arg), HWPT_ALLOC.unpack(arg)[4]


def u64(fd, address):
    return int.from_bytes(fd.host.bus.mem_read(address, 8), "little")


def dc_words(fd):
    return fd.host.driver.device_context(DEVICE)


def snapshot(fd):
    return fd.state(), dc_words(fd), fd.host.pasids_of(DEVICE)


class Ctx:
    def __init__(self, config=None):
        self.fd = Iommufd(HostIommu.on_model(Config.process() if config is None else config),
                          allow_unsafe_interrupts=True)
        self.dev = self.fd.bind(DEVICE)
        self.ioas = ioas_alloc(self.fd)
        ioas_map(self.fd, self.ioas, 0, 1 << 20)

    def paging(self, flags=HwptAllocFlag.PASID):
        rc, hwpt = hwpt_alloc(self.fd, self.dev, self.ioas, flags)
        assert rc == 0
        return hwpt


def pc_at(fd, pasid):
    """The PC of ``pasid`` found by walking the device's PDT by hand from DC.fsc."""
    dc = dc_words(fd)
    assert (dc.tc >> 5) & 1, "DC.tc.PDTV is 0"
    mode, table = dc.fsc >> 60, (dc.fsc & ((1 << 44) - 1)) << 12
    for shift, mask in ((17, 0x7), (8, 0x1FF))[3 - mode:]:
        pdte = u64(fd, table + ((pasid >> shift) & mask) * 8)
        if not pdte & 1:
            return None
        table = ((pdte >> 10) & ((1 << 44) - 1)) << 12
    address = table + (pasid & 0xFF) * 16
    return u64(fd, address), u64(fd, address + 8)


def test_an_iommu_without_process_contexts_refuses_the_flag():
    c = Ctx(Config.full())
    before = snapshot(c.fd)
    assert hwpt_alloc(c.fd, c.dev, c.ioas, HwptAllocFlag.PASID)[0] == -errno.EOPNOTSUPP
    assert snapshot(c.fd) == before


def test_no_pasid_nest_parent():
    c = Ctx()
    before = snapshot(c.fd)
    flags = HwptAllocFlag.PASID | HwptAllocFlag.NEST_PARENT
    assert hwpt_alloc(c.fd, c.dev, c.ioas, flags)[0] == -errno.EOPNOTSUPP
    assert snapshot(c.fd) == before


def test_attach_a_pasid():
    c = Ctx()
    hwpt = c.paging()
    assert c.fd.attach(c.dev, hwpt, pasid=0x4_2345) == 0
    domain = c.fd.objects[hwpt].domain
    dc = dc_words(c.fd)
    # RID blocked: DPE=1 with PC 0 invalid; Config.process() offers PD20.
    assert (dc.tc >> 9) & 1 == 1 and dc.fsc >> 60 == 3
    ta, fsc = pc_at(c.fd, 0x4_2345)
    assert ta & 1 and (ta >> 12) & 0xFFFFF == domain.pscid
    assert fsc >> 60 == 9 and (fsc & ((1 << 44) - 1)) << 12 == domain.table.root
    assert pc_at(c.fd, 0) is None or not pc_at(c.fd, 0)[0] & 1
    # The RID then takes a PASID-capable paging HWPT: PC 0, DPE stays.
    rid = c.paging()
    assert c.fd.attach(c.dev, rid) == 0
    ta0, _ = pc_at(c.fd, 0)
    assert ta0 & 1 and (ta0 >> 12) & 0xFFFFF == c.fd.objects[rid].domain.pscid


@pytest.mark.parametrize("pasid", [0, 1 << 20, -1, True])
def test_bad_pasids(pasid):
    c = Ctx()
    hwpt = c.paging()
    before = snapshot(c.fd)
    assert c.fd.attach(c.dev, hwpt, pasid=pasid) == -errno.EINVAL
    assert c.fd.detach(c.dev, pasid=pasid) == -errno.EINVAL
    assert snapshot(c.fd) == before


def test_pd8_bounds_the_pasid():
    c = Ctx(Config.full().replace(pd_levels=1))
    hwpt = c.paging()
    before = snapshot(c.fd)
    assert c.fd.attach(c.dev, hwpt, pasid=0x100) == -errno.EINVAL
    assert snapshot(c.fd) == before
    assert c.fd.attach(c.dev, hwpt, pasid=0xFF) == 0
    assert dc_words(c.fd).fsc >> 60 == 1


def test_a_hwpt_without_the_flag_takes_no_pasid():
    c = Ctx()
    plain = c.paging(0)
    before = snapshot(c.fd)
    assert c.fd.attach(c.dev, plain, pasid=3) == -errno.EINVAL
    assert snapshot(c.fd) == before
    # ... nor is it the RID's HWPT of a device with PASIDs.
    assert c.fd.attach(c.dev, c.paging(), pasid=3) == 0
    before = snapshot(c.fd)
    assert c.fd.attach(c.dev, plain) == -errno.EINVAL
    assert snapshot(c.fd) == before


ATTACH = struct.Struct("<IIII")
DETACH = struct.Struct("<III")


@pytest.mark.parametrize("arg", [
    ATTACH.pack(16, 2, 0, 3),          # unknown flag
    ATTACH.pack(8, 0, 0, 0)[:8],       # argsz below offsetofend(pt_id)
    ATTACH.pack(12, 1, 0, 3)[:12],     # PASID flag without the pasid field
])
def test_attach_struct_refusals(arg):
    c = Ctx()
    hwpt = c.paging()
    arg = bytearray(arg)
    if len(arg) >= 12:
        struct.pack_into("<I", arg, 8, hwpt)
    before = snapshot(c.fd)
    assert c.fd.attach_pt(c.dev, arg) == -errno.EINVAL
    assert snapshot(c.fd) == before


def test_attach_and_detach_structs():
    c = Ctx()
    hwpt = c.paging()
    assert c.fd.attach_pt(c.dev, bytearray(ATTACH.pack(16, 1, hwpt, 7))) == 0
    assert set(c.fd.host.pasids_of(DEVICE)) == {7}
    before = snapshot(c.fd)
    assert c.fd.detach_pt(c.dev, bytearray(DETACH.pack(12, 4, 7))) == -errno.EINVAL
    assert c.fd.detach_pt(c.dev, bytearray(DETACH.pack(8, 1, 7)[:8])) == -errno.EINVAL
    assert snapshot(c.fd) == before
    assert c.fd.detach_pt(c.dev, bytearray(DETACH.pack(12, 1, 7))) == 0
    assert c.fd.host.pasids_of(DEVICE) == {}
    # The last PASID gone: a context without a directory again (blocked: V=0).
    assert not dc_words(c.fd).tc & 1 << 5


def test_destroy_of_a_pasid_hwpt_in_use_is_busy():
    c = Ctx()
    hwpt = c.paging()
    assert c.fd.attach(c.dev, hwpt, pasid=9) == 0
    arg = bytearray(struct.pack("<II", 8, hwpt))
    before = snapshot(c.fd)
    assert c.fd.ioctl(Ioctl.DESTROY, arg) == -errno.EBUSY
    assert snapshot(c.fd) == before
    assert c.fd.unbind(c.dev) == 0
    assert c.fd.ioctl(Ioctl.DESTROY, arg) == 0


class GuestPdt:
    """A nest parent over 64 MiB of guest RAM and a guest PD17 directory built in guest
    memory through it (the guest owns PDT and first-stage tables)."""

    def __init__(self):
        self.c = c = Ctx()
        ioas_map(c.fd, c.ioas, 1 << 20, GUEST_RAM - (1 << 20))
        rc, self.parent = hwpt_alloc(c.fd, c.dev, c.ioas, HwptAllocFlag.NEST_PARENT)
        assert rc == 0
        s2 = c.fd.objects[self.parent].domain.table
        gmem = GuestMemory(c.fd.host.bus, s2)
        galloc = PageAllocator(gmem, 0x100_0000, 0x100_0000)
        self.pdt = ProcessDirectory(gmem, galloc, PdtpMode.PD17)
        self.table = PageTable(gmem, galloc, IosatpMode.SV39)
        self.pdt.write(5, ProcessContext.make(pscid=0x55, mode=IosatpMode.SV39,
                                              root=self.table.root))

    def nested(self, tc=None, fsc=None):
        tc = bits.pack(TC, v=1, pdtv=1, dpe=1) if tc is None else tc
        fsc = self.pdt.pdtp if fsc is None else fsc
        return hwpt_alloc(self.c.fd, self.c.dev, self.parent, data=HWPT_RISCV.pack(tc, 0, fsc))


def test_nested_guest_directory():
    g = GuestPdt()
    rc, hwpt = g.nested()
    assert rc == 0
    assert g.c.fd.attach(g.c.dev, hwpt) == 0
    dc = dc_words(g.c.fd)
    assert (dc.tc >> 5) & 1 and (dc.tc >> 9) & 1
    assert dc.fsc == g.pdt.pdtp                      # the guest's GPA, untranslated
    parent = g.c.fd.objects[g.parent].domain
    assert (dc.iohgatp >> 44) & 0xFFFF == parent.gscid
    # No PASID attach on top of a guest directory.
    before = snapshot(g.c.fd)
    assert g.c.fd.attach(g.c.dev, g.c.paging(), pasid=3) == -errno.EINVAL
    assert snapshot(g.c.fd)[1:] == before[1:]


@pytest.mark.parametrize("tc, fsc, code", [
    (bits.pack(TC, v=1, pdtv=1), 4 << 60, errno.EINVAL),            # reserved pdtp.MODE
    (bits.pack(TC, v=1, pdtv=1), 1 << 44, errno.EINVAL),            # pdtp[59:44]
    (bits.pack(TC, v=1, pdtv=1), 5, errno.EINVAL),                  # Bare with a PPN
    (bits.pack(TC, v=1, dpe=1), 0, errno.EINVAL),                   # DPE without PDTV
])
def test_nested_guest_directory_refusals(tc, fsc, code):
    g = GuestPdt()
    before = snapshot(g.c.fd)
    assert g.nested(tc, fsc)[0] == -code
    assert snapshot(g.c.fd) == before


def test_nested_pd_mode_not_offered():
    c = Ctx(Config.full().replace(pd_levels=1))
    ioas_map(c.fd, c.ioas, 1 << 20, 1 << 20)
    rc, parent = hwpt_alloc(c.fd, c.dev, c.ioas, HwptAllocFlag.NEST_PARENT)
    before = snapshot(c.fd)
    data = HWPT_RISCV.pack(bits.pack(TC, v=1, pdtv=1), 0, bits.pack(PDTP, mode=PdtpMode.PD17))
    assert hwpt_alloc(c.fd, c.dev, parent, data=data)[0] == -errno.EOPNOTSUPP
    assert snapshot(c.fd) == before


def invalidate(fd, hwpt, entries, entry_len=16):
    uptr = DATA + 0x1000
    fd.host.bus.mem_write(uptr, b"".join(e.ljust(entry_len, b"\0") for e in entries))
    arg = bytearray(HWPT_INVALIDATE.pack(32, hwpt, uptr, HwptInvalidateDataType.RISCV_IOGATE,
                                         entry_len, len(entries), 0))
    return fd.ioctl(Ioctl.HWPT_INVALIDATE, arg), HWPT_INVALIDATE.unpack(arg)[5]


def record(fd):
    sent = []
    submit = fd.host.invalidate
    fd.host.invalidate = lambda cmds: (sent.append(list(cmds)), submit(cmds))
    return sent


def test_guest_invalidations_keep_its_pscids_and_get_its_devices():
    g = GuestPdt()
    rc, hwpt = g.nested()
    assert g.c.fd.attach(g.c.dev, hwpt) == 0
    gscid = g.c.fd.objects[g.parent].domain.gscid
    sent = record(g.c.fd)
    guest = [commands.iotinval_vma(pscid=0x55, addr=0x7000),
             commands.iodir_inval_pdt(did=0x99, pid=5),          # guest's DID is replaced
             commands.iodir_inval_ddt()]                          # DV=0 becomes per device
    rc, done = invalidate(g.c.fd, hwpt, [commands.to_bytes(x) for x in guest])
    assert (rc, done) == (0, 3)
    assert sent == [[commands.iotinval_vma(pscid=0x55, gscid=gscid, addr=0x7000),
                     commands.iodir_inval_pdt(did=DEVICE, pid=5),
                     commands.iodir_inval_ddt(did=DEVICE)]]


@pytest.mark.parametrize("bad", [
    commands.iodir_inval_pdt(did=1, pid=5) & ~(1 << 33),            # DV=0
    commands.iodir_inval_pdt(did=1, pid=5) | 1 << 32,               # reserved bit 32
    commands.iotinval_gvma(gscid=1),                                # not the guest's
    commands.iodir_inval_ddt() | 5 << 12,                           # PID on INVAL_DDT
])
def test_guest_invalidation_partial_failure(bad):
    g = GuestPdt()
    rc, hwpt = g.nested()
    assert g.c.fd.attach(g.c.dev, hwpt) == 0
    sent = record(g.c.fd)
    good = commands.iotinval_vma(pscid=0x55)
    rc, done = invalidate(g.c.fd, hwpt, [commands.to_bytes(good), commands.to_bytes(bad),
                                         commands.to_bytes(good)])
    assert rc in (-errno.EINVAL, -errno.EOPNOTSUPP) and done == 1
    # What came before the error is still sent (and fenced); nothing after it.
    gscid = g.c.fd.objects[g.parent].domain.gscid
    assert sent == [[commands.iotinval_vma(pscid=0x55, gscid=gscid)]]


def test_guest_pid_wider_than_the_iommu():
    c = Ctx(Config.full().replace(pd_levels=2))
    ioas_map(c.fd, c.ioas, 1 << 20, 4 << 20)
    rc, parent = hwpt_alloc(c.fd, c.dev, c.ioas, HwptAllocFlag.NEST_PARENT)
    data = HWPT_RISCV.pack(bits.pack(TC, v=1, pdtv=1), 0,
                           bits.pack(PDTP, mode=PdtpMode.PD17, ppn=0x100))
    rc, hwpt = hwpt_alloc(c.fd, c.dev, parent, data=data)
    assert rc == 0 and c.fd.attach(c.dev, hwpt) == 0
    sent = record(c.fd)
    rc, done = invalidate(c.fd, hwpt, [commands.to_bytes(commands.iodir_inval_pdt(
        did=0, pid=1 << 17))])
    assert (rc, done, sent) == (-errno.EINVAL, 0, [])


def test_out_of_memory_is_enomem_and_changes_nothing():
    c = Ctx()
    hwpt = c.paging()
    alloc = c.fd.host.driver.alloc
    hog = alloc.alloc(alloc.free_bytes)     # no page left for a process directory
    before = snapshot(c.fd)
    assert c.fd.attach(c.dev, hwpt, pasid=0x1_0000) == -errno.ENOMEM
    assert snapshot(c.fd) == before
    alloc.free(hog)
    assert c.fd.attach(c.dev, hwpt, pasid=0x1_0000) == 0
