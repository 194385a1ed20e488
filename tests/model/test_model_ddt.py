"""The device directory: modes, device_id width, DDT entries and DC checks
(RISC-V IOMMU spec "Device-Directory-Table (DDT)", "Process to locate the Device-context",
"Device-context configuration checks", "Fault/Event-Queue (FQ)" for DTF)."""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import DDTE, IOSATP, TC
from iogate.hdl.regs import DDTP, IommuMode, Offset

from model_tables import FULL, Rig, dc_words, iohgatp, iosatp, ta


def tc(**fields):
    return bits.pack(TC, v=1, **fields)


def test_2lvl_indexes_by_ddi1_then_ddi0():
    rig = Rig(FULL)
    root, leaf = rig.page(), rig.page()
    # device_id 0x1234: DDI[1] = bits 15:7 = 0x24, DDI[0] = bits 6:0 = 0x34.
    rig.w64((root << 12) + 0x24 * 8, bits.pack(DDTE, v=1, ppn=leaf))
    rig.w64((leaf << 12) + 0x34 * 32, tc())
    rig.set_ddtp(IommuMode.LVL2, root)
    assert rig.iommu.translate(0x1234, 0x5000, "read").pa == 0x5000
    assert rig.iommu.translate(0x1235, 0x5000, "read").cause == 258


def test_3lvl_indexes():
    rig = Rig(FULL)
    root, mid, leaf = rig.page(), rig.page(), rig.page()
    # device_id 0xAB_CDEF: DDI[2] = 0xAB, DDI[1] = 0x19B, DDI[0] = 0x6F.
    rig.w64((root << 12) + 0xAB * 8, bits.pack(DDTE, v=1, ppn=mid))
    rig.w64((mid << 12) + 0x19B * 8, bits.pack(DDTE, v=1, ppn=leaf))
    rig.w64((leaf << 12) + 0x6F * 32, tc())
    rig.set_ddtp(IommuMode.LVL3, root)
    assert rig.iommu.translate(0xAB_CDEF, 0x7123, "write").pa == 0x7123


@pytest.mark.parametrize("mode, device_id, cause", [
    (IommuMode.LVL1, 0x7F, 258), (IommuMode.LVL1, 0x80, 260), (IommuMode.LVL1, 0x1_0000, 260),
    (IommuMode.LVL2, 0xFFFF, 258), (IommuMode.LVL2, 0x1_0000, 260),
    (IommuMode.LVL3, 0xFF_FFFF, 258),
])
def test_device_id_width(mode, device_id, cause):
    rig = Rig(FULL)
    root = rig.page()
    # Every DDTE of every level points back at the zeroed root: V=0 in the end.
    rig.set_ddtp(mode, root)
    if mode != IommuMode.LVL1:
        for i in range(512):
            rig.w64((root << 12) + i * 8, bits.pack(DDTE, v=1, ppn=rig.page()))
    assert rig.iommu.translate(device_id, 0, "read").cause == cause


def test_nonleaf_not_valid_258():
    rig = Rig(FULL)
    root = rig.page()
    rig.set_ddtp(IommuMode.LVL2, root)
    assert rig.iommu.translate(0x80, 0, "read").cause == 258


@pytest.mark.parametrize("bit", [1, 9, 54, 63])
def test_nonleaf_reserved_bit_259(bit):
    rig = Rig(FULL)
    root, leaf = rig.page(), rig.page()
    rig.w64((root << 12) + 8, bits.pack(DDTE, v=1, ppn=leaf) | 1 << bit)
    rig.w64((leaf << 12), tc())
    rig.set_ddtp(IommuMode.LVL2, root)
    assert rig.iommu.translate(0x80, 0, "read").cause == 259


def test_nonleaf_load_fault_257():
    rig = Rig(FULL)
    root = rig.page()
    rig.set_ddtp(IommuMode.LVL3, root)
    rig.mem.inject_fault((root << 12) + 0x12 * 8, 8)
    assert rig.iommu.translate(0x12_0000, 0, "read").cause == 257


def test_ddt_beyond_pas_257():
    rig = Rig(Config(pas=40))
    rig.set_ddtp(IommuMode.LVL1, (1 << 28) - 1)               # the last 4 KiB below 2^40
    assert rig.iommu.translate(0, 0, "read").cause == 258
    # ddtp.PPN is WARL: bits at and above PAS cannot be set.
    rig.set_ddtp(IommuMode.LVL1, 1 << 28)
    assert bits.get(DDTP, rig.iommu.mmio_read(Offset.DDTP, 8), "ppn") == 0


# -- DC configuration checks, one rule at a time ------------------------------------------

_BAD = [
    ("tc reserved bit 12", dict(tc=tc() | 1 << 12)),
    ("tc reserved bit 32", dict(tc=tc() | 1 << 32)),
    ("tc reserved bit 63", dict(tc=tc() | 1 << 63)),
    ("EN_ATS without ATS", dict(tc=tc(en_ats=1))),
    ("EN_PRI without ATS", dict(tc=tc(en_pri=1))),
    ("PRPR without ATS", dict(tc=tc(prpr=1))),
    ("T2GPA without EN_ATS or cap", dict(tc=tc(t2gpa=1))),
    ("T2GPA with ATS bits", dict(tc=tc(en_ats=1, t2gpa=1), iohgatp=iohgatp(8, 0x1000))),
    ("PD8 unsupported", dict(tc=tc(pdtv=1), fsc=bits.pack(IOSATP, mode=1))),
    ("PD17 unsupported", dict(tc=tc(pdtv=1), fsc=bits.pack(IOSATP, mode=2))),
    ("PD20 unsupported", dict(tc=tc(pdtv=1), fsc=bits.pack(IOSATP, mode=3))),
    ("pdtp mode 4 reserved", dict(tc=tc(pdtv=1), fsc=bits.pack(IOSATP, mode=4))),
    ("pdtp mode 14 custom", dict(tc=tc(pdtv=1), fsc=bits.pack(IOSATP, mode=14))),
    ("DPE with PDTV=0", dict(tc=tc(dpe=1))),
    ("SADE without AMO_HWAD", dict(tc=tc(sade=1))),
    ("GADE without AMO_HWAD", dict(tc=tc(gade=1))),
    ("SBE != fctl.BE", dict(tc=tc(sbe=1))),
    ("SXL=1 with GXL=0 read-only", dict(tc=tc(sxl=1))),
    ("Sv32 (SXL=1)", dict(tc=tc(sxl=1), fsc=iosatp(8, 0x1000))),
    ("ta reserved bit 0", dict(ta=1)),
    ("ta RCID without QOSID", dict(ta=ta(1) | 1 << 40)),
    ("ta MCID without QOSID", dict(ta=1 << 63)),
    ("fsc reserved bit 44", dict(fsc=1 << 44)),
    ("fsc reserved bit 59", dict(fsc=iosatp(8, 0x1000) | 1 << 59)),
    ("iohgatp root not 16 KiB aligned", dict(iohgatp=iohgatp(8, 0x1001))),
    ("iohgatp root not 16 KiB aligned (bit 1)", dict(iohgatp=iohgatp(9, 0x1002))),
] + [(f"iosatp mode {m}", dict(fsc=iosatp(m, 0x1000))) for m in (*range(1, 8), *range(10, 16))
     ] + [(f"iohgatp mode {m}", dict(iohgatp=iohgatp(m, 0x1000)))
          for m in (*range(1, 8), *range(10, 16))]


@pytest.mark.parametrize("what, words", _BAD, ids=[w for w, _ in _BAD])
def test_misconfigured_dc_259(what, words):
    rig = Rig(FULL)
    root = rig.page()
    rig.write_dc(root, 3, dc_words(**words))
    rig.set_ddtp(IommuMode.LVL1, root)
    assert rig.iommu.translate(3, 0x1000, "read").cause == 259


@pytest.mark.parametrize("what, words", [
    ("custom tc bits are not reserved", dict(tc=tc() | 0xFF << 24)),
    ("PDTV=1 with pdtp Bare", dict(tc=tc(pdtv=1))),
    ("PDTV=1, DPE=1, pdtp Bare", dict(tc=tc(pdtv=1, dpe=1))),
    ("PSCID ignored with iosatp Bare", dict(ta=ta(0xF_FFFF))),
    ("GSCID ignored with iohgatp Bare", dict(iohgatp=iohgatp(0, 0, 0xFFFF))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_well_formed_bare_dc(what, words):
    rig = Rig(FULL)
    root = rig.page()
    rig.write_dc(root, 3, dc_words(**words))
    rig.set_ddtp(IommuMode.LVL1, root)
    assert rig.iommu.translate(3, 0x1234, "read").pa == 0x1234


@pytest.mark.parametrize("mode, config", [(8, Config()), (9, Config()), (9, Config(sv39x4=True))])
def test_second_stage_modes_the_config_lacks(mode, config):
    rig = Rig(config)
    root = rig.page()
    rig.write_dc(root, 3, dc_words(iohgatp=iohgatp(mode, 0x1000)))
    rig.set_ddtp(IommuMode.LVL1, root)
    assert rig.iommu.translate(3, 0, "read").cause == 259


# -- DTF ------------------------------------------------------------------------------------

def _fq(rig):
    fq = rig.page()
    rig.queue(Offset.FQB, 3, fq)
    rig.iommu.mmio_write(Offset.FQCSR, 4, 1)
    return fq


def test_dtf_suppresses_translation_faults():
    rig = Rig()
    root, s = rig.page(), rig.page()
    rig.write_dc(root, 3, dc_words(tc=tc(dtf=1), fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    _fq(rig)
    assert rig.iommu.translate(3, 0x1000, "read").cause == 13    # still a fault
    assert rig.iommu.mmio_read(Offset.FQT, 4) == 0                # but not recorded


def test_dtf_does_not_hide_access_fault_on_the_dc():
    rig = Rig()
    root = rig.page()
    rig.write_dc(root, 3, dc_words(tc=tc(dtf=1)))
    rig.set_ddtp(IommuMode.LVL1, root)
    fq = _fq(rig)
    rig.mem.inject_fault((root << 12) + 3 * 32 + 8, 8)
    assert rig.iommu.translate(3, 0x1000, "read").cause == 257
    assert rig.iommu.mmio_read(Offset.FQT, 4) == 1
    assert rig.mem.read64(fq << 12) & 0xFFF == 257


def test_dtf_assumed_0_when_dc_misconfigured():
    rig = Rig()
    root = rig.page()
    rig.write_dc(root, 3, dc_words(tc=tc(dtf=1, sade=1)))
    rig.set_ddtp(IommuMode.LVL1, root)
    _fq(rig)
    assert rig.iommu.translate(3, 0x1000, "read").cause == 259
    assert rig.iommu.mmio_read(Offset.FQT, 4) == 1


def test_dtf_zero_reports_page_fault():
    rig = Rig()
    root, s = rig.page(), rig.page()
    rig.write_dc(root, 3, dc_words(fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    _fq(rig)
    rig.iommu.translate(3, 0x1000, "read")
    assert rig.iommu.mmio_read(Offset.FQT, 4) == 1
