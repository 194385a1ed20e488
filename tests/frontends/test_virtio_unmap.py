"""UNMAP: the seven examples of the virtio spec ("UNMAP request"), each from a blank address
space, with the spec's units taken as 4 KiB pages, checked on the mappings the device
keeps and on what DMA reaches afterwards."""

import pytest

from iogate.hdl.formats import Cause

from frontend_helpers import PAGE, attach, map_, pa, status, unmap
from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import Status

BASE = 0x100_0000          # IOVA of unit 0
PHYS = 0x8000_0000         # where unit 0 is mapped to (guest memory)


def _map(dev, a, b):
    # map(virt_start=a, virt_end=b) in the spec's units.
    return map_(dev, 1, BASE + a * PAGE, BASE + (b + 1) * PAGE - 1, PHYS + a * PAGE)


def _unmap(dev, a, b):
    return unmap(dev, 1, BASE + a * PAGE, BASE + (b + 1) * PAGE - 1)


def _mapped_units(dev):
    return [((s - BASE) // PAGE, (e + 1 - BASE) // PAGE - 1) for s, e, _, _ in dev.mappings(1)]


@pytest.mark.parametrize("maps, request_, expected, left", [
    ([], (0, 4), Status.OK, []),                                   # (1)
    ([(0, 9)], (0, 9), Status.OK, []),                             # (2)
    ([(0, 4), (5, 9)], (0, 9), Status.OK, []),                     # (3)
    ([(0, 9)], (0, 4), Status.RANGE, [(0, 9)]),                    # (4) fails, unmaps nothing
    ([(0, 4), (5, 9)], (0, 4), Status.OK, [(5, 9)]),               # (5)
    ([(0, 4)], (0, 9), Status.OK, []),                             # (6)
    ([(0, 4), (10, 14)], (0, 14), Status.OK, []),                  # (7)
], ids=["1", "2", "3", "4", "5", "6", "7"])
def test_spec_examples(dev, host, maps, request_, expected, left):
    attach(dev, 1, 8)
    for a, b in maps:
        assert _map(dev, a, b) == Status.OK
    for unit in range(15):                  # DMA first, so the IOTLB holds the mappings
        pa(host, 8, BASE + unit * PAGE)
    assert _unmap(dev, *request_) == expected
    assert _mapped_units(dev) == left
    for unit in range(15):
        still = any(a <= unit <= b for a, b in left)
        # Once UNMAP has completed no cached answer may remain: only the current one.
        answers = host.model.allowed(8, BASE + unit * PAGE, "read")
        if still:
            assert [a.pa for a in answers] == [PHYS + unit * PAGE]
        else:
            assert answers and all(a.fault and a.cause == Cause.READ_PAGE_FAULT
                                   for a in answers)


def test_split_is_atomic_across_several_mappings(dev, host):
    # Spec over QEMU: the range covers (0,4) fully and splits (5,9); nothing is removed.
    attach(dev, 1, 8)
    _map(dev, 0, 4)
    _map(dev, 5, 9)
    assert _unmap(dev, 0, 7) == Status.RANGE
    assert _mapped_units(dev) == [(0, 4), (5, 9)]
    assert pa(host, 8, BASE) == PHYS


def test_unmap_on_unknown_domain_and_reserved(dev):
    attach(dev, 1, 8)
    _map(dev, 0, 4)
    assert unmap(dev, 2, BASE, BASE + PAGE - 1) == Status.NOENT
    assert status(dev, rq.Unmap(1, BASE, BASE + 5 * PAGE - 1, b"\x01\0\0\0")) == Status.INVAL
    assert unmap(dev, 1, BASE + PAGE, BASE) == Status.INVAL        # end < start
    assert _mapped_units(dev) == [(0, 4)]


def test_unmapped_range_can_be_mapped_again(dev, host):
    attach(dev, 1, 8)
    _map(dev, 0, 4)
    _unmap(dev, 0, 4)
    assert map_(dev, 1, BASE, BASE + 5 * PAGE - 1, PHYS + 0x10_0000) == Status.OK
    assert pa(host, 8, BASE + 3 * PAGE + 5) == PHYS + 0x10_0000 + 3 * PAGE + 5
