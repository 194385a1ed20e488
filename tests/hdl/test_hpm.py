"""iogate.hdl.hpm: the performance-monitor registers, counters, filters and overflow.

Expected values come from the spec ("Hardware performance monitor", reference N.7) and the
decisions of issue 17 (HPM), with offsets and bit positions written as the spec's numbers:
iocountovf 0x58 (CY 0, bit X = iohpmevtX.OF), iocountinh 0x5C (CY 0, bit X inhibits
iohpmctrX), iohpmcycles 0x60 (counter 62:0, OF 63), iohpmctrX 0x68 + 8(X-1), iohpmevtX
0x160 + 8(X-1) (eventID 14:0, DMASK 15, PID_PSCID 35:16, DID_GSCID 59:36, PV_PSCV 60,
DV_GSCV 61, IDT 62, OF 63); ipsr 0x54 (pmip bit 2), icvec 0x2F8 (pmiv 11:8).

Most tests drive :class:`Hpm` alone (its write strobes and event bundle), so that the cycle
of a write and of an event is exact; the last ones go through the register file's bus.
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config
from iogate.hdl.hpm import Hpm
from iogate.hdl.regfile import RegFile

from test_regfile import BUSES, M64, Bus

OVF, INH, CYCLES, IPSR, ICVEC = 0x58, 0x5C, 0x60, 0x54, 0x2F8
M32 = (1 << 32) - 1


def ctr(x):
    return 0x68 + 8 * (x - 1)


def evt(x):
    return 0x160 + 8 * (x - 1)


def evt_value(event_id, *, dmask=0, pid_pscid=0, did_gscid=0, pv_pscv=0, dv_gscv=0, idt=0,
              of=0):
    return (event_id | dmask << 15 | pid_pscid << 16 | did_gscid << 36 | pv_pscv << 60
            | dv_gscv << 61 | idt << 62 | of << 63)


#: Event IDs (spec table "Standard events") and the bundle field each is signalled on.
KINDS = {1: "untranslated_req", 4: "ioatc_miss", 5: "ddt_walk", 6: "pdt_walk",
         7: "s1_walk", 8: "s2_walk"}


class Harness:
    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut

    async def write(self, offset, value, halves=("lo", "hi")):
        """A write of the register at ``offset``: a 4-byte one at offset 4 mod 8 is the high
        half of its word; an 8-byte one both halves, or only those in ``halves``."""
        ctx, dut = self.ctx, self.dut
        if offset % 8:
            value, halves = value << 32, ("hi",)
        ctx.set(dut.write_index, offset // 8 - 11)
        ctx.set(dut.write_data, value)
        ctx.set(dut.write_lo, "lo" in halves)
        ctx.set(dut.write_hi, "hi" in halves)
        await ctx.tick()
        ctx.set(dut.write_lo, 0)
        ctx.set(dut.write_hi, 0)

    def read(self, offset):
        word = self.ctx.get(self.dut.words[offset // 8 - 11])
        return (word >> 32) & M32 if offset % 8 else (word if offset >= CYCLES else word & M32)

    def identity(self, source="lookup", **fields):
        ident = getattr(self.dut.events, source)
        for name in ("device_id", "pv", "pid", "gv", "gscid", "pscv", "pscid"):
            self.ctx.set(getattr(ident, name), fields.get(name, 0))

    async def fire(self, *names, times=1):
        """``times`` cycles with the events ``names``, then long enough for them to count."""
        for name in names:
            self.ctx.set(getattr(self.dut.events, name), 1)
        await self.ctx.tick().repeat(times)
        for name in names:
            self.ctx.set(getattr(self.dut.events, name), 0)
        await self.ctx.tick().repeat(3)


def run(body, **config):
    cfg = Config.hpm().replace(**config) if config else Config.hpm()
    dut = Hpm(cfg)
    done = []

    async def testbench(ctx):
        await body(Harness(ctx, dut), cfg)
        done.append(True)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert done


def test_reset_values():
    """Decision 2: every HPM register resets to 0; iohpmcycles runs from reset (decision 9)."""
    async def body(h, cfg):
        await h.ctx.tick().repeat(5)
        assert h.read(OVF) == 0 and h.read(INH) == 0
        for x in range(1, 32):
            assert h.read(ctr(x)) == 0 and h.read(evt(x)) == 0
        assert h.read(CYCLES) == 5
    run(body)


@pytest.mark.parametrize("width", [32, 40, 63, 64])
def test_warl_widths(width):
    """Decision 3: iohpmctrX keeps hpm_counter_width bits, iohpmcycles min(width, 63) and
    its OF; iocountinh bits of counters not built read 0 (decision 1)."""
    async def body(h, cfg):
        await h.write(INH, M32)
        assert h.read(INH) == (1 << 8) - 1                    # CY and counters 1-7
        await h.write(ctr(1), M64)
        assert h.read(ctr(1)) == (1 << width) - 1
        await h.write(CYCLES, M64)
        assert h.read(CYCLES) == (1 << 63) | ((1 << min(width, 63)) - 1)
    run(body, hpm_counter_width=width)


def test_counters_above_n_read_0():
    """Decision 1: counters and selectors above N read 0 and ignore writes; so do their
    iocountinh and iocountovf bits."""
    async def body(h, cfg):
        for x in (3, 4, 31):
            await h.write(ctr(x), M64)
            await h.write(evt(x), evt_value(1, of=1))
        assert h.read(ctr(3)) == (1 << 40) - 1
        assert h.read(evt(3)) == evt_value(1, of=1)
        for x in (4, 31):
            assert h.read(ctr(x)) == 0 and h.read(evt(x)) == 0
        assert h.read(OVF) == 1 << 3
        await h.write(INH, M32)
        assert h.read(INH) == 0b1111
    run(body, hpm_counters=3)


def test_inhibit_bit_x_is_counter_x():
    """Decision 6, reference N.9 P5: iocountinh bit X stops iohpmctrX (not X+1), CY stops
    iohpmcycles; an inhibited counter keeps its value and can be written."""
    async def body(h, cfg):
        for x in (1, 2, 3):
            await h.write(evt(x), evt_value(1))
        await h.write(INH, 1 << 2 | 1)
        await h.fire("untranslated_req", times=5)
        assert [h.read(ctr(x)) for x in (1, 2, 3)] == [5, 0, 5]
        held = h.read(CYCLES)
        await h.ctx.tick().repeat(4)
        assert h.read(CYCLES) == held
        await h.write(ctr(2), 77)
        await h.fire("untranslated_req")
        assert h.read(ctr(2)) == 77
    run(body)


def test_wrap_sets_of_and_pmip_once():
    """Decision 4: a wrap by counting sets OF and, OF being 0, gives pmip once; with OF
    already 1 a wrap gives none. The counter keeps counting."""
    async def body(h, cfg):
        await h.write(evt(1), evt_value(1))
        await h.write(ctr(1), (1 << 40) - 2)
        seen = 0
        for _ in range(2):
            h.ctx.set(h.dut.events.untranslated_req, 1)
            await h.ctx.tick()
            h.ctx.set(h.dut.events.untranslated_req, 0)
            for _ in range(3):
                seen += h.ctx.get(h.dut.pmip)
                await h.ctx.tick()
        assert h.read(ctr(1)) == 0
        assert h.read(evt(1)) >> 63 == 1 and h.read(OVF) == 1 << 1
        assert seen == 1
        await h.fire("untranslated_req", times=3)
        assert h.read(ctr(1)) == 3
        # OF still 1: another wrap gives no pmip.
        await h.write(ctr(1), (1 << 40) - 1)
        h.ctx.set(h.dut.events.untranslated_req, 1)
        await h.ctx.tick()
        h.ctx.set(h.dut.events.untranslated_req, 0)
        for _ in range(4):
            assert not h.ctx.get(h.dut.pmip)
            await h.ctx.tick()
        assert h.read(ctr(1)) == 0
    run(body)


def test_cycles_wrap():
    """Decision 4 for iohpmcycles: it wraps at its width, sets its OF (iocountovf bit 0) and
    gives pmip once."""
    async def body(h, cfg):
        await h.write(CYCLES, (1 << 40) - 3)
        seen = 0
        for _ in range(10):
            seen += h.ctx.get(h.dut.pmip)
            await h.ctx.tick()
        assert seen == 1
        assert h.read(OVF) == 1 and h.read(CYCLES) >> 63 == 1
        assert 0 < h.read(CYCLES) & ((1 << 63) - 1) < 10
    run(body)


def test_software_of_gives_no_pmip():
    """Decision 4 (reference N.7, 20260222 clarification): software writing OF=1 does not
    raise pmip; iocountovf shows it."""
    async def body(h, cfg):
        await h.write(evt(2), evt_value(0, of=1))
        await h.write(CYCLES, 1 << 63)
        for _ in range(4):
            assert not h.ctx.get(h.dut.pmip)
            await h.ctx.tick()
        assert h.read(OVF) == 1 << 2 | 1
    run(body)


def test_write_wins():
    """Decision 7: a write in a cycle in which the counter also counts wins: the value
    written is the value read next. A half write keeps the other half."""
    async def body(h, cfg):
        await h.write(evt(1), evt_value(5))
        h.ctx.set(h.dut.events.ddt_walk, 1)                  # an event every cycle
        await h.ctx.tick().repeat(4)
        assert h.read(ctr(1)) == 2                           # counted two cycles late
        await h.write(ctr(1), 1000)
        assert h.read(ctr(1)) == 1000
        await h.ctx.tick()
        assert h.read(ctr(1)) == 1001
        await h.write(ctr(1), 0xAB << 32, halves=("hi",))
        assert h.read(ctr(1)) == 0xAB << 32 | 1001
        await h.write(CYCLES, 5 << 32 | 7)
        assert h.read(CYCLES) == 5 << 32 | 7
        await h.write(CYCLES, 9, halves=("lo",))
        assert h.read(CYCLES) == 5 << 32 | 9
    run(body)


@pytest.mark.parametrize("written, kept", [
    (0, 0), (1, 1), (2, 2), (3, 3), (8, 8), (9, 0), (16383, 0), (16384, 0), (32767, 0),
])
def test_event_id_warl(written, kept):
    """Decision 8: event IDs 0-8 are kept, 9-32767 (reserved, custom) store 0; the other
    fields are kept as written; changing eventID keeps the counter's value."""
    async def body(h, cfg):
        await h.write(ctr(1), 100)
        others = evt_value(0, dmask=1, pid_pscid=0xABCDE, did_gscid=0x123456, pv_pscv=1,
                           dv_gscv=1, idt=1)
        await h.write(evt(1), others | written)
        assert h.read(evt(1)) == others | kept
        await h.write(evt(1), 0)
        assert h.read(ctr(1)) == 100
    run(body)


def test_events_2_and_3_never_count():
    """Decision 10: Translated and ATS Translation requests never count (no ATS)."""
    async def body(h, cfg):
        await h.write(evt(1), evt_value(2))
        await h.write(evt(2), evt_value(3))
        await h.fire(*KINDS.values(), times=4)
        assert h.read(ctr(1)) == 0 and h.read(ctr(2)) == 0
    run(body)


@pytest.mark.parametrize("event_id", sorted(KINDS))
def test_each_event_counts_its_kind(event_id):
    async def body(h, cfg):
        await h.write(evt(1), evt_value(event_id))
        for kind in KINDS.values():
            if kind != KINDS[event_id]:
                await h.fire(kind, times=2)
        assert h.read(ctr(1)) == 0
        await h.fire(KINDS[event_id], times=3)
        assert h.read(ctr(1)) == 3
    run(body)


# Rows of the spec's table "iohpmevt filtering" (reference N.7) and decision 11: the
# selector's fields, the event, the request's identity, and whether it counts.
FILTERS = [
    # x, DV_GSCV=0, PV_PSCV=0: always.
    (dict(), 1, dict(device_id=0x55), True),
    (dict(idt=1), 4, dict(), True),
    # IDT=0, device_id.
    (dict(dv_gscv=1, did_gscid=0x123), 1, dict(device_id=0x123), True),
    (dict(dv_gscv=1, did_gscid=0x123), 1, dict(device_id=0x124), False),
    (dict(dv_gscv=1, did_gscid=0x123), 5, dict(device_id=0x123), True),
    # DMASK: ...yyy011 ignores bits 2:0 (up to and including the lowest 0).
    (dict(dv_gscv=1, dmask=1, did_gscid=0x12B), 1, dict(device_id=0x12C), True),
    (dict(dv_gscv=1, dmask=1, did_gscid=0x12B), 1, dict(device_id=0x128), True),
    (dict(dv_gscv=1, dmask=1, did_gscid=0x12B), 1, dict(device_id=0x130), False),
    (dict(dv_gscv=1, dmask=0, did_gscid=0x12B), 1, dict(device_id=0x12C), False),
    (dict(dv_gscv=1, dmask=1, did_gscid=0x0FF), 1, dict(device_id=0x1AB), True),
    (dict(dv_gscv=1, dmask=1, did_gscid=0x0FF), 1, dict(device_id=0x2AB), False),
    (dict(dv_gscv=1, dmask=1, did_gscid=0x12A), 1, dict(device_id=0x12B), True),
    (dict(dv_gscv=1, dmask=1, did_gscid=0x12A), 1, dict(device_id=0x12C), False),
    # IDT=0, process_id: needs one (N.10: a request without one does not count).
    (dict(pv_pscv=1, pid_pscid=5), 1, dict(pv=1, pid=5), True),
    (dict(pv_pscv=1, pid_pscid=5), 1, dict(pv=1, pid=6), False),
    (dict(pv_pscv=1, pid_pscid=5), 1, dict(pv=0, pid=5), False),
    (dict(pv_pscv=1, pid_pscid=0), 6, dict(pv=0, pid=0), False),
    # IDT=0, both.
    (dict(dv_gscv=1, pv_pscv=1, did_gscid=9, pid_pscid=5), 1, dict(device_id=9, pv=1, pid=5),
     True),
    (dict(dv_gscv=1, pv_pscv=1, did_gscid=9, pid_pscid=5), 1, dict(device_id=8, pv=1, pid=5),
     False),
    (dict(dv_gscv=1, pv_pscv=1, did_gscid=9, pid_pscid=5), 1, dict(device_id=9, pv=1, pid=4),
     False),
    # IDT=1 on an event that does not allow it: no count, whatever the filter.
    (dict(idt=1), 1, dict(), False),
    (dict(idt=1), 5, dict(), False),
    (dict(idt=1), 6, dict(), False),
    (dict(idt=1, dv_gscv=1, did_gscid=3), 1, dict(device_id=3, gv=1, gscid=3), False),
    # IDT=1, GSCID: needs iohgatp not Bare; DID_GSCID[23:16] ignored.
    (dict(idt=1, dv_gscv=1, did_gscid=0xAB0042), 4, dict(gv=1, gscid=0x42), True),
    (dict(idt=1, dv_gscv=1, did_gscid=0x42), 4, dict(gv=0, gscid=0x42), False),
    (dict(idt=1, dv_gscv=1, did_gscid=0x42), 4, dict(gv=1, gscid=0x43), False),
    (dict(idt=1, dv_gscv=1, did_gscid=0x42), 4, dict(gv=1, gscid=0x42, device_id=7), True),
    # DMASK on the 16 bits: 0x41 ignores bits 1:0.
    (dict(idt=1, dv_gscv=1, dmask=1, did_gscid=0x41), 4, dict(gv=1, gscid=0x43), True),
    (dict(idt=1, dv_gscv=1, dmask=1, did_gscid=0x41), 4, dict(gv=1, gscid=0x44), False),
    (dict(idt=1, dv_gscv=1, dmask=1, did_gscid=0xFFFF), 4, dict(gv=1, gscid=0x1234), True),
    # IDT=1, PSCID: needs a first stage.
    (dict(idt=1, pv_pscv=1, pid_pscid=7), 4, dict(pscv=1, pscid=7), True),
    (dict(idt=1, pv_pscv=1, pid_pscid=7), 4, dict(pscv=0, pscid=7), False),
    (dict(idt=1, pv_pscv=1, pid_pscid=7), 4, dict(pscv=1, pscid=8), False),
    (dict(idt=1, pv_pscv=1, pid_pscid=7), 4, dict(pscv=1, pscid=8, pv=1, pid=7), False),
    # IDT=1, both.
    (dict(idt=1, dv_gscv=1, pv_pscv=1, did_gscid=2, pid_pscid=7), 7,
     dict(gv=1, gscid=2, pscv=1, pscid=7), True),
    (dict(idt=1, dv_gscv=1, pv_pscv=1, did_gscid=2, pid_pscid=7), 8,
     dict(gv=1, gscid=2, pscv=0, pscid=7), False),
    (dict(idt=1, dv_gscv=1, pv_pscv=1, did_gscid=2, pid_pscid=7), 8,
     dict(gv=0, gscid=2, pscv=1, pscid=7), False),
]


@pytest.mark.parametrize("fields, event_id, ident, counts", FILTERS)
def test_filter(fields, event_id, ident, counts):
    """Spec table "iohpmevt filtering", decision 11 of issue 17 (HPM). Walk events (7, 8) are
    filtered on the walker's identity, the others on the lookup stage's; the other source
    carries an identity that would not match."""
    source = "walk" if event_id in (7, 8) else "lookup"
    other = "lookup" if source == "walk" else "walk"

    async def body(h, cfg):
        await h.write(evt(1), evt_value(event_id, **fields))
        h.identity(source, **ident)
        h.identity(other, device_id=0xFFFFFF, pid=0xFFFFF, gscid=0xFFFF, pscid=0xFFFFF)
        await h.fire(KINDS[event_id], times=2)
        assert h.read(ctr(1)) == (2 if counts else 0)
    run(body)


def test_two_sources_in_one_cycle():
    """An event of the lookup stage and one of the walker in one cycle count each with its
    own identity (decision 11) in their own counters."""
    async def body(h, cfg):
        await h.write(evt(1), evt_value(1, dv_gscv=1, did_gscid=1))
        await h.write(evt(2), evt_value(7, dv_gscv=1, did_gscid=2))
        await h.write(evt(3), evt_value(7, dv_gscv=1, did_gscid=1))
        h.identity("lookup", device_id=1)
        h.identity("walk", device_id=2)
        await h.fire("untranslated_req", "s1_walk", times=3)
        assert [h.read(ctr(x)) for x in (1, 2, 3)] == [3, 3, 0]
    run(body)


def test_constructor_checks():
    with pytest.raises(TypeError):
        Hpm(object())
    with pytest.raises(ValueError, match="hpm_counters of 1 or more, not 0"):
        Hpm(Config())


# --- Through the register file's bus.

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
def test_no_hpm_reads_0(dw):
    """Decision 1: with hpm_counters=0 every offset 0x58..0x257 reads 0 and ignores writes."""
    async def body(ctx, dut, bus):
        for offset in range(0x58, 0x258, 8):
            await bus.write32(offset, M32)
            await bus.write32(offset + 4, M32)
        for offset in range(0x58, 0x258, 8):
            assert await bus.read64(offset) == 0, hex(offset)
        assert await bus.read32(IPSR) == 0
    run_regfile(Config(mmio_data_width=dw), body)


@pytest.mark.parametrize("dw", BUSES)
def test_bus_halves(dw):
    """Decision 7: 8-byte registers are written whole (64-bit bus) or as 4-byte halves (a
    32-bit bus splits them); a half keeps the other half; an 8-byte write over iocountovf and
    iocountinh spans two registers and changes nothing."""
    async def body(ctx, dut, bus):
        await bus.write32(INH, M32)
        await bus.write64(ctr(1), 0x12_3456_789A)
        assert await bus.read64(ctr(1)) == 0x12_3456_789A
        await bus.write32(ctr(1) + 4, 0x34)
        assert await bus.read64(ctr(1)) == 0x34_3456_789A
        await bus.write32(ctr(1), 0x1)
        assert await bus.read64(ctr(1)) == 0x34_0000_0001
        value = evt_value(8, pid_pscid=0xABCDE, did_gscid=0x654321, idt=1, dv_gscv=1)
        await bus.write64(evt(7), value)
        assert await bus.read64(evt(7)) == value
        assert await bus.read32(INH) == 0xFF
        if dw == 64:
            await bus._write(OVF, 0, 0xFF)
            assert await bus.read32(INH) == 0xFF
        await bus.write32(INH, 0)
        assert await bus.read32(INH) == 0
    run_regfile(Config.hpm().replace(mmio_data_width=dw), body)


def test_pmip_rw1c_edge_and_wire():
    """Decisions 4 and 5: a wrap sets ipsr.pmip, which drives wire icvec.pmiv with WSI; it is
    RW1C and, cleared while OF is still 1, is not set again."""
    async def body(ctx, dut, bus):
        await bus.write32(ICVEC, 5 << 8)                    # pmiv = 5
        await bus.write64(CYCLES, (1 << 40) - 30)
        await ctx.tick().repeat(40)
        assert await bus.read32(IPSR) == 0b100
        assert ctx.get(dut.wsi) == 1 << 5
        assert await bus.read32(OVF) == 1
        await bus.write32(IPSR, 0b100)
        await ctx.tick().repeat(5)
        assert await bus.read32(IPSR) == 0
        assert ctx.get(dut.wsi) == 0
        assert await bus.read32(OVF) == 1
    run_regfile(Config(hpm_counters=1), body)
