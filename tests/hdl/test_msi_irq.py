"""iogate.hdl.msi_irq and the MSI registers of iogate.hdl.regfile (reference N.5, decision 8
of issue 16), on the Amaranth simulator.

Offsets and bits are the spec's numbers: fctl 0x008 (WSI bit 1), ipsr 0x054 (cip 0, fip 1),
icvec 0x2F8 (civ 3:0, fiv 7:4), msi_cfg_tbl 0x300 + 16x: msi_addr_x (ADDR 55:2),
msi_data_x +8, msi_vec_ctl_x +12 (M bit 0). Expected values follow the N.5 rules: one message
per 0->1 of cip/fip with fctl.WSI=0, held under M=1 and sent once on M 1->0, a 4-byte
little-endian store of the data to ADDR<<2, a faulting store reported with its address.
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config
from iogate.hdl.msi_irq import MsiIrq
from iogate.hdl.regfile import RegFile
from iogate.hdl.regs import Igs

from test_regfile import BUSES, M64, Bus, pulse

FCTL, CQCSR, FQCSR, IPSR, ICVEC, FQB = 0x008, 0x048, 0x04C, 0x054, 0x2F8, 0x028
TBL = 0x300


def run_regfile(config, body):
    dut = RegFile(config)
    done = []

    async def testbench(ctx):
        await body(ctx, dut, Bus(ctx, dut))
        done.append(True)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert done


@pytest.mark.parametrize("dw", BUSES)
def test_msi_registers_both(dw):
    """IGS=BOTH: fctl.WSI resets to 0 and is writable; the table resets to 0/0/M=1, ADDR keeps
    bits [PAS-1:2], 4-byte halves merge, data is 32 bits, vec_ctl only M; icvec keeps
    vector_bits (interrupt_vectors=4: 2 bits per field)."""
    async def body(ctx, dut, bus):
        assert await bus.read32(FCTL) == 0
        await bus.write32(FCTL, 0xFFFF_FFFF)
        assert await bus.read32(FCTL) == 0b010
        await bus.write32(FCTL, 0)
        assert await bus.read32(FCTL) == 0
        for x in range(16):
            assert await bus.read64(TBL + 16 * x) == 0
            assert await bus.read32(TBL + 16 * x + 8) == 0
            assert await bus.read32(TBL + 16 * x + 12) == 1
        await bus.write64(TBL + 16 * 7, M64)
        assert await bus.read64(TBL + 16 * 7) == (1 << 40) - 4            # PAS=40
        await bus.write32(TBL + 16 * 7 + 4, 0x12)
        await bus.write32(TBL + 16 * 7, 0x8765_4323)
        assert await bus.read64(TBL + 16 * 7) == 0x12_8765_4320
        await bus.write32(TBL + 16 * 7 + 8, 0xDEAD_BEEF)
        await bus.write32(TBL + 16 * 7 + 12, 0xFFFF_FFFE)
        assert await bus.read32(TBL + 16 * 7 + 8) == 0xDEAD_BEEF
        assert await bus.read32(TBL + 16 * 7 + 12) == 0
        assert await bus.read64(TBL + 16 * 6) == 0                        # neighbours
        assert await bus.read32(TBL + 16 * 8 + 12) == 1
        await bus.write64(ICVEC, M64)
        assert await bus.read64(ICVEC) == 0x3333
    run_regfile(Config(pas=40, igs=Igs.BOTH, interrupt_vectors=4, mmio_data_width=dw), body)


def test_msi_data_word_8byte_write_ignored():
    """msi_data_x and msi_vec_ctl_x are two 4-byte registers: an 8-byte write over both
    spans two registers and changes nothing (as for cqcsr/fqcsr)."""
    async def body(ctx, dut, bus):
        await bus.write64(TBL + 8, 0x0000_0000_1234_5678)
        assert await bus.read32(TBL + 8) == 0
        assert await bus.read32(TBL + 12) == 1
    run_regfile(Config(igs=Igs.BOTH), body)


@pytest.mark.parametrize("igs, fctl, table", [
    (Igs.MSI, 0, True), (Igs.WSI, 0b010, False)])
def test_fctl_and_table_per_igs(igs, fctl, table):
    """IGS=MSI: WSI reads 0 and is not writable; IGS=WSI: WSI reads 1 and the table is
    hardwired 0."""
    async def body(ctx, dut, bus):
        await bus.write32(FCTL, 0xFFFF_FFFF)
        assert await bus.read32(FCTL) == fctl
        await bus.write32(FCTL, 0)
        assert await bus.read32(FCTL) == fctl
        await bus.write32(TBL + 8, 0x55)
        assert await bus.read32(TBL + 8) == (0x55 if table else 0)
        assert await bus.read32(TBL + 12) == (1 if table else 0)
    run_regfile(Config(igs=igs), body)


def test_wires_off_with_msi():
    """IGS=BOTH, fctl.WSI=0: no wire follows ipsr; WSI=1: the wire of civ does; the MSI
    generator sees the ipsr bits either way."""
    async def body(ctx, dut, bus):
        await bus.write64(ICVEC, 5)
        await bus.write32(CQCSR, 0b11)
        await pulse(ctx, dut.cq.set_cmd_ill)
        await ctx.tick()
        assert await bus.read32(IPSR) == 1
        assert ctx.get(dut.wsi) == 0 and ctx.get(dut.msi.cip) == 1 and ctx.get(dut.msi.msi)
        await bus.write32(FCTL, 0b010)
        assert ctx.get(dut.wsi) == 1 << 5 and not ctx.get(dut.msi.msi)
    run_regfile(Config(igs=Igs.BOTH), body)


# --- The generator alone ----------------------------------------------------------------

class Harness:
    """Drives MsiIrq's register inputs from a table and answers its stores."""

    def __init__(self, pas=40):
        self.dut = MsiIrq(pas=pas)
        self.addr = [0x8000_0000 + 0x40 * x for x in range(16)]
        self.data = [0x100 + x for x in range(16)]
        self.masked = 0
        self.faulty = set()
        self.stores = []          # (cycle, addr, data bytes)
        self.faults = []          # (cycle, addr)
        self.cycle = 0
        self.raised = {}          # "cip"/"fip" -> cycle set

    async def tick(self, ctx, n=1):
        for _ in range(n):
            regs, mem = self.dut.regs, self.dut.mem
            index = ctx.get(regs.index)
            ctx.set(regs.addr, self.addr[index])
            ctx.set(regs.data, self.data[index])
            ctx.set(regs.masked, self.masked)
            if ctx.get(mem.req.valid):
                addr, data, strb = (ctx.get(mem.req.payload.addr), ctx.get(mem.req.payload.data),
                                    ctx.get(mem.req.payload.strb))
                lane = 4 if strb == 0xF0 else 0
                assert strb in (0x0F, 0xF0) and addr & 4 == lane and addr & 3 == 0
                self.stores.append((self.cycle, addr,
                                    (data >> (8 * lane) & 0xFFFF_FFFF).to_bytes(4, "little")))
                ctx.set(mem.req.ready, 1)
                await ctx.tick()
                self.cycle += 1
                ctx.set(mem.req.ready, 0)
                ctx.set(mem.resp.valid, 1)
                ctx.set(mem.resp.payload.err, addr in self.faulty)
                await ctx.tick()
                self.cycle += 1
                ctx.set(mem.resp.valid, 0)
                continue
            if ctx.get(self.dut.fault.valid):
                self.faults.append((self.cycle, ctx.get(self.dut.fault.payload.addr)))
                ctx.set(self.dut.fault.ready, 1)
                await ctx.tick()
                self.cycle += 1
                ctx.set(self.dut.fault.ready, 0)
                continue
            await ctx.tick()
            self.cycle += 1

    def run(self, body):
        done = []

        async def testbench(ctx):
            ctx.set(self.dut.regs.msi, 1)
            await body(ctx, self)
            done.append(True)

        sim = Simulator(self.dut)
        sim.add_clock(1e-6)
        sim.add_testbench(testbench)
        sim.run()
        assert done

    def sent(self):
        return [(a, int.from_bytes(d, "little")) for _, a, d in self.stores]


def test_edge_rule_and_latency():
    """cip 0->1: one store of data[civ] to addr[civ], little-endian; while cip stays 1 and
    again after it falls and stays 0, nothing more; a new 0->1 sends again. fip likewise to
    fiv. Prints the cycles from the ipsr bit to the store request."""
    h = Harness()

    async def body(ctx, h):
        regs = h.dut.regs
        ctx.set(regs.civ, 3)
        ctx.set(regs.fiv, 12)
        await h.tick(ctx, 4)
        assert h.stores == []
        ctx.set(regs.cip, 1)
        start = h.cycle
        await h.tick(ctx, 20)
        assert h.sent() == [(0x8000_00C0, 0x103)]
        assert h.stores[0][2] == bytes([0x03, 0x01, 0, 0])
        print(f"cycles from ipsr.cip to the MSI store request: {h.stores[0][0] - start}")
        ctx.set(regs.cip, 0)
        await h.tick(ctx, 10)
        ctx.set(regs.cip, 1)
        ctx.set(regs.fip, 1)
        await h.tick(ctx, 30)
        assert sorted(h.sent()[1:]) == [(0x8000_00C0, 0x103), (0x8000_0300, 0x10C)]
        assert h.faults == []
    h.run(body)


def test_no_message_while_wsi_and_no_late_edge():
    """A bit that rises with fctl.WSI=1 sends nothing, not even when WSI goes 0 later."""
    h = Harness()

    async def body(ctx, h):
        regs = h.dut.regs
        ctx.set(regs.msi, 0)
        ctx.set(regs.cip, 1)
        await h.tick(ctx, 10)
        ctx.set(regs.msi, 1)
        await h.tick(ctx, 10)
        assert h.stores == []
        ctx.set(regs.cip, 0)
        await h.tick(ctx, 2)
        ctx.set(regs.cip, 1)
        await h.tick(ctx, 10)
        assert len(h.stores) == 1
    h.run(body)


def test_mask_holds_one_message():
    """M=1: the edge is held (two edges give one message); M 1->0 sends it with the table's
    values then; toggling M again sends nothing."""
    h = Harness()

    async def body(ctx, h):
        regs = h.dut.regs
        ctx.set(regs.civ, 5)
        h.masked = 1 << 5
        for _ in range(2):
            ctx.set(regs.cip, 1)
            await h.tick(ctx, 5)
            ctx.set(regs.cip, 0)
            await h.tick(ctx, 5)
        assert h.stores == []
        h.data[5] = 0xABCD_0123
        h.masked = 0
        await h.tick(ctx, 10)
        assert h.sent() == [(0x8000_0140, 0xABCD_0123)]
        for m in (1, 0, 1, 0):
            h.masked = m << 5
            await h.tick(ctx, 5)
        assert len(h.stores) == 1
    h.run(body)


def test_store_fault_reported_and_no_hang():
    """A store answered with an error gives one fault report with the address (CAUSE 273 in
    the fault queue), and the generator goes on with the next message."""
    h = Harness()

    async def body(ctx, h):
        regs = h.dut.regs
        ctx.set(regs.civ, 1)
        ctx.set(regs.fiv, 2)
        h.addr[1] = 0x9000_0004                 # the upper half of a doubleword
        h.faulty.add(0x9000_0004)
        ctx.set(regs.cip, 1)
        await h.tick(ctx, 20)
        assert [a for _, a in h.faults] == [0x9000_0004]
        ctx.set(regs.fip, 1)
        await h.tick(ctx, 20)
        assert h.sent() == [(0x9000_0004, 0x101), (0x8000_0080, 0x102)]
        assert len(h.faults) == 1
    h.run(body)
