"""The regression's cover points: every outcome and page size a Config can produce has a bin,
and the outcome x access cross counts only pairs a request can produce (spec "Fault/Event-Queue
(FQ)": access, page and guest-page faults name the original access; a walk's implicit read
faults with the cause of the request it serves)."""

from iogate.hdl.formats import Cause
from iogate.hdl.port import Access

from iogate.cosim.check.request import TranslationRequest, TranslationResponse
from iogate.cosim.regress import coverage


def test_every_untranslated_request_cause_has_a_bin():
    # The causes the spec lists for Untranslated requests that this IOMMU can build
    # (no ATS or PRI, no RAS data corruption): 1, 5, 7, 12, 13, 15, 20, 21, 23, 256-260,
    # the MSI ones 261-264, 265-267; and the MRIF page's answer without a fault, "absorbed".
    wanted = {1, 5, 7, 12, 13, 15, 20, 21, 23, 256, 257, 258, 259, 260, 261, 262, 263, 264,
              265, 266, 267}
    assert {Cause[name.upper()].value for name in coverage.CAUSES[1:-1]} == wanted
    assert coverage.CAUSES[0] == "ok" and coverage.CAUSES[-1] == "absorbed"


def test_the_cross_leaves_out_exactly_the_faults_of_another_access():
    pairs = set(coverage.UNREACHABLE)
    assert len(pairs) == 21        # 9 access-specific faults x 2 other accesses, and 3 MSI
    # An execute on an MSI page faults 1 (N.4.3); an MRIF read is absorbed (N.4.4).
    assert {("absorbed", "execute"), ("mrif_access_fault", "read"),
            ("mrif_access_fault", "execute")} <= pairs
    assert ("mrif_access_fault", "write") not in pairs
    assert ("write_page_fault", "read") in pairs and ("write_page_fault", "write") not in pairs
    assert ("instruction_guest_page_fault", "execute") not in pairs
    assert not any(outcome.startswith(("ok", "ddt", "pdt", "all_", "transaction"))
                   for outcome, _ in pairs)


def test_a_256t_success_and_a_pdt_fault_are_counted():
    from cocotb_coverage.coverage import coverage_db
    size_bins = coverage_db["iogate.page_size"].detailed_coverage
    outcomes = coverage_db["iogate.outcome"].detailed_coverage
    before = size_bins["256T"], outcomes["pdt_entry_not_valid"]
    ok = TranslationResponse(fault=False, cause=0, ppn=1, r=1, w=0, x=0, pbmt=0, hit=False,
                             pa=0x1000)

    class Expected:
        size = 256 << 40
    coverage.sample(TranslationRequest(1, 0x1000, Access.READ), ok, Expected(), "sv57")
    fault = TranslationResponse(fault=True, cause=266, ppn=0, r=0, w=0, x=0, pbmt=0,
                                hit=False, pa=0)
    coverage.sample(TranslationRequest(1, 0x1000, Access.WRITE), fault, None, "pdt")
    size_bins = coverage_db["iogate.page_size"].detailed_coverage
    outcomes = coverage_db["iogate.outcome"].detailed_coverage
    assert (size_bins["256T"], outcomes["pdt_entry_not_valid"]) == (before[0] + 1,
                                                                    before[1] + 1)
