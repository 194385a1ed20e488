"""The driver's process directories: the PDT mode it chooses, the tables it writes and the
commands it sends after each change, command by command.

Spec "Process-Directory-Table (PDT)" and the reference's N.1.7 recipes (spec "Guidelines for
invalidations"): a changed valid PC gets IODIR.INVAL_PDT(DV=1, DID, PID) then
IOTINVAL.VMA(PSCV=1, old PSCID, GV=1 + GSCID if iohgatp is not Bare); a removed non-leaf PDTE
gets IODIR.INVAL_DDT(DV=1, DID); a PC or PDTE going V 0->1 gets nothing. The commands are
caught where the driver submits them (``Iommu.run``) and decoded with the field positions of
spec "IOMMU directory cache invalidation commands" written out by hand.
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.formats import IohgatpMode, IosatpMode, PdtpMode
from iogate.hdl.port import Access

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import IommuError, UnsupportedError
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus

REGION = 0x1_0000_0000


def system(config):
    model = IommuModel(config, Memory(), cache=True)
    bus = ModelBus(model)
    io = Iommu(bus, PageAllocator(bus, REGION, 64 << 20))
    io.init(device_id_bits=16)
    sent = []
    # Catch each batch the driver would submit (with its IOFENCE.C) in order.
    io.run = lambda cmds: sent.append([describe(c) for c in cmds]) if cmds else None
    return io, model, sent


def describe(cmd):
    d0 = cmd & ((1 << 64) - 1)
    opcode, func3 = d0 & 0x7F, (d0 >> 7) & 7
    if (opcode, func3) == (3, 1):
        assert (d0 >> 33) & 1, "INVAL_PDT with DV=0"
        return ("INVAL_PDT", d0 >> 40, (d0 >> 12) & 0xFFFFF)
    if (opcode, func3) == (3, 0):
        return ("INVAL_DDT", d0 >> 40 if (d0 >> 33) & 1 else None)
    if (opcode, func3) == (1, 0):
        return ("VMA", (d0 >> 12) & 0xFFFFF if (d0 >> 32) & 1 else None,
                (d0 >> 44) & 0xFFFF if (d0 >> 33) & 1 else None)
    return ("other", cmd)


@pytest.mark.parametrize("pd_levels, mode", [(1, PdtpMode.PD8), (2, PdtpMode.PD17),
                                             (3, PdtpMode.PD20)])
def test_the_mode_comes_from_capabilities(pd_levels, mode):
    io, _, _ = system(Config.full().replace(pd_levels=pd_levels))
    assert io.pdt_mode() is mode        # the widest needs the deepest offered mode
    assert io.process_id_bits == mode.pid_bits
    assert io.pdt_mode(8) is PdtpMode.PD8   # shallowest reaching 8 bits
    if pd_levels < 3:
        with pytest.raises(UnsupportedError, match="no process-directory mode reaches 20-bit"):
            io.pdt_mode(20)


def test_no_process_contexts_no_directory():
    io, _, sent = system(Config.full())
    with pytest.raises(UnsupportedError, match="no process-directory mode reaches"):
        io.process_directory()
    assert io.process_id_bits == 0 and sent == []


def test_attach_change_detach_recipes():
    io, model, sent = system(Config.process())
    pdt = io.process_directory()
    io.set_process_directory(0x31, pdt, dpe=True)
    assert sent.pop() == [("INVAL_DDT", 0x31)]
    dc = io.device_context(0x31)
    assert dc.tc & (1 << 5) and dc.tc & (1 << 9)          # PDTV, DPE
    assert dc.fsc >> 60 == 3 and dc.fsc & ((1 << 44) - 1) == pdt.root >> 12
    table = io.page_table(IosatpMode.SV48)
    pid = 0x2_0345
    io.attach_process(0x31, pid, table, pscid=7, ens=True)
    assert sent == []                                     # V 0->1 (and new PDTEs): none
    address = pdt.pc_address(pid)
    ta, fsc = model.memory.read64(address), model.memory.read64(address + 8)
    assert ta & 7 == 0b011 and (ta >> 12) & 0xFFFFF == 7
    assert fsc >> 60 == 9 and fsc & ((1 << 44) - 1) == table.root >> 12
    io.attach_process(0x31, pid, table, pscid=8)
    # Old PC (PSCID 7) invalidated before the new one is stored.
    assert sent.pop() == [("INVAL_PDT", 0x31, pid), ("VMA", 7, None)]
    assert (model.memory.read64(address) >> 12) & 0xFFFFF == 8
    io.detach_process(0x31, pid)
    assert sent == [[("INVAL_PDT", 0x31, pid), ("VMA", 8, None)],
                    [("INVAL_DDT", 0x31)]]                # the emptied PD20 levels
    assert pdt.pc_address(pid) is None
    assert model.memory.read64(pdt.root + (pid >> 17) * 8) == 0


def test_detach_of_an_absent_process_sends_nothing():
    io, _, sent = system(Config.process())
    io.set_process_directory(2, io.process_directory(8))
    sent.clear()
    io.detach_process(2, 0x11)
    assert sent == []


def test_guest_directory_behind_the_second_stage():
    # The guest's PDT and first-stage table sit in guest memory; their addresses are GPAs.
    io, model, sent = system(Config.process())
    second = io.page_table(IohgatpMode.SV48X4)
    guest_ram, gpa = 0x40_0000_0000, 0x1000_0000
    io.map(second, gpa, guest_ram, 16 << 20, r=True, w=True, gscid=4)
    sent.clear()
    memory = GuestMemory(io.bus, second)
    galloc = PageAllocator(memory, gpa, 16 << 20)
    pdt = io.process_directory(17, bus=memory, alloc=galloc)
    assert pdt.mode is PdtpMode.PD17 and gpa <= pdt.root < gpa + (16 << 20)
    io.set_process_directory(9, pdt, second=second, gscid=4)
    first = io.page_table(IosatpMode.SV39)
    io.attach_process(9, 0x1_0001, first, pscid=21)
    io.attach_process(9, 0x1_0001, first, pscid=22)
    assert sent[-1] == [("INVAL_PDT", 9, 0x1_0001), ("VMA", 21, 4)]
    # The PC really is in guest RAM at the SPA the second stage gives.
    spa = guest_ram + (pdt.pc_address(0x1_0001) - gpa)
    assert (model.memory.read64(spa) >> 12) & 0xFFFFF == 22


def test_second_stage_remap_invalidates_the_device_directory():
    io, _, sent = system(Config.process())
    second = io.page_table(IohgatpMode.SV48X4)
    io.map(second, 0x1000_0000, 0x40_0000_0000, 1 << 20, r=True, w=True, gscid=4)
    io.set_process_directory(9, 0x1 << 60 | 0x1000_0000 >> 12, second=second, gscid=4)
    sent.clear()
    io.unmap(second, 0x1000_0000, 4096, gscid=4)
    assert ("INVAL_DDT", 9) in sent[-1]


def test_refusals_leave_memory_alone():
    io, model, sent = system(Config.full().replace(pd_levels=1))
    pdt = io.process_directory()
    with pytest.raises(IommuError, match="has no process directory"):
        io.attach_process(4, 1, io.page_table(IosatpMode.SV39), pscid=1)
    io.set_process_directory(4, pdt)
    sent.clear()
    before = model.memory.read(pdt.root, 4096)
    with pytest.raises(ValueError, match="does not fit the 8 bits of PD8"):
        io.attach_process(4, 0x100, io.page_table(IosatpMode.SV39), pscid=1)
    with pytest.raises(UnsupportedError, match="does not offer PD17"):
        io.set_dc(5, tc=1 | 1 << 5, fsc=2 << 60)
    with pytest.raises(ValueError, match="tc.DPE needs tc.PDTV"):
        io.set_dc(5, tc=1 | 1 << 9)
    assert model.memory.read(pdt.root, 4096) == before and sent == []


def test_detach_of_an_absent_process_builds_no_levels():
    io, _, sent = system(Config.process())
    pdt = io.process_directory()
    io.set_process_directory(2, pdt)
    sent.clear()
    before = io.alloc.allocated
    io.detach_process(2, 0x3_0011)        # PD20: its levels do not exist
    assert sent == [] and io.alloc.allocated == before


def live_system():
    model = IommuModel(Config.process(), Memory(), cache=True)
    bus = ModelBus(model)
    io = Iommu(bus, PageAllocator(bus, REGION, 64 << 20))
    io.init(device_id_bits=16)
    return io, model


@pytest.mark.parametrize("nested", [False, True])
def test_recipes_leave_nothing_stale_on_a_caching_model(nested):
    # The model answers from its PC cache and IOTLB (as hardware would), so a recipe that
    # left something out would show as the old table's answer.
    io, model = live_system()
    kw = {}
    bus, alloc, shift = io.bus, io.alloc, 0
    if nested:
        second = io.page_table(IohgatpMode.SV48X4)
        io.map(second, 0x1000_0000, 0x40_0000_0000, 16 << 20, r=True, w=True, gscid=4)
        bus = GuestMemory(io.bus, second)
        alloc = PageAllocator(bus, 0x1000_0000, 8 << 20)
        kw = {"second": second, "gscid": 4}
        shift = 0x40_0000_0000 - 0x1000_0000    # GPA -> SPA of the guest's RAM
    pdt = io.process_directory(bus=bus, alloc=alloc)
    io.set_process_directory(7, pdt, **kw)
    a = PageTable(bus, alloc, IosatpMode.SV48)
    b = PageTable(bus, alloc, IosatpMode.SV48)
    gpa_a, gpa_b = (0x1080_0000, 0x1090_0000) if nested else (0x2_0000_0000, 0x3_0000_0000)
    a.map(0x5000, gpa_a, 4096, r=True)
    b.map(0x5000, gpa_b, 4096, r=True)

    def pa(pid):
        r = model.translate(7, 0x5010, Access.READ, process_id=pid, report=False)
        return ("fault", int(r.cause)) if r.fault else r.pa - shift

    io.attach_process(7, 0x2_0001, a, pscid=11)
    assert pa(0x2_0001) == gpa_a + 0x10        # walked and cached
    io.attach_process(7, 0x2_0001, b, pscid=12)
    assert pa(0x2_0001) == gpa_b + 0x10        # INVAL_PDT + VMA(old PSCID) took effect
    io.detach_process(7, 0x2_0001)
    assert pa(0x2_0001) == ("fault", 266)      # and the pruned levels are unlinked
