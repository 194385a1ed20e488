"""firmware.msi, firmware.mrif and the driver's extended device contexts and MSI page tables.

Expected values are written from the spec (reference N.3, N.4, N.4.5; AIA MSI PTE formats),
not read back from the code under test; behaviour is checked on the architectural model.
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.formats import Cause, IohgatpMode, IosatpMode
from iogate.hdl.port import Access
from iogate.hdl.regs import IommuMode

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import UnsupportedError
from iogate.firmware.mrif import Mrif, MrifAllocator
from iogate.firmware.msi import deposit, extract, msi_match

from iogate.cosim.model import IommuModel
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.memory import Memory

POOL = (0x10_0000_0000, 32 << 20)
GSCID = 5
#: A VM's guest interrupt files: 8 pages at GPA 0x2800_0000 (pattern 0x28000, mask 0x7).
IF_PATTERN, IF_MASK = 0x2_8000, 0x7


def _driver(config=None, device_id_bits=16, **kw):
    model = IommuModel(config or Config.msi(), Memory(), cache=True)
    bus = ModelBus(model)
    io = Iommu(bus, PageAllocator(bus, *POOL), **kw)
    io.init(device_id_bits=device_id_bits)
    return model, io


class _Recorder:
    """Every command list the driver runs (its IOFENCE.C is not in them)."""

    def __init__(self, io):
        self.cmds = []
        run = io.run

        def recording(cmds):
            self.cmds += list(cmds)
            run(cmds)
        io.run = recording


def _gvma(gscid, gpa=None):
    # Spec "IOMMU Page-Table cache invalidation commands": opcode 1 [6:0], func3 GVMA=1
    # [9:7], AV [10], GV [33], GSCID [59:44]; dword1 ADDR[63:12] in bits [63:10].
    dw0 = 1 | 1 << 7 | 1 << 33 | gscid << 44
    dw1 = 0
    if gpa is not None:
        dw0 |= 1 << 10
        dw1 = (gpa >> 12) << 10
    return dw0 | dw1 << 64


def _iodir_ddt(did):
    # opcode IODIR 3, func3 INVAL_DDT 0, DV [33], DID [63:40].
    return 3 | 1 << 33 | did << 40


# -- extract / match (reference N.4.1) -----------------------------------------------------

def test_extract_spec_example():
    # x = abcdefgh, mask = 10100110 -> 0000acfg (N.4.1).
    assert extract(0b1000_0000, 0b1010_0110) == 0b1000          # a
    assert extract(0b0010_0000, 0b1010_0110) == 0b0100          # c
    assert extract(0b0000_0100, 0b1010_0110) == 0b0010          # f
    assert extract(0b0000_0010, 0b1010_0110) == 0b0001          # g
    assert extract(0b0101_1001, 0b1010_0110) == 0
    assert deposit(0b1111, 0b1010_0110) == 0b1010_0110


def test_match_uses_all_52_page_number_bits():
    assert msi_match(0x2800_5000, IF_MASK, IF_PATTERN)
    assert msi_match(0x2800_7FFC, IF_MASK, IF_PATTERN)
    assert not msi_match(0x2800_8000, IF_MASK, IF_PATTERN)
    # A bit above MGPAW: the spec formula does not match (decision 2; not libiommu's P3).
    assert not msi_match(0x2800_5000 | 1 << 45, IF_MASK, IF_PATTERN)


# -- MsiPageTable layout (AIA MSI PTE formats, reference N.4.2) ------------------------------

def test_table_geometry_and_alignment():
    _, io = _driver()
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    assert t.entries == 8 and t.size == 128 and t.base % 4096 == 0
    assert t.gpa_of(5) == 0x2800_5000 and t.index_of(0x2800_5ABC) == 5
    assert t.index_of(0x2801_0000) is None
    assert t.pte_address(5) == t.base + 5 * 16
    # 512 entries = 8 KiB: naturally aligned to 8 KiB (N.4.1).
    for _ in range(3):
        big = io.msi_page_table(0x1FF << 3, 0x4_0000)
        assert big.entries == 512 and big.base % 8192 == 0
    # A mask bit in the interleave: index bits come from page-number bits 0 and 4.
    odd = io.msi_page_table(0b1_0001, 0x3_0000)
    assert [odd.gpa_of(i) for i in range(4)] == [0x3000_0000, 0x3000_1000, 0x3001_0000,
                                                 0x3001_1000]


def test_basic_pte_encoding():
    _, io = _driver()
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    t.map_basic(index=2, ppn=0x12_3456)
    # V [0] = 1, M [2:1] = 3, PPN [53:10]; dw1 0.
    assert t.read(2) == (1 | 3 << 1 | 0x12_3456 << 10, 0)
    t.unmap(gpa=0x2800_2000)
    assert t.read(2) == (0, 0)


def test_mrif_pte_encoding():
    _, io = _driver()
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    t.map_mrif(index=7, mrif=0x4000_0600, notice_ppn=0x3_0001, nid=0x5A5)
    # dw0: V, M=1, MRIF_Address[55:9] in [53:7]; dw1: NID[9:0] [9:0], NPPN [53:10],
    # NID[10] [60].
    dw0, dw1 = t.read(7)
    assert dw0 == 1 | 1 << 1 | (0x4000_0600 >> 9) << 7
    assert dw1 == (0x5A5 & 0x3FF) | 0x3_0001 << 10 | 1 << 60
    with pytest.raises(ValueError, match="512-byte aligned"):
        t.map_mrif(index=1, mrif=0x4000_0100, notice_ppn=1, nid=1)
    with pytest.raises(ValueError, match="11-bit"):
        t.map_mrif(index=1, mrif=0x4000_0200, notice_ppn=1, nid=2048)


def test_table_argument_errors():
    _, io = _driver()
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    with pytest.raises(TypeError, match="exactly one"):
        t.map_basic(ppn=1)
    with pytest.raises(TypeError, match="exactly one"):
        t.map_basic(ppn=1, index=1, gpa=0x2800_1000)
    with pytest.raises(ValueError, match="does not match"):
        t.map_basic(ppn=1, gpa=0x2900_0000)
    with pytest.raises(ValueError, match="not below 8"):
        t.unmap(index=8)
    # Sv48x4: MGPAW 50, so page-number bits 38 and up are reserved (decision 1).
    assert io.mgpaw == 50
    with pytest.raises(ValueError, match="MGPAW"):
        io.msi_page_table(IF_MASK, 1 << 38)


# -- extended device contexts (reference N.3) ------------------------------------------------

def test_extended_directory_split():
    _, io = _driver()
    assert io.extended and io.ddt.extended and io.ddt.dc_size == 64
    # 16-bit device_ids need 3LVL with 64-byte contexts (6 + 9 = 15 bits for 2LVL).
    assert io.ddt.mode == IommuMode.LVL3
    _, io15 = _driver(device_id_bits=15)
    assert io15.ddt.mode == IommuMode.LVL2
    leaf = io15.ddt.dc_address(0x7FC5, create=True)
    # DDI[0] = did[5:0] = 5: 64-byte slot 5 of the leaf page.
    assert leaf % 4096 == 5 * 64
    with pytest.raises(ValueError, match="does not fit the 15 bits"):
        io15.ddt.check_device_id(0x8000)


def test_base_format_without_msi_flat():
    _, io = _driver(Config.full())
    assert not io.extended and io.ddt.dc_size == 32 and io.ddt.mode == IommuMode.LVL2
    with pytest.raises(UnsupportedError, match="MSI_FLAT"):
        io.msi_page_table(IF_MASK, IF_PATTERN)
    with pytest.raises(UnsupportedError, match="MSI_FLAT"):
        io.set_dc(1, tc=1, msiptp=1 << 60)


def test_dc_words_in_memory():
    model, io = _driver()
    g = io.page_table(IohgatpMode.SV48X4)
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    io.set_second_stage(0x123, g, gscid=GSCID, msi=t)
    address = io.ddt.dc_address(0x123)
    raw = io.bus.mem_read(address, 64)
    words = [int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(8)]
    assert words[4] == 1 << 60 | t.base >> 12         # msiptp: MODE Flat [63:60], PPN
    assert words[5] == IF_MASK and words[6] == IF_PATTERN and words[7] == 0
    assert words[1] >> 60 == IohgatpMode.SV48X4 and words[0] & 1


def test_dc_checks():
    _, io = _driver()
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    with pytest.raises(ValueError, match="needs a second stage"):
        io.set_dc(1, tc=1, msiptp=t.msiptp)
    g = io.page_table(IohgatpMode.SV48X4)
    # iohgatp: MODE [63:60], GSCID [59:44], PPN [43:0].
    iohgatp = IohgatpMode.SV48X4 << 60 | GSCID << 44 | g.root >> 12
    with pytest.raises(ValueError, match="msiptp.MODE 2"):
        io.set_dc(1, tc=1, iohgatp=iohgatp, msiptp=2 << 60)
    with pytest.raises(ValueError, match="msiptp has reserved bits"):
        io.set_dc(1, tc=1, iohgatp=iohgatp, msiptp=1 << 60 | 1 << 44)
    with pytest.raises(ValueError, match="msi_addr_pattern"):
        io.set_dc(1, tc=1, iohgatp=iohgatp, msiptp=t.msiptp, msi_addr_pattern=1 << 38)
    with pytest.raises(ValueError, match="doubleword 7"):
        io.set_dc(1, tc=1, iohgatp=iohgatp, rsvd=1)
    # check=False lets a test give the IOMMU a misconfigured context: 259.
    io.set_dc(1, tc=1, msiptp=t.msiptp, check=False)


def test_misconfigured_dc_reaches_the_model_as_259():
    model, io = _driver()
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    io.set_dc(1, tc=1, msiptp=t.msiptp, check=False)      # Flat with iohgatp Bare
    r = model.translate(1, 0x2800_0000, Access.WRITE, data=1)
    assert r.fault and r.cause == Cause.DDT_ENTRY_MISCONFIGURED


# -- MSI translation through the driver's tables, and the invalidations (N.4.5) --------------

def _vm(io, device_id=0x123):
    g = io.page_table(IohgatpMode.SV48X4)
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    io.map(g, 0x8000_0000, 0x20_4000_0000, 0x1000, r=True, w=True, gscid=GSCID)
    io.set_second_stage(device_id, g, gscid=GSCID, msi=t)
    return g, t


def test_basic_translation_and_one_pte_invalidation():
    model, io = _driver()
    _, t = _vm(io)
    rec = _Recorder(io)
    gpa = io.msi_map_basic(t, index=3, ppn=0x2_4000)
    assert gpa == 0x2800_3000
    assert rec.cmds == [_gvma(GSCID, 0x2800_3000)]          # GV=1 AV=1, the GPA
    r = model.translate(0x123, 0x2800_3010, Access.WRITE, data=7)
    assert not r.fault and r.ppn == 0x2_4000 and r.w and not r.x
    # Remapped behind the driver's back: the IOMMU may keep the old page (cached) ...
    t.map_basic(index=3, ppn=0x2_5000)
    assert model.translate(0x123, 0x2800_3010, Access.WRITE, data=7).ppn == 0x2_4000
    # ... until the driver's GVMA: the new one.
    io.msi_map_basic(t, index=3, ppn=0x2_5000)
    assert model.translate(0x123, 0x2800_3010, Access.WRITE, data=7).ppn == 0x2_5000
    io.msi_unmap(t, index=3)
    r = model.translate(0x123, 0x2800_3010, Access.WRITE, data=7)
    assert r.fault and r.cause == Cause.MSI_PTE_NOT_VALID
    # The second stage still answers for what does not match.
    assert model.translate(0x123, 0x8000_0010, Access.READ).ppn == 0x20_4000_0


def test_table_sync_and_dc_change_invalidations():
    model, io = _driver()
    g, t = _vm(io)
    rec = _Recorder(io)
    io.msi_sync_table(t)
    assert rec.cmds == [_gvma(GSCID)]                         # GV=1 AV=0
    rec.cmds.clear()
    t2 = io.msi_page_table(IF_MASK, IF_PATTERN)
    io.set_second_stage(0x123, g, gscid=GSCID, msi=t2)
    # A msiptp change is a DC change: IODIR DV=1, then VMA and GVMA of the old GSCID.
    assert _iodir_ddt(0x123) in rec.cmds and _gvma(GSCID) in rec.cmds
    assert io.msi_gscids(t) == [] and io.msi_gscids(t2) == [GSCID]


def test_table_used_by_no_context_needs_no_invalidation():
    _, io = _driver()
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    rec = _Recorder(io)
    io.msi_map_basic(t, index=0, ppn=0x1234)
    assert rec.cmds == []


def test_mrif_mapping_and_pending_bits():
    model, io = _driver()
    _, t = _vm(io)
    mrif = io.mrifs.alloc_mrif()
    notice = io.alloc.alloc()
    io.msi_map_mrif(t, index=6, mrif=mrif.address, notice_ppn=notice >> 12, nid=0x401)
    r = model.translate(0x123, 0x2800_6000, Access.WRITE, data=130)
    assert r.absorbed and not r.fault
    # Identity 130: bit 2 of the pending doubleword of pair 2 (offset 32).
    assert mrif.pending() == [130] and mrif.is_pending(130)
    assert int.from_bytes(io.bus.mem_read(mrif.address + 32, 8), "little") == 1 << 2
    assert int.from_bytes(io.bus.mem_read(notice, 4), "little") == 0x401
    mrif.clear(130)
    assert mrif.pending() == []


def test_mrif_needs_msi_mrif():
    _, io = _driver(Config.full().replace(msi_flat=True))
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    with pytest.raises(UnsupportedError, match="MSI_MRIF"):
        io.msi_map_mrif(t, index=0, mrif=0x4000_0000, notice_ppn=1, nid=1)


def test_mrif_allocator():
    _, io = _driver()
    pool = MrifAllocator(io.bus, io.alloc)
    got = [pool.alloc_mrif() for _ in range(9)]
    addresses = [m.address for m in got]
    assert all(a % 512 == 0 for a in addresses) and len(set(addresses)) == 9
    # 8 per page: the ninth is on a second page.
    assert len({a // 4096 for a in addresses}) == 2
    before = io.alloc.free_bytes
    pool.free_mrif(got[8])
    assert io.alloc.free_bytes == before + 4096
    with pytest.raises(ValueError, match="no MRIF"):
        pool.free_mrif(got[8])
    with pytest.raises(ValueError, match="512-byte aligned"):
        Mrif(io.bus, 0x100)
    m = got[0]
    m.set_enabled(2047)
    assert m.enabled() == [2047] and m.pending() == []


def test_nested_with_msi_table():
    model, io = _driver()
    g = io.page_table(IohgatpMode.SV48X4)
    first = io.page_table(IosatpMode.SV48)
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    io.set_nested(0x44, first, g, pscid=9, gscid=GSCID, msi=t)
    assert io.device_context(0x44).msiptp == t.msiptp


# -- IOMMU-generated MSIs (reference N.5) -----------------------------------------------------

def test_msi_requested_on_a_wired_only_iommu():
    with pytest.raises(UnsupportedError, match="IGS is WSI"):
        _driver(Config.full(), msi=True)


def test_wired_default_leaves_msi_cfg_masked():
    _, io = _driver()
    assert io.msi_doorbells is not None
    assert io.vector_count == 16
    assert io.vectors == {"civ": 0, "fiv": 1, "pmiv": 2, "piv": 3}


def _model_has_msi_cfg():
    model = IommuModel(Config.msi(), Memory())
    bus = ModelBus(model)
    bus.mmio_write(0x008, 4, 0)
    bus.mmio_write(0x300, 8, 0x1234)
    return bus.mmio_read(0x008, 4) & 2 == 0 and bus.mmio_read(0x300, 8) == 0x1234


needs_msi_cfg = pytest.mark.skipif(not _model_has_msi_cfg(),
                                   reason="the model has no msi_cfg_tbl/fctl.WSI=0 yet")


@needs_msi_cfg
def test_msi_cfg_programmed():
    _, io = _driver(interrupts=True, msi=True)
    for x in range(16):
        addr, data, masked = io.msi_cfg(x)
        assert addr == io.msi_doorbells + 4 * x and data == 0x1A0 + x and not masked


@needs_msi_cfg
def test_fault_msi_handler():
    model, io = _driver(interrupts=True, msi=True)
    assert io.pending_msis() == ()
    model.translate(0x77, 0x1000, Access.READ)               # DC not valid: 258
    assert io.wait_msi() == (1,)                              # fiv = vector 1
    events = io.handle_msis()
    assert events.vectors == (1,) and events.faults is not None
    assert [r.cause for r in events.faults.records] == [Cause.DDT_ENTRY_NOT_VALID]
    assert io.pending_msis() == ()
    # fip was cleared before fqt was read: the next record sends a new MSI.
    model.translate(0x77, 0x2000, Access.READ)
    assert io.wait_msi() == (1,)
    assert len(io.handle_msis().faults.records) == 1


# -- the extended directory's memory operations ------------------------------------------------

def test_device_context_bytes():
    from iogate.firmware.ddt import DeviceContext
    dc = DeviceContext(1, 2, 3, 4, 5, 6, 7, 8)
    raw = dc.to_bytes(extended=True)
    assert len(raw) == 64 and raw[32:40] == (5).to_bytes(8, "little")
    assert raw[56:64] == (8).to_bytes(8, "little")
    assert DeviceContext.from_bytes(raw, extended=True) == dc
    with pytest.raises(ValueError, match="base-format"):
        dc.to_bytes()
    assert len(DeviceContext(1, 2, 3, 4).to_bytes()) == 32
    with pytest.raises(ValueError, match="64 bytes, not 32"):
        DeviceContext.from_bytes(bytes(32), extended=True)


def test_valid_context_written_tc_last():
    _, io = _driver(device_id_bits=15)
    g = io.page_table(IohgatpMode.SV48X4)
    t = io.msi_page_table(IF_MASK, IF_PATTERN)
    address = io.ddt.dc_address(0x41, create=True)
    writes = []
    bus = io.ddt.bus

    class Spy:
        def __getattr__(self, name):
            return getattr(bus, name)

        def mem_write(self, a, data):
            if address <= a < address + 64:
                writes.append(a - address)
            bus.mem_write(a, data)
    io.ddt.bus = Spy()
    io.set_second_stage(0x41, g, gscid=GSCID, msi=t)
    # Doublewords 1-7 first, tc (with V) last: the IOMMU never sees V=1 beside stale words.
    assert writes == [8, 16, 24, 32, 40, 48, 56, 0]
    writes.clear()
    io.set_blocked(0x41)
    assert writes[0] == 0          # making it invalid: tc first


def test_prune_uses_the_64_byte_stride():
    _, io = _driver()
    g = io.page_table(IohgatpMode.SV48X4)
    io.set_second_stage(0x1_0040, g, gscid=GSCID)
    # The neighbour's context is invalid, but its msiptp (offset 32 of a 64-byte slot) has
    # bit 0 set: a 32-byte stride would take it for a valid tc and keep the page.
    io.set_dc(0x1_0041, tc=0, msiptp=1 << 60 | 1, check=False)
    leaf = io.ddt.dc_address(0x1_0040) & ~0xFFF
    io.remove_device(0x1_0040)
    assert leaf not in io.alloc.allocated
    assert io.ddt.dc_address(0x1_0040) is None


@pytest.mark.parametrize("vectors, expected", [
    (1, {"civ": 0, "fiv": 0, "pmiv": 0, "piv": 0}),
    (2, {"civ": 0, "fiv": 1, "pmiv": 0, "piv": 1}),
    (4, {"civ": 0, "fiv": 1, "pmiv": 2, "piv": 3}),
])
def test_icvec_discovery(vectors, expected):
    # Decision 8: each icvec field keeps its low log2(vectors) bits (WARL); writing 0xF and
    # reading back gives the count (reference N.5).
    _, io = _driver(Config.full().replace(interrupt_vectors=vectors))
    assert io.vector_count == vectors and io.vectors == expected


def test_handler_clears_fip_before_reading_fqt():
    # N.9 P7: with MSIs a record that lands while ipsr.fip is 1 sends nothing, so the handler
    # clears the doorbell, then ipsr.fip (RW1C), and only then reads fqt. The MSI itself is
    # put in the doorbell page by hand here (as the IOMMU's msi_cfg_tbl entry 1 would).
    model, io = _driver(interrupts=True)
    model.translate(0x77, 0x1000, Access.READ)               # DC not valid: 258, a record
    fiv = io.vectors["fiv"]
    io.bus.mem_write(io.msi_doorbells + 4 * fiv, (0x1A0 + fiv).to_bytes(4, "little"))
    assert io.pending_msis() == (fiv,)
    log = []
    bus = io.regs.bus
    read, write = bus.mmio_read, bus.mmio_write
    bus.mmio_read = lambda off, size: log.append(("r", off)) or read(off, size)
    bus.mmio_write = lambda off, size, v: log.append(("w", off, v)) or write(off, size, v)
    events = io.handle_msis()
    assert events.vectors == (fiv,) and not events.cip
    assert [r.cause for r in events.faults.records] == [Cause.DDT_ENTRY_NOT_VALID]
    assert io.pending_msis() == ()
    ipsr_clear = log.index(("w", 0x054, 0b10))                # ipsr.fip, bit 1
    fqt_read = log.index(("r", 0x034))
    assert ipsr_clear < fqt_read
    # A doorbell that holds anything but this vector's data is not an MSI.
    io.bus.mem_write(io.msi_doorbells + 4 * fiv, (0x1A0).to_bytes(4, "little"))
    assert io.pending_msis() == () and io.handle_msis().vectors == ()
