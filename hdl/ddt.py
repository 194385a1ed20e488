"""The device directory: locating a device context, checking it, and caching it.

RISC-V IOMMU spec "Device-Directory-Table (DDT)" (base-format device context),
"Device-context configuration checks" and "Process to locate the Device-context".

* :func:`dc_misconfigured` is the list of configuration checks, specialised to what this
  IOMMU offers (no ATS, T2GPA, PDT modes, A/D update, big-endian, GXL or QoS IDs).
* :class:`DeviceDirectoryWalker` walks a 1LVL, 2LVL or 3LVL directory. Base format only
  (``capabilities.MSI_FLAT=0``), so ``device_id`` splits into DDI[0] = bits 6:0, DDI[1] =
  bits 15:7 and DDI[2] = bits 23:16. Each non-leaf DDTE is read at ``a + DDI[i]*8`` and
  gives the next table (257 on a read fault, 258 when ``V=0``, 259 when a reserved bit is
  set); the 32-byte DC is then read at ``a + DDI[0]*32``, one doubleword at a time, with
  257 on a read fault, 258 when ``tc.V=0`` (without reading the rest) and 259 when
  misconfigured.
* With ``capabilities.MSI_FLAT`` (the walker's ``mgpaw``) DCs are the 64-byte extended
  format (reference N.3): split 6/9/9, eight doublewords at ``a + DDI[0]*64``, the extra
  259 checks of issue 16 decision 1, and only ``msiptp``'s mode and PPN and the
  ``mgpaw - 12`` meaningful bits of the MSI address mask and pattern are kept.
* :class:`DeviceContextCache` is the fully associative DDT cache: valid, well-formed DCs
  only (spec "Caching in-memory data structures": invalid entries are never cached), tagged by
  ``device_id``, with an invalidation input for IODIR.INVAL_DDT (all, or one ``device_id``).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl import bits
from iogate.hdl.config import check_pas
from iogate.hdl.formats import (
    DC,
    DDTE,
    IOHGATP,
    IOSATP,
    MSI_ADDR_MASK,
    MSIPTP,
    TA,
    TC,
    Cause,
    IohgatpMode,
    IosatpMode,
    MsiptpMode,
    PdtpMode,
)
from iogate.hdl.lutram import EntryRam
from iogate.hdl.mem_master import MemReadSignature
from iogate.hdl.regs import IommuMode

__all__ = [
    "dc_misconfigured", "msi_dc_layout", "ddtw_start_layout", "ddtw_result_layout",
    "ddtc_fill_layout", "ddtc_inval_layout", "DeviceDirectoryWalker", "DeviceContextCache",
]


def _ddi_fields(device_id, extended=False):
    """``device_id`` as the slices ``DDI[0]``, ``DDI[1]``, ``DDI[2]`` of 3LVL (spec
    "Device-Directory-Table (DDT)"; 7/9/8 bits for base-format DCs, 6/9/9 for extended ones,
    reference N.3.2)."""
    fields, low = [], 0
    for width in IommuMode.LVL3.ddi_bits_of(extended):
        fields.append(device_id[low:low + width])
        low += width
    return fields


def dc_misconfigured(dc, *, iosatp_modes, iohgatp_modes=(IohgatpMode.BARE,),
                     pdtp_modes=(), pdt_gpa=False, ats=False, t2gpa=False):
    """The "DDT entry misconfigured" condition (cause 259) of a DC with ``tc.V=1``.

    The numbered checks of spec "Device-context configuration checks" that this IOMMU can reach,
    given that its ``capabilities`` has AMO_HWAD=END=QOSID=0, ATS and T2GPA as ``ats`` and
    ``t2gpa`` say, PD8/PD17/PD20 as ``pdtp_modes`` says, and that ``fctl.BE`` and ``fctl.GXL``
    are hardwired to 0 (MSI_FLAT's checks are the walker's):

    1. a reserved bit: ``tc`` 23:12 and 63:32, ``ta`` 11:0 and 63:32 (RCID and MCID are
       reserved without QOSID), ``fsc`` 59:44 (``iosatp`` and ``pdtp`` alike);
    2. without ``ats``: EN_ATS, EN_PRI or PRPR set, which also covers checks 3 to 5; with
       it: 3. EN_ATS=0 and T2GPA=1, 4. EN_ATS=0 and EN_PRI=1, 5. EN_PRI=0 and PRPR=1;
    6. without ``t2gpa``: T2GPA set, which also covers check 7; with it: 7. T2GPA=1 and
       ``iohgatp`` Bare;
    8. PDTV=1 and ``pdtp.MODE`` is neither Bare nor one of ``pdtp_modes`` (reserved 4-13
       and custom 14-15 encodings included, and PD8/PD17/PD20 without its capability);
       with PDTV=1 the ``iosatp`` checks 9 and 10 are not applied to ``fsc``; without
       ``pdt_gpa`` (a process-directory walker that cannot translate guest physical
       addresses) also PDTV=1 with ``pdtp`` and ``iohgatp`` both not Bare;
    9, 10. PDTV=0 and ``iosatp.MODE`` is not one of ``iosatp_modes`` (reserved and custom
       encodings included);
    12. PDTV=0 and DPE=1;
    13, 14. ``iohgatp.MODE`` not one of ``iohgatp_modes``;
    16. ``iohgatp`` not Bare and its root not 16 KiB aligned;
    17. SADE or GADE set (no AMO_HWAD);
    18, 20. SBE=1 (END=0 and ``fctl.BE=0``);
    19. SXL=1 (``fctl.GXL`` is 0 and not writable).

    Parameters
    ----------
    dc : View of :data:`iogate.hdl.formats.DC`
    iosatp_modes : iterable of IosatpMode
        First-stage modes offered besides Bare.
    iohgatp_modes : iterable of IohgatpMode
        Second-stage modes offered, Bare included.
    pdtp_modes : iterable of PdtpMode
        Process-directory modes offered besides Bare (``Config.pdtp_modes``).
    pdt_gpa : bool
        The process-directory walk can read a PDT in guest physical memory.
    """
    tc, ta, fsc, iohgatp = dc.tc, dc.ta, dc.fsc, dc.iohgatp
    reserved = ((tc.as_value() & bits.reserved_mask(TC)) != 0) \
        | ((ta.as_value() & bits.reserved_mask(TA)) != 0) \
        | ((fsc.as_value() & bits.reserved_mask(IOSATP)) != 0)
    fsc_ok = fsc.mode == IosatpMode.BARE
    for mode in iosatp_modes:
        fsc_ok = fsc_ok | (fsc.mode == mode)
    # pdtp and iosatp share the MODE position (spec "Device-context fields", fsc).
    pdtp_modes = tuple(pdtp_modes)
    pdtp_ok = fsc.mode == PdtpMode.BARE
    for mode in pdtp_modes:
        pdtp_ok = pdtp_ok | (fsc.mode == mode)
    iohgatp_ok = Const(0, 1)
    for mode in iohgatp_modes:
        iohgatp_ok = iohgatp_ok | (iohgatp.mode == mode)
    iohgatp_misaligned = (iohgatp.mode != IohgatpMode.BARE) & (iohgatp.ppn[:2] != 0)
    pdtv_checks = tc.pdtv & (~pdtp_ok if pdtp_modes else (fsc.mode != 0))
    if pdtp_modes and not pdt_gpa:
        pdtv_checks = pdtv_checks | (tc.pdtv & (fsc.mode != PdtpMode.BARE)
                                     & (iohgatp.mode != IohgatpMode.BARE))
    if ats:
        ats_checks = ((~tc.en_ats & tc.t2gpa) | (~tc.en_ats & tc.en_pri)
                      | (~tc.en_pri & tc.prpr))
    else:
        ats_checks = tc.en_ats | tc.en_pri | tc.prpr
    if t2gpa:
        t2gpa_checks = tc.t2gpa & (iohgatp.mode == IohgatpMode.BARE)
    else:
        t2gpa_checks = tc.t2gpa
    return (reserved
            | ats_checks
            | t2gpa_checks
            | pdtv_checks
            | (~tc.pdtv & ~fsc_ok)
            | (~tc.pdtv & tc.dpe)
            | ~iohgatp_ok
            | iohgatp_misaligned
            | tc.sade | tc.gade
            | tc.sbe
            | tc.sxl)


def msi_dc_layout(mgpaw):
    """What the DDT walker and the DC cache keep of an extended-format DC (reference N.3.1):
    the base-format fields, then ``msi``: ``flat`` (``msiptp.MODE`` is Flat), ``ppn``
    (``msiptp.PPN``), and the ``mgpaw - 12`` low bits of ``msi_addr_mask``/``pattern``
    (``mask``, ``pattern``): the bits above them are checked to be 0 (decision 1), so they
    need no storage."""
    width = mgpaw - 12
    return data.StructLayout({
        "tc": TC, "iohgatp": IOHGATP, "ta": TA, "fsc": IOSATP,
        "msi": data.StructLayout({"flat": 1, "ppn": 44, "mask": width, "pattern": width}),
    })


def ddtw_start_layout():
    return data.StructLayout({"ddtp_ppn": 44, "mode": IommuMode, "device_id": 24})


def ddtw_result_layout(dc=DC):
    """A fault or the DC (``dc``: :data:`DC`, or :func:`msi_dc_layout` with MSI_FLAT)."""
    return data.StructLayout({"fault": 1, "cause": Cause, "dc": dc})


def ddtc_fill_layout(dc=DC):
    return data.StructLayout({"device_id": 24, "dc": dc})


def ddtc_inval_layout():
    """IODIR.INVAL_DDT: ``all`` (DV=0) or the one ``device_id`` (DV=1)."""
    return data.StructLayout({"all": 1, "device_id": 24})


class DeviceDirectoryWalker(wiring.Component):
    """Locates and checks the device context of one ``device_id``.

    Parameters
    ----------
    pas : int
        Physical address size; a DDTE or DC at or above ``2**pas`` is a load access fault
        (257) without a bus read.
    iosatp_modes : tuple of IosatpMode
        First-stage modes offered besides Bare (for the configuration checks).
    iohgatp_modes : tuple of IohgatpMode
        Second-stage modes offered, Bare included (for the configuration checks).
    pdtp_modes : tuple of PdtpMode
        Process-directory modes offered besides Bare (for the configuration checks).
    pdt_gpa : bool
        A PDT may be in guest physical memory (:func:`dc_misconfigured`).
    levels : int
        The deepest directory walked: 1 (1LVL only), 2 (also 2LVL) or 3 (also 3LVL),
        ``Config.ddt_levels``. A 1-level walker has no DDTE logic at all.
    mgpaw : int or None
        With ``capabilities.MSI_FLAT`` (``Config.mgpaw``): DCs are the 64-byte extended
        format (reference N.3, issue 16 decision 1), split 6/9/9, read at ``a + DDI[0]*64``
        in eight doublewords, and besides the base-format checks these are 259: a reserved
        bit of ``msiptp`` ([59:44]), ``msiptp.MODE`` neither Off nor Flat (2-15: iogate has
        no custom mode), a reserved bit of ``msi_addr_mask``/``msi_addr_pattern``
        ([63:52]) or one of their bits [51:mgpaw-12] (the spec's "reserved for future
        standard use" read as the reserved-bit rule; libiommu masks them instead, N.9 P3),
        doubleword 7 non-zero, and ``iohgatp.MODE`` Bare with ``msiptp.MODE`` not Off. The
        result's DC is then :func:`msi_dc_layout`. None: base format only (N.9 P4).
    events : bool
        Offer the ``entry_read`` event (the performance monitor's DDT_WALK).
    ats, t2gpa : bool
        ``capabilities.ATS`` / ``capabilities.T2GPA`` (``Config.ats``, ``Config.t2gpa``): the
        tc checks of :func:`dc_misconfigured`.

    Members
    -------
    start : ``In(stream.Signature(ddtw_start_layout()))``
        The ``ddtp`` to walk (``mode`` 1LVL, 2LVL or 3LVL) and the ``device_id``. The caller
        has already checked that the ``device_id`` fits the mode (cause 260).
    result : ``Out(stream.Signature(ddtw_result_layout(dc)))``
        A fault (257, 258, 259) or the DC.
    mem : ``Out(MemReadSignature(pas))``
        Reads the DDTEs, then the DC one doubleword at a time (``tc`` first).
    entry_read : ``Out(1)``
        Only with ``events``: a directory entry's read is requested this cycle (a DDTE, or
        the DC's first doubleword), one DDT_WALK event of the performance monitor (decision
        10 of issue 17 (HPM), reference N.9 P17: one per table read).

    Raises
    ------
    ValueError
        If ``pas`` or ``levels`` is out of range.
    """

    def __init__(self, *, pas, iosatp_modes, iohgatp_modes=(IohgatpMode.BARE,), levels=1,
                 pdtp_modes=(), pdt_gpa=False, mgpaw=None, events=False, ats=False,
                 t2gpa=False):
        try:
            check_pas(pas)
            if levels not in (1, 2, 3) or isinstance(levels, bool):
                raise ValueError(f"levels must be 1, 2 or 3, not {levels!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        self._iosatp_modes = tuple(iosatp_modes)
        self._iohgatp_modes = tuple(iohgatp_modes)
        self._pdtp_modes = tuple(pdtp_modes)
        self._pdt_gpa = pdt_gpa
        self._ats, self._t2gpa = bool(ats), bool(t2gpa)
        self._levels = levels
        self._mgpaw = mgpaw
        self._dc = DC if mgpaw is None else msi_dc_layout(mgpaw)
        self._events = bool(events)
        super().__init__({
            "start": In(stream.Signature(ddtw_start_layout())),
            "result": Out(stream.Signature(ddtw_result_layout(self._dc))),
            "mem": Out(MemReadSignature(pas)),
            **({"entry_read": Out(1)} if self._events else {}),
        })

    def elaborate(self, platform):
        m = Module()
        ppn = Signal(44)                     # the table being read
        device_id = Signal(24)
        # i of spec "Process to locate the Device-context": 0 reads the DC.
        level = Signal(range(self._levels))
        ext = self._mgpaw is not None
        words = 8 if ext else 4
        word = Signal(3 if ext else 2)
        res = Signal(ddtw_result_layout(self._dc))
        m.d.comb += self.result.payload.eq(res)

        # Base format: DDI[0] = device_id[6:0] indexes 32-byte DCs, DDI[1] = [15:7] and
        # DDI[2] = [23:16] index 8-byte DDTEs (spec "Process to translate an
        # IOVA" step 3); extended format: DDI[0] = [5:0] indexes 64-byte DCs, DDI[1] =
        # [14:6], DDI[2] = [23:15] (reference N.3.2).
        addr = Signal(56)
        ddi = _ddi_fields(device_id, ext)
        with m.Switch(level):
            with m.Case(0):
                m.d.comb += addr.eq(Cat(Const(0, 3), word, ddi[0], ppn))
            if self._levels >= 2:
                with m.Case(1):
                    m.d.comb += addr.eq(Cat(Const(0, 3), ddi[1], ppn))
            if self._levels >= 3:
                with m.Case(2):
                    if ext:
                        m.d.comb += addr.eq(Cat(Const(0, 3), ddi[2], ppn))
                    else:
                        # DDI[2] is 8 bits: a 9-bit index with its top bit 0.
                        m.d.comb += addr.eq(Cat(Const(0, 3), ddi[2], Const(0, 1), ppn))
        beyond_pas = Const(0, 1) if self._pas == 56 else (addr[self._pas:] != 0)
        m.d.comb += self.mem.req.payload.addr.eq(addr[:self._pas])

        dc = res.dc
        misconfigured = dc_misconfigured(dc, iosatp_modes=self._iosatp_modes,
                                         iohgatp_modes=self._iohgatp_modes,
                                         pdtp_modes=self._pdtp_modes,
                                         pdt_gpa=self._pdt_gpa, ats=self._ats,
                                         t2gpa=self._t2gpa)
        rdata = self.mem.resp.payload.data
        if ext:
            # The extended words' 259 checks, gathered as the words arrive (decision 1).
            ext_bad = Signal()
            misconfigured = misconfigured | ext_bad | (
                dc.msi.flat & (dc.iohgatp.mode == IohgatpMode.BARE))
            width = self._mgpaw - 12
            msiptp = data.View(MSIPTP, rdata)
            addr_word = data.View(MSI_ADDR_MASK, rdata)
            addr_bad = (((rdata & bits.reserved_mask(MSI_ADDR_MASK)) != 0)
                        | (addr_word.value[width:] != 0))
        ddte = data.View(DDTE, rdata)

        def fault(cause):
            return [res.fault.eq(1), res.cause.eq(cause)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    p = self.start.payload
                    m.d.sync += [
                        ppn.eq(p.ddtp_ppn), device_id.eq(p.device_id), level.eq(0),
                        word.eq(0), res.eq(0),
                    ]
                    for mode in IommuMode:
                        if 1 < mode.levels <= self._levels:
                            with m.If(p.mode == mode):
                                m.d.sync += level.eq(mode.levels - 1)
                    m.next = "READ"
            with m.State("READ"):
                with m.If(beyond_pas):
                    m.d.sync += fault(Cause.DDT_LOAD_ACCESS_FAULT)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(1)
                    with m.If(self.mem.req.ready):
                        m.next = "WAIT"
                        if self._events:
                            # A DDTE is one doubleword (word stays 0), a DC several.
                            m.d.comb += self.entry_read.eq(word == 0)
            with m.State("WAIT"):
                m.d.comb += self.mem.resp.ready.eq(1)
                with m.If(self.mem.resp.valid):
                    m.next = "READ"
                    with m.If(self.mem.resp.payload.err):
                        m.d.sync += fault(Cause.DDT_LOAD_ACCESS_FAULT)
                        m.next = "DONE"
                    if self._levels >= 2:
                        # A non-leaf DDTE (spec "Process to locate the Device-context" steps 3-7): V
                        # first, then reserved.
                        with m.Elif(level != 0):
                            with m.If(~ddte.v):
                                m.d.sync += fault(Cause.DDT_ENTRY_NOT_VALID)
                                m.next = "DONE"
                            with m.Elif((rdata & bits.reserved_mask(DDTE)) != 0):
                                m.d.sync += fault(Cause.DDT_ENTRY_MISCONFIGURED)
                                m.next = "DONE"
                            with m.Else():
                                m.d.sync += [ppn.eq(ddte.ppn), level.eq(level - 1)]
                    with m.Else():
                        with m.Switch(word):
                            for k in range(4):
                                with m.Case(k):
                                    m.d.sync += dc.as_value()[64 * k:64 * (k + 1)].eq(rdata)
                            if ext:
                                with m.Case(4):
                                    mode_bad = ((msiptp.mode != MsiptpMode.OFF)
                                                & (msiptp.mode != MsiptpMode.FLAT))
                                    rsvd = (rdata & bits.reserved_mask(MSIPTP)) != 0
                                    m.d.sync += [
                                        dc.msi.flat.eq(msiptp.mode == MsiptpMode.FLAT),
                                        dc.msi.ppn.eq(msiptp.ppn),
                                        ext_bad.eq(mode_bad | rsvd),
                                    ]
                                with m.Case(5):
                                    m.d.sync += [dc.msi.mask.eq(addr_word.value[:width]),
                                                 ext_bad.eq(ext_bad | addr_bad)]
                                with m.Case(6):
                                    m.d.sync += [dc.msi.pattern.eq(addr_word.value[:width]),
                                                 ext_bad.eq(ext_bad | addr_bad)]
                                with m.Case(7):
                                    m.d.sync += ext_bad.eq(ext_bad | (rdata != 0))
                        m.d.sync += word.eq(word + 1)
                        with m.If((word == 0) & ~rdata[0]):
                            # tc.V=0: everything else is don't-care (spec "Translation
                            # control (tc)").
                            m.d.sync += fault(Cause.DDT_ENTRY_NOT_VALID)
                            m.next = "DONE"
                        with m.Elif(word == words - 1):
                            m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(misconfigured):
                    m.d.sync += fault(Cause.DDT_ENTRY_MISCONFIGURED)
                m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"
        return m


class DeviceContextCache(wiring.Component):
    """A fully associative cache of device contexts, tagged by ``device_id``.

    Parameters
    ----------
    entries : int
        Number of cached device contexts (``Config.ddtc_entries``).
    dc : Layout
        What an entry holds: :data:`~iogate.hdl.formats.DC`, or :func:`msi_dc_layout` with
        MSI_FLAT (its ``msi`` fields come from the memory, not the flip-flops).

    Members
    -------
    lookup_device_id : ``In(24)``
    lookup_hit : ``Out(1)``
        Combinational, in the same cycle.
    lookup_dc : ``Out(DC)``
        The cached DC (zero on a miss).
    fill : ``In(stream.Signature(ddtc_fill_layout()))``
        A DC that passed every check. Always ready; it replaces any entry of the same
        ``device_id``, else a free entry, else the next entry in round-robin order. Dropped
        when an invalidation happens in the same cycle.
    inval : ``In(stream.Signature(ddtc_inval_layout()))``
        IODIR.INVAL_DDT. Always ready.

    Raises
    ------
    ValueError
        If ``entries`` is not a positive integer.
    """

    def __init__(self, entries, dc=DC):
        try:
            if not isinstance(entries, int) or isinstance(entries, bool) or entries < 1:
                raise ValueError(f"entries must be a positive integer, not {entries!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self.entries = entries
        self._dc = dc
        super().__init__({
            "lookup_device_id": In(24),
            "lookup_hit": Out(1),
            "lookup_dc": Out(dc),
            "fill": In(stream.Signature(ddtc_fill_layout(dc))),
            "inval": In(stream.Signature(ddtc_inval_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.entries
        valid = Signal(n)
        tags = [Signal(24, name=f"did{i}") for i in range(n)]
        # The device contexts sit in a memory with an asynchronous read port (distributed
        # RAM on an FPGA) instead of flip-flops read through a wide AND-OR: a DC is 256 bits.
        # The fields that choose the IOTLB tag and the translation mode (TC, TA, the modes
        # and GSCID) are also kept in flip-flops and answered through the AND-OR, whose
        # delay is shorter than the memory's index and read: the IOTLB compare that follows
        # in the same cycle starts sooner. The PPNs, used only once a walk starts, come
        # from the memory. (Yosys drops the bits of either copy that are not read.)
        DC = self._dc                # noqa: N806 (the layout: DC or the extended one)
        m.submodules.dcs = dcs = EntryRam(DC, n)
        fast = [Signal(DC, name=f"dc{i}") for i in range(n)]
        rr = Signal(range(max(n, 2)))

        match = Signal(n)
        for i in range(n):
            m.d.comb += match[i].eq(valid[i] & (tags[i] == self.lookup_device_id))
        # At most one entry matches (a fill replaces an entry of the same device_id), so
        # its index is the OR of the matching indices: no priority encoder on the hit path.
        index = 0
        for i in range(1, n):
            index = index | (match[i].replicate(len(dcs.r_addr)) & i)
        m.d.comb += dcs.r_addr.eq(index)
        hit = Signal()
        fast_dc = Signal(DC)
        acc = Const(0, DC.size)
        for i in range(n):
            acc = acc | (match[i].replicate(DC.size) & fast[i].as_value())
        out = self.lookup_dc
        m.d.comb += [
            hit.eq(match.any()), self.lookup_hit.eq(hit), fast_dc.eq(acc),
            out.eq(hit.replicate(DC.size) & dcs.r_data.as_value()),
            out.tc.eq(fast_dc.tc), out.ta.eq(fast_dc.ta),
            out.iohgatp.mode.eq(fast_dc.iohgatp.mode),
            out.iohgatp.gscid.eq(fast_dc.iohgatp.gscid),
            out.fsc.mode.eq(fast_dc.fsc.mode),
        ]

        m.d.comb += [self.fill.ready.eq(1), self.inval.ready.eq(1)]
        inv = self.inval.payload
        f = self.fill.payload
        # An invalidation and a fill never both take effect, so one comparator per entry
        # serves the one that does.
        operand = Signal(24)
        m.d.comb += operand.eq(Mux(self.inval.valid, inv.device_id, f.device_id))
        same = Signal(n)
        for i in range(n):
            m.d.comb += same[i].eq(tags[i] == operand)
        with m.If(self.inval.valid):
            for i in range(n):
                with m.If(inv.all | same[i]):
                    m.d.sync += valid[i].eq(0)
        with m.Elif(self.fill.valid):
            slot = Signal(range(max(n, 2)))
            m.d.comb += slot.eq(rr)
            for i in reversed(range(n)):
                with m.If(~valid[i]):
                    m.d.comb += slot.eq(i)
            for i in range(n):
                with m.If(valid[i] & same[i]):
                    m.d.comb += slot.eq(i)
            m.d.comb += [dcs.w_addr.eq(slot), dcs.w_data.eq(f.dc), dcs.w_en.eq(1)]
            for i in range(n):
                with m.If(slot == i):
                    m.d.sync += [valid[i].eq(1), tags[i].eq(f.device_id), fast[i].eq(f.dc)]
            with m.If(~(valid & same).any() & valid.all()):
                m.d.sync += rr.eq(Mux(rr == n - 1, 0, rr + 1))
        return m
