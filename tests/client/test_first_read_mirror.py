"""cosim.client.host.FirstReadMirror: a host script's register reads on a checked target.

The first value the target gives is the one the script sees; the bits the model knows must
settle to the model's, the bits it does not know (performance-counter counts, reference N.7)
are adopted from that first value, not reported.
"""

from iogate.hdl import Config
from iogate.hdl.regs import Offset

from iogate.cosim.client.host import FirstReadMirror
from iogate.cosim.model import IommuModel
from iogate.cosim.model.memory import Memory


class Target:
    """A register target that answers from a list, then repeats its last answer."""

    def __init__(self, *values):
        self.values = list(values)
        self.reads = 0

    def mmio_read(self, offset, size):
        self.reads += 1
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]

    def mmio_write(self, offset, size, value):
        pass


def test_a_counter_count_is_adopted_not_a_mismatch():
    model = IommuModel(Config.hpm(), Memory())
    mirror = FirstReadMirror(Target(12345), model, settle_reads=4)
    assert mirror.mmio_read(Offset.IOHPMCYCLES, 8) == 12345
    assert mirror.mismatches == []


def test_known_bits_that_never_settle_are_a_mismatch_and_the_first_value_is_returned():
    model = IommuModel(Config(), Memory())
    right = model.mmio_read(Offset.CAPABILITIES, 8)
    mirror = FirstReadMirror(Target(right ^ 1), model, settle_reads=4)
    assert mirror.mmio_read(Offset.CAPABILITIES, 8) == right ^ 1
    assert len(mirror.mismatches) == 1 and "0x000/8" in mirror.mismatches[0]


def test_a_transient_is_returned_but_settles_without_a_mismatch():
    model = IommuModel(Config(), Memory())
    right = model.mmio_read(Offset.CAPABILITIES, 8)
    target = Target(right ^ 1, right)
    mirror = FirstReadMirror(target, model, settle_reads=4)
    assert mirror.mmio_read(Offset.CAPABILITIES, 8) == right ^ 1
    assert mirror.mismatches == [] and target.reads == 2
