"""iogate.boards.uart: 8N1 framing, bit timing, and the receiver's error cases.

Expected waveforms are the 8N1 frame worked by hand: the line idles high, a start bit (0),
the eight data bits least significant first, a stop bit (1), each ``divisor`` cycles.
"""

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from iogate.boards.uart import UARTReceiver, UARTTransmitter, divisor_for


def _bits_of(byte):
    """The ten line levels of one 8N1 frame."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


def test_frame_of_0xa5_by_hand():
    # 0xA5 = 0b1010_0101: LSB first 1,0,1,0,0,1,0,1.
    assert _bits_of(0xA5) == [0, 1, 0, 1, 0, 0, 1, 0, 1, 1]


def test_transmitter_waveform():
    dut = UARTTransmitter(4)
    levels = []

    async def tb(ctx):
        assert ctx.get(dut.tx) == 1                  # idle high
        ctx.set(dut.stream.payload, 0xA5)
        ctx.set(dut.stream.valid, 1)
        await ctx.tick().until(dut.stream.ready)
        ctx.set(dut.stream.valid, 0)
        for _ in range(44):
            levels.append(ctx.get(dut.tx))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    expected = [b for b in [0, 1, 0, 1, 0, 0, 1, 0, 1, 1] for _ in range(4)] + [1] * 4
    assert levels == expected


def test_transmitter_back_to_back():
    """The next byte starts right after the stop bit; ``ready`` only between frames."""
    dut = UARTTransmitter(5)
    levels = []

    async def feeder(ctx):
        for byte in (0x00, 0xFF):
            ctx.set(dut.stream.payload, byte)
            ctx.set(dut.stream.valid, 1)
            await ctx.tick().until(dut.stream.ready)
        ctx.set(dut.stream.valid, 0)

    async def sampler(ctx):
        for _ in range(120):
            levels.append(ctx.get(dut.tx))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feeder)
    sim.add_testbench(sampler)
    sim.run()
    frame_00 = [0] * 9 + [1]          # start, eight 0s, stop
    frame_ff = [0] + [1] * 9          # start, eight 1s, stop
    start = levels.index(0)
    assert levels[:start] == [1] * start
    assert levels[start:start + 100] == [b for b in frame_00 + frame_ff for _ in range(5)]
    assert levels[start + 100:] == [1] * (20 - start)


async def _drive(ctx, dut, levels, bit_cycles):
    """Put each level on ``rx`` for ``bit_cycles`` cycles."""
    for level in levels:
        ctx.set(dut.rx, level)
        await ctx.tick().repeat(bit_cycles)


def _receive(divisor, line, *, bit_cycles=None, ready=True, cycles=None):
    """Drive ``line`` (levels, each ``bit_cycles`` long) into a receiver; returns
    (bytes received, overrun pulses, frame-error pulses)."""
    dut = UARTReceiver(divisor)
    bit_cycles = bit_cycles or divisor
    got, overruns, frame_errors = [], [], []

    async def driver(ctx):
        ctx.set(dut.rx, 1)
        for _ in range(3):
            await ctx.tick()
        await _drive(ctx, dut, line, bit_cycles)
        ctx.set(dut.rx, 1)

    async def monitor(ctx):
        ctx.set(dut.stream.ready, int(ready))
        for _ in range(cycles or (len(line) + 4) * bit_cycles + 20):
            _, _, valid, payload, overrun, frame_error = await ctx.tick().sample(
                dut.stream.valid, dut.stream.payload, dut.overrun, dut.frame_error)
            if valid and ready:
                got.append(payload)
            overruns.append(overrun)
            frame_errors.append(frame_error)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    return got, sum(overruns), sum(frame_errors)


@pytest.mark.parametrize("divisor", [4, 5, 12, 104])
def test_receiver_bytes(divisor):
    line = _bits_of(0xA5) + _bits_of(0x00) + [1, 1] + _bits_of(0xFF) + _bits_of(0x3C)
    got, overruns, frame_errors = _receive(divisor, line)
    assert got == [0xA5, 0x00, 0xFF, 0x3C]
    assert (overruns, frame_errors) == (0, 0)


@pytest.mark.parametrize("bit_cycles", [101, 107])
def test_receiver_tolerates_a_few_percent(bit_cycles):
    """Sampling mid-bit: a sender 3% fast or slow (104 +- 3) still reads right."""
    line = _bits_of(0x5A) + _bits_of(0x81)
    got, _, _ = _receive(104, line, bit_cycles=bit_cycles)
    assert got == [0x5A, 0x81]


def test_receiver_frame_error_on_a_low_stop_bit():
    # 0x55 with its stop bit 0, then the line stays low a while (a break), then 0x42.
    line = _bits_of(0x55)[:-1] + [0, 0, 0, 1] + _bits_of(0x42)
    got, overruns, frame_errors = _receive(8, line)
    assert got == [0x42]
    assert frame_errors == 1 and overruns == 0


def test_receiver_ignores_a_glitch():
    """A low pulse shorter than half a bit is not a start bit."""
    dut_divisor = 16
    dut = UARTReceiver(dut_divisor)
    received = []

    async def driver(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(3)                    # under half of 16
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(40)
        await _drive(ctx, dut, _bits_of(0x99), dut_divisor)
        ctx.set(dut.rx, 1)

    async def monitor(ctx):
        ctx.set(dut.stream.ready, 1)
        for _ in range(400):
            _, _, valid, payload = await ctx.tick().sample(dut.stream.valid,
                                                           dut.stream.payload)
            if valid:
                received.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    assert received == [0x99]


def test_receiver_overrun_keeps_the_first_byte():
    dut = UARTReceiver(4)
    seen = {}

    async def tb(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        overruns = 0
        for byte in (0x11, 0x22):
            for level in _bits_of(byte):
                ctx.set(dut.rx, level)
                for _ in range(4):
                    _, _, overrun = await ctx.tick().sample(dut.overrun)
                    overruns += overrun
        ctx.set(dut.rx, 1)
        for _ in range(8):
            _, _, overrun = await ctx.tick().sample(dut.overrun)
            overruns += overrun
        seen["overruns"] = overruns
        seen["valid"] = ctx.get(dut.stream.valid)
        seen["payload"] = ctx.get(dut.stream.payload)
        ctx.set(dut.stream.ready, 1)
        await ctx.tick()
        seen["after"] = ctx.get(dut.stream.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen == {"overruns": 1, "valid": 1, "payload": 0x11, "after": 0}


def test_loopback_every_byte():
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(4)
    m.submodules.rx = rx = UARTReceiver(4)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def sender(ctx):
        for byte in range(256):
            ctx.set(tx.stream.payload, byte)
            ctx.set(tx.stream.valid, 1)
            await ctx.tick().until(tx.stream.ready)
        ctx.set(tx.stream.valid, 0)

    async def receiver(ctx):
        ctx.set(rx.stream.ready, 1)
        while len(got) < 256:
            _, _, valid, payload = await ctx.tick().sample(rx.stream.valid,
                                                           rx.stream.payload)
            if valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(sender)
    sim.add_testbench(receiver)
    sim.run_until(256 * 44 * 1e-6 + 1e-3)
    assert got == list(range(256))


@pytest.mark.parametrize("clk_hz, baud, divisor", [
    (12_000_000, 1_000_000, 12),       # exact
    (12_000_000, 115_200, 104),        # 115,384.6 baud: 0.16% fast
    (12_000_000, 3_000_000, 4),        # the fastest the receiver takes
    (50_000_000, 1_000_000, 50),
])
def test_divisor_for(clk_hz, baud, divisor):
    assert divisor_for(clk_hz, baud) == divisor


def test_divisor_for_refuses():
    with pytest.raises(ValueError, match=r"^6000000 baud is too fast for a 12 MHz clock$"):
        divisor_for(12_000_000, 6_000_000)
    # 10 MHz / 1.5 Mbaud = 6.67 -> 7 -> 1.4286 Mbaud, 4.8% slow.
    with pytest.raises(ValueError, match=r"^1500000 baud from a 10 MHz clock is 4\.8% off$"):
        divisor_for(10_000_000, 1_500_000)


@pytest.mark.parametrize("cls", [UARTReceiver, UARTTransmitter])
def test_constructor_checks(cls):
    with pytest.raises(TypeError, match=r"^divisor must be an integer, not 4\.0$"):
        cls(4.0)
    with pytest.raises(ValueError, match=r"^divisor must be at least 4, not 3$"):
        cls(3)
