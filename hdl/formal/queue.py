"""Abstractions shared by the harnesses of the queues the IOMMU writes (the fault queue,
:mod:`iogate.hdl.formal.fq`; the page-request queue, :mod:`iogate.hdl.formal.pq`): the spec's
index arithmetic, a free memory for their record stores and a free producer of their input
stream (spec "In-memory queue interface")."""

from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import Assert, Assume, Mux, Signal

__all__ = ["queue_indices", "store_memory", "free_stream"]


def queue_indices(m, log2sz, advance):
    """The head, tail and ``full`` of a queue of ``2**log2sz`` slots whose tail moves on
    ``advance`` (the IOMMU's) and whose head a free consumer moves over records that are
    there (``head != tail``); both start anywhere (software may enable the queue with any
    head), so a full queue is reached within a few records. ``full`` is ``tail == head - 1``
    (mod N)."""
    start_h, start_t = AnyConst(log2sz), AnyConst(log2sz)
    head_q, tail_q = Signal(log2sz), Signal(log2sz)
    head, tail = Signal(log2sz), Signal(log2sz)
    m.d.comb += [head.eq(Mux(Initial(), start_h, head_q)),
                 tail.eq(Mux(Initial(), start_t, tail_q))]
    full = Signal()
    m.d.comb += full.eq((tail + 1)[:log2sz] == head)
    consume = Signal()
    m.d.comb += consume.eq(AnySeq(1) & (head != tail))
    m.d.sync += [head_q.eq(Mux(consume, (head + 1)[:log2sz], head)),
                 tail_q.eq(Mux(advance, (tail + 1)[:log2sz], tail))]
    return head, tail, full


def store_memory(m, mem):
    """A memory for ``mem`` (a :class:`iogate.hdl.mem_master.MemWriteSignature` client's
    far side) that takes a store when a free ``ready`` says so and answers it once, with a
    free ``err``, after a free delay; asserts one store at a time. Returns the "a store is
    outstanding" signal."""
    outstanding = Signal()
    m.d.comb += [mem.req.ready.eq(AnySeq(1)),
                 mem.resp.valid.eq(outstanding & AnySeq(1)),
                 mem.resp.payload.err.eq(AnySeq(1))]
    with m.If(mem.resp.valid & mem.resp.ready):
        m.d.sync += outstanding.eq(0)
    with m.If(mem.req.valid & mem.req.ready):
        m.d.sync += outstanding.eq(1)
    m.d.comb += Assert(~(mem.req.valid & outstanding))
    return outstanding


def free_stream(m, port, layout):
    """Drive the stream ``port`` (the component's input) with free payloads of ``layout``
    under the stream rules: ``valid`` is held with a stable payload until ``ready``."""
    offer = Signal(layout)
    m.d.comb += [offer.eq(AnySeq(layout.size)), port.valid.eq(AnySeq(1))]
    held_valid, held = Signal(), Signal(layout)
    m.d.sync += [held_valid.eq(port.valid & ~port.ready), held.eq(port.payload)]
    m.d.comb += port.payload.eq(Mux(held_valid, held.as_value(), offer.as_value()))
    with m.If(held_valid):
        m.d.comb += Assume(port.valid)
