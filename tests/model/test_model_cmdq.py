"""The command queue (RISC-V IOMMU spec "Command-Queue (CQ)"; cqb, cqh, cqt, cqcsr, ipsr)."""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import ATS, IODIR, IOFENCE, IOTINVAL
from iogate.hdl.regs import IommuMode, Offset

from model_tables import FULL, Queues, Rig, iodir_inval_ddt, iofence_c, iotinval_gvma, iotinval_vma

CMD_ILL = 1 << 10
CQMF = 1 << 8
FENCE_W_IP = 1 << 11
CQON = 1 << 16


def test_iotinval_encoding_example():
    # VMA with PSCID=7, AV, PSCV, ADDR 0x1000: dword0 = 0x1_0000_7401, dword1 = 0x400.
    cmd = iotinval_vma(pscv=1, pscid=7, av=1, addr=0x1000)
    assert cmd & (2**64 - 1) == 0x1_0000_7401 and cmd >> 64 == 0x400


def test_iofence_av_stores_data():
    rig = Rig()
    q = Queues(rig)
    rig.mem.write(0x2000_0000, b"\x11" * 12)
    q.submit(iofence_c(av=1, addr=0x2000_0004, data=0xCAFE_BABE))
    # A 4-byte little-endian store of DATA at ADDR[63:2]*4, nothing else touched.
    assert rig.mem.read(0x2000_0000, 12) == b"\x11" * 4 + b"\xBE\xBA\xFE\xCA" + b"\x11" * 4
    assert q.cqh == 1 and q.cqcsr == CQON | 1


def test_commands_run_in_order_and_stop_at_tail():
    rig = Rig()
    q = Queues(rig)
    q.submit(iofence_c(av=1, addr=0x3000, data=1), iofence_c(av=1, addr=0x3000, data=2),
             run=False)
    assert q.cqh == 0                                        # nothing runs by itself
    assert rig.iommu.process_commands() == 2
    assert rig.mem.read(0x3000, 4) == b"\x02\x00\x00\x00" and q.cqh == 2


def test_wraparound():
    rig = Rig()
    q = Queues(rig, cq_log2szm1=0)                           # 2 entries, capacity 1
    q.submit(iofence_c(av=1, addr=0x3000, data=1))
    assert q.cqh == 1
    q.submit(iofence_c(av=1, addr=0x3000, data=2))           # at index 1; cqt wraps to 0
    assert rig.iommu.mmio_read(Offset.CQT, 4) == 0
    assert q.cqh == 0 and rig.mem.read(0x3000, 1) == b"\x02"


def test_queue_off_runs_nothing():
    rig = Rig()
    q = Queues(rig)
    rig.iommu.mmio_write(Offset.CQCSR, 4, 0)
    q.submit(iofence_c(av=1, addr=0x3000, data=1))
    assert q.cqh == 0 and rig.mem.read(0x3000, 1) == b"\x00"


_ILLEGAL = {
    "opcode 0": 0,
    "opcode 5": 5,
    "opcode 63": 63,
    "custom opcode 64": 64,
    "custom opcode 127": 127,
    "IOTINVAL func3 2": bits.pack(IOTINVAL, opcode=1, func3=2),
    "IOTINVAL func3 7": bits.pack(IOTINVAL, opcode=1, func3=7),
    "IOTINVAL bit 11": iotinval_vma() | 1 << 11,
    "IOTINVAL NL (bit 34)": iotinval_vma(av=1) | 1 << 34,
    "IOTINVAL bit 43": iotinval_vma() | 1 << 43,
    "IOTINVAL bit 60": iotinval_vma() | 1 << 60,
    "IOTINVAL S (dword1 bit 9)": iotinval_vma(av=1) | 1 << 73,
    "IOTINVAL dword1 bit 0": iotinval_vma() | 1 << 64,
    "IOTINVAL dword1 bit 63": iotinval_vma() | 1 << 127,
    "GVMA with PSCV": bits.pack(IOTINVAL, opcode=1, func3=1, pscv=1),
    "IOFENCE func3 1": bits.pack(IOFENCE, opcode=2, func3=1),
    "IOFENCE bit 14": iofence_c() | 1 << 14,
    "IOFENCE bit 31": iofence_c() | 1 << 31,
    "IOFENCE dword1 bit 62": iofence_c() | 1 << 126,
    "IODIR.INVAL_PDT": bits.pack(IODIR, opcode=3, func3=1, dv=1),
    "IODIR func3 2": bits.pack(IODIR, opcode=3, func3=2),
    "IODIR bit 10": iodir_inval_ddt() | 1 << 10,
    "IODIR bit 32": iodir_inval_ddt() | 1 << 32,
    "IODIR bit 34": iodir_inval_ddt() | 1 << 34,
    "IODIR.INVAL_DDT with PID": bits.pack(IODIR, opcode=3, func3=0, pid=1),
    "IODIR dword1 bit 0": iodir_inval_ddt() | 1 << 64,
    "IODIR DID wider than 1LVL": iodir_inval_ddt(dv=1, did=0x80),
    "ATS.INVAL without cap.ATS": bits.pack(ATS, opcode=4, func3=0),
    "ATS.PRGR without cap.ATS": bits.pack(ATS, opcode=4, func3=1),
}


@pytest.mark.parametrize("cmd", list(_ILLEGAL.values()), ids=list(_ILLEGAL))
def test_illegal_command_stops_queue(cmd):
    rig = Rig()
    rig.set_ddtp(IommuMode.LVL1, rig.page())
    q = Queues(rig)
    q.submit(iofence_c(av=1, addr=0x3000, data=1), cmd, iofence_c(av=1, addr=0x3000, data=2))
    assert q.cqcsr & CMD_ILL
    assert q.cqh == 1                                         # at the bad command
    assert rig.mem.read(0x3000, 1) == b"\x01"                 # the later fence did not run


def test_legal_commands_do_not_stop():
    rig = Rig(FULL)
    rig.set_ddtp(IommuMode.LVL2, rig.page())
    q = Queues(rig)
    cmds = [iotinval_vma(gv=gv, gscid=5, pscv=pscv, pscid=9, av=av, addr=0x7000)
            for gv in (0, 1) for pscv in (0, 1) for av in (0, 1)]
    cmds += [iotinval_gvma(gv=gv, gscid=5, av=av, addr=0x7000) for gv in (0, 1) for av in (0, 1)]
    cmds += [iodir_inval_ddt(), iodir_inval_ddt(dv=1, did=0xFFFF), iofence_c(wsi=1, pr=1, pw=1)]
    q.submit(*cmds)
    assert q.cqh == len(cmds) and q.cqcsr == CQON | 1 | FENCE_W_IP


def test_did_width_follows_mode():
    rig = Rig(FULL)
    root = rig.page()
    q = Queues(rig)
    rig.set_ddtp(IommuMode.LVL2, root)
    q.submit(iodir_inval_ddt(dv=1, did=0x1_0000))
    assert q.cqcsr & CMD_ILL and q.cqh == 0
    rig.set_ddtp(IommuMode.OFF, root)
    rig.set_ddtp(IommuMode.LVL3, root)
    rig.iommu.mmio_write(Offset.CQCSR, 4, 1 | CMD_ILL)         # clear cmd_ill: resume
    rig.iommu.process_commands()
    assert q.cqh == 1 and not q.cqcsr & CMD_ILL


def test_clearing_cmd_ill_resumes_at_fixed_command():
    rig = Rig()
    q = Queues(rig)
    q.submit(5)
    assert q.cqcsr & CMD_ILL and q.cqh == 0
    rig.mem.write(q.cq << 12, iofence_c(av=1, addr=0x3000, data=7).to_bytes(16, "little"))
    rig.iommu.mmio_write(Offset.CQCSR, 4, 1 | CMD_ILL)
    rig.iommu.process_commands()
    assert q.cqh == 1 and rig.mem.read(0x3000, 1) == b"\x07"


def test_fetch_fault_sets_cqmf():
    rig = Rig()
    q = Queues(rig)
    q.submit(iofence_c(), iofence_c(), run=False)
    rig.mem.inject_fault((q.cq << 12) + 16, 16)               # entry 1
    rig.iommu.process_commands()
    assert q.cqcsr & CQMF and q.cqh == 1


def test_av_store_fault_sets_cqmf_and_keeps_head():
    rig = Rig()
    q = Queues(rig)
    rig.mem.inject_fault(0x5000, 4)
    q.submit(iofence_c(), iofence_c(av=1, addr=0x5000, data=1))
    assert q.cqcsr & CQMF and q.cqh == 1
    rig.mem.clear_faults()
    rig.iommu.mmio_write(Offset.CQCSR, 4, 1 | CQMF)            # RW1C: the fence runs again
    rig.iommu.process_commands()
    assert q.cqh == 2 and rig.mem.read(0x5000, 1) == b"\x01"


def test_cqen_0_to_1_clears_head_and_errors():
    rig = Rig()
    q = Queues(rig)
    q.submit(iofence_c(), 5)
    assert q.cqh == 1 and q.cqcsr & CMD_ILL
    rig.iommu.mmio_write(Offset.CQCSR, 4, 0)
    assert q.cqcsr & CMD_ILL                                   # cqen 1->0 keeps the bits
    rig.iommu.mmio_write(Offset.CQCSR, 4, 1)
    assert q.cqh == 0 and q.cqcsr == CQON | 1


def test_cip_follows_cie_and_resets_while_condition_persists():
    rig = Rig()
    q = Queues(rig, cie=1)
    rig.iommu.mmio_write(Offset.ICVEC, 8, 0x3)                 # civ = 3
    q.submit(5)
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 1            # cip
    assert rig.iommu.wsi_lines == 1 << 3
    rig.iommu.mmio_write(Offset.IPSR, 4, 1)                    # cmd_ill still 1: set again
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 1
    rig.iommu.mmio_write(Offset.CQCSR, 4, 0x3 | CMD_ILL)       # clear cmd_ill
    rig.iommu.mmio_write(Offset.IPSR, 4, 1)
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 0 and rig.iommu.wsi_lines == 0


def test_no_cip_without_cie():
    rig = Rig()
    q = Queues(rig)
    q.submit(5)
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 0
    rig.iommu.mmio_write(Offset.CQCSR, 4, 0x3)                 # cie now: condition holds
    assert rig.iommu.mmio_read(Offset.IPSR, 4) == 1


def test_fence_wsi_sets_fence_w_ip_and_cip():
    rig = Rig()
    q = Queues(rig, cie=1)
    q.submit(iofence_c(wsi=1))
    assert q.cqcsr & FENCE_W_IP and rig.iommu.mmio_read(Offset.IPSR, 4) == 1
    rig.iommu.mmio_write(Offset.CQCSR, 4, 0x3 | FENCE_W_IP)
    rig.iommu.mmio_write(Offset.IPSR, 4, 1)
    assert not q.cqcsr & FENCE_W_IP and rig.iommu.mmio_read(Offset.IPSR, 4) == 0


@pytest.mark.parametrize("mode, did, legal", [
    # With extended-format device contexts (MSI_FLAT) 1LVL holds 6 bits, 2LVL 15 (N.3.2).
    (IommuMode.LVL1, 0x3F, True), (IommuMode.LVL1, 0x40, False),
    (IommuMode.LVL2, 0x7FFF, True), (IommuMode.LVL2, 0x8000, False),
])
def test_did_width_follows_the_extended_split(mode, did, legal):
    rig = Rig(Config.msi())
    rig.set_ddtp(mode, rig.page())
    q = Queues(rig)
    q.submit(iodir_inval_ddt(dv=1, did=did))
    assert bool(q.cqcsr & CMD_ILL) is not legal and q.cqh == int(legal)
