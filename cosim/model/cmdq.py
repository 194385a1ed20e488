"""The command queue: fetching and executing commands (RISC-V IOMMU spec "Command-Queue (CQ)";
``cqb``, ``cqh``, ``cqt``, ``cqcsr``).

Commands are fetched at ``cqb.PPN*4096 + cqh*16`` while ``cqon`` is 1, no stopping error
bit (``cqmf``, ``cmd_to``, ``cmd_ill``) is set and ``cqh != cqt``. This implementation
offers ``IOTINVAL.VMA``, ``IOTINVAL.GVMA``, ``IOFENCE.C``, ``IODIR.INVAL_DDT`` and, with
process contexts (``capabilities.PD8``), ``IODIR.INVAL_PDT``.
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
"""

from iogate.hdl import bits
from iogate.hdl.formats import (
    CMD_SIZE,
    IODIR,
    IOFENCE,
    IOTINVAL,
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
_FENCE_W_IP = bits.mask(CQCSR, "fence_w_ip")

_IOTINVAL_RSVD = bits.reserved_mask(IOTINVAL)
_IOFENCE_RSVD = bits.reserved_mask(IOFENCE)
_IODIR_RSVD = bits.reserved_mask(IODIR)


class IllegalCommand(Exception):
    """The command is illegal or unsupported (``cmd_ill``); the message says why."""


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

    Attributes
    ----------
    executed : int
        Commands completed.
    last_error : str or None
        Why the queue last stopped (for messages and tests).
    """

    def __init__(self, regs, load, store, dc_cache, iotlb, pc_cache=None, pdte_cache=None):
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

    def process(self):
        """Run commands until the queue is empty, off or stopped; returns how many ran."""
        regs = self._regs
        ran = 0
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
        # Every earlier command has completed (the model runs them in order); PR/PW need
        # nothing more since the model commits device accesses at once.
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
