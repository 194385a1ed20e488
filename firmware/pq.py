"""The page-request queue driver: enable, disable, and the page-request handler.

RISC-V IOMMU spec "Page-Request-Queue (PQ)" and reference N.6.5-N.6.8. The IOMMU owns
``pqt`` and writes 16-byte records (N.6.6); software owns ``pqh``. The handler reads the
records between ``pqh`` and ``pqt``, groups them by Page Request Group (device, PASID, PRG
index), and at the group's last request (L=1) faults every page of the group in through the
caller's ``fault_in`` and answers the group with one ``ATS.PRGR`` command (N.6.4). Stop
Markers (L=1, R=W=0) need no response (PCIe) and fault nothing in.

After ``pqof`` (N.6.7, last bullets) the IOMMU has answered the lost L=1 requests with
Success itself, so the device retries: the handler clears ``pqof`` and drops the incomplete
groups (their L=0 records are never answered), instead of waiting for an L=1 that will not
come.

:meth:`PageRequestQueue.report` is the other shape: each record goes to a sink that answers
later (iommufd's fault object, :mod:`iogate.cosim.host.iommufd.fault`). The responses are built
by :func:`iogate.firmware.commands.ats_prgr`, the one ``ATS.PRGR`` builder.

The pq registers are accessed through the bus with their own sizes (8-byte ``pqb``, 4-byte
``pqh``, ``pqt``, ``pqcsr``): :data:`iogate.hdl.regs.REGISTER_SIZE` does not list them yet.
"""

import dataclasses

from iogate.hdl import bits
from iogate.hdl.formats import PQ_RECORD, PQ_RECORD_SIZE, PrgResponse
from iogate.hdl.regs import IPSR, PQCSR, QB, Offset

from iogate.firmware import commands
from iogate.firmware.alloc import PAGE_SIZE
from iogate.firmware.errors import PollTimeout
from iogate.firmware.queue import check_entries

__all__ = ["prg_response", "PageRequest", "PageRequestDrain", "PageRequestQueue"]

_SIZE = {Offset.PQB: 8, Offset.PQH: 4, Offset.PQT: 4, Offset.PQCSR: 4, Offset.IPSR: 4}


def prg_response(device_id, prg_index, response_code, pasid=None):
    """The ``ATS.PRGR`` answering the group ``prg_index`` of ``device_id``
    (:func:`iogate.firmware.commands.ats_prgr`, with the destination of
    :func:`~iogate.firmware.commands.route`); ``pasid`` sets ``PV=1``."""
    return commands.ats_prgr(prg_index=prg_index, response_code=int(response_code),
                             pv=pasid is not None, pid=pasid or 0, **commands.route(device_id))


@dataclasses.dataclass(frozen=True)
class PageRequest:
    """One page-request queue record (reference N.6.6).

    Attributes
    ----------
    device_id : int
    pasid : int or None
        The PASID, if the message had one.
    priv, exec : bool
        Privilege Mode / Execute Requested (False without a PASID).
    r, w : bool
        Read / write access requested.
    last : bool
        L: the last request of its group.
    prg_index : int
    page : int
        Page Address[63:12] (the page number).
    """

    device_id: int
    pasid: int | None
    priv: bool
    exec: bool
    r: bool
    w: bool
    last: bool
    prg_index: int
    page: int

    @property
    def stop_marker(self):
        """L=1 with R=W=0 (reference N.6.6)."""
        return self.last and not (self.r or self.w)

    @property
    def group(self):
        """The Page Request Group: (device_id, PASID, PRG index)."""
        return (self.device_id, self.pasid, self.prg_index)

    @classmethod
    def from_bytes(cls, raw):
        """The record stored little-endian in ``raw`` (16 bytes; ``fctl.BE=0``)."""
        if len(raw) != PQ_RECORD_SIZE:
            raise ValueError(f"a page-request record is {PQ_RECORD_SIZE} bytes, not {len(raw)}")
        f = bits.unpack(PQ_RECORD, int.from_bytes(raw, "little"))
        return cls(device_id=f["did"], pasid=f["pid"] if f["pv"] else None,
                   priv=bool(f["priv"]), exec=bool(f["exec"]), r=bool(f["r"]), w=bool(f["w"]),
                   last=bool(f["l"]), prg_index=f["prg_index"], page=f["page"])


@dataclasses.dataclass(frozen=True)
class PageRequestDrain:
    """What one run of the handler found and did.

    Attributes
    ----------
    records : tuple of PageRequest
        The records read, oldest first.
    responses : tuple of (group, PrgResponse)
        The groups answered with ATS.PRGR, in order.
    dropped_groups : tuple of group
        Incomplete groups dropped after an overflow.
    overflow, memory_fault : bool
        ``pqcsr.pqof`` / ``pqcsr.pqmf`` were set (and have been cleared).
    """

    records: tuple = ()
    responses: tuple = ()
    dropped_groups: tuple = ()
    overflow: bool = False
    memory_fault: bool = False


class PageRequestQueue:
    """The page-request queue of one IOMMU.

    Parameters
    ----------
    regs : Registers
        The IOMMU's registers (their ``bus`` and ``max_polls`` are used).
    alloc : PageAllocator
        Where the queue is allocated.
    entries : int
        Queue size, a power of two from 2 to 2**20.
    """

    def __init__(self, regs, alloc, *, entries=64):
        check_entries(entries)
        self.regs = regs
        self.bus = regs.bus
        self.alloc = alloc
        self.entries = entries
        self.base = None
        self._head = 0
        self._interrupts = False
        #: Requests of groups whose L=1 has not been read yet, by group.
        self.pending = {}

    def _read(self, offset):
        return self.bus.mmio_read(int(offset), _SIZE[offset])

    def _write(self, offset, value):
        self.bus.mmio_write(int(offset), _SIZE[offset], value)

    def _poll_pqon(self, value):
        for _ in range(self.regs.max_polls):
            if bits.get(PQCSR, self._read(Offset.PQCSR), "pqon") == value:
                return
        raise PollTimeout(f"pqcsr.pqon == {value}", self.regs.max_polls)

    def enable(self, *, interrupts=False):
        """Allocate the queue and turn it on: ``pqb``, then ``pqh=0``, then ``pqen=1``, then
        poll ``pqon`` (reference N.6.5 "Init")."""
        if bits.get(PQCSR, self._read(Offset.PQCSR), "pqon"):
            self.disable()
        # A whole page at least, aligned to the greater of 4 KiB and the queue's size (pqb).
        size = max(PAGE_SIZE, self.entries * PQ_RECORD_SIZE)
        if self.base is not None:
            self.alloc.free(self.base)
        self.base = self.alloc.alloc(size, align=size)
        log2szm1 = self.entries.bit_length() - 2
        self._write(Offset.PQB, bits.pack(QB, log2szm1=log2szm1, ppn=self.base >> 12))
        # LOG2SZ-1 is WARL: take what the IOMMU offers (as the other queues do).
        taken = bits.get(QB, self._read(Offset.PQB), "log2szm1")
        self.entries = min(self.entries, 2 << taken)
        self._write(Offset.PQH, 0)
        self._head = 0
        self.pending = {}
        self._interrupts = bool(interrupts)
        self._write(Offset.PQCSR, bits.pack(PQCSR, pqen=1, pie=self._interrupts))
        self._poll_pqon(1)

    def disable(self):
        """``pqen=0``, then poll until ``pqon`` reads 0 (a record in flight completes)."""
        self._write(Offset.PQCSR, 0)
        self._poll_pqon(0)

    def handle(self, fault_in, submit, *, pasid_in_response=True):
        """Read every record between ``pqh`` and ``pqt``, fault pages in, answer groups.

        Parameters
        ----------
        fault_in : callable
            ``fault_in(device_id, pasid, page, r, w, exec, priv)`` for every page of a
            completed group (Stop Markers excluded); truthy if the page is now mapped. A
            group is answered Success if every page was, else Invalid Request.
        submit : callable
            ``submit(command)``: queues one command (a 128-bit integer), as
            :meth:`iogate.firmware.cq.CommandQueue.submit`.
        pasid_in_response : bool
            The responses carry the group's PASID when it had one (the function's "PRG
            Response PASID Required"; ``DC.tc.PRPR`` is the same bit for the IOMMU's own
            responses, N.6.1).

        Returns
        -------
        PageRequestDrain
        """
        responses = []

        def complete(group):
            ok = True
            for req in group:
                ok = bool(fault_in(req.device_id, req.pasid, req.page, req.r, req.w, req.exec,
                                   req.priv)) and ok
            last = group[-1]
            code = PrgResponse.SUCCESS if ok else PrgResponse.INVALID_REQUEST
            submit(prg_response(last.device_id, last.prg_index, code,
                                last.pasid if pasid_in_response else None))
            responses.append((last.group, code))

        drain = self._drain(lambda rec: None, complete, lambda: None)
        return dataclasses.replace(drain, responses=tuple(responses))

    def report(self, sink):
        """Read every record between ``pqh`` and ``pqt`` and hand each to ``sink``, which
        answers the groups itself, later if it likes (as Linux's drivers hand each Page
        Request to ``iommu_report_device_fault`` and call ``iopf_queue_discard_partial`` on
        an overflow).

        Parameters
        ----------
        sink : object
            ``sink.page_request(record)`` for each :class:`PageRequest` but Stop Markers, in
            queue order; ``sink.discard_partial()`` when ``pqof`` was set, before the
            records and again after them: the groups it holds incomplete will not complete.

        Returns
        -------
        PageRequestDrain
            ``responses`` is empty: the sink answers.
        """
        return self._drain(sink.page_request, lambda group: None, sink.discard_partial)

    def _drain(self, on_record, on_group, on_discard):
        # As the fault queue: clear the error bits, clear ipsr.pip, then read pqt, so a
        # record that lands after pqt was read raises pip again (N.9 P7).
        mask = self.entries - 1
        csr = self._read(Offset.PQCSR)
        overflow = bool(bits.get(PQCSR, csr, "pqof"))
        memory_fault = bool(bits.get(PQCSR, csr, "pqmf"))
        if overflow or memory_fault:
            self._write(Offset.PQCSR, bits.pack(PQCSR, pqen=1, pie=self._interrupts,
                                                pqof=overflow, pqmf=memory_fault))
        self._write(Offset.IPSR, bits.pack(IPSR, pip=1))
        tail = self._read(Offset.PQT) & mask
        dropped = []
        if overflow:
            # Groups begun before the overflow may have lost their L=1 (answered Success by
            # the IOMMU): the device retries them, so they are not answered here.
            dropped.extend(self.pending)
            self.pending = {}
            on_discard()
        records = []
        while self._head != tail:
            raw = self.bus.mem_read(self.base + self._head * PQ_RECORD_SIZE, PQ_RECORD_SIZE)
            rec = PageRequest.from_bytes(raw)
            records.append(rec)
            self._head = (self._head + 1) & mask
            if rec.stop_marker:
                continue
            self.pending.setdefault(rec.group, []).append(rec)
            on_record(rec)
            if rec.last:
                on_group(tuple(self.pending.pop(rec.group)))
        if records:
            self._write(Offset.PQH, self._head)
        if overflow:
            # Still incomplete at the end of the queue the overflow left: dropped too.
            dropped.extend(g for g in self.pending if g not in dropped)
            self.pending = {}
            on_discard()
        return PageRequestDrain(tuple(records), (), tuple(dropped), overflow, memory_fault)

    def forget(self, device_id):
        """Drop the incomplete groups of ``device_id`` (its PRI is being disabled: the
        function discards its outstanding requests, reference N.6.8); returns them."""
        gone = tuple(g for g in self.pending if g[0] == device_id)
        for g in gone:
            del self.pending[g]
        return gone
