"""What the IOMMU's caches may still hold: device contexts, IOTLB leaves and MSI PTEs.

RISC-V IOMMU spec "IOMMU Page-Table cache invalidation commands", "IOMMU Command-queue Fence
commands", "IOMMU directory cache invalidation commands" and "Caching in-memory data structures": a
valid DC located for a device, and a successful translation, may be cached; a cache may answer from
such an entry until an invalidation that covers it (``IODIR.INVAL_DDT``, ``IOTINVAL.VMA``,
``IOTINVAL.GVMA`` with matching operands) has been followed by a completed ``IOFENCE.C`` (spec
"IOMMU Command-queue Fence commands": the fence's completion guarantees earlier commands completed).
Invalid entries (faults) are never cached.

With process directories (reference N.1.7) a process context is cached by
(``device_id``, ``process_id``) and a non-leaf PDTE by the device and the process_id bits
that select it, holding the SPA of the table it points to (so a later change of the
second stage does not reach it: "caches may hold translated SPA pointers").
``IODIR.INVAL_PDT`` covers only the leaf PC of its (DID, PID); ``IODIR.INVAL_DDT`` covers
a device's DC and every PDT entry under it (DV=1), or everything (DV=0).

Each entry therefore lives in two steps: an invalidation marks it *doomed* (the model's
own lookups stop using it, a real cache may still answer from it), and the next completed
``IOFENCE.C`` removes every doomed entry.

IOTLB entries are tagged as the spec says (spec "Process to translate an IOVA"): the first stage by
GSCID+PSCID+IOVA (PSCID+IOVA when the second stage is Bare), a second-stage-only
translation by GSCID+GPA. An entry holds the combined two-stage answer for a naturally
aligned IOVA range, with each stage's permissions kept apart so that a hit that the entry
does not permit faults in the right stage.

MSI translation (reference N.4.5; issue 16 decisions 4 and 6): a basic-translate MSI result
is an IOTLB entry like any other (4 KiB, the request's GSCID and PSCID tags, the MSI page's
GPA as its second-stage range, X denied as an access fault), so ``IOTINVAL.GVMA`` of the
GSCID covers it and ``IOTINVAL.VMA`` covers it as a first-stage entry. MRIF-mode results
are never IOTLB entries. MSI PTEs of both modes are kept in an MSI PTE cache tagged by
(GSCID, GPA page): only ``IOTINVAL.GVMA`` covers it (GV=0 all, GV=1 the GSCID's, GV=1 AV=1
the GSCID's entry for that page); ``IOTINVAL.VMA`` and ``IODIR`` do not (a DC change needs
``IODIR.INVAL_DDT`` + ``IOTINVAL.GVMA``). The MSI PTE cache belongs to the
:class:`Iotlb` object, whose ``inval_gvma`` and ``fence`` reach it: both are page-table
caches that the same commands invalidate.
"""

__all__ = ["DcEntry", "DcCache", "PcCache", "PdteCache", "TlbEntry", "Iotlb", "MsiPteCache"]


class DcEntry:
    """A cached device context for one ``device_id``."""

    __slots__ = ("device_id", "dc", "doomed")

    def __init__(self, device_id, dc):
        self.device_id = device_id
        self.dc = dc
        self.doomed = False


class DcCache:
    """Device contexts a directory cache may hold, by ``device_id`` (spec "IOMMU directory cache
    invalidation commands")."""

    def __init__(self):
        self._entries = {}

    def fill(self, device_id, dc):
        """Record that ``dc`` was located for ``device_id`` (a cache may now hold it)."""
        entries = self._entries.setdefault(device_id, [])
        for e in entries:
            if e.dc == dc:
                # Read again from memory: a fresh copy, no longer doomed.
                e.doomed = False
                if entries[-1] is not e:
                    entries.remove(e)
                    entries.append(e)
                return
        entries.append(DcEntry(device_id, dc))

    def lookup(self, device_id):
        """The newest live entry for ``device_id`` (the model's own cache hit), or None."""
        for e in reversed(self._entries.get(device_id, ())):
            if not e.doomed:
                return e.dc
        return None

    def candidates(self, device_id):
        """Every DC a cache may still answer with for ``device_id``, doomed or not."""
        return [e.dc for e in self._entries.get(device_id, ())]

    def inval_ddt(self, device_id=None):
        """``IODIR.INVAL_DDT``: DV=1 dooms ``device_id``'s entries, DV=0 all of them."""
        if device_id is None:
            groups = self._entries.values()
        else:
            groups = (self._entries.get(device_id, ()),)
        for entries in groups:
            for e in entries:
                e.doomed = True

    def fence(self):
        """``IOFENCE.C`` completed: forget every doomed entry."""
        for device_id in list(self._entries):
            live = [e for e in self._entries[device_id] if not e.doomed]
            if live:
                self._entries[device_id] = live
            else:
                del self._entries[device_id]

    def __len__(self):
        return sum(len(v) for v in self._entries.values())


class _Keyed:
    """Values a cache may hold under a key, each live or doomed (the DcCache pattern)."""

    def __init__(self):
        self._entries = {}           # key -> [DcEntry-like [value, doomed]]

    def fill(self, key, value):
        entries = self._entries.setdefault(key, [])
        for e in entries:
            if e[0] == value:
                e[1] = False
                if entries[-1] is not e:
                    entries.remove(e)
                    entries.append(e)
                return
        entries.append([value, False])

    def lookup(self, key):
        for value, doomed in reversed(self._entries.get(key, ())):
            if not doomed:
                return value
        return None

    def candidates(self, key):
        return [value for value, _ in self._entries.get(key, ())]

    def states(self, key):
        """``(value, doomed)`` of every entry under ``key``, oldest first."""
        return [(value, doomed) for value, doomed in self._entries.get(key, ())]

    def doom(self, keep=lambda key: False):
        """Doom every entry whose key ``keep`` does not spare."""
        for key, entries in self._entries.items():
            if not keep(key):
                for e in entries:
                    e[1] = True

    def fence(self):
        for key in list(self._entries):
            live = [e for e in self._entries[key] if not e[1]]
            if live:
                self._entries[key] = live
            else:
                del self._entries[key]

    def __len__(self):
        return sum(len(v) for v in self._entries.values())


class PcCache(_Keyed):
    """Process contexts a PC cache may hold, by (``device_id``, ``process_id``) (reference
    N.1.7)."""

    def inval_pdt(self, device_id, process_id):
        """``IODIR.INVAL_PDT``: the leaf PC of (DID, PID) only."""
        self.doom(lambda key: key != (device_id, process_id))

    def inval_ddt(self, device_id=None):
        """``IODIR.INVAL_DDT``: every PC of ``device_id`` (DV=1), or all (DV=0)."""
        if device_id is None:
            self.doom()
        else:
            self.doom(lambda key: key[0] != device_id)


class PdteCache(_Keyed):
    """Non-leaf PDT entries (and the translated ``pdtp``) a cache may hold: key
    (``device_id``, level, process_id bits above ``PDI[level]``), value the SPA page of the
    level-``level`` table. Only ``IODIR.INVAL_DDT`` covers them (``IODIR.INVAL_PDT`` is
    leaf only, reference N.1.7)."""

    def inval_ddt(self, device_id=None):
        if device_id is None:
            self.doom()
        else:
            self.doom(lambda key: key[0] != device_id)


class MsiPteCache(_Keyed):
    """MSI PTEs a cache may hold: key (GSCID, GPA page number), value the PTE's
    ``(dw0, dw1)`` as read (well-formed ones only: faults are never cached)."""

    def inval_gvma(self, gv, gscid, av, addr):
        """``IOTINVAL.GVMA``: GV=0 dooms all, GV=1 the GSCID's, GV=1 AV=1 the GSCID's entry
        for the page of GPA ``addr``."""
        if not gv:
            self.doom()
        elif not av:
            self.doom(lambda key: key[0] != gscid)
        else:
            page = addr >> 12
            self.doom(lambda key: key != (gscid, page))


class TlbEntry:
    """A cached translation of the naturally aligned IOVA range ``[iova, iova+size)``.

    Built with keywords only: most fields are ints or Nones that would be easy to swap.

    Attributes
    ----------
    gscid : int or None
        GSCID, or None when the second stage was Bare (a host entry).
    pscid : int or None
        PSCID, or None when the first stage was Bare (a GPA -> SPA entry).
    glob : bool
        A first-stage G bit was set: PSCID-scoped invalidations keep it (spec "IOMMU Page-Table
        cache invalidation commands").
    iova, size : int
        The input range.
    gpa : int or None
        First GPA of the range, when the second stage was not Bare.
    s1_range, s2_range : tuple of int or None
        ``(base, size)`` of the first-stage leaf (IOVA) and the second-stage leaf (GPA) the
        entry was built from: an invalidation with AV=1 covers the entry when its address
        falls anywhere in the leaf's range, even if the entry holds a smaller piece.
    ppn : int
        First output page of the range.
    s1 : tuple of bool
        First-stage ``(r, w, x)`` (all True when Bare), indexed by ``Access.value``.
    s2 : tuple of bool
        Second-stage ``(r, w, x)`` (all True when Bare), indexed likewise.
    pbmt : int
        Combined memory type.
    u : bool or None
        The first-stage leaf's U bit, checked against each request's privilege (reference
        N.1.6); None when the first stage was Bare.
    msi : bool
        A basic-translate MSI result (reference N.4.3): ``s2`` is (True, True, False) and
        the X it denies is an instruction access fault (1), not a guest-page fault.
    """

    __slots__ = ("gscid", "pscid", "glob", "iova", "size", "gpa", "ppn", "s1", "s2",
                 "pbmt", "s1_range", "s2_range", "u", "msi", "doomed")

    def __init__(self, *, gscid, pscid, glob, iova, size, gpa, ppn, s1, s2, pbmt,
                 s1_range=None, s2_range=None, u=None, msi=False):
        self.gscid = gscid
        self.pscid = pscid
        self.glob = glob
        self.iova = iova
        self.size = size
        self.gpa = gpa
        self.ppn = ppn
        self.s1 = s1
        self.s2 = s2
        self.pbmt = pbmt
        self.s1_range = s1_range
        self.s2_range = s2_range
        self.u = u
        self.msi = msi
        self.doomed = False

    def same(self, other):
        return (self.iova == other.iova and self.size == other.size and self.gpa == other.gpa
                and self.ppn == other.ppn and self.s1 == other.s1 and self.s2 == other.s2
                and self.pbmt == other.pbmt and self.glob == other.glob
                and self.s1_range == other.s1_range and self.s2_range == other.s2_range
                and self.u == other.u and self.msi == other.msi)


class Iotlb:
    """Leaf translations an IOTLB may hold (spec "IOMMU Page-Table cache invalidation commands")."""

    def __init__(self):
        # (gscid, pscid) -> size -> iova base -> [TlbEntry]
        self._tags = {}
        #: The MSI PTE cache, invalidated with the IOTLB (see the module docstring).
        self.msi_ptes = MsiPteCache()

    def fill(self, entry):
        """Record a successful translation (a cache may now hold it)."""
        by_size = self._tags.setdefault((entry.gscid, entry.pscid), {})
        bucket = by_size.setdefault(entry.size, {}).setdefault(entry.iova, [])
        for e in bucket:
            if e.same(entry):
                e.doomed = False
                if bucket[-1] is not e:
                    bucket.remove(e)
                    bucket.append(e)
                return
        bucket.append(entry)

    def candidates(self, gscid, pscid, iova):
        """Every entry with this tag whose range holds ``iova``, doomed or not, oldest first,
        then the global entries (first-stage G=1) of other PSCIDs under the same GSCID:
        a global mapping is shared across address spaces (reference N.1.7)."""
        found = []
        for (g, p), by_size in self._tags.items():
            if g != gscid or p is None or pscid is None:
                if (g, p) != (gscid, pscid):
                    continue
            own = p == pscid
            for size, buckets in by_size.items():
                bucket = buckets.get(iova & ~(size - 1))
                if bucket:
                    found.extend(e for e in bucket if own or e.glob)
        return found

    def lookup(self, gscid, pscid, iova):
        """The newest live entry for this tag and address (the model's own hit), or None."""
        by_size = self._tags.get((gscid, pscid))
        if not by_size:
            return None
        for size, buckets in by_size.items():
            bucket = buckets.get(iova & ~(size - 1))
            if bucket:
                for e in reversed(bucket):
                    if not e.doomed:
                        return e
        return None

    def _entries(self):
        for (_gscid, _pscid), by_size in self._tags.items():
            for buckets in by_size.values():
                for bucket in buckets.values():
                    yield from bucket

    def inval_vma(self, gv, gscid, pscv, pscid, av, addr):
        """``IOTINVAL.VMA`` (spec "IOMMU Page-Table cache invalidation commands",
        table "IOTINVAL.VMA operands and operations").

        Dooms first-stage entries (``pscid`` not None) of the host (GV=0) or of VM
        ``gscid`` (GV=1); PSCV=1 narrows to ``pscid`` and spares global entries; AV=1
        narrows to the entries built from the first-stage leaf that maps IOVA ``addr``.
        """
        want_g = gscid if gv else None
        for e in self._entries():
            if e.pscid is None or e.gscid != want_g:
                continue
            if pscv and (e.pscid != pscid or e.glob):
                continue
            if av:
                base, size = e.s1_range
                if not base <= addr < base + size:
                    continue
            e.doomed = True

    def inval_gvma(self, gv, gscid, av, addr):
        """``IOTINVAL.GVMA`` (spec "IOMMU Page-Table cache invalidation commands",
        table "IOTINVAL.GVMA operands and operations").

        GV=0 dooms every entry of every VM (second stage not Bare); GV=1 those of
        ``gscid``; with GV=1 and AV=1 only those built from the second-stage leaf that maps
        GPA ``addr`` (an entry mapping IOVA to SPA through that leaf, spec "IOMMU Page-Table cache
        invalidation commands"). The MSI PTE cache is invalidated with the same operands
        (reference N.4.5).
        """
        self.msi_ptes.inval_gvma(gv, gscid, av, addr)
        for e in self._entries():
            if e.gscid is None or (gv and e.gscid != gscid):
                continue
            if gv and av:
                base, size = e.s2_range
                if not base <= addr < base + size:
                    continue
            e.doomed = True

    def fence(self):
        """``IOFENCE.C`` completed: forget every doomed entry (MSI PTEs too)."""
        self.msi_ptes.fence()
        for tag in list(self._tags):
            by_size = self._tags[tag]
            for size in list(by_size):
                buckets = by_size[size]
                for base in list(buckets):
                    live = [e for e in buckets[base] if not e.doomed]
                    if live:
                        buckets[base] = live
                    else:
                        del buckets[base]
                if not buckets:
                    del by_size[size]
            if not by_size:
                del self._tags[tag]

    def __len__(self):
        return sum(1 for _ in self._entries())
