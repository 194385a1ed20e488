"""Agents for the translation request/response stream ports (``hdl/port.py``).

They send :class:`~iogate.cosim.check.request.TranslationRequest` values and hand back
:class:`~iogate.cosim.check.request.TranslationResponse` values.

The payloads are packed and unpacked with the very layouts the RTL uses
(:func:`iogate.hdl.port.request_layout`, :func:`iogate.hdl.port.response_layout`), through
cocotbext-axi's generic stream source and sink, which bring pause generators for free.
"""

import cocotb
from cocotb.queue import Queue
from cocotb.triggers import Event
from cocotb.utils import get_sim_time
from cocotbext.axi.stream import define_stream

from iogate.hdl import bits
from iogate.hdl.port import request_layout, response_layout

from iogate.cosim.check.request import KINDS, TranslationResponse

__all__ = ["TranslationRequester"]

_TrBus, _TrTransaction, _TrSource, _TrSink, _TrMonitor = define_stream(
    "Translation", signals=["payload", "valid", "ready"])


class TranslationRequester:
    """Sends requests on one port and matches responses by tag.

    Up to ``2**tag_width`` requests may be in flight; ``translate`` awaits one answer,
    ``submit`` returns an event-backed handle for pipelined use. With ``pasid`` (a Config
    with process contexts) the port carries ``pv``/``pid``/``priv``, sent from the
    request's ``process_id`` and ``priv``. With ``msi_write`` (a Config with ``msi_mrif``)
    it carries ``word``/``data`` (the request's; data 0 when None) and its responses
    ``absorbed``; None (the default) tells it from the width of the DUT's request payload,
    so a bench built for any Config needs no flag. With ``ats`` (a Config with ATS: told
    the same way) requests carry their ``kind`` and ``nw`` and responses the Translation
    Completion's ``size_log2``, ``u``, ``g``, ``priv``.
    """

    def __init__(self, dut, index, clock, reset, tag_width, period_ns, pasid=False,
                 msi_write=None, ats=None):
        prefix = f"tr__{index}"
        width = len(getattr(dut, f"{prefix}__req__payload"))
        if msi_write is None or ats is None:
            # The options the payload's width allows (ATS excludes MRIFs: Config).
            fits = {(mw, a): request_layout(tag_width, pasid, mw, a).size
                    for mw, a in ((False, False), (True, False), (False, True))}
            found = [key for key, size in fits.items() if size == width]
            msi_write, ats = found[0] if found else (False, False)
        req_bus = _TrBus.from_prefix(dut, f"{prefix}__req", bus_separator="__")
        self.source = _TrSource(req_bus, clock, reset)
        # The monitor sees the request handshake, so latency counts from acceptance by
        # the port, not from when the test bench queued the request.
        self.monitor = _TrMonitor(req_bus, clock, reset)
        self.sink = _TrSink(_TrBus.from_prefix(dut, f"{prefix}__resp", bus_separator="__"),
                            clock, reset)
        self.clock = clock
        self.pasid = pasid
        self.msi_write = msi_write
        self.ats = ats
        self.req_layout = request_layout(tag_width, pasid, msi_write, ats)
        self.resp_layout = response_layout(tag_width, msi_write, ats)
        self.period_ns = period_ns
        self.free_tags = Queue()
        for tag in range(2 ** tag_width):
            self.free_tags.put_nowait(tag)
        self.pending = {}
        self.accepted = {}
        cocotb.start_soon(self._accept())
        cocotb.start_soon(self._receive())

    def _now(self):
        # Cycle stamps from simulation time: no Python runs per clock edge.
        return round(get_sim_time(unit="ns") / self.period_ns)

    async def _accept(self):
        while True:
            t = await self.monitor.recv()
            self.accepted[bits.get(self.req_layout, int(t.payload), "tag")] = self._now()

    async def _receive(self):
        while True:
            t = await self.sink.recv()
            f = bits.unpack(self.resp_layout, int(t.payload))
            request, event, _ = self.pending.pop(f["tag"])
            # The monitor samples the same edge the sink does: a response in the cycle
            # after acceptance reads as 1.
            start = self.accepted.pop(f["tag"])
            self.free_tags.put_nowait(f["tag"])
            ppn = f["ppn"]
            event.response = TranslationResponse(
                fault=bool(f["fault"]), cause=f["cause"], ppn=ppn, r=bool(f["r"]),
                w=bool(f["w"]), x=bool(f["x"]), pbmt=f["pbmt"], hit=bool(f["hit"]),
                pa=(ppn << 12) | (request.iova & 0xFFF), cycles=self._now() - start,
                absorbed=bool(f.get("absorbed", 0)), size_log2=f.get("size_log2", 0),
                u=bool(f.get("u", 0)), g=bool(f.get("g", 0)), priv=bool(f.get("priv", 0)))
            event.set()

    async def submit(self, request):
        """Queue ``request``; returns an ``Event`` whose ``.response`` is set on completion."""
        extra = {}
        if self.pasid:
            pv = request.process_id is not None
            extra = dict(pv=int(pv), pid=request.process_id if pv else 0,
                         priv=int(bool(request.priv)))
        elif request.process_id is not None or request.priv:
            # A port without process contexts has no wire for them: dropping them would
            # turn the request into another one.
            raise ValueError(f"{request!r}: this Config's ports carry no process_id")
        if self.msi_write:
            extra.update(word=int(bool(request.word)),
                         data=0 if request.data is None else request.data)
        elif request.data is not None or not request.word:
            raise ValueError(f"{request!r}: this Config's ports carry no word/data")
        kind = getattr(request, "kind", "untranslated")
        if self.ats:
            extra.update(kind=KINDS.index(kind), nw=int(bool(request.nw)))
        elif kind != "untranslated":
            raise ValueError(f"{request!r}: this Config's ports carry no ATS request kinds")
        tag = await self.free_tags.get()
        event = Event()
        self.pending[tag] = (request, event, self._now())
        payload = bits.pack(self.req_layout, tag=tag, device_id=request.device_id,
                            iova=request.iova, access=request.access.value, **extra)
        await self.source.send(_TrTransaction(payload=payload))
        return event

    async def translate(self, request):
        event = await self.submit(request)
        await event.wait()
        return event.response
