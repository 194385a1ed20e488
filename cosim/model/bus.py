"""``ModelBus``: a :class:`iogate.firmware.bus.Bus` whose IOMMU is the architectural model.

The driver in :mod:`firmware` reaches an IOMMU only through a ``Bus``. Over the model,
register accesses go to :class:`~iogate.cosim.model.IommuModel` and memory accesses to its
:class:`~iogate.cosim.model.memory.Memory`. The model runs commands only when asked, so after each
write to ``cqt`` or ``cqcsr`` the bus runs the command queue, the way hardware would
start fetching on its own: a driver polling for an ``IOFENCE.C`` completion then sees it.
"""

from iogate.hdl.regs import Offset

from iogate.cosim.model.iommu import IommuModel

__all__ = ["ModelBus"]

#: Writes after which the command queue may have work (``cqt``, ``cqcsr``).
_KICK = {Offset.CQT, Offset.CQCSR}


class ModelBus:
    """A ``Bus`` over an :class:`~iogate.cosim.model.IommuModel`.

    Parameters
    ----------
    iommu : IommuModel

    Raises
    ------
    TypeError
        If ``iommu`` is not an :class:`~iogate.cosim.model.IommuModel`.
    """

    def __init__(self, iommu: IommuModel) -> None:
        if not isinstance(iommu, IommuModel):
            raise TypeError(f"iommu must be an IommuModel, not {iommu!r}")
        self.iommu = iommu

    def mmio_read(self, offset: int, size: int) -> int:
        return self.iommu.mmio_read(offset, size)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        self.iommu.mmio_write(offset, size, value)
        # An 8-byte write covering cqt (at 0x20) or cqcsr (in 0x48) counts too.
        if any(offset <= k < offset + size for k in _KICK):
            self.iommu.process_commands()

    def mem_read(self, address: int, length: int) -> bytes:
        return self.iommu.memory.read(address, length)

    def mem_write(self, address: int, data: bytes) -> None:
        self.iommu.memory.write(address, data)
