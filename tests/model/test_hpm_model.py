"""The model's performance monitor against the spec ("Hardware performance monitor", reference
N.7) and decisions 1-12 of issue 17 (HPM). Expected values come from the spec's text and
tables, worked out by hand here."""

import random

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import HpmEvent, Igs, Offset, hpm_ctr_offset, hpm_evt_offset

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.hpm import Identity, filter_matches

ALL64 = (1 << 64) - 1
PMIP = 1 << 2            # ipsr.pmip (spec "Interrupt pending status register (ipsr)")


def model(counters=7, width=40):
    m = IommuModel(Config.hpm().replace(hpm_counters=counters, hpm_counter_width=width),
                   Memory())
    m.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF)      # as a driver does first
    return m


def evt(event, *, dmask=0, pid=0, did=0, pv=0, dv=0, idt=0, of=0):
    """An iohpmevt value from the spec's field table (bits 14:0, 15, 35:16, 59:36, 60-63)."""
    return (event | dmask << 15 | pid << 16 | did << 36 | pv << 60 | dv << 61 | idt << 62
            | of << 63)


def run(m, x, value):
    m.mmio_write(hpm_evt_offset(x), 8, value)
    m.mmio_write(Offset.IOCOUNTINH, 4, m.mmio_read(Offset.IOCOUNTINH, 4) & ~(1 << x))


def ctr(m, x):
    return m.mmio_read(hpm_ctr_offset(x), 8)


# -- decision 1: absence ---------------------------------------------------------------

def test_no_hpm_reads_zero_and_ignores_writes():
    m = IommuModel(Config.full(), Memory())
    for off in range(Offset.IOCOUNTOVF, Offset.IOHPMEVT1 + 8 * 31, 8):
        if off == Offset.IOCOUNTOVF:
            m.mmio_write(0x58, 4, 0xFFFF_FFFF)
            m.mmio_write(0x5C, 4, 0xFFFF_FFFF)
            assert m.mmio_read(0x58, 4) == m.mmio_read(0x5C, 4) == 0
            continue
        m.mmio_write(off, 8, ALL64)
        assert m.mmio_read(off, 8) == 0
        assert m.mmio_read_care(off, 8) == (0, ALL64)
    m.translate(1, 0, "read")
    assert m.regs.ipsr & PMIP == 0


def test_counters_above_n_read_zero_and_inh_bits_warl():
    m = model(counters=5)
    m.mmio_write(hpm_ctr_offset(6), 8, 123)
    m.mmio_write(hpm_evt_offset(6), 8, evt(1))
    assert ctr(m, 6) == 0 and m.mmio_read(hpm_evt_offset(6), 8) == 0
    # CY and bits 1..5 exist (bit X is iohpmctrX).
    assert m.mmio_read(Offset.IOCOUNTINH, 4) == 0b111111


# -- decision 2: reset -------------------------------------------------------------------

def test_reset_zero_and_cycles_running_is_unknown():
    m = IommuModel(Config.hpm(), Memory())
    assert m.mmio_read(Offset.IOCOUNTINH, 4) == 0
    for x in range(1, 8):
        assert ctr(m, x) == 0 and m.mmio_read(hpm_evt_offset(x), 8) == 0
    # iohpmcycles runs from reset: its counter bits are unknown, not OF... OF may wrap too.
    value, care = m.mmio_read_care(Offset.IOHPMCYCLES, 8)
    assert care == 0 or care & ((1 << 40) - 1) == 0
    assert care >> 40 & ((1 << 23) - 1) == (1 << 23) - 1     # bits 62:40 read 0: known


# -- decision 3: widths ----------------------------------------------------------------

@pytest.mark.parametrize("width", [32, 40, 48, 64])
def test_counter_width_warl(width):
    m = model(width=width)
    m.mmio_write(hpm_ctr_offset(1), 8, ALL64)
    assert ctr(m, 1) == (1 << width) - 1
    m.mmio_write(Offset.IOHPMCYCLES, 8, (1 << 63) - 1)
    assert m.mmio_read(Offset.IOHPMCYCLES, 8) == (1 << min(width, 63)) - 1


def test_half_writes_keep_other_half():
    m = model(width=64)
    m.mmio_write(hpm_ctr_offset(2), 8, 0x1111_2222_3333_4444)
    m.mmio_write(hpm_ctr_offset(2) + 4, 4, 0xAAAA_BBBB)
    assert ctr(m, 2) == 0xAAAA_BBBB_3333_4444
    m.mmio_write(hpm_ctr_offset(2), 4, 0x5)
    assert ctr(m, 2) == 0xAAAA_BBBB_0000_0005


# -- decisions 4, 5: overflow and pmip ---------------------------------------------------

def test_wrap_sets_of_and_pmip_once_and_keeps_counting():
    m = model(width=32)
    run(m, 3, evt(HpmEvent.UNTRANSLATED_REQ))
    m.mmio_write(hpm_ctr_offset(3), 8, 0xFFFF_FFFE)
    m.translate(1, 0, "read")
    assert ctr(m, 3) == 0xFFFF_FFFF and m.regs.ipsr & PMIP == 0
    m.translate(1, 0, "read")                            # all-ones -> 0: wrap
    assert ctr(m, 3) == 0
    assert m.mmio_read(hpm_evt_offset(3), 8) >> 63 == 1
    assert m.mmio_read(Offset.IOCOUNTOVF, 4) == 1 << 3
    assert m.regs.ipsr & PMIP
    m.mmio_write(Offset.IPSR, 4, PMIP)                   # W1C: OF still 1, pmip stays 0
    assert m.regs.ipsr & PMIP == 0
    m.mmio_write(hpm_ctr_offset(3), 8, 0xFFFF_FFFF)
    m.translate(1, 0, "read")                            # a second wrap with OF=1: nothing
    assert m.regs.ipsr & PMIP == 0 and ctr(m, 3) == 0
    m.translate(1, 0, "read")
    assert ctr(m, 3) == 1                                # keeps counting


def test_software_write_of_one_sets_no_pmip():
    m = model()
    m.mmio_write(hpm_evt_offset(1), 8, evt(1, of=1))
    m.mmio_write(Offset.IOHPMCYCLES, 8, 1 << 63)
    assert m.mmio_read(Offset.IOCOUNTOVF, 4) == 0b11
    assert m.regs.ipsr & PMIP == 0
    # A software write of all-ones does not overflow either (only counting does).
    m.mmio_write(hpm_evt_offset(2), 8, evt(1))
    m.mmio_write(hpm_ctr_offset(2), 8, ALL64)
    assert m.regs.ipsr & PMIP == 0


def test_iocountovf_is_read_only():
    m = model()
    m.mmio_write(Offset.IOCOUNTOVF, 4, 0xFFFF_FFFF)
    assert m.mmio_read(Offset.IOCOUNTOVF, 4) == 0


def test_pmip_msi_through_pmiv():
    m = IommuModel(Config.hpm().replace(igs=Igs.BOTH), Memory())
    m.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF)
    m.mmio_write(Offset.FCTL, 4, 0)                      # WSI=0: messages
    m.mmio_write(Offset.ICVEC, 8, 3 << 8)                # pmiv = 3
    base = Offset.MSI_CFG_TBL + 16 * 3
    m.mmio_write(base, 8, 0x8000_0000)               # ADDR [55:2] in place
    m.mmio_write(base + 8, 4, 0x77)
    m.mmio_write(base + 12, 4, 0)
    run(m, 1, evt(1))
    m.mmio_write(hpm_ctr_offset(1), 8, (1 << 40) - 1)
    m.translate(1, 0, "read")
    sent = [(x.vector, x.address, x.data) for x in m.interrupts.messages]
    assert sent == [(3, 0x8000_0000, 0x77)]


def test_pmip_wire_on_pmiv():
    m = IommuModel(Config.hpm().replace(igs=Igs.WSI), Memory())
    assert m.regs.wsi
    m.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF)
    m.mmio_write(Offset.ICVEC, 8, 2 << 8)
    run(m, 1, evt(1))
    m.mmio_write(hpm_ctr_offset(1), 8, (1 << 40) - 1)
    m.translate(1, 0, "read")
    assert m.wsi_lines == 1 << 2


# -- decision 6: inhibit ------------------------------------------------------------------

def test_inhibit_bit_x_stops_counter_x():
    m = model()
    m.mmio_write(hpm_evt_offset(1), 8, evt(1))
    m.mmio_write(hpm_evt_offset(2), 8, evt(1))
    # Clear bit 1 only: iohpmctr1 counts, iohpmctr2 (bit 2) does not (not bit X+1: N.9 P5).
    m.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF & ~0b10)
    m.translate(1, 0, "read")
    assert (ctr(m, 1), ctr(m, 2)) == (1, 0)
    m.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF & ~0b1)    # CY only: no event counter
    m.translate(1, 0, "read")
    assert (ctr(m, 1), ctr(m, 2)) == (1, 0)
    m.mmio_write(hpm_ctr_offset(2), 8, 9)                     # an inhibited counter is written
    assert ctr(m, 2) == 9


# -- decision 8: event_id WARL ------------------------------------------------------------

@pytest.mark.parametrize("event,kept", [(0, 0), (1, 1), (2, 2), (3, 3), (8, 8), (9, 0),
                                        (16383, 0), (16384, 0), (32767, 0)])
def test_event_id_warl(event, kept):
    m = model()
    other = evt(0, dmask=1, pid=0xABCDE, did=0x123456, pv=1, dv=1, idt=1)
    m.mmio_write(hpm_evt_offset(4), 8, other | event)
    assert m.mmio_read(hpm_evt_offset(4), 8) == other | kept


def test_changing_event_keeps_counter():
    m = model()
    m.mmio_write(hpm_ctr_offset(1), 8, 55)
    m.mmio_write(hpm_evt_offset(1), 8, evt(1))
    m.mmio_write(hpm_evt_offset(1), 8, evt(0))
    assert ctr(m, 1) == 55


def test_events_2_3_never_count():
    m = model()
    run(m, 1, evt(2))
    run(m, 2, evt(3))
    m.translate(1, 0, "read")
    assert ctr(m, 1) == ctr(m, 2) == 0
    assert m.mmio_read_care(hpm_ctr_offset(1), 8)[1] == ALL64


# -- decision 10: UNTRANSLATED_REQ --------------------------------------------------------

def test_untranslated_counts_every_request_and_debug_go():
    m = model()
    run(m, 1, evt(1))
    m.translate(1, 0, "read")                            # Off: fault 256, counts
    m.mmio_write(Offset.DDTP, 8, 1)                      # Bare
    m.translate(2, 0x1000, "write")
    m.mmio_write(Offset.TR_REQ_IOVA, 8, 0x2000)
    m.mmio_write(Offset.TR_REQ_CTL, 8, 1 | 7 << 40)      # Go, did 7
    assert ctr(m, 1) == 3


# -- decision 11: filters ------------------------------------------------------------------

@pytest.mark.parametrize("sel,ident,counts", [
    # IDT=0, DV_GSCV=0, PV_PSCV=0: always.
    (evt(1), Identity(5), True),
    # IDT=0, DV_GSCV=1: device_id == DID_GSCID.
    (evt(1, dv=1, did=5), Identity(5), True),
    (evt(1, dv=1, did=5), Identity(4), False),
    # DMASK: ...yyy011 matches any function (low 3 bits ignored).
    (evt(1, dv=1, dmask=1, did=0b1010_011), Identity(0b1010_000), True),
    (evt(1, dv=1, dmask=1, did=0b1010_011), Identity(0b1010_111), True),
    (evt(1, dv=1, dmask=1, did=0b1010_011), Identity(0b1011_011), False),
    # DMASK with the lowest bit 0: only bit 0 ignored.
    (evt(1, dv=1, dmask=1, did=0b110), Identity(0b111), True),
    (evt(1, dv=1, dmask=1, did=0b110), Identity(0b100), False),
    # IDT=0, PV_PSCV=1: a valid process_id equal to PID_PSCID.
    (evt(1, pv=1, pid=9), Identity(5, pid=9), True),
    (evt(1, pv=1, pid=9), Identity(5, pid=8), False),
    (evt(1, pv=1, pid=0), Identity(5), False),           # no PASID: no count (N.10)
    (evt(1, pv=1, dv=1, pid=9, did=5), Identity(5, pid=9), True),
    (evt(1, pv=1, dv=1, pid=9, did=5), Identity(6, pid=9), False),
    # IDT=1 on event 1 (IDT 0 only): never.
    (evt(1, idt=1), Identity(5), False),
    (evt(5, idt=1), Identity(5), False),
    (evt(6, idt=1), Identity(5), False),
    # IDT=1 on event 4/7/8: GSCID and PSCID.
    (evt(4, idt=1), Identity(5), True),
    (evt(4, idt=1, dv=1, did=0x12), Identity(5, gscid=0x12), True),
    (evt(4, idt=1, dv=1, did=0x12), Identity(5), False),          # iohgatp Bare
    (evt(7, idt=1, dv=1, did=0xAB_0012), Identity(5, gscid=0x12), True),   # [23:16] ignored
    (evt(8, idt=1, dv=1, dmask=1, did=0x13), Identity(5, gscid=0x10), True),
    (evt(8, idt=1, pv=1, pid=0x33), Identity(5, pscid=0x33), True),
    (evt(8, idt=1, pv=1, pid=0x33), Identity(5, pid=0x33), False),  # first stage Bare
    (evt(7, idt=1, pv=1, dv=1, pid=3, did=4), Identity(5, gscid=4, pscid=3), True),
    (evt(7, idt=1, pv=1, dv=1, pid=3, did=4), Identity(5, gscid=4, pscid=2), False),
    # Event 0 never counts; another event's selector does not take event 1.
    (evt(0), Identity(5), False),
])
def test_filter_table(sel, ident, counts):
    event = sel & 0x7FFF or 1
    assert filter_matches(sel, event, ident) is counts


def test_filters_through_requests():
    m = model()
    run(m, 1, evt(1, pv=1, pid=9))
    run(m, 2, evt(1, dv=1, dmask=1, did=0b011))
    m.mmio_write(Offset.DDTP, 8, 1)                      # Bare
    m.translate(1, 0, "read", process_id=9)
    m.translate(2, 0, "read")                            # no PASID: ctr1 does not count
    m.translate(8, 0, "read", process_id=9)              # device 8 is not 0..3
    assert (ctr(m, 1), ctr(m, 2)) == (2, 2)


# -- decision 12: several events add up ----------------------------------------------------

def test_events_add_up():
    m = model()
    run(m, 1, evt(1))
    m.regs.hpm.count(HpmEvent.UNTRANSLATED_REQ, Identity(1), 3)
    assert ctr(m, 1) == 3


# -- unknown counts -------------------------------------------------------------------------

@pytest.mark.parametrize("event", [4, 5, 6, 7, 8])
def test_walk_and_miss_counters_are_unknown_while_counting(event):
    m = model(width=40)
    run(m, 1, evt(event))
    value, care = m.mmio_read_care(hpm_ctr_offset(1), 8)
    assert care == ALL64 & ~((1 << 40) - 1)              # bits 63:40 still read 0
    _, ecare = m.mmio_read_care(hpm_evt_offset(1), 8)
    assert ecare == ALL64 >> 1                           # OF may have risen
    assert m.mmio_read_care(Offset.IPSR, 4)[1] & PMIP == 0
    # Adopting the target's values, then inhibiting: exact again.
    m.adopt(hpm_ctr_offset(1), 8, 77)
    m.adopt(hpm_evt_offset(1), 8, evt(event))
    m.mmio_write(Offset.IOCOUNTINH, 4, 0xFFFF_FFFF)
    m.adopt(hpm_ctr_offset(1), 8, 78)                    # the last read before the stop
    assert m.mmio_read_care(hpm_ctr_offset(1), 8) == (78, ALL64)


def test_known_wrap_after_write_on_adopted_counter():
    m = model(width=32)
    run(m, 1, evt(4))
    m.mmio_write(hpm_evt_offset(1), 8, evt(1))           # now event 1: exact after a write
    m.mmio_write(hpm_ctr_offset(1), 8, 0xFFFF_FFFF)
    assert m.mmio_read_care(hpm_ctr_offset(1), 8) == (0xFFFF_FFFF, ALL64)
    m.translate(1, 0, "read")
    assert m.mmio_read_care(hpm_ctr_offset(1), 8) == (0, ALL64)


def test_random_event1_counts_seeded():
    seed = 17
    print("seed", seed)
    rng = random.Random(seed)
    m = model(width=32)
    run(m, 1, evt(1, dv=1, did=3))
    m.mmio_write(Offset.DDTP, 8, 1)
    want = 0
    for _ in range(200):
        did = rng.randrange(8)
        want += did == 3
        m.translate(did, 0, "read")
    assert ctr(m, 1) == want
