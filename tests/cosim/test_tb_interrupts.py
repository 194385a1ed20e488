"""iogate.cosim.targets.tb.interrupts.expected_wsi: the wired lines the spec asks for
(spec "Interrupt pending status register (ipsr)", "Interrupt-cause-to-vector register (icvec)": with
fctl.WSI=1 each pending bit drives the line its icvec field names)."""

from iogate.hdl import bits
from iogate.hdl.regs import FCTL, ICVEC, IPSR

from iogate.cosim.targets.tb.interrupts import expected_wsi

WSI = bits.pack(FCTL, wsi=1)


def test_each_pending_bit_drives_its_vector():
    icvec = bits.pack(ICVEC, civ=3, fiv=5, pmiv=9, piv=15)
    assert expected_wsi(bits.pack(IPSR, cip=1), icvec, WSI) == 1 << 3
    assert expected_wsi(bits.pack(IPSR, fip=1), icvec, WSI) == 1 << 5
    assert expected_wsi(bits.pack(IPSR, cip=1, fip=1), icvec, WSI) == 0b101000
    assert expected_wsi(0b1111, icvec, WSI) == (1 << 3) | (1 << 5) | (1 << 9) | (1 << 15)


def test_shared_vector_and_nothing_pending():
    icvec = bits.pack(ICVEC, civ=2, fiv=2)
    assert expected_wsi(bits.pack(IPSR, cip=1, fip=1), icvec, WSI) == 0b100
    assert expected_wsi(0, icvec, WSI) == 0


def test_no_wires_without_fctl_wsi():
    assert expected_wsi(0b11, bits.pack(ICVEC, civ=1, fiv=2), 0) == 0
