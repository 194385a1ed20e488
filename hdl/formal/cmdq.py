"""Formal harness of the command-queue engine (spec "Command-Queue (CQ)").

The engine (:class:`iogate.hdl.cmdq.CommandQueue`) runs between abstractions:

* **the register file** is the spec's queue arithmetic, written here: ``cqh`` moves on the
  engine's ``advance`` (mod N), ``cqt`` is moved by a free producer that never fills the
  queue past N-1 commands, both start anywhere; ``cqmf``/``cmd_ill`` are set by the
  engine's strobes and cleared by a free software write (RW1C); ``cqon`` changes only
  while the engine is not busy; ``ddtp.iommu_mode`` is a free constant mode.
* **the memory** answers each fetch with a free doubleword and a free ``err``, and the
  IOFENCE.C store with a free ``err``, after free delays, one response per request.
* **the caches** take invalidations with a free ``ready``.

Properties (asserted every cycle), with the command as the harness fetched it:

1. ``cqh`` advances only while ``cqh != cqt`` (never passes ``cqt``), only after both
   doublewords of the command at ``cqh`` were fetched, and at most one of ``advance``,
   ``cqmf``, ``cmd_ill`` per cycle.
2. Fetches read ``cqb.PPN * 4096 + cqh * 16`` then ``+ 8``, one at a time, and only while
   the queue is not empty.
3. A command the spec calls illegal (reserved opcode or func3, a set reserved bit, NL or S,
   PSCV with GVMA, INVAL_PDT and ATS without a process directory or ATS, a PID with
   INVAL_DDT, a DID that does not fit ``iommu_mode``) sets ``cmd_ill`` at that command
   and does nothing else; a legal one never sets it.
4. ``cqmf`` is set only on a fetch or store answered with an error, or on an IOFENCE.C
   store address beyond PAS; ``cqh`` then stays.
5. IOTINVAL and IODIR.INVAL_DDT pass their operands from the command's bit positions, and
   the command completes only after its invalidation was taken.
6. IOFENCE.C with AV=1 stores DATA once, 4 bytes at ``ADDR[63:2] * 4``, and completes
   only after the store was answered OKAY; ``fence_w_ip`` only when a fence with WSI
   completes.

Covers: ``cmd_ill``, a completed AV fence, ``cqmf`` on its store, ``cqh`` wrapping,
a GVMA and an INVAL_DDT taken.

Size: N = 4 slots, PAS 32, Sv39 only (27-bit VPN). The engine never reads N (the register
file computes ``cqh``'s wrap); PAS and the VPN width only cut addresses.
"""

from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib import wiring

from iogate.hdl.cmdq import CommandQueue
from iogate.hdl.config import Config

__all__ = ["CommandQueueHarness", "ReservedBitIgnored"]

#: Reserved bits per command (spec "Command-Queue (CQ)" command formats), as (dword0
#: mask, dword1 mask).
_IOTINVAL_RSVD = ((1 << 11) | (((1 << 10) - 1) << 34) | (0xF << 60), 0x3FF | (0x3 << 62))
_IOFENCE_RSVD = (((1 << 18) - 1) << 14, 0x3 << 62)
_IODIR_RSVD = ((0x3 << 10) | (1 << 32) | (((1 << 6) - 1) << 34), (1 << 64) - 1)


class ReservedBitIgnored(wiring.Component):
    """Mutant: the engine never sees dword 0 bit 11 (reserved in IOTINVAL and IODIR)."""

    def __init__(self, config):
        self._inner = CommandQueue(config)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        wiring.connect(m, wiring.flipped(self.regs), inner.regs)
        m.d.comb += inner.iommu_mode.eq(self.iommu_mode)
        wiring.connect(m, inner.store, wiring.flipped(self.store))
        wiring.connect(m, inner.ddtc_inval, wiring.flipped(self.ddtc_inval))
        wiring.connect(m, inner.iotlb_inval, wiring.flipped(self.iotlb_inval))
        m.d.comb += [
            self.fetch.req.valid.eq(inner.fetch.req.valid),
            self.fetch.req.payload.eq(inner.fetch.req.payload),
            inner.fetch.req.ready.eq(self.fetch.req.ready),
            inner.fetch.resp.valid.eq(self.fetch.resp.valid),
            inner.fetch.resp.payload.err.eq(self.fetch.resp.payload.err),
            inner.fetch.resp.payload.data.eq(self.fetch.resp.payload.data & ~(1 << 11)),
            self.fetch.resp.ready.eq(inner.fetch.resp.ready),
        ]
        return m


class CommandQueueHarness(Elaboratable):
    """The command-queue engine between a spec register file, a free memory and free
    caches, with the properties of the module docstring.

    Parameters
    ----------
    mutant : bool
        Use :class:`ReservedBitIgnored` instead of the real engine.
    """

    LOG2SZ = 2
    CONFIG = Config(pas=32)

    def __init__(self, *, mutant=False):
        self.mutant = mutant

    def elaborate(self, platform):
        m = Module()
        cfg, k = self.CONFIG, self.LOG2SZ
        pas = cfg.pas
        dut = ReservedBitIgnored(cfg) if self.mutant else CommandQueue(cfg)
        m.submodules.dut = dut
        regs = dut.regs

        # --- Register file.
        ppn = AnyConst(44)
        start_h, start_t = AnyConst(k), AnyConst(k)
        cqh_q, cqt_q, cqh, cqt = Signal(k), Signal(k), Signal(k), Signal(k)
        m.d.comb += [cqh.eq(Mux(Initial(), start_h, cqh_q)),
                     cqt.eq(Mux(Initial(), start_t, cqt_q))]
        produce = Signal()
        m.d.comb += produce.eq(AnySeq(1) & ((cqt + 1)[:k] != cqh))
        m.d.sync += [cqt_q.eq(Mux(produce, (cqt + 1)[:k], cqt)),
                     cqh_q.eq(Mux(regs.advance, (cqh + 1)[:k], cqh))]
        on, cqmf, ill = Signal(), Signal(), Signal()
        with m.If(~regs.busy):
            m.d.sync += on.eq(AnySeq(1))
        clear = AnySeq(1)
        m.d.sync += [cqmf.eq((cqmf & ~clear) | regs.set_cqmf),
                     ill.eq((ill & ~clear) | regs.set_cmd_ill)]
        mode = Signal(3)
        m.d.comb += [mode.eq(AnyConst(3)), Assume(mode <= 4)]
        m.d.comb += [regs.ppn.eq(ppn), regs.head.eq(cqh), regs.tail.eq(cqt),
                     regs.run.eq(on & ~cqmf & ~ill), dut.iommu_mode.eq(mode)]

        # --- Memory and caches.
        for port in (dut.fetch, dut.store):
            out = Signal(name=f"{port is dut.fetch and 'fetch' or 'store'}_outstanding")
            m.d.comb += [port.req.ready.eq(AnySeq(1)),
                         port.resp.valid.eq(out & AnySeq(1)),
                         port.resp.payload.err.eq(AnySeq(1))]
            with m.If(port.resp.valid & port.resp.ready):
                m.d.sync += out.eq(0)
            with m.If(port.req.valid & port.req.ready):
                m.d.sync += out.eq(1)
            m.d.comb += Assert(~(port.req.valid & out))
        m.d.comb += [dut.fetch.resp.payload.data.eq(AnySeq(64)),
                     dut.iotlb_inval.ready.eq(AnySeq(1)), dut.ddtc_inval.ready.eq(AnySeq(1))]
        fetch_ok = dut.fetch.resp.valid & ~dut.fetch.resp.payload.err
        fetch_err = dut.fetch.resp.valid & dut.fetch.resp.payload.err
        store_resp = dut.store.resp.valid

        # --- The command at cqh, as fetched.
        words = Signal(2)                    # doublewords fetched of it
        d0, d1 = Signal(64), Signal(64)
        inval_taken, stored, store_ok = Signal(), Signal(), Signal()
        end = regs.advance | regs.set_cqmf | regs.set_cmd_ill
        with m.If(fetch_ok):
            with m.If(words == 0):
                m.d.sync += [d0.eq(dut.fetch.resp.payload.data), words.eq(1)]
            with m.Else():
                m.d.sync += [d1.eq(dut.fetch.resp.payload.data), words.eq(2)]
        with m.If((dut.iotlb_inval.valid & dut.iotlb_inval.ready)
                  | (dut.ddtc_inval.valid & dut.ddtc_inval.ready)):
            m.d.sync += inval_taken.eq(1)
        with m.If(dut.store.req.valid & dut.store.req.ready):
            m.d.sync += stored.eq(1)
        with m.If(store_resp & ~dut.store.resp.payload.err):
            m.d.sync += store_ok.eq(1)
        with m.If(end):
            m.d.sync += [words.eq(0), inval_taken.eq(0), stored.eq(0), store_ok.eq(0)]
        have = words == 2

        # --- The spec's decode of (d0, d1).
        opcode, func3 = d0[0:7], d0[7:10]

        def clean(rsvd):
            return ((d0 & rsvd[0]) == 0) & ((d1 & rsvd[1]) == 0)
        av, pscv, gv = d0[10], d0[32], d0[33]
        is_inval = (opcode == 1) & clean(_IOTINVAL_RSVD) & (
            (func3 == 0) | ((func3 == 1) & ~pscv))
        is_fence = (opcode == 2) & (func3 == 0) & clean(_IOFENCE_RSVD)
        did, dv, pid = d0[40:64], d0[33], d0[12:32]
        fits = Mux(mode == 2, did[7:] == 0, Mux(mode == 3, did[16:] == 0, 1))
        is_iodir = ((opcode == 3) & (func3 == 0) & clean(_IODIR_RSVD) & (pid == 0)
                    & (~dv | fits))
        legal = is_inval | is_fence | is_iodir
        fence_addr = Signal(64)
        m.d.comb += fence_addr.eq(Cat(Const(0, 2), d1[0:62]))
        beyond = fence_addr[pas:] != 0

        # Property 1 and 2.
        fetch = dut.fetch.req
        m.d.comb += [
            Assert(~regs.advance | (cqh != cqt)),
            Assert(~regs.advance | have),
            Assert((regs.advance + regs.set_cqmf + regs.set_cmd_ill) <= 1),
        ]
        with m.If(fetch.valid):
            m.d.comb += [
                Assert(cqh != cqt),
                Assert(words < 2),
                Assert(fetch.payload.addr == ((ppn << 12) + (cqh << 4) + (words[0] << 3))[:pas]),
            ]
        # Property 3.
        with m.If(regs.set_cmd_ill):
            m.d.comb += [Assert(have), Assert(~legal)]
        with m.If(have & ~legal):
            m.d.comb += [Assert(~regs.advance), Assert(~dut.iotlb_inval.valid),
                         Assert(~dut.ddtc_inval.valid), Assert(~dut.store.req.valid),
                         Assert(~regs.set_cqmf)]
        # Property 4.
        with m.If(regs.set_cqmf):
            m.d.comb += Assert(fetch_err | (store_resp & dut.store.resp.payload.err)
                               | (have & is_fence & av & beyond & ~stored))
        # Property 5.
        inv = dut.iotlb_inval.payload
        with m.If(dut.iotlb_inval.valid):
            m.d.comb += [
                Assert(have & is_inval),
                Assert(inv.kind.as_value() == func3[:2]), Assert(inv.av == av),
                Assert(inv.gv == gv), Assert(inv.pscv == pscv),
                Assert(inv.gscid == d0[44:60]), Assert(inv.pscid == d0[12:32]),
                Assert(inv.vpn == d1[10:10 + len(inv.vpn)]),
            ]
        with m.If(dut.ddtc_inval.valid):
            m.d.comb += [Assert(have & is_iodir),
                         Assert(dut.ddtc_inval.payload.all == ~dv),
                         Assert(dut.ddtc_inval.payload.device_id == did)]
        with m.If(regs.advance & (is_inval | is_iodir)):
            m.d.comb += Assert(inval_taken)
        # Property 6.
        st = dut.store.req
        with m.If(st.valid):
            m.d.comb += [
                Assert(have & is_fence & av & ~beyond & ~stored),
                Assert(st.payload.addr == fence_addr[:pas]),
                Assert(st.payload.strb == Mux(fence_addr[2], 0xF0, 0x0F)),
                Assert(Mux(fence_addr[2], st.payload.data[32:], st.payload.data[:32])
                       == d0[32:64]),
            ]
        with m.If(regs.advance & is_fence & av):
            m.d.comb += Assert(store_ok)
        with m.If(regs.advance & is_fence):
            m.d.comb += Assert(regs.set_fence_w_ip == d0[11])
        with m.If(~(regs.advance & is_fence)):
            m.d.comb += Assert(~regs.set_fence_w_ip)

        m.d.comb += [
            Cover(regs.set_cmd_ill),
            Cover(regs.advance & is_fence & av),
            Cover(regs.set_cqmf & store_resp),
            Cover(regs.advance & (cqh == (1 << k) - 1)),
            Cover(dut.iotlb_inval.valid & dut.iotlb_inval.ready & (func3 == 1)),
            Cover(dut.ddtc_inval.valid & dut.ddtc_inval.ready & dv),
        ]
        return m
