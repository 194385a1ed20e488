"""The public API of :mod:`iogate.cosim.model`: construction, ``Result``, the benchmark."""

import pytest

from iogate.hdl import Config
from iogate.hdl.formats import Cause, Pbmt

from iogate.cosim.bench.model import bench_model
from iogate.cosim.model import IommuModel, Result
from iogate.cosim.model import Memory as ReExported
from iogate.cosim.model.caches import TlbEntry
from iogate.cosim.model.memory import Memory


def test_memory_is_reexported():
    assert ReExported is Memory


def test_config_type_checked():
    with pytest.raises(TypeError, match=r"config must be an iogate.hdl.Config, not \{\}"):
        IommuModel({}, Memory())


def test_memory_type_checked():
    with pytest.raises(TypeError,
                       match="memory must be a iogate.cosim.model.memory.Memory, not None"):
        IommuModel(Config(), None)


def test_result_pa_and_equality():
    a = Result(fault=False, ppn=0x87654, r=True, pbmt=Pbmt.PMA, offset=0x123, size=4096)
    b = Result(fault=False, ppn=0x87654, r=True, pbmt=Pbmt.PMA, offset=0xFFF, size=1 << 21)
    assert a.pa == 0x8765_4123
    assert a == b and len({a, b}) == 1        # offset and size are not compared
    assert Result(fault=True, cause=Cause.READ_PAGE_FAULT).pa is None
    assert "READ_PAGE_FAULT" in repr(Result(fault=True, cause=Cause.READ_PAGE_FAULT))
    assert "r--" in repr(a)


def test_result_and_tlb_entry_are_built_with_keywords():
    with pytest.raises(TypeError):
        Result(False, 0, 0x87654)
    with pytest.raises(TypeError):
        TlbEntry(None, None, False, 0, 4096, None, 0x87654, (True,) * 3, (True,) * 3, 0)
    e = TlbEntry(gscid=None, pscid=3, glob=False, iova=0x4000_0000, size=4096, gpa=None,
                 ppn=0x87654, s1=(True, False, False), s2=(True, True, True), pbmt=0)
    assert (e.pscid, e.ppn, e.s1_range, e.doomed) == (3, 0x87654, None, False)


def test_bench_model_figures():
    out = bench_model(seconds=0.02)
    assert set(out) == {"full_walk", "cached", "two_stage_walk", "allowed", "seconds"}
    assert all(out[k] > 0 for k in ("full_walk", "cached", "two_stage_walk", "allowed"))


def test_bench_model_seconds_checked():
    with pytest.raises(ValueError, match="seconds must be positive, not 0"):
        bench_model(seconds=0)


def test_untranslated_addresses_beyond_pas_are_access_faults():
    """Bare mode and a Bare/Bare device context pass IOVAs below 2**PAS untouched and
    refuse the rest with the access fault of the access type (iogate's reading of the
    Privileged spec's PMA rule; the port cannot carry a wider address)."""
    from iogate.hdl import Config, bits
    from iogate.hdl.formats import TC
    from iogate.hdl.regs import DDTP, IommuMode, Offset

    from iogate.cosim.model import IommuModel, Memory
    config = Config(pas=40)
    mem = Memory()
    m = IommuModel(config, mem)
    m.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.BARE))
    assert m.translate(1, (1 << 40) - 8, "read").pa == (1 << 40) - 8
    assert [m.translate(1, 1 << 40, a).cause for a in ("read", "write", "execute")] == [5, 7, 1]
    assert [r.cause for r in m.allowed(1, 1 << 40, "write")] == [7]
    m.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.OFF))
    root = 0x10_0000
    mem.write64(root + 5 * 32, bits.pack(TC, v=1))
    m.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.LVL1, ppn=root >> 12))
    assert m.translate(5, 0x1234, "write").pa == 0x1234
    assert m.translate(5, 1 << 41, "write").cause == 7
    assert [r.cause for r in m.allowed(5, 1 << 41, "execute")] == [1]
