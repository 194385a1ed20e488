"""Tests of the DMA-shaped workload generators (cosim/bench/workloads.py), without a
simulator: every transaction must fall on a page that is mapped at that moment, an
unmapped IOVA must not be reused before its invalidation (strict: at once; lazy: the next
flush), and the shapes must be what they claim (superpages 2 MiB aligned, 4 KiB
mappings elsewhere, the translation budget met)."""

import pytest

from iogate.hdl import Config

from iogate.cosim.bench import workloads as wl
from iogate.cosim.bench.sweep import sweep_points

PAGE, HUGE = 4096, 2 << 20


def replay(workload):
    """Walk the operations with a page map of our own; returns (mapped pages at the end,
    the IOVA pages unmapped and not yet flushed, every problem found)."""
    mapped, unflushed, problems = {}, set(), []
    for op in workload.ops:
        if isinstance(op, wl.Map):
            for off in range(0, op.size, PAGE):
                page = op.iova + off
                if page in mapped:
                    problems.append(f"map over a mapped page {page:#x}")
                if page in unflushed:
                    problems.append(f"IOVA {page:#x} reused before its invalidation")
                mapped[page] = op.pa + off
        elif isinstance(op, wl.Unmap):
            for off in range(0, op.size, PAGE):
                if mapped.pop(op.iova + off, None) is None:
                    problems.append(f"unmap of an unmapped page {op.iova + off:#x}")
                if not op.sync:
                    unflushed.add(op.iova + off)
        elif isinstance(op, wl.Flush):
            unflushed.clear()
        else:
            for iova, _ in op.requests:
                if iova & ~(PAGE - 1) not in mapped:
                    problems.append(f"DMA to unmapped {iova:#x}")
    return mapped, unflushed, problems


@pytest.mark.parametrize("name", list(wl.WORKLOADS))
def test_every_transaction_hits_a_mapped_page(name):
    w = wl.generate(name, translations=1500, seed=3)
    _, _, problems = replay(w)
    assert problems == []


@pytest.mark.parametrize("name", list(wl.WORKLOADS))
def test_the_budget_is_met_by_whole_batches(name):
    w = wl.generate(name, translations=1000, seed=2)
    batches = [len(op.requests) for op in w.ops if isinstance(op, wl.Dma)]
    assert sum(batches) == w.translations >= 1000
    assert sum(batches[:-1]) < 1000          # the last batch is the one that reached it
    assert w.counts()["translations"] == w.translations


def test_strict_invalidates_every_buffer_and_lazy_batches_them():
    strict = wl.net_rx(translations=1500, seed=1)
    lazy = wl.net_rx(translations=1500, seed=1, lazy=True, flush_every=64)
    s_unmaps = [op for op in strict.ops if isinstance(op, wl.Unmap)]
    l_unmaps = [op for op in lazy.ops if isinstance(op, wl.Unmap)]
    assert s_unmaps and all(op.sync for op in s_unmaps)
    assert not any(isinstance(op, wl.Flush) for op in strict.ops)
    assert l_unmaps and not any(op.sync for op in l_unmaps)
    assert sum(isinstance(op, wl.Flush) for op in lazy.ops) == len(l_unmaps) // 64
    # Same device traffic: the unmap policy does not change what the NIC does.
    assert lazy.translations == strict.translations


def test_strict_mode_reuses_the_iova_just_freed():
    # Linux's IOVA caches are LIFO: a buffer's IOVA comes back at the next refill.
    w = wl.net_rx(translations=300, seed=1, queues=1)
    first_unmap = next(op for op in w.ops if isinstance(op, wl.Unmap))
    later = w.ops[w.ops.index(first_unmap) + 1:]
    assert any(isinstance(op, wl.Map) and op.iova == first_unmap.iova for op in later)


def test_a_packet_reads_its_descriptor_and_writes_back():
    w = wl.net_rx(translations=100, seed=1, queues=1, napi=1, payload=256)
    dma = next(op for op in w.ops if isinstance(op, wl.Dma))
    (desc, desc_write), *data, (back, back_write) = dma.requests
    assert not desc_write and back_write and back == desc + 8
    assert all(write for _, write in data)
    # 256-byte writes covering a 64, 576 or 1500-byte packet in one 4 KiB buffer.
    assert len(data) in (1, 3, 6)
    assert len({iova & ~(PAGE - 1) for iova, _ in data}) == 1


def test_storage_buffers_lie_in_superpages_mapped_once():
    w = wl.storage(translations=2000, seed=1, hugepages=True, pool_hugepages=4)
    maps = [op for op in w.ops if isinstance(op, wl.Map)]
    huge = [op for op in maps if op.size == HUGE]
    assert len(huge) == 4
    assert all(op.iova % HUGE == 0 and op.pa % HUGE == 0 for op in huge)
    assert not any(isinstance(op, wl.Unmap) for op in w.ops)
    pool = [(op.iova, op.iova + op.size) for op in huge]
    data = [iova for op in w.ops if isinstance(op, wl.Dma) for iova, _ in op.requests
            if any(lo <= iova < hi for lo, hi in pool)]
    # Most transactions are data, not ring entries.
    assert len(data) > 0.9 * w.translations


def test_storage_4k_maps_scattered_pages_per_command():
    w = wl.storage(translations=2000, seed=1, hugepages=False)
    maps = [op for op in w.ops if isinstance(op, wl.Map)]
    assert all(op.size == PAGE for op in maps)
    data = [op for op in maps[2:]]           # after the two ring pages
    adjacent = sum(b.pa == a.pa + PAGE for a, b in zip(data, data[1:], strict=False))
    assert adjacent < len(data) // 10         # no accidental NAPOT or superpage
    unmaps = [op for op in w.ops if isinstance(op, wl.Unmap)]
    assert unmaps and all(op.sync and op.size >= 64 << 10 for op in unmaps)


def test_random_access_stays_in_its_region():
    w = wl.random_access(translations=4096, seed=5, pages=64)
    pages = {iova & ~(PAGE - 1) for op in w.ops if isinstance(op, wl.Dma)
             for iova, _ in op.requests}
    maps = [op for op in w.ops if isinstance(op, wl.Map)]
    assert len(maps) == 64 and pages <= {op.iova for op in maps}
    # 4096 uniform draws over 64 pages leave none untouched (P < 64 * e**-64).
    assert len(pages) == 64


def test_generate_refuses_unknown_names_and_budgets():
    with pytest.raises(ValueError) as e:
        wl.generate("nothing")
    assert str(e.value) == ("unknown workload 'nothing'; one of " + ", ".join(wl.WORKLOADS))
    with pytest.raises(ValueError) as e:
        wl.generate("random", translations=0)
    assert str(e.value) == "translations must be a positive integer, not 0"


def test_sweep_points_are_the_geometries_config_accepts():
    candidates = [(e, w) for e in (4, 8, 16, 32, 64) for w in (1, 4, e)]
    accepted = []
    for e, w in candidates:
        try:
            Config(iotlb_entries=e, iotlb_ways=w)
        except ValueError:
            continue
        if (e, w) not in accepted:
            accepted.append((e, w))
    assert sweep_points((4, 8, 16, 32, 64), (1, 4, "full")) == accepted
    assert (4, 4) in accepted and (64, 64) in accepted


def test_hit_rate_plot_is_a_png(tmp_path):
    import importlib.util

    from iogate.cosim.bench.sweep import plot_hit_rates
    sweep = {"sim": "icarus", "translations": 10, "points": [
        {"entries": e, "ways": w, "workloads": {"random": {"hit_rate": e / 256},
                                                 "storage": {"hit_rate": 0.9}}}
        for e, w in sweep_points((4, 8), (1, "full"))]}
    path = plot_hit_rates(sweep, tmp_path / "h.png")
    if importlib.util.find_spec("matplotlib") is None:
        assert path is None
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
