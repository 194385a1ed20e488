"""The command-queue engine: fetches, checks and executes the commands software queues.

RISC-V IOMMU spec "Command-Queue (CQ)" and the registers ``cqb``, ``cqh``, ``cqt``,
``cqcsr``. While the queue runs (``cqen`` and ``cqon`` are 1 and none of ``cqmf``,
``cmd_to``, ``cmd_ill`` is set) and ``cqh != cqt``, the engine reads the 16-byte command at
``cqb.PPN * 4096 + cqh * 16`` (two little-endian doublewords, ``fctl.BE=0``), executes it,
and advances ``cqh``. One command is in flight at a time, so commands complete in order.

============================  =============================================================
command                       what it does here
============================  =============================================================
IOTINVAL.VMA                  an IOTLB invalidation of kind VMA with GV/AV/PSCV, GSCID,
                              PSCID and ADDR[63:12] (every operand combination, spec table
                              "IOTINVAL.VMA operands")
IOTINVAL.GVMA                 an IOTLB invalidation of kind GVMA (GV, AV, GSCID); PSCV=1
                              is illegal
IODIR.INVAL_DDT               a device-context cache invalidation: DV=0 every device, DV=1
                              the one DID, which must fit ``ddtp.iommu_mode`` (1LVL: 7
                              bits, 2LVL: 16 bits); PID is reserved. With process contexts
                              it also invalidates the device's (or every) cached PC
IODIR.INVAL_PDT               only with process contexts (``Config.pd_levels > 0``): the
                              leaf PC cached for (DID, PID); DV must be 1, DID must fit
                              ``ddtp.iommu_mode``, and PID must fit
                              ``Config.process_id_bits`` (the capabilities, not a DC's
                              mode: reference N.1.7, as libiommu)
IOFENCE.C                     with AV=1, a 4-byte store of DATA at ADDR[63:2] * 4; then with
                              WSI=1 ``cqcsr.fence_w_ip`` is set. WSI=1 is legal only while
                              ``fctl.WSI`` is 1 (reference N.5): always with IGS=WSI, never
                              with IGS=MSI (``cmd_ill``), as ``fctl_wsi`` says with IGS=BOTH.
                              With ``Config.ats`` it first waits until no ATS.INVAL is
                              outstanding; if one timed out it sets ``cmd_to`` instead
ATS.INVAL                     only with ``Config.ats``: takes the lowest free ITAG (of
                              ``Config.ats_inval_tags``; none free: it waits, ``cqh`` at
                              it) and is sent on ``ats_msg``; ``cqh`` advances once it is
                              sent. Completions on ``ats_cpl`` or the timer
                              (``Config.ats_timeout_cycles``) free the ITAG
ATS.PRGR                      only with ``Config.ats``: sent on ``ats_msg``, complete then
============================  =============================================================

Everything else sets ``cmd_ill`` (spec "Command-Queue (CQ)": a command is illegal "if it uses a
reserved encoding or if a reserved bit is set to 1", unsupported "if it is defined but not
implemented"): opcodes 0 and 5-127, reserved ``func3`` values, a set
reserved bit (the NL and S extension bits included: ``capabilities.NL = S = 0``), ATS
without ``Config.ats`` (``capabilities.ATS=0``: libiommu PR #696) and IODIR.INVAL_PDT without
process contexts. ATS commands check dword0's reserved bits only: the PAYLOAD's '0' fields are
not checked (reference N.10; as libiommu).

ATS (reference N.6.4 "ATS.INVAL completion and timeout"; docs/ats-pri.md "Commands"). An
Invalidation Completion on ``ats_cpl`` is matched, as libiommu does, by RID, by DSEG only when
the ATS.INVAL had DSV=1, and by ITAG; an ITAG completes after CC completions (0 meaning 8, as
PCIe counts them). A completion naming any ITAG not outstanding for that requester (or none)
is dropped whole, with no record (the spec names none), and counted in ``ats_status.dropped``.
An ITAG still outstanding ``ats_timeout_cycles`` cycles after its message was sent is forgotten
(``ats_status.expired`` strobes) and a sticky "timed out" is noted; the next IOFENCE.C, once
no ATS.INVAL is outstanding, strobes ``set_cmd_to`` and stops with ``cqh`` at itself (no AV
store, no ``fence_w_ip``) and the note is cleared, so that the fence completes when software
clears ``cmd_to`` (as libiommu: the timeout is forgotten once reported). A fault on the fetch
or on the IOFENCE.C store (a bus error, or a store address at or above ``2**PAS``) sets
``cqmf``. Either way ``cqh`` stays at the offending command and the engine stops until
software clears the bit (RW1C); it then fetches that command again (spec "Command-queue CSR
(cqcsr)": "the command-queue stalls until this bit is cleared").

IOFENCE.C completion, ``cqh`` moving past it, guarantees that every earlier command has
completed (spec "IOMMU Command-queue Fence commands"). Here each invalidation takes effect in the
cycle after it is issued, before the next command is fetched, and a walk that an invalidation
overtakes does not fill the cache it would have filled (see :mod:`iogate.hdl.translate`), so by the
time a fence executes no translation read before an earlier invalidation can enter a cache. PR and
PW need nothing: the IOMMU carries no device data, so requests it has answered are
already committed as far as it is concerned.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl import bits
from iogate.hdl.config import require_config
from iogate.hdl.ddt import ddtc_inval_layout
from iogate.hdl.formats import (
    ATS,
    CMD,
    CMD_SIZE,
    IODIR,
    IOFENCE,
    IOTINVAL,
    AtsFunc,
    IodirFunc,
    IofenceFunc,
    IotinvalFunc,
    Opcode,
)
from iogate.hdl.iotlb import InvalKind, iotlb_inval_layout, vpn_width
from iogate.hdl.mem_master import MemReadSignature, MemWriteSignature
from iogate.hdl.pdtc import pdtc_inval_layout
from iogate.hdl.regs import Igs, IommuMode

__all__ = ["CommandQueueRegisters", "CommandQueue", "did_fits", "AtsMsgKind", "ATS_MSG",
           "ATS_CPL", "ats_status_layout"]


class AtsMsgKind(enum.IntEnum, shape=1):
    """What an ``ats_msg`` carries (docs/ats-pri.md "Ports")."""
    INVAL = 0    # a PCIe Invalidate Request (ATS.INVAL)
    PRGR = 1     # a PCIe PRG Response (ATS.PRGR, or one the IOMMU sends itself: N.6.7)


#: One message to the device side: the command's dword0 fields, its PAYLOAD as is (the PCIe
#: message body, reference N.6.4) and, for INVAL, the ITAG the IOMMU chose.
ATS_MSG = data.StructLayout({
    "kind": AtsMsgKind, "rid": 16, "dsv": 1, "dseg": 8, "pv": 1, "pid": 20, "payload": 64,
    "itag": 5,
})

#: An Invalidation Completion from the device side: its requester (RID, segment), the ITAG
#: vector and the Completion Count (0 means 8: PCIe).
ATS_CPL = data.StructLayout({"rid": 16, "dseg": 8, "itag_vector": 32, "cc": 3})


def ats_status_layout(tags):
    """The debug status of the ATS.INVAL tracker, for test benches: ``busy`` the ITAGs
    outstanding, ``expired`` a strobe per ITAG that timed out this cycle, ``timed_out`` the
    sticky flag the next IOFENCE.C reports, ``dropped`` (wrapping) completions that matched no
    outstanding ATS.INVAL."""
    return data.StructLayout({"busy": tags, "expired": tags, "timed_out": 1, "dropped": 8})


class CommandQueueRegisters(wiring.Signature):
    """The command-queue registers, from the register file's view.

    Members
    -------
    ppn : ``Out(44)``
        ``cqb.PPN``.
    head, tail : ``Out(32)``
        ``cqh`` and ``cqt``.
    run : ``Out(1)``
        ``cqen`` and ``cqon``, and none of ``cqmf``, ``cmd_to``, ``cmd_ill``.
    advance : ``In(1)``
        Strobe: the command at ``head`` completed; ``cqh`` moves on.
    set_cqmf, set_cmd_ill, set_fence_w_ip : ``In(1)``
        Strobes that set those ``cqcsr`` bits.
    busy : ``In(1)``
        A command is in flight (``cqon`` must stay 1 until it is done).
    set_cmd_to : ``In(1)``
        Only with ``ats``: strobe that sets ``cqcsr.cmd_to`` (an IOFENCE.C found an earlier
        ATS.INVAL timed out).

    Parameters
    ----------
    ats : bool
        ``Config.ats``: the ATS commands, which can time out.
    """

    def __init__(self, ats=False):
        members = {
            "ppn": Out(44), "head": Out(32), "tail": Out(32), "run": Out(1),
            "advance": In(1), "set_cqmf": In(1), "set_cmd_ill": In(1),
            "set_fence_w_ip": In(1), "busy": In(1),
        }
        if ats:
            members["set_cmd_to"] = In(1)
        super().__init__(members)


def did_fits(mode, did, extended=False):
    """A ``device_id`` fits ``ddtp.iommu_mode``: base format 1LVL 7 bits, 2LVL 16 bits;
    extended format (``Config.dc_extended``) 6 and 15 bits (reference N.3.2).

    ``mode`` and ``did`` are expressions; Off, Bare and 3LVL accept any DID.
    """
    lvl1 = IommuMode.LVL1.device_id_bits_of(extended)
    lvl2 = IommuMode.LVL2.device_id_bits_of(extended)
    return Mux(mode == IommuMode.LVL1, did[lvl1:] == 0,
               Mux(mode == IommuMode.LVL2, did[lvl2:] == 0, 1))


class CommandQueue(wiring.Component):
    """The command-queue engine.

    Parameters
    ----------
    config : Config
        ``pas`` bounds the fetch and store addresses; the IOTLB's VPN width comes from
        :func:`iogate.hdl.iotlb.vpn_width`.

    Members
    -------
    regs : ``In(CommandQueueRegisters())``
    iommu_mode : ``In(IommuMode)``
        ``ddtp.iommu_mode``, for the IODIR.INVAL_DDT DID check.
    fctl_wsi : ``In(1)``
        ``fctl.WSI``, for the IOFENCE.C WSI check (only with ``config.igs == Igs.BOTH``).
    fetch : ``Out(MemReadSignature(config.pas))``
        Command reads.
    store : ``Out(MemWriteSignature(config.pas))``
        The IOFENCE.C AV store.
    ddtc_inval : ``Out(stream.Signature(ddtc_inval_layout()))``
        IODIR.INVAL_DDT into the device-context cache.
    iotlb_inval : ``Out(stream.Signature(iotlb_inval_layout(vpn_width(config))))``
        IOTINVAL into the IOTLB.
    pdtc_inval : ``Out(stream.Signature(iogate.hdl.pdtc.pdtc_inval_layout()))``
        IODIR.INVAL_PDT into the process-context cache (only with ``config.pd_levels > 0``).
    ats_msg : ``Out(stream.Signature(ATS_MSG))``
        Only with ``config.ats``: ATS.INVAL and ATS.PRGR messages to the device side.
    ats_cpl : ``In(stream.Signature(ATS_CPL))``
        Only with ``config.ats``: Invalidation Completions (always ready).
    ats_status : ``Out(ats_status_layout(config.ats_inval_tags))``
        Only with ``config.ats``: the ITAG tracker, for test benches.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`.
    """

    def __init__(self, config):
        require_config(self, config)
        self._config = config
        self._vpn_w = vpn_width(config)
        members = {
            "regs": In(CommandQueueRegisters(config.ats)),
            "iommu_mode": In(IommuMode),
            "fetch": Out(MemReadSignature(config.pas)),
            "store": Out(MemWriteSignature(config.pas)),
            "ddtc_inval": Out(stream.Signature(ddtc_inval_layout())),
            "iotlb_inval": Out(stream.Signature(iotlb_inval_layout(self._vpn_w))),
        }
        if config.pd_levels:
            members["pdtc_inval"] = Out(stream.Signature(pdtc_inval_layout()))
        if config.igs == Igs.BOTH:
            members["fctl_wsi"] = In(1)
        if config.ats:
            members["ats_msg"] = Out(stream.Signature(ATS_MSG))
            members["ats_cpl"] = In(stream.Signature(ATS_CPL))
            members["ats_status"] = Out(ats_status_layout(config.ats_inval_tags))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        pas = self._config.pas
        regs = self.regs

        addr = Signal(pas)                   # the command's address
        word = Signal(1)                     # the doubleword being fetched
        cmd = Signal(CMD)
        raw = cmd.as_value()
        inv = data.View(IOTINVAL, raw)
        fence = data.View(IOFENCE, raw)
        iodir = data.View(IODIR, raw)

        def no_reserved(layout):
            return (raw & bits.reserved_mask(layout)) == 0

        # --- Decode (spec "Command-Queue (CQ)"). The operands of an illegal command are never used.
        is_iotinval = (cmd.opcode == Opcode.IOTINVAL) & no_reserved(IOTINVAL) & (
            (cmd.func3 == IotinvalFunc.VMA) | ((cmd.func3 == IotinvalFunc.GVMA) & ~inv.pscv))
        is_iofence = ((cmd.opcode == Opcode.IOFENCE) & (cmd.func3 == IofenceFunc.C)
                      & no_reserved(IOFENCE))
        if self._config.igs == Igs.MSI:
            is_iofence = is_iofence & ~fence.wsi
        elif self._config.igs == Igs.BOTH:
            is_iofence = is_iofence & (~fence.wsi | self.fctl_wsi)
        # PID is reserved for INVAL_DDT; INVAL_PDT needs process contexts.
        is_iodir = ((cmd.opcode == Opcode.IODIR) & (cmd.func3 == IodirFunc.INVAL_DDT)
                    & no_reserved(IODIR) & (iodir.pid == 0)
                    & (~iodir.dv | did_fits(self.iommu_mode, iodir.did, self._config.dc_extended)))
        pid_bits = self._config.process_id_bits
        is_inval_pdt = Const(0, 1)
        if self._config.pd_levels:
            is_inval_pdt = ((cmd.opcode == Opcode.IODIR) & (cmd.func3 == IodirFunc.INVAL_PDT)
                            & no_reserved(IODIR) & iodir.dv
                            & did_fits(self.iommu_mode, iodir.did, self._config.dc_extended)
                            & ((iodir.pid >> pid_bits) == 0 if pid_bits < 20 else 1))
            m.d.comb += [self.pdtc_inval.payload.device_id.eq(iodir.did),
                         self.pdtc_inval.payload.pid.eq(iodir.pid)]

        if self._config.ats:
            ats = self._ats_tracker(m, raw, no_reserved(ATS))

        m.d.comb += [
            self.iotlb_inval.payload.kind.eq(Mux(cmd.func3 == IotinvalFunc.GVMA,
                                                 InvalKind.GVMA, InvalKind.VMA)),
            self.iotlb_inval.payload.gv.eq(inv.gv),
            self.iotlb_inval.payload.av.eq(inv.av),
            self.iotlb_inval.payload.pscv.eq(inv.pscv),
            self.iotlb_inval.payload.gscid.eq(inv.gscid),
            self.iotlb_inval.payload.pscid.eq(inv.pscid),
            # ADDR[63:12] cut to the IOTLB's VPN: a wider ADDR is not a valid address,
            # and "the command may or may not perform any invalidations" (spec
            # "IOMMU Page-Table cache invalidation commands").
            self.iotlb_inval.payload.vpn.eq(inv.addr[:self._vpn_w]),
            self.ddtc_inval.payload.all.eq(~iodir.dv),
            self.ddtc_inval.payload.device_id.eq(iodir.did),
        ]

        # --- The IOFENCE.C store: 4 bytes of DATA at ADDR[63:2] * 4, in the half of the
        # doubleword that address selects.
        store_addr = Signal(64)
        m.d.comb += store_addr.eq(Cat(Const(0, 2), fence.addr))
        beyond_pas = store_addr[pas:] != 0
        m.d.comb += [
            self.store.req.payload.addr.eq(store_addr[:pas]),
            self.store.req.payload.data.eq(Cat(fence.data, fence.data)),
            self.store.req.payload.strb.eq(Mux(store_addr[2], 0xF0, 0x0F)),
            self.store.resp.ready.eq(1),
            self.fetch.req.payload.addr.eq(addr + word * 8),
            self.fetch.resp.ready.eq(1),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(regs.run & (regs.head != regs.tail)):
                    m.d.sync += [addr.eq((regs.ppn << 12) + regs.head * CMD_SIZE),
                                 word.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [regs.busy.eq(1), self.fetch.req.valid.eq(1)]
                with m.If(self.fetch.req.ready):
                    m.next = "FETCH_WAIT"
            with m.State("FETCH_WAIT"):
                m.d.comb += regs.busy.eq(1)
                with m.If(self.fetch.resp.valid):
                    with m.If(self.fetch.resp.payload.err):
                        m.d.comb += regs.set_cqmf.eq(1)
                        m.next = "IDLE"
                    with m.Elif(word == 0):
                        m.d.sync += [raw[:64].eq(self.fetch.resp.payload.data), word.eq(1)]
                        m.next = "FETCH"
                    with m.Else():
                        m.d.sync += raw[64:].eq(self.fetch.resp.payload.data)
                        m.next = "EXECUTE"
            with m.State("EXECUTE"):
                m.d.comb += regs.busy.eq(1)
                with m.If(is_iotinval):
                    m.d.comb += self.iotlb_inval.valid.eq(1)
                    with m.If(self.iotlb_inval.ready):
                        m.next = "COMPLETE"
                with m.Elif(is_iodir):
                    m.d.comb += self.ddtc_inval.valid.eq(1)
                    with m.If(self.ddtc_inval.ready):
                        m.next = "COMPLETE"
                if self._config.pd_levels:
                    with m.Elif(is_inval_pdt):
                        m.d.comb += self.pdtc_inval.valid.eq(1)
                        with m.If(self.pdtc_inval.ready):
                            m.next = "COMPLETE"
                if self._config.ats:
                    with m.Elif(ats.is_inval | ats.is_prgr):
                        # An ATS.INVAL waits for a free ITAG; cqh moves on once the
                        # message is out (reference N.6.4: later commands may run).
                        m.d.comb += self.ats_msg.valid.eq(~ats.is_inval | ats.have_free)
                        with m.If(self.ats_msg.valid & self.ats_msg.ready):
                            m.d.comb += ats.alloc.eq(ats.is_inval)
                            m.next = "COMPLETE"
                with m.Elif(is_iofence):
                    if self._config.ats:
                        # Commands run in order and the fence holds the queue, so every
                        # outstanding ATS.INVAL is an earlier one (reference N.6.4).
                        with m.If(ats.busy != 0):
                            pass
                        with m.Elif(ats.timed_out):
                            # cqh stays at the fence, which has not completed; reported
                            # once: clearing cmd_to runs it again (as libiommu).
                            m.d.comb += [regs.set_cmd_to.eq(1), ats.report.eq(1)]
                            m.next = "IDLE"
                    with m.Elif(~fence.av) if self._config.ats else m.If(~fence.av):
                        m.next = "COMPLETE"
                    with m.Elif(beyond_pas):
                        m.d.comb += regs.set_cqmf.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "STORE"
                with m.Else():
                    m.d.comb += regs.set_cmd_ill.eq(1)
                    m.next = "IDLE"
            with m.State("STORE"):
                m.d.comb += [regs.busy.eq(1), self.store.req.valid.eq(1)]
                with m.If(self.store.req.ready):
                    m.next = "STORE_WAIT"
            with m.State("STORE_WAIT"):
                m.d.comb += regs.busy.eq(1)
                with m.If(self.store.resp.valid):
                    with m.If(self.store.resp.payload.err):
                        # The fence did not complete: cqh stays at it (spec
                        # "IOMMU Command-queue Fence commands").
                        m.d.comb += regs.set_cqmf.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "COMPLETE"
            with m.State("COMPLETE"):
                m.d.comb += [
                    regs.busy.eq(1), regs.advance.eq(1),
                    regs.set_fence_w_ip.eq(is_iofence & fence.wsi),
                ]
                m.next = "IDLE"
        return m

    def _ats_tracker(self, m, raw, dw0_ok):
        """Decode ATS.INVAL/ATS.PRGR and track the outstanding ATS.INVALs by ITAG (reference
        N.6.4 "ATS.INVAL completion and timeout"; docs/ats-pri.md "Commands").

        Returns a namespace: ``is_inval``, ``is_prgr`` (legal commands: the reserved bits of
        dword0 are 0, the PAYLOAD's zero fields are not checked, N.10), ``have_free``,
        ``busy``, ``timed_out``, and the strobes ``alloc`` (the INVAL message was sent) and
        ``report`` (a fence reported the timeout: forget it).
        """
        cfg = self._config
        n = cfg.ats_inval_tags
        limit = cfg.ats_timeout_cycles
        cmd = data.View(ATS, raw)

        class Tracker:
            pass
        t = Tracker()
        t.is_inval = (cmd.opcode == Opcode.ATS) & (cmd.func3 == AtsFunc.INVAL) & dw0_ok
        t.is_prgr = (cmd.opcode == Opcode.ATS) & (cmd.func3 == AtsFunc.PRGR) & dw0_ok
        t.busy = Signal(n, name="ats_busy")
        t.timed_out = Signal(name="ats_timed_out")
        t.alloc = Signal(name="ats_alloc")
        t.report = Signal(name="ats_report")
        t.have_free = t.busy != (1 << n) - 1
        free_idx = Signal(5, name="ats_free_idx")
        for i in reversed(range(n)):             # the lowest free ITAG wins
            with m.If(~t.busy[i]):
                m.d.comb += free_idx.eq(i)

        msg = self.ats_msg.payload
        m.d.comb += [
            msg.kind.eq(Mux(cmd.func3 == AtsFunc.PRGR, AtsMsgKind.PRGR, AtsMsgKind.INVAL)),
            msg.rid.eq(cmd.rid), msg.dsv.eq(cmd.dsv), msg.dseg.eq(cmd.dseg),
            msg.pv.eq(cmd.pv), msg.pid.eq(cmd.pid), msg.payload.eq(cmd.payload),
            msg.itag.eq(Mux(t.is_inval, free_idx, 0)),
        ]

        # --- Completions: matched by RID, and DSEG when the request named one (as libiommu);
        # an ITAG completes after CC completions (0 means 8, PCIe). A completion naming
        # anything not outstanding for that requester is dropped whole and counted.
        cpl = self.ats_cpl.payload
        m.d.comb += self.ats_cpl.ready.eq(1)
        rids = [Signal(16, name=f"ats_rid{i}") for i in range(n)]
        dsvs = [Signal(name=f"ats_dsv{i}") for i in range(n)]
        dsegs = [Signal(8, name=f"ats_dseg{i}") for i in range(n)]
        counts = [Signal(3, name=f"ats_count{i}") for i in range(n)]
        timers = [Signal(range(limit), name=f"ats_timer{i}") for i in range(n)]
        named = cpl.itag_vector[:n]
        match = Cat(*(t.busy[i] & (rids[i] == cpl.rid) & (~dsvs[i] | (dsegs[i] == cpl.dseg))
                      for i in range(n)))
        accept = Signal(name="ats_cpl_accept")
        m.d.comb += accept.eq((named != 0) & ((named & ~match) == 0)
                              & (cpl.itag_vector[n:] == 0 if n < 32 else 1))
        dropped = Signal(8, name="ats_dropped")
        with m.If(self.ats_cpl.valid & ~accept):
            m.d.sync += dropped.eq(dropped + 1)
        freed = Signal(n, name="ats_freed")
        expired = Signal(n, name="ats_expired")
        for i in range(n):
            hit = self.ats_cpl.valid & accept & named[i]
            m.d.comb += freed[i].eq(hit & (((counts[i] + 1) & 7) == cpl.cc))
            # The timer ends the ITAG's ats_timeout_cycles-th busy cycle; a completion in
            # that cycle still counts.
            m.d.comb += expired[i].eq(t.busy[i] & (timers[i] == limit - 1) & ~freed[i])
            with m.If(t.busy[i]):
                m.d.sync += timers[i].eq(timers[i] + 1)
            with m.If(hit):
                m.d.sync += counts[i].eq(counts[i] + 1)
            with m.If(freed[i] | expired[i]):
                m.d.sync += t.busy[i].eq(0)
            with m.If(t.alloc & (free_idx == i)):
                m.d.sync += [t.busy[i].eq(1), rids[i].eq(cmd.rid), dsvs[i].eq(cmd.dsv),
                             dsegs[i].eq(cmd.dseg), counts[i].eq(0), timers[i].eq(0)]
        with m.If(expired != 0):
            m.d.sync += t.timed_out.eq(1)
        with m.Elif(t.report):
            m.d.sync += t.timed_out.eq(0)
        m.d.comb += [self.ats_status.busy.eq(t.busy), self.ats_status.expired.eq(expired),
                     self.ats_status.timed_out.eq(t.timed_out),
                     self.ats_status.dropped.eq(dropped)]
        return t
