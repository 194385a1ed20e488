"""Scoreboard: every translation response checked against the architectural model.

The model says which answers the spec allows at this moment (the current tables, plus any
older answer a cache may still hold before its invalidation and IOFENCE.C complete); a
response outside that set is a mismatch, reported with the request, what was allowed, what
came back, and the model's account of the device context and PTEs involved. The scoreboard
has no cocotb import: it is plain Python over plain values.
"""

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Scoreboard", "Mismatch", "same_answer"]


def same_answer(got, expected):
    """Whether response ``got`` is the model result ``expected`` (spec-visible fields only)."""
    if expected.fault:
        return bool(got.fault) and got.cause == int(expected.cause)
    return (not got.fault and got.pa == expected.pa
            and (bool(got.r), bool(got.w), bool(got.x)) ==
                (bool(expected.r), bool(expected.w), bool(expected.x))
            and got.pbmt == int(expected.pbmt))


def _describe(result):
    if result.fault:
        return f"fault cause={int(result.cause)}"
    perm = "".join(c if getattr(result, c) else "-" for c in "rwx")
    return f"pa={result.pa:#x} {perm} pbmt={int(result.pbmt)}"


@dataclass
class Mismatch:
    request: object
    got: object
    allowed: list
    context: str = ""

    def __str__(self):
        lines = [f"MISMATCH {self.request}",
                 f"  got:      {self.got}",
                 "  expected: " + " | ".join(_describe(a) for a in self.allowed)]
        if self.context:
            lines += ["  " + line for line in self.context.splitlines()]
        return "\n".join(lines)


@dataclass
class Scoreboard:
    """Checks responses and keeps the figures of a run."""
    model: object
    mismatches: list = field(default_factory=list)
    translations: int = 0
    faults: Counter = field(default_factory=Counter)
    hits: int = 0
    misses: int = 0
    cycles: list = field(default_factory=list)
    #: Callables ``(request, response, allowed, ok)`` told about every check (coverage).
    listeners: list = field(default_factory=list)

    def expect(self, request):
        """The answers allowed for ``request`` now; call before the RTL can answer it.

        Also lets the model translate it, so its caches and fault queue move as the
        hardware's do.
        """
        access = request.access.name.lower()
        allowed = list(self.model.allowed(request.device_id, request.iova, access))
        self.model.translate(request.device_id, request.iova, access)
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
        ok = any(same_answer(response, a) for a in allowed)
        if not ok:
            explain = getattr(self.model, "explain", None)
            context = explain(request.device_id, request.iova) if explain else ""
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
