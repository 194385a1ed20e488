"""``Iommu``: the iogate top level.

RISC-V IOMMU spec v1.0 ("Data Structures", "In-memory queue interface", "Memory-mapped
register interface") for what this slice builds: the register file
with the debug translation interface, ``iommu_mode`` Off/Bare/1LVL/2LVL/3LVL with
base-format device contexts and a device-context cache, first-stage Sv39/Sv48 and
second-stage Sv39x4/Sv48x4 walks (Svnapot, optionally Svpbmt) with an IOTLB, the command
queue (IOTINVAL, IODIR.INVAL_DDT, IOFENCE.C), the fault queue, wired interrupts, and one
AXI4 manager for every implicit memory access. Devices reach it through ``config.ports``
translation ports (:mod:`iogate.hdl.port`).

::

    tr[0..ports-1].req ──┐
    debug (tr_req_ctl) ──┴─ round-robin ─> TranslationPipeline ─> tr[i].resp / tr_response
                                          ^  │ DDT walker  PT walker │ fault reports
                          invalidations   │  │  (reads)    (reads)   v
    mmio (AXI4-Lite) ─> RegFile ─> CommandQueue (reads, store)   FaultQueueWriter (stores)
                          │  ^          │                              │
                          │  └ cqh/cqcsr, fqt/fqcsr strobes ───────────┘
                          └─> wsi            all accesses: MemoryMaster ─> mem (AXI4)

Every mode a ``Config`` can ask for is built as asked (and only then: the small default
Config elaborates no Sv48, second-stage or multi-level directory logic), so
``capabilities``, computed from the Config, advertises exactly what the hardware does.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.arbiter import RoundRobin
from iogate.hdl.ats_msg import AtsMessageMux
from iogate.hdl.axi import AXI4LiteSignature, AXI4Signature
from iogate.hdl.cmdq import ATS_CPL, ATS_MSG, CommandQueue, ats_status_layout
from iogate.hdl.config import require_config
from iogate.hdl.fq import FaultQueueWriter
from iogate.hdl.iotlb import PageSize
from iogate.hdl.mem_master import DATA_WIDTH, ID_WIDTH, MemoryMaster
from iogate.hdl.msi_irq import MSI_IRQ_AWID, MsiIrq
from iogate.hdl.port import (
    ANSWER,
    MSI_WRITE,
    PASID,
    REQUEST,
    Access,
    AtsKind,
    TranslationPort,
    embedded,
)
from iogate.hdl.pq import PageRequestQueue, page_request_layout
from iogate.hdl.pri import PageRequestPort
from iogate.hdl.regfile import MMIO_ADDR_WIDTH, WSI_LINES, RegFile
from iogate.hdl.regs import Igs
from iogate.hdl.translate import TranslationPipeline

__all__ = ["Iommu"]


class Iommu(wiring.Component):
    """The IOMMU.

    Parameters
    ----------
    config : Config

    Members
    -------
    mmio : ``In(AXI4LiteSignature(12, config.mmio_data_width))``
        The register page (AXI4-Lite subordinate).
    mem : ``Out(AXI4Signature(config.pas, 64, 4))``
        The implicit memory accesses (AXI4 manager): reads of device contexts, page tables
        and commands (ARID 0, 1, 2), the IOFENCE.C store and fault records (AWID 0, 1)
        and, with ``Config.igs`` MSI or BOTH, the IOMMU's own MSIs (AWID 2,
        :data:`iogate.hdl.msi_irq.MSI_IRQ_AWID`).
    tr : ``Out(TranslationPort(config.tag_width, config.pd_levels > 0, config.msi_mrif))
    .array(config.ports)``
        The translation ports (``TranslationPort`` is described from the IOMMU's side:
        ``req`` in, ``resp`` out); with process contexts their requests carry a PASID, with
        MRIFs (``Config.msi_mrif``) the access's ``word``/``data`` and the responses
        ``absorbed``.
    wsi : ``Out(16)``
        Wired interrupt lines: ``ipsr.cip`` on line ``icvec.civ``, ``ipsr.fip`` on line
        ``icvec.fiv`` (spec "Interrupt pending status register (ipsr)",
        "Interrupt-cause-to-vector register (icvec)") while ``fctl.WSI`` is 1; all 0 while
        it is 0 (IGS=MSI always, IGS=BOTH after reset): the interrupts are then messages
        through ``msi_cfg_tbl`` (:mod:`iogate.hdl.msi_irq`).
    page_req : ``In(stream.Signature(iogate.hdl.pq.page_request_layout()))``
        Only with ``Config.ats``: PCIe Page Requests and Stop Markers from the device side
        (:mod:`iogate.hdl.pri`), into the page-request queue (:mod:`iogate.hdl.pq`), whose
        records are stored through the write client after the MSI generator's (AWID 2
        without MSIs, 3 with them).
    ats_msg : ``Out(stream.Signature(iogate.hdl.cmdq.ATS_MSG))``
        Only with ``Config.ats``: Invalidate Requests (ATS.INVAL) and PRG Responses (ATS.PRGR,
        and those the page-request queue sends itself) to the device side
        (:mod:`iogate.hdl.ats_msg`).
    ats_cpl : ``In(stream.Signature(iogate.hdl.cmdq.ATS_CPL))``
        Only with ``Config.ats``: Invalidation Completions from the device side.
    ats_status : ``Out(iogate.hdl.cmdq.ats_status_layout(config.ats_inval_tags))``
        Only with ``Config.ats``: the ATS.INVAL tracker, for test benches.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`.
    """

    def __init__(self, config):
        require_config(self, config)
        self._config = config
        super().__init__({
            "mmio": In(AXI4LiteSignature(MMIO_ADDR_WIDTH, config.mmio_data_width)),
            "mem": Out(AXI4Signature(config.pas, DATA_WIDTH, ID_WIDTH)),
            # TranslationPort is written from the IOMMU's side (requests In), so the
            # IOMMU holds it un-flipped.
            "tr": Out(TranslationPort(config.tag_width, config.pd_levels > 0, config.msi_mrif,
                                      config.ats)).array(config.ports),
            "wsi": Out(WSI_LINES),
            **({"page_req": In(stream.Signature(page_request_layout())),
                "ats_msg": Out(stream.Signature(ATS_MSG)),
                "ats_cpl": In(stream.Signature(ATS_CPL)),
                "ats_status": Out(ats_status_layout(config.ats_inval_tags))}
               if config.ats else {}),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        n = cfg.ports
        debug = n                        # the debug interface's source number

        m.submodules.regfile = regfile = RegFile(cfg)
        m.submodules.pipeline = pipe = TranslationPipeline(cfg)
        m.submodules.cmdq = cmdq = CommandQueue(cfg)
        msi_irq = cfg.igs != Igs.WSI      # IOMMU-generated MSIs (reference N.5)
        m.submodules.fq = fq = FaultQueueWriter(pas=cfg.pas, msi=msi_irq, ats=cfg.ats)
        # Read clients: the DDT walker, the page-table walker, the command fetch and, with
        # process contexts, the process-directory walker.
        # With MSI translation the MSI page-table walker (and the MRIF update) reads through
        # the next client; with ATS the page-request queue's records are stored through the
        # write client after the MSI generator's; with MRIFs the MRIF update writes through
        # the last write client.
        reads = (4 if cfg.pd_levels else 3) + cfg.msi_flat
        pq_client = 3 if msi_irq else 2
        writes = pq_client + cfg.ats + cfg.msi_mrif
        m.submodules.mem_master = memm = MemoryMaster(cfg.pas, clients=reads,
                                                      write_clients=writes)

        wiring.connect(m, regfile.mmio, wiring.flipped(self.mmio))
        wiring.connect(m, memm.bus, wiring.flipped(self.mem))
        wiring.connect(m, pipe.ddt_mem, memm.clients[0])
        wiring.connect(m, pipe.ptw_mem, memm.clients[1])
        wiring.connect(m, cmdq.fetch, memm.clients[2])
        wiring.connect(m, cmdq.store, memm.write_clients[0])
        wiring.connect(m, fq.mem, memm.write_clients[1])
        wiring.connect(m, regfile.cq, cmdq.regs)
        wiring.connect(m, regfile.fq, fq.regs)
        wiring.connect(m, cmdq.ddtc_inval, pipe.ddtc_inval)
        wiring.connect(m, cmdq.iotlb_inval, pipe.iotlb_inval)
        wiring.connect(m, pipe.fault, fq.report)
        if msi_irq:
            # The MSI generator: a write client of its own, and CAUSE 273 to the fault queue.
            m.submodules.msi_irq = irq = MsiIrq(pas=cfg.pas, pm=cfg.has_hpm, pq=cfg.ats)
            wiring.connect(m, regfile.msi, irq.regs)
            wiring.connect(m, irq.mem, memm.write_clients[MSI_IRQ_AWID])
            wiring.connect(m, irq.fault, fq.msi_fault)
        if cfg.ats:
            self._ats(m, regfile, pipe, cmdq, fq, memm.write_clients[pq_client])
        if cfg.has_hpm:
            # The performance monitor's events (decision 10 of issue 17 (HPM)).
            m.d.comb += regfile.hpm_events.eq(pipe.hpm)
        if cfg.pd_levels:
            wiring.connect(m, pipe.pdt_mem, memm.clients[3])
            wiring.connect(m, cmdq.pdtc_inval, pipe.pdtc_inval)
        if cfg.msi_flat:
            wiring.connect(m, pipe.msi_mem, memm.clients[reads - 1])
        if cfg.msi_mrif:
            wiring.connect(m, pipe.mrif_mem, memm.write_clients[writes - 1])
        m.d.comb += [pipe.iommu_mode.eq(regfile.iommu_mode),
                     pipe.ddtp_ppn.eq(regfile.ddtp_ppn),
                     cmdq.iommu_mode.eq(regfile.iommu_mode),
                     self.wsi.eq(regfile.wsi)]
        if cfg.igs == Igs.BOTH:
            # IOFENCE.C with WSI=1 is legal only while fctl.WSI is 1 (reference N.5).
            m.d.comb += cmdq.fctl_wsi.eq(~regfile.msi.msi)

        # --- Requests: round-robin over the ports and the debug interface, so that no
        # port can starve another (or the debugger). Without the debug interface
        # (``Config.dbg`` False) it is no source at all: nothing to arbitrate or route.
        sources = n + 1 if cfg.dbg else n
        valids = [self.tr[i].req.valid for i in range(n)]
        if cfg.dbg:
            valids.append(regfile.dbg_req.valid)
        m.submodules.port_arbiter = arbiter = RoundRobin(sources, last=sources - 1)
        m.d.comb += arbiter.requests.eq(Cat(valids))
        grant, any_req = arbiter.grant, arbiter.valid

        p = pipe.req.payload
        m.d.comb += [pipe.req.valid.eq(any_req), p.src.eq(grant)]
        for i in range(n):
            q = self.tr[i].req.payload
            with m.If(grant == i):
                m.d.comb += [p.tag.eq(q.tag),
                             embedded(p, REQUEST).eq(embedded(q, REQUEST)),
                             self.tr[i].req.ready.eq(pipe.req.ready)]
                if cfg.pd_levels:
                    m.d.comb += embedded(p, PASID).eq(embedded(q, PASID))
                else:
                    m.d.comb += [p.pv.eq(0), p.pid.eq(0), p.priv.eq(0)]
                if cfg.msi_mrif:
                    # An MRIF-mode MSI page needs the access's size and data (reference N.4.4).
                    m.d.comb += embedded(p, MSI_WRITE).eq(embedded(q, MSI_WRITE))
                if cfg.ats:
                    # A Translation Request walks as a read; Execute Requested comes with a
                    # PASID only (reference N.6.2).
                    is_tr = q.kind == AtsKind.ATS_REQUEST
                    pv = q.pv if cfg.pd_levels else 0
                    m.d.comb += [p.kind.eq(q.kind), p.nw.eq(q.nw),
                                 p.access.eq(Mux(is_tr, Access.READ, q.access)),
                                 p.exec_req.eq(is_tr & (q.access == Access.EXECUTE) & pv)]
        if cfg.dbg:
            with m.If(grant == debug):
                q = regfile.dbg_req.payload
                m.d.comb += [p.tag.eq(0), embedded(p, REQUEST).eq(embedded(q, REQUEST)),
                             p.pv.eq(q.pv), p.pid.eq(q.pid), p.priv.eq(q.priv),
                             regfile.dbg_req.ready.eq(pipe.req.ready)]
        m.d.comb += arbiter.advance.eq(pipe.req.valid & pipe.req.ready)

        # --- Responses go back to their source.
        r = pipe.resp.payload
        for i in range(n):
            resp = self.tr[i].resp
            m.d.comb += [
                resp.valid.eq(pipe.resp.valid & (r.src == i)),
                resp.payload.tag.eq(r.tag),
                embedded(resp.payload, ANSWER).eq(embedded(r, ANSWER)),
                resp.payload.hit.eq(r.hit),
            ]
            if cfg.msi_mrif:
                m.d.comb += resp.payload.absorbed.eq(r.absorbed)
            if cfg.ats:
                m.d.comb += [resp.payload.size_log2.eq(Mux(r.completion, _size_log2(m, r.size),
                                                           0)),
                             resp.payload.g.eq(r.g), resp.payload.priv.eq(r.priv)]
            with m.If(r.src == i):
                m.d.comb += pipe.resp.ready.eq(resp.ready)
        if cfg.dbg:
            m.d.comb += [
                regfile.dbg_resp.valid.eq(pipe.resp.valid & (r.src == debug)),
                regfile.dbg_resp.payload.fault.eq(r.fault),
                regfile.dbg_resp.payload.ppn.eq(r.ppn),
                regfile.dbg_resp.payload.pbmt.eq(r.pbmt),
            ]
            with m.If(r.src == debug):
                m.d.comb += pipe.resp.ready.eq(regfile.dbg_resp.ready)
        return m

    def _ats(self, m, regfile, pipe, cmdq, fq, pq_mem):
        """ATS and PRI (reference N.6, docs/ats-pri.md): Page Requests through their port,
        the pipeline's device-context lookup and the page-request queue; the ATS messages of
        the command queue and the queue's own PRG responses onto ``ats_msg``; Invalidation
        Completions into the command queue."""
        m.submodules.pri = pri = PageRequestPort()
        m.submodules.pq = pq = PageRequestQueue(pas=self._config.pas)
        m.submodules.ats_msg = mux = AtsMessageMux()
        wiring.connect(m, pri.page_req, wiring.flipped(self.page_req))
        wiring.connect(m, pri.query, pipe.pq_query)
        wiring.connect(m, pipe.pq_verdict, pri.verdict)
        wiring.connect(m, pri.request, pq.request)
        wiring.connect(m, regfile.pq, pq.regs)
        wiring.connect(m, pq.mem, pq_mem)
        wiring.connect(m, pq.fault, fq.pq_fault)
        wiring.connect(m, cmdq.ats_msg, mux.cmd)
        wiring.connect(m, pq.response, mux.prg)
        wiring.connect(m, mux.out, wiring.flipped(self.ats_msg))
        wiring.connect(m, wiring.flipped(self.ats_cpl), cmdq.ats_cpl)
        m.d.comb += self.ats_status.eq(cmdq.ats_status)


#: log2 of the bytes of each IOTLB page size (Privileged spec levels, Svnapot's 64 KiB).
_LOG2 = {PageSize.SIZE_4K: 12, PageSize.SIZE_64K: 16, PageSize.SIZE_2M: 21,
         PageSize.SIZE_1G: 30, PageSize.SIZE_512G: 39, PageSize.SIZE_256T: 48}


def _size_log2(m, size):
    """A :class:`PageSize` as the port's ``size_log2``."""
    out = Signal(6)
    with m.Switch(size):
        for enc, log2 in _LOG2.items():
            with m.Case(enc):
                m.d.comb += out.eq(log2)
    return out
