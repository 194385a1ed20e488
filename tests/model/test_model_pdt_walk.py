"""GET_PC in the model, single stage: every pdtp mode, every PDT cause, PID widths (spec
"Process to locate the Process-context", "Process to translate an IOVA" step 7; reference
N.1.2-N.1.5). Expected causes and addresses come from the reference's tables."""

import random

import pytest

from iogate.hdl import Config

from model_tables import URWX, pte
from pdt_tables import DEVICE, PROCESS, PdtRig, fsc, pc_ta, pdi, pdtp, tc

# The first-stage mapping every test reaches through its PC: IOVA 0x4000_1000 -> PPN 0x87654.
IOVA = 0x4000_1000
PPN = 0x87654


def rig_with_pc(mode, pid, *, ta=None, dpe=0, dtf=0, pc_fsc=None):
    rig = PdtRig()
    root = rig.page()
    s1 = rig.page()
    rig.map(s1, IOVA, pte(PPN, **URWX))
    rig.set_dc(tc_=tc(pdtv=1, dpe=dpe, dtf=dtf), fsc_=pdtp(mode, root))
    pc = rig.write_pc(mode, root, pid, ta if ta is not None else pc_ta(pscid=3),
                      pc_fsc if pc_fsc is not None else fsc(8, s1))
    rig.root = root
    rig.pc = pc
    return rig


@pytest.mark.parametrize("mode,pid", [(1, 0x00), (1, 0xA5), (2, 0x1_FFA5), (2, 0x100),
                                      (3, 0xA_BCDE), (3, 0xF_FFFF)])
def test_every_mode_reaches_its_pc(mode, pid):
    rig = rig_with_pc(mode, pid)
    r = rig.translate(IOVA, process_id=pid)
    assert not r.fault and r.ppn == PPN


def test_pd20_split_by_hand():
    """0xABCDE: PDI[2] = bits 19:17 = 0b101, PDI[1] = bits 16:8 = 0x0BC, PDI[0] = 0xDE."""
    assert pdi(0xA_BCDE) == (0xDE, 0xBC, 5)
    rig = PdtRig()
    root = rig.page()
    a = rig.pdt_entry_addresses(3, root, 0xA_BCDE)
    assert a[0] == (root << 12) + 5 * 8
    assert a[1] & 0xFFF == 0xBC * 8
    assert a[2] & 0xFFF == 0xDE * 16


def test_middle_level_uses_pdi_1_not_the_typo_pdi_2():
    """Spec typo (reference N.9 P1): GET_PC step 2 prints PDI[2]*8 for every non-leaf
    level; the model indexes level i with PDI[i]. A decoy PDTE at PDI[2]'s slot of the
    middle table points at a PC with another mapping: it must not be used."""
    pid = 0xA_BCDE
    rig = rig_with_pc(3, pid)
    a = rig.pdt_entry_addresses(3, rig.root, pid)
    middle_base = a[1] & ~0xFFF
    decoy_leaf = rig.page()
    decoy_s1 = rig.page()
    rig.map(decoy_s1, IOVA, pte(0x11111, **URWX))
    rig.w64(middle_base + 5 * 8, 1 | decoy_leaf << 10)
    rig.w64((decoy_leaf << 12) + 0xDE * 16, pc_ta(pscid=4))
    rig.w64((decoy_leaf << 12) + 0xDE * 16 + 8, fsc(8, decoy_s1))
    assert rig.translate(IOVA, process_id=pid).ppn == PPN


@pytest.mark.parametrize("mode,pid,fits", [
    (1, 0xFF, True), (1, 0x100, False), (1, 0xF_FFFF, False),
    (2, 0x1_FFFF, True), (2, 0x2_0000, False),
    (3, 0xF_FFFF, True),
])
def test_pid_wider_than_the_mode_is_260(mode, pid, fits):
    """Step 7c (reference N.1.2): pid[19:8] = 0 for PD8, pid[19:17] = 0 for PD17; checked in
    PD8 and PD17 alike (the common briefing's decision)."""
    rig = rig_with_pc(mode, pid & ((1 << (8, 17, 20)[mode - 1]) - 1))
    r = rig.translate(IOVA, process_id=pid)
    if fits:
        assert not r.fault
    else:
        assert r.cause == 260
        assert rig.record() == dict(cause=260, pid=pid, pv=1, priv=0, ttyp=2, did=DEVICE,
                                    iotval=IOVA, iotval2=0)


def test_pdtp_bare_checks_no_width_and_first_stage_is_bare():
    """Reference N.1.2: pdtp Bare has no PDT: first stage Bare for every request, and no
    width check (libiommu checks only PD8/PD17)."""
    rig = PdtRig()
    rig.set_dc(tc_=tc(pdtv=1), fsc_=pdtp(0, 0))
    for kw in ({}, {"process_id": 0xF_FFFF}, {"process_id": 0x1234, "priv": True}):
        r = rig.translate(0x1234_5000, "write", **kw)
        assert not r.fault and r.ppn == 0x12345, kw


def test_pasid_on_pdtv_0_is_260_with_pv_pid_priv_recorded():
    """Step 7b and reference N.1.6, row 1."""
    rig = PdtRig()
    rig.set_dc()
    r = rig.translate(0x5000, "write", process_id=0x12345, priv=True)
    assert r.cause == 260
    assert rig.record() == dict(cause=260, pid=0x12345, pv=1, priv=1, ttyp=3, did=DEVICE,
                                iotval=0x5000, iotval2=0)


def test_dpe_substitutes_pid_0_and_the_record_keeps_pv_0():
    """Step 11 and reference N.1.6 (issue #727): a request without PASID under DPE=1 uses
    PC[0] as a User request; a fault record keeps PV=0, PID=0, PRIV=0."""
    rig = rig_with_pc(2, 0, dpe=1)
    assert rig.translate(IOVA).ppn == PPN
    r = rig.translate(IOVA + 0x1000)          # not mapped: page fault 13 via PC[0]
    assert r.cause == 13
    assert rig.record() == dict(cause=13, pid=0, pv=0, priv=0, ttyp=2, did=DEVICE,
                                iotval=IOVA + 0x1000, iotval2=0)


def test_dpe_0_without_pasid_is_first_stage_bare():
    """Step 12: no process_id, DPE=0: the first stage is Bare (the IOVA is the address)."""
    rig = rig_with_pc(1, 0)
    r = rig.translate(IOVA)
    assert not r.fault and r.ppn == IOVA >> 12


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_invalid_pdte_or_pc_at_every_level_is_266(mode):
    pid = 0x1_2345 if mode == 3 else 0x1_2345 & ((1 << (8, 17)[mode - 1]) - 1)
    for level in range(mode):
        rig = rig_with_pc(mode, pid)
        a = rig.pdt_entry_addresses(mode, rig.root, pid)[level]
        rig.w64(a, rig.mem.read64(a) & ~1)
        assert rig.translate(IOVA, process_id=pid).cause == 266, level
        assert rig.record()["cause"] == 266


@pytest.mark.parametrize("mode", [2, 3])
@pytest.mark.parametrize("bit", [1, 9, 54, 63])
def test_pdte_reserved_bits_are_267(mode, bit):
    """Reference N.1.3: non-leaf PDTE bits 9:1 and 63:54 are reserved."""
    pid = 0x3_0101 & ((1 << (0, 8, 17, 20)[mode]) - 1)
    rig = rig_with_pc(mode, pid)
    a = rig.pdt_entry_addresses(mode, rig.root, pid)[0]
    rig.w64(a, rig.mem.read64(a) | 1 << bit)
    assert rig.translate(IOVA, process_id=pid).cause == 267


@pytest.mark.parametrize("ta,fsc_word,why", [
    (pc_ta(pscid=3) | 1 << 3, None, "ta bit 3 reserved"),
    (pc_ta(pscid=3) | 1 << 11, None, "ta bit 11 reserved"),
    (pc_ta(pscid=3) | 1 << 32, None, "ta bit 32 reserved (no QoS IDs in a PC)"),
    (None, fsc(8, 0x100) | 1 << 44, "fsc bit 44 reserved"),
    (None, fsc(1, 0x100), "fsc.MODE 1 not an SXL=0 encoding"),
    (None, fsc(11, 0x100), "fsc.MODE 11 reserved"),
    (None, fsc(14, 0x100), "fsc.MODE 14 custom, none implemented"),
])
def test_pc_misconfigured_is_267(ta, fsc_word, why):
    rig = rig_with_pc(1, 7, ta=ta, pc_fsc=fsc_word)
    assert rig.translate(IOVA, process_id=7).cause == 267, why


def test_pc_sv57_without_the_capability_is_267():
    """Reference N.1.4 rule 3: Sv57 in PC.fsc with capabilities.Sv57 = 0."""
    rig = PdtRig(Config.full().replace(pd_levels=1))
    root = rig.page()
    rig.set_dc(tc_=tc(pdtv=1), fsc_=pdtp(1, root))
    rig.write_pc(1, root, 7, pc_ta(), fsc(10, rig.page()))
    assert rig.translate(0, process_id=7).cause == 267


def test_pc_v_0_leaves_the_rest_to_software():
    """Reference N.1.3: with V=0 every other PC bit is software's: 266, not 267."""
    rig = rig_with_pc(1, 7, ta=0xFFFF_FFFF_FFFF_FFFE, pc_fsc=(1 << 64) - 1)
    assert rig.translate(IOVA, process_id=7).cause == 266


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_load_fault_on_every_pdt_level_is_265(mode):
    pid = 0x5_4321 & ((1 << (8, 17, 20)[mode - 1]) - 1)
    for level in range(mode):
        rig = rig_with_pc(mode, pid)
        a = rig.pdt_entry_addresses(mode, rig.root, pid)[level]
        rig.mem.inject_fault(a, 8 if level < mode - 1 else 16)
        assert rig.translate(IOVA, process_id=pid).cause == 265, level
        r = rig.record()
        assert (r["cause"], r["pv"], r["pid"], r["iotval2"]) == (265, 1, pid, 0)


def test_pdt_beyond_pas_is_265():
    """A PDT address at or above 2**PAS is 265 (libiommu; the common briefing)."""
    rig = PdtRig(PROCESS.replace(pas=40))
    rig.set_dc(tc_=tc(pdtv=1), fsc_=pdtp(1, 1 << (40 - 12)))
    assert rig.translate(0, process_id=1).cause == 265


@pytest.mark.parametrize("cause_setup,cause", [("invalid", 266), ("reserved", 267),
                                               ("fault", 265), ("pasid", 260)])
def test_dtf_suppresses_pdt_faults(cause_setup, cause):
    """Spec "Fault/Event-Queue (FQ)" and reference N.1.5: DTF=1 suppresses 265-267 and 260."""
    pid = 0x1_0001
    rig = rig_with_pc(2, pid, dtf=1)
    a = rig.pdt_entry_addresses(2, rig.root, pid)[0]
    if cause_setup == "invalid":
        rig.w64(a, 0)
    elif cause_setup == "reserved":
        rig.w64(a, rig.mem.read64(a) | 1 << 63)
    elif cause_setup == "fault":
        rig.mem.inject_fault(a)
    else:
        pid = 0x2_0000                            # too wide for PD17
    assert rig.translate(IOVA, process_id=pid).cause == cause
    assert rig.q.fqt == 0


@pytest.mark.parametrize("words,why", [
    (lambda r: (tc(pdtv=1), 0, 0, pdtp(4, r)), "pdtp.MODE 4 reserved"),
    (lambda r: (tc(pdtv=1), 0, 0, pdtp(13, r)), "pdtp.MODE 13 reserved"),
    (lambda r: (tc(pdtv=1), 0, 0, pdtp(15, r)), "pdtp.MODE 15 custom"),
    (lambda r: (tc(pdtv=1), 0, 0, pdtp(1, r) | 1 << 44), "pdtp bit 44"),
    (lambda r: (tc(pdtv=1), 0, 0, pdtp(1, r) | 1 << 59), "pdtp bit 59"),
    (lambda r: (tc(dpe=1), 0, 0, 0), "DPE=1 with PDTV=0"),
])
def test_dc_checks_for_pdtp_are_259(words, why):
    """Reference N.1.1: DC checks added by PDTV=1."""
    rig = PdtRig()
    rig.set_dc(**dict(zip(("tc_", "iohgatp", "ta", "fsc_"), words(rig.page()),
                                strict=True)))
    assert rig.translate(0, process_id=1).cause == 259, why


@pytest.mark.parametrize("pd_levels,mode,ok", [(1, 1, True), (1, 2, False), (1, 3, False),
                                               (2, 2, True), (2, 3, False), (3, 3, True)])
def test_pdtp_mode_whose_capability_is_0_is_259(pd_levels, mode, ok):
    rig = PdtRig(Config.full().replace(pd_levels=pd_levels))
    root = rig.page()
    rig.set_dc(tc_=tc(pdtv=1), fsc_=pdtp(mode, root))
    rig.write_pc(mode, root, 1, pc_ta(), fsc(0, 0))
    r = rig.translate(0x3000, process_id=1)
    assert (not r.fault) if ok else r.cause == 259


def test_iosatp_checks_are_not_applied_to_pdtp():
    """Reference N.1.1: with PDTV=1, fsc is a pdtp: PD8 (1) is not an iosatp mode, yet the
    DC is fine."""
    rig = rig_with_pc(1, 9)
    assert not rig.translate(IOVA, process_id=9).fault


def test_pc_pscid_tags_the_iotlb_not_dc_ta():
    """Reference N.1.1/N.1.7: DC.ta.PSCID is ignored with PDTV=1; two PCs with their own
    PSCIDs do not share IOTLB entries."""
    rig = PdtRig(cache=True)
    root = rig.page()
    s1a, s1b = rig.page(), rig.page()
    rig.map(s1a, IOVA, pte(0x111, **URWX))
    rig.map(s1b, IOVA, pte(0x222, **URWX))
    rig.set_dc(tc_=tc(pdtv=1), ta=7 << 12, fsc_=pdtp(1, root))
    rig.write_pc(1, root, 1, pc_ta(pscid=10), fsc(8, s1a))
    rig.write_pc(1, root, 2, pc_ta(pscid=20), fsc(8, s1b))
    assert rig.translate(IOVA, process_id=1).ppn == 0x111
    assert rig.translate(IOVA, process_id=2).ppn == 0x222
    assert rig.translate(IOVA, process_id=1).ppn == 0x111


def test_dtf_suppresses_pasid_on_pdtv_0():
    """Reference N.1.6 row 1: "DTF=1 suppresses the record"."""
    rig = PdtRig()
    rig.set_dc(tc_=tc(dtf=1))
    assert rig.translate(0x5000, process_id=3).cause == 260
    assert rig.q.fqt == 0


def test_pdt_fault_after_dpe_substitution_records_pv_0():
    """Issue #727: a GET_PC fault for the substituted process_id 0 keeps PV=0/PID=0."""
    rig = rig_with_pc(2, 0, dpe=1)
    a = rig.pdt_entry_addresses(2, rig.root, 0)[-1]
    rig.w64(a, 0)                                   # PC[0].ta.V = 0
    assert rig.translate(IOVA, "write").cause == 266
    assert rig.record() == dict(cause=266, pid=0, pv=0, priv=0, ttyp=3, did=DEVICE,
                                iotval=IOVA, iotval2=0)


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_many_processes_in_one_pdt(mode):
    """Seeded random PIDs sharing one PDT: each reaches its own PC (no aliasing between
    PDI levels)."""
    seed = 15 + mode
    print("seed", seed)
    rnd = random.Random(seed)
    width = (8, 17, 20)[mode - 1]
    pids = rnd.sample(range(1 << width), 40)
    rig = PdtRig()
    root = rig.page()
    rig.set_dc(tc_=tc(pdtv=1), fsc_=pdtp(mode, root))
    for k, pid in enumerate(pids):
        s1 = rig.page()
        rig.map(s1, IOVA, pte(0x1000 + k, **URWX))
        rig.write_pc(mode, root, pid, pc_ta(pscid=k), fsc(8, s1))
    for k, pid in enumerate(pids):
        assert rig.translate(IOVA, process_id=pid).ppn == 0x1000 + k, hex(pid)
