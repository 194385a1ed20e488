"""A :class:`firmware.bus.Bus` over the test-bench agents, mirrored into the model.

The driver is synchronous; in cosimulation it runs in a thread started with
``cocotb.bridge`` and each register access hops back into the simulation with
``cocotb.resume``. Memory accesses go straight to the shared ``Memory`` (as a CPU's stores
reach DRAM without passing through the IOMMU).

Every register access is applied to the RTL *and* to the architectural model; every read
compares the two and records a mismatch when they differ, so programming the hardware is
itself a check of the register file. The model acts at once while the hardware takes clock
cycles (Go/Busy, cqon, busy bits, queue pointers), so a read that differs is repeated until
the RTL agrees, and counts as a mismatch only if it never does within ``settle_reads``.
The model side goes through a :class:`cosim.model.bus.ModelBus`, so the model runs its
command queue when ``cqt`` or ``cqcsr`` is written, as the hardware does.
"""

from cocotb.task import resume

__all__ = ["MirroredBus"]


class MirroredBus:
    """``Bus`` for a :class:`~cosim.tb.testbench.Testbench` and an ``IommuModel``.

    The ``a``-prefixed coroutines are for cocotb code; the plain methods are the ``Bus``
    protocol, for synchronous code running under ``cocotb.bridge``.

    Attributes
    ----------
    mismatches : list of str
        One readable line per register read on which RTL and model disagreed.
    """

    def __init__(self, tb, model=None, *, settle_reads=1000):
        from ..model.bus import ModelBus
        self.tb = tb
        self.model = model
        self._model_bus = ModelBus(model) if model is not None else None
        self.settle_reads = settle_reads
        self.mismatches = []
        self.mmio_read = resume(self.aread)
        self.mmio_write = resume(self.awrite)

    async def aread(self, offset, size):
        value = await self.tb.mmio_read(offset, size)
        if self.model is None:
            return value
        expected = self._model_bus.mmio_read(offset, size)
        for _ in range(self.settle_reads):
            if value == expected:
                return value
            value = await self.tb.mmio_read(offset, size)
        self.mismatches.append(
            f"mmio read {offset:#05x}/{size}: rtl {value:#x} model {expected:#x}")
        return value

    async def awrite(self, offset, size, value):
        await self.tb.mmio_write(offset, size, value)
        if self.model is not None:
            self._model_bus.mmio_write(offset, size, value)

    def mem_read(self, address, length):
        return self.tb.memory.read(address, length)

    def mem_write(self, address, data):
        self.tb.memory.write(address, data)
