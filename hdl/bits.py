"""Packing and unpacking Python integers with the same layouts the RTL uses.

Every register, device-context word, PTE, command and fault record is described once, as an
Amaranth ``data.StructLayout`` (see :mod:`iogate.hdl.regs` and :mod:`iogate.hdl.formats`). The RTL
views signals through those layouts; the model, the driver and the header generator use these
helpers to read and build the same words as plain integers, so a field can never sit at one
bit position in hardware and another in software.
"""


__all__ = ["field_range", "get", "put", "pack", "unpack", "mask"]


def field_range(layout, name):
    """``(offset, width)`` of field ``name`` of ``layout``."""
    f = layout[name]
    return f.offset, f.width


def mask(layout, name):
    """The mask of field ``name`` in place (for example ``mask(DDTP, "ppn")``)."""
    off, width = field_range(layout, name)
    return ((1 << width) - 1) << off


def get(layout, word, name):
    """Field ``name`` of the integer ``word`` laid out as ``layout``."""
    off, width = field_range(layout, name)
    return (word >> off) & ((1 << width) - 1)


def put(layout, word, name, value):
    """``word`` with field ``name`` replaced by ``value``.

    Raises
    ------
    ValueError
        If ``value`` does not fit the field.
    """
    off, width = field_range(layout, name)
    value = int(value)
    if value < 0 or value >> width:
        raise ValueError(f"value {value:#x} does not fit field {name!r} of {width} bits")
    m = ((1 << width) - 1) << off
    return (word & ~m) | (value << off)


def pack(layout, **fields):
    """An integer with the given fields set and every other bit 0."""
    word = 0
    for name, value in fields.items():
        word = put(layout, word, name, value)
    return word


def unpack(layout, word):
    """A ``dict`` of every named field of ``word``."""
    return {name: get(layout, word, name) for name, _ in layout}


def reserved_mask(layout):
    """Bits of ``layout`` covered by no field whose name starts with anything but ``_rsvd``.

    Layouts name reserved ranges ``_rsvdN``; this gives the mask of those bits, which is
    what the "reserved bit set" checks of the spec look at.
    """
    m = 0
    for name, field in layout:
        if name.startswith("_rsvd"):
            m |= ((1 << field.width) - 1) << field.offset
    return m


__all__.append("reserved_mask")
