"""Building the 16-byte command-queue commands.

RISC-V IOMMU spec "Command-Queue (CQ)": a command is two little-endian doublewords (``fctl.BE=0``,
which the driver keeps), ``opcode`` in dword0[6:0] and ``func3`` in dword0[9:7]. The bit positions
come from the layouts in :mod:`iogate.hdl.formats`; each builder takes the operands it needs and
leaves every reserved bit 0, so the IOMMU has no reason to set ``cqcsr.cmd_ill``. An operand
passed as ``None`` is "not valid": its valid bit (``AV``, ``PSCV``, ``GV``, ``DV``) is 0.
"""

from iogate.hdl import bits
from iogate.hdl.formats import (
    ATS,
    ATS_INVAL_PAYLOAD,
    ATS_PRGR_PAYLOAD,
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

__all__ = [
    "iotinval_vma", "iotinval_gvma", "iofence_c", "iodir_inval_ddt", "iodir_inval_pdt",
    "ats_inval", "ats_prgr", "route", "to_bytes", "from_bytes",
]

_PSCID_MAX = (1 << 20) - 1
_GSCID_MAX = (1 << 16) - 1
_DID_MAX = (1 << 24) - 1
_PID_MAX = (1 << 20) - 1


def _check_id(name, value, maximum):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum:#x}, not {value:#x}")


def _check_address(name, value, alignment):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not 0 <= value < 1 << 64 or value % alignment:
        raise ValueError(f"{name} must be a {alignment}-byte aligned 64-bit address, "
                         f"not {value:#x}")


def iotinval_vma(*, pscid=None, gscid=None, addr=None):
    """``IOTINVAL.VMA``: invalidate cached first-stage translations.

    Spec "IOMMU Page-Table cache invalidation commands".

    Parameters
    ----------
    pscid : int or None
        Process soft-context ID; sets ``PSCV=1``. ``None`` covers every address space.
    gscid : int or None
        Guest soft-context ID; sets ``GV=1``. ``None`` means host address spaces (second
        stage Bare).
    addr : int or None
        A 4 KiB-aligned IOVA; sets ``AV=1`` (leaf entries of that IOVA only).

    Returns
    -------
    int
        The command as a 128-bit integer (dword0 in bits 63:0).
    """
    word = bits.pack(IOTINVAL, opcode=Opcode.IOTINVAL, func3=IotinvalFunc.VMA)
    if pscid is not None:
        _check_id("pscid", pscid, _PSCID_MAX)
        word = bits.put(IOTINVAL, bits.put(IOTINVAL, word, "pscv", 1), "pscid", pscid)
    return _gscid_addr(word, gscid, addr)


def iotinval_gvma(*, gscid=None, addr=None):
    """``IOTINVAL.GVMA``: invalidate cached second-stage translations.

    Spec "IOMMU Page-Table cache invalidation commands".

    Parameters
    ----------
    gscid : int or None
        Guest soft-context ID; sets ``GV=1``. ``None`` covers all VMs (``AV`` ignored).
    addr : int or None
        A 4 KiB-aligned guest physical address; sets ``AV=1`` (that GPA's leaf entry).

    Raises
    ------
    ValueError
        If ``addr`` is given without ``gscid``: with ``GV=0`` the spec ignores ``AV``,
        so the caller's intent would be lost.
    """
    if addr is not None and gscid is None:
        raise ValueError("IOTINVAL.GVMA with an address needs a gscid (AV is ignored when GV=0)")
    word = bits.pack(IOTINVAL, opcode=Opcode.IOTINVAL, func3=IotinvalFunc.GVMA)
    return _gscid_addr(word, gscid, addr)


def _gscid_addr(word, gscid, addr):
    if gscid is not None:
        _check_id("gscid", gscid, _GSCID_MAX)
        word = bits.put(IOTINVAL, bits.put(IOTINVAL, word, "gv", 1), "gscid", gscid)
    if addr is not None:
        _check_address("addr", addr, 4096)
        word = bits.put(IOTINVAL, bits.put(IOTINVAL, word, "av", 1), "addr", addr >> 12)
    return word


def iofence_c(*, addr=None, data=0, pr=False, pw=False, wsi=False):
    """``IOFENCE.C``: complete every earlier command (spec "IOMMU Command-queue Fence commands").

    Parameters
    ----------
    addr : int or None
        A 4-byte-aligned address; sets ``AV=1``: the IOMMU stores ``data`` (4 bytes) there
        when the fence completes.
    data : int
        The 32-bit value to store.
    pr, pw : bool
        Also commit earlier device reads / writes the IOMMU already processed.
    wsi : bool
        Set ``cqcsr.fence_w_ip`` on completion (only meaningful with ``fctl.WSI=1``).
    """
    _check_id("data", data, (1 << 32) - 1)
    word = bits.pack(IOFENCE, opcode=Opcode.IOFENCE, func3=IofenceFunc.C,
                     pr=bool(pr), pw=bool(pw), wsi=bool(wsi), data=data)
    if addr is not None:
        _check_address("addr", addr, 4)
        word = bits.put(IOFENCE, bits.put(IOFENCE, word, "av", 1), "addr", addr >> 2)
    return word


def iodir_inval_ddt(*, did=None):
    """``IODIR.INVAL_DDT``: invalidate cached device-directory entries.

    Spec "IOMMU directory cache invalidation commands".

    Parameters
    ----------
    did : int or None
        A device_id; sets ``DV=1`` (that device's leaf entry). ``None`` invalidates every
        cached DDT and PDT entry.
    """
    word = bits.pack(IODIR, opcode=Opcode.IODIR, func3=IodirFunc.INVAL_DDT)
    if did is not None:
        _check_id("did", did, _DID_MAX)
        word = bits.put(IODIR, bits.put(IODIR, word, "dv", 1), "did", did)
    return word


def iodir_inval_pdt(*, did, pid):
    """``IODIR.INVAL_PDT``: invalidate the cached process context of (``did``, ``pid``).

    Spec "IOMMU directory cache invalidation commands": ``DV`` must be 1 (else the IOMMU
    sets ``cmd_ill``), so both operands are required. It reaches only the leaf process
    context, neither non-leaf PDTEs nor IOTLB entries: a changed PC also needs an
    ``IOTINVAL.VMA`` (:func:`iogate.firmware.invalidate.pc_change`).

    Parameters
    ----------
    did : int
        The device_id (24 bits).
    pid : int
        The process_id (20 bits).
    """
    _check_id("did", did, _DID_MAX)
    _check_id("pid", pid, _PID_MAX)
    word = bits.pack(IODIR, opcode=Opcode.IODIR, func3=IodirFunc.INVAL_PDT, dv=1)
    word = bits.put(IODIR, word, "did", did)
    return bits.put(IODIR, word, "pid", pid)


def _ats_dword0(func3, rid, pv, pid, dsv, dseg):
    _check_id("rid", rid, 0xFFFF)
    _check_id("pid", pid, _PID_MAX)
    _check_id("dseg", dseg, 0xFF)
    return bits.pack(ATS, opcode=Opcode.ATS, func3=func3, rid=rid, pv=bool(pv), pid=pid,
                     dsv=bool(dsv), dseg=dseg)


def ats_inval(rid, addr, size=4096, g=False, pv=False, pid=0, dsv=False, dseg=0):
    """``ATS.INVAL``: send a PCIe Invalidate Request to the device ``rid``'s ATC.

    Spec "IOMMU PCIe ATS commands" (reference N.6.4): the PAYLOAD is the Invalidate Request's
    body, G [0], S [11] and the Untranslated Address [63:12]; a range wider than 4 KiB is
    NAPOT-encoded with S=1 (reference N.6.2: from bit 12 up the address bits are 1 and the
    first 0 at bit 12+X gives 2^(X+1) * 4 KiB; the whole space is bit 63 = 0, the rest 1).
    The command completes when the device answers or times out: follow it with an
    ``IOFENCE.C`` to wait for it.

    Parameters
    ----------
    rid : int
        The device's routing ID (bus:dev.fn, 16 bits).
    addr : int
        The Untranslated Address of the range, aligned to ``size``.
    size : int
        The range in bytes: a power of two from 4096 to ``2**64``.
    g : bool
        Global Invalidate (with a PASID: the Global entries of every PASID too).
    pv, pid : bool, int
        The request carries PASID ``pid`` (20 bits).
    dsv, dseg : bool, int
        ``dseg`` (8 bits) is the destination segment.
    """
    if not isinstance(size, int) or size < 4096 or size > 1 << 64 or size & (size - 1):
        raise ValueError(f"size must be a power of two from 4096 to 2**64, not {size!r}")
    _check_address("addr", addr, size if size < 1 << 64 else 1)
    if size == 1 << 64 and addr:
        raise ValueError(f"addr must be 0 for the whole address space, not {addr:#x}")
    napot = size > 4096
    payload = bits.pack(ATS_INVAL_PAYLOAD, g=bool(g), s=napot,
                        addr=(addr | (size // 2 - 1 if napot else 0)) >> 12)
    word = _ats_dword0(AtsFunc.INVAL, rid, pv, pid, dsv, dseg)
    return bits.put(ATS, word, "payload", payload)


def ats_prgr(rid, prg_index, response_code, pv=False, pid=0, dsv=False, dseg=0):
    """``ATS.PRGR``: send a PCIe PRG Response to the device ``rid``.

    Spec "IOMMU PCIe ATS commands" (reference N.6.4): the PAYLOAD carries the PRG Index
    [40:32] and the Response Code [47:44] (0 Success, 1 Invalid Request, 0xF Response
    Failure); the IOMMU fills in the Destination Device ID from ``rid``. The response
    carries a PASID (``pv``) when the device's DC asks for one (``DC.tc.PRPR``) and the
    Page Request had one.

    Parameters
    ----------
    rid : int
        The device's routing ID (16 bits).
    prg_index : int
        The Page Request Group Index (9 bits) of the Page Request answered.
    response_code : int
        The Response Code (4 bits).
    pv, pid : bool, int
        The response carries PASID ``pid`` (20 bits).
    dsv, dseg : bool, int
        ``dseg`` (8 bits) is the destination segment.
    """
    _check_id("prg_index", prg_index, 0x1FF)
    _check_id("response_code", response_code, 0xF)
    payload = bits.pack(ATS_PRGR_PAYLOAD, prg_index=prg_index, response_code=response_code)
    word = _ats_dword0(AtsFunc.PRGR, rid, pv, pid, dsv, dseg)
    return bits.put(ATS, word, "payload", payload)


def route(device_id):
    """The ATS commands' destination fields for ``device_id`` (reference N.6.4): ``rid`` is
    ``device_id[15:0]``; bits above 15 are the segment, sent in DSEG with ``DSV=1`` (an
    IOMMU that spans segments); a 16-bit ``device_id`` leaves ``DSV=0``.

    Returns
    -------
    dict
        ``rid``, ``dsv`` and ``dseg``, the keyword arguments of :func:`ats_inval` and
        :func:`ats_prgr`.
    """
    _check_id("device_id", device_id, _DID_MAX)
    return {"rid": device_id & 0xFFFF, "dsv": bool(device_id >> 16), "dseg": device_id >> 16}


def to_bytes(command):
    """The 16 bytes of ``command`` as stored in the queue (two little-endian doublewords)."""
    return command.to_bytes(CMD_SIZE, "little")


def from_bytes(raw):
    """The 128-bit command stored in ``raw`` (16 bytes)."""
    if len(raw) != CMD_SIZE:
        raise ValueError(f"a command is {CMD_SIZE} bytes, not {len(raw)}")
    return int.from_bytes(raw, "little")
