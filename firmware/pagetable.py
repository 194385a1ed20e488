"""Page tables for the first stage (Sv39/Sv48/Sv57) and the second stage (Sv39x4/Sv48x4/Sv57x4).

The table format is the RISC-V Privileged Architecture's (sections "Sv39", "Sv48", "Sv57",
"Svnapot", "Svpbmt", and "Two-Stage Address Translation" for the x4 modes), which the
IOMMU walks unchanged (RISC-V IOMMU spec "Process to translate an IOVA", which defers to
"Two-Stage Address Translation"). :meth:`PageTable.map` uses the largest page that the alignment of
the IOVA and the physical address and the remaining size allow: 256 TiB (5-level modes),
512 GiB (4- and 5-level modes), 1 GiB, 2 MiB, a 64 KiB Svnapot run of sixteen 4 KiB entries,
4 KiB. A superpage or a NAPOT run that a later
map or unmap covers only in part is first split into the next smaller pages with the same
translation (a page-size demotion, spec "Accessed (A)/Dirty (D) bit updates and page promotions").

Every leaf has U=1 (requests without a process_id are User mode, spec "Process to translate an
IOVA"; second-stage accesses always are) and A=1, D=1: the IOMMU here does no hardware A/D update,
so a leaf with A=0, or D=0 on a write, would fault. D=1 on a read-only leaf is harmless.

Each change returns a :class:`TableChanges` that says which cached entries may now be
stale; :mod:`iogate.firmware.invalidate` turns it into the spec's IOTINVAL commands.
"""

import dataclasses
import enum

from iogate.hdl import bits
from iogate.hdl.formats import PTE, IohgatpMode, IosatpMode, Pbmt

from iogate.firmware.alloc import PAGE_SIZE

__all__ = ["Stage", "TableChanges", "Translation", "PageTable", "NAPOT_SIZE"]

#: Size of the one Svnapot page size the IOMMU supports (Svnapot is mandatory, spec
#: "IOMMU capabilities (capabilities)").
NAPOT_SIZE = 64 * 1024
_NAPOT_ENTRIES = NAPOT_SIZE // PAGE_SIZE
_PTE_SIZE = 8
_V = bits.mask(PTE, "v")
_XWR = bits.mask(PTE, "r") | bits.mask(PTE, "w") | bits.mask(PTE, "x")
_N = bits.mask(PTE, "n")

# The modes tables are built for; each mode's levels, input width and root index width are
# its enum's. The x4 modes widen the root index, so their root table is 16 KiB (Privileged
# spec, "Two-Stage Address Translation").
_FIRST_STAGE = (IosatpMode.SV39, IosatpMode.SV48, IosatpMode.SV57)
_SECOND_STAGE = (IohgatpMode.SV39X4, IohgatpMode.SV48X4, IohgatpMode.SV57X4)
#: Index bits of every table but an x4 root: 512 PTEs in 4 KiB (Privileged spec, "Sv39").
_INDEX_BITS = IosatpMode.SV39.index_bits


class Stage(enum.Enum):
    """Which translation stage a table is for; it decides the invalidation command."""
    FIRST = "first"
    SECOND = "second"


@dataclasses.dataclass
class TableChanges:
    """What a change to a page table may have left stale in the IOMMU's caches.

    Making an invalid entry valid is not listed: invalid entries are never cached
    (spec "Caching invalid entries").

    Attributes
    ----------
    stage : Stage
    leaves : list of (int, int)
        ``(address, size)`` of each page whose valid leaf entry was replaced or cleared,
        in order, without duplicates. The address is an IOVA (first stage) or a GPA.
    nonleaf : bool
        A valid non-leaf entry was replaced or cleared: cached walk entries anywhere in
        the address space may be stale.
    freed : list of int
        Table pages that are no longer linked; they may be reused only after the
        invalidation has completed (:meth:`PageTable.release`).
    """

    stage: Stage
    leaves: list = dataclasses.field(default_factory=list)
    nonleaf: bool = False
    freed: list = dataclasses.field(default_factory=list)

    def __bool__(self):
        """True if an invalidation is needed."""
        return bool(self.leaves) or self.nonleaf

    def add_leaf(self, address, size):
        if (address, size) not in self.leaves:
            self.leaves.append((address, size))

    def merge(self, other):
        """Add ``other``'s changes (same stage) to these."""
        if other.stage is not self.stage:
            raise ValueError(f"cannot merge {other.stage.name} changes into {self.stage.name}")
        for leaf in other.leaves:
            self.add_leaf(*leaf)
        self.nonleaf |= other.nonleaf
        self.freed.extend(other.freed)
        return self


@dataclasses.dataclass(frozen=True)
class Translation:
    """What a table maps one address to (:meth:`PageTable.lookup`).

    Attributes
    ----------
    pa : int
        The output address of the address looked up (not of its page).
    size : int
        Size of the page the leaf maps (64 KiB for a NAPOT run).
    r, w, x : bool
    pbmt : Pbmt
    """

    pa: int
    size: int
    r: bool
    w: bool
    x: bool
    pbmt: Pbmt


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class PageTable:
    """One page table, built in memory through a :class:`~iogate.firmware.bus.Bus`.

    Parameters
    ----------
    bus : Bus
        Where the table lives (a guest's first stage may live behind a
        :class:`~iogate.firmware.guest.GuestMemory`).
    alloc : PageAllocator
        Where table pages come from; the root is allocated here.
    mode : IosatpMode or IohgatpMode
        ``IosatpMode.SV39``/``SV48``/``SV57`` for a first-stage table,
        ``IohgatpMode.SV39X4``/``SV48X4``/``SV57X4`` for a second-stage one.
    oa_bits : int
        Width of the output addresses a leaf may hold (the PTE's PPN holds 56 bits).
    svpbmt : bool
        Leaves may carry a memory type other than PMA (``capabilities.Svpbmt``).

    Raises
    ------
    TypeError
        If ``mode`` is neither an ``IosatpMode`` nor an ``IohgatpMode``.
    ValueError
        If ``mode`` is Bare, or ``oa_bits`` is outside 12..56.
    """

    def __init__(self, bus, alloc, mode, *, oa_bits=56, svpbmt=False):
        if isinstance(mode, IosatpMode):
            stage, modes = Stage.FIRST, _FIRST_STAGE
        elif isinstance(mode, IohgatpMode):
            stage, modes = Stage.SECOND, _SECOND_STAGE
        else:
            raise TypeError(f"mode must be an IosatpMode or an IohgatpMode, not {mode!r}")
        if mode not in modes:
            raise ValueError(f"mode must be one of {', '.join(m.name for m in modes)}, "
                             f"not {mode.name}")
        if not _is_int(oa_bits) or not 12 <= oa_bits <= 56:
            raise ValueError(f"oa_bits must be between 12 and 56, not {oa_bits!r}")
        self.bus = bus
        self.alloc = alloc
        self.mode = mode
        self.stage = stage
        self.levels = mode.levels
        self.oa_bits = oa_bits
        self.svpbmt = bool(svpbmt)
        if stage is Stage.FIRST:
            va_bits, root_index_bits = mode.va_bits, mode.index_bits
        else:
            va_bits, root_index_bits = mode.gpa_bits, mode.root_index_bits
        #: Width of the input address: 39/48/57 (first stage), 41/50/59 (second stage).
        self.va_bits = va_bits
        self._extra = root_index_bits - _INDEX_BITS
        self.root_size = PAGE_SIZE << self._extra
        self.root = alloc.alloc(self.root_size, align=self.root_size)
        # Candidate leaf sizes, largest first: (size, level, napot).
        self._sizes = [(self.page_size(level), level, False)
                       for level in range(self.levels - 1, 0, -1)]
        self._sizes += [(NAPOT_SIZE, 0, True), (PAGE_SIZE, 0, False)]

    @property
    def page_sizes(self):
        """The leaf sizes this table uses, smallest first (for ``page_size_mask``)."""
        return tuple(sorted(size for size, _, _ in self._sizes))

    @staticmethod
    def page_size(level):
        """Bytes mapped by a leaf at ``level`` (0 is the 4 KiB level)."""
        return PAGE_SIZE << (_INDEX_BITS * level)

    # -- PTE access ---------------------------------------------------------------------

    def _read(self, address):
        return int.from_bytes(self.bus.mem_read(address, _PTE_SIZE), "little")

    def _write(self, address, pte):
        self.bus.mem_write(address, pte.to_bytes(_PTE_SIZE, "little"))

    def index(self, va, level):
        """The index of ``va`` in a table at ``level`` (the root is ``levels - 1``; an x4
        root indexes two bits more, Privileged spec "Two-Stage Address Translation")."""
        width = _INDEX_BITS + (self._extra if level == self.levels - 1 else 0)
        return (va >> (12 + _INDEX_BITS * level)) & ((1 << width) - 1)

    @staticmethod
    def _is_leaf(pte):
        return bool(pte & _XWR)

    @staticmethod
    def _pointer(page):
        # Non-leaf PTE: V=1 and D, A, U, N, PBMT all 0 (Privileged spec: reserved for
        # non-leaf PTEs, must be cleared by software).
        return bits.pack(PTE, v=1, ppn=page >> 12)

    # -- argument checks ----------------------------------------------------------------

    def _check_range(self, iova, size):
        for name, value in (("iova", iova), ("size", size)):
            if not _is_int(value):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if iova % PAGE_SIZE or size % PAGE_SIZE or size <= 0:
            raise ValueError(f"iova ({iova:#x}) and size ({size:#x}) must be 4 KiB aligned "
                             f"and size positive")
        end = iova + size
        if self.stage is Stage.SECOND:
            if iova < 0 or end > 1 << self.va_bits:
                raise ValueError(f"[{iova:#x}, {end:#x}) is outside the {self.va_bits}-bit "
                                 f"guest physical space of {self.mode.name}")
            return
        # First stage: an IOVA must be sign-extended from bit va_bits-1 (Privileged spec,
        # "Sv39"); a range may not straddle the hole between the two halves.
        half = 1 << (self.va_bits - 1)
        if not (0 <= iova and end <= half) and not (iova >= (1 << 64) - half and end <= 1 << 64):
            raise ValueError(f"[{iova:#x}, {end:#x}) is not inside one canonical half of the "
                             f"{self.va_bits}-bit space of {self.mode.name}")

    def _leaf(self, pa, r, w, x, pbmt, napot):
        if not _is_int(pa):
            raise TypeError(f"pa must be an integer, not {pa!r}")
        if not (r or w or x):
            raise ValueError("a mapping needs at least one of r, w, x")
        if w and not r:
            # xwr=010 and 110 are reserved encodings (Privileged spec, table "Encoding of
            # PTE R/W/X fields"); a write-only request maps as read-write.
            raise ValueError("w requires r (write-only PTE encodings are reserved)")
        pbmt = Pbmt(pbmt)
        if pbmt is Pbmt.RSVD:
            raise ValueError("pbmt 3 is reserved")
        if pbmt is not Pbmt.PMA and not self.svpbmt:
            raise ValueError(f"pbmt {pbmt.name} needs Svpbmt")
        ppn = pa >> 12
        if napot:
            # Svnapot: a 64 KiB run sets N and encodes the size in ppn[3:0] = 0b1000.
            ppn = ppn & ~(_NAPOT_ENTRIES - 1) | _NAPOT_ENTRIES >> 1
        return bits.pack(PTE, v=1, r=bool(r), w=bool(w), x=bool(x), u=1, a=1, d=1,
                         ppn=ppn, pbmt=pbmt, n=bool(napot))

    # -- public operations ----------------------------------------------------------------

    def map(self, iova, pa, size, *, r=False, w=False, x=False, pbmt=Pbmt.PMA):
        """Map ``[iova, iova + size)`` to ``[pa, pa + size)``, replacing what was there.

        Parameters
        ----------
        iova : int
            First input address (an IOVA, or a GPA for a second-stage table); 4 KiB
            aligned.
        pa : int
            First output address; 4 KiB aligned.
        size : int
            A positive multiple of 4 KiB.
        r, w, x : bool
            Permissions; ``w`` requires ``r``.
        pbmt : Pbmt
            Memory type (Svpbmt).

        Returns
        -------
        TableChanges

        Raises
        ------
        ValueError
            On a misaligned or out-of-range address or size, or an illegal permission or
            memory type.
        """
        self._check_range(iova, size)
        self._leaf(pa, r, w, x, pbmt, False)  # only to check the attributes
        if pa < 0 or pa % PAGE_SIZE or pa + size > 1 << self.oa_bits:
            raise ValueError(f"pa [{pa:#x}, {pa + size:#x}) must be 4 KiB aligned and inside "
                             f"the {self.oa_bits}-bit output space")
        changes = TableChanges(self.stage)
        offset = 0
        while offset < size:
            va, out, left = iova + offset, pa + offset, size - offset
            # The largest page that fits; the loop variables are used after the break.
            for page, level, napot in self._sizes:  # noqa: B007
                if (va | out) % page == 0 and left >= page:
                    break
            pte = self._leaf(out, r, w, x, pbmt, napot)
            table = self._walk_to(va, level, changes)
            index = self.index(va, level)
            if napot:
                for i in range(_NAPOT_ENTRIES):
                    self._set(table + (index + i) * _PTE_SIZE, pte, va + i * PAGE_SIZE, 0, changes)
            else:
                if level == 0:
                    self._demote_napot(table, index, va, changes)
                self._set(table + index * _PTE_SIZE, pte, va, level, changes)
            offset += page
        return changes

    def unmap(self, iova, size):
        """Remove every mapping in ``[iova, iova + size)``; holes are skipped.

        A superpage or NAPOT run partly inside the range is split first, so the part
        outside keeps its translation.

        Returns
        -------
        TableChanges
        """
        self._check_range(iova, size)
        changes = TableChanges(self.stage)
        va, end = iova, iova + size
        while va < end:
            va = self._unmap_from(va, end, changes)
        return changes

    def lookup(self, iova):
        """What ``iova`` translates to, or ``None`` if it is not mapped.

        A software walk of this table alone (for a second-stage table, ``iova`` is a GPA).
        """
        table = self.root
        for level in range(self.levels - 1, -1, -1):
            pte = self._read(table + self.index(iova, level) * _PTE_SIZE)
            if not pte & _V:
                return None
            if self._is_leaf(pte):
                f = bits.unpack(PTE, pte)
                page = NAPOT_SIZE if f["n"] else self.page_size(level)
                base = (f["ppn"] << 12) & ~(page - 1)
                return Translation(pa=base | iova & (page - 1), size=page, r=bool(f["r"]),
                                   w=bool(f["w"]), x=bool(f["x"]), pbmt=Pbmt(f["pbmt"]))
            table = bits.get(PTE, pte, "ppn") << 12
        return None

    def release(self, changes):
        """Free the table pages ``changes`` unlinked; call once their invalidation is done."""
        for page in changes.freed:
            self.alloc.free(page)
        changes.freed.clear()

    def destroy(self):
        """Free every page of the table, root included.

        Only once no device context points at the table any more and that change has
        been invalidated.
        """
        for page in self._subtree(self.root, self.levels - 1):
            self.alloc.free(page)
        self.root = None

    # -- internals ----------------------------------------------------------------------

    def _walk_to(self, va, level, changes):
        """The table at ``level`` on ``va``'s walk, creating and splitting on the way."""
        table = self.root
        for lvl in range(self.levels - 1, level, -1):
            entry = table + self.index(va, lvl) * _PTE_SIZE
            pte = self._read(entry)
            if not pte & _V:
                table = self.alloc.alloc(PAGE_SIZE)
                self._write(entry, self._pointer(table))
            elif self._is_leaf(pte):
                table = self._split(entry, pte, va, lvl, changes)
            else:
                table = bits.get(PTE, pte, "ppn") << 12
        return table

    def _split(self, entry, pte, va, level, changes):
        """Replace the superpage leaf ``pte`` at ``level`` by a table of 512 smaller leaves
        with the same translation; return the new table."""
        step = 1 << (_INDEX_BITS * (level - 1))
        base = bits.get(PTE, pte, "ppn")
        table = self.alloc.alloc(PAGE_SIZE, zero=False)
        # Fill the new table completely before linking it, so that a walk in between
        # sees either the old superpage or the whole new table.
        raw = b"".join(bits.put(PTE, pte, "ppn", base + i * step).to_bytes(_PTE_SIZE, "little")
                       for i in range(1 << _INDEX_BITS))
        self.bus.mem_write(table, raw)
        self._write(entry, self._pointer(table))
        page = self.page_size(level)
        changes.add_leaf(va & ~(page - 1), page)
        return table

    def _demote_napot(self, table, index, va, changes):
        """Turn the NAPOT run holding entry ``index`` of a 4 KiB-level table into sixteen
        plain 4 KiB leaves with the same translation."""
        first = index & ~(_NAPOT_ENTRIES - 1)
        run = va & ~(NAPOT_SIZE - 1)
        for i in range(_NAPOT_ENTRIES):
            entry = table + (first + i) * _PTE_SIZE
            pte = self._read(entry)
            if pte & _V and pte & _N:
                plain = bits.put(PTE, pte & ~_N, "ppn",
                                 (bits.get(PTE, pte, "ppn") & ~(_NAPOT_ENTRIES - 1)) + i)
                self._set(entry, plain, run + i * PAGE_SIZE, 0, changes)

    def _set(self, entry, new, va, level, changes):
        """Store ``new`` at ``entry`` (mapping ``va`` at ``level``), noting what it replaces."""
        old = self._read(entry)
        if old == new:
            return
        if old & _V:
            if self._is_leaf(old):
                page = NAPOT_SIZE if old & _N else self.page_size(level)
                changes.add_leaf(va & ~(page - 1), page)
            else:
                changes.nonleaf = True
                changes.freed.extend(self._subtree(bits.get(PTE, old, "ppn") << 12, level - 1))
        self._write(entry, new)

    def _subtree(self, table, level):
        """Every table page reachable from ``table`` (at ``level``), itself included."""
        pages = [table]
        if level == 0:
            return pages
        size = self.root_size if table == self.root else PAGE_SIZE
        raw = self.bus.mem_read(table, size)
        for i in range(0, size, _PTE_SIZE):
            pte = int.from_bytes(raw[i:i + _PTE_SIZE], "little")
            if pte & _V and not self._is_leaf(pte):
                pages += self._subtree(bits.get(PTE, pte, "ppn") << 12, level - 1)
        return pages

    def _unmap_from(self, va, end, changes):
        """Unmap from ``va`` up to the end of the first leaf or hole; return where it ends."""
        table = self.root
        for level in range(self.levels - 1, -1, -1):
            page = self.page_size(level)
            index = self.index(va, level)
            entry = table + index * _PTE_SIZE
            pte = self._read(entry)
            base = va & ~(page - 1)
            if not pte & _V:
                return min(end, base + page)
            if not self._is_leaf(pte):
                table = bits.get(PTE, pte, "ppn") << 12
                continue
            if pte & _N:
                run = va & ~(NAPOT_SIZE - 1)
                if run == va and va + NAPOT_SIZE <= end:
                    for i in range(_NAPOT_ENTRIES):
                        self._set(entry + i * _PTE_SIZE, 0, va + i * PAGE_SIZE, 0, changes)
                    return va + NAPOT_SIZE
                self._demote_napot(table, index, va, changes)
                self._set(entry, 0, va, 0, changes)
                return va + PAGE_SIZE
            if base == va and va + page <= end:
                self._set(entry, 0, va, level, changes)
                return va + page
            table = self._split(entry, pte, va, level, changes)
        raise AssertionError("a walk ended below the 4 KiB level")  # pragma: no cover
