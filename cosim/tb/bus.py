"""A :class:`firmware.bus.Bus` over the test-bench agents, mirrored into the model.

The driver is synchronous; in cosimulation it runs in a thread started with
``cocotb.bridge`` and each register access hops back into the simulation with
``cocotb.resume``. Memory accesses go straight to the shared ``Memory`` (as a CPU's stores
reach DRAM without passing through the IOMMU).

Every register access is applied to the RTL *and* to the architectural model; every read
compares the two and records a mismatch when they differ, so programming the hardware is
itself a check of the register file.
"""

import cocotb

__all__ = ["MirroredBus"]


class MirroredBus:
    """``Bus`` for a :class:`~cosim.tb.testbench.Testbench` and an ``IommuModel``.

    Attributes
    ----------
    mismatches : list of str
        One readable line per register read on which RTL and model disagreed.
    """

    def __init__(self, tb, model=None):
        self.tb = tb
        self.model = model
        self.mismatches = []
        self._read = cocotb.resume(tb.mmio_read)
        self._write = cocotb.resume(tb.mmio_write)

    def mmio_read(self, offset, size):
        value = self._read(offset, size)
        if self.model is not None:
            expected = self.model.mmio_read(offset, size)
            if value != expected:
                self.mismatches.append(
                    f"mmio read {offset:#05x}/{size}: rtl {value:#x} model {expected:#x}")
        return value

    def mmio_write(self, offset, size, value):
        self._write(offset, size, value)
        if self.model is not None:
            self.model.mmio_write(offset, size, value)

    def mem_read(self, address, length):
        return self.tb.memory.read(address, length)

    def mem_write(self, address, data):
        self.tb.memory.write(address, data)
