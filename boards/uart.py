"""A UART: 8 data bits, no parity, 1 stop bit (8N1), least significant bit first.

The line idles high; a frame is a start bit (0), the eight data bits and a stop bit (1), each
``divisor`` clock cycles long. The receiver synchronises the pin (it comes from another clock
domain: the host's USB-serial chip), finds the falling edge of a start bit and samples every
bit in its middle, so it tolerates a baud-rate error of a few percent either way.

Both sides are streams of bytes (``amaranth.lib.stream``), so the bridge reads and writes
them like any other stream.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTReceiver", "UARTTransmitter", "divisor_for"]

#: The fewest clock cycles per bit that still leave a middle to sample in.
MIN_DIVISOR = 4


def _check_divisor(component, divisor):
    try:
        if not isinstance(divisor, int) or isinstance(divisor, bool):
            raise TypeError(f"divisor must be an integer, not {divisor!r}")
        if divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be at least {MIN_DIVISOR}, not {divisor!r}")
    except (TypeError, ValueError):
        # A refused component is not an unused one: no UnusedElaboratable.
        component._MustUse__silence = True
        raise


def divisor_for(clk_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clk_hz``, rounded to the nearest.

    Raises
    ------
    ValueError
        If the rounding leaves a baud-rate error above 2% (the receiver samples mid-bit, so
        the two ends may differ by under half a bit over the ten bits of a frame, shared
        between them), or the divisor is below the minimum.
    """
    divisor = round(clk_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"{baud} baud is too fast for a {clk_hz / 1e6:g} MHz clock")
    error = abs(clk_hz / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"{baud} baud from a {clk_hz / 1e6:g} MHz clock is {error:.1%} off")
    return divisor


class UARTReceiver(wiring.Component):
    """Bytes from the ``rx`` pin.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    rx : ``In(1)``
        The pin (asynchronous to the clock; idles high).
    stream : ``Out(stream.Signature(8))``
        One payload per byte received. The byte waits in a register until taken; a byte that
        completes while the previous one is still waiting is dropped (``overrun``).
    overrun : ``Out(1)``
        One-cycle pulse: a byte was dropped because the last one was not taken.
    frame_error : ``Out(1)``
        One-cycle pulse: a stop bit read 0 (a break, or the wrong baud rate); the byte is
        dropped and the receiver waits for the line to go high again.

    Raises
    ------
    TypeError, ValueError
        If ``divisor`` is not an integer of at least 4.
    """

    def __init__(self, divisor):
        _check_divisor(self, divisor)
        self._divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "stream": Out(stream.Signature(8)),
            "overrun": Out(1),
            "frame_error": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(divisor))
        count = Signal(range(8))
        shreg = Signal(8)
        m.d.sync += [self.overrun.eq(0), self.frame_error.eq(0)]
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.If(self.stream.ready):
            m.d.sync += self.stream.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # Half a bit to the middle of the start bit.
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):          # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(divisor - 1), count.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(divisor - 1),
                                 count.eq(count + 1)]
                    with m.If(count == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        with m.If(self.stream.valid & ~self.stream.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.stream.payload.eq(shreg),
                                         self.stream.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """Bytes to the ``tx`` pin.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    stream : ``In(stream.Signature(8))``
        The bytes to send; each is taken when its frame starts.
    tx : ``Out(1)``
        The pin, registered (idles high).

    Raises
    ------
    TypeError, ValueError
        If ``divisor`` is not an integer of at least 4.
    """

    def __init__(self, divisor):
        _check_divisor(self, divisor)
        self._divisor = divisor
        super().__init__({
            "stream": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        timer = Signal(range(divisor))
        count = Signal(range(10))
        # Stop bit, data, start bit: shifted out from bit 0.
        shreg = Signal(10, init=1)
        m.d.comb += self.tx.eq(shreg[0])

        def take():
            m.d.comb += self.stream.ready.eq(1)
            with m.If(self.stream.valid):
                m.d.sync += [shreg.eq(Cat(0, self.stream.payload, 1)),
                             timer.eq(divisor - 1), count.eq(9)]
                m.next = "SEND"

        with m.FSM():
            with m.State("IDLE"):
                take()
            with m.State("SEND"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(count == 0):
                    # The stop bit is over: the next byte starts at once, back to back.
                    m.next = "IDLE"
                    take()
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), timer.eq(divisor - 1),
                                 count.eq(count - 1)]
        return m
