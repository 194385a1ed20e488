"""Guest memory: GPAs reach system memory through the second-stage table."""

import pytest

from iogate.hdl.formats import IohgatpMode, IosatpMode

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.errors import GuestAddressError
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.model.memory import Memory


class MemoryBus:
    def __init__(self):
        self.memory = Memory()

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, data)


def setup():
    bus = MemoryBus()
    second = PageTable(bus, PageAllocator(bus, 0x100_0000, 1 << 20), IohgatpMode.SV39X4)
    # GPA page 0x5000 -> SPA 0x9000; GPA page 0x6000 -> SPA 0x3000 (read-only).
    second.map(0x5000, 0x9000, 0x1000, r=True, w=True)
    second.map(0x6000, 0x3000, 0x1000, r=True)
    return bus, second, GuestMemory(bus, second)


def test_accesses_split_at_pages():
    bus, _, guest = setup()
    bus.memory.write(0x9FFC, b"abcd")
    bus.memory.write(0x3000, b"efgh")
    assert guest.mem_read(0x5FFC, 8) == b"abcdefgh"
    guest.mem_write(0x5FFE, b"XY")
    assert bus.memory.read(0x9FFE, 2) == b"XY"


def test_unmapped_and_read_only():
    _, _, guest = setup()
    with pytest.raises(GuestAddressError, match=r"^guest physical address 0x7000 is not mapped "
                                                r"for read$"):
        guest.mem_read(0x6FFF, 2)
    with pytest.raises(GuestAddressError, match=r"^guest physical address 0x6000 is not mapped "
                                                r"for write$"):
        guest.mem_write(0x6000, b"x")


def test_a_guest_table_lives_in_guest_memory():
    bus, second, guest = setup()
    first = PageTable(guest, PageAllocator(guest, 0x5000, 0x1000), IosatpMode.SV39)
    assert first.root == 0x5000
    # Only the root fits in the guest's page; a 1 GiB leaf goes in the root itself, at
    # SPA 0x9000 + 8 * 1.
    first.map(1 << 30, 0, 1 << 30, r=True)
    assert bus.memory.read64(0x9008) == 0xD3


def test_refuses_a_first_stage_table_and_registers():
    bus, _, guest = setup()
    first = PageTable(bus, PageAllocator(bus, 0x200_0000, 1 << 20), IosatpMode.SV39)
    with pytest.raises(ValueError, match=r"^GuestMemory needs a second-stage table"):
        GuestMemory(bus, first)
    with pytest.raises(TypeError, match=r"^guest memory has no IOMMU registers$"):
        guest.mmio_read(0, 8)
