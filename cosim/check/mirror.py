"""``Mirror``: a :class:`iogate.firmware.bus.Bus` that drives a target and the architectural
model together, so that programming the hardware is itself a check of its register file.

Every register write goes to the target and to the model (through
:class:`~iogate.cosim.model.bus.ModelBus`, so the model runs its command queue when
``cqt`` or ``cqcsr`` is written, as the hardware starts fetching on its own). Every register
read comes from the target and is compared with the model. The model acts at once while
the hardware takes clock cycles (Go/Busy, ``cqon``, busy bits, queue pointers), so a read
that differs is repeated until the target agrees, and counts as a mismatch only if it never
does within ``settle_reads``. Some bits the model cannot predict (the performance monitor's
clock-cycle count, walk and IOATC-miss counts, the OFs and ``ipsr.pmip`` they may set:
:mod:`iogate.cosim.model.hpm`): a read is compared only on the bits the model knows, and for
the others the model adopts the target's value, so that later arithmetic on them (a wrap after
a known increment) is exact again. A bit the model predicts is never left out. Memory reads
come from the target; memory writes go to the target and, where the model walks a memory of
its own (a board's shadow), to that memory too.
"""

from iogate.firmware.bus import Bus

from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.iommu import IommuModel

__all__ = ["Mirror"]


class Mirror:
    """A ``Bus`` over ``target`` (any ``Bus``) and ``model`` (an ``IommuModel`` or None).

    Parameters
    ----------
    target : iogate.firmware.bus.Bus
        The iogate being driven: the cocotb test bench, a board link, ...
    model : iogate.cosim.model.IommuModel or None
        None drives the target alone, with no checks.
    settle_reads : int
        How many times a differing register read is repeated before it is a mismatch.
    mirror_memory : bool
        Also write memory into ``model.memory``: True where the model walks a shadow of the
        target's memory, False where the two share one :class:`~iogate.cosim.model.Memory`.
    name : str
        What the target is called in mismatch lines (``rtl``, ``board``).

    Attributes
    ----------
    mismatches : list of str
        One readable line per register read on which target and model disagreed.
    """

    def __init__(self, target: Bus, model: IommuModel | None, *, settle_reads: int = 16,
                 mirror_memory: bool = True, name: str = "target") -> None:
        self.target = target
        self.model = model
        self.model_bus = ModelBus(model) if model is not None else None
        self.settle_reads = settle_reads
        self.mirror_memory = mirror_memory
        self.name = name
        self.mismatches: list[str] = []

    def record(self, offset: int, size: int, value: int, expected: int,
               care: int | None = None) -> None:
        """Note a register read that never settled to what the model says (on the bits
        ``care`` names, all when None)."""
        known = "" if care is None or care == (1 << (8 * size)) - 1 else f" care {care:#x}"
        self.mismatches.append(f"mmio read {offset:#05x}/{size}: {self.name} {value:#x} "
                               f"model {expected:#x}{known}")

    def mmio_read(self, offset: int, size: int) -> int:
        value = self.target.mmio_read(offset, size)
        if self.model_bus is None:
            return value
        expected, care = self.expected(offset, size)
        for _ in range(self.settle_reads):
            if value & care == expected & care:
                break
            value = self.target.mmio_read(offset, size)
        else:
            self.record(offset, size, value, expected, care)
        self.accept(offset, size, value)
        return value

    def expected(self, offset: int, size: int) -> tuple[int, int]:
        """``(value, care)``: what the model says a read gives, and the bits it knows."""
        assert self.model is not None
        return self.model.mmio_read_care(offset, size)

    def accept(self, offset: int, size: int, value: int) -> None:
        """The model adopts the target's ``value`` of a read for the bits it does not know
        (after the known ones were compared)."""
        assert self.model is not None
        self.model.adopt(offset, size, value)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        self.target.mmio_write(offset, size, value)
        if self.model_bus is not None:
            self.model_bus.mmio_write(offset, size, value)

    def mem_read(self, address: int, length: int) -> bytes:
        return self.target.mem_read(address, length)

    def mem_write(self, address: int, data: bytes) -> None:
        self.target.mem_write(address, data)
        if self.mirror_memory and self.model is not None:
            self.model.memory.write(address, data)
