"""Formal properties of iogate's components, proven with open tools (SymbiYosys, smtbmc).

Each module holds one component's harness: the real component with its neighbours
abstracted (free memory answers, a free requester, the spec's register arithmetic) and its
``Assert``/``Assume``/``Cover`` statements. :data:`PROPERTIES` names every property of the
flow, :data:`MUTANTS` the deliberately broken copies whose proofs must fail;
:mod:`iogate.hdl.formal.run` runs them (``iogate formal NAME``, ``make formal``).
"""

from iogate.hdl.formal.axi import MemoryMasterHarness
from iogate.hdl.formal.axil import AxiLiteSlaveHarness
from iogate.hdl.formal.cmdq import CommandQueueHarness
from iogate.hdl.formal.ddtc import DdtcHarness
from iogate.hdl.formal.fq import FaultQueueHarness
from iogate.hdl.formal.iotlb import IotlbHarness
from iogate.hdl.formal.msiptc import MsiPtcHarness
from iogate.hdl.formal.pdtc import PdtcHarness
from iogate.hdl.formal.ports import PortsHarness
from iogate.hdl.formal.pq import PageRequestQueueHarness
from iogate.hdl.formal.property import Property

__all__ = ["PROPERTIES", "MUTANTS", "Property"]

PROPERTIES = {
    "fq": Property(
        FaultQueueHarness, "bmc", 16, 14,
        "BMC: the writer's report FIFO and record buffer hold data whose invariants "
        "k-induction would need from inside the component. A record takes 8 cycles at "
        "least; from a free fqh/fqt every cover (queue filled, fqt wrap, fqof, fqmf, the "
        "chosen record stored) is reached by step 11, so 14 cycles (CI) and 16 (full) "
        "cover one whole record and the overflow after it.", ci_depth=14),
    "pq": Property(
        PageRequestQueueHarness, "bmc", 14, 14,
        "BMC, for the fault queue's reason: the latched request and the record being "
        "stored are state whose link to the harness's copies k-induction would need from "
        "inside. A queued request takes 6 cycles at least (taken, decided, two stores), so "
        "14 cycles (12 in CI) hold two whole records, the overflow after them and answered "
        "requests.", ci_depth=12),
    "cmdq": Property(
        CommandQueueHarness, "bmc", 14, 14,
        "BMC: the engine's command register and FSM hold state whose link to the fetched "
        "command k-induction would need from inside. A command takes 5 cycles at least "
        "(two fetches and execute); 14 cycles cover two whole commands, an illegal one, a "
        "fence with its store and a wrap of a 4-slot queue.", ci_depth=12),
    "iotlb": Property(
        IotlbHarness, "bmc", 7, 6,
        "BMC: induction would need the link between the IOTLB's entries and the harness's "
        "copy of the one entry that can answer K. Every change to the IOTLB takes one "
        "cycle (a fill, an invalidation, a lookup), so 5 cycles (CI) hold fill, "
        "invalidate, refill and lookup, and 7 (full) that with both entries filled first; "
        "the covers are reached by step 3.", ci_depth=5),
    "pdtc": Property(
        PdtcHarness, "bmc", 6, 4,
        "BMC: induction would need the link between the cache's entries and the harness's "
        "copy of K's latest PC. Every change takes one cycle (a fill, an IODIR, a lookup), "
        "so 4 cycles (CI) hold fill, invalidate, refill and lookup, and 6 (full) that with "
        "both entries filled first; the covers are reached by step 3.", ci_depth=4),
    "msiptc": Property(
        MsiPtcHarness, "bmc", 6, 4,
        "BMC: induction would need the link between the cache's entries and the harness's "
        "copy of K's latest PTE, as for pdtc. Every change takes one cycle (a fill, an "
        "IOTINVAL, a lookup), so 4 cycles (CI) hold fill, invalidate, refill and lookup, "
        "and 6 (full) that with both entries filled first; the covers are reached by "
        "step 3.", ci_depth=4),
    "ddtc": Property(
        DdtcHarness, "bmc", 6, 4,
        "BMC: k-induction (tried to depth 6) fails from unreachable states where a valid "
        "entry tagged K holds a DC other than the harness's copy of K's latest fill: the "
        "link it would need as an invariant from inside the cache (valid bits, tags, entry "
        "memory). Every change takes one cycle (a "
        "fill, an IODIR.INVAL_DDT, a lookup), so 4 cycles (CI) hold fill, invalidate, "
        "refill and lookup, and 6 (full) that with both entries filled first; the covers "
        "are reached by step 3.", ci_depth=4),
    "axi-master": Property(
        MemoryMasterHarness, "bmc", 14, 10,
        "BMC: k-induction (tried to depth 8) fails from states where the master's owner "
        "and captured request disagree with the harness's per-client pending flags, which "
        "it would need as invariants from inside. One read or write takes 3 cycles at "
        "least, so 14 cycles (10 in CI) hold several requests of every client, with "
        "back-pressure on every channel.", ci_depth=10),
    "axil-slave": Property(
        AxiLiteSlaveHarness, "prove", 4, 8,
        "k-induction: the handshake state (bvalid, rvalid, the captured rdata) and the "
        "harness's outstanding counts are tied together by the assertions themselves, so "
        "no invariant from inside the register file is needed: it closes at length 1, run "
        "at 4 for margin (3 s either way). Config() (64-bit bus); a "
        "request and its response take 2 cycles, so the 8-cycle cover run holds two of "
        "each with back-pressure.", ci_depth=4),
    "axil-slave-32": Property(
        lambda: AxiLiteSlaveHarness(data_width=32), "prove", 4, 8,
        "As axil-slave, on Config(mmio_data_width=32): araddr[2] selects the half.",
        ci_depth=4),
    "ports": Property(
        PortsHarness, "bmc", 24, 24,
        "BMC: k-induction would need, from inside the pipeline, the links between its "
        "stages, its walkers' state and the harness's flag as invariants. A request is "
        "answered 2 cycles after it is taken at the least, a DDT fault 6; a DC read whole "
        "and a page-table walk started for (P, T) take 18, its answer after a page-table "
        "read 22: 24 cycles (full) hold an answer on each kind of path, the walk slot's "
        "included (a three-level walk is longer), 8 (CI) the answers, faults and "
        "contention of every source.", ci_depth=8),
}

MUTANTS = {
    "pq-full-off-by-one": Property(
        lambda: PageRequestQueueHarness(mutant=True), "bmc", 12, 0,
        "The queue sees full one slot late: it must overwrite an unread record.",
        expect="fail"),
    "fq-full-off-by-one": Property(
        lambda: FaultQueueHarness(mutant=True), "bmc", 14, 0,
        "The writer sees full one slot late: it must overwrite an unread record.",
        expect="fail"),
    "cmdq-reserved-bit-ignored": Property(
        lambda: CommandQueueHarness(mutant=True), "bmc", 12, 0,
        "The engine never sees a reserved bit: an illegal command must execute.",
        expect="fail"),
    "iotlb-dropped-gvma-av": Property(
        lambda: IotlbHarness(mutant=True), "bmc", 5, 0,
        "The IOTLB never sees IOTINVAL.GVMA with AV=1: a stale entry must hit.",
        expect="fail"),
    "pdtc-dropped-inval-all": Property(
        lambda: PdtcHarness(mutant=True), "bmc", 4, 0,
        "The cache never sees IODIR.INVAL_DDT with DV=0: a stale PC must hit.",
        expect="fail"),
    "msiptc-dropped-gvma-av": Property(
        lambda: MsiPtcHarness(mutant=True), "bmc", 4, 0,
        "The cache never sees IOTINVAL.GVMA with GV=1, AV=1: a stale MSI PTE must hit.",
        expect="fail"),
    "ddtc-dropped-inval-did": Property(
        lambda: DdtcHarness(mutant=True), "bmc", 4, 0,
        "The cache never sees IODIR.INVAL_DDT with DV=1: a stale DC must hit.",
        expect="fail"),
    "axi-master-valid-dropped-early": Property(
        lambda: MemoryMasterHarness(mutant=True), "bmc", 6, 0,
        "ARVALID drops after one cycle without ARREADY: the handshake rule must fail.",
        expect="fail"),
    "axil-slave-bvalid-dropped": Property(
        lambda: AxiLiteSlaveHarness(mutant=True), "prove", 4, 0,
        "BVALID drops after one cycle without BREADY: the hold rule must fail.",
        expect="fail"),
    "ports-response-repeated": Property(
        lambda: PortsHarness(mutant="repeated"), "bmc", 6, 0,
        "A response taken on port 0 is offered once more the next cycle: a duplicate tag.",
        expect="fail"),
    "ports-response-lost": Property(
        lambda: PortsHarness(mutant="lost"), "bmc", 6, 0,
        "A response with tag 3 on port 1 is taken from the pipeline and never offered: a "
        "lost request.",
        expect="fail"),
}
