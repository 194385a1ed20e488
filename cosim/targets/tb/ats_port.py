"""The device side of ATS and PRI at the wire level: the ``page_req``, ``ats_msg`` and
``ats_cpl`` streams of :class:`iogate.hdl.iommu.Iommu` with ``Config.ats`` (reference N.6.4,
N.6.6-N.6.7; docs/ats-pri.md "Ports").

:class:`AtsPort` sends Page Requests and Invalidation Completions and collects every message
the IOMMU sends (ATS.INVAL, ATS.PRGR and its own PRG responses), packed and unpacked with the
RTL's own layouts through cocotbext-axi's generic stream source and sink (pause generators
for free). A device model with an address-translation cache builds on it.
"""

import cocotb
from cocotb.queue import Queue
from cocotbext.axi.stream import define_stream

from iogate.hdl import bits
from iogate.hdl.cmdq import ATS_CPL, ATS_MSG
from iogate.hdl.pq import page_request_layout

__all__ = ["AtsPort"]

_Bus, _Transaction, _Source, _Sink, _Monitor = define_stream(
    "AtsStream", signals=["payload", "valid", "ready"])


def drive_idle(dut):
    """The ATS inputs' values before the agents attach (cocotbext samples at construction)."""
    dut.page_req__valid.value = 0
    dut.page_req__payload.value = 0
    dut.ats_cpl__valid.value = 0
    dut.ats_cpl__payload.value = 0
    dut.ats_msg__ready.value = 0


class AtsPort:
    """Drives ``page_req`` and ``ats_cpl``, collects ``ats_msg``.

    Attributes
    ----------
    messages : list of dict
        Every ``ats_msg`` message so far, as :data:`iogate.hdl.cmdq.ATS_MSG` fields.
    received : cocotb.queue.Queue
        The same messages, to wait on.
    """

    def __init__(self, dut, clock, reset):
        self._page_req = _Source(_Bus.from_prefix(dut, "page_req", bus_separator="__"),
                                 clock, reset)
        self._cpl = _Source(_Bus.from_prefix(dut, "ats_cpl", bus_separator="__"), clock,
                            reset)
        self._msg = _Sink(_Bus.from_prefix(dut, "ats_msg", bus_separator="__"), clock, reset)
        self.messages = []
        self.received = Queue()
        self._layout = page_request_layout()
        cocotb.start_soon(self._collect())

    async def _collect(self):
        while True:
            t = await self._msg.recv()
            message = bits.unpack(ATS_MSG, int(t.payload))
            self.messages.append(message)
            self.received.put_nowait(message)

    async def page_request(self, device_id, *, page, pv=False, pid=0, priv=False,
                           exec=False, r=True, w=False, l=True, prg_index=0):  # noqa: E741
        """Send one Page Request (a Stop Marker: ``l`` with neither ``r`` nor ``w``)."""
        payload = bits.pack(self._layout, device_id=device_id, pv=int(pv), pid=pid,
                            priv=int(priv), exec=int(exec), r=int(r), w=int(w), l=int(l),
                            prg_index=prg_index, page=page)
        await self._page_req.send(_Transaction(payload=payload))
        await self._page_req.wait()

    async def completion(self, rid, *, dseg=0, itag_vector, cc=1):
        """Send one Invalidation Completion (CC 0 means 8, as PCIe)."""
        payload = bits.pack(ATS_CPL, rid=rid, dseg=dseg, itag_vector=itag_vector, cc=cc)
        await self._cpl.send(_Transaction(payload=payload))
        await self._cpl.wait()

    def set_pauses(self, page_req=None, msg=None):
        """Random pacing: generators of booleans, True = pause this cycle."""
        if page_req is not None:
            self._page_req.set_pause_generator(page_req())
        if msg is not None:
            self._msg.set_pause_generator(msg())
