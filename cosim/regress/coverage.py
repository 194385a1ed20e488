"""Functional coverage of a regression run, with cocotb-coverage.

Cover points: the fault cause (or success), the access type, the page size of successful
translations, whether the IOTLB answered (hit) or a walk did (miss), and the kind of device
(which stages, see :data:`iogate.cosim.regress.world.KINDS`). The guest-page-fault causes can only
be reached on the full Config, the PDT causes (265-267) and the 256 TiB size only on the process
Config, the MSI causes (261-264) and ``absorbed`` (an access to an MRIF page the IOMMU completed
itself) only on the msi Config. Their cross (cause x access) shows, for example, whether
write page faults were ever seen; it leaves out the pairs no request can produce
(:data:`UNREACHABLE`).
"""

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from iogate.hdl.formats import Cause
from iogate.hdl.port import Access

from iogate.cosim.regress.world import KINDS

__all__ = ["sample", "report", "CAUSES", "PAGE_SIZES", "UNREACHABLE"]

#: Outcomes the first target can produce for an untranslated request (spec "Fault/Event-Queue
#: (FQ)").
CAUSES = ["ok"] + [c.name.lower() for c in (
    Cause.INSTRUCTION_ACCESS_FAULT, Cause.READ_ACCESS_FAULT, Cause.WRITE_ACCESS_FAULT,
    Cause.INSTRUCTION_PAGE_FAULT, Cause.READ_PAGE_FAULT, Cause.WRITE_PAGE_FAULT,
    Cause.INSTRUCTION_GUEST_PAGE_FAULT, Cause.READ_GUEST_PAGE_FAULT,
    Cause.WRITE_GUEST_PAGE_FAULT, Cause.ALL_INBOUND_DISALLOWED, Cause.DDT_LOAD_ACCESS_FAULT,
    Cause.DDT_ENTRY_NOT_VALID,
    Cause.DDT_ENTRY_MISCONFIGURED, Cause.TRANSACTION_TYPE_DISALLOWED,
    Cause.PDT_ENTRY_LOAD_ACCESS_FAULT, Cause.PDT_ENTRY_NOT_VALID, Cause.PDT_ENTRY_MISCONFIGURED,
    Cause.MSI_PTE_LOAD_ACCESS_FAULT, Cause.MSI_PTE_NOT_VALID, Cause.MSI_PTE_MISCONFIGURED,
    Cause.MRIF_ACCESS_FAULT)] + ["absorbed"]
PAGE_SIZES = ["4K", "64K", "2M", "1G", "512G", "256T", "none"]
_SIZE_NAMES = {4 << 10: "4K", 64 << 10: "64K", 2 << 20: "2M", 1 << 30: "1G", 512 << 30: "512G",
               256 << 40: "256T"}

#: (outcome, access) pairs of the cross that cannot happen: an access, page or guest-page
#: fault names the request's own access (spec "Fault/Event-Queue (FQ)": a fault on an
#: implicit walk read is reported with the cause of the original access), so an
#: instruction_* fault is only ever an execute's, a read_* a read's, a write_* a write's.
UNREACHABLE = [(f"{kind}_{fault}", access)
               for kind, own in (("instruction", "execute"), ("read", "read"), ("write", "write"))
               for fault in ("access_fault", "page_fault", "guest_page_fault")
               for access in ("read", "write", "execute") if access != own] + [
    # An execute on an MSI page is an instruction access fault (reference N.4.3), and only a
    # write to an MRIF page touches memory (a read is absorbed: it reads 0, N.4.4).
    ("absorbed", "execute"), ("mrif_access_fault", "read"), ("mrif_access_fault", "execute"),
]


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
@CoverCross("iogate.outcome_x_access", items=["iogate.outcome", "iogate.access"],
            ign_bins=UNREACHABLE)
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
    elif getattr(response, "absorbed", False):
        outcome, size = "absorbed", "none"
    else:
        outcome = "ok"
        size = _SIZE_NAMES.get(getattr(expected, "size", 0), "4K")
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
