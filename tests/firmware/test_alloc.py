"""The page allocator: alignment, zeroing, reuse, and its argument checks."""

import pytest

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.errors import IommuError, OutOfMemory

from iogate.cosim.model.memory import Memory


class MemoryBus:
    """A Bus with memory only: the allocator never touches registers."""

    def __init__(self):
        self.memory = Memory()

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, data)


def make(base=0x8000_0000, size=1 << 20):
    bus = MemoryBus()
    return bus, PageAllocator(bus, base, size)


def test_pages_come_in_order_and_are_zeroed():
    bus, alloc = make()
    bus.memory.write(0x8000_0000, b"\xff" * 8192)
    assert alloc.alloc() == 0x8000_0000
    assert alloc.alloc() == 0x8000_1000
    assert bus.memory.read(0x8000_0000, 8192) == bytes(8192)


def test_sixteen_kib_root_is_sixteen_kib_aligned():
    # The Sv39x4/Sv48x4 root: 16 KiB, 16 KiB aligned (spec "IO hypervisor guest
    # address translation and protection (iohgatp)"). One page is taken first, so the root must skip
    # to 0x8000_4000.
    _, alloc = make()
    alloc.alloc()
    assert alloc.alloc(16384, align=16384) == 0x8000_4000
    # The gap left below the root is used by the next page.
    assert alloc.alloc() == 0x8000_1000


def test_queue_aligned_to_its_size():
    # A 512-entry command queue is 8 KiB, naturally aligned (spec "Command-queue base (cqb)").
    _, alloc = make(base=0x8000_1000)
    assert alloc.alloc(8192, align=8192) == 0x8000_2000


def test_free_coalesces_and_reuses():
    _, alloc = make(size=4 * 4096)
    pages = [alloc.alloc() for _ in range(4)]
    assert alloc.free_bytes == 0
    for p in pages[1:3]:
        alloc.free(p)
    assert alloc.free_bytes == 8192
    # The two freed neighbours form one 8 KiB block again.
    assert alloc.alloc(8192) == pages[1]
    assert alloc.allocated == {pages[0]: 4096, pages[1]: 8192, pages[3]: 4096}


def test_out_of_memory():
    _, alloc = make(size=8192)
    alloc.alloc()
    with pytest.raises(OutOfMemory, match=r"^no free block of 0x2000 bytes aligned to 0x1000$"):
        alloc.alloc(8192)
    assert issubclass(OutOfMemory, IommuError) and issubclass(OutOfMemory, MemoryError)


def test_no_zeroing_when_asked():
    bus, alloc = make()
    bus.memory.write(0x8000_0000, b"\x5a" * 16)
    address = alloc.alloc(zero=False)
    assert bus.memory.read(address, 16) == b"\x5a" * 16


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=100), "size must be a positive multiple of 4096, not 100"),
    (dict(size=0), "size must be a positive multiple of 4096, not 0"),
    (dict(align=2048), "align must be a power of two of at least 4096, not 2048"),
    (dict(align=12288), "align must be a power of two of at least 4096, not 12288"),
])
def test_alloc_argument_errors(kwargs, message):
    _, alloc = make()
    with pytest.raises(ValueError) as e:
        alloc.alloc(**kwargs)
    assert str(e.value) == message


def test_double_free():
    _, alloc = make()
    page = alloc.alloc()
    alloc.free(page)
    with pytest.raises(ValueError, match=r"^no block is allocated at 0x80000000$"):
        alloc.free(page)


@pytest.mark.parametrize("base, size, error, message", [
    (0x800, 4096, ValueError, "base must be a non-negative multiple of 4096, not 0x800"),
    (0, 0, ValueError, "size must be a positive multiple of 4096, not 0x0"),
    (0, 4097, ValueError, "size must be a positive multiple of 4096, not 0x1001"),
    ("0", 4096, TypeError, "base must be an integer, not '0'"),
    (0, 4096.0, TypeError, "size must be an integer, not 4096.0"),
])
def test_constructor_errors(base, size, error, message):
    with pytest.raises(error) as e:
        PageAllocator(MemoryBus(), base, size)
    assert str(e.value) == message
