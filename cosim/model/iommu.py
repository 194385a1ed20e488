"""``IommuModel``: the architectural model of one iogate (the oracle of every test).

It follows RISC-V IOMMU spec "Process to translate an IOVA" step by step for
Untranslated requests without a PASID, which is what the translation ports carry:

1. ``ddtp.iommu_mode`` Off: cause 256.
2. Bare: the IOVA is the physical address.
3. A ``device_id`` wider than 1LVL/2LVL allow: cause 260.
4. Locate the device context (:mod:`iogate.cosim.model.ddt`): 257, 258, 259.
5. A ``process_id`` (only from the debug interface) with ``PDTV=0``: 260.
6. ``PDTV=0``: first stage from ``DC.fsc``/``DC.ta``; ``PDTV=1`` (only ``pdtp`` Bare is
   legal here, no PD8/PD17/PD20): first stage Bare.
7. First stage, whose table reads go through the second stage (:mod:`iogate.cosim.model.walk`),
   then second stage: 1, 5, 7, 12, 13, 15, 20, 21, 23.

A fault is written to the fault queue unless ``DC.tc.DTF`` suppresses it (spec "Fault/Event-Queue
(FQ)").

The model also keeps what the caches may hold (:mod:`iogate.cosim.model.caches`), so that
:meth:`IommuModel.allowed` can list every answer the spec allows while an invalidation is
not yet fenced.
"""

from iogate.hdl import bits
from iogate.hdl.config import Config
from iogate.hdl.formats import DTF_REPORTED_CAUSES, Cause, Pbmt, Ttyp
from iogate.hdl.port import Access
from iogate.hdl.regs import CAPABILITIES, DDTP, FCTL, TR_REQ_CTL, TR_RESPONSE, IommuMode

from iogate.cosim.model import ddt
from iogate.cosim.model.caches import DcCache, Iotlb, TlbEntry
from iogate.cosim.model.cmdq import CommandQueue
from iogate.cosim.model.faultq import FaultQueue
from iogate.cosim.model.memory import AccessFault, Memory
from iogate.cosim.model.registers import RegisterFile
from iogate.cosim.model.result import Result
from iogate.cosim.model.walk import (
    ACCESS_FAULT,
    GUEST_PAGE_FAULT,
    PAGE_FAULT,
    TranslationFault,
    Walker,
)

__all__ = ["IommuModel"]

_ACCESS_NAMES = {"read": Access.READ, "write": Access.WRITE, "execute": Access.EXECUTE}
_PBMT = tuple(Pbmt)
_ALL = (True, True, True)
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
        When True, :meth:`translate` answers from the model's own device-context cache and
        IOTLB as a real IOMMU would (unbounded, never evicting, so a missing invalidation
        shows up as a stale answer). When False (default) every translation walks the
        current tables. Either way :meth:`allowed` lists every answer the spec allows.

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
        self.iotlb = Iotlb()
        self._walker = Walker(self._load64, config.svpbmt)
        self.fault_queue = FaultQueue(_regs, self._store)
        self.command_queue = CommandQueue(_regs, self._load, self._store, self.dc_cache,
                                          self.iotlb)
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

    @property
    def wsi_lines(self) -> int:
        """Wired interrupt lines asserted now: bit ``icvec.civ``/``fiv`` for ``cip``/``fip``.

        With ``fctl.WSI=1`` each pending bit of ``ipsr`` drives the wire its ``icvec``
        field selects (spec "Interrupt pending status register (ipsr)",
        "Interrupt-cause-to-vector register (icvec)").
        """
        ipsr, icvec = self.regs.ipsr, self.regs.icvec
        lines = 0
        for bit, shift in ((0, 0), (1, 4), (2, 8), (3, 12)):
            if ipsr >> bit & 1:
                lines |= 1 << ((icvec >> shift) & 0xF)
        return lines

    # -- translation ---------------------------------------------------------------------

    def translate(self, device_id: int, iova: int, access: Access, *,
                  report: bool = True) -> Result:
        """Translate one Untranslated request without PASID (spec "Process to translate an IOVA").

        Parameters
        ----------
        device_id : int
            24-bit ``device_id``.
        iova : int
            64-bit IOVA.
        access : str or iogate.hdl.port.Access
            ``"read"``, ``"write"`` or ``"execute"``.
        report : bool
            Write a fault record to the fault queue on a fault (subject to ``DTF``).

        Returns
        -------
        Result

        Raises
        ------
        ValueError
            If ``access`` is neither an ``Access`` nor one of its names (the message names
            it), or ``device_id``/``iova`` is out of range.
        """
        return self._translate(device_id, iova, _access(access), report, 0, 0, 0)

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

    def _translate(self, device_id, iova, access, report, pv, pid, priv):
        _check_request(device_id, iova)
        dc = None
        try:
            dc = self._device_context(device_id)
            if dc is None:                         # Bare: the IOVA is the address
                return _result(self._identity(iova, access), iova)
            if pv and not dc.pdtv:
                raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
            entry = None
            if self.cache:
                entry = self.iotlb.lookup(*self._tags(dc), iova)
            if entry is None:
                entry = self._walk(dc, iova, access)
                if type(entry) is TlbEntry:
                    self.iotlb.fill(entry)
            else:
                self._check_entry(entry, iova, access)
            return _result(entry, iova)
        except TranslationFault as f:
            if report and not (dc is not None and dc.dtf
                               and f.cause not in DTF_REPORTED_CAUSES):
                self.fault_queue.report(f.cause, Ttyp.untranslated(access), device_id, iova,
                                        f.iotval2, pv, pid, priv)
            return Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2)

    def _device_context(self, device_id):
        """Steps 1-4 of the module's list: None for Bare, else the DC; raises TranslationFault."""
        mode = self.regs.ddtp & 0xF
        if mode == IommuMode.OFF:
            raise TranslationFault(Cause.ALL_INBOUND_DISALLOWED)
        if mode == IommuMode.BARE:
            return None
        if not ddt.device_id_fits(mode, device_id):
            raise TranslationFault(Cause.TRANSACTION_TYPE_DISALLOWED)
        if self.cache:
            dc = self.dc_cache.lookup(device_id)
            if dc is not None:
                return dc
        dc = ddt.locate(self._load, mode, (self.regs.ddtp >> 10) & _PPN_MASK, device_id,
                        self._check_dc, self._make_dc)
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
    def _tags(dc: ddt.DeviceContext) -> tuple[int | None, int | None]:
        """IOTLB tag (GSCID, PSCID) of ``dc``; None for a Bare stage (spec "Process to translate an
        IOVA")."""
        s_mode = 0 if dc.pdtv else dc.s_mode
        return (dc.gscid if dc.g_mode else None), (dc.pscid if s_mode else None)

    def _walk(self, dc, iova, access):
        """Steps 6-7 of the module's list under ``dc``: a TlbEntry, or a _BareEntry for
        Bare+Bare."""
        s_mode = 0 if dc.pdtv else dc.s_mode
        g_mode = dc.g_mode
        walker = self._walker
        if s_mode:
            s1 = walker.s_stage(iova, access, s_mode, dc.s_root, g_mode, dc.g_root)
            gpa = (s1.ppn_of(iova) << 12) | (iova & 0xFFF)
            s1_perm = (s1.r, s1.w, s1.x)
            s1_range = (iova & ~(s1.size - 1), s1.size)
        else:
            s1 = None
            gpa = iova
            s1_perm = _ALL
            s1_range = None
        if g_mode:
            s2 = walker.g_stage(gpa, access, g_mode, dc.g_root)
            size = min(s2.size, s1.size) if s1 else s2.size
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
                        pscid=dc.pscid if s_mode else None, glob=bool(s1 and s1.glob),
                        iova=iova & ~(size - 1), size=size,
                        gpa=(gpa & ~(size - 1)) if g_mode else None, ppn=ppn, s1=s1_perm,
                        s2=s2_perm, pbmt=pbmt, s1_range=s1_range, s2_range=s2_range)

    @staticmethod
    def _check_entry(entry, iova, access):
        """A cached entry answers ``access`` or faults in the stage that denies it."""
        # s1 and s2 are (r, w, x): in Access order.
        if not entry.s1[access.value]:
            raise TranslationFault(PAGE_FAULT[access])
        if not entry.s2[access.value]:
            gpa = entry.gpa + (iova - entry.iova)
            raise TranslationFault(GUEST_PAGE_FAULT[access], (gpa >> 2) << 2)

    # -- caching freedom -----------------------------------------------------------------

    def allowed(self, device_id: int, iova: int, access: Access) -> set[Result]:
        """Every answer the spec allows for this request right now (spec "Guidelines for
        invalidations").

        That is the answer from the current tables, plus the answers a cache may still give:
        device contexts located earlier for ``device_id`` (under which the current tables
        are walked) and translations produced earlier with the same GSCID/PSCID tags, as long
        as no invalidation covering them has been followed by a completed ``IOFENCE.C``.
        A cached translation that does not permit ``access`` gives the fault of the stage
        that denies it. Faults are never cached. Every success found by walking is counted
        as something a cache may now hold. Nothing is reported to the fault queue.

        Returns
        -------
        set of Result
        """
        access = _access(access)
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
                try:
                    out.add(_result(self._identity(iova, access), iova))
                except TranslationFault as f:
                    out.add(Result(fault=True, cause=Cause(f.cause)))
                return out
        dcs = self.dc_cache.candidates(device_id)
        if fresh is not None and fresh not in dcs:
            dcs.append(fresh)
        for dc in dcs:
            try:
                entry = self._walk(dc, iova, access)
                if type(entry) is TlbEntry:
                    self.iotlb.fill(entry)
                out.add(_result(entry, iova))
            except TranslationFault as f:
                out.add(Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2))
            tags = self._tags(dc)
            if tags == (None, None):
                continue
            for entry in self.iotlb.candidates(*tags, iova):
                try:
                    self._check_entry(entry, iova, access)
                    out.add(_result(entry, iova))
                except TranslationFault as f:
                    out.add(Result(fault=True, cause=Cause(f.cause), iotval2=f.iotval2))
        return out

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
                            ctl["priv"] if ctl["pv"] else 0)
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


class _BareEntry:
    """Bare first and second stage: the IOVA itself (never cached, nothing to tag)."""

    __slots__ = ("iova",)

    def __init__(self, iova):
        self.iova = iova


def _result(entry, iova):
    if isinstance(entry, _BareEntry):
        return Result(fault=False, ppn=iova >> 12, r=True, w=True, x=True, pbmt=Pbmt.PMA,
                      offset=iova & 0xFFF, size=4096)
    s1, s2 = entry.s1, entry.s2
    return Result(fault=False, ppn=entry.ppn | ((iova - entry.iova) >> 12),
                  r=s1[0] and s2[0], w=s1[1] and s2[1], x=s1[2] and s2[2],
                  pbmt=_PBMT[entry.pbmt], offset=iova & 0xFFF, size=entry.size)


def _check_request(device_id, iova):
    if not isinstance(device_id, int) or not 0 <= device_id < 1 << 24:
        raise ValueError(f"device_id must be a 24-bit integer, not {device_id!r}")
    if not isinstance(iova, int) or not 0 <= iova < 1 << 64:
        raise ValueError(f"iova must be a 64-bit integer, not {iova!r}")
