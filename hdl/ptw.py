"""The page-table walker: first stage Sv39/Sv48, second stage Sv39x4/Sv48x4, and both.

RISC-V Privileged spec, "Virtual Address Translation Process" (Sv39/Sv48, with Svnapot and
Svpbmt) and "Two-Stage Address Translation" (the x4 G-stage modes); RISC-V IOMMU spec
3.3 ("Process to translate an IOVA") steps 17 and 19 and the CAUSE/``iotval2`` rules of
the fault record (spec 4.2).

The walker is started with ``iosatp`` (first stage, Bare or a mode of ``modes``),
``iohgatp`` (second stage, Bare or a mode of ``g_modes``), the IOVA and the access. It reads
one PTE per level through its memory client and ends with a leaf or a fault:

* **first stage only** -- the IOVA is walked from ``iosatp.PPN``;
* **second stage only** (``iosatp`` Bare) -- the IOVA is a GPA, walked from
  ``iohgatp.PPN``;
* **two stages** -- the first-stage root and every non-leaf PPN are guest PPNs: before each
  first-stage PTE is read, its GPA is translated by the second stage as an *implicit* read;
  then the GPA the first-stage leaf produces is translated by the second stage for the
  original access.

What a walk checks, in the order the Privileged spec's algorithm meets it (all page-fault
conditions of one PTE give the same cause, so only the order between stages and against
the next read matters):

* a first-stage IOVA that is not canonical (bits 63:VA-1 not all equal): page fault,
  before any read;
* a GPA wider than the second-stage mode (bits 63:41 of Sv39x4, 63:50 of Sv48x4 not zero):
  guest-page fault, before the second stage reads anything for it;
* a PTE read that faults (bus error, or an address beyond ``capabilities.PAS``): access
  fault, in either stage;
* ``V=0``; ``W=1`` with ``R=0``; a reserved bit (60:54); PBMT=3, or PBMT!=0 without Svpbmt;
  ``N=1`` other than on a level-0 leaf with ``PPN[3:0]=1000`` (64 KiB Svnapot); a non-leaf
  with D, A, U, N or PBMT set; no leaf at level 0; a misaligned superpage; ``U=0`` (requests
  are User mode, and the second stage always checks as User); a leaf that does not grant
  the access (an implicit access checks R); ``A=0``; a write with ``D=0`` (no hardware A/D
  update): a page fault in the first stage, a guest-page fault in the second.

Causes follow the original access in both stages: read 5/13/21, write 7/15/23, execute
1/12/20. A guest-page fault reports ``iotval2`` = GPA[63:2] << 2, with bit 0 set when the
GPA was that of a first-stage PTE (an implicit access; bit 1 stays 0, the IOMMU never
writes PTEs).

A two-stage leaf grants the AND of both stages' permissions, maps the smaller of the two
pages, and has the first stage's PBMT unless that is PMA, then the second stage's
(Privileged spec, Svpbmt with the hypervisor extension). G-stage ``G`` bits are ignored.

Every read costs one request cycle plus the response cycle in which its PTE is judged and
the next address chosen: a walk takes its table reads plus about two cycles per level.
"""

from amaranth.hdl import Module, Signal, Const, Mux, Cat
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.formats import PTE, Cause, IohgatpMode, IosatpMode, Pbmt
from iogate.hdl.iotlb import PageSize
from iogate.hdl.mem_master import MemReadSignature
from iogate.hdl.port import Access

__all__ = ["LEVELS", "G_LEVELS", "GPA_BITS", "canonical", "gpa_fits",
           "ptw_start_layout", "ptw_result_layout",
           "page_fault_cause", "guest_page_fault_cause", "access_fault_cause",
           "PageTableWalker"]

#: Levels of each first-stage mode (Privileged spec: Sv39 has 3, Sv48 has 4).
LEVELS = {IosatpMode.SV39: 3, IosatpMode.SV48: 4}
#: Levels of each second-stage mode (Privileged spec: Sv39x4 and Sv48x4 as Sv39 and Sv48).
G_LEVELS = {IohgatpMode.SV39X4: 3, IohgatpMode.SV48X4: 4}
#: GPA width of each second-stage mode: the VA width plus 2 (Privileged spec, Sv39x4).
GPA_BITS = {IohgatpMode.SV39X4: 41, IohgatpMode.SV48X4: 50}

_SIZE_OF_LEVEL = {0: PageSize.SIZE_4K, 1: PageSize.SIZE_2M, 2: PageSize.SIZE_1G,
                  3: PageSize.SIZE_512G}


class Stage(enum.Enum, shape=1):
    """Which stage's table the walker is reading."""
    FIRST = 0
    SECOND = 1


def canonical(iova, mode):
    """The IOVA is canonical for ``mode``: bits 63 down to the top VA bit all equal it.

    ``mode`` is a Python :class:`IosatpMode` (the walker is elaborated per mode).
    """
    top = 12 + 9 * LEVELS[mode] - 1
    upper = iova[top:64]
    return (upper == 0) | (upper == (1 << (64 - top)) - 1)


def gpa_fits(gpa, g_mode):
    """The GPA is narrow enough for second-stage mode ``g_mode`` (a Python
    :class:`IohgatpMode`): bits 63 down to ``GPA_BITS`` are zero (Privileged spec, Sv39x4)."""
    return gpa[GPA_BITS[g_mode]:64] == 0


def page_fault_cause(access):
    """The page-fault CAUSE of ``access`` (an expression): 13, 15 or 12 (spec 4.2, CAUSE table)."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_PAGE_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_PAGE_FAULT, Cause.READ_PAGE_FAULT))


def guest_page_fault_cause(access):
    """The guest-page-fault CAUSE of ``access`` (an expression): 21, 23 or 20 (spec 4.2)."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_GUEST_PAGE_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_GUEST_PAGE_FAULT,
                   Cause.READ_GUEST_PAGE_FAULT))


def access_fault_cause(access):
    """The access-fault CAUSE of ``access`` (an expression): 5, 7 or 1 (spec 4.2, CAUSE table)."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_ACCESS_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_ACCESS_FAULT, Cause.READ_ACCESS_FAULT))


def ptw_start_layout():
    """A walk to do: ``iosatp`` (``mode``, ``root_ppn``), ``iohgatp`` (``g_mode``,
    ``g_root``), the IOVA and the access. Either stage may be Bare, not both."""
    return data.StructLayout({
        "root_ppn": 44, "iova": 64, "access": Access, "mode": IosatpMode,
        "g_root": 44, "g_mode": IohgatpMode,
    })


def ptw_result_layout():
    """The end of a walk.

    On success ``ppn`` is the 4 KiB physical page holding the IOVA, ``r``/``w``/``x`` the
    permissions of both stages together (``w`` is W&D), ``g`` is set when a first-stage PTE
    of the walk was global, ``size`` is the page both stages map linearly and ``pbmt`` the
    combined memory type. ``partial`` says that page is smaller than the first-stage leaf
    it lies in (a two-stage walk with a smaller second-stage leaf): an invalidation of any
    address of that first-stage leaf concerns it. On a fault only ``fault``, ``cause`` and
    ``iotval2`` (guest-page faults, spec 4.2) are non-zero.
    """
    return data.StructLayout({
        "fault": 1, "cause": Cause, "ppn": 44, "r": 1, "w": 1, "x": 1, "pbmt": Pbmt,
        "g": 1, "size": PageSize, "partial": 1, "iotval2": 64,
    })


class PageTableWalker(wiring.Component):
    """Walks first-stage, second-stage or two-stage page tables for one request at a time.

    Parameters
    ----------
    pas : int
        Physical address size (``capabilities.PAS``); PTE addresses at or above
        ``2**pas`` are access faults without a bus read.
    svpbmt : bool
        Whether PBMT values 1 and 2 are legal (``capabilities.Svpbmt``).
    modes : tuple of IosatpMode
        The first-stage modes this walker walks (Sv39 and/or Sv48).
    g_modes : tuple of IohgatpMode
        The second-stage modes this walker walks (Sv39x4 and/or Sv48x4); empty for an
        IOMMU without a second stage, which then elaborates none of its logic.

    A start with a mode not offered, or with both stages Bare, is a page fault (the
    device-context checks and the pipeline keep it from happening).

    Members
    -------
    start : ``In(stream.Signature(ptw_start_layout()))``
        A walk to do; accepted only when the walker is idle.
    result : ``Out(stream.Signature(ptw_result_layout()))``
        The walk's outcome, held until taken.
    mem : ``Out(MemReadSignature(pas))``
        The memory client that reads PTEs of both stages.
    busy : ``Out(1)``
        A walk is in progress (from acceptance of ``start`` until ``result`` is taken).

    Raises
    ------
    ValueError
        If ``pas`` is out of range, ``modes`` is empty or holds an unsupported mode, or
        ``g_modes`` holds an unsupported mode.
    """

    def __init__(self, *, pas, svpbmt, modes=(IosatpMode.SV39,), g_modes=()):
        try:
            if not isinstance(pas, int) or not 32 <= pas <= 56:
                raise ValueError(f"pas must be an integer between 32 and 56, not {pas!r}")
            modes = tuple(IosatpMode(mode) for mode in modes)
            if not modes or any(mode not in LEVELS for mode in modes):
                raise ValueError(f"modes must be a non-empty subset of "
                                 f"{tuple(m.name for m in LEVELS)}, not {modes!r}")
            g_modes = tuple(IohgatpMode(mode) for mode in g_modes)
            if any(mode not in G_LEVELS for mode in g_modes):
                raise ValueError(f"g_modes must be a subset of "
                                 f"{tuple(m.name for m in G_LEVELS)}, not {g_modes!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        self._svpbmt = bool(svpbmt)
        self._modes = modes
        self._g_modes = g_modes
        super().__init__({
            "start": In(stream.Signature(ptw_start_layout())),
            "result": Out(stream.Signature(ptw_result_layout())),
            "mem": Out(MemReadSignature(pas)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        two_stage = bool(self._g_modes)
        s_levels = max(LEVELS[mode] for mode in self._modes)
        g_levels = max((G_LEVELS[mode] for mode in self._g_modes), default=1)
        max_levels = max(s_levels, g_levels)

        iova = Signal(64)
        access = Signal(Access)
        res = Signal(ptw_result_layout())
        m.d.comb += self.result.payload.eq(res)

        # First stage: the table being read (a guest PPN under a second stage) and level.
        s_a = Signal(44)
        s_level = Signal(range(s_levels))
        g_seen = Signal()

        # Second stage: the GPA being translated (a first-stage PTE's address when
        # `implicit`, else the final GPA), the table being read and its level.
        stage = Signal(Stage)
        g_on = Signal()
        s_on = Signal()          # the first stage is not Bare
        g_mode = Signal(IohgatpMode)
        g_root = Signal(44)
        g_top = Signal(range(g_levels))
        g_level = Signal(range(g_levels))
        g_a = Signal(44)
        gpa = Signal(64)
        implicit = Signal()
        s_pte_ppn = Signal(44)   # the system page holding the first-stage PTE at `gpa`

        if two_stage:
            in_second = stage == Stage.SECOND
            level = Signal(range(max_levels))
            m.d.comb += level.eq(Mux(in_second, g_level, s_level))
            va = Mux(in_second, gpa, iova)      # the address whose page the PTE maps
        else:
            in_second = Const(0, 1)
            level = s_level
            va = iova

        def s_vpn(lvl):
            """VPN[lvl] of the IOVA (9 bits) for a Python level ``lvl``."""
            return iova[12 + 9 * lvl:21 + 9 * lvl]

        # --- The address of the next read.
        pte_addr = Signal(56)
        vpn_i = Signal(9)
        with m.Switch(s_level):
            for i in range(s_levels):
                with m.Case(i):
                    m.d.comb += vpn_i.eq(s_vpn(i))
        s_pte_gpa = Cat(Const(0, 3), vpn_i, s_a)      # a[+VPN[i]*8] of the Privileged walk
        if two_stage:
            # The second stage's root is 16 KiB: its index is VPN[top] plus 2 GPA bits
            # (Privileged spec, Sv39x4/Sv48x4). The root is 16 KiB aligned (a DC check,
            # spec 3.1.4), so the index can be ORed into the table address.
            g_index = Signal(11)
            with m.Switch(g_level):
                for i in range(g_levels):
                    with m.Case(i):
                        m.d.comb += g_index.eq(Cat(gpa[12 + 9 * i:21 + 9 * i],
                                                   Mux(g_level == g_top,
                                                       gpa[21 + 9 * i:23 + 9 * i], 0)))
            g_pte_addr = Cat(Const(0, 3), g_index[:9], g_a[:2] | g_index[9:], g_a[2:])
            with m.If(in_second):
                m.d.comb += pte_addr.eq(g_pte_addr)
            with m.Elif(g_on):
                m.d.comb += pte_addr.eq(Cat(gpa[:12], s_pte_ppn))
            with m.Else():
                m.d.comb += pte_addr.eq(s_pte_gpa)
        else:
            m.d.comb += pte_addr.eq(s_pte_gpa)
        beyond_pas = Const(0, 1) if self._pas == 56 else (pte_addr[self._pas:] != 0)
        m.d.comb += self.mem.req.payload.addr.eq(pte_addr[:self._pas])

        gpa_wide = Const(0, 1)
        for mode in self._g_modes:
            gpa_wide = gpa_wide | ((g_mode == mode) & ~gpa_fits(gpa, mode))

        # --- Judging the PTE just read (the same logic serves both stages).
        pte = data.View(PTE, self.mem.resp.payload.data)
        leaf = pte.r | pte.x
        pbmt_bad = (pte.pbmt == Pbmt.RSVD) | ((pte.pbmt != Pbmt.PMA) if not self._svpbmt
                                              else Const(0, 1))
        reserved = (pte.as_value()[54:61] != 0) | pbmt_bad
        invalid = ~pte.v | (~pte.r & pte.w) | reserved
        nonleaf_bad = pte.d | pte.a | pte.u | pte.n | (pte.pbmt != Pbmt.PMA)

        # A superpage leaf at level i must have PPN[i-1:0] (9*i bits) zero.
        misaligned = Signal()
        with m.Switch(level):
            for i in range(1, max_levels):
                with m.Case(i):
                    m.d.comb += misaligned.eq(pte.ppn[:9 * i] != 0)
        # Svnapot: N=1 is only defined on a level-0 leaf, with PPN[3:0]=1000 (64 KiB).
        napot_ok = ~pte.n | ((level == 0) & (pte.ppn[:4] == 0b1000))
        # An implicit access (reading a first-stage PTE) is checked as a read by the
        # second stage, while any fault is reported for the original access.
        check = Signal(Access)
        m.d.comb += check.eq(Mux(in_second & implicit, Access.READ, access))
        allowed = Mux(check == Access.EXECUTE, pte.x,
                      Mux(check == Access.WRITE, pte.w & pte.d, pte.r))
        leaf_ok = napot_ok & ~misaligned & pte.u & pte.a & allowed

        # The 4 KiB page inside the leaf's page: low PPN bits come from the address.
        leaf_ppn = Signal(44)
        leaf_size = Signal(PageSize)
        m.d.comb += leaf_ppn.eq(pte.ppn)
        with m.Switch(level):
            with m.Case(0):
                with m.If(pte.n):
                    m.d.comb += [leaf_ppn[:4].eq(va[12:16]), leaf_size.eq(PageSize.SIZE_64K)]
                with m.Else():
                    m.d.comb += leaf_size.eq(PageSize.SIZE_4K)
            for i in range(1, max_levels):
                with m.Case(i):
                    m.d.comb += [leaf_ppn[:9 * i].eq(va[12:12 + 9 * i]),
                                 leaf_size.eq(_SIZE_OF_LEVEL[i])]

        # --- Outcomes.
        def fault(cause, iotval2=0):
            # A fault carries no translation fields: they are zeroed at the start, but a
            # two-stage walk may fault in the second stage after its first-stage leaf.
            clear = [res.eq(0)] if two_stage else []
            return [*clear, res.fault.eq(1), res.cause.eq(cause), res.iotval2.eq(iotval2)]

        # iotval2 of a guest-page fault: GPA[63:2], and bit 0 for an implicit access.
        guest_fault = fault(guest_page_fault_cause(access),
                            Cat(implicit, Const(0, 1), gpa[2:]))
        stage_fault = fault(page_fault_cause(access))

        def start_second(address, is_implicit):
            """Statements: translate GPA ``address`` with the second stage next."""
            return [stage.eq(Stage.SECOND), gpa.eq(address), implicit.eq(is_implicit),
                    g_level.eq(g_top), g_a.eq(g_root)]

        def second_stage_pte():
            """The response-cycle statements for a second-stage PTE."""
            with m.If(invalid):
                m.d.sync += guest_fault
                m.next = "DONE"
            with m.Elif(~leaf):
                with m.If(nonleaf_bad | (g_level == 0)):
                    m.d.sync += guest_fault
                    m.next = "DONE"
                with m.Else():
                    # G-stage G bits are ignored (Privileged spec, two-stage translation).
                    m.d.sync += [g_a.eq(pte.ppn), g_level.eq(g_level - 1)]
            with m.Elif(~leaf_ok):
                m.d.sync += guest_fault
                m.next = "DONE"
            with m.Elif(implicit):
                # The first-stage PTE's system address is known: read it.
                m.d.sync += [s_pte_ppn.eq(leaf_ppn), stage.eq(Stage.FIRST)]
            with m.Else():
                # The final GPA: combine both stages. The first stage's PBMT wins unless
                # it is PMA (Privileged spec, Svpbmt: a non-zero VS-stage PBMT overrides
                # the G-stage's); the pair maps the smaller page linearly.
                smaller = leaf_size.as_value() < res.size.as_value()
                m.d.sync += [
                    res.ppn.eq(leaf_ppn),
                    res.r.eq(res.r & pte.r), res.w.eq(res.w & pte.w & pte.d),
                    res.x.eq(res.x & pte.x),
                    res.pbmt.eq(Mux(res.pbmt != Pbmt.PMA, res.pbmt, pte.pbmt)),
                    res.size.eq(Mux(smaller, leaf_size, res.size)),
                    res.partial.eq(s_on & smaller),
                ]
                m.next = "DONE"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    p = self.start.payload
                    m.d.sync += [
                        iova.eq(p.iova), access.eq(p.access), s_a.eq(p.root_ppn),
                        g_seen.eq(0), stage.eq(Stage.FIRST), implicit.eq(0), res.eq(0),
                    ]
                    if two_stage:
                        # A first-stage-Bare walk keeps all-ones permissions and the
                        # largest size for the second stage to narrow down.
                        m.d.sync += [res.r.eq(1), res.w.eq(1), res.x.eq(1),
                                     res.size.eq(PageSize.SIZE_512G)]
                    m.next = "READ"
                    s_known = Const(0, 1)
                    for mode in self._modes:
                        s_known = s_known | (p.mode == mode)
                    g_known = Const(0, 1)
                    for mode in self._g_modes:
                        g_known = g_known | (p.g_mode == mode)
                    if two_stage:
                        top = Signal(range(g_levels))
                        for mode in self._g_modes:
                            with m.If(p.g_mode == mode):
                                m.d.comb += top.eq(G_LEVELS[mode] - 1)
                        m.d.sync += [g_on.eq(g_known), s_on.eq(s_known),
                                     g_mode.eq(p.g_mode), g_root.eq(p.g_root),
                                     g_top.eq(top)]
                    for mode in self._modes:
                        with m.If(p.mode == mode):
                            top_level = LEVELS[mode] - 1
                            m.d.sync += s_level.eq(top_level)
                            with m.If(~canonical(p.iova, mode)):
                                m.d.sync += fault(page_fault_cause(p.access))
                                m.next = "DONE"
                            if two_stage:
                                # The root table's PTE address is a GPA: implicit access.
                                root_pte = Cat(Const(0, 3),
                                               p.iova[12 + 9 * top_level:21 + 9 * top_level],
                                               p.root_ppn)
                                with m.Elif(g_known):
                                    m.d.sync += [stage.eq(Stage.SECOND), gpa.eq(root_pte),
                                                 implicit.eq(1), g_level.eq(top),
                                                 g_a.eq(p.g_root)]
                    if two_stage:
                        # First stage Bare: the IOVA is the GPA.
                        with m.If((p.mode == IosatpMode.BARE) & g_known):
                            m.d.sync += [stage.eq(Stage.SECOND), gpa.eq(p.iova),
                                         implicit.eq(0), g_level.eq(top), g_a.eq(p.g_root)]
                        ok = (s_known | (p.mode == IosatpMode.BARE)) \
                            & (g_known | (p.g_mode == IohgatpMode.BARE)) \
                            & (s_known | g_known)
                    else:
                        ok = s_known & (p.g_mode == IohgatpMode.BARE)
                    with m.If(~ok):
                        m.d.sync += fault(page_fault_cause(p.access))
                        m.next = "DONE"
            with m.State("READ"):
                # A GPA too wide for the second stage faults before it reads anything.
                with m.If(in_second & gpa_wide):
                    m.d.sync += guest_fault
                    m.next = "DONE"
                with m.Elif(beyond_pas):
                    m.d.sync += fault(access_fault_cause(access))
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(1)
                    with m.If(self.mem.req.ready):
                        m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.mem.resp.ready.eq(1)
                with m.If(self.mem.resp.valid):
                    m.next = "READ"
                    with m.If(self.mem.resp.payload.err):
                        m.d.sync += fault(access_fault_cause(access))
                        m.next = "DONE"
                    if two_stage:
                        with m.Elif(in_second):
                            second_stage_pte()
                    with m.Elif(invalid):
                        m.d.sync += stage_fault
                        m.next = "DONE"
                    with m.Elif(~leaf):
                        with m.If(nonleaf_bad | (s_level == 0)):
                            m.d.sync += stage_fault
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [s_a.eq(pte.ppn), s_level.eq(s_level - 1),
                                         g_seen.eq(g_seen | pte.g)]
                            if two_stage:
                                # The next PTE's address is a GPA: translate it first.
                                next_vpn = Signal(9)
                                with m.Switch(s_level):
                                    for i in range(1, s_levels):
                                        with m.Case(i):
                                            m.d.comb += next_vpn.eq(s_vpn(i - 1))
                                with m.If(g_on):
                                    m.d.sync += start_second(
                                        Cat(Const(0, 3), next_vpn, pte.ppn), 1)
                    with m.Elif(~leaf_ok):
                        m.d.sync += stage_fault
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += [
                            res.ppn.eq(leaf_ppn), res.size.eq(leaf_size),
                            res.r.eq(pte.r), res.w.eq(pte.w & pte.d), res.x.eq(pte.x),
                            res.pbmt.eq(pte.pbmt), res.g.eq(g_seen | pte.g),
                        ]
                        if two_stage:
                            # The leaf gives a GPA: the second stage translates it next.
                            with m.If(g_on):
                                m.d.sync += start_second(Cat(iova[:12], leaf_ppn), 0)
                            with m.Else():
                                m.next = "DONE"
                        else:
                            m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        m.d.comb += self.busy.eq(~self.start.ready)
        return m
