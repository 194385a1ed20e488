"""Register access: the access size of each register, fields, bounded polls."""

import pytest

from iogate.hdl.regs import Offset

from iogate.firmware.errors import PollTimeout
from iogate.firmware.mmio import Registers


class RecordingBus:
    """Registers as a dict; every access recorded as (kind, offset, size[, value])."""

    def __init__(self, values=None):
        self.values = dict(values or {})
        self.log = []

    def mmio_read(self, offset, size):
        self.log.append(("r", offset, size))
        return self.values.get(offset, 0)

    def mmio_write(self, offset, size, value):
        self.log.append(("w", offset, size, value))
        self.values[offset] = value


def test_access_sizes_follow_the_register_map():
    # Spec "Register layout": capabilities and ddtp are 8 bytes at 0x0 and 0x10; cqt is 4 bytes at
    # 0x24.
    bus = RecordingBus()
    regs = Registers(bus)
    regs.read(Offset.CAPABILITIES)
    regs.write(Offset.DDTP, 5)
    regs.write(Offset.CQT, 3)
    assert bus.log == [("r", 0x0, 8), ("w", 0x10, 8, 5), ("w", 0x24, 4, 3)]


def test_field():
    # cqcsr.cqon is bit 16 (spec "Command-queue CSR (cqcsr)").
    regs = Registers(RecordingBus({0x48: 1 << 16}))
    assert regs.field(Offset.CQCSR, "cqon") == 1
    assert regs.field(Offset.CQCSR, "cqen") == 0


def test_poll_returns_the_register_when_it_matches():
    class Counting(RecordingBus):
        def mmio_read(self, offset, size):
            super().mmio_read(offset, size)
            return (1 << 16) if len(self.log) >= 3 else 0

    bus = Counting()
    assert Registers(bus, max_polls=5).poll(Offset.CQCSR, "cqon", 1) == 1 << 16
    assert len(bus.log) == 3


def test_poll_is_bounded():
    bus = RecordingBus()
    with pytest.raises(PollTimeout) as e:
        Registers(bus, max_polls=7).poll(Offset.FQCSR, "fqon", 1)
    assert str(e.value) == "timed out after 7 polls waiting for fqcsr.fqon == 1"
    assert e.value.polls == 7 and isinstance(e.value, TimeoutError)
    assert len(bus.log) == 7


@pytest.mark.parametrize("value, error, message", [
    (0, ValueError, "max_polls must be at least 1, not 0"),
    (2.5, TypeError, "max_polls must be an integer, not 2.5"),
    (True, TypeError, "max_polls must be an integer, not True"),
])
def test_max_polls_checked(value, error, message):
    with pytest.raises(error) as e:
        Registers(RecordingBus(), max_polls=value)
    assert str(e.value) == message
