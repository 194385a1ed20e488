"""The first-stage page-table walker (Sv39, with Svnapot and Svpbmt).

RISC-V Privileged spec, "Virtual Address Translation Process" (Sv39/Sv48 are the same walk
with 3 or 4 levels), with the Svnapot and Svpbmt rules; RISC-V IOMMU spec 3.3 ("Process to translate an IOVA") step 17 (the
first stage of an IOVA translation when ``iohgatp`` is Bare) and the cause table of 3.2.

The walker is started with the root PPN (``iosatp.PPN``), the IOVA and the access; it reads
one PTE per level through its memory client and ends with either a leaf or a fault:

* a non-canonical IOVA (bits 63:VA of Sv39 not all equal to bit 38) is a page fault before
  any read;
* a PTE read that faults (a bus error, or an address beyond ``capabilities.PAS``) is an
  access fault;
* ``V=0``; ``W=1`` with ``R=0``; a reserved bit (60:54); a PBMT without Svpbmt or PBMT=3;
  ``N=1`` other than on a level-0 leaf with ``PPN[3:0]=1000`` (64 KiB Svnapot); a non-leaf
  with D, A, U, N or PBMT set; no leaf after level 0; a misaligned superpage; U=0 (the
  requests are User mode); A=0; a write with D=0 (no hardware A/D update); or a leaf that
  does not grant the access: a page fault.

All page-fault conditions of one PTE raise the same cause, so only the order against the
access fault of the next read matters: a PTE is judged completely before the next one is
read. Causes follow the access: read 5/13, write 7/15, execute 1/12.
"""

from amaranth.hdl import Module, Signal, Const, Mux, Cat
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .formats import PTE, Cause, IosatpMode, Pbmt
from .iotlb import PageSize
from .mem_master import MemReadSignature
from .port import Access

__all__ = ["LEVELS", "canonical", "ptw_start_layout", "ptw_result_layout",
           "page_fault_cause", "access_fault_cause", "PageTableWalker"]

#: Levels of each first-stage mode (Privileged spec: Sv39 has 3, Sv48 has 4).
LEVELS = {IosatpMode.SV39: 3, IosatpMode.SV48: 4}


def canonical(iova, mode):
    """The IOVA is canonical for ``mode``: bits 63 down to the top VA bit all equal it.

    ``mode`` is a Python :class:`IosatpMode` (the walker is elaborated per mode).
    """
    top = 12 + 9 * LEVELS[mode] - 1
    upper = iova[top:64]
    return (upper == 0) | (upper == (1 << (64 - top)) - 1)


def page_fault_cause(access):
    """The page-fault CAUSE of ``access`` (an expression): 13, 15 or 12 (spec 4.2, CAUSE table)."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_PAGE_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_PAGE_FAULT, Cause.READ_PAGE_FAULT))


def access_fault_cause(access):
    """The access-fault CAUSE of ``access`` (an expression): 5, 7 or 1 (spec 4.2, CAUSE table)."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_ACCESS_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_ACCESS_FAULT, Cause.READ_ACCESS_FAULT))


def ptw_start_layout():
    return data.StructLayout({
        "root_ppn": 44, "iova": 64, "access": Access, "mode": IosatpMode,
    })


def ptw_result_layout():
    """The end of a walk. On success ``ppn`` is the 4 KiB page holding the IOVA, ``w`` is
    W&D, ``g`` is set when any PTE of the walk was global, ``size`` is the leaf's page."""
    return data.StructLayout({
        "fault": 1, "cause": Cause, "ppn": 44, "r": 1, "w": 1, "x": 1, "pbmt": Pbmt,
        "g": 1, "size": PageSize,
    })


class PageTableWalker(wiring.Component):
    """Walks a first-stage page table for one request at a time.

    Parameters
    ----------
    pas : int
        Physical address size (``capabilities.PAS``); PTE addresses at or above
        ``2**pas`` are access faults without a bus read.
    svpbmt : bool
        Whether PBMT values 1 and 2 are legal (``capabilities.Svpbmt``).
    modes : tuple of IosatpMode
        The first-stage modes this walker walks (Sv39 and/or Sv48). A start with another
        mode is a page fault (the device-context checks keep it from happening).

    Members
    -------
    start : ``In(stream.Signature(ptw_start_layout()))``
        A walk to do; accepted only when the walker is idle.
    result : ``Out(stream.Signature(ptw_result_layout()))``
        The walk's outcome, held until taken.
    mem : ``Out(MemReadSignature(pas))``
        The memory client that reads PTEs.
    busy : ``Out(1)``
        A walk is in progress (from acceptance of ``start`` until ``result`` is taken).

    Raises
    ------
    ValueError
        If ``pas`` is out of range or ``modes`` is empty or holds an unsupported mode.
    """

    def __init__(self, *, pas, svpbmt, modes=(IosatpMode.SV39,)):
        try:
            if not isinstance(pas, int) or not 32 <= pas <= 56:
                raise ValueError(f"pas must be an integer between 32 and 56, not {pas!r}")
            modes = tuple(IosatpMode(mode) for mode in modes)
            if not modes or any(mode not in LEVELS for mode in modes):
                raise ValueError(f"modes must be a non-empty subset of "
                                 f"{tuple(m.name for m in LEVELS)}, not {modes!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        self._svpbmt = bool(svpbmt)
        self._modes = modes
        super().__init__({
            "start": In(stream.Signature(ptw_start_layout())),
            "result": Out(stream.Signature(ptw_result_layout())),
            "mem": Out(MemReadSignature(pas)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        max_levels = max(LEVELS[mode] for mode in self._modes)

        iova = Signal(64)
        access = Signal(Access)
        a = Signal(44)                          # PPN of the table being read
        level = Signal(range(max_levels))
        g_seen = Signal()
        res = Signal(ptw_result_layout())

        # VPN[level] of the IOVA.
        vpn_i = Signal(9)
        with m.Switch(level):
            for i in range(max_levels):
                with m.Case(i):
                    m.d.comb += vpn_i.eq(iova[12 + 9 * i:21 + 9 * i])

        pte_addr = Signal(56)
        m.d.comb += pte_addr.eq(Cat(Const(0, 3), vpn_i, a))
        beyond_pas = Const(0, 1) if self._pas == 56 else (pte_addr[self._pas:] != 0)
        m.d.comb += self.mem.req.payload.addr.eq(pte_addr[:self._pas])

        pte = data.View(PTE, self.mem.resp.payload.data)
        leaf = pte.r | pte.x
        pbmt_bad = (pte.pbmt == Pbmt.RSVD) | ((pte.pbmt != Pbmt.PMA) if not self._svpbmt
                                              else Const(0, 1))
        reserved = (pte.as_value()[54:61] != 0) | pbmt_bad
        invalid = ~pte.v | (~pte.r & pte.w) | reserved
        nonleaf_bad = pte.d | pte.a | pte.u | pte.n | (pte.pbmt != Pbmt.PMA)

        # A superpage leaf at level i must have PPN[i-1:0] (9*i bits) zero.
        misaligned = Signal()
        napot_ok = Signal()
        with m.Switch(level):
            for i in range(1, max_levels):
                with m.Case(i):
                    m.d.comb += misaligned.eq(pte.ppn[:9 * i] != 0)
        # Svnapot: N=1 is only defined on a level-0 leaf, with PPN[3:0]=1000 (64 KiB).
        m.d.comb += napot_ok.eq(~pte.n | ((level == 0) & (pte.ppn[:4] == 0b1000)))
        allowed = Mux(access == Access.EXECUTE, pte.x,
                      Mux(access == Access.WRITE, pte.w & pte.d, pte.r))
        leaf_ok = napot_ok & ~misaligned & pte.u & pte.a & allowed

        # The 4 KiB page inside the leaf's page: low PPN bits come from the VPN.
        leaf_ppn = Signal(44)
        leaf_size = Signal(PageSize)
        m.d.comb += leaf_ppn.eq(pte.ppn)
        with m.Switch(level):
            with m.Case(0):
                with m.If(pte.n):
                    m.d.comb += [leaf_ppn[:4].eq(iova[12:16]), leaf_size.eq(PageSize.SIZE_64K)]
                with m.Else():
                    m.d.comb += leaf_size.eq(PageSize.SIZE_4K)
            sizes = {1: PageSize.SIZE_2M, 2: PageSize.SIZE_1G, 3: PageSize.SIZE_512G}
            for i in range(1, max_levels):
                with m.Case(i):
                    m.d.comb += [leaf_ppn[:9 * i].eq(iova[12:12 + 9 * i]),
                                 leaf_size.eq(sizes[i])]

        m.d.comb += self.result.payload.eq(res)

        def fault(cause):
            return [res.fault.eq(1), res.cause.eq(cause)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    p = self.start.payload
                    m.d.sync += [
                        iova.eq(p.iova), access.eq(p.access), a.eq(p.root_ppn),
                        g_seen.eq(0), res.eq(0),
                    ]
                    m.next = "READ"
                    known = Const(0, 1)
                    for mode in self._modes:
                        with m.If(p.mode == mode):
                            m.d.sync += level.eq(LEVELS[mode] - 1)
                            with m.If(~canonical(p.iova, mode)):
                                m.d.sync += [res.fault.eq(1),
                                             res.cause.eq(page_fault_cause(p.access))]
                                m.next = "DONE"
                        known = known | (p.mode == mode)
                    with m.If(~known):
                        m.d.sync += [res.fault.eq(1), res.cause.eq(page_fault_cause(p.access))]
                        m.next = "DONE"
            with m.State("READ"):
                with m.If(beyond_pas):
                    m.d.sync += fault(access_fault_cause(access))
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(1)
                    with m.If(self.mem.req.ready):
                        m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.mem.resp.ready.eq(1)
                with m.If(self.mem.resp.valid):
                    m.next = "DONE"
                    with m.If(self.mem.resp.payload.err):
                        m.d.sync += fault(access_fault_cause(access))
                    with m.Elif(invalid):
                        m.d.sync += fault(page_fault_cause(access))
                    with m.Elif(~leaf):
                        with m.If(nonleaf_bad | (level == 0)):
                            m.d.sync += fault(page_fault_cause(access))
                        with m.Else():
                            m.d.sync += [a.eq(pte.ppn), level.eq(level - 1),
                                         g_seen.eq(g_seen | pte.g)]
                            m.next = "READ"
                    with m.Elif(~leaf_ok):
                        m.d.sync += fault(page_fault_cause(access))
                    with m.Else():
                        m.d.sync += [
                            res.ppn.eq(leaf_ppn), res.size.eq(leaf_size),
                            res.r.eq(pte.r), res.w.eq(pte.w & pte.d), res.x.eq(pte.x),
                            res.pbmt.eq(pte.pbmt), res.g.eq(g_seen | pte.g),
                        ]
            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        m.d.comb += self.busy.eq(~self.start.ready)
        return m

