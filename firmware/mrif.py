"""Memory-resident interrupt files (MRIFs): allocation and reading their pending bits.

AIA "Memory-resident interrupt files" (reference N.4.4): an MRIF is 512 bytes, 512-byte
aligned, 32 pairs of little-endian doublewords (always little-endian, whatever ``fctl.BE``
says). Pair k (offset ``16 * k``) holds the pending bits (first doubleword) and the enable
bits (second) of identities ``64k .. 64k + 63``. An IOMMU with ``capabilities.MSI_MRIF`` sets
identity D's pending bit when an MSI with data D reaches an MRIF-mode MSI PTE, then sends the
PTE's notice MSI; the hypervisor reads (and clears) the pending bits when the notice comes.

The allocator hands out 512-byte slots of 4 KiB pages from a
:class:`~iogate.firmware.alloc.PageAllocator` (whose smallest block is a page).
"""

from iogate.hdl.formats import MRIF_SIZE

from iogate.firmware.alloc import PAGE_SIZE

__all__ = ["Mrif", "MrifAllocator", "IDENTITIES"]

#: Identities an MRIF holds (0 to 2047; identity 0's bit is a "faux" pending bit).
IDENTITIES = 2048


class Mrif:
    """The MRIF at ``address`` (512-byte aligned) in ``bus``'s memory."""

    def __init__(self, bus, address):
        if not isinstance(address, int) or address % MRIF_SIZE:
            raise ValueError(f"an MRIF is 512-byte aligned, not at {address!r}")
        self.bus = bus
        self.address = address

    @staticmethod
    def _check(identity):
        if not isinstance(identity, int) or isinstance(identity, bool):
            raise TypeError(f"identity must be an integer, not {identity!r}")
        if not 0 <= identity < IDENTITIES:
            raise ValueError(f"identity must be between 0 and {IDENTITIES - 1}, not {identity}")

    def _dword(self, offset):
        return int.from_bytes(self.bus.mem_read(self.address + offset, 8), "little")

    def _put(self, offset, value):
        self.bus.mem_write(self.address + offset, value.to_bytes(8, "little"))

    def pending_address(self, identity):
        """The pending doubleword of ``identity`` (``MRIF + (D // 64) * 16``)."""
        self._check(identity)
        return self.address + identity // 64 * 16

    def is_pending(self, identity):
        self._check(identity)
        return bool(self._dword(identity // 64 * 16) >> identity % 64 & 1)

    def pending(self):
        """Every identity whose pending bit is 1, in order."""
        raw = self.bus.mem_read(self.address, MRIF_SIZE)
        out = []
        for k in range(IDENTITIES // 64):
            word = int.from_bytes(raw[16 * k:16 * k + 8], "little")
            out += [64 * k + i for i in range(64) if word >> i & 1]
        return out

    def clear(self, identity):
        """Clear ``identity``'s pending bit (the hypervisor took the interrupt)."""
        self._check(identity)
        offset = identity // 64 * 16
        self._put(offset, self._dword(offset) & ~(1 << identity % 64))

    def set_enabled(self, identity, enabled=True):
        """Set or clear ``identity``'s enable bit (the IOMMU ignores it: the notice is sent
        for every recorded MSI)."""
        self._check(identity)
        offset = identity // 64 * 16 + 8
        word = self._dword(offset)
        bit = 1 << identity % 64
        self._put(offset, word | bit if enabled else word & ~bit)

    def enabled(self):
        """Every identity whose enable bit is 1."""
        raw = self.bus.mem_read(self.address, MRIF_SIZE)
        out = []
        for k in range(IDENTITIES // 64):
            word = int.from_bytes(raw[16 * k + 8:16 * k + 16], "little")
            out += [64 * k + i for i in range(64) if word >> i & 1]
        return out


class MrifAllocator:
    """512-byte aligned, zeroed MRIFs carved from pages of ``alloc``."""

    def __init__(self, bus, alloc):
        self.bus = bus
        self.alloc = alloc
        self._free: list[int] = []
        self._pages: dict[int, int] = {}     # page -> slots in use

    def alloc_mrif(self):
        """A new MRIF (all pending and enable bits 0)."""
        if not self._free:
            page = self.alloc.alloc(PAGE_SIZE)
            self._pages[page] = 0
            self._free = [page + i * MRIF_SIZE for i in range(PAGE_SIZE // MRIF_SIZE)][::-1]
        address = self._free.pop()
        self.bus.mem_write(address, bytes(MRIF_SIZE))
        self._pages[address - address % PAGE_SIZE] += 1
        return Mrif(self.bus, address)

    def free_mrif(self, mrif):
        """Give ``mrif`` back (after its MSI PTE is invalid and invalidated); a page with
        no MRIF left goes back to the page allocator."""
        address = mrif.address if isinstance(mrif, Mrif) else mrif
        page = address - address % PAGE_SIZE
        if page not in self._pages or address in self._free:
            raise ValueError(f"no MRIF is allocated at {address:#x}")
        self._pages[page] -= 1
        self._free.append(address)
        if not self._pages[page]:
            del self._pages[page]
            self._free = [a for a in self._free if a - a % PAGE_SIZE != page]
            self.alloc.free(page)
