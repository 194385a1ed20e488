"""``Host``: what a user's host software gets, whatever the iogate under it is.

A script (or any function taking a ``host``) programs the IOMMU through :attr:`Host.bus`,
a :class:`iogate.firmware.bus.Bus`, sends DMA through :meth:`Host.dma`, lets time pass with
:meth:`Host.wait`, and takes wired interrupts with :meth:`Host.wait_interrupt` and
:meth:`Host.on_interrupt`. It is plain synchronous Python: on a simulator every call hops
into the simulation and back, on the model and on a board it is a direct call.

Unless checking is turned off, every register read and every DMA answer is compared with
the architectural model (:class:`iogate.cosim.model.IommuModel`), which sees every
register write and memory store the script makes:

* a register read returns what the *target* answered first, as a driver would see it; if
  that differs from the model, the read is repeated (the model acts at once, hardware takes
  cycles) and is a mismatch only if the target never comes to agree
  (:class:`~iogate.cosim.check.mirror.Mirror`'s rule);
* a DMA answer must be one of the answers the spec allows now
  (:class:`~iogate.cosim.check.scoreboard.Scoreboard`: the current tables plus what a cache
  may still hold before an invalidation and ``IOFENCE.C`` complete);
* the wired interrupt lines must equal what ``ipsr``, ``icvec`` and ``fctl`` of the model
  drive (spec "Interrupt pending status register (ipsr)"), checked whenever the script waits
  for an interrupt and at the end.

A register access the spec does not allow (spec "Memory-mapped register interface": 4- and
8-byte, naturally aligned, inside the 4 KiB page) is refused with
:class:`RegisterAccessError` on the model target, which has no other answer; on a simulator
or a board it goes to the hardware as it is and comes back with what the hardware answers
(the AXI response, or the board bridge's status), unchecked and listed in the report.
"""

from collections import Counter

from iogate.hdl.config import Config
from iogate.hdl.port import Access

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.bus import Bus

from iogate.cosim.check.mirror import Mirror
from iogate.cosim.check.request import TranslationRequest, TranslationResponse
from iogate.cosim.check.scoreboard import Scoreboard
from iogate.cosim.model.access import refusal
from iogate.cosim.model.iommu import IommuModel

__all__ = ["Host", "HostBus", "RegisterAccessError", "InterruptTimeout", "legal_access"]

class RegisterAccessError(ValueError):
    """A register access the RISC-V IOMMU register interface does not allow, refused."""


class InterruptTimeout(TimeoutError):
    """:meth:`Host.wait_interrupt` saw no interrupt within its timeout."""


def legal_access(offset: int, size: int) -> str | None:
    """Why a register access of ``size`` bytes at ``offset`` is not allowed (None if it is).

    The model's rule (:func:`iogate.cosim.model.access.refusal`, spec "Memory-mapped register
    interface"): 4- and 8-byte, naturally aligned, inside the 4 KiB page, not into reserved
    space and not 8 bytes over two 4-byte registers.
    """
    return refusal(offset, size)


def _integer(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")


class FirstReadMirror(Mirror):
    """:class:`Mirror`, except that a read returns the target's *first* answer.

    A driver acts on the first value it reads (Linux requires ``cqon`` in the very read
    that shows ``busy`` 0), so settling to the model's value must not hide a transient
    the hardware really showed; the repeated reads only decide whether it is a mismatch.
    """

    def mmio_read(self, offset: int, size: int) -> int:
        value = self.target.mmio_read(offset, size)
        if self.model_bus is None:
            return value
        # As Mirror.mmio_read: the bits the model knows are compared (retried while the
        # hardware settles), the rest (HPM counts) adopted by the model from the first read.
        expected, care = self.expected(offset, size)
        settled = value
        for _ in range(self.settle_reads):
            if settled & care == expected & care:
                break
            settled = self.target.mmio_read(offset, size)
        else:
            self.record(offset, size, settled, expected, care)
        self.accept(offset, size, value)
        return value


class HostBus:
    """The :class:`~iogate.firmware.bus.Bus` a script gets as ``host.bus``.

    Register accesses are checked for legality (see the module docstring), go to the
    target (and the model), and give pending interrupts their chance to run after each
    one, as a CPU takes an interrupt between two instructions. Memory accesses go to the
    target's memory (and the model's copy where it has its own).
    """

    def __init__(self, host: "Host", checked: Bus) -> None:
        self._host = host
        self._checked = checked
        self.reads = 0
        self.writes = 0

    def mmio_read(self, offset: int, size: int) -> int:
        _integer("offset", offset)
        _integer("size", size)
        self.reads += 1
        why = legal_access(offset, size)
        if why is None:
            value = self._checked.mmio_read(offset, size)
        else:
            value = self._host._illegal("read", offset, size, None, why)
        self._host._access_boundary()
        return value

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        _integer("offset", offset)
        _integer("size", size)
        _integer("value", value)
        self.writes += 1
        why = legal_access(offset, size)
        if why is None and not 0 <= value < 1 << (8 * size):
            raise ValueError(f"value {value:#x} does not fit a {size}-byte register")
        if why is None:
            self._checked.mmio_write(offset, size, value)
        else:
            self._host._illegal("write", offset, size, value, why)
        self._host._access_boundary()

    def mem_read(self, address: int, length: int) -> bytes:
        return self._checked.mem_read(address, length)

    def mem_write(self, address: int, data: bytes) -> None:
        self._checked.mem_write(address, bytes(data))


def _access(access):
    if isinstance(access, Access):
        return access
    if isinstance(access, str) and access.upper() in Access.__members__:
        return Access[access.upper()]
    raise ValueError(f"access must be 'read', 'write', 'execute' or an iogate.hdl.port.Access, "
                     f"not {access!r}")


class Host:
    """The host side of one iogate: its registers, memory, DMA, interrupts and time.

    Scripts do not make one: ``iogate host`` (:func:`iogate.cosim.client.run.run`) makes it
    for the chosen target and hands it over.

    Parameters
    ----------
    target
        One of the targets of :mod:`iogate.cosim.client.targets` (or the simulator's,
        :mod:`iogate.cosim.client.on_rtl`).
    check : bool
        Compare every register read, DMA answer and interrupt line with the model.

    Attributes
    ----------
    config : iogate.hdl.Config
        What the iogate under the script was built with.
    bus : HostBus
        Registers and system memory (the :class:`iogate.firmware.bus.Bus` protocol).
    alloc : iogate.firmware.alloc.PageAllocator
        Zeroed, aligned pages of :attr:`ram_base`/:attr:`ram_size` for tables and queues.
    ram_base, ram_size : int
        The system memory set aside for the script's tables (see
        :func:`iogate.cosim.client.config.ram_of`; a board's on-chip RAM).
    model : iogate.cosim.model.IommuModel or None
        The model the checks compare with (None with ``check=False``).
    mismatches : list of str
        Every disagreement found so far.
    """

    def __init__(self, target, *, check: bool = True) -> None:
        self.target = target
        self.config: Config = target.config
        self.model = IommuModel(self.config, target.checker_memory()) if check else None
        self._mirror = FirstReadMirror(target, self.model, settle_reads=target.settle_reads,
                                       mirror_memory=target.mirror_memory,
                                       name="target" if target.name == "model" else target.name)
        self.scoreboard = Scoreboard(self.model) if check else None
        self.bus = HostBus(self, self._mirror)
        self.ram_base, self.ram_size = target.ram
        self.alloc = PageAllocator(self.bus, self.ram_base, self.ram_size)
        self._handlers: dict[int, object] = {}
        self._in_handler = False
        self._pending = 0
        self.edges: Counter = Counter()
        self.handled: Counter = Counter()
        self.translations = 0
        self.faults: Counter = Counter()
        self.hits = 0
        self.unchecked: list[str] = []
        self._interrupt_mismatches: list[str] = []

    # -- DMA -----------------------------------------------------------------------------

    def dma(self, device_id: int, iova: int, access: Access | str = Access.READ, *,
            pasid: int | None = None, priv: bool = False,
            count: int = 1) -> TranslationResponse:
        """Send ``count`` Untranslated requests from ``device_id`` for ``iova`` through a
        translation port of the iogate, and return the (last) answer.

        Parameters
        ----------
        device_id : int
            24-bit device_id.
        iova : int
            64-bit IOVA.
        access : str or iogate.hdl.port.Access
            ``"read"``, ``"write"`` or ``"execute"``.
        pasid : int or None
            The request's process_id (PASID), 20 bits. Only a Config with process contexts
            (``pd_levels > 0``) has ports that carry one; otherwise it must be None.
        priv : bool
            "Privilege Mode Requested": a supervisor request. Needs a ``pasid`` (a request
            without one is User, reference N.1.6).
        count : int
            1 to 65535 identical requests, back to back (an IOTLB-hit burst).

        Returns
        -------
        iogate.cosim.check.request.TranslationResponse
            ``fault`` and ``cause``, or ``pa``, ``r``/``w``/``x`` and ``pbmt``.

        Raises
        ------
        ValueError
            On a ``pasid`` the ports cannot carry, ``priv`` without a ``pasid``, an
            out-of-range argument or an unknown access.
        """
        _integer("device_id", device_id)
        _integer("iova", iova)
        _integer("count", count)
        if pasid is not None:
            _integer("pasid", pasid)
            if not self.config.pd_levels:
                raise ValueError("this iogate's translation ports carry Untranslated requests "
                                 "without a process_id: pasid must be None")
            if not 0 <= pasid < 1 << 20:
                raise ValueError(f"pasid must be a 20-bit integer, not {pasid:#x}")
        if priv and pasid is None:
            raise ValueError("priv (supervisor) needs a pasid: a request without one is User")
        if not 0 <= device_id < 1 << 24:
            raise ValueError(f"device_id must be a 24-bit integer, not {device_id:#x}")
        if not 0 <= iova < 1 << 64:
            raise ValueError(f"iova must be a 64-bit integer, not {iova:#x}")
        if not 1 <= count <= 0xFFFF:
            raise ValueError(f"count must be between 1 and 65535, not {count}")
        request = TranslationRequest(device_id, iova, _access(access), process_id=pasid,
                                     priv=bool(priv))
        # The model's caches and fault queue move as the hardware's: expect() first.
        allowed = ([self.scoreboard.expect(request) for _ in range(count)]
                   if self.scoreboard is not None else None)
        responses = self.target.translate(request, count)
        for i, response in enumerate(responses):
            self.translations += 1
            if response.fault:
                self.faults[response.cause] += 1
            self.hits += bool(response.hit)
            if allowed is not None:
                # A board reports only the last answer of a burst.
                self.scoreboard.check(request, response,
                                      allowed[i if len(responses) == count else -1])
        self._boundary(poll=True)
        return responses[-1]

    # -- time ------------------------------------------------------------------------------

    def wait(self, cycles: int = 1) -> None:
        """Let ``cycles`` clock cycles pass (a counter on the model; real time on a board)."""
        _integer("cycles", cycles)
        if cycles < 0:
            raise ValueError(f"cycles must not be negative, not {cycles}")
        self.target.wait(cycles)
        self._boundary(poll=True)

    @property
    def cycles(self) -> int:
        """Clock cycles since the iogate came out of reset."""
        return self.target.cycles

    # -- interrupts --------------------------------------------------------------------------

    @property
    def lines(self) -> int:
        """The wired interrupt lines now, one bit per line (``wsi``)."""
        return self.target.lines()

    def on_interrupt(self, line: int, handler) -> None:
        """Run ``handler(line)`` each time wired interrupt ``line`` rises.

        The handler runs in the script's thread between two of its host calls (a
        register access, a DMA, a wait), as a CPU takes an interrupt between
        instructions; it may use the host like the script does, and is not entered again
        while it runs. ``handler=None`` removes the handler.
        """
        _integer("line", line)
        if not 0 <= line < 16:
            raise ValueError(f"line must be between 0 and 15, not {line}")
        if handler is None:
            self._handlers.pop(line, None)
        elif not callable(handler):
            raise TypeError(f"handler must be callable, not {handler!r}")
        else:
            self._handlers[line] = handler

    def wait_interrupt(self, line: int | None = None, *, timeout_cycles: int = 100_000) -> int:
        """Wait until wired interrupt ``line`` (any line if None) is asserted or rises.

        Returns at once if it is asserted already; a rise that a handler dealt with
        while waiting counts too. Returns the line number.

        Raises
        ------
        InterruptTimeout
            If nothing happened within ``timeout_cycles``.
        """
        if line is not None:
            _integer("line", line)
        want = 0xFFFF if line is None else 1 << line
        seen = Counter(self.edges)
        waited = 0
        while True:
            self._check_lines("wait_interrupt")
            now = self.target.lines() & want
            rose = sum((1 << n) for n, c in self.edges.items() if c > seen[n]) & want
            hit = now or rose
            if hit:
                return (hit & -hit).bit_length() - 1
            if waited >= timeout_cycles:
                raise InterruptTimeout(
                    f"no interrupt on {'any line' if line is None else f'line {line}'} "
                    f"within {timeout_cycles} cycles")
            step = min(self.target.wait_step, timeout_cycles - waited)
            self.target.wait(step)
            waited += step
            self._boundary(poll=True)

    def _check_lines(self, what):
        if self.model is not None:
            problem = self.target.check_lines(self.model, what)
            if problem:
                self._interrupt_mismatches.append(problem)

    # -- boundaries: where interrupts are taken --------------------------------------------

    def _access_boundary(self):
        self._boundary(poll=self.target.poll_on_access)

    def _boundary(self, poll):
        if not poll:
            return
        rose = self.target.rising()
        for n in range(16):
            if rose >> n & 1:
                self.edges[n] += 1
                if n in self._handlers:
                    self._pending |= 1 << n
        if self._in_handler:
            # Taken when the running handler returns, as a level interrupt that is
            # asserted again while its handler runs fires again once unmasked.
            return
        while self._pending:
            n = (self._pending & -self._pending).bit_length() - 1
            self._pending &= ~(1 << n)
            handler = self._handlers.get(n)
            if handler is None:
                continue
            self._in_handler = True
            try:
                self._check_lines(f"line {n} rose")
                handler(n)
            finally:
                self._in_handler = False
            self.handled[n] += 1

    # -- accesses the spec does not allow ------------------------------------------------

    def _illegal(self, kind, offset, size, value, why):
        line = f"{kind} {size} bytes at {offset:#x}: {why}"
        if not self.target.answers_illegal:
            raise RegisterAccessError(f"register {line}")
        self.unchecked.append(line)
        if kind == "read":
            return self.target.raw_read(offset, size)
        self.target.raw_write(offset, size, value)
        return None

    # -- the verdict ------------------------------------------------------------------------

    @property
    def mismatches(self) -> list[str]:
        out = [str(m) for m in self.scoreboard.mismatches] if self.scoreboard else []
        return out + list(self._mirror.mismatches) + self._interrupt_mismatches

    def finish(self) -> None:
        """The last checks: the interrupt lines at the end of the run."""
        self._check_lines("at the end")

    def report(self) -> dict:
        """The figures and the verdict of the run so far."""
        mismatches = self.mismatches
        return {
            "target": self.target.name,
            "checked": self.model is not None,
            "translations": self.translations,
            "faults": {int(k): v for k, v in sorted(self.faults.items())},
            "iotlb_hits": self.hits,
            "register_reads": self.bus.reads,
            "register_writes": self.bus.writes,
            "cycles": self.cycles,
            "interrupts": {"rose": {str(k): v for k, v in sorted(self.edges.items())},
                           "handled": {str(k): v for k, v in sorted(self.handled.items())}},
            "unchecked_accesses": self.unchecked,
            "mismatches": len(mismatches),
            "mismatch_details": mismatches[:20],
        }
