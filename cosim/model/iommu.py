"""``IommuModel``: the architectural model of one iogate (the oracle of every test).

It follows RISC-V IOMMU spec "Process to translate an IOVA" step by step for
Untranslated requests, with or without a process_id (reference N.0):

1. ``ddtp.iommu_mode`` Off: cause 256.
2. Bare: the IOVA is the physical address.
3. A ``device_id`` wider than 1LVL/2LVL allow: cause 260.
4. Locate the device context (:mod:`iogate.cosim.model.ddt`): 257, 258, 259.
5. Steps 7b-16 (:meth:`IommuModel._first_stage`): a process_id with ``PDTV=0``, or wider
   than ``pdtp.MODE`` allows: 260; ``PDTV=0``: first stage from ``DC.fsc``/``DC.ta``;
   ``PDTV=1``: no process_id and ``DPE=0``, or pdtp Bare, first stage Bare; else the
   process context (``DPE=1``: process_id 0, User) located by GET_PC
   (:mod:`iogate.cosim.model.pdt`: 20/21/23, 265, 266, 267), a supervisor request with
   ``ENS=0``: 260, and ``PC.fsc``/``PC.ta.PSCID``.
6. First stage (Sv39/Sv48/Sv57, with the privilege/SUM rule), whose table reads go
   through the second stage (:mod:`iogate.cosim.model.walk`), then second stage
   (Sv39x4/Sv48x4/Sv57x4): 1, 5, 7, 12, 13, 15, 20, 21, 23.
7. With ``capabilities.MSI_FLAT`` the DCs are extended (64 bytes, split 6/9/9) and, between
   the two stages (step 18), a GPA that matches the DC's MSI mask/pattern is translated by
   the MSI page table instead of the second stage (:mod:`iogate.cosim.model.msi`: 261,
   262, 263, 1; MRIF pages: 260, 264, or an *absorbed* answer after the model has itself
   set the MRIF's pending bit and written the notice MSI in :attr:`memory`). First-stage
   table reads and PDT reads are not MSI-translated: step 18 applies to the request's GPA.

A fault is written to the fault queue unless ``DC.tc.DTF`` suppresses it (spec "Fault/Event-Queue
(FQ)").

With ``Config.ats`` (reference N.6; docs/ats-pri.md): :meth:`IommuModel.translate` also takes
Translated requests and ATS Translation Requests (``kind=``; the completion is
:mod:`iogate.cosim.model.ats`'s), :meth:`IommuModel.page_request` takes Page Requests
(:mod:`iogate.cosim.model.pageq`), and :attr:`IommuModel.ats_messages` is the ``ats_msg``
stream (ATS commands' messages and the IOMMU's own PRG responses), whose Invalidation
Completions and timeouts come back through :meth:`IommuModel.ats_completion` and
:meth:`IommuModel.ats_timeout`.

The model also keeps what the caches may hold (:mod:`iogate.cosim.model.caches`), so that
:meth:`IommuModel.allowed` can list every answer the spec allows while an invalidation is
not yet fenced.
"""

import dataclasses

from iogate.hdl import bits
from iogate.hdl.config import Config
from iogate.hdl.formats import DTF_REPORTED_CAUSES, TC, Cause, MsiPteMode, Pbmt, PdtpMode
from iogate.hdl.port import Access
from iogate.hdl.regs import (
    CAPABILITIES,
    DDTP,
    FCTL,
    TR_REQ_CTL,
    TR_RESPONSE,
    HpmEvent,
    IommuMode,
)

from iogate.cosim.model import ats, ddt, msi, pdt
from iogate.cosim.model.caches import DcCache, Iotlb, PcCache, PdteCache, TlbEntry
from iogate.cosim.model.cmdq import CommandQueue
from iogate.cosim.model.faultq import FaultQueue
from iogate.cosim.model.hpm import Identity as HpmIdentity
from iogate.cosim.model.interrupts import MsiInterrupts
from iogate.cosim.model.memory import AccessFault, Memory
from iogate.cosim.model.pageq import PageRequestOutcome, PageRequestQueue
from iogate.cosim.model.pdt import FirstStage
from iogate.cosim.model.registers import RegisterFile
from iogate.cosim.model.result import Result
from iogate.cosim.model.walk import (
    ACCESS_FAULT,
    GUEST_PAGE_FAULT,
    PAGE_FAULT,
    TranslationFault,
    Walker,
    privilege_allows,
)

__all__ = ["IommuModel"]

_ACCESS_NAMES = {"read": Access.READ, "write": Access.WRITE, "execute": Access.EXECUTE}
#: The HPM event each request kind counts (spec "Performance-monitoring event selectors").
_KIND_EVENTS = {ats.UNTRANSLATED: HpmEvent.UNTRANSLATED_REQ,
                ats.TRANSLATED: HpmEvent.TRANSLATED_REQ,
                ats.ATS_REQUEST: HpmEvent.ATS_TRANSLATION_REQ}
_PBMT = tuple(Pbmt)
_ALL = (True, True, True)
#: Steps [12]/[13]: no process context, a User request with the first stage Bare.
_BARE_FIRST_STAGE = FirstStage(0, 0, None, False, False)
_PPN_MASK = (1 << 44) - 1
assert bits.field_range(DDTP, "ppn") == (10, 44)


def _access(access):
    """The public methods' ``access`` as an :class:`~iogate.hdl.port.Access`, converted once
    here: everything behind them takes the enum only."""
    if isinstance(access, Access):
        return access
    if isinstance(access, str):
        try:
            return _ACCESS_NAMES[access]
        except KeyError:
            pass
    raise ValueError(f"access must be 'read', 'write', 'execute' or an iogate.hdl.port.Access, "
                     f"not {access!r}")


class IommuModel:
    """The architectural model of an iogate.

    Parameters
    ----------
    config : iogate.hdl.Config
        What is implemented; ``capabilities`` is ``config.capabilities``. A device context
        asking for a mode the Config lacks is misconfigured (cause 259).
    memory : iogate.cosim.model.memory.Memory
        System memory: the DDT, page tables and queues live here, and
        :meth:`~iogate.cosim.model.memory.Memory.inject_fault` ranges make the accesses fault.
    cache : bool
        When True, :meth:`translate` answers from the model's own device-context cache,
        IOTLB and MSI PTE cache as a real IOMMU would (unbounded, never evicting, so a
        missing invalidation shows up as a stale answer). When False (default) every
        translation walks the current tables. Either way :meth:`allowed` lists every
        answer the spec allows.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`iogate.hdl.Config` or ``memory`` not a
        :class:`iogate.cosim.model.memory.Memory`.
    """

    def __init__(self, config: Config, memory: Memory, *, cache: bool = False) -> None:
        if not isinstance(config, Config):
            raise TypeError(f"config must be an iogate.hdl.Config, not {config!r}")
        if not isinstance(memory, Memory):
            raise TypeError(f"memory must be a iogate.cosim.model.memory.Memory, not {memory!r}")
        self.config = config
        self.memory = memory
        self.cache = bool(cache)
        self._pa_limit = 1 << config.pas
        self.caps = bits.unpack(CAPABILITIES, config.capabilities)
        self.regs = _regs = RegisterFile(config, self._debug_go)
        self.dc_cache = DcCache()
        self.pc_cache = PcCache()
        self.pdte_cache = PdteCache()
        self.iotlb = Iotlb()
        #: MSI PTEs a cache may hold (invalidated through :attr:`iotlb`, reference N.4.5).
        self.msi_pte_cache = self.iotlb.msi_ptes
        self._extended = config.dc_extended
        self._walker = Walker(self._load64, config.svpbmt)
        self.fault_queue = FaultQueue(_regs, self._store)
        #: IOMMU-generated MSIs (reference N.5): the messages sent, for the test bench.
        self.interrupts = MsiInterrupts(_regs, self._store, self.fault_queue)
        #: The ``ats_msg`` stream (docs/ats-pri.md "Ports"), in the model's order: the
        #: messages of ATS.INVAL/ATS.PRGR commands (the command queue appends here) and the
        #: PRG responses :meth:`page_request` sent (:func:`iogate.cosim.model.ats.prgr_message`).
        self.ats_messages: list[dict[str, int]] = []
        self.command_queue = CommandQueue(_regs, self._load, self._store, self.dc_cache,
                                          self.iotlb, self.pc_cache, self.pdte_cache,
                                          sent=self.ats_messages)
        #: The page-request queue (reference N.6.5-N.6.7), with Config.ats.
        self.page_requests = PageRequestQueue(_regs, self._store, self.fault_queue.report)
        self._dc_memo: dict = {}      # DC words -> DeviceContext (one object per value)
        self._check_memo: dict = {}   # (DC words, fctl) -> misconfiguration or None

    # -- memory, with capabilities.PAS as the end of the physical address space -----------

    def _load64(self, address):
        if address + 8 > self._pa_limit:
            raise AccessFault(address, 8)
        return self.memory.read64(address)

    def _load(self, address, length):
        if address + length > self._pa_limit:
            raise AccessFault(address, length)
        return self.memory.read(address, length)

    def _store(self, address, data):
        if address + len(data) > self._pa_limit:
            raise AccessFault(address, len(data))
        self.memory.write(address, data)

    def _probe_store(self, address, data):
        """:meth:`_store`'s faults without the store (for :meth:`allowed`)."""
        if address + len(data) > self._pa_limit or self.memory.is_faulty(address, len(data)):
            raise AccessFault(address, len(data))

    # -- MMIO --------------------------------------------------------------------------------

    def mmio_read(self, offset: int, size: int) -> int:
        """Read the ``size``-byte (4 or 8) register at ``offset`` (spec "Memory-mapped register
        interface")."""
        return self.regs.read(offset, size)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """Write the ``size``-byte (4 or 8) register at ``offset`` (spec "Memory-mapped register
        interface").

        Commands are not run here: call :meth:`process_commands` (the
        :class:`~iogate.cosim.model.bus.ModelBus` does so after writes to ``cqt``/``cqcsr``).
        """
        self.regs.write(offset, size, value)

    def process_commands(self) -> int:
        """Run the command queue until it is empty, off or stopped; returns commands run."""
        return self.command_queue.process()

    # -- ATS and PRI, device side (reference N.6; docs/ats-pri.md "Ports") -----------------

    def page_request(self, device_id: int, *, pv: bool, pid: int, priv: bool, exec: bool,
                     r: bool, w: bool, l: bool, prg_index: int,  # noqa: E741 (PCIe's L)
                     page: int) -> PageRequestOutcome:
        """Take one Page Request (or Stop Marker: ``l`` with neither ``r`` nor ``w``), the
        port's ``page_req`` (reference N.6.7).

        The requester's device context is located by steps 1-6 of "Process to translate an
        IOVA" (reference N.10 "Page Request DC lookup"; from the model's DC cache when
        ``cache``), then N.6.7's table runs in its order
        (:class:`~iogate.cosim.model.pageq.PageRequestQueue`): its fault records (TTYP 9,
        ``iotval`` 0x04) go to the fault queue, a record to the page-request queue, and a
        PRG response the IOMMU sends itself is appended to :attr:`ats_messages`
        (:func:`iogate.cosim.model.ats.prgr_message`).

        Parameters
        ----------
        device_id : int
            24-bit requester ``device_id``.
        pv, pid : bool, int
            The message carries the 20-bit PASID ``pid``; ``priv`` (Privilege Mode
            Requested) and ``exec`` (Execute Requested) count only with it.
        r, w, l : bool
            Read / write access requested; L, the last request of its group.
        prg_index : int
            9-bit Page Request Group index.
        page : int
            Page Address[63:12] (52 bits).

        Returns
        -------
        PageRequestOutcome
            ``queued`` (a record was stored), ``response``/``pasid`` of the PRG response
            sent, and ``message``, that response as an ``ats_msg`` message (None when the
            IOMMU sent none).

        Raises
        ------
        ValueError
            Without ``Config.ats``, or if an argument is out of range (the message names
            it).
        """
        if not self.config.ats:
            raise ValueError("page_request needs Config.ats (capabilities.ATS)")
        _check_fields(device_id=(device_id, 24), pid=(pid, 20), prg_index=(prg_index, 9),
                      page=(page, 52))
        _check_flags(pv=pv, priv=priv, exec=exec, r=r, w=w, l=l)
        outcome = self.page_requests.page_request(
            self._device_context, device_id, page, pasid=pid if pv else None, priv=priv,
            exec=exec, r=r, w=w, last=l, prg_index=prg_index)
        if outcome.response is None:
            return outcome
        message = ats.prgr_message(device_id, (outcome.response, prg_index), outcome.pasid)
        self.ats_messages.append(message)
        return dataclasses.replace(outcome, message=message)

    def ats_completion(self, rid: int, dseg: int, itag_vector: int, cc: int = 1) -> bool:
        """An Invalidation Completion on the port's ``ats_cpl`` (reference N.6.4): onto
        :meth:`iogate.cosim.model.cmdq.CommandQueue.ats_completion`, which matches it to
        the outstanding ATS.INVALs and runs the queue. Returns whether it was accepted.

        Raises
        ------
        ValueError
            Without ``Config.ats``, or if an argument is out of range.
        """
        if not self.config.ats:
            raise ValueError("ats_completion needs Config.ats (capabilities.ATS)")
        _check_fields(rid=(rid, 16), dseg=(dseg, 8), itag_vector=(itag_vector, 32),
                      cc=(cc, 3))
        return self.command_queue.ats_completion(rid, dseg, itag_vector, cc)

    def ats_timeout(self, itag_vector: int) -> None:
        """The implementation timed out the ATS.INVALs of the ITAGs in ``itag_vector``
        (:meth:`iogate.cosim.model.cmdq.CommandQueue.ats_timeout`).

        Raises
        ------
        ValueError
            Without ``Config.ats``, if ``itag_vector`` is out of range or names an ITAG
            that is not outstanding.
        """
        if not self.config.ats:
            raise ValueError("ats_timeout needs Config.ats (capabilities.ATS)")
        _check_fields(itag_vector=(itag_vector, 32))
        self.command_queue.ats_timeout(itag_vector)

    def mmio_read_care(self, offset: int, size: int) -> tuple[int, int]:
        """``(value, care)`` of a register read: ``care`` has the bits the model predicts
        exactly (the HPM's unknown counts aside: :mod:`iogate.cosim.model.hpm`)."""
        return self.regs.read_care(offset, size)

    def adopt(self, offset: int, size: int, value: int) -> None:
        """Take a target's ``value`` of a read for the bits :meth:`mmio_read_care` does not
        know (:meth:`iogate.cosim.model.registers.RegisterFile.adopt`)."""
        self.regs.adopt(offset, size, value)

    @property
    def wsi_lines(self) -> int:
        """Wired interrupt lines asserted now: bit ``icvec.civ``/``fiv``/``pmiv``/``piv`` for
        ``cip``/``fip``/``pmip``/``pip``.

        With ``fctl.WSI=1`` each pending bit of ``ipsr`` drives the wire its ``icvec``
        field selects (spec "Interrupt pending status register (ipsr)",
        "Interrupt-cause-to-vector register (icvec)").
        """
        ipsr, icvec = self.regs.ipsr, self.regs.icvec
        if not self.regs.wsi:
            return 0                    # fctl.WSI=0: interrupts are messages
        lines = 0
        for bit, shift in ((0, 0), (1, 4), (2, 8), (3, 12)):
            if ipsr >> bit & 1:
                lines |= 1 << ((icvec >> shift) & 0xF)
        return lines

    # -- translation ---------------------------------------------------------------------

    def translate(self, device_id: int, iova: int, access: Access, *,
                  process_id: int | None = None, priv: bool = False,
                  report: bool = True, word: bool = True, data: int | None = None,
                  kind: str = ats.UNTRANSLATED, nw: bool = False) -> Result:
        """Translate one request (spec "Process to translate an IOVA"): an Untranslated
        request, or with ``Config.ats`` a Translated request or an ATS Translation Request
        (reference N.6.1-N.6.3, docs/ats-pri.md "Translation pipeline").

        The kinds share steps 1-7 (Off 256; Bare: 260 for ``"translated"`` and ``"ats"``;
        ``device_id`` too wide 260; the DC 257-259; ``DC.tc.EN_ATS=0``: 260 for
        ``"translated"`` and ``"ats"``; the process_id checks 260), then:

        * ``"translated"`` with ``DC.tc.T2GPA=0``: no walk, the IOVA is the SPA, granted as
          the Bare path grants it (R, W and X, PMA, 4 KiB; an address at or above 2**PAS is
          an access fault); with ``T2GPA=1`` the IOVA is a GPA: first stage Bare, then MSI
          translation and the second stage with their permission checks and faults. Fault
          records carry TTYP 5/6/7.
        * ``"ats"``: the Translation Completion of :mod:`iogate.cosim.model.ats` (walked as
          a read, never faulting on permissions; a Success with R=W=0 and no record for the
          page-fault-like causes; UR/CA, i.e. a fault with its TTYP 8 record, for the
          others). ``access`` is ``"read"``, or ``"execute"`` for Execute Requested (which
          counts only with a ``process_id``); ``nw`` is No Write. The completion may fill
          the IOTLB and may be answered from it, as any translation.

        Parameters
        ----------
        device_id : int
            24-bit ``device_id``.
        iova : int
            64-bit IOVA.
        access : str or iogate.hdl.port.Access
            ``"read"``, ``"write"`` or ``"execute"``. An execute without a process_id is
            accepted (as libiommu does, for non-PCIe bridges; reference N.1.6).
        process_id : int or None
            The request's 20-bit PASID; None when it carries none.
        priv : bool
            "Privilege Mode Requested": True for a supervisor request; needs a
            ``process_id``.
        report : bool
            Write a fault record to the fault queue on a fault (subject to ``DTF``). An MRIF
            update is done either way.
        word : bool
            The access is exactly one 32-bit word (the port's ``word``); only a page mapped
            by an MRIF-mode MSI PTE looks at it.
        data : int or None
            A 32-bit write's data as the device sent it (bytes in address order, the port's
            ``data``); None for any other access. A write to an MRIF-mode page needs it.
        kind : str
            ``"untranslated"`` (default), ``"translated"`` or ``"ats"`` (the port's
            ``ATS.kind``); the last two need ``Config.ats``.
        nw : bool
            An ATS Translation Request's No Write (only with ``kind="ats"``).

        Returns
        -------
        Result
            ``absorbed`` for an access to an MRIF-mode page that the IOMMU completed
            itself; a recorded MSI has then set its pending bit in :attr:`memory` and
            written the notice MSI there.

        Raises
        ------
        ValueError
            If ``access`` is neither an ``Access`` nor one of its names (the message names
            it), ``device_id``/``iova``/``process_id``/``data`` is out of range, ``priv``
            is asked for without a ``process_id``, a write reaches an MRIF-mode page
            without ``data``, ``kind`` is not a kind or needs ``Config.ats``, an ATS
            Translation Request asks to write, or ``nw`` is given without ``kind="ats"``.
        """
        pv, pid, priv = _check_process(process_id, priv)
        word, data = _check_msi_write(word, data)
        access = _access(access)
        kind = self._check_kind(kind, access, nw)
        return self._translate(device_id, iova, access, report, pv, pid, priv, word, data,
                               kind=kind, nw=bool(nw))

    def _check_kind(self, kind, access, nw):
        """The public methods' ``kind`` (and ``access``/``nw`` with it), checked."""
        kind = ats.check_kind(kind)
        if kind != ats.UNTRANSLATED and not self.config.ats:
            raise ValueError(f"kind {kind!r} needs Config.ats (capabilities.ATS)")
        if kind == ats.ATS_REQUEST and access is Access.WRITE:
            raise ValueError("an ATS Translation Request asks for access 'read' or 'execute'"
                             " (write intent is nw=False)")
        if nw and kind != ats.ATS_REQUEST:
            raise ValueError(f"nw (No Write) belongs to kind 'ats', not {kind!r}")
        return kind

    def _identity(self, iova, access):
        """The untranslated path (Bare mode, or Bare first and second stage).

        An address the physical address space does not have (at or above 2**PAS) is an
        access fault, as for any physical address outside the platform's memory map
        (Privileged spec, "Physical Memory Attributes"); the translation port and
        ``tr_response`` could not even carry it. The same rule holds for table addresses
        and leaf PAs in walks.
        """
        if iova >= self._pa_limit:
            raise TranslationFault(ACCESS_FAULT[access])
        return _BareEntry(iova)

    def _translate(self, device_id, iova, access, report, pv, pid, priv, word=True,
                   data=None, debug=False, kind=ats.UNTRANSLATED, nw=False):
        _check_request(device_id, iova)
        # Decision 10 of issue 17 (HPM): one event of the request's kind per request, port
        # or debug Go, whatever its outcome; the filter sees the PASID only if the request
        # carries one.
        self.regs.hpm.count(_KIND_EVENTS[kind], HpmIdentity(device_id, pid if pv else None))
        dc = None
        try:
            dc = self._device_context(device_id)
            if dc is None:                         # Bare: the IOVA is the address
                if kind != ats.UNTRANSLATED:       # [2]
                    raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
                return _result(self._identity(iova, access), iova)
            if kind == ats.UNTRANSLATED:
                fs = self._first_stage(dc, device_id, pv, pid, priv, access, self.cache)
            else:
                tc = bits.unpack(TC, dc.words[0])
                if not tc["en_ats"]:               # [7a]
                    raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
                if kind == ats.ATS_REQUEST:
                    return self._ats_request(dc, device_id, iova, access, pv, pid, priv, nw,
                                             bool(tc["t2gpa"]))
                _check_pid(dc, pv, pid)            # [7b], [7c]
                if not tc["t2gpa"]:                # [8] the address is the SPA
                    return _result(self._identity(iova, access), iova)
                fs = _BARE_FIRST_STAGE             # [9] the IOVA is a GPA
            entry = None
            if self.cache:
                entry = self.iotlb.lookup(*self._tags(dc, fs), iova)
            if entry is None:
                entry = self._walk(dc, fs, iova, access, self.cache)
                if type(entry) is TlbEntry:
                    self.iotlb.fill(entry)
                elif type(entry) is _MrifEntry:
                    return self._mrif(entry, iova, access, word, data, debug, self._store)
            else:
                self._check_entry(entry, iova, access, fs)
            return _result(entry, iova, fs)
        except TranslationFault as f:
            if kind == ats.ATS_REQUEST and f.cause in ats.NO_RECORD_CAUSES:
                return ats.no_permission()         # N.6.2: Success, R=W=0, no record
            if report:
                self._report(dc, f.cause, access, device_id, iova, f.iotval2, pv, pid, priv,
                             ats.ttyp(kind, access))
            return Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2)

    def _ats_request(self, dc, device_id, iova, access, pv, pid, priv, nw, t2gpa):
        """Steps 7b-20 of an ATS Translation Request under ``dc`` (EN_ATS=1): the
        Translation Completion of :mod:`iogate.cosim.model.ats`; raises TranslationFault,
        which :meth:`_translate` answers with R=W=0 or UR/CA. The walk is a read."""
        fs = self._first_stage(dc, device_id, pv, pid, priv, Access.READ, self.cache)
        entry = None
        if self.cache:
            entry = self.iotlb.lookup(*self._tags(dc, fs), iova)
            if entry is not None:
                self._check_entry(entry, iova, Access.READ, fs)
        if entry is None:
            entry = self._walk(dc, fs, iova, Access.READ, self.cache)
            if type(entry) is TlbEntry:
                self.iotlb.fill(entry)
        return self._completion(entry, iova, fs, _AtsAsk(pv, priv, access, nw, t2gpa))

    @staticmethod
    def _completion(entry, iova, fs, ask):
        """The Translation Completion (:mod:`iogate.cosim.model.ats`) of ``entry`` (what a
        read walk, or a cached entry that allows a read, gave) for the request ``ask`` with
        first stage ``fs``."""
        offset = iova & 0xFFF
        if type(entry) is _BareEntry:              # both stages Bare (decision "ats-2")
            return ats.completion(ppn=iova >> 12, size=4096, r=True, w=not ask.nw, x=ask.exe,
                                  priv=ask.priv, offset=offset)
        if type(entry) is _MrifEntry:
            # An MRIF page: "Untranslated access only", R/W of the first stage (N.4.4).
            s1 = entry.s1
            return ats.completion(ppn=0, size=4096, r=not s1 or s1.r,
                                  w=(not s1 or s1.w) and not ask.nw, x=False, u=True,
                                  priv=ask.priv, offset=offset)
        if ask.exe and fs.priv and entry.u:
            # Read-for-execute by a supervisor on a U=1 page: a privilege mismatch
            # whatever SUM says (reference N.1.6), so R=W=0 (N.6.2; libiommu alike).
            return ats.no_permission()
        s1 = entry.s1
        if entry.u is not None and fs.priv:
            s1 = tuple(p and privilege_allows(entry.u, a, True, fs.sum_)
                       for p, a in zip(s1, (Access.READ, Access.WRITE, Access.EXECUTE),
                                       strict=True))
        r = s1[0] and entry.s2[0]
        page = (iova - entry.iova) >> 12
        # T2GPA=1: the GPA (first-stage output); the DC checks made sure a G-stage exists.
        ppn = (entry.gpa >> 12) + page if ask.t2gpa else entry.ppn | page
        return ats.completion(ppn=ppn, size=entry.size, r=r,
                              w=s1[1] and entry.s2[1] and not ask.nw,
                              x=ask.exe and r and s1[2] and entry.s2[2],
                              g=bool(ask.pv) and entry.glob and not entry.msi, priv=ask.priv,
                              offset=offset)

    def _report(self, dc, cause, access, device_id, iova, iotval2, pv, pid, priv, ttyp=None):
        # The record carries the request's own PV/PID/PRIV: after a DPE substitution PV
        # stays 0 (reference N.1.6, issue #727). No DC located: DTF is taken as 0.
        if not (dc is not None and dc.dtf and cause not in DTF_REPORTED_CAUSES):
            if ttyp is None:
                ttyp = ats.ttyp(ats.UNTRANSLATED, access)
            self.fault_queue.report(cause, ttyp, device_id, iova, iotval2, pv, pid, priv)

    def report_fault(self, device_id: int, iova: int, access: Access, cause: int,
                     iotval2: int = 0, *, process_id: int | None = None,
                     priv: bool = False, kind: str = ats.UNTRANSLATED) -> None:
        """Write the fault record of one fault answer :meth:`allowed` gave for this request
        (spec "Fault/Event-Queue (FQ)"), as :meth:`translate` would have on that fault:
        with the TTYP of ``kind`` (:func:`iogate.cosim.model.ats.ttyp`).

        For checkers of a target that may answer from what its caches still hold: a process
        context cached before it was rewritten points at the old table (or the old ENS/SUM),
        which may fault where the current one maps, so the target's fault is not always the
        fault a walk of the current structures gives. ``DTF`` is taken from the device
        context located now (DCs do not change while such an answer is allowed here).
        """
        pv, pid, priv = _check_process(process_id, priv)
        access = _access(access)
        kind = self._check_kind(kind, access, False)
        _check_request(device_id, iova)
        try:
            dc = self._device_context_fresh(device_id)
        except TranslationFault:
            dc = None
        self._report(dc, cause, access, device_id, iova, iotval2, pv, pid, priv,
                     ats.ttyp(kind, access))

    def _first_stage(self, dc, device_id, pv, pid, priv, access, use_cache, pc=None):
        """Steps 7b-16 of spec "Process to translate an IOVA" (reference N.0): the
        :class:`~iogate.cosim.model.pdt.FirstStage` the request uses; raises
        TranslationFault (260, or a GET_PC fault). ``pc`` gives the process context to use
        instead of locating it (a cached one, for :meth:`allowed`)."""
        _check_pid(dc, pv, pid)                    # [7b], [7c]
        if not dc.pdtv:
            return FirstStage(dc.s_mode, dc.s_root, dc.pscid if dc.s_mode else None,
                              False, False)         # [10]
        if not pv:
            if not dc.dpe:                         # [12] no PC: User, first stage Bare
                return _BARE_FIRST_STAGE
            pid, priv = 0, 0                       # [11] process_id 0, User
        if dc.s_mode == 0:                         # [13] pdtp Bare
            return _BARE_FIRST_STAGE
        if pc is None:
            pc = self._process_context(dc, device_id, pid, access, use_cache)   # [14]
        if priv and not pc.ens:                    # [15]
            raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
        # [16] SUM matters only to a supervisor request.
        return FirstStage(pc.s_mode, pc.s_root, pc.pscid if pc.s_mode else None,
                          bool(priv), pc.sum_ and bool(priv))

    def _process_context(self, dc, device_id, pid, access, use_cache, cached=None):
        """GET_PC (:func:`iogate.cosim.model.pdt.locate_pc`), answered from the model's PC
        cache when ``use_cache``; every PC and non-leaf PDTE reached is recorded as cacheable."""
        key = (device_id, pid)
        if use_cache and cached is None:
            pc = self.pc_cache.lookup(key)
            if pc is not None:
                return pc
        g_translate = None
        if dc.g_mode:
            walker, g_mode, g_root = self._walker, dc.g_mode, dc.g_root

            def g_translate(gpa):
                # An implicit read, faults by the original access (reference N.1.5).
                g = walker.g_stage(gpa, access, g_mode, g_root, implicit=True)
                return (g.ppn_of(gpa) << 12) | (gpa & 0xFFF)

        pdtes = self.pdte_cache

        def record(level, spa_page):
            pdtes.fill(_pdte_key(device_id, level, pid), spa_page)

        sxl, caps = dc.sxl, self.caps
        pc = pdt.locate_pc(self._load64, dc, pid, g_translate,
                           lambda words: pdt.pc_misconfiguration(words, sxl, caps),
                           cached, record)
        self.pc_cache.fill(key, pc)
        return pc

    def _device_context(self, device_id):
        """Steps 1-4 of the module's list: None for Bare, else the DC; raises TranslationFault."""
        mode = self.regs.ddtp & 0xF
        if mode == IommuMode.OFF:
            raise TranslationFault(Cause.ALL_INBOUND_DISALLOWED)
        if mode == IommuMode.BARE:
            return None
        if not ddt.device_id_fits(mode, device_id, self._extended):
            raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
        if self.cache:
            dc = self.dc_cache.lookup(device_id)
            if dc is not None:
                return dc
        dc = ddt.locate(self._load, mode, (self.regs.ddtp >> 10) & _PPN_MASK, device_id,
                        self._check_dc, self._make_dc, self._extended)
        self.dc_cache.fill(device_id, dc)
        return dc

    def _make_dc(self, words):
        dc = self._dc_memo.get(words)
        if dc is None:
            dc = self._dc_memo[words] = ddt.DeviceContext(words)
        return dc

    def _check_dc(self, words):
        fctl = self.regs.fctl
        key = (words, fctl)
        memo = self._check_memo
        if key not in memo:
            memo[key] = ddt.misconfiguration(words, self.caps, bits.get(FCTL, fctl, "be"),
                                             bits.get(FCTL, fctl, "gxl"))
        return memo[key]

    @staticmethod
    def _tags(dc: ddt.DeviceContext, fs: FirstStage) -> tuple[int | None, int | None]:
        """IOTLB tag (GSCID, PSCID) of a request under ``dc`` with first stage ``fs``; None
        for a Bare stage (spec "Process to translate an IOVA"; with PDTV=1 the PSCID is
        the PC's, reference N.1.7)."""
        return (dc.gscid if dc.g_mode else None), fs.pscid

    def _walk(self, dc, fs, iova, access, use_cache=False):
        """Steps 17-19 under ``dc`` and first stage ``fs``: a TlbEntry, an _MrifEntry, or a
        _BareEntry for Bare+Bare. ``use_cache``: the MSI PTE may come from the model's MSI
        PTE cache."""
        s1, gpa = self._stage1(dc, fs, iova, access)
        if dc.msi_flat and msi.matches(gpa, dc.msi_mask, dc.msi_pattern):     # [18]
            pte = self._msi_pte(dc, gpa, use_cache)
            return self._msi_entry(dc, fs, s1, iova, gpa, access, pte)
        return self._stage2(dc, fs, s1, iova, gpa, access)

    def _stage1(self, dc, fs, iova, access):
        """Step 17: the first-stage leaf (None when Bare) and the GPA."""
        if not fs.mode:
            return None, iova
        s1 = self._walker.s_stage(iova, access, fs.mode, fs.root, dc.g_mode, dc.g_root,
                                  fs.priv, fs.sum_)
        return s1, (s1.ppn_of(iova) << 12) | (iova & 0xFFF)

    def _msi_pte(self, dc, gpa, use_cache, cached=None):
        """The checked MSI PTE of ``gpa`` (reference N.4.3 checks 1-8): ``cached`` words,
        or the model's cache entry when ``use_cache``, or read from the MSI page table.
        A well-formed PTE read from memory is recorded in the MSI PTE cache."""
        key = (dc.gscid, gpa >> 12)
        words = cached
        if words is None and use_cache:
            words = self.msi_pte_cache.lookup(key)
        fresh = words is None
        if fresh:
            index = msi.extract(gpa >> 12, dc.msi_mask)
            words = msi.read_pte(self._load, msi.pte_address(dc.msi_ppn, index))
        pte = msi.check_pte(*words, self.config.msi_mrif)
        if fresh:
            self.msi_pte_cache.fill(key, words)
        return pte

    def _msi_entry(self, dc, fs, s1, iova, gpa, access, pte):
        """What MSI PTE ``pte`` makes of the request: an execute is an instruction access
        fault (reference N.4.3 check 9); a basic PTE gives a 4 KiB TlbEntry (decision 4:
        R=W=1, X=0, PMA, under the request's tags, the MSI page as its second-stage range);
        an MRIF PTE an _MrifEntry (never cached in the IOTLB)."""
        if access is Access.EXECUTE:
            raise TranslationFault(Cause.INSTRUCTION_ACCESS_FAULT)
        if pte.mode != MsiPteMode.BASIC:
            return _MrifEntry(pte, gpa, s1)
        page = gpa & ~0xFFF
        return TlbEntry(gscid=dc.gscid, pscid=fs.pscid if s1 else None,
                        glob=bool(s1 and s1.glob), iova=iova & ~0xFFF, size=4096, gpa=page,
                        ppn=pte.ppn, s1=(s1.r, s1.w, s1.x) if s1 else _ALL,
                        s2=(True, True, False), pbmt=s1.pbmt if s1 else 0,
                        s1_range=(iova & ~(s1.size - 1), s1.size) if s1 else None,
                        s2_range=(page, 4096), u=s1.u if s1 else None, msi=True)

    def _mrif(self, entry, iova, access, word, data, debug, store):
        """The answer to an access to an MRIF-mode page (:func:`msi.mrif_access`); the
        debug interface may not use such a page (260). ``store`` is :meth:`_store`
        (translate) or :meth:`_probe_store` (allowed, no side effects)."""
        if debug:
            raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
        msi.mrif_access(entry.pte, entry.gpa, access, word, data, self._load, store)
        return Result(fault=False, absorbed=True, offset=iova & 0xFFF)

    def _stage2(self, dc, fs, s1, iova, gpa, access):
        """Step 19 after the first stage gave ``s1`` (None when Bare) and ``gpa``."""
        s_mode = fs.mode
        g_mode = dc.g_mode
        walker = self._walker
        if s1 is not None:
            s1_perm = (s1.r, s1.w, s1.x)
            s1_range = (iova & ~(s1.size - 1), s1.size)
        else:
            s1_perm = _ALL
            s1_range = None
        if g_mode:
            s2 = walker.g_stage(gpa, access, g_mode, dc.g_root)
            size = min(s2.size, s1.size) if s1 else s2.size
            if dc.msi_flat and size > 4096 and msi.range_overlaps(
                    gpa & ~(size - 1), size, dc.msi_mask, dc.msi_pattern):
                # A larger range would hold an MSI page and let a cached entry bypass the
                # MSI page table (reference N.4.4; libiommu shrinks such superpages too).
                size = 4096
            ppn = s2.ppn_of(gpa & ~(size - 1))
            s2_perm = (s2.r, s2.w, s2.x)
            s2_range = (gpa & ~(s2.size - 1), s2.size)
            pbmt = s1.pbmt if s1 and s1.pbmt else s2.pbmt
        elif s1:
            size = s1.size
            ppn = s1.base_ppn
            s2_perm = _ALL
            s2_range = None
            pbmt = s1.pbmt
        else:
            return self._identity(iova, access)
        return TlbEntry(gscid=dc.gscid if g_mode else None,
                        pscid=fs.pscid if s_mode else None, glob=bool(s1 and s1.glob),
                        iova=iova & ~(size - 1), size=size,
                        gpa=(gpa & ~(size - 1)) if g_mode else None, ppn=ppn, s1=s1_perm,
                        s2=s2_perm, pbmt=pbmt, s1_range=s1_range, s2_range=s2_range,
                        u=s1.u if s1 else None)

    @staticmethod
    def _check_entry(entry, iova, access, fs):
        """A cached entry answers ``access`` or faults in the stage that denies it; the
        first-stage U bit is checked against the request's privilege (reference N.1.6)."""
        # s1 and s2 are (r, w, x): in Access order.
        if not entry.s1[access.value] or (
                entry.u is not None and not privilege_allows(entry.u, access, fs.priv,
                                                             fs.sum_)):
            raise TranslationFault(PAGE_FAULT[access])
        if not entry.s2[access.value]:
            if entry.msi:                            # an execute on an MSI page
                raise TranslationFault(Cause.INSTRUCTION_ACCESS_FAULT)
            gpa = entry.gpa + (iova - entry.iova)
            raise TranslationFault(GUEST_PAGE_FAULT[access], (gpa >> 2) << 2)

    # -- caching freedom -----------------------------------------------------------------

    def allowed(self, device_id: int, iova: int, access: Access, *,
                process_id: int | None = None, priv: bool = False, word: bool = True,
                data: int | None = None, kind: str = ats.UNTRANSLATED,
                nw: bool = False) -> set[Result]:
        """Every answer the spec allows for this request right now (spec "Guidelines for
        invalidations").

        That is the answer from the current tables, plus the answers a cache may still give:
        device contexts located earlier for ``device_id`` (under which the current tables
        are walked), process contexts located earlier for (``device_id``, ``process_id``)
        and the tables non-leaf PDTEs pointed to, and translations produced earlier with
        the same GSCID/PSCID tags (or global ones of any PSCID), as long
        as no invalidation covering them has been followed by a completed ``IOFENCE.C``.
        A cached translation that does not permit ``access`` gives the fault of the stage
        that denies it. Faults are never cached. Every success found by walking is counted
        as something a cache may now hold. Nothing is reported to the fault queue.

        With MSI translation (reference N.4.5) the MSI PTEs an MSI PTE cache may still hold
        for (GSCID, GPA page) are answers too, until an ``IOTINVAL.GVMA`` covering them is
        fenced; basic-mode results are IOTLB entries like any other. ``word``/``data`` are
        :meth:`translate`'s. An MRIF-mode PTE gives the answer its access would get
        (absorbed, or 260/264) *without* doing the update: ``allowed`` has no side effects
        on memory, :meth:`translate` performs the update of the PTE it uses. A 264 is
        predicted from the memory's fault ranges and ``capabilities.PAS`` now.

        ``kind``/``nw`` are :meth:`translate`'s: a Translated request's answers follow each
        candidate DC's EN_ATS/T2GPA (T2GPA=1: the second-stage candidates under a Bare
        first stage); an ATS Translation Request's are the completions of every candidate
        translation (a cached one that denies the read gives Success with R=W=0, as a
        walk's page fault does).

        Returns
        -------
        set of Result
        """
        access = _access(access)
        pv, pid, priv = _check_process(process_id, priv)
        kind = self._check_kind(kind, access, nw)
        _check_request(device_id, iova)
        out = set()
        try:
            fresh = self._device_context_fresh(device_id)
        except TranslationFault as f:
            out.add(Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2))
            fresh = None
            if f.cause in (Cause.ALL_INBOUND_DISALLOWED, Cause.TRANSACTION_TYPE_DISALLOWED):
                return out                       # decided before any cache is consulted
        else:
            if fresh is None:                    # Bare mode: the untranslated path
                if kind != ats.UNTRANSLATED:
                    return {Result(fault=True, cause=Cause.TRANSACTION_TYPE_DISALLOWED)}
                try:
                    out.add(_result(self._identity(iova, access), iova))
                except TranslationFault as f:
                    out.add(Result(fault=True, cause=Cause(f.cause)))
                return out
        dcs = self.dc_cache.candidates(device_id)
        if fresh is not None and fresh not in dcs:
            dcs.append(fresh)
        word, data = _check_msi_write(word, data)
        # An ATS Translation Request walks as a read (module cosim.model.ats).
        walk = Access.READ if kind == ats.ATS_REQUEST else access
        for dc in dcs:
            ask = None
            if kind == ats.UNTRANSLATED:
                stages = self._first_stages(dc, device_id, pv, pid, priv, access, out)
            else:
                tc = bits.unpack(TC, dc.words[0])
                try:
                    if not tc["en_ats"]:         # [7a]
                        raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
                    if kind == ats.TRANSLATED:
                        _check_pid(dc, pv, pid)  # [7b], [7c]
                        if not tc["t2gpa"]:      # [8]
                            out.add(_result(self._identity(iova, access), iova))
                            continue
                except TranslationFault as f:
                    out.add(Result(fault=True, cause=Cause(f.cause)))
                    continue
                if kind == ats.TRANSLATED:
                    stages = [_BARE_FIRST_STAGE]  # [9]
                else:
                    ask = _AtsAsk(pv, priv, access, nw, tc["t2gpa"])
                    stages = self._first_stages(dc, device_id, pv, pid, priv, walk, out)
            for fs in stages:
                def answer(entry, fs=fs, ask=ask):
                    if ask is not None:
                        return self._completion(entry, iova, fs, ask)
                    if type(entry) is _MrifEntry:
                        return self._mrif(entry, iova, access, word, data, False,
                                          self._probe_store)
                    return _result(entry, iova, fs)
                self._allowed_walks(dc, fs, iova, walk, answer, out)
                tags = self._tags(dc, fs)
                if tags == (None, None):
                    continue
                for entry in self.iotlb.candidates(*tags, iova):
                    try:
                        self._check_entry(entry, iova, walk, fs)
                        out.add(answer(entry))
                    except TranslationFault as f:
                        out.add(Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2))
        if kind == ats.ATS_REQUEST:
            # N.6.2: these faults are answered with Success, R=W=0.
            out = {ats.no_permission() if r.fault and r.cause in ats.NO_RECORD_CAUSES else r
                   for r in out}
        return out

    def _allowed_walks(self, dc, fs, iova, access, answer, out):
        """The answers of walks under ``dc`` and ``fs`` (for :meth:`allowed`): the current
        tables, and for an MSI address every MSI PTE the MSI PTE cache may still hold for
        it; ``answer(entry)`` makes each entry's Result. Successes are recorded as
        cacheable; faults go to ``out`` too."""
        def fault(f):
            out.add(Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2))

        try:
            s1, gpa = self._stage1(dc, fs, iova, access)
        except TranslationFault as f:
            fault(f)
            return
        if not (dc.msi_flat and msi.matches(gpa, dc.msi_mask, dc.msi_pattern)):
            try:
                entry = self._stage2(dc, fs, s1, iova, gpa, access)
            except TranslationFault as f:
                fault(f)
                return
            if type(entry) is TlbEntry:
                self.iotlb.fill(entry)
            out.add(answer(entry))
            return
        # A cached PTE still live may fill the IOTLB as the walk's would; a doomed one may
        # answer until the fence but fill nothing (decision 6).
        sources = [(None, False)] + self.msi_pte_cache.states((dc.gscid, gpa >> 12))
        for cached, doomed in sources:
            try:
                pte = self._msi_pte(dc, gpa, False, cached)
                entry = self._msi_entry(dc, fs, s1, iova, gpa, access, pte)
                if type(entry) is _MrifEntry:
                    out.add(answer(entry))
                    continue
            except TranslationFault as f:
                fault(f)
                continue
            if not doomed:
                self.iotlb.fill(entry)
            out.add(answer(entry))

    def _first_stages(self, dc, device_id, pv, pid, priv, access, out):
        """Every first stage a request may use under ``dc`` now (for :meth:`allowed`): the
        one from the current PDT, those of PCs a PC cache may still hold for (device_id,
        process_id), and those reached through non-leaf PDTEs a cache may still hold
        (reference N.1.7). Faults go to ``out``."""
        found = []

        def attempt(**kw):
            try:
                fs = self._first_stage(dc, device_id, pv, pid, priv, access, False, **kw)
            except TranslationFault as f:
                out.add(Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2))
            else:
                if fs not in found:
                    found.append(fs)

        attempt()
        if not dc.pdtv or dc.s_mode == 0 or not (pv or dc.dpe) or (
                pv and not pdt.pid_fits(dc.s_mode, pid)):
            return found                        # no PC is read: nothing cached applies
        eff = pid if pv else 0
        for pc in self.pc_cache.candidates((device_id, eff)):
            attempt(pc=pc)
        for level in range(PdtpMode(dc.s_mode).levels):
            for spa_page in self.pdte_cache.candidates(_pdte_key(device_id, level, eff)):
                try:
                    pc = self._process_context(dc, device_id, eff, access, False,
                                               cached=(level, spa_page))
                except TranslationFault as f:
                    out.add(Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2))
                else:
                    attempt(pc=pc)
        return found

    def _device_context_fresh(self, device_id):
        """:meth:`_device_context` from memory, never from the model's own cache."""
        cache, self.cache = self.cache, False
        try:
            return self._device_context(device_id)
        finally:
            self.cache = cache

    # -- debug translation interface (spec "Debug support") ------------------------------

    def _debug_go(self):
        regs = self.regs
        ctl = bits.unpack(TR_REQ_CTL, regs.tr_req_ctl)
        # Exe asks for read-for-execute; NW=1 for read only; NW=0 for read and write,
        # which a write access checks (W implies R in a valid PTE).
        if ctl["exe"]:
            access = Access.EXECUTE
        elif ctl["nw"]:
            access = Access.READ
        else:
            access = Access.WRITE
        iova = regs.tr_req_iova
        r = self._translate(ctl["did"], iova, access, True, ctl["pv"], ctl["pid"],
                            ctl["priv"] if ctl["pv"] else 0, debug=True)
        if r.fault:
            regs.tr_response = bits.pack(TR_RESPONSE, fault=1)
        elif r.size > 4096:
            # S=1: the range size is NAPOT-encoded in the PPN (spec "Translation-response
            # (tr_response)").
            pages = r.size >> 12
            ppn = (r.ppn & ~(pages - 1)) | ((pages >> 1) - 1)
            regs.tr_response = bits.pack(TR_RESPONSE, pbmt=r.pbmt, s=1, ppn=ppn)
        else:
            regs.tr_response = bits.pack(TR_RESPONSE, pbmt=r.pbmt, ppn=r.ppn)


class _MrifEntry:
    """A GPA mapped by an MRIF-mode MSI PTE (never cached in the IOTLB), reached through the
    first-stage leaf ``s1`` (None when Bare)."""

    __slots__ = ("pte", "gpa", "s1")

    def __init__(self, pte, gpa, s1=None):
        self.pte = pte
        self.gpa = gpa
        self.s1 = s1


class _AtsAsk:
    """What an ATS Translation Request asks, for its completion: ``pv`` (a PASID),
    ``priv`` (Privilege Mode Requested), ``exe`` (Execute Requested, which counts only with
    a PASID: N.6.2 "Exe"), ``nw`` (No Write), and ``t2gpa`` (``DC.tc.T2GPA``)."""

    __slots__ = ("pv", "priv", "exe", "nw", "t2gpa")

    def __init__(self, pv, priv, access, nw, t2gpa):
        self.pv, self.priv, self.nw, self.t2gpa = bool(pv), bool(priv), bool(nw), bool(t2gpa)
        self.exe = self.pv and access is Access.EXECUTE


class _BareEntry:
    """Bare first and second stage: the IOVA itself (never cached, nothing to tag)."""

    __slots__ = ("iova",)

    def __init__(self, iova):
        self.iova = iova


def _result(entry, iova, fs=_BARE_FIRST_STAGE):
    """The answer of ``entry`` to a request with first stage ``fs``.

    R/W/X are what this request may do: a supervisor request on a U=1 leaf loses X, and R/W
    too without SUM (reference N.1.6), so the permissions a device sees follow its
    privilege the same way its faults do.
    """
    if isinstance(entry, _BareEntry):
        return Result(fault=False, ppn=iova >> 12, r=True, w=True, x=True, pbmt=Pbmt.PMA,
                      offset=iova & 0xFFF, size=4096)
    s1, s2 = entry.s1, entry.s2
    if entry.u is not None and fs.priv:
        s1 = tuple(p and privilege_allows(entry.u, a, True, fs.sum_)
                   for p, a in zip(s1, (Access.READ, Access.WRITE, Access.EXECUTE),
                                   strict=True))
    return Result(fault=False, ppn=entry.ppn | ((iova - entry.iova) >> 12),
                  r=s1[0] and s2[0], w=s1[1] and s2[1], x=s1[2] and s2[2],
                  pbmt=_PBMT[entry.pbmt], offset=iova & 0xFFF, size=entry.size)


def _pdte_key(device_id, level, pid):
    """PDTE-cache key of the level-``level`` table on ``pid``'s path: the process_id bits
    that select it (those above ``PDI[level]``; none for the root)."""
    high = PdtpMode.index_low(level + 1) if level < 2 else 20
    return device_id, level, pid >> high


def _check_fields(**fields):
    """Each ``name=(value, width)``: an integer of ``width`` bits, else ValueError naming it."""
    for name, (value, width) in fields.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << width:
            raise ValueError(f"{name} must be a {width}-bit integer, not {value!r}")


def _check_flags(**flags):
    """Each ``name=value``: a bool (or 0/1), else ValueError naming it."""
    for name, value in flags.items():
        if value not in (0, 1):         # True == 1 and False == 0
            raise ValueError(f"{name} must be a bool, not {value!r}")


def _check_pid(dc, pv, pid):
    """Steps 7b and 7c: a process_id with ``PDTV=0``, or wider than ``pdtp.MODE`` allows,
    is 260."""
    if pv and (not dc.pdtv or not pdt.pid_fits(dc.s_mode, pid)):
        raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)


def _check_process(process_id, priv):
    """``(pv, pid, priv)`` of the public methods' ``process_id``/``priv``, checked."""
    if process_id is None:
        if priv:
            raise ValueError("priv (supervisor) needs a process_id: a request without a "
                             "PASID is a User-mode request")
        return 0, 0, 0
    if not isinstance(process_id, int) or not 0 <= process_id < 1 << 20:
        raise ValueError(f"process_id must be a 20-bit integer or None, not {process_id!r}")
    return 1, process_id, int(bool(priv))


def _check_msi_write(word, data):
    """The public methods' ``word``/``data``, checked."""
    if data is not None and (not isinstance(data, int) or not 0 <= data < 1 << 32):
        raise ValueError(f"data must be a 32-bit integer or None, not {data!r}")
    return bool(word), data


def _check_request(device_id, iova):
    if not isinstance(device_id, int) or not 0 <= device_id < 1 << 24:
        raise ValueError(f"device_id must be a 24-bit integer, not {device_id!r}")
    if not isinstance(iova, int) or not 0 <= iova < 1 << 64:
        raise ValueError(f"iova must be a 64-bit integer, not {iova!r}")
