"""A random world for the regression: device contexts, page tables, broken entries, bus errors.

Everything comes from one ``random.Random``, so a seed is a complete description of a run.
Tables are built with the driver (``firmware``) and then damaged on purpose: random bit
patterns in leaf and non-leaf PTEs (reserved bits, W without R, misaligned superpages, bad
NAPOT runs, PBMT), random device contexts (reserved bits, unsupported modes), and bus errors
on random table pages. The model says what each of those must do; the RTL must agree.
"""

from dataclasses import dataclass, field

from hdl import bits
from hdl.formats import IOSATP, PTE, TA, TC, IosatpMode
from hdl.port import Access
from firmware.alloc import PageAllocator
from firmware.ddt import DeviceContext
from firmware.driver import Iommu

__all__ = ["World", "build_world", "random_requests"]

ALLOC_BASE = 0x8000_0000
ALLOC_SIZE = 64 << 20
_SV39_LEVELS = 3


@dataclass
class World:
    driver: Iommu
    devices: dict = field(default_factory=dict)      # did -> kind
    tables: dict = field(default_factory=dict)       # did -> (PageTable, pscid), sv39 only
    ranges: list = field(default_factory=list)       # (did, iova, size)
    table_pages: list = field(default_factory=list)  # (did, address) of every table page
    damaged: list = field(default_factory=list)      # what was broken, for the report


def _sv39_pte_addresses(bus, root, iova):
    """Addresses of the PTEs a walk of ``iova`` reads, root first (Privileged spec 12.3.2)."""
    out, table = [], root
    for level in range(_SV39_LEVELS - 1, -1, -1):
        address = table + ((iova >> (12 + 9 * level)) & 0x1FF) * 8
        out.append(address)
        pte = int.from_bytes(bus.mem_read(address, 8), "little")
        if not pte & 1 or pte & 0b1010:
            break
        table = bits.get(PTE, pte, "ppn") << 12
    return out


def _random_pte(rng, old):
    """A PTE worth trying: the old one with a few bits flipped, or pure noise."""
    if rng.random() < 0.3:
        return rng.getrandbits(64)
    for _ in range(rng.randint(1, 3)):
        old ^= 1 << rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 13, 54, 58, 60, 61, 62, 63])
    return old


def _random_dc(rng, table_root, pscid):
    tc = bits.pack(TC, v=1)
    fsc = bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=table_root >> 12)
    ta = bits.pack(TA, pscid=pscid)
    words = [tc, 0, ta, fsc]
    i = rng.randrange(4)
    words[i] ^= 1 << rng.randrange(64)
    return DeviceContext(*words)


def build_world(rng, bus, memory, *, devices=12, mappings=6, damage=0.15, faults=0.05):
    """Bring the IOMMU up with the driver (spec init sequence, 1LVL) and program a random
    world. Damage is done before any translation, so nothing of it can be cached yet."""
    alloc = PageAllocator(bus, ALLOC_BASE, ALLOC_SIZE)
    drv = Iommu(bus, alloc, cq_entries=rng.choice([4, 16, 64]), fq_entries=64)
    drv.init(device_id_bits=7)
    world = World(driver=drv)
    ddt = drv.ddt
    dids = rng.sample(range(128), devices)
    for did in dids:
        kind = rng.choices(["sv39", "bypass", "invalid", "noise"], [70, 10, 10, 10])[0]
        world.devices[did] = kind
        if kind == "bypass":
            ddt.write(did, DeviceContext(tc=bits.pack(TC, v=1)))
            world.ranges.append((did, rng.randrange(1 << 40) & ~0xFFF, 1 << 20))
            continue
        if kind == "invalid":
            ddt.write(did, DeviceContext(tc=0))
            continue
        table = drv.page_table(IosatpMode.SV39)
        pscid = rng.randrange(4)          # few PSCIDs, so address spaces are shared
        for _ in range(rng.randint(1, mappings)):
            size = rng.choice(table.page_sizes[-3:] if rng.random() < 0.2 else [4096, 65536])
            iova = rng.randrange(1 << 38) & ~(size - 1)
            pa = rng.randrange(1 << 44) & ~(size - 1)
            perm = rng.choice(["r", "rw", "x", "rx", "rwx"])
            try:
                table.map(iova, pa, size, r="r" in perm, w="w" in perm, x="x" in perm)
            except ValueError:
                continue        # outside the output space: skip it
            world.ranges.append((did, iova, size))
            if rng.random() < damage:
                address = rng.choice(_sv39_pte_addresses(bus, table.root, iova))
                old = int.from_bytes(bus.mem_read(address, 8), "little")
                new = _random_pte(rng, old)
                bus.mem_write(address, new.to_bytes(8, "little"))
                world.damaged.append(f"did {did:#x} pte@{address:#x} {old:#x}->{new:#x}")
        if kind == "noise":
            dc = _random_dc(rng, table.root, pscid)
            world.damaged.append(f"did {did:#x} dc {dc}")
        else:
            world.tables[did] = (table, pscid)
            dc = DeviceContext(tc=bits.pack(TC, v=1), ta=bits.pack(TA, pscid=pscid),
                               fsc=bits.pack(IOSATP, mode=IosatpMode.SV39,
                                             ppn=table.root >> 12))
        # A first write of a context that was never valid needs no invalidation.
        ddt.write(did, dc)
        for address in _table_pages(bus, table.root):
            world.table_pages.append((did, address))
    for did, address in world.table_pages:
        if rng.random() < faults:
            memory.inject_fault(address, 4096)
            world.damaged.append(f"did {did:#x} table page {address:#x} answers SLVERR")
            # The driver (the CPU) cannot edit that table any more either: no churn on it.
            world.tables.pop(did, None)
    return world


def _table_pages(bus, root, level=_SV39_LEVELS - 1):
    yield root
    if level == 0:
        return
    raw = bus.mem_read(root, 4096)
    for i in range(512):
        pte = int.from_bytes(raw[8 * i:8 * i + 8], "little")
        if pte & 1 and not pte & 0b1010:
            yield from _table_pages(bus, bits.get(PTE, pte, "ppn") << 12, level - 1)


def churn(rng, world):
    """Random table changes made *without* invalidating; returns what :func:`settle` needs.

    Until the changes are settled the spec lets the IOMMU answer with the old or the new
    translation (the model's ``allowed`` set holds both); afterwards only the new one.
    """
    pending = []
    for _ in range(rng.randint(1, 4)):
        if not world.tables:
            break
        did = rng.choice(sorted(world.tables))
        table, pscid = world.tables[did]
        ranges = [r for r in world.ranges if r[0] == did]
        if not ranges:
            continue
        _, iova, size = rng.choice(ranges)
        if rng.random() < 0.5:
            changes = table.unmap(iova, size)
            what = "unmap"
        else:
            pa = rng.randrange(1 << 44) & ~(size - 1)
            perm = rng.choice(["r", "rw", "x", "rx", "rwx"])
            changes = table.map(iova, pa, size, r="r" in perm, w="w" in perm, x="x" in perm)
            what = f"remap {perm} pa {pa:#x}"
        pending.append((table, changes, pscid))
        world.damaged.append(f"churn: did {did:#x} {what} iova {iova:#x} size {size:#x}")
    return pending


def settle(world, pending):
    """The spec's invalidation recipe for each change, then IOFENCE.C (the driver's sync)."""
    for table, changes, pscid in pending:
        world.driver.sync(table, changes, pscid=pscid)


def random_requests(rng, world, n):
    """``n`` requests: most inside mapped ranges, some anywhere, some to unknown devices."""
    accesses = list(Access)
    for _ in range(n):
        roll = rng.random()
        access = rng.choice(accesses)
        if roll < 0.8 and world.ranges:
            did, iova, size = rng.choice(world.ranges)
            yield did, iova + rng.randrange(min(size, 1 << 16)) // 8 * 8, access
        elif roll < 0.95:
            did = rng.choice(list(world.devices))
            yield did, rng.getrandbits(rng.choice([39, 40, 64])) & ~7, access
        else:
            yield rng.randrange(1 << 24), rng.getrandbits(39) & ~7, access
