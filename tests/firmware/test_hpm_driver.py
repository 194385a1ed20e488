"""The performance-monitor driver (firmware/hpm.py) against the model: the sequences of spec
"Hardware performance monitor" (reference N.7: discovery, "clear eventIDs and set iocountinh
before use", "to re-arm: write the counter, then clear OF", the RV32 iohpmevt update order).
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import HpmEvent, Offset, hpm_ctr_offset, hpm_evt_offset

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.hpm import Overflow, PerformanceMonitor

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus

PMIP = 1 << 2


class Log(ModelBus):
    """A ModelBus that logs register writes and the sizes of every access."""

    def __init__(self, model):
        super().__init__(model)
        self.writes = []
        self.sizes = set()

    def mmio_read(self, offset, size):
        self.sizes.add(size)
        return super().mmio_read(offset, size)

    def mmio_write(self, offset, size, value):
        self.sizes.add(size)
        self.writes.append((offset, size, value))
        super().mmio_write(offset, size, value)


def setup(counters=5, width=48, bus32=False):
    m = IommuModel(Config.hpm().replace(hpm_counters=counters, hpm_counter_width=width),
                   Memory())
    bus = Log(m)
    return m, bus, PerformanceMonitor(bus, bus32=bus32)


@pytest.mark.parametrize("counters,width,cycles", [(5, 48, 48), (1, 32, 32), (31, 64, 63),
                                                   (7, 40, 40)])
@pytest.mark.parametrize("bus32", [False, True])
def test_discovery_finds_counters_and_widths(counters, width, cycles, bus32):
    _, bus, hpm = setup(counters, width, bus32)
    assert hpm.discover() == counters
    assert (hpm.width, hpm.cycles_width) == (width, cycles)
    if bus32:
        assert bus.sizes == {4}


def test_reset_inhibits_and_clears_what_was_left():
    m, _, hpm = setup()
    # An earlier owner left selectors, counts and OFs behind.
    for x in range(1, 6):
        m.mmio_write(hpm_evt_offset(x), 8, 1 << 63 | HpmEvent.S1_WALK)
        m.mmio_write(hpm_ctr_offset(x), 8, 1234)
    m.mmio_write(Offset.IOHPMCYCLES, 8, 1 << 63 | 99)
    hpm.reset()
    assert m.mmio_read(Offset.IOCOUNTINH, 4) == 0b111111       # CY and 1..5
    assert m.mmio_read(Offset.IOCOUNTOVF, 4) == 0
    assert m.mmio_read(Offset.IOHPMCYCLES, 8) == 0
    for x in range(1, 6):
        assert m.mmio_read(hpm_evt_offset(x), 8) == 0
        assert m.mmio_read(hpm_ctr_offset(x), 8) == 0


def test_program_inhibits_before_the_selector_and_counts_after_start():
    m, bus, hpm = setup()
    hpm.reset()
    m.mmio_write(Offset.DDTP, 8, 1)                             # Bare
    hpm.start(2)
    bus.writes.clear()
    hpm.program(2, HpmEvent.UNTRANSLATED_REQ, device_id=0b100_011, dmask=True)
    offsets = [w[0] for w in bus.writes]
    # stop (iocountinh with bit 2), then the selector, then the counter.
    assert offsets == [Offset.IOCOUNTINH, hpm_evt_offset(2), hpm_ctr_offset(2)]
    assert bus.writes[0][2] >> 2 & 1
    # The selector: eventID 1, DMASK (bit 15), DID_GSCID at 59:36, DV_GSCV (bit 61).
    assert bus.writes[1][2] == 1 | 1 << 15 | 0b100_011 << 36 | 1 << 61
    m.translate(0b100_001, 0, "read")
    assert hpm.read(2) == 0                                     # not started
    hpm.start(2)
    m.translate(0b100_001, 0, "read")
    m.translate(0b101_001, 0, "read")                           # another device: no count
    assert hpm.read(2) == 1
    hpm.stop(2)
    m.translate(0b100_001, 0, "read")
    assert hpm.read(2) == 1


def test_rv32_selector_update_order():
    m, bus, hpm = setup(bus32=True)
    hpm.reset()
    bus.writes.clear()
    hpm.program(1, HpmEvent.UNTRANSLATED_REQ, process_id=0x12345)
    evt = [(o, v) for o, _, v in bus.writes if o in (hpm_evt_offset(1), hpm_evt_offset(1) + 4)]
    full = 1 | 0x12345 << 16 | 1 << 60
    # N.7: low word with eventID=0, then the high word, then the low word.
    assert evt == [(hpm_evt_offset(1), (full & 0xFFFF_FFFF) & ~0x7FFF),
                   (hpm_evt_offset(1) + 4, full >> 32),
                   (hpm_evt_offset(1), full & 0xFFFF_FFFF)]
    assert m.mmio_read(hpm_evt_offset(1), 8) == full
    assert bus.sizes == {4}


def test_idt1_selector_and_refusals():
    _, _, hpm = setup()
    hpm.reset()
    v = hpm.selector(HpmEvent.S2_WALK, gscid=7, pscid=3)
    assert v == 8 | 3 << 16 | 7 << 36 | 1 << 60 | 1 << 61 | 1 << 62
    with pytest.raises(ValueError):
        hpm.selector(HpmEvent.UNTRANSLATED_REQ, gscid=1)         # event 1 is IDT=0 only
    with pytest.raises(ValueError):
        hpm.selector(HpmEvent.IOATC_MISS, gscid=1, device_id=2)
    with pytest.raises(ValueError):
        hpm.program(6, HpmEvent.UNTRANSLATED_REQ)                # only 5 counters


@pytest.mark.parametrize("bus32", [False, True])
def test_overflow_handler_rearms(bus32):
    m, bus, hpm = setup(width=32, bus32=bus32)
    hpm.reset()
    hpm.program(3, HpmEvent.UNTRANSLATED_REQ)
    hpm.write(3, 0xFFFF_FFFF)
    hpm.start(3)
    m.translate(1, 0, "read")                                   # wraps: OF, pmip
    assert m.regs.ipsr & PMIP
    bus.writes.clear()
    got = hpm.handle_overflow(reload=0xFFFF_FFF0)
    assert got.counters == (3,) and got.iocountovf == 1 << 3
    assert m.regs.ipsr & PMIP == 0
    assert m.mmio_read(Offset.IOCOUNTOVF, 4) == 0
    assert hpm.read(3) == 0xFFFF_FFF0
    # pmip cleared first, then the counter written, then OF cleared (N.7).
    offsets = [o & ~7 if o >= Offset.IOHPMCYCLES else o for o, _, _ in bus.writes]
    assert offsets[0] == Offset.IPSR
    assert offsets.index(hpm_ctr_offset(3)) < offsets.index(hpm_evt_offset(3))
    # Re-armed: the next wrap interrupts again.
    for _ in range(16):
        m.translate(1, 0, "read")
    assert m.regs.ipsr & PMIP and hpm.read(3) == 0


def test_overflow_of_cycles_is_rearmed():
    m, _, hpm = setup()
    hpm.reset()
    hpm.write(0, (1 << 48) - 1)
    hpm.start(0)
    assert hpm.handle_overflow() == Overflow((), 0)                     # no pmip: nothing done
    m.regs.hpm.tick(1)                                          # one clock: the wrap
    got = hpm.handle_overflow(reload=7)
    assert got.counters == (0,) and got.iocountovf == 1
    assert m.regs.hpm.ctr[0] == 7 and m.regs.hpm.of[0] == 0
    assert m.regs.ipsr & PMIP == 0


def test_software_of_without_pmip_is_not_handled():
    m, _, hpm = setup()
    hpm.reset()
    m.mmio_write(hpm_evt_offset(1), 8, 1 << 63)                 # OF=1 written: no pmip
    assert hpm.handle_overflow() == Overflow((), 0)
    assert m.mmio_read(Offset.IOCOUNTOVF, 4) == 1 << 1


def test_init_discovers_and_resets_the_monitor():
    m = IommuModel(Config.hpm(), Memory())
    bus = ModelBus(m)
    io = Iommu(bus, PageAllocator(bus, 0x1_0000_0000, 16 << 20))
    io.init()
    assert io.hpm is not None and io.hpm.counters == 7 and io.hpm.width == 40
    assert m.mmio_read(Offset.IOCOUNTINH, 4) == 0xFF
    m2 = IommuModel(Config.full(), Memory())
    bus2 = ModelBus(m2)
    io2 = Iommu(bus2, PageAllocator(bus2, 0x1_0000_0000, 16 << 20))
    io2.init()
    assert io2.hpm is None
