"""Scoreboard: every translation response checked against the architectural model.

The model says which answers the spec allows at this moment (the current tables, plus any
older answer a cache may still hold before its invalidation and IOFENCE.C complete); a
response outside that set is a mismatch, reported with the request, what was allowed, what
came back, and the device context and PTEs the walk visits (:mod:`iogate.cosim.model.explain`).
The scoreboard has no cocotb import: it is plain Python over plain values.
"""

from collections import Counter
from dataclasses import dataclass, field

from iogate.cosim.model.explain import describe_result, explain

__all__ = ["Scoreboard", "Mismatch", "same_answer"]


def same_answer(got, expected):
    """Whether response ``got`` is the model result ``expected`` (spec-visible fields only).

    An access the IOMMU completed itself (``absorbed``: a page mapped by an MRIF-mode MSI PTE,
    reference N.4.4) carries no address or permissions, so only the bit is compared."""
    if expected.fault:
        return bool(got.fault) and got.cause == int(expected.cause)
    absorbed = bool(getattr(got, "absorbed", False))
    if getattr(expected, "absorbed", False):
        return not got.fault and absorbed
    # A completion without permissions has an UNSPECIFIED address (reference N.6.2).
    no_address = (getattr(expected, "size_log2", None) is not None
                  and not (expected.r or expected.w or expected.x or expected.u))
    same = (not got.fault and not absorbed and (no_address or got.pa == expected.pa)
            and (bool(got.r), bool(got.w), bool(got.x)) ==
                (bool(expected.r), bool(expected.w), bool(expected.x))
            and got.pbmt == int(expected.pbmt))
    if getattr(expected, "size_log2", None) is not None:
        # An ATS Translation Completion (reference N.6.2): its size and U, G, Priv too.
        same = same and all(getattr(got, n, 0) == getattr(expected, n)
                            for n in ("size_log2", "u", "g", "priv"))
    return same


def _process(request):
    """The request's PASID and privilege, and its ``word``/``data`` (reference N.4.4: what
    a page mapped by an MRIF-mode MSI PTE looks at), as the model's keywords (a request
    type without them, such as a board record, is a one-word request without a PASID)."""
    return {"process_id": getattr(request, "process_id", None),
            "priv": bool(getattr(request, "priv", False)),
            "word": bool(getattr(request, "word", True)),
            "data": getattr(request, "data", None),
            # ATS's request kinds (reference N.6.2-N.6.3), with ``Config.ats``.
            **({"kind": request.kind, "nw": bool(request.nw)}
               if getattr(request, "kind", "untranslated") != "untranslated" else {})}


@dataclass
class Mismatch:
    request: object
    got: object
    allowed: list
    #: The :func:`iogate.cosim.model.explain.explain` text, rendered when the mismatch was found.
    context: str = ""

    def __str__(self):
        if self.context:
            return self.context
        return "\n".join([f"MISMATCH {self.request}",
                          "  expected: " + " | ".join(describe_result(a) for a in self.allowed),
                          f"  got:      {self.got}"])


@dataclass
class Scoreboard:
    """Checks responses and keeps the figures of a run."""
    model: object
    mismatches: list = field(default_factory=list)
    translations: int = 0
    faults: Counter = field(default_factory=Counter)
    hits: int = 0
    misses: int = 0
    #: Answers the IOMMU completed itself (MRIF pages, reference N.4.4).
    absorbed: int = 0
    cycles: list = field(default_factory=list)
    #: Callables ``(request, response, allowed, ok)`` told about every check (coverage).
    listeners: list = field(default_factory=list)
    #: While True, the model records a request's fault only once the RTL's answer is
    #: known, and only if the RTL faulted: between a table change and its fence the RTL
    #: may answer from an old cached translation (no fault, no record) where the model's
    #: walk of the new tables faults. The record is that of the allowed fault the RTL gave:
    #: caches hold no faults, but a cached process context may lead to an old table that
    #: faults where the current one maps.
    defer_reports: bool = False
    _deferred: dict = field(default_factory=dict)

    def expect(self, request):
        """The answers allowed for ``request`` now; call before the RTL can answer it.

        Also lets the model translate it, so its caches and fault queue move as the
        hardware's do.
        """
        access = request.access
        process = _process(request)
        allowed = list(self.model.allowed(request.device_id, request.iova, access, **process))
        self.model.translate(request.device_id, request.iova, access, **process,
                             report=not self.defer_reports)
        if self.defer_reports:
            self._deferred[id(allowed)] = allowed
        return allowed

    def check(self, request, response, allowed):
        """Record ``response`` to ``request``; returns True when it is allowed."""
        self.translations += 1
        self.cycles.append(response.cycles)
        if response.fault:
            self.faults[response.cause] += 1
        if response.hit:
            self.hits += 1
        else:
            self.misses += 1
        self.absorbed += bool(getattr(response, "absorbed", False))
        matching = [a for a in allowed if same_answer(response, a)]
        ok = bool(matching)
        if self._deferred.pop(id(allowed), None) is not None and response.fault:
            if ok:
                # The record of the allowed fault the RTL gave: it may come from a process
                # context cached before a change, not from the current tables.
                pasid = _process(request)
                self.model.report_fault(request.device_id, request.iova, request.access,
                                        matching[0].cause, matching[0].iotval2,
                                        process_id=pasid["process_id"], priv=pasid["priv"])
            else:
                self.model.translate(request.device_id, request.iova, request.access,
                                     **_process(request))
        if not ok:
            # Rendered now: the tables may change before anyone reads the report.
            context = explain(self.model, request, allowed, response)
            self.mismatches.append(Mismatch(request, response, allowed, context))
        for listener in self.listeners:
            listener(request, response, allowed, ok)
        return ok

    def summary(self):
        cyc = sorted(self.cycles) or [0]
        return {
            "translations": self.translations,
            "faults": {int(k): v for k, v in sorted(self.faults.items())},
            "iotlb_hits": self.hits,
            "iotlb_misses": self.misses,
            "cycles_mean": round(sum(cyc) / len(cyc), 2),
            "cycles_max": cyc[-1],
            "mismatches": len(self.mismatches),
        }
