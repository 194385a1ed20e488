"""Sv57 and Sv57x4 tables built by :class:`iogate.firmware.pagetable.PageTable`, walked by the
model (:class:`iogate.cosim.model.walk.Walker`, written from the Privileged spec "Sv57" and
"Two-Stage Address Translation"): what the model translates each address to, and how it
faults, is the expected value; a few PTEs are also checked by hand (PTE bits as in
test_pagetable: V=0 ... D=7, PPN at 10; every leaf has U, A and D: 0xD0 | V R W X).
"""

import random

import pytest

from iogate.hdl.formats import IohgatpMode, IosatpMode
from iogate.hdl.port import Access

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.pagetable import PageTable

from iogate.cosim.model.memory import Memory
from iogate.cosim.model.walk import PAGE_FAULT, TranslationFault, Walker

BASE = 0x1000_0000
KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
SV57, SV57X4 = IosatpMode.SV57, IohgatpMode.SV57X4


class MemoryBus:
    def __init__(self):
        self.memory = Memory()

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, data)


def make(*modes):
    bus = MemoryBus()
    alloc = PageAllocator(bus, BASE, 64 * MIB)
    walker = Walker(bus.memory.read64, svpbmt=False)
    return (bus.memory, walker, *(PageTable(bus, alloc, mode) for mode in modes))


def s_walk(walker, pt, iova, access=Access.READ, **kwargs):
    """(output address, leaf size) of ``iova`` on the model, or the fault's cause."""
    try:
        leaf = walker.s_stage(iova, access, pt.mode, pt.root >> 12, **kwargs)
    except TranslationFault as fault:
        return fault.cause
    return leaf.ppn_of(iova) << 12 | iova & 0xFFF, leaf.size


def g_walk(walker, pt, gpa, access=Access.READ):
    try:
        leaf = walker.g_stage(gpa, access, pt.mode, pt.root >> 12)
    except TranslationFault as fault:
        return fault.cause, fault.iotval2
    return leaf.ppn_of(gpa) << 12 | gpa & 0xFFF, leaf.size


def test_sv57_256t_page_is_one_root_entry():
    memory, walker, pt = make(SV57)
    iova = 3 << 48
    pt.map(iova, 5 << 48, 256 * TIB, r=True, w=True)
    # Root (level 4) entry 3: PPN 5 << 36, V R W U A D; no other table page.
    assert memory.read64(pt.root + 3 * 8) == (5 << 36) << 10 | 0xD7
    assert s_walk(walker, pt, iova + 0x1234_5678_9ABC) == ((5 << 48) + 0x1234_5678_9ABC,
                                                          256 * TIB)
    assert s_walk(walker, pt, iova - 0x1000) == PAGE_FAULT[Access.READ]
    assert pt.lookup(iova + 0x1000).size == 256 * TIB


def test_sv57_sizes_chosen_by_alignment_and_walked_by_the_model():
    _, walker, pt = make(SV57)
    # 256 TiB + 512 GiB + 2 MiB + 64 KiB + 4 KiB, each aligned for its size.
    iova, pa = 1 << 49, 1 << 50
    size = 256 * TIB + 512 * GIB + 2 * MIB + 64 * KIB + 4 * KIB
    pt.map(iova, pa, size, r=True, x=True)
    expect = [(0, 256 * TIB), (256 * TIB, 512 * GIB), (256 * TIB + 512 * GIB, 2 * MIB),
              (256 * TIB + 512 * GIB + 2 * MIB, 64 * KIB),
              (256 * TIB + 512 * GIB + 2 * MIB + 64 * KIB, 4 * KIB)]
    for offset, page in expect:
        for inside in (0, page - 8):
            address = iova + offset + inside
            assert s_walk(walker, pt, address, Access.EXECUTE) == (pa + offset + inside, page)
    assert s_walk(walker, pt, iova + size) == PAGE_FAULT[Access.READ]
    assert s_walk(walker, pt, iova, Access.WRITE) == PAGE_FAULT[Access.WRITE]


def test_sv57_upper_half_and_canonical_range():
    memory, walker, pt = make(SV57)
    iova = (1 << 64) - (1 << 56)        # -2**56: VA bit 56 set, root index 256
    pt.map(iova, 2 * GIB, GIB, r=True)
    assert memory.read64(pt.root + 256 * 8) & 1
    assert s_walk(walker, pt, iova + 0x123) == (2 * GIB + 0x123, GIB)
    # 1 << 56 is not canonical for Sv57: the model faults before reading, the builder refuses.
    assert s_walk(walker, pt, 1 << 56) == PAGE_FAULT[Access.READ]
    with pytest.raises(ValueError, match="not inside one canonical half of the 57-bit space"):
        pt.map(1 << 56, 0, 4 * KIB, r=True)
    # Sv48's upper bound is a plain Sv57 address.
    pt.map(1 << 48, 0x4000_0000, 4 * KIB, r=True)
    assert s_walk(walker, pt, (1 << 48) + 8) == (0x4000_0008, 4 * KIB)


def test_sv57_partial_unmap_splits_a_256t_page():
    _, walker, pt = make(SV57)
    pt.map(0, 0, 256 * TIB, r=True)
    changes = pt.unmap(3 * TIB, 4 * KIB)
    # The 256 TiB leaf went (one leaf change), the rest keeps its translation.
    assert changes.leaves[0] == (0, 256 * TIB)
    assert s_walk(walker, pt, 3 * TIB) == PAGE_FAULT[Access.READ]
    assert s_walk(walker, pt, 3 * TIB + 4 * KIB) == (3 * TIB + 4 * KIB, 4 * KIB)
    # Split level by level: 512 GiB, then 1 GiB, 2 MiB and 4 KiB around the hole.
    for address, page in ((3 * TIB - 8, 512 * GIB), (3 * TIB + GIB, GIB),
                          (3 * TIB + 2 * MIB + 8, 2 * MIB), (200 * TIB, 512 * GIB)):
        assert s_walk(walker, pt, address) == (address, page)


def test_sv57x4_root_index_and_gpa_width():
    memory, walker, pt = make(SV57X4)
    assert pt.root_size == 16 * KIB and pt.root % (16 * KIB) == 0
    # GPA bit 58 set: root index (gpa >> 48) & 0x7FF = 1024, entry at root + 0x2000.
    gpa = 1 << 58
    pt.map(gpa, 7 << 48, 256 * TIB, r=True, w=True)
    assert memory.read64(pt.root + 0x2000) == (7 << 36) << 10 | 0xD7
    assert g_walk(walker, pt, gpa + 0x55_0000_1234) == ((7 << 48) + 0x55_0000_1234, 256 * TIB)
    # The top of the 59-bit space: root index 0x7FF.
    top = (1 << 59) - 4 * KIB
    pt.map(top, 0x8000_0000, 4 * KIB, r=True)
    assert g_walk(walker, pt, top + 4) == (0x8000_0004, 4 * KIB)
    # Bit 59 is beyond Sv57x4: a guest-page fault with the GPA in iotval2.
    assert g_walk(walker, pt, 1 << 59) == (21, 1 << 59)
    with pytest.raises(ValueError, match="59-bit guest physical space of SV57X4"):
        pt.map(1 << 59, 0, 4 * KIB, r=True)


def test_sv57_over_sv57x4():
    # The G-stage maps GPA 0 - 256 TiB to itself (the table pages' GPAs) and GPA 1 << 55
    # (root index 128) with 512 GiB pages to 1 << 52; the first stage maps IOVA 3 << 54
    # (above bit 47) to GPA 1 << 55 and a 256 TiB page to GPA 0. (A first-stage leaf's PPN
    # has 44 bits: GPAs from 1 << 56 up are reached only with the first stage Bare.)
    _, walker, s_pt, g_pt = make(SV57, SV57X4)
    g_pt.map(0, 0, 256 * TIB, r=True, w=True)
    g_pt.map(1 << 55, 1 << 52, 1024 * GIB, r=True, w=True, x=True)
    s_pt.map(3 << 54, 1 << 55, 2 * MIB, r=True, w=True)
    s_pt.map(2 << 48, 0, 256 * TIB, r=True)

    def two(iova, access=Access.READ):
        # The first stage (its PTE addresses through the G-stage), then the G-stage for the
        # leaf's GPA: the model's two steps (IOMMU spec "Process to translate an IOVA").
        first = s_walk(walker, s_pt, iova, access, g_mode=g_pt.mode, g_root=g_pt.root >> 12)
        return first if isinstance(first, int) else (first, g_walk(walker, g_pt, first[0],
                                                                   access))
    gpa = (1 << 55) + 0x1F_F008
    assert two((3 << 54) + 0x1F_F008, Access.WRITE) == ((gpa, 2 * MIB),
                                                          ((1 << 52) + 0x1F_F008, 512 * GIB))
    assert two((2 << 48) + 0x12_3456_7000) == ((0x12_3456_7000, 256 * TIB),
                                               (0x12_3456_7000, 256 * TIB))
    assert two((2 << 48) + 8, Access.WRITE) == PAGE_FAULT[Access.WRITE]
    assert two(3 << 48) == PAGE_FAULT[Access.READ]


def test_sv57_random_maps_against_lookup_and_model():
    # Seeded random mappings of every size; the builder's own lookup and the model agree
    # on every mapped address.
    seed = 57
    print(f"seed {seed}")
    rng = random.Random(seed)
    _, walker, pt = make(SV57)
    sizes = [4 * KIB, 64 * KIB, 2 * MIB, GIB, 512 * GIB, 256 * TIB]
    for n in range(40):
        size = rng.choice(sizes)
        iova = rng.randrange(0, 1 << 56, size) & ~(size - 1)
        pa = rng.randrange(0, 1 << 56, size) & ~(size - 1)
        pt.map(iova, pa, size, r=True, w=bool(n & 1))
        probe = iova + rng.randrange(0, size, 8)
        got = pt.lookup(probe)
        assert got is not None and got.pa == pa + probe - iova
        assert s_walk(walker, pt, probe) == (got.pa, got.size)
