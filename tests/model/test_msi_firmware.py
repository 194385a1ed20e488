"""The driver's MSI page tables (iogate.firmware) on the model: the two were written apart
from the same spec, so a table the driver builds must translate as reference N.4 says.
Expected values are worked out by hand: mask 0b1, pattern 0x2_8000 makes GPA pages 0x28000
(file 0) and 0x28001 (file 1) MSI pages."""

from iogate.hdl import Config
from iogate.hdl.formats import Cause, IohgatpMode

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu

from iogate.cosim.model import IommuModel, Memory, Result
from iogate.cosim.model.bus import ModelBus


def test_driver_tables_on_the_model():
    mem = Memory()
    m = IommuModel(Config.msi(), mem, cache=True)
    bus = ModelBus(m)
    io = Iommu(bus, PageAllocator(bus, 0x1000_0000, 0x100_0000))
    io.init()
    g = io.page_table(IohgatpMode.SV48X4)
    io.map(g, 0x8000_0000, 0x2000_0000, 1 << 21, r=True, w=True, gscid=7)
    t = io.msi_page_table(mask=0b1, pattern=0x2_8000)
    io.set_second_stage(0x1234, g, gscid=7, msi=t)
    io.msi_map_basic(t, ppn=0x5_0000, index=1)
    assert m.translate(0x1234, 0x2800_1004, "write").pa == 0x5_0000_004
    assert m.translate(0x1234, 0x8000_1004, "write").pa == 0x2000_1004
    assert m.translate(0x1234, 0x2800_0000, "read").cause == Cause.MSI_PTE_NOT_VALID
    # The driver's map_mrif invalidates (GVMA AV=1) and fences: only the new PTE is allowed.
    mrif = io.mrifs.alloc_mrif()
    io.msi_map_mrif(t, mrif=mrif.address, notice_ppn=0x6_0000, nid=33, index=1)
    absorbed = Result(fault=False, absorbed=True)
    assert m.allowed(0x1234, 0x2800_1000, "write", data=5) == {absorbed}
    assert m.translate(0x1234, 0x2800_1000, "write", data=5) == absorbed
    assert mrif.is_pending(5) and mem.read64(mrif.address) == 1 << 5
    assert mem.read(0x6_0000_000, 4) == (33).to_bytes(4, "little")
    io.msi_unmap(t, index=1)
    assert m.allowed(0x1234, 0x2800_1000, "write", data=5) == {
        Result(fault=True, cause=Cause.MSI_PTE_NOT_VALID)}
