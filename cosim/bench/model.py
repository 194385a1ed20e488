"""Model throughput: translations per second (for ``iogate bench model``).

Two figures, each over a 1LVL directory and Sv39 tables mapping 512 4 KiB pages:

* ``full_walk``: a model without caching (``cache=False``): every translation reads the
  DC and three PTEs;
* ``cached``: a caching model (``cache=True``) answering repeated requests from its
  device-context cache and IOTLB;

plus ``allowed`` (the checker's call, with a stale entry in play) and ``two_stage_walk``
(Sv39 over Sv39x4, 16 table reads per translation).
"""

import time

from iogate.hdl import Config, bits
from iogate.hdl.formats import IOHGATP, IOSATP, PTE, TA, TC
from iogate.hdl.port import Access
from iogate.hdl.regs import DDTP, IommuMode, Offset

from iogate.cosim.model.iommu import IommuModel
from iogate.cosim.model.memory import Memory

__all__ = ["bench_model"]

_PAGES = 512
_LEAF = dict(v=1, r=1, w=1, u=1, a=1, d=1)


def _build(cache, two_stage=False):
    config = Config(sv39x4=True)
    mem = Memory()
    iommu = IommuModel(config, mem, cache=cache)
    root, s_root, s_mid, s_leaf, g_root = 0x100, 0x101, 0x102, 0x103, 0x104   # PPNs
    tc = bits.pack(TC, v=1)
    fsc = bits.pack(IOSATP, mode=8, ppn=s_root)
    iohgatp = 0
    if two_stage:
        # G-stage: GPA 0..1 GiB identity through one 1 GiB leaf (root at a 16 KiB boundary).
        iohgatp = bits.pack(IOHGATP, mode=8, ppn=g_root, gscid=1)
        mem.write64(g_root << 12, bits.pack(PTE, ppn=0, x=1, **_LEAF))
    for device_id in range(4):
        base = (root << 12) + device_id * 32
        for k, w in enumerate((tc, iohgatp, bits.pack(TA, pscid=7), fsc)):
            mem.write64(base + 8 * k, w)
    mem.write64(s_root << 12, bits.pack(PTE, v=1, ppn=s_mid))
    mem.write64(s_mid << 12, bits.pack(PTE, v=1, ppn=s_leaf))
    for i in range(_PAGES):
        mem.write64((s_leaf << 12) + 8 * i, bits.pack(PTE, ppn=0x8000 + i, **_LEAF))
    iommu.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.LVL1, ppn=root))
    return iommu


def _rate(fn, seconds):
    """Calls of ``fn(i)`` per second over about ``seconds``."""
    n, t0 = 0, time.perf_counter()
    deadline = t0 + seconds
    while True:
        for i in range(256):
            fn(n + i)
        n += 256
        t = time.perf_counter()
        if t >= deadline:
            return n / (t - t0)


def bench_model(seconds=2.0):
    """Translations per second of the architectural model.

    Parameters
    ----------
    seconds : float
        Time spent on each figure (four figures).

    Returns
    -------
    dict
        ``{"full_walk": ..., "cached": ..., "two_stage_walk": ..., "allowed": ...,
        "seconds": seconds}`` in translations per second.

    Raises
    ------
    ValueError
        If ``seconds`` is not positive.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, not {seconds!r}")
    out = {}
    full = _build(cache=False)
    out["full_walk"] = _rate(
        lambda i: full.translate(i & 3, (i % _PAGES) << 12, Access.READ), seconds)
    cached = _build(cache=True)
    out["cached"] = _rate(
        lambda i: cached.translate(i & 3, (i % _PAGES) << 12, Access.READ), seconds)
    two = _build(cache=False, two_stage=True)
    out["two_stage_walk"] = _rate(
        lambda i: two.translate(i & 3, (i % _PAGES) << 12, Access.READ), seconds)
    checker = _build(cache=False)
    out["allowed"] = _rate(
        lambda i: checker.allowed(i & 3, (i % _PAGES) << 12, Access.WRITE), seconds)
    out["seconds"] = seconds
    return out


if __name__ == "__main__":
    import json
    print(json.dumps(bench_model(), indent=2))
