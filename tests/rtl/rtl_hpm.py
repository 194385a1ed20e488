"""The performance monitor on the RTL (spec "Hardware performance monitor", reference N.7,
decisions of issue 17 (HPM)): events and filters, pmip on the wire and as an MSI.

Every register access goes through the mirrored bus: the model (cosim.model.hpm) predicts
iohpmcycles and counters of events 4-8 only as unknown and adopts the RTL's value, so the
counts of those are asserted here too, worked by hand from the spec's walks as in
tests/hdl/test_hpm_events.py; UNTRANSLATED_REQ counts and every filter of event 1 the model
predicts exactly, and every translation is checked by the scoreboard. A 3LVL directory
(device_id 0x01_0205: DDI[2] 0x01, DDI[1] 0x04, DDI[0] 0x05) reads
two DDTEs and the DC, 3 DDT_WALK per cold device; an Sv39 miss 3 S1_WALK; Sv39 over Sv39x4
3 S1_WALK and 3 * 3 + 3 = 12 S2_WALK.

Builds (tests/rtl/test_rtl_hpm.py, Verilator and Icarus): ``hpm32``, Config.hpm() with a
32-bit register bus (8-byte registers as 4-byte halves; pmip on the wire icvec.pmiv) and
``hpm-msi``, Config.msi() with 7 counters (IGS=BOTH, fctl.WSI=0 after reset: pmip as an MSI).
"""

import os

import cocotb
from cocotb.triggers import ClockCycles

from iogate.hdl import Config, bits
from iogate.hdl.regs import DDTP, IommuMode, Offset

from iogate.cosim.scenarios.session import open_session, request
from rtl_tables import sv39x4_map

CONFIGS = {"hpm32": Config.hpm().replace(mmio_data_width=32),
           "hpm-msi": Config.msi().replace(hpm_counters=7)}
CONFIG = CONFIGS[os.environ.get("IOGATE_HPM_CONFIG", "hpm32")]

V, R, W, U, A, D = 1, 2, 4, 16, 64, 128
SV39, SV39X4 = 8 << 60, 8 << 60
DDT_ROOT = 0x100
DEV, NESTED, OTHER = 0x01_0205, 0x01_0206, 0x01_0285
GSCID, PSCID, OTHER_PSCID = 0x2A, 7, 8
G_ROOT = 0x600
IOVA = 0x4040_3123
LEAF_GPPN, LEAF_SPPN = 0x12345, 0x54321
IPSR, ICVEC, CYCLES = 0x54, 0x2F8, 0x60


def ctr(x):
    return 0x68 + 8 * (x - 1)


def evt(x):
    return 0x160 + 8 * (x - 1)


def evt_value(event_id, *, dmask=0, pid_pscid=0, did_gscid=0, pv_pscv=0, dv_gscv=0, idt=0):
    return (event_id | dmask << 15 | pid_pscid << 16 | did_gscid << 36 | pv_pscv << 60
            | dv_gscv << 61 | idt << 62)


def pte(ppn, flags):
    return ppn << 10 | flags


def dc_size():
    return 64 if CONFIG.dc_extended else 32


def tables():
    """The directory, the Sv39 tables (GPA = SPA for the nested device) and the Sv39x4
    tables of the nested device, as {address: doubleword}."""
    mem = {(DDT_ROOT << 12) + 8: pte(0x110, V), 0x11_0000 + 4 * 8: pte(0x120, V),
           0x11_0000 + 5 * 8: pte(0x130, V)}
    # The extended format's DDI split differs (reference N.3.2): DDI[0] = [5:0], DDI[1]
    # = [14:6], DDI[2] = [23:15]; 0x01_0205: DDI[2] 2, DDI[1] 8, DDI[0] 5.
    if CONFIG.dc_extended:
        mem = {(DDT_ROOT << 12) + 2 * 8: pte(0x110, V), 0x11_0000 + 8 * 8: pte(0x120, V),
               0x11_0000 + 0xA * 8: pte(0x130, V)}

    def put(table, device_id, words):
        ddi0 = device_id & (0x3F if CONFIG.dc_extended else 0x7F)
        for k, word in enumerate(words):
            mem[(table << 12) + ddi0 * dc_size() + 8 * k] = word
    put(0x120, DEV, [V, 0, PSCID << 12, SV39 | 0x200])
    put(0x120, NESTED, [V, SV39X4 | GSCID << 44 | G_ROOT, PSCID << 12, SV39 | 0x200])
    put(0x130, OTHER, [V, 0, OTHER_PSCID << 12, SV39 | 0x200])
    mem.update({0x20_0008: pte(0x201, V), 0x20_1010: pte(0x202, V),
                0x20_2018: pte(LEAF_GPPN, V | R | W | U | A | D)})
    return sv39x4_map(mem, G_ROOT, ((0x200, 0x200), (0x201, 0x201), (0x202, 0x202),
                                    (LEAF_GPPN, LEAF_SPPN)), [0x700, 0x701, 0x702, 0x703])


def assert_clean(s):
    assert not s.mismatches, "\n".join(s.mismatches[:10])


async def start(dut):
    s = await open_session(dut, CONFIG)
    for addr, word in tables().items():
        s.memory.write(addr, word.to_bytes(8, "little"))
    await s.bus.awrite(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.LVL3,
                                                 ppn=DDT_ROOT))
    return s


async def hpm_write(s, offset, value, size=8):
    await s.bus.awrite(offset, size, value)


async def hpm_read(s, offset, size=8):
    """A register read checked on the bits the model predicts (``Mirror.mmio_read``: the
    rest, unknown to the model, is adopted from the RTL)."""
    await ClockCycles(s.tb.dut.clk, 4)             # counting lags the event by 2 cycles
    return await s.run(s.bus.mmio_read, offset, size)


@cocotb.test()
async def events_and_filters(dut):
    """Events 1 (with no filter, DV_GSCV, DMASK, PV_PSCV), 4, 5, 7 and 8 (with an IDT=1
    GSCID filter) over four requests: DEV, NESTED and OTHER cold, then DEV again (a hit)."""
    s = await start(dut)
    selectors = {
        1: evt_value(1),
        2: evt_value(1, dv_gscv=1, did_gscid=DEV),
        # 0x01_0207 = ...0111: DMASK ignores bits 3:0: DEV and NESTED, not OTHER.
        3: evt_value(1, dv_gscv=1, dmask=1, did_gscid=0x01_0207),
        4: evt_value(5),
        5: evt_value(7),
        6: evt_value(8),
        7: evt_value(8, idt=1, dv_gscv=1, did_gscid=GSCID),
    }
    for x, value in selectors.items():
        await hpm_write(s, evt(x), value)
        assert await hpm_read(s, evt(x)) == value
    await s.translate_all([request(DEV, IOVA, "read"), request(NESTED, IOVA, "read"),
                           request(OTHER, IOVA, "read"), request(DEV, IOVA + 8, "read")])
    got = {x: await hpm_read(s, ctr(x)) for x in selectors}
    assert got == {1: 4, 2: 2, 3: 3, 4: 9, 5: 9, 6: 12, 7: 12}, got
    # IOATC misses under PSCID 7 (IDT=1): DEV and NESTED, not OTHER (PSCID 8) nor DEV's hit;
    # PV_PSCV=1 with IDT=0: no request here carries a PASID.
    await hpm_write(s, ctr(1), 0)
    await hpm_write(s, ctr(2), 0)
    await hpm_write(s, evt(1), evt_value(4, idt=1, pv_pscv=1, pid_pscid=PSCID))
    await hpm_write(s, evt(2), evt_value(1, pv_pscv=1, pid_pscid=0))
    await s.translate_all([request(DEV, IOVA + 0x1000, "read"),
                           request(OTHER, IOVA + 0x1000, "read")])
    assert await hpm_read(s, ctr(1)) == 1
    assert await hpm_read(s, ctr(2)) == 0
    assert_clean(s)
    assert s.scoreboard.translations == 6


@cocotb.test()
async def warl_and_halves(dut):
    """Decisions 1, 3, 6, 7, 8: widths, inhibit bits of counters not built, event_id WARL,
    4-byte halves keep the other half."""
    s = await start(dut)
    await hpm_write(s, 0x5C, 0xFFFF_FFFF, 4)
    assert await hpm_read(s, 0x5C, 4) == 0xFF                     # CY and counters 1-7
    await hpm_write(s, ctr(3), (1 << 64) - 1)
    assert await hpm_read(s, ctr(3)) == (1 << 40) - 1
    await hpm_write(s, ctr(3) + 4, 0x12, 4)
    assert await hpm_read(s, ctr(3)) == 0x12_FFFF_FFFF
    await hpm_write(s, ctr(8), (1 << 64) - 1)                     # not built
    assert await hpm_read(s, ctr(8)) == 0
    await hpm_write(s, evt(2), 9)                                 # reserved: stores 0
    assert await hpm_read(s, evt(2)) == 0
    held = await hpm_read(s, CYCLES)
    assert await hpm_read(s, CYCLES) == held                      # inhibited
    await hpm_write(s, 0x5C, 0, 4)
    assert await hpm_read(s, CYCLES) > held
    assert_clean(s)


async def wrap_cycles(s):
    """iohpmcycles 100 cycles before it wraps (OF 0), then long enough for the wrap."""
    await hpm_write(s, CYCLES, (1 << 40) - 100)
    await ClockCycles(s.tb.dut.clk, 200)


@cocotb.test()
async def pmip(dut):
    """Decisions 4, 5: a wrap sets ipsr.pmip (RW1C, edge): with fctl.WSI=1 on the wire
    icvec.pmiv, with MSIs one message per 0->1 through msi_cfg_tbl[icvec.pmiv]. Cleared
    while OF is still 1 it stays 0."""
    s = await start(dut)
    await hpm_write(s, ICVEC, 6 << 8, 8)
    if CONFIG.igs.name == "WSI":
        await wrap_cycles(s)
        assert await hpm_read(s, IPSR, 4) == 0b100
        assert int(dut.wsi.value) == 1 << 6
        await hpm_write(s, IPSR, 0b100, 4)
        await ClockCycles(dut.clk, 20)
        assert await hpm_read(s, IPSR, 4) == 0
        assert int(dut.wsi.value) == 0
        assert await hpm_read(s, 0x58, 4) == 1                    # OF still 1
        assert_clean(s)
        return
    entry = Offset.MSI_CFG_TBL + 16 * 6
    await hpm_write(s, entry, 0x8000_0018)
    await hpm_write(s, entry + 8, 0x1234_5678, 4)
    await hpm_write(s, entry + 12, 0, 4)                          # M=0
    for _ in range(2):
        await wrap_cycles(s)
        assert await hpm_read(s, IPSR, 4) == 0b100
        await hpm_write(s, IPSR, 0b100, 4)
    await ClockCycles(dut.clk, 50)
    msis = [(m.address, m.data) for m in s.tb.interrupts.msis]
    assert msis == [(0x8000_0018, 0x1234_5678)] * 2, msis
    assert int(dut.wsi.value) == 0
    assert_clean(s)
