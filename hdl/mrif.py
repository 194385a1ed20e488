"""The MRIF update: recording an MSI in a memory-resident interrupt file (``Config.msi_mrif``).

AIA "Memory-resident interrupt files" and RISC-V IOMMU spec "MSI page tables" (reference
N.4.4), as issue 16 decision 5 has iogate's IOMMU do it itself (the spec lets the IOMMU or
the IO bridge do it):

* the 8-byte pending doubleword of identity D at ``MRIF + (D // 64) * 16`` (the MRIF is
  always little-endian, whatever ``fctl.BE`` says) is read, bit ``D % 64`` is set and the
  doubleword is written back: a read-modify-write, since ``capabilities.AMO_MRIF`` is 0;
* then the notice MSI: the 4-byte ``NID`` (little-endian) is written to ``NPPN << 12``,
  whatever the MRIF's enable bits say (AIA: after every recorded MSI).

Any bus error (or an address at or above ``2**PAS``) on the read, the write-back or the
notice ends the update with ``err`` (the pipeline answers cause 264, the notice's own cause
being unspecified: reference N.10); after a failed MRIF access no notice is sent. Every
response is taken, error or not, so a bus error never hangs the update.

Which accesses reach here (aligned 32-bit writes with ``A[11:3] = 0`` and ``D < 2048``) is
the pipeline's decision (:mod:`iogate.hdl.translate`).
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.config import check_pas
from iogate.hdl.mem_master import MemReadSignature, MemWriteSignature

__all__ = ["mrif_start_layout", "mrif_result_layout", "MrifUpdater"]


def mrif_start_layout():
    """An update: MRIF_Address[55:9] (``mrif_addr``), the notice MSI's page (``nppn``) and
    data (``nid``), and the identity ``d`` (below 2048)."""
    return data.StructLayout({"mrif_addr": 47, "nppn": 44, "nid": 11, "d": 11})


def mrif_result_layout():
    """``err``: an access faulted (cause 264)."""
    return data.StructLayout({"err": 1})


class MrifUpdater(wiring.Component):
    """Sets one pending bit in an MRIF and sends its notice MSI.

    Parameters
    ----------
    pas : int
        Physical address size (``capabilities.PAS``).

    Members
    -------
    start : ``In(stream.Signature(mrif_start_layout()))``
    result : ``Out(stream.Signature(mrif_result_layout()))``
        Held until taken.
    mem : ``Out(MemReadSignature(pas))``
        Reads the pending doubleword.
    wmem : ``Out(MemWriteSignature(pas))``
        Writes it back, then the notice.

    Raises
    ------
    ValueError
        If ``pas`` is out of range.
    """

    def __init__(self, *, pas):
        try:
            check_pas(pas)
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        super().__init__({
            "start": In(stream.Signature(mrif_start_layout())),
            "result": Out(stream.Signature(mrif_result_layout())),
            "mem": Out(MemReadSignature(pas)),
            "wmem": Out(MemWriteSignature(pas)),
        })

    def elaborate(self, platform):
        m = Module()
        pas = self._pas
        job = Signal(mrif_start_layout())
        err = Signal()
        word = Signal(64)                    # the pending doubleword, its bit set
        m.d.comb += self.result.payload.err.eq(err)
        # The pending doubleword of pair D // 64 (AIA: pairs of pending and enable words).
        pending = Signal(56)
        notice = Signal(56)
        m.d.comb += [pending.eq(Cat(Const(0, 4), job.d[6:11], job.mrif_addr)),
                     notice.eq(Cat(Const(0, 12), job.nppn))]
        pending_beyond = Const(0, 1) if pas == 56 else (pending[pas:] != 0)
        notice_beyond = Const(0, 1) if pas == 56 else (notice[pas:] != 0)
        w = self.wmem.req.payload
        m.d.comb += self.mem.req.payload.addr.eq(pending[:pas])

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    m.d.sync += [job.eq(self.start.payload), err.eq(0)]
                    m.next = "READ"
            with m.State("READ"):
                with m.If(pending_beyond):
                    m.d.sync += err.eq(1)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(1)
                    with m.If(self.mem.req.ready):
                        m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                m.d.comb += self.mem.resp.ready.eq(1)
                with m.If(self.mem.resp.valid):
                    m.d.sync += word.eq(self.mem.resp.payload.data | (1 << job.d[:6]))
                    with m.If(self.mem.resp.payload.err):
                        m.d.sync += err.eq(1)
                        m.next = "DONE"
                    with m.Else():
                        m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [self.wmem.req.valid.eq(1), w.addr.eq(pending[:pas]),
                             w.data.eq(word), w.strb.eq(0xFF)]
                with m.If(self.wmem.req.ready):
                    m.next = "WRITE_WAIT"
            with m.State("WRITE_WAIT"):
                m.d.comb += self.wmem.resp.ready.eq(1)
                with m.If(self.wmem.resp.valid):
                    with m.If(self.wmem.resp.payload.err):
                        m.d.sync += err.eq(1)
                        m.next = "DONE"
                    with m.Else():
                        m.next = "NOTICE"
            with m.State("NOTICE"):
                with m.If(notice_beyond):
                    m.d.sync += err.eq(1)
                    m.next = "DONE"
                with m.Else():
                    # A page address: the low half of the doubleword, little-endian.
                    m.d.comb += [self.wmem.req.valid.eq(1), w.addr.eq(notice[:pas]),
                                 w.data.eq(job.nid), w.strb.eq(0x0F)]
                    with m.If(self.wmem.req.ready):
                        m.next = "NOTICE_WAIT"
            with m.State("NOTICE_WAIT"):
                m.d.comb += self.wmem.resp.ready.eq(1)
                with m.If(self.wmem.resp.valid):
                    m.d.sync += err.eq(self.wmem.resp.payload.err)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"
        return m
