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

Errors are iommufd's: a reserved bit or an impossible value is ``-EINVAL``, a defined
field with a value the host does not support is ``-EOPNOTSUPP``.
"""

import errno

from iogate.hdl import bits
from iogate.hdl.formats import IOSATP, IOTINVAL, TA, TC, IosatpMode, IotinvalFunc, Opcode

__all__ = ["check_guest_context", "rewrite_invalidation", "NestingError"]

# The tc bits a guest may set: V (required) and DTF. Every other defined bit asks for a
# feature this host does not pass through (ATS, PRI, T2GPA, a process directory, A/D
# updates, big-endian or 32-bit contexts).
_TC_UNSUPPORTED = ("en_ats", "en_pri", "t2gpa", "pdtv", "prpr", "gade", "sade", "dpe",
                   "sbe", "sxl")
_TC_RESERVED = bits.reserved_mask(TC) | bits.mask(TC, "_custom0")
_CMD_RESERVED = bits.reserved_mask(IOTINVAL)


class NestingError(Exception):
    """A guest value the host refuses; ``errno`` is the positive errno to return."""

    def __init__(self, errno_, text):
        super().__init__(text)
        self.errno = errno_


def check_guest_context(tc, ta, fsc, *, sv48):
    """Raise :class:`NestingError` unless the guest's DC fields can be used.

    Parameters
    ----------
    tc, ta, fsc : int
        The guest's ``DC.tc``, ``DC.ta`` and ``DC.fsc`` (``iosatp``, a guest PPN).
    sv48 : bool
        The IOMMU offers Sv48 (Sv39 is always there).
    """
    if tc & _TC_RESERVED:
        raise NestingError(errno.EINVAL, f"tc has reserved bits set: {tc & _TC_RESERVED:#x}")
    for name in _TC_UNSUPPORTED:
        if bits.get(TC, tc, name):
            raise NestingError(errno.EOPNOTSUPP, f"tc.{name} is not supported")
    if not bits.get(TC, tc, "v"):
        raise NestingError(errno.EINVAL, "tc.V must be 1 (a blocked device attaches no "
                                         "nested HWPT)")
    if ta & bits.reserved_mask(TA):
        raise NestingError(errno.EINVAL, "ta has reserved bits set")
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
