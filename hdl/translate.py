"""The translation pipeline: where a request's translation or fault is decided.

RISC-V IOMMU spec 3.3 ("Process to translate an IOVA"), for Untranslated requests, with
the device-context cache and the IOTLB of spec 3.8 in front of the walkers.

Pipeline (one request in flight in the lookup stage):

* **request stage** -- the arbitrated request is registered (``s1``);
* **lookup stage** -- in one cycle, in the order of spec 3.3: ``iommu_mode`` Off (256)
  or Bare (identity); a ``device_id`` too wide for the mode (260); the DC from the
  device-context cache; a ``process_id`` without PDTV (260); first stage Bare (identity);
  else an IOTLB lookup tagged by the DC's PSCID. A hit that grants the access is the
  answer; anything else is a miss;
* **response stage** -- the answer is registered and offered on ``resp``.

So a hit is answered two cycles after its request is accepted, one per clock. A miss
stalls the lookup stage while one walker works: the device-directory walker fills the
device-context cache and the lookup is replayed; the page-table walker's result is the
answer (and, if it is a translation, is also written into the IOTLB).

A hit that does not grant the access is re-walked rather than faulted: the entry may be
stale (software may have upgraded the PTE), and a fresh walk is always a correct answer.
A walk during which an invalidation of the cache it would fill was accepted does not fill
it, so that an invalidation followed by IOFENCE.C never leaves a translation read before
the invalidation in the cache (spec 4.1.1 and 4.1.2).
"""

from amaranth.hdl import Module, Signal, Const, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import Config
from .ddt import (DeviceContextCache, DeviceDirectoryWalker, ddtc_inval_layout)
from .formats import Cause, IosatpMode, Pbmt
from .iotlb import IOTLB, iotlb_inval_layout, vpn_width
from .mem_master import MemReadSignature
from .port import Access
from .ptw import PageTableWalker, canonical
from .regs import IommuMode

__all__ = ["source_width", "pipeline_request_layout", "pipeline_response_layout",
           "TranslationPipeline"]


def source_width(config):
    """Bits to name a request's source: one per translation port, plus the debug interface."""
    return max(1, config.ports.bit_length())


def pipeline_request_layout(config):
    """A request inside the IOMMU: a port's request plus where it came from.

    ``src`` is the port index, or ``config.ports`` for the debug translation interface;
    ``pv`` says a ``process_id`` came with it (only the debug interface can say so).
    """
    return data.StructLayout({
        "src": source_width(config), "tag": config.tag_width, "device_id": 24, "iova": 64,
        "access": Access, "pv": 1,
    })


def pipeline_response_layout(config):
    """A response inside the IOMMU: the port response fields plus ``src``."""
    return data.StructLayout({
        "src": source_width(config), "tag": config.tag_width, "fault": 1, "cause": Cause,
        "ppn": 44, "r": 1, "w": 1, "x": 1, "pbmt": Pbmt, "hit": 1,
    })


def first_stage_modes(config):
    """The first-stage modes this instance walks (besides Bare)."""
    modes = []
    if config.sv39:
        modes.append(IosatpMode.SV39)
    if config.sv48:
        modes.append(IosatpMode.SV48)
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

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`.
    """

    def __init__(self, config):
        try:
            if not isinstance(config, Config):
                raise TypeError(f"config must be a Config, not {config!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._config = config
        self._vpn_w = vpn_width(config)
        super().__init__({
            "req": In(stream.Signature(pipeline_request_layout(config))),
            "resp": Out(stream.Signature(pipeline_response_layout(config))),
            "iommu_mode": In(IommuMode),
            "ddtp_ppn": In(44),
            "ddt_mem": Out(MemReadSignature(config.pas)),
            "ptw_mem": Out(MemReadSignature(config.pas)),
            "ddtc_inval": In(stream.Signature(ddtc_inval_layout())),
            "iotlb_inval": In(stream.Signature(iotlb_inval_layout(self._vpn_w))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        modes = first_stage_modes(cfg)

        m.submodules.ddtc = ddtc = DeviceContextCache(cfg.ddtc_entries)
        m.submodules.ddtw = ddtw = DeviceDirectoryWalker(pas=cfg.pas, iosatp_modes=modes)
        m.submodules.iotlb = iotlb = IOTLB(cfg.iotlb_entries, cfg.iotlb_ways, self._vpn_w)
        m.submodules.ptw = ptw = PageTableWalker(pas=cfg.pas, svpbmt=cfg.svpbmt,
                                                 modes=modes or (IosatpMode.SV39,))
        wiring.connect(m, wiring.flipped(self.ddt_mem), ddtw.mem)
        wiring.connect(m, wiring.flipped(self.ptw_mem), ptw.mem)
        wiring.connect(m, wiring.flipped(self.ddtc_inval), ddtc.inval)
        wiring.connect(m, wiring.flipped(self.iotlb_inval), iotlb.inval)

        resp_l = pipeline_response_layout(cfg)

        # --- Response stage.
        out_valid = Signal()
        out = Signal(resp_l)
        m.d.comb += [self.resp.valid.eq(out_valid), self.resp.payload.eq(out)]
        can_load = ~out_valid | self.resp.ready
        with m.If(self.resp.ready):
            m.d.sync += out_valid.eq(0)

        # --- Lookup stage.
        s1_valid = Signal()
        s1 = Signal(pipeline_request_layout(cfg))
        s1_walked = Signal()     # this request needed a walk: its answer is not a hit
        stale = Signal()         # an invalidation hit the cache the current walk will fill
        walk_pscid = Signal(20)

        answer = Signal(resp_l)  # what the lookup stage answers, when `done`
        done = Signal()
        need_ddt = Signal()
        need_ptw = Signal()
        from_iotlb = Signal()

        dc = ddtc.lookup_dc
        m.d.comb += [
            ddtc.lookup_device_id.eq(s1.device_id),
            iotlb.lookup_key.gv.eq(0),
            iotlb.lookup_key.gscid.eq(0),
            iotlb.lookup_key.pscid.eq(dc.ta.pscid),
            iotlb.lookup_key.vpn.eq(s1.iova[12:12 + self._vpn_w]),
        ]

        is_canonical = Const(0, 1)
        for mode in modes:
            is_canonical = is_canonical | ((dc.fsc.mode == mode) & canonical(s1.iova, mode))
        hit = iotlb.lookup_result
        granted = Mux(s1.access == Access.EXECUTE, hit.x,
                      Mux(s1.access == Access.WRITE, hit.w, hit.r))

        def identity():
            return [answer.ppn.eq(s1.iova[12:56]), answer.r.eq(1), answer.w.eq(1),
                    answer.x.eq(1), answer.pbmt.eq(Pbmt.PMA)]

        def fault(cause):
            return [answer.fault.eq(1), answer.cause.eq(cause)]

        # device_id wider than the mode allows (spec 3.3 step 5; base-format DDI widths).
        too_wide = Mux(self.iommu_mode == IommuMode.LVL1, s1.device_id[7:] != 0,
                       Mux(self.iommu_mode == IommuMode.LVL2, s1.device_id[16:] != 0, 0))

        m.d.comb += [answer.src.eq(s1.src), answer.tag.eq(s1.tag), answer.hit.eq(~s1_walked)]
        with m.If(self.iommu_mode == IommuMode.OFF):
            m.d.comb += [done.eq(1), fault(Cause.ALL_INBOUND_DISALLOWED)]
        with m.Elif(self.iommu_mode == IommuMode.BARE):
            m.d.comb += [done.eq(1), identity()]
        with m.Elif(too_wide):
            m.d.comb += [done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        with m.Elif(~ddtc.lookup_hit):
            m.d.comb += need_ddt.eq(1)
        with m.Elif(s1.pv & ~dc.tc.pdtv):
            # A process_id with PDTV=0 (spec 3.3 step 7).
            m.d.comb += [done.eq(1), fault(Cause.TRANSACTION_TYPE_DISALLOWED)]
        with m.Elif(dc.tc.pdtv | (dc.fsc.mode == IosatpMode.BARE)):
            # PDTV=1 passes the checks only with pdtp Bare: first stage Bare (step 13).
            m.d.comb += [done.eq(1), identity()]
        with m.Elif(is_canonical & iotlb.lookup_hit & granted):
            m.d.comb += [
                done.eq(1), from_iotlb.eq(1),
                answer.ppn.eq(hit.ppn), answer.r.eq(hit.r), answer.w.eq(hit.w),
                answer.x.eq(hit.x), answer.pbmt.eq(hit.pbmt),
            ]
        with m.Else():
            m.d.comb += need_ptw.eq(1)

        s1_complete = Signal()
        m.d.comb += [
            self.req.ready.eq(~s1_valid | s1_complete),
            ddtw.start.payload.ddtp_ppn.eq(self.ddtp_ppn),
            ddtw.start.payload.mode.eq(self.iommu_mode),
            ddtw.start.payload.device_id.eq(s1.device_id),
            ptw.start.payload.root_ppn.eq(dc.fsc.ppn),
            ptw.start.payload.iova.eq(s1.iova),
            ptw.start.payload.access.eq(s1.access),
            ptw.start.payload.mode.eq(dc.fsc.mode),
            ddtc.fill.payload.device_id.eq(s1.device_id),
            ddtc.fill.payload.dc.eq(ddtw.result.payload.dc),
        ]
        f = iotlb.fill.payload
        r = ptw.result.payload
        m.d.comb += [
            f.key.gv.eq(0), f.key.gscid.eq(0), f.key.pscid.eq(walk_pscid),
            f.key.vpn.eq(s1.iova[12:12 + self._vpn_w]),
            f.result.ppn.eq(r.ppn), f.result.r.eq(r.r), f.result.w.eq(r.w),
            f.result.x.eq(r.x), f.result.pbmt.eq(r.pbmt), f.result.g.eq(r.g),
            f.result.size.eq(r.size),
        ]

        with m.FSM(name="lookup"):
            with m.State("LOOKUP"):
                with m.If(s1_valid):
                    with m.If(done & can_load):
                        m.d.comb += [s1_complete.eq(1), iotlb.lookup_touch.eq(from_iotlb)]
                        m.d.sync += [out_valid.eq(1), out.eq(answer)]
                    with m.If(need_ddt):
                        m.d.comb += ddtw.start.valid.eq(1)
                        with m.If(ddtw.start.ready):
                            m.d.sync += [stale.eq(0), s1_walked.eq(1)]
                            m.next = "DDT_WALK"
                    with m.If(need_ptw):
                        m.d.comb += ptw.start.valid.eq(1)
                        with m.If(ptw.start.ready):
                            m.d.sync += [stale.eq(0), s1_walked.eq(1),
                                         walk_pscid.eq(dc.ta.pscid)]
                            m.next = "PT_WALK"
            with m.State("DDT_WALK"):
                with m.If(self.ddtc_inval.valid):
                    m.d.sync += stale.eq(1)
                with m.If(ddtw.result.valid):
                    with m.If(ddtw.result.payload.fault):
                        with m.If(can_load):
                            m.d.comb += [ddtw.result.ready.eq(1), s1_complete.eq(1)]
                            m.d.sync += [
                                out_valid.eq(1), out.eq(answer),
                                out.hit.eq(0), out.fault.eq(1),
                                out.cause.eq(ddtw.result.payload.cause),
                                out.ppn.eq(0), out.r.eq(0), out.w.eq(0), out.x.eq(0),
                                out.pbmt.eq(Pbmt.PMA),
                            ]
                            m.next = "LOOKUP"
                    with m.Else():
                        # Cache the DC and replay the lookup with it.
                        m.d.comb += [ddtw.result.ready.eq(1),
                                     ddtc.fill.valid.eq(~stale & ~self.ddtc_inval.valid)]
                        m.next = "LOOKUP"
            with m.State("PT_WALK"):
                with m.If(self.iotlb_inval.valid):
                    m.d.sync += stale.eq(1)
                with m.If(ptw.result.valid & can_load):
                    m.d.comb += [
                        ptw.result.ready.eq(1), s1_complete.eq(1),
                        iotlb.fill.valid.eq(~r.fault & ~stale & ~self.iotlb_inval.valid),
                    ]
                    m.d.sync += [
                        out_valid.eq(1),
                        out.src.eq(s1.src), out.tag.eq(s1.tag), out.hit.eq(0),
                        # The walker zeroes its result at start: a fault carries no
                        # translation fields.
                        out.fault.eq(r.fault), out.cause.eq(r.cause), out.ppn.eq(r.ppn),
                        out.r.eq(r.r), out.w.eq(r.w), out.x.eq(r.x), out.pbmt.eq(r.pbmt),
                    ]
                    m.next = "LOOKUP"

        with m.If(self.req.valid & self.req.ready):
            m.d.sync += [s1_valid.eq(1), s1.eq(self.req.payload), s1_walked.eq(0)]
        with m.Elif(s1_complete):
            m.d.sync += s1_valid.eq(0)
        return m
