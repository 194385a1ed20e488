"""What the command and fault queues share: their size rule and their base register.

Spec "Command-queue base (cqb)" and "Fault queue base (fqb)".

A queue base register holds LOG2SZ-1, so a queue has a power-of-two number of entries;
this driver allows 2 to 2**20 of them. The field is WARL: an IOMMU may offer fewer
(iogate's ``Config.queue_log2sz_max``), and :func:`program_base` takes what it offers.
"""

from iogate.hdl import bits
from iogate.hdl.regs import QB

__all__ = ["check_entries", "program_base"]


def check_entries(entries):
    """Raise ``ValueError`` unless ``entries`` is a power of two from 2 to 2**20."""
    if (not isinstance(entries, int) or entries < 2 or entries > 1 << 20
            or entries & (entries - 1)):
        raise ValueError(f"entries must be a power of two from 2 to 2**20, not {entries!r}")


def program_base(regs, offset, entries, base):
    """Write the queue base register at ``offset`` for a ring of ``entries`` at ``base``
    and read it back; returns the entries the IOMMU took.

    ``LOG2SZ-1`` is WARL, so an IOMMU that offers fewer entries reads back its largest
    size, and the queue then uses that many (the ring allocated for ``entries`` holds
    them), as Linux's ``riscv_iommu_queue_alloc`` does.
    """
    log2szm1 = entries.bit_length() - 2
    regs.write(offset, bits.pack(QB, log2szm1=log2szm1, ppn=base >> 12))
    taken = bits.get(QB, regs.read(offset), "log2szm1")
    return min(entries, 2 << taken)
