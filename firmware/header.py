"""The C header ``iogate.h``, generated from the layouts the RTL and the model use.

Nothing here re-types a bit position: offsets come from :class:`iogate.hdl.regs.Offset` and
:data:`iogate.hdl.regs.REGISTER_SIZE`, fields from the ``data.StructLayout`` of each register
(:data:`iogate.hdl.regs.REGISTERS`) and in-memory structure (:mod:`iogate.hdl.formats`), encodings
from their enums. For each field ``F`` of a structure ``S`` the header defines
``IOGATE_S_F_SHIFT``, ``_WIDTH`` and ``_MASK`` (in place, within its doubleword), and for a
structure wider than 64 bits ``IOGATE_S_F_DWORD``, the doubleword holding it. Reserved bits
are collected in ``IOGATE_S_RSVD_MASK`` (``IOGATE_S_DWORDn_RSVD_MASK`` for wide ones).

Registers also carry their access kinds (:data:`iogate.hdl.regs.ACCESS`): each field's
``_MASK`` line names its kind (and a WARL field's legalising rule) in a comment, and
``IOGATE_R_<KIND>_MASK`` collects the fields of each kind a register has (for example
``IOGATE_CQCSR_RW1C_MASK``, the bits a driver writes as 0 to leave them alone).
"""

import re

from amaranth.lib import data

from iogate.hdl import formats, regs

__all__ = ["header", "LAYOUTS", "ENUMS"]

#: In-memory structures, by the name they get in the header (spec "Data Structures",
#: "In-memory queue interface"; Privileged spec for the PTE).
LAYOUTS = {
    "DDTE": formats.DDTE, "DC": formats.DC, "TC": formats.TC, "IOHGATP": formats.IOHGATP,
    "TA": formats.TA, "IOSATP": formats.IOSATP, "PTE": formats.PTE, "CMD": formats.CMD,
    "IOTINVAL": formats.IOTINVAL, "IOFENCE": formats.IOFENCE, "IODIR": formats.IODIR,
    "ATS": formats.ATS, "FAULT_RECORD": formats.FAULT_RECORD,
    # Process directories (spec "Process-Directory-Table (PDT)", "Process-context fields").
    "PDTP": formats.PDTP, "PDTE": formats.PDTE, "PC_TA": formats.PC_TA, "PC": formats.PC,
    # Extended-format device contexts and MSI page tables (capabilities.MSI_FLAT/MSI_MRIF;
    # AIA "IOMMU support for MSIs to virtual machines"), and the msi_cfg_tbl entries
    # (spec "MSI configuration table (msi_cfg_tbl)", at MSI_CFG_TBL_OFFSET + 16 x).
    "DC_EXT": formats.DC_EXT, "MSIPTP": formats.MSIPTP, "MSI_ADDR_MASK": formats.MSI_ADDR_MASK,
    "MSI_PTE": formats.MSI_PTE, "MSI_PTE_BASIC": formats.MSI_PTE_BASIC,
    "MSI_PTE_MRIF": formats.MSI_PTE_MRIF, "MSI_CFG_ADDR": regs.MSI_ADDR,
    "MSI_CFG_DATA": regs.MSI_DATA, "MSI_CFG_VEC_CTL": regs.MSI_VEC_CTL,
}

#: Encodings, by the prefix their values get.
ENUMS = {
    "IOMMU_MODE": regs.IommuMode, "IGS": regs.Igs, "IOSATP_MODE": formats.IosatpMode,
    "IOHGATP_MODE": formats.IohgatpMode, "PBMT": formats.Pbmt, "OPCODE": formats.Opcode,
    "IOTINVAL_FUNC": formats.IotinvalFunc, "IOFENCE_FUNC": formats.IofenceFunc,
    "IODIR_FUNC": formats.IodirFunc, "ATS_FUNC": formats.AtsFunc, "CAUSE": formats.Cause,
    "TTYP": formats.Ttyp, "PDTP_MODE": formats.PdtpMode, "MSIPTP_MODE": formats.MsiptpMode,
    "MSI_PTE_MODE": formats.MsiPteMode, "HPM_EVENT": regs.HpmEvent,
}

#: The performance-monitor registers (spec "Hardware performance monitor", reference N.7):
#: name in the header, layout, entry of :data:`iogate.hdl.regs.HPM_ACCESS`, size in bytes.
HPM_REGISTERS = (
    ("IOCOUNTOVF", regs.IOCOUNTOVF, "iocountovf", 4),
    ("IOCOUNTINH", regs.IOCOUNTINH, "iocountinh", 4),
    ("IOHPMCYCLES", regs.IOHPMCYCLES, "iohpmcycles", 8),
    ("IOHPMCTR", regs.IOHPMCTR, "iohpmctr", 8),
    ("IOHPMEVT", regs.IOHPMEVT, "iohpmevt", 8),
)

_SIZES = {"DC_SIZE": formats.DC_SIZE, "CMD_SIZE": formats.CMD_SIZE,
          "FQ_RECORD_SIZE": formats.FQ_RECORD_SIZE, "PC_SIZE": formats.PC_SIZE,
          "PDTE_SIZE": formats.PDTE_SIZE, "DC_EXT_SIZE": formats.DC_EXT_SIZE,
          "MSI_PTE_SIZE": formats.MSI_PTE_SIZE, "MRIF_SIZE": formats.MRIF_SIZE,
          "MSI_CFG_ENTRIES": regs.MSI_CFG_ENTRIES, "MSI_CFG_ENTRY_SIZE": regs.MSI_CFG_ENTRY_SIZE}


def _is_reserved(name):
    return name.startswith("_rsvd")


def _mask(value):
    return f"UINT64_C({value:#018x})"


def _define(name, value, comment=None):
    line = f"#define IOGATE_{name} {value}"
    return f"{line:<64} /* {comment} */" if comment else line


def _layout_lines(prefix, layout, access=None):
    """Defines for every named field of ``layout`` and its reserved masks; ``access``, the
    register's entry of :data:`iogate.hdl.regs.ACCESS`, comments each field's mask."""
    lines = []
    dwords = -(-layout.size // 64)
    reserved = [0] * dwords
    nested = set()
    for name, field in layout:
        dword, shift = divmod(field.offset, 64)
        width = field.width
        if shift + width > 64:
            raise ValueError(f"{prefix}.{name} straddles a doubleword")
        if _is_reserved(name):
            reserved[dword] |= ((1 << width) - 1) << shift
            continue
        if name.startswith("_"):
            continue  # custom and opcode-specific argument ranges
        field_name = f"{prefix}_{name.upper()}"
        if isinstance(field.shape, data.StructLayout):
            # A nested structure (a DC doubleword): its own fields are defined under its
            # own name; here only where it sits.
            lines.append(_define(f"{field_name}_DWORD", f"{dword}u"))
            nested.add(dword)
            continue
        if dwords > 1:
            lines.append(_define(f"{field_name}_DWORD", f"{dword}u"))
        lines += [
            _define(f"{field_name}_SHIFT", f"{shift}u"),
            _define(f"{field_name}_WIDTH", f"{width}u"),
            _define(f"{field_name}_MASK", _mask(((1 << width) - 1) << shift),
                    str(access[name]) if access else None),
        ]
    for i, m in enumerate(reserved):
        if i in nested:
            continue
        name = f"{prefix}_RSVD_MASK" if dwords == 1 else f"{prefix}_DWORD{i}_RSVD_MASK"
        lines.append(_define(name, _mask(m)))
    return lines


def _kind_lines(offset):
    """``IOGATE_R_<KIND>_MASK`` for each access kind the register at ``offset`` has."""
    return [_define(f"{offset.name}_{kind.name}_MASK", _mask(regs.kind_mask(offset, kind)))
            for kind in regs.Kind if regs.access_of(offset, kind)]


def _c_name(name):
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


def _hpm_lines():
    """The HPM registers' fields (with their access kinds), sizes and the offsets of
    ``iohpmctrX``/``iohpmevtX`` as macros of X (1 to ``HPM_COUNTERS_MAX``)."""
    out = ["", "/* Performance monitor (spec \"Hardware performance monitor\"): every register"
               " reads 0 when capabilities.HPM=0 */",
           _define("HPM_COUNTERS_MAX", f"{regs.HPM_COUNTERS_MAX}u"),
           _define("IOHPMCTR_OFFSET(x)",
                   f"({regs.Offset.IOHPMCTR1.value:#05x}u + 8u * ((x) - 1u))"),
           _define("IOHPMEVT_OFFSET(x)",
                   f"({regs.Offset.IOHPMEVT1.value:#05x}u + 8u * ((x) - 1u))")]
    for name, layout, key, size in HPM_REGISTERS:
        out += ["", f"/* {key} */"]
        # iohpmctrX/evtX have no single offset; the others may have a size already.
        if name not in regs.Offset.__members__ or regs.Offset[name] not in regs.REGISTER_SIZE:
            out.append(_define(f"{name}_SIZE", f"{size}u"))
        out += _layout_lines(name, layout, regs.HPM_ACCESS[key])
    return out


def header(config=None):
    """The text of ``iogate.h``.

    Parameters
    ----------
    config : iogate.hdl.Config or None
        If given, ``IOGATE_CONFIG_CAPABILITIES`` holds its ``capabilities`` value.
    """
    out = [
        "/* iogate.h: RISC-V IOMMU v1.0 register map and in-memory formats of iogate.",
        " * Generated by firmware/header.py from hdl/regs.py and hdl/formats.py; do not edit.",
        " * Fields: IOGATE_<STRUCT>_<FIELD>_{SHIFT,WIDTH,MASK}, masks in place within the",
        " * 64-bit doubleword IOGATE_<STRUCT>_<FIELD>_DWORD (structures wider than 64 bits). */",
        "#ifndef IOGATE_H",
        "#define IOGATE_H",
        "",
        "#include <stdint.h>",
        "",
        "#define IOGATE_FIELD_GET(word, field) \\",
        "\t(((uint64_t)(word) & IOGATE_##field##_MASK) >> IOGATE_##field##_SHIFT)",
        "#define IOGATE_FIELD_PREP(field, value) \\",
        "\t(((uint64_t)(value) << IOGATE_##field##_SHIFT) & IOGATE_##field##_MASK)",
        "",
        "/* Register offsets and access sizes (spec \"Register layout\") */",
    ]
    for offset in regs.Offset:
        out.append(_define(f"{offset.name}_OFFSET", f"{offset.value:#05x}u"))
        if offset in regs.REGISTER_SIZE:
            out.append(_define(f"{offset.name}_SIZE", f"{regs.REGISTER_SIZE[offset]}u"))
    for offset, layout in regs.REGISTERS.items():
        out += ["", f"/* {offset.name.lower()} (spec \"Memory-mapped register interface\") */"]
        out += _layout_lines(offset.name, layout, regs.ACCESS[offset])
        out += _kind_lines(offset)
    out += _hpm_lines()
    out += ["", "/* Sizes of in-memory structures in bytes (spec \"Data Structures\", "
                "\"In-memory queue interface\") */"]
    out += [_define(name, f"{value}u") for name, value in _SIZES.items()]
    for name, layout in LAYOUTS.items():
        out += ["", f"/* {name}: {layout.size} bits */"]
        out += _layout_lines(name, layout)
    for prefix, enum in ENUMS.items():
        out += ["", f"/* {enum.__name__} encodings */"]
        out += [_define(f"{prefix}_{_c_name(m.name)}", f"{m.value}u") for m in enum]
    if config is not None:
        out += ["", "/* capabilities of the configuration this header was generated for */",
                _define("CONFIG_CAPABILITIES", _mask(config.capabilities))]
    out += ["", "#endif /* IOGATE_H */", ""]
    return "\n".join(out)
