"""The mirror on the performance monitor: a register read is compared on the bits the model
predicts, and the model adopts the target's value of the others (the clock-cycle count, walk
and IOATC-miss counts, the OFs and ``ipsr.pmip`` they may set; decisions 4-11 of issue 17
(HPM)). The target here is a second model whose counters are moved by hand, as hardware's
would be by its clock and its walks."""

from iogate.hdl import Config
from iogate.hdl.regs import HpmEvent, Igs, Offset, hpm_ctr_offset, hpm_evt_offset

from iogate.cosim.check.mirror import Mirror
from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.hpm import Identity

CFG = Config.hpm().replace(hpm_counter_width=32, igs=Igs.BOTH)
PMIP = 1 << 2


class Doctored(ModelBus):
    """The target: a model whose reads can be doctored (a wrong bit of the 'hardware')."""

    def __init__(self, model):
        super().__init__(model)
        self.doctor = {}

    def mmio_read(self, offset, size):
        value = super().mmio_read(offset, size)
        return self.doctor.get(offset, lambda v: v)(value)


def pair():
    hw = IommuModel(CFG, Memory())
    model = IommuModel(CFG, Memory())
    target = Doctored(hw)
    mirror = Mirror(target, model, settle_reads=2, mirror_memory=False)
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF)
    mirror.mmio_write(Offset.DDTP, 8, 1)                 # Bare
    # iohpmcycles ran from reset until now: its count and OF, and so pmip, are unknown
    # until read once (and adopted).
    assert model.mmio_read_care(Offset.IOCOUNTOVF, 4)[1] == 0xFFFF_FFFE
    for offset, size in ((Offset.IOCOUNTOVF, 4), (Offset.IOHPMCYCLES, 8), (Offset.IPSR, 4)):
        mirror.mmio_read(offset, size)
    assert model.mmio_read_care(Offset.IPSR, 4)[1] == 0xFFFF_FFFF
    return hw, model, target, mirror


def both_translate(hw, model, device_id=1):
    hw.translate(device_id, 0, "read")
    model.translate(device_id, 0, "read")


def test_exact_counter_compared_and_a_wrong_bit_fails():
    hw, model, target, mirror = pair()
    mirror.mmio_write(hpm_evt_offset(1), 8, HpmEvent.UNTRANSLATED_REQ)
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF & ~0b10)
    both_translate(hw, model)
    assert mirror.mmio_read(hpm_ctr_offset(1), 8) == 1 and mirror.mismatches == []
    target.doctor[hpm_ctr_offset(1)] = lambda v: v + 1
    mirror.mmio_read(hpm_ctr_offset(1), 8)
    assert len(mirror.mismatches) == 1 and "0x068/8" in mirror.mismatches[0]


def test_cycles_unknown_adopted_but_bits_above_width_compared():
    hw, model, target, mirror = pair()
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFE)     # iohpmcycles runs
    hw.regs.hpm.tick(12345)
    assert mirror.mmio_read(Offset.IOHPMCYCLES, 8) == 12345
    assert mirror.mismatches == []
    assert model.regs.hpm.ctr[0] == 12345                    # adopted
    # Bit 40 is above the 32-bit width: it must read 0 whatever the count.
    target.doctor[Offset.IOHPMCYCLES] = lambda v: v | 1 << 40
    mirror.mmio_read(Offset.IOHPMCYCLES, 8)
    assert len(mirror.mismatches) == 1


def test_adopted_walk_count_then_known_increments_wrap_exactly():
    hw, model, target, mirror = pair()
    mirror.mmio_write(hpm_evt_offset(2), 8, HpmEvent.S1_WALK)
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF & ~0b100)
    hw.regs.hpm.count(HpmEvent.S1_WALK, Identity(1), 0xFFFF_FFFE)   # the hardware's walks
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF)            # stop it
    assert mirror.mmio_read(hpm_ctr_offset(2), 8) == 0xFFFF_FFFE   # adopted, now known
    assert model.mmio_read_care(hpm_ctr_offset(2), 8)[1] == (1 << 64) - 1
    # Switch to event 1 (the count is kept) and let two requests wrap it.
    mirror.mmio_write(hpm_evt_offset(2), 8, HpmEvent.UNTRANSLATED_REQ)
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF & ~0b100)
    both_translate(hw, model)
    both_translate(hw, model)
    assert model.mmio_read_care(Offset.IOCOUNTOVF, 4) == (1 << 2, 0xFFFF_FFFF)
    assert mirror.mmio_read(hpm_ctr_offset(2), 8) == 0
    assert mirror.mmio_read(Offset.IOCOUNTOVF, 4) == 1 << 2
    assert mirror.mismatches == []
    # The OF of an exact counter is compared: a target that lost it fails.
    target.doctor[Offset.IOCOUNTOVF] = lambda v: v & ~(1 << 2)
    mirror.mmio_read(Offset.IOCOUNTOVF, 4)
    assert len(mirror.mismatches) == 1


def test_unknown_overflow_pmip_adopted_with_one_message():
    hw, model, target, mirror = pair()
    mirror.mmio_write(Offset.FCTL, 4, 0)                      # MSIs
    mirror.mmio_write(Offset.ICVEC, 8, 5 << 8)                # pmiv = 5
    entry = Offset.MSI_CFG_TBL + 16 * 5
    mirror.mmio_write(entry, 8, 0x9000_0000)
    mirror.mmio_write(entry + 8, 4, 0xAB)
    mirror.mmio_write(entry + 12, 4, 0)
    mirror.mmio_write(hpm_evt_offset(1), 8, HpmEvent.IOATC_MISS)
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF & ~0b10)
    hw.regs.hpm.count(HpmEvent.IOATC_MISS, Identity(1), 1 << 32)   # wraps in the hardware
    assert hw.regs.ipsr & PMIP and len(hw.interrupts.messages) == 1
    assert model.mmio_read_care(Offset.IPSR, 4)[1] & PMIP == 0   # unknown
    assert mirror.mmio_read(Offset.IPSR, 4) & PMIP
    assert mirror.mismatches == []
    assert model.regs.ipsr & PMIP                             # adopted
    assert [(m.address, m.data) for m in model.interrupts.messages] == [(0x9000_0000, 0xAB)]
    # iocountovf adopts the OF; an OF known to be 1 stays 1 (no edge can follow), so pmip is
    # known again from the next read of ipsr on.
    assert mirror.mmio_read(Offset.IOCOUNTOVF, 4) == 1 << 1
    assert model.mmio_read_care(Offset.IOCOUNTOVF, 4)[1] == 0xFFFF_FFFF
    mirror.mmio_read(Offset.IPSR, 4)
    assert model.mmio_read_care(Offset.IPSR, 4)[1] & PMIP
    # cip/fip stay compared while pmip is unknown: a wrong cip fails.
    target.doctor[Offset.IPSR] = lambda v: v | 1
    mirror.mmio_read(Offset.IPSR, 4)
    assert len(mirror.mismatches) == 1


def test_no_hpm_every_bit_compared():
    hw = IommuModel(Config.full(), Memory())
    model = IommuModel(Config.full(), Memory())
    target = Doctored(hw)
    mirror = Mirror(target, model, settle_reads=1, mirror_memory=False)
    target.doctor[Offset.IOHPMCYCLES] = lambda v: v | 1
    mirror.mmio_read(Offset.IOHPMCYCLES, 8)
    assert len(mirror.mismatches) == 1


# -- the interrupt monitor's pmip rule (cosim/targets/tb/interrupts.py) ---------------------

def _monitor(sent):
    from iogate.cosim.targets.tb.interrupts import InterruptMonitor, RtlMsi
    mon = object.__new__(InterruptMonitor)              # no cocotb: only the comparison
    mon.msis = [RtlMsi(0, a, d, True) for a, d in sent]
    return mon


def _msi_pair():
    hw, model, target, mirror = pair()
    mirror.mmio_write(Offset.FCTL, 4, 0)
    mirror.mmio_write(Offset.ICVEC, 8, 5 << 8)
    entry = Offset.MSI_CFG_TBL + 16 * 5
    mirror.mmio_write(entry, 8, 0x9000_0000)
    mirror.mmio_write(entry + 8, 4, 0xAB)
    mirror.mmio_write(entry + 12, 4, 0)
    return hw, model, mirror


def test_monitor_allows_one_unseen_pmip_message_per_unknown_window():
    hw, model, mirror = _msi_pair()
    pm = (0x9000_0000, 0xAB)
    # All known: an extra pmip message fails.
    assert model.regs.hpm.unseen_pmip_messages() == 0
    assert _monitor([pm])._msi_diff(model) is not None
    mirror.mmio_write(hpm_evt_offset(1), 8, HpmEvent.S2_WALK)
    mirror.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF & ~0b10)
    hw.regs.hpm.count(HpmEvent.S2_WALK, Identity(1), 1 << 32)    # the RTL's pmip message
    # pmip unknown (a rise not read yet): that one message is allowed, two are not.
    assert _monitor([pm])._msi_diff(model) is None
    assert _monitor([pm, pm])._msi_diff(model) is not None
    assert _monitor([pm, (0x9000_0000, 0xAC)])._msi_diff(model) is not None
    # The handler clears pmip without reading it: the window stays counted.
    mirror.mmio_write(Offset.IPSR, 4, PMIP)
    assert _monitor([pm])._msi_diff(model) is None
    assert model.regs.hpm.unseen_pmip_messages() == 2        # the clear, and still unknown


def test_monitor_wire_either_value_only_while_pmip_unknown():
    from iogate.cosim.targets.tb.interrupts import _wsi_allowed
    hw = IommuModel(CFG.replace(igs=Igs.WSI), Memory())
    hw.mmio_write(Offset.ICVEC, 8, 3 << 8)
    assert _wsi_allowed(hw) == {0, 1 << 3}               # cycles run from reset: unknown
    hw.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF)
    hw.adopt(Offset.IOCOUNTOVF, 4, 0)
    hw.adopt(Offset.IPSR, 4, 0)
    assert _wsi_allowed(hw) == {0}
