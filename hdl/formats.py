"""In-memory data structures of the RISC-V IOMMU: layouts and encodings.

RISC-V IOMMU Architecture Specification v1.0, "Data Structures" (device directory table,
device context), "In-memory queue interface" (commands, fault records) and the RISC-V Privileged
Architecture (Sv39/Sv48 page-table entries, with Svnapot and Svpbmt). As in :mod:`iogate.hdl.regs`,
each layout lists fields from bit 0 upwards and names reserved ranges ``_rsvdN``. This is
a "pure 1.0" implementation: the NL, S, QoS-ID and Svrsw60t59b extension bits are reserved.
"""

from amaranth.lib import data, enum

__all__ = [
    "DC_SIZE", "DC_EXT_SIZE", "DDTE", "TC", "IOHGATP", "TA", "IOSATP", "DC",
    "MsiptpMode", "MSIPTP", "MSI_ADDR_MASK", "DC_EXT", "MSI_PTE_SIZE", "MSI_PTE",
    "MSI_PTE_BASIC", "MSI_PTE_MRIF", "MsiPteMode", "MRIF_SIZE", "PTE",
    "IosatpMode", "IohgatpMode", "Pbmt",
    "PdtpMode", "PDTP", "PDTE", "PC_TA", "PC", "PC_SIZE", "PDTE_SIZE",
    "Opcode", "IotinvalFunc", "IofenceFunc", "IodirFunc", "AtsFunc",
    "CMD", "IOTINVAL", "IOFENCE", "IODIR", "ATS", "CMD_SIZE",
    "FAULT_RECORD", "FQ_RECORD_SIZE", "Cause", "Ttyp", "DTF_REPORTED_CAUSES",
    "PQ_RECORD", "PQ_RECORD_SIZE", "PcieMessage", "PrgResponse", "ATS_INVAL_PAYLOAD",
    "ATS_PRGR_PAYLOAD", "ATS_NO_PERMISSION_CAUSES",
]

#: Size of a base-format device context in bytes (spec "Leaf DDT entry", capabilities.MSI_FLAT=0).
DC_SIZE = 32
#: Size of an extended-format device context in bytes (capabilities.MSI_FLAT=1, reference N.3.1).
DC_EXT_SIZE = 64
#: Size of an MSI page-table entry in bytes (AIA "IOMMU support for MSIs to virtual machines").
MSI_PTE_SIZE = 16
#: Size of a memory-resident interrupt file in bytes (AIA "Memory-resident interrupt files").
MRIF_SIZE = 512
#: Size of a command in bytes (spec "Command-Queue (CQ)").
CMD_SIZE = 16
#: Size of a fault-queue record in bytes (spec "Fault/Event-Queue (FQ)").
FQ_RECORD_SIZE = 32

#: Non-leaf device-directory-table entry (spec "Non-leaf DDT entry").
DDTE = data.StructLayout({"v": 1, "_rsvd0": 9, "ppn": 44, "_rsvd1": 10})

#: ``DC.tc``: translation control (spec "Translation control (tc)"). Bits 31:24 are custom, used by
#: no one here.
TC = data.StructLayout({
    "v": 1, "en_ats": 1, "en_pri": 1, "t2gpa": 1, "dtf": 1, "pdtv": 1, "prpr": 1,
    "gade": 1, "sade": 1, "dpe": 1, "sbe": 1, "sxl": 1, "_rsvd0": 12, "_custom0": 8,
    "_rsvd1": 32,
})


class IohgatpMode(enum.IntEnum, shape=4):
    """``DC.iohgatp.MODE`` with ``fctl.GXL=0`` (spec "Device-context fields", iohgatp).

    The geometry of each mode (Privileged spec, "Hypervisor Extension", "Two-Stage Address
    Translation": Sv39x4/Sv48x4/Sv57x4 are their first-stage schemes widened by two bits,
    the root table 16 KiB) is a property of the mode, used by the RTL, the model, the
    driver and the test bench alike.
    """
    BARE = 0
    SV39X4 = 8
    SV48X4 = 9
    SV57X4 = 10

    @property
    def levels(self):
        """Levels of the walk (0 for Bare)."""
        return {0: 0, 8: 3, 9: 4, 10: 5}[self.value]

    @property
    def gpa_bits(self):
        """Width of a guest physical address: the first stage's VA width plus 2."""
        return 12 + 9 * self.levels + 2 if self.levels else 0

    @property
    def vpn_bits(self):
        """Bits of the guest page number (``gpa_bits - 12``)."""
        return self.gpa_bits - 12 if self.levels else 0

    @property
    def root_index_bits(self):
        """Index bits of the root table (11: 2048 PTEs in 16 KiB); 9 at every other level."""
        return 11


class IosatpMode(enum.IntEnum, shape=4):
    """``DC.fsc.MODE`` (iosatp) with ``DC.tc.SXL=0`` (spec "Device-context fields", fsc).

    The geometry of each mode (Privileged spec, "Sv39", "Sv48", "Sv57": 9 index bits per
    level, 4 KiB pages) is a property of the mode.
    """
    BARE = 0
    SV39 = 8
    SV48 = 9
    SV57 = 10

    @property
    def levels(self):
        """Levels of the walk (0 for Bare)."""
        return {0: 0, 8: 3, 9: 4, 10: 5}[self.value]

    @property
    def va_bits(self):
        """Width of a virtual address (39, 48, 57; 0 for Bare)."""
        return 12 + 9 * self.levels if self.levels else 0

    @property
    def vpn_bits(self):
        """Bits of the virtual page number (``va_bits - 12``)."""
        return 9 * self.levels

    @property
    def index_bits(self):
        """Index bits of every level's table (9: 512 PTEs in 4 KiB)."""
        return 9

    def is_canonical(self, va):
        """Whether ``va`` (64 bits) has bits 63 down to ``va_bits - 1`` all equal
        (Privileged spec: "must have bits 63-N equal to bit N-1")."""
        top = (va & ((1 << 64) - 1)) >> (self.va_bits - 1)
        return top in (0, (1 << (65 - self.va_bits)) - 1)



#: ``DC.iohgatp``: second-stage page-table pointer (spec "IO hypervisor guest address translation
#: and protection (iohgatp)").
IOHGATP = data.StructLayout({"ppn": 44, "gscid": 16, "mode": IohgatpMode})

#: ``DC.ta``: translation attributes. RCID/MCID (QoS-ID extension) are reserved (spec
#: "Translation attributes (ta)").
TA = data.StructLayout({"_rsvd0": 12, "pscid": 20, "_rsvd1": 32})

#: ``DC.fsc`` when ``PDTV=0``: ``iosatp`` (spec "First-Stage context (fsc)").
IOSATP = data.StructLayout({"ppn": 44, "_rsvd0": 16, "mode": IosatpMode})

#: A base-format device context: four doublewords (spec "Leaf DDT entry").
DC = data.StructLayout({"tc": TC, "iohgatp": IOHGATP, "ta": TA, "fsc": IOSATP})


class MsiptpMode(enum.IntEnum, shape=4):
    """``DC.msiptp.MODE`` (spec "MSI page-table pointer (msiptp)"): 2-13 are reserved (cause
    259), 14-15 custom (iogate builds none, so also 259)."""
    OFF = 0
    FLAT = 1


#: ``DC.msiptp``: the MSI page table's supervisor physical page, never translated (reference
#: N.3.1).
MSIPTP = data.StructLayout({"ppn": 44, "_rsvd0": 16, "mode": MsiptpMode})

#: ``DC.msi_addr_mask`` and ``DC.msi_addr_pattern`` (spec "MSI address mask (msi_addr_mask)
#: and pattern (msi_addr_pattern)"): both are 52-bit guest page numbers.
MSI_ADDR_MASK = data.StructLayout({"value": 52, "_rsvd0": 12})

#: An extended-format device context: eight doublewords (spec "Leaf DDT entry",
#: capabilities.MSI_FLAT=1; reference N.3.1). Doubleword 7 is reserved.
DC_EXT = data.StructLayout({
    "tc": TC, "iohgatp": IOHGATP, "ta": TA, "fsc": IOSATP, "msiptp": MSIPTP,
    "msi_addr_mask": MSI_ADDR_MASK, "msi_addr_pattern": MSI_ADDR_MASK, "_rsvd0": 64,
})


class MsiPteMode(enum.IntEnum, shape=2):
    """``M`` of an MSI PTE (AIA "MSI page tables"): 0 and 2 are reserved (cause 263)."""
    MRIF = 1
    BASIC = 3


#: The fields every MSI PTE shares (doubleword 0): V, M and the custom bit C.
MSI_PTE = data.StructLayout({"v": 1, "m": 2, "_any": 60, "c": 1})

#: A basic-translate MSI PTE (M=3), doubleword 0; doubleword 1 is ignored (reference N.4.2).
MSI_PTE_BASIC = data.StructLayout({
    "v": 1, "m": 2, "_rsvd0": 7, "ppn": 44, "_rsvd1": 9, "c": 1,
})

#: An MRIF-mode MSI PTE (M=1): two doublewords (reference N.4.2). ``mrif_addr`` is
#: MRIF_Address[55:9]; the notice MSI goes to ``nppn << 12`` with data ``nid10 << 10 | nid``.
MSI_PTE_MRIF = data.StructLayout({
    "v": 1, "m": 2, "_rsvd0": 4, "mrif_addr": 47, "_rsvd1": 9, "c": 1,
    "nid": 10, "nppn": 44, "_rsvd2": 6, "nid10": 1, "_rsvd3": 3,
})


class PdtpMode(enum.IntEnum, shape=4):
    """``DC.fsc.MODE`` when ``DC.tc.PDTV=1``: the process-directory mode (spec
    "Device-context fields", fsc, and "Process-Directory-Table (PDT)"). 4-13 are reserved,
    14-15 custom.

    The geometry of each mode (spec "Process-Directory-Table (PDT)": ``PDI[0]`` is
    ``process_id[7:0]`` indexing 256 16-byte process contexts in the leaf page, ``PDI[1]``
    ``process_id[16:8]`` indexing 512 8-byte PDTEs, ``PDI[2]`` ``process_id[19:17]``) is a
    property of the mode, used by the RTL, the model, the driver and the test bench alike.
    """
    BARE = 0
    PD8 = 1
    PD17 = 2
    PD20 = 3

    @property
    def levels(self):
        """Tables read to reach a process context (0 for Bare)."""
        return self.value

    @property
    def pid_bits(self):
        """Widest ``process_id`` the mode indexes (0, 8, 17, 20): a wider one is cause 260
        (spec "Process to translate an IOVA", step 7)."""
        return {0: 0, 1: 8, 2: 17, 3: 20}[self.value]

    @staticmethod
    def index_bits(level):
        """Bits of ``PDI[level]``: 8 at the leaf, 9 in the middle, 3 at the PD20 root."""
        return (8, 9, 3)[level]

    @staticmethod
    def index_low(level):
        """The lowest ``process_id`` bit of ``PDI[level]`` (0, 8, 17)."""
        return (0, 8, 17)[level]

    @classmethod
    def pdi(cls, process_id, level):
        """``PDI[level]`` of ``process_id`` (a Python int)."""
        return (process_id >> cls.index_low(level)) & ((1 << cls.index_bits(level)) - 1)


#: ``DC.fsc`` when ``PDTV=1``: ``pdtp``, the process-directory-table pointer (spec
#: "Device-context fields", fsc). ``ppn`` is a guest PPN when ``iohgatp`` is not Bare.
PDTP = data.StructLayout({"ppn": 44, "_rsvd0": 16, "mode": PdtpMode})

#: Size of a non-leaf PDT entry and of a process context in bytes (spec
#: "Process-Directory-Table (PDT)").
PDTE_SIZE = 8
PC_SIZE = 16

#: Non-leaf process-directory-table entry (spec "Non-leaf PDT entry"). A reserved bit set is
#: cause 267.
PDTE = data.StructLayout({"v": 1, "_rsvd0": 9, "ppn": 44, "_rsvd1": 10})

#: ``PC.ta``: the process context's translation attributes (spec "Process-context fields"):
#: ENS lets supervisor-privilege requests through, SUM lets them reach U=1 pages, PSCID
#: tags the first stage's IOTLB entries. V=0 leaves every other bit to software.
PC_TA = data.StructLayout({"v": 1, "ens": 1, "sum": 1, "_rsvd0": 9, "pscid": 20,
                           "_rsvd1": 32})

#: A process context: ``ta`` then ``fsc`` (an ``iosatp``, its MODE under ``DC.tc.SXL``)
#: (spec "Leaf PDT entry").
PC = data.StructLayout({"ta": PC_TA, "fsc": IOSATP})


class Pbmt(enum.IntEnum, shape=2):
    """Svpbmt page-based memory types (Privileged spec, "Svpbmt")."""
    PMA = 0
    NC = 1
    IO = 2
    RSVD = 3


#: Sv39/Sv48 page-table entry, with Svnapot (N) and Svpbmt (PBMT) (Privileged spec
#: "Sv39", "Svnapot", "Svpbmt").
PTE = data.StructLayout({
    "v": 1, "r": 1, "w": 1, "x": 1, "u": 1, "g": 1, "a": 1, "d": 1, "rsw": 2,
    "ppn": 44, "_rsvd0": 7, "pbmt": Pbmt, "n": 1,
})


class Opcode(enum.IntEnum, shape=7):
    """Command opcodes (spec "Command-Queue (CQ)"). 5-63 are reserved, 64-127 custom."""
    IOTINVAL = 1
    IOFENCE = 2
    IODIR = 3
    ATS = 4


class IotinvalFunc(enum.IntEnum, shape=3):
    VMA = 0
    GVMA = 1


class IofenceFunc(enum.IntEnum, shape=3):
    C = 0


class IodirFunc(enum.IntEnum, shape=3):
    INVAL_DDT = 0
    INVAL_PDT = 1


class AtsFunc(enum.IntEnum, shape=3):
    INVAL = 0
    PRGR = 1


#: Any command: the fields every command shares (spec "Command-Queue (CQ)").
CMD = data.StructLayout({"opcode": 7, "func3": 3, "_args0": 54, "_args1": 64})

#: IOTINVAL.VMA / IOTINVAL.GVMA (spec "IOMMU Page-Table cache invalidation commands"). NL (bit 34)
#: and S (dword1 bit 9) are extension bits, reserved here.
IOTINVAL = data.StructLayout({
    "opcode": 7, "func3": 3, "av": 1, "_rsvd0": 1, "pscid": 20, "pscv": 1, "gv": 1,
    "_rsvd1": 10, "gscid": 16, "_rsvd2": 4,
    "_rsvd3": 10, "addr": 52, "_rsvd4": 2,
})

#: IOFENCE.C (spec "IOMMU Command-queue Fence commands"). ``addr`` holds ADDR[63:2].
IOFENCE = data.StructLayout({
    "opcode": 7, "func3": 3, "av": 1, "wsi": 1, "pr": 1, "pw": 1, "_rsvd0": 18, "data": 32,
    "addr": 62, "_rsvd1": 2,
})

#: IODIR.INVAL_DDT / IODIR.INVAL_PDT (spec "IOMMU directory cache invalidation commands").
IODIR = data.StructLayout({
    "opcode": 7, "func3": 3, "_rsvd0": 2, "pid": 20, "_rsvd1": 1, "dv": 1, "_rsvd2": 6,
    "did": 24, "_rsvd3": 64,
})

#: ATS.INVAL / ATS.PRGR (spec "IOMMU PCIe ATS commands", reference N.6.4); offered only with
#: ``Config.ats`` (else ``cmd_ill``).
ATS = data.StructLayout({
    "opcode": 7, "func3": 3, "_rsvd0": 2, "pid": 20, "pv": 1, "dsv": 1, "_rsvd1": 6,
    "rid": 16, "dseg": 8, "payload": 64,
})

#: ATS.INVAL's PAYLOAD: the PCIe Invalidate Request body (reference N.6.4): ``g`` Global
#: Invalidate, ``s`` a NAPOT range in ``addr`` (the size encoding of N.6.2), ``addr`` the
#: Untranslated Address [63:12]. Its zero fields are not checked (decision of docs/ats-pri.md).
ATS_INVAL_PAYLOAD = data.StructLayout({"g": 1, "_zero0": 10, "s": 1, "addr": 52})

#: ATS.PRGR's PAYLOAD: the PRG Response body (reference N.6.4): PRG Index and Response Code;
#: the Destination Device ID is filled in from the command's RID.
ATS_PRGR_PAYLOAD = data.StructLayout({
    "_zero0": 32, "prg_index": 9, "_zero1": 3, "response_code": 4, "_zero2": 16,
})


class PcieMessage(enum.IntEnum, shape=8):
    """PCIe message codes of the ATS/PRI messages (reference N.6.4): a Page Request's fault
    record has ``iotval`` = its code (N.6.7)."""
    INVALIDATE_REQUEST = 0x01
    INVALIDATE_COMPLETION = 0x02
    PAGE_REQUEST = 0x04
    PRG_RESPONSE = 0x05


class PrgResponse(enum.IntEnum, shape=4):
    """PRG Response Codes (PCIe, reference N.6.4); 0010b-1110b are handled as Failure."""
    SUCCESS = 0x0
    INVALID_REQUEST = 0x1
    RESPONSE_FAILURE = 0xF


#: Bytes of one page-request queue record (reference N.6.6: 16, not 32).
PQ_RECORD_SIZE = 16

#: A page-request queue record (spec "Page-Request-Queue (PQ)", reference N.6.6). A Stop
#: Marker is ``l=1`` with ``r=w=0`` (it carries a PASID).
PQ_RECORD = data.StructLayout({
    "_rsvd0": 12, "pid": 20, "pv": 1, "priv": 1, "exec": 1, "_rsvd1": 5, "did": 24,
    "r": 1, "w": 1, "l": 1, "prg_index": 9, "page": 52,
})


class Ttyp(enum.IntEnum, shape=6):
    """Fault-record transaction type (spec "Fault/Event-Queue (FQ)", table "Fault record TTYP")."""
    NONE = 0
    UNTRANSLATED_EXEC = 1
    UNTRANSLATED_READ = 2
    UNTRANSLATED_WRITE = 3
    TRANSLATED_EXEC = 5
    TRANSLATED_READ = 6
    TRANSLATED_WRITE = 7
    ATS_TRANSLATION_REQUEST = 8
    PCIE_MESSAGE = 9

    @classmethod
    def untranslated(cls, access):
        """The TTYP of an Untranslated request for ``access`` (spec "Fault/Event-Queue
        (FQ)", fault record TTYP): the one mapping the RTL, the model and the test bench use.

        Plain Python, so the gateware can build its mux from it while elaborating, e.g.
        ``{a: Ttyp.untranslated(a) for a in Access}``.

        Parameters
        ----------
        access : iogate.hdl.port.Access
            What the device asked for; an execute is a read-for-execute (TTYP 1).

        Raises
        ------
        ValueError
            If ``access`` is no :class:`~iogate.hdl.port.Access` (nor one's value).
        """
        # port.py imports this module (for Cause, Pbmt), so Access comes in at call time.
        from iogate.hdl.port import Access
        access = Access(access)
        if access is Access.READ:
            return cls.UNTRANSLATED_READ
        if access is Access.WRITE:
            return cls.UNTRANSLATED_WRITE
        return cls.UNTRANSLATED_EXEC

    @classmethod
    def translated(cls, access):
        """The TTYP of a Translated request for ``access`` (5, 6, 7: reference N.6.3), as
        :meth:`untranslated`.

        Raises
        ------
        ValueError
            If ``access`` is no :class:`~iogate.hdl.port.Access` (nor one's value).
        """
        return cls(cls.untranslated(access) + 4)


class Cause(enum.IntEnum, shape=12):
    """Fault-record CAUSE (spec "Fault/Event-Queue (FQ)", table "Fault record CAUSE")."""
    INSTRUCTION_ACCESS_FAULT = 1
    READ_ADDRESS_MISALIGNED = 4
    READ_ACCESS_FAULT = 5
    WRITE_ADDRESS_MISALIGNED = 6
    WRITE_ACCESS_FAULT = 7
    INSTRUCTION_PAGE_FAULT = 12
    READ_PAGE_FAULT = 13
    WRITE_PAGE_FAULT = 15
    INSTRUCTION_GUEST_PAGE_FAULT = 20
    READ_GUEST_PAGE_FAULT = 21
    WRITE_GUEST_PAGE_FAULT = 23
    ALL_INBOUND_DISALLOWED = 256
    DDT_LOAD_ACCESS_FAULT = 257
    DDT_ENTRY_NOT_VALID = 258
    DDT_ENTRY_MISCONFIGURED = 259
    TRANSACTION_TYPE_DISALLOWED = 260
    MSI_PTE_LOAD_ACCESS_FAULT = 261
    MSI_PTE_NOT_VALID = 262
    MSI_PTE_MISCONFIGURED = 263
    MRIF_ACCESS_FAULT = 264
    PDT_ENTRY_LOAD_ACCESS_FAULT = 265
    PDT_ENTRY_NOT_VALID = 266
    PDT_ENTRY_MISCONFIGURED = 267
    DDT_DATA_CORRUPTION = 268
    PDT_DATA_CORRUPTION = 269
    MSI_PT_DATA_CORRUPTION = 270
    MRIF_DATA_CORRUPTION = 271
    INTERNAL_DATAPATH_ERROR = 272
    IOMMU_MSI_WRITE_ACCESS_FAULT = 273
    PT_DATA_CORRUPTION = 274


#: Causes still reported when ``DC.tc.DTF=1`` (spec "Fault/Event-Queue (FQ)", CAUSE table column
#: "DTF").
DTF_REPORTED_CAUSES = frozenset({
    Cause.ALL_INBOUND_DISALLOWED, Cause.DDT_LOAD_ACCESS_FAULT, Cause.DDT_ENTRY_NOT_VALID,
    Cause.DDT_ENTRY_MISCONFIGURED, Cause.DDT_DATA_CORRUPTION, Cause.INTERNAL_DATAPATH_ERROR,
    Cause.IOMMU_MSI_WRITE_ACCESS_FAULT,
})

#: A fault-queue record: four doublewords (spec "Fault/Event-Queue (FQ)").
#: The causes an ATS Translation Request is not refused for: it is answered with a success
#: with R=W=0 (no permission) and no fault record (reference N.6.2, D.4 "Fault responses"): the
#: page and guest-page faults, an MSI PTE not valid, a PDT entry not valid. (U-bit and SUM
#: mismatches are page faults here.)
ATS_NO_PERMISSION_CAUSES = frozenset({
    Cause.INSTRUCTION_PAGE_FAULT, Cause.READ_PAGE_FAULT, Cause.WRITE_PAGE_FAULT,
    Cause.INSTRUCTION_GUEST_PAGE_FAULT, Cause.READ_GUEST_PAGE_FAULT,
    Cause.WRITE_GUEST_PAGE_FAULT, Cause.MSI_PTE_NOT_VALID, Cause.PDT_ENTRY_NOT_VALID,
})

FAULT_RECORD = data.StructLayout({
    "cause": Cause, "pid": 20, "pv": 1, "priv": 1, "ttyp": Ttyp, "did": 24,
    "_custom0": 32, "_rsvd0": 32, "iotval": 64, "iotval2": 64,
})

for _name, _layout in list(globals().items()):
    if isinstance(_layout, data.StructLayout):
        assert _layout.size in (64, 128, 256, 512), (_name, _layout.size)
