"""The IOMMU's memory port: implicit reads of in-memory structures over one AXI4 manager.

The device-directory walker and the page-table walker (and, later, the command and fault
queues) make *implicit* memory accesses (RISC-V IOMMU spec 3.3 and 4). Each is a client
with a small request/response pair of streams; :class:`MemReadMaster` arbitrates between
them and runs one single-beat, 8-byte read at a time on the AXI4 bus (``arlen=0``,
``arsize=3``, ``INCR``).

A read answered with ``SLVERR`` or ``DECERR`` comes back to its client with ``err=1``: the
client turns it into the access fault its structure calls for (257 for a DDT entry, 1/5/7
for a PTE). Nothing waits on ``rlast``, so a misbehaving subordinate that answers a
single-beat read without it cannot hang the walk.

The write channels are present for the fault queue to come, and idle: ``awvalid=wvalid=0``
and ``bready=1`` so that a stray response is always drained.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4Signature, Burst, Resp

__all__ = ["MemReadSignature", "MemReadMaster", "DATA_WIDTH", "ID_WIDTH"]

#: The memory data bus width: one doubleword, the size of every entry the IOMMU reads.
DATA_WIDTH = 64
#: AXI ID width of the memory port.
ID_WIDTH = 4


def read_request_layout(addr_width):
    return data.StructLayout({"addr": addr_width})


#: A read's answer: the doubleword, and whether the access faulted.
READ_RESPONSE = data.StructLayout({"data": DATA_WIDTH, "err": 1})


class MemReadSignature(wiring.Signature):
    """One client's read port, from the client's view.

    Members
    -------
    req : ``Out(stream.Signature(StructLayout({"addr": addr_width})))``
        The byte address of a naturally aligned doubleword.
    resp : ``In(stream.Signature(READ_RESPONSE))``
        The doubleword read (little-endian, ``fctl.BE=0``) and ``err`` on an access fault.
    """

    def __init__(self, addr_width):
        if not isinstance(addr_width, int) or not 1 <= addr_width <= 64:
            raise ValueError(f"addr_width must be an integer between 1 and 64, "
                             f"not {addr_width!r}")
        self.addr_width = addr_width
        super().__init__({
            "req": Out(stream.Signature(read_request_layout(addr_width))),
            "resp": In(stream.Signature(READ_RESPONSE)),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"MemReadSignature({self.addr_width})"


class MemReadMaster(wiring.Component):
    """Arbitrates read clients onto one AXI4 manager port, one read at a time.

    Clients are served in round-robin order, so that a busy client cannot starve another
    (a walker that spins on misses must not block the queues that come next).

    Parameters
    ----------
    addr_width : int
        Physical address width (``capabilities.PAS``).
    clients : int
        Number of read clients.

    Members
    -------
    bus : ``Out(AXI4Signature(addr_width, 64, 4))``
        The AXI4 manager port.
    clients : ``In(MemReadSignature(addr_width)).array(clients)``
        The client ports; client ``i`` uses AXI ID ``i``.

    Raises
    ------
    ValueError
        If ``clients`` is not between 1 and 16 (the ID space).
    """

    def __init__(self, addr_width, clients):
        try:
            if not isinstance(clients, int) or not 1 <= clients <= 1 << ID_WIDTH:
                raise ValueError(f"clients must be an integer between 1 and {1 << ID_WIDTH}, "
                                 f"not {clients!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._addr_width = addr_width
        self._clients = clients
        super().__init__({
            "bus": Out(AXI4Signature(addr_width, DATA_WIDTH, ID_WIDTH)),
            "clients": In(MemReadSignature(addr_width)).array(clients),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._clients
        bus = self.bus

        # Idle write channels: the fault queue will drive them.
        m.d.comb += [
            bus.awvalid.eq(0), bus.wvalid.eq(0), bus.bready.eq(1),
            bus.awlen.eq(0), bus.awsize.eq(3), bus.awburst.eq(Burst.INCR),
            bus.wlast.eq(1), bus.wstrb.eq(0xFF),
        ]

        # Fixed read shape: one beat of 8 bytes.
        m.d.comb += [bus.arlen.eq(0), bus.arsize.eq(3), bus.arburst.eq(Burst.INCR)]

        owner = Signal(range(n))
        last = Signal(range(n))              # the last client served, for round-robin
        addr = Signal(self._addr_width)

        # Round-robin grant: the first requesting client after `last`. `n` is small (the
        # IOMMU's own walkers and queues), so the rotate-and-search is a few gates.
        grant = Signal(range(n))
        any_req = Signal()
        for step in reversed(range(n)):
            for cur in range(n):
                idx = (cur + 1 + step) % n
                with m.If((last == cur) & self.clients[idx].req.valid):
                    m.d.comb += [grant.eq(idx), any_req.eq(1)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(any_req):
                    for i in range(n):
                        with m.If(grant == i):
                            m.d.comb += self.clients[i].req.ready.eq(1)
                            m.d.sync += addr.eq(self.clients[i].req.payload.addr)
                    m.d.sync += [owner.eq(grant), last.eq(grant)]
                    m.next = "AR"
            with m.State("AR"):
                m.d.comb += [bus.arvalid.eq(1), bus.araddr.eq(addr), bus.arid.eq(owner)]
                with m.If(bus.arready):
                    m.next = "R"
            with m.State("R"):
                # The beat goes straight to its client; rready follows the client's ready
                # so a client that is not listening back-pressures the bus, not a buffer.
                for i in range(n):
                    with m.If(owner == i):
                        m.d.comb += [
                            self.clients[i].resp.valid.eq(bus.rvalid),
                            bus.rready.eq(self.clients[i].resp.ready),
                        ]
                with m.If(bus.rvalid & bus.rready):
                    m.next = "IDLE"

        err = (bus.rresp == Resp.SLVERR) | (bus.rresp == Resp.DECERR)
        for i in range(n):
            m.d.comb += [
                self.clients[i].resp.payload.data.eq(bus.rdata),
                self.clients[i].resp.payload.err.eq(err),
            ]
        return m
