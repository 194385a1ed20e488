"""The device directory: device_id split, walk, context layout, pruning."""

import pytest

from iogate.hdl.regs import IommuMode

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.ddt import DeviceContext, DeviceDirectory, ddi

from iogate.cosim.model.memory import Memory

BASE = 0x2000_0000


class MemoryBus:
    def __init__(self):
        self.memory = Memory()
        self.writes = []

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.writes.append((address, bytes(data)))
        self.memory.write(address, data)


def make(mode):
    bus = MemoryBus()
    alloc = PageAllocator(bus, BASE, 1 << 20)
    root = alloc.alloc()
    return bus, alloc, DeviceDirectory(bus, alloc, mode, root)


def test_device_id_split():
    # 0xABCDEF = 1010_1011 1100_1101 1110_1111: DDI[0] = bits 6:0 = 0x6F, DDI[1] = bits
    # 15:7 = 0x19B, DDI[2] = bits 23:16 = 0xAB (spec "Process to translate an IOVA", base format).
    assert ddi(0xABCDEF) == (0x6F, 0x19B, 0xAB)


def test_three_level_walk_allocates_non_leaf_pages():
    bus, _, ddt = make(IommuMode.LVL3)
    address = ddt.dc_address(0xABCDEF, create=True)
    # Root 0x2000_0000; the DDI[1] page 0x2000_1000; the leaf page 0x2000_2000.
    # A DDTE is V=1 with the PPN at bit 10.
    assert bus.memory.read64(BASE + 0xAB * 8) == 0x20001 << 10 | 1
    assert bus.memory.read64(BASE + 0x1000 + 0x19B * 8) == 0x20002 << 10 | 1
    assert address == BASE + 0x2000 + 0x6F * 32
    # A neighbour in the same leaf page needs no new page.
    assert ddt.dc_address(0xABCDEE, create=True) == BASE + 0x2000 + 0x6E * 32


def test_unreachable_context_reads_as_invalid():
    _, alloc, ddt = make(IommuMode.LVL2)
    assert ddt.dc_address(0x1234) is None
    assert ddt.read(0x1234) == DeviceContext()
    assert len(alloc.allocated) == 1  # reading allocated nothing


def test_one_level_context_layout():
    bus, _, ddt = make(IommuMode.LVL1)
    dc = DeviceContext(tc=0x11, iohgatp=0x22, ta=0x33, fsc=0x44)
    ddt.write(5, dc)
    # tc, iohgatp, ta, fsc at +0, +8, +16, +24 of root + 5 * 32, little-endian.
    assert [bus.memory.read64(BASE + 160 + 8 * i) for i in range(4)] == [0x11, 0x22, 0x33, 0x44]
    assert ddt.read(5) == dc and dc.valid
    with pytest.raises(ValueError, match=r"^device_id 0x80 does not fit the 7 bits of LVL1$"):
        ddt.write(128, dc)


def test_words_are_stored_in_the_order_asked():
    bus, _, ddt = make(IommuMode.LVL1)
    ddt.write(0, DeviceContext(1, 2, 3, 4), words=("fsc", "ta", "iohgatp", "tc"))
    assert [(a - BASE, int.from_bytes(d, "little")) for a, d in bus.writes[-4:]] == [
        (24, 4), (16, 3), (8, 2), (0, 1)]


def test_prune_unlinks_empty_pages_up_the_walk():
    bus, alloc, ddt = make(IommuMode.LVL3)
    ddt.write(0x10_0001, DeviceContext(tc=1))
    ddt.write(0x10_0002, DeviceContext(tc=1))
    mid, leaf = BASE + 0x1000, BASE + 0x2000
    assert ddt.prune(0x10_0001) == []  # both still valid
    ddt.write(0x10_0001, DeviceContext())
    assert ddt.prune(0x10_0001) == []  # 0x10_0002 still valid in the leaf page
    ddt.write(0x10_0002, DeviceContext())
    assert ddt.prune(0x10_0002) == [leaf, mid]
    assert bus.memory.read64(BASE + 0x10 * 8) == 0  # root entry DDI[2] = 0x10 cleared
    assert ddt.dc_address(0x10_0002) is None
    assert ddt.prune(0x10_0002) == []  # nothing left to unlink


def test_prune_keeps_a_middle_page_with_other_leaves():
    _, _, ddt = make(IommuMode.LVL3)
    ddt.write(0x10_0001, DeviceContext(tc=1))
    ddt.write(0x10_8001, DeviceContext(tc=1))  # DDI[1] = 0x100: another leaf page
    ddt.write(0x10_0001, DeviceContext())
    assert ddt.prune(0x10_0001) == [BASE + 0x2000]
    assert ddt.dc_address(0x10_8001) is not None


def test_constructor_errors():
    bus = MemoryBus()
    with pytest.raises(ValueError, match=r"^mode must be LVL1, LVL2 or LVL3, not BARE$"):
        DeviceDirectory(bus, None, IommuMode.BARE, 0)
    with pytest.raises(ValueError, match=r"^root must be 4 KiB aligned, not 0x800$"):
        DeviceDirectory(bus, None, IommuMode.LVL1, 0x800)
    with pytest.raises(ValueError, match=r"^a device context is 32 bytes, not 8$"):
        DeviceContext.from_bytes(bytes(8))
