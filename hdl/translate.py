"""The translation pipeline: where a request's translation or fault is decided.

RISC-V IOMMU spec "Process to translate an IOVA", for Untranslated requests, with the
device-context cache and the IOTLB of spec "Caching in-memory data structures" in front of the
walkers.

Pipeline (one request in flight in the lookup stage):

* **request stage** -- the arbitrated request is registered (``s1``);
* **lookup stage** -- in one cycle, in the order of spec "Process to translate an IOVA":
  ``iommu_mode`` Off (256) or Bare (identity); a ``device_id`` too wide for the mode (260); the DC
  from the device-context cache; a ``process_id`` without PDTV (260); with process contexts
  (``Config.pd_levels > 0``) a ``process_id`` wider than ``pdtp.MODE`` allows (260), the PC from
  the process-context cache and a supervisor request with ``PC.ta.ENS=0`` (260); both stages
  Bare (identity); else an IOTLB lookup tagged by the DC's GSCID (second stage not Bare) and
  the PSCID of the DC or the PC (first stage not Bare). A hit that grants the access, for an
  address the walk would accept, is the answer; anything else is a miss;
* **response stage** -- the answer is registered and offered on ``resp``.

So a hit is answered two cycles after its request is accepted, one per clock.

Misses (spec "Process to translate an IOVA" walks) are handled beside the lookup stage:

* a device-context miss stalls the lookup stage while the device-directory walker fills
  the device-context cache; then the lookup is replayed; a process-context miss does the
  same with the process-directory walker (:mod:`iogate.hdl.pdt_walk`) and the
  process-context cache (:mod:`iogate.hdl.pdtc`);
* a page-table miss moves the request into the **walk slot** and frees the lookup stage,
  so hits keep flowing while the page-table walker works (hit-under-miss). The walk's
  result is the answer (and, if it is a translation, is also written into the IOTLB). A
  second miss waits in the lookup stage until the walk slot is free, then is looked up
  again (it hits if the first walk filled its page). When the walk's answer and a hit are
  ready in the same cycle the walk's goes first, so the walker is never held.

Answers therefore leave out of order: the port's ``tag`` says which request each answers.

A hit that does not grant the access is re-walked rather than faulted: the entry may be
stale (software may have upgraded the PTE), and a fresh walk is always a correct answer.
A walk during which an invalidation of the cache it would fill was accepted does not fill
it, so that an invalidation followed by IOFENCE.C never leaves a translation read before
the invalidation in the cache (spec "IOMMU Page-Table cache invalidation commands" and
"IOMMU Command-queue Fence commands").

Process contexts (spec "Process to translate an IOVA" steps 11-16, reference N.1.6): a request
without a PASID on a DC with ``DPE=1`` uses process_id 0 as a User request; with ``DPE=0`` (or
``pdtp`` Bare) its first stage is Bare. Its fault record keeps the original ``pv=0``. Only a
request with a PASID can be supervisor: ENS and SUM apply only where a PC is used. A supervisor
first-stage walk needs the leaf's U=0, or U=1 with SUM and no execute, a User one U=1 (the
page-table walker checks the request's privilege and SUM); its answer from a U=1 page grants a
supervisor no execute. The IOTLB keeps the first-stage leaf's U, so walks of either privilege
fill it, and a hit is used only if the same rule lets the request's privilege use it;
otherwise the request walks (and faults if the rule says so). Exec without a PASID is accepted (as
libiommu, for non-PCIe bridges). With ``iohgatp`` not Bare the PDT's addresses are guest
physical: the process-directory walker has each translated by the page-table walker (a
second-stage-only walk of the entry's GPA for a read, which needs R and U as an implicit read
does), once the walk slot has let the walker go; its guest-page fault is the original
access's, with ``iotval2`` = GPA | 1.

Performance-monitor events (``Config.has_hpm``; decision 10 of issue 17 (HPM)) are signalled
on ``hpm`` (:func:`iogate.hdl.hpm.hpm_events_layout`): a request's first cycle in the lookup
stage (UNTRANSLATED_REQ, not again on a replay), its move into the walk slot (IOATC_MISS), each
device- and process-directory entry read for the lookup stage's request (DDT_WALK, PDT_WALK), and
each PTE read of the page-table walker, by stage (S1_WALK, S2_WALK), for the walk slot's request
or, for the second-stage translation of a PDT entry's GPA, the lookup stage's. Without
``has_hpm`` none of it is elaborated.

MSI address translation (``Config.msi_flat``; spec "Process to translate an IOVA" step 18,
reference N.4, issue 16 decisions 1-6): DCs are the extended format (:mod:`iogate.hdl.ddt`);
the page-table walker matches the GPA the first stage gives against the DC's MSI mask and
pattern and stops there on a match (:mod:`iogate.hdl.ptw`); the walk slot then runs the MSI
page-table walker and its MSI PTE cache (:mod:`iogate.hdl.msi`) and, for an MSI write to an
MRIF-mode page (``Config.msi_mrif``), the MRIF update (:mod:`iogate.hdl.mrif`), and answers
(:meth:`TranslationPipeline._walk_answer_msi`). A basic MSI result fills the IOTLB as a
4 KiB entry; MRIF results never do, so such a page always walks (its PTE may come from the
MSI PTE cache). Without ``msi_flat`` none of it is elaborated.

Page Requests (``Config.ats``; reference N.6.7, N.10 "Page Request DC lookup"): the
page-request queue (:mod:`iogate.hdl.pq`) needs the requester's device context located by steps
1-6 of "Process to translate an IOVA" and nothing more. Its ``device_id`` comes in on
``pq_query`` and takes the lookup stage like a request (the two alternate when both wait, so
neither starves the other), through the same device-context cache and device-directory walker
(a miss walks and fills the cache as any request's does), and the *verdict*
(:func:`iogate.hdl.pq.pq_verdict_layout`: Off, Bare, too wide, the DC walk's fault, or the
DC's EN_ATS/EN_PRI/PRPR/DTF) leaves on ``pq_verdict`` instead of an answer: no IOTLB use, no
walk, no fault report (the queue decides those), and no UNTRANSLATED_REQ event (its DDT reads
are DDT_WALK events: they are table reads like any other).

Every fault answer is also offered on ``fault``, for the fault queue (spec "Fault/Event-Queue
(FQ)"), the cycle after it enters the response stage: the request it answers, its CAUSE, and
``DC.tc.DTF`` of the device context it was decided under (0 when none was located). The response
stage takes no new answer while a report is still waiting, so none is lost; the fault-queue
writer always drains them (:mod:`iogate.hdl.fq`).
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.config import require_config
from iogate.hdl.ddt import (
    DC,
    DeviceContextCache,
    DeviceDirectoryWalker,
    ddtc_inval_layout,
    msi_dc_layout,
)
from iogate.hdl.formats import (
    ATS_NO_PERMISSION_CAUSES,
    Cause,
    IohgatpMode,
    IosatpMode,
    Pbmt,
    PdtpMode,
)
from iogate.hdl.fq import fault_report_layout
from iogate.hdl.hpm import hpm_events_layout
from iogate.hdl.iotlb import (
    IOTLB,
    PageSize,
    iotlb_inval_layout,
    iotlb_key_layout,
    page_sizes,
    vpn_width,
)
from iogate.hdl.mem_master import MemReadSignature, MemWriteSignature
from iogate.hdl.mrif import MrifUpdater
from iogate.hdl.msi import MsiWalker
from iogate.hdl.pdt_walk import ProcessDirectoryWalker
from iogate.hdl.pdtc import ProcessContextCache, pdtc_inval_layout
from iogate.hdl.port import ANSWER, ATS, MSI_WRITE, REQUEST, Access, AtsKind, embedded, fields
from iogate.hdl.pq import PqVerdict, pq_verdict_layout
from iogate.hdl.ptw import (
    PageTableWalker,
    access_fault_cause,
    canonical,
    gpa_fits,
)
from iogate.hdl.regs import IommuMode

__all__ = ["source_width", "pipeline_request_layout", "pipeline_response_layout",
           "TranslationPipeline"]


def source_width(config):
    """Bits to name a request's source: one per translation port, plus the debug interface."""
    return max(1, config.ports.bit_length())


def pipeline_request_layout(config):
    """A request inside the IOMMU: a port's request plus where it came from.

    ``src`` is the port index, or ``config.ports`` for the debug translation interface;
    ``pv`` says a ``process_id`` (``pid``, with privilege ``priv``) came with it (only the
    debug interface can say so); with ``Config.msi_mrif`` also
    :data:`~iogate.hdl.port.MSI_WRITE` (``word``, ``data``; 0 from the debug interface);
    with ``Config.ats`` also :data:`~iogate.hdl.port.ATS` (``kind``, ``nw``) and ``exec_req``:
    an ATS Translation Request travels as a READ (its walk is a read's, reference N.6.2)
    with ``exec_req`` its Execute Requested (an EXECUTE with a PASID at the port).
    """
    return data.StructLayout({
        "src": source_width(config), "tag": config.tag_width, **fields(REQUEST),
        "pv": 1, "pid": 20, "priv": 1,
        **(fields(MSI_WRITE) if config.msi_mrif else {}),
        **({**fields(ATS), "exec_req": 1} if config.ats else {}),
    })


def pipeline_response_layout(config):
    """A response inside the IOMMU: the port response fields plus ``src`` (with
    ``Config.msi_mrif`` also ``absorbed``; with ``Config.ats`` the translation's ``size``,
    its first-stage ``g`` and the request's ``priv`` for an ATS Translation Request's
    completion, which ``completion`` marks when it carries a translation)."""
    return data.StructLayout({
        "src": source_width(config), "tag": config.tag_width, **fields(ANSWER), "hit": 1,
        **({"absorbed": 1} if config.msi_mrif else {}),
        **({"size": PageSize, "g": 1, "priv": 1, "completion": 1} if config.ats else {}),
    })


def first_stage_modes(config):
    """The first-stage modes this instance walks (besides Bare)."""
    modes = []
    if config.sv39:
        modes.append(IosatpMode.SV39)
    if config.sv48:
        modes.append(IosatpMode.SV48)
    if config.sv57:
        modes.append(IosatpMode.SV57)
    return tuple(modes)


def second_stage_modes(config):
    """The second-stage modes this instance walks (besides Bare)."""
    modes = []
    if config.sv39x4:
        modes.append(IohgatpMode.SV39X4)
    if config.sv48x4:
        modes.append(IohgatpMode.SV48X4)
    if config.sv57x4:
        modes.append(IohgatpMode.SV57X4)
    return tuple(modes)


class TranslationPipeline(wiring.Component):
    """Translates requests through the DDT cache, the IOTLB and the walkers.

    Parameters
    ----------
    config : Config

    Members
    -------
    req : ``In(stream.Signature(pipeline_request_layout(config)))``
    resp : ``Out(stream.Signature(pipeline_response_layout(config)))``
    iommu_mode : ``In(IommuMode)``
        ``ddtp.iommu_mode``.
    ddtp_ppn : ``In(44)``
        ``ddtp.PPN``.
    ddt_mem, ptw_mem : ``Out(MemReadSignature(config.pas))``
        The walkers' memory clients.
    ddtc_inval : ``In(stream.Signature(ddtc_inval_layout()))``
        IODIR.INVAL_DDT into the device-context cache.
    iotlb_inval : ``In(stream.Signature(iotlb_inval_layout(vpn_width(config))))``
        IOTINVAL into the IOTLB.
    fault : ``Out(stream.Signature(iogate.hdl.fq.fault_report_layout()))``
        Every fault answered, for the fault queue.
    pdt_mem : ``Out(MemReadSignature(config.pas))``
        The process-directory walker's memory client (only with ``config.pd_levels > 0``).
    pdtc_inval : ``In(stream.Signature(iogate.hdl.pdtc.pdtc_inval_layout()))``
        IODIR.INVAL_PDT into the process-context cache (only with ``config.pd_levels > 0``).
    msi_mem : ``Out(MemReadSignature(config.pas))``
        Only with ``config.msi_flat``: the MSI page-table walker's reads, and the MRIF
        update's (one of the two at a time).
    mrif_mem : ``Out(MemWriteSignature(config.pas))``
        Only with ``config.msi_mrif``: the MRIF update's writes (pending doubleword, notice).
    hpm : ``Out(iogate.hdl.hpm.hpm_events_layout())``
        Only with ``config.has_hpm``: the performance monitor's events of this cycle.
    pq_query : ``In(stream.Signature(StructLayout({"device_id": 24})))``
        Only with ``config.ats``: a Page Request's requester, to locate its device context.
    pq_verdict : ``Out(stream.Signature(iogate.hdl.pq.pq_verdict_layout()))``
        Only with ``config.ats``: what that lookup found, one per ``pq_query``, in order.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`.
    """

    def __init__(self, config):
        require_config(self, config)
        self._config = config
        self._vpn_w = vpn_width(config)
        self._pd = config.pd_levels > 0
        extra = {}
        if self._pd:
            extra = {"pdt_mem": Out(MemReadSignature(config.pas)),
                     "pdtc_inval": In(stream.Signature(pdtc_inval_layout()))}
        self._msi = config.msi_flat
        if self._msi:
            extra["msi_mem"] = Out(MemReadSignature(config.pas))
        if config.msi_mrif:
            extra["mrif_mem"] = Out(MemWriteSignature(config.pas))
        self._hpm = config.has_hpm
        if self._hpm:
            extra["hpm"] = Out(hpm_events_layout())
        self._ats = config.ats
        if self._ats:
            extra["pq_query"] = In(stream.Signature(data.StructLayout({"device_id": 24})))
            extra["pq_verdict"] = Out(stream.Signature(pq_verdict_layout()))
        super().__init__({
            **extra,
            "req": In(stream.Signature(pipeline_request_layout(config))),
            "resp": Out(stream.Signature(pipeline_response_layout(config))),
            "iommu_mode": In(IommuMode),
            "ddtp_ppn": In(44),
            "ddt_mem": Out(MemReadSignature(config.pas)),
            "ptw_mem": Out(MemReadSignature(config.pas)),
            "ddtc_inval": In(stream.Signature(ddtc_inval_layout())),
            "iotlb_inval": In(stream.Signature(iotlb_inval_layout(self._vpn_w))),
            "fault": Out(stream.Signature(fault_report_layout(ats=config.ats))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        modes = first_stage_modes(cfg)
        g_modes = second_stage_modes(cfg)
        ddtc, ddtw, iotlb, ptw = self._caches_and_walkers(m, modes, g_modes)
        pdtc, pdtw = self._process_contexts(m, modes, g_modes)
        msiw, mrif = self._msi_walkers(m)

        # The state of the three stages, shared by the helpers below.
        s = SimpleNamespace()
        self._response_stage(m, s)

        # --- Lookup stage.
        s.s1_valid = Signal()
        s.s1 = Signal(pipeline_request_layout(cfg))
        s.s1_walked = Signal()   # this request needed a DDT walk: its answer is not a hit
        # The lookup stage holds a Page Request's DC lookup (Config.ats), not a request.
        s.s1_query = Signal() if self._ats else Const(0, 1)
        s.query_go = Const(0, 1)  # a pq_query takes the lookup stage when it frees
        if self._ats:
            s.query_go = Signal()
            s.query_turn = Signal()  # the query goes first next time both wait
            s.q_done = Signal()
            s.q_verdict = Signal(pq_verdict_layout())
            s.verdict_valid = Signal()
            s.q_verdict_r = Signal(pq_verdict_layout())   # the verdict offered
        s.ddt_stale = Signal()   # an IODIR.INVAL_DDT was accepted during the DDT walk

        # --- Walk slot: the request whose page-table walk is in flight.
        s.w_valid = Signal()
        s.w = Signal(pipeline_request_layout(cfg))
        s.pt_stale = Signal()    # an IOTINVAL was accepted during the page-table walk
        s.walk_key = Signal(iotlb_key_layout(self._vpn_w))   # the IOTLB tag of the walk
        s.walk_dtf = Signal()    # DC.tc.DTF of the DC the page-table walk runs under
        # A Translation Request under DC.tc.T2GPA=1: its completion carries the GPA
        # (reference N.6.2), which the IOTLB does not keep, so it always walks.
        s.t2gpa_req = Const(0, 1)
        s.walk_t2gpa = Signal()
        s.walk_sup = Signal()    # a supervisor first-stage walk (process contexts only)
        s.walk_load = Signal()   # the walk's answer enters the response stage this cycle
        s.lookup_load = Signal()  # the lookup stage's answer does

        s.answer = Signal(pipeline_response_layout(cfg))  # the lookup's answer, when `done`
        s.done = Signal()
        s.need_ddt = Signal()
        s.need_ptw = Signal()
        s.need_pdt = Signal()
        s.lookup_iotval2 = Signal(64)  # a guest-page fault's GPA in a PDT walk
        s.pdt_stale = Signal()   # an IODIR was accepted during the process-directory walk
        s.from_iotlb = Signal()
        s.msiw, s.mrif = msiw, mrif
        s.g_for_pdt = None       # the page-table walker translates a PDT entry's GPA
        if self._hpm:
            s.enter_walk = Signal()   # the lookup stage's request enters the walk slot
        if self._msi:
            # The walk slot's DC fields for MSI translation (reference N.4.1).
            width = cfg.mgpaw - 12
            s.walk_msi_ppn = Signal(44)
            s.walk_msi_mask = Signal(width)
            s.walk_msi_pattern = Signal(width)
            m.d.comb += [ptw.msi_mask.eq(s.walk_msi_mask),
                         ptw.msi_pattern.eq(s.walk_msi_pattern)]

        self._device_context(m, s, ddtc, pdtc)
        self._process_context(m, s, ddtc, pdtc)
        self._iotlb_key(m, s, iotlb, g_modes)
        self._lookup(m, s, iotlb, modes, g_modes)
        self._walk_starts(m, s, ddtc, ddtw, iotlb, ptw)
        self._pdt_walk_starts(m, s, pdtc, pdtw, ptw)
        self._lookup_fsm(m, s, ddtc, ddtw, iotlb, ptw, pdtc, pdtw)
        if self._msi:
            self._walk_answer_msi(m, s, iotlb, ptw)
        else:
            self._walk_answer(m, s, iotlb, ptw)
        self._fault_report(m, s, ptw)
        if self._hpm:
            self._hpm_events(m, s, ddtw, iotlb, ptw, pdtw)

        with m.If(self.req.valid & self.req.ready):
            m.d.sync += [s.s1_valid.eq(1), s.s1.eq(self.req.payload), s.s1_walked.eq(0)]
        with m.Elif(s.s1_complete):
            m.d.sync += s.s1_valid.eq(0)
        if self._ats:
            self._pq_query(m, s)
        return m

    def _pq_query(self, m, s):
        """A Page Request's DC lookup (reference N.6.7, N.10 "Page Request DC lookup"): it
        takes the lookup stage as a request with only a ``device_id`` (no PASID, so steps 7
        on never apply), alternating with requests when both wait; its verdict is held on
        ``pq_verdict`` until taken, and the next query's waits for that."""
        q, v = self.pq_query, self.pq_verdict
        m.d.comb += [
            s.query_go.eq(q.valid & (~self.req.valid | s.query_turn)),
            q.ready.eq(s.entry_free & s.query_go),
            v.valid.eq(s.verdict_valid), v.payload.eq(s.q_verdict_r),
        ]
        with m.If(q.valid & q.ready):
            m.d.sync += [s.s1_valid.eq(1), s.s1.eq(0), s.s1.device_id.eq(q.payload.device_id),
                         s.s1_walked.eq(0), s.s1_query.eq(1), s.query_turn.eq(0)]
        with m.Elif(self.req.valid & self.req.ready):
            m.d.sync += [s.s1_query.eq(0), s.query_turn.eq(1)]
        with m.If(v.valid & v.ready):
            m.d.sync += s.verdict_valid.eq(0)

    def _caches_and_walkers(self, m, modes, g_modes):
        """The device-context cache and walker, the IOTLB and the page-table walker (spec
        "Process to translate an IOVA": the caches in front of the walks it describes)."""
        cfg = self._config
        mgpaw = cfg.mgpaw if self._msi else None
        dc_l = msi_dc_layout(mgpaw) if self._msi else DC
        m.submodules.ddtc = ddtc = DeviceContextCache(cfg.ddtc_entries, dc_l)
        m.submodules.ddtw = ddtw = DeviceDirectoryWalker(
            pas=cfg.pas, iosatp_modes=modes, iohgatp_modes=(IohgatpMode.BARE, *g_modes),
            levels=cfg.ddt_levels, pdtp_modes=cfg.pdtp_modes, pdt_gpa=bool(g_modes),
            mgpaw=mgpaw, events=self._hpm, ats=cfg.ats, t2gpa=cfg.t2gpa)
        m.submodules.iotlb = iotlb = IOTLB(cfg.iotlb_entries, cfg.iotlb_ways, self._vpn_w,
                                           sizes=page_sizes(cfg), u=self._pd)
        m.submodules.ptw = ptw = PageTableWalker(pas=cfg.pas, svpbmt=cfg.svpbmt,
                                                 modes=modes or (IosatpMode.SV39,),
                                                 g_modes=g_modes, priv=self._pd,
                                                 msi_bits=cfg.mgpaw - 12 if self._msi else 0,
                                                 events=self._hpm, t2gpa=cfg.t2gpa)
        wiring.connect(m, wiring.flipped(self.ddt_mem), ddtw.mem)
        wiring.connect(m, wiring.flipped(self.ptw_mem), ptw.mem)
        # IODIR.INVAL_DDT reaches the DC cache and (with process contexts) the PC cache;
        # both are always ready.
        m.d.comb += [ddtc.inval.valid.eq(self.ddtc_inval.valid),
                     ddtc.inval.payload.eq(self.ddtc_inval.payload),
                     self.ddtc_inval.ready.eq(ddtc.inval.ready)]
        wiring.connect(m, wiring.flipped(self.iotlb_inval), iotlb.inval)
        return ddtc, ddtw, iotlb, ptw

    def _msi_walkers(self, m):
        """The MSI page-table walker with its MSI PTE cache (:mod:`iogate.hdl.msi`) and the
        MRIF updater (:mod:`iogate.hdl.mrif`), sharing one read client (a walk slot's MRIF
        update follows its MSI PTE walk), or ``None`` for either not built."""
        cfg = self._config
        if not self._msi:
            return None, None
        m.submodules.msiw = msiw = MsiWalker(pas=cfg.pas, width=cfg.mgpaw - 12,
                                             mrif=cfg.msi_mrif, entries=cfg.msi_ptc_entries,
                                             vpn_w=self._vpn_w)
        m.d.comb += [msiw.inval.valid.eq(self.iotlb_inval.valid),
                     msiw.inval.payload.eq(self.iotlb_inval.payload)]
        if not cfg.msi_mrif:
            wiring.connect(m, wiring.flipped(self.msi_mem), msiw.mem)
            return msiw, None
        m.submodules.mrif = mrif = MrifUpdater(pas=cfg.pas)
        wiring.connect(m, wiring.flipped(self.mrif_mem), mrif.wmem)
        # The MRIF updater reads only while it is busy, the MSI walker only while its
        # result is not yet taken: one of them at a time owns the client.
        mem = self.msi_mem
        mrif_busy = ~mrif.start.ready
        for client, owns in ((msiw.mem, ~mrif_busy), (mrif.mem, mrif_busy)):
            with m.If(owns):
                m.d.comb += [mem.req.valid.eq(client.req.valid),
                             mem.req.payload.eq(client.req.payload),
                             client.req.ready.eq(mem.req.ready),
                             client.resp.valid.eq(mem.resp.valid),
                             mem.resp.ready.eq(client.resp.ready)]
            m.d.comb += client.resp.payload.eq(mem.resp.payload)
        return msiw, mrif

    def _process_contexts(self, m, modes, g_modes):
        """The process-context cache and walker (spec "Process to locate the
        Process-context"), or ``(None, None)`` without process contexts."""
        cfg = self._config
        if not self._pd:
            return None, None
        m.submodules.pdtc = pdtc = ProcessContextCache(cfg.pdtc_entries,
                                                       pid_bits=cfg.process_id_bits)
        m.submodules.pdtw = pdtw = ProcessDirectoryWalker(pas=cfg.pas, modes=cfg.pdtp_modes,
                                                          iosatp_modes=modes,
                                                          gstage=bool(g_modes),
                                                          events=self._hpm)
        wiring.connect(m, wiring.flipped(self.pdt_mem), pdtw.mem)
        wiring.connect(m, wiring.flipped(self.pdtc_inval), pdtc.pdt_inval)
        m.d.comb += [pdtc.ddt_inval.valid.eq(self.ddtc_inval.valid),
                     pdtc.ddt_inval.payload.eq(self.ddtc_inval.payload)]
        return pdtc, pdtw

    def _response_stage(self, m, s):
        """The response stage: the registered answer of spec "Process to translate an
        IOVA", held until ``resp`` takes it."""
        s.out_valid = Signal()
        s.out = Signal(pipeline_response_layout(self._config))
        m.d.comb += [self.resp.valid.eq(s.out_valid), self.resp.payload.eq(s.out)]
        s.ats_benign = Const(0, 1)   # an ATS Translation Request's fault that is no refusal
        if self._ats:
            self._ats_completion(m, s)
        # A fault answer needs the fault-report register free the cycle after (below).
        s.report_valid = Signal()
        s.loaded = Signal()      # `out` was loaded at the last edge
        s.can_load = ((~s.out_valid | self.resp.ready) & ~(s.loaded & s.out.fault)
                      & (~s.report_valid | self.fault.ready))
        with m.If(self.resp.ready):
            m.d.sync += s.out_valid.eq(0)

    def _ats_completion(self, m, s):
        """An ATS Translation Request's answer: its Translation Completion (reference N.6.2,
        D.4 "Fault responses"), from the answer of its walk as a read.

        * A fault of :data:`iogate.hdl.formats.ATS_NO_PERMISSION_CAUSES` is a success with
          R=W=X=0, and no fault record (:meth:`_fault_report` leaves it out); any other
          fault is UR/CA and stays a fault, with its record (TTYP 8).
        * Success: R as walked; W only without No Write (W of both stages, with D=1); X only
          with Execute Requested, X of both stages and R; G the first stage's, with a PASID;
          Priv the request's Privilege Mode Requested, with a PASID; PBMT PMA (a completion
          carries none: decision "ats-3" of issue 17); the size of the walk (4 KiB for the
          R=W=0 answer: decision "ats-4").

        ``s.out_ats`` is the request behind ``out`` (loaded with it by :meth:`_fault_report`).
        """
        out, req, resp = s.out, Signal(data.StructLayout({
            "kind": AtsKind, "nw": 1, "exec_req": 1, "pv": 1, "priv": 1})), self.resp.payload
        s.out_ats = req
        is_req = req.kind == AtsKind.ATS_REQUEST
        benign = Const(0, 1)
        for cause in ATS_NO_PERMISSION_CAUSES:
            benign = benign | (out.cause == cause)
        s.ats_benign = Signal()
        m.d.comb += s.ats_benign.eq(is_req & out.fault & benign)
        with m.If(s.ats_benign):
            # 4 KiB (a completion always has a size; the address is UNSPECIFIED).
            m.d.comb += [resp.fault.eq(0), resp.cause.eq(0), resp.ppn.eq(0), resp.r.eq(0),
                         resp.w.eq(0), resp.x.eq(0), resp.pbmt.eq(Pbmt.PMA),
                         resp.size.eq(PageSize.SIZE_4K), resp.g.eq(0), resp.priv.eq(0),
                         resp.completion.eq(1)]
        with m.Elif(is_req & ~out.fault):
            # A completion carries no memory type: PMA (decision "ats-3" of issue 17).
            m.d.comb += [resp.completion.eq(1), resp.pbmt.eq(Pbmt.PMA),
                         resp.w.eq(out.w & ~req.nw),
                         resp.x.eq(out.x & out.r & req.exec_req),
                         resp.g.eq(out.g & req.pv), resp.priv.eq(req.pv & req.priv)]
        with m.Else():
            m.d.comb += [resp.size.eq(0), resp.g.eq(0), resp.priv.eq(0)]

    def _device_context(self, m, s, ddtc, pdtc):
        """The request's device context from the device-context cache (spec "Process to
        translate an IOVA", steps 1-8 through "Process to locate the Device-context")."""
        # The request's device context is looked up as the request is accepted and kept
        # with it (``s1_dc``), so the IOTLB compare of the lookup stage starts from flip-
        # flops instead of behind the device-context cache's compare and read: that chain
        # was the longest path of the design. A DC fill or IODIR.INVAL_DDT in the meantime
        # makes the copy stale (``s1_dc_ok`` low): it is looked up again, one cycle, so a
        # request always uses the cache as it is now, as before.
        s.s1_dc = Signal(ddtc.lookup_dc.shape())
        s.s1_dc_hit = Signal()
        s.s1_dc_ok = Signal()
        s.reload = Signal()
        m.d.comb += [
            s.reload.eq(s.s1_valid & ~s.s1_dc_ok),
            ddtc.lookup_device_id.eq(Mux(s.reload, s.s1.device_id,
                                         Mux(s.query_go, self.pq_query.payload.device_id,
                                             self.req.payload.device_id)
                                         if self._ats else self.req.payload.device_id)),
        ]
        dc_changes = ddtc.fill.valid | self.ddtc_inval.valid
        if pdtc is not None:
            # The request's PC is looked up and kept beside its DC, the same way.
            dc_changes = dc_changes | pdtc.fill.valid | self.pdtc_inval.valid
        accept = self.req.valid & self.req.ready
        if self._ats:
            accept = accept | (self.pq_query.valid & self.pq_query.ready)
        with m.If(s.reload | accept):
            m.d.sync += [s.s1_dc.eq(ddtc.lookup_dc), s.s1_dc_hit.eq(ddtc.lookup_hit),
                         s.s1_dc_ok.eq(~dc_changes)]
        with m.Elif(dc_changes):
            m.d.sync += s.s1_dc_ok.eq(0)
        s.dc = s.s1_dc

    def _process_context(self, m, s, ddtc, pdtc):
        """The request's process context (spec "Process to translate an IOVA" steps 11-16):
        whether one is used, from the process-context cache, and what it changes."""
        dc, s1 = s.dc, s.s1
        # Without process contexts a DC with PDTV=1 passes the checks only with pdtp Bare:
        # no request reaches a PC and the first stage is Bare.
        s.uses_pc = Signal()     # a PC gives the first stage (steps 11, 14, 16)
        s.pc_miss = Signal()
        s.pid_too_wide = Signal()  # step 7c
        s.ens_refused = Signal()   # step 15
        s.priv = Signal()        # a supervisor request that reaches a PC
        s.pc = Signal(pdtc.lookup_pc.shape() if pdtc is not None else 1)
        s.pid = Signal(20)       # the effective process_id: 0 after the DPE substitution
        if pdtc is None:
            return
        s1_pc_hit = Signal()
        pid_of = lambda p: Mux(p.pv, p.pid, 0)   # noqa: E731
        m.d.comb += [
            pdtc.lookup_device_id.eq(Mux(s.reload, s1.device_id, self.req.payload.device_id)),
            pdtc.lookup_pid.eq(Mux(s.reload, pid_of(s1), pid_of(self.req.payload))),
            s.pid.eq(pid_of(s1)),
        ]
        # The first stage's mode and PSCID (the PC's or the DC's) are chosen as the DC and
        # PC are looked up and kept with them, so that the IOTLB compare of the lookup stage
        # starts from flip-flops: behind the choice it was the design's longest path.
        s.key_s_on, s.key_pscid, s.key_mode = Signal(), Signal(20), Signal(IosatpMode)
        ldc, lpc = ddtc.lookup_dc, pdtc.lookup_pc
        pv = Mux(s.reload, s1.pv, self.req.payload.pv)
        uses = (ldc.tc.pdtv & (ldc.fsc.mode != PdtpMode.BARE) & (pv | ldc.tc.dpe))
        with m.If(s.reload | (self.req.valid & self.req.ready)):
            m.d.sync += [
                s.pc.eq(pdtc.lookup_pc), s1_pc_hit.eq(pdtc.lookup_hit),
                s.key_s_on.eq(Mux(uses, lpc.fsc.mode != IosatpMode.BARE,
                                  ~ldc.tc.pdtv & (ldc.fsc.mode != IosatpMode.BARE))),
                s.key_pscid.eq(Mux(uses, lpc.ta.pscid, ldc.ta.pscid)),
                s.key_mode.eq(Mux(uses, lpc.fsc.mode, ldc.fsc.mode)),
            ]
        pdtp_on = dc.tc.pdtv & (dc.fsc.mode != PdtpMode.BARE)
        too_wide = Const(0, 1)
        for mode in self._config.pdtp_modes:
            if mode.pid_bits < 20:
                too_wide = too_wide | ((dc.fsc.mode == mode) & (s1.pid[mode.pid_bits:] != 0))
        m.d.comb += [
            s.uses_pc.eq(pdtp_on & (s1.pv | dc.tc.dpe)),
            s.pc_miss.eq(s.uses_pc & ~s1_pc_hit),
            # pdtp Bare has no width check (reference N.1.2, as libiommu).
            s.pid_too_wide.eq(s1.pv & dc.tc.pdtv & too_wide),
            s.priv.eq(s.uses_pc & s1.pv & s1.priv),
            s.ens_refused.eq(s.priv & ~s.pc.ta.ens),
        ]

    def _iotlb_key(self, m, s, iotlb, g_modes):
        """The stages the DC enables and the IOTLB tag of the lookup (spec "Process to
        translate an IOVA", steps 9-17, and "Caching in-memory data structures")."""
        dc = s.dc
        # The stages of the DC (its checks passed, so a non-Bare mode is one offered).
        # PDTV=1 passes the checks only with pdtp Bare: no process_id reaches a process
        # context, so the first stage is Bare (spec "Process to translate an IOVA"
        # steps 11-13).
        s.s_on = Signal()        # first stage not Bare
        s.g_on = Signal()        # second stage not Bare
        # The first stage's iosatp and PSCID: the DC's (PDTV=0) or the PC's; ``fsc_mode``
        # counts only where ``s_on``. Without process contexts these are the DC's fields
        # themselves, so that a Config without them elaborates exactly as before.
        s.fsc_mode = Signal(IosatpMode)
        s.fsc_ppn = Signal(44)
        s.pscid = Signal(20)
        dc_s_on = ~dc.tc.pdtv & (dc.fsc.mode != IosatpMode.BARE)
        m.d.comb += [s.fsc_mode.eq(dc.fsc.mode), s.fsc_ppn.eq(dc.fsc.ppn),
                     s.pscid.eq(dc.ta.pscid), s.s_on.eq(dc_s_on)]
        if self._pd:
            m.d.comb += [s.fsc_mode.eq(s.key_mode), s.pscid.eq(s.key_pscid),
                         s.s_on.eq(s.key_s_on)]
            with m.If(s.uses_pc):
                m.d.comb += s.fsc_ppn.eq(s.pc.fsc.ppn)
        if self._config.ats:
            # Step 9: a Translated request with T2GPA=1 carries a GPA: first stage Bare, no PC.
            s.translated = Signal()
            m.d.comb += s.translated.eq(s.s1.kind == AtsKind.TRANSLATED)
            with m.If(s.translated & dc.tc.t2gpa):
                m.d.comb += s.s_on.eq(0)
                if self._pd:
                    m.d.comb += s.uses_pc.eq(0)
        m.d.comb += s.g_on.eq((dc.iohgatp.mode != IohgatpMode.BARE) if g_modes else 0)
        # IOTLB tags (spec "Caching in-memory data structures"): GSCID when the second stage is not
        # Bare, PSCID when the first stage is not; a second-stage-only entry is GSCID+GPA (pscv=0).
        key = iotlb.lookup_key
        m.d.comb += [
            key.gv.eq(s.g_on), key.gscid.eq(Mux(s.g_on, dc.iohgatp.gscid, 0)),
            key.pscv.eq(s.s_on), key.pscid.eq(Mux(s.s_on, s.pscid, 0)),
            key.vpn.eq(s.s1.iova[12:12 + self._vpn_w]),
        ]

    def _too_wide(self, device_id):
        """A ``device_id`` wider than ``iommu_mode`` reaches (spec "Process to translate an
        IOVA", step 5; the DDI widths of each mode in the DC format built, reference N.3.2)."""
        too_wide = Const(0, 1)
        extended = self._config.dc_extended
        for mode in sorted(IommuMode, key=lambda mode: -mode.levels):
            bits = mode.device_id_bits_of(extended)
            if mode.levels and bits < len(device_id):
                too_wide = Mux(self.iommu_mode == mode, device_id[bits:] != 0, too_wide)
        return too_wide

    def _lookup(self, m, s, iotlb, modes, g_modes):
        """The lookup stage's decision, in the order of spec "Process to translate an
        IOVA": Off, Bare, a too-wide device_id, the DC, a process_id without PDTV, both
        stages Bare, then an IOTLB hit or a page-table walk."""
        cfg = self._config
        s1, dc, answer, s_on, g_on = s.s1, s.dc, s.answer, s.s_on, s.g_on
        # A hit is only used for an address the walk would accept: a canonical IOVA, or a
        # GPA narrow enough for the second stage. The IOTLB keeps `vpn_width` VPN bits, so
        # without this an out-of-range address could alias a cached page.
        in_range = Const(0, 1)
        for mode in modes:
            in_range = in_range | (s_on & (s.fsc_mode == mode) & canonical(s1.iova, mode))
        for mode in g_modes:
            in_range = in_range | (~s_on & (dc.iohgatp.mode == mode) & gpa_fits(s1.iova, mode))
        hit = iotlb.lookup_result
        granted = Mux(s1.access == Access.EXECUTE, hit.x,
                      Mux(s1.access == Access.WRITE, hit.w, hit.r))
        if self._pd:
            # A first-stage entry keeps its leaf's U: the request's privilege must be allowed
            # to use it (reference N.1.6): User needs U=1; supervisor U=0, or U=1 with SUM
            # and no execute.
            u_ok = Mux(s.priv, ~hit.u | (s.pc.ta.sum & (s1.access != Access.EXECUTE)), hit.u)
            granted = granted & (~s_on | u_ok)

        def identity():
            # An untranslated address the physical address space does not have is an
            # access fault, as for any address outside the platform's memory (Privileged
            # spec, PMAs); the port and tr_response could not carry it anyway. The model
            # applies the same rule (found by iogate regress --seed 1).
            beyond = s1.iova[cfg.pas:] != 0
            return [answer.fault.eq(beyond),
                    answer.cause.eq(Mux(beyond, access_fault_cause(s1.access), 0)),
                    answer.ppn.eq(s1.iova[12:56]), answer.r.eq(1), answer.w.eq(1),
                    answer.x.eq(1), answer.pbmt.eq(Pbmt.PMA)]

        def fault(cause):
            return [answer.fault.eq(1), answer.cause.eq(cause)]

        s.too_wide = too_wide = self._too_wide(s1.device_id)
        ats_kind = (s1.kind != AtsKind.UNTRANSLATED) if cfg.ats else Const(0, 1)
        if cfg.t2gpa:
            s.t2gpa_req = Signal()
            m.d.comb += s.t2gpa_req.eq((s1.kind == AtsKind.ATS_REQUEST) & dc.tc.t2gpa)

        m.d.comb += [answer.src.eq(s1.src), answer.tag.eq(s1.tag),
                     answer.hit.eq(~s.s1_walked)]
        with m.If(self.iommu_mode == IommuMode.OFF):
            m.d.comb += [s.done.eq(1), fault(Cause.ALL_INBOUND_DISALLOWED)]
        with m.Elif((self.iommu_mode == IommuMode.BARE) & ats_kind):
            # Step 2: Translated requests and Translation Requests are refused in Bare.
            m.d.comb += [s.done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        with m.Elif(self.iommu_mode == IommuMode.BARE):
            m.d.comb += [s.done.eq(1), identity()]
        with m.Elif(too_wide):
            m.d.comb += [s.done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        with m.Elif(~s.s1_dc_ok):
            pass                 # the DC is being looked up again (above)
        with m.Elif(~s.s1_dc_hit):
            m.d.comb += s.need_ddt.eq(1)
        with m.Elif(ats_kind & ~dc.tc.en_ats):
            # Step 7a: ATS is not enabled for the device (reference N.6.1).
            m.d.comb += [s.done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        with m.Elif(s1.pv & ~dc.tc.pdtv):
            # A process_id with PDTV=0 (spec "Process to translate an IOVA" step 7).
            m.d.comb += [s.done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        if self._pd:
            with m.Elif(s.pid_too_wide):
                # Step 7c: a process_id wider than pdtp.MODE indexes.
                m.d.comb += [s.done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        if cfg.ats:
            with m.Elif(s.translated & ~dc.tc.t2gpa):
                # Step 8: the address is the SPA, granted as presented (reference N.6.3).
                m.d.comb += [s.done.eq(1), identity()]
        if self._pd:
            with m.Elif(s.pc_miss):
                m.d.comb += s.need_pdt.eq(1)
            with m.Elif(s.ens_refused):
                # Step 15: a supervisor request with PC.ta.ENS=0.
                m.d.comb += [s.done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        with m.Elif(~s_on & ~g_on):
            # Both stages Bare: the IOVA is the physical address.
            m.d.comb += [s.done.eq(1), identity()]
        with m.Elif(in_range & iotlb.lookup_hit & granted & ~s.t2gpa_req):
            m.d.comb += [
                s.done.eq(1), s.from_iotlb.eq(1),
                answer.ppn.eq(hit.ppn), answer.r.eq(hit.r), answer.w.eq(hit.w),
                answer.x.eq(hit.x), answer.pbmt.eq(hit.pbmt),
            ]
            if cfg.ats:
                m.d.comb += [answer.size.eq(hit.size), answer.g.eq(hit.g)]
            if self._pd:
                # A U=1 first-stage page grants a supervisor request no execute.
                with m.If(s.priv & s_on & hit.u):
                    m.d.comb += answer.x.eq(0)
        with m.Else():
            m.d.comb += s.need_ptw.eq(1)
        if self._ats:
            self._pq_lookup(m, s)

    def _pq_lookup(self, m, s):
        """A Page Request's verdict (rows 1-5 of reference N.6.7): the steps 1-6 of "Process
        to translate an IOVA" above, and nothing after them. Overrides the request's
        decision (the later assignment wins)."""
        v, dc = s.q_verdict, s.dc
        with m.If(s.s1_query):
            m.d.comb += [s.done.eq(0), s.need_ptw.eq(0), s.need_pdt.eq(0), s.need_ddt.eq(0),
                         s.from_iotlb.eq(0)]
            with m.If(self.iommu_mode == IommuMode.OFF):
                m.d.comb += [s.q_done.eq(1), v.kind.eq(PqVerdict.OFF)]
            with m.Elif(self.iommu_mode == IommuMode.BARE):
                m.d.comb += [s.q_done.eq(1), v.kind.eq(PqVerdict.BARE)]
            with m.Elif(s.too_wide):
                m.d.comb += [s.q_done.eq(1), v.kind.eq(PqVerdict.DID_WIDE)]
            with m.Elif(~s.s1_dc_ok):
                pass             # the DC is being looked up again
            with m.Elif(~s.s1_dc_hit):
                m.d.comb += s.need_ddt.eq(1)
            with m.Else():
                m.d.comb += [s.q_done.eq(1), v.kind.eq(PqVerdict.DC),
                             v.en_ats.eq(dc.tc.en_ats), v.en_pri.eq(dc.tc.en_pri),
                             v.prpr.eq(dc.tc.prpr), v.dtf.eq(dc.tc.dtf)]

    def _walk_starts(self, m, s, ddtc, ddtw, iotlb, ptw):
        """What the walkers start from and what they fill the caches with (spec "Process
        to locate the Device-context" and "Process to translate an IOVA", step 17 on)."""
        s1, dc = s.s1, s.dc
        s.s1_complete = Signal()
        s.entry_free = Signal()
        m.d.comb += [
            # Not while the lookup port reloads the DC of the request in the lookup stage.
            s.entry_free.eq(~s.s1_valid | (s.s1_complete & ~s.reload)),
            self.req.ready.eq(s.entry_free & ~s.query_go),
            ddtw.start.payload.ddtp_ppn.eq(self.ddtp_ppn),
            ddtw.start.payload.mode.eq(self.iommu_mode),
            ddtw.start.payload.device_id.eq(s1.device_id),
            ptw.start.payload.root_ppn.eq(s.fsc_ppn),
            ptw.start.payload.iova.eq(s1.iova),
            ptw.start.payload.access.eq(s1.access),
            ptw.start.payload.mode.eq(Mux(s.s_on, s.fsc_mode, IosatpMode.BARE)),
            ptw.start.payload.g_root.eq(dc.iohgatp.ppn),
            ptw.start.payload.g_mode.eq(Mux(s.g_on, dc.iohgatp.mode, IohgatpMode.BARE)),
            ddtc.fill.payload.device_id.eq(s1.device_id),
            ddtc.fill.payload.dc.eq(ddtw.result.payload.dc),
        ]
        if self._pd:
            # The first-stage leaf's U check for a supervisor request (reference N.1.6).
            m.d.comb += [ptw.start.payload.priv.eq(s.priv),
                         ptw.start.payload.sum.eq(s.priv & s.pc.ta.sum)]
        if self._msi:
            m.d.comb += ptw.start.payload.msi.eq(dc.msi.flat)
        f = iotlb.fill.payload
        r = ptw.result.payload
        m.d.comb += [
            f.key.eq(s.walk_key), f.partial.eq(r.partial),
            f.result.ppn.eq(r.ppn), f.result.r.eq(r.r), f.result.w.eq(r.w),
            f.result.x.eq(r.x), f.result.pbmt.eq(r.pbmt), f.result.g.eq(r.g),
            f.result.size.eq(r.size),
        ]
        if self._pd:
            m.d.comb += f.result.u.eq(r.u)

    def _lookup_fsm(self, m, s, ddtc, ddtw, iotlb, ptw, pdtc, pdtw):
        """The lookup stage's control: answer, walk the device directory and replay, or
        hand the request to the walk slot (spec "Process to translate an IOVA")."""
        out, answer = s.out, s.answer
        # The walk's answer goes first: the walker is never held by a stream of hits.
        lookup_can_load = s.can_load & ~s.walk_load
        with m.FSM(name="lookup"):
            with m.State("LOOKUP"):
                with m.If(s.s1_valid):
                    with m.If(s.done & lookup_can_load):
                        m.d.comb += [s.s1_complete.eq(1), s.lookup_load.eq(1),
                                     iotlb.lookup_touch.eq(s.from_iotlb)]
                        m.d.sync += [s.out_valid.eq(1), out.eq(answer)]
                    if self._ats:
                        with m.If(s.q_done & ~s.verdict_valid):
                            m.d.comb += s.s1_complete.eq(1)
                            m.d.sync += [s.verdict_valid.eq(1), s.q_verdict_r.eq(s.q_verdict)]
                    with m.If(s.need_ddt):
                        m.d.comb += ddtw.start.valid.eq(1)
                        with m.If(ddtw.start.ready):
                            m.d.sync += [s.ddt_stale.eq(0), s.s1_walked.eq(1)]
                            m.next = "DDT_WALK"
                    with m.If(s.need_ptw & ~s.w_valid):
                        # Hand the request to the walk slot; the lookup stage is free.
                        m.d.comb += ptw.start.valid.eq(1)
                        with m.If(ptw.start.ready):
                            m.d.comb += s.s1_complete.eq(1)
                            if self._hpm:
                                m.d.comb += s.enter_walk.eq(1)
                            m.d.sync += [s.w_valid.eq(1), s.w.eq(s.s1), s.pt_stale.eq(0),
                                         s.walk_key.eq(iotlb.lookup_key),
                                         s.walk_dtf.eq(s.dc.tc.dtf),
                                         s.walk_t2gpa.eq(s.t2gpa_req)]
                            if self._pd:
                                m.d.sync += s.walk_sup.eq(s.priv & s.s_on)
                            if self._msi:
                                m.d.sync += [s.walk_msi_ppn.eq(s.dc.msi.ppn),
                                             s.walk_msi_mask.eq(s.dc.msi.mask),
                                             s.walk_msi_pattern.eq(s.dc.msi.pattern)]
                    if pdtw is not None:
                        with m.If(s.need_pdt):
                            m.d.comb += pdtw.start.valid.eq(1)
                            with m.If(pdtw.start.ready):
                                m.d.sync += [s.pdt_stale.eq(0), s.s1_walked.eq(1)]
                                m.next = "PDT_WALK"
            with m.State("DDT_WALK"):
                with m.If(self.ddtc_inval.valid):
                    m.d.sync += s.ddt_stale.eq(1)
                with m.If(ddtw.result.valid):
                    with m.If(ddtw.result.payload.fault):
                        # A request's fault is its answer; a Page Request's, its verdict.
                        can_load = lookup_can_load
                        if self._ats:
                            can_load = Mux(s.s1_query, ~s.verdict_valid, lookup_can_load)
                        with m.If(can_load):
                            m.d.comb += [ddtw.result.ready.eq(1), s.s1_complete.eq(1),
                                         s.lookup_load.eq(~s.s1_query)]
                            with m.If(~s.s1_query):
                                m.d.sync += _walk_fault(s, answer, ddtw.result.payload.cause)
                            if self._ats:
                                with m.Else():
                                    m.d.sync += [
                                        s.verdict_valid.eq(1), s.q_verdict_r.eq(0),
                                        s.q_verdict_r.kind.eq(PqVerdict.DC_FAULT),
                                        s.q_verdict_r.cause.eq(ddtw.result.payload.cause),
                                    ]
                            m.next = "LOOKUP"
                    with m.Else():
                        # Cache the DC and replay the lookup with it.
                        m.d.comb += [ddtw.result.ready.eq(1),
                                     ddtc.fill.valid.eq(~s.ddt_stale & ~self.ddtc_inval.valid)]
                        m.next = "LOOKUP"
            if pdtw is not None:
                self._pdt_walk_state(m, s, pdtc, pdtw, lookup_can_load)

    def _pdt_walk_starts(self, m, s, pdtc, pdtw, ptw):
        """What the process-directory walker starts from and what it fills the
        process-context cache with (spec "Process to locate the Process-context")."""
        if pdtw is None:
            return
        s1, dc = s.s1, s.dc
        m.d.comb += [
            pdtw.start.payload.ppn.eq(dc.fsc.ppn),
            pdtw.start.payload.mode.eq(dc.fsc.mode),
            pdtw.start.payload.pid.eq(s.pid),
            pdtw.start.payload.g_on.eq(s.g_on),
            pdtw.start.payload.access.eq(s1.access),
            pdtc.fill.payload.device_id.eq(s1.device_id),
            pdtc.fill.payload.pid.eq(s.pid),
            pdtc.fill.payload.pc.eq(pdtw.result.payload.pc),
        ]
        if not hasattr(pdtw, "g_req"):
            return
        # The second-stage translation of a PDT entry's GPA, on the page-table walker once
        # the walk slot is empty (the lookup stage, stalled on this walk, starts no other).
        s.g_for_pdt = g_for_pdt = Signal()  # the page-table walker's walk is the PDT walker's
        r = ptw.result.payload
        with m.If(pdtw.g_req.valid & ~s.w_valid & ~g_for_pdt):
            p = ptw.start.payload
            m.d.comb += [ptw.start.valid.eq(1), pdtw.g_req.ready.eq(ptw.start.ready),
                         p.root_ppn.eq(0), p.iova.eq(pdtw.g_req.payload.gpa),
                         p.access.eq(Access.READ), p.mode.eq(IosatpMode.BARE),
                         p.g_root.eq(dc.iohgatp.ppn), p.g_mode.eq(dc.iohgatp.mode),
                         p.priv.eq(0), p.sum.eq(0)]
            if self._msi:
                # A PDT entry's GPA is not MSI-translated: step 18 is the request's GPA.
                m.d.comb += p.msi.eq(0)
            with m.If(ptw.start.ready):
                m.d.sync += g_for_pdt.eq(1)
        with m.If(g_for_pdt):
            m.d.comb += [pdtw.g_resp.valid.eq(ptw.result.valid),
                         pdtw.g_resp.payload.fault.eq(r.fault),
                         pdtw.g_resp.payload.guest.eq(r.cause == Cause.READ_GUEST_PAGE_FAULT),
                         pdtw.g_resp.payload.ppn.eq(r.ppn),
                         ptw.result.ready.eq(pdtw.g_resp.ready)]
            with m.If(ptw.result.valid & pdtw.g_resp.ready):
                m.d.sync += g_for_pdt.eq(0)

    def _pdt_walk_state(self, m, s, pdtc, pdtw, lookup_can_load):
        """The process-directory walk of the request in the lookup stage (spec "Process to
        translate an IOVA" step 14): its fault is the answer; its PC fills the
        process-context cache, unless an IODIR was accepted meanwhile, and the lookup is
        replayed."""
        answer = s.answer
        inval = self.ddtc_inval.valid | self.pdtc_inval.valid
        with m.State("PDT_WALK"):
            with m.If(inval):
                m.d.sync += s.pdt_stale.eq(1)
            with m.If(pdtw.result.valid):
                with m.If(pdtw.result.payload.fault):
                    with m.If(lookup_can_load):
                        m.d.comb += [pdtw.result.ready.eq(1), s.s1_complete.eq(1),
                                     s.lookup_load.eq(1)]
                        m.d.comb += s.lookup_iotval2.eq(pdtw.result.payload.iotval2)
                        m.d.sync += _walk_fault(s, answer, pdtw.result.payload.cause)
                        m.next = "LOOKUP"
                with m.Else():
                    m.d.comb += [pdtw.result.ready.eq(1),
                                 pdtc.fill.valid.eq(~s.pdt_stale & ~inval)]
                    m.next = "LOOKUP"

    def _walk_answer(self, m, s, iotlb, ptw):
        """The walk slot's answer: the page-table walk's translation or fault (spec
        "Process to translate an IOVA", steps 17-20), and its IOTLB fill."""
        out, w = s.out, s.w
        r = ptw.result.payload
        with m.If(s.w_valid & self.iotlb_inval.valid):
            m.d.sync += s.pt_stale.eq(1)
        with m.If(s.w_valid & ptw.result.valid & s.can_load):
            fill = ~r.fault & ~s.pt_stale & ~self.iotlb_inval.valid
            m.d.comb += [s.walk_load.eq(1), ptw.result.ready.eq(1), iotlb.fill.valid.eq(fill)]
            m.d.sync += [
                s.w_valid.eq(0), s.out_valid.eq(1),
                out.src.eq(w.src), out.tag.eq(w.tag), out.hit.eq(0),
                # The walker zeroes its result at start: a fault carries no
                # translation fields.
                embedded(out, ANSWER).eq(embedded(r, ANSWER)),
            ]
            if self._ats:
                m.d.sync += [out.size.eq(r.size), out.g.eq(r.g)]
            if self._config.t2gpa:
                with m.If(s.walk_t2gpa & ~r.fault):
                    m.d.sync += out.ppn.eq(r.t2gpa_ppn)
            if self._pd:
                # A U=1 first-stage page grants a supervisor request no execute (reference
                # N.1.6); the IOTLB keeps the leaf's own permissions for later requests.
                with m.If(s.walk_sup & r.u):
                    m.d.sync += out.x.eq(0)

    def _walk_answer_msi(self, m, s, iotlb, ptw):
        """:meth:`_walk_answer` with MSI address translation (spec "Process to translate an
        IOVA" step 18, reference N.4; issue 16 decisions 3-5).

        A page-table walk that ends with ``msi`` (its GPA matched the DC's MSI mask and
        pattern, before any second-stage read for it: first-stage faults come first) hands
        the GPA to the MSI page-table walker, which answers 261, 262 or 263 or the checked
        MSI PTE (from its cache or the MSI page table). Then, in this order:

        * an execute → 1 (instruction access fault; also through the debug interface);
        * a basic PTE (M=3): the PTE's PPN with the first stage's R and W (all ones when it
          is Bare), X=0 and the first stage's PBMT (PMA when Bare or PMA: the MSI page table
          takes the second stage's place, Svpbmt's rule). It fills the IOTLB as a 4 KiB
          entry under the request's tags (GSCID, PSCID with a first stage; ``partial`` when
          the first-stage leaf is larger), so that IOTINVAL.GVMA of the GSCID removes it
          (decision 4; with AV=1 the second-stage-only entry only for its GPA);
        * an MRIF PTE (M=1; never put in the IOTLB): the debug interface → 260; an access
          that is not one 32-bit word (``word=0``) or not 4-byte aligned → 260 ("aborted as
          unsupported"); an aligned read → absorbed (reads 0, no memory access); an aligned
          write with D = ``data`` (byte-swapped when A[2]=1: big-endian MSIs accepted):
          ``A[11:3] != 0`` or ``D >= 2048`` → absorbed, silently discarded; else the MRIF
          update (:mod:`iogate.hdl.mrif`), then absorbed, or 264 on a bus error in it.

        ``iotval2`` is 0 for every MSI cause; the record is as for any fault of the walk.
        """
        cfg = self._config
        out, w = s.out, s.w
        r = ptw.result.payload
        msiw, mrif = s.msiw, s.mrif
        mres = msiw.result.payload
        f = iotlb.fill.payload
        with m.If(s.w_valid & self.iotlb_inval.valid):
            m.d.sync += s.pt_stale.eq(1)
        # The walk slot's phase: the page-table walk, the MSI PTE walk, the MRIF update.
        in_msi = Signal()        # the MSI walker was started for the walk slot
        in_mrif = Signal()       # the MRIF updater was
        ans = Signal(ANSWER)
        absorbed = Signal()
        ready = Signal()         # the walk slot's answer is decided
        fill = Signal()
        m.d.comb += [
            msiw.start.payload.gpa.eq(r.gpa), msiw.start.payload.gscid.eq(s.walk_key.gscid),
            msiw.start.payload.ppn.eq(s.walk_msi_ppn),
            msiw.start.payload.mask.eq(s.walk_msi_mask),
        ]
        if mrif is not None:
            # D: the data as sent, bytes in address order; A[2]=1 is a big-endian MSI.
            swapped = Cat(w.data[24:32], w.data[16:24], w.data[8:16], w.data[0:8])
            s.msi_d = d = Signal(32)
            m.d.comb += d.eq(Mux(w.iova[2], swapped, w.data))
            p = mrif.start.payload
            m.d.comb += [p.mrif_addr.eq(mres.pte.mrif_addr), p.nppn.eq(mres.pte.nppn),
                         p.nid.eq(mres.pte.nid), p.d.eq(d[:11])]

        def fault(cause):
            return [ans.fault.eq(1), ans.cause.eq(cause)]

        with m.If(~r.msi):
            m.d.comb += [ready.eq(ptw.result.valid), ans.eq(embedded(r, ANSWER)),
                         fill.eq(~r.fault)]
        with m.Elif(~in_msi):
            m.d.comb += msiw.start.valid.eq(s.w_valid & ptw.result.valid)
            with m.If(msiw.start.valid & msiw.start.ready):
                m.d.sync += in_msi.eq(1)
        if mrif is not None:
            with m.Elif(in_mrif):
                m.d.comb += ready.eq(mrif.result.valid)
                with m.If(mrif.result.payload.err):
                    m.d.comb += fault(Cause.MRIF_ACCESS_FAULT)
                with m.Else():
                    m.d.comb += absorbed.eq(1)
        with m.Elif(msiw.result.valid):
            mrif_pte = mres.pte.mrif if cfg.msi_mrif else Const(0, 1)
            with m.If(mres.fault):
                m.d.comb += [ready.eq(1), fault(mres.cause)]
            with m.Elif(w.access == Access.EXECUTE):
                m.d.comb += [ready.eq(1), fault(Cause.INSTRUCTION_ACCESS_FAULT)]
            with m.Elif(~mrif_pte):
                m.d.comb += [ready.eq(1), fill.eq(1),
                             ans.ppn.eq(mres.pte.ppn), ans.r.eq(r.r), ans.w.eq(r.w),
                             ans.pbmt.eq(r.pbmt)]
            if cfg.msi_mrif:
                self._mrif_decision(m, s, in_mrif, ready, absorbed, fault)
        with m.If(r.msi):
            # A basic MSI PTE's IOTLB entry: a 4 KiB page of the MSI page table.
            m.d.comb += [f.result.ppn.eq(mres.pte.ppn), f.result.x.eq(0),
                         f.result.size.eq(PageSize.SIZE_4K),
                         f.partial.eq(s.walk_key.pscv & (r.size != PageSize.SIZE_4K))]

        with m.If(s.w_valid & ready & s.can_load):
            m.d.comb += [s.walk_load.eq(1), ptw.result.ready.eq(1),
                         iotlb.fill.valid.eq(fill & ~s.pt_stale & ~self.iotlb_inval.valid)]
            with m.If(in_msi & ~in_mrif):
                m.d.comb += msiw.result.ready.eq(1)
            if mrif is not None:
                with m.If(in_mrif):
                    m.d.comb += mrif.result.ready.eq(1)
                m.d.sync += out.absorbed.eq(absorbed)
            m.d.sync += [
                s.w_valid.eq(0), s.out_valid.eq(1), in_msi.eq(0), in_mrif.eq(0),
                out.src.eq(w.src), out.tag.eq(w.tag), out.hit.eq(0),
                embedded(out, ANSWER).eq(ans),
            ]
            if self._ats:
                # An MSI page is a 4 KiB page of the MSI page table, never global (N.6.2).
                m.d.sync += [out.size.eq(Mux(r.msi, PageSize.SIZE_4K, r.size)),
                             out.g.eq(~r.msi & r.g)]
            if cfg.t2gpa:
                # The GPA, also of a basic MSI page (reference N.6.2).
                with m.If(s.walk_t2gpa & ~ans.fault):
                    m.d.sync += out.ppn.eq(r.t2gpa_ppn)
            if self._pd:
                with m.If(s.walk_sup & r.u):
                    m.d.sync += out.x.eq(0)

    def _mrif_decision(self, m, s, in_mrif, ready, absorbed, fault):
        """What an MRIF-mode MSI PTE makes of the walk slot's request (issue 16 decision 5,
        reference N.4.4), after the execute check: 260, absorbed, or the MRIF update."""
        cfg, w, d, mrif = self._config, s.w, s.msi_d, s.mrif
        debug = (w.src == cfg.ports) if cfg.dbg else Const(0, 1)
        with m.Elif(debug | ~w.word | (w.iova[:2] != 0)):
            m.d.comb += [ready.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        with m.Elif((w.access == Access.READ) | (w.iova[3:12] != 0) | (d[11:] != 0)):
            m.d.comb += [ready.eq(1), absorbed.eq(1)]
        with m.Else():
            # Hand the PTE to the MRIF updater; the MSI walker is free again.
            m.d.comb += [mrif.start.valid.eq(1), s.msiw.result.ready.eq(mrif.start.ready)]
            with m.If(mrif.start.ready):
                m.d.sync += in_mrif.eq(1)

    def _hpm_events(self, m, s, ddtw, iotlb, ptw, pdtw):
        """The performance monitor's events (decision 10 of issue 17 (HPM), reference N.9
        P17: one per table read) and the identity of the request each is for (decision 11).

        The lookup stage's request: its ``device_id`` and PASID, and the GSCID and PSCID of
        its IOTLB tag (valid once its DC, and PC, are known: IOATC_MISS is the only lookup
        event IDT=1 filters). The page-table walker's: the walk slot's request and its walk's
        tag, or, while it translates a PDT entry's GPA, the lookup stage's request with no
        PSCID (its PC is being read)."""
        ev, s1, w, key = self.hpm, s.s1, s.w, iotlb.lookup_key
        fresh = Signal()         # the lookup stage's request arrived at the last edge
        m.d.sync += fresh.eq(self.req.valid & self.req.ready)

        def identity(view, req, tag, pscv):
            return [view.device_id.eq(req.device_id), view.pv.eq(req.pv),
                    view.pid.eq(req.pid), view.gv.eq(tag.gv), view.gscid.eq(tag.gscid),
                    view.pscv.eq(pscv), view.pscid.eq(tag.pscid)]

        m.d.comb += identity(ev.lookup, s1, key, key.pscv)
        if s.g_for_pdt is None:
            m.d.comb += identity(ev.walk, w, s.walk_key, s.walk_key.pscv)
        else:
            with m.If(s.g_for_pdt):
                m.d.comb += identity(ev.walk, s1, key, 0)
            with m.Else():
                m.d.comb += identity(ev.walk, w, s.walk_key, s.walk_key.pscv)
        pte_read = ptw.mem.req.valid & ptw.mem.req.ready
        m.d.comb += [
            ev.untranslated_req.eq(fresh & s.s1_valid & ~s.s1_query),
            ev.ioatc_miss.eq(s.enter_walk),
            ev.ddt_walk.eq(ddtw.entry_read),
            ev.s1_walk.eq(pte_read & ~ptw.second),
            ev.s2_walk.eq(pte_read & ptw.second),
        ]
        if pdtw is not None:
            m.d.comb += ev.pdt_walk.eq(pdtw.entry_read)
        if self._ats:
            # Events 1-3 by the request's kind (spec "Performance-monitoring event selectors").
            kind = s1.kind
            m.d.comb += [
                ev.untranslated_req.eq(fresh & s.s1_valid & (kind == AtsKind.UNTRANSLATED)),
                ev.translated_req.eq(fresh & s.s1_valid & (kind == AtsKind.TRANSLATED)),
                ev.ats_req.eq(fresh & s.s1_valid & (kind == AtsKind.ATS_REQUEST)),
            ]

    def _fault_report(self, m, s, ptw):
        """Every fault answered, offered to the fault queue (spec "Fault/Event-Queue (FQ)")."""
        out, w, s1, dc = s.out, s.w, s.s1, s.dc
        r = ptw.result.payload
        # `info` is the request behind `out`; the DTF is the walk's DC for a page-table
        # walk fault, else that of the DC in the cache (none for Off, a device_id too wide
        # for the mode, or a device-directory walk fault: "if a fault condition prevents
        # locating a valid device context then the DTF value assumed ... is 0").
        report = Signal(fault_report_layout(ats=self._ats))
        info = Signal(fault_report_layout(ats=self._ats))
        m.d.comb += [self.fault.valid.eq(s.report_valid), self.fault.payload.eq(report)]
        with m.If(s.loaded & out.fault & ~s.ats_benign):
            m.d.sync += [report.eq(info), report.cause.eq(out.cause), s.report_valid.eq(1)]
        with m.Elif(self.fault.ready):
            m.d.sync += s.report_valid.eq(0)
        m.d.sync += s.loaded.eq(s.walk_load | s.lookup_load)
        with m.If(s.walk_load):
            m.d.sync += [
                embedded(info, REQUEST).eq(embedded(w, REQUEST)),
                info.pv.eq(w.pv), info.pid.eq(w.pid),
                info.priv.eq(w.priv), info.dtf.eq(s.walk_dtf),
                # A guest-page fault's GPA (the walker zeroes it on other outcomes).
                info.iotval2.eq(r.iotval2),
            ]
            if self._ats:
                m.d.sync += [info.kind.eq(w.kind), s.out_ats.kind.eq(w.kind),
                             s.out_ats.nw.eq(w.nw), s.out_ats.exec_req.eq(w.exec_req),
                             s.out_ats.pv.eq(w.pv), s.out_ats.priv.eq(w.priv)]
        with m.Elif(s.lookup_load):
            m.d.sync += [
                embedded(info, REQUEST).eq(embedded(s1, REQUEST)),
                info.pv.eq(s1.pv), info.pid.eq(s1.pid), info.priv.eq(s1.priv),
                # Off and Bare locate no DC, whatever the cache still holds from
                # before the mode changed: DTF is then 0 (spec "Fault/Event-Queue (FQ)"; found by
                # iogate regress --seed 7, an access fault in a Bare phase went unreported).
                info.dtf.eq(s.s1_dc_hit & ~s.too_wide & dc.tc.dtf
                            & (self.iommu_mode != IommuMode.OFF)
                            & (self.iommu_mode != IommuMode.BARE)),
                info.iotval2.eq(s.lookup_iotval2 if self._pd else 0),
            ]
            if self._ats:
                m.d.sync += [info.kind.eq(s1.kind), s.out_ats.kind.eq(s1.kind),
                             s.out_ats.nw.eq(s1.nw), s.out_ats.exec_req.eq(s1.exec_req),
                             s.out_ats.pv.eq(s1.pv), s.out_ats.priv.eq(s1.priv)]


def _walk_fault(s, answer, cause):
    """The response stage loaded with the lookup stage's request faulting for ``cause``: a
    directory walk's fault (device or process), which is never a hit and carries no
    translation."""
    out = s.out
    return [s.out_valid.eq(1), out.eq(answer), out.hit.eq(0), out.fault.eq(1),
            out.cause.eq(cause), out.ppn.eq(0), out.r.eq(0), out.w.eq(0), out.x.eq(0),
            out.pbmt.eq(Pbmt.PMA)]
