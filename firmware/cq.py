"""The command-queue producer: a ring of 16-byte commands, ``cqt``, and fences.

RISC-V IOMMU spec "Command-Queue (CQ)" and the registers ``cqb``, ``cqh``, ``cqt``, ``cqcsr``.
Software owns ``cqt`` and the IOMMU owns ``cqh``; the ring is empty when they are equal and full
when ``cqt == cqh - 1`` (mod N), so at most N-1 commands are outstanding. A fence is ``IOFENCE.C``
with ``AV=1``: when the IOMMU has completed and committed every earlier command it stores a sequence
number to a completion word, and ``cqh`` moves past the fence (spec "IOMMU Command-queue Fence
commands"). Every wait here is a bounded poll.
"""

from iogate.hdl import bits
from iogate.hdl.formats import CMD_SIZE
from iogate.hdl.regs import CQCSR, Offset

from iogate.firmware import commands
from iogate.firmware.alloc import PAGE_SIZE
from iogate.firmware.errors import CommandIllegal, CommandMemoryFault, CommandTimeout, PollTimeout
from iogate.firmware.queue import check_entries, program_base

__all__ = ["CommandQueue"]

# The error bits of cqcsr, each with the exception that reports it, in the order a
# stalled queue is diagnosed: a memory fault explains a fence that never stored.
_ERRORS = (("cqmf", CommandMemoryFault), ("cmd_ill", CommandIllegal), ("cmd_to", CommandTimeout))


class CommandQueue:
    """The command queue of one IOMMU.

    Parameters
    ----------
    regs : Registers
        The IOMMU's registers.
    alloc : PageAllocator
        Where the ring and the fence completion word are allocated.
    entries : int
        Ring size, a power of two from 2 to 2**20 (``cqb.LOG2SZ-1`` is 0 to 19 here;
        N-1 commands fit).

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
        self.completion = None
        self.sequence = 0
        self._tail = 0
        self._head = 0
        self._interrupts = False

    def enable(self, *, interrupts=False):
        """Allocate the ring and turn the queue on (spec "Guidelines for initialization").

        ``cqb`` is written with the ring's PPN and LOG2SZ-1, then ``cqt=0``, then
        ``cqcsr.cqen=1``; ``cqcsr.cqon`` is polled until it reads 1.
        """
        if self.regs.field(Offset.CQCSR, "cqon"):
            # A queue left on by an earlier owner: turn it off before moving its base.
            self.regs.write(Offset.CQCSR, 0)
            self.regs.poll(Offset.CQCSR, "cqon", 0)
        # A whole page at least, aligned to the greater of 4 KiB and the queue's size
        # (spec "Command-queue base (cqb)").
        size = max(PAGE_SIZE, self.entries * CMD_SIZE)
        if self.base is not None:
            self.alloc.free(self.base)  # the ring of an earlier enable; the queue is off
        self.base = self.alloc.alloc(size, align=size)
        if self.completion is None:
            self.completion = self.alloc.alloc(PAGE_SIZE)
        self.entries = program_base(self.regs, Offset.CQB, self.entries, self.base)
        self.regs.write(Offset.CQT, 0)
        self._tail = self._head = 0
        self._interrupts = bool(interrupts)
        self.regs.write(Offset.CQCSR, self._csr())
        self.regs.poll(Offset.CQCSR, "cqon", 1)

    def _csr(self, **clear):
        # cqen and cie are plain RW bits; the error bits are RW1C, so they are written as
        # 1 only when the caller means to clear them.
        return bits.pack(CQCSR, cqen=1, cie=self._interrupts, **clear)

    @property
    def tail(self):
        """The software copy of ``cqt``: the index the next command goes to."""
        return self._tail

    def submit(self, *cmds):
        """Append ``cmds`` (128-bit integers) to the ring and publish them in ``cqt``.

        When the ring is full the commands written so far are published and ``cqh`` is
        polled until there is room (bounded; an error bit in ``cqcsr`` raises).
        """
        mask = self.entries - 1
        for cmd in cmds:
            if (self._tail + 1) & mask == self._head:
                self._wait_for_room()
            self.bus.mem_write(self.base + self._tail * CMD_SIZE, commands.to_bytes(cmd))
            self._tail = (self._tail + 1) & mask
        if cmds:
            self.regs.write(Offset.CQT, self._tail)

    def _wait_for_room(self):
        mask = self.entries - 1
        self.regs.write(Offset.CQT, self._tail)
        for _ in range(self.regs.max_polls):
            self.check()
            self._head = self.regs.read(Offset.CQH) & mask
            if (self._tail + 1) & mask != self._head:
                return
        raise PollTimeout("room in the command queue (cqh to advance)", self.regs.max_polls)

    def fence(self, *, pr=False, pw=False):
        """Submit ``IOFENCE.C`` with ``AV=1`` and wait until it has completed.

        Completion is the sequence number appearing in the completion word *and* ``cqh``
        moving past the fence (spec "IOMMU Command-queue Fence commands"): only then are all earlier
        commands done.

        Returns
        -------
        int
            The sequence number the fence stored.

        Raises
        ------
        CommandIllegal, CommandMemoryFault, CommandTimeout
            If ``cqcsr`` reports an error while waiting.
        PollTimeout
            If the fence did not complete within the poll bound.
        """
        self.sequence = (self.sequence + 1) & 0xFFFF_FFFF
        index = self._tail
        self.submit(commands.iofence_c(addr=self.completion, data=self.sequence, pr=pr, pw=pw))
        for _ in range(self.regs.max_polls):
            self.check()
            stored = int.from_bytes(self.bus.mem_read(self.completion, 4), "little")
            self._head = self.regs.read(Offset.CQH) & (self.entries - 1)
            if stored == self.sequence and self._passed(index):
                return self.sequence
        raise PollTimeout(f"IOFENCE.C #{self.sequence} at cqh index {index} to complete",
                          self.regs.max_polls)

    def _passed(self, index):
        # The commands still pending are cqh, cqh+1, ..., cqt-1 (mod N).
        mask = self.entries - 1
        pending = (self._tail - self._head) & mask
        return (index - self._head) & mask >= pending

    def check(self):
        """Raise the error ``cqcsr`` reports, if any (spec "Command-queue CSR (cqcsr)").

        Raises
        ------
        CommandMemoryFault, CommandIllegal, CommandTimeout
            With the index ``cqh`` stopped at and the command found there.
        """
        csr = self.regs.read(Offset.CQCSR)
        for name, error in _ERRORS:
            if bits.get(CQCSR, csr, name):
                index = self.regs.read(Offset.CQH) & (self.entries - 1)
                raw = self.bus.mem_read(self.base + index * CMD_SIZE, CMD_SIZE)
                raise error(index, commands.from_bytes(raw))

    def recover(self):
        """Restart a queue that stopped on an error.

        After ``cmd_ill`` the IOMMU would fetch the bad command again, so it is replaced by
        a harmless ``IOFENCE.C`` without ``AV`` first. Then every error bit is cleared by
        writing 1 (RW1C); clearing them all re-enables command processing (spec
        "Command-queue CSR (cqcsr)").
        """
        csr = self.regs.read(Offset.CQCSR)
        errors = {name: 1 for name, _ in _ERRORS if bits.get(CQCSR, csr, name)}
        if "cmd_ill" in errors:
            index = self.regs.read(Offset.CQH) & (self.entries - 1)
            nop = commands.to_bytes(commands.iofence_c())
            self.bus.mem_write(self.base + index * CMD_SIZE, nop)
        self.regs.write(Offset.CQCSR, self._csr(**errors))
