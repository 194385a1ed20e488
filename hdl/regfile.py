"""The memory-mapped register file, behind an AXI4-Lite subordinate port.

RISC-V IOMMU spec "Memory-mapped register interface". This register file
decodes:

==============  =======  ==================================================================
register        offset   behaviour
==============  =======  ==================================================================
capabilities    0x000    RO, ``Config.capabilities``
fctl            0x008    BE=0 (END=0, little-endian), GXL=0; WSI (WARL) reads 1 with IGS=WSI,
                         0 with IGS=MSI, and with IGS=BOTH is writable, resetting to 0
                         (decision 8 of issue 16)
ddtp            0x010    ``iommu_mode`` WARL: a mode this IOMMU does not offer is not
                         retained (spec "Guidelines for initialization": "writing
                         legal values and reading it to see if the value was retained"),
                         the field keeps its old value; ``busy`` RO 0 (mode changes
                         complete at once); PPN WARL, bits at and above ``PAS`` read 0;
                         reserved bits read 0. Resets to Off.
cqb, fqb        0x018,   ``LOG2SZ-1`` WARL: a value above ``Config.queue_log2sz_max - 1``
                0x028    reads as that maximum; PPN WARL as in ``ddtp``. After a write, the
                         bits of ``cqt`` (``fqh``) at and above LOG2SZ read 0 (spec
                         "Command-queue base (cqb)"). The indices are
                         ``queue_log2sz_max`` bits wide; the bits above read 0.
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
pqb, pqh, pqt,  0x038-   only with ``Config.ats`` (else they read 0): the page-request queue
pqcsr           0x050    (reference N.6.5), built as ``fqb``/``fqh``/``fqt``/``fqcsr``
                         are: ``pqt`` RO (owned by :mod:`iogate.hdl.pq`), ``pqh`` bits
                         LOG2SZ-1:0, ``pqen`` 0->1 clears ``pqt``, ``pqmf`` and ``pqof``.
ipsr            0x054    ``cip``, ``fip`` RW1C (spec "Interrupt pending status register
                         (ipsr)"): ``cip`` is set while ``cie``
                         and any of ``fence_w_ip``, ``cmd_ill``, ``cmd_to``, ``cqmf``;
                         ``fip`` while ``fie`` and ``fqof`` or ``fqmf``, and when a record
                         is stored while ``fie``. A bit cleared while its condition holds
                         is set again. ``pip`` reads 0 without ``Config.ats``, and with it
                         is set as ``fip`` is, from ``pqcsr``; ``pmip`` reads 0 without
                         HPM, and with ``Config.has_hpm`` is a stored RW1C bit set only when
                         a counter wraps with its OF 0 (decision 5 of issue 17 (HPM): an
                         edge, not a level; clearing it while an OF is 1 does not set it).
HPM             0x058-   only with ``Config.has_hpm`` (else every offset reads 0): iocountovf,
                0x257    iocountinh, iohpmcycles, iohpmctr1..N, iohpmevt1..N
                         (:mod:`iogate.hdl.hpm`); 4-byte halves or 8-byte writes, except the
                         word of iocountovf and iocountinh (two registers).
icvec           0x2F8    ``civ``, ``fiv``, ``pmiv``, ``piv`` WARL: the low
                         ``Config.vector_bits`` bits of each writable, the rest read 0.
msi_cfg_tbl     0x300    only with IGS MSI or BOTH (else reads 0): entry x at 0x300 + 16x,
                         ``msi_addr_x`` ADDR [55:2] (bits at and above PAS read 0),
                         ``msi_data_x`` 32 bits, ``msi_vec_ctl_x`` M; reset 0, 0, M=1. Read
                         by the MSI generator (:mod:`iogate.hdl.msi_irq`).
tr_req_iova     0x258    ``vpn`` RW (only when ``capabilities.DBG``)
tr_req_ctl      0x260    Go/Busy RW1S, cleared when the response is written; Priv, Exe, NW,
                         PID, PV, DID RW. While Go=1 writes are ignored (spec: UNSPECIFIED).
tr_response     0x268    RO: fault, PBMT, S=0 (4 KiB reporting), PPN
==============  =======  ==================================================================

Every other offset reads 0 and ignores writes. An RW1C bit that nothing in this build sets
(``cmd_to`` without ``Config.ats``: no command times out then; ``pmip`` without the
performance monitor; ``pip`` without the page-request queue) is not stored: it reads 0.

How the fields behave is not written here but taken from :data:`iogate.hdl.regs.ACCESS`
(RO, RW, RW1C, RW1S, WARL, ZERO) and the layouts beside it: the read words are the
layouts filled from the state, a write merges its bytes into the register as read, RW and
WARL fields take the merged value (WARL through its legalising rule, given per register
group below), RW1S fields are set and RW1C fields cleared by the bits written as 1.

Registers are 64-bit words indexed by
``addr[11:3]``: on a 64-bit bus a 4-byte access at offset 4 mod 8 uses the upper byte
lanes (``wstrb[7:4]``, ``rdata[63:32]``); on a 32-bit bus ``addr[2]`` selects the half,
and an 8-byte register is two 4-byte accesses. A write acts only when its strobes cover
exactly one register: a 4-byte register or half of an 8-byte one, or on a 64-bit bus a whole
8-byte register; a smaller, misaligned or two-register write (``cqh``/``cqt``,
``cqcsr``/``fqcsr`` at once) changes nothing (spec "Memory-mapped register interface": such
accesses are UNSPECIFIED). Every access is answered OKAY.

Wired interrupts (spec "Interrupt pending status register (ipsr)", "Interrupt-cause-to-vector
register (icvec)"): with ``fctl.WSI=1``, ``ipsr.cip`` drives ``wsi`` bit ``icvec.civ`` and
``ipsr.fip`` bit ``icvec.fiv``, with HPM ``ipsr.pmip`` bit ``icvec.pmiv``, with ATS ``ipsr.pip``
bit ``icvec.piv`` (ORed when they name
the same vector); with
``fctl.WSI=0`` every line is 0 and the pending bits are messages (:mod:`iogate.hdl.msi_irq`).

A debug translation (``tr_req_ctl.Go``) is an Untranslated request (spec "Translation-request
control (tr_req_ctl)"): Exe=1 is
a read-for-execute, otherwise NW=1 a read and NW=0 a write (read and write permissions
requested), with ``device_id`` = DID and a ``process_id`` (PID, Priv) when PV=1.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl import bits
from iogate.hdl.axi import AXI4LiteSignature, Resp
from iogate.hdl.cmdq import CommandQueueRegisters
from iogate.hdl.config import require_config
from iogate.hdl.formats import Pbmt
from iogate.hdl.fq import FaultQueueRegisters
from iogate.hdl.hpm import HPM_FIRST_WORD, HPM_WORDS, Hpm, hpm_events_layout
from iogate.hdl.msi_irq import MsiIrqRegisters
from iogate.hdl.port import Access
from iogate.hdl.pq import PageRequestQueueRegisters
from iogate.hdl.regs import (
    ACCESS,
    CQCSR,
    DDTP,
    FCTL,
    FQCSR,
    ICVEC,
    IPSR,
    MSI_CFG_ENTRIES,
    MSI_CFG_ENTRY_SIZE,
    PQCSR,
    QB,
    REGISTER_SIZE,
    REGISTERS,
    TR_REQ_CTL,
    TR_REQ_IOVA,
    TR_RESPONSE,
    Igs,
    IommuMode,
    Kind,
    Offset,
    access_of,
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


#: The 64-bit words that hold two 4-byte registers (spec "Register layout") and that this
#: register file writes: an 8-byte write over one of them spans two registers.
_PAIRED = (Offset.CQH, Offset.FQH, Offset.PQH, Offset.CQCSR, Offset.IPSR)


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
    cq : ``Out(CommandQueueRegisters(config.ats))``
        The command-queue registers, to the command-queue engine.
    fq : ``Out(FaultQueueRegisters())``
        The fault-queue registers, to the fault-queue writer.
    pq : ``Out(iogate.hdl.pq.PageRequestQueueRegisters())``
        Only with ``config.ats``: the page-request-queue registers, to the page-request queue.
    wsi : ``Out(16)``
        The wired interrupt lines.
    hpm_events : ``In(iogate.hdl.hpm.hpm_events_layout())``
        Only with ``config.has_hpm``: the translation pipeline's events, for the counters.

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
            "cq": Out(CommandQueueRegisters(config.ats)),
            "fq": Out(FaultQueueRegisters()),
            **({"pq": Out(PageRequestQueueRegisters())} if config.ats else {}),
            "wsi": Out(WSI_LINES),
            **({"msi": Out(MsiIrqRegisters(config.pas, pm=config.has_hpm, pq=config.ats))}
               if config.igs != Igs.WSI else {}),
            **({"hpm_events": In(hpm_events_layout())} if config.has_hpm else {}),
        })

    def elaborate(self, platform):
        m = Module()
        r = self._state()
        w = self._write_port(m, r)
        self._read_port(m, r)
        self._ddtp(m, r, w)
        self._queue_bases(m, r, w)
        self._command_queue(m, r, w)
        self._fault_queue(m, r, w)
        if self._config.ats:
            self._page_request_queue(m, r, w)
        self._interrupts(m, r, w)
        if self._config.igs != Igs.WSI:
            self._msi_cfg(m, r, w)
        if self._config.has_hpm:
            self._hpm(m, r, w)
        if self._config.dbg:
            self._debug(m, r, w)
        else:
            m.d.comb += self.dbg_resp.ready.eq(1)
        return m

    def _state(self):
        """The registers, and each as software reads it.

        Reset values are 0 (spec "Reset behavior": the queues off, ipsr 0, Go 0; the rest is
        UNSPECIFIED), so ddtp resets to Off. The queue indices are
        ``Config.queue_log2sz_max`` bits wide.
        """
        cfg = self._config
        iw = cfg.queue_log2sz_max
        r = SimpleNamespace(
            ddtp=Signal(DDTP), cqb=Signal(QB), fqb=Signal(QB),
            cqh=Signal(iw), cqt=Signal(iw), fqh=Signal(iw), fqt=Signal(iw),
            cqcsr=Signal(CQCSR), fqcsr=Signal(FQCSR), ipsr=Signal(IPSR), icvec=Signal(ICVEC),
            tr_iova=Signal(TR_REQ_IOVA), tr_ctl=Signal(TR_REQ_CTL), tr_resp=Signal(TR_RESPONSE),
            issued=Signal(),                       # the Go request went to the pipeline
            # PPN bits that name addresses below 2**PAS (WARL: the rest read 0).
            ppn_mask=(1 << (cfg.pas - 12)) - 1,
        )
        r.cq_mask, r.fq_mask = index_mask(r.cqb.log2szm1, iw), index_mask(r.fqb.log2szm1, iw)
        if cfg.ats:
            # The page-request queue (reference N.6.5): the fault queue's twin.
            r.pqb, r.pqh, r.pqt, r.pqcsr = Signal(QB), Signal(iw), Signal(iw), Signal(PQCSR)
            r.pq_mask = index_mask(r.pqb.log2szm1, iw)
        # The RW1C bits each register's hardware sets; the others read 0.
        cq, fq = self.cq, self.fq
        r.sets = {
            Offset.CQCSR: {"cqmf": cq.set_cqmf, "cmd_ill": cq.set_cmd_ill,
                           "fence_w_ip": cq.set_fence_w_ip},
            Offset.FQCSR: {"fqmf": fq.set_fqmf, "fqof": fq.set_fqof},
            Offset.IPSR: {"cip": Signal(name="cip_cond"), "fip": Signal(name="fip_cond")},
        }
        if cfg.ats:
            # An IOFENCE.C after a timed-out ATS.INVAL (reference N.6.4).
            r.sets[Offset.CQCSR]["cmd_to"] = cq.set_cmd_to
            r.sets[Offset.PQCSR] = {"pqmf": self.pq.set_pqmf, "pqof": self.pq.set_pqof}
            r.sets[Offset.IPSR]["pip"] = Signal(name="pip_cond")
        if cfg.has_hpm:
            # pmip: set by the counters' overflow strobe alone (decision 5 of issue 17 (HPM)).
            r.hpm = Hpm(cfg)
            r.sets[Offset.IPSR]["pmip"] = Signal(name="pmip_set")
        r.cq_errors = Cat(r.cqcsr[n] for n in access_of(Offset.CQCSR, Kind.RW1C)
                          if n in r.sets[Offset.CQCSR])
        r.read = {
            Offset.CAPABILITIES: Const(cfg.capabilities, 64),
            Offset.FCTL: self._fctl(r),
            Offset.DDTP: self._read_value(r, Offset.DDTP, r.ddtp),
            Offset.CQB: self._read_value(r, Offset.CQB, r.cqb),
            Offset.FQB: self._read_value(r, Offset.FQB, r.fqb),
            Offset.CQH: r.cqh, Offset.CQT: r.cqt, Offset.FQH: r.fqh, Offset.FQT: r.fqt,
            # busy: turning off, the last command or record is in flight.
            Offset.CQCSR: self._read_value(r, Offset.CQCSR, r.cqcsr,
                                           busy=r.cqcsr.cqon & ~r.cqcsr.cqen),
            Offset.FQCSR: self._read_value(r, Offset.FQCSR, r.fqcsr,
                                           busy=r.fqcsr.fqon & ~r.fqcsr.fqen),
            Offset.IPSR: self._read_value(r, Offset.IPSR, r.ipsr),
            Offset.ICVEC: self._read_value(r, Offset.ICVEC, r.icvec),
        }
        if cfg.ats:
            r.read.update({
                Offset.PQB: self._read_value(r, Offset.PQB, r.pqb),
                Offset.PQH: r.pqh, Offset.PQT: r.pqt,
                Offset.PQCSR: self._read_value(r, Offset.PQCSR, r.pqcsr,
                                               busy=r.pqcsr.pqon & ~r.pqcsr.pqen),
            })
        if cfg.dbg:
            r.read.update({offset: self._read_value(r, offset, reg) for offset, reg in (
                (Offset.TR_REQ_IOVA, r.tr_iova), (Offset.TR_REQ_CTL, r.tr_ctl),
                (Offset.TR_RESPONSE, r.tr_resp))})
        r.words = _words(r.read)
        if cfg.has_hpm:
            # Only the words of what is built: the rest of 0x58..0x257 reads 0 (decision 1).
            n = cfg.hpm_counters
            for i in (0, 1, *range(2, 2 + n), *range(33, 33 + n)):
                r.words[HPM_FIRST_WORD + i] = r.hpm.words[i]
        if cfg.igs != Igs.WSI:
            self._msi_cfg_state(r)
        return r

    def _fctl(self, r):
        """``fctl`` as read: BE=0, GXL=0; WSI 1 with IGS=WSI, 0 with IGS=MSI, and with IGS=BOTH
        the stored bit, reset 0 (decision 8 of issue 16: the spec leaves it UNSPECIFIED)."""
        igs = self._config.igs
        if igs != Igs.BOTH:
            return Const(bits.pack(FCTL, wsi=int(igs == Igs.WSI)), 32)
        r.fctl_wsi = Signal(name="fctl_wsi")
        return Cat(Const(0, 1), r.fctl_wsi, Const(0, 30))

    def _msi_cfg_state(self, r):
        """``msi_cfg_tbl`` (spec "MSI configuration table (msi_cfg_tbl)", decision 8 of issue
        16): per entry ``ADDR`` (the bits below ``PAS``), ``data`` and ``M``, resetting to 0,
        0 and 1 (masked). Entry ``x``'s words are indexed ``(0x300 + 16x) // 8`` (``msi_addr_x``)
        and the next (``msi_data_x`` low, ``msi_vec_ctl_x`` high)."""
        pas = self._config.pas
        r.msi_addr = [Signal(pas - 2, name=f"msi_addr_{x}") for x in range(MSI_CFG_ENTRIES)]
        r.msi_data = [Signal(32, name=f"msi_data_{x}") for x in range(MSI_CFG_ENTRIES)]
        r.msi_m = [Signal(init=1, name=f"msi_m_{x}") for x in range(MSI_CFG_ENTRIES)]
        for x in range(MSI_CFG_ENTRIES):
            index = (Offset.MSI_CFG_TBL + MSI_CFG_ENTRY_SIZE * x) // 8
            r.words[index] = Cat(Const(0, 2), r.msi_addr[x], Const(0, 64 - pas))
            r.words[index + 1] = Cat(r.msi_data[x], r.msi_m[x], Const(0, 31))

    @staticmethod
    def _read_value(r, offset, reg, **values):
        """The register at ``offset`` as software reads it: each field from ``reg`` (or from
        ``values``, for fields not stored as such); reserved, custom and ZERO fields, and RW1C
        fields nothing sets, read 0 (spec "Register layout": reserved fields read zero)."""
        table = ACCESS[offset]
        unset = {n for n in access_of(offset, Kind.RW1C) if n not in r.sets.get(offset, {})}
        parts = []
        for name, field in REGISTERS[offset]:
            if name not in table or table[name].kind is Kind.ZERO or name in unset:
                parts.append(Const(0, field.width))
            else:
                parts.append(values.get(name, reg[name]))
        return Cat(*parts)

    def _read_port(self, m, r):
        """Reads: accept an address, answer the next cycle."""
        bus, dw = self.mmio, self._config.mmio_data_width
        rword = Signal(64)
        with m.Switch(bus.araddr[3:12]):
            for index, word in r.words.items():
                with m.Case(index):
                    m.d.comb += rword.eq(word)
        rvalid = Signal()
        rdata = Signal(dw)
        m.d.comb += [bus.arready.eq(~rvalid), bus.rvalid.eq(rvalid), bus.rdata.eq(rdata),
                     bus.rresp.eq(Resp.OKAY)]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += rvalid.eq(1)
            if dw == 64:
                m.d.sync += rdata.eq(rword)
            else:
                m.d.sync += rdata.eq(Mux(bus.araddr[2], rword[32:], rword[:32]))
        with m.Elif(bus.rready):
            m.d.sync += rvalid.eq(0)

    def _write_port(self, m, r):
        """Writes: take address and data together, answer the next cycle.

        Gives the write as a 64-bit word, its byte-strobe bit mask and the bits written as 1
        (what RW1C clears and RW1S sets); ``at[offset]``: this cycle writes the register's
        word; ``new(offset)``: the register with the written bytes merged in, and
        ``ones(offset)``: the bits written as 1, both as views of its layout.
        """
        bus, dw = self.mmio, self._config.mmio_data_width
        bvalid = Signal()
        m.d.comb += [bus.bvalid.eq(bvalid), bus.bresp.eq(Resp.OKAY)]
        take = bus.awvalid & bus.wvalid & ~bvalid
        m.d.comb += [bus.awready.eq(take), bus.wready.eq(take)]
        with m.If(take):
            m.d.sync += bvalid.eq(1)
        with m.Elif(bus.bready):
            m.d.sync += bvalid.eq(0)
        w = SimpleNamespace(data=Signal(64), mask=Signal(64), written=Signal(64), at={})
        if dw == 64:
            strobes = bus.wstrb
            m.d.comb += w.data.eq(bus.wdata)
        else:
            # addr[2] picks the half of the 64-bit word a 4-byte access reaches.
            half = len(bus.wstrb)
            strobes = Mux(bus.awaddr[2], Cat(Const(0, half), bus.wstrb),
                          Cat(bus.wstrb, Const(0, half)))
            m.d.comb += w.data.eq(Cat(bus.wdata, bus.wdata))
        m.d.comb += [w.mask.eq(Cat(strobes[i].replicate(8) for i in range(8))),
                     w.written.eq(w.data & w.mask)]
        # Only a write of exactly one register acts (spec "Memory-mapped register interface":
        # other sizes, misaligned accesses and accesses spanning registers are UNSPECIFIED;
        # iogate ignores them, answered OKAY): a 4-byte register or half, or on a 64-bit bus a
        # whole 8-byte register, not two 4-byte ones.
        if dw == 64:
            paired = [o // 8 for o in _PAIRED]
            if self._config.igs != Igs.WSI:
                # msi_data_x and msi_vec_ctl_x share a word.
                paired += [(Offset.MSI_CFG_TBL + MSI_CFG_ENTRY_SIZE * x) // 8 + 1
                           for x in range(MSI_CFG_ENTRIES)]
            if self._config.has_hpm:
                paired.append(Offset.IOCOUNTOVF // 8)       # iocountovf and iocountinh
            pair = bus.awaddr[3:12].matches(*paired)
            whole = ((bus.wstrb == 0x0F) | (bus.wstrb == 0xF0)
                     | ((bus.wstrb == 0xFF) & ~pair))
        else:
            whole = bus.wstrb == 0xF
        for offset in r.read:
            w.at[offset] = Signal(name=f"write_{offset.name.lower()}")
            m.d.comb += w.at[offset].eq(take & whole & (bus.awaddr[3:12] == offset // 8))
        w.take_whole = take & whole
        w.new = lambda offset: _field_view(
            offset, (r.words[offset // 8] & ~w.mask) | (w.data & w.mask))
        w.ones = lambda offset: _field_view(offset, w.written)
        return w

    def _ddtp(self, m, r, w):
        """``ddtp`` (spec "Device-directory-table pointer (ddtp)"): a mode this Config does
        not build is not retained (spec "Guidelines for initialization": software writes a
        mode and reads back whether it was retained)."""
        new = w.new(Offset.DDTP)
        legal = Const(0, 1)
        for mode in self._config.iommu_modes:
            legal = legal | (new.iommu_mode == mode)
        m.d.comb += [self.iommu_mode.eq(r.ddtp.iommu_mode), self.ddtp_ppn.eq(r.ddtp.ppn)]
        with m.If(w.at[Offset.DDTP]):
            m.d.sync += _store(Offset.DDTP, r.ddtp, new, w.ones(Offset.DDTP), {
                "iommu_mode": Mux(legal, _raw(Offset.DDTP, new, "iommu_mode"),
                                  _raw(Offset.DDTP, r.ddtp, "iommu_mode")),
                "ppn": new.ppn & r.ppn_mask})

    def _queue_bases(self, m, r, w):
        """``cqb``/``fqb``/``pqb`` and the indices software writes, ``cqt``/``fqh``/``pqh``
        (spec "Command-queue base (cqb)", "Fault queue base (fqb)", "Command-queue tail (cqt)",
        "Fault queue head (fqh)", reference N.6.5 for ``pqb``/``pqh``): only bits LOG2SZ-1:0
        of an index are kept."""
        iw = self._config.queue_log2sz_max
        bases = [(Offset.CQB, r.cqb, r.cqt), (Offset.FQB, r.fqb, r.fqh)]
        heads = [(Offset.CQT, r.cqt, r.cq_mask), (Offset.FQH, r.fqh, r.fq_mask)]
        if self._config.ats:
            bases.append((Offset.PQB, r.pqb, r.pqh))
            heads.append((Offset.PQH, r.pqh, r.pq_mask))
        for offset, qb, index in bases:
            new = w.new(offset)
            log2szm1 = Mux(new.log2szm1 > iw - 1, iw - 1, new.log2szm1)
            with m.If(w.at[offset]):
                m.d.sync += _store(offset, qb, new, w.ones(offset),
                                   {"log2szm1": log2szm1, "ppn": new.ppn & r.ppn_mask})
                # Index bits at and above the new LOG2SZ read 0.
                m.d.sync += index.eq(index & index_mask(log2szm1, iw))
        for offset, index, mask in heads:
            with m.If(w.at[offset]):
                m.d.sync += index.eq(w.new(offset) & mask)

    def _command_queue(self, m, r, w):
        """``cqcsr`` and ``cqh`` (spec "Command-queue CSR (cqcsr)"). Engine strobes first;
        an MMIO cqen 0->1 wins over them (a cqcsr write while busy is UNSPECIFIED)."""
        cq, csr, write = self.cq, r.cqcsr, w.at[Offset.CQCSR]
        new = w.new(Offset.CQCSR)
        m.d.comb += [
            cq.ppn.eq(r.cqb.ppn), cq.head.eq(r.cqh), cq.tail.eq(r.cqt),
            # fence_w_ip does not stop the queue; the other errors do.
            cq.run.eq(csr.cqen & csr.cqon & ~Cat(csr[n] for n in r.sets[Offset.CQCSR]
                                                 if n != "fence_w_ip").any()),
        ]
        with m.If(cq.advance):
            m.d.sync += r.cqh.eq((r.cqh + 1) & r.cq_mask)
        m.d.sync += _w1c(Offset.CQCSR, csr, w.ones(Offset.CQCSR), write, r.sets)
        with m.If(write):
            m.d.sync += _store(Offset.CQCSR, csr, new, w.ones(Offset.CQCSR))
            with m.If(new.cqen & ~csr.cqen):
                m.d.sync += [r.cqh.eq(0), csr.cqon.eq(1), r.cq_errors.eq(0)]
        with m.If(~csr.cqen & ~cq.busy & ~(write & new.cqen)):
            m.d.sync += csr.cqon.eq(0)

    def _fault_queue(self, m, r, w):
        """``fqcsr`` and ``fqt`` (spec "Fault queue CSR (fqcsr)"), the same way: ``fqen``
        0->1 clears ``fqt`` and the error bits."""
        errors = self._record_queue(m, r, w, self.fq, "fq", Offset.FQCSR)
        m.d.comb += self.fq.error.eq(errors.any())

    def _page_request_queue(self, m, r, w):
        """``pqcsr`` and ``pqt`` (reference N.6.5, spec "Page-request-queue CSR (pqcsr)"), as
        the fault queue's: ``pqen`` 0->1 clears ``pqt``, ``pqmf`` and ``pqof``. The queue
        answers ``pqof`` and ``pqmf`` differently (N.6.7), so they go to it apart."""
        self._record_queue(m, r, w, self.pq, "pq", Offset.PQCSR)
        m.d.comb += [self.pq.pqof.eq(r.pqcsr.pqof), self.pq.pqmf.eq(r.pqcsr.pqmf),
                     self.pq.pie.eq(r.pqcsr.pie)]

    def _record_queue(self, m, r, w, port, q, csr_offset):
        """A queue the IOMMU writes records into (``q`` "fq" or "pq"): its CSR and tail
        index. ``{q}en`` 0->1 clears the tail and the error bits and turns ``{q}on`` on at
        once; ``{q}en`` 1->0 turns it off once the record being stored is done (``busy``).
        Returns the error bits."""
        csr, write = getattr(r, f"{q}csr"), w.at[csr_offset]
        base, head, tail = getattr(r, f"{q}b"), getattr(r, f"{q}h"), getattr(r, f"{q}t")
        mask = getattr(r, f"{q}_mask")
        en, on = f"{q}en", f"{q}on"
        new = w.new(csr_offset)
        errors = Cat(csr[n] for n in access_of(csr_offset, Kind.RW1C))
        m.d.comb += [
            port.ppn.eq(base.ppn), port.tail.eq(tail),
            port.full.eq(((tail + 1) & mask) == (head & mask)),
            port.on.eq(csr[en] & csr[on]),
        ]
        with m.If(port.advance):
            m.d.sync += tail.eq((tail + 1) & mask)
        m.d.sync += _w1c(csr_offset, csr, w.ones(csr_offset), write, r.sets)
        with m.If(write):
            m.d.sync += _store(csr_offset, csr, new, w.ones(csr_offset))
            with m.If(new[en] & ~csr[en]):
                m.d.sync += [tail.eq(0), csr[on].eq(1), errors.eq(0)]
        with m.If(~csr[en] & ~port.busy & ~(write & new[en])):
            m.d.sync += csr[on].eq(0)
        return errors

    def _interrupts(self, m, r, w):
        """``ipsr`` and ``icvec`` (spec "Interrupt pending status register (ipsr)",
        "Interrupt-cause-to-vector register (icvec)"): ``cip`` is pending while ``cie`` and
        a command-queue error; ``fip`` while ``fie`` and a fault-queue error, and when a
        record is stored while ``fie``. A bit cleared while its condition holds is set again.
        With ``fctl.WSI=1`` each pending bit drives the wired line its icvec field names."""
        cqcsr, fqcsr, ipsr = r.cqcsr, r.fqcsr, r.ipsr
        cond = r.sets[Offset.IPSR]
        m.d.comb += [
            cond["cip"].eq(cqcsr.cie & r.cq_errors.any()),
            cond["fip"].eq(fqcsr.fie & (fqcsr.fqof | fqcsr.fqmf | self.fq.advance)),
        ]
        if self._config.ats:
            # pip as fip (spec "Interrupt pending status register (ipsr)", reference N.6.5).
            pqcsr = r.pqcsr
            m.d.comb += cond["pip"].eq(pqcsr.pie & (pqcsr.pqof | pqcsr.pqmf | self.pq.advance))
        m.d.sync += _w1c(Offset.IPSR, ipsr, w.ones(Offset.IPSR), w.at[Offset.IPSR], r.sets)
        vb = self._config.vector_bits
        new = w.new(Offset.ICVEC)
        # WARL: only the low Config.vector_bits bits of each field (2**vector_bits vectors).
        legal = None if vb == 4 else {name: new[name] & ((1 << vb) - 1)
                                      for name in access_of(Offset.ICVEC, Kind.WARL)}
        with m.If(w.at[Offset.ICVEC]):
            m.d.sync += _store(Offset.ICVEC, r.icvec, new, None, legal)
        igs = self._config.igs
        if igs == Igs.BOTH:
            with m.If(w.at[Offset.FCTL]):
                m.d.sync += r.fctl_wsi.eq(w.new(Offset.FCTL).wsi)
        if igs != Igs.MSI:
            for line in range(WSI_LINES):
                level = (ipsr.cip & (r.icvec.civ == line)) | (ipsr.fip & (r.icvec.fiv == line))
                if self._config.has_hpm:
                    level = level | (ipsr.pmip & (r.icvec.pmiv == line))
                if self._config.ats:
                    level = level | (ipsr.pip & (r.icvec.piv == line))
                # With fctl.WSI=0 the pending bits are messages, not levels.
                m.d.comb += self.wsi[line].eq(r.fctl_wsi & level if igs == Igs.BOTH else level)

    def _msi_cfg(self, m, r, w):
        """Writes of ``msi_cfg_tbl`` and what the MSI generator reads
        (:class:`iogate.hdl.msi_irq.MsiIrq`). A write merges its bytes into the word as read,
        so a 4-byte write of one half of ``msi_addr_x`` keeps the other; bits of ``ADDR`` at
        and above ``PAS`` read 0 (WARL); an 8-byte write over ``msi_data_x`` and
        ``msi_vec_ctl_x`` spans two registers and is ignored, like every such write."""
        bus, pas, out = self.mmio, self._config.pas, self.msi
        merged = Signal(64)
        for x in range(MSI_CFG_ENTRIES):
            index = (Offset.MSI_CFG_TBL + MSI_CFG_ENTRY_SIZE * x) // 8
            for k in (0, 1):
                with m.If(w.take_whole & (bus.awaddr[3:12] == index + k)):
                    m.d.comb += merged.eq((r.words[index + k] & ~w.mask) | (w.data & w.mask))
                    if k == 0:
                        m.d.sync += r.msi_addr[x].eq(merged[2:pas])
                    else:
                        m.d.sync += [r.msi_data[x].eq(merged[:32]), r.msi_m[x].eq(merged[32])]
        wsi = r.fctl_wsi if self._config.igs == Igs.BOTH else 0
        m.d.comb += [out.msi.eq(~wsi), out.cip.eq(r.ipsr.cip), out.fip.eq(r.ipsr.fip),
                     out.civ.eq(r.icvec.civ), out.fiv.eq(r.icvec.fiv),
                     out.masked.eq(Cat(r.msi_m))]
        if self._config.has_hpm:
            m.d.comb += [out.pmip.eq(r.ipsr.pmip), out.pmiv.eq(r.icvec.pmiv)]
        if self._config.ats:
            m.d.comb += [out.pip.eq(r.ipsr.pip), out.piv.eq(r.icvec.piv)]
        with m.Switch(out.index):
            for x in range(MSI_CFG_ENTRIES):
                with m.Case(x):
                    m.d.comb += [out.addr.eq(Cat(Const(0, 2), r.msi_addr[x])),
                                 out.data.eq(r.msi_data[x])]

    def _hpm(self, m, r, w):
        """The performance monitor (:class:`iogate.hdl.hpm.Hpm`): its events, its register
        writes (a 4-byte half or a whole 8-byte register, as every register: decision 7 of
        issue 17 (HPM)) and its overflow strobe, which sets ``ipsr.pmip``."""
        bus, hpm = self.mmio, r.hpm
        m.submodules.hpm = hpm
        index = bus.awaddr[3:12]
        ours = (index >= HPM_FIRST_WORD) & (index < HPM_FIRST_WORD + HPM_WORDS)
        m.d.comb += [
            hpm.events.eq(self.hpm_events),
            hpm.write_lo.eq(w.take_whole & ours & w.mask[0]),
            hpm.write_hi.eq(w.take_whole & ours & w.mask[32]),
            hpm.write_index.eq(index - HPM_FIRST_WORD),
            hpm.write_data.eq(w.data),
            r.sets[Offset.IPSR]["pmip"].eq(hpm.pmip),
        ]

    def _debug(self, m, r, w):
        """The debug translation interface (spec "Translation-request IOVA (tr_req_iova)",
        "Translation-request control (tr_req_ctl)", "Translation-response (tr_response)").
        While Go=1 writes are ignored (the spec leaves them UNSPECIFIED)."""
        ctl = r.tr_ctl
        with m.If(~ctl.go):
            with m.If(w.at[Offset.TR_REQ_IOVA]):
                m.d.sync += _store(Offset.TR_REQ_IOVA, r.tr_iova, w.new(Offset.TR_REQ_IOVA),
                                   None)
            with m.If(w.at[Offset.TR_REQ_CTL]):
                m.d.sync += _store(Offset.TR_REQ_CTL, ctl, w.new(Offset.TR_REQ_CTL),
                                   w.ones(Offset.TR_REQ_CTL))
                m.d.sync += r.issued.eq(0)
        p = self.dbg_req.payload
        m.d.comb += [
            self.dbg_req.valid.eq(ctl.go & ~r.issued),
            p.device_id.eq(ctl.did), p.iova.eq(r.tr_iova),
            p.access.eq(Mux(ctl.exe, Access.EXECUTE, Mux(ctl.nw, Access.READ, Access.WRITE))),
            p.pv.eq(ctl.pv), p.pid.eq(ctl.pid), p.priv.eq(ctl.priv),
            self.dbg_resp.ready.eq(1),
        ]
        with m.If(self.dbg_req.valid & self.dbg_req.ready):
            m.d.sync += r.issued.eq(1)
        with m.If(self.dbg_resp.valid):
            resp = self.dbg_resp.payload
            m.d.sync += [
                ctl.go.eq(0), r.issued.eq(0), r.tr_resp.eq(0),
                r.tr_resp.fault.eq(resp.fault),
                r.tr_resp.pbmt.eq(Mux(resp.fault, 0, resp.pbmt)),
                r.tr_resp.ppn.eq(Mux(resp.fault, 0, resp.ppn)),
            ]


def _words(read):
    """The 64-bit words of the register page, by index (offset // 8), from the registers
    as read: a 4-byte register at offset 4 mod 8 is the upper half of its word, and a
    register narrower than its size (a queue index) reads 0 above."""
    pieces = {}
    for offset, value in read.items():
        pieces.setdefault(offset // 8, []).append((offset % 8, offset, Value.cast(value)))
    words = {}
    for index, parts in sorted(pieces.items()):
        cat = []
        for _, offset, value in sorted(parts, key=lambda p: p[0]):
            if offset % 8 and len(cat) == 0:
                cat.append(Const(0, 8 * (offset % 8)))       # the lower half has no register
            cat.append(Cat(value, Const(0, 8 * REGISTER_SIZE.get(offset, 4) - len(value))))
        words[index] = Cat(*cat)
    return words


def _field_view(offset, word):
    """The register at ``offset`` within the 64-bit ``word`` of its index, viewed through
    its layout (a plain value for the queue indices, which have none)."""
    shift = offset % 8 * 8
    part = word[shift:shift + 8 * REGISTER_SIZE[offset]]
    return data.View(REGISTERS[offset], part) if offset in REGISTERS else part


def _store(offset, reg, new, ones, legal=None):
    """The assignments a write makes to the RW, WARL and RW1S fields of ``reg``: RW fields
    take ``new``, WARL fields ``legal[name]`` (``new`` where every value is legal), RW1S
    fields are set by the bits written as 1 (``ones``). RO and RW1C fields have other
    writers and are left to them."""
    legal = legal or {}
    out = []
    for name in access_of(offset, Kind.RW, Kind.WARL):
        out.append(_raw(offset, reg, name).eq(legal.get(name, _raw(offset, new, name))))
    for name in access_of(offset, Kind.RW1S):
        out.append(reg[name].eq(reg[name] | ones[name]))
    return out


def _raw(offset, view, name):
    """Field ``name`` of ``view`` as plain bits (an enum field too)."""
    field = REGISTERS[offset][name]
    return view.as_value()[field.offset:field.offset + field.width]


def _w1c(offset, reg, ones, write, sets):
    """The RW1C fields of ``reg`` that the hardware sets (``sets[offset][name]``: its
    event or condition): cleared by a 1 written (when ``write``), then set by the
    hardware whatever the write did."""
    out = []
    for name, setter in sets[offset].items():
        cleared = reg[name] & ~Mux(write, ones[name], 0)
        out.append(reg[name].eq(cleared | setter))
    return out
