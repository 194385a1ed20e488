"""The page-table walker: first stage Sv39/Sv48/Sv57, second stage Sv39x4/Sv48x4/Sv57x4, and both.

RISC-V Privileged spec, "Virtual Address Translation Process" (Sv39/Sv48, with Svnapot and
Svpbmt), "Sv57" (five levels: the walk of Sv48 with a level more, leaves at level 4 map
256 TiB) and "Two-Stage Address Translation" (the x4 G-stage modes, Sv57x4 among them); RISC-V
IOMMU spec "Process to translate an IOVA" steps 17 and 19, whose walks take every mode
``capabilities`` offers (Sv57 in ``DC.fsc``/``PC.fsc``, Sv57x4 in ``DC.iohgatp``: spec
"Device-context fields"), and the CAUSE/``iotval2`` rules of the fault record (spec
"Fault/Event-Queue (FQ)"). Sv57 and Sv57x4 are elaborated only when ``modes``/``g_modes``
hold them: a walker without them is the 4-level one, logic for logic.

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

* a first-stage IOVA that is not canonical (bits 63:VA-1 not all equal: 63:38 of Sv39,
  63:47 of Sv48, 63:56 of Sv57): page fault, before any read;
* a GPA wider than the second-stage mode (bits 63:41 of Sv39x4, 63:50 of Sv48x4, 63:59 of
  Sv57x4 not zero): guest-page fault, before the second stage reads anything for it;
* a PTE read that faults (bus error, or an address beyond ``capabilities.PAS``): access
  fault, in either stage;
* ``V=0``; ``W=1`` with ``R=0``; a reserved bit (60:54); PBMT=3, or PBMT!=0 without Svpbmt;
  ``N=1`` other than on a level-0 leaf with ``PPN[3:0]=1000`` (64 KiB Svnapot); a non-leaf
  with D, A, U, N or PBMT set; no leaf at level 0; a misaligned superpage; a first-stage
  leaf the request's privilege may not use (``U=0`` for a User request; for a supervisor
  one, built with ``priv``, ``U=1`` without ``SUM`` or for an execute: reference N.1.6,
  Privileged spec "Memory Privilege in mstatus Register"), or ``U=0`` in the second stage
  (which always checks as User); a leaf that does not grant the access (an implicit access
  checks R); ``A=0``; a write with ``D=0`` (no hardware A/D update): a page fault in the
  first stage, a guest-page fault in the second.

Causes follow the original access in both stages: read 5/13/21, write 7/15/23, execute
1/12/20. A guest-page fault reports ``iotval2`` = GPA[63:2] << 2, with bit 0 set when the
GPA was that of a first-stage PTE (an implicit access; bit 1 stays 0, the IOMMU never
writes PTEs).

With ``priv`` the result carries the first-stage leaf's ``U`` (``u``) and its permissions as
the leaf gives them, so that the IOTLB can hold one entry for requests of either privilege:
the pipeline takes execute away from a supervisor answer of a ``U=1`` page (reference N.1.6).

A two-stage leaf grants the AND of both stages' permissions, maps the smaller of the two
pages, and has the first stage's PBMT unless that is PMA, then the second stage's
(Privileged spec, Svpbmt with the hypervisor extension). G-stage ``G`` bits are ignored.

Every read costs one request cycle plus the response cycle in which its PTE is judged and
the next address chosen: a walk takes its table reads plus about two cycles per level.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.config import check_pas
from iogate.hdl.formats import PTE, Cause, IohgatpMode, IosatpMode, Pbmt
from iogate.hdl.iotlb import PAGE_SIZE_IGNORED_BITS, PageSize
from iogate.hdl.mem_master import MemReadSignature
from iogate.hdl.port import Access

__all__ = ["MODES", "G_MODES", "canonical", "gpa_fits",
           "ptw_start_layout", "ptw_result_layout",
           "page_fault_cause", "guest_page_fault_cause", "access_fault_cause",
           "PageTableWalker"]

#: The first-stage modes a walker can walk; their geometry is :class:`IosatpMode`'s.
MODES = (IosatpMode.SV39, IosatpMode.SV48, IosatpMode.SV57)
#: The second-stage modes a walker can walk; their geometry is :class:`IohgatpMode`'s.
G_MODES = (IohgatpMode.SV39X4, IohgatpMode.SV48X4, IohgatpMode.SV57X4)

#: VPN bits a table is indexed by at every level (Privileged spec, "Sv39": 512 PTEs).
_INDEX_BITS = IosatpMode.SV39.index_bits
#: Index bits of the second stage's root table (Privileged spec, "Two-Stage Address
#: Translation": the x4 modes' root is 16 KiB, its index 2 bits wider).
_G_ROOT_INDEX_BITS = IohgatpMode.SV39X4.root_index_bits

#: The page a leaf at each level maps (Privileged spec "Sv57": a level-4 leaf maps 256 TiB).
_SIZE_OF_LEVEL = {0: PageSize.SIZE_4K, 1: PageSize.SIZE_2M, 2: PageSize.SIZE_1G,
                  3: PageSize.SIZE_512G, 4: PageSize.SIZE_256T}


class Stage(enum.Enum, shape=1):
    """Which stage's table the walker is reading."""
    FIRST = 0
    SECOND = 1


def canonical(iova, mode):
    """The IOVA is canonical for ``mode``: bits 63 down to the top VA bit all equal it.

    ``mode`` is a Python :class:`IosatpMode` (the walker is elaborated per mode).
    """
    top = IosatpMode(mode).va_bits - 1
    upper = iova[top:64]
    return (upper == 0) | (upper == (1 << (64 - top)) - 1)


def gpa_fits(gpa, g_mode):
    """The GPA is narrow enough for second-stage mode ``g_mode`` (a Python
    :class:`IohgatpMode`): bits 63 down to its ``gpa_bits`` are zero (Privileged spec,
    Sv39x4)."""
    return gpa[IohgatpMode(g_mode).gpa_bits:64] == 0


def page_fault_cause(access):
    """The page-fault CAUSE of ``access`` (an expression): 13, 15 or 12 (spec "Fault/Event-Queue
    (FQ)", CAUSE table)."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_PAGE_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_PAGE_FAULT, Cause.READ_PAGE_FAULT))


def guest_page_fault_cause(access):
    """The guest-page-fault CAUSE of ``access`` (an expression): 21, 23 or 20 (spec
    "Fault/Event-Queue (FQ)")."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_GUEST_PAGE_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_GUEST_PAGE_FAULT,
                   Cause.READ_GUEST_PAGE_FAULT))


def access_fault_cause(access):
    """The access-fault CAUSE of ``access`` (an expression): 5, 7 or 1 (spec "Fault/Event-Queue
    (FQ)", CAUSE table)."""
    return Mux(access == Access.EXECUTE, Cause.INSTRUCTION_ACCESS_FAULT,
               Mux(access == Access.WRITE, Cause.WRITE_ACCESS_FAULT, Cause.READ_ACCESS_FAULT))


def ptw_start_layout(priv=False, msi=False):
    """A walk to do: ``iosatp`` (``mode``, ``root_ppn``), ``iohgatp`` (``g_mode``,
    ``g_root``), the IOVA and the access. Either stage may be Bare, not both.

    With ``priv`` (a walker for process contexts) also the request's privilege (``priv``:
    supervisor) and ``PC.ta.SUM`` (``sum``), for the first-stage leaf's U check (reference
    N.1.6); without it every walk is User. With ``msi`` (a walker for MSI translation)
    also ``msi``: the final GPA is matched against the MSI address mask and pattern."""
    extra = {"priv": 1, "sum": 1} if priv else {}
    if msi:
        extra["msi"] = 1
    return data.StructLayout({
        "root_ppn": 44, "iova": 64, "access": Access, "mode": IosatpMode,
        "g_root": 44, "g_mode": IohgatpMode, **extra,
    })


def ptw_result_layout(priv=False, msi_bits=0, t2gpa=False):
    """The end of a walk.

    On success ``ppn`` is the 4 KiB physical page holding the IOVA, ``r``/``w``/``x`` the
    permissions of both stages together (``w`` is W&D), ``g`` is set when a first-stage PTE
    of the walk was global, ``size`` is the page both stages map linearly and ``pbmt`` the
    combined memory type. ``partial`` says that page is smaller than the first-stage leaf
    it lies in (a two-stage walk with a smaller second-stage leaf): an invalidation of any
    address of that first-stage leaf concerns it. On a fault only ``fault``, ``cause`` and
    ``iotval2`` (guest-page faults, spec "Fault/Event-Queue (FQ)") are non-zero. With ``priv``
    ``u`` is the first-stage leaf's U bit (1 when the first stage is Bare).

    With ``msi_bits`` (MSI translation, ``Config.mgpaw - 12``): ``msi`` says the final GPA
    is an MSI address (reference N.4.1); the walk then stopped before the second stage,
    ``gpa`` is that GPA's page number and ``r``/``w``/``x``/``pbmt``/``g``/``u``/``size``
    are the first stage's alone (all ones, PMA, the largest size when it is Bare).

    With ``t2gpa`` (``Config.t2gpa``): ``t2gpa_ppn`` is the final GPA's page number (the
    first stage's output; the IOVA's with a Bare first stage), for an ATS Translation
    Completion under ``DC.tc.T2GPA=1`` (reference N.6.2).
    """
    extra = {"u": 1} if priv else {}
    if msi_bits:
        extra.update(msi=1, gpa=msi_bits)
    if t2gpa:
        extra["t2gpa_ppn"] = 44
    return data.StructLayout({
        "fault": 1, "cause": Cause, "ppn": 44, "r": 1, "w": 1, "x": 1, "pbmt": Pbmt,
        "g": 1, "size": PageSize, "partial": 1, "iotval2": 64, **extra,
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
        The first-stage modes this walker walks (any of Sv39, Sv48, Sv57).
    g_modes : tuple of IohgatpMode
        The second-stage modes this walker walks (any of Sv39x4, Sv48x4, Sv57x4); empty for an
        IOMMU without a second stage, which then elaborates none of its logic.
    priv : bool
        Walks carry the request's privilege and SUM (:func:`ptw_start_layout`) and results
        the leaf's U (:func:`ptw_result_layout`): for process contexts. Without it every
        walk is User, with none of that logic.
    t2gpa : bool
        Results carry the final GPA's page number (:func:`ptw_result_layout`).
    msi_bits : int
        MSI translation (``Config.msi_flat``: ``Config.mgpaw - 12``; 0 builds none). A walk
        started with ``msi`` matches its final GPA A (the IOVA under a Bare first stage, else
        the first-stage leaf's) before the second stage reads anything for it (reference
        N.4.1, step 18; issue 16 decision 2): ``((A >> 12) & ~mask) == (pattern & ~mask)``
        over all 52 page-number bits, with ``msi_mask``/``msi_pattern`` the DC's (their bits
        from ``msi_bits`` up are 0, so A's must be too). A match ends the walk with
        ``result.msi``; the second stage's GPA-width check is step 19's and is skipped.
        The GPAs of first-stage PTEs are not matched (step 18 is the request's GPA). A
        non-MSI result of such a walk larger than 4 KiB whose GPA range holds a page that
        matches is shrunk to the 4 KiB page (marked ``partial`` under a first stage): an
        IOTLB entry of the larger page would let a later MSI address bypass the MSI page
        table (reference N.4.4; the model and libiommu shrink it too).

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
    msi_mask, msi_pattern : ``In(msi_bits)``
        Only with ``msi_bits``: the DC's MSI address mask and pattern, held by the caller
        from the cycle after ``start`` until the result is taken.
    second : ``Out(1)``
        Only with ``events``: the PTE ``mem`` reads is a second-stage one (an S2_WALK event
        of the performance monitor when the read is accepted, else S1_WALK: decision 10 of
        issue 17 (HPM)).

    Raises
    ------
    ValueError
        If ``pas`` is out of range, ``modes`` is empty or holds an unsupported mode, or
        ``g_modes`` holds an unsupported mode.
    """

    def __init__(self, *, pas, svpbmt, modes=(IosatpMode.SV39,), g_modes=(), priv=False,
                 msi_bits=0, events=False, t2gpa=False):
        try:
            check_pas(pas)
            modes = tuple(IosatpMode(mode) for mode in modes)
            if not modes or any(mode not in MODES for mode in modes):
                raise ValueError(f"modes must be a non-empty subset of "
                                 f"{tuple(m.name for m in MODES)}, not {modes!r}")
            g_modes = tuple(IohgatpMode(mode) for mode in g_modes)
            if any(mode not in G_MODES for mode in g_modes):
                raise ValueError(f"g_modes must be a subset of "
                                 f"{tuple(m.name for m in G_MODES)}, not {g_modes!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        self._svpbmt = bool(svpbmt)
        self._modes = modes
        self._g_modes = g_modes
        self._priv = bool(priv)
        self._msi_bits = msi_bits
        self._t2gpa = bool(t2gpa)
        msi = {}
        if msi_bits:
            msi = {"msi_mask": In(msi_bits), "msi_pattern": In(msi_bits)}
        super().__init__({
            "start": In(stream.Signature(ptw_start_layout(self._priv, bool(msi_bits)))),
            "result": Out(stream.Signature(ptw_result_layout(self._priv, msi_bits,
                                                             self._t2gpa))),
            "mem": Out(MemReadSignature(pas)),
            "busy": Out(1),
            **msi,
            # The read requested is a second-stage PTE's (decision 10 of issue 17 (HPM)).
            **({"second": Out(1)} if events else {}),
        })
        self._events = bool(events)

    def elaborate(self, platform):
        """The walk as a state machine (IOMMU spec "Process to translate an IOVA", steps 17
        and 19, each a Privileged spec "Virtual Address Translation Process").

        IDLE takes a start and makes the checks due before any read; READ requests the next
        PTE, or faults on an address no read may go to; WAIT judges the PTE in its response
        cycle and chooses the next address; DONE holds the result until it is taken.
        """
        m = Module()
        w = _Walk(self)
        m.d.comb += self.result.payload.eq(w.res)
        if w.two_stage:
            m.d.comb += w.level.eq(Mux(w.in_second, w.g_level, w.s_level))
        self._pte_address(m, w)
        self._judge_pte(m, w)
        with m.FSM():
            with m.State("IDLE"):
                self._idle(m, w)
            with m.State("READ"):
                self._read(m, w)
            with m.State("WAIT"):
                self._wait(m, w)
            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~self.start.ready)
        if self._events:
            m.d.comb += self.second.eq(w.in_second)
        return m

    def _pte_address(self, m, w):
        """The address of the next PTE read, and whether a read may go there.

        Privileged spec "Virtual Address Translation Process" step 2 (``a + va.vpn[i] *
        PTESIZE``); "Two-Stage Address Translation" for the second stage's 16 KiB root and
        for the GPA width check; IOMMU spec "Process to translate an IOVA": a PTE address
        beyond ``capabilities.PAS`` is an access fault. Sets ``w.beyond_pas`` and
        ``w.gpa_wide``.
        """
        ib, rib = _INDEX_BITS, _G_ROOT_INDEX_BITS
        pte_addr = Signal(56, name="pte_addr")
        vpn_i = Signal(ib, name="vpn_i")
        with m.Switch(w.s_level):
            for i in range(w.s_levels):
                with m.Case(i):
                    m.d.comb += vpn_i.eq(w.vpn(i))
        s_pte_gpa = Cat(Const(0, 3), vpn_i, w.s_a)    # a[+VPN[i]*8] of the Privileged walk
        if w.two_stage:
            # The second stage's root is 16 KiB: its index is VPN[top] plus 2 GPA bits
            # (Privileged spec, Sv39x4/Sv48x4). The root is 16 KiB aligned (a DC check,
            # spec "Device-context configuration checks"), so the index can be ORed into the table
            # address.
            g_index = Signal(rib, name="g_index")
            with m.Switch(w.g_level):
                for i in range(w.g_levels):
                    lo = 12 + ib * i
                    with m.Case(i):
                        m.d.comb += g_index.eq(Cat(w.gpa[lo:lo + ib],
                                                   Mux(w.g_level == w.g_top,
                                                       w.gpa[lo + ib:lo + rib], 0)))
            g_pte_addr = Cat(Const(0, 3), g_index[:ib], w.g_a[:rib - ib] | g_index[ib:],
                             w.g_a[rib - ib:])
            with m.If(w.in_second):
                m.d.comb += pte_addr.eq(g_pte_addr)
            with m.Elif(w.g_on):
                m.d.comb += pte_addr.eq(Cat(w.gpa[:12], w.s_pte_ppn))
            with m.Else():
                m.d.comb += pte_addr.eq(s_pte_gpa)
        else:
            m.d.comb += pte_addr.eq(s_pte_gpa)
        w.beyond_pas = Const(0, 1) if self._pas == 56 else (pte_addr[self._pas:] != 0)
        m.d.comb += self.mem.req.payload.addr.eq(pte_addr[:self._pas])

        gpa_wide = Const(0, 1)
        for mode in self._g_modes:
            gpa_wide = gpa_wide | ((w.g_mode == mode) & ~gpa_fits(w.gpa, mode))
        w.gpa_wide = gpa_wide

    def _judge_pte(self, m, w):
        """What the PTE just read is: the same logic serves both stages.

        Privileged spec "Virtual Address Translation Process" steps 3 to 8 (V, R/W,
        reserved bits and PBMT, leaf or not, permissions, misaligned superpage, A/D), with
        Svnapot's and Svpbmt's rules, and step 9's page of the leaf. Sets on ``w``: ``pte``,
        ``leaf``, ``invalid``, ``nonleaf_bad``, ``leaf_ok``, ``leaf_ppn`` and ``leaf_size``.
        """
        ib = _INDEX_BITS
        w.pte = pte = data.View(PTE, self.mem.resp.payload.data)
        w.leaf = pte.r | pte.x
        pbmt_bad = (pte.pbmt == Pbmt.RSVD) | ((pte.pbmt != Pbmt.PMA) if not self._svpbmt
                                              else Const(0, 1))
        reserved = (pte.as_value()[54:61] != 0) | pbmt_bad
        w.invalid = ~pte.v | (~pte.r & pte.w) | reserved
        w.nonleaf_bad = pte.d | pte.a | pte.u | pte.n | (pte.pbmt != Pbmt.PMA)

        # A superpage leaf at level i must have PPN[i-1:0] (9*i bits) zero.
        misaligned = Signal(name="misaligned")
        with m.Switch(w.level):
            for i in range(1, w.max_levels):
                with m.Case(i):
                    m.d.comb += misaligned.eq(pte.ppn[:ib * i] != 0)
        # Svnapot: N=1 is only defined on a level-0 leaf, with PPN[3:0]=1000 (64 KiB).
        napot_ok = ~pte.n | ((w.level == 0) & (pte.ppn[:4] == 0b1000))
        # An implicit access (reading a first-stage PTE) is checked as a read by the
        # second stage, while any fault is reported for the original access.
        check = Signal(Access, name="check")
        m.d.comb += check.eq(Mux(w.in_second & w.implicit, Access.READ, w.access))
        allowed = Mux(check == Access.EXECUTE, pte.x,
                      Mux(check == Access.WRITE, pte.w & pte.d, pte.r))
        u_ok = pte.u
        if self._priv:
            # Reference N.1.6: a supervisor first-stage access needs U=0, or U=1 with SUM and
            # no execute; the second stage always checks as User.
            s_priv = ~w.in_second & w.priv
            u_ok = Mux(s_priv, ~pte.u | (w.sum & (w.access != Access.EXECUTE)), pte.u)
        w.leaf_ok = napot_ok & ~misaligned & u_ok & pte.a & allowed

        # The 4 KiB page inside the leaf's page: low PPN bits come from the address.
        w.leaf_ppn = leaf_ppn = Signal(44, name="leaf_ppn")
        w.leaf_size = leaf_size = Signal(PageSize, name="leaf_size")
        m.d.comb += leaf_ppn.eq(pte.ppn)
        with m.Switch(w.level):
            with m.Case(0):
                with m.If(pte.n):
                    m.d.comb += [leaf_ppn[:4].eq(w.va[12:16]),
                                 leaf_size.eq(PageSize.SIZE_64K)]
                with m.Else():
                    m.d.comb += leaf_size.eq(PageSize.SIZE_4K)
            for i in range(1, w.max_levels):
                with m.Case(i):
                    m.d.comb += [leaf_ppn[:ib * i].eq(w.va[12:12 + ib * i]),
                                 leaf_size.eq(_SIZE_OF_LEVEL[i])]

    def _idle(self, m, w):
        """IDLE: take a start, check its modes and IOVA, and choose the first read.

        IOMMU spec "Process to translate an IOVA" steps 17 and 19 begin here: the first
        stage from ``iosatp``, Privileged spec "Virtual Address Translation Process" step 1
        (``a = satp.ppn * PAGESIZE``, ``i = LEVELS - 1``) after the canonical check; the
        second stage from ``iohgatp`` ("Two-Stage Address Translation"), first for the
        root PTE's GPA in a two-stage walk, or for the IOVA itself under a Bare first stage.
        """
        m.d.comb += self.start.ready.eq(1)
        with m.If(self.start.valid):
            p = self.start.payload
            m.d.sync += [
                w.iova.eq(p.iova), w.access.eq(p.access), w.s_a.eq(p.root_ppn),
                w.g_seen.eq(0), w.stage.eq(Stage.FIRST), w.implicit.eq(0), w.res.eq(0),
            ]
            if self._priv:
                m.d.sync += [w.priv.eq(p.priv), w.sum.eq(p.sum)]
            if self._msi_bits:
                m.d.sync += w.msi.eq(p.msi)
            if w.two_stage:
                # A first-stage-Bare walk keeps all-ones permissions and the
                # largest size for the second stage to narrow down.
                m.d.sync += [w.res.r.eq(1), w.res.w.eq(1), w.res.x.eq(1),
                             w.res.size.eq(w.largest)]
                if self._priv:
                    # U of a first-stage-Bare walk: 1, as a User page (no first-stage check).
                    m.d.sync += w.res.u.eq(1)
            m.next = "READ"
            s_known = Const(0, 1)
            for mode in self._modes:
                s_known = s_known | (p.mode == mode)
            g_known = Const(0, 1)
            for mode in self._g_modes:
                g_known = g_known | (p.g_mode == mode)
            if w.two_stage:
                top = Signal(range(w.g_levels), name="top")
                for mode in self._g_modes:
                    with m.If(p.g_mode == mode):
                        m.d.comb += top.eq(mode.levels - 1)
                m.d.sync += [w.g_on.eq(g_known), w.s_on.eq(s_known),
                             w.g_mode.eq(p.g_mode), w.g_root.eq(p.g_root),
                             w.g_top.eq(top)]
            for mode in self._modes:
                with m.If(p.mode == mode):
                    top_level = mode.levels - 1
                    m.d.sync += w.s_level.eq(top_level)
                    with m.If(~canonical(p.iova, mode)):
                        m.d.sync += w.fault(page_fault_cause(p.access))
                        m.next = "DONE"
                    if w.two_stage:
                        # The root table's PTE address is a GPA: implicit access.
                        root_pte = Cat(Const(0, 3), w.vpn(top_level, p.iova), p.root_ppn)
                        with m.Elif(g_known):
                            m.d.sync += w.start_second(root_pte, 1, top=top, root=p.g_root)
            if w.two_stage:
                # First stage Bare: the IOVA is the GPA.
                with m.If((p.mode == IosatpMode.BARE) & g_known):
                    m.d.sync += w.start_second(p.iova, 0, top=top, root=p.g_root)
                ok = (s_known | (p.mode == IosatpMode.BARE)) \
                    & (g_known | (p.g_mode == IohgatpMode.BARE)) \
                    & (s_known | g_known)
            else:
                ok = s_known & (p.g_mode == IohgatpMode.BARE)
            with m.If(~ok):
                m.d.sync += w.fault(page_fault_cause(p.access))
                m.next = "DONE"

    def _read(self, m, w):
        """READ: request the PTE at the address of :meth:`_pte_address`.

        Privileged spec "Virtual Address Translation Process" step 2 (a PMA or PMP
        violation: here an address beyond ``capabilities.PAS``, an access fault) and
        "Two-Stage Address Translation" (a GPA too wide for the mode: a guest-page fault,
        before the second stage reads anything for it).
        """
        first = m.If
        if self._msi_bits:
            # Step 18 before step 19: the final GPA, before its second-stage walk starts.
            with m.If(w.msi & w.in_second & ~w.implicit & (w.g_level == w.g_top)
                      & self._msi_match(w.gpa)):
                m.d.sync += [w.res.msi.eq(1), w.res.gpa.eq(w.gpa[12:12 + self._msi_bits])]
                if self._t2gpa:
                    m.d.sync += w.res.t2gpa_ppn.eq(w.gpa[12:56])
                m.next = "DONE"
            first = m.Elif
        with first(w.in_second & w.gpa_wide):
            m.d.sync += w.guest_fault
            m.next = "DONE"
        with m.Elif(w.beyond_pas):
            m.d.sync += w.fault(access_fault_cause(w.access))
            m.next = "DONE"
        with m.Else():
            m.d.comb += self.mem.req.valid.eq(1)
            with m.If(self.mem.req.ready):
                m.next = "WAIT"

    def _wait(self, m, w):
        """WAIT: the response cycle of a read; a first-stage PTE is judged here.

        Privileged spec "Virtual Address Translation Process" steps 3 to 8 for the first
        stage (a non-leaf descends, step 4; a leaf ends it, step 9), and under a second
        stage "Two-Stage Address Translation": the next first-stage PTE's GPA, then the
        leaf's GPA, are translated by the second stage (:meth:`_second_stage_pte`).
        """
        pte = w.pte
        m.d.comb += self.mem.resp.ready.eq(1)
        with m.If(self.mem.resp.valid):
            m.next = "READ"
            with m.If(self.mem.resp.payload.err):
                m.d.sync += w.fault(access_fault_cause(w.access))
                m.next = "DONE"
            if w.two_stage:
                with m.Elif(w.in_second):
                    self._second_stage_pte(m, w)
            with m.Elif(w.invalid):
                m.d.sync += w.stage_fault
                m.next = "DONE"
            with m.Elif(~w.leaf):
                with m.If(w.nonleaf_bad | (w.s_level == 0)):
                    m.d.sync += w.stage_fault
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += [w.s_a.eq(pte.ppn), w.s_level.eq(w.s_level - 1),
                                 w.g_seen.eq(w.g_seen | pte.g)]
                    if w.two_stage:
                        # The next PTE's address is a GPA: translate it first.
                        next_vpn = Signal(_INDEX_BITS, name="next_vpn")
                        with m.Switch(w.s_level):
                            for i in range(1, w.s_levels):
                                with m.Case(i):
                                    m.d.comb += next_vpn.eq(w.vpn(i - 1))
                        with m.If(w.g_on):
                            m.d.sync += w.start_second(Cat(Const(0, 3), next_vpn, pte.ppn), 1)
            with m.Elif(~w.leaf_ok):
                m.d.sync += w.stage_fault
                m.next = "DONE"
            with m.Else():
                m.d.sync += [
                    w.res.ppn.eq(w.leaf_ppn), w.res.size.eq(w.leaf_size),
                    w.res.r.eq(pte.r), w.res.w.eq(pte.w & pte.d), w.res.x.eq(pte.x),
                    w.res.pbmt.eq(pte.pbmt), w.res.g.eq(w.g_seen | pte.g),
                ]
                if self._priv:
                    m.d.sync += w.res.u.eq(pte.u)
                if w.two_stage:
                    # The leaf gives a GPA: the second stage translates it next.
                    with m.If(w.g_on):
                        m.d.sync += w.start_second(Cat(w.iova[:12], w.leaf_ppn), 0)
                    with m.Else():
                        m.next = "DONE"
                else:
                    m.next = "DONE"

    def _second_stage_pte(self, m, w):
        """The response-cycle statements for a second-stage PTE.

        Privileged spec "Two-Stage Address Translation": the G-stage walk is the
        "Virtual Address Translation Process" with every fault a guest-page fault and U=1
        required; an implicit access ends with the first-stage PTE's system address, the
        final GPA with the leaf both stages make together (Svpbmt's PBMT override).
        """
        pte, res = w.pte, w.res
        with m.If(w.invalid):
            m.d.sync += w.guest_fault
            m.next = "DONE"
        with m.Elif(~w.leaf):
            with m.If(w.nonleaf_bad | (w.g_level == 0)):
                m.d.sync += w.guest_fault
                m.next = "DONE"
            with m.Else():
                # G-stage G bits are ignored (Privileged spec, two-stage translation).
                m.d.sync += [w.g_a.eq(pte.ppn), w.g_level.eq(w.g_level - 1)]
        with m.Elif(~w.leaf_ok):
            m.d.sync += w.guest_fault
            m.next = "DONE"
        with m.Elif(w.implicit):
            # The first-stage PTE's system address is known: read it.
            m.d.sync += [w.s_pte_ppn.eq(w.leaf_ppn), w.stage.eq(Stage.FIRST)]
        with m.Else():
            # The final GPA: combine both stages. The first stage's PBMT wins unless
            # it is PMA (Privileged spec, Svpbmt: a non-zero VS-stage PBMT overrides
            # the G-stage's); the pair maps the smaller page linearly.
            smaller = w.leaf_size.as_value() < res.size.as_value()
            m.d.sync += [
                res.ppn.eq(w.leaf_ppn),
                res.r.eq(res.r & pte.r), res.w.eq(res.w & pte.w & pte.d),
                res.x.eq(res.x & pte.x),
                res.pbmt.eq(Mux(res.pbmt != Pbmt.PMA, res.pbmt, pte.pbmt)),
                res.size.eq(Mux(smaller, w.leaf_size, res.size)),
                res.partial.eq(w.s_on & smaller),
            ]
            if self._t2gpa:
                m.d.sync += res.t2gpa_ppn.eq(w.gpa[12:56])
            if self._msi_bits:
                # A page holding an MSI address is cut to 4 KiB (reference N.4.4).
                size = Signal(PageSize, name="combined_size")
                m.d.comb += size.eq(Mux(smaller, w.leaf_size, res.size))
                shrink = w.msi & (size != PageSize.SIZE_4K) & self._msi_overlap(w.gpa, size)
                with m.If(shrink):
                    m.d.sync += [res.size.eq(PageSize.SIZE_4K), res.partial.eq(w.s_on)]
            m.next = "DONE"

    def _msi_match(self, gpa):
        """GPA ``gpa`` is an MSI address (reference N.4.1; issue 16 decision 2)."""
        width = self._msi_bits
        page = gpa[12:12 + width]
        return ((gpa[12 + width:] == 0)
                & (((page ^ self.msi_pattern) & ~self.msi_mask) == 0))

    def _msi_overlap(self, gpa, size):
        """The naturally aligned GPA range of ``size`` (a PageSize) around ``gpa`` holds a
        page :meth:`_msi_match` accepts: the page bits inside the range are free. The
        range's GPA fits the second stage's mode, hence ``msi_bits``."""
        width = self._msi_bits
        free = Const(0, width)
        for ps in (PageSize.SIZE_64K, *(_SIZE_OF_LEVEL[i] for i in range(1, 5))):
            bits_in = min(PAGE_SIZE_IGNORED_BITS[ps], width)
            free = free | ((size == ps).replicate(width) & ((1 << bits_in) - 1))
        page = gpa[12:12 + width]
        return ((page ^ self.msi_pattern) & ~self.msi_mask & ~free) == 0


class _Walk:
    """The registers of one walker's elaboration and the statements its states share.

    Names follow the Privileged spec's "Virtual Address Translation Process": ``a`` is the
    table being read, ``level`` its ``i``; ``s_`` names the first stage, ``g_`` the second.
    The :class:`PageTableWalker` helpers add the PTE judgement's expressions.
    """

    def __init__(self, walker):
        self.two_stage = two_stage = bool(walker._g_modes)
        self.s_levels = max(mode.levels for mode in walker._modes)
        self.g_levels = max((mode.levels for mode in walker._g_modes), default=1)
        self.max_levels = max(self.s_levels, self.g_levels)
        # The largest page a leaf of this walker maps: 512 GiB below five levels.
        self.largest = _SIZE_OF_LEVEL[max(self.max_levels - 1, 3)]

        self.iova = Signal(64, name="iova")
        self.access = Signal(Access, name="access")
        self.res = Signal(ptw_result_layout(walker._priv, walker._msi_bits, walker._t2gpa),
                          name="res")
        self.priv = Signal(name="priv")          # a supervisor request (with `priv` only)
        self.msi = Signal(name="msi")            # match the final GPA (with `msi_bits` only)
        self.sum = Signal(name="sum")

        # First stage: the table being read (a guest PPN under a second stage) and level.
        self.s_a = Signal(44, name="s_a")
        self.s_level = Signal(range(self.s_levels), name="s_level")
        self.g_seen = Signal(name="g_seen")

        # Second stage: the GPA being translated (a first-stage PTE's address when
        # `implicit`, else the final GPA), the table being read and its level.
        self.stage = Signal(Stage, name="stage")
        self.g_on = Signal(name="g_on")
        self.s_on = Signal(name="s_on")          # the first stage is not Bare
        self.g_mode = Signal(IohgatpMode, name="g_mode")
        self.g_root = Signal(44, name="g_root")
        self.g_top = Signal(range(self.g_levels), name="g_top")
        self.g_level = Signal(range(self.g_levels), name="g_level")
        self.g_a = Signal(44, name="g_a")
        self.gpa = Signal(64, name="gpa")
        self.implicit = Signal(name="implicit")
        # The system page holding the first-stage PTE at `gpa`.
        self.s_pte_ppn = Signal(44, name="s_pte_ppn")

        if two_stage:
            self.in_second = self.stage == Stage.SECOND
            self.level = Signal(range(self.max_levels), name="level")
            self.va = Mux(self.in_second, self.gpa, self.iova)  # the address the PTE maps
        else:
            self.in_second = Const(0, 1)
            self.level = self.s_level
            self.va = self.iova

        # iotval2 of a guest-page fault: GPA[63:2], and bit 0 for an implicit access.
        self.guest_fault = self.fault(guest_page_fault_cause(self.access),
                                      Cat(self.implicit, Const(0, 1), self.gpa[2:]))
        self.stage_fault = self.fault(page_fault_cause(self.access))

    def vpn(self, lvl, address=None):
        """VPN[lvl] of ``address`` (the IOVA by default) for a Python level ``lvl``."""
        address = self.iova if address is None else address
        lo = 12 + _INDEX_BITS * lvl
        return address[lo:lo + _INDEX_BITS]

    def fault(self, cause, iotval2=0):
        """Statements: end the walk with a fault of ``cause`` (IOMMU spec "Fault/Event
        queue": CAUSE and ``iotval2``)."""
        # A fault carries no translation fields: they are zeroed at the start, but a
        # two-stage walk may fault in the second stage after its first-stage leaf.
        clear = [self.res.eq(0)] if self.two_stage else []
        return [*clear, self.res.fault.eq(1), self.res.cause.eq(cause),
                self.res.iotval2.eq(iotval2)]

    def start_second(self, address, is_implicit, *, top=None, root=None):
        """Statements: translate GPA ``address`` with the second stage next, from its root.

        Privileged spec "Two-Stage Address Translation": the G-stage walk starts at
        ``hgatp.PPN`` with ``i = LEVELS - 1``. ``top`` and ``root`` default to the
        registered ``g_top`` and ``g_root``; IDLE passes the start's, not registered yet.
        """
        return [self.stage.eq(Stage.SECOND), self.gpa.eq(address),
                self.implicit.eq(is_implicit),
                self.g_level.eq(self.g_top if top is None else top),
                self.g_a.eq(self.g_root if root is None else root)]
