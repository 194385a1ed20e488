"""The MSI page-table walker and its MSI PTE cache (``Config.msi_flat``).

RISC-V IOMMU spec "Process to translate an IOVA" step 18 and "MSI page tables" (reference
N.4), with the AIA's MSI PTE formats, as issue 16 decided them (decisions 2, 3 and 6):

* The walk starts from the GPA's page number A, which the page-table walker has already
  matched against the DC's MSI address mask and pattern (:mod:`iogate.hdl.ptw`), with the
  DC's ``msiptp.PPN``, ``msi_addr_mask`` and the GSCID.
* ``I = extract(A, mask)`` (the bits of A where the mask is 1, packed at the low end) is
  built one mask bit per cycle, lowest first, while the MSI PTE cache is looked up: a miss
  costs ``popcount(mask)`` cycles more, a hit none.
* The MSI PTE is at ``(msiptp.PPN << 12) | (I * 16)`` (OR, as the spec says; it differs
  from + only for a misaligned table, which is UNSPECIFIED), little-endian (``fctl.BE=0``).
  Both doublewords are read, one 8-byte read each through the memory client, even for a
  basic PTE whose dw1 is ignored (the model reads the 16 bytes as one access): a bus error
  on either, or an address at or above ``2**PAS``, is 261 once both have answered or the
  address was refused.
* The checks, in order: V=0 → 262; C=1 → 263 (libiommu's choice: iogate has no custom MSI
  PTE); M=0 or 2 → 263; M=3 with a reserved bit of dw0 ([9:3], [62:54]) → 263; M=1 without
  ``mrif`` → 263; M=1 with a reserved bit (dw0 [6:3], [62:54]; dw1 [59:54], [63:61]) → 263.
  What follows (execute → 1, the basic result, the MRIF update) is the pipeline's.
* The **MSI PTE cache** (:class:`iogate.hdl.msi_ptc.MsiPteCache`) holds well-formed PTEs
  of both modes, tagged by (GSCID, A); IOTINVAL.GVMA (on ``inval``) invalidates it
  (reference N.4.5). A walk during which an IOTINVAL.GVMA (or an invalidate-all) was
  accepted does not fill it, so that a PTE read before an invalidation never outlives the
  IOFENCE.C that follows (as the IOTLB's rule).

A bus error never hangs the walk: every read's response is taken, error or not.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl import bits
from iogate.hdl.config import check_pas
from iogate.hdl.formats import MSI_PTE, MSI_PTE_BASIC, MSI_PTE_MRIF, Cause, MsiPteMode
from iogate.hdl.iotlb import InvalKind, iotlb_inval_layout
from iogate.hdl.mem_master import MemReadSignature
from iogate.hdl.msi_ptc import MsiPteCache, msi_pte_layout

__all__ = ["msiw_start_layout", "msi_pte_layout", "msiw_result_layout", "extract",
           "MsiWalker"]

#: Reserved bits of each MSI PTE format (AIA "MSI page tables", reference N.4.2).
_C = bits.mask(MSI_PTE, "c")
_BASIC_RSVD = bits.reserved_mask(MSI_PTE_BASIC) & ~_C
_MRIF_RSVD = bits.reserved_mask(MSI_PTE_MRIF) & ~_C
_MRIF_RSVD0 = _MRIF_RSVD & ((1 << 64) - 1)
_MRIF_RSVD1 = _MRIF_RSVD >> 64


def msiw_start_layout(width):
    """A walk to do: the GPA page number ``gpa`` (``width`` = ``Config.mgpaw - 12`` bits),
    the DC's GSCID, ``msiptp.PPN`` (``ppn``) and ``msi_addr_mask`` (``mask``)."""
    return data.StructLayout({"gpa": width, "gscid": 16, "ppn": 44, "mask": width})


def msiw_result_layout(mrif):
    """A fault (261, 262, 263) or the checked PTE."""
    return data.StructLayout({"fault": 1, "cause": Cause, "pte": msi_pte_layout(mrif)})


def extract(x, mask):
    """Python reference of the spec's extract (reference N.4.1): the bits of ``x`` where
    ``mask`` is 1, packed in order at the low end (x=abcdefgh, mask=10100110: 0000acfg)."""
    out, k = 0, 0
    while mask:
        low = mask & -mask
        if x & low:
            out |= 1 << k
        k += 1
        mask ^= low
    return out


class MsiWalker(wiring.Component):
    """Reads and checks the MSI PTE of one GPA, through its MSI PTE cache.

    Parameters
    ----------
    pas : int
        Physical address size: an MSI PTE at or above ``2**pas`` is 261 without a read.
    width : int
        GPA page-number bits (``Config.mgpaw - 12``).
    mrif : bool
        MRIF-mode PTEs are supported (``capabilities.MSI_MRIF``); else M=1 is 263.
    entries : int
        MSI PTE cache entries (``Config.msi_ptc_entries``).
    vpn_w : int
        VPN bits of ``inval`` (:func:`iogate.hdl.iotlb.vpn_width`).

    Members
    -------
    start : ``In(stream.Signature(msiw_start_layout(width)))``
    result : ``Out(stream.Signature(msiw_result_layout(mrif)))``
        Held until taken.
    mem : ``Out(MemReadSignature(pas))``
    inval : ``In(stream.Signature(iotlb_inval_layout(vpn_w)))``
        The IOTINVALs the IOTLB gets; always ready.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, pas, width, mrif, entries, vpn_w):
        try:
            check_pas(pas)
            if not isinstance(width, int) or not 1 <= width <= 52:
                raise ValueError(f"width must be an integer between 1 and 52, not {width!r}")
            if not isinstance(entries, int) or isinstance(entries, bool) or entries < 1:
                raise ValueError(f"entries must be a positive integer, not {entries!r}")
            if not isinstance(vpn_w, int) or vpn_w < width:
                raise ValueError(f"vpn_w must be an integer of at least width, not {vpn_w!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas, self._width, self._mrif = pas, width, bool(mrif)
        self._entries, self._vpn_w = entries, vpn_w
        super().__init__({
            "start": In(stream.Signature(msiw_start_layout(width))),
            "result": Out(stream.Signature(msiw_result_layout(self._mrif))),
            "mem": Out(MemReadSignature(pas)),
            "inval": In(stream.Signature(iotlb_inval_layout(vpn_w))),
        })

    def elaborate(self, platform):
        m = Module()
        width, n = self._width, self._entries
        job = Signal(msiw_start_layout(width))
        res = Signal(msiw_result_layout(self._mrif))
        m.d.comb += [self.result.payload.eq(res), self.inval.ready.eq(1)]

        # --- extract(A, mask), lowest mask bit first (one per cycle).
        rest = Signal(width)                 # the mask bits not packed yet
        index = Signal(width)                # I so far
        k = Signal(range(width + 1))         # the next bit of I
        low = Signal(width)
        m.d.comb += low.eq(rest & -rest)
        bit = (job.gpa & low).any()

        # --- The MSI PTE cache, looked up with the walk's tag.
        m.submodules.cache = cache = MsiPteCache(width=width, mrif=self._mrif, entries=n,
                                                 vpn_w=self._vpn_w)
        m.d.comb += [cache.lookup_gscid.eq(job.gscid), cache.lookup_gpa.eq(job.gpa),
                     cache.inval.valid.eq(self.inval.valid),
                     cache.inval.payload.eq(self.inval.payload)]

        # --- Reads and checks.
        dw = Signal(1)                       # the doubleword being read
        err = Signal()                       # a read of this PTE faulted
        dw0 = Signal(64)
        addr = Signal(64)
        m.d.comb += addr.eq(Cat(Const(0, 3), dw, index) | Cat(Const(0, 12), job.ppn))
        beyond = addr[self._pas:] != 0
        m.d.comb += self.mem.req.payload.addr.eq(addr[:self._pas])
        rdata = self.mem.resp.payload.data
        stale = Signal()                     # a GVMA was accepted during this walk
        fill = Signal()
        decoded = self._decode(m, dw0, rdata)

        def fault(cause):
            return [res.fault.eq(1), res.cause.eq(cause)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    p = self.start.payload
                    m.d.sync += [job.eq(p), rest.eq(p.mask), index.eq(0), k.eq(0),
                                 dw.eq(0), err.eq(0), res.eq(0), stale.eq(0)]
                    m.next = "LOOKUP"
            with m.State("LOOKUP"):
                # One mask bit per cycle; the first cycle also looks the cache up.
                m.d.sync += [rest.eq(rest ^ low), k.eq(k + 1)]
                with m.Switch(k):
                    for j in range(width):
                        with m.Case(j):
                            m.d.sync += index[j].eq(bit)
                with m.If(cache.lookup_hit):
                    m.d.sync += res.pte.eq(cache.lookup_pte)
                    m.next = "DONE"
                with m.Elif((rest ^ low) == 0):
                    m.next = "READ"
                with m.Else():
                    m.next = "EXTRACT"
            with m.State("EXTRACT"):
                m.d.sync += [rest.eq(rest ^ low), k.eq(k + 1)]
                with m.Switch(k):
                    for j in range(width):
                        with m.Case(j):
                            m.d.sync += index[j].eq(bit)
                with m.If((rest ^ low) == 0):
                    m.next = "READ"
            with m.State("READ"):
                with m.If(beyond):
                    m.d.sync += fault(Cause.MSI_PTE_LOAD_ACCESS_FAULT)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(1)
                    with m.If(self.mem.req.ready):
                        m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.mem.resp.ready.eq(1)
                with m.If(self.mem.resp.valid):
                    m.d.sync += [err.eq(err | self.mem.resp.payload.err), dw.eq(1)]
                    with m.If(dw == 0):
                        m.d.sync += dw0.eq(rdata)
                        m.next = "READ"
                    with m.Elif(err | self.mem.resp.payload.err):
                        m.d.sync += fault(Cause.MSI_PTE_LOAD_ACCESS_FAULT)
                        m.next = "DONE"
                    with m.Else():
                        self._check(m, dw0, rdata, decoded, res, fill, fault)
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        # --- A walk overtaken by an IOTINVAL.GVMA (or an invalidate-all) does not fill.
        inv = self.inval.payload
        with m.If(self.inval.valid & ((inv.kind == InvalKind.GVMA) | (inv.kind == InvalKind.ALL))):
            m.d.sync += stale.eq(1)
        m.d.comb += [cache.fill.valid.eq(fill & ~stale), cache.fill.payload.gscid.eq(job.gscid),
                     cache.fill.payload.gpa.eq(job.gpa), cache.fill.payload.pte.eq(decoded)]
        return m

    def _decode(self, m, dw0, dw1):
        """The fields of the PTE (dw0, dw1) as :func:`msi_pte_layout` holds them."""
        pte0 = data.View(MSI_PTE, dw0)
        basic = data.View(MSI_PTE_BASIC, dw0)
        mrif = data.View(MSI_PTE_MRIF, Cat(dw0, dw1))
        decoded = Signal(msi_pte_layout(self._mrif))
        m.d.comb += decoded.ppn.eq(basic.ppn)
        if self._mrif:
            m.d.comb += [decoded.mrif.eq(pte0.m == MsiPteMode.MRIF),
                         decoded.mrif_addr.eq(mrif.mrif_addr), decoded.nppn.eq(mrif.nppn),
                         decoded.nid.eq(Cat(mrif.nid, mrif.nid10))]
        return decoded

    def _check(self, m, dw0, dw1, decoded, res, fill, fault):
        """The response cycle of dw1: checks 3-8 of reference N.4.3 (issue 16 decision 3),
        the PTE decoded into ``res``, and a fill of the cache when it is well formed."""
        pte0 = data.View(MSI_PTE, dw0)
        with m.If(~pte0.v):
            m.d.sync += fault(Cause.MSI_PTE_NOT_VALID)
        with m.Elif(pte0.c):
            m.d.sync += fault(Cause.MSI_PTE_MISCONFIGURED)
        with m.Elif(pte0.m == MsiPteMode.BASIC):
            with m.If((dw0 & _BASIC_RSVD) != 0):
                m.d.sync += fault(Cause.MSI_PTE_MISCONFIGURED)
            with m.Else():
                m.d.sync += res.pte.eq(decoded)
                m.d.comb += fill.eq(~self.inval.valid)
        if self._mrif:
            with m.Elif(pte0.m == MsiPteMode.MRIF):
                with m.If(((dw0 & _MRIF_RSVD0) != 0) | ((dw1 & _MRIF_RSVD1) != 0)):
                    m.d.sync += fault(Cause.MSI_PTE_MISCONFIGURED)
                with m.Else():
                    m.d.sync += res.pte.eq(decoded)
                    m.d.comb += fill.eq(~self.inval.valid)
        with m.Else():
            # M=0 or 2 (reserved), or M=1 without capabilities.MSI_MRIF.
            m.d.sync += fault(Cause.MSI_PTE_MISCONFIGURED)
