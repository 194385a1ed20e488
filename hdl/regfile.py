"""The memory-mapped register file, behind an AXI4-Lite subordinate port.

RISC-V IOMMU spec chapter 6 ("Memory-mapped register interface"). This slice decodes:

==============  =======  ==================================================================
register        offset   behaviour
==============  =======  ==================================================================
capabilities    0x000    RO, ``Config.capabilities``
fctl            0x008    BE=0 (END=0, little-endian), WSI=1 (IGS=WSI: wired interrupts are
                         the only legal value of this WARL field), GXL=0; nothing writable
ddtp            0x010    ``iommu_mode`` WARL: a mode this IOMMU does not offer is not
                         retained (spec 7.2, "Guidelines for initialization": "writing legal values and
                         reading it to see if the value was retained"), the field keeps its
                         old value; ``busy`` RO 0 (mode changes complete at once); PPN RW;
                         reserved bits read 0. Resets to Off.
tr_req_iova     0x258    ``vpn`` RW (only when ``capabilities.DBG``)
tr_req_ctl      0x260    Go/Busy RW1S, cleared when the response is written; Priv, Exe, NW,
                         PID, PV, DID RW. While Go=1 writes are ignored (spec: UNSPECIFIED).
tr_response     0x268    RO: fault, PBMT, S=0 (4 KiB reporting), PPN
==============  =======  ==================================================================

Every other offset reads 0 and ignores writes. Registers are 64-bit words indexed by
``addr[11:3]``: on a 64-bit bus a 4-byte access at offset 4 mod 8 uses the upper byte
lanes (``wstrb[7:4]``, ``rdata[63:32]``); on a 32-bit bus ``addr[2]`` selects the half,
and an 8-byte register is two 4-byte accesses. Byte strobes apply per byte. Every access
is answered OKAY.

A debug translation (``tr_req_ctl.Go``) is an Untranslated request (spec 6.25): Exe=1 is
a read-for-execute, otherwise NW=1 a read and NW=0 a write (read and write permissions
requested), with ``device_id`` = DID and a ``process_id`` when PV=1.
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import bits
from .axi import AXI4LiteSignature, Resp
from .config import Config
from .formats import Pbmt
from .port import Access
from .regs import DDTP, FCTL, Offset, IommuMode, TR_REQ_CTL, TR_RESPONSE

__all__ = ["MMIO_ADDR_WIDTH", "dbg_request_layout", "dbg_response_layout", "RegFile"]

#: The register page is 4 KiB (spec 6).
MMIO_ADDR_WIDTH = 12


def dbg_request_layout():
    return data.StructLayout({"device_id": 24, "iova": 64, "access": Access, "pv": 1})


def dbg_response_layout():
    return data.StructLayout({"fault": 1, "ppn": 44, "pbmt": Pbmt})


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

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`.
    """

    def __init__(self, config):
        try:
            if not isinstance(config, Config):
                raise TypeError(f"config must be a Config, not {config!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._config = config
        super().__init__({
            "mmio": In(AXI4LiteSignature(MMIO_ADDR_WIDTH, config.mmio_data_width)),
            "iommu_mode": Out(IommuMode),
            "ddtp_ppn": Out(44),
            "dbg_req": Out(stream.Signature(dbg_request_layout())),
            "dbg_resp": In(stream.Signature(dbg_response_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        bus = self.mmio
        dw = cfg.mmio_data_width

        # --- State.
        ddtp = Signal(DDTP)                        # resets to iommu_mode=Off
        tr_iova_vpn = Signal(52)
        tr_ctl = Signal(TR_REQ_CTL)
        tr_resp = Signal(TR_RESPONSE)
        issued = Signal()                          # the Go request went to the pipeline

        m.d.comb += [self.iommu_mode.eq(ddtp.iommu_mode), self.ddtp_ppn.eq(ddtp.ppn)]

        fctl_value = bits.pack(FCTL, wsi=1)

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

        def merged(old):
            return (old & ~wmask) | (wdata & wmask)

        windex = bus.awaddr[3:12]
        with m.If(take):
            with m.Switch(windex):
                with m.Case(Offset.DDTP // 8):
                    new = data.View(DDTP, merged(ddtp.as_value()))
                    m.d.sync += ddtp.ppn.eq(new.ppn)
                    ok = Const(0, 1)
                    for mode in cfg.iommu_modes:
                        ok = ok | (new.iommu_mode == mode)
                    with m.If(ok):
                        m.d.sync += ddtp.iommu_mode.eq(new.iommu_mode)
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
