"""The command queue: fetching and executing commands (RISC-V IOMMU spec "Command-Queue (CQ)";
``cqb``, ``cqh``, ``cqt``, ``cqcsr``).

Commands are fetched at ``cqb.PPN*4096 + cqh*16`` while ``cqon`` is 1, no stopping error
bit (``cqmf``, ``cmd_to``, ``cmd_ill``) is set and ``cqh != cqt``. This implementation
offers ``IOTINVAL.VMA``, ``IOTINVAL.GVMA``, ``IOFENCE.C``, ``IODIR.INVAL_DDT`` and, with
process contexts (``capabilities.PD8``), ``IODIR.INVAL_PDT``, and with ``capabilities.ATS``
``ATS.INVAL`` and ``ATS.PRGR`` (reference N.6.4; below).
Everything else is illegal or unsupported and sets ``cmd_ill`` with ``cqh`` left at the
command (spec "Command-Queue (CQ)": a reserved opcode or func3, a set reserved bit, ``PSCV`` with
GVMA, ``IOFENCE.C.WSI`` while ``fctl.WSI=0``, ``IODIR.INVAL_PDT`` with no process directory
(PD8/PD17/PD20 all 0: the command names a structure that is not implemented, so it is
unsupported, as libiommu treats it), ``IODIR.INVAL_PDT`` with DV=0, or with a PID wider than
``capabilities`` supports (reference N.1.7),
ATS without ``capabilities.ATS``, custom opcodes, a DID wider than ``ddtp.iommu_mode``
allows). A fetch fault, or a fault on the ``IOFENCE.C`` AV store, sets ``cqmf`` with
``cqh`` left at the command.

Invalidations doom cache entries; a completed ``IOFENCE.C`` forgets the doomed ones
(see :mod:`iogate.cosim.model.caches`).

ATS (spec "IOMMU PCIe ATS commands", reference N.6.4 "ATS.INVAL completion and timeout").
Only dword0's reserved bits are checked (the PAYLOAD's '0' fields are not: N.10, as libiommu).
Both commands become messages in :attr:`CommandQueue.sent`, dicts with the fields of the RTL's
``ats_msg`` (``kind`` is the func3: 0 INVAL, 1 PRGR; ``rid``, ``dsv``, ``dseg``, ``pv``,
``pid``, ``payload`` as in the command; ``itag``). An ATS.INVAL takes the lowest free ITAG of
``ats_inval_tags``; with none free the queue waits at it (``cqh`` stays) until a completion or
a timeout frees one; once sent, ``cqh`` moves on. An ATS.PRGR completes when sent.
:meth:`CommandQueue.ats_completion` takes an Invalidation Completion: it matches RID, DSEG
only when the ATS.INVAL had DSV=1, and the ITAGs; an ITAG completes after CC completions (0
means 8); a completion naming any ITAG that is not outstanding for that requester, or none,
is dropped whole and counted in :attr:`CommandQueue.ats_dropped` (no record: the spec names
none). The model has no clock: the test bench calls :meth:`CommandQueue.ats_timeout` with the
ITAGs the implementation timed out. An ``IOFENCE.C`` waits (``cqh`` at it) while any ATS.INVAL
is outstanding (they are all earlier ones: commands run in order); then, if one timed out, it
sets ``cqcsr.cmd_to`` and stops at itself without completing (no AV store, no ``fence_w_ip``)
and the timeout is forgotten, so that the fence completes once software clears ``cmd_to``
(as libiommu).
"""

from iogate.hdl import bits
from iogate.hdl.formats import (
    ATS,
    CMD_SIZE,
    IODIR,
    IOFENCE,
    IOTINVAL,
    AtsFunc,
    IodirFunc,
    IofenceFunc,
    IotinvalFunc,
    Opcode,
)
from iogate.hdl.regs import CAPABILITIES, CQCSR, FCTL

from iogate.cosim.model.caches import PcCache, PdteCache
from iogate.cosim.model.ddt import device_id_fits
from iogate.cosim.model.memory import AccessFault

__all__ = ["CommandQueue", "IllegalCommand"]

_CQMF = bits.mask(CQCSR, "cqmf")
_CMD_ILL = bits.mask(CQCSR, "cmd_ill")
_CMD_TO = bits.mask(CQCSR, "cmd_to")
_FENCE_W_IP = bits.mask(CQCSR, "fence_w_ip")

_IOTINVAL_RSVD = bits.reserved_mask(IOTINVAL)
_IOFENCE_RSVD = bits.reserved_mask(IOFENCE)
_IODIR_RSVD = bits.reserved_mask(IODIR)
_ATS_RSVD = bits.reserved_mask(ATS)


class IllegalCommand(Exception):
    """The command is illegal or unsupported (``cmd_ill``); the message says why."""


class _Wait(Exception):
    """The command cannot run yet (no free ITAG, or a fence behind an ATS.INVAL): the queue
    stops at it without an error and runs it again when something changes."""


class _TimedOut(Exception):
    """An IOFENCE.C found an earlier ATS.INVAL timed out (``cmd_to``)."""


class CommandQueue:
    """Command consumer over a :class:`~iogate.cosim.model.registers.RegisterFile`.

    Parameters
    ----------
    regs : RegisterFile
    load, store : callable
        ``load(address, length) -> bytes`` and ``store(address, data)`` on system memory,
        raising :class:`AccessFault` (also beyond ``capabilities.PAS``).
    dc_cache : DcCache
    iotlb : Iotlb
    pc_cache, pdte_cache : PcCache, PdteCache
        The process-directory caches (fresh ones when not given).
    ats_inval_tags : int or None
        ATS.INVALs outstanding at once (``Config.ats_inval_tags``; ``None``: the register
        file's config).
    sent : list or None
        The list :attr:`sent` appends to (the caller's, when other sources share the
        ``ats_msg`` stream: :attr:`iogate.cosim.model.IommuModel.ats_messages`); a new one
        when None.

    Attributes
    ----------
    executed : int
        Commands completed.
    last_error : str or None
        Why the queue last stopped (for messages and tests).
    sent : list of dict
        ATS messages sent, in order (the RTL's ``ats_msg``).
    ats_dropped : int
        Invalidation Completions dropped (they matched no outstanding ATS.INVAL).
    waiting : str or None
        Why the queue waits at ``cqh`` (no free ITAG, a fence behind ATS.INVALs), if it does.
    """

    def __init__(self, regs, load, store, dc_cache, iotlb, pc_cache=None, pdte_cache=None,
                 ats_inval_tags=None, sent=None):
        self._regs = regs
        self._load = load
        self._store = store
        self._dcc = dc_cache
        self._iotlb = iotlb
        self._pcc = pc_cache if pc_cache is not None else PcCache()
        self._pdtec = pdte_cache if pdte_cache is not None else PdteCache()
        caps = bits.unpack(CAPABILITIES, regs.capabilities)
        self._ats = bool(caps["ats"])
        # The DID check of IODIR follows the DC format the IOMMU builds (reference N.3.2).
        self._extended = bool(caps["msi_flat"])
        # The widest PID the IOMMU supports, not any DC's mode (reference N.1.7).
        self._pid_bits = 20 if caps["pd20"] else 17 if caps["pd17"] else 8 if caps["pd8"] else 0
        self.executed = 0
        self.last_error = None
        self._ats_tags = (ats_inval_tags if ats_inval_tags is not None
                          else getattr(getattr(regs, "config", None), "ats_inval_tags", 4))
        self._itags = {}          # ITAG -> {"rid", "dsv", "dseg", "count"}
        self._timed_out = False
        self.sent = [] if sent is None else sent
        self.ats_dropped = 0
        self.waiting = None

    def process(self):
        """Run commands until the queue is empty, off or stopped; returns how many ran."""
        regs = self._regs
        ran = 0
        self.waiting = None
        while regs.cq_runnable() and regs.cqh != regs.cqt:
            address = regs.queue_base(regs.cqb) + regs.cqh * CMD_SIZE
            try:
                raw = int.from_bytes(self._load(address, CMD_SIZE), "little")
                self._execute(raw)
            except AccessFault as e:
                regs.cqcsr |= _CQMF
                self.last_error = f"memory fault: {e}"
                break
            except IllegalCommand as e:
                regs.cqcsr |= _CMD_ILL
                self.last_error = f"illegal command {raw:#034x}: {e}"
                break
            except _Wait as e:
                self.waiting = str(e)
                break
            except _TimedOut as e:
                regs.cqcsr |= _CMD_TO
                self.last_error = str(e)
                break
            regs.cqh = (regs.cqh + 1) % regs.queue_entries(regs.cqb)
            self.executed += 1
            ran += 1
        regs.update_ipsr()
        return ran

    def _execute(self, cmd):
        opcode = cmd & 0x7F
        func3 = (cmd >> 7) & 0x7
        if opcode == Opcode.IOTINVAL:
            self._iotinval(cmd, func3)
        elif opcode == Opcode.IOFENCE:
            self._iofence(cmd, func3)
        elif opcode == Opcode.IODIR:
            self._iodir(cmd, func3)
        elif opcode == Opcode.ATS and not self._ats:
            raise IllegalCommand("ATS without capabilities.ATS")
        elif opcode == Opcode.ATS:
            self._ats_command(cmd, func3)
        else:
            raise IllegalCommand(f"opcode {opcode} reserved or not supported")

    def _iotinval(self, cmd, func3):
        if func3 not in (IotinvalFunc.VMA, IotinvalFunc.GVMA):
            raise IllegalCommand(f"IOTINVAL func3 {func3} reserved")
        if cmd & _IOTINVAL_RSVD:
            raise IllegalCommand("IOTINVAL reserved bits set")
        f = bits.unpack(IOTINVAL, cmd)
        addr = f["addr"] << 12
        if func3 == IotinvalFunc.VMA:
            self._iotlb.inval_vma(f["gv"], f["gscid"], f["pscv"], f["pscid"], f["av"], addr)
        else:
            if f["pscv"]:
                raise IllegalCommand("IOTINVAL.GVMA with PSCV=1")
            self._iotlb.inval_gvma(f["gv"], f["gscid"], f["av"], addr)

    def _iofence(self, cmd, func3):
        if func3 != IofenceFunc.C:
            raise IllegalCommand(f"IOFENCE func3 {func3} reserved")
        if cmd & _IOFENCE_RSVD:
            raise IllegalCommand("IOFENCE.C reserved bits set")
        f = bits.unpack(IOFENCE, cmd)
        if f["wsi"] and not bits.get(FCTL, self._regs.fctl, "wsi"):
            raise IllegalCommand("IOFENCE.C.WSI while fctl.WSI=0")
        # Every earlier command has completed (the model runs them in order) but ATS.INVALs
        # still outstanding; PR/PW need nothing more since the model commits device
        # accesses at once.
        if self._itags:
            raise _Wait(f"IOFENCE.C behind ATS.INVAL ITAGs {sorted(self._itags)}")
        if self._timed_out:
            # Reported once: clearing cmd_to runs this fence again and it completes.
            self._timed_out = False
            raise _TimedOut("IOFENCE.C after an ATS.INVAL that timed out")
        if f["av"]:
            # A fault leaves cqh at the fence, which has not completed (spec
            # "IOMMU Command-queue Fence commands").
            self._store(f["addr"] << 2, f["data"].to_bytes(4, "little"))
        self._dcc.fence()
        self._pcc.fence()
        self._pdtec.fence()
        self._iotlb.fence()
        if f["wsi"]:
            self._regs.cqcsr |= _FENCE_W_IP

    def _iodir(self, cmd, func3):
        if func3 == IodirFunc.INVAL_PDT:
            self._inval_pdt(cmd)
            return
        if func3 != IodirFunc.INVAL_DDT:
            raise IllegalCommand(f"IODIR func3 {func3} reserved")
        if cmd & _IODIR_RSVD:
            raise IllegalCommand("IODIR reserved bits set")
        f = bits.unpack(IODIR, cmd)
        if f["pid"]:
            raise IllegalCommand("IODIR.INVAL_DDT with PID set (reserved)")
        if f["dv"]:
            mode = self._regs.iommu_mode
            if mode.levels and not device_id_fits(mode, f["did"], self._extended):
                raise IllegalCommand(f"IODIR.INVAL_DDT DID {f['did']:#x} wider than "
                                     f"{mode.name}")
            self._dcc.inval_ddt(f["did"])
            self._pcc.inval_ddt(f["did"])
            self._pdtec.inval_ddt(f["did"])
        else:
            self._dcc.inval_ddt(None)
            self._pcc.inval_ddt(None)
            self._pdtec.inval_ddt(None)

    def _inval_pdt(self, cmd):
        """``IODIR.INVAL_PDT`` (spec "IOMMU directory cache invalidation commands"; reference
        N.1.7): the leaf PC of (DID, PID) only; non-leaf PDTEs and IOTLB entries stay."""
        if not self._pid_bits:
            raise IllegalCommand("IODIR.INVAL_PDT without a process directory "
                                 "(capabilities.PD8/PD17/PD20 = 0)")
        if cmd & _IODIR_RSVD:
            raise IllegalCommand("IODIR reserved bits set")
        f = bits.unpack(IODIR, cmd)
        if not f["dv"]:
            raise IllegalCommand("IODIR.INVAL_PDT with DV=0")
        mode = self._regs.iommu_mode
        if mode.levels and not device_id_fits(mode, f["did"], self._extended):
            raise IllegalCommand(f"IODIR.INVAL_PDT DID {f['did']:#x} wider than {mode.name}")
        if f["pid"] >> self._pid_bits:
            raise IllegalCommand(f"IODIR.INVAL_PDT PID {f['pid']:#x} wider than "
                                 f"{self._pid_bits} bits")
        self._pcc.inval_pdt(f["did"], f["pid"])

    # -- ATS (reference N.6.4) -------------------------------------------------------------

    def _ats_command(self, cmd, func3):
        if func3 not in (AtsFunc.INVAL, AtsFunc.PRGR):
            raise IllegalCommand(f"ATS func3 {func3} reserved")
        if cmd & _ATS_RSVD:
            raise IllegalCommand("ATS reserved bits set")
        f = bits.unpack(ATS, cmd)
        message = {"kind": int(func3), "rid": f["rid"], "dsv": f["dsv"], "dseg": f["dseg"],
                   "pv": f["pv"], "pid": f["pid"], "payload": f["payload"], "itag": 0}
        if func3 == AtsFunc.INVAL:
            free = [i for i in range(self._ats_tags) if i not in self._itags]
            if not free:
                raise _Wait(f"ATS.INVAL: all {self._ats_tags} ITAGs outstanding")
            message["itag"] = free[0]
            self._itags[free[0]] = {"rid": f["rid"], "dsv": f["dsv"], "dseg": f["dseg"],
                                    "count": 0}
        self.sent.append(message)

    @property
    def ats_outstanding(self):
        """The ITAGs of the ATS.INVALs outstanding (the RTL's ``ats_status.busy``), sorted."""
        return sorted(self._itags)

    def ats_completion(self, rid, dseg, itag_vector, cc=1):
        """An Invalidation Completion from ``rid`` (segment ``dseg``) for the ITAGs set in
        ``itag_vector``, with Completion Count ``cc`` (0 means 8); then runs the queue, which
        may have waited for it. Returns whether it was accepted (False: dropped)."""
        named = [i for i in range(32) if itag_vector >> i & 1]

        def matches(i):
            t = self._itags.get(i)
            return t is not None and t["rid"] == rid and (not t["dsv"] or t["dseg"] == dseg)
        if not named or not all(matches(i) for i in named):
            self.ats_dropped += 1
            return False
        for i in named:
            t = self._itags[i]
            t["count"] = (t["count"] + 1) & 7
            if t["count"] == cc & 7:
                del self._itags[i]
        self.process()
        return True

    def ats_timeout(self, itag_vector):
        """The implementation's timer expired for the ITAGs set in ``itag_vector`` (the RTL's
        ``ats_status.expired``): they are forgotten and the next IOFENCE.C reports
        ``cmd_to``; then runs the queue.

        Raises
        ------
        ValueError
            If an ITAG named is not outstanding (the test bench and the model disagree).
        """
        named = [i for i in range(32) if itag_vector >> i & 1]
        if not named or any(i not in self._itags for i in named):
            raise ValueError(f"ats_timeout({itag_vector:#x}): outstanding ITAGs are "
                             f"{sorted(self._itags)}")
        for i in named:
            del self._itags[i]
        self._timed_out = True
        self.process()
