"""The device-side message stream: ATS.INVAL and ATS.PRGR commands, and the IOMMU's own PRG
responses, onto one ``ats_msg`` (reference N.6.4, N.6.7; docs/ats-pri.md "Ports").

Two sources: the command queue (:class:`iogate.hdl.cmdq.CommandQueue`, already in
:data:`iogate.hdl.cmdq.ATS_MSG` form) and the page-request queue's responses
(:class:`iogate.hdl.pq.PageRequestQueue`, :func:`iogate.hdl.pq.prg_response_layout`), which
become PRGR messages as an ATS.PRGR command would have sent them: RID ``device_id[15:0]``,
``DSV=1`` with DSEG ``device_id[23:16]`` (decision "pq-9" of issue 17: the requester's
24-bit ``device_id`` names its segment, so the response always says which), PV/PID as the
queue chose (N.6.7: the PASID only where the table says so), the PAYLOAD of
:data:`iogate.hdl.formats.ATS_PRGR_PAYLOAD` (PRG index, response code) and ITAG 0.

Round-robin between the two (neither can starve the other), and a message once offered stays
offered, unchanged, until taken (a stream's payload is stable while ``valid`` and not
``ready``): the grant is locked while the message waits.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.cmdq import ATS_MSG, AtsMsgKind
from iogate.hdl.formats import ATS_PRGR_PAYLOAD
from iogate.hdl.pq import prg_response_layout

__all__ = ["AtsMessageMux"]


class AtsMessageMux(wiring.Component):
    """Merges the command queue's messages and the IOMMU's own PRG responses.

    Members
    -------
    cmd : ``In(stream.Signature(ATS_MSG))``
        From the command queue.
    prg : ``In(stream.Signature(prg_response_layout()))``
        From the page-request queue.
    out : ``Out(stream.Signature(ATS_MSG))``
        To the device side.
    """

    def __init__(self):
        super().__init__({
            "cmd": In(stream.Signature(ATS_MSG)),
            "prg": In(stream.Signature(prg_response_layout())),
            "out": Out(stream.Signature(ATS_MSG)),
        })

    def elaborate(self, platform):
        m = Module()
        prg = self.prg.payload
        as_msg = Signal(ATS_MSG)
        body = Signal(ATS_PRGR_PAYLOAD)
        m.d.comb += [
            body.prg_index.eq(prg.prg_index), body.response_code.eq(prg.response_code),
            as_msg.kind.eq(AtsMsgKind.PRGR), as_msg.rid.eq(prg.device_id[:16]),
            as_msg.dsv.eq(1), as_msg.dseg.eq(prg.device_id[16:]),
            as_msg.pv.eq(prg.pv), as_msg.pid.eq(prg.pid), as_msg.payload.eq(body.as_value()),
        ]
        last = Signal(init=1)    # the source served last (1: the command queue goes first)
        locked = Signal()        # the granted message waits: keep the grant
        lock_grant = Signal()
        both = self.cmd.valid & self.prg.valid
        grant = Mux(locked, lock_grant, Mux(both, ~last, self.prg.valid))
        m.d.comb += [
            self.out.valid.eq(Mux(grant, self.prg.valid, self.cmd.valid)),
            self.out.payload.eq(Mux(grant, as_msg, self.cmd.payload)),
            self.cmd.ready.eq(~grant & self.out.ready),
            self.prg.ready.eq(grant & self.out.ready),
        ]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += [last.eq(grant), locked.eq(0)]
        with m.Elif(self.out.valid):
            m.d.sync += [locked.eq(1), lock_grant.eq(grant)]
        return m
