"""QEMU's riscv-iommu register checks, rendered as cocotb tests on the iogate top.

QEMU's qtest (``tests/qtest/riscv-iommu-test.c``) checks its emulated IOMMU in three tests;
each is rendered here check by check, on the Config named by ``IOGATE_QEMU_CONFIG``
(``default`` or ``full``), and adapted only where iogate legitimately differs, each
difference named in the test's docstring with the spec's reason. Every register access goes
through the mirrored bus, so each read is also checked against the architectural model.

Not rendered: ``pci_config`` (vendor, device and class IDs in PCI configuration space):
iogate is not a PCI function; its registers are a platform device's 4 KiB page behind an
AXI4-Lite port (spec "Memory-mapped register interface" leaves the discovery of the page to
the platform).

Built and run by tests/rtl/test_rtl_qemu.py on Verilator and Icarus.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles

from iogate.hdl import Config, bits
from iogate.hdl.regs import CAPABILITIES, CQCSR, DDTP, FQCSR, ICVEC, QB, IommuMode, Offset

from iogate.cosim.scenarios.session import open_session

#: "ats": the full Config with ATS and PRI, where the page-request queue exists and QEMU's
#: checks of it apply as written.
CONFIGS = {"default": Config(), "full": Config.full(), "ats": Config.full().replace(ats=True)}
CONFIG = CONFIGS[os.environ.get("IOGATE_QEMU_CONFIG", "default")]

#: The page-request queue's registers (spec "Register layout"; iogate offers no ATS).
PQB, PQH, PQT, PQCSR = Offset.PQB, Offset.PQH, Offset.PQT, Offset.PQCSR
#: pqcsr has fqcsr's layout (spec "Page-request-queue CSR (pqcsr)"): pqen, pie, pqon, busy.
PQEN, PIE, PQON, PQ_BUSY = 1 << 0, 1 << 1, 1 << 16, 1 << 17
#: QEMU polls ON every 100 ns for up to 2 s of host time; here: reads, 10 cycles apart.
POLLS = 200
#: QEMU's k: 2**k interrupt vectors in its PCI device, and LOG2SZ-1 = k - 1 for each queue.
K = 2


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


async def wait_for_queue_active(s, csr):
    """QEMU's ``qtest_wait_for_queue_active``: let time pass, read the CSR, until its ON bit
    (bit 16 in cqcsr, fqcsr and pqcsr) reads 1. Returns whether it did within ``POLLS``."""
    for _ in range(POLLS):
        await ClockCycles(s.tb.dut.clk, 10)
        if await s.tb.mmio_read(csr, 4) & 1 << 16:
            return True
    return False


@cocotb.test()
async def reg_reset(dut):
    """QEMU ``test_reg_reset``: ``capabilities.version`` is 0x10; ``cqcsr`` cqen, cie, cqon and
    busy read 0, and the same bits of ``fqcsr`` and ``pqcsr``; ``ddtp`` busy 0 and mode Off;
    ``ipsr`` 0 (spec "Reset behavior": those fields reset to 0, ``iommu_mode`` to Off or Bare,
    Off recommended).

    Adapted: ``pqcsr`` reads 0 as a whole on iogate, not only in those bits, because without
    ATS the page-request queue is absent (``capabilities.ATS`` = 0; spec "Memory-mapped
    register interface": an optional register that ``capabilities`` says is absent reads 0).
    """
    s = await open_session(dut, CONFIG)
    cap = await s.bus.aread(Offset.CAPABILITIES, 8)
    assert cap & 0xFF == 0x10

    reg = await s.bus.aread(Offset.CQCSR, 4)
    for field in ("cqen", "cie", "cqon", "busy"):
        assert bits.get(CQCSR, reg, field) == 0, field
    reg = await s.bus.aread(Offset.FQCSR, 4)
    for field in ("fqen", "fie", "fqon", "busy"):
        assert bits.get(FQCSR, reg, field) == 0, field
    reg = await s.bus.aread(PQCSR, 4)
    for mask in (PQEN, PIE, PQON, PQ_BUSY):
        assert reg & mask == 0, hex(mask)
    if CONFIG.ats:
        assert bits.get(CAPABILITIES, cap, "ats") == 1
    else:
        assert bits.get(CAPABILITIES, cap, "ats") == 0 and reg == 0

    reg = await s.bus.aread(Offset.DDTP, 4)
    assert bits.get(DDTP, reg, "busy") == 0
    assert bits.get(DDTP, reg, "iommu_mode") == IommuMode.OFF

    assert await s.bus.aread(Offset.IPSR, 4) == 0
    assert_clean(s)


@cocotb.test()
async def icvec_write_of_0xffff(dut):
    """QEMU ``test_iommu_init_queues``, its ``icvec`` step: write 0xFFFF to ``civ``, ``fiv``,
    ``pmiv`` and ``piv`` (4 bytes) and read back; each field keeps the bits of a vector
    number that exist (spec "Interrupt-cause-to-vector register (icvec)": the fields are
    WARL; "Guidelines for initialization": write 0xF to each field to discover how many
    vectors there are).

    Adapted: QEMU's PCI device has 4 vectors, so it expects 2 bits per field (0x3, 0x30,
    0x300, 0x3000). iogate's vectors are its wired interrupt lines, ``wsi``, 16 of them, one
    per value of a 4-bit field, so all 4 bits of each field are kept: the expected value is
    derived from the width of the top's ``wsi`` port.
    """
    s = await open_session(dut, CONFIG)
    lines = len(dut.wsi)
    k = (lines - 1).bit_length()            # 2**k vectors: k writable bits per field
    assert 1 << k == lines
    ones = (1 << k) - 1
    await s.bus.awrite(Offset.ICVEC, 4, 0xFFFF)
    reg = await s.bus.aread(Offset.ICVEC, 4)
    assert reg & 0x000F == ones
    assert reg & 0x00F0 == ones << 4
    assert reg & 0x0F00 == ones << 8
    assert reg & 0xF000 == ones << 12
    assert [bits.get(ICVEC, reg, f) for f in ("civ", "fiv", "pmiv", "piv")] == [ones] * 4
    assert await s.bus.aread(Offset.ICVEC + 4, 4) == 0       # 63:32 custom: none here
    assert_clean(s)


async def _init_queue(s, base_reg, index_reg, csr_reg, address):
    """One queue of QEMU's ``test_iommu_init_queues``: base (8 bytes), index 0, then the CSR
    read, its enable bit ORed in, written back, and ON polled."""
    await s.bus.awrite(base_reg, 8, bits.pack(QB, ppn=address >> 12, log2szm1=K - 1))
    await s.bus.awrite(index_reg, 4, 0)
    reg = await s.bus.aread(csr_reg, 4)
    await s.bus.awrite(csr_reg, 4, reg | 1)
    return await wait_for_queue_active(s, csr_reg)


@cocotb.test()
async def iommu_init_queues(dut):
    """QEMU ``test_iommu_init_queues`` (spec "Guidelines for initialization"): check
    ``capabilities.version``; the ``icvec`` write (see ``icvec_write_of_0xffff``); then for the
    command, fault and page-request queues in turn: the base with LOG2SZ-1 = k-1 (4 entries)
    in one 8-byte write, the index written 0 in 4 bytes, the CSR read, its enable bit ORed in
    and written back, and ON polled until it reads 1.

    Rendered as QEMU's test means it rather than as it is written: its ``deposit64`` results
    are discarded, so it writes 0 to each base, and it deposits the buffer's *address* where
    the PPN goes; here each base holds the buffer's PPN and LOG2SZ-1 = k-1, and reads back
    exactly (as Linux requires). QEMU writes ``fqt`` and ``pqt`` where the spec's sequence
    writes ``fqh`` and ``pqh``; ``fqt``/``pqt`` belong to the IOMMU (read-only), so those
    writes are kept and ignored, as on QEMU.

    Adapted: iogate has no page-request queue (no ATS in any Config: ``capabilities.ATS`` =
    0). Its registers, ``pqb``, ``pqh``, ``pqt``, ``pqcsr``, are absent: they read 0 and
    ignore writes (spec "Memory-mapped register interface", "Register layout": optional when
    ``capabilities.ATS`` is 0). So ``pqon`` never reads 1: the poll is bounded and must time
    out, and every PQ register must still read 0 afterwards. With ``Config.ats`` the queue
    exists and turns on as QEMU expects.
    """
    s = await open_session(dut, CONFIG)
    cap = await s.bus.aread(Offset.CAPABILITIES, 8)
    assert cap & 0xFF == 0x10
    await s.bus.awrite(Offset.ICVEC, 4, 0xFFFF)
    await s.bus.aread(Offset.ICVEC, 4)

    cq, fq, pq = 0x8000_1000, 0x8000_2000, 0x8000_3000      # 4 x 16, 4 x 32, 4 x 16 bytes
    assert await _init_queue(s, Offset.CQB, Offset.CQT, Offset.CQCSR, cq), "cqon never read 1"
    assert await s.bus.aread(Offset.CQB, 8) == cq >> 2 | (K - 1)
    assert bits.get(CQCSR, await s.bus.aread(Offset.CQCSR, 4), "cqon") == 1
    assert await s.bus.aread(Offset.CQH, 4) == 0

    assert await _init_queue(s, Offset.FQB, Offset.FQT, Offset.FQCSR, fq), "fqon never read 1"
    assert await s.bus.aread(Offset.FQB, 8) == fq >> 2 | (K - 1)
    assert bits.get(FQCSR, await s.bus.aread(Offset.FQCSR, 4), "fqon") == 1
    assert await s.bus.aread(Offset.FQT, 4) == 0

    if CONFIG.ats:
        assert await _init_queue(s, PQB, PQT, PQCSR, pq), "pqon never read 1"
        assert await s.bus.aread(PQB, 8) == pq >> 2 | (K - 1)
        assert await s.bus.aread(PQCSR, 4) & PQON
        assert await s.bus.aread(PQT, 4) == 0
    else:
        assert bits.get(CAPABILITIES, cap, "ats") == 0
        assert not await _init_queue(s, PQB, PQT, PQCSR, pq), "pqon read 1 on a queue iogate lacks"
        for reg, size in ((PQB, 8), (PQH, 4), (PQT, 4), (PQCSR, 4)):
            assert await s.bus.aread(reg, size) == 0, reg.name
    # The queues that exist are still on.
    assert bits.get(CQCSR, await s.bus.aread(Offset.CQCSR, 4), "cqon") == 1
    assert bits.get(FQCSR, await s.bus.aread(Offset.FQCSR, 4), "fqon") == 1
    assert_clean(s)
