"""cocotb benchmarks of MSI address translation on the RTL, in clock cycles (run by
:func:`iogate.cosim.bench.run.run_hw_msi`).

The measurement style of :mod:`iogate.cosim.bench.hw_pdt`: one ``@cocotb.test`` on a fresh
session of :data:`MSI` (``Config.msi()``: the full target with MSI_FLAT, MSI_MRIF and
IGS=BOTH), its figures merged into ``IOGATE_BENCH_REPORT`` under ``msi``, one entry per
``MemoryTarget`` latency (``IOGATE_BENCH_LATENCIES``, ``IOGATE_BENCH_SAMPLES``). ``cycles`` is
the latency from the request accepted to its response.

One device (``DEVICE``, DDT 1LVL, extended DC) translated by a Sv39x4 second stage only, with
a flat MSI page table (spec "MSI page tables"; reference N.3/N.4): file ``BASIC`` a
basic-translate PTE (M=3), file ``MRIF`` an MRIF-mode PTE (M=1). After a warm-up request
(the DC cached), each sample is, with ``IOTINVAL.GVMA`` (its GSCID) + ``IOFENCE.C`` first at
memory latency 0 (it drops the cached MSI PTEs and the basic page's IOTLB entry, spec
"IOMMU memory-mapped register interface" / "IOTINVAL.GVMA"), then at latency L:

* ``basic_pte_read``: a write to the basic page: the MSI PTE read (its cache cold);
* ``basic_iotlb_hit``: the same page again (the basic translation is in the IOTLB);
* ``mrif_pte_read``: a write to the MRIF page: the MSI PTE read, then the MRIF update
  (read-modify-write of the pending doubleword, the notice MSI), answered absorbed;
* ``mrif_pte_cached``: a second write to it: MRIF pages never enter the IOTLB (AIA
  "Memory-resident interrupt files": every write updates the MRIF), so this is an MSI PTE
  cache hit plus the update;
* ``mrif_read``: a read of the MRIF page, absorbed without a memory access (issue 16's
  decision, cosim/model/msi.py ``mrif_access``), the PTE cached;
* ``g_stage_walk``: for comparison a read of a fresh page outside the MSI window: a Sv39x4
  walk (3 PTE reads, each page in a 1 GiB region of its own), IOTLB cold.

Every answer goes through the session's scoreboard (the model's allowed answers) and is also
checked against what the spec gives: the basic page's SPA, ``absorbed`` for MRIF accesses, the
hit flag. A mismatch fails the test, so no figure is reported for a wrong answer. ``reads``
is the memory beats (64 bits) the request read: a 16-byte MSI PTE is two.
"""

import cocotb

from iogate.hdl import Config
from iogate.hdl.formats import IohgatpMode
from iogate.hdl.port import Access

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu

from iogate.cosim.bench.hw import LATENCIES, SAMPLES, KiB, MiB, _median, record
from iogate.cosim.bench.hw_pdt import config_label
from iogate.cosim.bench.hw_workloads import quiet
from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.scenarios.session import open_session

__all__ = ["MSI", "KINDS", "config_label"]

#: The build measured (the one tests/rtl/rtl_msi.py checks).
MSI = Config.msi()
DEVICE, GSCID = 0x21, 3
#: The MSI window: 8 interrupt files at GPA pages 0x28000-0x28007 (mask 0x7).
WINDOW = 0x2800_0000
MASK, PATTERN = 0x7, WINDOW >> 12
BASIC, MRIF = 0, 2
BASIC_PPN, NOTICE_PPN, NID = 0x5_0000, 0xA_0000, 0x42A
#: Guest pages of the second-stage walks: GPA (i + 1) GiB, onto SPA DATA_SPA + 4 KiB * i.
DATA_SPA = 0x1_0000_0000
#: The figures, in table order.
KINDS = ("basic_pte_read", "basic_iotlb_hit", "mrif_pte_read", "mrif_pte_cached",
         "mrif_read", "g_stage_walk")


def file_gpa(index):
    return WINDOW + index * 4 * KiB


def program(bus, count):
    """``DEVICE`` second-stage only (Sv39x4, ``count`` 4 KiB pages in distinct 1 GiB
    regions) with the flat MSI table; returns the driver and ``[(gpa, spa)]``."""
    drv = Iommu(bus, PageAllocator(bus, 0x8000_0000, 64 * MiB))
    drv.init(device_id_bits=7)
    mrif = drv.mrifs.alloc_mrif()
    t = drv.msi_page_table(MASK, PATTERN)
    drv.msi_map_basic(t, ppn=BASIC_PPN, index=BASIC)
    drv.msi_map_mrif(t, mrif=mrif.address, notice_ppn=NOTICE_PPN, nid=NID, index=MRIF)
    g = drv.page_table(IohgatpMode.SV39X4)
    pages = [((i + 1) << 30, DATA_SPA + i * 4 * KiB) for i in range(count)]
    for gpa, spa in pages:
        drv.map(g, gpa, spa, 4 * KiB, r=True, w=True, gscid=GSCID)
    drv.set_second_stage(DEVICE, g, gscid=GSCID, msi=t)
    return drv, pages


async def _timed(s, request, bucket, what, *, hit, pa=None, absorbed=False):
    """One request: checked against the model (the scoreboard) and the spec's answer, its
    cycles and memory beats read appended to ``bucket``."""
    allowed = s.scoreboard.expect(request)
    reads0 = s.tb.target.reads
    r = await s.tb.ports[0].translate(request)
    s.scoreboard.check(request, r, allowed)
    if s.mismatches:
        raise AssertionError(f"benchmark {what}: the RTL differs from the model: "
                             + "; ".join(s.mismatches[:5]))
    if r.fault or r.hit != hit or r.absorbed != absorbed or (pa is not None and r.pa != pa):
        raise AssertionError(f"benchmark {what} was not a {'hit' if hit else 'miss'}"
                             f"{' absorbed' if absorbed else f' to {pa:#x}'}: {r}")
    bucket.append((r.cycles, s.tb.target.reads - reads0))


def _write(gpa, data):
    return TranslationRequest(DEVICE, gpa, Access.WRITE, word=True, data=data)


def _read(gpa):
    return TranslationRequest(DEVICE, gpa, Access.READ)


@cocotb.test()
async def msi(dut):
    """MSI translation latencies (module docstring) at every latency of LATENCIES."""
    s = await open_session(dut, MSI)
    quiet(dut)
    drv, pages = await s.run(program, s.bus, 1 + SAMPLES * len(LATENCIES))
    await _timed(s, _read(pages[0][0]), [], "warm-up", hit=False, pa=pages[0][1])    # the DC
    fresh = iter(pages[1:])
    basic_spa = BASIC_PPN << 12
    out = {}
    identity = 0
    for latency in LATENCIES:
        b = {k: [] for k in KINDS}
        for _ in range(SAMPLES):
            s.tb.target.latency = 0
            await s.run(drv.run, [commands.iotinval_gvma(gscid=GSCID)])
            s.tb.target.latency = latency
            identity = (identity + 1) % 2048
            await _timed(s, _write(file_gpa(BASIC), identity), b["basic_pte_read"],
                         "basic MSI PTE read", hit=False, pa=basic_spa)
            await _timed(s, _write(file_gpa(BASIC) + 4, identity), b["basic_iotlb_hit"],
                         "basic IOTLB hit", hit=True, pa=basic_spa + 4)
            await _timed(s, _write(file_gpa(MRIF), identity), b["mrif_pte_read"],
                         "MRIF write, PTE read", hit=False, absorbed=True)
            await _timed(s, _write(file_gpa(MRIF), identity + 1), b["mrif_pte_cached"],
                         "MRIF write, PTE cached", hit=False, absorbed=True)
            await _timed(s, _read(file_gpa(MRIF)), b["mrif_read"], "MRIF read",
                         hit=False, absorbed=True)
            gpa, spa = next(fresh)
            await _timed(s, _read(gpa), b["g_stage_walk"], "second-stage walk", hit=False,
                         pa=spa)
        out[str(latency)] = {k: {"cycles": _median([c for c, _ in v]),
                                 "cycles_all": [c for c, _ in v],
                                 "reads": _median([n for _, n in v])} for k, v in b.items()}
    record("msi", out)
