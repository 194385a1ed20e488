"""A probe for the seed scenarios that sends every DMA request through the RTL's port.

The seed scenarios (:mod:`iogate.cosim.scenarios.seeds`) and the Linux-like stream
(:mod:`iogate.cosim.scenarios.streams`) ask a *probe* what a device's DMA gets: ``translate()``
(the answer now) and ``possible()`` (every answer the RISC-V IOMMU specification allows
now, section "Guidelines for invalidations": the current tables plus whatever a cache
may still hold before its invalidation and ``IOFENCE.C`` complete). :class:`RtlProbe` has
the same two methods, so the scenarios run unchanged on the RTL: each call is one real
translation request on ``session.tb.ports[port]``, and its response is checked against the
architectural model by the session's scoreboard, so a disagreement is counted as a
mismatch even when the scenario itself would accept the answer.

The scenarios are synchronous and run under ``cocotb.bridge``; each probe call hops back
into the simulation with ``cocotb.task.resume``.
"""

from cocotb.task import resume

from iogate.hdl.port import Access

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.check.scoreboard import same_answer

__all__ = ["RtlProbe"]


class RtlProbe:
    """The seeds' probe API over the RTL, every answer checked against the model.

    Parameters
    ----------
    session : iogate.cosim.scenarios.session.Session
        The open session whose port, scoreboard and model are used.
    port : int
        Index of the translation port the requests are sent on.

    Raises
    ------
    TypeError
        If ``port`` is not an integer.
    ValueError
        If ``port`` is not a port of the session's test bench.

    Attributes
    ----------
    requests : int
        Translation requests sent to the RTL so far.
    """

    def __init__(self, session, port=0):
        if not isinstance(port, int) or isinstance(port, bool):
            raise TypeError(f"port must be an integer, not {port!r}")
        if not 0 <= port < len(session.tb.ports):
            raise ValueError(f"port must be in [0, {len(session.tb.ports)}), not {port}")
        self.session = session
        self.port = port
        self.requests = 0
        self._send = resume(self._asend)

    async def _asend(self, device_id, iova, access):
        # expect() must come before the RTL can answer: it also moves the model's caches
        # and fault queue as the hardware's move.
        s = self.session
        request = TranslationRequest(device_id, iova, access)
        allowed = s.scoreboard.expect(request)
        event = await s.tb.ports[self.port].submit(request)
        await event.wait()
        s.scoreboard.check(request, event.response, allowed)
        self.requests += 1
        return event.response, allowed

    def _request(self, device_id, iova, access):
        return self._send(device_id, iova, access)

    def translate(self, device_id, iova, access=Access.READ):
        """What the RTL answers now, as the model's result for that answer.

        The model's result object is returned (not the port's response) so that the
        scenarios can compare it with :meth:`possible`'s set. If the RTL gave an answer
        the model does not allow (a mismatch, already recorded), the port's
        :class:`~iogate.cosim.check.request.TranslationResponse` is returned instead; it has the
        same ``fault``, ``cause``, ``pa`` and ``pbmt`` attributes.
        """
        response, allowed = self._request(device_id, iova, access)
        return next((a for a in allowed if same_answer(response, a)), response)

    def possible(self, device_id, iova, access=Access.READ):
        """Every answer the specification allows now (a set of model results).

        The request is also sent to the RTL and its answer checked against this set,
        so every question a scenario asks is a DMA the hardware really performs.
        """
        _, allowed = self._request(device_id, iova, access)
        return set(allowed)
