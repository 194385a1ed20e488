"""The page-request queue: Page Requests in, 16-byte records in memory or the IOMMU's own
PRG responses out.

RISC-V IOMMU spec "Page-Request-Queue (PQ)", reference N.6.5-N.6.7; the plan is
docs/ats-pri.md ("Page-request queue"). The translation pipeline locates the requester's
device context (steps 1-6 of "Process to translate an IOVA", reference N.10 "Page Request DC
lookup") and offers the request together with that lookup's *verdict*
(:func:`pq_verdict_layout`). The queue then applies the N.6.7 table in its order:

=================================  ==================  ==========================  ==========
Condition                          Response code       PASID in the response       Record
=================================  ==================  ==========================  ==========
``iommu_mode`` Off                 Response Failure    if the request had one      256
``iommu_mode`` Bare                Invalid Request     none                        260
``device_id`` too wide             Invalid Request     none                        260
DC lookup fails                    Response Failure    if the request had one      the cause
``EN_PRI=0`` or ``EN_ATS=0``       Invalid Request     none                        260 (DTF)
``pqen=0`` or ``pqon=0``           Response Failure    if the request had one      none
``pqmf`` (an earlier failure)      Response Failure    if the request had one      none
``pqof`` (an earlier overflow)     Success             if ``PRPR=1``               none
full now: ``pqof``                 Success             if ``PRPR=1``               none
the record store faults: ``pqmf``  Response Failure    if the request had one      none
otherwise: the record, ``pqt++``   (software answers)
=================================  ==================  ==========================  ==========

* First filter (N.6.7): a request that is not queued and is ``L=0`` or a Stop Marker
  (``L=1``, ``R=W=0``, N.6.6) gets no response. Its fault record (rows 1-5) is still written:
  the record reports the configuration error, the filter is about PCIe responses (decision
  "pq-1" of issue 17, as libiommu's ``handle_page_request`` reports before it decides
  whether to respond).
* Fault records go to :attr:`PageRequestQueue.fault` (:func:`pq_fault_layout`): TTYP 9
  (PCIe message), DID the requester, PV/PID/PRIV from the message, ``iotval`` 0x04 (the
  Page Request message code), ``iotval2`` 0. Only row 5 is suppressed by ``DC.tc.DTF=1``;
  rows 1-4 have no located device context, so no DTF applies.
* A record is stored as two little-endian doublewords (``fctl.BE=0``) at
  ``pqb.PPN * 4096 + pqt * 16``; ``pqt`` moves only after both stores are acknowledged
  (spec "In-memory queue interface"). A store answered with an error sets ``pqmf`` at once
  (the second store is not attempted) and the request is answered with Response Failure.
* ``pip`` (:attr:`PageRequestQueue.pip`): ``pie`` and a record stored, or ``pqof`` or
  ``pqmf`` set (spec "Interrupt pending status register (ipsr)").
* The PRG response (:func:`prg_response_layout`) is addressed to the requester: RID =
  ``device_id[15:0]``, DSEG = ``device_id[23:16]``; the Iommu top puts it on ``ats_msg``.

The PRG response and the fault record of one request are offered at the same time on their
own streams and the queue takes the next request only after both were taken, so back-pressure
on either never loses one. Nothing waits on memory except a store, and every store is
answered (an error included), so a bus error never hangs the queue.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.config import check_pas
from iogate.hdl.formats import PQ_RECORD, PQ_RECORD_SIZE, Cause, PrgResponse
from iogate.hdl.mem_master import MemWriteSignature

__all__ = ["PqVerdict", "page_request_layout", "pq_verdict_layout", "pq_request_layout",
           "prg_response_layout", "pq_fault_layout", "PageRequestQueueRegisters",
           "PageRequestQueue"]


class PqVerdict(enum.Enum, shape=3):
    """What the device-context lookup found for a Page Request (reference N.6.7, rows 1-4)."""
    OFF = 0          #: ``ddtp.iommu_mode`` Off
    BARE = 1         #: ``ddtp.iommu_mode`` Bare
    DID_WIDE = 2     #: ``device_id`` wider than the DDT's levels allow
    DC_FAULT = 3     #: locating the DC faulted: ``cause`` is 257, 258, 259 or 268
    DC = 4           #: a valid DC: ``en_ats``, ``en_pri``, ``prpr``, ``dtf`` are its tc bits


def page_request_layout():
    """A PCIe Page Request (or Stop Marker) as the ``page_req`` port carries it
    (docs/ats-pri.md "Ports"; fields of reference N.6.6)."""
    return data.StructLayout({
        "device_id": 24, "pv": 1, "pid": 20, "priv": 1, "exec": 1, "r": 1, "w": 1, "l": 1,
        "prg_index": 9, "page": 52,
    })


def pq_verdict_layout():
    """The device-context lookup's verdict on a Page Request.

    ``kind`` is a :class:`PqVerdict`; ``cause`` counts with ``DC_FAULT`` only; ``en_ats``,
    ``en_pri``, ``prpr`` and ``dtf`` (``DC.tc`` bits 1, 2, 6 and 4) with ``DC`` only.
    """
    return data.StructLayout({
        "kind": PqVerdict, "cause": Cause, "en_ats": 1, "en_pri": 1, "prpr": 1, "dtf": 1,
    })


def pq_request_layout():
    """What the pipeline offers the queue: the request and its verdict."""
    return data.StructLayout({"req": page_request_layout(), "verdict": pq_verdict_layout()})


def prg_response_layout():
    """A PRG Response the IOMMU sends itself (reference N.6.4, N.6.7): to ``device_id``
    (RID its bits 15:0, DSEG its bits 23:16), with PASID ``pid`` if ``pv``."""
    return data.StructLayout({
        "device_id": 24, "pv": 1, "pid": 20, "prg_index": 9, "response_code": PrgResponse,
    })


def pq_fault_layout():
    """A Page Request's fault record for the fault queue (reference N.6.7): TTYP 9 and
    ``iotval`` 0x04 are implied, ``iotval2`` is 0. ``pid``/``priv`` are 0 when ``pv`` is 0.
    DTF has been applied: every one offered is to be written."""
    return data.StructLayout({"cause": Cause, "device_id": 24, "pv": 1, "pid": 20, "priv": 1})


class PageRequestQueueRegisters(wiring.Signature):
    """The page-request queue registers, from the register file's view (as
    :class:`iogate.hdl.fq.FaultQueueRegisters`).

    Members
    -------
    ppn : ``Out(44)``
        ``pqb.PPN``.
    tail : ``Out(32)``
        ``pqt``: the index the next record goes to.
    full : ``Out(1)``
        ``pqt == pqh - 1`` (mod the queue size).
    on : ``Out(1)``
        ``pqen`` and ``pqon``.
    pqof, pqmf : ``Out(1)``
        ``pqcsr.pqof`` / ``pqcsr.pqmf`` (they answer differently, so they come apart).
    pie : ``Out(1)``
        ``pqcsr.pie``.
    advance : ``In(1)``
        Strobe: a record was stored at ``tail``; ``pqt`` moves on.
    set_pqof, set_pqmf : ``In(1)``
        Strobes: the queue was full / a record store faulted.
    busy : ``In(1)``
        A record is being stored (``pqon`` must stay 1 until it is done).
    """

    def __init__(self):
        super().__init__({
            "ppn": Out(44), "tail": Out(32), "full": Out(1), "on": Out(1),
            "pqof": Out(1), "pqmf": Out(1), "pie": Out(1),
            "advance": In(1), "set_pqof": In(1), "set_pqmf": In(1), "busy": In(1),
        })


class PageRequestQueue(wiring.Component):
    """Applies reference N.6.7 to each Page Request and stores the queued ones.

    Parameters
    ----------
    pas : int
        Physical address size (``capabilities.PAS``): the width of the write address.

    Members
    -------
    request : ``In(stream.Signature(pq_request_layout()))``
        Page Requests with their verdicts, one at a time.
    regs : ``In(PageRequestQueueRegisters())``
        The page-request queue registers.
    mem : ``Out(MemWriteSignature(pas))``
        The record stores.
    response : ``Out(stream.Signature(prg_response_layout()))``
        The IOMMU's own PRG responses.
    fault : ``Out(stream.Signature(pq_fault_layout()))``
        Fault records for the fault queue.
    pip : ``Out(1)``
        The ``ipsr.pip`` condition: ``pie`` and (a record stored, or ``pqof`` or ``pqmf``).

    Raises
    ------
    ValueError
        If ``pas`` is out of range.
    """

    def __init__(self, *, pas):
        try:
            check_pas(pas)
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        super().__init__({
            "request": In(stream.Signature(pq_request_layout())),
            "regs": In(PageRequestQueueRegisters()),
            "mem": Out(MemWriteSignature(pas)),
            "response": Out(stream.Signature(prg_response_layout())),
            "fault": Out(stream.Signature(pq_fault_layout())),
            "pip": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        regs = self.regs
        req = Signal(page_request_layout())
        verdict = Signal(pq_verdict_layout())

        m.d.comb += self.pip.eq(regs.pie & (regs.pqof | regs.pqmf | regs.advance))

        # --- The decision of rows 1-10, from the latched request and today's registers.
        # A response goes out only for an L=1 request that is not a Stop Marker.
        stop_marker = req.l & ~req.r & ~req.w
        answerable = req.l & ~stop_marker
        fault_cause = Signal(Cause, init=Cause.ALL_INBOUND_DISALLOWED)
        fault_wanted = Signal()              # a row 1-5 record, after DTF
        code = Signal(PrgResponse)
        pasid = Signal()                     # the response carries the request's PASID
        queue = Signal()                     # row 10 or 11: store the record
        overflow = Signal()                  # row 9: full now
        with m.Switch(verdict.kind):
            with m.Case(PqVerdict.OFF):
                m.d.comb += [fault_cause.eq(Cause.ALL_INBOUND_DISALLOWED), fault_wanted.eq(1),
                             code.eq(PrgResponse.RESPONSE_FAILURE), pasid.eq(req.pv)]
            with m.Case(PqVerdict.BARE, PqVerdict.DID_WIDE):
                # Bare: PRPR is taken as 0; too wide: no DC to read PRPR from.
                m.d.comb += [fault_cause.eq(Cause.TRANSACTION_TYPE_DISALLOWED),
                             fault_wanted.eq(1), code.eq(PrgResponse.INVALID_REQUEST)]
            with m.Case(PqVerdict.DC_FAULT):
                # Reported even with DTF=1: no DC was located.
                m.d.comb += [fault_cause.eq(verdict.cause), fault_wanted.eq(1),
                             code.eq(PrgResponse.RESPONSE_FAILURE), pasid.eq(req.pv)]
            with m.Default():
                with m.If(~verdict.en_pri | ~verdict.en_ats):
                    # Invalid Request is not catastrophic: a shared SR-IOV PRI stays on.
                    m.d.comb += [fault_cause.eq(Cause.TRANSACTION_TYPE_DISALLOWED),
                                 fault_wanted.eq(~verdict.dtf),
                                 code.eq(PrgResponse.INVALID_REQUEST)]
                with m.Elif(~regs.on | regs.pqmf):
                    m.d.comb += [code.eq(PrgResponse.RESPONSE_FAILURE), pasid.eq(req.pv)]
                with m.Elif(regs.pqof | regs.full):
                    m.d.comb += [code.eq(PrgResponse.SUCCESS),
                                 pasid.eq(req.pv & verdict.prpr), overflow.eq(~regs.pqof)]
                with m.Else():
                    m.d.comb += queue.eq(1)

        # --- The outputs of one request, held until taken.
        resp = self.response.payload
        fault = self.fault.payload
        latch = [
            fault.device_id.eq(req.device_id),
            fault.pv.eq(req.pv),
            fault.pid.eq(Mux(req.pv, req.pid, 0)),
            fault.priv.eq(req.pv & req.priv),
            fault.cause.eq(fault_cause),
            resp.device_id.eq(req.device_id),
            resp.prg_index.eq(req.prg_index),
            resp.response_code.eq(code),
            resp.pv.eq(pasid),
            resp.pid.eq(Mux(pasid, req.pid, 0)),
        ]

        record = Signal(PQ_RECORD)
        m.d.comb += [
            record.pid.eq(Mux(req.pv, req.pid, 0)),
            record.pv.eq(req.pv),
            # PRIV and EXEC are 0 without a PASID (reference N.6.6).
            record.priv.eq(req.pv & req.priv),
            record.exec.eq(req.pv & req.exec),
            record.did.eq(req.device_id),
            record.r.eq(req.r), record.w.eq(req.w), record.l.eq(req.l),
            record.prg_index.eq(req.prg_index), record.page.eq(req.page),
        ]
        base = Signal(self._pas)
        beat = Signal(1)
        m.d.comb += [
            self.mem.req.payload.addr.eq(base + beat * 8),
            self.mem.req.payload.strb.eq(0xFF),
            self.mem.req.payload.data.eq(Mux(beat, record.as_value()[64:],
                                             record.as_value()[:64])),
            self.mem.resp.ready.eq(1),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += [req.eq(self.request.payload.req),
                                 verdict.eq(self.request.payload.verdict)]
                    m.next = "DECIDE"
            with m.State("DECIDE"):
                m.d.sync += latch
                with m.If(queue):
                    m.d.sync += [base.eq((regs.ppn << 12) + regs.tail * PQ_RECORD_SIZE),
                                 beat.eq(0)]
                    m.next = "STORE"
                with m.Else():
                    m.d.comb += regs.set_pqof.eq(overflow)
                    m.d.sync += [self.fault.valid.eq(fault_wanted),
                                 self.response.valid.eq(answerable)]
                    m.next = "ANSWER"
            with m.State("STORE"):
                m.d.comb += [regs.busy.eq(1), self.mem.req.valid.eq(1)]
                with m.If(self.mem.req.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += regs.busy.eq(1)
                with m.If(self.mem.resp.valid):
                    with m.If(self.mem.resp.payload.err):
                        # Row 10: pqmf, and Response Failure with the request's PASID.
                        m.d.comb += regs.set_pqmf.eq(1)
                        m.d.sync += [resp.response_code.eq(PrgResponse.RESPONSE_FAILURE),
                                     resp.pv.eq(req.pv), resp.pid.eq(Mux(req.pv, req.pid, 0)),
                                     self.response.valid.eq(answerable)]
                        m.next = "ANSWER"
                    with m.Elif(beat == PQ_RECORD_SIZE // 8 - 1):
                        m.d.comb += regs.advance.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
                        m.next = "STORE"
            with m.State("ANSWER"):
                with m.If(self.fault.ready):
                    m.d.sync += self.fault.valid.eq(0)
                with m.If(self.response.ready):
                    m.d.sync += self.response.valid.eq(0)
                with m.If((~self.fault.valid | self.fault.ready)
                          & (~self.response.valid | self.response.ready)):
                    m.next = "IDLE"
        return m
