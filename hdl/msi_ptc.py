"""The MSI PTE cache: checked MSI PTEs tagged by (GSCID, guest page) (``Config.msi_flat``).

RISC-V IOMMU spec "IOMMU Page-Table cache invalidation commands" and reference N.4.5, as issue
16 decided them (decision 6):

* only MSI PTEs that passed every check of reference N.4.3 are cached, both modes (basic and
  MRIF), so a PTE made valid needs no invalidation;
* IOTINVAL.GVMA with GV=0 (and the IOTLB's invalidate-all) clears every entry, GV=1 AV=0 the
  GSCID's entries, GV=1 AV=1 the GSCID's entry for ADDR's page; IOTINVAL.VMA does not touch
  the cache, nor does IODIR (a DC change needs IODIR.INVAL_DDT and IOTINVAL.GVMA);
* a fill in the cycle of an invalidation is dropped, and the MSI page-table walker
  (:class:`iogate.hdl.msi.MsiWalker`) does not fill a PTE whose walk an IOTINVAL.GVMA
  overtook, so a PTE read before an invalidation never outlives the IOFENCE.C after it.

Fills replace a free entry, else the next in round-robin order. The walker fills only a
tag that has just missed, so no two entries ever hold one tag (the formal harness,
:mod:`iogate.hdl.formal.msiptc`, assumes the same of its fills).
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.iotlb import InvalKind, iotlb_inval_layout

__all__ = ["msi_pte_layout", "msi_ptc_fill_layout", "MsiPteCache"]


def msi_pte_layout(mrif):
    """A checked MSI PTE as the walker answers and caches it: ``mrif`` (M=1, else basic),
    ``ppn`` (basic: the PTE's PPN); with ``mrif`` also ``mrif_addr`` (MRIF_Address[55:9]),
    ``nppn`` (the notice MSI's page) and ``nid`` (its 11-bit data)."""
    if not mrif:
        return data.StructLayout({"ppn": 44})
    return data.StructLayout({"mrif": 1, "ppn": 44, "mrif_addr": 47, "nppn": 44, "nid": 11})


def msi_ptc_fill_layout(width, mrif):
    """A fill: the tag (``gscid``, the guest page number ``gpa``, ``width`` bits) and the PTE."""
    return data.StructLayout({"gscid": 16, "gpa": width, "pte": msi_pte_layout(mrif)})


class MsiPteCache(wiring.Component):
    """A fully associative cache of checked MSI PTEs.

    Parameters
    ----------
    width : int
        Guest page-number bits of a tag (``Config.mgpaw - 12``).
    mrif : bool
        The PTEs include the MRIF fields (``Config.msi_mrif``).
    entries : int
        Cached PTEs (``Config.msi_ptc_entries``).
    vpn_w : int
        VPN bits of ``inval`` (:func:`iogate.hdl.iotlb.vpn_width`); at least ``width``.

    Members
    -------
    lookup_gscid : ``In(16)``
    lookup_gpa : ``In(width)``
    lookup_hit : ``Out(1)``
        Combinational, in the same cycle.
    lookup_pte : ``Out(msi_pte_layout(mrif))``
        The cached PTE (zero on a miss).
    fill : ``In(stream.Signature(msi_ptc_fill_layout(width, mrif)))``
        A PTE that passed every check, for a tag that is not cached. Always ready; dropped
        when an IOTINVAL.GVMA or an invalidate-all comes in the same cycle.
    inval : ``In(stream.Signature(iotlb_inval_layout(vpn_w)))``
        The invalidations the IOTLB gets (only GVMA and ALL act here). Always ready.
    """

    def __init__(self, *, width, mrif, entries, vpn_w):
        self._width, self._mrif, self._entries = width, bool(mrif), entries
        super().__init__({
            "lookup_gscid": In(16),
            "lookup_gpa": In(width),
            "lookup_hit": Out(1),
            "lookup_pte": Out(msi_pte_layout(self._mrif)),
            "fill": In(stream.Signature(msi_ptc_fill_layout(width, self._mrif))),
            "inval": In(stream.Signature(iotlb_inval_layout(vpn_w))),
        })

    def elaborate(self, platform):
        m = Module()
        width, n = self._width, self._entries
        pte_l = msi_pte_layout(self._mrif)
        valid = Signal(n)
        gscids = [Signal(16, name=f"gscid{i}") for i in range(n)]
        pages = [Signal(width, name=f"page{i}") for i in range(n)]
        ptes = [Signal(pte_l, name=f"pte{i}") for i in range(n)]
        rr = Signal(range(max(n, 2)))

        match = Signal(n)
        for i in range(n):
            m.d.comb += match[i].eq(valid[i] & (gscids[i] == self.lookup_gscid)
                                    & (pages[i] == self.lookup_gpa))
        # At most one entry matches (fills are only of tags that missed): an AND-OR.
        hit_pte = Const(0, pte_l.size)
        for i in range(n):
            hit_pte = hit_pte | (match[i].replicate(pte_l.size) & ptes[i].as_value())
        m.d.comb += [self.lookup_hit.eq(match.any()), self.lookup_pte.eq(hit_pte),
                     self.fill.ready.eq(1), self.inval.ready.eq(1)]

        inv, f = self.inval.payload, self.fill.payload
        gvma = (inv.kind == InvalKind.GVMA) | (inv.kind == InvalKind.ALL)
        with m.If(self.inval.valid & gvma):
            for i in range(n):
                hit = ((inv.kind == InvalKind.ALL) | ~inv.gv
                       | ((gscids[i] == inv.gscid) & (~inv.av | (pages[i] == inv.vpn[:width]))))
                with m.If(hit):
                    m.d.sync += valid[i].eq(0)
        with m.Elif(self.fill.valid):
            slot = Signal(range(max(n, 2)))
            m.d.comb += slot.eq(rr)
            for i in reversed(range(n)):
                with m.If(~valid[i]):
                    m.d.comb += slot.eq(i)
            for i in range(n):
                with m.If(slot == i):
                    m.d.sync += [valid[i].eq(1), gscids[i].eq(f.gscid), pages[i].eq(f.gpa),
                                 ptes[i].eq(f.pte)]
            with m.If(valid.all()):
                m.d.sync += rr.eq(Mux(rr == n - 1, 0, rr + 1))
        return m
