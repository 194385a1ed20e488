"""Wired-interrupt monitor: the IOMMU's ``wsi`` lines against ``ipsr``/``icvec``/``fctl``.

RISC-V IOMMU spec "Interrupt pending status register (ipsr)" and "Interrupt-cause-to-vector
register (icvec)": with ``fctl.WSI=1`` each pending bit of ``ipsr`` (``cip``, ``fip``, ``pmip``,
``pip``) drives the wire numbered by its ``icvec`` field (``civ``, ``fiv``, ``pmiv``, ``piv``); a
bit is pending only when its source was enabled (``cqcsr.cie``, ``fqcsr.fie``) as it was set, which
is the model's business: the monitor takes ``ipsr`` from the model as it is. So a line is asserted
iff some pending ``ipsr`` bit is routed to it, and no line is asserted with ``fctl.WSI=0``.

The model changes ``ipsr`` at once, the RTL some cycles later; so the lines are compared at
quiet points (:meth:`InterruptMonitor.check` waits a bounded number of cycles for the RTL
to agree), while a coroutine records every change of the lines for the report.

IOMMU-generated MSIs (reference N.5, ``fctl.WSI=0``): after :meth:`InterruptMonitor.watch_msis`
the monitor also records every write the IOMMU's MSI generator makes on the AXI write channel
(AWID :data:`iogate.hdl.msi_irq.MSI_IRQ_AWID`: address, the 4 bytes in their lanes, whether
the strobes are the 4-byte lanes the address names) and :meth:`InterruptMonitor.check`
compares them with the model's messages (``model.interrupts.messages``, address and data,
in any order: the RTL sends one message at a time, lowest vector first, so two messages the
model sends at one instant may go out in the other order).

``ipsr.pmip`` (decision 5 of issue 17 (HPM)) rises when a counter wraps; for a count the model
cannot predict (cycles, walks, IOATC misses) it knows the rise only when a read of ``ipsr``
shows it (the mirror adopts it: one message in the model's list per adopted 0->1). So while
``pmip`` is unknown its wire may be either value, and the RTL may have sent more messages to
the ``msi_cfg_tbl[icvec.pmiv]`` entry than the model lists: at most
:meth:`iogate.cosim.model.hpm.Hpm.unseen_pmip_messages` more (one per W1C of an unknown
``pmip``, one for a rise not read yet). Every message the model lists must still be sent, and
nothing else may be extra.
"""

from collections import Counter

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time

from iogate.hdl import bits
from iogate.hdl.msi_irq import MSI_IRQ_AWID
from iogate.hdl.regs import FCTL, ICVEC

__all__ = ["InterruptMonitor", "RtlMsi", "expected_wsi"]

#: ipsr bit -> icvec field that routes it (spec "Interrupt pending status register (ipsr)",
#: "Interrupt-cause-to-vector register (icvec)").
_ROUTES = ((0, "civ"), (1, "fiv"), (2, "pmiv"), (3, "piv"))


def expected_wsi(ipsr, icvec, fctl):
    """The ``wsi`` lines the spec asks for, from the three registers' values."""
    if not bits.get(FCTL, fctl, "wsi"):
        return 0
    lines = 0
    for bit, field in _ROUTES:
        if ipsr >> bit & 1:
            lines |= 1 << bits.get(ICVEC, icvec, field)
    return lines


class RtlMsi:
    """One MSI write seen on the AXI write channel: the cycle of its address handshake, the
    byte address, the 32-bit data and whether ``wstrb`` named exactly those 4 bytes."""

    def __init__(self, cycle, address, data, strobes_ok):
        self.cycle, self.address, self.data, self.strobes_ok = cycle, address, data, strobes_ok

    def __repr__(self):
        return (f"RtlMsi(cycle={self.cycle}, address={self.address:#x}, data={self.data:#x}"
                f"{'' if self.strobes_ok else ', bad strobes'})")


def _hpm(model):
    """The model's performance monitor, or None (a model without one)."""
    return getattr(model.regs, "hpm", None)


def _wsi_allowed(model):
    """The ``wsi`` values the model allows now: one, or two while ``pmip`` is unknown."""
    regs = model.regs
    hpm = _hpm(model)
    out = {expected_wsi(regs.ipsr, regs.icvec, regs.fctl)}
    if hpm is not None:
        hpm.touch()
    if hpm is not None and not hpm.pmip_known:
        for pmip in (0, 1 << 2):
            out.add(expected_wsi((regs.ipsr & ~4) | pmip, regs.icvec, regs.fctl))
    return out


def _int(handle):
    value = handle.value
    return int(value) if value.is_resolvable else 0


class InterruptMonitor:
    """Watches the ``wsi`` output of an iogate top.

    Parameters
    ----------
    wsi : cocotb handle
        The ``wsi`` port.
    clock : cocotb handle
    period_ns : int

    Attributes
    ----------
    changes : list of (int, int)
        (cycle, lines) at every change of ``wsi``.
    raised : dict
        Rising edges seen, by line number.
    mismatches : list of str
        One line per check the RTL failed.
    checks : int
    """

    def __init__(self, wsi, clock, period_ns):
        self.wsi = wsi
        self.clock = clock
        self.period_ns = period_ns
        self.changes = []
        self.raised = {}
        self.mismatches = []
        self.checks = 0
        self._last = self.lines
        self.msis = None
        cocotb.start_soon(self._watch())

    def watch_msis(self, dut, prefix="mem", awid=MSI_IRQ_AWID):
        """Record the MSI generator's writes (AWID ``awid``) on ``dut``'s AXI manager port
        ``prefix`` (``mem__awvalid`` ...) in :attr:`msis`, from now on. The test bench
        starts it at reset for every Config with IOMMU-generated MSIs; a second call changes
        nothing, so that no write is recorded twice."""
        if self.msis is not None:
            return
        self.msis = []
        sig = {n: getattr(dut, f"{prefix}__{n}") for n in
               ("awvalid", "awready", "awid", "awaddr", "wdata", "wstrb")}
        cocotb.start_soon(self._watch_msis(sig, awid))

    async def _watch_msis(self, sig, awid):
        while True:
            if not _int(sig["awvalid"]):
                # No write offered: sleep until one is rather than wake every clock (this
                # runs through every test of a Config with MSIs).
                await RisingEdge(sig["awvalid"])
            await RisingEdge(self.clock)
            cycle = round(get_sim_time(unit="ns") / self.period_ns)
            if _int(sig["awvalid"]) and _int(sig["awready"]) and _int(sig["awid"]) == awid:
                # The write data is offered with the address and held until both handshakes
                # are done (one write at a time), so it is read here too.
                address = _int(sig["awaddr"])
                lane = address & 4
                data = (_int(sig["wdata"]) >> (8 * lane)) & 0xFFFF_FFFF
                ok = address & 3 == 0 and _int(sig["wstrb"]) == 0xF << lane
                self.msis.append(RtlMsi(cycle, address, data, ok))

    @property
    def lines(self):
        """The lines now (unknown bits, before reset, read as 0)."""
        value = self.wsi.value
        return int(value) if value.is_resolvable else 0

    async def _watch(self):
        while True:
            await self.wsi.value_change
            now, old = self.lines, self._last
            self.changes.append((round(get_sim_time(unit="ns") / self.period_ns), now))
            for line in range(len(self.wsi)):
                if now >> line & 1 and not old >> line & 1:
                    self.raised[line] = self.raised.get(line, 0) + 1
            self._last = now

    async def check(self, model, *, settle_cycles=64, what=""):
        """Wait up to ``settle_cycles`` for ``wsi`` to equal what ``model``'s registers say,
        and (after :meth:`watch_msis`) the MSIs written to equal the model's messages; record
        a mismatch if they never do. Returns True when they agree."""
        wires = await self._check_wires(model, settle_cycles, what)
        if self.msis is None:
            return wires
        return await self.check_msis(model, settle_cycles=settle_cycles, what=what) and wires

    async def check_msis(self, model, *, settle_cycles=64, what=""):
        """Wait up to ``settle_cycles`` for the MSIs written so far to be the model's
        messages (address and data, as multisets), each with the right strobes."""
        self.checks += 1
        for _ in range(settle_cycles):
            if self._msi_diff(model) is None:
                return True
            await ClockCycles(self.clock, 1)
        self.mismatches.append(f"msi {what}: {self._msi_diff(model)}")
        return False

    def _msi_diff(self, model):
        want = Counter((m.address, m.data) for m in model.interrupts.messages)
        got = Counter((m.address, m.data) for m in self.msis)
        bad = [m for m in self.msis if not m.strobes_ok]
        if want == got and not bad:
            return None
        hpm = _hpm(model)
        if hpm is not None and not bad and not want - got:
            # Extra pmip messages the model could not see (module docstring).
            regs = model.regs
            address, data, _ = regs.msi_entry(bits.get(ICVEC, regs.icvec, "pmiv"))
            extra = got - want
            if set(extra) <= {(address, data)} \
                    and extra[(address, data)] <= hpm.unseen_pmip_messages():
                return None
        return (f"rtl sent {sorted(got.elements())} model {sorted(want.elements())}"
                f"{f' bad strobes {bad}' if bad else ''}")

    async def _check_wires(self, model, settle_cycles, what):
        self.checks += 1
        expected = None
        for _ in range(settle_cycles):
            allowed = _wsi_allowed(model)
            expected = min(allowed)
            if self.lines in allowed:
                return True
            await ClockCycles(self.clock, 1)
        self.mismatches.append(
            f"wsi {what}: rtl {self.lines:#06x} expected {expected:#06x} "
            f"(model ipsr {model.regs.ipsr:#x} icvec {model.regs.icvec:#x})")
        return False
