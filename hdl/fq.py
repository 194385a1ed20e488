"""The fault-queue writer: fault reports in, 32-byte fault records in memory out.

RISC-V IOMMU spec "Fault/Event-Queue (FQ)" and the registers ``fqb``, ``fqh``, ``fqt``,
``fqcsr``. The translation pipeline offers every fault it answers as a *report*: the
CAUSE, the request (``device_id``, IOVA, access, process_id) and the ``DC.tc.DTF`` of the
device context it was decided under (0 when no valid device context was located, spec
"Fault/Event-Queue (FQ)"). The writer

1. drops a report whose cause ``DTF`` suppresses (only the causes of
   :data:`iogate.hdl.formats.DTF_REPORTED_CAUSES` are reported when ``DTF=1``), and every report
   while the queue is off (``fqen=0`` or ``fqon=0``) or in error (``fqof`` or ``fqmf``:
   "the record is discarded and no more fault records are generated until software
   clears" the bit);
2. queues the rest in a small FIFO, so that a burst of faults does not stall the pipeline
   while records are stored (when the FIFO is full, the pipeline waits: the writer always
   drains it, storing or dropping, so this never deadlocks);
3. takes one record at a time: when the queue is full (``fqt == fqh - 1`` mod N) it sets
   ``fqof`` and drops the record; else it stores the record as four little-endian
   doublewords (``fctl.BE=0``) at ``fqb.PPN * 4096 + fqt * 32``. A store answered with an
   error sets ``fqmf`` and drops the record; after the fourth store ``fqt`` advances, which
   is also the "new record" event of ``ipsr.fip`` (spec "Interrupt pending status register (ipsr)").

With IOMMU-generated MSIs (``msi=True``) a second source, ``msi_fault``, reports MSI stores
that faulted (reference N.5, decision 8 of issue 16): CAUSE 273, TTYP 0, DID/PV/PID/PRIV 0,
``iotval`` the MSI's address, ``iotval2`` 0, admitted whatever any DTF says (no device
context is involved). It goes first when both offer a report in one cycle.

With ATS (``ats=True``, ``Config.ats``) the pipeline's reports carry the request's kind (TTYP
5-7 for a Translated request, 8 for an ATS Translation Request) and a third source,
``pq_fault``, reports the Page Requests the IOMMU answered itself for a configuration error
(reference N.6.7, :mod:`iogate.hdl.pq`): TTYP 9 (PCIe message), DID/PV/PID/PRIV of the request,
``iotval`` 0x04 (the Page Request message code), ``iotval2`` 0; ``DC.tc.DTF`` was applied by
the queue, so every one offered is admitted while the fault queue is on and not in error.
Priority: MSI faults, then page requests, then the pipeline's reports (the rarest first: none
can starve the pipeline's, which are one per request at most).

``fqt`` moves only after all four stores are acknowledged, so software that sees the new
``fqt`` also sees the whole record (spec "In-memory queue interface", "the consumer that observes an
update to the tail register must also observe all data produced").

Record fields (spec "Fault/Event-Queue (FQ)"): CAUSE; TTYP 1, 2 or 3 for an Untranslated
read-for-execute, read or write (every request here is Untranslated); DID; PV, and PID and PRIV only
when PV=1; ``iotval`` the whole IOVA (the page offset included); ``iotval2`` as reported (0 for a
single-stage translation).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.config import check_pas
from iogate.hdl.formats import (
    DTF_REPORTED_CAUSES,
    FAULT_RECORD,
    FQ_RECORD_SIZE,
    Cause,
    PcieMessage,
    Ttyp,
)
from iogate.hdl.mem_master import MemWriteSignature
from iogate.hdl.msi_irq import msi_fault_layout
from iogate.hdl.port import Access, AtsKind

__all__ = ["fault_report_layout", "FaultQueueRegisters", "FaultQueueWriter",
           "REPORT_FIFO_DEPTH"]

#: Reports the writer can hold while it stores a record.
REPORT_FIFO_DEPTH = 4

# The sources of a report, as the FIFO entry names them.
_SRC_PIPELINE, _SRC_MSI, _SRC_PQ = 0, 1, 2


def fault_report_layout(ats=False):
    """A fault the IOMMU answered, as the translation pipeline reports it.

    ``dtf`` is ``DC.tc.DTF`` of the device context the fault was decided under, 0 when no
    valid device context was located. ``pid`` and ``priv`` count only with ``pv``. With
    ``ats`` (``Config.ats``) ``kind`` is the request's :class:`iogate.hdl.port.AtsKind`: the
    record's TTYP is 5-7 for a Translated request, 8 for an ATS Translation Request.
    """
    return data.StructLayout({
        "cause": Cause, "device_id": 24, "iova": 64, "access": Access, "pv": 1,
        "pid": 20, "priv": 1, "dtf": 1, "iotval2": 64,
        **({"kind": AtsKind} if ats else {}),
    })


class FaultQueueRegisters(wiring.Signature):
    """The fault-queue registers, from the register file's view.

    Members
    -------
    ppn : ``Out(44)``
        ``fqb.PPN``.
    tail : ``Out(32)``
        ``fqt``: the index the next record goes to.
    full : ``Out(1)``
        ``fqt == fqh - 1`` (mod the queue size).
    on : ``Out(1)``
        ``fqen`` and ``fqon``: records may be written.
    error : ``Out(1)``
        ``fqof`` or ``fqmf``: records are dropped.
    advance : ``In(1)``
        Strobe: a record was stored at ``tail``; ``fqt`` moves on.
    set_fqof, set_fqmf : ``In(1)``
        Strobes: the queue was full / a record store faulted.
    busy : ``In(1)``
        A record is being stored (``fqon`` must stay 1 until it is done).
    """

    def __init__(self):
        super().__init__({
            "ppn": Out(44), "tail": Out(32), "full": Out(1), "on": Out(1), "error": Out(1),
            "advance": In(1), "set_fqof": In(1), "set_fqmf": In(1), "busy": In(1),
        })


class FaultQueueWriter(wiring.Component):
    """Stores fault records into the in-memory fault queue.

    Parameters
    ----------
    pas : int
        Physical address size (``capabilities.PAS``): the width of the write address.
    msi : bool
        Build the ``msi_fault`` source (``Config.igs`` MSI or BOTH).
    ats : bool
        ``Config.ats``: reports carry the request kind, and the ``pq_fault`` source is
        built.

    Members
    -------
    report : ``In(stream.Signature(fault_report_layout()))``
        Faults from the translation pipeline.
    regs : ``In(FaultQueueRegisters())``
        The fault-queue registers.
    mem : ``Out(MemWriteSignature(pas))``
        The record stores.
    msi_fault : ``In(stream.Signature(msi_fault_layout(pas)))``
        Failed MSI stores (only with ``msi``).
    pq_fault : ``In(stream.Signature(iogate.hdl.pq.pq_fault_layout()))``
        Page Requests answered with a fault record (only with ``ats``).

    Raises
    ------
    ValueError
        If ``pas`` is out of range.
    """

    def __init__(self, *, pas, msi=False, ats=False):
        try:
            check_pas(pas)
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        self._msi = bool(msi)
        self._ats = self._pq = bool(ats)
        members = {
            "report": In(stream.Signature(fault_report_layout(ats=ats))),
            "regs": In(FaultQueueRegisters()),
            "mem": Out(MemWriteSignature(pas)),
        }
        if msi:
            members["msi_fault"] = In(stream.Signature(msi_fault_layout(pas)))
        if ats:
            # Imported here: iogate.hdl.pq does not depend on the fault queue, nor this on it.
            from iogate.hdl.pq import pq_fault_layout
            members["pq_fault"] = In(stream.Signature(pq_fault_layout()))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        regs = self.regs
        layout = fault_report_layout(ats=self._ats)

        # --- Admission: DTF suppression and dropping happen before the FIFO, so that a
        # queue that is off or in error never holds the pipeline up.
        # With more than one source each entry carries its source's number (0 the pipeline,
        # 1 an MSI store: TTYP 0, 2 a Page Request: TTYP 9), in as few bits as they need.
        rep = self.report.payload
        dtf_reported = Const(0, 1)
        for cause in DTF_REPORTED_CAUSES:
            dtf_reported = dtf_reported | (rep.cause == cause)
        open_ = regs.on & ~regs.error
        # (stream, report as the pipeline's layout, admitted, source number), first served first
        sources = []
        if self._msi:
            msi_rep = Signal(layout)
            m.d.comb += [msi_rep.cause.eq(Cause.IOMMU_MSI_WRITE_ACCESS_FAULT),
                         msi_rep.iova.eq(self.msi_fault.payload.addr)]
            sources.append((self.msi_fault, msi_rep, open_, _SRC_MSI))
        if self._pq:
            pqf = self.pq_fault.payload
            pq_rep = Signal(layout)
            m.d.comb += [pq_rep.cause.eq(pqf.cause), pq_rep.device_id.eq(pqf.device_id),
                         pq_rep.pv.eq(pqf.pv), pq_rep.pid.eq(pqf.pid), pq_rep.priv.eq(pqf.priv),
                         pq_rep.iova.eq(PcieMessage.PAGE_REQUEST)]
            sources.append((self.pq_fault, pq_rep, open_, _SRC_PQ))
        sources.append((self.report, rep, (~rep.dtf | dtf_reported) & open_, _SRC_PIPELINE))
        src_bits = (max(src for *_, src in sources)).bit_length()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=layout.size + src_bits,
                                                      depth=REPORT_FIFO_DEPTH)
        taken = Const(0, 1)                  # an earlier source offers this cycle
        for stream_, report, keep, src in sources:
            with m.If(stream_.valid & ~taken):
                m.d.comb += [
                    q.w_data.eq(Cat(report.as_value(), Const(src, src_bits))),
                    q.w_en.eq(keep),
                    stream_.ready.eq(~keep | q.w_rdy),
                ]
            taken = taken | stream_.valid

        # --- One record at a time.
        head = data.View(layout, q.r_data[:layout.size])
        head_src = q.r_data[layout.size:]
        record = Signal(FAULT_RECORD)
        # The mapping is Ttyp.untranslated's, the one the model and the test bench use too.
        ttyp = Signal(Ttyp, init=Ttyp.UNTRANSLATED_READ)
        with m.Switch(head.access):
            for access in Access:
                with m.Case(access):
                    m.d.comb += ttyp.eq(Ttyp.untranslated(access))
        if self._ats:
            with m.If(head.kind == AtsKind.TRANSLATED):
                with m.Switch(head.access):
                    for access in Access:
                        with m.Case(access):
                            m.d.comb += ttyp.eq(Ttyp.translated(access))
            with m.Elif(head.kind == AtsKind.ATS_REQUEST):
                m.d.comb += ttyp.eq(Ttyp.ATS_TRANSLATION_REQUEST)
        if self._msi:
            with m.If(head_src == _SRC_MSI):
                m.d.comb += ttyp.eq(Ttyp.NONE)
        if self._pq:
            with m.If(head_src == _SRC_PQ):
                m.d.comb += ttyp.eq(Ttyp.PCIE_MESSAGE)
        base = Signal(self._pas)             # the record's address
        beat = Signal(2)                     # the doubleword being stored

        m.d.comb += [
            self.mem.req.payload.addr.eq(base + beat * 8),
            self.mem.req.payload.strb.eq(0xFF),
            self.mem.resp.ready.eq(1),
        ]
        with m.Switch(beat):
            for k in range(FQ_RECORD_SIZE // 8):
                with m.Case(k):
                    m.d.comb += self.mem.req.payload.data.eq(
                        record.as_value()[64 * k:64 * (k + 1)])

        with m.FSM():
            with m.State("IDLE"):
                with m.If(q.r_rdy):
                    m.d.comb += q.r_en.eq(1)
                    with m.If(~regs.on | regs.error):
                        pass                 # dropped: the queue turned off or failed
                    with m.Elif(regs.full):
                        m.d.comb += regs.set_fqof.eq(1)
                    with m.Else():
                        m.d.sync += [
                            record.eq(0),
                            record.cause.eq(head.cause),
                            # PID and PRIV are 0 when PV is 0 (spec "Fault/Event-Queue (FQ)").
                            record.pid.eq(Mux(head.pv, head.pid, 0)),
                            record.pv.eq(head.pv),
                            record.priv.eq(head.pv & head.priv),
                            record.ttyp.eq(ttyp),
                            record.did.eq(head.device_id),
                            record.iotval.eq(head.iova),
                            record.iotval2.eq(head.iotval2),
                            base.eq((regs.ppn << 12) + regs.tail * FQ_RECORD_SIZE),
                            beat.eq(0),
                        ]
                        m.next = "STORE"
            with m.State("STORE"):
                m.d.comb += [regs.busy.eq(1), self.mem.req.valid.eq(1)]
                with m.If(self.mem.req.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += regs.busy.eq(1)
                with m.If(self.mem.resp.valid):
                    with m.If(self.mem.resp.payload.err):
                        m.d.comb += regs.set_fqmf.eq(1)
                        m.next = "IDLE"
                    with m.Elif(beat == FQ_RECORD_SIZE // 8 - 1):
                        m.d.comb += regs.advance.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
                        m.next = "STORE"
        return m
