"""The memory-mapped register file, behind an AXI4-Lite subordinate port.

RISC-V IOMMU spec "Memory-mapped register interface". This register file
decodes:

==============  =======  ==================================================================
register        offset   behaviour
==============  =======  ==================================================================
capabilities    0x000    RO, ``Config.capabilities``
fctl            0x008    BE=0 (END=0, little-endian), WSI=1 (IGS=WSI: wired interrupts are
                         the only legal value of this WARL field), GXL=0; nothing writable
ddtp            0x010    ``iommu_mode`` WARL: a mode this IOMMU does not offer is not
                         retained (spec "Guidelines for initialization": "writing
                         legal values and reading it to see if the value was retained"),
                         the field keeps its old value; ``busy`` RO 0 (mode changes
                         complete at once); PPN WARL, bits at and above ``PAS`` read 0;
                         reserved bits read 0. Resets to Off.
cqb, fqb        0x018,   ``LOG2SZ-1`` (all 5 bits, up to 2**32 entries) and PPN (WARL as in
                0x028    ``ddtp``). After a write, the bits of ``cqt`` (``fqh``) at and
                         above LOG2SZ read 0 (spec "Command-queue base (cqb)").
cqh, fqt        0x020,   RO: owned by the command-queue engine and the fault-queue writer.
                0x034
cqt, fqh        0x024,   only bits LOG2SZ-1:0 are writable (spec "Command-queue tail (cqt)").
                0x030
cqcsr           0x048    ``cqen``, ``cie`` RW; ``cqmf``, ``cmd_to``, ``cmd_ill``,
                         ``fence_w_ip`` RW1C; ``cqon``, ``busy`` RO (spec "Command-queue CSR
                         (cqcsr)"). ``cqen``
                         0->1 clears ``cqh`` and the four error bits and turns the queue
                         on at once. ``cqen`` 1->0 turns it off once the command in flight
                         is done, with ``busy`` set meanwhile.
fqcsr           0x04C    the same for the fault queue (spec "Fault queue CSR (fqcsr)"): ``fqen``
                         0->1 clears ``fqt``, ``fqmf`` and ``fqof``; ``fqen`` 1->0 turns ``fqon``
                         off once the record being stored is done.
ipsr            0x054    ``cip``, ``fip`` RW1C (spec "Interrupt pending status register
                         (ipsr)"): ``cip`` is set while ``cie``
                         and any of ``fence_w_ip``, ``cmd_ill``, ``cmd_to``, ``cqmf``;
                         ``fip`` while ``fie`` and ``fqof`` or ``fqmf``, and when a record
                         is stored while ``fie``. A bit cleared while its condition holds
                         is set again. ``pmip``/``pip`` read 0 (no HPM, no ATS).
icvec           0x2F8    ``civ``, ``fiv``, ``pmiv``, ``piv`` WARL, all four bits writable.
tr_req_iova     0x258    ``vpn`` RW (only when ``capabilities.DBG``)
tr_req_ctl      0x260    Go/Busy RW1S, cleared when the response is written; Priv, Exe, NW,
                         PID, PV, DID RW. While Go=1 writes are ignored (spec: UNSPECIFIED).
tr_response     0x268    RO: fault, PBMT, S=0 (4 KiB reporting), PPN
==============  =======  ==================================================================

Every other offset reads 0 and ignores writes. Registers are 64-bit words indexed by
``addr[11:3]``: on a 64-bit bus a 4-byte access at offset 4 mod 8 uses the upper byte
lanes (``wstrb[7:4]``, ``rdata[63:32]``); on a 32-bit bus ``addr[2]`` selects the half,
and an 8-byte register is two 4-byte accesses. Byte strobes apply per byte: a RW field
takes the written bytes, a RW1C bit is cleared only by a 1 in a written byte, so a 4-byte
write to one register of a shared word (``cqh``/``cqt``, ``cqcsr``/``fqcsr``) never
disturbs the other. Every access is answered OKAY.

Wired interrupts (spec "Interrupt pending status register (ipsr)", "Interrupt-cause-to-vector
register (icvec)"): with ``fctl.WSI=1``, ``ipsr.cip`` drives ``wsi`` bit ``icvec.civ`` and
``ipsr.fip`` bit ``icvec.fiv`` (both, ORed, when they name the same vector).

A debug translation (``tr_req_ctl.Go``) is an Untranslated request (spec "Translation-request
control (tr_req_ctl)"): Exe=1 is
a read-for-execute, otherwise NW=1 a read and NW=0 a write (read and write permissions
requested), with ``device_id`` = DID and a ``process_id`` (PID, Priv) when PV=1.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl import bits
from iogate.hdl.axi import AXI4LiteSignature, Resp
from iogate.hdl.cmdq import CommandQueueRegisters
from iogate.hdl.config import require_config
from iogate.hdl.formats import Pbmt
from iogate.hdl.fq import FaultQueueRegisters
from iogate.hdl.port import Access
from iogate.hdl.regs import (
    CQCSR,
    DDTP,
    FCTL,
    FQCSR,
    ICVEC,
    IPSR,
    QB,
    TR_REQ_CTL,
    TR_RESPONSE,
    IommuMode,
    Offset,
)

__all__ = ["MMIO_ADDR_WIDTH", "WSI_LINES", "dbg_request_layout", "dbg_response_layout",
           "index_mask", "RegFile"]

#: The register page is 4 KiB (spec "Register layout").
MMIO_ADDR_WIDTH = 12
#: Wired interrupt lines: one per value of a 4-bit ``icvec`` field (spec "Interrupt-cause-to-vector
#: register (icvec)").
WSI_LINES = 16


def dbg_request_layout():
    return data.StructLayout({"device_id": 24, "iova": 64, "access": Access, "pv": 1,
                              "pid": 20, "priv": 1})


def dbg_response_layout():
    return data.StructLayout({"fault": 1, "ppn": 44, "pbmt": Pbmt})


def index_mask(log2szm1, width=32):
    """The bits of a queue index for a queue of ``2**(log2szm1 + 1)`` entries (``width``
    wide: ``Config.queue_log2sz_max``).

    ``log2szm1`` is the 5-bit ``LOG2SZ-1`` field (an expression): bit ``i`` of the mask is
    set when ``i <= LOG2SZ-1``, so 0 gives ``0b1`` (2 entries) and 31 all 32 bits.
    """
    return Cat(*(log2szm1 >= i for i in range(width)))


def _index32(index):
    """A queue index as its 32-bit register reads (bits above the index width read 0)."""
    return Cat(index, Const(0, 32 - len(index)))


class RegFile(wiring.Component):
    """The IOMMU registers.

    Parameters
    ----------
    config : Config

    Members
    -------
    mmio : ``In(AXI4LiteSignature(12, config.mmio_data_width))``
        The register port.
    iommu_mode : ``Out(IommuMode)``
        ``ddtp.iommu_mode``.
    ddtp_ppn : ``Out(44)``
        ``ddtp.PPN``.
    dbg_req : ``Out(stream.Signature(dbg_request_layout()))``
        The debug translation request, offered once per Go.
    dbg_resp : ``In(stream.Signature(dbg_response_layout()))``
        Its answer; always accepted.
    cq : ``Out(CommandQueueRegisters())``
        The command-queue registers, to the command-queue engine.
    fq : ``Out(FaultQueueRegisters())``
        The fault-queue registers, to the fault-queue writer.
    wsi : ``Out(16)``
        The wired interrupt lines.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`.
    """

    def __init__(self, config):
        require_config(self, config)
        self._config = config
        super().__init__({
            "mmio": In(AXI4LiteSignature(MMIO_ADDR_WIDTH, config.mmio_data_width)),
            "iommu_mode": Out(IommuMode),
            "ddtp_ppn": Out(44),
            "dbg_req": Out(stream.Signature(dbg_request_layout())),
            "dbg_resp": In(stream.Signature(dbg_response_layout())),
            "cq": Out(CommandQueueRegisters()),
            "fq": Out(FaultQueueRegisters()),
            "wsi": Out(WSI_LINES),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        bus = self.mmio
        dw = cfg.mmio_data_width
        # PPN bits that name addresses below 2**PAS (WARL: the rest read 0).
        ppn_mask = (1 << (cfg.pas - 12)) - 1

        # --- State. Reset values are 0 (spec "Reset behavior": the queues off, ipsr 0, Go 0; the
        # rest is UNSPECIFIED), ddtp resets to Off.
        ddtp = Signal(DDTP)
        tr_iova_vpn = Signal(52)
        tr_ctl = Signal(TR_REQ_CTL)
        tr_resp = Signal(TR_RESPONSE)
        issued = Signal()                          # the Go request went to the pipeline
        cqb, fqb = Signal(QB), Signal(QB)
        # Queue indices are Config.queue_log2sz_max bits: the bits above read 0.
        iw = cfg.queue_log2sz_max
        cqh, cqt, fqh, fqt = Signal(iw), Signal(iw), Signal(iw), Signal(iw)
        cqcsr, fqcsr = Signal(CQCSR), Signal(FQCSR)
        ipsr = Signal(IPSR)
        icvec = Signal(ICVEC)

        cq_errors = Cat(cqcsr.cqmf, cqcsr.cmd_to, cqcsr.cmd_ill, cqcsr.fence_w_ip)
        cq_busy = cqcsr.cqon & ~cqcsr.cqen         # turning off: a command is in flight
        fq_busy = fqcsr.fqon & ~fqcsr.fqen
        cq_mask = index_mask(cqb.log2szm1, iw)
        fq_mask = index_mask(fqb.log2szm1, iw)

        m.d.comb += [self.iommu_mode.eq(ddtp.iommu_mode), self.ddtp_ppn.eq(ddtp.ppn)]
        m.d.comb += [
            self.cq.ppn.eq(cqb.ppn), self.cq.head.eq(cqh), self.cq.tail.eq(cqt),
            self.cq.run.eq(cqcsr.cqen & cqcsr.cqon
                           & ~cqcsr.cqmf & ~cqcsr.cmd_to & ~cqcsr.cmd_ill),
            self.fq.ppn.eq(fqb.ppn), self.fq.tail.eq(fqt),
            self.fq.full.eq(((fqt + 1) & fq_mask) == (fqh & fq_mask)),
            self.fq.on.eq(fqcsr.fqen & fqcsr.fqon),
            self.fq.error.eq(fqcsr.fqof | fqcsr.fqmf),
        ]

        fctl_value = bits.pack(FCTL, wsi=1)

        def qb_word(qb):
            return Cat(qb.log2szm1, Const(0, 5), qb.ppn, Const(0, 10))

        def cqcsr_word():
            return (Cat(cqcsr.cqen, cqcsr.cie, Const(0, 6), cq_errors, Const(0, 4),
                        cqcsr.cqon, cq_busy) | Const(0, 32))

        def fqcsr_word():
            return (Cat(fqcsr.fqen, fqcsr.fie, Const(0, 6), fqcsr.fqmf, fqcsr.fqof,
                        Const(0, 6), fqcsr.fqon, fq_busy) | Const(0, 32))

        def word_of(index):
            """The 64-bit word at register-page index ``index`` (offset // 8)."""
            word = Signal(64)
            with m.Switch(index):
                with m.Case(Offset.CAPABILITIES // 8):
                    m.d.comb += word.eq(cfg.capabilities)
                with m.Case(Offset.FCTL // 8):
                    m.d.comb += word.eq(fctl_value)
                with m.Case(Offset.DDTP // 8):
                    m.d.comb += word.eq(Cat(ddtp.iommu_mode, Const(0, 6), ddtp.ppn))
                with m.Case(Offset.CQB // 8):
                    m.d.comb += word.eq(qb_word(cqb))
                with m.Case(Offset.CQH // 8):                     # cqh | cqt
                    m.d.comb += word.eq(Cat(_index32(cqh), _index32(cqt)))
                with m.Case(Offset.FQB // 8):
                    m.d.comb += word.eq(qb_word(fqb))
                with m.Case(Offset.FQH // 8):                     # fqh | fqt
                    m.d.comb += word.eq(Cat(_index32(fqh), _index32(fqt)))
                with m.Case(Offset.CQCSR // 8):                   # cqcsr | fqcsr
                    m.d.comb += word.eq(Cat(cqcsr_word(), fqcsr_word()))
                with m.Case(Offset.IPSR // 8):                    # pqcsr (absent) | ipsr
                    m.d.comb += word.eq(Cat(Const(0, 32), ipsr.cip, ipsr.fip))
                with m.Case(Offset.ICVEC // 8):
                    m.d.comb += word.eq(Cat(icvec.civ, icvec.fiv, icvec.pmiv, icvec.piv))
                if cfg.dbg:
                    with m.Case(Offset.TR_REQ_IOVA // 8):
                        m.d.comb += word.eq(Cat(Const(0, 12), tr_iova_vpn))
                    with m.Case(Offset.TR_REQ_CTL // 8):
                        m.d.comb += word.eq(tr_ctl.as_value()
                                            & ~bits.reserved_mask(TR_REQ_CTL)
                                            & ~bits.mask(TR_REQ_CTL, "_custom0"))
                    with m.Case(Offset.TR_RESPONSE // 8):
                        m.d.comb += word.eq(tr_resp)
            return word

        # --- Reads: accept an address, answer the next cycle.
        rvalid = Signal()
        rdata = Signal(dw)
        m.d.comb += [bus.arready.eq(~rvalid), bus.rvalid.eq(rvalid), bus.rdata.eq(rdata),
                     bus.rresp.eq(Resp.OKAY)]
        rword = word_of(bus.araddr[3:12])
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += rvalid.eq(1)
            if dw == 64:
                m.d.sync += rdata.eq(rword)
            else:
                m.d.sync += rdata.eq(Mux(bus.araddr[2], rword[32:], rword[:32]))
        with m.Elif(bus.rready):
            m.d.sync += rvalid.eq(0)

        # --- Writes: take address and data together, answer the next cycle.
        bvalid = Signal()
        m.d.comb += [bus.bvalid.eq(bvalid), bus.bresp.eq(Resp.OKAY)]
        take = bus.awvalid & bus.wvalid & ~bvalid
        m.d.comb += [bus.awready.eq(take), bus.wready.eq(take)]
        with m.If(take):
            m.d.sync += bvalid.eq(1)
        with m.Elif(bus.bready):
            m.d.sync += bvalid.eq(0)

        # The write as a 64-bit word and a bit mask.
        wdata = Signal(64)
        wmask = Signal(64)
        if dw == 64:
            strobes = bus.wstrb
            m.d.comb += wdata.eq(bus.wdata)
        else:
            strobes = Mux(bus.awaddr[2], Cat(Const(0, 4), bus.wstrb), Cat(bus.wstrb, Const(0, 4)))
            m.d.comb += wdata.eq(Cat(bus.wdata, bus.wdata))
        m.d.comb += wmask.eq(Cat(strobes[i].replicate(8) for i in range(8)))
        ones = Signal(64)                          # the bits written as 1: what RW1C clears
        m.d.comb += ones.eq(wdata & wmask)

        def merged(old):
            return (old & ~wmask) | (wdata & wmask)

        windex = bus.awaddr[3:12]
        write = {}                                 # index -> this cycle writes that word
        for offset in (Offset.CQCSR, Offset.IPSR):
            write[offset] = Signal(name=f"write_{offset.name.lower()}")
            m.d.comb += write[offset].eq(take & (windex == offset // 8))

        # The queue CSRs and ipsr have several writers (MMIO, the engines): their next
        # values are computed here in one place, after the MMIO cases below.
        cq_word = merged(Cat(cqcsr_word(), fqcsr_word()))
        new_cq = data.View(CQCSR, cq_word[:32])
        new_fq = data.View(FQCSR, cq_word[32:])
        w1c_cq = Mux(write[Offset.CQCSR], ones[8:12], 0)        # cqmf, cmd_to, cmd_ill, fence_w_ip
        w1c_fq = Mux(write[Offset.CQCSR], ones[32 + 8:32 + 10], 0)  # fqmf, fqof
        w1c_ip = Mux(write[Offset.IPSR], ones[32:34], 0)        # cip, fip

        with m.If(take):
            with m.Switch(windex):
                with m.Case(Offset.DDTP // 8):
                    new = data.View(DDTP, merged(ddtp.as_value()))
                    m.d.sync += ddtp.ppn.eq(new.ppn & ppn_mask)
                    ok = Const(0, 1)
                    for mode in cfg.iommu_modes:
                        ok = ok | (new.iommu_mode == mode)
                    with m.If(ok):
                        m.d.sync += ddtp.iommu_mode.eq(new.iommu_mode)
                for offset, qb, index in ((Offset.CQB, cqb, cqt), (Offset.FQB, fqb, fqh)):
                    with m.Case(offset // 8):
                        new = data.View(QB, merged(qb_word(qb)))
                        # WARL: a size above Config.queue_log2sz_max reads as the maximum.
                        log2szm1 = Mux(new.log2szm1 > iw - 1, iw - 1, new.log2szm1)
                        m.d.sync += [
                            qb.log2szm1.eq(log2szm1), qb.ppn.eq(new.ppn & ppn_mask),
                            # Index bits at and above the new LOG2SZ read 0 (spec "Command-queue
                            # base (cqb)", "Fault queue base (fqb)").
                            index.eq(index & index_mask(log2szm1, iw)),
                        ]
                with m.Case(Offset.CQT // 8):
                    m.d.sync += cqt.eq(merged(Cat(_index32(cqh), _index32(cqt)))[32:] & cq_mask)
                with m.Case(Offset.FQH // 8):
                    m.d.sync += fqh.eq(merged(Cat(_index32(fqh), _index32(fqt)))[:32] & fq_mask)
                with m.Case(Offset.ICVEC // 8):
                    new = merged(Cat(icvec.civ, icvec.fiv, icvec.pmiv, icvec.piv))
                    m.d.sync += icvec.as_value()[:16].eq(new[:16])
                if cfg.dbg:
                    with m.Case(Offset.TR_REQ_IOVA // 8):
                        with m.If(~tr_ctl.go):
                            m.d.sync += tr_iova_vpn.eq(
                                merged(Cat(Const(0, 12), tr_iova_vpn))[12:])
                    with m.Case(Offset.TR_REQ_CTL // 8):
                        with m.If(~tr_ctl.go):
                            new = data.View(TR_REQ_CTL, merged(tr_ctl.as_value()))
                            m.d.sync += [
                                tr_ctl.priv.eq(new.priv), tr_ctl.exe.eq(new.exe),
                                tr_ctl.nw.eq(new.nw), tr_ctl.pid.eq(new.pid),
                                tr_ctl.pv.eq(new.pv), tr_ctl.did.eq(new.did),
                                # RW1S: a 1 written to Go sets it, a 0 leaves it.
                                tr_ctl.go.eq(wmask[0] & wdata[0]),
                                issued.eq(0),
                            ]

        # --- Command queue (spec "Command-queue CSR (cqcsr)"). Engine strobes first; an MMIO cqen
        # 0->1 wins over them (a cqcsr write while busy is UNSPECIFIED).
        cq = self.cq
        cq_set = Cat(cq.set_cqmf, Const(0, 1), cq.set_cmd_ill, cq.set_fence_w_ip)
        with m.If(cq.advance):
            m.d.sync += cqh.eq((cqh + 1) & cq_mask)
        m.d.sync += Cat(cqcsr.cqmf, cqcsr.cmd_to, cqcsr.cmd_ill, cqcsr.fence_w_ip).eq(
            (cq_errors & ~w1c_cq) | cq_set)
        with m.If(write[Offset.CQCSR]):
            m.d.sync += [cqcsr.cqen.eq(new_cq.cqen), cqcsr.cie.eq(new_cq.cie)]
            with m.If(new_cq.cqen & ~cqcsr.cqen):
                m.d.sync += [
                    cqh.eq(0), cqcsr.cqon.eq(1),
                    Cat(cqcsr.cqmf, cqcsr.cmd_to, cqcsr.cmd_ill, cqcsr.fence_w_ip).eq(0),
                ]
        with m.If(~cqcsr.cqen & ~cq.busy & ~(write[Offset.CQCSR] & new_cq.cqen)):
            m.d.sync += cqcsr.cqon.eq(0)

        # --- Fault queue (spec "Fault queue CSR (fqcsr)"), the same way.
        fq = self.fq
        with m.If(fq.advance):
            m.d.sync += fqt.eq((fqt + 1) & fq_mask)
        m.d.sync += [
            fqcsr.fqmf.eq((fqcsr.fqmf & ~w1c_fq[0]) | fq.set_fqmf),
            fqcsr.fqof.eq((fqcsr.fqof & ~w1c_fq[1]) | fq.set_fqof),
        ]
        with m.If(write[Offset.CQCSR]):
            m.d.sync += [fqcsr.fqen.eq(new_fq.fqen), fqcsr.fie.eq(new_fq.fie)]
            with m.If(new_fq.fqen & ~fqcsr.fqen):
                m.d.sync += [fqt.eq(0), fqcsr.fqon.eq(1), fqcsr.fqmf.eq(0), fqcsr.fqof.eq(0)]
        with m.If(~fqcsr.fqen & ~fq.busy & ~(write[Offset.CQCSR] & new_fq.fqen)):
            m.d.sync += fqcsr.fqon.eq(0)

        # --- Interrupt pending (spec "Interrupt pending status register (ipsr)"): RW1C, set again
        # while the condition holds.
        cip_cond = cqcsr.cie & cq_errors.any()
        fip_cond = fqcsr.fie & (fqcsr.fqof | fqcsr.fqmf | fq.advance)
        m.d.sync += [
            ipsr.cip.eq((ipsr.cip & ~w1c_ip[0]) | cip_cond),
            ipsr.fip.eq((ipsr.fip & ~w1c_ip[1]) | fip_cond),
        ]
        # Wired interrupts (fctl.WSI=1): each pending bit drives the line its icvec field
        # names (spec "Interrupt-cause-to-vector register (icvec)").
        for line in range(WSI_LINES):
            m.d.comb += self.wsi[line].eq((ipsr.cip & (icvec.civ == line))
                                          | (ipsr.fip & (icvec.fiv == line)))

        # --- The debug request and its response.
        if cfg.dbg:
            p = self.dbg_req.payload
            m.d.comb += [
                self.dbg_req.valid.eq(tr_ctl.go & ~issued),
                p.device_id.eq(tr_ctl.did),
                p.iova.eq(Cat(Const(0, 12), tr_iova_vpn)),
                p.access.eq(Mux(tr_ctl.exe, Access.EXECUTE,
                                Mux(tr_ctl.nw, Access.READ, Access.WRITE))),
                p.pv.eq(tr_ctl.pv),
                p.pid.eq(tr_ctl.pid),
                p.priv.eq(tr_ctl.priv),
                self.dbg_resp.ready.eq(1),
            ]
            with m.If(self.dbg_req.valid & self.dbg_req.ready):
                m.d.sync += issued.eq(1)
            with m.If(self.dbg_resp.valid):
                r = self.dbg_resp.payload
                m.d.sync += [
                    tr_ctl.go.eq(0), issued.eq(0),
                    tr_resp.eq(0),
                    tr_resp.fault.eq(r.fault),
                    tr_resp.pbmt.eq(Mux(r.fault, 0, r.pbmt)),
                    tr_resp.ppn.eq(Mux(r.fault, 0, r.ppn)),
                ]
        else:
            m.d.comb += self.dbg_resp.ready.eq(1)
        return m
