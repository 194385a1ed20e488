"""The IOTLB: a set-associative cache of leaf translations, first stage, second stage or both.

RISC-V IOMMU spec "Caching in-memory data structures" and "IOMMU Page-Table cache invalidation
commands" (IOTINVAL). An entry is tagged as the spec tags cached translations (spec "Process to
translate an IOVA"):

* ``gv``/``GSCID`` -- the VM, when the second stage is not Bare (``gv=0``: a host entry);
* ``pscv``/``PSCID`` -- the process address space, when the first stage is not Bare;
  ``pscv=0`` marks a second-stage-only entry (GPA -> SPA, tagged by GSCID+GPA), which must
  never answer a lookup made under a first stage, whatever PSCID that has;
* ``G`` -- a global first-stage mapping, shared by every PSCID of its VM (or of the host);
* the virtual page number (the IOVA's, which is the GPA for a second-stage-only entry) and
  the page size: 4 KiB, 64 KiB NAPOT, 2 MiB, 1 GiB, 512 GiB (Sv48, Sv48x4) or 256 TiB (Sv57,
  Sv57x4: Privileged spec "Sv57", a level-4 leaf). A two-stage entry maps the smaller of its
  two leaves' pages, which both stages map linearly. The 256 TiB size, and the wider VPN of
  Sv57/Sv57x4, exist only in an IOTLB built for them (``sizes`` and ``vpn_w``,
  :func:`page_sizes` and :func:`vpn_width`): without them the IOTLB is the same logic.

It holds the PPN, the permissions of both stages together (``w`` already ANDed with D,
since the IOMMU does not update A/D) and the combined Svpbmt type; built with ``u`` (for
process contexts) also the first-stage leaf's U bit, which the pipeline checks against each
request's privilege (reference N.1.6), as the model's IOTLB does. Only successful
translations are cached: the IOATC must not cache invalid entries (spec "Caching in-memory data
structures", "Caching invalid entries"), and a
fault is re-walked every time.

Organisation:

* The tags are flip-flops compared in parallel, so a lookup is answered in the cycle it is
  presented, one per clock. The match vector has at most one bit set (a fill first removes
  every entry that a later lookup could confuse with the new one), so the matching index
  is an OR of the entry numbers and G, size and permissions an AND-OR of the entries: no
  priority encoder on the hit path. PPN and PBMT are read at that index from a memory
  with an asynchronous read port (:class:`iogate.hdl.lutram.EntryRam`: distributed RAM on an
  FPGA, not flip-flops behind a 46-bit-wide AND-OR). An address compare is one equality
  per page-size segment of the VPN; invalidation and fill share one comparator per entry.
* ``entries / ways`` sets, each replaced by a tree pseudo-LRU. A fill goes to the set
  indexed by the VPN bits just above the page's own offset, so pages of every size
  spread over all sets. Sets only choose placement and victims; the lookup compares every
  entry, so it never needs to guess the page size first.
* Invalidation implements IOTINVAL.VMA (GV/AV/PSCV with the global rules of spec table
  "IOTINVAL.VMA operands") on first-stage entries, IOTINVAL.GVMA on entries of VMs, and
  invalidate-all. Two-stage entries are tagged by IOVA, not by GPA, so GVMA with AV=1
  removes every two-stage entry of the GSCID (invalidating more than asked is always
  allowed, spec "IOMMU Page-Table cache invalidation commands"); second-stage-only entries are
  tagged by their GPA and are removed only when they hold the address. A two-stage entry smaller
  than its first-stage leaf is marked ``partial`` and removed by any VMA with AV=1 in its address
  space, since the address may fall in the rest of that leaf.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.formats import IohgatpMode, IosatpMode, Pbmt
from iogate.hdl.lutram import EntryRam

__all__ = [
    "PageSize", "PAGE_SIZE_IGNORED_BITS", "SV48_PAGE_SIZES", "page_sizes", "InvalKind",
    "iotlb_key_layout", "iotlb_result_layout", "iotlb_fill_layout", "iotlb_inval_layout",
    "vpn_width", "plru_victim", "plru_touch", "IOTLB",
]


class PageSize(enum.Enum, shape=3):
    """Size of the page an IOTLB entry maps (Privileged spec: Sv39/Sv48/Sv57 levels, Svnapot).

    Numbered in order of size: the walker maps a two-stage leaf to the smaller encoding.
    """
    SIZE_4K = 0
    SIZE_64K = 1
    SIZE_2M = 2
    SIZE_1G = 3
    SIZE_512G = 4
    SIZE_256T = 5    #: a level-4 leaf of Sv57/Sv57x4


#: VPN bits below each page size's own VPN: they select the 4 KiB page inside the page.
PAGE_SIZE_IGNORED_BITS = {
    PageSize.SIZE_4K: 0, PageSize.SIZE_64K: 4, PageSize.SIZE_2M: 9,
    PageSize.SIZE_1G: 18, PageSize.SIZE_512G: 27, PageSize.SIZE_256T: 36,
}

#: The page sizes of an IOTLB without Sv57/Sv57x4: every size up to a 4-level walk's.
SV48_PAGE_SIZES = (PageSize.SIZE_4K, PageSize.SIZE_64K, PageSize.SIZE_2M, PageSize.SIZE_1G,
                   PageSize.SIZE_512G)


def page_sizes(config):
    """The page sizes an IOTLB of ``config`` holds: up to 512 GiB, and 256 TiB with Sv57 or
    Sv57x4 (their level-4 leaves, Privileged spec "Sv57")."""
    if config.sv57 or config.sv57x4:
        return (*SV48_PAGE_SIZES, PageSize.SIZE_256T)
    return SV48_PAGE_SIZES


class InvalKind(enum.Enum, shape=2):
    """Which invalidation an ``inval`` request carries out."""
    VMA = 0          #: IOTINVAL.VMA
    GVMA = 1         #: IOTINVAL.GVMA
    ALL = 2          #: every entry (reset-like; also what a simple IOTINVAL may do)


def vpn_width(config):
    """VPN bits an IOTLB of ``config`` must hold: the widest IOVA any mode accepts.

    Sv39 has 27 VPN bits, Sv48 36, Sv57 45; with the first stage Bare the IOVA is a GPA of
    Sv39x4 (41 bits, 29 VPN bits), Sv48x4 (50 bits, 38 VPN bits) or Sv57x4 (59 bits, 47 VPN
    bits: Privileged spec "Two-Stage Address Translation"). Bits above a mode's own width
    are equal (canonical IOVA) or zero (GPA) in every address a lookup accepts, so two
    pages of one address space never share a tag.
    """
    widths = [IosatpMode.SV39.vpn_bits]
    if config.sv48:
        widths.append(IosatpMode.SV48.vpn_bits)
    if config.sv39x4:
        widths.append(IohgatpMode.SV39X4.vpn_bits)
    if config.sv48x4:
        widths.append(IohgatpMode.SV48X4.vpn_bits)
    if config.sv57:
        widths.append(IosatpMode.SV57.vpn_bits)
    if config.sv57x4:
        widths.append(IohgatpMode.SV57X4.vpn_bits)
    return max(widths)


def iotlb_key_layout(vpn_w):
    """What a lookup presents: the address space and the 4 KiB virtual page.

    ``gv``: the second stage is not Bare, ``gscid`` is its GSCID (else 0); ``pscv``: the
    first stage is not Bare, ``pscid`` is its PSCID (else 0); ``vpn``: IOVA[12+vpn_w-1:12].
    """
    return data.StructLayout({"gv": 1, "gscid": 16, "pscv": 1, "pscid": 20, "vpn": vpn_w})


def iotlb_result_layout(u=False):
    """What a hit returns: ``ppn`` is the 4 KiB physical page holding the looked-up page;
    with ``u``, ``u`` is the first-stage leaf's U bit."""
    return data.StructLayout({
        "ppn": 44, "r": 1, "w": 1, "x": 1, "pbmt": Pbmt, "g": 1, "size": PageSize,
        **({"u": 1} if u else {}),
    })


def iotlb_fill_layout(vpn_w, u=False):
    """A new entry: its key (``vpn`` of any 4 KiB page in it) and its result.

    ``partial``: the entry's page is smaller than the first-stage leaf it was built from
    (a two-stage translation with a smaller second-stage leaf), so IOTINVAL.VMA with AV=1
    concerns it whatever address of that leaf it names.
    """
    return data.StructLayout({"key": iotlb_key_layout(vpn_w), "result": iotlb_result_layout(u),
                              "partial": 1})


def iotlb_inval_layout(vpn_w):
    """An invalidation: the IOTINVAL operands (``vpn`` is ADDR[63:12] cut to the IOTLB:
    an IOVA for VMA, a GPA for GVMA)."""
    return data.StructLayout({
        "kind": InvalKind, "gv": 1, "av": 1, "pscv": 1, "gscid": 16, "pscid": 20,
        "vpn": vpn_w,
    })


def _plru_nodes(lo, hi, nodes):
    """Build the binary tree over ways ``lo..hi-1``: a list of (lo, mid, hi) per node."""
    if hi - lo < 2:
        return
    mid = lo + (hi - lo + 1) // 2
    nodes.append((lo, mid, hi))
    _plru_nodes(lo, mid, nodes)
    _plru_nodes(mid, hi, nodes)


def _plru_tree(ways):
    nodes = []
    _plru_nodes(0, ways, nodes)
    return nodes


def _plru_path(ways, way):
    """The one tree walk of the pseudo-LRU: the nodes on ``way``'s path, root first.

    Returns ``[(node, upper), ...]``: ``upper`` says ``way`` lies in the node's upper half.
    The victim is the way every node of whose path points at it; a touch points every
    node of the path away from it.
    """
    return [(i, way >= mid) for i, (lo, mid, hi) in enumerate(_plru_tree(ways))
            if lo <= way < hi]


def plru_victim(ways, state):
    """The way a tree pseudo-LRU with ``state`` (an int, bit ``i`` = node ``i``) evicts.

    A node bit of 0 points at its lower half, 1 at its upper half. Works for any number of
    ways (the tree is unbalanced when ``ways`` is not a power of two).
    """
    for way in range(ways):
        if all((state >> node) & 1 == upper for node, upper in _plru_path(ways, way)):
            return way
    raise AssertionError("every state has one victim")


def plru_touch(ways, state, way):
    """The state after an access to ``way``: every node on its path points away from it."""
    for node, upper in _plru_path(ways, way):
        if upper:
            state &= ~(1 << node)
        else:
            state |= 1 << node
    return state


def _entry_data_layout():
    """What the IOTLB's data memory holds of an entry's result (the rest stays outside)."""
    return data.StructLayout({"ppn": 44, "pbmt": Pbmt})


def _vpn_segments(vpn_w, sizes):
    """The VPN split at the boundary of every page size of ``sizes``: ``[(lo, hi), ...]``,
    lowest first.

    Each page size ignores a whole number of these segments (its own offset bits), so an
    address compare is one equality per segment, each qualified by one flag, instead of a
    mask bit decoded from the page size at every VPN bit.
    """
    starts = sorted({PAGE_SIZE_IGNORED_BITS[ps] for ps in sizes} | {vpn_w})
    starts = [b for b in starts if b <= vpn_w]
    return list(zip(starts, starts[1:], strict=False))


def _ignored_segments(size, vpn_w, sizes):
    """Per segment of :func:`_vpn_segments`, whether a page of ``size`` ignores it."""
    flags = []
    for _lo, hi in _vpn_segments(vpn_w, sizes):
        flag = Const(0, 1)
        for ps in sizes:
            if min(PAGE_SIZE_IGNORED_BITS[ps], vpn_w) >= hi:
                flag = flag | (size == ps)
        flags.append(flag)
    return flags


def _same_page(vpn_a, vpn_b, ignored_segments, vpn_w, sizes):
    """The two VPNs agree on every segment not flagged in ``ignored_segments``."""
    same = Const(1, 1)
    for (lo, hi), ignored in zip(_vpn_segments(vpn_w, sizes), ignored_segments, strict=True):
        same = same & (ignored | (vpn_a[lo:hi] == vpn_b[lo:hi]))
    return same


def _ignored_mask(size, vpn_w, sizes):
    """The VPN bits inside a page of ``size`` (a Signal of PageSize), as a mask."""
    mask = Const(0, vpn_w)
    for ps in sizes:
        m = (1 << min(PAGE_SIZE_IGNORED_BITS[ps], vpn_w)) - 1
        mask = (size == ps).replicate(vpn_w) & m | mask
    return mask


class IOTLB(wiring.Component):
    """The IOTLB.

    Parameters
    ----------
    entries : int
        Number of entries.
    ways : int
        Associativity; ``entries // ways`` (the number of sets) must be a power of two.
    vpn_w : int
        VPN bits kept in a tag (see :func:`vpn_width`).
    sizes : tuple of PageSize
        The page sizes entries may have (see :func:`page_sizes`); 4 KiB to 512 GiB by
        default. Only these sizes are decoded, so 256 TiB costs nothing where it is not built.
    u : bool
        Entries keep the first-stage leaf's U bit (``fill.result.u``, ``lookup_result.u``).

    Members
    -------
    lookup_key : ``In(iotlb_key_layout(vpn_w))``
        The page to look up. Answered combinationally in the same cycle.
    lookup_hit : ``Out(1)``
        An entry matches.
    lookup_result : ``Out(iotlb_result_layout())``
        The matching entry's translation (all zero on a miss).
    lookup_touch : ``In(1)``
        Strobe: the current hit was used; update the pseudo-LRU of its set.
    fill : ``In(stream.Signature(iotlb_fill_layout(vpn_w)))``
        A new entry. Always ready. Every entry that a lookup could confuse with it is
        removed first. A fill in the same cycle as an invalidation is dropped, since it may
        hold a translation that the invalidation is meant to remove.
    inval : ``In(stream.Signature(iotlb_inval_layout(vpn_w)))``
        An invalidation, done in one cycle. Always ready.

    Raises
    ------
    ValueError
        On an impossible geometry.
    """

    def __init__(self, entries, ways, vpn_w, *, sizes=SV48_PAGE_SIZES, u=False):
        try:
            for name, value in (("entries", entries), ("ways", ways), ("vpn_w", vpn_w)):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{name} must be an integer, not {value!r}")
            if ways < 1 or entries < ways or entries % ways:
                raise ValueError(f"entries ({entries}) must be a positive multiple of ways "
                                 f"({ways})")
            sets = entries // ways
            if sets & (sets - 1):
                raise ValueError(f"entries / ways must be a power of two, not {sets}")
            if not 27 <= vpn_w <= 52:
                raise ValueError(f"vpn_w must be between 27 and 52, not {vpn_w!r}")
            sizes = tuple(PageSize(ps) for ps in sizes)
            if PageSize.SIZE_4K not in sizes or len(set(sizes)) != len(sizes):
                raise ValueError(f"sizes must hold SIZE_4K and no size twice, not {sizes!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self.entries = entries
        self.ways = ways
        self.sets = sets
        self.vpn_w = vpn_w
        self.sizes = sizes
        self.u = bool(u)
        super().__init__({
            "lookup_key": In(iotlb_key_layout(vpn_w)),
            "lookup_hit": Out(1),
            "lookup_result": Out(iotlb_result_layout(self.u)),
            "lookup_touch": In(1),
            "fill": In(stream.Signature(iotlb_fill_layout(vpn_w, self.u))),
            "inval": In(stream.Signature(iotlb_inval_layout(vpn_w))),
        })

    def set_index(self, vpn, size):
        """The set a page of ``size`` holding 4 KiB page ``vpn`` lives in (an expression)."""
        set_bits = (self.sets - 1).bit_length()
        if set_bits == 0:
            return Const(0, 1)
        # Not on the hit path: only fills use it.
        cases = {}
        for ps in self.sizes:
            lo = min(PAGE_SIZE_IGNORED_BITS[ps], self.vpn_w - set_bits)
            cases[ps] = vpn[lo:lo + set_bits]
        index_expr = Const(0, set_bits)
        for ps, part in cases.items():
            index_expr = (size == ps).replicate(set_bits) & part | index_expr
        return index_expr

    def elaborate(self, platform):
        """The IOTLB (IOMMU spec "Caching in-memory data structures", IOTINVAL): a
        parallel lookup, one set of comparators shared by invalidation and fill, and the
        update of the entries."""
        m = Module()
        e = _Entries(self)
        m.submodules.data = e.data_ram
        self._lookup(m, e)
        self._operands(m, e)
        inval_hit = self._inval_hits(m, e)
        kept, fill_set, victim = self._fill_slot(m, e)
        self._update(m, e, inval_hit, kept, fill_set, victim)
        return m

    def _lookup(self, m, e):
        """The lookup: every entry in parallel (spec "Caching in-memory data structures":
        tags GSCID, PSCID, G and the page). At most one matches, so the entry's index is
        the OR of the matching indices and G/size an AND-OR: no priority encoder on the hit
        path. Sets ``e.match``."""
        n, vpn_w, tags, data_ram = self.entries, self.vpn_w, e.tags, e.data_ram
        k = self.lookup_key
        e.match = match = Signal(n, name="match")
        for i in range(n):
            m.d.comb += match[i].eq(
                e.valid[i] & (tags[i].gv == k.gv) & (tags[i].gscid == k.gscid)
                & (tags[i].pscv == k.pscv)
                & (e.gs[i] | (tags[i].pscid == k.pscid)) & e.covers(i, k.vpn))
        index = 0
        hit_g = 0
        hit_size = 0
        hit_rwx = 0
        for i in range(n):
            if i:
                index = index | (match[i].replicate(len(data_ram.r_addr)) & i)
            hit_g = hit_g | (match[i] & e.gs[i])
            hit_size = hit_size | (match[i].replicate(3) & Value.cast(e.sizes[i]))
            hit_rwx = hit_rwx | (match[i].replicate(3) & e.perms[i])
        hit = Signal(name="hit")
        hit_res = Signal(iotlb_result_layout(self.u), name="hit_res")
        hit_data = data_ram.r_data
        m.d.comb += [
            data_ram.r_addr.eq(index),
            hit.eq(match.any()),
            hit_res.ppn.eq(hit.replicate(len(hit_data.ppn)) & hit_data.ppn),
            Cat(hit_res.r, hit_res.w, hit_res.x).eq(hit_rwx),
            hit_res.pbmt.eq(hit.replicate(2) & Value.cast(hit_data.pbmt)),
            hit_res.g.eq(hit_g), hit_res.size.eq(hit_size),
        ]
        if self.u:
            m.d.comb += hit_res.u.eq((match & e.us).any())
        # Widen the mask to the PPN before inverting it: ~ of a VPN-wide mask would
        # zero-extend and clear PPN bits above the VPN width (found by the regression,
        # seed 1: a 4 KiB leaf at PA 0xb6ad037c000 came back as 0x6ad037c000).
        ignored = Const(0, len(hit_res.ppn)) | _ignored_mask(hit_res.size, vpn_w, self.sizes)
        ppn_out = (hit_res.ppn & ~ignored) | (k.vpn & ignored)
        m.d.comb += [
            self.lookup_hit.eq(hit),
            self.lookup_result.eq(hit_res),
            self.lookup_result.ppn.eq(ppn_out),
        ]

    def _operands(self, m, e):
        """The comparators invalidation and fill share, one set per entry.

        An invalidation wins the cycle and the fill is dropped, so only one of them ever
        takes effect; their operand is the invalidation's when there is one. Sets
        ``e.gscid_eq``, ``e.pscid_eq`` and ``e.vpn_eq``.
        """
        n, vpn_w = self.entries, self.vpn_w
        inv = self.inval.payload
        f = self.fill.payload
        m.d.comb += [self.inval.ready.eq(1), self.fill.ready.eq(1)]
        f_ignored = _ignored_segments(f.result.size, vpn_w, self.sizes)
        op_gscid = Signal(16, name="op_gscid")
        op_pscid = Signal(20, name="op_pscid")
        op_vpn = Signal(vpn_w, name="op_vpn")
        op_ignored = Signal(len(f_ignored), name="op_ignored")
        m.d.comb += [
            op_gscid.eq(Mux(self.inval.valid, inv.gscid, f.key.gscid)),
            op_pscid.eq(Mux(self.inval.valid, inv.pscid, f.key.pscid)),
            op_vpn.eq(Mux(self.inval.valid, inv.vpn, f.key.vpn)),
            # An invalidation names one address; a fill a page of its own size.
            op_ignored.eq(Mux(self.inval.valid, 0, Cat(*f_ignored))),
        ]
        e.gscid_eq = Signal(n, name="gscid_eq")
        e.pscid_eq = Signal(n, name="pscid_eq")
        e.vpn_eq = Signal(n, name="vpn_eq")
        for i in range(n):
            m.d.comb += [e.gscid_eq[i].eq(e.tags[i].gscid == op_gscid),
                         e.pscid_eq[i].eq(e.tags[i].pscid == op_pscid),
                         e.vpn_eq[i].eq(e.covers(i, op_vpn, list(op_ignored)))]

    def _inval_hits(self, m, e):
        """The entries an invalidation removes (spec "IOTINVAL.VMA" and "IOTINVAL.GVMA",
        with table "IOTINVAL.VMA operands"), in one cycle."""
        inv = self.inval.payload
        inval_hit = Signal(self.entries, name="inval_hit")
        for i in range(self.entries):
            t = e.tags[i]
            vm_scope = Signal(name=f"vm_scope{i}")
            m.d.comb += vm_scope.eq(Mux(inv.gv, t.gv & e.gscid_eq[i], ~t.gv))
            # VMA: first-stage entries only (spec "IOMMU Page-Table cache invalidation commands":
            # "first-stage leaf entries"). A
            # partial entry does not know its first-stage leaf's extent: any address.
            vma = (t.pscv & vm_scope & (~inv.av | e.vpn_eq[i] | e.partial[i])
                   & (~inv.pscv | (e.pscid_eq[i] & ~e.gs[i])))
            # GVMA: entries of VMs. With AV=1 a second-stage-only entry (tagged by GPA) is
            # removed only if it holds the GPA; a two-stage entry (tagged by IOVA) always.
            gvma = t.gv & (~inv.gv | (e.gscid_eq[i] & (~inv.av | t.pscv | e.vpn_eq[i])))
            with m.Switch(inv.kind):
                with m.Case(InvalKind.VMA):
                    m.d.comb += inval_hit[i].eq(vma)
                with m.Case(InvalKind.GVMA):
                    m.d.comb += inval_hit[i].eq(gvma)
                with m.Default():
                    m.d.comb += inval_hit[i].eq(1)
        return inval_hit

    def _fill_slot(self, m, e):
        """Where a fill goes: ``(kept, fill_set, victim)``.

        Every entry a lookup could confuse with the new one (same VM, overlapping pages,
        and same PSCID unless either is global) is cleared; the new entry goes to the
        set's first free way or its pseudo-LRU victim (:func:`_plru_path`).
        """
        n, ways = self.entries, self.ways
        f = self.fill.payload
        clash = Signal(n, name="clash")
        for i in range(n):
            t = e.tags[i]
            m.d.comb += clash[i].eq(
                e.valid[i] & (t.gv == f.key.gv) & e.gscid_eq[i] & (t.pscv == f.key.pscv)
                & (e.gs[i] | f.result.g | e.pscid_eq[i]) & e.vpn_eq[i])
        kept = Signal(n, name="kept")
        m.d.comb += kept.eq(e.valid & ~clash)
        fill_set = Signal(range(max(self.sets, 2)), name="fill_set")
        m.d.comb += fill_set.eq(self.set_index(f.key.vpn, f.result.size))
        victim = Signal(range(max(ways, 2)), name="victim")
        # Pseudo-LRU victim of the fill's set, then the first free way overrides it.
        for s in range(self.sets):
            with m.If(fill_set == s):
                for w in range(ways):
                    path = Const(1, 1)
                    for b, upper in _plru_path(ways, w):
                        path = path & (e.plru[s][b] if upper else ~e.plru[s][b])
                    with m.If(path):
                        m.d.comb += victim.eq(w)
                for w in reversed(range(ways)):
                    with m.If(~kept[s * ways + w]):
                        m.d.comb += victim.eq(w)
        return kept, fill_set, victim

    def _update(self, m, e, inval_hit, kept, fill_set, victim):
        """The cycle's one change: an invalidation, else a fill, else a touch of the hit's
        pseudo-LRU (a fill with an invalidation is dropped: it may hold a translation the
        invalidation removes)."""
        ways = self.ways
        f = self.fill.payload
        data_ram = e.data_ram
        with m.If(self.inval.valid):
            m.d.sync += e.valid.eq(e.valid & ~inval_hit)
        with m.Elif(self.fill.valid):
            new_valid = Signal(self.entries, name="new_valid")
            m.d.comb += new_valid.eq(kept)
            slot = fill_set * ways + victim if self.sets > 1 else victim
            m.d.comb += [
                data_ram.w_addr.eq(slot), data_ram.w_en.eq(1),
                data_ram.w_data.ppn.eq(f.result.ppn), data_ram.w_data.pbmt.eq(f.result.pbmt),
            ]
            for s in range(self.sets):
                for w in range(ways):
                    i = s * ways + w
                    with m.If((fill_set == s) & (victim == w)):
                        m.d.comb += new_valid[i].eq(1)
                        m.d.sync += [e.tags[i].eq(f.key), e.gs[i].eq(f.result.g),
                                     e.sizes[i].eq(f.result.size),
                                     e.partial[i].eq(f.partial),
                                     e.perms[i].eq(Cat(f.result.r, f.result.w, f.result.x))]
                        if self.u:
                            m.d.sync += e.us[i].eq(f.result.u)
                        m.d.sync += e.touch(s, w)
            m.d.sync += e.valid.eq(new_valid)
        with m.Elif(self.lookup_touch):
            for s in range(self.sets):
                for w in range(ways):
                    with m.If(e.match[s * ways + w]):
                        m.d.sync += e.touch(s, w)


class _Entries:
    """The state of one IOTLB's elaboration: its entries' tags, flags and pseudo-LRUs.

    G and the page size take part in every comparison, so they stay in flip-flops, and so
    do the permissions, which decide in the same cycle whether the hit is granted (an
    AND-OR is faster than the memory's index and read). The PPN and PBMT are only read out
    for the (single) matching entry, from a memory with an asynchronous read port
    (distributed RAM on an FPGA).
    """

    def __init__(self, iotlb):
        n, ways, vpn_w = iotlb.entries, iotlb.ways, iotlb.vpn_w
        self.ways, self.vpn_w, self.page_sizes = ways, vpn_w, iotlb.sizes
        key_l = iotlb_key_layout(vpn_w)
        self.valid = Signal(n, name="valid")
        self.partial = Signal(n, name="partial")
        self.tags = [Signal(key_l, name=f"tag{i}") for i in range(n)]
        self.gs = Signal(n, name="gs")
        self.us = Signal(n, name="us") if iotlb.u else None
        self.sizes = [Signal(PageSize, name=f"size{i}") for i in range(n)]
        self.perms = [Signal(3, name=f"rwx{i}") for i in range(n)]
        self.data_ram = EntryRam(_entry_data_layout(), n)
        self.plru = [Signal(max(ways - 1, 1), name=f"plru{s}") for s in range(iotlb.sets)]
        self.entry_ignored = [_ignored_segments(self.sizes[i], vpn_w, iotlb.sizes)
                              for i in range(n)]

    def covers(self, i, vpn, also_ignored=None):
        """Entry i's page holds 4 KiB page vpn (segments in ``also_ignored`` not
        compared)."""
        ignored = self.entry_ignored[i]
        if also_ignored is not None:
            ignored = [a | b for a, b in zip(ignored, also_ignored, strict=True)]
        return _same_page(self.tags[i].vpn, vpn, ignored, self.vpn_w, self.page_sizes)

    def touch(self, s, way):
        """Statements: point set s's tree away from way (:func:`_plru_path`)."""
        return [self.plru[s][b].eq(0 if upper else 1)
                for b, upper in _plru_path(self.ways, way)]
