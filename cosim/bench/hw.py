"""cocotb benchmarks of the iogate RTL, in clock cycles (run by :mod:`iogate.cosim.bench.run`).

Every measurement is its own ``@cocotb.test`` on a fresh session of the full first-target
top and merges its figures into the JSON file named by ``IOGATE_BENCH_REPORT`` under the
test's name. Latencies are :attr:`TranslationResponse.cycles
<iogate.cosim.check.request.TranslationResponse>`: cycles from the request handshake to the
response handshake (1 = answered in the next cycle).

Tables are programmed through the driver with the memory at 0 extra cycles, then the
``MemoryTarget`` latency is set for the measurement; the AXI read latency the IOMMU
actually sees (target latency plus the slave's own cycles) is measured alongside.

Environment
-----------
IOGATE_BENCH_REPORT
    The JSON file to merge into (required).
IOGATE_BENCH_LATENCIES
    Comma-separated ``MemoryTarget`` latencies, default ``1,10,50``.
IOGATE_BENCH_SAMPLES
    Misses measured per walk kind and latency, default 3.
IOGATE_BENCH_HITS
    Requests in the back-to-back hit burst, default 256.
"""

import dataclasses
import json
import os
import pathlib
import statistics

import cocotb
from cocotb.triggers import ClockCycles

from iogate.hdl import Config, bits
from iogate.hdl.formats import IohgatpMode, IosatpMode
from iogate.hdl.port import Access
from iogate.hdl.regs import DDTP, IommuMode, Offset

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.guest import GuestMemory
from iogate.firmware.pagetable import PageTable

from iogate.cosim.bench.probe import ReadLatencyProbe, WriteProbe, cycle_now
from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.scenarios.session import open_session

#: The full first-target configuration (the build the RTL tests share).
FULL = Config.full()
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
#: Where the nested guest's RAM (GPA 0 .. 1 GiB) sits in system memory.
GUEST_RAM_SPA = 0x80_0000_0000
#: device_id of the translated device in the page-walk benchmarks.
DEVICE = 0x21
#: Target of a hit (``docs/design.md``, "Performance intent"): at most this many cycles.
HIT_TARGET_CYCLES = 2
#: Target of a walk: each table read plus at most this many cycles per level.
WALK_CYCLES_PER_LEVEL = 2


def _env_ints(name, default):
    return [int(v) for v in os.environ.get(name, default).split(",") if v.strip()]


LATENCIES = _env_ints("IOGATE_BENCH_LATENCIES", "1,10,50")
SAMPLES = int(os.environ.get("IOGATE_BENCH_SAMPLES", "3"))
HITS = int(os.environ.get("IOGATE_BENCH_HITS", "256"))


def record(name, value):
    """Merge ``{name: value}`` into the report file (tests run one after the other)."""
    path = pathlib.Path(os.environ["IOGATE_BENCH_REPORT"])
    report = json.loads(path.read_text()) if path.exists() else {}
    report[name] = value
    path.write_text(json.dumps(report, indent=2) + "\n")


def _ok(response, what):
    # A faulting answer would time a different path: refuse to report it as a figure.
    if response.fault:
        raise AssertionError(f"benchmark {what} faulted: {response}")
    return response


def _median(values):
    return statistics.median(values) if values else None


# -- programming (synchronous driver code, run with Session.run) ------------------------

def _driver(bus, device_id_bits=7):
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB))
    drv.init(device_id_bits=device_id_bits)
    return drv


def _pages(count):
    """IOVAs in distinct 1 GiB regions, so no two share a non-leaf entry."""
    return [(i + 1) << 30 for i in range(count)]


def program_first_stage(bus, mode, count):
    """``DEVICE`` through a first-stage ``mode`` table mapping ``count`` 4 KiB pages."""
    drv = _driver(bus)
    table = drv.page_table(mode)
    drv.set_first_stage(DEVICE, table, pscid=7)
    iovas = _pages(count)
    for i, iova in enumerate(iovas):
        drv.map(table, iova, 0x1_0000_0000 + i * 4 * KiB, 4 * KiB, r=True, w=True, pscid=7)
    return drv, iovas


def program_nested(bus, first_mode, second_mode, count):
    """``DEVICE`` through a guest's ``first_mode`` table over the VM's ``second_mode``
    table (guest RAM mapped by one 1 GiB leaf, as a hypervisor backing it with
    gigapages would)."""
    drv = _driver(bus)
    second = drv.page_table(second_mode)
    drv.map(second, 0, GUEST_RAM_SPA, 1 * GiB, r=True, w=True, x=True, gscid=5)
    guest = GuestMemory(bus, second)
    first = PageTable(guest, PageAllocator(guest, 512 * MiB, 64 * MiB), first_mode)
    drv.set_nested(DEVICE, first, second, pscid=9, gscid=5)
    iovas = _pages(count)
    for i, iova in enumerate(iovas):
        drv.map(first, iova, 0x100_0000 + i * 4 * KiB, 4 * KiB, r=True, w=True, pscid=9,
                gscid=5)
    return drv, iovas


def rewrite_ddtp(drv):
    """``ddtp`` to Off and back to the directory's mode and root (switching between
    modes goes through Off, spec "Device-directory-table pointer (ddtp)"), waiting out ``busy``
    each time."""
    for mode, ppn in ((IommuMode.OFF, 0), (drv.ddt.mode, drv.ddt.root >> 12)):
        drv.regs.poll(Offset.DDTP, "busy", 0)
        drv.regs.write(Offset.DDTP, bits.pack(DDTP, iommu_mode=mode, ppn=ppn))
    drv.regs.poll(Offset.DDTP, "busy", 0)


def program_bypass(bus, device_id_bits, device_id):
    """``device_id`` in bare mode, in the shallowest directory reaching the bits."""
    drv = _driver(bus, device_id_bits)
    drv.set_bypass(device_id)
    return drv


# -- measurements ---------------------------------------------------------------------

def _read(device_id, iova):
    return TranslationRequest(device_id, iova, Access.READ)


async def _walk_misses(s, iovas):
    """Miss latency of fresh pages at each memory latency (after one warm-up request
    that fills the device-context cache)."""
    probe = ReadLatencyProbe(s.tb)
    port = s.tb.ports[0]
    _ok(await port.translate(_read(DEVICE, iovas[0])), "warm-up")
    fresh = iter(iovas[1:])
    out = {}
    for latency in LATENCIES:
        s.tb.target.latency = latency
        cycles, reads, mem = [], [], []
        for _ in range(SAMPLES):
            reads0, mem0 = s.tb.target.reads, len(probe.samples)
            r = _ok(await port.translate(_read(DEVICE, next(fresh))), "miss")
            cycles.append(r.cycles)
            reads.append(s.tb.target.reads - reads0)
            mem.extend(probe.samples[mem0:])
        out[str(latency)] = _walk_figures(cycles, reads, mem)
    return out


def _walk_figures(cycles, reads, mem):
    per_read = statistics.mean(mem) if mem else None
    walk_reads = _median(reads)
    figures = {"cycles": _median(cycles), "cycles_all": cycles, "reads": walk_reads,
               "mem_read_cycles": per_read}
    if per_read is not None:
        # The target: every table read back to back plus 2 cycles per level, one read
        # per level (spec-wise the walk is sequential: each PTE holds the next PPN).
        target = walk_reads * (per_read + WALK_CYCLES_PER_LEVEL)
        figures["target_cycles"] = target
        figures["ratio_to_target"] = round(figures["cycles"] / target, 3) if target else None
    return figures


async def _measure_walk(dut, name, program, *args):
    s = await open_session(dut, FULL)
    count = 1 + SAMPLES * len(LATENCIES)
    _, iovas = await s.run(program, s.bus, *args, count)
    record(name, await _walk_misses(s, iovas))


@cocotb.test()
async def miss_sv39(dut):
    """First-stage Sv39 walk: 3 PTE reads."""
    await _measure_walk(dut, "miss_sv39", program_first_stage, IosatpMode.SV39)


@cocotb.test()
async def miss_sv48(dut):
    """First-stage Sv48 walk: 4 PTE reads."""
    await _measure_walk(dut, "miss_sv48", program_first_stage, IosatpMode.SV48)


@cocotb.test()
async def miss_sv39_over_sv39x4(dut):
    """Nested walk, guest Sv39 over the VM's Sv39x4."""
    await _measure_walk(dut, "miss_sv39_over_sv39x4", program_nested, IosatpMode.SV39,
                        IohgatpMode.SV39X4)


@cocotb.test()
async def miss_sv48_over_sv48x4(dut):
    """Nested walk, guest Sv48 over the VM's Sv48x4."""
    await _measure_walk(dut, "miss_sv48_over_sv48x4", program_nested, IosatpMode.SV48,
                        IohgatpMode.SV48X4)


async def _measure_ddt(dut, name, device_id_bits, device_id):
    """Directory walk: the first request after ``IODIR.INVAL_DDT`` for the device
    (``cycles``), then one with the context cached (``warm_cycles``), and the first
    request after ``ddtp`` is written again (``after_ddtp_cycles``); all to fresh pages
    of a bare-mode device, so no page walk is timed."""
    s = await open_session(dut, FULL)
    drv = await s.run(program_bypass, s.bus, device_id_bits, device_id)
    probe = ReadLatencyProbe(s.tb)
    port = s.tb.ports[0]
    page = iter(range(0x1_0000_0000, 0x2_0000_0000, 4 * KiB))
    out = {}
    for latency in LATENCIES:
        cold, warm, after_ddtp, reads, mem = [], [], [], [], []
        for _ in range(SAMPLES):
            s.tb.target.latency = 0
            await s.run(drv.run, [commands.iodir_inval_ddt(did=device_id)])
            s.tb.target.latency = latency
            reads0, mem0 = s.tb.target.reads, len(probe.samples)
            cold.append(_ok(await port.translate(_read(device_id, next(page))), "ddt").cycles)
            reads.append(s.tb.target.reads - reads0)
            mem.extend(probe.samples[mem0:])
            warm.append(_ok(await port.translate(_read(device_id, next(page))), "ddt").cycles)
            s.tb.target.latency = 0
            await s.run(rewrite_ddtp, drv)
            s.tb.target.latency = latency
            after_ddtp.append(
                _ok(await port.translate(_read(device_id, next(page))), "ddt").cycles)
        figures = _walk_figures(cold, reads, mem)
        figures["warm_cycles"] = _median(warm)
        figures["after_ddtp_cycles"] = _median(after_ddtp)
        out[str(latency)] = figures
    record(name, out)


@cocotb.test()
async def ddt_1lvl(dut):
    """1LVL directory: one device-context read."""
    await _measure_ddt(dut, "ddt_1lvl", 7, 0x45)


@cocotb.test()
async def ddt_2lvl(dut):
    """2LVL directory: a non-leaf DDTE, then the context."""
    await _measure_ddt(dut, "ddt_2lvl", 16, 0x1234)


@cocotb.test()
async def ddt_3lvl(dut):
    """3LVL directory: two non-leaf DDTEs, then the context."""
    await _measure_ddt(dut, "ddt_3lvl", 24, 0xAB_CDEF)


@cocotb.test()
async def hits(dut):
    """IOTLB hits: single-request latency, then a back-to-back burst on one port."""
    s = await open_session(dut, FULL, mem_latency=1)
    _, iovas = await s.run(program_first_stage, s.bus, IosatpMode.SV39, 8)
    record("hits", await hit_figures(s, [_read(DEVICE, iova) for iova in iovas]))


async def hit_figures(s, fills):
    """Fill the IOTLB with the requests ``fills``, then time 16 single hits and a burst of
    ``HITS`` back-to-back hits to the same pages (each at another offset in its page)."""
    port = s.tb.ports[0]
    for request in fills:
        _ok(await port.translate(request), "fill")

    def hit(i, offset):
        return dataclasses.replace(fills[i % len(fills)], iova=fills[i % len(fills)].iova + offset)

    single = [_ok(await port.translate(hit(i, 8 * i)), "hit") for i in range(16)]
    # The burst: every request queued at once, so the source drives one per clock while
    # the port accepts; each response is stamped the cycle it is handed over.
    ends = [None] * HITS
    responses = [None] * HITS

    async def stamp(i, event):
        await event.wait()
        ends[i], responses[i] = cycle_now(s.tb.period_ns), event.response

    tasks = []
    for i in range(HITS):
        event = await port.submit(hit(i, 8 * (i % 512)))
        tasks.append(cocotb.start_soon(stamp(i, event)))
    for t in tasks:
        await t
    for r in responses:
        _ok(r, "burst hit")
    first_accept = ends[0] - responses[0].cycles
    window = max(ends) - first_accept
    steady = max(ends) - ends[0]
    latency = _median([r.cycles for r in single])
    return {
        "latency_cycles": latency,
        "latency_cycles_all": [r.cycles for r in single],
        "reported_hits": sum(r.hit for r in single) + sum(r.hit for r in responses),
        "burst_requests": HITS,
        "burst_cycles": window,
        "translations_per_cycle": round(HITS / window, 4),
        "steady_translations_per_cycle": round((HITS - 1) / steady, 4) if steady else None,
        "burst_latency_max": max(r.cycles for r in responses),
        "target_latency_cycles": HIT_TARGET_CYCLES,
        "latency_ratio_to_target": round(latency / HIT_TARGET_CYCLES, 3),
        "throughput_ratio_to_target": round(HITS / window, 4),
    }


@cocotb.test()
async def command(dut):
    """``IOTINVAL.VMA`` + ``IOFENCE.C`` published by one ``cqt`` write, to the store of
    the fence's completion word."""
    s = await open_session(dut, FULL)
    drv, iovas = await s.run(program_first_stage, s.bus, IosatpMode.SV39, 1)
    _ok(await s.tb.ports[0].translate(_read(DEVICE, iovas[0])), "fill")
    stores = WriteProbe(s.tb, drv.cq.completion)
    written = []
    mmio_write = s.tb.mmio_write

    async def stamped_write(offset, size, value):
        issued = cycle_now(s.tb.period_ns)
        await mmio_write(offset, size, value)
        if offset == Offset.CQT:
            written.append((issued, cycle_now(s.tb.period_ns)))
    s.tb.mmio_write = stamped_write
    out = {}
    for n, latency in enumerate(LATENCIES, start=1):
        s.tb.target.latency = latency
        before = len(stores.stamps)
        await s.run(drv.cq.submit, commands.iotinval_vma(pscid=7, addr=iovas[0]),
                    commands.iofence_c(addr=drv.cq.completion, data=0xBE00 + n))
        for _ in range(100_000):
            if len(stores.stamps) > before:
                break
            await ClockCycles(dut.clk, 1)
        else:
            raise AssertionError("the IOFENCE.C completion was never stored")
        issued, done = written[-1]
        out[str(latency)] = {"cycles": stores.stamps[-1] - issued,
                             "cycles_after_write_response": stores.stamps[-1] - done}
    record("command", out)
