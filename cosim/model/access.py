"""Which register accesses the model takes, and the error it raises for the others.

Spec "Memory-mapped register interface": the registers sit in one naturally aligned 4 KiB
page; "the IOMMU behavior for register accesses where the address is not aligned to the size
of the access, or if the access spans multiple registers, or if the size of the access is not
4 bytes or 8 bytes, is UNSPECIFIED". An 8-byte register may be accessed as two 4-byte halves.
The model has no UNSPECIFIED answer to give, so it refuses every such access with a
:class:`RegisterAccessError` naming the access and the rule it breaks, instead of guessing
one of the answers hardware might give:

* a size other than 4 or 8 bytes;
* an offset outside the 4 KiB page (the page is the whole register map);
* an offset not aligned to the size;
* an offset in a range "Register layout" marks reserved (0x274-0x2AF, 0x400-0xFFF): no
  register lives there, so there is nothing to access;
* an 8-byte access to a 4-byte register (it spans two registers, or a register and a
  reserved or custom slot).

What remains is answered: every register of the layout, present or not (an optional
register that ``capabilities`` says is absent reads 0 and ignores writes, the spec's own
rule), and the custom ranges (0x00C, 0x2B0-0x2F7; iogate defines no custom register there,
so they read 0 and ignore writes like an absent register).
"""

__all__ = ["RegisterAccessError", "LAYOUT", "register_at", "refusal", "check_access"]

#: The register page (spec "Memory-mapped register interface").
PAGE = 4096

#: Spec "Register layout": ``(offset, length, size of each register in it or None, name)``.
#: ``None`` marks the custom ranges (iogate has no register there: any aligned 4- or 8-byte
#: access reads 0) and ``reserved`` the ranges with no register at all.
LAYOUT = (
    (0x000, 8, 8, "capabilities"), (0x008, 4, 4, "fctl"), (0x00C, 4, 4, "custom"),
    (0x010, 8, 8, "ddtp"), (0x018, 8, 8, "cqb"), (0x020, 4, 4, "cqh"), (0x024, 4, 4, "cqt"),
    (0x028, 8, 8, "fqb"), (0x030, 4, 4, "fqh"), (0x034, 4, 4, "fqt"),
    (0x038, 8, 8, "pqb"), (0x040, 4, 4, "pqh"), (0x044, 4, 4, "pqt"),
    (0x048, 4, 4, "cqcsr"), (0x04C, 4, 4, "fqcsr"), (0x050, 4, 4, "pqcsr"),
    (0x054, 4, 4, "ipsr"), (0x058, 4, 4, "iocountovf"), (0x05C, 4, 4, "iocountinh"),
    (0x060, 8, 8, "iohpmcycles"), (0x068, 248, 8, "iohpmctr"), (0x160, 248, 8, "iohpmevt"),
    (0x258, 8, 8, "tr_req_iova"), (0x260, 8, 8, "tr_req_ctl"), (0x268, 8, 8, "tr_response"),
    (0x270, 4, 4, "iommu_qosid"), (0x274, 60, None, "reserved"), (0x2B0, 72, None, "custom"),
    (0x2F8, 8, 8, "icvec"), (0x300, 256, None, "msi_cfg_tbl"), (0x400, 3072, None, "reserved"),
)


def _msi_cfg(offset: int) -> tuple[str, int, int]:
    # msi_cfg_tbl entry x at 0x300 + 16x: msi_addr_x (8 bytes), msi_data_x, msi_vec_ctl_x.
    x, at = divmod(offset - 0x300, 16)
    name, base, size = (("msi_addr", 0, 8), ("msi_data", 8, 4), ("msi_vec_ctl", 12, 4))[
        0 if at < 8 else 1 if at < 12 else 2]
    return f"{name}_{x}", 0x300 + 16 * x + base, size


def register_at(offset: int) -> tuple[str, int, int | None]:
    """``(name, base, size)`` of the register holding byte ``offset`` of the page.

    ``size`` is None in a custom range (no register boundaries there); ``name`` is
    ``"reserved"`` in a reserved range. Registers of an array are numbered from 1
    (``iohpmctr1``) as the spec names them.
    """
    for start, length, size, name in LAYOUT:
        if start <= offset < start + length:
            if name == "msi_cfg_tbl":
                return _msi_cfg(offset)
            if size is None:
                return name, start, None
            base = offset - (offset - start) % size
            if length > size:
                name = f"{name}{(base - start) // size + 1}"
            return name, base, size
    raise ValueError(f"offset {offset:#x} is outside the register page")


def refusal(offset: int, size: int) -> str | None:
    """Why an access of ``size`` bytes at ``offset`` is refused, or None if it is taken."""
    if size not in (4, 8):
        return (f"size must be 4 or 8, not {size!r} (spec \"Memory-mapped register interface\": "
                f"other sizes are UNSPECIFIED)")
    if not isinstance(offset, int) or offset < 0 or offset + size > PAGE:
        return (f"offset must be within the 4 KiB register page, not {offset!r} (spec "
                f"\"Memory-mapped register interface\")")
    if offset % size:
        return (f"offset {offset:#x} is not aligned to {size} bytes (spec \"Memory-mapped "
                f"register interface\": a misaligned access is UNSPECIFIED)")
    name, base, reg_size = register_at(offset)
    if name == "reserved":
        return (f"offset {offset:#x} is reserved (spec \"Register layout\"): no register "
                f"lives there")
    if reg_size is not None and size > reg_size:
        upper, _, _ = register_at(offset + 4)
        return (f"an {size}-byte access to the {reg_size}-byte register {name} spans {name} "
                f"and {upper} (spec \"Memory-mapped register interface\": an access spanning "
                f"several registers is UNSPECIFIED)")
    return None


class RegisterAccessError(ValueError):
    """A register access the model refuses (see the module docstring).

    Attributes
    ----------
    op : str
        ``"read"`` or ``"write"``.
    offset, size : int
        The access.
    rule : str
        The rule it breaks, citing the spec.
    """

    def __init__(self, op: str, offset: int, size: int, rule: str) -> None:
        self.op, self.offset, self.size, self.rule = op, offset, size, rule
        where = f"{offset:#05x}" if isinstance(offset, int) else repr(offset)
        super().__init__(f"register {op} of {size!r} bytes at {where} refused: {rule}")


def check_access(op: str, offset: int, size: int) -> None:
    """Raise :class:`RegisterAccessError` unless the model takes the access."""
    rule = refusal(offset, size)
    if rule is not None:
        raise RegisterAccessError(op, offset, size, rule)
