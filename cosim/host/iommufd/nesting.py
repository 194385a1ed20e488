"""What a guest may hand the host for nested translation, and how the host rewrites it.

A nested HWPT carries the guest's device-context fields (RISC-V IOMMU spec "Device-context fields":
``tc``, ``ta``, ``fsc``); the host validates them, keeps its own ``iohgatp`` (the nest parent's
second stage and GSCID) and its own PSCID. A guest invalidation is a raw 16-byte
command (spec "Command-Queue (CQ)"); only ``IOTINVAL.VMA`` is a guest's business (its first stage),
and the host makes it name the guest's VM and address space before it reaches the queue:
``GV=1`` with the parent's GSCID and, when ``PSCV=1``, the HWPT's PSCID. With ``PSCV=0``
the guest meant all its address spaces, global mappings included; ``GV=1`` keeps that
inside its own VM (spec "IOMMU Page-Table cache invalidation commands", table "IOTINVAL.VMA
operands").

A guest that owns a process directory (``tc.PDTV=1``, ``fsc`` its ``pdtp`` at a guest
physical address: seed 004's vSVA case) chooses its PSCIDs itself, in its process contexts,
so its ``IOTINVAL.VMA`` keeps them and only gains ``GV=1`` and the GSCID (one VM's PSCIDs
never meet another's). Its ``IODIR.INVAL_PDT`` (a PC changed) and ``IODIR.INVAL_DDT`` (a
non-leaf PDTE changed: spec "Changing process directory table entry") name a device_id the
guest cannot know; the host sends one command per device attached to the HWPT, ``DV=1``
with that device's ID, so a guest never reaches beyond its devices (a guest's ``DV=0``
becomes the same per-device commands).

Errors are iommufd's: a reserved bit or an impossible value is ``-EINVAL``, a defined
field with a value the host does not support is ``-EOPNOTSUPP``.
"""

import errno

from iogate.hdl import bits
from iogate.hdl.formats import (
    IODIR,
    IOSATP,
    IOTINVAL,
    PDTP,
    TA,
    TC,
    IodirFunc,
    IosatpMode,
    IotinvalFunc,
    Opcode,
    PdtpMode,
)

from iogate.firmware import commands

__all__ = [
    "check_guest_context", "rewrite_invalidation", "rewrite_pdt_invalidation", "NestingError",
]

# The tc bits a guest may set: V (required) and DTF. Every other defined bit asks for a
# feature this host does not pass through (ATS, PRI, T2GPA, a process directory, A/D
# updates, big-endian or 32-bit contexts).
_TC_UNSUPPORTED = ("en_ats", "en_pri", "t2gpa", "prpr", "gade", "sade", "sbe", "sxl")
_TC_RESERVED = bits.reserved_mask(TC) | bits.mask(TC, "_custom0")
_CMD_RESERVED = bits.reserved_mask(IOTINVAL)
_IODIR_RESERVED = bits.reserved_mask(IODIR)


class NestingError(Exception):
    """A guest value the host refuses; ``errno`` is the positive errno to return."""

    def __init__(self, errno_, text):
        super().__init__(text)
        self.errno = errno_


def check_guest_context(tc, ta, fsc, *, sv48, pdt_modes=()):
    """Raise :class:`NestingError` unless the guest's DC fields can be used.

    Parameters
    ----------
    tc, ta, fsc : int
        The guest's ``DC.tc``, ``DC.ta`` and ``DC.fsc`` (``iosatp``, a guest PPN; with
        ``tc.PDTV=1`` the ``pdtp`` of the guest's process directory, a guest PPN).
    sv48 : bool
        The IOMMU offers Sv48 (Sv39 is always there).
    pdt_modes : collection of PdtpMode
        The process-directory modes the IOMMU offers; none refuses ``PDTV``.
    """
    if tc & _TC_RESERVED:
        raise NestingError(errno.EINVAL, f"tc has reserved bits set: {tc & _TC_RESERVED:#x}")
    for name in _TC_UNSUPPORTED + (() if pdt_modes else ("pdtv", "dpe")):
        if bits.get(TC, tc, name):
            raise NestingError(errno.EOPNOTSUPP, f"tc.{name} is not supported")
    if not bits.get(TC, tc, "v"):
        raise NestingError(errno.EINVAL, "tc.V must be 1 (a blocked device attaches no "
                                         "nested HWPT)")
    if ta & bits.reserved_mask(TA):
        raise NestingError(errno.EINVAL, "ta has reserved bits set")
    if bits.get(TC, tc, "pdtv"):
        _check_guest_pdtp(fsc, pdt_modes)
        return
    if bits.get(TC, tc, "dpe"):
        # Spec "Device-context configuration checks": DPE without PDTV is cause 259.
        raise NestingError(errno.EINVAL, "tc.DPE needs tc.PDTV")
    if fsc & bits.reserved_mask(IOSATP):
        raise NestingError(errno.EINVAL, "fsc has reserved bits set")
    mode = bits.get(IOSATP, fsc, "mode")
    if mode == IosatpMode.BARE:
        if bits.get(IOSATP, fsc, "ppn"):
            raise NestingError(errno.EINVAL, "fsc.PPN must be 0 when fsc.MODE is Bare")
    elif mode == IosatpMode.SV57 or (mode == IosatpMode.SV48 and not sv48):
        raise NestingError(errno.EOPNOTSUPP, f"fsc.MODE {mode} is not supported")
    elif mode not in (IosatpMode.SV39, IosatpMode.SV48):
        raise NestingError(errno.EINVAL, f"fsc.MODE {mode} is a reserved encoding")


def _check_guest_pdtp(pdtp, modes):
    if pdtp & bits.reserved_mask(PDTP):
        raise NestingError(errno.EINVAL, "fsc (pdtp) has reserved bits set")
    value = bits.get(PDTP, pdtp, "mode")
    try:
        mode = PdtpMode(value)
    except ValueError:
        raise NestingError(errno.EINVAL, f"pdtp.MODE {value} is a reserved encoding") from None
    if mode == PdtpMode.BARE:
        if bits.get(PDTP, pdtp, "ppn"):
            raise NestingError(errno.EINVAL, "pdtp.PPN must be 0 when pdtp.MODE is Bare")
    elif mode not in modes:
        raise NestingError(errno.EOPNOTSUPP, f"pdtp.MODE {mode.name} is not supported")


def rewrite_pdt_invalidation(raw, *, gscid, device_ids, process_id_bits):
    """The commands to submit for ``raw`` from a guest that owns its process directory.

    ``IOTINVAL.VMA`` keeps the guest's PSCV/PSCID/AV/ADDR and gets ``GV=1`` with ``gscid``;
    ``IODIR.INVAL_PDT`` and ``IODIR.INVAL_DDT`` become one ``DV=1`` command per device in
    ``device_ids`` (sorted), ``INVAL_PDT`` keeping the guest's PID.

    Raises
    ------
    NestingError
        ``EOPNOTSUPP`` for other commands; ``EINVAL`` for reserved bits, an
        ``INVAL_PDT`` with ``DV=0`` or a PID wider than ``process_id_bits`` (each would be
        ``cmd_ill`` on the IOMMU, spec "IOMMU directory cache invalidation commands").
    """
    cmd = int.from_bytes(bytes(raw[:16]), "little")
    opcode, func3 = bits.get(IODIR, cmd, "opcode"), bits.get(IODIR, cmd, "func3")
    if opcode == Opcode.IOTINVAL and func3 == IotinvalFunc.VMA:
        if cmd & _CMD_RESERVED:
            raise NestingError(errno.EINVAL, "the command has reserved bits set")
        return [bits.put(IOTINVAL, bits.put(IOTINVAL, cmd, "gv", 1), "gscid", gscid)]
    if opcode != Opcode.IODIR or func3 not in (IodirFunc.INVAL_DDT, IodirFunc.INVAL_PDT):
        raise NestingError(errno.EOPNOTSUPP, "only IOTINVAL.VMA, IODIR.INVAL_PDT and "
                                             "IODIR.INVAL_DDT are accepted from a guest")
    if cmd & _IODIR_RESERVED:
        raise NestingError(errno.EINVAL, "the command has reserved bits set")
    if func3 == IodirFunc.INVAL_DDT:
        if bits.get(IODIR, cmd, "pid"):
            raise NestingError(errno.EINVAL, "IODIR.INVAL_DDT has a PID (reserved)")
        return [commands.iodir_inval_ddt(did=did) for did in sorted(device_ids)]
    if not bits.get(IODIR, cmd, "dv"):
        raise NestingError(errno.EINVAL, "IODIR.INVAL_PDT needs DV=1")
    pid = bits.get(IODIR, cmd, "pid")
    if pid >> process_id_bits:
        raise NestingError(errno.EINVAL, f"PID {pid:#x} is wider than {process_id_bits} bits")
    return [commands.iodir_inval_pdt(did=did, pid=pid) for did in sorted(device_ids)]


def rewrite_invalidation(raw, *, pscid, gscid):
    """The command to submit for the guest's 16-byte command ``raw``.

    Raises
    ------
    NestingError
        ``EOPNOTSUPP`` for anything but ``IOTINVAL.VMA``, ``EINVAL`` for reserved bits
        (which would make the IOMMU stop its queue with ``cmd_ill``).
    """
    cmd = int.from_bytes(bytes(raw[:16]), "little")
    if (bits.get(IOTINVAL, cmd, "opcode") != Opcode.IOTINVAL
            or bits.get(IOTINVAL, cmd, "func3") != IotinvalFunc.VMA):
        raise NestingError(errno.EOPNOTSUPP, "only IOTINVAL.VMA is accepted from a guest")
    if cmd & _CMD_RESERVED:
        raise NestingError(errno.EINVAL, "the command has reserved bits set")
    cmd = bits.put(IOTINVAL, cmd, "gv", 1)
    cmd = bits.put(IOTINVAL, cmd, "gscid", gscid)
    if bits.get(IOTINVAL, cmd, "pscv"):
        cmd = bits.put(IOTINVAL, cmd, "pscid", pscid)
    return cmd
