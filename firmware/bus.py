"""The ``Bus``: how the driver reaches an IOMMU, whatever implements it.

The driver only ever talks to an IOMMU through these four calls: register accesses at spec
offsets (RISC-V IOMMU spec "Register layout": 4- and 8-byte, naturally aligned, little-endian) and
system-memory accesses for the in-memory tables and queues. The architectural model, the
cocotb AXI agents around the RTL and a board's serial link each provide one.
"""

from typing import Protocol, runtime_checkable

__all__ = ["Bus"]


@runtime_checkable
class Bus(Protocol):
    def mmio_read(self, offset: int, size: int) -> int:
        """Read the ``size``-byte (4 or 8) register at ``offset``."""

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """Write ``value`` to the ``size``-byte (4 or 8) register at ``offset``."""

    def mem_read(self, address: int, length: int) -> bytes:
        """Read system memory."""

    def mem_write(self, address: int, data: bytes) -> None:
        """Write system memory."""
