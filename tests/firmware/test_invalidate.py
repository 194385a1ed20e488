"""Each invalidation recipe, read back from the command queue in memory.

The commands the driver wrote are decoded field by field and compared with the operands
the spec's "Guidelines for invalidations" prescribe for that change:

* DC change for device D: IODIR.INVAL_DDT DV=1 DID=D; then with the old iohgatp not Bare
  IOTINVAL.VMA GV=1 GSCID and IOTINVAL.GVMA GV=1 GSCID; else with PDTV IOTINVAL.VMA with
  nothing valid; else with the old fsc not Bare IOTINVAL.VMA PSCV=1 PSCID.
* non-leaf DDT change: IODIR.INVAL_DDT DV=0.
* first-stage leaf: IOTINVAL.VMA AV=1 PSCV=1 PSCID ADDR (GV=1 GSCID when nested).
* second-stage leaf: IOTINVAL.GVMA GV=1 AV=1 ADDR; non-leaf: GV=1 AV=0.
* then IOFENCE.C (here with AV=1: DATA stored at ADDR).
"""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import IODIR, IOFENCE, IOTINVAL, TC, IohgatpMode, IosatpMode

from iogate.firmware import commands, invalidate
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.ddt import DeviceContext
from iogate.firmware.driver import Iommu
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable, Stage, TableChanges

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
DID = 0x1234

# (opcode, func3) -> name and layout (spec "Command-Queue (CQ)" opcode and func3 tables).
_DECODE = {(1, 0): ("IOTINVAL.VMA", IOTINVAL), (1, 1): ("IOTINVAL.GVMA", IOTINVAL),
           (2, 0): ("IOFENCE.C", IOFENCE), (3, 0): ("IODIR.INVAL_DDT", IODIR)}


def decode(cmd):
    """(name, {field: value}) with only the non-zero fields, reserved ones included."""
    name, layout = _DECODE[(cmd & 0x7F, cmd >> 7 & 7)]
    fields = bits.unpack(layout, cmd)
    return name, {k: v for k, v in fields.items() if v and k not in ("opcode", "func3")}


class Session:
    def __init__(self, config=Config.full(), device_id_bits=16):
        self.model = IommuModel(config, Memory(), cache=True)
        self.bus = ModelBus(self.model)
        self.alloc = PageAllocator(self.bus, 0x1_0000_0000, 64 * MIB)
        self.io = Iommu(self.bus, self.alloc)
        self.io.init(device_id_bits=device_id_bits)
        self.mark()

    def mark(self):
        self._start = self.io.cq.tail

    def written(self):
        """The commands written since the last mark, decoded; fences checked and elided
        as "FENCE"."""
        cq, out, i = self.io.cq, [], self._start
        while i != cq.tail:
            raw = self.bus.mem_read(cq.base + 16 * i, 16)
            name, fields = decode(commands.from_bytes(raw))
            if name == "IOFENCE.C":
                # AV=1, DATA = a sequence number, ADDR = the completion word >> 2.
                assert set(fields) == {"av", "data", "addr"}, fields
                assert fields["av"] == 1 and fields["addr"] == cq.completion >> 2
                out.append("FENCE")
            else:
                out.append((name, fields))
            i = (i + 1) % cq.entries
        self.mark()
        return out


def iodir(did=None):
    return ("IODIR.INVAL_DDT", {} if did is None else {"dv": 1, "did": did})


def vma(**fields):
    return ("IOTINVAL.VMA", fields)


def gvma(**fields):
    return ("IOTINVAL.GVMA", fields)


def test_first_attach_of_an_invalid_context():
    s = Session()
    table = s.io.page_table(IosatpMode.SV39)
    s.mark()
    s.io.set_first_stage(DID, table, pscid=7)
    # The old context had V=0: nothing of it can be cached but the DDT entry.
    assert s.written() == [iodir(DID), "FENCE"]


def test_changing_a_first_stage_context_uses_the_old_pscid():
    s = Session()
    a, b = s.io.page_table(IosatpMode.SV39), s.io.page_table(IosatpMode.SV48)
    s.io.set_first_stage(DID, a, pscid=7)
    s.mark()
    s.io.set_first_stage(DID, b, pscid=9)
    # V cleared, the old context's recipe (PSCID 7), then the new context and its IODIR.
    assert s.written() == [iodir(DID), vma(pscv=1, pscid=7), "FENCE", iodir(DID), "FENCE"]


def test_blocking_a_nested_context_uses_its_gscid():
    s = Session()
    second = s.io.page_table(IohgatpMode.SV39X4)
    first = s.io.page_table(IosatpMode.SV39)  # a GPA root; content irrelevant here
    s.io.set_nested(DID, first, second, pscid=3, gscid=0x21)
    s.mark()
    s.io.set_blocked(DID)
    assert s.written() == [iodir(DID), vma(gv=1, gscid=0x21), gvma(gv=1, gscid=0x21), "FENCE"]


def test_changing_a_second_stage_only_context():
    s = Session()
    second = s.io.page_table(IohgatpMode.SV48X4)
    s.io.set_second_stage(DID, second, gscid=0x4)
    s.mark()
    s.io.set_bypass(DID)
    assert s.written() == [iodir(DID), vma(gv=1, gscid=4), gvma(gv=1, gscid=4), "FENCE",
                           iodir(DID), "FENCE"]


def test_changing_a_bypass_context():
    s = Session()
    s.io.set_bypass(DID)
    s.mark()
    s.io.set_first_stage(DID, s.io.page_table(IosatpMode.SV39), pscid=1)
    # Old fsc and iohgatp Bare, PDTV=0: only the directory entry.
    assert s.written() == [iodir(DID), "FENCE", iodir(DID), "FENCE"]


def test_first_stage_leaf_change():
    s = Session()
    table = s.io.page_table(IosatpMode.SV39)
    s.io.set_first_stage(DID, table, pscid=7)
    s.io.map(table, 0x40_0000, 0x8000_0000, 8 * KIB, r=True, pscid=7)
    s.mark()
    s.io.map(table, 0x40_0000, 0x8000_0000, 8 * KIB, r=True, w=True, pscid=7)
    assert s.written() == [vma(av=1, pscv=1, pscid=7, addr=0x400),
                           vma(av=1, pscv=1, pscid=7, addr=0x401), "FENCE"]
    s.io.unmap(table, 0x40_1000, 4 * KIB, pscid=7)
    assert s.written() == [vma(av=1, pscv=1, pscid=7, addr=0x401), "FENCE"]


def test_map_over_nothing_sends_nothing():
    s = Session()
    table = s.io.page_table(IosatpMode.SV39)
    s.io.set_first_stage(DID, table, pscid=7)
    s.mark()
    s.io.map(table, 0x40_0000, 0x8000_0000, 2 * MIB, r=True, pscid=7)
    assert s.written() == []


def test_first_stage_nonleaf_change_invalidates_the_address_space():
    s = Session()
    table = s.io.page_table(IosatpMode.SV39)
    s.io.set_first_stage(DID, table, pscid=7)
    s.io.map(table, 0x1000, 0x8000_1000, 4 * KIB, r=True, pscid=7)
    s.mark()
    s.io.map(table, 0, 0x8000_0000, 2 * MIB, r=True, pscid=7)
    # AV=1 reaches only leaf entries; a replaced pointer needs AV=0 (table "IOTINVAL.VMA
    # operands").
    assert s.written() == [vma(pscv=1, pscid=7), "FENCE"]


def test_many_leaves_become_one_address_space_invalidation():
    s = Session()
    table = s.io.page_table(IosatpMode.SV39)
    s.io.set_first_stage(DID, table, pscid=7)
    n = invalidate.LEAF_LIMIT + 1
    s.io.map(table, 0, 0x8000_1000, n * 4 * KIB, r=True, pscid=7)
    s.mark()
    s.io.unmap(table, 0, n * 4 * KIB, pscid=7)
    assert s.written() == [vma(pscv=1, pscid=7), "FENCE"]


def test_nested_first_stage_leaf_change():
    s = Session()
    second = s.io.page_table(IohgatpMode.SV39X4)
    s.io.map(second, 0, 0x2_0000_0000, GIB, r=True, w=True, x=True, gscid=5)
    guest = GuestMemory(s.bus, second)
    first = PageTable(guest, PageAllocator(guest, 0x1000_0000, MIB), IosatpMode.SV39)
    s.io.set_nested(DID, first, second, pscid=3, gscid=5)
    s.io.map(first, 0x7000, 0x3000, 4 * KIB, r=True, pscid=3, gscid=5)
    s.mark()
    s.io.unmap(first, 0x7000, 4 * KIB, pscid=3, gscid=5)
    assert s.written() == [vma(av=1, pscv=1, gv=1, pscid=3, gscid=5, addr=7), "FENCE"]


def test_second_stage_leaf_and_nonleaf_changes():
    s = Session()
    second = s.io.page_table(IohgatpMode.SV39X4)
    s.io.set_second_stage(DID, second, gscid=0x33)
    s.io.map(second, 0x5000, 0x9000, 4 * KIB, r=True, gscid=0x33)
    s.mark()
    s.io.unmap(second, 0x5000, 4 * KIB, gscid=0x33)
    assert s.written() == [gvma(gv=1, av=1, gscid=0x33, addr=5), "FENCE"]
    s.io.map(second, 0, 0x20_0000, 2 * MIB, r=True, gscid=0x33)  # over the level-0 table
    assert s.written() == [gvma(gv=1, gscid=0x33), "FENCE"]


def test_second_stage_change_under_a_guest_root_invalidates_the_context():
    # Spec "Changing second-stage page table entry": a cached DC may hold the translated
    # first-stage root, so remapping that GPA needs IODIR.INVAL_DDT for the device.
    s = Session()
    second = s.io.page_table(IohgatpMode.SV39X4)
    # A PA off 2 MiB alignment: 4 KiB pages only, so each change is one leaf.
    s.io.map(second, 0, 0x2_0000_1000, 2 * MIB, r=True, w=True, gscid=5)
    guest = GuestMemory(s.bus, second)
    first = PageTable(guest, PageAllocator(guest, 0x1000, 64 * KIB), IosatpMode.SV39)
    assert first.root == 0x1000
    s.io.set_nested(DID, first, second, pscid=3, gscid=5)
    s.mark()
    s.io.unmap(second, 0x10_0000, 4 * KIB, gscid=5)  # not the root page: no IODIR
    assert s.written() == [gvma(gv=1, av=1, gscid=5, addr=0x100), "FENCE"]
    s.io.map(second, 0x1000, 0x3_0000_1000, 4 * KIB, r=True, w=True, gscid=5)
    assert s.written() == [gvma(gv=1, av=1, gscid=5, addr=1), iodir(DID), "FENCE"]


def test_removing_the_last_device_of_a_leaf_page():
    s = Session()  # 16-bit device_ids: 2LVL, so DID has a leaf page of its own
    s.io.set_bypass(DID)
    leaf_page = s.io.ddt.dc_address(DID) & ~0xFFF
    s.mark()
    s.io.remove_device(DID)
    assert s.written() == [iodir(DID), "FENCE", iodir(), "FENCE"]
    assert leaf_page not in s.alloc.allocated
    assert s.io.ddt.dc_address(DID) is None


def test_removing_a_device_that_shares_its_leaf_page():
    s = Session()
    s.io.set_bypass(DID)
    s.io.set_bypass(DID + 1)
    s.mark()
    s.io.remove_device(DID)
    assert s.written() == [iodir(DID), "FENCE"]


def test_recipe_for_an_old_context_with_pdtv():
    # PDTV=1 and both stages Bare in the old value: IOTINVAL.VMA with GV=AV=PSCV=0.
    old = DeviceContext(tc=bits.pack(TC, v=1, pdtv=1))
    assert [decode(c) for c in invalidate.dc_change(9, old)] == [iodir(9), vma()]


def test_recipes_refuse_the_other_stage():
    with pytest.raises(ValueError, match=r"^first_stage\(\) needs first-stage changes$"):
        invalidate.first_stage(TableChanges(Stage.SECOND), pscid=1)
    with pytest.raises(ValueError, match=r"^second_stage\(\) needs second-stage changes$"):
        invalidate.second_stage(TableChanges(Stage.FIRST), gscid=1)
