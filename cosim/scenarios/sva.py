"""``iogate run sva``: shared virtual addressing, a user process's page table used by a device
under one PASID.

RISC-V IOMMU spec "Process-Directory-Table (PDT)", "Process to translate an IOVA" (steps 7-16:
the PASID picks a process context, its ``fsc`` is the process's own first-stage table, its
PSCID tags the IOTLB) and "Guidelines for invalidations" ("Changing first-stage page table
entry"). The process's table is the one its CPU would walk (Sv48, U=1 leaves): the device
reaches the process's buffers at the process's virtual addresses. When the process unmaps a
page, the PTE is cleared in memory first and the host sends ``IOTINVAL.VMA`` (PSCV=1 with the
PC's PSCID, AV=1) and ``IOFENCE.C``. Between the two, a DMA may still get the old page or
already the fault (both are in the model's ``allowed`` set, which the scoreboard checks
every answer against); after the fence only the fault.

The script runs on any ``iogate host`` target (``Host`` of :mod:`iogate.cosim.client.host`)
whose Config has process contexts (``--config process``); every ``host.dma`` is checked
against the architectural model by the host's scoreboard, and the checks here are computed
from the process's own mappings, not from any target's answer.
"""

from iogate.hdl.formats import Cause, IosatpMode
from iogate.hdl.port import Access

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu

__all__ = ["sva", "DEVICE", "PASID"]

#: The device and its process's PASID (20 bits: the PD20 walk uses all three PDI fields).
DEVICE = 0x2A
PASID = 0x5_4321
#: The process's address-space tag: the PC's PSCID.
PSCID = 0x77
_PAGE = 4096
_VA = 0x7F12_3450_0000         # a user-half address of the process's mmap area


class ScenarioFailed(AssertionError):
    """DMA did not get what the process's mappings say it must."""


class _Dma:
    def __init__(self, host):
        self.host = host
        self.checked = 0
        self.faults = 0

    def reaches(self, iova, pa, access=Access.READ, **kw):
        r = self.host.dma(DEVICE, iova, access, **kw)
        self.checked += 1
        if r.fault or r.pa != pa:
            raise ScenarioFailed(f"{access.name.lower()} at {iova:#x} {kw}: expected {pa:#x}, "
                                 f"got {r}")

    def faults_with(self, iova, cause, access=Access.READ, **kw):
        r = self.host.dma(DEVICE, iova, access, **kw)
        self.checked += 1
        self.faults += 1
        if not r.fault or r.cause != cause:
            raise ScenarioFailed(f"{access.name.lower()} at {iova:#x} {kw}: expected fault "
                                 f"{Cause(cause).name}, got {r}")

    def old_or_fault(self, iova, pa, cause, **kw):
        # Between a PTE change and its invalidation's fence the spec allows both.
        r = self.host.dma(DEVICE, iova, Access.READ, **kw)
        self.checked += 1
        if r.fault:
            self.faults += 1
        if not (r.pa == pa and not r.fault) and not (r.fault and r.cause == cause):
            raise ScenarioFailed(f"read at {iova:#x} before the fence: expected {pa:#x} or "
                                 f"fault {Cause(cause).name}, got {r}")
        return "fault" if r.fault else "old"


def driver_on(host, size=16 << 20):
    """A driver over ``host``'s bus with ``size`` bytes of the host's RAM for its tables."""
    base = host.alloc.alloc(size)
    io = Iommu(host.bus, PageAllocator(host.bus, base, size))
    io.init(device_id_bits=16)
    return io


def sva(host):
    """The SVA scenario on ``host``; returns its report.

    Raises
    ------
    ScenarioFailed
        Where DMA does not get what the process's page table says.
    iogate.firmware.errors.UnsupportedError
        If the iogate has no process contexts (run it with ``--config process``).
    """
    io = driver_on(host)
    pdt = io.process_directory()                # the widest mode offered: PASID fits
    mm = io.page_table(IosatpMode.SV48 if io.capabilities["sv48"] else IosatpMode.SV39)
    buf = host.alloc.alloc(4 * _PAGE)
    # The process's own mappings (its CPU page table): new entries need no invalidation.
    mm.map(_VA, buf, 4 * _PAGE, r=True, w=True)
    io.set_process_directory(DEVICE, pdt, dpe=False)
    io.attach_process(DEVICE, PASID, mm, pscid=PSCID, ens=True, sum=False)
    dma = _Dma(host)

    for off in (0, 0x1008, 0x3FF8):
        dma.reaches(_VA + off, buf + off, pasid=PASID)
        dma.reaches(_VA + off, buf + off, Access.WRITE, pasid=PASID)
    # Untagged DMA with DPE=0: the first stage is Bare (reference N.1.6), IOVA = PA.
    dma.reaches(buf + 0x10, buf + 0x10)
    # A supervisor request reaches U=1 pages only with SUM (N.1.6): the PC has SUM=0.
    dma.faults_with(_VA, Cause.READ_PAGE_FAULT, pasid=PASID, priv=True)
    io.attach_process(DEVICE, PASID, mm, pscid=PSCID, ens=True, sum=True)
    dma.reaches(_VA + 0x20, buf + 0x20, pasid=PASID, priv=True)
    # A PASID with no process context: 266.
    dma.faults_with(_VA, Cause.PDT_ENTRY_NOT_VALID, pasid=PASID ^ 1)

    # The process unmaps its second page: the PTE is cleared (munmap), then the host's
    # mmu notifier sends the invalidation and the fence.
    dma.reaches(_VA + _PAGE, buf + _PAGE, pasid=PASID)           # warm the IOTLB
    changes = mm.unmap(_VA + _PAGE, _PAGE)
    # The checking model walks the new table (a fault); a target answering from its IOTLB
    # writes no record: the model records this fault only if the target faulted too.
    scoreboard = getattr(host, "scoreboard", None)
    if scoreboard is not None:
        scoreboard.defer_reports = True
    before = dma.old_or_fault(_VA + _PAGE + 8, buf + _PAGE + 8, Cause.READ_PAGE_FAULT,
                              pasid=PASID)
    if scoreboard is not None:
        scoreboard.defer_reports = False
    io.sync(mm, changes, pscid=PSCID)
    dma.faults_with(_VA + _PAGE + 8, Cause.READ_PAGE_FAULT, pasid=PASID)
    dma.faults_with(_VA + _PAGE, Cause.WRITE_PAGE_FAULT, Access.WRITE, pasid=PASID)
    dma.reaches(_VA + 2 * _PAGE, buf + 2 * _PAGE, pasid=PASID)   # its neighbours stay

    # A second function of the device with DPE=1: its untagged DMA is process 0's
    # (spec "Device-context fields", DPE), here the same process's table.
    pdt2 = io.process_directory()
    io.set_process_directory(DEVICE + 1, pdt2, dpe=True)
    io.attach_process(DEVICE + 1, 0, mm, pscid=PSCID)
    r = host.dma(DEVICE + 1, _VA + 3 * _PAGE + 0x40, Access.WRITE)
    dma.checked += 1
    if r.fault or r.pa != buf + 3 * _PAGE + 0x40:
        raise ScenarioFailed(f"untagged write under DPE: expected {buf + 3 * _PAGE + 0x40:#x}, "
                             f"got {r}")
    io.detach_process(DEVICE + 1, 0)
    r = host.dma(DEVICE + 1, _VA, Access.READ)
    dma.checked += 1
    dma.faults += 1
    if not r.fault or r.cause != Cause.PDT_ENTRY_NOT_VALID:
        raise ScenarioFailed(f"untagged read with PC 0 gone: expected fault 266, got {r}")

    # The process exits: its PC goes (INVAL_PDT + IOTINVAL.VMA), its PASID then faults.
    io.detach_process(DEVICE, PASID)
    dma.faults_with(_VA, Cause.PDT_ENTRY_NOT_VALID, pasid=PASID)
    records = len(io.drain_faults().records)
    if records != dma.faults:
        raise ScenarioFailed(f"{records} fault records for {dma.faults} faults")
    return {"pdt_mode": pdt.mode.name, "pasid": hex(PASID), "pscid": hex(PSCID),
            "first_stage": mm.mode.name, "before_fence": before, "dma_checked": dma.checked,
            "fault_records": records}
