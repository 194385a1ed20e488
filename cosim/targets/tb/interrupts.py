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
"""

import cocotb
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time

from iogate.hdl import bits
from iogate.hdl.regs import FCTL, ICVEC

__all__ = ["InterruptMonitor", "expected_wsi"]

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
        cocotb.start_soon(self._watch())

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
        """Wait up to ``settle_cycles`` for ``wsi`` to equal what ``model``'s registers say;
        record a mismatch if it never does. Returns True when they agree."""
        self.checks += 1
        expected = None
        for _ in range(settle_cycles):
            regs = model.regs
            expected = expected_wsi(regs.ipsr, regs.icvec, regs.fctl)
            if self.lines == expected:
                return True
            await ClockCycles(self.clock, 1)
        self.mismatches.append(
            f"wsi {what}: rtl {self.lines:#06x} expected {expected:#06x} "
            f"(model ipsr {model.regs.ipsr:#x} icvec {model.regs.icvec:#x})")
        return False
