"""iommufd I/O page faults: IOMMU_FAULT_QUEUE_ALLOC, IOMMU_HWPT_FAULT_ID_VALID, the fault fd.

Expected values from include/uapi/linux/iommufd.h and drivers/iommu/iommufd/eventq.c, by
hand: struct iommu_fault_alloc is 16 bytes; a read() record, struct iommu_hwpt_pgfault, is
40 bytes (flags, dev_id, pasid, grpid, perm, __reserved, addr, length, cookie; flags
PASID_VALID = 1, LAST_PAGE = 2; perm READ 1, WRITE 2, EXEC 4, PRIV 8); a response,
struct iommu_hwpt_page_response, is 8 (cookie, code; SUCCESS 0, INVALID 1). Bad sizes are
-ESPIPE, bad codes and cookies -EINVAL. The response leaves as an ATS.PRGR (reference N.6.4):
RID = device_id[15:0], PAYLOAD = PRG index << 32 | response code << 44 (Success 0, Invalid
Request 1), PV/PID when DC.tc.PRPR and the request had a PASID.
"""

import errno
import struct

import pytest

from iogate.hdl import Config

from iogate.firmware import ats
from iogate.firmware.pq import PageRequest

from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.iommufd.fault import FaultGroup
from iogate.cosim.host.iommufd.ictx import Iommufd
from iogate.cosim.host.iommufd.uapi import (
    DESTROY,
    FAULT_ALLOC,
    HWPT_ALLOC,
    IOAS_ALLOC,
    HwptAllocFlag,
    Ioctl,
)

DEVICE = 0x0A
ATS_CONFIG = Config.full().replace(ats=True)
PGFAULT = struct.Struct("<IIIIIIQII")


def ioctl(fd, op, layout, *fields):
    arg = bytearray(layout.pack(*fields))
    return fd.ioctl(op, arg), layout.unpack(arg)


def fault_alloc(fd, flags=0, size=16):
    rc, out = ioctl(fd, Ioctl.FAULT_QUEUE_ALLOC, FAULT_ALLOC, size, flags, 0, 0)
    return rc, out[2], out[3]


def hwpt_alloc(fd, dev, pt, flags=0, fault_id=0):
    rc, out = ioctl(fd, Ioctl.HWPT_ALLOC, HWPT_ALLOC, 48, flags, dev, pt, 0, 0, 0, 0, 0,
                    fault_id, 0)
    return rc, out[4]


def destroy(fd, obj_id):
    return ioctl(fd, Ioctl.DESTROY, DESTROY, 8, obj_id)[0]


class World:
    """A context on an ATS-capable model: a bound device, an IOAS, a fault object and a
    paging HWPT that sends its faults there, attached."""

    def __init__(self, config=ATS_CONFIG, attach=True):
        self.host = HostIommu.on_model(config)
        self.fd = fd = Iommufd(self.host, allow_unsafe_interrupts=True)
        self.dev = fd.bind(DEVICE)
        rc, out = ioctl(fd, Ioctl.IOAS_ALLOC, IOAS_ALLOC, 12, 0, 0)
        self.ioas = out[2]
        rc, self.fault, self.ffd = fault_alloc(fd)
        assert rc == 0
        rc, self.hwpt = hwpt_alloc(fd, self.dev, self.ioas, HwptAllocFlag.FAULT_ID_VALID,
                                   self.fault)
        assert rc == 0
        if attach:
            assert fd.attach(self.dev, self.hwpt) == 0

    def request(self, page, prg_index=5, last=True, r=True, w=False, pasid=None,
                device_id=DEVICE, exec_=False, priv=False):
        self.fd.page_request(PageRequest(device_id=device_id, pasid=pasid, priv=priv,
                                         exec=exec_, r=r, w=w, last=last,
                                         prg_index=prg_index, page=page))

    @property
    def prgrs(self):
        """The ATS.PRGR messages the model sent: (rid, pv, pid, prg index, code)."""
        return [(m["rid"], m["pv"], m["pid"], m["payload"] >> 32 & 0x1FF,
                 m["payload"] >> 44 & 0xF)
                for m in self.host.model.command_queue.sent if m["kind"] == 1]


def records(raw):
    return [PGFAULT.unpack_from(raw, i) for i in range(0, len(raw), PGFAULT.size)]


def response(cookie, code=0):
    return struct.pack("<II", cookie, code)


# -- IOMMU_FAULT_QUEUE_ALLOC and FAULT_ID_VALID ----------------------------------------------

def test_fault_queue_alloc():
    fd = Iommufd(HostIommu.on_model(ATS_CONFIG), allow_unsafe_interrupts=True)
    rc, first, ffd = fault_alloc(fd)
    assert rc == 0 and fd.objects[first].kind == "fault" and ffd == 3
    rc, second, ffd2 = fault_alloc(fd)
    assert rc == 0 and second != first and ffd2 == 4
    before = fd.state()
    assert fault_alloc(fd, flags=1)[0] == -errno.EOPNOTSUPP          # flags must be 0
    assert fault_alloc(fd, size=15)[0] == -errno.EINVAL              # below offsetofend
    assert fd.state() == before and sorted(fd.fds) == [3, 4]


def test_hwpt_alloc_fault_id_checks():
    w = World(attach=False)
    before = w.fd.state()
    for bad in (0, 999, w.ioas, w.hwpt):                             # not a fault object
        assert hwpt_alloc(w.fd, w.dev, w.ioas, HwptAllocFlag.FAULT_ID_VALID, bad)[0] == \
            -errno.ENOENT
    assert w.fd.state() == before
    assert w.fd.objects[w.hwpt].fault is w.fd.objects[w.fault]
    # Without the flag fault_id is ignored.
    rc, plain = hwpt_alloc(w.fd, w.dev, w.ioas, 0, 999)
    assert rc == 0 and w.fd.objects[plain].fault is None


def test_fault_object_busy_while_used_or_open():
    w = World(attach=False)
    assert destroy(w.fd, w.fault) == -errno.EBUSY                    # the HWPT uses it
    assert destroy(w.fd, w.hwpt) == 0
    assert destroy(w.fd, w.fault) == -errno.EBUSY                    # its fd is open
    assert w.fd.close(w.ffd) == 0 and w.fd.close(w.ffd) == -errno.EBADF
    assert destroy(w.fd, w.fault) == 0 and w.fault not in w.fd.objects


def test_attach_needs_pri():
    w = World(config=Config.full(), attach=False)                   # capabilities.ATS=0
    before = w.fd.state()
    assert w.fd.attach(w.dev, w.hwpt) == -errno.ENODEV
    assert w.fd.state() == before


# -- read(): whole groups, cookies, records ---------------------------------------------------

def test_group_read_whole_with_last_page_and_cookie():
    w = World()
    w.request(0x100, last=False)
    w.request(0x101, last=False, w=True, r=False)
    assert w.fd.read(w.ffd, 400) == b""                              # not complete yet
    w.request(0x102)
    raw = w.fd.read(w.ffd, 400)
    assert records(raw) == [
        (0, w.dev, 0, 5, 1, 0, 0x100_000, 0, 1),
        (0, w.dev, 0, 5, 2, 0, 0x101_000, 0, 1),
        (2, w.dev, 0, 5, 1, 0, 0x102_000, 0, 1),
    ]
    assert w.prgrs == []                                             # user space answers


def test_pasid_exec_priv_in_the_record():
    # Every field at its widest, on a group put in the queue by hand.
    w = World()
    obj = w.fd.objects[w.fault]
    req = PageRequest(device_id=DEVICE, pasid=0x77, priv=True, exec=True, r=True, w=True,
                      last=True, prg_index=0x1FF, page=0xF_FFFF_FFFF_FFFF)
    obj.add(FaultGroup(w.dev, (req,), lambda code: None))
    assert records(w.fd.read(w.ffd, 40)) == [
        (1 | 2, w.dev, 0x77, 0x1FF, 1 | 2 | 4 | 8, 0, 0xFFFF_FFFF_FFFF_F000, 0, 1)]


def test_read_size_rules():
    w = World()
    w.request(0x10, prg_index=1, last=False)
    w.request(0x11, prg_index=1)
    w.request(0x20, prg_index=2)
    before = w.fd.state()
    assert w.fd.read(w.ffd, 41) == -errno.ESPIPE
    assert w.fd.read(w.ffd, 40) == b""                               # group 1 is 80 bytes
    assert w.fd.read(99, 40) == -errno.EBADF
    assert w.fd.state() == before
    assert [r[3] for r in records(w.fd.read(w.ffd, 120))] == [1, 1, 2]


def test_cookies_lowest_free_from_one():
    w = World()
    for prg in (1, 2):
        w.request(0x10 + prg, prg_index=prg)
    assert [r[8] for r in records(w.fd.read(w.ffd, 80))] == [1, 2]
    assert w.fd.write(w.ffd, response(1)) == 8
    w.request(0x13, prg_index=3)
    assert [r[8] for r in records(w.fd.read(w.ffd, 40))] == [1]


# -- write(): responses become ATS.PRGR -----------------------------------------------------

def test_response_becomes_prgr():
    w = World()
    w.request(0x100, prg_index=5)
    w.request(0x200, prg_index=6)
    w.fd.read(w.ffd, 80)
    assert w.fd.write(w.ffd, response(1, 0) + response(2, 1)) == 16
    assert w.prgrs == [(DEVICE, 0, 0, 5, 0x0), (DEVICE, 0, 0, 6, 0x1)]
    assert w.fd.write(w.ffd, response(1)) == -errno.EINVAL          # answered already


def test_write_rules_and_partial_batches():
    w = World()
    w.request(0x100, prg_index=5)
    w.request(0x200, prg_index=6)
    w.fd.read(w.ffd, 80)
    before = w.fd.state()
    assert w.fd.write(w.ffd, response(1)[:7]) == -errno.ESPIPE
    assert w.fd.write(w.ffd, response(1, 2)) == -errno.EINVAL       # Response Failure
    assert w.fd.write(w.ffd, response(1, 0xFFFF_FFFF)) == -errno.EINVAL
    assert w.fd.write(w.ffd, response(3)) == -errno.EINVAL          # unknown cookie
    assert w.fd.write(w.ffd, response(0)) == -errno.EINVAL
    assert w.fd.write(99, response(1)) == -errno.EBADF
    assert w.fd.state() == before and w.prgrs == []
    # Up to the first bad one: the bytes taken.
    assert w.fd.write(w.ffd, response(2) + response(7)) == 8
    assert w.prgrs == [(DEVICE, 0, 0, 6, 0)]
    assert sorted(w.fd.objects[w.fault].response) == [1]


def test_prpr_puts_the_pasid_in_the_response():
    w = World()
    ats.enable(w.host.driver, DEVICE, pri=True, prpr=True)
    obj = w.fd.objects[w.fault]
    # A PASID request to a device with no PASID attached and a paging RID HWPT has no
    # handler: answered Invalid Request at once, with the PASID (PRPR=1).
    w.request(0x100, prg_index=9, pasid=0x33)
    assert w.prgrs == [(DEVICE, 1, 0x33, 9, 0x1)] and not obj.deliver


def test_pasid_attachment_takes_its_requests():
    w = World(config=Config.process().replace(ats=True), attach=False)
    rc, hwpt = hwpt_alloc(w.fd, w.dev, w.ioas,
                          HwptAllocFlag.PASID | HwptAllocFlag.FAULT_ID_VALID, w.fault)
    assert rc == 0 and w.fd.attach(w.dev, hwpt, pasid=4) == 0
    w.request(0x100, prg_index=2, pasid=4)
    w.request(0x200, prg_index=3, pasid=5)                          # not attached: Invalid
    w.request(0x300, prg_index=4)                                   # no RID HWPT: Invalid
    assert records(w.fd.read(w.ffd, 80)) == [(1 | 2, w.dev, 4, 2, 1, 0, 0x100_000, 0, 1)]
    assert w.prgrs == [(DEVICE, 0, 0, 3, 1), (DEVICE, 0, 0, 4, 1)]
    # Detaching the PASID answers its group.
    assert w.fd.detach(w.dev, pasid=4) == 0
    assert w.prgrs[-1] == (DEVICE, 0, 0, 2, 1)


# -- groups nobody takes, detach, overflow --------------------------------------------------

def test_no_fault_hwpt_or_unbound_device_answered_invalid():
    w = World(attach=False)
    rc, plain = hwpt_alloc(w.fd, w.dev, w.ioas)
    assert w.fd.attach(w.dev, plain) == 0
    w.request(0x100, prg_index=3)
    w.request(0x100, prg_index=4, device_id=0x0B)                   # not bound here
    assert w.prgrs == [(DEVICE, 0, 0, 3, 1), (0x0B, 0, 0, 4, 1)]
    assert w.fd.read(w.ffd, 40) == b""


def test_detach_answers_the_devices_groups_invalid():
    w = World()
    w.request(0x100, prg_index=1)
    w.fd.read(w.ffd, 40)                                             # read, not answered
    w.request(0x200, prg_index=2)                                    # queued, not read
    assert w.fd.detach(w.dev) == 0
    assert w.prgrs == [(DEVICE, 0, 0, 2, 1), (DEVICE, 0, 0, 1, 1)]
    assert w.fd.read(w.ffd, 40) == b""
    assert w.fd.write(w.ffd, response(1)) == -errno.EINVAL


def test_discard_partial_after_overflow():
    w = World()
    w.request(0x100, prg_index=1, last=False)
    w.fd.discard_partial()
    w.request(0x101, prg_index=1)
    assert [r[6] for r in records(w.fd.read(w.ffd, 80))] == [0x101_000]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_groups_answered_once_each(seed):
    import random
    rng = random.Random(seed)
    print("seed", seed)
    w = World()
    expected = []
    for prg in range(12):
        pages = rng.randint(1, 4)
        for i in range(pages):
            w.request(0x1000 * prg + i, prg_index=prg, last=i == pages - 1)
        expected.append((prg, pages))
    got = records(w.fd.read(w.ffd, 40 * 48))
    groups = {}
    for rec in got:
        groups.setdefault(rec[8], []).append(rec)
    assert [(g[0][3], len(g)) for _, g in sorted(groups.items())] == expected
    codes = {cookie: rng.randint(0, 1) for cookie in groups}
    order = list(codes)
    rng.shuffle(order)
    assert w.fd.write(w.ffd, b"".join(response(c, codes[c]) for c in order)) == 8 * 12
    assert sorted(w.prgrs) == sorted((DEVICE, 0, 0, groups[c][0][3], codes[c])
                                     for c in order)
