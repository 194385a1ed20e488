"""A random world for the regression: device contexts, page tables, broken entries, bus errors.

Everything comes from one ``random.Random``, so a seed is a complete description of a run
(the Config too: :func:`choose_config`). Tables and device contexts are built with the driver
(``firmware``): per device a random kind of translation (first stage Sv39/Sv48, second
stage only Sv39x4/Sv48x4, nested, Bare/Bare, blocked), on a 1LVL, 2LVL or 3LVL directory,
with 4 KiB, 64 KiB NAPOT, 2 MiB and 1 GiB pages. Then they are damaged on purpose: random
bit patterns in leaf and non-leaf PTEs of either stage (reserved bits, W without R,
misaligned superpages, bad NAPOT runs, PBMT), random device contexts (reserved bits,
unsupported modes), bus errors (SLVERR or DECERR) on random table pages and on device
contexts or directory pages (cause 257). The model says what each must do; the RTL must agree.
"""

import random
from dataclasses import dataclass, field

from iogate.hdl import Config, bits
from iogate.hdl.formats import (
    DC_SIZE,
    PTE,
    IohgatpMode,
    IosatpMode,
    Pbmt,
)
from iogate.hdl.port import Access
from iogate.hdl.regs import Igs, IommuMode

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.ddt import DeviceContext
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import GuestAddressError
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable
from iogate.firmware.pdt import ProcessContext

from iogate.cosim.regress import world_msi, world_pdt
from iogate.cosim.regress.world_msi import MSI_GSCID_BASE, MSI_KINDS
from iogate.cosim.regress.world_pdt import PDT_KINDS

__all__ = ["World", "Space", "CONFIGS", "choose_config", "build_world", "churn", "replay_churn",
           "settle", "random_requests"]

ALLOC_BASE = 0x8000_0000
ALLOC_SIZE = 64 << 20
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
#: Guest RAM of nested device k: GPA [0, 1 GiB) at SPA GUEST_RAM + k GiB.
GUEST_RAM = 0x80_0000_0000
#: The guest's own page-table allocator, inside its RAM.
GUEST_TABLES = (512 * MiB, 64 * MiB)
#: The leaf sizes exercised (spec: Svnapot 64 KiB and the Sv39/Sv48 superpages).
SIZES = (4 * KiB, 64 * KiB, 2 * MiB, 1 * GiB)

#: The builds the test suite already makes (tests/rtl: default, the full first target, and
#: the full target with PD8/PD17/PD20 process contexts and Sv57/Sv57x4).
CONFIGS = {"default": Config(), "full": Config.full(), "process": Config.process(),
           "msi": Config.msi()}

# Device kinds: (first-stage mode, second-stage mode) or a special kind.
_KINDS = {
    "sv39": (IosatpMode.SV39, None), "sv48": (IosatpMode.SV48, None),
    "sv39x4": (None, IohgatpMode.SV39X4), "sv48x4": (None, IohgatpMode.SV48X4),
    "sv39/sv39x4": (IosatpMode.SV39, IohgatpMode.SV39X4),
    "sv48/sv48x4": (IosatpMode.SV48, IohgatpMode.SV48X4),
    "sv39/sv48x4": (IosatpMode.SV39, IohgatpMode.SV48X4),
    "sv57": (IosatpMode.SV57, None), "sv57x4": (None, IohgatpMode.SV57X4),
    "sv57/sv57x4": (IosatpMode.SV57, IohgatpMode.SV57X4),
    "sv48/sv57x4": (IosatpMode.SV48, IohgatpMode.SV57X4),
}
# VA widths of Sv39, Sv48 and Sv57: random requests straddle their canonical edges.
_SV39_BITS, _SV48_BITS = IosatpMode.SV39.va_bits, IosatpMode.SV48.va_bits
_SV57_BITS = IosatpMode.SV57.va_bits
#: Every kind, for coverage bins.
KINDS = [*_KINDS, *PDT_KINDS, *MSI_KINDS, "bypass", "invalid", "noise", "ddt_fault"]
_WEIGHTS = {"default": {"sv39": 60, "bypass": 10, "invalid": 10, "noise": 12, "ddt_fault": 5},
            "full": {"sv39": 12, "sv48": 12, "sv39x4": 10, "sv48x4": 8, "sv39/sv39x4": 10,
                     "sv48/sv48x4": 8, "sv39/sv48x4": 8, "bypass": 8, "invalid": 6,
                     "noise": 12, "ddt_fault": 6},
            "process": {"sv39": 4, "sv48": 4, "sv57": 5, "sv39x4": 3, "sv48x4": 3,
                        "sv57x4": 4, "sv39/sv39x4": 3, "sv48/sv48x4": 3, "sv39/sv48x4": 3,
                        "sv57/sv57x4": 4, "sv48/sv57x4": 3, "pdt": 20, "pdt/nested": 14,
                        "bypass": 5, "invalid": 4, "noise": 10, "ddt_fault": 4},
            "msi": {"sv39": 6, "sv48": 6, "sv39x4": 5, "sv48x4": 5, "sv39/sv39x4": 5,
                    "sv39/sv48x4": 5, "msi": 22, "msi/nested": 18, "bypass": 5, "invalid": 4,
                    "noise": 10, "ddt_fault": 4}}
#: The second-stage (and first-stage) kinds an MSI device is built as.
_MSI_BASES = {"msi": ("sv39x4", "sv48x4"), "msi/nested": ("sv39/sv39x4", "sv39/sv48x4")}


def choose_config(seed):
    """``(name, Config)`` of the regression with ``seed`` (its own stream of the seed)."""
    name = random.Random(f"config:{seed}").choice(sorted(CONFIGS))
    return name, CONFIGS[name]


@dataclass
class Space:
    """One table a device uses, with the tags its invalidations need."""
    table: PageTable
    pscid: int | None
    gscid: int | None
    out_bits: int
    ranges: list = field(default_factory=list)      # (va, size) churn may touch


@dataclass
class World:
    driver: Iommu
    config_name: str = "default"
    ddt_mode: str = ""
    devices: dict = field(default_factory=dict)      # did -> kind
    tables: dict = field(default_factory=dict)       # did -> [Space] the CPU may still edit
    ranges: list = field(default_factory=list)       # (did, iova, size)
    table_pages: list = field(default_factory=list)  # (did, system address of a table page)
    damaged: list = field(default_factory=list)      # what was broken, for the report
    processes: dict = field(default_factory=dict)    # did -> [world_pdt.Process]
    pdt: dict = field(default_factory=dict)          # did -> (ProcessDirectory, DPE, GSCID)
    msi: dict = field(default_factory=dict)          # did -> world_msi.MsiDevice
    msi_targets: list = field(default_factory=list)  # (did, iova of an interrupt-file page)
    msi_interrupts: bool = False                     # the driver takes its interrupts as MSIs


def _pte_addresses(table, va):
    """Addresses (in ``table.bus``'s space) of the PTEs a walk of ``va`` reads, root first
    (Privileged spec "Virtual Address Translation Process"; x4 roots index 2 bits more)."""
    out, a = [], table.root
    for level in range(table.levels - 1, -1, -1):
        address = a + table.index(va, level) * 8
        out.append(address)
        pte = int.from_bytes(table.bus.mem_read(address, 8), "little")
        if not pte & 1 or pte & 0b1010:
            break
        a = bits.get(PTE, pte, "ppn") << 12
    return out


def _table_pages(table):
    """Every page of ``table`` (in its bus's address space), root pages first."""
    def below(address, level):
        yield address
        if level == 0:
            return
        raw = table.bus.mem_read(address, 4096)
        for i in range(512):
            pte = int.from_bytes(raw[8 * i:8 * i + 8], "little")
            if pte & 1 and not pte & 0b1010:
                yield from below(bits.get(PTE, pte, "ppn") << 12, level - 1)
    root_pages = table.root_size // 4096
    for k in range(root_pages):
        if root_pages == 1:
            yield from below(table.root, table.levels - 1)
            continue
        yield table.root + 4096 * k
        raw = table.bus.mem_read(table.root + 4096 * k, 4096)
        for i in range(512):
            pte = int.from_bytes(raw[8 * i:8 * i + 8], "little")
            if pte & 1 and not pte & 0b1010:
                yield from below(bits.get(PTE, pte, "ppn") << 12, table.levels - 2)


def _random_pte(rng, old):
    """A PTE worth trying: the old one with a few bits flipped, or pure noise."""
    if rng.random() < 0.3:
        return rng.getrandbits(64)
    for _ in range(rng.randint(1, 3)):
        old ^= 1 << rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 13, 21, 54, 58, 60, 61, 62, 63])
    return old


def _random_dc(rng, dc):
    """``dc`` with one random bit flipped, or a random (often reserved) mode field."""
    words = [dc.tc, dc.iohgatp, dc.ta, dc.fsc]
    if rng.random() < 0.3:
        i = rng.choice([1, 3])
        words[i] = (words[i] & ~(0xF << 60)) | rng.randrange(16) << 60
    else:
        i = rng.randrange(4)
        words[i] ^= 1 << rng.randrange(64)
    return DeviceContext(*words)


def _perm(rng):
    p = rng.choice(["r", "rw", "x", "rx", "rwx"])     # W without R: only by damage
    return dict(r="r" in p, w="w" in p, x="x" in p)


def _map_random(rng, world, did, space, va_bits, targets, config, lo=0, requested=True):
    """A few random mappings in ``space`` (inputs from ``lo`` up); ``targets`` picks each
    output address. ``requested``: the device's requests aim at them (not so for the
    G-stage ranges of a nested device, which its IOVAs do not address)."""
    sizes = [s for s in SIZES if s in space.table.page_sizes]
    for _ in range(rng.randint(1, 6)):
        size = rng.choices(sizes, [40, 30, 20, 10][:len(sizes)])[0]
        va = rng.randrange(lo, 1 << va_bits) & ~(size - 1)
        out = targets(size)
        pbmt = rng.choice(list(Pbmt)[:3]) if config.svpbmt and rng.random() < 0.3 else Pbmt.PMA
        try:
            space.table.map(va, out, size, pbmt=pbmt, **_perm(rng))
        except (ValueError, LookupError):
            continue            # outside the space, or over an earlier mapping: skip it
        space.ranges.append((va, size))
        if requested:
            world.ranges.append((did, va, size))


def _device(rng, world, did, kind, nested_index, bus, config, msi=False):
    """Build the tables of ``did`` and write its context; returns its spaces. With ``msi``
    the device also gets an MSI page table (:mod:`iogate.cosim.regress.world_msi`) and a VM
    of its own."""
    drv = world.driver
    s_mode, g_mode = _KINDS[kind]
    pscid, gscid = rng.randrange(4), rng.randrange(4)  # few tags: address spaces are shared
    if msi:
        gscid = MSI_GSCID_BASE + len(world.msi)
    dtf = rng.random() < 0.1

    def far(size):
        return rng.randrange(1 << 44) & ~(size - 1)

    if g_mode is None:
        first = Space(drv.page_table(s_mode), pscid, None, 56)
        _map_random(rng, world, did, first, first.table.va_bits - 1, far, config)
        drv.set_first_stage(did, first.table, pscid=pscid, dtf=dtf)
        return [first]
    second = Space(drv.page_table(g_mode), None, gscid, 56)
    if s_mode is None:
        _map_random(rng, world, did, second, second.table.va_bits, far, config)
        table = _msi_table(rng, world, did, second, gscid, config, far) if msi else None
        if table is not None:
            world.msi_targets += [(did, table.gpa_of(i)) for i in range(table.entries)]
        drv.set_second_stage(did, second.table, gscid=gscid, dtf=dtf, msi=table)
        return [second]
    # Nested: the guest's RAM (not churned: the guest's tables live there), a few more
    # G-stage mappings, and the guest's first-stage table in its RAM.
    second.table.map(0, GUEST_RAM + nested_index * GiB, GiB, r=True, w=True, x=True)
    _map_random(rng, world, did, second, 40, far, config, lo=GiB, requested=False)
    guest = GuestMemory(bus, second.table)
    first = Space(PageTable(guest, PageAllocator(guest, *GUEST_TABLES), s_mode,
                            svpbmt=config.svpbmt), pscid, gscid, 56)
    extra = [va for va, _ in second.ranges]

    def gpa(size):
        roll = rng.random()
        if roll < 0.7 or not extra:
            return rng.randrange(GiB) & ~(size - 1)
        if roll < 0.9:
            return rng.choice(extra) & ~(size - 1)
        # Anywhere in the widest guest physical space: probably a guest-page fault.
        return rng.randrange(1 << IohgatpMode.SV48X4.gpa_bits) & ~(size - 1)
    _map_random(rng, world, did, first, first.table.va_bits - 1, gpa, config)
    table = _msi_table(rng, world, did, second, gscid, config, far) if msi else None
    if table is not None:
        # Guest pages that map the guest's interrupt files: its MSIs through both stages.
        for i in range(table.entries):
            va = rng.randrange(1 << (first.table.va_bits - 1)) & ~0xFFF
            try:
                first.table.map(va, table.gpa_of(i), 4 * KiB, r=True, w=rng.random() < 0.9,
                                x=rng.random() < 0.2)
            except (ValueError, LookupError):
                continue
            world.msi_targets.append((did, va))
    drv.set_nested(did, first.table, second.table, pscid=pscid, gscid=gscid, dtf=dtf,
                   msi=table)
    return [first, second]


def _msi_table(rng, world, did, second, gscid, config, targets):
    """The MSI page table of ``did``'s VM (:mod:`iogate.cosim.regress.world_msi`)."""
    mask, pattern = world_msi.msi_window(rng, second.ranges,
                                         min(second.table.va_bits, config.mgpaw))
    table = world.driver.msi_page_table(mask, pattern)
    device = world_msi.MsiDevice(did, table, gscid)
    world_msi.fill_msi_table(rng, world.driver, device, config, lambda: targets(4 * KiB))
    world.msi[did] = device
    return table


def _host_pages(table):
    """System addresses of the pages of ``table``."""
    bus = table.bus
    for page in _table_pages(table):
        if isinstance(bus, GuestMemory):
            t = bus.second_stage.lookup(page)
            if t is None:
                continue
            page = t.pa
        yield page


def build_world(rng, bus, target, *, config_name="default", devices=12, damage=0.15,
                faults=0.04, interrupts=False, fq_entries=64):
    """Bring the IOMMU up with the driver (spec init sequence) and program a random world.

    ``target`` is the :class:`iogate.cosim.targets.tb.memory_target.MemoryTarget` (or a ``Memory``,
    for runs on the model alone) that injects bus errors. Damage is done before any
    translation, so nothing of it can be cached yet.
    """
    config = CONFIGS[config_name]
    alloc = PageAllocator(bus, ALLOC_BASE, ALLOC_SIZE)
    cq_entries = rng.choice([4, 16, 64])
    # With IOMMU-generated MSIs built (IGS MSI or BOTH, reference N.5) the driver takes its
    # interrupts as MSIs in half the runs, so that msi_cfg_tbl, the edge rule and fctl.WSI=0
    # are drawn too; the test bench compares every MSI write with the model's. (The draw is
    # made only for such Configs, so the other Configs' seeds replay as before.)
    msi = interrupts and config.igs != Igs.WSI and rng.random() < 0.5
    drv = Iommu(bus, alloc, cq_entries=cq_entries, fq_entries=fq_entries,
                interrupts=interrupts, msi=msi)
    id_bits = rng.choice([m.device_id_bits for m in config.iommu_modes if m.levels])
    drv.init(device_id_bits=id_bits)
    world = World(driver=drv, config_name=config_name, ddt_mode=drv.ddt.mode.name,
                  msi_interrupts=drv.msi)
    # Device ids crowd a few directory pages so that 2LVL/3LVL pages are shared.
    prefixes = [rng.randrange(1 << id_bits) >> 7 for _ in range(3)]
    dids = set()
    while len(dids) < devices:
        dids.add((rng.choice(prefixes) << 7 | rng.randrange(128)) & ((1 << id_bits) - 1))
    weights = _WEIGHTS[config_name]
    nested = 0
    last = max(dids)
    for did in sorted(dids):
        kind = rng.choices(list(weights), list(weights.values()))[0]
        if did == last and "ddt_fault" not in world.devices.values():
            # Every world has one device whose directory read fails, so that every seed
            # reaches cause 257 (DDT entry load access fault), the rarest outcome.
            kind = "ddt_fault"
        world.devices[did] = kind
        if kind in ("bypass", "ddt_fault"):
            drv.set_bypass(did)
            world.ranges.append((did, rng.randrange(1 << 40) & ~0xFFF, 1 << 20))
            continue
        if kind == "invalid":
            drv.set_blocked(did)
            continue
        real = kind if kind != "noise" else rng.choice(
            [k for k in (*_KINDS, *PDT_KINDS) if k in weights] or ["sv39"])
        if real in MSI_KINDS:
            spaces = _device(rng, world, did, rng.choice(_MSI_BASES[real]), nested, bus,
                             config, msi=True)
            if rng.random() < damage:
                world_msi.damage_msi(rng, world, world.msi[did])
        elif real in PDT_KINDS:
            spaces = world_pdt.pdt_device(rng, world, did, real, nested, bus, config,
                                          _map_random, Space, GUEST_RAM, GUEST_TABLES)
            if rng.random() < damage:
                world_pdt.damage_pdt(rng, world, did)
        else:
            spaces = _device(rng, world, did, real, nested, bus, config)
        nested += "/" in real
        for space in spaces:
            hit = [va for va, _ in space.ranges if rng.random() < damage]
            for va in hit:
                _damage_pte(rng, world, did, space, va)
            if hit:
                # The driver cannot safely edit a table it no longer understands (a
                # damaged non-leaf PTE points anywhere): no churn on it.
                space.ranges = []
        if kind == "noise":
            dc = _random_dc(rng, drv.device_context(did))
            drv.set_dc(did, tc=dc.tc, iohgatp=dc.iohgatp, ta=dc.ta, fsc=dc.fsc, check=False)
            world.damaged.append(f"did {did:#x} dc {dc}")
        guest_ram = spaces[-1].table.lookup(GUEST_TABLES[0]) if "/" in real else None
        try:
            if guest_ram is not None and not (guest_ram.r and guest_ram.w):
                raise GuestAddressError("guest RAM not writable")
            pages = [page for space in spaces for page in _host_pages(space.table)]
            for p in world.processes.get(did, []):
                pages += [page for table in p.tables for page in _host_pages(table)]
            if did in world.pdt:
                pages += list(world_pdt.pdt_pages(world, did))
        except GuestAddressError:
            # The damage cut the guest's RAM out of its G-stage: the CPU cannot reach the
            # guest's tables either, so they are neither churned nor given bus errors.
            world.damaged.append(f"did {did:#x}: guest tables unreachable")
            continue
        world.tables[did] = spaces
        world.table_pages += [(did, page) for page in pages]
    _bus_errors(rng, world, target, faults)
    for device in world.msi.values():
        for what, address, length in world_msi.msi_pages(device):
            if rng.random() < faults:
                resp = _inject(rng, target, address, length)
                world.damaged.append(f"did {device.device_id:#x} {what} {address:#x} "
                                     f"answers {resp}")
                device.churnable = False
    return world


def _damage_pte(rng, world, did, space, va):
    address = rng.choice(_pte_addresses(space.table, va))
    old = int.from_bytes(space.table.bus.mem_read(address, 8), "little")
    new = _random_pte(rng, old)
    space.table.bus.mem_write(address, new.to_bytes(8, "little"))
    world.damaged.append(f"did {did:#x} {space.table.mode.name} pte@{address:#x} "
                         f"{old:#x}->{new:#x}")


def _inject(rng, target, address, length):
    resp = rng.choice(["SLVERR", "DECERR"])
    if hasattr(target, "responses"):
        target.inject_fault(address, length, resp)
    else:
        target.inject_fault(address, length)          # a plain Memory: one kind of error
    return resp


def _bus_errors(rng, world, target, faults):
    for did, address in world.table_pages:
        if rng.random() < faults:
            resp = _inject(rng, target, address, 4096)
            world.damaged.append(f"did {did:#x} table page {address:#x} answers {resp}")
            # The driver (the CPU) cannot edit that table any more either: no churn on it.
            world.tables.pop(did, None)
            for p in world.processes.get(did, []):
                p.churnable = False
    ddt = world.driver.ddt
    for did, kind in world.devices.items():
        if kind != "ddt_fault":
            continue
        shared = any(d >> 7 == did >> 7 for d in world.devices if d != did)
        if ddt.levels > 1 and not shared and rng.random() < 0.5:
            # The leaf directory page (reached through a non-leaf entry) of this device
            # alone: every read of it fails.
            page = ddt.dc_address(did) & ~0xFFF
            resp = _inject(rng, target, page, 4096)
            world.damaged.append(f"did {did:#x} DDT page {page:#x} answers {resp}")
        else:
            address = ddt.dc_address(did)
            resp = _inject(rng, target, address, DC_SIZE)
            world.damaged.append(f"did {did:#x} DC @{address:#x} answers {resp}")


def churn(rng, world, record=None):
    """Random table changes made *without* invalidating; returns what :func:`settle` needs.

    Until the changes are settled the spec lets the IOMMU answer with the old or the new
    translation (the model's ``allowed`` set holds both); afterwards only the new one.
    ``record``: a list that receives each change as plain data, which :func:`replay_churn`
    makes again without the random stream (``iogate shrink`` replays chosen events).
    """
    ops = [] if record is None else record
    pending = []
    if world.msi and rng.random() < 0.5:
        op = world_msi.churn_msi(rng, world)
        if op is not None:
            ops.append(op)
            pending.append(("msi", world.msi[op[1]]))
    if world.processes and rng.random() < 0.5:
        changed = world_pdt.churn_pc(rng, world)
        if changed is not None:
            p = changed[0]
            pending.append((None, changed))
            ops.append(["pc", p.device_id, p.process_id, p.current, p.ens, p.sum])
    for _ in range(rng.randint(1, 4)):
        spaces = [(did, i, s) for did in sorted(world.tables)
                  for i, s in enumerate(world.tables[did]) if s.ranges]
        if not spaces:
            break
        did, index, space = rng.choice(spaces)
        va, size = rng.choice(space.ranges)
        if rng.random() < 0.5:
            op = ["unmap", did, index, va, size]
        else:
            out = rng.randrange(1 << 44) & ~(size - 1)
            perm = _perm(rng)
            op = ["map", did, index, va, size, out, "".join(k for k, v in perm.items() if v)]
        ops.append(op)
        pending.append(_table_change(world, op))
    return pending


def _table_change(world, op):
    """Make one recorded table change (``["unmap", did, space, va, size]`` or
    ``["map", did, space, va, size, out, perm]``); returns its pending entry."""
    did, index, va, size = op[1:5]
    space = world.tables[did][index]
    if op[0] == "unmap":
        changes = space.table.unmap(va, size)
        what = "unmap"
    else:
        out, perm = op[5], op[6]
        changes = space.table.map(va, out, size, r="r" in perm, w="w" in perm, x="x" in perm)
        what = f"remap {perm} to {out:#x}"
    world.damaged.append(f"churn: did {did:#x} {space.table.mode.name} {what} "
                         f"va {va:#x} size {size:#x}")
    return space, changes


def replay_churn(world, ops):
    """The changes of a :func:`churn` ``record``, made again; returns what :func:`settle`
    needs. A process-context change (``["pc", did, pid, current, ens, sum]``) rewrites
    the PC with that table and those bits, whatever the PC held before."""
    pending = []
    for op in ops:
        if op[0] == "msi":
            pending.append(("msi", world_msi.replay_msi(world, op)))
            continue
        if op[0] != "pc":
            pending.append(_table_change(world, op))
            continue
        did, pid, current, ens, sum_ = op[1:]
        p = next(p for p in world.processes[did] if p.process_id == pid)
        pdt = world.pdt[did][0]
        old = pdt.read(pid)
        p.current, p.ens, p.sum = current, ens, sum_
        table = p.tables[current]
        pdt.write(pid, ProcessContext.make(pscid=p.pscid, mode=table.mode, root=table.root,
                                           ens=ens, sum=sum_))
        world.damaged.append(f"churn: did {did:#x} pid {pid:#x} pc -> table {current} "
                             f"ens={int(ens)} sum={int(sum_)}")
        pending.append((None, (p, old)))
    return pending


def settle(world, pending):
    """The spec's invalidation recipe for each change, then IOFENCE.C (the driver's sync)."""
    for space, changes in pending:
        if space is None:                        # a process context (world_pdt.churn_pc)
            world_pdt.settle_pc(world, changes)
        elif space == "msi":                     # an MSI PTE (world_msi.churn_msi)
            world_msi.settle_msi(world, changes)
        else:
            world.driver.sync(space.table, changes, pscid=space.pscid, gscid=space.gscid)


def random_requests(rng, world, n):
    """``n`` requests ``(device_id, iova, access, process_id, priv)``: most inside mapped
    ranges (a third of them, when the world has processes, a process's under its PASID),
    some anywhere, some to unknown devices; only process requests carry a process_id.

    On a Config with MRIFs (``msi_mrif``: the ports carry ``word``/``data``) each request
    is ``(..., word, data)``: a write always carries data (an MSI to an MRIF page needs it),
    a small identity mostly; a fifth of the requests go to MSI devices' interrupt files
    (:func:`iogate.cosim.regress.world_msi.msi_write_fields`).
    """
    msi_write = CONFIGS[world.config_name].msi_mrif
    for r in _draw_requests(rng, world, n):
        if not msi_write:
            yield r[:5]
        elif len(r) == 7:
            yield r
        else:
            data = (rng.randrange(2048) if rng.random() < 0.7 else rng.getrandbits(32)) \
                if r[2] is Access.WRITE else None
            yield (*r, True, data)


def _draw_requests(rng, world, n):
    """The drawing of :func:`random_requests` (5- or 7-tuples)."""
    accesses = list(Access)
    for _ in range(n):
        roll = rng.random()
        access = rng.choice(accesses)
        if world.msi_targets and rng.random() < 0.2:
            # An interrupt file, mostly written (an MSI), as devices do.
            did, page = rng.choice(world.msi_targets)
            offset, word, data = world_msi.msi_write_fields(rng)
            access = Access.WRITE if rng.random() < 0.8 else access
            yield did, page + offset, access, None, False, word, data
            continue
        if world.processes and rng.random() < 0.3:
            tagged = world_pdt.pasid_request(rng, world)
            if tagged is not None:
                did, iova, pid, priv = tagged
                yield did, iova, access, pid, priv
                continue
        if roll < 0.8 and world.ranges:
            did, iova, size = rng.choice(world.ranges)
            yield did, iova + rng.randrange(min(size, 1 << 16)) // 8 * 8, access, None, False
        elif roll < 0.95:
            did = rng.choice(list(world.devices))
            widths = [_SV39_BITS, _SV39_BITS + 1, _SV48_BITS, 64]
            if CONFIGS[world.config_name].sv57:
                widths[3:3] = [_SV48_BITS + 1, _SV57_BITS, _SV57_BITS + 1]
            yield did, rng.getrandbits(rng.choice(widths)) & ~7, access, None, False
        else:
            yield (rng.randrange(1 << IommuMode.LVL3.device_id_bits),
                   rng.getrandbits(_SV39_BITS) & ~7, access, None, False)
