"""The process-directory walker: locating and checking a process context (GET_PC).

RISC-V IOMMU spec "Process-Directory-Table (PDT)", "Process to locate the Process-context" and
"Process-context configuration checks" (reference N.1.2-N.1.5).

The walk starts from ``pdtp`` (PD8, PD17 or PD20) and a ``process_id`` whose width the caller
has already checked against the mode (cause 260, spec "Process to translate an IOVA" step 7):

* ``a = pdtp.PPN << 12``, ``i = levels - 1``;
* while ``i > 0``: the non-leaf PDTE at ``a + PDI[i] * 8`` (``PDI[i]``, not the ``PDI[2]`` the
  spec's text prints: a typo, fixed in riscv-non-isa/riscv-iommu PR #760); 265 on a read
  fault or an address at or above ``2**PAS``, 266 when ``V=0``, 267 when a reserved bit is
  set; else ``a = PDTE.PPN << 12``;
* the 16-byte process context at ``a + PDI[0] * 16``, ``ta`` first: 265 on a read fault,
  266 when ``ta.V=0`` (``fsc`` is then not read: all other bits are software's), 267 when
  misconfigured (a reserved bit of ``ta`` or ``fsc``; ``fsc.MODE`` not Bare nor one of the
  first-stage modes built, for ``DC.tc.SXL=0``, the only SXL this IOMMU offers).

The PDT is little-endian: ``DC.tc.SBE`` selects its byte order and SBE=1 is refused by the
DC checks (259) here. With ``iohgatp`` not Bare (``g_on``) every address above is a guest
physical address: built with ``gstage``, the walker sends each entry's GPA on ``g_req`` before
reading it and reads the SPA ``g_resp`` answers (the caller runs the second-stage walk as an
implicit read). A guest-page fault there is the original access's guest-page fault (20, 21,
23) with ``iotval2`` = GPA[63:2] << 2 with bit 0 set (an implicit access); an access fault is
265 (spec GET_PC preamble, riscv-iommu issue #587). A PC's two doublewords share one
translation (they are in one page).

Each read costs its request cycle plus the response cycle in which it is judged, like the
device-directory walker: PD8 reads 2 doublewords, PD17 3, PD20 4.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl import bits
from iogate.hdl.config import check_pas
from iogate.hdl.formats import IOSATP, PC, PC_TA, PDTE, Cause, IosatpMode, PdtpMode
from iogate.hdl.mem_master import MemReadSignature
from iogate.hdl.port import Access
from iogate.hdl.ptw import guest_page_fault_cause

__all__ = ["pdtw_start_layout", "pdtw_result_layout", "pdtw_g_req_layout",
           "pdtw_g_resp_layout", "pc_misconfigured", "ProcessDirectoryWalker"]


def pdtw_start_layout():
    """A walk to do: ``pdtp`` (``ppn``, ``mode`` PD8/PD17/PD20), the ``process_id``, whether
    its addresses are guest physical (``g_on``) and the request's ``access`` (for the cause
    of a guest-page fault)."""
    return data.StructLayout({"ppn": 44, "mode": PdtpMode, "pid": 20, "g_on": 1,
                              "access": Access})


def pdtw_result_layout():
    """A fault (265, 266, 267, or a guest-page fault with its ``iotval2``) or the PC."""
    return data.StructLayout({"fault": 1, "cause": Cause, "pc": PC, "iotval2": 64})


def pdtw_g_req_layout():
    """The GPA of the next PDT entry, to translate."""
    return data.StructLayout({"gpa": 56})


def pdtw_g_resp_layout():
    """Its translation: ``fault`` (``guest``: a guest-page fault, else an access fault) or
    the SPA page ``ppn``."""
    return data.StructLayout({"fault": 1, "guest": 1, "ppn": 44})


def pc_misconfigured(pc, *, iosatp_modes):
    """The "PDT entry misconfigured" condition (cause 267) of a PC with ``ta.V=1`` (spec
    "Process-context configuration checks", reference N.1.4): 1. a reserved bit of ``ta``
    (11:3, 63:32) or ``fsc`` (59:44); 2, 3. ``fsc.MODE`` is not Bare nor one of
    ``iosatp_modes`` (reserved and custom encodings, and Sv39/Sv48/Sv57 not built), with
    ``DC.tc.SXL=0``; 4 does not arise (SXL=1 is refused by the DC checks).
    """
    mode_ok = pc.fsc.mode == IosatpMode.BARE
    for mode in iosatp_modes:
        mode_ok = mode_ok | (pc.fsc.mode == mode)
    return (((pc.ta.as_value() & bits.reserved_mask(PC_TA)) != 0)
            | ((pc.fsc.as_value() & bits.reserved_mask(IOSATP)) != 0)
            | ~mode_ok)


class ProcessDirectoryWalker(wiring.Component):
    """Locates and checks the process context of one ``process_id``.

    Parameters
    ----------
    pas : int
        Physical address size; an entry at or above ``2**pas`` is 265 without a bus read.
    modes : tuple of PdtpMode
        The PDT modes offered besides Bare (``Config.pdtp_modes``).
    iosatp_modes : tuple of IosatpMode
        First-stage modes offered besides Bare (for the PC checks).
    gstage : bool
        Guest-physical PDTs can be walked (``g_req``/``g_resp``); without, ``g_on`` is
        ignored.

    Members
    -------
    start : ``In(stream.Signature(pdtw_start_layout()))``
    result : ``Out(stream.Signature(pdtw_result_layout()))``
    mem : ``Out(MemReadSignature(pas))``
    g_req : ``Out(stream.Signature(pdtw_g_req_layout()))``
    g_resp : ``In(stream.Signature(pdtw_g_resp_layout()))``
        Only with ``gstage``.
    entry_read : ``Out(1)``
        Only with ``events``: a PDTE's read, or the PC's first doubleword's, is requested
        this cycle: one PDT_WALK event (decision 10 of issue 17 (HPM)).

    Raises
    ------
    ValueError
        If ``pas`` is out of range or ``modes`` is empty or holds Bare.
    """

    def __init__(self, *, pas, modes, iosatp_modes, gstage=False, events=False):
        try:
            check_pas(pas)
            modes = tuple(PdtpMode(mode) for mode in modes)
            if not modes or PdtpMode.BARE in modes:
                raise ValueError(f"modes must be PD8, PD17 or PD20 modes, not {modes!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._pas = pas
        self._modes = modes
        self._iosatp_modes = tuple(iosatp_modes)
        self._levels = max(mode.levels for mode in modes)
        self._gstage = bool(gstage)
        self._events = bool(events)
        members = {
            "start": In(stream.Signature(pdtw_start_layout())),
            "result": Out(stream.Signature(pdtw_result_layout())),
            "mem": Out(MemReadSignature(pas)),
        }
        if self._events:
            members["entry_read"] = Out(1)
        if self._gstage:
            members["g_req"] = Out(stream.Signature(pdtw_g_req_layout()))
            members["g_resp"] = In(stream.Signature(pdtw_g_resp_layout()))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        ppn = Signal(44)                     # the table being read
        pid = Signal(20)
        level = Signal(range(self._levels))  # i of GET_PC: 0 reads the PC
        word = Signal(1)                     # the PC's doubleword: 0 ta, 1 fsc
        res = Signal(pdtw_result_layout())
        m.d.comb += self.result.payload.eq(res)

        addr = Signal(56)
        with m.Switch(level):
            with m.Case(0):
                m.d.comb += addr.eq(Cat(Const(0, 3), word, pid[0:8], ppn))
            for i in range(1, self._levels):
                low, width = PdtpMode.index_low(i), PdtpMode.index_bits(i)
                with m.Case(i):
                    # A 4 KiB table of 512 PDTEs: PDI[2]'s 3 bits index its first 8.
                    m.d.comb += addr.eq(Cat(Const(0, 3), pid[low:low + width],
                                            Const(0, 9 - width), ppn))
        # The address read: ``addr`` itself, or its page translated by the second stage.
        g_on = Signal()                      # the PDT is in guest physical memory
        translated = Signal()                # ``spa_ppn`` holds the page of ``addr``
        spa_ppn = Signal(44)
        access = Signal(Access)
        read_addr = Signal(56)
        m.d.comb += read_addr.eq(addr)
        if self._gstage:
            with m.If(g_on):
                m.d.comb += read_addr.eq(Cat(addr[:12], spa_ppn))
            m.d.comb += self.g_req.payload.gpa.eq(addr)
        beyond_pas = Const(0, 1) if self._pas == 56 else (read_addr[self._pas:] != 0)
        m.d.comb += self.mem.req.payload.addr.eq(read_addr[:self._pas])

        pc = res.pc
        misconfigured = pc_misconfigured(pc, iosatp_modes=self._iosatp_modes)
        rdata = self.mem.resp.payload.data
        pdte = data.View(PDTE, rdata)

        def fault(cause):
            return [res.fault.eq(1), res.cause.eq(cause)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    p = self.start.payload
                    m.d.sync += [ppn.eq(p.ppn), pid.eq(p.pid), level.eq(0), word.eq(0),
                                 res.eq(0), translated.eq(0), access.eq(p.access)]
                    if self._gstage:
                        m.d.sync += g_on.eq(p.g_on)
                    for mode in self._modes:
                        with m.If(p.mode == mode):
                            m.d.sync += level.eq(mode.levels - 1)
                    m.next = "READ"
            with m.State("READ"):
                first = m.If
                if self._gstage:
                    # The entry's GPA is translated first (GET_PC step 2).
                    with m.If(g_on & ~translated):
                        m.next = "G_REQ"
                    first = m.Elif
                with first(beyond_pas):
                    # Reference N.1.4: libiommu reports 265 for a PDT address >= 2**PAS.
                    m.d.sync += fault(Cause.PDT_ENTRY_LOAD_ACCESS_FAULT)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(1)
                    with m.If(self.mem.req.ready):
                        m.next = "WAIT"
                        if self._events:
                            # A PDTE is one doubleword (word stays 0), a PC two.
                            m.d.comb += self.entry_read.eq(word == 0)
            with m.State("WAIT"):
                m.d.comb += self.mem.resp.ready.eq(1)
                with m.If(self.mem.resp.valid):
                    m.next = "READ"
                    with m.If(self.mem.resp.payload.err):
                        m.d.sync += fault(Cause.PDT_ENTRY_LOAD_ACCESS_FAULT)
                        m.next = "DONE"
                    with m.Elif(level != 0):
                        # A non-leaf PDTE (GET_PC steps 3-6): V first, then reserved bits.
                        with m.If(~pdte.v):
                            m.d.sync += fault(Cause.PDT_ENTRY_NOT_VALID)
                            m.next = "DONE"
                        with m.Elif((rdata & bits.reserved_mask(PDTE)) != 0):
                            m.d.sync += fault(Cause.PDT_ENTRY_MISCONFIGURED)
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [ppn.eq(pdte.ppn), level.eq(level - 1),
                                         translated.eq(0)]
                    with m.Elif(word == 0):
                        m.d.sync += [pc.ta.eq(rdata), word.eq(1)]
                        with m.If(~rdata[0]):
                            # ta.V=0: every other bit is software's (spec "Process-context
                            # fields").
                            m.d.sync += fault(Cause.PDT_ENTRY_NOT_VALID)
                            m.next = "DONE"
                    with m.Else():
                        m.d.sync += pc.fsc.eq(rdata)
                        m.next = "CHECK"
            if self._gstage:
                with m.State("G_REQ"):
                    m.d.comb += self.g_req.valid.eq(1)
                    with m.If(self.g_req.ready):
                        m.next = "G_WAIT"
                with m.State("G_WAIT"):
                    g = self.g_resp.payload
                    m.d.comb += self.g_resp.ready.eq(1)
                    with m.If(self.g_resp.valid):
                        with m.If(~g.fault):
                            m.d.sync += [spa_ppn.eq(g.ppn), translated.eq(1)]
                            m.next = "READ"
                        with m.Elif(g.guest):
                            m.d.sync += [fault(guest_page_fault_cause(access)),
                                         res.iotval2.eq(Cat(Const(1, 1), Const(0, 1),
                                                            addr[2:]))]
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += fault(Cause.PDT_ENTRY_LOAD_ACCESS_FAULT)
                            m.next = "DONE"
            with m.State("CHECK"):
                with m.If(misconfigured):
                    m.d.sync += fault(Cause.PDT_ENTRY_MISCONFIGURED)
                m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"
        return m
