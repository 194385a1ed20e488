"""Property: random map/unmap sequences through the driver leave the model translating
exactly as an independent interval map says.

The model runs with its caches on (``cache=True``): it answers from its IOTLB and
device-context cache like hardware would, so an invalidation the driver forgets shows up
as a stale answer. The oracle is a plain sorted list of ``(start, end, pa, perms, pbmt)``
intervals kept by the test, knowing nothing of page tables.
"""

import bisect

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iogate.hdl import Config
from iogate.hdl.formats import Cause, IohgatpMode, IosatpMode, Pbmt

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
DID = 0x4321
PSCID, GSCID = 0x55, 0x7

# Faults of a missing mapping or permission, by access (Privileged spec "Virtual Address
# Translation Process"; second-stage ones are guest-page faults, spec "Fault/Event-Queue (FQ)" CAUSE
# table).
PAGE_FAULT = {"read": Cause.READ_PAGE_FAULT, "write": Cause.WRITE_PAGE_FAULT,
              "execute": Cause.INSTRUCTION_PAGE_FAULT}
GUEST_PAGE_FAULT = {"read": Cause.READ_GUEST_PAGE_FAULT, "write": Cause.WRITE_GUEST_PAGE_FAULT,
                    "execute": Cause.INSTRUCTION_GUEST_PAGE_FAULT}


class Oracle:
    """Sorted, disjoint intervals ``[start, end)`` -> ``(pa of start, perms, pbmt)``."""

    def __init__(self):
        self.starts, self.items = [], []

    def _cut(self, lo, hi):
        kept_s, kept_i = [], []
        for s, (e, pa, perms, pbmt) in zip(self.starts, self.items, strict=True):
            if e <= lo or s >= hi:
                kept_s.append(s)
                kept_i.append((e, pa, perms, pbmt))
                continue
            if s < lo:
                kept_s.append(s)
                kept_i.append((lo, pa, perms, pbmt))
            if e > hi:
                kept_s.append(hi)
                kept_i.append((e, pa + (hi - s), perms, pbmt))
        self.starts, self.items = kept_s, kept_i

    def map(self, iova, pa, size, perms, pbmt):
        self._cut(iova, iova + size)
        i = bisect.bisect_left(self.starts, iova)
        self.starts.insert(i, iova)
        self.items.insert(i, (iova + size, pa, perms, pbmt))

    def unmap(self, iova, size):
        self._cut(iova, iova + size)

    def lookup(self, iova):
        i = bisect.bisect_right(self.starts, iova) - 1
        if i >= 0:
            end, pa, perms, pbmt = self.items[i]
            if iova < end:
                return pa + (iova - self.starts[i]), perms, pbmt
        return None

    def probes(self):
        """Addresses worth checking: both sides of every boundary."""
        points = set()
        for s, (e, *_rest) in zip(self.starts, self.items, strict=True):
            points.update((s, s + 4 * KIB, (s + e) // 2 & ~0xFFF, e - 4 * KIB, e))
        return points


KEY = {"read": "r", "write": "w", "execute": "x"}


def check(model, oracle, points, fault_of, pa_offset=0):
    for iova in sorted(points):
        expected = oracle.lookup(iova)
        for access in ("read", "write", "execute"):
            got = model.translate(DID, iova + 0x123, access, report=False)
            allowed = expected is not None and expected[1][KEY[access]]
            if not allowed:
                assert got.fault and got.cause == fault_of[access], (hex(iova), access, got)
                continue
            pa, perms, pbmt = expected
            assert not got.fault, (hex(iova), access, got)
            assert got.pa == pa_offset + pa + 0x123, (hex(iova), access, hex(got.pa), hex(pa))
            assert (got.r, got.w, got.x) == (perms["r"], perms["w"], perms["x"]), (hex(iova), got)
            assert got.pbmt == pbmt, (hex(iova), got)


PERMS = [dict(r=True, w=False, x=False), dict(r=True, w=True, x=False),
         dict(r=True, w=False, x=True), dict(r=True, w=True, x=True),
         dict(r=False, w=False, x=True)]

# An operation: (map?, iova unit, iova index, count, pa index, pa skew, perms, pbmt).
# IOVAs and PAs are multiples of a unit picked among the page sizes, so that superpages
# and NAPOT runs are both possible and broken by later partial operations.
UNITS = [4 * KIB, 64 * KIB, 2 * MIB, GIB]
ops = st.lists(st.tuples(
    st.booleans(), st.sampled_from(UNITS), st.integers(0, 5), st.integers(1, 3),
    st.integers(0, 7), st.sampled_from([0, 0, 4 * KIB]), st.sampled_from(PERMS),
    st.sampled_from(list(Pbmt)[:3])), min_size=1, max_size=12)


def run_ops(io, model, table, oracle, sequence, *, base, pa_base, sync_kw, fault_of,
            pa_offset=0):
    for is_map, unit, index, count, pa_index, skew, perms, pbmt in sequence:
        iova = base + index * unit
        size = count * unit
        if is_map:
            # A 4 KiB skew forces small pages; not over GiBs, which would take millions.
            pa = pa_base + pa_index * unit + (skew if unit < GIB else 0)
            io.map(table, iova, pa, size, pbmt=pbmt, **perms, **sync_kw)
            oracle.map(iova, pa, size, {k[0]: v for k, v in perms.items()}, pbmt)
        else:
            io.unmap(table, iova, size, **sync_kw)
            oracle.unmap(iova, size)
        points = oracle.probes() | {iova, iova + size - 4 * KIB, iova + size}
        check(model, oracle, points, fault_of, pa_offset)


def system():
    mem = Memory()
    model = IommuModel(Config.full(), mem, cache=True)
    bus = ModelBus(model)
    io = Iommu(bus, PageAllocator(bus, 0x1_0000_0000, 256 * MIB))
    io.init(device_id_bits=16)
    return io, model


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("mode, base", [
    (IosatpMode.SV39, 0), (IosatpMode.SV39, (1 << 64) - (1 << 38)),
    (IosatpMode.SV48, 0), (IosatpMode.SV48, 1 << 46),
])
@SETTINGS
@given(sequence=ops)
def test_first_stage(mode, base, sequence):
    io, model = system()
    table = io.page_table(mode)
    io.set_first_stage(DID, table, pscid=PSCID)
    run_ops(io, model, table, Oracle(), sequence, base=base, pa_base=0x40_0000_0000,
            sync_kw=dict(pscid=PSCID), fault_of=PAGE_FAULT)


@pytest.mark.parametrize("mode, base", [(IohgatpMode.SV39X4, 0), (IohgatpMode.SV39X4, 1 << 40),
                                        (IohgatpMode.SV48X4, 1 << 49)])
@SETTINGS
@given(sequence=ops)
def test_second_stage(mode, base, sequence):
    io, model = system()
    table = io.page_table(mode)
    io.set_second_stage(DID, table, gscid=GSCID)
    run_ops(io, model, table, Oracle(), sequence, base=base, pa_base=0x40_0000_0000,
            sync_kw=dict(gscid=GSCID), fault_of=GUEST_PAGE_FAULT)


@SETTINGS
@given(sequence=ops)
def test_nested_first_stage(sequence):
    # The guest's RAM is GPA [0, 16 GiB) at SPA 0x80_0000_0000, mapped once with 1 GiB
    # pages, read-write-execute; its first-stage table lives in that RAM. The random
    # operations change the guest's table; with that second stage, the expected address
    # is ram_spa + the GPA the oracle holds, with the first stage's permissions.
    io, model = system()
    ram_spa = 0x80_0000_0000
    second = io.page_table(IohgatpMode.SV48X4)
    io.map(second, 0, ram_spa, 16 * GIB, r=True, w=True, x=True, gscid=GSCID)
    guest = GuestMemory(io.bus, second)
    first = PageTable(guest, PageAllocator(guest, 15 * GIB, 64 * MIB), IosatpMode.SV39,
                      svpbmt=True)
    io.set_nested(DID, first, second, pscid=PSCID, gscid=GSCID)
    run_ops(io, model, first, Oracle(), sequence, base=0, pa_base=GIB,
            sync_kw=dict(pscid=PSCID, gscid=GSCID), fault_of=PAGE_FAULT, pa_offset=ram_spa)
