"""Seeded random attach/detach sequences on (device, PASID) pairs through iommufd, with the
errno of each call computed from Linux's rules here (not from the front-end), and after every
call the device's DMA checked on the model, PASID by PASID.

Rules (see test_iommufd_pasid.py): PASID 1..max_pasids-1 else -EINVAL; a PASID takes only a
HWPT allocated with IOMMU_HWPT_ALLOC_PASID (-EINVAL); while PASIDs are attached the RID's
HWPT must have the flag too (-EINVAL); detaching what is not attached is 0. DMA (RISC-V IOMMU
spec "Process to translate an IOVA", reference N.1.6): a tagged request reaches its PASID's
domain or faults 266 (no PC); an untagged one reaches the RID's domain, faults 266 when the
RID is blocked under a directory, and 258 (DC.V=0) when blocked without one.
"""

import errno
import random

import pytest

from iogate.hdl import Config
from iogate.hdl.port import Access

from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.iommufd.ictx import Iommufd
from iogate.cosim.host.iommufd.uapi import HWPT_ALLOC, IOAS_ALLOC, IOAS_MAP, HwptAllocFlag, Ioctl

USER = 0x2_0000_0000
DEVICE = 12
IOVA = 0x40_0000


def alloc_hwpt(fd, dev, k, pasid_flag):
    arg = bytearray(IOAS_ALLOC.pack(12, 0, 0))
    assert fd.ioctl(Ioctl.IOAS_ALLOC, arg) == 0
    ioas = IOAS_ALLOC.unpack(arg)[2]
    # Each HWPT maps IOVA to its own page, so DMA tells them apart.
    flags = 1 | 2 | 4
    arg = bytearray(IOAS_MAP.pack(40, flags, ioas, 0, USER + k * 0x1000, 0x1000, IOVA))
    assert fd.ioctl(Ioctl.IOAS_MAP, arg) == 0
    arg = bytearray(HWPT_ALLOC.pack(48, HwptAllocFlag.PASID if pasid_flag else 0, dev, ioas,
                                    0, 0, 0, 0, 0, 0, 0))
    assert fd.ioctl(Ioctl.HWPT_ALLOC, arg) == 0
    return HWPT_ALLOC.unpack(arg)[4], USER + k * 0x1000


@pytest.mark.parametrize("pd_levels", [1, 3])
def test_random_pasid_attachments(pd_levels):
    seed = random.randrange(1 << 32)
    print("seed", seed)
    rng = random.Random(seed)
    fd = Iommufd(HostIommu.on_model(Config.full().replace(pd_levels=pd_levels)),
                 allow_unsafe_interrupts=True)
    model = fd.host.model
    dev = fd.bind(DEVICE)
    max_pasids = 1 << (8 if pd_levels == 1 else 20)
    hwpts = [alloc_hwpt(fd, dev, k, pasid_flag=k % 3 != 2) for k in range(6)]
    compat = {h: k % 3 != 2 for k, (h, _) in enumerate(hwpts)}
    page = dict(hwpts)
    pool = [1, 2, 0x7F, 0xFF] + ([0x100, 0x1_2345, 0xF_FFFF] if pd_levels == 3 else [])
    bad = [0, max_pasids, max_pasids + 5, -1]
    pasids, rid = {}, None

    for step in range(60):
        op = rng.choice(("attach", "attach", "detach", "rid", "rid_detach"))
        hwpt = rng.choice(hwpts)[0]
        pasid = rng.choice(pool + bad if rng.random() < 0.3 else pool)
        before = fd.state()
        if op == "attach":
            want = (-errno.EINVAL if not 0 < pasid < max_pasids or not compat[hwpt]
                    or (rid is not None and not compat[rid]) else 0)
            rc = fd.attach(dev, hwpt, pasid=pasid)
            if rc == 0:
                pasids[pasid] = hwpt
        elif op == "detach":
            want = -errno.EINVAL if not 0 < pasid < max_pasids else 0
            rc = fd.detach(dev, pasid=pasid)
            if rc == 0:
                pasids.pop(pasid, None)
        elif op == "rid":
            want = -errno.EINVAL if pasids and not compat[hwpt] else 0
            rc = fd.attach(dev, hwpt)
            if rc == 0:
                rid = hwpt
        else:
            want = 0
            rc = fd.detach(dev)
            rid = None
        assert rc == want, (step, op, hex(pasid), rc)
        if rc:
            assert fd.state() == before, (step, op)
        # The device's DMA, PASID by PASID, on the model.
        for p in pool:
            r = model.translate(DEVICE, IOVA, Access.READ, process_id=p, report=False)
            if p in pasids:
                assert not r.fault and r.pa == page[pasids[p]], (step, hex(p), r)
            else:
                assert r.fault and r.cause == 266 if pasids else r.fault, (step, hex(p), r)
        r = model.translate(DEVICE, IOVA, Access.READ, report=False)
        if rid is not None:
            assert not r.fault and r.pa == page[rid], (step, "rid", r)
        else:
            assert r.fault and r.cause == (266 if pasids else 258), (step, "rid", r)
    assert fd.unbind(dev) == 0
