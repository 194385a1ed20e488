"""Sv57 and Sv57x4 in the model (reference N.2; Privileged spec "Sv57", "Two-Stage Address
Translation"). Expected sizes, indices and causes are the reference table's."""

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import IommuMode

from model_tables import URWX, Rig, dc_words, iohgatp, iosatp, pte

PROCESS = Config.process()
VA = 0x00AB_CDEF_1234_5000          # bits 56:48 = 0xAB: vpn[4] = 0xAB
TIB = 1 << 40


def rig_for(config=PROCESS):
    rig = Rig(config)
    rig.ddt = rig.page()
    rig.set_ddtp(IommuMode.LVL1, rig.ddt)
    return rig


@pytest.mark.parametrize("level,size", [(0, 4096), (1, 2 << 20), (2, 1 << 30),
                                        (3, 512 << 30), (4, 256 * TIB)])
def test_sv57_leaf_sizes(level, size):
    rig = rig_for()
    root = rig.page()
    ppn = 0x1234 << (9 * level) if level < 4 else 0x2 << 36
    rig.map(root, VA, pte(ppn, **URWX), level=level, levels=5)
    rig.write_dc(rig.ddt, 1, dc_words(fsc=iosatp(10, root)))
    r = rig.iommu.translate(1, VA, "read")
    assert not r.fault and r.size == size
    assert r.ppn == ppn | ((VA & (size - 1)) >> 12)


def test_sv57_vpn4_is_va_56_48():
    rig = rig_for()
    root = rig.page()
    rig.map(root, VA, pte(0x777, **URWX), levels=5)
    assert rig.mem.read64((root << 12) + 0xAB * 8) & 1     # the root entry at vpn[4]
    rig.write_dc(rig.ddt, 1, dc_words(fsc=iosatp(10, root)))
    assert rig.iommu.translate(1, VA, "read").ppn == 0x777


@pytest.mark.parametrize("va,ok", [((1 << 56) - 4096, True), (1 << 56, False),
                                   ((1 << 64) - (1 << 56), True),
                                   ((1 << 64) - (1 << 57), False)])
def test_sv57_canonical_range(va, ok):
    """VA[63:57] must equal VA[56], else a page fault 12/13/15."""
    rig = rig_for()
    root = rig.page()
    rig.map(root, va, pte(0x777, **URWX), levels=5)
    rig.write_dc(rig.ddt, 1, dc_words(fsc=iosatp(10, root)))
    r = rig.iommu.translate(1, va, "write")
    assert (not r.fault) if ok else r.cause == 15


def test_sv57_misaligned_256_tib_leaf_is_a_page_fault():
    rig = rig_for()
    root = rig.page()
    rig.map(root, VA, pte(1 << 35, **URWX), level=4, levels=5)
    rig.write_dc(rig.ddt, 1, dc_words(fsc=iosatp(10, root)))
    assert rig.iommu.translate(1, VA, "execute").cause == 12


def test_sv57_without_the_capability_is_259():
    rig = rig_for(Config.full())
    rig.write_dc(rig.ddt, 1, dc_words(fsc=iosatp(10, rig.page())))
    assert rig.iommu.translate(1, 0, "read").cause == 259


def test_sv57x4_root_is_16_kib_indexed_by_gpa_58_48():
    gpa = 0x7AB_CDEF_1234_5000 & ((1 << 59) - 1)        # GPA[58:48] = 0x7AB
    rig = rig_for()
    g = rig.page(4, align=4)
    rig.map(g, gpa, pte(0x555, **URWX), levels=5, x4=True)
    assert rig.mem.read64((g << 12) + 0x7AB * 8) & 1
    rig.write_dc(rig.ddt, 1, dc_words(iohgatp=iohgatp(10, g)))
    assert rig.iommu.translate(1, gpa, "read").ppn == 0x555


def test_sv57x4_gpa_above_59_bits_is_a_guest_page_fault():
    rig = rig_for()
    g = rig.page(4, align=4)
    rig.write_dc(rig.ddt, 1, dc_words(iohgatp=iohgatp(10, g)))
    r = rig.iommu.translate(1, 1 << 59 | 0x1234, "write")
    assert r.cause == 23 and r.iotval2 == (1 << 59 | 0x1234) >> 2 << 2


@pytest.mark.parametrize("config,ppn_low,ok", [(PROCESS, 0, True), (PROCESS, 1, False),
                                               (PROCESS, 2, False), (Config.full(), 0, False)])
def test_sv57x4_dc_checks(config, ppn_low, ok):
    """16 KiB alignment (iohgatp.PPN[1:0] = 0) and capabilities.Sv57x4, else 259."""
    rig = rig_for(config)
    g = rig.page(4, align=4) + ppn_low
    rig.write_dc(rig.ddt, 1, dc_words(iohgatp=iohgatp(10, g)))
    r = rig.iommu.translate(1, 0, "read")
    assert (r.cause != 259) if ok else r.cause == 259


def test_sv57_over_sv57x4():
    """Both stages five levels: each first-stage table read goes through the G-stage."""
    rig = rig_for()
    g = rig.page(4, align=4)
    root = rig.page()
    rig.map(root, VA, pte(0x4_0000, **URWX), levels=5)
    for ppn in list(range(root, rig._next >> 12)) + [0x4_0000]:
        rig.map(g, ppn << 12, pte(ppn, **URWX), levels=5, x4=True)
    rig.write_dc(rig.ddt, 1, dc_words(iohgatp=iohgatp(10, g, gscid=1), fsc=iosatp(10, root)))
    assert rig.iommu.translate(1, VA, "read").ppn == 0x4_0000
