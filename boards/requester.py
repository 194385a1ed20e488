"""The DMA requester: a device on one of the IOMMU's translation ports.

On a board there is no real device behind the IOMMU, so this one stands in for it: given a
``(device_id, iova, access)`` and a count, it sends that many Untranslated requests (RISC-V
IOMMU spec "Process to translate an IOVA") on its translation port as fast as the port takes them,
takes every response, and keeps the last one with how many were IOTLB hits and how many clock cycles
the whole run took. With a count of 1 that is one translation and its latency; with a
larger count it is the port's throughput on hits (the first request misses, the rest hit).

The port answers in order, so the requester counts responses instead of matching tags; the
tags it sends are the request's sequence number, for whoever watches the port.

The command stays on its stream while it runs and is taken when the run is over (a
stream's payload holds while it waits), so the requester keeps no copy of it: on the
UP5K every flip-flop counts.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.formats import Cause, Pbmt
from iogate.hdl.port import Access, TranslationPort

__all__ = ["Requester", "COMMAND", "RESULT"]

#: What to send: ``count`` requests of one kind (0 counts as 1).
COMMAND = data.StructLayout({"device_id": 24, "iova": 64, "access": Access, "count": 16})

#: What came back: the last response (``iogate.hdl.port.response_layout`` without the tag), the
#: number of responses with ``hit`` set, and the clock cycles from the cycle the first
#: request was offered to the cycle the last response was taken.
RESULT = data.StructLayout({"fault": 1, "cause": Cause, "ppn": 44, "r": 1, "w": 1, "x": 1,
                            "pbmt": Pbmt, "hit": 1, "hits": 16, "cycles": 32})


class Requester(wiring.Component):
    """Sends translation requests and gathers their responses.

    Parameters
    ----------
    tag_width : int
        The translation port's tag width (``Config.tag_width``).
    pasid : bool
        Whether the port carries a PASID (``Config.pd_levels > 0``). The board link has no
        PASID field, so the requester sends every request untagged (``pv = 0``, User): a
        board with process contexts translates through DPE's process 0 or the DC alone.

    Members
    -------
    cmd : ``In(stream.Signature(COMMAND))``
        One run. Its payload must hold while it waits (as every stream's does); it is
        taken (``ready``) in the cycle the last response comes in.
    result : ``Out(RESULT)``
        The outcome of the last run taken, from the cycle after it was taken until the
        next run is taken.
    tr : ``In(TranslationPort(tag_width, pasid))``
        The translation port, from the device's side (requests out, responses in).

    Raises
    ------
    TypeError
        If ``tag_width`` is not an integer.
    ValueError
        If ``tag_width`` is not between 1 and 32.
    """

    def __init__(self, tag_width, pasid=False):
        try:
            if not isinstance(tag_width, int) or isinstance(tag_width, bool):
                raise TypeError(f"tag_width must be an integer, not {tag_width!r}")
            if not 1 <= tag_width <= 32:
                raise ValueError(f"tag_width must be between 1 and 32, not {tag_width!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        super().__init__({
            "cmd": In(stream.Signature(COMMAND)),
            "result": Out(RESULT),
            "tr": In(TranslationPort(tag_width, pasid)),
        })

    def elaborate(self, platform):
        m = Module()
        cmd = self.cmd.payload
        req = self.tr.req
        resp = self.tr.resp
        to_send = Signal(16)
        to_receive = Signal(16)
        tag = Signal.like(req.payload.tag)
        cycles = Signal(32)
        result = self.result

        m.d.comb += [
            req.payload.tag.eq(tag), req.payload.device_id.eq(cmd.device_id),
            req.payload.iova.eq(cmd.iova), req.payload.access.eq(cmd.access),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.cmd.valid):
                    n = cmd.count | (cmd.count == 0)
                    m.d.sync += [to_send.eq(n), to_receive.eq(n), tag.eq(0), cycles.eq(0),
                                 result.hits.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += [req.valid.eq(to_send != 0), resp.ready.eq(1)]
                with m.If(req.valid & req.ready):
                    m.d.sync += [to_send.eq(to_send - 1), tag.eq(tag + 1)]
                with m.If(resp.valid):
                    r = resp.payload
                    m.d.sync += [
                        result.fault.eq(r.fault), result.cause.eq(r.cause),
                        result.ppn.eq(r.ppn), result.r.eq(r.r), result.w.eq(r.w),
                        result.x.eq(r.x), result.pbmt.eq(r.pbmt), result.hit.eq(r.hit),
                        result.hits.eq(result.hits + r.hit),
                        to_receive.eq(to_receive - 1),
                    ]
                    with m.If(to_receive == 1):
                        m.d.comb += self.cmd.ready.eq(1)
                        m.d.sync += result.cycles.eq(cycles)
                        m.next = "IDLE"
        return m
