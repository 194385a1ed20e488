"""The trace of a batch run: the setup as bus operations, then the requests.

The regression world (:mod:`iogate.cosim.regress.world`, traced by
:func:`iogate.cosim.regress.trace.make_trace`) is built by the driver against the
architectural model, through a :class:`RecordingBus` that writes down what the RTL must be
given to reach the same state: every register write, every register read with the value
the model returned (replayed as a poll until the RTL agrees: the model acts at once, the
hardware in clock cycles), and every doubleword of the on-chip RAM the driver changed, in
program order. The same trace drives the cocotb batch runner, the interactive test bench
and the plain Verilator harness, so all of them run the same workload.

With no table change after setup there is nothing to invalidate during the requests, so
the model's answer is exact up to the caching freedom ``allowed()`` expresses.

Text format (one operation per line, numbers in hex)::

    iogate-batch-trace 1
    W <offset> <size> <value>     register write (4- or 8-byte)
    R <offset> <size> <value>     register read: poll until the RTL returns <value>
    M <address> <value>           the doubleword at <address> of the RAM
    Q <device_id> <iova> <access> a translation request (Access: 0 read, 1 write, 2 exec)
"""

from dataclasses import dataclass, field

from iogate.hdl.port import Access

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.targets.batch.harness import RAM_BASE, RAM_SIZE

__all__ = ["Trace", "RecordingBus", "write_trace", "read_trace", "restrict"]

_MAGIC = "iogate-batch-trace 1"
_PHYS = 1 << 56


@dataclass
class Trace:
    seed: int
    ops: list = field(default_factory=list)       # ("W"|"R", off, size, value), ("M", addr, value)
    requests: list = field(default_factory=list)  # TranslationRequest


class RecordingBus:
    """A ``Bus`` over the model that records the operations the RTL must replay.

    A doubleword write is recorded unless it writes zero over RAM nobody wrote yet (the
    harness's RAM starts zeroed, and the allocator zeroes every page it hands out: most of
    the setup's stores). Stores outside the RAM are not recorded: the RTL has no memory
    there, and :func:`restrict` makes the model agree.
    """

    def __init__(self, model):
        self._bus = ModelBus(model)
        self.memory = model.memory
        self.ops = []
        self._written = set()

    def mmio_read(self, offset, size):
        value = self._bus.mmio_read(offset, size)
        self.ops.append(("R", offset, size, value))
        return value

    def mmio_write(self, offset, size, value):
        self._bus.mmio_write(offset, size, value)
        self.ops.append(("W", offset, size, value))

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, data)
        for dword in range(address & ~7, address + len(data), 8):
            if not RAM_BASE <= dword < RAM_BASE + RAM_SIZE:
                continue
            value = self.memory.read64(dword)
            if value or dword in self._written:
                self.ops.append(("M", dword, value))
                self._written.add(dword)


def restrict(memory):
    """Make ``memory`` fault outside the harness's RAM, as the RTL's bus does (DECERR)."""
    memory.inject_fault(0, RAM_BASE)
    memory.inject_fault(RAM_BASE + RAM_SIZE, _PHYS - RAM_BASE - RAM_SIZE)


def write_trace(trace, path):
    lines = [_MAGIC]
    for op in trace.ops:
        lines.append(op[0] + " " + " ".join(f"{v:x}" for v in op[1:]))
    for r in trace.requests:
        lines.append(f"Q {r.device_id:x} {r.iova:x} {r.access.value:x}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def read_trace(path, seed=None):
    trace = Trace(seed)
    with open(path) as f:
        if f.readline().strip() != _MAGIC:
            raise ValueError(f"{path} is not a batch trace")
        for line in f:
            kind, *values = line.split()
            values = [int(v, 16) for v in values]
            if kind == "Q":
                trace.requests.append(TranslationRequest(values[0], values[1],
                                                         Access(values[2])))
            else:
                trace.ops.append((kind, *values))
    return trace
