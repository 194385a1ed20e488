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
                              with IGS=MSI (``cmd_ill``), as ``fctl_wsi`` says with IGS=BOTH
============================  =============================================================

Everything else sets ``cmd_ill`` (spec "Command-Queue (CQ)": a command is illegal "if it uses a
reserved encoding or if a reserved bit is set to 1", unsupported "if it is defined but not
implemented"): opcodes 0 and 5-127, reserved ``func3`` values, a set
reserved bit (the NL and S extension bits included: ``capabilities.NL = S = 0``), ATS
(``capabilities.ATS=0``) and IODIR.INVAL_PDT without process contexts. A fault on the fetch
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
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl import bits
from iogate.hdl.config import require_config
from iogate.hdl.ddt import ddtc_inval_layout
from iogate.hdl.formats import (
    CMD,
    CMD_SIZE,
    IODIR,
    IOFENCE,
    IOTINVAL,
    IodirFunc,
    IofenceFunc,
    IotinvalFunc,
    Opcode,
)
from iogate.hdl.iotlb import InvalKind, iotlb_inval_layout, vpn_width
from iogate.hdl.mem_master import MemReadSignature, MemWriteSignature
from iogate.hdl.pdtc import pdtc_inval_layout
from iogate.hdl.regs import Igs, IommuMode

__all__ = ["CommandQueueRegisters", "CommandQueue", "did_fits"]


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
    """

    def __init__(self):
        super().__init__({
            "ppn": Out(44), "head": Out(32), "tail": Out(32), "run": Out(1),
            "advance": In(1), "set_cqmf": In(1), "set_cmd_ill": In(1),
            "set_fence_w_ip": In(1), "busy": In(1),
        })


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
            "regs": In(CommandQueueRegisters()),
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
                with m.Elif(is_iofence):
                    with m.If(~fence.av):
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
