"""A :class:`iogate.firmware.bus.Bus` over the test-bench agents, mirrored into the model.

The driver is synchronous; in cosimulation it runs in a thread started with
``cocotb.bridge`` and each register access hops back into the simulation with
``cocotb.resume``. Memory accesses go straight to the shared ``Memory`` (as a CPU's stores
reach DRAM without passing through the IOMMU), which the model walks too.

The checks are :class:`iogate.cosim.check.mirror.Mirror`'s; this module adds the
coroutine forms for cocotb code.
"""

from cocotb.task import resume

from iogate.cosim.check.mirror import Mirror

__all__ = ["MirroredBus", "TestbenchBus"]


class TestbenchBus:
    """The plain ``Bus`` of a :class:`~iogate.cosim.targets.tb.testbench.Testbench`, for
    synchronous code running under ``cocotb.bridge``."""

    def __init__(self, tb):
        self.tb = tb

    # The test bench's coroutines are looked up at each call, so that a benchmark that
    # wraps ``tb.mmio_write`` (to stamp it) sees the driver's writes too.
    def mmio_read(self, offset, size):
        return resume(self.tb.mmio_read)(offset, size)

    def mmio_write(self, offset, size, value):
        resume(self.tb.mmio_write)(offset, size, value)

    def mem_read(self, address, length):
        return self.tb.memory.read(address, length)

    def mem_write(self, address, data):
        self.tb.memory.write(address, data)


class MirroredBus(Mirror):
    """``Bus`` for a :class:`~iogate.cosim.targets.tb.testbench.Testbench` and an
    ``IommuModel``.

    The ``a``-prefixed coroutines are for cocotb code; the plain methods are the ``Bus``
    protocol, for synchronous code running under ``cocotb.bridge``.
    """

    def __init__(self, tb, model=None, *, settle_reads=1000):
        super().__init__(TestbenchBus(tb), model, settle_reads=settle_reads,
                         mirror_memory=False, name="rtl")
        self.tb = tb

    async def aread(self, offset, size):
        value = await self.tb.mmio_read(offset, size)
        if self.model_bus is None:
            return value
        # The same steps as Mirror.mmio_read: the known bits compared (retried while the
        # hardware settles), the unknown ones (HPM counts) adopted by the model.
        expected, care = self.expected(offset, size)
        for _ in range(self.settle_reads):
            if value & care == expected & care:
                break
            value = await self.tb.mmio_read(offset, size)
        else:
            self.record(offset, size, value, expected, care)
        self.accept(offset, size, value)
        return value

    async def awrite(self, offset, size, value):
        await self.tb.mmio_write(offset, size, value)
        if self.model_bus is not None:
            self.model_bus.mmio_write(offset, size, value)
