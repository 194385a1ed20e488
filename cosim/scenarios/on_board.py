"""The front-end scenarios of ``iogate run`` on a board (``iogate board --scenario``).

The scenarios (:data:`cosim.scenarios.on_rtl.SCENARIOS`) drive the host software stack --
the VFIO type1 container, the virtio-iommu device, the seed problems -- over a
:class:`firmware.bus.Bus` and ask a *probe* what a device's DMA gets. Here the bus is a
:class:`~cosim.boardlink.MirroredLink` (every register access reaches the board and the
architectural model; memory writes reach the board's RAM and the model's shadow of it) and
the probe is :class:`BoardProbe`: each question is one request through the board's DMA
requester, checked against the model's set of allowed answers (RISC-V IOMMU spec 3.1.3,
the caching freedom) exactly as the simulator's scoreboard checks the RTL.

A board has little memory: the driver's tables go into the board's on-chip RAM, so only
the scenarios whose IOMMU-read structures fit there run (:data:`BOARD_SCENARIOS`). The
nested ones also keep guest page tables in guest RAM (64 MiB at ``USER``), which a board
does not have.
"""

import time

from hdl.port import Access

from ..boardlink import MirroredLink, TranslationRequest, config_of
from ..iommufd.host import HostIommu
from ..memory import Memory
from ..model import IommuModel
from ..tb.scoreboard import Scoreboard, same_answer
from .on_rtl import SCENARIOS

__all__ = ["BoardProbe", "BOARD_SCENARIOS", "run_on_board"]

_MASK64 = (1 << 64) - 1

#: The scenarios whose tables fit a board's on-chip RAM (see the module docstring).
BOARD_SCENARIOS = ("virtio", "vfio", "coherency", "ownership", "bypass", "restricted-dma")


class BoardProbe:
    """The scenarios' probe API over a board's DMA requester, checked against a model.

    Parameters
    ----------
    link : cosim.boardlink.BoardLink
        Anything with the link's ``translate(device_id, iova, access)``.
    model : cosim.model.IommuModel
        The model the link's :class:`~cosim.boardlink.MirroredLink` keeps in step.

    Attributes
    ----------
    scoreboard : cosim.tb.scoreboard.Scoreboard
        Every answer and whether the model allowed it.
    """

    def __init__(self, link, model):
        self.link = link
        self.model = model
        self.scoreboard = Scoreboard(model)

    def _request(self, device_id, iova, access):
        if isinstance(access, str):
            access = Access[access.upper()]
        request = TranslationRequest(device_id, iova & _MASK64, Access(access))
        # expect() before the board answers: it also moves the model's caches and fault
        # queue as the hardware's move.
        allowed = self.scoreboard.expect(request)
        response = self.link.translate(device_id, iova, request.access)
        self.scoreboard.check(request, response, allowed)
        return response, allowed

    def translate(self, device_id, iova, access="read"):
        """What the board answers now, as the model's result for that answer (or the
        board's own answer when the model does not allow it: a mismatch, recorded)."""
        response, allowed = self._request(device_id, iova, access)
        return next((a for a in allowed if same_answer(response, a)), response)

    def possible(self, device_id, iova, access="read"):
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
    shadow = Memory()
    # Beyond the on-chip memory the board answers DECERR: so does the model's shadow.
    shadow.inject_fault(0, link.ram_base)
    shadow.inject_fault(link.ram_base + link.ram_size, shadow.size)
    model = IommuModel(config_of(link), shadow)
    bus = MirroredLink(link, model)
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
