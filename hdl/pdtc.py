"""The process-context cache: valid, checked process contexts tagged by (device_id, process_id).

RISC-V IOMMU spec "Caching in-memory data structures" and "IOMMU directory cache invalidation
commands" (reference N.1.7):

* only PCs that passed every check are cached (invalid entries are never cached, so setting
  ``V`` 0->1 needs no invalidation);
* IODIR.INVAL_PDT (DV=1, DID, PID) invalidates the one leaf PC cached for (DID, PID);
* IODIR.INVAL_DDT invalidates the PCs of its device (DV=1) or all of them (DV=0): a DC and
  "all its PDT entries" (libiommu lacked the PDT part before commit 6bbf921).

Non-leaf PDTEs are not cached: a walk reads them again, so a changed PDTE is seen at the next
walk whatever software sends.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.ddt import ddtc_inval_layout
from iogate.hdl.formats import PC

__all__ = ["pdtc_fill_layout", "pdtc_inval_layout", "ProcessContextCache"]


def pdtc_fill_layout():
    return data.StructLayout({"device_id": 24, "pid": 20, "pc": PC})


def pdtc_inval_layout():
    """IODIR.INVAL_PDT: the one (``device_id``, ``pid``)."""
    return data.StructLayout({"device_id": 24, "pid": 20})


class ProcessContextCache(wiring.Component):
    """A fully associative cache of process contexts, tagged by (device_id, process_id).

    Parameters
    ----------
    entries : int
        Number of cached process contexts (``Config.pdtc_entries``).
    pid_bits : int
        process_id bits kept in each tag (``Config.process_id_bits``, 20 by default). The
        upper bits of a process_id need no storage: a process_id wider than the deepest
        built ``pdtp.MODE`` indexes is refused before its PC is used (spec "Process to
        translate an IOVA" step 7c) and an IODIR.INVAL_PDT with such a PID is an illegal
        command (spec "IOMMU directory cache invalidation commands"), so no lookup,
        fill or invalidation that matters has them set.

    Members
    -------
    lookup_device_id : ``In(24)``
    lookup_pid : ``In(20)``
        Only its low ``pid_bits`` are compared (as those of ``fill`` and ``pdt_inval``).
    lookup_hit : ``Out(1)``
        Combinational, in the same cycle.
    lookup_pc : ``Out(PC)``
        The cached PC (zero on a miss).
    fill : ``In(stream.Signature(pdtc_fill_layout()))``
        A PC that passed every check. Always ready; it replaces any entry of the same tag,
        else a free entry, else the next in round-robin order. Dropped when an invalidation
        happens in the same cycle.
    pdt_inval : ``In(stream.Signature(pdtc_inval_layout()))``
        IODIR.INVAL_PDT. Always ready.
    ddt_inval : ``In(stream.Signature(ddtc_inval_layout()))``
        IODIR.INVAL_DDT. Always ready.

    Raises
    ------
    ValueError
        If ``entries`` is not a positive integer or ``pid_bits`` not between 1 and 20.
    """

    def __init__(self, entries, pid_bits=20):
        try:
            if not isinstance(entries, int) or isinstance(entries, bool) or entries < 1:
                raise ValueError(f"entries must be a positive integer, not {entries!r}")
            if (not isinstance(pid_bits, int) or isinstance(pid_bits, bool)
                    or not 1 <= pid_bits <= 20):
                raise ValueError(f"pid_bits must be between 1 and 20, not {pid_bits!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self.entries = entries
        self.pid_bits = pid_bits
        super().__init__({
            "lookup_device_id": In(24),
            "lookup_pid": In(20),
            "lookup_hit": Out(1),
            "lookup_pc": Out(PC),
            "fill": In(stream.Signature(pdtc_fill_layout())),
            "pdt_inval": In(stream.Signature(pdtc_inval_layout())),
            "ddt_inval": In(stream.Signature(ddtc_inval_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.entries
        valid = Signal(n)
        dids = [Signal(24, name=f"did{i}") for i in range(n)]
        pb = self.pid_bits
        pids = [Signal(pb, name=f"pid{i}") for i in range(n)]
        pcs = [Signal(PC, name=f"pc{i}") for i in range(n)]
        rr = Signal(range(max(n, 2)))

        match = Signal(n)
        for i in range(n):
            m.d.comb += match[i].eq(valid[i] & (dids[i] == self.lookup_device_id)
                                    & (pids[i] == self.lookup_pid[:pb]))
        # At most one entry matches (a fill replaces an entry of the same tag): an AND-OR.
        acc = Const(0, PC.size)
        for i in range(n):
            acc = acc | (match[i].replicate(PC.size) & pcs[i].as_value())
        m.d.comb += [self.lookup_hit.eq(match.any()), self.lookup_pc.eq(acc),
                     self.fill.ready.eq(1), self.pdt_inval.ready.eq(1),
                     self.ddt_inval.ready.eq(1)]

        f, pdt, ddt = self.fill.payload, self.pdt_inval.payload, self.ddt_inval.payload
        with m.If(self.ddt_inval.valid | self.pdt_inval.valid):
            for i in range(n):
                with m.If((self.ddt_inval.valid & (ddt.all | (dids[i] == ddt.device_id)))
                          | (self.pdt_inval.valid & (dids[i] == pdt.device_id)
                             & (pids[i] == pdt.pid[:pb]))):
                    m.d.sync += valid[i].eq(0)
        with m.Elif(self.fill.valid):
            same = Signal(n)
            for i in range(n):
                m.d.comb += same[i].eq(valid[i] & (dids[i] == f.device_id)
                                       & (pids[i] == f.pid[:pb]))
            slot = Signal(range(max(n, 2)))
            m.d.comb += slot.eq(rr)
            for i in reversed(range(n)):
                with m.If(~valid[i]):
                    m.d.comb += slot.eq(i)
            for i in range(n):
                with m.If(same[i]):
                    m.d.comb += slot.eq(i)
            for i in range(n):
                with m.If(slot == i):
                    m.d.sync += [valid[i].eq(1), dids[i].eq(f.device_id), pids[i].eq(f.pid[:pb]),
                                 pcs[i].eq(f.pc)]
            with m.If(~same.any() & valid.all()):
                m.d.sync += rr.eq(Mux(rr == n - 1, 0, rr + 1))
        return m
