"""The RISC-V IOMMU memory-mapped register file: offsets and field layouts.

RISC-V IOMMU Architecture Specification v1.0, "Memory-mapped register interface". Each register is a
``data.StructLayout`` listed from bit 0 upwards; reserved ranges are named ``_rsvdN`` and custom
ranges ``_customN`` so that :func:`iogate.hdl.bits.reserved_mask` can find them. The RTL register
file, the architectural model, the driver and the generated C header all take their bit positions
from here, and the access kind of each field (:data:`ACCESS`: RO, RW, RW1C, RW1S, WARL with its
legalising rule) too.
"""

from dataclasses import dataclass

from amaranth.lib import data, enum

__all__ = [
    "Offset", "IommuMode", "Igs",
    "CAPABILITIES", "FCTL", "DDTP", "QB", "CQCSR", "FQCSR", "PQCSR", "IPSR", "ICVEC",
    "MSI_ADDR", "MSI_DATA", "MSI_VEC_CTL", "MSI_CFG_ENTRIES", "MSI_CFG_ENTRY_SIZE",
    "IOCOUNTOVF", "IOCOUNTINH", "IOHPMCYCLES", "IOHPMCTR", "IOHPMEVT", "HpmEvent",
    "HPM_COUNTERS_MAX", "HPM_ACCESS", "hpm_ctr_offset", "hpm_evt_offset",
    "TR_REQ_IOVA", "TR_REQ_CTL", "TR_RESPONSE", "REGISTERS", "REGISTER_SIZE",
    "Kind", "FieldAccess", "ACCESS", "MSI_CFG_ACCESS", "access_of", "kind_mask",
]


class Offset(enum.IntEnum):
    """Register offsets in the 4 KiB register page (spec "Register layout")."""
    CAPABILITIES = 0x000
    FCTL = 0x008
    DDTP = 0x010
    CQB = 0x018
    CQH = 0x020
    CQT = 0x024
    FQB = 0x028
    FQH = 0x030
    FQT = 0x034
    PQB = 0x038
    PQH = 0x040
    PQT = 0x044
    CQCSR = 0x048
    FQCSR = 0x04C
    PQCSR = 0x050
    IPSR = 0x054
    IOCOUNTOVF = 0x058
    IOCOUNTINH = 0x05C
    IOHPMCYCLES = 0x060
    IOHPMCTR1 = 0x068
    IOHPMEVT1 = 0x160
    TR_REQ_IOVA = 0x258
    TR_REQ_CTL = 0x260
    TR_RESPONSE = 0x268
    ICVEC = 0x2F8
    MSI_CFG_TBL = 0x300


#: Size in bytes of each register this implementation decodes (some only with the Config
#: option that builds them).
REGISTER_SIZE = {
    Offset.CAPABILITIES: 8, Offset.FCTL: 4, Offset.DDTP: 8,
    Offset.CQB: 8, Offset.CQH: 4, Offset.CQT: 4,
    Offset.FQB: 8, Offset.FQH: 4, Offset.FQT: 4,
    # The page-request queue's registers decode only with Config.ats (capabilities.ATS).
    Offset.PQB: 8, Offset.PQH: 4, Offset.PQT: 4,
    Offset.CQCSR: 4, Offset.FQCSR: 4, Offset.PQCSR: 4, Offset.IPSR: 4,
    Offset.TR_REQ_IOVA: 8, Offset.TR_REQ_CTL: 8, Offset.TR_RESPONSE: 8,
    Offset.ICVEC: 8,
}


class IommuMode(enum.IntEnum, shape=4):
    """``ddtp.iommu_mode`` (spec "Device-directory-table pointer (ddtp)").

    The device_id split of each directory mode (spec "Device-Directory-Table (DDT)":
    ``DDI[0]`` 7 bits with base-format device contexts, ``DDI[1]`` 9, ``DDI[2]`` 8; with
    extended-format ones, ``capabilities.MSI_FLAT=1``, 6, 9 and 9, reference N.3.2) is a
    property of the mode, used by the RTL, the model, the driver and the test bench alike.
    Each geometry method takes ``extended``: the device-context format the Config builds.
    """
    OFF = 0
    BARE = 1
    LVL1 = 2
    LVL2 = 3
    LVL3 = 4

    @property
    def levels(self):
        """Levels of the directory (0 for Off and Bare, which locate no device context)."""
        return max(self.value - 1, 0)

    @property
    def ddi_bits(self):
        """Widths of ``DDI[0]``, ``DDI[1]``, ... for base-format device contexts: the
        device_id split, low index first (``()`` for Off and Bare)."""
        return self.ddi_bits_of(extended=False)

    @property
    def device_id_bits(self):
        """The widest device_id the mode reaches with base-format device contexts (7, 16,
        24; 0 for Off and Bare)."""
        return self.device_id_bits_of(extended=False)

    def ddi_bits_of(self, extended):
        """Widths of ``DDI[0]``, ``DDI[1]``, ...: (7, 9, 8) for 32-byte base-format device
        contexts, (6, 9, 9) for 64-byte extended-format ones (``()`` for Off and Bare)."""
        return ((6, 9, 9) if extended else (7, 9, 8))[:self.levels]

    def device_id_bits_of(self, extended):
        """The widest device_id the mode reaches: 7/16/24 (base) or 6/15/24 (extended)."""
        return sum(self.ddi_bits_of(extended))

    def ddi(self, device_id, extended=False):
        """``device_id`` split into ``DDI[0]``, ``DDI[1]``, ... (low index first)."""
        out, shift = [], 0
        for width in self.ddi_bits_of(extended):
            out.append((device_id >> shift) & ((1 << width) - 1))
            shift += width
        return tuple(out)

    @classmethod
    def for_levels(cls, levels):
        """The directory mode of ``levels`` (1, 2 or 3) levels."""
        return cls(levels + 1)


class Igs(enum.IntEnum, shape=2):
    """``capabilities.IGS``: interrupt generation support (spec "IOMMU capabilities
    (capabilities)")."""
    MSI = 0
    WSI = 1
    BOTH = 2


#: ``capabilities`` (spec "IOMMU capabilities (capabilities)").
CAPABILITIES = data.StructLayout({
    "version": 8, "sv32": 1, "sv39": 1, "sv48": 1, "sv57": 1, "_rsvd0": 2,
    "svrsw60t59b": 1, "svpbmt": 1, "sv32x4": 1, "sv39x4": 1, "sv48x4": 1, "sv57x4": 1,
    "_rsvd1": 1, "amo_mrif": 1, "msi_flat": 1, "msi_mrif": 1, "amo_hwad": 1, "ats": 1,
    "t2gpa": 1, "end": 1, "igs": Igs, "hpm": 1, "dbg": 1, "pas": 6, "pd8": 1, "pd17": 1,
    "pd20": 1, "qosid": 1, "nl": 1, "s": 1, "_rsvd2": 12, "_custom0": 8,
})

#: ``fctl``: features control (spec "Features-control register (fctl)").
FCTL = data.StructLayout({"be": 1, "wsi": 1, "gxl": 1, "_rsvd0": 13, "_custom0": 16})

#: ``ddtp``: device-directory-table pointer (spec "Device-directory-table pointer (ddtp)").
DDTP = data.StructLayout({
    "iommu_mode": IommuMode, "busy": 1, "_rsvd0": 5, "ppn": 44, "_rsvd1": 10,
})

#: ``cqb``/``fqb``/``pqb``: queue base; ``log2szm1`` holds LOG2SZ-1 (spec "Command-queue base
#: (cqb)", "Fault queue base (fqb)").
QB = data.StructLayout({"log2szm1": 5, "_rsvd0": 5, "ppn": 44, "_rsvd1": 10})

#: ``cqcsr``: command-queue control and status (spec "Command-queue CSR (cqcsr)").
CQCSR = data.StructLayout({
    "cqen": 1, "cie": 1, "_rsvd0": 6, "cqmf": 1, "cmd_to": 1, "cmd_ill": 1,
    "fence_w_ip": 1, "_rsvd1": 4, "cqon": 1, "busy": 1, "_rsvd2": 10, "_custom0": 4,
})

#: ``fqcsr``: fault-queue control and status (spec "Fault queue CSR (fqcsr)").
FQCSR = data.StructLayout({
    "fqen": 1, "fie": 1, "_rsvd0": 6, "fqmf": 1, "fqof": 1, "_rsvd1": 6,
    "fqon": 1, "busy": 1, "_rsvd2": 10, "_custom0": 4,
})

#: ``pqcsr``: page-request queue control and status (spec "Page-request-queue CSR (pqcsr)",
#: reference N.6.5); only with ``capabilities.ATS``.
PQCSR = data.StructLayout({
    "pqen": 1, "pie": 1, "_rsvd0": 6, "pqmf": 1, "pqof": 1, "_rsvd1": 6,
    "pqon": 1, "busy": 1, "_rsvd2": 10, "_custom0": 4,
})

#: ``ipsr``: interrupt pending status, RW1C (spec "Interrupt pending status register (ipsr)").
IPSR = data.StructLayout({
    "cip": 1, "fip": 1, "pmip": 1, "pip": 1, "_rsvd0": 4, "_custom0": 8, "_rsvd1": 16,
})

#: ``icvec``: interrupt-cause to vector (spec "Interrupt-cause-to-vector register (icvec)").
ICVEC = data.StructLayout({
    "civ": 4, "fiv": 4, "pmiv": 4, "piv": 4, "_rsvd0": 16, "_custom0": 32,
})

#: ``msi_addr_x`` of ``msi_cfg_tbl`` (spec "MSI configuration table (msi_cfg_tbl)"): the MSI
#: goes to ``addr << 2``.
MSI_ADDR = data.StructLayout({"_zero0": 2, "addr": 54, "_rsvd0": 8})

#: ``msi_data_x`` (32 bits, all implemented here).
MSI_DATA = data.StructLayout({"data": 32})

#: ``msi_vec_ctl_x``: ``m`` masks the vector.
MSI_VEC_CTL = data.StructLayout({"m": 1, "_rsvd0": 31})

#: Entries of ``msi_cfg_tbl`` and bytes per entry (addr 8, data 4, vec_ctl 4).
MSI_CFG_ENTRIES = 16
MSI_CFG_ENTRY_SIZE = 16

#: Programmable counters the spec gives room for: ``iohpmctr1..31``, ``iohpmevt1..31`` (spec
#: "Hardware performance monitor", reference N.7).
HPM_COUNTERS_MAX = 31


def hpm_ctr_offset(x):
    """The offset of ``iohpmctrX`` (``X`` 1 to 31): 0x68 + 8(X-1)."""
    assert 1 <= x <= HPM_COUNTERS_MAX, x
    return Offset.IOHPMCTR1 + 8 * (x - 1)


def hpm_evt_offset(x):
    """The offset of ``iohpmevtX`` (``X`` 1 to 31): 0x160 + 8(X-1)."""
    assert 1 <= x <= HPM_COUNTERS_MAX, x
    return Offset.IOHPMEVT1 + 8 * (x - 1)


#: ``iocountovf`` (spec "Performance-monitoring counter overflow status (iocountovf)"), RO: bit
#: 0 is ``iohpmcycles.OF``, bit X is ``iohpmevtX.OF``; it has no storage of its own.
IOCOUNTOVF = data.StructLayout({"cy": 1, "hpm": 31})

#: ``iocountinh`` (spec "Performance-monitoring counter inhibits (iocountinh)"): bit 0 inhibits
#: ``iohpmcycles``, bit X ``iohpmctrX`` (not ``iohpmctr(X+1)``, reference N.9 P5).
IOCOUNTINH = data.StructLayout({"cy": 1, "hpm": 31})

#: ``iohpmcycles`` (spec "Performance-monitoring cycles counter (iohpmcycles)"): a 63-bit
#: counter and its overflow bit.
IOHPMCYCLES = data.StructLayout({"counter": 63, "of": 1})

#: ``iohpmctrX`` (spec "Performance-monitoring event counters (iohpmctr1-31)").
IOHPMCTR = data.StructLayout({"counter": 64})

#: ``iohpmevtX`` (spec "Performance-monitoring event selectors (iohpmevt1-31)").
IOHPMEVT = data.StructLayout({
    "event_id": 15, "dmask": 1, "pid_pscid": 20, "did_gscid": 24, "pv_pscv": 1,
    "dv_gscv": 1, "idt": 1, "of": 1,
})


class HpmEvent(enum.IntEnum, shape=15):
    """``iohpmevtX.eventID``: the standard events (spec "Performance-monitoring event
    selectors", reference N.7). 9-16383 are reserved, 16384-32767 custom."""
    NONE = 0
    UNTRANSLATED_REQ = 1
    TRANSLATED_REQ = 2
    ATS_TRANSLATION_REQ = 3
    IOATC_MISS = 4
    DDT_WALK = 5
    PDT_WALK = 6
    S1_WALK = 7
    S2_WALK = 8

    @property
    def idt1(self):
        """The event may be filtered by GSCID/PSCID (``IDT=1``); with ``IDT=1`` an event that
        may not does not count."""
        return self in (HpmEvent.IOATC_MISS, HpmEvent.S1_WALK, HpmEvent.S2_WALK)


#: ``tr_req_iova`` (spec "Translation-request IOVA (tr_req_iova)").
TR_REQ_IOVA = data.StructLayout({"_rsvd0": 12, "vpn": 52})

#: ``tr_req_ctl`` (spec "Translation-request control (tr_req_ctl)").
TR_REQ_CTL = data.StructLayout({
    "go": 1, "priv": 1, "exe": 1, "nw": 1, "_rsvd0": 8, "pid": 20, "pv": 1,
    "_rsvd1": 3, "_custom0": 4, "did": 24,
})

#: ``tr_response`` (spec "Translation-response (tr_response)").
TR_RESPONSE = data.StructLayout({
    "fault": 1, "_rsvd0": 6, "pbmt": 2, "s": 1, "ppn": 44, "_rsvd1": 6, "_custom0": 4,
})

#: The layout of each decoded register, by offset.
REGISTERS = {
    Offset.CAPABILITIES: CAPABILITIES, Offset.FCTL: FCTL, Offset.DDTP: DDTP,
    Offset.CQB: QB, Offset.FQB: QB, Offset.PQB: QB, Offset.CQCSR: CQCSR,
    Offset.FQCSR: FQCSR, Offset.PQCSR: PQCSR, Offset.IPSR: IPSR, Offset.ICVEC: ICVEC,
    Offset.TR_REQ_IOVA: TR_REQ_IOVA,
    Offset.TR_REQ_CTL: TR_REQ_CTL, Offset.TR_RESPONSE: TR_RESPONSE,
}

for _name, _layout in list(globals().items()):
    if isinstance(_layout, data.StructLayout):
        assert _layout.size in (32, 64), (_name, _layout.size)


class Kind(enum.Enum):
    """How software accesses a register field (spec "Register layout", the ``Attribute``
    column; in the spirit of amaranth-soc's ``csr.action``)."""
    RO = "RO"        #: read-only: writes are ignored
    RW = "RW"        #: read-write: takes the written value
    RW1C = "RW1C"    #: a 1 written clears it, a 0 leaves it
    RW1S = "RW1S"    #: a 1 written sets it, a 0 leaves it
    WARL = "WARL"    #: write any, read legal: see :attr:`FieldAccess.rule`
    ZERO = "ZERO"    #: not implemented here: reads 0, writes are ignored


@dataclass(frozen=True)
class FieldAccess:
    """The access of one register field.

    Attributes
    ----------
    kind : Kind
    rule : str
        For WARL fields, how a written value is made legal (the same words in the RTL, the
        model and the C header).
    """
    kind: Kind
    rule: str = ""

    def __str__(self):
        return f"{self.kind.value}: {self.rule}" if self.rule else self.kind.value


_RO, _RW, _RW1C, _RW1S, _ZERO = (FieldAccess(k) for k in
                                  (Kind.RO, Kind.RW, Kind.RW1C, Kind.RW1S, Kind.ZERO))
_PPN = FieldAccess(Kind.WARL, "bits at and above capabilities.PAS read 0")
_LOG2SZ = FieldAccess(Kind.WARL, "a value above Config.queue_log2sz_max - 1 reads as that"
                                 " maximum")

#: The access of every named field of each decoded register, by offset. Fields named
#: ``_rsvdN`` (WPRI) and ``_customN`` are not listed: they read 0 and ignore writes.
ACCESS = {
    Offset.CAPABILITIES: {name: _RO for name, _ in CAPABILITIES if not name.startswith("_")},
    Offset.FCTL: {
        "be": FieldAccess(Kind.WARL, "only 0 is legal (capabilities.END=0: little-endian)"),
        "wsi": FieldAccess(Kind.WARL, "IGS=WSI: only 1 is legal; IGS=MSI: only 0; IGS=BOTH:"
                                      " both, resets to 0"),
        "gxl": FieldAccess(Kind.WARL, "only 0 is legal"),
    },
    Offset.DDTP: {
        "iommu_mode": FieldAccess(Kind.WARL, "a mode the Config does not build keeps the old"
                                             " mode"),
        "busy": _ZERO,          # a mode change completes at once
        "ppn": _PPN,
    },
    Offset.CQB: {"log2szm1": _LOG2SZ, "ppn": _PPN},
    Offset.FQB: {"log2szm1": _LOG2SZ, "ppn": _PPN},
    Offset.PQB: {"log2szm1": _LOG2SZ, "ppn": _PPN},
    Offset.CQCSR: {
        "cqen": _RW, "cie": _RW, "cqmf": _RW1C, "cmd_to": _RW1C, "cmd_ill": _RW1C,
        "fence_w_ip": _RW1C, "cqon": _RO, "busy": _RO,
    },
    Offset.FQCSR: {"fqen": _RW, "fie": _RW, "fqmf": _RW1C, "fqof": _RW1C, "fqon": _RO,
                   "busy": _RO},
    Offset.PQCSR: {"pqen": _RW, "pie": _RW, "pqmf": _RW1C, "pqof": _RW1C, "pqon": _RO,
                   "busy": _RO},
    # pmip is set only with the performance monitor, pip only with the page-request queue
    # (Config.has_hpm, Config.ats); without them they read 0.
    Offset.IPSR: {"cip": _RW1C, "fip": _RW1C, "pmip": _RW1C, "pip": _RW1C},
    Offset.ICVEC: {name: FieldAccess(Kind.WARL, "only the low Config.vector_bits bits of the"
                                                " vector are implemented, the rest read 0")
                   for name in ("civ", "fiv", "pmiv", "piv")},
    Offset.TR_REQ_IOVA: {"vpn": _RW},
    Offset.TR_REQ_CTL: {"go": _RW1S, "priv": _RW, "exe": _RW, "nw": _RW, "pid": _RW,
                        "pv": _RW, "did": _RW},
    Offset.TR_RESPONSE: {"fault": _RO, "pbmt": _RO, "s": _RO, "ppn": _RO},
}


#: The access of the fields of the ``msi_cfg_tbl`` registers (spec "MSI configuration table
#: (msi_cfg_tbl)", decision 8 of issue 16), by layout. With ``capabilities.IGS=WSI`` the whole
#: table is hardwired to 0. Reset: ``addr`` and ``data`` 0, ``m`` 1 (masked; the spec leaves it
#: UNSPECIFIED).
MSI_CFG_ACCESS = {
    "msi_addr": {"addr": _PPN},
    "msi_data": {"data": _RW},
    "msi_vec_ctl": {"m": _RW},
}


#: The access of the HPM registers' fields (spec "Hardware performance monitor", reference
#: N.7), by layout; all of them read 0 and ignore writes when ``capabilities.HPM=0``.
HPM_ACCESS = {
    "iocountovf": {"cy": _RO, "hpm": _RO},
    "iocountinh": {"cy": _RW, "hpm": FieldAccess(Kind.WARL, "bits of counters not built read"
                                                             " 0")},
    "iohpmcycles": {"counter": FieldAccess(Kind.WARL, "bits at and above"
                                                      " Config.hpm_counter_width read 0"),
                    "of": _RW},
    "iohpmctr": {"counter": FieldAccess(Kind.WARL, "bits at and above"
                                                   " Config.hpm_counter_width read 0")},
    "iohpmevt": {"event_id": FieldAccess(Kind.WARL, "a reserved or custom event ID"
                                                    " (9-32767) reads 0"),
                 "dmask": _RW, "pid_pscid": _RW, "did_gscid": _RW, "pv_pscv": _RW,
                 "dv_gscv": _RW, "idt": _RW, "of": _RW},
}


def access_of(offset, *kinds):
    """The names of the fields of the register at ``offset`` whose kind is one of ``kinds``
    (every field with an access when none is given), from bit 0 upwards."""
    table = ACCESS[offset]
    return tuple(name for name, _ in REGISTERS[offset]
                 if name in table and (not kinds or table[name].kind in kinds))


def kind_mask(offset, *kinds):
    """The bits, in place, of the fields of the register at ``offset`` of one of ``kinds``."""
    layout = REGISTERS[offset]
    out = 0
    for name in access_of(offset, *kinds):
        field = layout[name]
        out |= ((1 << field.width) - 1) << field.offset
    return out


for _offset, _table in ACCESS.items():
    assert set(_table) == {n for n, _ in REGISTERS[_offset] if not n.startswith("_")}, _offset
