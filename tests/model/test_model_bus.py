"""``ModelBus``: the driver's ``Bus`` over the model."""

import pytest

from iogate.hdl.regs import Offset

from iogate.firmware.bus import Bus

from iogate.cosim.model.bus import ModelBus
from model_tables import Rig, cmd_bytes, iofence_c


def test_is_a_bus():
    assert isinstance(ModelBus(Rig().iommu), Bus)


def test_rejects_other_objects():
    with pytest.raises(TypeError, match="iommu must be an IommuModel, not 3"):
        ModelBus(3)


def test_memory_goes_to_the_model_memory():
    rig = Rig()
    bus = ModelBus(rig.iommu)
    bus.mem_write(0x1234, b"\x01\x02")
    assert rig.mem.read(0x1234, 2) == b"\x01\x02" and bus.mem_read(0x1234, 2) == b"\x01\x02"


def test_cqt_write_runs_the_queue():
    rig = Rig()
    bus = ModelBus(rig.iommu)
    cq = rig.page()
    bus.mmio_write(Offset.CQB, 8, (cq << 10) | 1)             # 4 entries
    bus.mmio_write(Offset.CQCSR, 4, 1)
    bus.mem_write(cq << 12, cmd_bytes(iofence_c(av=1, addr=0x8000, data=0x55)))
    bus.mmio_write(Offset.CQT, 4, 1)
    assert bus.mmio_read(Offset.CQH, 4) == 1 and bus.mem_read(0x8000, 1) == b"\x55"


def test_cqcsr_write_resumes_the_queue():
    rig = Rig()
    bus = ModelBus(rig.iommu)
    cq = rig.page()
    bus.mmio_write(Offset.CQB, 8, (cq << 10) | 1)
    bus.mem_write(cq << 12, cmd_bytes(iofence_c(av=1, addr=0x8000, data=0x66)))
    bus.mmio_write(Offset.CQT, 4, 1)                          # queue still off
    assert bus.mmio_read(Offset.CQH, 4) == 0
    bus.mmio_write(Offset.CQCSR, 4, 1)
    assert bus.mmio_read(Offset.CQH, 4) == 1 and bus.mem_read(0x8000, 1) == b"\x66"
