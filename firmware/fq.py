"""The fault-queue drain: typed fault records out of the IOMMU's fault queue.

RISC-V IOMMU spec "Fault/Event-Queue (FQ)" and the registers ``fqb``, ``fqh``, ``fqt``, ``fqcsr``.
The IOMMU owns ``fqt`` and writes 32-byte records; software owns ``fqh`` and advances it past the
records it has read. A record the IOMMU could not write because the queue was full (``fqof``) or the
store faulted (``fqmf``) is lost, and every later one too until software clears the bit, so a drain
reports both.
"""

import dataclasses

from iogate.hdl import bits
from iogate.hdl.formats import FAULT_RECORD, FQ_RECORD_SIZE, Cause, Ttyp
from iogate.hdl.regs import FQCSR, IPSR, Offset

from iogate.firmware.alloc import PAGE_SIZE
from iogate.firmware.queue import check_entries, program_base

__all__ = ["FaultRecord", "FaultDrain", "FaultQueue"]


def _enum_or_int(enum, value):
    # Custom CAUSE (2048-4095) and TTYP (32-63) encodings have no enum member.
    try:
        return enum(value)
    except ValueError:
        return value


@dataclasses.dataclass(frozen=True)
class FaultRecord:
    """One fault-queue record (spec "Fault/Event-Queue (FQ)").

    Attributes
    ----------
    cause : Cause or int
        What went wrong; an ``int`` only for encodings outside :class:`~iogate.hdl.formats.Cause`.
    ttyp : Ttyp or int
        The transaction type; :attr:`Ttyp.NONE` for faults not caused by a transaction.
    did : int
        device_id (0 when ``ttyp`` is NONE).
    pv : bool
        ``pid`` is valid.
    pid : int
        process_id (0 when ``pv`` is False).
    priv : bool
        Supervisor privilege (False when ``pv`` is False).
    iotval : int
        The faulting IOVA for transaction faults.
    iotval2 : int
        For guest-page faults, the GPA in bits 63:2, bit 0 set when an implicit access
        faulted and bit 1 when that implicit access was a write.
    """

    cause: Cause | int
    ttyp: Ttyp | int
    did: int
    pv: bool
    pid: int
    priv: bool
    iotval: int
    iotval2: int

    @classmethod
    def from_bytes(cls, raw):
        """The record stored little-endian in ``raw`` (32 bytes; ``fctl.BE=0``)."""
        if len(raw) != FQ_RECORD_SIZE:
            raise ValueError(f"a fault record is {FQ_RECORD_SIZE} bytes, not {len(raw)}")
        word = int.from_bytes(raw, "little")
        f = bits.unpack(FAULT_RECORD, word)
        return cls(
            cause=_enum_or_int(Cause, f["cause"]), ttyp=_enum_or_int(Ttyp, f["ttyp"]),
            did=f["did"], pv=bool(f["pv"]), pid=f["pid"], priv=bool(f["priv"]),
            iotval=f["iotval"], iotval2=f["iotval2"],
        )


@dataclasses.dataclass(frozen=True)
class FaultDrain:
    """What one drain of the fault queue found.

    Iterating over a drain, or taking its ``len``, goes over its records.

    Attributes
    ----------
    records : tuple of FaultRecord
        The records read, oldest first.
    overflow : bool
        ``fqcsr.fqof`` was set: records were dropped because the queue was full.
    memory_fault : bool
        ``fqcsr.fqmf`` was set: records were dropped because a store faulted.
    """

    records: tuple = ()
    overflow: bool = False
    memory_fault: bool = False

    def __iter__(self):
        return iter(self.records)

    def __len__(self):
        return len(self.records)


class FaultQueue:
    """The fault queue of one IOMMU.

    Parameters
    ----------
    regs : Registers
        The IOMMU's registers.
    alloc : PageAllocator
        Where the queue is allocated.
    entries : int
        Queue size, a power of two from 2 to 2**20.

    Raises
    ------
    ValueError
        If ``entries`` is not such a power of two.
    """

    def __init__(self, regs, alloc, *, entries=64):
        check_entries(entries)
        self.regs = regs
        self.bus = regs.bus
        self.alloc = alloc
        self.entries = entries
        self.base = None
        self._head = 0
        self._interrupts = False

    def enable(self, *, interrupts=False):
        """Allocate the queue and turn it on: ``fqb``, ``fqh=0``, ``fqen=1``, poll ``fqon``."""
        if self.regs.field(Offset.FQCSR, "fqon"):
            self.regs.write(Offset.FQCSR, 0)
            self.regs.poll(Offset.FQCSR, "fqon", 0)
        # A whole page at least, aligned to the greater of 4 KiB and the queue's size
        # (spec "Fault queue base (fqb)").
        size = max(PAGE_SIZE, self.entries * FQ_RECORD_SIZE)
        if self.base is not None:
            self.alloc.free(self.base)  # the queue of an earlier enable; the queue is off
        self.base = self.alloc.alloc(size, align=size)
        self.entries = program_base(self.regs, Offset.FQB, self.entries, self.base)
        self.regs.write(Offset.FQH, 0)
        self._head = 0
        self._interrupts = bool(interrupts)
        self.regs.write(Offset.FQCSR, bits.pack(FQCSR, fqen=1, fie=self._interrupts))
        self.regs.poll(Offset.FQCSR, "fqon", 1)

    def drain(self, limit=None):
        """Read every record between ``fqh`` and ``fqt``, then advance ``fqh`` past them.

        ``fqof`` and ``fqmf`` are reported in the result and cleared (RW1C), which
        re-enables fault reporting (spec "Fault queue CSR (fqcsr)"), and ``ipsr.fip`` is cleared.

        Parameters
        ----------
        limit : int or None
            Read at most this many records.

        Returns
        -------
        FaultDrain
        """
        # The order is the spec's interrupt-handler guideline (section "Guidelines for
        # handling interrupts"): clear the error bits, clear ipsr.fip, then read fqt, so a
        # record that lands after fqt was read raises fip again instead of being missed.
        mask = self.entries - 1
        csr = self.regs.read(Offset.FQCSR)
        overflow = bool(bits.get(FQCSR, csr, "fqof"))
        memory_fault = bool(bits.get(FQCSR, csr, "fqmf"))
        if overflow or memory_fault:
            self.regs.write(Offset.FQCSR, bits.pack(
                FQCSR, fqen=1, fie=self._interrupts, fqof=overflow, fqmf=memory_fault))
        self.regs.write(Offset.IPSR, bits.pack(IPSR, fip=1))
        tail = self.regs.read(Offset.FQT) & mask
        records = []
        while self._head != tail and (limit is None or len(records) < limit):
            raw = self.bus.mem_read(self.base + self._head * FQ_RECORD_SIZE, FQ_RECORD_SIZE)
            records.append(FaultRecord.from_bytes(raw))
            self._head = (self._head + 1) & mask
        if records:
            self.regs.write(Offset.FQH, self._head)
        return FaultDrain(tuple(records), overflow, memory_fault)
