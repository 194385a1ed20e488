"""iogate.cosim.scenarios.linux on the model target: the replay gives up where Linux would.

Each test perturbs one answer of the target (not of the checking model) the way a
hardware bug would, and the replay must stop in the driver function that would refuse it.
"""

import pytest

from iogate.hdl import Config
from iogate.hdl.regs import Offset

from iogate.cosim.client.host import Host
from iogate.cosim.client.targets import ModelTarget
from iogate.cosim.scenarios.linux import LinuxRefuses, replay

_ON, _BUSY = 1 << 16, 1 << 17


def host_with(config, answer):
    """A host whose target's register reads go through ``answer(offset, size, value)``."""
    target = ModelTarget(config)
    read = target.mmio_read
    target.mmio_read = lambda offset, size: answer(offset, size, read(offset, size))
    return Host(target)


def test_the_replay_passes_on_a_faithful_target():
    r = replay(Host(ModelTarget(Config.full())))
    assert (r["ddt_mode"], r["first_stage"], r["fault_records"]) == ("3LVL", "Sv48", 9)


def test_on_must_be_set_in_the_read_that_shows_busy_clear():
    """cqcsr's first read after the enable shows neither BUSY nor ON; Linux does not poll
    ON, so it gives up even though ON would read 1 a moment later."""
    first = []

    def answer(offset, size, value):
        if offset == Offset.CQCSR and value & _ON and not first:
            first.append(value)
            return value & ~_ON
        return value

    with pytest.raises(LinuxRefuses, match="riscv_iommu_queue_enable: queue #0 failed"):
        replay(host_with(Config(), answer))


def test_a_queue_base_that_does_not_read_back_exactly():
    """fqb's PPN loses a bit the ring's address has (the host's tables are at 64 GiB:
    PPN bit 24, register bit 34), as a WARL field narrower than PAS would."""
    def answer(offset, size, value):
        return value & ~(1 << 34) if offset == Offset.FQB else value

    with pytest.raises(LinuxRefuses, match="riscv_iommu_queue_alloc: queue #1 allocation"):
        replay(host_with(Config(), answer))


def test_an_unsupported_mode_that_answers_another_xlvl():
    """3LVL asked of a 1LVL iogate must leave Off in place; answering 2LVL makes Linux give
    up rather than lower the request."""
    def answer(offset, size, value):
        if offset == Offset.DDTP and value & 0xF == 0:
            return value | 3 if answer.asked_3lvl else value
        return value

    answer.asked_3lvl = False
    host = host_with(Config(), answer)
    write = host.target.mmio_write

    def mmio_write(offset, size, value):
        answer.asked_3lvl = offset == Offset.DDTP and value & 0xF == 4
        write(offset, size, value)

    host.target.mmio_write = mmio_write
    with pytest.raises(LinuxRefuses, match="DDTP hw mode 3, failed to set 4"):
        replay(host)


def test_icvec_that_names_a_vector_linux_does_not_have():
    def answer(offset, size, value):
        return value | 0xF000 if offset == Offset.ICVEC else value

    with pytest.raises(LinuxRefuses, match="riscv_iommu_init_check: icvec"):
        replay(host_with(Config(), answer))
