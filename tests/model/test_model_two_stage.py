"""Two-stage translation: Sv39/Sv48 over Sv39x4/Sv48x4 (Privileged spec "Two-Stage Address
Translation", IOMMU spec "Process to translate an IOVA" steps 17-19, fault record iotval2 in
spec "Fault/Event-Queue (FQ)").

Layout of every test here: the G-stage maps GPA 1 GiB..2 GiB onto SPA 0..1 GiB with one
1 GiB leaf (root index 1), so a guest table the rig allocates at SPA ``p`` has GPA
``p + 0x4000_0000``. GPAs from 2 GiB up are unmapped unless a test maps them.
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.formats import Pbmt
from iogate.hdl.regs import IommuMode, Offset

from model_tables import FULL, UR, URW, URWX, Rig, dc_words, iohgatp, iosatp, nonleaf, pte, ta

GIB = 1 << 30


def rig2(config=FULL, s_mode=8, g_mode=8, table_flags=URWX, **kwargs):
    rig = Rig(config, **kwargs)
    rig.root = rig.page()
    rig.g = rig.page(4, align=4)                              # 16 KiB, 16 KiB aligned
    g_levels = 3 if g_mode == 8 else 4
    rig.g_levels = g_levels
    # GPA 1 GiB -> SPA 0 (a 1 GiB leaf at level 2).
    rig.map(rig.g, GIB, pte(0, **table_flags), level=2, levels=g_levels, x4=True)
    rig.s_levels = 3 if s_mode == 8 else 4
    rig.s = rig.page()                                       # SPA page of the guest root
    rig.gpa = lambda spa: spa + GIB
    rig.spa = lambda gpa: gpa - GIB
    rig.write_dc(rig.root, 5, dc_words(iohgatp=iohgatp(g_mode, rig.g, gscid=3), ta=ta(7),
                                       fsc=iosatp(s_mode, rig.gpa(rig.s << 12) >> 12)))
    rig.set_ddtp(IommuMode.LVL1, rig.root)
    return rig


def vs_map(rig, va, leaf, level=0):
    """Map ``va`` in the guest's first-stage tables, whose PPNs are GPAs."""
    tr = rig.spa
    a = rig.gpa(rig.s << 12)
    for i in range(rig.s_levels - 1, level - 1, -1):
        address = a + ((va >> (12 + 9 * i)) & 0x1FF) * 8
        if i == level:
            rig.w64(tr(address), leaf)
            return address
        entry = rig.mem.read64(tr(address))
        if not entry & 1:
            entry = nonleaf(rig.gpa(rig.page() << 12) >> 12)
            rig.w64(tr(address), entry)
        a = (entry >> 10 & ((1 << 44) - 1)) << 12


def test_two_stage_read():
    rig = rig2()
    vs_map(rig, 0x1000_2000, pte(0x48765, **URW))             # GPA 0x4876_5000
    r = rig.iommu.translate(5, 0x1000_2345, "read")
    # GPA 0x4876_5345 -> SPA 0x0876_5345 through the 1 GiB G-stage leaf.
    assert not r.fault and r.pa == 0x0876_5345
    assert (r.r, r.w, r.x) == (True, True, False)


def test_sv48_over_sv48x4():
    rig = rig2(s_mode=9, g_mode=9)
    vs_map(rig, 0x7F_1000_2000, pte(0x48765, **URW))
    assert rig.iommu.translate(5, 0x7F_1000_2345, "write").pa == 0x0876_5345


def test_implicit_access_guest_page_fault_sets_iotval2_bit0():
    rig = rig2()
    # The guest root at GPA 2 GiB, which the G-stage does not map.
    rig.write_dc(rig.root, 6, dc_words(iohgatp=iohgatp(8, rig.g, 3),
                                       fsc=iosatp(8, 0x8_0000)))
    fq = rig.page()
    rig.queue(Offset.FQB, 1, fq)
    rig.iommu.mmio_write(Offset.FQCSR, 4, 1)
    for access, cause in (("read", 21), ("write", 23), ("execute", 20)):
        r = rig.iommu.translate(6, 0x1000_2345, access)
        # VPN[2] of 0x1000_2345 is 0, so the PTE's GPA is 0x8000_0000; bit 0: implicit,
        # bit 1 clear: the implicit access was a read (no A/D update).
        assert (r.cause, r.iotval2) == (cause, 0x8000_0001)
    assert rig.mem.read64((fq << 12) + 24) == 0x8000_0001
    assert rig.mem.read64((fq << 12) + 16) == 0x1000_2345


def test_final_guest_page_fault_iotval2():
    rig = rig2()
    vs_map(rig, 0x1000_2000, pte(0x90000, **URWX))            # GPA 0x9000_0000: unmapped
    for access, cause in (("read", 21), ("write", 23), ("execute", 20)):
        r = rig.iommu.translate(5, 0x1000_2345, access)
        # GPA 0x9000_0345 >> 2 << 2 = 0x9000_0344, bit 0 clear: not implicit.
        assert (r.cause, r.iotval2) == (cause, 0x9000_0344)


def test_first_stage_fault_inside_two_stage_is_page_fault():
    rig = rig2()
    vs_map(rig, 0x1000_2000, pte(0x48765, **UR))
    r = rig.iommu.translate(5, 0x1000_2000, "write")
    assert (r.cause, r.iotval2) == (15, 0)


@pytest.mark.parametrize("flags, access, cause", [
    (UR, "write", 23),
    (URW, "execute", 20),
    (dict(URWX, u=0), "read", 21),                 # the G-stage treats every access as U
    (dict(URWX, a=0), "read", 21),
    (dict(URWX, d=0), "write", 23),
    (dict(URWX, d=0), "read", None),
])
def test_second_stage_leaf_rules(flags, access, cause):
    rig = rig2()
    rig.map(rig.g, 0x8000_0000, pte(0x40000, **flags), level=2, levels=3, x4=True)
    vs_map(rig, 0x1000_2000, pte(0x80002, **URWX))            # GPA 0x8000_2000
    r = rig.iommu.translate(5, 0x1000_2000, access)
    if cause is None:
        # GPA 0x8000_2000 -> SPA 0x4000_0000 + 0x2000, D=0 so no write permission.
        assert r.pa == 0x4000_2000 and not r.w
    else:
        assert (r.cause, r.iotval2) == (cause, 0x8000_2000)


@pytest.mark.parametrize("flags, access, cause", [
    (dict(v=1, x=1, u=1, a=1), "read", 21),        # implicit reads need R
    (dict(v=1, x=1, u=1, a=1), "write", 23),       # ... reported for the original access
    (dict(v=1, r=1, u=0, a=1), "execute", 20),
    (dict(v=1, r=1, u=1, a=0), "read", 21),
    (dict(v=1, r=1, u=1, a=1, d=0), "write", None),  # implicit read: D not needed
])
def test_implicit_access_checked_as_read(flags, access, cause):
    rig = rig2(table_flags=flags)
    rig.map(rig.g, 0x8000_0000, pte(0x40000, **URWX), level=2, levels=3, x4=True)
    vs_map(rig, 0x1000_2000, pte(0x80002, **URWX))
    r = rig.iommu.translate(5, 0x1000_2000, access)
    if cause is None:
        assert r.pa == 0x4000_2000
    else:
        # The first implicit access is the guest root entry: GPA of root + VPN[2]*8.
        assert (r.cause, r.iotval2) == (cause, rig.gpa(rig.s << 12) | 1)


def test_sv39x4_root_index_is_11_bits():
    rig = rig2()
    rig.write_dc(rig.root, 6, dc_words(iohgatp=iohgatp(8, rig.g, 3)))   # first stage Bare
    # GPA 0x1FF_C000_0000 has GPA[40:30] = 0x7FF: the last of 2048 root entries.
    rig.map(rig.g, 0x1FF_C000_0000, pte(0x40000, **URW), level=2, levels=3, x4=True)
    assert rig.mem.read64((rig.g << 12) + 0x7FF * 8) != 0
    r = rig.iommu.translate(6, 0x1FF_C123_4567, "write")
    assert r.pa == 0x4123_4567


@pytest.mark.parametrize("gpa", [1 << 41, 1 << 63])
def test_sv39x4_gpa_width(gpa):
    rig = rig2()
    rig.write_dc(rig.root, 6, dc_words(iohgatp=iohgatp(8, rig.g, 3)))
    r = rig.iommu.translate(6, gpa | 0x123, "read")
    assert (r.cause, r.iotval2) == (21, gpa | 0x120)


def test_sv48x4_gpa_width_and_root_index():
    rig = rig2(g_mode=9)
    rig.write_dc(rig.root, 6, dc_words(iohgatp=iohgatp(9, rig.g, 3)))
    # GPA[49:39] = 0x7FF is the last root entry; 1 << 50 is too wide.
    rig.map(rig.g, 0x3_FF80_0000_0000, pte(0x40000, **URW), level=2, levels=4, x4=True)
    assert rig.iommu.translate(6, 0x3_FF80_0000_1234, "read").pa == 0x4000_1234
    assert rig.iommu.translate(6, 1 << 50, "write").cause == 23


def test_vs_leaf_gpa_too_wide():
    rig = rig2()
    vs_map(rig, 0x1000_2000, pte(1 << 29, **URW))             # GPA 2^41
    r = rig.iommu.translate(5, 0x1000_2010, "read")
    assert (r.cause, r.iotval2) == (21, (1 << 41) | 0x10)


@pytest.mark.parametrize("s_pbmt, g_pbmt, out", [
    (Pbmt.PMA, Pbmt.IO, Pbmt.IO), (Pbmt.NC, Pbmt.IO, Pbmt.NC), (Pbmt.PMA, Pbmt.PMA, Pbmt.PMA),
    (Pbmt.IO, Pbmt.PMA, Pbmt.IO),
])
def test_pbmt_first_stage_overrides_second(s_pbmt, g_pbmt, out):
    rig = rig2()
    rig.map(rig.g, 0x8000_0000, pte(0x40000, pbmt=g_pbmt, **URWX), level=2, levels=3,
            x4=True)
    vs_map(rig, 0x1000_2000, pte(0x80002, pbmt=s_pbmt, **URWX))
    assert rig.iommu.translate(5, 0x1000_2000, "read").pbmt == out


def test_combined_permissions_and_size():
    rig = rig2()
    rig.map(rig.g, 0x8000_0000, pte(0x40000, **UR), level=2, levels=3, x4=True)
    vs_map(rig, 0x1020_0000, pte(0x80200, **URWX), level=1)   # 2 MiB -> GPA 0x8020_0000
    r = rig.iommu.translate(5, 0x1021_2345, "read")
    assert r.pa == 0x4021_2345 and (r.r, r.w, r.x) == (True, False, False)
    assert r.size == 2 << 20                                  # min(2 MiB, 1 GiB)


def test_second_stage_only():
    rig = rig2()
    rig.write_dc(rig.root, 6, dc_words(iohgatp=iohgatp(8, rig.g, 3)))
    assert rig.iommu.translate(6, 0x4000_5678, "execute").pa == 0x5678


def test_g_stage_pte_access_fault():
    rig = rig2()
    vs_map(rig, 0x1000_2000, pte(0x48765, **URW))
    rig.mem.inject_fault((rig.g << 12) + 1 * 8, 8)             # the G-stage root entry
    assert rig.iommu.translate(5, 0x1000_2000, "write").cause == 7


def test_misaligned_root_is_259():
    rig = rig2()
    rig.write_dc(rig.root, 6, dc_words(iohgatp=iohgatp(8, rig.g + 1, 3)))
    assert rig.iommu.translate(6, 0, "read").cause == 259


def test_x4_unsupported_by_default_config():
    rig = rig2(config=Config())
    assert rig.iommu.translate(5, 0, "read").cause == 259
