"""``BatchHarness``: the IOMMU with its memory, a trace player and a response recorder.

::

    mmio (AXI4-Lite) ──────────────> Iommu ── mem (AXI4) ──> OnChipMemory <── host_write
                                      ^ │ tr[0]                            <── host_read
    load ─> requests ─> player ───────┘ └────> recorder ─> responses ─> read

The requests of a batch are written into the request memory through ``load`` (``LANES``
requests per clock), then ``start`` makes the player offer them on translation port 0
back to back, one per clock while the port is ready (RISC-V IOMMU spec "Process to translate an
IOVA": untranslated requests, no PASID). The tag of request ``i`` is ``i mod 2**tag_width``; a tag
is not reused before its answer came back, so the ``k``-th response carrying tag ``t`` answers
request ``t + k * 2**tag_width`` even though the IOMMU answers out of order. The recorder
stores every response in arrival order; ``done`` rises when ``count`` have arrived, and
the responses are then read through ``read`` (``LANES`` per read).

The tables and queues live in :class:`iogate.boards.memory.OnChipMemory` at ``RAM_BASE``, written
by the host through ``host_write`` as a CPU writes DRAM; an access outside it answers
DECERR, which the IOMMU reports as an access fault (spec "Fault/Event-Queue (FQ)").
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.axi import AXI4LiteSignature
from iogate.hdl.config import Config
from iogate.hdl.iommu import Iommu
from iogate.hdl.mem_master import ID_WIDTH, MemReadSignature, MemWriteSignature
from iogate.hdl.port import request_layout, response_layout
from iogate.hdl.regfile import MMIO_ADDR_WIDTH

from iogate.boards.memory import HOST_ADDR_WIDTH, OnChipMemory
from iogate.boards.top import RAM_BASE

__all__ = ["BatchHarness", "LANES", "RAM_BASE", "RAM_SIZE", "DEPTH", "request_bits",
           "response_bits"]

#: Requests per load and responses per read: wide ports, so that loading and reading back
#: a batch costs a fraction of a Python trigger per translation.
LANES = 8
#: Requests in one batch (the request and response memories' entries).
DEPTH = 4096
#: The on-chip memory: the regression world's tables and queues take under 400 KiB.
RAM_SIZE = 512 << 10


def request_bits():
    """Width of a stored request: the request payload without its tag."""
    return request_layout(0).size


def response_bits(config):
    """Width of a stored response: the response payload, tag included."""
    return response_layout(config.tag_width).size


class BatchHarness(wiring.Component):
    """The batch-mode top for ``config`` (one translation port is played; others idle).

    Members
    -------
    mmio : ``In(AXI4LiteSignature(12, config.mmio_data_width))``
        The IOMMU's register port, as on :class:`iogate.hdl.iommu.Iommu`.
    host_write, host_read : ``In(MemWriteSignature(32))``, ``In(MemReadSignature(32))``
        The host's ports into the on-chip memory.
    load_addr, load_data, load_en : ``In``
        Write row ``load_addr`` (requests ``LANES*load_addr`` ...) of the request memory;
        lane ``j`` of ``load_data`` is ``request_bits()`` wide, as ``request_layout``
        without the tag.
    count : ``In``
        Requests in the batch, sampled at ``start``.
    start : ``In(1)``
        Pulse: play ``count`` requests from entry 0.
    done : ``Out(1)``
        Cleared by ``start``, set when ``count`` responses have been recorded.
    cycles : ``Out(32)``
        Clock cycles from ``start`` to ``done``.
    read_addr, read_data : ``In``, ``Out``
        Row ``read_addr`` of the response memory, one clock after the address.
    """

    def __init__(self, config=None, *, depth=DEPTH):
        config = Config() if config is None else config
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        if depth < LANES or depth % LANES or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two multiple of {LANES}, not {depth!r}")
        self._config = config
        self._depth = depth
        self.iommu = Iommu(config)
        self.memory = OnChipMemory(base=RAM_BASE, size=RAM_SIZE, addr_width=config.pas,
                                   id_width=ID_WIDTH)
        rows = depth // LANES
        super().__init__({
            "mmio": In(AXI4LiteSignature(MMIO_ADDR_WIDTH, config.mmio_data_width)),
            "host_write": In(MemWriteSignature(HOST_ADDR_WIDTH)),
            "host_read": In(MemReadSignature(HOST_ADDR_WIDTH)),
            "load_addr": In(range(rows)),
            "load_data": In(LANES * request_bits()),
            "load_en": In(1),
            "count": In(range(depth + 1)),
            "start": In(1),
            "done": Out(1),
            "cycles": Out(32),
            "read_addr": In(range(rows)),
            "read_data": Out(LANES * response_bits(config)),
        })

    @property
    def config(self):
        return self._config

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.iommu = iommu = self.iommu
        m.submodules.memory = ram = self.memory
        wiring.connect(m, wiring.flipped(self.mmio), iommu.mmio)
        wiring.connect(m, wiring.flipped(self.host_write), ram.host_write)
        wiring.connect(m, wiring.flipped(self.host_read), ram.host_read)
        wiring.connect(m, iommu.mem, ram.bus)
        for port in list(iommu.tr)[1:]:
            m.d.comb += [port.req.valid.eq(0), port.resp.ready.eq(1)]
        tr = iommu.tr[0]

        rows = self._depth // LANES
        req_w, resp_w = request_bits(), response_bits(cfg)
        lane_bits = (LANES - 1).bit_length()
        m.submodules.requests = requests = memory.Memory(
            shape=LANES * req_w, depth=rows, init=[])
        m.submodules.responses = responses = memory.Memory(
            shape=LANES * resp_w, depth=rows, init=[])
        load = requests.write_port()
        m.d.comb += [load.addr.eq(self.load_addr), load.data.eq(self.load_data),
                     load.en.eq(self.load_en)]

        running = Signal()
        count = Signal.like(self.count)
        issued = Signal(range(self._depth + 1))
        recorded = Signal(range(self._depth + 1))
        tags = 1 << cfg.tag_width
        busy = Signal(tags)               # tags in flight: not reused until answered

        # -- Player. The read port addresses the row of the request offered next cycle, so
        # the current one is on its output with no bubble between requests.
        fetch = requests.read_port(transparent_for=())
        tag = Signal(cfg.tag_width)
        m.d.comb += tag.eq(issued[:cfg.tag_width])
        fire = Signal()
        m.d.comb += [
            tr.req.valid.eq(running & (issued < count) & ~busy.bit_select(tag, 1)),
            fire.eq(tr.req.valid & tr.req.ready),
            fetch.en.eq(1),
            fetch.addr.eq((issued + fire)[lane_bits:]),
        ]
        with m.If(self.start):
            m.d.comb += fetch.addr.eq(0)
        row = fetch.data
        lane = Signal(req_w)
        with m.Switch(issued[:lane_bits]):
            for j in range(LANES):
                with m.Case(j):
                    m.d.comb += lane.eq(row[j * req_w:(j + 1) * req_w])
        m.d.comb += [tr.req.payload.eq(lane << cfg.tag_width | tag)]

        # -- Recorder: every response, in arrival order, into lane ``recorded % LANES``.
        store = responses.write_port(granularity=resp_w)
        m.d.comb += [
            tr.resp.ready.eq(1),
            store.addr.eq(recorded[lane_bits:]),
            store.data.eq(tr.resp.payload.as_value().replicate(LANES)),
        ]
        with m.If(tr.resp.valid):
            m.d.comb += store.en.eq(1 << recorded[:lane_bits])
        readback = responses.read_port(transparent_for=())
        m.d.comb += [readback.addr.eq(self.read_addr), self.read_data.eq(readback.data)]

        set_mask = Signal(tags)
        clear_mask = Signal(tags)
        with m.If(fire):
            m.d.comb += set_mask.eq(1 << tag)
        with m.If(tr.resp.valid):
            m.d.comb += clear_mask.eq(1 << tr.resp.payload.tag)
        m.d.sync += busy.eq((busy | set_mask) & ~clear_mask)
        with m.If(fire):
            m.d.sync += issued.eq(issued + 1)
        with m.If(tr.resp.valid):
            m.d.sync += recorded.eq(recorded + 1)
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(recorded == count):
                m.d.sync += [running.eq(0), self.done.eq(1)]
        with m.If(self.start):
            m.d.sync += [running.eq(1), self.done.eq(0), count.eq(self.count), issued.eq(0),
                         recorded.eq(0), busy.eq(0), self.cycles.eq(0)]
        return m
