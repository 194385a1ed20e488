"""iogate.boards.bridge: every request of iogate.boards.protocol, against a register page, the
on-chip memory and the DMA requester.

The register page is a testbench model that logs each AXI4-Lite transaction; the expected
logs follow the AXI spec (a 4-byte access on a 64-bit bus uses the lanes of its address,
A3.4.3) and the bridge's documented order for 8-byte accesses over 32 bits (high word
first on a write, low word first on a read). Expected reply frames are written out byte by
byte from the protocol's layouts.
"""

import collections

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from iogate.hdl.axi import Resp

from iogate.boards.bridge import Bridge
from iogate.boards.memory import OnChipMemory
from iogate.boards.protocol import Op, Status, decode_reply, encode_request, reply_bytes
from iogate.boards.requester import Requester

RAM_BASE = 0x8000_0000
RAM_SIZE = 64 * 1024
CLK_HZ = 12_000_000
LATENCY = 3          # the fake translation port answers 3 cycles after taking a request


class Harness:
    """A bridge wired to a real OnChipMemory and Requester; MMIO and the translation
    port are testbench models."""

    def __init__(self, mmio_data_width=32, *, mmio_error=None):
        self.m = m = Module()
        m.submodules.bridge = self.bridge = Bridge(
            mmio_data_width=mmio_data_width, ram_base=RAM_BASE, ram_size=RAM_SIZE,
            clk_hz=CLK_HZ)
        m.submodules.memory = self.memory = OnChipMemory(base=RAM_BASE, size=RAM_SIZE,
                                                         addr_width=56)
        m.submodules.requester = self.requester = Requester(4)
        wiring.connect(m, self.bridge.mem_read, self.memory.host_read)
        wiring.connect(m, self.bridge.mem_write, self.memory.host_write)
        wiring.connect(m, self.bridge.translate, self.requester.cmd)
        m.d.comb += self.bridge.result.eq(self.requester.result)
        # The IOMMU side of the memory stays idle.
        self.width = mmio_data_width
        self.mmio_error = mmio_error or (lambda kind, addr: Resp.OKAY)
        self.regs = collections.defaultdict(int)     # by bus word address
        self.log = []
        self.requests = []
        self.replies = []

    async def _mmio(self, ctx):
        bus = self.bridge.mmio
        mask = (1 << self.width) - 1
        ctx.set(bus.awready, 1)
        ctx.set(bus.wready, 1)
        ctx.set(bus.arready, 1)
        aw = w = None
        while True:
            _, _, awvalid, awaddr, wvalid, wdata, wstrb, arvalid, araddr = \
                await ctx.tick().sample(bus.awvalid, bus.awaddr, bus.wvalid, bus.wdata,
                                        bus.wstrb, bus.arvalid, bus.araddr)
            if awvalid and aw is None:
                aw = awaddr
            if wvalid and w is None:
                w = (wdata, wstrb)
            if aw is not None and w is not None:
                ctx.set(bus.awready, 0)
                ctx.set(bus.wready, 0)
                self.log.append(("w", aw, w[0], w[1]))
                word = aw & ~(self.width // 8 - 1)
                for lane in range(self.width // 8):
                    if w[1] >> lane & 1:
                        byte = 0xFF << 8 * lane
                        self.regs[word] = (self.regs[word] & ~byte) | (w[0] & byte)
                ctx.set(bus.bresp, self.mmio_error("w", aw))
                ctx.set(bus.bvalid, 1)
                await ctx.tick().until(bus.bready)
                ctx.set(bus.bvalid, 0)
                ctx.set(bus.awready, 1)
                ctx.set(bus.wready, 1)
                aw = w = None
            if arvalid:
                ctx.set(bus.arready, 0)
                self.log.append(("r", araddr))
                word = araddr & ~(self.width // 8 - 1)
                ctx.set(bus.rdata, self.regs[word] & mask)
                ctx.set(bus.rresp, self.mmio_error("r", araddr))
                ctx.set(bus.rvalid, 1)
                await ctx.tick().until(bus.rready)
                ctx.set(bus.rvalid, 0)
                ctx.set(bus.arready, 1)

    async def _port(self, ctx):
        """Takes every request at once and answers each LATENCY cycles later, in order:
        ppn = iova >> 12 plus the device_id, r always, w for writes, pbmt 1, a hit unless
        the tag is 0 (the first of a run); an IOVA of 0xdead000 faults with cause 13."""
        req, resp = self.requester.tr.req, self.requester.tr.resp
        ctx.set(req.ready, 1)
        cycle = 0
        pending = collections.deque()
        while True:
            head = pending[0] if pending and pending[0][0] <= cycle else None
            ctx.set(resp.valid, head is not None)
            if head is not None:
                for name, value in head[1].items():
                    ctx.set(getattr(resp.payload, name), value)
            _, _, valid, payload, ready = await ctx.tick().sample(req.valid, req.payload,
                                                                  resp.ready)
            if valid:
                self.requests.append((payload.tag, payload.device_id, payload.iova,
                                      payload.access.value))
                fault = payload.iova == 0xDEAD000
                pending.append((cycle + LATENCY, dict(
                    tag=payload.tag, fault=int(fault), cause=13 if fault else 0,
                    ppn=0 if fault else (payload.iova >> 12) + payload.device_id,
                    r=int(not fault), w=int(not fault and payload.access.value == 1), x=0,
                    pbmt=0 if fault else 1, hit=int(payload.tag != 0))))
            if head is not None and ready:
                pending.popleft()
            cycle += 1

    def run(self, frames):
        """Send each ``(frame, reply length, pause)``: the frame's bytes, then ``pause``
        idle cycles, then collect a reply of that length (none if 0); :data:`ABORT` pulses
        ``abort``. Returns the replies."""
        rx, tx = self.bridge.rx, self.bridge.tx

        async def host(ctx):
            for frame, reply_len, pause_after in frames:
                if frame is None:               # a break: one cycle of ``abort``
                    ctx.set(self.bridge.abort, 1)
                    await ctx.tick()
                    ctx.set(self.bridge.abort, 0)
                    continue
                for byte in frame:
                    ctx.set(rx.payload, byte)
                    ctx.set(rx.valid, 1)
                    await ctx.tick().until(rx.ready)
                ctx.set(rx.valid, 0)
                if pause_after:
                    await ctx.tick().repeat(pause_after)
                if not reply_len:
                    continue
                ctx.set(tx.ready, 1)
                got = []
                for _ in range(5000):           # a bound, so that a hang fails
                    _, _, valid, byte = await ctx.tick().sample(tx.valid, tx.payload)
                    if valid:
                        got.append(byte)
                    if len(got) == reply_len:
                        break
                ctx.set(tx.ready, 0)
                self.replies.append(bytes(got))
            # Nothing more may come out.
            for _ in range(20):
                _, _, valid = await ctx.tick().sample(tx.valid)
                assert not valid

        sim = Simulator(self.m)
        sim.add_clock(1e-6)
        sim.add_testbench(self._mmio, background=True)
        sim.add_testbench(self._port, background=True)
        sim.add_testbench(host)
        sim.run()
        assert len(self.replies) == sum(1 for f in frames if f[1]), "the bridge hung"
        return self.replies


#: A break, for Harness.run.
ABORT = (None, 0, 0)


def req(op, **fields):
    """(request frame, reply length, pause) for Harness.run."""
    return encode_request(op, **fields), 2 + reply_bytes(op), 0


def one(op, harness=None, **fields):
    h = harness or Harness()
    frame, = h.run([req(op, **fields)])
    return decode_reply(op, frame), h


# -- IDENT and framing ---------------------------------------------------------------------

def test_ident_frame_by_hand():
    frame, = Harness().run([req(Op.IDENT)])
    # op 01, status 00, "iogt", version 1, ram_base 0x80000000, log2(64 KiB) = 16,
    # 12,000,000 = 0x00B71B00, all little-endian.
    assert frame == bytes([0x01, 0x00, 0x69, 0x6F, 0x67, 0x74, 0x01,
                           0x00, 0x00, 0x00, 0x80, 0x10, 0x00, 0x1B, 0xB7, 0x00])


def test_noise_before_a_request_is_ignored():
    h = Harness()
    replies = h.run([(bytes([0x00, 0xFF, 0x80]), 0, 0), req(Op.IDENT)])
    assert decode_reply(Op.IDENT, replies[0])[0] == Status.OK


def test_partial_request_dropped_on_abort():
    h = Harness()
    partial = encode_request(Op.MMIO_WRITE, offset=0x10, size=8, data=0x1234)[:5]
    replies = h.run([(partial, 0, 3), ABORT, req(Op.IDENT)])
    assert decode_reply(Op.IDENT, replies[0])[1]["magic"] == int.from_bytes(b"iogt", "little")
    assert h.log == []


# -- MMIO ----------------------------------------------------------------------------------

def test_mmio_8_byte_write_over_32_bits_high_word_first():
    (status, _), h = one(Op.MMIO_WRITE, offset=0x10, size=8, data=0x1122_3344_5566_7788)
    assert status == Status.OK
    assert h.log == [("w", 0x14, 0x1122_3344, 0xF), ("w", 0x10, 0x5566_7788, 0xF)]


def test_mmio_8_byte_read_over_32_bits_low_word_first():
    h = Harness()
    h.regs[0x20] = 0xCAFE_F00D
    h.regs[0x24] = 0x0BAD_BEEF
    (status, fields), h = one(Op.MMIO_READ, h, offset=0x20, size=8)
    assert (status, fields["data"]) == (Status.OK, 0x0BAD_BEEF_CAFE_F00D)
    assert h.log == [("r", 0x20), ("r", 0x24)]


def test_mmio_4_byte_accesses_over_32_bits():
    h = Harness()
    h.regs[0x1C] = 0xFFFF_FFFF
    replies = h.run([req(Op.MMIO_WRITE, offset=0x18, size=4, data=0xABCD_0123),
                     req(Op.MMIO_READ, offset=0x1C, size=4)])
    assert h.log == [("w", 0x18, 0xABCD_0123, 0xF), ("r", 0x1C)]
    assert decode_reply(Op.MMIO_READ, replies[1]) == (Status.OK, {"data": 0xFFFF_FFFF})


def test_mmio_over_64_bits_uses_the_address_lanes():
    h = Harness(64)
    h.regs[0x10] = 0x0123_4567_89AB_CDEF
    replies = h.run([req(Op.MMIO_WRITE, offset=0x14, size=4, data=0x5555_AAAA),
                     req(Op.MMIO_WRITE, offset=0x28, size=8, data=0x8000_0000_0000_0001),
                     req(Op.MMIO_READ, offset=0x14, size=4),
                     req(Op.MMIO_READ, offset=0x10, size=4),
                     req(Op.MMIO_READ, offset=0x28, size=8)])
    assert h.log[:2] == [("w", 0x14, 0x5555_AAAA_5555_AAAA, 0xF0),
                         ("w", 0x28, 0x8000_0000_0000_0001, 0xFF)]
    assert h.log[2:] == [("r", 0x14), ("r", 0x10), ("r", 0x28)]
    data = [decode_reply(Op.MMIO_READ, r)[1]["data"] for r in replies[2:]]
    assert data == [0x5555_AAAA, 0x89AB_CDEF, 0x8000_0000_0000_0001]


def test_mmio_bus_errors_are_reported():
    def error(kind, addr):
        return {("r", 0x40): Resp.SLVERR, ("w", 0x48): Resp.DECERR}.get((kind, addr),
                                                                           Resp.OKAY)
    h = Harness(mmio_error=error)
    h.regs[0x40] = 0x1234
    replies = h.run([req(Op.MMIO_READ, offset=0x40, size=4),
                     req(Op.MMIO_WRITE, offset=0x48, size=4, data=1),
                     req(Op.MMIO_READ, offset=0x44, size=4)])
    # The reply's payload is zero unless OK: the slave's data is not passed on.
    assert replies[0] == bytes([Op.MMIO_READ.value, Status.SLVERR.value]) + bytes(8)
    assert replies[1] == bytes([Op.MMIO_WRITE.value, Status.DECERR.value])
    assert decode_reply(Op.MMIO_READ, replies[2])[0] == Status.OK


@pytest.mark.parametrize("offset, size", [(0x10, 2), (0x10, 16), (0x14, 8), (0x12, 4),
                                          (0x1000, 4)])
def test_mmio_bad_arguments_touch_nothing(offset, size):
    h = Harness()
    replies = h.run([req(Op.MMIO_READ, offset=offset, size=size),
                     req(Op.MMIO_WRITE, offset=offset, size=size, data=7)])
    ops = (Op.MMIO_READ, Op.MMIO_WRITE)
    assert [decode_reply(o, r)[0] for o, r in zip(ops, replies, strict=False)] \
        == [Status.BAD_ARGUMENT] * 2
    assert h.log == []


# -- on-chip memory ------------------------------------------------------------------------

def test_memory_write_strobes_fill_and_read_back():
    h = Harness()
    a = RAM_BASE + 0x100
    replies = h.run([
        req(Op.MEM_FILL, addr=a, data=0x1111_2222_3333_4444, count=4),
        req(Op.MEM_WRITE, addr=a + 8, data=0xAAAA_BBBB_CCCC_DDDD, strb=0b0000_1111),
        req(Op.MEM_FILL, addr=a + 16, data=0xFFFF, count=0),          # nothing
        *[req(Op.MEM_READ, addr=a + 8 * i) for i in range(5)],
    ])
    assert [decode_reply(Op.MEM_FILL, replies[i])[0] for i in (0, 2)] == [Status.OK] * 2
    assert decode_reply(Op.MEM_WRITE, replies[1])[0] == Status.OK
    data = [decode_reply(Op.MEM_READ, r)[1]["data"] for r in replies[3:]]
    assert data == [0x1111_2222_3333_4444, 0x1111_2222_CCCC_DDDD, 0x1111_2222_3333_4444,
                    0x1111_2222_3333_4444, 0]


def test_memory_outside_the_ram_is_decerr_and_misaligned_is_refused():
    h = Harness()
    replies = h.run([
        req(Op.MEM_READ, addr=RAM_BASE - 8),
        req(Op.MEM_WRITE, addr=RAM_BASE + RAM_SIZE, data=1, strb=0xFF),
        req(Op.MEM_READ, addr=RAM_BASE ^ (1 << 30)),     # every high bit must match
        req(Op.MEM_READ, addr=RAM_BASE + 4),
        req(Op.MEM_FILL, addr=RAM_BASE + 1, data=0, count=1),
        req(Op.MEM_READ, addr=RAM_BASE + RAM_SIZE - 8),
    ])
    ops = [Op.MEM_READ, Op.MEM_WRITE, Op.MEM_READ, Op.MEM_READ, Op.MEM_FILL, Op.MEM_READ]
    assert [decode_reply(o, r)[0] for o, r in zip(ops, replies, strict=False)] == [
        Status.DECERR, Status.DECERR, Status.DECERR, Status.BAD_ARGUMENT,
        Status.BAD_ARGUMENT, Status.OK]


# -- translation ---------------------------------------------------------------------------

def test_translate_one():
    (status, f), h = one(Op.TRANSLATE, device_id=0x2A, iova=0x1234_5678, access=1, count=1)
    assert status == Status.OK
    assert h.requests == [(0, 0x2A, 0x1234_5678, 1)]
    assert f == dict(fault=0, r=1, w=1, x=0, hit=0, pbmt=1, cause=0,
                     ppn=0x12345 + 0x2A, hits=0, cycles=LATENCY)


def test_translate_a_run_is_pipelined():
    # Four requests taken on four consecutive cycles; the last answered LATENCY cycles
    # after it was taken: 3 + 3 cycles. Three of the four are hits.
    (status, f), h = one(Op.TRANSLATE, device_id=5, iova=0x7000, access=0, count=4)
    assert status == Status.OK
    assert h.requests == [(tag, 5, 0x7000, 0) for tag in range(4)]
    assert (f["hit"], f["hits"], f["cycles"], f["w"]) == (1, 3, 3 + LATENCY, 0)


def test_translate_count_zero_is_one_and_faults_pass_through():
    (status, f), h = one(Op.TRANSLATE, device_id=1, iova=0xDEAD000, access=2, count=0)
    assert status == Status.OK and len(h.requests) == 1
    assert (f["fault"], f["cause"], f["ppn"], f["r"]) == (1, 13, 0, 0)


def test_translate_access_3_is_refused():
    (status, f), h = one(Op.TRANSLATE, device_id=1, iova=0x1000, access=3, count=1)
    assert status == Status.BAD_ARGUMENT and h.requests == []


# -- construction --------------------------------------------------------------------------

def _bridge(**changes):
    kw = dict(mmio_data_width=32, ram_base=RAM_BASE, ram_size=RAM_SIZE, clk_hz=CLK_HZ)
    kw.update(changes)
    return Bridge(**kw)


@pytest.mark.parametrize("changes, error, message", [
    (dict(mmio_data_width=16), ValueError, "mmio_data_width must be 32 or 64, not 16"),
    (dict(clk_hz=12e6), TypeError, "clk_hz must be an integer, not 12000000.0"),
    (dict(ram_base=0x8000_8000), ValueError,
     "ram_base must be a multiple of ram_size in the low 4 GiB, not 0x80008000"),
    (dict(ram_base=1 << 32), ValueError,
     "ram_base must be a multiple of ram_size in the low 4 GiB, not 0x100000000"),
    (dict(ram_size=3 * 4096), ValueError,
     "ram_size must be a power of two of at least 4096, not 12288"),
    (dict(clk_hz=1 << 32), ValueError, "clk_hz must fit in 32 bits, not 4294967296"),
])
def test_bridge_constructor_checks(changes, error, message):
    with pytest.raises(error) as info:
        _bridge(**changes)
    assert str(info.value) == message
