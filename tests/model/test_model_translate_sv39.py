"""Translation through a 1LVL directory and an Sv39 first stage (spec "Process to translate an
IOVA", Privileged spec "Sv39").

Tables: DDT root R (1LVL), device 5 with iosatp Sv39 root S, PSCID 7. Expected physical
addresses are worked out by hand from the VPN split VA[38:30|29:21|20:12].
"""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import PTE, TC, Pbmt
from iogate.hdl.port import Access
from iogate.hdl.regs import IommuMode, Offset

from model_tables import FULL, UR, URW, URWX, Rig, dc_words, iosatp, pte, ta


def sv39_rig(config=None, **kwargs):
    rig = Rig(config, **kwargs)
    rig.root = rig.page()
    rig.s = rig.page()
    rig.write_dc(rig.root, 5, dc_words(ta=ta(7), fsc=iosatp(8, rig.s)))
    rig.set_ddtp(IommuMode.LVL1, rig.root)
    return rig


def test_off_is_cause_256():
    rig = Rig()
    r = rig.iommu.translate(5, 0x1000, "read")
    assert (r.fault, r.cause, r.pa) == (True, 256, None)


def test_bare_is_identity():
    rig = Rig()
    rig.set_ddtp(IommuMode.BARE, 0)
    r = rig.iommu.translate(0xABCDEF, 0x1234_5678_9ABC, "write")
    assert not r.fault
    assert r.pa == 0x1234_5678_9ABC and r.ppn == 0x1_2345_6789
    assert (r.r, r.w, r.x, r.pbmt) == (True, True, True, Pbmt.PMA)


def test_4k_read():
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **URW))
    r = rig.iommu.translate(5, 0x4000_1123, "read")
    assert not r.fault and r.cause == 0
    assert r.pa == 0x8765_4123 and r.ppn == 0x87654
    assert (r.r, r.w, r.x) == (True, True, False)


def test_access_accepts_enum():
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **URWX))
    assert rig.iommu.translate(5, 0x4000_1000, Access.EXECUTE).pa == 0x8765_4000


def test_access_is_validated():
    rig = sv39_rig()
    with pytest.raises(ValueError, match="access must be 'read', 'write', 'execute'"):
        rig.iommu.translate(5, 0, "fetch")
    with pytest.raises(ValueError, match="device_id must be a 24-bit integer"):
        rig.iommu.translate(1 << 24, 0, "read")
    with pytest.raises(ValueError, match="iova must be a 64-bit integer"):
        rig.iommu.translate(5, 1 << 64, "read")


@pytest.mark.parametrize("flags, access, cause", [
    (UR, "write", 15),                                        # W=0
    (dict(URW, d=0), "write", 15),                            # D=0 on a write
    (URW, "execute", 12),                                     # X=0
    (dict(URWX, u=0), "read", 13),                            # supervisor page
    (dict(URWX, u=0), "execute", 12),
    (dict(URWX, a=0), "read", 13),                            # A=0
    (dict(URWX, a=0), "execute", 12),
    (dict(v=1, x=1, u=1, a=1), "read", 13),                   # execute-only, no MXR
    (dict(URWX, v=0), "read", 13),
    (dict(v=1, w=1, u=1, a=1, d=1), "write", 15),             # W without R: reserved
    (dict(v=1, w=1, x=1, u=1, a=1, d=1), "execute", 12),      # xwr=110: reserved
])
def test_leaf_faults(flags, access, cause):
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **flags))
    r = rig.iommu.translate(5, 0x4000_1000, access)
    assert r.fault and r.cause == cause


def test_d0_read_grants_no_write():
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **dict(URW, d=0)))
    r = rig.iommu.translate(5, 0x4000_1000, "read")
    assert not r.fault and (r.r, r.w) == (True, False)


def test_reserved_pte_bits_fault():
    rig = sv39_rig()
    # bit 54 is the lowest reserved bit (PTE bits 60:54).
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **URW) | 1 << 54)
    assert rig.iommu.translate(5, 0x4000_1000, "read").cause == 13


@pytest.mark.parametrize("bit", ["d", "a", "u", "n"])
def test_reserved_nonleaf_bits_fault(bit):
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **URW))
    top = (rig.s << 12) + 1 * 8                              # VPN[2] = 1
    rig.w64(top, rig.mem.read64(top) | bits.pack(PTE, **{bit: 1}))
    assert rig.iommu.translate(5, 0x4000_1000, "read").cause == 13


def test_2m_superpage():
    rig = sv39_rig()
    rig.map(rig.s, 0x4020_0000, pte(0x80200, **URW), level=1)
    r = rig.iommu.translate(5, 0x4021_2345, "write")
    assert r.pa == 0x8021_2345 and r.size == 2 << 20


def test_misaligned_superpage_faults():
    rig = sv39_rig()
    rig.map(rig.s, 0x4020_0000, pte(0x80201, **URW), level=1)
    assert rig.iommu.translate(5, 0x4021_2345, "read").cause == 13


def test_1g_superpage():
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_0000, pte(0x80000, **UR), level=2)
    r = rig.iommu.translate(5, 0x4123_4567, "read")
    assert r.pa == 0x8123_4567 and r.size == 1 << 30 and not r.w


def test_leaf_at_level_0_needed():
    # A non-leaf at level 0 has nowhere to go: page fault (Privileged spec "Virtual Address
    # Translation Process" step 4).
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, v=1))
    assert rig.iommu.translate(5, 0x4000_1000, "execute").cause == 12


def test_napot_64k():
    rig = sv39_rig()
    # ppn[3:0] = 1000 marks 64 KiB; the page is base 0x87650 plus VPN[0][3:0] = 5.
    rig.map(rig.s, 0x4000_5000, pte(0x87658, n=1, **URW))
    r = rig.iommu.translate(5, 0x4000_5ABC, "read")
    assert r.pa == 0x8765_5ABC and r.size == 64 << 10


@pytest.mark.parametrize("ppn, level", [(0x87654, 0), (0x87650, 0), (0x80208, 1)])
def test_napot_reserved_encodings(ppn, level):
    rig = sv39_rig()
    rig.map(rig.s, 0x4020_5000, pte(ppn, n=1, **URW), level=level)
    assert rig.iommu.translate(5, 0x4020_5000, "read").cause == 13


def test_non_canonical_iova_faults():
    rig = sv39_rig()
    rig.map(rig.s, 0x0, pte(0x87654, **URWX))
    # Bit 39 set with bit 38 clear: bits 63:39 are not all equal to bit 38.
    assert rig.iommu.translate(5, 0x80_0000_0000, "write").cause == 15
    assert rig.iommu.translate(5, 0x80_0000_0000, "execute").cause == 12


def test_sign_extended_iova_translates():
    rig = sv39_rig()
    # 0xFFFF_FFC0_0000_0000: bit 38 set and bits 63:39 all ones; VPN[2] = 0x100.
    rig.map(rig.s, 0xFFFF_FFC0_0000_0000, pte(0x87654, **URW))
    assert rig.iommu.translate(5, 0xFFFF_FFC0_0000_0010, "read").pa == 0x8765_4010


@pytest.mark.parametrize("access, cause", [("read", 5), ("write", 7), ("execute", 1)])
def test_pte_load_access_fault(access, cause):
    rig = sv39_rig()
    leaf = rig.map(rig.s, 0x4000_1000, pte(0x87654, **URWX))
    rig.mem.inject_fault(leaf, 8)
    assert rig.iommu.translate(5, 0x4000_1000, access).cause == cause


def test_pte_beyond_pas_is_access_fault():
    rig = sv39_rig(Config(pas=40))
    # The non-leaf points at 2^40, outside capabilities.PAS = 40.
    rig.w64((rig.s << 12) + 8, pte(1 << 28, v=1))
    assert rig.iommu.translate(5, 0x4000_1000, "read").cause == 5


def test_ddt_load_access_fault_257():
    rig = sv39_rig()
    rig.mem.inject_fault((rig.root << 12) + 5 * 32, 32)
    assert rig.iommu.translate(5, 0, "read").cause == 257


def test_dc_not_valid_258():
    rig = sv39_rig()
    rig.write_dc(rig.root, 6, dc_words(tc=0))
    assert rig.iommu.translate(6, 0, "read").cause == 258


def test_dc_reserved_bit_259():
    rig = sv39_rig()
    rig.write_dc(rig.root, 6, dc_words(tc=bits.pack(TC, v=1) | 1 << 12))
    assert rig.iommu.translate(6, 0, "read").cause == 259


def test_device_id_too_wide_260():
    rig = sv39_rig()
    # 1LVL covers device_id bits 6:0; 0x80 has DDI[1] = 1.
    assert rig.iommu.translate(0x80, 0, "read").cause == 260


def test_sv48_unsupported_by_default_config_259():
    rig = sv39_rig()
    rig.write_dc(rig.root, 6, dc_words(fsc=iosatp(9, rig.s)))
    assert rig.iommu.translate(6, 0, "read").cause == 259


def test_svpbmt_absent_makes_pbmt_reserved():
    rig = sv39_rig()
    rig.map(rig.s, 0x4000_1000, pte(0x87654, pbmt=Pbmt.NC, **URW))
    assert rig.iommu.translate(5, 0x4000_1000, "read").cause == 13


@pytest.mark.parametrize("pbmt", [Pbmt.PMA, Pbmt.NC, Pbmt.IO])
def test_svpbmt(pbmt):
    rig = sv39_rig(FULL)
    rig.map(rig.s, 0x4000_1000, pte(0x87654, pbmt=pbmt, **URW))
    assert rig.iommu.translate(5, 0x4000_1000, "read").pbmt == pbmt


def test_svpbmt_reserved_value_3():
    rig = sv39_rig(FULL)
    rig.map(rig.s, 0x4000_1000, pte(0x87654, pbmt=3, **URW))
    assert rig.iommu.translate(5, 0x4000_1000, "read").cause == 13


def test_svpbmt_on_nonleaf_is_reserved():
    rig = sv39_rig(FULL)
    rig.map(rig.s, 0x4000_1000, pte(0x87654, **URW))
    top = (rig.s << 12) + 8
    rig.w64(top, rig.mem.read64(top) | 1 << 61)               # PBMT=NC on a non-leaf
    assert rig.iommu.translate(5, 0x4000_1000, "read").cause == 13


def test_bare_first_stage_dc():
    rig = sv39_rig()
    rig.write_dc(rig.root, 9, dc_words())
    r = rig.iommu.translate(9, 0xDEAD_BEEF, "execute")
    assert r.pa == 0xDEAD_BEEF and (r.r, r.w, r.x) == (True, True, True)


def test_fault_record_is_written():
    rig = sv39_rig()
    fq = rig.page()
    rig.queue(Offset.FQB, 3, fq)                              # 16 records
    rig.iommu.mmio_write(Offset.FQCSR, 4, 1)                  # fqen
    r = rig.iommu.translate(5, 0x4000_1234, "read")
    assert r.cause == 13
    assert rig.iommu.mmio_read(Offset.FQT, 4) == 1
    # dword0: CAUSE 13 | TTYP 2 (untranslated read) << 34 | DID 5 << 40.
    assert rig.mem.read64(fq << 12) == 0x0000_0508_0000_000D
    assert rig.mem.read64((fq << 12) + 8) == 0
    assert rig.mem.read64((fq << 12) + 16) == 0x4000_1234      # iotval = IOVA
    assert rig.mem.read64((fq << 12) + 24) == 0                # iotval2


def test_fault_not_reported_when_asked():
    rig = sv39_rig()
    fq = rig.page()
    rig.queue(Offset.FQB, 3, fq)
    rig.iommu.mmio_write(Offset.FQCSR, 4, 1)
    rig.iommu.translate(5, 0x4000_1234, "read", report=False)
    assert rig.iommu.mmio_read(Offset.FQT, 4) == 0
