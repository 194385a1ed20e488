"""The page-request queue: what the IOMMU does with a PCIe Page Request (RISC-V IOMMU spec
"Page-Request-Queue (PQ)"; reference N.6.5-N.6.7; ``pqb``, ``pqh``, ``pqt``, ``pqcsr``).

:meth:`PageRequestQueue.page_request` locates the requester's device context through the
caller's lookup (steps 1-6 of "Process to translate an IOVA", reference N.10 "Page Request
DC lookup") and applies the N.6.7 table in its order:

1. ``iommu_mode`` Off (the lookup raises 256): Response Failure with the request's PASID,
   record 256.
2. ``iommu_mode`` Bare (the lookup returns None): Invalid Request without a PASID (PRPR is
   taken as 0), record 260.
3. ``device_id`` too wide (the lookup raises 260): Invalid Request, no PASID, record 260.
4. The DC lookup fails (257, 258, 259, 268): Response Failure with the PASID, record of that
   cause (no DC was located, so no DTF applies).
5. ``DC.tc.EN_PRI=0`` or ``EN_ATS=0``: Invalid Request, no PASID, record 260 unless
   ``DC.tc.DTF=1``.
6. ``pqen=0`` or ``pqon=0``: Response Failure with the PASID, no record.
7. ``pqmf`` set: Response Failure with the PASID.
8. ``pqof`` set: Success, with the PASID only if ``DC.tc.PRPR=1``.
9. Full now (``pqt == pqh - 1``): ``pqof`` set, Success as in 8.
10. The record store faults: ``pqmf`` set, Response Failure with the PASID.
11. Otherwise the 16-byte record is stored little-endian (``fctl.BE=0``) at
    ``pqb.PPN * 4096 + pqt * 16`` and ``pqt`` advances; software answers.

A request that is not queued and is ``L=0`` or a Stop Marker (``L=1``, ``R=W=0``) gets no
response (N.6.7's first filter); its fault record of rows 1-5 is still written (decision
"pq-1" of issue 17, as the RTL, :mod:`iogate.hdl.pq`). Fault records are TTYP 9 (PCIe
message), DID the requester, PV/PID/PRIV from the message, ``iotval`` 0x04 (the Page Request
message code), ``iotval2`` 0. ``ipsr.pip`` is set when ``pqcsr.pie`` is 1 and a record was
stored or ``pqof``/``pqmf`` was set (spec "Interrupt pending status register (ipsr)").
"""

import dataclasses

from iogate.hdl import bits
from iogate.hdl.formats import PQ_RECORD, PQ_RECORD_SIZE, TC, Cause, PcieMessage, PrgResponse, Ttyp
from iogate.hdl.regs import IPSR, PQCSR

from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.walk import TranslationFault

__all__ = ["PageRequestOutcome", "PageRequestQueue"]

_PQEN = bits.mask(PQCSR, "pqen")
_PQON = bits.mask(PQCSR, "pqon")
_PQOF = bits.mask(PQCSR, "pqof")
_PQMF = bits.mask(PQCSR, "pqmf")
_PIE = bits.mask(PQCSR, "pie")
_PIP = bits.mask(IPSR, "pip")


@dataclasses.dataclass(frozen=True)
class PageRequestOutcome:
    """What the IOMMU did with one Page Request.

    Attributes
    ----------
    queued : bool
        The record was stored and ``pqt`` advanced (software answers with ATS.PRGR).
    response : PrgResponse or None
        The PRG response the IOMMU sent itself; None if it sent none (queued, or dropped
        by the first filter of N.6.7).
    pasid : int or None
        The PASID the response carries (None: no PASID, or no response).
    cause : Cause or None
        The fault record written (TTYP 9), or None.
    message : dict or None
        The response as an ``ats_msg`` message, filled by
        :meth:`iogate.cosim.model.IommuModel.page_request`
        (:func:`iogate.cosim.model.ats.prgr_message`); None here.
    """

    queued: bool
    response: PrgResponse | None = None
    pasid: int | None = None
    cause: Cause | None = None
    message: dict | None = dataclasses.field(default=None, compare=False)

    @property
    def dropped(self):
        """Neither queued nor answered (N.6.7's first filter)."""
        return not self.queued and self.response is None


class PageRequestQueue:
    """The page-request queue over a register file with ``pqb``, ``pqh``, ``pqt``,
    ``pqcsr`` and ``ipsr`` attributes (and its ``queue_entries``/``queue_base``).

    Parameters
    ----------
    regs : RegisterFile
    store : callable
        ``store(address, data)``: writes system memory, raising :class:`AccessFault`.
    report_fault : callable
        ``report_fault(cause, ttyp, did, iotval, iotval2, pv, pid, priv)``, as
        :meth:`iogate.cosim.model.faultq.FaultQueue.report`; called after the DTF rule.

    Attributes
    ----------
    written, answered, dropped : int
        Records stored, requests the IOMMU answered itself, requests dropped silently.
    """

    def __init__(self, regs, store, report_fault):
        self._regs = regs
        self._store = store
        self._report_fault = report_fault
        self.written = self.answered = self.dropped = 0

    def page_request(self, lookup, device_id, page, *, pasid=None, priv=False, exec=False,
                     r=False, w=False, last=False, prg_index=0):
        """Take one Page Request (or Stop Marker: ``last`` with neither ``r`` nor ``w``).

        Parameters
        ----------
        lookup : callable
            ``lookup(device_id)``: the device context (a
            :class:`~iogate.cosim.model.ddt.DeviceContext`), None in Bare mode, or raises
            :class:`~iogate.cosim.model.walk.TranslationFault` with 256 (Off), 260
            (``device_id`` too wide), 257, 258, 259 or 268: the model's
            ``IommuModel._device_context``.
        device_id : int
        page : int
            Page Address[63:12] (the page number).
        pasid : int or None
            The message's PASID, if it had one; ``priv`` and ``exec`` count only with it.
        r, w : bool
            Read / write access requested.
        last : bool
            L: the last request of its Page Request Group.
        prg_index : int
            The Page Request Group index (9 bits).

        Returns
        -------
        PageRequestOutcome
        """
        pv = pasid is not None
        pid = pasid if pv else 0
        priv, exec = pv and bool(priv), pv and bool(exec)
        answerable = bool(last) and bool(r or w)        # L=1 and not a Stop Marker

        def answer(code, with_pasid, cause=None):
            if not answerable:
                self.dropped += 1
                return PageRequestOutcome(False, cause=cause)
            self.answered += 1
            return PageRequestOutcome(False, code, pid if with_pasid and pv else None, cause)

        def fault(cause):
            self._report_fault(cause, Ttyp.PCIE_MESSAGE, device_id, PcieMessage.PAGE_REQUEST,
                               0, int(pv), pid, int(priv))
            return Cause(cause)

        try:
            dc = lookup(device_id)
        except TranslationFault as f:
            if f.cause == Cause.ALL_INBOUND_DISALLOWED:
                return answer(PrgResponse.RESPONSE_FAILURE, True, fault(f.cause))
            if f.cause == Cause.TRANSACTION_TYPE_DISALLOWED:       # device_id too wide
                return answer(PrgResponse.INVALID_REQUEST, False, fault(f.cause))
            return answer(PrgResponse.RESPONSE_FAILURE, True, fault(f.cause))
        if dc is None:                                  # Bare: PRPR taken as 0
            return answer(PrgResponse.INVALID_REQUEST, False,
                          fault(Cause.TRANSACTION_TYPE_DISALLOWED))
        tc = bits.unpack(TC, dc.words[0])
        if not (tc["en_pri"] and tc["en_ats"]):
            # Invalid Request is not catastrophic: a PRI shared by SR-IOV functions stays on.
            cause = None if tc["dtf"] else fault(Cause.TRANSACTION_TYPE_DISALLOWED)
            return answer(PrgResponse.INVALID_REQUEST, False, cause)

        regs = self._regs
        if not regs.pqcsr & _PQEN or not regs.pqcsr & _PQON or regs.pqcsr & _PQMF:
            return answer(PrgResponse.RESPONSE_FAILURE, True)
        if regs.pqcsr & _PQOF:
            return answer(PrgResponse.SUCCESS, tc["prpr"])
        n = regs.queue_entries(regs.pqb)
        if regs.pqt == (regs.pqh - 1) % n:
            self._set(_PQOF)
            return answer(PrgResponse.SUCCESS, tc["prpr"])
        record = bits.pack(PQ_RECORD, pid=pid, pv=int(pv), priv=int(priv), exec=int(exec),
                           did=device_id, r=int(bool(r)), w=int(bool(w)), l=int(bool(last)),
                           prg_index=prg_index, page=page)
        address = regs.queue_base(regs.pqb) + regs.pqt * PQ_RECORD_SIZE
        try:
            self._store(address, record.to_bytes(PQ_RECORD_SIZE, "little"))
        except AccessFault:
            self._set(_PQMF)
            return answer(PrgResponse.RESPONSE_FAILURE, True)
        regs.pqt = (regs.pqt + 1) % n
        self.written += 1
        if regs.pqcsr & _PIE:
            regs.ipsr |= _PIP
        return PageRequestOutcome(True)

    def _set(self, error):
        regs = self._regs
        regs.pqcsr |= error
        if regs.pqcsr & _PIE:
            regs.ipsr |= _PIP
