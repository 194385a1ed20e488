"""cocotb: the DMA-shaped workloads of :mod:`iogate.cosim.bench.workloads` on the RTL.

One ``@cocotb.test`` per workload, each on a fresh session (run by
:mod:`iogate.cosim.bench.sweep`). The driver programs a first-stage Sv39 table for one device
and performs the workload's map, unmap and flush operations through the mirrored bus; the
device's transactions go to translation port 0 back to back, and every answer is checked
against the architectural model by the session's scoreboard. Figures per workload: the
IOTLB hit rate (the response's ``hit`` bit), the mean cycles from a request's handshake to
its response's, and the DMA phases' translations per cycle.

The build has a performance monitor (:data:`iogate.cosim.bench.hpm_counts.COUNTERS`
counters at least, added by :func:`iogate.cosim.bench.sweep.run_workloads`; the monitor
changes no timing): its counters of the device's requests, IOTLB misses, first-stage PTE
reads and directory reads must equal the bench's own counts, and ``iohpmcycles`` must cover
the cycles measured (:mod:`iogate.cosim.bench.hpm_counts`), else the workload fails. They
are recorded as ``hpm`` and ``hit_rate_hpm``.

Environment
-----------
IOGATE_BENCH_REPORT
    The JSON file to merge into (required), one key per workload.
IOGATE_BENCH_CONFIG
    The ``iogate.hdl.Config`` fields of the build, as JSON (required).
IOGATE_BENCH_TRANSLATIONS
    Translation budget per workload, default 2000.
IOGATE_BENCH_MEM_LATENCY
    ``MemoryTarget`` latency during the workload, default 10.
IOGATE_BENCH_SEED
    Workload seed, default 1.
IOGATE_BENCH_HPM_SKEW
    Added to the bench's expected first-stage PTE reads (default 0): a test that the
    counter check fails on a wrong count.
"""

import json
import logging
import os

import cocotb
from cocotb.triggers import ClockCycles

from iogate.hdl import Config
from iogate.hdl.formats import IosatpMode
from iogate.hdl.port import Access

from iogate.firmware import commands
from iogate.firmware.pagetable import Stage, TableChanges

from iogate.cosim.bench import hpm_counts
from iogate.cosim.bench.hw import DEVICE, _driver, record
from iogate.cosim.bench.probe import cycle_now
from iogate.cosim.bench.workloads import Dma, Flush, Map, Unmap, generate
from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.scenarios.session import open_session

#: PSCID of the device's address space.
PSCID = 3


def quiet(dut):
    """No log line per memory burst or register access (the driver polls ``cqh``
    thousands of times): the lines would cost more than the simulation."""
    for agent in ("mem", "mmio"):
        logging.getLogger(f"cocotb.{dut._name}.{agent}").setLevel(logging.WARNING)


def _config():
    return Config(**json.loads(os.environ["IOGATE_BENCH_CONFIG"]))


def _program(bus):
    drv = _driver(bus)
    table = drv.page_table(IosatpMode.SV39)
    # Every page the table is given from now on is a page of first-stage PTEs.
    table.alloc = hpm_counts.RecordingAllocator(table.alloc)
    table.alloc.pages.add(table.root // hpm_counts.PAGE)
    drv.set_first_stage(DEVICE, table, pscid=PSCID)
    return drv, table


def _start_counters(drv):
    # Programmed before the workload's first cycle, so the figures do not move.
    return (hpm_counts.program(drv.hpm, DEVICE),
            hpm_counts.ddt_read_addresses(drv.ddt, DEVICE))


def _flush(drv, table, changes):
    # The flush queue's one invalidation for everything unmapped since the last flush.
    drv.run([commands.iotinval_vma(pscid=PSCID)])
    table.release(changes)


async def run_workload(dut, name):
    """Run workload ``name`` and record its figures under ``name``."""
    config = _config()
    workload = generate(name, translations=int(os.environ.get("IOGATE_BENCH_TRANSLATIONS",
                                                               "2000")),
                        seed=int(os.environ.get("IOGATE_BENCH_SEED", "1")))
    s = await open_session(dut, config)
    quiet(dut)
    drv, table = await s.run(_program, s.bus)
    s.tb.target.latency = int(os.environ.get("IOGATE_BENCH_MEM_LATENCY", "10"))
    cycles0, ddt_reads = await s.run(_start_counters, drv)
    log = hpm_counts.ReadLog(s.tb.target)
    log.on = True
    pending = TableChanges(Stage.FIRST)
    dma_cycles = 0
    start = cycle_now(s.tb.period_ns)
    for op in workload.ops:
        if isinstance(op, Map):
            # Writing PTEs over invalid ones needs no command (faults are not cached).
            table.map(op.iova, op.pa, op.size, r=True, w=True)
        elif isinstance(op, Unmap):
            changes = table.unmap(op.iova, op.size)
            if op.sync:
                await s.run(lambda c=changes: drv.sync(table, c, pscid=PSCID))
            else:
                pending.merge(changes)
        elif isinstance(op, Flush):
            await s.run(_flush, drv, table, pending)
            pending = TableChanges(Stage.FIRST)
        elif isinstance(op, Dma):
            t0 = cycle_now(s.tb.period_ns)
            await s.translate_all(
                TranslationRequest(DEVICE, iova, Access.WRITE if write else Access.READ)
                for iova, write in op.requests)
            dma_cycles += cycle_now(s.tb.period_ns) - t0
    total_cycles = cycle_now(s.tb.period_ns) - start
    log.on = False
    board = s.scoreboard
    translations = board.translations
    await ClockCycles(dut.clk, 8)                  # counting lags its event by 2 cycles
    counted = await s.run(hpm_counts.read, drv.hpm, cycles0)
    hpm_counts.check(counted, {
        "requests": translations + s.debug_translations,
        "ioatc_misses": board.misses,
        "s1_reads": log.in_pages(table.alloc.pages)
        + int(os.environ.get("IOGATE_BENCH_HPM_SKEW", "0")),
        "ddt_reads": log.at(ddt_reads),
    }, total_cycles)
    record(name, {
        "translations": translations,
        "iotlb_hits": board.hits,
        "hit_rate": round(board.hits / translations, 4),
        "cycles_per_translation": round(sum(board.cycles) / translations, 3),
        "cycles_max": max(board.cycles),
        "dma_cycles": dma_cycles,
        "dma_translations_per_cycle": round(translations / dma_cycles, 4),
        "total_cycles": total_cycles,
        "faults": sum(board.faults.values()),
        "mismatches": len(s.mismatches),
        "mismatch_details": s.mismatches[:5],
        "operations": workload.counts(),
        "mem_latency": s.tb.target.latency,
        "iotlb_entries": config.iotlb_entries,
        "iotlb_ways": config.iotlb_ways,
        **hpm_counts.figures(counted),
    })


@cocotb.test()
async def net_rx_strict(dut):
    """Receive ring, strict unmap: IOTINVAL.VMA + IOFENCE.C per buffer."""
    await run_workload(dut, "net_rx_strict")


@cocotb.test()
async def net_rx_lazy(dut):
    """Receive ring, lazy unmap: one IOTINVAL.VMA + IOFENCE.C per flush batch."""
    await run_workload(dut, "net_rx_lazy")


@cocotb.test()
async def storage(dut):
    """Storage queue over 2 MiB superpages mapped once."""
    await run_workload(dut, "storage")


@cocotb.test()
async def storage_4k(dut):
    """Storage queue, buffers mapped per command as 4 KiB pages, strict unmap."""
    await run_workload(dut, "storage_4k")


@cocotb.test()
async def random(dut):
    """Uniformly random transactions over a region mapped once in 4 KiB pages."""
    await run_workload(dut, "random")
