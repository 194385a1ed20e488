"""DMA-shaped translation workloads for the benchmarks, as plain Python (no cocotb).

A workload is a list of operations a driver and its device perform, in order:

* :class:`Map` -- the driver writes PTEs for a buffer (no command: an invalid entry can
  not be cached, RISC-V IOMMU spec "Caching in-memory data structures": faults are not cached, so
  Linux's strict map sends none);
* :class:`Unmap` -- the driver clears them; ``sync=True`` follows it with the spec's
  invalidation (``IOTINVAL.VMA`` per changed leaf) and ``IOFENCE.C`` ("Guidelines for
  invalidations"), as Linux's strict mode does per buffer;
* :class:`Flush` -- one address-space-wide ``IOTINVAL.VMA`` (PSCID) and ``IOFENCE.C`` for
  every :class:`Unmap` since the last one (Linux's lazy mode, the flush queue);
* :class:`Dma` -- device transactions, each one translation request ``(iova, write)``,
  issued back to back.

Shapes (:data:`WORKLOADS`):

``net_rx_strict``
    A NIC's receive path: per queue a descriptor ring page mapped for good; buffers of one
    4 KiB page each, mapped at refill and unmapped after receive with an invalidation and
    a fence per buffer. Per packet the device reads the descriptor, writes the packet in
    256-byte transactions (PCIe max payload) and writes the descriptor back. IOVAs come
    from a LIFO free list (Linux's per-CPU IOVA caches hand back the last one freed).
``net_rx_lazy``
    The same, but unmapped IOVAs are invalidated together every ``flush_every`` buffers
    and only then reused (Linux's flush queue).
``storage``
    An NVMe-like queue: submission and completion ring pages, ``queue_depth`` commands in
    flight with transfers of 64 KiB to 1 MiB, moved in 1 KiB transactions taken round
    robin from the commands in flight. Data buffers lie in a pool of 2 MiB pages mapped
    once as superpages (hugepage-backed buffers, as VFIO users such as SPDK map them).
``storage_4k``
    The same transfers, each buffer mapped per command as scattered 4 KiB pages and
    unmapped on completion with invalidation and fence (Linux's block layer, strict).
``random``
    Uniformly random 64-byte reads and writes over a region of ``pages`` 4 KiB pages
    mapped once.

Every generator takes ``translations`` (an upper bound on :class:`Dma` requests, the run
stops at the end of the batch that reaches it) and ``seed``.
"""

import random
from dataclasses import dataclass

__all__ = ["Map", "Unmap", "Flush", "Dma", "Workload", "WORKLOADS", "generate",
           "net_rx", "storage", "random_access", "PAGE"]

PAGE = 4096
HUGE = 2 << 20
#: Where the buffers' physical pages come from (above the driver's table pool).
PA_BASE = 0x1_0000_0000


@dataclass(frozen=True)
class Map:
    iova: int
    pa: int
    size: int


@dataclass(frozen=True)
class Unmap:
    iova: int
    size: int
    sync: bool = True


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class Dma:
    #: ``(iova, write)`` per transaction.
    requests: tuple


@dataclass
class Workload:
    name: str
    ops: list

    @property
    def translations(self):
        return sum(len(op.requests) for op in self.ops if isinstance(op, Dma))

    def counts(self):
        """How many of each operation (for reports)."""
        out = {}
        for op in self.ops:
            key = type(op).__name__.lower()
            out[key] = out.get(key, 0) + 1
        out["translations"] = self.translations
        return out


class _Frames:
    """Physical 4 KiB frames handed out in a shuffled order, so that no two consecutive
    buffers are physically adjacent (no accidental NAPOT or superpage mapping)."""

    def __init__(self, rng, count, base=PA_BASE):
        self._free = [base + i * PAGE for i in range(count)]
        rng.shuffle(self._free)

    def take(self):
        return self._free.pop()

    def give(self, pa):
        self._free.insert(0, pa)


class _Iovas:
    """Fixed-size IOVA ranges from a LIFO free list; ``release`` holds freed ranges back
    until ``reclaim`` (lazy mode: reusable only after the flush)."""

    def __init__(self, base, size):
        self.size = size
        self._next = base
        self._free = []
        self._held = []

    def alloc(self):
        if self._free:
            return self._free.pop()
        iova, self._next = self._next, self._next + self.size
        return iova

    def release(self, iova, *, held=False):
        (self._held if held else self._free).append(iova)

    def reclaim(self):
        self._free.extend(self._held)
        self._held.clear()


def _budget(translations):
    if not isinstance(translations, int) or translations < 1:
        raise ValueError(f"translations must be a positive integer, not {translations!r}")


def net_rx(*, translations=2000, seed=1, lazy=False, queues=2, ring=32, napi=16,
           flush_every=64, payload=256):
    """The receive-ring workload (``net_rx_strict``, or ``net_rx_lazy`` with ``lazy``)."""
    _budget(translations)
    rng = random.Random(seed)
    frames = _Frames(rng, queues * ring * 4 + 64)
    ring_iova = 0x10_0000
    ops = [Map(ring_iova + q * PAGE, 0x8000_0000 + (64 << 20) + q * PAGE, PAGE)
           for q in range(queues)]
    iovas = _Iovas(0x4000_0000, PAGE)
    posted = [[] for _ in range(queues)]       # per queue: (iova, pa) awaiting a packet
    slot = [0] * queues

    def refill(q):
        while len(posted[q]) < ring:
            iova, pa = iovas.alloc(), frames.take()
            posted[q].append((iova, pa))
            ops.append(Map(iova, pa, PAGE))

    for q in range(queues):
        refill(q)
    done, unflushed = 0, 0
    while done < translations:
        requests, received = [], []
        for _ in range(napi):
            q = rng.randrange(queues)
            iova, pa = posted[q].pop(0)
            desc = ring_iova + q * PAGE + (slot[q] % (PAGE // 16)) * 16
            slot[q] += 1
            length = rng.choice((64, 576, 1500, 1500))
            requests.append((desc, False))
            requests += [(iova + off, True) for off in range(0, length, payload)]
            requests.append((desc + 8, True))
            received.append((q, iova, pa))
        ops.append(Dma(tuple(requests)))
        done += len(requests)
        for _q, iova, pa in received:
            ops.append(Unmap(iova, PAGE, sync=not lazy))
            frames.give(pa)
            iovas.release(iova, held=lazy)
            unflushed += 1
            if lazy and unflushed >= flush_every:
                ops.append(Flush())
                iovas.reclaim()
                unflushed = 0
        for q in sorted({q for q, _, _ in received}):
            refill(q)
    return Workload("net_rx_lazy" if lazy else "net_rx_strict", ops)


#: Transfer sizes of the storage workloads, smaller ones more often.
TRANSFER_SIZES = (64 << 10, 64 << 10, 128 << 10, 128 << 10, 256 << 10, 1 << 20)


def storage(*, translations=2000, seed=1, hugepages=True, queue_depth=8, chunk=1024,
            pool_hugepages=8):
    """The storage workload (``storage``, or ``storage_4k`` without ``hugepages``)."""
    _budget(translations)
    rng = random.Random(seed)
    sq, cq = 0x20_0000, 0x20_1000
    ops = [Map(sq, 0x8000_0000 + (65 << 20), PAGE), Map(cq, 0x8000_0000 + (65 << 20) + PAGE,
                                                         PAGE)]
    pool = 0x4000_0000
    if hugepages:
        ops += [Map(pool + i * HUGE, PA_BASE + i * HUGE, HUGE) for i in range(pool_hugepages)]
    frames = _Frames(rng, queue_depth * (1 << 20) // PAGE + 64)
    iovas = _Iovas(0x8000_0000, 1 << 20)
    active = []                                  # [iova, size, offset, write, pages]
    done, issued = 0, 0

    def submit():
        nonlocal issued
        size = rng.choice(TRANSFER_SIZES)
        if hugepages:
            iova = pool + rng.randrange((pool_hugepages * HUGE - size) // PAGE) * PAGE
            pages = None
        else:
            iova = iovas.alloc()
            pages = [frames.take() for _ in range(size // PAGE)]
            ops.extend(Map(iova + i * PAGE, pa, PAGE) for i, pa in enumerate(pages))
        active.append([iova, size, 0, rng.random() < 0.5, pages, issued])
        issued += 1

    for _ in range(queue_depth):
        submit()
    while done < translations:
        requests = [(sq + (c[5] % 64) * 64, False) for c in active if c[2] == 0]
        finished = []
        # One round of transactions, one per command in flight (the device interleaves).
        for _ in range(32):
            for c in active:
                if c[2] < c[1] and c not in finished:
                    requests.append((c[0] + c[2], c[3]))
                    c[2] += chunk
                    if c[2] >= c[1]:
                        finished.append(c)
        for c in finished:
            requests.append((cq + (c[5] % 256) * 16, True))
        ops.append(Dma(tuple(requests)))
        done += len(requests)
        for c in finished:
            active.remove(c)
            if not hugepages:
                ops.append(Unmap(c[0], c[1], sync=True))
                for pa in c[4]:
                    frames.give(pa)
                iovas.release(c[0])
            submit()
    return Workload("storage" if hugepages else "storage_4k", ops)


def random_access(*, translations=2000, seed=1, pages=256, batch=64):
    """The ``random`` workload."""
    _budget(translations)
    rng = random.Random(seed)
    base = 0x4000_0000
    ops = [Map(base + i * PAGE, PA_BASE + i * PAGE, PAGE) for i in range(pages)]
    # Mapped page by page: physically contiguous, but 4 KiB leaves (as a driver mapping
    # pinned pages one at a time would); 64-byte aligned transactions.
    done = 0
    while done < translations:
        requests = tuple((base + rng.randrange(pages * PAGE // 64) * 64, rng.random() < 0.3)
                         for _ in range(batch))
        ops.append(Dma(requests))
        done += batch
    return Workload("random", ops)


#: Every workload by name: a callable ``(translations, seed) -> Workload``.
WORKLOADS = {
    "net_rx_strict": lambda translations, seed: net_rx(translations=translations, seed=seed),
    "net_rx_lazy": lambda translations, seed: net_rx(translations=translations, seed=seed,
                                                      lazy=True),
    "storage": lambda translations, seed: storage(translations=translations, seed=seed),
    "storage_4k": lambda translations, seed: storage(translations=translations, seed=seed,
                                                     hugepages=False),
    "random": lambda translations, seed: random_access(translations=translations, seed=seed),
}


def generate(name, *, translations=2000, seed=1):
    """The workload ``name`` of :data:`WORKLOADS`.

    Raises
    ------
    ValueError
        If ``name`` is unknown or ``translations`` is not a positive integer.
    """
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; one of {', '.join(WORKLOADS)}")
    _budget(translations)
    return WORKLOADS[name](translations, seed)
