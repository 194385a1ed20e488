"""The generated C header: it compiles with -Wall -Werror, and its values are the spec's.

The C file below asserts, at compile time, values worked by hand from the spec ("Data
Structures", "In-memory queue interface", "Memory-mapped register interface") and the Privileged
spec's PTE, and at run time builds an IOTINVAL.VMA example from the header's macros.
"""

import re
import subprocess

from iogate.hdl import Config

from iogate.firmware.generate import generate
from iogate.firmware.header import header

C_SOURCE = r"""
#include <stdio.h>
#include "iogate.h"

_Static_assert(IOGATE_DDTP_OFFSET == 0x10, "ddtp at 0x10");
_Static_assert(IOGATE_CQT_OFFSET == 0x24 && IOGATE_CQT_SIZE == 4, "cqt");
_Static_assert(IOGATE_ICVEC_OFFSET == 0x2f8, "icvec");
_Static_assert(IOGATE_TR_RESPONSE_OFFSET == 0x268, "tr_response");
_Static_assert(IOGATE_CQCSR_CQON_SHIFT == 16 && IOGATE_CQCSR_CMD_ILL_SHIFT == 10, "cqcsr");
_Static_assert(IOGATE_FQCSR_FQOF_MASK == UINT64_C(0x200), "fqof is bit 9");
_Static_assert(IOGATE_DDTP_PPN_SHIFT == 10 && IOGATE_DDTP_PPN_WIDTH == 44, "ddtp.PPN");
_Static_assert(IOGATE_CAPABILITIES_PAS_SHIFT == 32 && IOGATE_CAPABILITIES_PAS_WIDTH == 6, "PAS");
_Static_assert(IOGATE_PTE_N_SHIFT == 63 && IOGATE_PTE_PBMT_SHIFT == 61, "Svnapot, Svpbmt");
_Static_assert(IOGATE_IOHGATP_MODE_SHIFT == 60 && IOGATE_IOHGATP_GSCID_SHIFT == 44, "iohgatp");
_Static_assert(IOGATE_TA_PSCID_SHIFT == 12 && IOGATE_TA_PSCID_WIDTH == 20, "ta.PSCID");
_Static_assert(IOGATE_DC_TA_DWORD == 2 && IOGATE_DC_FSC_DWORD == 3, "DC doublewords");
_Static_assert(IOGATE_IOTINVAL_ADDR_DWORD == 1 && IOGATE_IOTINVAL_ADDR_SHIFT == 10, "ADDR");
_Static_assert(IOGATE_IOTINVAL_GSCID_DWORD == 0 && IOGATE_IOTINVAL_GSCID_SHIFT == 44, "GSCID");
_Static_assert(IOGATE_IOFENCE_DATA_SHIFT == 32 && IOGATE_IOFENCE_ADDR_DWORD == 1, "IOFENCE");
_Static_assert(IOGATE_IODIR_DID_SHIFT == 40 && IOGATE_IODIR_DV_SHIFT == 33, "IODIR");
_Static_assert(IOGATE_IOTINVAL_DWORD0_RSVD_MASK == UINT64_C(0xf0000ffc00000800), "rsvd");
_Static_assert(IOGATE_FAULT_RECORD_TTYP_SHIFT == 34 && IOGATE_FAULT_RECORD_IOTVAL2_DWORD == 3,
               "fault record");
_Static_assert(IOGATE_OPCODE_IOTINVAL == 1 && IOGATE_IODIR_FUNC_INVAL_DDT == 0, "opcodes");
_Static_assert(IOGATE_IOMMU_MODE_LVL3 == 4 && IOGATE_IOHGATP_MODE_SV48X4 == 9, "modes");
_Static_assert(IOGATE_CAUSE_DDT_ENTRY_NOT_VALID == 258 && IOGATE_TTYP_UNTRANSLATED_WRITE == 3,
               "cause and ttyp");
_Static_assert(IOGATE_CQCSR_RW1C_MASK == UINT64_C(0xf00)
               && IOGATE_CQCSR_RO_MASK == UINT64_C(0x30000),
               "cqcsr: cqmf, cmd_to, cmd_ill, fence_w_ip RW1C; cqon, busy RO");
_Static_assert(IOGATE_FQCSR_RW1C_MASK == UINT64_C(0x300) && IOGATE_IPSR_RW1C_MASK == UINT64_C(0xf),
               "fqcsr, ipsr RW1C");
_Static_assert(IOGATE_TR_REQ_CTL_RW1S_MASK == UINT64_C(1), "tr_req_ctl.Go RW1S");
/* Performance monitor (spec "Hardware performance monitor", reference N.7). */
_Static_assert(IOGATE_IOCOUNTOVF_OFFSET == 0x58 && IOGATE_IOCOUNTINH_OFFSET == 0x5c
               && IOGATE_IOCOUNTOVF_SIZE == 4 && IOGATE_IOCOUNTINH_SIZE == 4, "iocount*");
_Static_assert(IOGATE_IOHPMCYCLES_OFFSET == 0x60 && IOGATE_IOHPMCYCLES_SIZE == 8
               && IOGATE_IOHPMCYCLES_OF_MASK == UINT64_C(0x8000000000000000)
               && IOGATE_IOHPMCYCLES_COUNTER_WIDTH == 63, "iohpmcycles");
_Static_assert(IOGATE_IOHPMCTR_OFFSET(1) == 0x68 && IOGATE_IOHPMCTR_OFFSET(31) == 0x158
               && IOGATE_IOHPMEVT_OFFSET(1) == 0x160 && IOGATE_IOHPMEVT_OFFSET(31) == 0x250,
               "iohpmctr/evt offsets");
_Static_assert(IOGATE_IOHPMEVT_EVENT_ID_MASK == UINT64_C(0x7fff)
               && IOGATE_IOHPMEVT_DMASK_SHIFT == 15 && IOGATE_IOHPMEVT_PID_PSCID_SHIFT == 16
               && IOGATE_IOHPMEVT_PID_PSCID_WIDTH == 20 && IOGATE_IOHPMEVT_DID_GSCID_SHIFT == 36
               && IOGATE_IOHPMEVT_DID_GSCID_WIDTH == 24 && IOGATE_IOHPMEVT_PV_PSCV_SHIFT == 60
               && IOGATE_IOHPMEVT_DV_GSCV_SHIFT == 61 && IOGATE_IOHPMEVT_IDT_SHIFT == 62
               && IOGATE_IOHPMEVT_OF_SHIFT == 63, "iohpmevt fields");
_Static_assert(IOGATE_HPM_EVENT_UNTRANSLATED_REQ == 1 && IOGATE_HPM_EVENT_IOATC_MISS == 4
               && IOGATE_HPM_EVENT_S2_WALK == 8 && IOGATE_HPM_COUNTERS_MAX == 31, "events");
_Static_assert(IOGATE_IPSR_PMIP_MASK == UINT64_C(4) && IOGATE_ICVEC_PMIV_SHIFT == 8, "pmip");
_Static_assert(IOGATE_DC_SIZE == 32 && IOGATE_CMD_SIZE == 16 && IOGATE_FQ_RECORD_SIZE == 32,
               "sizes");

int main(void)
{
    /* IOTINVAL.VMA, PSCID=7, AV=1, PSCV=1, ADDR=0x1000, worked by hand. */
    uint64_t dword0 = IOGATE_FIELD_PREP(IOTINVAL_OPCODE, IOGATE_OPCODE_IOTINVAL)
                    | IOGATE_FIELD_PREP(IOTINVAL_FUNC3, IOGATE_IOTINVAL_FUNC_VMA)
                    | IOGATE_FIELD_PREP(IOTINVAL_AV, 1)
                    | IOGATE_FIELD_PREP(IOTINVAL_PSCID, 7)
                    | IOGATE_FIELD_PREP(IOTINVAL_PSCV, 1);
    uint64_t dword1 = IOGATE_FIELD_PREP(IOTINVAL_ADDR, 0x1000 >> 12);
    printf("%llx %llx %llx\n", (unsigned long long)dword0, (unsigned long long)dword1,
           (unsigned long long)IOGATE_FIELD_GET(IOGATE_CONFIG_CAPABILITIES, CAPABILITIES_VERSION));
    return 0;
}
"""


def test_header_compiles_and_matches_the_spec(tmp_path):
    paths = generate(tmp_path, config=Config())
    assert [p.name for p in paths] == ["iogate.h", "iogate.dtsi"]
    (tmp_path / "use.c").write_text(C_SOURCE)
    exe = tmp_path / "use"
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
                    str(tmp_path / "use.c"), "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    # dword0 = 0x1_0000_7401, dword1 = 0x400; capabilities.version 0x10.
    assert out.split() == ["100007401", "400", "10"]


def test_every_name_is_defined_once():
    names = re.findall(r"^#define (\w+)", header(), flags=re.M)
    assert len(names) == len(set(names))
    assert "IOGATE_CONFIG_CAPABILITIES" not in names  # only with a Config


def test_capabilities_of_the_config():
    # Config(sv48=True): Sv39 (bit 9) and Sv48 (bit 10), IGS=WSI (bit 28), DBG (bit 31),
    # PAS=56 at 37:32, version 0x10.
    text = header(Config(sv48=True))
    value = 0x10 | 1 << 9 | 1 << 10 | 1 << 28 | 1 << 31 | 56 << 32
    assert f"#define IOGATE_CONFIG_CAPABILITIES UINT64_C({value:#018x})" in text


def test_register_fields_name_their_access_kind():
    text = header()
    assert re.search(r"#define IOGATE_IPSR_CIP_MASK \S+ +/\* RW1C \*/", text)
    assert re.search(r"#define IOGATE_DDTP_IOMMU_MODE_MASK \S+ +/\* WARL: a mode the Config"
                     r" does not build keeps the old mode \*/", text)
    assert re.search(r"#define IOGATE_IOHPMEVT_EVENT_ID_MASK \S+ +/\* WARL: a reserved or"
                     r" custom event ID \(9-32767\) reads 0 \*/", text)
    assert re.search(r"#define IOGATE_IOCOUNTOVF_HPM_MASK \S+ +/\* RO \*/", text)
    # in-memory structures have no access kind
    assert not re.search(r"#define IOGATE_DC_\w+_MASK .*/\*", text)
