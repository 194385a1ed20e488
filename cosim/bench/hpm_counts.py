"""The workloads' own counts against the IOMMU's performance counters (issue 17, item 5).

Spec "Hardware performance monitor" (reference N.7) and the decisions of issue 17 (HPM):
before a workload the driver programs four counters on the workload's device (DV_GSCV=1,
IDT=0, DID_GSCID = its device_id; decision 11) and lets ``iohpmcycles`` run; after it the
counters are read and must equal what the test bench counted itself:

* ``UNTRANSLATED_REQ`` (1): one per request accepted from a port or the debug interface
  (decision 10): the requests the bench sent.
* ``IOATC_MISS`` (4): one per request whose IOTLB lookup did not answer it and that went to
  a walk (decision 10). A workload device's context is valid with a first-stage Sv39 table
  and no second stage, so none of its requests is decided before the lookup (no Off, Bare
  or context fault): every response with ``hit=0`` is one.
* ``S1_WALK`` (7): one per first-stage PTE read from memory (decision 10): the memory
  target's reads inside the pages the page table was ever given (:class:`ReadLog`).
* ``DDT_WALK`` (5): one per directory level read, the leaf context included: reads of the
  device's non-leaf DDT entries and of its context's first doubleword.
* ``iohpmcycles`` (decision 9): counts every clock, so its delta over the workload is at
  least the cycles the bench measured.

A disagreement raises ``AssertionError`` (:func:`check`): the bench fails, no figure is
recorded.
"""

from iogate.hdl.regs import HpmEvent

__all__ = ["EVENTS", "COUNTERS", "RecordingAllocator", "ReadLog", "program", "read",
           "check", "figures"]

#: Counter number -> (event, figure name), in the order they are programmed.
EVENTS = {1: (HpmEvent.UNTRANSLATED_REQ, "requests"),
          2: (HpmEvent.IOATC_MISS, "ioatc_misses"),
          3: (HpmEvent.S1_WALK, "s1_reads"),
          4: (HpmEvent.DDT_WALK, "ddt_reads")}
#: Counters a workload build needs (``Config.hpm_counters``).
COUNTERS = len(EVENTS)
PAGE = 4096


class RecordingAllocator:
    """A page allocator that remembers every page it handed out (a page table's pages)."""

    def __init__(self, alloc):
        self._alloc = alloc
        self.pages = set()

    def alloc(self, size, *args, **kwargs):
        address = self._alloc.alloc(size, *args, **kwargs)
        self.pages.update(range(address // PAGE, (address + size + PAGE - 1) // PAGE))
        return address

    def __getattr__(self, name):
        return getattr(self._alloc, name)


class ReadLog:
    """The addresses of the memory target's reads while :attr:`on` (one per AXI beat:
    cocotbext-axi's slave reads its target beat by beat)."""

    def __init__(self, target):
        self.addresses = []
        self.on = False
        inner = target.read

        async def read(address, length, **kwargs):
            if self.on:
                self.addresses.append(address)
            return await inner(address, length, **kwargs)
        target.read = read

    def in_pages(self, pages):
        """Reads that fall inside the 4 KiB pages ``pages`` (page numbers)."""
        return sum(a // PAGE in pages for a in self.addresses)

    def at(self, addresses):
        """Reads of exactly the doublewords at ``addresses``."""
        wanted = set(addresses)
        return sum(a in wanted for a in self.addresses)


def ddt_read_addresses(ddt, device_id):
    """The doublewords whose reads are one DDT_WALK each for ``device_id``: its non-leaf
    DDT entries (none in 1LVL) and its context's first doubleword."""
    return [entry for entry, _ in ddt._path(device_id)] + [ddt.dc_address(device_id)]


def program(hpm, device_id):
    """Counters 1-4 count :data:`EVENTS` of ``device_id`` from 0; all of them and
    ``iohpmcycles`` run. Returns ``iohpmcycles`` as it starts."""
    if hpm is None or hpm.counters < COUNTERS:
        raise AssertionError(f"the workload build needs {COUNTERS} HPM counters, it has "
                             f"{0 if hpm is None else hpm.counters}")
    for x, (event, _) in EVENTS.items():
        hpm.program(x, event, device_id=device_id)
    for x in (0, *EVENTS):
        hpm.start(x)
    return hpm.read(0)


def read(hpm, cycles0):
    """``{figure: count}`` of the counters, ``cycles`` the ``iohpmcycles`` delta."""
    got = {name: hpm.read(x) for x, (_, name) in EVENTS.items()}
    got["cycles"] = hpm.read(0) - cycles0
    return got


def check(counted, expected, cycles):
    """Raise ``AssertionError`` unless the counters ``counted`` equal the bench's
    ``expected`` counts (same keys) and the ``iohpmcycles`` delta is at least ``cycles``."""
    wrong = {k: (counted.get(k), v) for k, v in expected.items() if counted.get(k) != v}
    if wrong:
        raise AssertionError("HPM counters disagree with the bench's counts (counter, "
                             f"bench): {wrong}")
    if counted["cycles"] < cycles:
        raise AssertionError(f"iohpmcycles advanced {counted['cycles']} cycles over a "
                             f"workload the bench measured at {cycles}")


def figures(counted):
    """The figures recorded beside a workload's: the counts and ``hit_rate_hpm``."""
    requests = counted["requests"]
    rate = round(1 - counted["ioatc_misses"] / requests, 4) if requests else None
    return {"hpm": dict(counted), "hit_rate_hpm": rate}
