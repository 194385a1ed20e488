"""iogate.cosim.model.memory: sparse memory, injected faults, and the model's overlay view."""

import pytest

from iogate.cosim.model.memory import AccessFault, Memory, OverlayMemory


def test_unwritten_memory_reads_zero_and_writes_cross_pages():
    m = Memory()
    assert m.read(0x1234_5678, 4) == bytes(4)
    m.write(0xFFE, b"\x01\x02\x03\x04")
    assert m.read(0xFFC, 8) == b"\x00\x00\x01\x02\x03\x04\x00\x00"
    m.write64(0x2000, 0x1122334455667788)
    assert m.read(0x2000, 2) == b"\x88\x77"


def test_injected_faults_refuse_overlapping_accesses_only():
    m = Memory()
    m.inject_fault(0x1000, 8)
    with pytest.raises(AccessFault):
        m.read(0xFFC, 8)
    with pytest.raises(AccessFault):
        m.write(0x1007, b"\x00")
    assert m.read(0x1008, 8) == bytes(8)
    assert m.is_faulty(0x1004, 1) and not m.is_faulty(0xFF8, 8)


def test_overlay_keeps_its_writes_and_sees_the_rest():
    below = Memory()
    below.write64(0x100, 0xAAAA)
    view = OverlayMemory(below)
    view.write(0x101, b"\x55")
    assert view.read64(0x100) == 0x55AA          # its own byte over below's
    assert below.read64(0x100) == 0xAAAA         # below is untouched
    below.write64(0x108, 7)
    assert view.read64(0x108) == 7               # later writes below show through
    below.inject_fault(0x2000)
    with pytest.raises(AccessFault):
        view.write(0x2000, b"\x01")              # and so do bus errors
