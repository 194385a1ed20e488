"""Command encodings, checked against bit patterns worked by hand from spec "Command-Queue (CQ)"."""

import pytest

from iogate.firmware import commands


def dwords(cmd):
    return cmd & (2**64 - 1), cmd >> 64


def test_iotinval_vma_spec_example():
    # VMA, PSCID=7, AV=1, PSCV=1, ADDR=0x1000: opcode 1, AV bit 10, PSCID at 12, PSCV at
    # bit 32; ADDR[63:12]=1 at dword1 bit 10.
    assert dwords(commands.iotinval_vma(pscid=7, addr=0x1000)) == (0x1_0000_7401, 0x400)


def test_iotinval_vma_everything():
    # GV=AV=PSCV=0: only the opcode.
    assert dwords(commands.iotinval_vma()) == (0x1, 0)


def test_iotinval_vma_nested_leaf():
    # GV bit 33, GSCID 0x12 at bit 44, PSCV bit 32, PSCID 3 at 12, AV bit 10.
    dword0 = 1 | 1 << 10 | 3 << 12 | 1 << 32 | 1 << 33 | 0x12 << 44
    assert dwords(commands.iotinval_vma(pscid=3, gscid=0x12, addr=0x7_6543_2000)) == (
        dword0, 0x7_6543_2 << 10)


def test_iotinval_vma_upper_canonical_address():
    # ADDR[63:12] of 0xFFFF_FFC0_0000_0000 is 0xF_FFFF_FC00_0000, at dword1 bit 10.
    _, dword1 = dwords(commands.iotinval_vma(pscid=1, addr=0xFFFF_FFC0_0000_0000))
    assert dword1 == 0xF_FFFF_FC00_0000 << 10


def test_iotinval_gvma():
    # func3 GVMA=1 at bit 7; GV=1, GSCID=0x12, AV=1, ADDR=0x5000.
    assert dwords(commands.iotinval_gvma(gscid=0x12, addr=0x5000)) == (
        1 | 1 << 7 | 1 << 10 | 1 << 33 | 0x12 << 44, 5 << 10)
    assert dwords(commands.iotinval_gvma(gscid=0x12)) == (1 | 1 << 7 | 1 << 33 | 0x12 << 44, 0)
    assert dwords(commands.iotinval_gvma()) == (0x81, 0)


def test_iofence_c():
    # opcode 2, AV bit 10, DATA in 63:32, dword1 = ADDR[63:2].
    assert dwords(commands.iofence_c(addr=0x1234, data=0xDEAD_BEEF)) == (
        0xDEAD_BEEF_0000_0402, 0x1234 >> 2)
    # PR bit 12, PW bit 13, no AV.
    assert dwords(commands.iofence_c(pr=True, pw=True)) == (0x3002, 0)


def test_iodir_inval_ddt():
    # opcode 3, DV bit 33, DID at 40.
    # 0x105 << 40 = 0x0001_0500_0000_0000.
    assert dwords(commands.iodir_inval_ddt(did=0x105)) == (0x0001_0502_0000_0003, 0)
    assert dwords(commands.iodir_inval_ddt()) == (3, 0)


def test_bytes_are_little_endian_dwords():
    raw = commands.to_bytes(commands.iotinval_vma(pscid=7, addr=0x1000))
    assert raw == bytes.fromhex("0174000001000000" "0004000000000000")
    assert commands.from_bytes(raw) == commands.iotinval_vma(pscid=7, addr=0x1000)


@pytest.mark.parametrize("call, message", [
    (lambda: commands.iotinval_vma(pscid=1 << 20),
     "pscid must be between 0 and 0xfffff, not 0x100000"),
    (lambda: commands.iotinval_vma(gscid=1 << 16),
     "gscid must be between 0 and 0xffff, not 0x10000"),
    (lambda: commands.iotinval_vma(addr=0x1001),
     "addr must be a 4096-byte aligned 64-bit address, not 0x1001"),
    (lambda: commands.iotinval_gvma(addr=0x1000),
     "IOTINVAL.GVMA with an address needs a gscid (AV is ignored when GV=0)"),
    (lambda: commands.iofence_c(addr=0x1002),
     "addr must be a 4-byte aligned 64-bit address, not 0x1002"),
    (lambda: commands.iofence_c(data=1 << 32),
     "data must be between 0 and 0xffffffff, not 0x100000000"),
    (lambda: commands.iodir_inval_ddt(did=1 << 24),
     "did must be between 0 and 0xffffff, not 0x1000000"),
    (lambda: commands.from_bytes(bytes(15)), "a command is 16 bytes, not 15"),
])
def test_value_errors(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == message


def test_type_error():
    with pytest.raises(TypeError, match=r"^pscid must be an integer, not '7'$"):
        commands.iotinval_vma(pscid="7")


# --- ATS commands (reference N.6.4): opcode 4 at 6:0, func3 9:7 (INVAL 0, PRGR 1), PID 31:12,
# PV 32, DSV 33, RID 55:40, DSEG 63:56; INVAL PAYLOAD G 0, S 11, address 63:12; PRGR PAYLOAD
# PRG Index 40:32, Response Code 47:44.

def test_ats_inval_one_page():
    # RID 0x1234 << 40 = 0x0012_3400_0000_0000; address 0x8000_0000 in place, S=0.
    cmd = commands.ats_inval(0x1234, 0x8000_0000)
    assert commands.to_bytes(cmd) == bytes.fromhex("0400000000341200" "0000008000000000")


def test_ats_inval_pasid_segment_global():
    # PID 0xABCDE, PV, DSV, DSEG 0x56, RID 0x1234: dword0 0x5612_3403_ABCD_E004; G=1.
    cmd = commands.ats_inval(0x1234, 0x1000, g=True, pv=True, pid=0xABCDE, dsv=True,
                             dseg=0x56)
    assert dwords(cmd) == (0x5612_3403_ABCD_E004, 0x1001)


@pytest.mark.parametrize("addr, size, dword1", [
    (0x4000_0000, 8192, 0x4000_0800),              # first 0 at bit 12: 8 KiB
    (0x4000_0000, 16384, 0x4000_1800),             # bit 12 = 1, first 0 at 13: 16 KiB
    (0x4020_0000, 2 << 20, 0x402F_F800),           # bits 19:12 = 1, bit 20 = 0: 2 MiB
    (0, 1 << 64, 0x7FFF_FFFF_FFFF_F800),           # every address: bit 63 = 0
])
def test_ats_inval_napot_range(addr, size, dword1):
    assert dwords(commands.ats_inval(7, addr, size)) == (4 | 7 << 40, dword1)


@pytest.mark.parametrize("kw", [dict(addr=0x1800), dict(addr=0x2000, size=3 << 12),
                                dict(addr=0x1000, size=8192), dict(addr=0, size=2048),
                                dict(addr=0x1000, size=1 << 64)])
def test_ats_inval_bad_range(kw):
    with pytest.raises(ValueError):
        commands.ats_inval(1, **kw)


def test_ats_prgr():
    # func3 1 at bit 7, PID 3, PV, RID 0x0800: dword0 0x0008_0001_0000_3084; PRG Index
    # 0x1A5 at 32, Response Code 0xF at 44.
    cmd = commands.ats_prgr(0x0800, 0x1A5, 0xF, pv=True, pid=3)
    assert commands.to_bytes(cmd) == bytes.fromhex("8430000001000800" "00000000a5f10000")


def test_ats_prgr_positional_and_segment():
    # Success without a PASID to segment 2: DSV 33, DSEG 2 at 56.
    assert dwords(commands.ats_prgr(0x10, 5, 0, False, 0, True, 2)) == (
        0x0200_1002_0000_0084, 5 << 32)


@pytest.mark.parametrize("kw", [dict(prg_index=0x200, response_code=0),
                                dict(prg_index=0, response_code=0x10),
                                dict(prg_index=0, response_code=0, pid=1 << 20),
                                dict(prg_index=0, response_code=0, dseg=0x100)])
def test_ats_prgr_out_of_range(kw):
    with pytest.raises(ValueError):
        commands.ats_prgr(1, **kw)


def test_ats_rid_out_of_range():
    with pytest.raises(ValueError):
        commands.ats_inval(0x10000, 0)
