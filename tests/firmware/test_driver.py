"""The driver against the architectural model: the init sequence and each kind of context.

Expected register values are worked by hand from spec "Memory-mapped register interface" and the
layout of the allocations (the allocator hands out pages in order from REGION).
"""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import TC, Cause, IohgatpMode, IosatpMode, Pbmt, Ttyp
from iogate.hdl.port import Access
from iogate.hdl.regs import CQCSR, DDTP, FQCSR, IommuMode, Offset

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import IommuError, PollTimeout, UnsupportedError
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable, Stage, TableChanges

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus

FULL = Config.full()
REGION = 0x1_0000_0000
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


class Recording(ModelBus):
    """A ModelBus that logs register accesses and can doctor register reads."""

    def __init__(self, model, doctor=None):
        super().__init__(model)
        self.log = []
        self.doctor = doctor or {}

    def mmio_read(self, offset, size):
        value = super().mmio_read(offset, size)
        if offset in self.doctor:
            value = self.doctor[offset](value)
        self.log.append(("r", offset))
        return value

    def mmio_write(self, offset, size, value):
        self.log.append(("w", offset, value))
        super().mmio_write(offset, size, value)


def system(config=FULL, device_id_bits=16, doctor=None, **kwargs):
    model = IommuModel(config, Memory(), cache=True)
    bus = Recording(model, doctor)
    io = Iommu(bus, PageAllocator(bus, REGION, 256 * MIB), **kwargs)
    io.init(device_id_bits=device_id_bits)
    return io, model, bus


def test_init_follows_the_spec_sequence():
    io, model, bus = system()
    writes = [(Offset(e[1]).name, e[2]) for e in bus.log if e[0] == "w"]
    # Pages in order: CQ ring (64 x 16 B in one page), fence word, FQ ring, DDT root.
    cq, fq, root = REGION >> 12, (REGION >> 12) + 2, (REGION >> 12) + 3
    assert writes == [
        ("DDTP", 0),                       # Off before touching fctl or the queues
        ("FCTL", 0b010),                   # WSI=1 (IGS=WSI), BE=0, GXL=0
        ("ICVEC", 0xFFFF),                 # discover the vector bits...
        ("ICVEC", 0x3210),                 # ...then one vector per cause
        ("CQB", cq << 10 | 5),             # LOG2SZ-1 = 5 for 64 entries
        ("CQT", 0),
        ("CQCSR", 1),                      # cqen
        ("FQB", fq << 10 | 5),
        ("FQH", 0),
        ("FQCSR", 1),                      # fqen
        ("DDTP", root << 10 | IommuMode.LVL2),
    ]
    # cqon was polled after cqen and before the FQ was set up; the same for fqon.
    names = [(e[0], Offset(e[1]).name) for e in bus.log]
    assert names.index(("r", "CQCSR"), names.index(("w", "CQCSR"))) < names.index(("w", "FQB"))
    assert names.index(("r", "FQCSR"), names.index(("w", "FQCSR"))) < \
        names.index(("w", "DDTP"), names.index(("w", "FQCSR")))
    assert bits.get(CQCSR, model.mmio_read(Offset.CQCSR, 4), "cqon") == 1
    assert bits.get(FQCSR, model.mmio_read(Offset.FQCSR, 4), "fqon") == 1
    assert io.vectors == {"civ": 0, "fiv": 1, "pmiv": 2, "piv": 3}


@pytest.mark.parametrize("levels, device_id_bits, mode", [
    (3, 7, IommuMode.LVL1), (3, 8, IommuMode.LVL2), (3, 16, IommuMode.LVL2),
    (3, 17, IommuMode.LVL3), (3, 24, IommuMode.LVL3), (2, 16, IommuMode.LVL2),
    (1, 7, IommuMode.LVL1),
])
def test_directory_mode_is_the_shallowest_that_fits(levels, device_id_bits, mode):
    io, model, _ = system(FULL.replace(ddt_levels=levels), device_id_bits)
    assert io.ddt.mode is mode
    assert bits.get(DDTP, model.mmio_read(Offset.DDTP, 8), "iommu_mode") == mode


@pytest.mark.parametrize("device_id_bits, did", [(7, 0x7F), (16, 0xFFFF), (24, 0xFF_FFFF)])
def test_contexts_in_each_directory_mode(device_id_bits, did):
    io, model, _ = system(device_id_bits=device_id_bits)
    io.set_bypass(did)
    io.set_bypass(0)
    assert model.translate(did, 0x1234_5000, "read").pa == 0x1234_5000
    assert model.translate(0, 0x1000, "write").pa == 0x1000
    io.set_blocked(did)
    assert model.translate(did, 0x1000, "read").cause == Cause.DDT_ENTRY_NOT_VALID
    assert model.translate(0, 0x1000, "read").pa == 0x1000


def test_directory_mode_missing():
    with pytest.raises(UnsupportedError, match=r"^no directory mode reaches 17-bit device_ids$"):
        system(FULL.replace(ddt_levels=2), 17)


def test_version_is_checked():
    doctor = {Offset.CAPABILITIES: lambda v: v & ~0xFF | 0x20}
    with pytest.raises(UnsupportedError, match=r"^capabilities.version 0x20 is not 1.x$"):
        system(doctor=doctor)


def test_a_queue_that_never_turns_on_times_out():
    doctor = {Offset.CQCSR: lambda v: v & ~(1 << 16)}
    with pytest.raises(PollTimeout,
                       match=r"^timed out after 50 polls waiting for cqcsr.cqon == 1$"):
        system(doctor=doctor, max_polls=50)


def test_init_twice_restarts_a_running_iommu():
    io, model, _ = system()
    io.set_bypass(5)
    io.init(device_id_bits=24)
    assert io.ddt.mode is IommuMode.LVL3
    # The new directory is empty: device 5 has no valid context any more.
    assert model.translate(5, 0x1000, "read").cause == Cause.DDT_ENTRY_NOT_VALID
    io.set_bypass(5)
    assert model.translate(5, 0x1000, "read").pa == 0x1000


def test_interrupt_enables():
    io, model, _ = system(interrupts=True)
    assert bits.get(CQCSR, model.mmio_read(Offset.CQCSR, 4), "cie") == 1
    assert bits.get(FQCSR, model.mmio_read(Offset.FQCSR, 4), "fie") == 1


def test_blocked_bypass_and_first_stage():
    io, model, _ = system()
    io.set_blocked(0x42)
    r = model.translate(0x42, 0x5000, "read")
    assert r.fault and r.cause == Cause.DDT_ENTRY_NOT_VALID
    rec, = io.drain_faults()
    assert (rec.cause, rec.ttyp, rec.did, rec.iotval) == (
        Cause.DDT_ENTRY_NOT_VALID, Ttyp.UNTRANSLATED_READ, 0x42, 0x5000)

    io.set_bypass(0x42)
    assert model.translate(0x42, 0x5678, "write").pa == 0x5678

    table = io.page_table(IosatpMode.SV48)
    io.set_first_stage(0x42, table, pscid=1)
    io.map(table, 1 << 40, 0x7000_0000, 2 * MIB, r=True, w=True, pbmt=Pbmt.IO, pscid=1)
    io.map(table, 0x1000, 0x9000, 4 * KIB, x=True, pscid=1)
    r = model.translate(0x42, (1 << 40) + 0x1_2345, "write")
    assert (r.pa, r.pbmt, r.x) == (0x7001_2345, Pbmt.IO, False)
    # An execute-only page (xwr=100) executes but does not read.
    assert model.translate(0x42, 0x1008, "execute").pa == 0x9008
    assert model.translate(0x42, 0x1008, "read").cause == Cause.READ_PAGE_FAULT


def test_second_stage_only():
    io, model, _ = system()
    table = io.page_table(IohgatpMode.SV39X4)
    io.set_second_stage(7, table, gscid=3)
    io.map(table, 1 << 40, 0x5000_0000, GIB, r=True, gscid=3)
    assert model.translate(7, (1 << 40) + 0x1234, "read").pa == 0x5000_1234
    r = model.translate(7, (1 << 40) + 0x1234, "write")
    assert r.cause == Cause.WRITE_GUEST_PAGE_FAULT


def test_nested():
    io, model, _ = system()
    second = io.page_table(IohgatpMode.SV48X4)
    io.map(second, 0, 0x40_0000_0000, 4 * GIB, r=True, w=True, gscid=9)  # guest RAM
    guest = GuestMemory(io.bus, second)
    first = PageTable(guest, PageAllocator(guest, 0x1000_0000, MIB), IosatpMode.SV39)
    io.set_nested(0x77, first, second, pscid=4, gscid=9)
    io.map(first, 0x20_0000, 0x8000_0000, 2 * MIB, r=True, pscid=4, gscid=9)
    # IOVA 0x20_0123 -> GPA 0x8000_0123 -> SPA 0x40_8000_0123.
    assert model.translate(0x77, 0x20_0123, "read").pa == 0x40_8000_0123
    # The guest's table really sits in guest RAM: its root GPA 0x1000_0000 is at SPA
    # 0x40_1000_0000, where the model walks it.
    assert first.root == 0x1000_0000
    assert model.memory.read64(0x40_1000_0000) & 1 == 1


def test_debug_translate_reports_the_superpage():
    io, model, _ = system()
    table = io.page_table(IosatpMode.SV39)
    io.set_first_stage(3, table, pscid=2)
    io.map(table, 0x4000_0000, 0x1_4000_0000, 2 * MIB, r=True, pscid=2)
    t = io.debug_translate(3, 0x4001_2345)
    assert (t.fault, t.pa, t.size) == (False, 0x1_4001_2345, 2 * MIB)
    assert io.debug_translate(3, 0x1000, Access.WRITE).fault


def test_set_dc_checks():
    io, model, _ = system(FULL.replace(sv48=False))
    with pytest.raises(ValueError, match=r"^tc has reserved bits set: 0x1000$"):
        io.set_dc(1, tc=1 | 1 << 12)
    with pytest.raises(UnsupportedError, match=r"^the IOMMU does not offer SV48$"):
        io.page_table(IosatpMode.SV48)
    with pytest.raises(UnsupportedError, match=r"^tc.pdtv is not offered by this driver$"):
        io.set_dc(1, tc=bits.pack(TC, v=1, pdtv=1))
    with pytest.raises(ValueError, match=r"^iohgatp.MODE 1 is a reserved encoding$"):
        io.set_dc(1, tc=1, iohgatp=1 << 60)
    with pytest.raises(UnsupportedError, match=r"^the IOMMU does not offer SV57$"):
        io.set_dc(1, tc=1, fsc=10 << 60)
    with pytest.raises(ValueError, match=r"^iohgatp.PPN must be 16 KiB aligned$"):
        io.set_dc(1, tc=1, iohgatp=8 << 60 | 0x1001)
    with pytest.raises(ValueError, match=r"^device_id 0x10000 does not fit the 16 bits of LVL2$"):
        io.set_bypass(0x1_0000)
    # Unchecked, a misconfigured context reaches the IOMMU, which reports cause 259.
    io.set_dc(1, tc=1 | 1 << 12, check=False)
    assert model.translate(1, 0, "read").cause == Cause.DDT_ENTRY_MISCONFIGURED


def test_nothing_before_init():
    model = IommuModel(FULL, Memory())
    bus = ModelBus(model)
    io = Iommu(bus, PageAllocator(bus, REGION, MIB))
    with pytest.raises(IommuError, match=r"^the IOMMU is not initialised: call init\(\) first$"):
        io.set_bypass(1)
    with pytest.raises(IommuError, match=r"^the IOMMU is not initialised"):
        io.page_table(IosatpMode.SV39)
    assert bus.mmio_read(Offset.DDTP, 8) == 0  # and nothing was written


def test_sync_needs_the_right_ids():
    io, _, _ = system()
    table = io.page_table(IosatpMode.SV39)
    with pytest.raises(TypeError, match=r"^first-stage changes need the pscid"):
        io.sync(table, TableChanges(Stage.FIRST))
    with pytest.raises(TypeError, match=r"^second-stage changes need the gscid of the VM$"):
        io.sync(table, TableChanges(Stage.SECOND))
    with pytest.raises(ValueError, match=r"^second-stage invalidations take no pscid"):
        io.sync(table, TableChanges(Stage.SECOND), pscid=1, gscid=1)


def test_freed_table_pages_return_to_the_allocator_after_the_fence():
    io, _, _ = system()
    table = io.page_table(IosatpMode.SV39)
    io.map(table, 0x1000, 0x1000, 4 * KIB, r=True, pscid=1)
    before = dict(io.alloc.allocated)
    changes = io.map(table, 0, 0, 2 * MIB, r=True, pscid=1)
    assert changes.freed == [] and len(io.alloc.allocated) == len(before) - 1
