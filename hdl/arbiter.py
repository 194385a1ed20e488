"""A round-robin arbiter: which of a few requesters goes next.

The IOMMU shares three things between requesters: its memory port (walkers and queues),
its translation pipeline (the device ports and the debug interface) and, on the boards,
the RAM (the AXI channels and the host bridge). Each is shared round-robin: the first
requester *after* the one served last wins. A fixed priority would let one busy requester
starve the rest (a walker spinning on misses would block the command queue, a streaming
device the debugger); round-robin bounds every requester's wait to one turn of the others,
at the cost of a few gates for so few requesters.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RoundRobin"]


class RoundRobin(wiring.Component):
    """Round-robin arbiter over ``count`` requesters.

    ``grant`` is combinational: the first requester with its ``requests`` bit set,
    searching from the one after the requester served last. The served requester is
    recorded only when ``advance`` is high, so that while the owner of a grant is busy
    (``advance`` low) the search order stays put and no one's turn is lost.

    Parameters
    ----------
    count : int
        Number of requesters (1 to 64).
    last : int
        The requester counted as served last out of reset (``count - 1`` makes requester 0
        first).

    Members
    -------
    requests : ``In(count)``
        One bit per requester.
    advance : ``In(1)``
        The current ``grant`` is taken: it becomes the requester served last.
    grant : ``Out(range(count))``
        The requester that goes next (0 when ``valid`` is low).
    valid : ``Out(1)``
        Some requester is asking.

    Raises
    ------
    ValueError
        If ``count`` or ``last`` is out of range.
    """

    def __init__(self, count, *, last=0):
        try:
            if not isinstance(count, int) or not 1 <= count <= 64:
                raise ValueError(f"count must be an integer between 1 and 64, not {count!r}")
            if not isinstance(last, int) or not 0 <= last < count:
                raise ValueError(f"last must be an integer between 0 and {count - 1}, "
                                 f"not {last!r}")
        except ValueError:
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._count = count
        self._last = last
        super().__init__({
            "requests": In(count),
            "advance": In(1),
            "grant": Out(range(count)),
            "valid": Out(1),
        })

    @property
    def count(self):
        return self._count

    def elaborate(self, platform):
        m = Module()
        n = self._count
        last = Signal(range(n), init=self._last)
        # Nearest-last: the later If wins, so searching the farthest distance first leaves
        # the nearest requester after ``last`` in charge.
        for step in reversed(range(n)):
            for cur in range(n):
                idx = (cur + 1 + step) % n
                with m.If((last == cur) & self.requests[idx]):
                    m.d.comb += [self.grant.eq(idx), self.valid.eq(1)]
        with m.If(self.advance):
            m.d.sync += last.eq(self.grant)
        return m
