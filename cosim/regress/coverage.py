"""Functional coverage of a regression run, with cocotb-coverage.

Cover points: the fault cause (or success), the access type, the page size of successful
translations, whether the IOTLB answered (hit) or a walk did (miss), and the kind of device
(which stages, see :data:`iogate.cosim.regress.world.KINDS`). The guest-page-fault causes can only
be reached on the full Config, so a default-Config run covers at most 12 of the 15 outcomes.
Their cross (cause x access) shows, for example, whether write page faults were ever seen.
"""

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from iogate.hdl.formats import Cause
from iogate.hdl.port import Access

from iogate.cosim.regress.world import KINDS

__all__ = ["sample", "report", "CAUSES"]

#: Outcomes the first target can produce for an untranslated request (spec "Fault/Event-Queue
#: (FQ)").
CAUSES = ["ok"] + [c.name.lower() for c in (
    Cause.INSTRUCTION_ACCESS_FAULT, Cause.READ_ACCESS_FAULT, Cause.WRITE_ACCESS_FAULT,
    Cause.INSTRUCTION_PAGE_FAULT, Cause.READ_PAGE_FAULT, Cause.WRITE_PAGE_FAULT,
    Cause.INSTRUCTION_GUEST_PAGE_FAULT, Cause.READ_GUEST_PAGE_FAULT,
    Cause.WRITE_GUEST_PAGE_FAULT, Cause.ALL_INBOUND_DISALLOWED, Cause.DDT_LOAD_ACCESS_FAULT,
    Cause.DDT_ENTRY_NOT_VALID,
    Cause.DDT_ENTRY_MISCONFIGURED, Cause.TRANSACTION_TYPE_DISALLOWED)]
PAGE_SIZES = ["4K", "64K", "2M", "1G", "none"]


@CoverPoint("iogate.outcome", xf=lambda outcome, access, size, hit, kind: outcome,
            bins=CAUSES)
@CoverPoint("iogate.access", xf=lambda outcome, access, size, hit, kind: access,
            bins=[a.name.lower() for a in Access])
@CoverPoint("iogate.page_size", xf=lambda outcome, access, size, hit, kind: size,
            bins=PAGE_SIZES)
@CoverPoint("iogate.iotlb", xf=lambda outcome, access, size, hit, kind: hit,
            bins=["hit", "miss"])
@CoverPoint("iogate.device", xf=lambda outcome, access, size, hit, kind: kind,
            bins=KINDS + ["unknown"])
@CoverCross("iogate.outcome_x_access", items=["iogate.outcome", "iogate.access"])
def _sample(outcome, access, size, hit, kind):
    pass


def sample(request, response, expected, kind):
    """Record one checked translation; ``expected`` is one model result allowed for it."""
    if response.fault:
        try:
            outcome = Cause(response.cause).name.lower()
        except ValueError:
            outcome = f"cause{response.cause}"
        size = "none"
    else:
        outcome = "ok"
        size = {4096: "4K", 65536: "64K", 2 << 20: "2M", 1 << 30: "1G"}.get(
            getattr(expected, "size", 0), "4K")
    _sample(outcome, request.access.name.lower(), size, "hit" if response.hit else "miss",
            kind)


def report():
    """``{cover point: {"coverage": %, "bins": {bin: hits}}}`` for the JSON report."""
    out = {}
    for name in ("iogate.outcome", "iogate.access", "iogate.page_size", "iogate.iotlb",
                 "iogate.device", "iogate.outcome_x_access"):
        item = coverage_db[name]
        out[name] = {"coverage_percent": round(item.cover_percentage, 1),
                     "bins": {str(k): v for k, v in item.detailed_coverage.items()}}
    return out
