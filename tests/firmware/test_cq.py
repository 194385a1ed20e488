"""The command-queue producer: the ring, fences, and each error the IOMMU can report."""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.regs import CQCSR, QB, Offset

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.cq import CommandQueue
from iogate.firmware.errors import (
    CommandIllegal,
    CommandMemoryFault,
    CommandQueueError,
    PollTimeout,
)
from iogate.firmware.mmio import Registers

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus

REGION = 0x1_0000_0000


class SlowIommu:
    """Just enough of an IOMMU's command queue (spec "Command-Queue (CQ)"): cqen -> cqon, and one
    command consumed per read of cqh (none if ``stuck``), an IOFENCE.C with AV storing DATA."""

    def __init__(self, stuck=False):
        self.memory = Memory()
        self.regs = {}
        self.stuck = stuck
        self.consumed = []

    def mmio_read(self, offset, size):
        if offset == Offset.CQCSR:
            return (self.regs.get(offset, 0) & 1) << 16
        if offset == Offset.CQH:
            self._step()
        return self.regs.get(offset, 0)

    def mmio_write(self, offset, size, value):
        self.regs[offset] = value
        if offset == Offset.CQCSR and value & 1:
            self.regs[Offset.CQH] = 0

    def _step(self):
        head, tail = self.regs.get(Offset.CQH, 0), self.regs.get(Offset.CQT, 0)
        if self.stuck or head == tail:
            return
        qb = self.regs[Offset.CQB]
        entries = 2 << bits.get(QB, qb, "log2szm1")
        base = bits.get(QB, qb, "ppn") << 12
        cmd = commands.from_bytes(self.memory.read(base + 16 * head, 16))
        self.consumed.append(cmd)
        if cmd & 0x3FF == 2 and cmd >> 10 & 1:  # IOFENCE.C with AV
            self.memory.write((cmd >> 64) << 2, (cmd >> 32 & 0xFFFF_FFFF).to_bytes(4, "little"))
        self.regs[Offset.CQH] = (head + 1) % entries

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, data)


def queue(bus, entries=64, max_polls=100):
    cq = CommandQueue(Registers(bus, max_polls=max_polls), PageAllocator(bus, REGION, 1 << 20),
                      entries=entries)
    cq.enable()
    return cq


def model_queue(entries=64):
    model = IommuModel(Config(), Memory())
    return model, queue(ModelBus(model), entries)


def test_a_full_ring_waits_for_room():
    # 4 entries hold 3 commands (full is cqt == cqh - 1): the 4th must wait for cqh.
    iommu = SlowIommu()
    cq = queue(iommu, entries=4)
    cmds = [commands.iotinval_vma(pscid=i) for i in range(6)]
    cq.submit(*cmds)
    cq.fence()
    assert iommu.consumed[:6] == cmds
    assert len(iommu.consumed) == 7 and iommu.consumed[6] & 0x7F == 2


def test_a_fence_that_never_completes_times_out():
    cq = queue(SlowIommu(stuck=True), max_polls=20)
    with pytest.raises(PollTimeout) as e:
        cq.fence()
    assert str(e.value) == ("timed out after 20 polls waiting for IOFENCE.C #1 at cqh index 0 "
                            "to complete")


def test_a_ring_that_never_drains_times_out():
    cq = queue(SlowIommu(stuck=True), entries=2, max_polls=20)
    with pytest.raises(PollTimeout, match=r"room in the command queue \(cqh to advance\)$"):
        cq.submit(commands.iotinval_vma(), commands.iotinval_vma())


def test_wraparound_on_the_model():
    model, cq = model_queue(entries=4)
    for _ in range(10):
        cq.fence()
    # Ten one-command fences: cqt = 10 mod 4 = 2, all consumed, the last DATA stored.
    assert cq.tail == 2 and model.mmio_read(Offset.CQH, 4) == 2
    assert model.memory.read(cq.completion, 4) == (10).to_bytes(4, "little")


def test_base_register_for_a_two_page_queue():
    model, cq = model_queue(entries=512)
    # 512 x 16 B = 8 KiB: naturally aligned; LOG2SZ-1 = 8.
    assert cq.base % 8192 == 0
    assert model.mmio_read(Offset.CQB, 8) == (cq.base >> 12) << 10 | 8


def test_a_queue_larger_than_the_iommu_offers_takes_its_largest():
    """LOG2SZ-1 is WARL (spec "Command-queue base (cqb)"): with queue_log2sz_max=3 the
    IOMMU reads back 8 entries for a request of 64, and the ring wraps at 8."""
    model = IommuModel(Config(queue_log2sz_max=3), Memory())
    cq = queue(ModelBus(model), entries=64)
    assert cq.entries == 8
    assert model.mmio_read(Offset.CQB, 8) & 0x1F == 2
    for _ in range(11):
        cq.fence()
    assert cq.tail == 3 and model.mmio_read(Offset.CQH, 4) == 3
    assert model.memory.read(cq.completion, 4) == (11).to_bytes(4, "little")


@pytest.mark.parametrize("bad", [
    5,                                       # opcode 5 is reserved
    commands.iotinval_vma() | 1 << 11,       # IOTINVAL dword0 bit 11 is reserved
    commands.iotinval_gvma() | 1 << 32,      # PSCV=1 with GVMA is illegal
    commands.iodir_inval_ddt() | 1 << 64,    # IODIR dword1 is reserved
])
def test_illegal_command(bad):
    model, cq = model_queue()
    cq.submit(commands.iodir_inval_ddt())
    with pytest.raises(CommandIllegal) as e:
        cq.submit(bad)
        cq.fence()
    # cqh stopped at the bad command, the second in the ring (spec "Command-queue CSR (cqcsr)",
    # cmd_ill).
    assert (e.value.index, e.value.command) == (1, bad)
    assert str(e.value) == (f"command queue stopped with cqcsr.cmd_ill at cqh=1 "
                            f"(command {bad:#034x})")
    assert isinstance(e.value, CommandQueueError)
    cq.recover()
    assert bits.get(CQCSR, model.mmio_read(Offset.CQCSR, 4), "cmd_ill") == 0
    cq.fence()
    assert model.mmio_read(Offset.CQH, 4) == cq.tail


def test_completion_store_fault():
    model, cq = model_queue()
    model.memory.inject_fault(cq.completion, 4)
    with pytest.raises(CommandMemoryFault) as e:
        cq.fence()
    # A faulting IOFENCE.C store leaves cqh at the fence (spec "IOMMU Command-queue Fence
    # commands").
    assert e.value.index == 0 and e.value.command & 0x7F == 2
    model.memory.clear_faults()
    cq.recover()
    cq.fence()
    assert model.mmio_read(Offset.CQH, 4) == cq.tail == 2


@pytest.mark.parametrize("entries", [1, 3, 1 << 21, "64"])
def test_entries_checked(entries):
    with pytest.raises(ValueError,
                       match=r"^entries must be a power of two from 2 to 2\*\*20, not "):
        CommandQueue(Registers(SlowIommu()), None, entries=entries)
