"""IOMMU-generated MSIs: the ``ipsr`` edges as messages through ``msi_cfg_tbl``.

RISC-V IOMMU spec "Interrupt pending status register (ipsr)", "Interrupt-cause-to-vector
register (icvec)", "MSI configuration table (msi_cfg_tbl)" (reference N.5) and decision 8 of
issue 16. Built only with ``Config.igs`` MSI or BOTH; with ``fctl.WSI=0``:

* **Edge rule.** One message per 0->1 transition of ``ipsr.cip`` (``ipsr.fip``), to entry
  ``icvec.civ`` (``icvec.fiv``). While the bit stays 1 nothing more is sent; a bit that rose
  while ``fctl.WSI=1`` sends nothing when ``fctl.WSI`` later goes 0 (there was no edge with
  MSIs on). With the performance monitor (``pm``) ``ipsr.pmip`` is sent the same way, to
  entry ``icvec.pmiv`` (decision 5 of issue 17 (HPM)); with the page-request queue (``pq``,
  ``Config.ats``) ``ipsr.pip`` to entry ``icvec.piv``.
* **Masking.** Each vector has one *pending* bit: an edge sets it, sending the message clears
  it. A pending message is sent only while ``msi_vec_ctl.M=0``, so with M=1 it is held and
  sent once when M goes 1->0; toggling M again sends nothing more (issue #402). Two edges of
  one vector before its message goes out give one message (the bit is already set).
* **The message.** A 4-byte store of ``msi_data_x`` to ``ADDR << 2``, little-endian
  (``fctl.BE=0``), with the table's values when it goes out. One message at a time, lowest
  vector first.
* **Write fault.** A store answered with an error gives a fault report for CAUSE 273
  (``iotval = ADDR << 2``; the fault-queue writer stores it with TTYP 0 and DID/PV/PID/PRIV/
  iotval2 0, whatever any DTF says: there is no device context). The generator then goes on:
  a bus error never hangs it.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.mem_master import MemWriteSignature
from iogate.hdl.regs import MSI_CFG_ENTRIES

__all__ = ["MSI_IRQ_AWID", "MsiIrqRegisters", "MsiIrq", "msi_fault_layout"]

#: The memory-master write client (so the AXI ``AWID``) of the MSI generator in
#: :class:`iogate.hdl.iommu.Iommu`: after the command queue's store (0) and the fault records (1).
MSI_IRQ_AWID = 2


def msi_fault_layout(pas):
    """A failed MSI store: its byte address (``iotval`` of the CAUSE 273 record)."""
    return data.StructLayout({"addr": pas})


class MsiIrqRegisters(wiring.Signature):
    """The registers the MSI generator reads, from the register file's view.

    Members
    -------
    msi : ``Out(1)``
        ``fctl.WSI`` is 0: interrupts are messages.
    cip, fip : ``Out(1)``
        ``ipsr.cip``, ``ipsr.fip``.
    civ, fiv : ``Out(4)``
        ``icvec.civ``, ``icvec.fiv``.
    masked : ``Out(16)``
        ``msi_vec_ctl_x.M`` of every entry.
    index : ``In(4)``
        The entry ``addr`` and ``data`` give.
    addr : ``Out(pas)``
        ``msi_addr_x.ADDR << 2`` of entry ``index``.
    data : ``Out(32)``
        ``msi_data_x`` of entry ``index``.
    pmip, pmiv : ``Out(1)``, ``Out(4)``
        Only with ``pm`` (the performance monitor is built): ``ipsr.pmip``, ``icvec.pmiv``.
    pip, piv : ``Out(1)``, ``Out(4)``
        Only with ``pq`` (the page-request queue is built): ``ipsr.pip``, ``icvec.piv``.
    """

    def __init__(self, pas, *, pm=False, pq=False):
        self.pas = pas
        self.pm = bool(pm)
        self.pq = bool(pq)
        super().__init__({
            "msi": Out(1), "cip": Out(1), "fip": Out(1), "civ": Out(4), "fiv": Out(4),
            "masked": Out(MSI_CFG_ENTRIES), "index": In(4), "addr": Out(pas), "data": Out(32),
            **({"pmip": Out(1), "pmiv": Out(4)} if self.pm else {}),
            **({"pip": Out(1), "piv": Out(4)} if self.pq else {}),
        })

    def __eq__(self, other):
        return (type(other) is type(self)
                and (other.pas, other.pm, other.pq) == (self.pas, self.pm, self.pq))

    def __repr__(self):
        return f"MsiIrqRegisters({self.pas}, pm={self.pm}, pq={self.pq})"


class MsiIrq(wiring.Component):
    """The MSI generator.

    Parameters
    ----------
    pas : int
        Physical address size (``capabilities.PAS``).
    pm : bool
        The performance monitor is built: ``ipsr.pmip`` is sent too.
    pq : bool
        The page-request queue is built: ``ipsr.pip`` is sent too.

    Members
    -------
    regs : ``In(MsiIrqRegisters(pas, pm=pm, pq=pq))``
        From the register file.
    mem : ``Out(MemWriteSignature(pas))``
        The message stores.
    fault : ``Out(stream.Signature(msi_fault_layout(pas)))``
        Failed stores, to the fault-queue writer (CAUSE 273).
    """

    def __init__(self, *, pas, pm=False, pq=False):
        self._pas = pas
        super().__init__({
            "regs": In(MsiIrqRegisters(pas, pm=pm, pq=pq)),
            "mem": Out(MemWriteSignature(pas)),
            "fault": Out(stream.Signature(msi_fault_layout(pas))),
        })

    def elaborate(self, platform):
        m = Module()
        regs = self.regs
        n = MSI_CFG_ENTRIES

        # --- Edges: ipsr as it was last cycle. An edge counts only with fctl.WSI=0.
        causes = [("cip", "civ"), ("fip", "fiv")]
        if regs.signature.pm:
            causes.append(("pmip", "pmiv"))
        if regs.signature.pq:
            causes.append(("pip", "piv"))
        sets = Signal(n)
        edges = Const(0, n)
        for bit, vec in causes:
            was = Signal(name=f"was_{bit}")
            m.d.sync += was.eq(getattr(regs, bit))
            rise = regs.msi & getattr(regs, bit) & ~was
            edges = edges | Mux(rise, Const(1, n) << getattr(regs, vec), 0)
        m.d.comb += sets.eq(edges)

        pending = Signal(n)
        sendable = pending & ~regs.masked
        first = Signal(range(n))             # the lowest sendable vector
        for v in reversed(range(n)):
            with m.If(sendable[v]):
                m.d.comb += first.eq(v)
        clear = Signal(n)
        m.d.sync += pending.eq((pending & ~clear) | sets)

        vector = Signal(4)
        addr = Signal(self._pas)
        msg = Signal(32)
        m.d.comb += [
            regs.index.eq(vector),
            # A 4-byte store in the half of the doubleword that addr[2] names.
            self.mem.req.payload.addr.eq(addr),
            self.mem.req.payload.data.eq(Cat(msg, msg)),
            self.mem.req.payload.strb.eq(Mux(addr[2], 0xF0, 0x0F)),
            self.mem.resp.ready.eq(1),
            self.fault.payload.addr.eq(addr),
        ]

        with m.FSM(name="msi"):
            with m.State("IDLE"):
                with m.If(sendable.any()):
                    m.d.comb += clear.eq(Const(1, n) << first)
                    m.d.sync += vector.eq(first)
                    m.next = "LOAD"
            with m.State("LOAD"):
                # The table's values when the message goes out.
                m.d.sync += [addr.eq(regs.addr & ~3), msg.eq(regs.data)]
                m.next = "STORE"
            with m.State("STORE"):
                m.d.comb += self.mem.req.valid.eq(1)
                with m.If(self.mem.req.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.mem.resp.valid):
                    with m.If(self.mem.resp.payload.err):
                        m.next = "FAULT"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("FAULT"):
                m.d.comb += self.fault.valid.eq(1)
                with m.If(self.fault.ready):
                    m.next = "IDLE"
        return m
