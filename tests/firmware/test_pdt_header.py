"""The C header's process-directory lines, against the spec's bit positions written out by
hand (spec "Device-context fields" pdtp: PPN 43:0, MODE 63:60; "Non-leaf PDT entry": V 0,
PPN 53:10; "Process-context fields": ta V 0, ENS 1, SUM 2, PSCID 31:12, fsc in dword 1)."""

import re

from iogate.firmware.header import header


def defines():
    return {m[1]: m[2] for m in re.finditer(r"#define IOGATE_(\w+) (\S+)", header())}


def test_pdt_layouts_and_encodings():
    d = defines()
    assert d["PDTP_MODE_SHIFT"] == "60u" and d["PDTP_PPN_WIDTH"] == "44u"
    assert d["PDTP_RSVD_MASK"] == "UINT64_C(0x0ffff00000000000)"
    assert d["PDTE_PPN_SHIFT"] == "10u" and d["PDTE_PPN_WIDTH"] == "44u"
    assert d["PDTE_RSVD_MASK"] == "UINT64_C(0xffc00000000003fe)"
    assert (d["PC_TA_ENS_SHIFT"], d["PC_TA_SUM_SHIFT"], d["PC_TA_PSCID_SHIFT"]) == \
        ("1u", "2u", "12u")
    assert d["PC_TA_RSVD_MASK"] == "UINT64_C(0xffffffff00000ff8)"
    assert (d["PC_TA_DWORD"], d["PC_FSC_DWORD"]) == ("0u", "1u")
    assert (d["PDTP_MODE_PD8"], d["PDTP_MODE_PD17"], d["PDTP_MODE_PD20"]) == ("1u", "2u", "3u")
    assert (d["PC_SIZE"], d["PDTE_SIZE"], d["IODIR_FUNC_INVAL_PDT"]) == ("16u", "8u", "1u")
