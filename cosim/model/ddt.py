"""The device directory: locating a device context and checking it.

RISC-V IOMMU spec "Process to locate the Device-context", "Non-leaf DDT entry" and
"Device-context configuration checks". The DC format follows ``capabilities.MSI_FLAT``
(reference N.3, N.9 P4): without it the base format (32 bytes, four doublewords) and
``device_id`` split 7/9/8; with it the extended format (64 bytes, eight doublewords: the
base four, ``msiptp``, ``msi_addr_mask``, ``msi_addr_pattern`` and a reserved one) and the
split 6/9/9. The split and the widest device_id of each mode are
:meth:`iogate.hdl.regs.IommuMode.ddi` and
:meth:`~iogate.hdl.regs.IommuMode.device_id_bits_of`, the one geometry definition.

Extended-format checks (cause 259, issue 16 decision 1): msiptp reserved bits [59:44];
msiptp.MODE other than Off or Flat (2-13 reserved, 14-15 custom, which iogate does not
build); reserved bits [63:52] of msi_addr_mask or msi_addr_pattern; doubleword 7 non-zero;
``iohgatp.MODE`` Bare with msiptp.MODE not Off (the spec's recommended 259); and any
mask or pattern bit in [51 : MGPAW-12]: the spec says those bits are "reserved for future
standard use", read literally as the D.2 reserved-bit rule (libiommu masks them instead,
reference N.9 P3). MGPAW is taken from ``capabilities`` as reference N.3.3 defines it.
"""

from iogate.hdl import bits
from iogate.hdl.formats import (
    DC_EXT_SIZE,
    DC_SIZE,
    DDTE,
    IOHGATP,
    IOSATP,
    MSI_ADDR_MASK,
    MSIPTP,
    TA,
    TC,
    Cause,
    MsiptpMode,
)
from iogate.hdl.regs import CAPABILITIES, IommuMode

from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.walk import FIRST_STAGE, SECOND_STAGE, TranslationFault

__all__ = ["DeviceContext", "locate", "misconfiguration", "device_id_fits", "mgpaw"]

_DDTE_V = bits.mask(DDTE, "v")
_DDTE_PPN_SHIFT, _ = bits.field_range(DDTE, "ppn")
_DDTE_PPN_MASK = bits.mask(DDTE, "ppn") >> _DDTE_PPN_SHIFT
_DDTE_RSVD = bits.reserved_mask(DDTE)
_TC_V = bits.mask(TC, "v")
_MSIPTP_RSVD = bits.reserved_mask(MSIPTP)
_MSI_ADDR_RSVD = bits.reserved_mask(MSI_ADDR_MASK)
_MSI_ADDR_BITS = bits.field_range(MSI_ADDR_MASK, "value")[1]


def device_id_fits(mode, device_id, extended=False):
    """Whether ``device_id`` is not wider than directory mode ``mode`` allows with base
    (``extended`` False) or extended-format device contexts (spec "Process to translate an
    IOVA"; reference N.3.2)."""
    return not device_id >> IommuMode(mode).device_id_bits_of(extended)


def mgpaw(caps):
    """MGPAW (reference N.3.3): the widest GPA the second-stage modes in ``caps`` (an
    unpacked ``capabilities``) accept: 59 (Sv57x4), 50 (Sv48x4), 41 (Sv39x4), 34 (Sv32x4),
    else ``capabilities.PAS``."""
    for name, width in (("sv57x4", 59), ("sv48x4", 50), ("sv39x4", 41), ("sv32x4", 34)):
        if caps[name]:
            return width
    return caps["pas"]


class DeviceContext:
    """A located, valid, well-formed device context (spec "Device-context fields").

    Attributes
    ----------
    words : tuple of int
        The four doublewords ``tc``, ``iohgatp``, ``ta``, ``fsc`` as read, and in the
        extended format ``msiptp``, ``msi_addr_mask``, ``msi_addr_pattern`` and dw 7.
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
    msi_mode, msi_ppn : int
        ``msiptp`` MODE (0 Off, 1 Flat) and PPN (an SPA page); 0 in the base format.
    msi_mask, msi_pattern : int
        ``msi_addr_mask`` and ``msi_addr_pattern`` (52-bit page numbers); 0 in the base
        format.
    """

    __slots__ = ("words", "dtf", "pdtv", "dpe", "sxl", "g_mode", "g_root", "gscid",
                 "s_mode", "s_root", "pscid", "msi_mode", "msi_ppn", "msi_mask",
                 "msi_pattern")

    def __init__(self, words):
        tc, iohgatp, ta, fsc = words[:4]
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
        if len(words) > 4:
            msiptp, mask, pattern = words[4:7]
            self.msi_mode = bits.get(MSIPTP, msiptp, "mode")
            self.msi_ppn = bits.get(MSIPTP, msiptp, "ppn")
            self.msi_mask = bits.get(MSI_ADDR_MASK, mask, "value")
            self.msi_pattern = bits.get(MSI_ADDR_MASK, pattern, "value")
        else:
            self.msi_mode = self.msi_ppn = self.msi_mask = self.msi_pattern = 0

    @property
    def msi_flat(self):
        """``msiptp.MODE`` is Flat: step 18 (MSI address translation) applies."""
        return self.msi_mode == MsiptpMode.FLAT

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
        ``tc``, ``iohgatp``, ``ta``, ``fsc``, and for an extended-format DC (eight words)
        ``msiptp``, ``msi_addr_mask``, ``msi_addr_pattern`` and dw 7.
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
    tc, iohgatp, ta, fsc = words[:4]
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
    if len(words) > 4:
        why = _extended_misconfiguration(words, g_mode, caps)
        if why is not None:
            return why
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


def _extended_misconfiguration(words, g_mode, caps):
    """The extended-format rules of the module docstring (reference N.3.3), or None."""
    msiptp, mask, pattern, dw7 = words[4:8]
    if msiptp & _MSIPTP_RSVD:
        return "msiptp reserved bits set"
    msi_mode = bits.get(MSIPTP, msiptp, "mode")
    if msi_mode not in (MsiptpMode.OFF, MsiptpMode.FLAT):
        return f"msiptp.MODE {msi_mode} not Off or Flat"
    if mask & _MSI_ADDR_RSVD:
        return "msi_addr_mask reserved bits set"
    if pattern & _MSI_ADDR_RSVD:
        return "msi_addr_pattern reserved bits set"
    if dw7:
        return "DC doubleword 7 (reserved) not zero"
    if g_mode == 0 and msi_mode != MsiptpMode.OFF:
        return "msiptp.MODE not Off with iohgatp Bare"
    # Bits [51 : MGPAW-12] are "reserved for future standard use".
    high = ~((1 << (mgpaw(caps) - 12)) - 1) & ((1 << _MSI_ADDR_BITS) - 1)
    if mask & high:
        return f"msi_addr_mask bits [51:{mgpaw(caps) - 12}] set (above MGPAW)"
    if pattern & high:
        return f"msi_addr_pattern bits [51:{mgpaw(caps) - 12}] set (above MGPAW)"
    return None


def locate(load, mode, ddt_ppn, device_id, check, make=DeviceContext, extended=False):
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
        Builds the result from the doublewords (a memoizing factory may be given).
    extended : bool
        ``capabilities.MSI_FLAT``: 64-byte DCs (eight doublewords) and the extended split.

    Raises
    ------
    TranslationFault
        257 on a load access fault, 258 on V=0, 259 on a reserved bit or a
        misconfigured DC.
    """
    a = ddt_ppn << 12
    mode = IommuMode(mode)
    ddi = mode.ddi(device_id, extended)
    size = DC_EXT_SIZE if extended else DC_SIZE
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
    base = a + ddi[0] * size
    try:
        raw = load(base, size)
    except AccessFault:
        raise TranslationFault(Cause.DDT_LOAD_ACCESS_FAULT) from None
    # Little-endian doublewords (fctl.BE=0), all read at once.
    words = tuple(int.from_bytes(raw[k:k + 8], "little") for k in range(0, size, 8))
    if not words[0] & _TC_V:
        raise TranslationFault(Cause.DDT_ENTRY_NOT_VALID)
    if check(words) is not None:
        raise TranslationFault(Cause.DDT_ENTRY_MISCONFIGURED)
    return make(words)


# Both tables must agree with the walker on what Sv39/Sv48/Sv57 and the x4 modes are.
assert set(FIRST_STAGE) == {8, 9, 10} and set(SECOND_STAGE) == {8, 9, 10}
assert bits.field_range(CAPABILITIES, "sv39")[1] == 1
