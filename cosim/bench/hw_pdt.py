"""cocotb benchmarks of process-directory walks on the RTL, in clock cycles (run by
:func:`iogate.cosim.bench.run.run_hw_pdt`).

The same measurement style as :mod:`iogate.cosim.bench.hw` (whose helpers it uses): every
measurement is its own ``@cocotb.test`` on a fresh session of :data:`PROCESS` and merges its
figures into ``IOGATE_BENCH_REPORT`` under the test's name, one entry per ``MemoryTarget``
latency; the same environment variables (``IOGATE_BENCH_LATENCIES``, ``IOGATE_BENCH_SAMPLES``).

Each kind is one device (``DEVICE``, DDT 1LVL) with ``DC.tc.PDTV=1`` and one process whose PC
points at a Sv39 first-stage table (spec "Process-Directory-Table (PDT)", "Process to locate
the Process-context"; reference N.1.2-N.1.5). After a warm-up request of the process (the DC
and the PC cached), each sample is:

* ``IODIR.INVAL_PDT`` (DV=1, DID, PID) with the memory at 0 extra cycles: it drops the one
  cached PC and leaves the DC (spec "IOMMU directory cache invalidation commands");
* **cold**: the process's request to a fresh 4 KiB page at latency L: the PDT walk (GET_PC)
  then the page walk (an IOTLB miss);
* **warm**: its next request, to another fresh page: the PC cached, only the page walk.

``pdt_hits`` times IOTLB hits of a process's requests (one at a time, then back to back).

Reads are told apart by address: the PDT pages, the first-stage tables and (nested) the
second-stage tables come from allocators of their own. ``pdt_reads`` counts PDT entries as the
spec loads them (``load8`` per non-leaf PDTE, one ``load16`` for the PC), ``pdt_bus_reads``
the memory beats (a 16-byte PC is two beats of the 64-bit memory bus); ``reads`` is every beat
of the request, as in :mod:`iogate.cosim.bench.hw`, and so is the walk target built on it.
"""

import dataclasses

import cocotb

from iogate.hdl import Config
from iogate.hdl.formats import PC_SIZE, IohgatpMode, IosatpMode
from iogate.hdl.port import Access

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.bench.hw import (
    DEVICE,
    GUEST_RAM_SPA,
    LATENCIES,
    SAMPLES,
    GiB,
    KiB,
    MiB,
    _driver,
    _median,
    _ok,
    _pages,
    _walk_figures,
    hit_figures,
    record,
)
from iogate.cosim.bench.hw_workloads import quiet
from iogate.cosim.bench.probe import ReadLatencyProbe
from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.scenarios.session import open_session

#: The build measured: the full first target with process contexts (PD8, PD17 and PD20) and
#: Sv57/Sv57x4 (Config.process(), the build tests/rtl and the regression share).
PROCESS = Config.process()
#: Host PDT pages, apart from the driver's allocator (tables, DDT, queues).
HOST_PDT = (0xC000_0000, 16 * MiB)
#: In the guest (GPAs): its PDT pages and its first-stage tables.
GUEST_PDT = (256 * MiB, 16 * MiB)
GUEST_TABLES = (512 * MiB, 64 * MiB)
PSCID, GSCID = 7, 5
#: Where the mapped data pages start (never read by the IOMMU).
DATA_PA, GUEST_DATA_GPA = 0x1_0000_0000, 0x100_0000


def config_label(config=PROCESS):
    """What ``config`` changes of ``Config.full()``, for the report (``pd_levels=3``)."""
    full = Config.full()
    return ", ".join(f"{f.name}={getattr(config, f.name)}" for f in dataclasses.fields(config)
                     if getattr(config, f.name) != getattr(full, f.name)) or "full"


class ReadLog:
    """The address of every memory beat read (wraps the ``MemoryTarget``'s ``read``, as
    :class:`~iogate.cosim.bench.probe.WriteProbe` wraps its ``write``)."""

    def __init__(self, tb):
        self.addresses = []
        original = tb.target.read

        async def read(address, length, **kwargs):
            self.addresses.append(address)
            return await original(address, length, **kwargs)
        tb.target.read = read


def classify(addresses, regions):
    """Counts of ``addresses`` per region: ``{name: (base, size)}`` for ``"pdt"``, ``"pte"``
    and optionally ``"g_pte"``; anything else is ``other_reads``.

    ``pdt_reads`` counts distinct 16-byte slots: each PDT level is in a page of its own and
    reads one entry (a PDTE, or the PC filling its slot), so the two doublewords of a PC are
    one spec load.
    """
    counts = {"pdt": 0, "pte": 0, "g_pte": 0, "other": 0}
    slots = set()
    for address in addresses:
        name = next((n for n, (base, size) in regions.items() if base <= address < base + size),
                    "other")
        counts[name] += 1
        if name == "pdt":
            slots.add(address // PC_SIZE)
    return {"pdt_reads": len(slots), "pdt_bus_reads": counts["pdt"],
            "pte_reads": counts["pte"], "g_pte_reads": counts["g_pte"],
            "other_reads": counts["other"]}


# -- programming (synchronous driver code, run with Session.run) ------------------------

def program_host(bus, pid_bits, pid, count):
    """``DEVICE`` with a host PDT of the shallowest mode indexing ``pid_bits`` and process
    ``pid`` through a host Sv39 table mapping ``count`` 4 KiB pages.

    Returns the driver, ``[(iova, pa)]`` and the regions of :func:`classify`.
    """
    drv = _driver(bus)
    pdt = drv.process_directory(pid_bits, alloc=PageAllocator(bus, *HOST_PDT))
    if pdt.mode.pid_bits != pid_bits:
        raise AssertionError(f"{pid_bits}-bit process_ids got {pdt.mode.name}")
    drv.set_process_directory(DEVICE, pdt)
    table = drv.page_table(IosatpMode.SV39)
    drv.attach_process(DEVICE, pid, table, pscid=PSCID)
    pages = [(iova, DATA_PA + i * 4 * KiB) for i, iova in enumerate(_pages(count))]
    for iova, pa in pages:
        drv.map(table, iova, pa, 4 * KiB, r=True, w=True, pscid=PSCID)
    return drv, pages, {"pdt": HOST_PDT, "pte": (drv.alloc.base, drv.alloc.size)}


def program_guest(bus, pid_bits, pid, count):
    """``DEVICE`` with a guest's PDT in guest memory behind a Sv48x4 second stage (guest RAM
    one 1 GiB leaf, as in :func:`iogate.cosim.bench.hw.program_nested`), process ``pid``
    through a guest Sv39 table: ``pdtp``, the PDTEs and ``PC.fsc`` hold GPAs."""
    drv = _driver(bus)
    second = drv.page_table(IohgatpMode.SV48X4)
    drv.map(second, 0, GUEST_RAM_SPA, 1 * GiB, r=True, w=True, x=True, gscid=GSCID)
    guest = GuestMemory(bus, second)
    pdt = drv.process_directory(pid_bits, bus=guest, alloc=PageAllocator(guest, *GUEST_PDT))
    if pdt.mode.pid_bits != pid_bits:
        raise AssertionError(f"{pid_bits}-bit process_ids got {pdt.mode.name}")
    drv.set_process_directory(DEVICE, pdt, second=second, gscid=GSCID)
    table = PageTable(guest, PageAllocator(guest, *GUEST_TABLES), IosatpMode.SV39)
    drv.attach_process(DEVICE, pid, table, pscid=PSCID)
    pages = [(iova, GUEST_DATA_GPA + i * 4 * KiB) for i, iova in enumerate(_pages(count))]
    for iova, gpa in pages:
        drv.map(table, iova, gpa, 4 * KiB, r=True, w=True, pscid=PSCID, gscid=GSCID)
    spa = GUEST_RAM_SPA     # guest RAM: GPA g is SPA GUEST_RAM_SPA + g
    regions = {"pdt": (spa + GUEST_PDT[0], GUEST_PDT[1]),
               "pte": (spa + GUEST_TABLES[0], GUEST_TABLES[1]),
               "g_pte": (drv.alloc.base, drv.alloc.size)}
    return drv, [(iova, spa + gpa) for iova, gpa in pages], regions


# -- measurements ---------------------------------------------------------------------

async def _timed(s, log, probe, pid, page, regions, bucket, what):
    """One request of process ``pid`` to ``page`` = (iova, pa): its cycles, beats, read
    latencies and reads per region go into ``bucket``."""
    iova, pa = page
    reads0, mem0, addr0 = s.tb.target.reads, len(probe.samples), len(log.addresses)
    r = _ok(await s.tb.ports[0].translate(
        TranslationRequest(DEVICE, iova, Access.READ, process_id=pid)), what)
    if r.hit or r.pa != pa:
        raise AssertionError(f"benchmark {what} was not a miss to {pa:#x}: {r}")
    bucket["cycles"].append(r.cycles)
    bucket["reads"].append(s.tb.target.reads - reads0)
    bucket["mem"].extend(probe.samples[mem0:])
    bucket["kinds"].append(classify(log.addresses[addr0:], regions))


def _figures(bucket):
    figures = _walk_figures(bucket["cycles"], bucket["reads"], bucket["mem"])
    for key in bucket["kinds"][0]:
        figures[key] = _median([k[key] for k in bucket["kinds"]])
    return figures


async def _measure_pdt(dut, name, program, pid_bits, pid):
    s = await open_session(dut, PROCESS)
    quiet(dut)
    count = 1 + 2 * SAMPLES * len(LATENCIES)
    drv, pages, regions = await s.run(program, s.bus, pid_bits, pid, count)
    log, probe = ReadLog(s.tb), ReadLatencyProbe(s.tb)
    warm_up = {"cycles": [], "reads": [], "mem": [], "kinds": []}
    await _timed(s, log, probe, pid, pages[0], regions, warm_up, "warm-up")   # DC and PC
    fresh = iter(pages[1:])
    out = {}
    for latency in LATENCIES:
        cold = {"cycles": [], "reads": [], "mem": [], "kinds": []}
        warm = {"cycles": [], "reads": [], "mem": [], "kinds": []}
        for _ in range(SAMPLES):
            s.tb.target.latency = 0
            await s.run(drv.run, [commands.iodir_inval_pdt(did=DEVICE, pid=pid)])
            s.tb.target.latency = latency
            await _timed(s, log, probe, pid, next(fresh), regions, cold, "PC-cold miss")
            await _timed(s, log, probe, pid, next(fresh), regions, warm, "PC-cached miss")
        figures = _figures(cold)
        figures["warm"] = _figures(warm)
        figures["warm_cycles"] = figures["warm"]["cycles"]
        # What the PDT walk adds: the same page walk follows in both.
        figures["pdt_walk_cycles"] = _median(
            [c - w for c, w in zip(cold["cycles"], warm["cycles"], strict=True)])
        out[str(latency)] = figures
    record(name, out)


@cocotb.test()
async def pdt_pd8(dut):
    """PD8: the PC from the root page (1 level), then a Sv39 walk."""
    await _measure_pdt(dut, "pdt_pd8", program_host, 8, 0x5A)


@cocotb.test()
async def pdt_pd17(dut):
    """PD17: a PDTE, then the PC (2 levels), then a Sv39 walk."""
    await _measure_pdt(dut, "pdt_pd17", program_host, 17, 0x1_2345)


@cocotb.test()
async def pdt_pd20(dut):
    """PD20: two PDTEs, then the PC (3 levels), then a Sv39 walk."""
    await _measure_pdt(dut, "pdt_pd20", program_host, 20, 0xA_BCDE)


@cocotb.test()
async def pdt_pd17_over_sv48x4(dut):
    """A guest's PD17 in guest memory behind Sv48x4: each PDT entry's GPA is translated by
    the second stage (an implicit read), then the nested Sv39 walk."""
    await _measure_pdt(dut, "pdt_pd17_over_sv48x4", program_guest, 17, 0x1_0042)


@cocotb.test()
async def pdt_hits(dut):
    """IOTLB hits of a PASID-tagged request (PD20, Sv39): as :func:`iogate.cosim.bench.hw.hits`
    on the process-context build. The PC cache is consulted beside the IOTLB, so a hit of a
    process stays at the first target's 2 cycles and one per clock."""
    s = await open_session(dut, PROCESS, mem_latency=1)
    quiet(dut)
    pid = 0xA_BCDE
    _, pages, _ = await s.run(program_host, s.bus, 20, pid, 8)
    fills = [TranslationRequest(DEVICE, iova, Access.READ, process_id=pid) for iova, _ in pages]
    record("pdt_hits", await hit_figures(s, fills))
