"""Helpers shared by the front-end tests (requests, DMA checks, memory snapshots)."""

from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import Status

PAGE = 4096


def status(dev, request, writable=4):
    """Send ``request`` (a request object or raw bytes); the status in the tail."""
    raw = request.encode() if hasattr(request, "encode") else request
    written = dev.request(raw, writable)
    assert len(written) in (0, writable)
    return rq.decode_tail(written)


def attach(dev, domain, endpoint, flags=0):
    return status(dev, rq.Attach(domain, endpoint, flags))


def detach(dev, domain, endpoint):
    return status(dev, rq.Detach(domain, endpoint))


def map_(dev, domain, start, end, phys, flags=3):
    return status(dev, rq.Map(domain, start, end, phys, flags))


def unmap(dev, domain, start, end):
    return status(dev, rq.Unmap(domain, start, end))


def pa(host, device_id, iova, access="read"):
    """What DMA by ``device_id`` at ``iova`` reaches: a physical address or a cause."""
    r = host.model.translate(device_id, iova, access, report=False)
    return ("fault", int(r.cause)) if r.fault else r.pa


def snapshot(host):
    """Everything in memory the host's driver allocated, and the queue registers.

    Enough to see that a rejected request wrote no table, context or command.
    """
    from iogate.hdl.regs import Offset
    blocks = {a: host.bus.mem_read(a, n) for a, n in sorted(host.driver.alloc.allocated.items())}
    regs = {o: host.driver.regs.read(o) for o in (Offset.DDTP, Offset.CQB, Offset.CQT,
                                                   Offset.CQH, Offset.FQB, Offset.FQH,
                                                   Offset.FQT, Offset.CQCSR, Offset.FQCSR)}
    return blocks, regs


__all__ = ["PAGE", "status", "attach", "detach", "map_", "unmap", "pa", "snapshot", "Status"]
