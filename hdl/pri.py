"""The page-request port: PCIe Page Requests from the device side into the page-request queue.

Reference N.6.6-N.6.7, docs/ats-pri.md ("Ports", "Page-request queue"). A Page Request (or a
Stop Marker) arrives on ``page_req`` and waits in a small FIFO, so that the device side can
hand one over per clock while the queue is busy; it is back-pressured only when the FIFO is
full, and it never holds up a translation port. One request at a time is then *held*: its
``device_id`` goes to the translation pipeline (``query``), which locates the device context
exactly as a request's (steps 1-6 of "Process to translate an IOVA", reference N.10 "Page
Request DC lookup"), and the pipeline's ``verdict`` comes back; the request and its verdict
go to the page-request queue together (:class:`iogate.hdl.pq.PageRequestQueue`), which
decides, stores the record or answers it itself.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.pq import page_request_layout, pq_request_layout, pq_verdict_layout

__all__ = ["PAGE_REQ_FIFO_DEPTH", "PageRequestPort"]

#: Page Requests the port holds while one is being decided.
PAGE_REQ_FIFO_DEPTH = 4


class PageRequestPort(wiring.Component):
    """Buffers Page Requests and pairs each with its device-context verdict.

    Members
    -------
    page_req : ``In(stream.Signature(iogate.hdl.pq.page_request_layout()))``
        Page Requests from the device side.
    query : ``Out(stream.Signature(StructLayout({"device_id": 24})))``
        The held request's requester, to the translation pipeline.
    verdict : ``In(stream.Signature(iogate.hdl.pq.pq_verdict_layout()))``
        The pipeline's verdict on it.
    request : ``Out(stream.Signature(iogate.hdl.pq.pq_request_layout()))``
        The request with its verdict, to the page-request queue.
    """

    def __init__(self):
        super().__init__({
            "page_req": In(stream.Signature(page_request_layout())),
            "query": Out(stream.Signature(data.StructLayout({"device_id": 24}))),
            "verdict": In(stream.Signature(pq_verdict_layout())),
            "request": Out(stream.Signature(pq_request_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        layout = page_request_layout()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=layout.size,
                                                      depth=PAGE_REQ_FIFO_DEPTH)
        held = Signal(layout)
        have = Signal()          # a request is held
        asked = Signal()         # its query was taken: the verdict is on its way
        m.d.comb += [
            q.w_data.eq(self.page_req.payload.as_value()),
            q.w_en.eq(self.page_req.valid),
            self.page_req.ready.eq(q.w_rdy),
            q.r_en.eq(~have),
            self.query.valid.eq(have & ~asked),
            self.query.payload.device_id.eq(held.device_id),
            # The verdict answers the held request's query: they leave together.
            self.request.valid.eq(self.verdict.valid),
            self.request.payload.req.eq(held),
            self.request.payload.verdict.eq(self.verdict.payload),
            self.verdict.ready.eq(self.request.ready),
        ]
        with m.If(~have & q.r_rdy):
            m.d.sync += [held.eq(q.r_data), have.eq(1), asked.eq(0)]
        with m.If(self.query.valid & self.query.ready):
            m.d.sync += asked.eq(1)
        with m.If(self.request.valid & self.request.ready):
            m.d.sync += [have.eq(0), asked.eq(0)]
        return m
