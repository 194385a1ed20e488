"""The foundation workload: two translated devices and every way a request can fail.

Runs through the driver's own layers (``iogate.firmware.ddt``, ``iogate.firmware.pagetable``,
``iogate.firmware.mmio``) on any :class:`iogate.firmware.bus.Bus`. It needs no command queue: it
only turns invalid entries valid, which needs no invalidation (invalid entries are never
cached, spec "Caching invalid entries"), so it runs on the hardware slice that has no queues yet.

Devices (1LVL device directory, base-format device contexts):

========  ====================================================================
did       what
========  ====================================================================
0x05      Sv39, PSCID 1: a 64 KiB NAPOT buffer, scattered 4 KiB pages, a 2 MiB
          superpage, a read-only page and an execute-only page
0x2a      Sv39, PSCID 2: a 1 GiB superpage and read-only 4 KiB pages
0x10      bypass (fsc and iohgatp Bare): identity
0x11      blocked: DC.V=0 (cause 258)
0x33      Sv39 whose root table sits in memory that answers SLVERR (causes 1/5/7)
0x34      misconfigured: a reserved tc bit set (cause 259)
0x7f      never written: the all-zero DC has V=0 (cause 258)
0x80      beyond what 1LVL reaches (cause 260)
========  ====================================================================
"""

from dataclasses import dataclass, field

from iogate.hdl import bits
from iogate.hdl.formats import IOSATP, TA, TC, IosatpMode
from iogate.hdl.port import Access
from iogate.hdl.regs import DDTP, IommuMode, Offset

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.ddt import DeviceContext, DeviceDirectory
from iogate.firmware.mmio import Registers
from iogate.firmware.pagetable import PageTable

__all__ = ["Layout", "program", "set_mode", "random_requests", "ALLOC_BASE", "ALLOC_SIZE"]

#: Where the driver's tables live (system memory shared with the RTL and the model).
ALLOC_BASE = 0x8000_0000
ALLOC_SIZE = 32 << 20

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass
class Layout:
    """What was programmed: where DMA may go and where it must fault."""
    ddt_root: int = 0
    # (device_id, iova, size, allowed accesses)
    mapped: list = field(default_factory=list)
    # (device_id, iova, access, why)
    faulting: list = field(default_factory=list)
    # addresses that answer SLVERR
    poisoned: list = field(default_factory=list)
    devices: dict = field(default_factory=dict)


def _first_stage(bus, alloc, layout, did, pscid, description, maps):
    table = PageTable(bus, alloc, IosatpMode.SV39)
    for iova, pa, size, perm in maps:
        table.map(iova, pa, size, r="r" in perm, w="w" in perm, x="x" in perm)
        allowed = {Access.READ} if "r" in perm else set()
        allowed |= {Access.WRITE} if "w" in perm else set()
        allowed |= {Access.EXECUTE} if "x" in perm else set()
        layout.mapped.append((did, iova, size, frozenset(allowed)))
        # Sorted: set order follows string hashing, which changes from run to run.
        for access in sorted(set(Access) - allowed, key=lambda a: a.value):
            layout.faulting.append((did, iova + size // 2, access, f"no {access.name} permission"))
    dc = DeviceContext(tc=bits.pack(TC, v=1), ta=bits.pack(TA, pscid=pscid),
                       fsc=bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=table.root >> 12))
    layout.devices[did] = description
    return table, dc


def program(bus, memory):
    """Build the directory and tables of the foundation workload; ddtp stays as it is.

    ``memory`` is the shared :class:`iogate.cosim.model.memory.Memory`, used only to make one
    device's page table answer with bus errors.
    """
    alloc = PageAllocator(bus, ALLOC_BASE, ALLOC_SIZE)
    layout = Layout(ddt_root=alloc.alloc())
    ddt = DeviceDirectory(bus, alloc, IommuMode.LVL1, layout.ddt_root)

    _, dc = _first_stage(bus, alloc, layout, 0x05, 1, "Sv39: NAPOT, 4 KiB, 2 MiB, RO, XO", [
        (0x1000_0000, 0x2_0000_0000, 64 * KiB, "rw"),
        (0x1010_0000, 0x2_0040_3000, 4 * KiB, "rw"),
        (0x1010_2000, 0x2_0051_7000, 4 * KiB, "rw"),
        (0x1010_5000, 0x2_0007_1000, 4 * KiB, "rw"),
        (0x3fe0_0000, 0x3_0000_0000, 2 * MiB, "rw"),
        (0x5000_0000, 0x2_1000_0000, 4 * KiB, "r"),
        (0x5000_2000, 0x2_1000_2000, 4 * KiB, "x"),
    ])
    ddt.write(0x05, dc)
    _, dc = _first_stage(bus, alloc, layout, 0x2A, 2, "Sv39: 1 GiB, RO", [
        (0x1_0000_0000, 0x10_0000_0000, 1 * GiB, "rw"),
        (0x20_0000_0000, 0x2_2000_0000, 4 * KiB, "r"),
        (0x20_0001_0000, 0x2_2000_8000, 4 * KiB, "r"),
    ])
    ddt.write(0x2A, dc)
    # The same IOVAs on the other device are unmapped there.
    layout.faulting += [(0x2A, 0x1000_0000, Access.READ, "unmapped on this device"),
                        (0x05, 0x1_0000_0000, Access.WRITE, "unmapped on this device"),
                        (0x05, 0x7000_0000, Access.READ, "unmapped"),
                        (0x05, 0x40_0000_0000, Access.READ, "non-canonical Sv39 IOVA"),
                        (0x05, 0xFFFF_FFC0_0000_0000, Access.READ, "upper half, unmapped")]

    ddt.write(0x10, DeviceContext(tc=bits.pack(TC, v=1)))
    layout.devices[0x10] = "bypass"
    layout.mapped.append((0x10, 0x9000_0000, 64 * KiB, frozenset(Access)))

    ddt.write(0x11, DeviceContext(tc=0))
    layout.devices[0x11] = "blocked (V=0)"
    layout.faulting.append((0x11, 0x1000_0000, Access.READ, "DC.V=0"))

    table, dc = _first_stage(bus, alloc, layout, 0x33, 3, "Sv39 table in faulty memory",
                             [(0x1000_0000, 0x2_3000_0000, 4 * KiB, "rwx")])
    ddt.write(0x33, dc)
    del layout.mapped[-1]          # its table cannot be read: every access faults
    layout.poisoned.append(table.root)
    memory.inject_fault(table.root, 4 * KiB)
    layout.faulting += [(0x33, 0x1000_0000, a, "page table access fault") for a in Access]

    ddt.write(0x34, DeviceContext(tc=bits.pack(TC, v=1) | 1 << 12))
    layout.devices[0x34] = "misconfigured (reserved tc bit)"
    layout.faulting.append((0x34, 0x1000_0000, Access.READ, "reserved tc bit"))

    layout.devices[0x7F] = "never configured"
    layout.faulting.append((0x7F, 0x1000_0000, Access.WRITE, "all-zero DC"))
    layout.devices[0x80] = "beyond 1LVL"
    layout.faulting.append((0x80, 0x1000_0000, Access.READ, "device_id too wide"))
    return layout


def set_mode(bus, mode, root=0):
    """Write ``ddtp``: ``mode`` with the directory at ``root``.

    Spec "Device-directory-table pointer (ddtp)".
    """
    Registers(bus).write(Offset.DDTP, bits.pack(DDTP, iommu_mode=mode, ppn=root >> 12))


def random_requests(layout, rng, n, *, fault_ratio=0.25):
    """``n`` seeded requests: mostly DMA into mapped pages (so the IOTLB is exercised
    with repeats), the rest from ``layout.faulting``. Yields (device_id, iova, access)."""
    hot = [m for m in layout.mapped if m[3]]
    for _ in range(n):
        if rng.random() < fault_ratio:
            did, iova, access, _ = rng.choice(layout.faulting)
            yield did, iova + rng.randrange(0, 1 << 12, 8), access
        else:
            did, base, size, allowed = rng.choice(hot)
            # A few pages per mapping, so superpages and repeats both show up.
            pages = min(size >> 12, 4)
            iova = base + (rng.randrange(pages) << 12) + rng.randrange(0, 1 << 12, 8)
            yield did, iova, rng.choice(sorted(allowed, key=lambda a: a.value))
