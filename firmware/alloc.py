"""A physical page allocator over a memory region the caller owns.

The driver's tables and queues need naturally aligned blocks: 4 KiB pages for page tables
and device-directory pages, 16 KiB-aligned 16 KiB roots for the Sv39x4/Sv48x4 second stage
(RISC-V IOMMU spec "IO hypervisor guest address translation and protection (iohgatp)"), and
queues aligned to the greater of 4 KiB and their size (spec "Command-queue base (cqb)", "Fault
queue base (fqb)"). This is a first-fit allocator over a sorted list of free intervals; blocks are
zeroed through the :class:`~iogate.firmware.bus.Bus` when handed out, because a table page must read
as all-invalid before the IOMMU may walk it.
"""

import bisect

from iogate.firmware.bus import Bus
from iogate.firmware.errors import OutOfMemory

__all__ = ["PAGE_SIZE", "PageAllocator"]

#: The smallest block: one 4 KiB page.
PAGE_SIZE = 4096


def _is_power_of_two(n):
    return n > 0 and n & (n - 1) == 0


class PageAllocator:
    """Hands out aligned, zeroed blocks of ``[base, base + size)``.

    Parameters
    ----------
    bus : Bus
        Used to zero blocks (``mem_write``).
    base : int
        First byte of the region; a multiple of 4 KiB.
    size : int
        Bytes in the region; a positive multiple of 4 KiB.

    Raises
    ------
    TypeError
        If ``base`` or ``size`` is not an integer.
    ValueError
        If ``base`` or ``size`` is negative, zero (``size``) or not a multiple of 4 KiB.
    """

    def __init__(self, bus: Bus, base: int, size: int) -> None:
        for name, value in (("base", base), ("size", size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if base < 0 or base % PAGE_SIZE:
            raise ValueError(f"base must be a non-negative multiple of 4096, not {base:#x}")
        if size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"size must be a positive multiple of 4096, not {size:#x}")
        self.bus = bus
        self.base = base
        self.size = size
        # Sorted, disjoint, non-adjacent [start, end) intervals of free memory.
        self._starts = [base]
        self._ends = [base + size]
        self._allocated: dict[int, int] = {}

    @property
    def free_bytes(self) -> int:
        """Bytes not currently allocated."""
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    @property
    def allocated(self) -> dict[int, int]:
        """``{address: size}`` of every block currently handed out."""
        return dict(self._allocated)

    def alloc(self, size: int = PAGE_SIZE, *, align: int = PAGE_SIZE, zero: bool = True) -> int:
        """A block of ``size`` bytes whose address is a multiple of ``align``.

        Parameters
        ----------
        size : int
            A positive multiple of 4 KiB.
        align : int
            A power of two, at least 4 KiB.
        zero : bool
            Write zeros over the block before returning it.

        Returns
        -------
        int
            The block's physical address.

        Raises
        ------
        ValueError
            If ``size`` or ``align`` is out of range.
        OutOfMemory
            If no free interval holds such a block.
        """
        if not isinstance(size, int) or size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"size must be a positive multiple of 4096, not {size!r}")
        if not isinstance(align, int) or align < PAGE_SIZE or not _is_power_of_two(align):
            raise ValueError(f"align must be a power of two of at least 4096, not {align!r}")
        for i, (start, end) in enumerate(zip(self._starts, self._ends, strict=True)):
            address = -(-start // align) * align
            if address + size <= end:
                self._take(i, address, address + size)
                self._allocated[address] = size
                if zero:
                    self._zero(address, size)
                return address
        raise OutOfMemory(f"no free block of {size:#x} bytes aligned to {align:#x}")

    def free(self, address: int) -> None:
        """Give back the block that :meth:`alloc` returned at ``address``.

        Raises
        ------
        ValueError
            If no block is allocated at ``address``.
        """
        size = self._allocated.pop(address, None)
        if size is None:
            raise ValueError(f"no block is allocated at {address:#x}")
        end = address + size
        i = bisect.bisect_left(self._starts, address)
        self._starts.insert(i, address)
        self._ends.insert(i, end)
        # Coalesce with the following and then the preceding interval.
        if i + 1 < len(self._starts) and self._starts[i + 1] == end:
            self._ends[i] = self._ends.pop(i + 1)
            self._starts.pop(i + 1)
        if i > 0 and self._ends[i - 1] == address:
            self._ends[i - 1] = self._ends.pop(i)
            self._starts.pop(i)

    def _take(self, i, lo, hi):
        start, end = self._starts[i], self._ends[i]
        pieces = [(s, e) for s, e in ((start, lo), (hi, end)) if e > s]
        self._starts[i:i + 1] = [s for s, _ in pieces]
        self._ends[i:i + 1] = [e for _, e in pieces]

    def _zero(self, address, size):
        chunk = bytes(min(size, 16 * PAGE_SIZE))
        for offset in range(0, size, len(chunk)):
            self.bus.mem_write(address + offset, chunk[:size - offset])
