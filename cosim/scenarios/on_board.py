"""The scenarios on a board: the foundation workload (``iogate board``, :func:`run_foundation`)
and the front-end scenarios of ``iogate run`` (``iogate board --scenario``).

The scenarios (:data:`iogate.cosim.scenarios.on_rtl.SCENARIOS`) drive the host software stack --
the VFIO type1 container, the virtio-iommu device, the seed problems -- over a
:class:`iogate.firmware.bus.Bus` and ask a *probe* what a device's DMA gets. Here the bus is a
:class:`~iogate.cosim.check.mirror.Mirror` (every register access reaches the board and the
architectural model; memory writes reach the board's RAM and the model's shadow of it) and
the probe is :class:`BoardProbe`: each question is one request through the board's DMA
requester, checked against the model's set of allowed answers (RISC-V IOMMU spec
"Guidelines for invalidations", the caching freedom) exactly as the simulator's scoreboard checks
the RTL.

A board has little memory: the driver's tables go into the board's on-chip RAM, so only
the scenarios whose IOMMU-read structures fit there run (:data:`BOARD_SCENARIOS`). The
nested ones also keep guest page tables in guest RAM (64 MiB at ``USER``), which a board
does not have.
"""

import random
import time

from iogate.hdl import bits
from iogate.hdl.formats import IOSATP, TA, TC, IosatpMode
from iogate.hdl.port import Access
from iogate.hdl.regs import IommuMode

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.ddt import DeviceContext, DeviceDirectory

from iogate.cosim.check.mirror import Mirror
from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.check.scoreboard import Scoreboard, same_answer
from iogate.cosim.host.core import HostIommu
from iogate.cosim.model import IommuModel
from iogate.cosim.model.memory import Memory
from iogate.cosim.scenarios import foundation
from iogate.cosim.scenarios.on_rtl import SCENARIOS
from iogate.cosim.targets.board import config_of

__all__ = ["BoardProbe", "BOARD_SCENARIOS", "board_model", "run_on_board", "run_foundation",
           "OUTSIDE_DEVICE"]

_MASK64 = (1 << 64) - 1

#: The scenarios whose tables fit a board's on-chip RAM (see the module docstring).
BOARD_SCENARIOS = ("virtio", "vfio", "coherency", "ownership", "bypass", "restricted-dma")


class BoardProbe:
    """The scenarios' probe API over a board's DMA requester, checked against a model.

    Parameters
    ----------
    link : iogate.cosim.targets.board.BoardLink
        Anything with the link's ``translate(device_id, iova, access)``.
    model : iogate.cosim.model.IommuModel
        The model the link's :class:`~iogate.cosim.check.mirror.Mirror` keeps in step.

    Attributes
    ----------
    scoreboard : iogate.cosim.check.scoreboard.Scoreboard
        Every answer and whether the model allowed it.
    """

    def __init__(self, link, model):
        self.link = link
        self.model = model
        self.scoreboard = Scoreboard(model)

    def _request(self, device_id, iova, access):
        request = TranslationRequest(device_id, iova & _MASK64, access)
        # expect() before the board answers: it also moves the model's caches and fault
        # queue as the hardware's move.
        allowed = self.scoreboard.expect(request)
        response = self.link.translate(device_id, iova, request.access)
        self.scoreboard.check(request, response, allowed)
        return response, allowed

    def translate(self, device_id, iova, access=Access.READ):
        """What the board answers now, as the model's result for that answer (or the
        board's own answer when the model does not allow it: a mismatch, recorded)."""
        response, allowed = self._request(device_id, iova, access)
        return next((a for a in allowed if same_answer(response, a)), response)

    def possible(self, device_id, iova, access=Access.READ):
        """Every answer the specification allows now; the request also goes to the
        board and its answer is checked against this set."""
        _, allowed = self._request(device_id, iova, access)
        return set(allowed)


def run_on_board(link, name, *, seed=1):
    """Run scenario ``name`` on the board behind ``link``; returns a report dict.

    The report's ``mismatches`` counts the board's answers and register reads the model
    does not allow; ``error`` is set when the scenario's own checks failed.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`BOARD_SCENARIOS`.
    """
    if name not in BOARD_SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(BOARD_SCENARIOS)}, "
                         f"not {name!r}")
    started = time.monotonic()
    shadow, model, bus = board_model(link)
    probe = BoardProbe(link, model)
    error, result = None, {}
    try:
        host = HostIommu.on_bus(bus, pool=(link.ram_base, link.ram_size))
        result = SCENARIOS[name][1](host, probe, seed)
    except Exception as e:  # reported: the caller turns it into the exit status
        error = f"{type(e).__name__}: {e}"
    report = probe.scoreboard.summary()
    mismatches = [str(m) for m in probe.scoreboard.mismatches] + bus.mismatches
    report.update(scenario=name, seed=seed, result=result, error=error,
                  mismatches=len(mismatches), mismatch_details=mismatches[:20],
                  seconds=round(time.monotonic() - started, 2))
    return report


def board_model(link):
    """The model of the board behind ``link``, and a :class:`Mirror` driving both.

    The model walks a shadow of the board's memory (every memory write goes to both);
    beyond the on-chip memory the board answers DECERR, and so does the shadow. Returns
    ``(shadow, model, bus)``.
    """
    shadow = Memory()
    _outside_is_decerr(shadow, link)
    model = IommuModel(config_of(link), shadow)
    return shadow, model, Mirror(link, model, name="board")


def _outside_is_decerr(shadow, link):
    shadow.inject_fault(0, link.ram_base)
    shadow.inject_fault(link.ram_base + link.ram_size, shadow.size)


#: A device whose first-stage root table is outside the on-chip memory: its walks end in
#: DECERR, the access faults (causes 1, 5, 7) of spec
#: "Fault/Event-Queue (FQ)" on real hardware.
OUTSIDE_DEVICE = 0x35


def run_foundation(link, *, seed=1, translations=200, burst=16):
    """The foundation workload (:mod:`iogate.cosim.scenarios.foundation`) on a board.

    1. Off (ddtp's reset value, and where ``config_of`` leaves it): every request faults.
    2. Bare: identity.
    3. 1LVL with the foundation's devices and tables, in the board's memory; the device
       whose table the simulator makes answer SLVERR is replaced by one whose table is
       outside the memory (DECERR), since a board cannot poison its own RAM. Every
       directed fault case, then a seeded stream of ``translations`` requests, then one
       ``burst`` of repeated requests per translated device (IOTLB hits back to back).

    Every answer is checked against what the model allows. Returns a report dict whose
    ``mismatches`` must be 0.
    """
    started = time.monotonic()
    shadow, model, bus = board_model(link)
    config = model.config
    board = Scoreboard(model)
    rng = random.Random(seed)

    def check(device_id, iova, access, count=1):
        request = TranslationRequest(device_id, iova & _MASK64, access)
        for _ in range(count):
            allowed = board.expect(request)
        board.check(request, link.translate(device_id, iova, access, count), allowed)

    # 1. Off.
    for access in Access:
        check(0x05, 0x1000_0000, access)
    # 2. Bare.
    foundation.set_mode(bus, IommuMode.BARE)
    for access in Access:
        check(rng.randrange(1 << 24), rng.randrange(1 << config.pas), access)
    # 3. 1LVL.
    foundation.set_mode(bus, IommuMode.OFF)
    layout = foundation.program(bus, shadow)
    # program() poisoned device 0x33's table in the shadow only; the board's copy reads
    # as zeros, and so must the model's.
    shadow.clear_faults()
    _outside_is_decerr(shadow, link)
    _add_outside_device(bus, layout, link)
    foundation.set_mode(bus, IommuMode.LVL1, layout.ddt_root)
    for did, iova, access, _ in layout.faulting:
        check(did, iova, access)
    for did, iova, access in foundation.random_requests(layout, rng, translations):
        check(did, iova, access)
    for did, base, _, allowed in layout.mapped:
        if allowed:
            check(did, base, min(allowed, key=lambda a: a.value), count=burst)

    report = board.summary()
    mismatches = [str(m) for m in board.mismatches] + bus.mismatches
    report.update(mismatches=len(mismatches), mismatch_details=mismatches[:20],
                  seed=seed, devices={f"{d:#x}": what for d, what in layout.devices.items()},
                  frames=link.frames, bytes=link.bytes_sent + link.bytes_received,
                  seconds=round(time.monotonic() - started, 2), clk_hz=link.clk_hz)
    return report


def _add_outside_device(bus, layout, link):
    """Device :data:`OUTSIDE_DEVICE`: Sv39 with its root table just past the memory."""
    outside = link.ram_base + link.ram_size
    dc = DeviceContext(tc=bits.pack(TC, v=1), ta=bits.pack(TA, pscid=4),
                       fsc=bits.pack(IOSATP, mode=IosatpMode.SV39, ppn=outside >> 12))
    # The directory's pages are all allocated already (1LVL: one page), so the allocator
    # is never asked for memory here.
    ddt = DeviceDirectory(bus, PageAllocator(bus, link.ram_base, link.ram_size),
                          IommuMode.LVL1, layout.ddt_root)
    ddt.write(OUTSIDE_DEVICE, dc)
    layout.devices[OUTSIDE_DEVICE] = "Sv39 table outside the on-chip memory (DECERR)"
    layout.faulting += [(OUTSIDE_DEVICE, 0x1000_0000, a, "page table outside memory")
                        for a in Access]
