"""``iogate run vsva``: seed 004's virtual SVA, a guest that owns its process directory and page
tables behind the host's second stage.

The mailing-list thread ``shared/seeds/004_56d498369c891893.txt``: with nested translation
"guest owns the first-level/stage-1 translation structures, the host IOMMU driver has no
knowledge of first-level/stage-1 structure cache updates unless the guest invalidation
requests are trapped and propagated to the host". Here through iommufd
(:mod:`iogate.cosim.host.iommufd`): the VMM maps guest RAM into an IOAS, allocates a nest
parent (the second stage, ``iohgatp``), and a nested HWPT carrying the guest's ``tc.PDTV=1``
and ``pdtp`` (a guest physical address: RISC-V IOMMU spec "Device-context fields"; the GET_PC
walk goes through the second stage, "Process to locate the Process-context"). The guest
builds its PDT, PCs (its own PSCIDs) and Sv39/Sv48 tables in its RAM. It then remaps a page
of its process: the guest PTE now points at another guest page. Until the guest's
``IOTINVAL.VMA`` (its PSCID, that address) reaches the IOMMU through ``IOMMU_HWPT_INVALIDATE``
the device may get the old page or the new one (the model's ``allowed`` set); after it,
only the new one. Retiring a PC goes the same way with ``IODIR.INVAL_PDT``, and unlinking
a guest PDT page (a non-leaf PDTE) with ``IODIR.INVAL_DDT``, which the host sends for the
guest's device.

Runs on any ``iogate host`` target with process contexts and a second stage
(``--config process``); every DMA is checked against the model by the host's scoreboard.
"""

from iogate.hdl import bits
from iogate.hdl.formats import TC, Cause, IosatpMode
from iogate.hdl.port import Access

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
from iogate.cosim.scenarios.sva import ScenarioFailed, driver_on

__all__ = ["vsva", "DEVICE", "PASID"]

DEVICE = 0x33
#: The guest process's PASID and PSCID (the guest chooses both).
PASID = 0x1_0203
GUEST_PSCID = 0x45
_PAGE = 4096
_GUEST_RAM = 8 << 20           # guest physical [0, 8 MiB)
_GVA = 0x4000_1000             # the guest process's buffer


class _Vmm:
    """The VMM's side: iommufd calls with their structs in the VMM's memory."""

    def __init__(self, fd, scratch):
        self.fd = fd
        self.scratch = scratch

    def ioctl(self, request, layout, *fields):
        arg = bytearray(layout.pack(*fields))
        rc = self.fd.ioctl(request, arg)
        if rc:
            raise ScenarioFailed(f"{Ioctl(request).name} failed: {rc}")
        return layout.unpack(arg)

    def put(self, data):
        self.fd.host.bus.mem_write(self.scratch, data)
        return self.scratch


def vsva(host):
    """The vSVA scenario on ``host``; returns its report."""
    io = driver_on(host)
    # The VMM's process memory: guest RAM and the ioctl scratch space, in the host's RAM.
    user = host.alloc.alloc(_GUEST_RAM + (1 << 20))
    fd = Iommufd(HostIommu(io), user_memory=((user, user + _GUEST_RAM + (1 << 20) - 1),),
                 allow_unsafe_interrupts=True)
    vmm = _Vmm(fd, user + _GUEST_RAM)
    dev = fd.bind(DEVICE)
    if dev < 0:
        raise ScenarioFailed(f"bind failed: {dev}")
    ioas = vmm.ioctl(Ioctl.IOAS_ALLOC, IOAS_ALLOC, 12, 0, 0)[2]
    rw = IoasMapFlag.READABLE | IoasMapFlag.WRITEABLE | IoasMapFlag.FIXED_IOVA
    vmm.ioctl(Ioctl.IOAS_MAP, IOAS_MAP, 40, rw, ioas, 0, user, _GUEST_RAM, 0)
    parent = vmm.ioctl(Ioctl.HWPT_ALLOC, HWPT_ALLOC, 48, HwptAllocFlag.NEST_PARENT, dev, ioas,
                       0, 0, 0, 0, 0, 0, 0)[4]

    # The guest: its RAM seen through the second stage, its own allocator, PDT and table.
    gmem = GuestMemory(host.bus, fd.objects[parent].domain.table)
    galloc = PageAllocator(gmem, 0x10_0000, 0x40_0000)
    pdt = ProcessDirectory(gmem, galloc, io.pdt_mode())
    mode = IosatpMode.SV48 if io.capabilities["sv48"] else IosatpMode.SV39
    mm = PageTable(gmem, galloc, mode)
    old_gpa, new_gpa = 0x60_0000, 0x70_0000
    mm.map(_GVA, old_gpa, _PAGE, r=True, w=True)
    mm.map(_GVA + _PAGE, old_gpa + _PAGE, _PAGE, r=True, w=True)
    pdt.write(PASID, ProcessContext.make(pscid=GUEST_PSCID, mode=mode, root=mm.root))

    data = HWPT_RISCV.pack(bits.pack(TC, v=1, pdtv=1), 0, pdt.pdtp)
    nested = vmm.ioctl(Ioctl.HWPT_ALLOC, HWPT_ALLOC, 48, 0, dev, parent, 0, 0,
                       HwptDataType.RISCV_IOGATE, len(data), vmm.put(data), 0, 0)[4]
    if fd.attach(dev, nested):
        raise ScenarioFailed("attach of the nested HWPT failed")

    checked = 0

    def dma(iova, access=Access.READ):
        nonlocal checked
        checked += 1
        return host.dma(DEVICE, iova, access, pasid=PASID)

    def expect(iova, pa, access=Access.READ):
        r = dma(iova, access)
        if r.fault or r.pa != pa:
            raise ScenarioFailed(f"{access.name.lower()} at {iova:#x}: expected {pa:#x}, "
                                 f"got {r}")

    def invalidate(*cmds):
        raw = b"".join(commands.to_bytes(c) for c in cmds)
        vmm.ioctl(Ioctl.HWPT_INVALIDATE, HWPT_INVALIDATE, 32, nested, vmm.put(raw),
                  HwptInvalidateDataType.RISCV_IOGATE, 16, len(cmds), 0)

    # GPA -> SPA is the IOAS mapping: guest physical g is user + g.
    expect(_GVA + 0x18, user + old_gpa + 0x18)
    expect(_GVA + 0x20, user + old_gpa + 0x20, Access.WRITE)
    # The guest remaps its page (its PTE, in guest memory), and has not invalidated yet.
    mm.map(_GVA, new_gpa, _PAGE, r=True, w=True)
    r = dma(_GVA + 0x18)
    seen_before = ("old" if r.pa == user + old_gpa + 0x18 else
                   "new" if r.pa == user + new_gpa + 0x18 else None)
    if r.fault or seen_before is None:
        raise ScenarioFailed(f"before the forwarded invalidation: got {r}")
    # The guest's IOTINVAL.VMA (its PSCID, that page), forwarded by the VMM.
    invalidate(commands.iotinval_vma(pscid=GUEST_PSCID, addr=_GVA))
    expect(_GVA + 0x18, user + new_gpa + 0x18)
    expect(_GVA + _PAGE, user + old_gpa + _PAGE)        # the other page is untouched

    # The guest retires the process's PC (V=0) and tells the host: INVAL_PDT, then VMA.
    pdt.write(PASID, ProcessContext(), words=("ta", "fsc"))
    invalidate(commands.iodir_inval_pdt(did=0, pid=PASID),
               commands.iotinval_vma(pscid=GUEST_PSCID))
    r = dma(_GVA)
    if not r.fault or r.cause != Cause.PDT_ENTRY_NOT_VALID:
        raise ScenarioFailed(f"after the PC was retired: expected fault 266, got {r}")
    # A second process in a new leaf page of the guest's PDT (a PDTE made valid: no
    # invalidation), then retired with its leaf page unlinked: a non-leaf PDTE change, which
    # the guest announces with IODIR.INVAL_PDT and IODIR.INVAL_DDT.
    second = PASID + 0x300                          # another PDI[1]
    pdt.write(second, ProcessContext.make(pscid=GUEST_PSCID + 1, mode=mode, root=mm.root))
    r = host.dma(DEVICE, _GVA + _PAGE, Access.READ, pasid=second)
    checked += 1
    if r.fault or r.pa != user + old_gpa + _PAGE:
        raise ScenarioFailed(f"the second process: expected {user + old_gpa + _PAGE:#x}, "
                             f"got {r}")
    pdt.write(second, ProcessContext(), words=("ta", "fsc"))
    unlinked = pdt.prune(second)
    invalidate(commands.iodir_inval_pdt(did=0, pid=second),
               commands.iotinval_vma(pscid=GUEST_PSCID + 1),
               commands.iodir_inval_ddt())
    for page in unlinked:
        galloc.free(page)
    r = host.dma(DEVICE, _GVA + _PAGE, Access.READ, pasid=second)
    checked += 1
    if not r.fault or r.cause != Cause.PDT_ENTRY_NOT_VALID:
        raise ScenarioFailed(f"after the PDTE was cleared: expected fault 266, got {r}")
    fd.unbind(dev)
    return {"pdt_mode": pdt.mode.name, "pasid": hex(PASID), "guest_pscid": hex(GUEST_PSCID),
            "first_stage": mode.name, "second_stage": fd.host.stage2_mode.name,
            "before_invalidation": seen_before, "dma_checked": checked}

