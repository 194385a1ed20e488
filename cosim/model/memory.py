"""Sparse byte-addressed memory shared by the model, the driver and the test benches.

One ``Memory`` object is the system memory of a scenario: the driver writes tables into it,
the architectural model walks them, and in cosimulation the AXI slave that serves the RTL's
memory master reads and writes the very same object. Access faults can be injected on
address ranges; a read or write touching one raises :class:`AccessFault`, which the model
turns into the spec's access-fault causes and the AXI slave into SLVERR.
"""

__all__ = ["Memory", "AccessFault"]

_PAGE = 4096


class AccessFault(Exception):
    """A memory access hit an injected fault range (a bus error, AXI SLVERR)."""

    def __init__(self, address: int, length: int) -> None:
        super().__init__(f"access fault at {address:#x} (+{length})")
        self.address = address
        self.length = length


class Memory:
    """Sparse memory: unwritten bytes read as 0.

    Parameters
    ----------
    size : int
        Addresses range over ``[0, size)``; the default covers a 56-bit physical space.
    """

    def __init__(self, size: int = 1 << 56) -> None:
        self.size = size
        self._pages: dict[int, bytearray] = {}
        self._faults: list[tuple[int, int]] = []

    def _check(self, address, length):
        if address < 0 or length < 0 or address + length > self.size:
            raise AccessFault(address, length)
        for lo, hi in self._faults:
            if address < hi and lo < address + length:
                raise AccessFault(address, length)

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes from ``address``. Raises :class:`AccessFault`."""
        self._check(address, length)
        out = bytearray()
        while length:
            base, off = address & ~(_PAGE - 1), address & (_PAGE - 1)
            n = min(length, _PAGE - off)
            page = self._pages.get(base)
            out += page[off:off + n] if page is not None else bytes(n)
            address += n
            length -= n
        return bytes(out)

    def write(self, address: int, data: bytes) -> None:
        """Store ``data`` at ``address``. Raises :class:`AccessFault`."""
        data = bytes(data)
        self._check(address, len(data))
        pos = 0
        while pos < len(data):
            base, off = address & ~(_PAGE - 1), address & (_PAGE - 1)
            n = min(len(data) - pos, _PAGE - off)
            page = self._pages.setdefault(base, bytearray(_PAGE))
            page[off:off + n] = data[pos:pos + n]
            address += n
            pos += n

    def read64(self, address: int) -> int:
        return int.from_bytes(self.read(address, 8), "little")

    def write64(self, address: int, value: int) -> None:
        self.write(address, (value & (2**64 - 1)).to_bytes(8, "little"))

    def inject_fault(self, address: int, length: int = 8) -> None:
        """Make every access overlapping ``[address, address+length)`` fail."""
        self._faults.append((address, address + length))

    def clear_faults(self) -> None:
        self._faults.clear()

    def is_faulty(self, address: int, length: int) -> bool:
        try:
            self._check(address, length)
        except AccessFault:
            return True
        return False


class OverlayMemory(Memory):
    """A view of ``below`` whose writes stay in the view.

    In cosimulation the model and the RTL read the same tables, but each must make its
    own stores (IOFENCE.C completion words, fault records): the driver has to see the
    hardware's, and the checker compares the two. The model therefore gets an overlay:
    reads see ``below`` patched with the overlay's own writes; writes go to the overlay
    only. Injected faults are those of ``below`` (both sides see the same bus errors).
    """

    def __init__(self, below: Memory) -> None:
        self.below = below
        self.size = below.size
        self._bytes: dict[int, int] = {}
        self._written: set[int] = set()     # pages with a byte in _bytes

    def read(self, address: int, length: int) -> bytes:
        data = self.below.read(address, length)
        first, last = address // _PAGE, (address + length - 1) // _PAGE
        if not any(p in self._written for p in range(first, last + 1)):
            return data
        out = bytearray(data)
        for i in range(length):
            b = self._bytes.get(address + i)
            if b is not None:
                out[i] = b
        return bytes(out)

    def write(self, address: int, data: bytes) -> None:
        data = bytes(data)
        self.below._check(address, len(data))
        for i, b in enumerate(data):
            self._bytes[address + i] = b
            self._written.add((address + i) // _PAGE)

    def inject_fault(self, address: int, length: int = 8) -> None:
        self.below.inject_fault(address, length)

    def clear_faults(self) -> None:
        self.below.clear_faults()

    def is_faulty(self, address: int, length: int) -> bool:
        return self.below.is_faulty(address, length)

    def _check(self, address, length):
        self.below._check(address, length)


__all__.append("OverlayMemory")
