"""The regression world's devices with process directories, their damage and their churn.

RISC-V IOMMU spec "Process-Directory-Table (PDT)" and "Process to translate an IOVA" (steps
7-16), as the reference's N.1 lists them. A device of kind ``pdt`` has a process directory
in host memory (``iohgatp`` Bare); one of kind ``pdt/nested`` has it in its guest's memory,
behind a second stage (``pdtp`` and every PDT entry and first-stage root are GPAs). Each
draws its PDT mode (PD8, PD17 or PD20, as far as the Config offers them, through the
driver's choice for a random process_id width), ``DC.tc.DPE``, and one to three processes:
each with a first-stage table of its own, a PSCID from a few shared values, and random ENS
and SUM. Requests to them carry the process's PASID (or none, which with DPE=1 means
process 0), User or supervisor privilege, and now and then a PASID nobody attached or one
wider than the mode.

Damage: random bits flipped in a PC or a non-leaf PDTE (causes 266/267, or odd but legal
contexts), and bus errors on PDT pages (265). Churn: a process context is rewritten in
memory *without* invalidating (its table swapped for the process's other one, or ENS/SUM
flipped); until :func:`settle_pc` sends the recipe (``IODIR.INVAL_PDT`` + ``IOTINVAL.VMA``
with the old PSCID) and ``IOFENCE.C``, the model's ``allowed`` set holds the old and the
new answers, afterwards only the new.
"""

from dataclasses import dataclass, field

from iogate.hdl.formats import PDTE_SIZE, IohgatpMode, IosatpMode, PdtpMode

from iogate.firmware import invalidate
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable
from iogate.firmware.pdt import ProcessContext

__all__ = ["PDT_KINDS", "Process", "pdt_device", "damage_pdt", "pdt_pages", "churn_pc",
           "settle_pc", "pasid_request"]

#: Kinds of devices with a process directory.
PDT_KINDS = ("pdt", "pdt/nested")
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass
class Process:
    """One attached process: its two tables (the PC points at ``tables[current]``)."""
    device_id: int
    process_id: int
    tables: list
    pscid: int
    ens: bool
    sum: bool
    current: int = 0
    ranges: list = field(default_factory=list)       # (iova, size) of either table
    churnable: bool = True


def _first_stage_modes(config):
    modes = [IosatpMode.SV39]
    if config.sv48:
        modes.append(IosatpMode.SV48)
    if config.sv57:
        modes.append(IosatpMode.SV57)
    return modes


def pdt_device(rng, world, did, kind, nested_index, bus, config, map_random, space_cls,
               guest_ram, guest_tables):
    """Build ``did``'s process directory, processes and tables; returns its spaces.

    ``map_random``/``space_cls`` are the world's (:func:`iogate.cosim.regress.world._map_random`,
    :class:`~iogate.cosim.regress.world.Space`), so mappings are drawn as for every device.
    """
    drv = world.driver
    dpe = rng.random() < 0.5
    width = rng.choice([m.pid_bits for m in config.pdtp_modes])
    spaces, second, gscid = [], None, None
    if kind == "pdt/nested":
        g_mode = rng.choice([m for m in (IohgatpMode.SV39X4, IohgatpMode.SV48X4,
                                         IohgatpMode.SV57X4)
                             if getattr(config, m.name.lower())])
        gscid = rng.randrange(4)
        second = space_cls(drv.page_table(g_mode), None, gscid, 56)
        second.table.map(0, guest_ram + nested_index * GiB, GiB, r=True, w=True, x=True)
        guest = GuestMemory(bus, second.table)
        alloc = PageAllocator(guest, *guest_tables)
        pdt = drv.process_directory(width, bus=guest, alloc=alloc)
        spaces.append(second)

        def table(mode):
            return PageTable(guest, alloc, mode, svpbmt=config.svpbmt)

        def target(size):
            return rng.randrange(GiB) & ~(size - 1)
    else:
        pdt = drv.process_directory(width)

        def table(mode):
            return drv.page_table(mode)

        def target(size):
            return rng.randrange(1 << 44) & ~(size - 1)
    drv.set_process_directory(did, pdt, dpe=dpe, dtf=rng.random() < 0.1,
                              **({} if second is None else {"second": second.table,
                                                            "gscid": gscid}))
    limit = 1 << pdt.mode.pid_bits
    pids = {0} if dpe and rng.random() < 0.7 else set()
    while len(pids) < rng.randint(1, 3):
        pids.add(rng.randrange(limit))
    processes = []
    for pid in sorted(pids):
        mode = rng.choice(_first_stage_modes(config))
        p = Process(did, pid, [], rng.randrange(4), rng.random() < 0.6, rng.random() < 0.5)
        for _ in range(2):
            space = space_cls(table(mode), p.pscid, gscid, 56)
            map_random(rng, world, did, space, space.table.va_bits - 1, target, config,
                       requested=False)
            p.tables.append(space.table)
            p.ranges += space.ranges
            space.ranges = []           # churned as PCs here, not as PTEs
        drv.attach_process(did, pid, p.tables[0], pscid=p.pscid, ens=p.ens, sum=p.sum)
        processes.append(p)
    world.processes[did] = processes
    world.pdt[did] = (pdt, dpe, gscid)
    return spaces


def pdt_pages(world, did):
    """System addresses of ``did``'s PDT pages (a guest's through its second stage)."""
    pdt = world.pdt[did][0]
    for page in pdt.pages():
        if isinstance(pdt.bus, GuestMemory):
            t = pdt.bus.second_stage.lookup(page)
            if t is None:
                continue
            page = t.pa
        yield page


def damage_pdt(rng, world, did):
    """Flip a few bits of one PC, or of a non-leaf PDTE (PD17/PD20), of ``did``."""
    pdt = world.pdt[did][0]
    p = rng.choice(world.processes[did])
    if pdt.mode.levels > 1 and rng.random() < 0.3:
        # The PDTE the walk of this process reads first (root level).
        address = pdt.root + PdtpMode.pdi(p.process_id, pdt.mode.levels - 1) * PDTE_SIZE
        what = "pdte"
    else:
        address = pdt.pc_address(p.process_id) + rng.choice([0, 8])     # ta or fsc
        what = "pc"
    old = int.from_bytes(pdt.bus.mem_read(address, 8), "little")
    new = old
    for _ in range(rng.randint(1, 2)):
        new ^= 1 << rng.choice([0, 1, 2, 5, 11, 12, 40, 44, 53, 54, 59, 60, 61, 62, 63])
    pdt.bus.mem_write(address, new.to_bytes(8, "little"))
    for q in world.processes[did]:
        q.churnable = False           # the driver no longer understands this directory
    world.damaged.append(f"did {did:#x} {what}@{address:#x} {old:#x}->{new:#x}")


def churn_pc(rng, world):
    """Rewrite one process context in memory without invalidating; returns the pending
    change for :func:`settle_pc`, or None when no process can be churned."""
    candidates = [p for did in sorted(world.processes) for p in world.processes[did]
                  if p.churnable and did in world.pdt]
    if not candidates:
        return None
    p = rng.choice(candidates)
    pdt = world.pdt[p.device_id][0]
    old = pdt.read(p.process_id)
    if rng.random() < 0.6:
        p.current ^= 1
        what = f"table {p.current}"
    else:
        p.ens, p.sum = rng.random() < 0.5, rng.random() < 0.5
        what = f"ens={int(p.ens)} sum={int(p.sum)}"
    table = p.tables[p.current]
    new = ProcessContext.make(pscid=p.pscid, mode=table.mode, root=table.root, ens=p.ens,
                              sum=p.sum)
    pdt.write(p.process_id, new)
    world.damaged.append(f"churn: did {p.device_id:#x} pid {p.process_id:#x} pc -> {what}")
    return p, old


def settle_pc(world, pending):
    """The spec's recipe for a changed PC (reference N.1.7), then IOFENCE.C."""
    p, old = pending
    gscid = world.pdt[p.device_id][2]
    world.driver.run(invalidate.pc_change(p.device_id, p.process_id, old, gscid=gscid))


def pasid_request(rng, world):
    """``(device_id, iova, process_id, priv)`` aimed at a process of the world, or None."""
    processes = [p for did in sorted(world.processes) for p in world.processes[did]
                 if p.ranges]
    if not processes:
        return None
    p = rng.choice(processes)
    iova, size = rng.choice(p.ranges)
    iova += rng.randrange(min(size, 1 << 16)) // 8 * 8
    _, dpe, _ = world.pdt[p.device_id]
    pid = p.process_id
    roll = rng.random()
    if roll < 0.05:
        pid = rng.randrange(1 << 20)              # maybe nobody's, maybe wider than the mode
    elif pid == 0 and dpe and roll < 0.4:
        return p.device_id, iova, None, False     # untagged: process 0 through DPE
    priv = rng.random() < (0.5 if p.ens else 0.05)
    return p.device_id, iova, pid, priv
