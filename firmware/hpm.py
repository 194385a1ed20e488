"""The performance-monitor driver (spec "Hardware performance monitor", reference N.7).

Sequences, as the spec's discovery text and Linux's riscv-iommu PMU driver
(drivers/iommu/riscv/iommu-pmu.c) do them:

* Discovery: write all-ones to ``iocountinh`` and read it back; bit X set means
  ``iohpmctrX`` exists (WARL: bits of missing counters read 0). Write all-ones to a counter
  and read it back for its width (the bits kept). Both leave every counter inhibited.
* :meth:`PerformanceMonitor.reset`: "the driver must clear eventIDs and set iocountinh before
  use" (the reset values are UNSPECIFIED): inhibit all, clear every selector (with its OF) and
  every counter.
* :meth:`PerformanceMonitor.program`: inhibit the counter, write its selector and zero it,
  then :meth:`start` clears its inhibit bit.
* The overflow handler: read ``ipsr`` and do nothing unless ``pmip`` is set (as Linux's
  handler checks the interrupt is the PMU's); clear ``pmip`` *before* reading ``iocountovf``
  (it is set on an OF edge only, so an overflow after the clear still raises it; Linux clears
  it after, which a review of that driver, RFC v2 "support HPM and interrupt handling",
  points out loses an overflow in between); then for each counter that overflowed write the
  counter, then clear its OF (N.7: "to re-arm: write the counter, then clear OF").
* On a 32-bit bus an 8-byte register is two 4-byte accesses; an ``iohpmevtX`` is updated
  low word with eventID=0, then high word, then low word (N.7, RV32), so that no half-written
  selector counts; a counter is read high, low, high until the high halves agree.
"""

from dataclasses import dataclass

from iogate.hdl import bits
from iogate.hdl.regs import IOHPMEVT, IPSR, HpmEvent, Offset, hpm_ctr_offset, hpm_evt_offset

__all__ = ["PerformanceMonitor", "Overflow"]

_W32 = 0xFFFF_FFFF
_OF = 1 << 63


@dataclass(frozen=True)
class Overflow:
    """What one run of the overflow handler found: the counters (0 = ``iohpmcycles``) whose
    OF was set, and the ``iocountovf`` value read."""
    counters: tuple[int, ...]
    iocountovf: int


class PerformanceMonitor:
    """``iohpmcycles`` and ``iohpmctr1..N`` of one IOMMU, through ``bus``.

    Parameters
    ----------
    bus : iogate.firmware.bus.Bus
    bus32 : bool
        Only 4-byte register accesses (an RV32 hart).

    Attributes
    ----------
    counters : int
        N, found by :meth:`discover`.
    width, cycles_width : int
        Implemented bits of ``iohpmctrX`` (of ``iohpmctr1``; the spec lets them differ, the
        driver takes the first) and of ``iohpmcycles.counter``.
    """

    def __init__(self, bus, *, bus32=False):
        self.bus = bus
        self.bus32 = bool(bus32)
        self.counters = 0
        self.width = 0
        self.cycles_width = 0

    # -- 8-byte registers on a 32- or 64-bit bus ----------------------------------------

    def _read64(self, offset):
        if not self.bus32:
            return self.bus.mmio_read(offset, 8)
        while True:                                 # high, low, high: a carry in between
            hi = self.bus.mmio_read(offset + 4, 4)
            lo = self.bus.mmio_read(offset, 4)
            if self.bus.mmio_read(offset + 4, 4) == hi:
                return hi << 32 | lo

    def _write64(self, offset, value):
        if not self.bus32:
            self.bus.mmio_write(offset, 8, value)
        else:
            self.bus.mmio_write(offset + 4, 4, value >> 32)
            self.bus.mmio_write(offset, 4, value & _W32)

    def _write_evt(self, x, value):
        offset = hpm_evt_offset(x)
        if not self.bus32:
            self.bus.mmio_write(offset, 8, value)
            return
        # N.7, RV32: low word with eventID=0, high word, low word.
        low = value & _W32
        self.bus.mmio_write(offset, 4, low & ~bits.mask(IOHPMEVT, "event_id"))
        self.bus.mmio_write(offset + 4, 4, value >> 32)
        self.bus.mmio_write(offset, 4, low)

    # -- discovery and reset --------------------------------------------------------------

    def discover(self):
        """Find N and the widths (spec "Hardware performance monitor", discovery); leaves
        every counter inhibited. Returns N."""
        self.bus.mmio_write(Offset.IOCOUNTINH, 4, _W32)
        inh = self.bus.mmio_read(Offset.IOCOUNTINH, 4)
        # Counters are numbered from 1 without gaps in iogate; count the bits anyway.
        self.counters = bin(inh >> 1).count("1")
        self.cycles_width = self._probe_width(Offset.IOHPMCYCLES, (1 << 63) - 1)
        self.width = self._probe_width(hpm_ctr_offset(1), (1 << 64) - 1) if self.counters else 0
        return self.counters

    def _probe_width(self, offset, ones):
        self._write64(offset, ones)
        kept = self._read64(offset) & ones
        self._write64(offset, 0)
        return kept.bit_length()

    def reset(self):
        """Discover, then inhibit every counter, clear every selector (eventID 0, OF 0) and
        every counter (N.7: the reset values are UNSPECIFIED)."""
        self.discover()
        self.bus.mmio_write(Offset.IOCOUNTINH, 4, _W32)
        for x in range(1, self.counters + 1):
            self._write_evt(x, 0)
            self._write64(hpm_ctr_offset(x), 0)
        self._write64(Offset.IOHPMCYCLES, 0)

    # -- programming ----------------------------------------------------------------------

    def _check(self, x):
        if not isinstance(x, int) or not 0 <= x <= self.counters:
            raise ValueError(f"counter {x!r} does not exist (0 to {self.counters})")

    def selector(self, event, *, device_id=None, dmask=False, process_id=None, gscid=None,
                 pscid=None):
        """The ``iohpmevtX`` value counting ``event`` with the filters given (spec table
        "iohpmevt filtering"): ``device_id``/``process_id`` (IDT=0) or ``gscid``/``pscid``
        (IDT=1); not both kinds."""
        event = HpmEvent(event)
        idt = gscid is not None or pscid is not None
        if idt and (device_id is not None or process_id is not None):
            raise ValueError("filter by device_id/process_id or by GSCID/PSCID, not both")
        if idt and not event.idt1:
            raise ValueError(f"{event.name} cannot be filtered by GSCID/PSCID")
        did = gscid if idt else device_id
        pid = pscid if idt else process_id
        return bits.pack(IOHPMEVT, event_id=int(event), dmask=int(bool(dmask)),
                         pid_pscid=pid or 0, did_gscid=did or 0,
                         pv_pscv=int(pid is not None), dv_gscv=int(did is not None),
                         idt=int(idt), of=0)

    def program(self, x, event, **filters):
        """Counter ``x`` (1..N) counts ``event`` from 0 with ``filters`` (:meth:`selector`);
        it stays inhibited until :meth:`start`."""
        self._check(x)
        if x == 0:
            raise ValueError("iohpmcycles has no event selector")
        value = self.selector(event, **filters)
        self.stop(x)
        self._write_evt(x, value)
        self._write64(hpm_ctr_offset(x), 0)

    def _inhibit(self, x, on):
        inh = self.bus.mmio_read(Offset.IOCOUNTINH, 4)
        inh = inh | (1 << x) if on else inh & ~(1 << x)
        self.bus.mmio_write(Offset.IOCOUNTINH, 4, inh)

    def start(self, x):
        """Let counter ``x`` (0 = ``iohpmcycles``) count: clear its ``iocountinh`` bit (bit X
        for ``iohpmctrX``)."""
        self._check(x)
        self._inhibit(x, False)

    def stop(self, x):
        """Inhibit counter ``x``; it keeps its value."""
        self._check(x)
        self._inhibit(x, True)

    def read(self, x):
        """The count of counter ``x`` (0 = ``iohpmcycles``, without OF)."""
        self._check(x)
        if x == 0:
            return self._read64(Offset.IOHPMCYCLES) & ~_OF
        return self._read64(hpm_ctr_offset(x))

    def write(self, x, value):
        """Set counter ``x`` to ``value`` (``iohpmcycles``: OF is kept as it is)."""
        self._check(x)
        if x == 0:
            of = self._read64(Offset.IOHPMCYCLES) & _OF
            self._write64(Offset.IOHPMCYCLES, of | value)
        else:
            self._write64(hpm_ctr_offset(x), value)

    # -- overflow -------------------------------------------------------------------------

    def handle_overflow(self, reload=0):
        """The ``pmip`` handler: if ``ipsr.pmip`` is set, clear it, read ``iocountovf``, and
        re-arm each counter that overflowed: write the counter (``reload``), then clear its
        OF. Returns what it found (nothing when ``pmip`` was 0)."""
        pmip = bits.mask(IPSR, "pmip")
        if not self.bus.mmio_read(Offset.IPSR, 4) & pmip:
            return Overflow((), 0)
        self.bus.mmio_write(Offset.IPSR, 4, pmip)
        ovf = self.bus.mmio_read(Offset.IOCOUNTOVF, 4)
        found = []
        for x in range(self.counters + 1):
            if not ovf >> x & 1:
                continue
            found.append(x)
            if x == 0:
                # One register: the counter and OF=0 in one write (the counter first is
                # the order of the high/low halves of a 32-bit bus anyway: low, then high).
                if self.bus32:
                    self.bus.mmio_write(Offset.IOHPMCYCLES, 4, reload & _W32)
                    self.bus.mmio_write(Offset.IOHPMCYCLES + 4, 4, reload >> 32 & 0x7FFF_FFFF)
                else:
                    self.bus.mmio_write(Offset.IOHPMCYCLES, 8, reload & ~_OF)
                continue
            self._write64(hpm_ctr_offset(x), reload)
            evt = self._read64(hpm_evt_offset(x))
            if self.bus32:
                self.bus.mmio_write(hpm_evt_offset(x) + 4, 4, (evt & ~_OF) >> 32)
            else:
                self.bus.mmio_write(hpm_evt_offset(x), 8, evt & ~_OF)
        return Overflow(tuple(found), ovf)
