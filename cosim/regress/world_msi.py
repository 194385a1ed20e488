"""The regression world's devices with MSI page tables, their damage, churn and MSI writes.

RISC-V IOMMU spec "MSI page tables" and "Process to translate an IOVA" step 18, with the AIA's
MSI PTE formats and memory-resident interrupt files (reference N.3, N.4). A device of kind
``msi`` is a guest's device with a second stage only (its IOVAs are GPAs); one of kind
``msi/nested`` has a guest first stage over it, some of whose leaves land on the guest's
interrupt files. Each has an MSI page table of its own (a VM of its own: a GSCID no other
device uses, so the answers of one VM's cached MSI PTEs are never another's question) with
an interrupt-file window: ``msi_addr_mask`` of one to four bits (contiguous or not) over a
page-aligned ``msi_addr_pattern``, now and then inside a second-stage superpage (which the
IOMMU must then not use for the window's pages). Its entries are basic-translate PTEs to
random pages, MRIF PTEs (with ``Config.msi_mrif``) with an MRIF and a notice page each, and
invalid ones.

Damage: random bits flipped in an MSI PTE (262/263, or odd but legal entries), and bus
errors on the MSI table's page (261), an MRIF's page or a notice page (264). Churn: an MSI
PTE rewritten in memory *without* invalidating (remapped, moved to MRIF, or made invalid);
until :func:`settle_msi` sends ``IOTINVAL.GVMA`` (GV=1, AV=0: the whole table, reference
N.4.5) and ``IOFENCE.C``, the model's ``allowed`` set holds the old and the new answers.

Requests to an interrupt file carry the port's ``word``/``data`` (``Config.msi_mrif``): mostly
aligned 32-bit writes of a small identity at offset 0 (an MSI) or 4 (a big-endian one), and
now and then the cases the AIA discards (another offset, an identity of 2048 or more) or
aborts (not one word, or misaligned).
"""

from dataclasses import dataclass, field

from iogate.hdl.formats import MRIF_SIZE

__all__ = ["MSI_KINDS", "MsiDevice", "msi_window", "fill_msi_table", "damage_msi",
           "msi_pages", "churn_msi", "replay_msi", "settle_msi", "msi_write_fields"]

#: Kinds of devices with an MSI page table.
MSI_KINDS = ("msi", "msi/nested")
#: The first GSCID of the MSI devices' VMs (the other kinds draw theirs from 0-3).
MSI_GSCID_BASE = 8
KiB, MiB = 1 << 10, 1 << 20


@dataclass
class MsiDevice:
    """One device's MSI page table and the interrupt files it maps."""
    device_id: int
    table: object                                  # iogate.firmware.msi.MsiPageTable
    gscid: int
    mrifs: list = field(default_factory=list)      # MRIF addresses
    notices: list = field(default_factory=list)    # notice pages (PPN)
    churnable: bool = True


def msi_window(rng, second_ranges, g_bits):
    """``(mask, pattern)`` of a device's interrupt files: a window of ``2**k`` 4 KiB pages,
    k = popcount(mask), mostly at a random page below ``2**g_bits``, now and then inside a
    second-stage mapping of 2 MiB or more (``second_ranges``: its ``(gpa, size)``)."""
    k = rng.randint(1, 4)
    if rng.random() < 0.7:
        mask = (1 << k) - 1
    else:
        # A sparse mask: the interrupt-file number's bits spread over eight page bits.
        mask = sum(1 << b for b in sorted(rng.sample(range(8), k)))
    big = [(gpa, size) for gpa, size in second_ranges if size >= 2 * MiB]
    if big and rng.random() < 0.4:
        gpa, size = rng.choice(big)
        base = gpa + rng.randrange(size - 256 * 4 * KiB) // (4 * KiB) * (4 * KiB) \
            if size > 256 * 4 * KiB else gpa
    else:
        base = rng.randrange(1 << g_bits) & ~0xFFFFF
    return mask, (base >> 12) & ~mask


def fill_msi_table(rng, driver, device, config, targets):
    """Map the table's entries: basic PTEs to pages ``targets()`` picks, MRIF PTEs (with
    ``Config.msi_mrif``), and some left invalid. Memory only; the DC is written after."""
    t = device.table
    for index in range(t.entries):
        roll = rng.random()
        if roll < 0.15:
            continue                                # V=0: cause 262
        if config.msi_mrif and roll < 0.55:
            mrif = driver.mrifs.alloc_mrif().address
            notice = targets() >> 12
            t.map_mrif(index=index, mrif=mrif, notice_ppn=notice, nid=rng.randrange(2048))
            device.mrifs.append(mrif)
            device.notices.append(notice)
        else:
            t.map_basic(index=index, ppn=targets() >> 12)


def damage_msi(rng, world, device):
    """Break one to three MSI PTEs: the custom bit C, a reserved M (0 or 2), a reserved bit
    of either doubleword, or any bit (N.4.3's causes 262/263, or an odd but legal entry)."""
    t = device.table
    for index in rng.sample(range(t.entries), min(t.entries, rng.randint(1, 3))):
        dw0, dw1 = t.read(index)
        how = rng.choice(["c", "m", "reserved", "any"])
        if how == "c":
            dw0 |= 1 << 63
        elif how == "m":
            dw0 = dw0 & ~0b110 | rng.choice([0, 2]) << 1
        elif how == "reserved":
            # dw0 bit 3 is reserved in both formats, [62:54] too; dw1 [63:61] in MRIF ones.
            bit = rng.choice([3, 54, 62, 64 + 61, 64 + 55])
            dw0, dw1 = (dw0 | 1 << bit, dw1) if bit < 64 else (dw0, dw1 | 1 << (bit - 64))
        else:
            bit = rng.randrange(128)
            dw0, dw1 = (dw0 ^ 1 << bit, dw1) if bit < 64 else (dw0, dw1 ^ 1 << (bit - 64))
        t.write_raw(index, dw0, dw1)
        world.damaged.append(f"did {device.device_id:#x} MSI PTE {index} damaged ({how})")
    device.churnable = False


def msi_pages(device):
    """``(what, address, length)`` a bus error may hit: the table, each MRIF and notice."""
    yield "MSI PT", device.table.base, max(device.table.size, 4 * KiB)
    for mrif in device.mrifs:
        yield "MRIF", mrif, MRIF_SIZE
    for ppn in device.notices:
        yield "notice", ppn << 12, 4


def churn_msi(rng, world):
    """Rewrite one MSI PTE without invalidating; returns the recorded op or None."""
    devices = [d for d in world.msi.values() if d.churnable]
    if not devices:
        return None
    device = rng.choice(devices)
    t = device.table
    index = rng.randrange(t.entries)
    roll = rng.random()
    if roll < 0.3:
        t.unmap(index=index)
    elif roll < 0.6 and device.mrifs:
        t.map_mrif(index=index, mrif=rng.choice(device.mrifs),
                   notice_ppn=rng.choice(device.notices), nid=rng.randrange(2048))
    else:
        t.map_basic(index=index, ppn=rng.randrange(1 << 32))
    dw0, dw1 = t.read(index)
    world.damaged.append(f"churn: did {device.device_id:#x} MSI PTE {index} -> "
                         f"{dw0:#x} {dw1:#x}")
    return ["msi", device.device_id, index, dw0, dw1]


def replay_msi(world, op):
    """Make a recorded :func:`churn_msi` op again; returns the device for :func:`settle_msi`."""
    _, did, index, dw0, dw1 = op
    device = world.msi[did]
    device.table.write_raw(index, dw0, dw1)
    return device


def settle_msi(world, device):
    """The invalidation recipe of a changed MSI PTE: ``IOTINVAL.GVMA`` of the VM for the
    whole table, then ``IOFENCE.C`` (reference N.4.5)."""
    world.driver.msi_sync_table(device.table)


def msi_write_fields(rng):
    """``(offset, word, data)`` of a request to an interrupt file, as devices send MSIs and
    as the AIA's other cases need."""
    roll = rng.random()
    if roll < 0.55:
        return 0, True, rng.randrange(2048)                    # an MSI, little-endian
    if roll < 0.65:
        identity = rng.randrange(2048)
        return 4, True, int.from_bytes(identity.to_bytes(4, "big"), "little")   # BE MSI
    if roll < 0.75:
        return 0, True, rng.randrange(2048, 1 << 32)           # identity too big: discarded
    if roll < 0.85:
        return rng.randrange(2, 1024) * 4, True, rng.randrange(2048)   # A[11:3]: discarded
    if roll < 0.93:
        return rng.randrange(1024) * 4, False, rng.getrandbits(32)     # not a word: 260
    return rng.randrange(4096) | 1, True, rng.getrandbits(32)           # misaligned: 260
