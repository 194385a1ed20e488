"""``EntryRam``: the data half of a small cache, read combinationally by entry index.

The IOTLB and the device-context cache compare their tags in parallel, in flip-flops, and
read the one matching entry's data. Kept in flip-flops too, that data would reach the
output through an AND-OR as wide as an entry times the number of entries. A memory with an
asynchronous read port maps to distributed RAM instead (TRELLIS_DPR16X4 on the ECP5: 16
entries of 4 bits in a slice pair), so the entries cost neither flip-flops nor the wide
AND-OR, and the answer still comes in the cycle it is asked for (RISC-V IOMMU spec
"Caching in-memory data structures" leaves the organisation of the caches to the implementation).

A single entry needs no read multiplexer at all, and the iCE40 has no distributed RAM
(Yosys would have to build it from flip-flops, or fail where every memory is asked to go
to block RAM): with ``depth`` 1 the entry is a register.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["EntryRam"]


class EntryRam(wiring.Component):
    """``depth`` entries of ``shape``, one combinational read port and one write port.

    Parameters
    ----------
    shape : shape-like
        An entry.
    depth : int
        Number of entries.

    Members
    -------
    r_addr : ``In(range(depth))``
    r_data : ``Out(shape)``
        Entry ``r_addr``, combinationally (what was written up to the last clock edge).
    w_addr : ``In(range(depth))``
    w_data : ``In(shape)``
    w_en : ``In(1)``
        Write ``w_data`` to entry ``w_addr`` at the clock edge.

    Raises
    ------
    ValueError
        If ``depth`` is not a positive integer.
    """

    def __init__(self, shape, depth):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            self._MustUse__silence = True
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self._shape = shape
        self._depth = depth
        super().__init__({
            "r_addr": In(range(depth)),
            "r_data": Out(shape),
            "w_addr": In(range(depth)),
            "w_data": In(shape),
            "w_en": In(1),
        })

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        if self._depth == 1:
            entry = Signal(self._shape)
            with m.If(self.w_en):
                m.d.sync += entry.eq(self.w_data)
            m.d.comb += self.r_data.eq(entry)
            return m
        m.submodules.mem = mem = Memory(shape=self._shape, depth=self._depth, init=[])
        rd = mem.read_port(domain="comb")
        wr = mem.write_port()
        m.d.comb += [rd.addr.eq(self.r_addr), self.r_data.eq(rd.data),
                     wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]
        return m
