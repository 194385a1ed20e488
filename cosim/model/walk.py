"""Page-table walks: first stage (Sv39/Sv48/Sv57) and second stage (Sv39x4/Sv48x4/Sv57x4).

RISC-V Privileged spec, "Virtual Address Translation Process" (Sv39/Sv48/Sv57, with Svnapot and
Svpbmt) and "Two-Stage Address Translation" (the x4 G-stage modes, implicit accesses of the
first stage going through the second stage), as used by the RISC-V IOMMU spec "Process to
translate an IOVA" steps 17 and 19. The IOMMU specifics are:

* a request is User-mode unless it carries a process_id with "Privilege Mode Requested"
  (spec "Process to translate an IOVA"; reference N.1.6): a supervisor request may use a
  U=0 first-stage leaf, and a U=1 one only for a read or write with ``PC.ta.SUM=1`` (a
  supervisor read-for-execute of a U=1 page faults regardless of SUM); the G-stage treats
  every access, implicit or not, as User (``U`` must be 1);
* Sv57 (5 levels, VA[63:57] equal to VA[56]) and Sv57x4 (5 levels, GPA[63:59] zero, a
  16 KiB root indexed by GPA[58:48]) differ from the other modes only in their geometry,
  which :class:`~iogate.hdl.formats.IosatpMode`/:class:`~iogate.hdl.formats.IohgatpMode`
  hold (reference N.2): leaves at level 4 map 256 TiB;
* no hardware A/D update (``capabilities.AMO_HWAD=0``): A=0, or D=0 on a write, is a
  page fault (first stage) or a guest-page fault (second stage) of the original access
  type (spec "Translation control (tc)", ``SADE``/``GADE``);
* first-stage page-table reads under a non-Bare second stage are GPAs translated by the
  G-stage as implicit reads; a guest-page fault there reports ``iotval2`` = the PTE's GPA
  with bit 0 set (spec "Fault/Event-Queue (FQ)"); any fault is reported for the original access
  type.

A walk either returns a :class:`Leaf` or raises :class:`TranslationFault`.
"""

from iogate.hdl import bits
from iogate.hdl.formats import PTE, Cause, IohgatpMode, IosatpMode
from iogate.hdl.port import Access

from iogate.cosim.model.memory import AccessFault

__all__ = ["TranslationFault", "Leaf", "Walker", "ACCESS_FAULT", "PAGE_FAULT",
           "GUEST_PAGE_FAULT", "privilege_allows"]

#: Fault cause by :class:`~iogate.hdl.port.Access` (Privileged spec exception codes, IOMMU
#: spec "Fault/Event-Queue (FQ)"): an execute is an instruction fetch.
ACCESS_FAULT = {Access.READ: Cause.READ_ACCESS_FAULT, Access.WRITE: Cause.WRITE_ACCESS_FAULT,
                Access.EXECUTE: Cause.INSTRUCTION_ACCESS_FAULT}
PAGE_FAULT = {Access.READ: Cause.READ_PAGE_FAULT, Access.WRITE: Cause.WRITE_PAGE_FAULT,
              Access.EXECUTE: Cause.INSTRUCTION_PAGE_FAULT}
GUEST_PAGE_FAULT = {Access.READ: Cause.READ_GUEST_PAGE_FAULT,
                    Access.WRITE: Cause.WRITE_GUEST_PAGE_FAULT,
                    Access.EXECUTE: Cause.INSTRUCTION_GUEST_PAGE_FAULT}


def _bit(name):
    off, width = bits.field_range(PTE, name)
    assert width == 1
    return 1 << off


# PTE field positions, taken once from the shared layout (not per walk).
_V, _R, _W, _X = _bit("v"), _bit("r"), _bit("w"), _bit("x")
_U, _G, _A, _D, _N = _bit("u"), _bit("g"), _bit("a"), _bit("d"), _bit("n")
_PPN_SHIFT, _PPN_WIDTH = bits.field_range(PTE, "ppn")
_PPN_MASK = (1 << _PPN_WIDTH) - 1
_PBMT_SHIFT, _ = bits.field_range(PTE, "pbmt")
_PBMT_MASK = bits.mask(PTE, "pbmt")
_RSVD_MASK = bits.reserved_mask(PTE)
#: Bits reserved in a non-leaf PTE: D, A, U (Privileged spec Sv39), N (Svnapot), PBMT (Svpbmt).
_NONLEAF_RSVD = _D | _A | _U | _N | _PBMT_MASK


class TranslationFault(Exception):
    """A walk stopped with ``cause`` (and ``iotval2`` for guest-page faults)."""

    def __init__(self, cause, iotval2=0):
        super().__init__(cause, iotval2)
        self.cause = cause
        self.iotval2 = iotval2


class Leaf:
    """The outcome of one stage for one address.

    Attributes
    ----------
    base_ppn : int
        First 4 KiB page of the output range (superpage or NAPOT base).
    size : int
        Bytes of the naturally aligned range the leaf maps (4 KiB, 64 KiB, 2 MiB, ...).
    r, w, x : bool
        Leaf permissions, ``w`` being W with D=1.
    pbmt : int
        The leaf's PBMT (0 when Svpbmt is absent, which makes non-zero values reserved).
    glob : bool
        A G bit was set on the walk (first stage: the mapping is global).
    u : bool
        The leaf's U bit (a cached entry is checked against each request's privilege).
    """

    __slots__ = ("base_ppn", "size", "r", "w", "x", "pbmt", "glob", "u")

    def __init__(self, base_ppn, size, r, w, x, pbmt, glob, u=True):
        self.base_ppn = base_ppn
        self.size = size
        self.r = r
        self.w = w
        self.x = x
        self.pbmt = pbmt
        self.glob = glob
        self.u = u

    def ppn_of(self, address):
        """The 4 KiB output page of ``address`` (an input address inside the range)."""
        return self.base_ppn | ((address & (self.size - 1)) >> 12)


#: The first-stage modes walked here (``iosatp.MODE``, spec "Device-context fields"); their
#: levels and VA width are :class:`~iogate.hdl.formats.IosatpMode`'s.
FIRST_STAGE = frozenset({IosatpMode.SV39, IosatpMode.SV48, IosatpMode.SV57})
#: The second-stage modes walked here (``iohgatp.MODE``); their levels, GPA width and root
#: index are :class:`~iogate.hdl.formats.IohgatpMode`'s.
SECOND_STAGE = frozenset({IohgatpMode.SV39X4, IohgatpMode.SV48X4, IohgatpMode.SV57X4})
#: Index bits of every table but an x4 root, in either stage (Privileged spec "Two-Stage Address
#: Translation").
_INDEX_BITS = IosatpMode.SV39.index_bits


class Walker:
    """Walks page tables in memory.

    Parameters
    ----------
    load64 : callable
        ``load64(address) -> int``: reads a little-endian doubleword of system memory and
        raises :class:`iogate.cosim.model.memory.AccessFault` on a bus error or an address beyond
        ``capabilities.PAS``.
    svpbmt : bool
        Svpbmt implemented; otherwise non-zero PBMT bits are reserved.
    """

    def __init__(self, load64, svpbmt):
        self._load64 = load64
        # Leaf bits whose being set is a reserved encoding (page fault).
        self._leaf_rsvd = _RSVD_MASK | (0 if svpbmt else _PBMT_MASK)

    # -- second stage --------------------------------------------------------------------

    def g_stage(self, gpa, access, mode, root_ppn, implicit=False):
        """Translate guest-physical address ``gpa`` with the G-stage (Sv39x4/Sv48x4/Sv57x4).

        ``access`` is an :class:`~iogate.hdl.port.Access` (in :meth:`s_stage` too).
        ``implicit`` marks the read of a first-stage PTE: permissions are checked as for a
        read (R, and A) while any fault is reported for the original ``access``, with
        ``iotval2`` bit 0 set (spec "Fault/Event-Queue (FQ)"). The 16 KiB root table is indexed by
        the 2-bit wider top VPN (Privileged spec, Sv39x4; reference N.2 for Sv57x4).
        """
        mode = IohgatpMode(mode)
        levels, gpa_bits = mode.levels, mode.gpa_bits
        gpf = GUEST_PAGE_FAULT[access]
        tval2 = ((gpa >> 2) << 2) | (1 if implicit else 0)
        if gpa >> gpa_bits:
            raise TranslationFault(gpf, tval2)
        check = Access.READ if implicit else access
        i = levels - 1
        a = root_ppn << 12
        while True:
            shift = 12 + _INDEX_BITS * i
            width = mode.root_index_bits if i == levels - 1 else _INDEX_BITS
            index = (gpa >> shift) & ((1 << width) - 1)
            try:
                pte = self._load64(a + index * 8)
            except AccessFault:
                raise TranslationFault(ACCESS_FAULT[access]) from None
            leaf = self._check_pte(pte, i, gpf, tval2)
            if leaf:
                break
            i -= 1
            if i < 0:
                raise TranslationFault(gpf, tval2)
            a = ((pte >> _PPN_SHIFT) & _PPN_MASK) << 12
        # The G-stage treats every access as a User-mode one (IOMMU spec
        # "Process to translate an IOVA").
        return self._leaf(pte, i, gpa, check, gpf, tval2, False, False, False)

    # -- first stage ---------------------------------------------------------------------

    def s_stage(self, iova, access, mode, root_ppn, g_mode=0, g_root=0, priv=False,
                sum_=False):
        """Translate ``iova`` with the first stage (Sv39/Sv48/Sv57).

        With ``g_mode`` non-zero, ``root_ppn`` and every non-leaf PPN are guest PPNs and
        each PTE address goes through :meth:`g_stage` as an implicit read first. ``priv``
        (supervisor) and ``sum_`` (``PC.ta.SUM``) select the privilege rule of
        :func:`privilege_allows` for the leaf.
        """
        mode = IosatpMode(mode)
        levels = mode.levels
        pf = PAGE_FAULT[access]
        # Bits above the VA width must all equal the top VA bit (Privileged spec Sv39).
        if not mode.is_canonical(iova):
            raise TranslationFault(pf)
        i = levels - 1
        a = root_ppn << 12
        glob = False
        while True:
            pte_address = a + ((iova >> (12 + _INDEX_BITS * i)) & ((1 << _INDEX_BITS) - 1)) * 8
            if g_mode:
                g = self.g_stage(pte_address, access, g_mode, g_root, implicit=True)
                pte_address = (g.ppn_of(pte_address) << 12) | (pte_address & 0xFFF)
            try:
                pte = self._load64(pte_address)
            except AccessFault:
                raise TranslationFault(ACCESS_FAULT[access]) from None
            leaf = self._check_pte(pte, i, pf, 0)
            if pte & _G:
                glob = True
            if leaf:
                break
            i -= 1
            if i < 0:
                raise TranslationFault(pf)
            a = ((pte >> _PPN_SHIFT) & _PPN_MASK) << 12
        return self._leaf(pte, i, iova, access, pf, 0, glob, priv, sum_)

    # -- shared steps --------------------------------------------------------------------

    def _check_pte(self, pte, i, cause, tval2):
        """Privileged spec "Virtual Address Translation Process" steps 3-4: valid, no reserved
        encoding; True for a leaf."""
        if not pte & _V or (pte & (_R | _W)) == _W or pte & _RSVD_MASK:
            raise TranslationFault(cause, tval2)
        if pte & (_R | _X):
            if pte & self._leaf_rsvd:
                raise TranslationFault(cause, tval2)
            if (pte >> _PBMT_SHIFT) & 3 == 3:           # PBMT=3 is reserved (Svpbmt)
                raise TranslationFault(cause, tval2)
            if pte & _N:
                # Svnapot: only a level-0 PTE with ppn[3:0] = 1000 (64 KiB) is defined.
                if i != 0 or (pte >> _PPN_SHIFT) & 0xF != 0x8:
                    raise TranslationFault(cause, tval2)
            return True
        if pte & _NONLEAF_RSVD:
            raise TranslationFault(cause, tval2)
        return False

    @staticmethod
    def _leaf(pte, i, address, access, cause, tval2, glob, priv, sum_):
        """Privileged spec "Virtual Address Translation Process" steps 5-8 for a leaf at level
        ``i``; ``priv``/``sum_`` as :meth:`s_stage` (always False for the G-stage)."""
        r, w, x = pte & _R, pte & _W, pte & _X
        u = bool(pte & _U)
        if not privilege_allows(u, access, priv, sum_):
            raise TranslationFault(cause, tval2)
        if access is Access.READ:
            ok = r
        elif access is Access.WRITE:
            ok = w
        else:
            ok = x
        if not ok:
            raise TranslationFault(cause, tval2)
        ppn = (pte >> _PPN_SHIFT) & _PPN_MASK
        if i:
            if ppn & ((1 << (_INDEX_BITS * i)) - 1):        # misaligned superpage
                raise TranslationFault(cause, tval2)
            size = 1 << (12 + _INDEX_BITS * i)
        elif pte & _N:
            ppn &= ~0xF
            size = 1 << 16
        else:
            size = 1 << 12
        d = pte & _D
        if not pte & _A or (access is Access.WRITE and not d):   # no hardware A/D update
            raise TranslationFault(cause, tval2)
        return Leaf(ppn, size, bool(r), bool(w and d), bool(x),
                    (pte >> _PBMT_SHIFT) & 3, glob, u)


def privilege_allows(u, access, priv, sum_):
    """Whether a first-stage leaf with U bit ``u`` may be used by the request (reference
    N.1.6, "Privilege checks"; Privileged spec "Memory Privilege in mstatus Register", SUM).

    ========================  ==========  =======================
    request                   leaf U=0    leaf U=1
    ========================  ==========  =======================
    User                      fault       ok
    Supervisor, read/write    ok          ok only if SUM=1
    Supervisor, execute       ok          fault regardless of SUM
    ========================  ==========  =======================
    """
    if not priv:
        return u
    if not u:
        return True
    return access is not Access.EXECUTE and bool(sum_)
