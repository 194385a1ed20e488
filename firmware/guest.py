"""A guest's view of memory: guest physical addresses translated by a second-stage table.

With nested translation (RISC-V IOMMU spec "Process to translate an IOVA", by the Privileged
spec's "Two-Stage Address Translation") the first-stage table belongs to a guest: it lives at
guest physical addresses and its PTEs hold GPAs. :class:`GuestMemory` is a
:class:`~iogate.firmware.bus.Bus` for memory only that maps each GPA through the host's second-stage
:class:`~iogate.firmware.pagetable.PageTable`, so a guest-side
:class:`~iogate.firmware.pagetable.PageTable` and :class:`~iogate.firmware.alloc.PageAllocator` can
be built on it unchanged, exactly as the guest's own driver would build them.
"""

from iogate.firmware.alloc import PAGE_SIZE
from iogate.firmware.errors import GuestAddressError
from iogate.firmware.pagetable import Stage

__all__ = ["GuestMemory"]


class GuestMemory:
    """Guest physical memory behind ``second_stage``.

    Parameters
    ----------
    bus : Bus
        The host's bus (system physical addresses).
    second_stage : PageTable
        The guest's second-stage table (``Stage.SECOND``).

    Raises
    ------
    ValueError
        If ``second_stage`` is a first-stage table.
    """

    def __init__(self, bus, second_stage):
        if second_stage.stage is not Stage.SECOND:
            raise ValueError("GuestMemory needs a second-stage table, not a first-stage one")
        self.bus = bus
        self.second_stage = second_stage

    def _pieces(self, gpa, length, write):
        # Split at 4 KiB boundaries: each piece may sit on a different host page.
        while length > 0:
            n = min(length, PAGE_SIZE - gpa % PAGE_SIZE)
            t = self.second_stage.lookup(gpa)
            if t is None or not t.r or (write and not t.w):
                kind = "write" if write else "read"
                raise GuestAddressError(f"guest physical address {gpa:#x} is not mapped for {kind}")
            yield t.pa, n
            gpa += n
            length -= n

    def mem_read(self, address, length):
        return b"".join(self.bus.mem_read(pa, n) for pa, n in self._pieces(address, length, False))

    def mem_write(self, address, data):
        data = bytes(data)
        pos = 0
        for pa, n in self._pieces(address, len(data), True):
            self.bus.mem_write(pa, data[pos:pos + n])
            pos += n

    def mmio_read(self, offset, size):
        raise TypeError("guest memory has no IOMMU registers")

    def mmio_write(self, offset, size, value):
        raise TypeError("guest memory has no IOMMU registers")
