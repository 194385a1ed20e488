"""One cosimulation session: the RTL, the model and the checks, wired together.

A scenario opens a :class:`Session` on the top-level under test, programs it through the
mirrored bus (so the model sees every register write the RTL sees and the two share one
``Memory``), sends translation requests, and reads the verdict from the scoreboard and the
bus. Everything here runs inside cocotb.
"""

import dataclasses
import itertools
from dataclasses import dataclass

from cocotb.task import bridge
from cocotb.utils import get_sim_time

from iogate.hdl import bits
from iogate.hdl.port import Access
from iogate.hdl.regs import TR_REQ_CTL, TR_RESPONSE, Offset

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.check.scoreboard import Scoreboard
from iogate.cosim.model.memory import Memory, OverlayMemory
from iogate.cosim.targets.tb.bus import MirroredBus
from iogate.cosim.targets.tb.testbench import Testbench

__all__ = ["Session", "open_session", "same_debug_response"]


@dataclass
class Session:
    config: object
    memory: Memory
    model: object
    tb: Testbench
    bus: MirroredBus
    scoreboard: Scoreboard
    debug_translations: int = 0
    #: Commands a scenario says it issued (for reports).
    commands: int = 0

    async def run(self, fn, *args):
        """Run synchronous driver code ``fn(*args)`` against the RTL (``cocotb.bridge``)."""
        return await bridge(fn)(*args)

    async def translate_all(self, requests, port=0):
        """Send ``requests`` back to back on ``port``, check every response.

        Requests are pipelined (up to the tag space in flight); the allowed answers of
        each are taken from the model in request order, as the port answers in order.
        """
        requester = self.tb.ports[port]
        pending = []
        for request in requests:
            allowed = self.scoreboard.expect(request)
            pending.append((request, await requester.submit(request), allowed))
        for request, event, allowed in pending:
            await event.wait()
            self.scoreboard.check(request, event.response, allowed)

    async def debug_translate(self, request):
        """Translate ``request`` through the debug interface (spec "Debug support").

        ``tr_response`` is read through the mirrored bus, so a disagreement with the
        model's debug interface is counted like any register mismatch.
        """
        access = request.access
        await self.bus.awrite(Offset.TR_REQ_IOVA, 8, request.iova & ~0xFFF)
        ctl = bits.pack(TR_REQ_CTL, go=1, nw=access is not Access.WRITE,
                        exe=access is Access.EXECUTE, did=request.device_id)
        await self.bus.awrite(Offset.TR_REQ_CTL, 8, ctl)
        for _ in range(10_000):
            ctl = await self.tb.mmio_read(Offset.TR_REQ_CTL, 8)
            if not bits.get(TR_REQ_CTL, ctl, "go"):
                break
        else:
            self.bus.mismatches.append(f"debug translation {request} never completed")
            return None
        self.debug_translations += 1
        got = await self.tb.mmio_read(Offset.TR_RESPONSE, 8)
        expected = self.model.mmio_read(Offset.TR_RESPONSE, 8)
        if not same_debug_response(got, expected, request.iova):
            self.bus.mismatches.append(
                f"debug translation {request}: tr_response rtl {got:#x} model {expected:#x}")
        return bits.unpack(TR_RESPONSE, got)

    async def check_fault_records(self):
        """Compare the fault-queue records the RTL wrote with the model's (spec "Fault/Event-Queue
        (FQ)").

        ``fqh``/``fqt`` are read through the mirrored bus (so they must agree); every
        record between them is compared field by field. The spec lets the IOMMU report
        page-offset bits of ``iotval`` as 0, so a record whose ``iotval`` is the model's
        with the offset cleared is the same record. Returns the RTL's records.
        """
        from iogate.hdl.formats import FQ_RECORD_SIZE
        from iogate.hdl.regs import QB

        from iogate.firmware.fq import FaultRecord
        fqb = await self.bus.aread(Offset.FQB, 8)
        fqh = await self.bus.aread(Offset.FQH, 4)
        fqt = await self.bus.aread(Offset.FQT, 4)
        entries = 2 << bits.get(QB, fqb, "log2szm1")
        base = bits.get(QB, fqb, "ppn") << 12
        records = []
        i, wanted = fqh, []
        while i != fqt:
            address = base + i * FQ_RECORD_SIZE
            records.append(FaultRecord.from_bytes(self.memory.read(address, FQ_RECORD_SIZE)))
            wanted.append(FaultRecord.from_bytes(self.model.memory.read(address, FQ_RECORD_SIZE)))
            i = (i + 1) % entries
        # Answers leave the port out of order (hit-under-miss), so records of different
        # requests may be too: the same records, in any order, are the same queue.
        extra = []
        for got in records:
            want = next((w for w in wanted if got in
                         (w, dataclasses.replace(w, iotval=w.iotval & ~0xFFF))), None)
            if want is None:
                extra.append(got)
            else:
                wanted.remove(want)
        for got, want in itertools.zip_longest(extra, wanted):
            self.bus.mismatches.append(f"fault record: rtl {got} model {want}")
        return records

    @property
    def mismatches(self):
        return ([str(m) for m in self.scoreboard.mismatches] + list(self.bus.mismatches)
                + list(self.tb.interrupts.mismatches))

    def report(self, **extra):
        r = self.scoreboard.summary()
        r["mismatches"] = len(self.mismatches)
        r["mismatch_details"] = self.mismatches[:20]
        r["debug_translations"] = self.debug_translations
        r["cycles"] = round(get_sim_time(unit="ns") / self.tb.period_ns)
        r.update(extra)
        return r


def same_debug_response(got, expected, iova):
    """Whether two ``tr_response`` values are the same answer (spec "Translation-response
    (tr_response)").

    The spec lets an implementation report a superpage as its 4 KiB page (S=0), so an
    S=0 answer equals an S=1 one when its PPN is the IOVA's page inside that superpage.
    """
    g, e = bits.unpack(TR_RESPONSE, got), bits.unpack(TR_RESPONSE, expected)
    if g["fault"] or e["fault"]:
        return g["fault"] == e["fault"]
    if g["pbmt"] != e["pbmt"]:
        return False
    if g["s"] == e["s"]:
        return g["ppn"] == e["ppn"]
    if g["s"] or not e["s"]:
        return False
    # NAPOT size: the first 0 bit of the PPN at position X gives 2**(X+1) pages.
    x = 0
    while e["ppn"] >> x & 1:
        x += 1
    span = (1 << (x + 1)) - 1
    return g["ppn"] == (e["ppn"] & ~span) | ((iova >> 12) & span)


async def open_session(dut, config, *, mem_latency=0, memory=None):
    """Start the test bench on ``dut`` and an architectural model beside it.

    The model reads the RTL's memory through an overlay that keeps its own stores (fence
    completion words, fault records) apart from the hardware's.
    """
    from iogate.cosim.model import IommuModel
    memory = memory or Memory()
    model = IommuModel(config, OverlayMemory(memory))
    tb = Testbench(dut, config, memory, mem_latency=mem_latency)
    await tb.start()
    return Session(config, memory, model, tb, MirroredBus(tb, model), Scoreboard(model))


def request(device_id, iova, access, process_id=None, priv=False, word=True, data=None):
    """Shorthand for a :class:`TranslationRequest` with ``access`` as a name or ``Access``
    (``process_id``/``priv``: the PASID and supervisor privilege, if any; ``word``/``data``:
    the port's MSI_WRITE fields, with ``Config.msi_mrif``).

    The test author's edge: a name (``"read"``, ``"write"``, ``"execute"``) becomes the
    :class:`~iogate.hdl.port.Access` here, once.
    """
    if isinstance(access, str):
        access = Access[access.upper()]
    return TranslationRequest(device_id, iova, access, process_id, priv, word, data)


__all__.append("request")
