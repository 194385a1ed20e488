"""Register access by spec offset, with bounded polls.

The driver reads and writes registers only through :class:`Registers`, which knows each
register's size (RISC-V IOMMU spec "Register layout": 32-bit registers take only 4-byte accesses,
64-bit ones take 8-byte accesses here) and field layout from :mod:`iogate.hdl.regs`, and which never
waits for the hardware without a bound.
"""

from iogate.hdl import bits
from iogate.hdl.regs import REGISTER_SIZE, REGISTERS, Offset

from iogate.firmware.errors import PollTimeout

__all__ = ["Registers"]


class Registers:
    """The IOMMU's register page, reached through a :class:`~iogate.firmware.bus.Bus`.

    Parameters
    ----------
    bus : Bus
        Where the registers live.
    max_polls : int
        How many reads a poll makes before raising :class:`~iogate.firmware.errors.PollTimeout`.

    Raises
    ------
    TypeError
        If ``max_polls`` is not an integer.
    ValueError
        If ``max_polls`` is less than 1.
    """

    def __init__(self, bus, *, max_polls=10_000):
        if not isinstance(max_polls, int) or isinstance(max_polls, bool):
            raise TypeError(f"max_polls must be an integer, not {max_polls!r}")
        if max_polls < 1:
            raise ValueError(f"max_polls must be at least 1, not {max_polls}")
        self.bus = bus
        self.max_polls = max_polls

    def read(self, offset):
        """The value of the register at ``offset`` (an :class:`~iogate.hdl.regs.Offset`)."""
        offset = Offset(offset)
        return self.bus.mmio_read(int(offset), REGISTER_SIZE[offset])

    def write(self, offset, value):
        """Write ``value`` to the register at ``offset``."""
        offset = Offset(offset)
        self.bus.mmio_write(int(offset), REGISTER_SIZE[offset], int(value))

    def field(self, offset, name):
        """Field ``name`` of the register at ``offset``, read now."""
        offset = Offset(offset)
        return bits.get(REGISTERS[offset], self.read(offset), name)

    def poll(self, offset, name, value):
        """Read the register until field ``name`` equals ``value``; return the register.

        Raises
        ------
        PollTimeout
            If ``max_polls`` reads never showed ``value``.
        """
        offset = Offset(offset)
        layout = REGISTERS[offset]
        for _ in range(self.max_polls):
            word = self.read(offset)
            if bits.get(layout, word, name) == value:
                return word
        raise PollTimeout(f"{offset.name.lower()}.{name} == {value}", self.max_polls)
