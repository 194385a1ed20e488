"""Page-table construction, checked entry by entry against PTEs worked by hand.

PTE bits (Privileged spec, "Sv39"): V=0, R=1, W=2, X=3, U=4, G=5, A=6, D=7, PPN at 10,
PBMT at 62:61, N at 63. Every leaf here has U, A and D set: 0xD0 | V R W X as given.
"""

import pytest

from iogate.hdl.formats import IohgatpMode, IosatpMode, Pbmt

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.pagetable import PageTable, Stage

from iogate.cosim.model.memory import Memory

BASE = 0x1000_0000
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


class MemoryBus:
    def __init__(self):
        self.memory = Memory()

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, data)


def make(mode=IosatpMode.SV39, **kwargs):
    bus = MemoryBus()
    alloc = PageAllocator(bus, BASE, 64 * MIB)
    return bus.memory, alloc, PageTable(bus, alloc, mode, **kwargs)


def pte_at(memory, address):
    return memory.read64(address)


def test_4k_leaf_and_its_walk():
    memory, _, pt = make()
    changes = pt.map(0x1000, 0x8000_0000, 4 * KIB, r=True, w=True)
    # Root 0x1000_0000, then the level-1 page 0x1000_1000 and level-0 page 0x1000_2000.
    assert pt.root == BASE
    assert pte_at(memory, BASE) == 0x10001 << 10 | 1
    assert pte_at(memory, BASE + 0x1000) == 0x10002 << 10 | 1
    # Entry 1 of the level-0 page: PPN 0x80000, V R W U A D.
    assert pte_at(memory, BASE + 0x2008) == 0x2000_00D7
    # A new mapping over nothing needs no invalidation.
    assert not changes and changes.stage is Stage.FIRST


def test_2m_superpage():
    memory, alloc, pt = make()
    pt.map(0x20_0000, 0x8020_0000, 2 * MIB, r=True)
    # Entry 1 of the level-1 page: PPN 0x80200, V R U A D; no level-0 page.
    assert pte_at(memory, BASE + 0x1008) == 0x2008_00D3
    assert len(alloc.allocated) == 2


def test_1g_superpage_read_execute():
    memory, _, pt = make()
    pt.map(GIB, GIB, GIB, r=True, x=True)
    assert pte_at(memory, BASE + 8) == 0x1000_00DB


def test_512g_superpage_sv48():
    memory, _, pt = make(IosatpMode.SV48)
    pt.map(1 << 39, 1 << 39, 1 << 39, r=True)
    # Root (level 3) entry 1: PPN 0x800_0000.
    assert pte_at(memory, BASE + 8) == 0x800_0000 << 10 | 0xD3


def test_napot_64k():
    memory, _, pt = make()
    pt.map(0x1_0000, 0x8001_0000, 64 * KIB, r=True, w=True)
    # Entries 16..31 of the level-0 page: N=1 and PPN 0x80010 with ppn[3:0]=0b1000.
    expected = 1 << 63 | 0x80018 << 10 | 0xD7
    assert [pte_at(memory, BASE + 0x2000 + 8 * i) for i in range(15, 33)] == \
        [0] + [expected] * 16 + [0]
    assert pt.lookup(0x1_5678).pa == 0x8001_5678
    assert pt.lookup(0x1_5000).size == 64 * KIB


def test_largest_pages_that_fit():
    # 0x1F_0000..0x60_1000 -> 0x801F_0000..: 64 KiB NAPOT up to 2 MiB, 2 MiB pages, 4 KiB.
    _, _, pt = make()
    pt.map(0x1F_0000, 0x801F_0000, 0x41_1000, r=True)
    assert pt.lookup(0x1F_0000).size == 64 * KIB
    assert pt.lookup(0x20_0000).size == 2 * MIB
    assert pt.lookup(0x5F_F000).size == 2 * MIB
    assert pt.lookup(0x60_0000).size == 4 * KIB
    assert pt.lookup(0x60_1000) is None


def test_misaligned_pa_gives_small_pages():
    _, _, pt = make()
    pt.map(0x20_0000, 0x8020_1000, 2 * MIB, r=True)
    assert pt.lookup(0x20_0000).size == 4 * KIB
    assert pt.lookup(0x3F_F000).pa == 0x8040_0000


def test_pbmt_and_second_stage_user_bit():
    memory, _, pt = make(IohgatpMode.SV39X4, svpbmt=True)
    pt.map(0x1000, 0x9000, 4 * KIB, r=True, pbmt=Pbmt.NC)
    # Second-stage leaves carry U=1 as well; PBMT NC=1 at bits 62:61.
    root_pages = 4
    level0 = BASE + (root_pages + 1) * 0x1000
    assert pte_at(memory, level0 + 8) == 1 << 61 | 0x9 << 10 | 0xD3
    assert pt.lookup(0x1000).pbmt is Pbmt.NC


def test_x4_root_is_16k_with_an_11_bit_index():
    memory, alloc, pt = make(IohgatpMode.SV39X4)
    assert pt.root_size == 16 * KIB and pt.root % (16 * KIB) == 0
    assert pt.va_bits == 41
    # GPA bit 40 set: root index (gpa >> 30) & 0x7FF = 1024, entry at root + 0x2000.
    pt.map(1 << 40, 1 << 40, GIB, r=True)
    assert pte_at(memory, pt.root + 0x2000) == (1 << 28) << 10 | 0xD3
    with pytest.raises(ValueError, match="41-bit guest physical space of SV39X4"):
        pt.map(1 << 41, 0, 4 * KIB, r=True)


@pytest.mark.parametrize("mode, levels, va_bits, root_size", [
    (IosatpMode.SV39, 3, 39, 4 * KIB), (IosatpMode.SV48, 4, 48, 4 * KIB),
    (IohgatpMode.SV39X4, 3, 41, 16 * KIB), (IohgatpMode.SV48X4, 4, 50, 16 * KIB),
    (IosatpMode.SV57, 5, 57, 4 * KIB), (IohgatpMode.SV57X4, 5, 59, 16 * KIB),
])
def test_geometry_of_each_mode(mode, levels, va_bits, root_size):
    _, _, pt = make(mode)
    assert (pt.levels, pt.va_bits, pt.root_size) == (levels, va_bits, root_size)
    top = (1 << va_bits) - 1
    # The root takes every bit above the lower levels' 9 each; the others take 9.
    assert pt.index(top, levels - 1) == (1 << (va_bits - 12 - 9 * (levels - 1))) - 1
    assert [pt.index(top, level) for level in range(levels - 1)] == [0x1FF] * (levels - 1)
    assert pt.index(0x5 << 21 | 0x3 << 12, 1) == 5 and pt.index(0x5 << 21 | 0x3 << 12, 0) == 3


def test_upper_canonical_half():
    memory, _, pt = make()
    iova = 0xFFFF_FFC0_0000_0000  # -2**38: root index 256
    pt.map(iova, GIB, GIB, r=True)
    assert pte_at(memory, BASE + 256 * 8) == (GIB >> 12) << 10 | 0xD3
    assert pt.lookup(iova + 0x1234).pa == GIB + 0x1234
    with pytest.raises(ValueError, match="not inside one canonical half"):
        pt.map(1 << 38, 0, 4 * KIB, r=True)
    with pytest.raises(ValueError, match="not inside one canonical half"):
        pt.map((1 << 38) - 4 * KIB, 0, 8 * KIB, r=True)


def test_partial_unmap_splits_a_superpage():
    memory, _, pt = make()
    pt.map(0x20_0000, 0x8020_0000, 2 * MIB, r=True, w=True)
    changes = pt.unmap(0x20_1000, 4 * KIB)
    # The 2 MiB leaf was replaced (by a table) and then one 4 KiB leaf cleared.
    assert changes.leaves == [(0x20_0000, 2 * MIB), (0x20_1000, 4 * KIB)]
    assert not changes.nonleaf
    assert pt.lookup(0x20_0000).pa == 0x8020_0000 and pt.lookup(0x20_0000).size == 4 * KIB
    assert pt.lookup(0x20_1000) is None
    assert pt.lookup(0x3F_F000).pa == 0x803F_F000
    # The new level-0 page (0x1000_2000) holds 4 KiB leaves: entry 2 is PPN 0x80202.
    assert pte_at(memory, BASE + 0x2010) == 0x80202 << 10 | 0xD7


def test_partial_unmap_splits_a_1g_page_twice():
    _, _, pt = make()
    pt.map(GIB, 2 * GIB, GIB, r=True)
    pt.unmap(GIB + 3 * MIB, 4 * KIB)
    assert pt.lookup(GIB).size == 2 * MIB
    assert pt.lookup(GIB + 2 * MIB).size == 4 * KIB
    assert pt.lookup(GIB + 3 * MIB) is None
    assert pt.lookup(GIB + 3 * MIB + 4 * KIB).pa == 2 * GIB + 3 * MIB + 4 * KIB
    assert pt.lookup(2 * GIB - 4 * KIB).pa == 3 * GIB - 4 * KIB


def test_partial_unmap_demotes_a_napot_run():
    memory, _, pt = make()
    pt.map(0x1_0000, 0x8001_0000, 64 * KIB, r=True, w=True)
    changes = pt.unmap(0x1_3000, 4 * KIB)
    level0 = BASE + 0x2000
    # Plain 4 KiB leaves (N=0) with PPN 0x80010 + i, entry 19 cleared.
    assert pte_at(memory, level0 + 16 * 8) == 0x80010 << 10 | 0xD7
    assert pte_at(memory, level0 + 17 * 8) == 0x80011 << 10 | 0xD7
    assert pte_at(memory, level0 + 19 * 8) == 0
    assert pte_at(memory, level0 + 31 * 8) == 0x8001F << 10 | 0xD7
    assert (0x1_0000, 64 * KIB) in changes.leaves and (0x1_3000, 4 * KIB) in changes.leaves


def test_mapping_a_superpage_over_a_table_is_a_nonleaf_change():
    _, alloc, pt = make()
    pt.map(0x1000, 0x8000_1000, 4 * KIB, r=True)
    level0 = BASE + 0x2000
    changes = pt.map(0, 0x8000_0000, 2 * MIB, r=True)
    assert changes.nonleaf and changes.freed == [level0]
    assert pt.lookup(0x1000).size == 2 * MIB
    pt.release(changes)
    assert level0 not in alloc.allocated and changes.freed == []


def test_remap_with_new_permissions_is_a_leaf_change():
    _, _, pt = make()
    pt.map(0x1000, 0x8000_1000, 4 * KIB, r=True)
    assert not pt.map(0x1000, 0x8000_1000, 4 * KIB, r=True)  # the same PTE: nothing
    changes = pt.map(0x1000, 0x8000_1000, 4 * KIB, r=True, w=True)
    assert changes.leaves == [(0x1000, 4 * KIB)] and not changes.nonleaf
    assert pt.lookup(0x1000).w


def test_unmap_skips_holes():
    _, _, pt = make()
    pt.map(0x40_0000, 0x8000_0000, 4 * KIB, r=True)
    changes = pt.unmap(0, 8 * GIB)
    assert changes.leaves == [(0x40_0000, 4 * KIB)]
    assert pt.lookup(0x40_0000) is None


def test_page_sizes_give_the_virtio_page_size_mask():
    # virtio-iommu's page_size_mask from the leaf sizes: Sv39 offers 4 KiB, 64 KiB, 2 MiB, 1 GiB:
    # page_size_mask 0x40211000.
    assert sum(make()[2].page_sizes) == 0x4021_1000
    assert sum(make(IosatpMode.SV48)[2].page_sizes) == 0x80_4021_1000


def test_destroy_frees_every_page():
    _, alloc, pt = make(IohgatpMode.SV48X4)
    pt.map(0x1000, 0x1000, 4 * KIB, r=True)
    pt.map(1 << 45, 0x2000, 4 * KIB, r=True)
    pt.destroy()
    assert alloc.allocated == {}


@pytest.mark.parametrize("kwargs, message", [
    (dict(w=True), "w requires r (write-only PTE encodings are reserved)"),
    (dict(), "a mapping needs at least one of r, w, x"),
    (dict(r=True, pbmt=Pbmt.IO), "pbmt IO needs Svpbmt"),
    (dict(r=True, pbmt=Pbmt.RSVD), "pbmt 3 is reserved"),
])
def test_attribute_errors(kwargs, message):
    _, _, pt = make()
    with pytest.raises(ValueError) as e:
        pt.map(0, 0, 4 * KIB, **kwargs)
    assert str(e.value) == message


def test_range_errors():
    _, _, pt = make(oa_bits=40)
    with pytest.raises(ValueError, match=r"^iova \(0x800\) and size \(0x1000\) must be 4 KiB"):
        pt.map(0x800, 0, 4 * KIB, r=True)
    with pytest.raises(ValueError, match=r"^pa \[0xfffffff000, 0x10000001000\) must be 4 KiB "
                                         r"aligned and inside the 40-bit output space$"):
        pt.map(0, (1 << 40) - 4 * KIB, 8 * KIB, r=True)
    with pytest.raises(TypeError, match=r"^size must be an integer, not 4096.0$"):
        pt.unmap(0, 4096.0)


def test_constructor_errors():
    bus = MemoryBus()
    alloc = PageAllocator(bus, BASE, MIB)
    with pytest.raises(TypeError, match=r"^mode must be an IosatpMode or an IohgatpMode, not 8$"):
        PageTable(bus, alloc, 8)
    with pytest.raises(ValueError, match=r"^mode must be one of SV39, SV48, SV57, not BARE$"):
        PageTable(bus, alloc, IosatpMode.BARE)
    with pytest.raises(ValueError, match=r"^mode must be one of SV39X4, SV48X4, SV57X4, "
                                         r"not BARE$"):
        PageTable(bus, alloc, IohgatpMode.BARE)
    with pytest.raises(ValueError, match=r"^oa_bits must be between 12 and 56, not 57$"):
        PageTable(bus, alloc, IosatpMode.SV39, oa_bits=57)
