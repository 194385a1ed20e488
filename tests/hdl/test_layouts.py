"""The shared layouts against bit positions read off the spec ("Register layout",
"Data Structures", "Command-Queue (CQ)", "Fault/Event-Queue (FQ)").

Each expected value below was worked out by hand from the spec's tables, not from the
layouts, so a field moved by one bit fails here before it misleads the RTL, the model,
the driver and the C header at once.
"""

import pytest

from iogate.hdl import bits
from iogate.hdl.formats import (
    DDTE,
    FAULT_RECORD,
    IODIR,
    IOFENCE,
    IOHGATP,
    IOSATP,
    IOTINVAL,
    PTE,
    TA,
    TC,
    Cause,
    Ttyp,
)
from iogate.hdl.regs import (
    ACCESS,
    CAPABILITIES,
    CQCSR,
    DDTP,
    FCTL,
    FQCSR,
    ICVEC,
    IPSR,
    QB,
    REGISTERS,
    TR_REQ_CTL,
    TR_RESPONSE,
    Kind,
    Offset,
    access_of,
    kind_mask,
)


@pytest.mark.parametrize("layout, field, offset, width", [
    (CAPABILITIES, "version", 0, 8), (CAPABILITIES, "sv39", 9, 1),
    (CAPABILITIES, "sv48", 10, 1), (CAPABILITIES, "svpbmt", 15, 1),
    (CAPABILITIES, "sv39x4", 17, 1), (CAPABILITIES, "sv48x4", 18, 1),
    (CAPABILITIES, "amo_hwad", 24, 1), (CAPABILITIES, "ats", 25, 1),
    (CAPABILITIES, "igs", 28, 2), (CAPABILITIES, "dbg", 31, 1), (CAPABILITIES, "pas", 32, 6),
    (CAPABILITIES, "pd20", 40, 1), (CAPABILITIES, "nl", 42, 1), (CAPABILITIES, "s", 43, 1),
    (FCTL, "be", 0, 1), (FCTL, "wsi", 1, 1), (FCTL, "gxl", 2, 1),
    (DDTP, "iommu_mode", 0, 4), (DDTP, "busy", 4, 1), (DDTP, "ppn", 10, 44),
    (QB, "log2szm1", 0, 5), (QB, "ppn", 10, 44),
    (CQCSR, "cqen", 0, 1), (CQCSR, "cie", 1, 1), (CQCSR, "cqmf", 8, 1),
    (CQCSR, "cmd_to", 9, 1), (CQCSR, "cmd_ill", 10, 1), (CQCSR, "fence_w_ip", 11, 1),
    (CQCSR, "cqon", 16, 1), (CQCSR, "busy", 17, 1),
    (FQCSR, "fqen", 0, 1), (FQCSR, "fie", 1, 1), (FQCSR, "fqmf", 8, 1), (FQCSR, "fqof", 9, 1),
    (FQCSR, "fqon", 16, 1), (FQCSR, "busy", 17, 1),
    (IPSR, "cip", 0, 1), (IPSR, "fip", 1, 1), (IPSR, "pip", 3, 1),
    (ICVEC, "civ", 0, 4), (ICVEC, "fiv", 4, 4), (ICVEC, "piv", 12, 4),
    (TR_REQ_CTL, "go", 0, 1), (TR_REQ_CTL, "priv", 1, 1), (TR_REQ_CTL, "exe", 2, 1),
    (TR_REQ_CTL, "nw", 3, 1), (TR_REQ_CTL, "pid", 12, 20), (TR_REQ_CTL, "pv", 32, 1),
    (TR_REQ_CTL, "did", 40, 24),
    (TR_RESPONSE, "fault", 0, 1), (TR_RESPONSE, "pbmt", 7, 2), (TR_RESPONSE, "s", 9, 1),
    (TR_RESPONSE, "ppn", 10, 44),
    (DDTE, "v", 0, 1), (DDTE, "ppn", 10, 44),
    (TC, "v", 0, 1), (TC, "en_ats", 1, 1), (TC, "t2gpa", 3, 1), (TC, "dtf", 4, 1),
    (TC, "pdtv", 5, 1), (TC, "gade", 7, 1), (TC, "sade", 8, 1), (TC, "dpe", 9, 1),
    (TC, "sbe", 10, 1), (TC, "sxl", 11, 1),
    (IOHGATP, "ppn", 0, 44), (IOHGATP, "gscid", 44, 16), (IOHGATP, "mode", 60, 4),
    (TA, "pscid", 12, 20), (IOSATP, "ppn", 0, 44), (IOSATP, "mode", 60, 4),
    (PTE, "v", 0, 1), (PTE, "r", 1, 1), (PTE, "w", 2, 1), (PTE, "x", 3, 1), (PTE, "u", 4, 1),
    (PTE, "g", 5, 1), (PTE, "a", 6, 1), (PTE, "d", 7, 1), (PTE, "ppn", 10, 44),
    (PTE, "pbmt", 61, 2), (PTE, "n", 63, 1),
    (IOTINVAL, "av", 10, 1), (IOTINVAL, "pscid", 12, 20), (IOTINVAL, "pscv", 32, 1),
    (IOTINVAL, "gv", 33, 1), (IOTINVAL, "gscid", 44, 16), (IOTINVAL, "addr", 64 + 10, 52),
    (IOFENCE, "av", 10, 1), (IOFENCE, "wsi", 11, 1), (IOFENCE, "pr", 12, 1),
    (IOFENCE, "pw", 13, 1), (IOFENCE, "data", 32, 32), (IOFENCE, "addr", 64, 62),
    (IODIR, "pid", 12, 20), (IODIR, "dv", 33, 1), (IODIR, "did", 40, 24),
    (FAULT_RECORD, "cause", 0, 12), (FAULT_RECORD, "pid", 12, 20), (FAULT_RECORD, "pv", 32, 1),
    (FAULT_RECORD, "priv", 33, 1), (FAULT_RECORD, "ttyp", 34, 6), (FAULT_RECORD, "did", 40, 24),
    (FAULT_RECORD, "iotval", 128, 64), (FAULT_RECORD, "iotval2", 192, 64),
])
def test_field_position(layout, field, offset, width):
    assert bits.field_range(layout, field) == (offset, width)


def test_offsets():
    # Decimal offsets from the spec's register map ("Register layout").
    assert (Offset.DDTP, Offset.CQB, Offset.CQH, Offset.CQT, Offset.FQB, Offset.FQH,
            Offset.FQT, Offset.CQCSR, Offset.FQCSR, Offset.IPSR, Offset.TR_REQ_IOVA,
            Offset.TR_REQ_CTL, Offset.TR_RESPONSE, Offset.ICVEC) == (
        16, 24, 32, 36, 40, 48, 52, 72, 76, 84, 600, 608, 616, 760)


def test_iotinval_example():
    # Worked by hand from the IOTINVAL layout: VMA with PSCID=7, AV, PSCV and addr 0x1000 -> dword0
    # 0x1_0000_7401, dword1 0x400.
    word = bits.pack(IOTINVAL, opcode=1, func3=0, av=1, pscv=1, pscid=7, addr=0x1000 >> 12)
    assert word & (2**64 - 1) == 0x1_0000_7401
    assert word >> 64 == 0x400


def test_pte_reserved_bits():
    # Privileged spec: PTE bits 60:54 are reserved for future standard use.
    assert bits.reserved_mask(PTE) == sum(1 << b for b in range(54, 61))


def test_tc_reserved_bits():
    # tc bits 23:12 and 63:32 are reserved (31:24 are custom, not reserved).
    expected = sum(1 << b for b in range(12, 24)) | sum(1 << b for b in range(32, 64))
    assert bits.reserved_mask(TC) == expected


def test_put_rejects_overflow():
    with pytest.raises(ValueError, match="does not fit field 'iommu_mode' of 4 bits"):
        bits.put(DDTP, 0, "iommu_mode", 16)


def test_cause_and_ttyp_values():
    assert [int(c) for c in (Cause.READ_PAGE_FAULT, Cause.WRITE_PAGE_FAULT,
                             Cause.INSTRUCTION_PAGE_FAULT, Cause.DDT_ENTRY_MISCONFIGURED,
                             Cause.PT_DATA_CORRUPTION)] == [13, 15, 12, 259, 274]
    assert [int(t) for t in (Ttyp.UNTRANSLATED_EXEC, Ttyp.UNTRANSLATED_READ,
                             Ttyp.UNTRANSLATED_WRITE)] == [1, 2, 3]


# The access kinds against the spec's "Attribute" column ("Register layout"), by hand.
@pytest.mark.parametrize("offset, kinds, expected", [
    (Offset.CQCSR, (Kind.RW1C,), 0xF00),                    # cqmf, cmd_to, cmd_ill, fence_w_ip
    (Offset.CQCSR, (Kind.RW,), 0x3),                        # cqen, cie
    (Offset.CQCSR, (Kind.RO,), 0x3 << 16),                  # cqon, busy
    (Offset.FQCSR, (Kind.RW1C,), 0x300),                    # fqmf, fqof
    (Offset.IPSR, (Kind.RW1C,), 0xF),
    (Offset.ICVEC, (Kind.WARL,), 0xFFFF),
    (Offset.DDTP, (Kind.WARL,), 0xF | (((1 << 44) - 1) << 10)),
    (Offset.DDTP, (Kind.ZERO,), 1 << 4),                    # busy
    (Offset.CQB, (Kind.RW, Kind.WARL), 0x1F | (((1 << 44) - 1) << 10)),
    (Offset.TR_REQ_CTL, (Kind.RW1S,), 0x1),                 # Go
    (Offset.TR_REQ_CTL, (Kind.RW,), 0xE | (((1 << 20) - 1) << 12) | (1 << 32)
     | (((1 << 24) - 1) << 40)),
])
def test_kind_masks(offset, kinds, expected):
    assert kind_mask(offset, *kinds) == expected


def test_every_decoded_register_has_an_access_per_field():
    for offset, layout in REGISTERS.items():
        named = {n for n, _ in layout if not n.startswith("_")}
        assert set(ACCESS[offset]) == named, offset
        assert set(access_of(offset)) == named


def test_warl_fields_state_their_rule():
    for offset, table in ACCESS.items():
        for name, acc in table.items():
            assert (acc.kind is Kind.WARL) == bool(acc.rule), (offset, name)
            assert str(acc).startswith(acc.kind.value)
