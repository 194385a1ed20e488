"""The device directory: locating a device context and checking it.

RISC-V IOMMU spec "Process to locate the Device-context", "Non-leaf DDT entry" and
"Device-context configuration checks". Only the base format (32-byte
DC, ``capabilities.MSI_FLAT=0``) exists here, so ``device_id`` splits as
:meth:`iogate.hdl.regs.IommuMode.ddi` says: DDI[0] = bits 6:0, DDI[1] = bits 15:7 and
DDI[2] = bits 23:16.
"""

from iogate.hdl import bits
from iogate.hdl.formats import DC_SIZE, DDTE, IOHGATP, IOSATP, TA, TC, Cause
from iogate.hdl.regs import CAPABILITIES, IommuMode

from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.walk import FIRST_STAGE, SECOND_STAGE, TranslationFault

__all__ = ["DeviceContext", "locate", "misconfiguration", "device_id_fits"]

_DDTE_V = bits.mask(DDTE, "v")
_DDTE_PPN_SHIFT, _ = bits.field_range(DDTE, "ppn")
_DDTE_PPN_MASK = bits.mask(DDTE, "ppn") >> _DDTE_PPN_SHIFT
_DDTE_RSVD = bits.reserved_mask(DDTE)
_TC_V = bits.mask(TC, "v")


def device_id_fits(mode, device_id):
    """Whether ``device_id`` is not wider than directory mode ``mode`` allows (spec "Process to
    translate an IOVA")."""
    return not device_id >> IommuMode(mode).device_id_bits


class DeviceContext:
    """A located, valid, well-formed device context (spec "Device-context fields").

    Attributes
    ----------
    words : tuple of int
        The four doublewords ``tc``, ``iohgatp``, ``ta``, ``fsc`` as read.
    dtf : bool
        ``tc.DTF``: translation faults are not reported (spec "Fault/Event-Queue (FQ)").
    pdtv, dpe : bool
        ``tc.PDTV`` (``fsc`` is a ``pdtp``) and ``tc.DPE``.
    sxl : int
        ``tc.SXL``: which encodings a process context's ``fsc.MODE`` uses.
    g_mode, g_root, gscid : int
        ``iohgatp`` MODE (0 Bare, 8 Sv39x4, 9 Sv48x4, 10 Sv57x4), root PPN and GSCID.
    s_mode, s_root, pscid : int
        ``iosatp`` MODE (0 Bare, 8 Sv39, 9 Sv48, 10 Sv57) and root PPN when ``PDTV=0``, and
        ``ta.PSCID``; with ``PDTV=1`` ``s_mode``/``s_root`` are the ``pdtp`` MODE and PPN
        (``ta.PSCID`` is then ignored: each PC has its own, reference N.1.1).
    """

    __slots__ = ("words", "dtf", "pdtv", "dpe", "sxl", "g_mode", "g_root", "gscid",
                 "s_mode", "s_root", "pscid")

    def __init__(self, words):
        tc, iohgatp, ta, fsc = words
        self.words = words
        self.dtf = bool(bits.get(TC, tc, "dtf"))
        self.pdtv = bool(bits.get(TC, tc, "pdtv"))
        self.dpe = bool(bits.get(TC, tc, "dpe"))
        self.sxl = bits.get(TC, tc, "sxl")
        self.g_mode = bits.get(IOHGATP, iohgatp, "mode")
        self.g_root = bits.get(IOHGATP, iohgatp, "ppn")
        self.gscid = bits.get(IOHGATP, iohgatp, "gscid")
        self.s_mode = bits.get(IOSATP, fsc, "mode")
        self.s_root = bits.get(IOSATP, fsc, "ppn")
        self.pscid = bits.get(TA, ta, "pscid")

    def __eq__(self, other):
        return isinstance(other, DeviceContext) and self.words == other.words

    def __hash__(self):
        return hash(self.words)

    def __repr__(self):
        return "DeviceContext(" + ", ".join(f"{w:#x}" for w in self.words) + ")"


def misconfiguration(words, caps, fctl_be, fctl_gxl, gxl_writable=False, be_writable=False):
    """The first rule of spec "Device-context configuration checks" that the DC ``words`` (with
    ``tc.V=1``) breaks, or None.

    Parameters
    ----------
    words : tuple of int
        ``tc``, ``iohgatp``, ``ta``, ``fsc``.
    caps : dict
        ``capabilities`` unpacked with :func:`iogate.hdl.bits.unpack`.
    fctl_be, fctl_gxl : int
        Current ``fctl.BE`` and ``fctl.GXL``.
    gxl_writable, be_writable : bool
        Whether those ``fctl`` fields are writable (they decide the legal SXL/SBE values).

    Returns
    -------
    str or None
        A short description of the broken rule, for messages and tests.
    """
    tc, iohgatp, ta, fsc = words
    t = bits.unpack(TC, tc)
    if tc & bits.reserved_mask(TC):
        return "tc reserved bits set"
    if ta & bits.reserved_mask(TA):
        # RCID/MCID are reserved too without capabilities.QOSID (spec "Device-context
        # configuration checks", DC.ta).
        return "ta reserved bits set"
    if fsc & bits.reserved_mask(IOSATP):
        # The same bits 59:44 are reserved in a pdtp (reference N.1.1).
        return "fsc reserved bits set"
    if not caps["ats"] and (t["en_ats"] or t["en_pri"] or t["prpr"]):
        return "EN_ATS/EN_PRI/PRPR without capabilities.ATS"
    if not t["en_ats"] and t["t2gpa"]:
        return "T2GPA without EN_ATS"
    if not t["en_ats"] and t["en_pri"]:
        return "EN_PRI without EN_ATS"
    if not t["en_pri"] and t["prpr"]:
        return "PRPR without EN_PRI"
    if not caps["t2gpa"] and t["t2gpa"]:
        return "T2GPA without capabilities.T2GPA"
    g_mode = bits.get(IOHGATP, iohgatp, "mode")
    if t["t2gpa"] and g_mode == 0:
        return "T2GPA with iohgatp Bare"
    s_mode = bits.get(IOSATP, fsc, "mode")
    if t["pdtv"]:
        # pdtp.MODE replaces the iosatp checks (reference N.1.1): reserved 4-13, custom
        # 14-15 and modes whose capability is 0 are all misconfigurations.
        supported = {0: True, 1: caps["pd8"], 2: caps["pd17"], 3: caps["pd20"]}
        if not supported.get(s_mode, False):
            return f"pdtp.MODE {s_mode} not supported"
    else:
        if t["sxl"]:
            supported = {0: True, 8: caps["sv32"]}
        else:
            supported = {0: True, 8: caps["sv39"], 9: caps["sv48"], 10: caps["sv57"]}
        if not supported.get(s_mode, False):
            return f"iosatp.MODE {s_mode} not valid or not supported"
        if t["dpe"]:
            return "DPE with PDTV=0"
    if fctl_gxl:
        supported = {0: True, 8: caps["sv32x4"]}
    else:
        supported = {0: True, 8: caps["sv39x4"], 9: caps["sv48x4"], 10: caps["sv57x4"]}
    if not supported.get(g_mode, False):
        return f"iohgatp.MODE {g_mode} not valid or not supported"
    # capabilities.MSI_FLAT=0: no msiptp to check (base format).
    if g_mode and bits.get(IOHGATP, iohgatp, "ppn") & 0x3:
        return "iohgatp root not 16 KiB aligned"
    if not caps["amo_hwad"] and (t["sade"] or t["gade"]):
        return "SADE/GADE without capabilities.AMO_HWAD"
    if not caps["end"] and fctl_be != t["sbe"]:
        return "SBE differs from fctl.BE without capabilities.END"
    if fctl_gxl and not t["sxl"]:
        return "SXL must be 1 when fctl.GXL=1"
    if not fctl_gxl and not gxl_writable and t["sxl"]:
        return "SXL must be 0 when fctl.GXL is 0 and not writable"
    if not be_writable and t["sbe"] != fctl_be:
        return "SBE must equal fctl.BE when fctl.BE is not writable"
    return None


def locate(load, mode, ddt_ppn, device_id, check, make=DeviceContext):
    """Spec "Process to locate the Device-context": walk the DDT for ``device_id`` and return its
    :class:`DeviceContext`.

    Parameters
    ----------
    load : callable
        ``load(address, length) -> bytes`` on system memory; raises :class:`AccessFault`.
    mode : IommuMode
        ``ddtp.iommu_mode`` (1LVL, 2LVL or 3LVL); the caller has checked the device_id
        width.
    ddt_ppn : int
        ``ddtp.PPN``.
    check : callable
        ``check(words) -> str | None``: :func:`misconfiguration` bound to the current
        capabilities and ``fctl``.
    make : callable
        Builds the result from the four doublewords (a memoizing factory may be given).

    Raises
    ------
    TranslationFault
        257 on a load access fault, 258 on V=0, 259 on a reserved bit or a
        misconfigured DC.
    """
    a = ddt_ppn << 12
    mode = IommuMode(mode)
    ddi = mode.ddi(device_id)
    for i in range(mode.levels - 1, 0, -1):
        try:
            ddte = int.from_bytes(load(a + ddi[i] * 8, 8), "little")
        except AccessFault:
            raise TranslationFault(Cause.DDT_LOAD_ACCESS_FAULT) from None
        if not ddte & _DDTE_V:
            raise TranslationFault(Cause.DDT_ENTRY_NOT_VALID)
        if ddte & _DDTE_RSVD:
            raise TranslationFault(Cause.DDT_ENTRY_MISCONFIGURED)
        a = ((ddte >> _DDTE_PPN_SHIFT) & _DDTE_PPN_MASK) << 12
    base = a + ddi[0] * DC_SIZE
    try:
        raw = load(base, DC_SIZE)
    except AccessFault:
        raise TranslationFault(Cause.DDT_LOAD_ACCESS_FAULT) from None
    # Four little-endian doublewords (fctl.BE=0).
    words = (int.from_bytes(raw[0:8], "little"), int.from_bytes(raw[8:16], "little"),
             int.from_bytes(raw[16:24], "little"), int.from_bytes(raw[24:32], "little"))
    if not words[0] & _TC_V:
        raise TranslationFault(Cause.DDT_ENTRY_NOT_VALID)
    if check(words) is not None:
        raise TranslationFault(Cause.DDT_ENTRY_MISCONFIGURED)
    return make(words)


# Both tables must agree with the walker on what Sv39/Sv48/Sv57 and the x4 modes are.
assert set(FIRST_STAGE) == {8, 9, 10} and set(SECOND_STAGE) == {8, 9, 10}
assert bits.field_range(CAPABILITIES, "sv39")[1] == 1
