"""The IOMMU's memory port: implicit accesses to in-memory structures over one AXI4 manager.

The device-directory walker, the page-table walker, the command queue and the fault queue
make *implicit* memory accesses (RISC-V IOMMU spec "Process to translate an IOVA", "Command-Queue
(CQ)" and "Fault/Event-Queue (FQ)"). Each is a client with
a small request/response pair of streams; :class:`MemoryMaster` arbitrates between them.

* **Reads** (``clients``): one single-beat, 8-byte read at a time on the AR/R channels
  (``arlen=0``, ``arsize=3``, ``INCR``), clients served round-robin.
* **Writes** (``write_clients``): one single-beat write at a time on the AW/W/B channels
  (``awlen=0``, ``INCR``, ``wlast=1``), clients served round-robin. A client gives the
  byte address, the 64-bit data word in its byte lanes and ``strb``, one bit per lane. A
  write whose strobes cover both 4-byte halves is an 8-byte write (``awsize=3``) at an
  8-byte aligned address; one whose strobes stay in one half is a 4-byte write
  (``awsize=2``) at the address of that half. So the 4-byte store of IOFENCE.C (spec
  "IOMMU Command-queue Fence commands")
  at an address with bit 2 set is ``addr``, ``data << 32`` and ``strb=0xF0``; a 32-byte
  fault record (spec "Fault/Event-Queue (FQ)") is four 8-byte writes.

The read and write sides are independent (AXI4 orders nothing between its read and write
channels, and no client here reads back what another writes through this port).

A read or write answered with ``SLVERR`` or ``DECERR`` comes back to its client with
``err=1``: the client turns it into the fault its structure calls for (257 for a DDT
entry, 1/5/7 for a PTE, ``cqmf`` for a command fetch or the IOFENCE.C store, ``fqmf`` for a
fault record). Nothing waits on ``rlast`` or checks ``rid``/``bid``: with one access of
each kind in flight, a subordinate that gets those wrong cannot hang a client. With no
write client the write channels idle with ``bready=1``, so that a stray response is
always drained.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.arbiter import RoundRobin
from iogate.hdl.axi import AXI4Signature, Burst, Resp

__all__ = ["MemReadSignature", "MemWriteSignature", "MemoryMaster", "DATA_WIDTH",
           "ID_WIDTH", "READ_RESPONSE", "WRITE_RESPONSE", "read_request_layout",
           "write_request_layout"]

#: The memory data bus width: one doubleword, the size of every entry the IOMMU reads.
DATA_WIDTH = 64
#: AXI ID width of the memory port.
ID_WIDTH = 4


def read_request_layout(addr_width):
    return data.StructLayout({"addr": addr_width})


def write_request_layout(addr_width):
    """A write: byte address, the doubleword in its byte lanes, one strobe per lane."""
    return data.StructLayout({"addr": addr_width, "data": DATA_WIDTH,
                              "strb": DATA_WIDTH // 8})


#: A read's answer: the doubleword, and whether the access faulted.
READ_RESPONSE = data.StructLayout({"data": DATA_WIDTH, "err": 1})

#: A write's answer: whether the access faulted.
WRITE_RESPONSE = data.StructLayout({"err": 1})


def _check_addr_width(addr_width):
    if not isinstance(addr_width, int) or not 1 <= addr_width <= 64:
        raise ValueError(f"addr_width must be an integer between 1 and 64, "
                         f"not {addr_width!r}")


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
        _check_addr_width(addr_width)
        self.addr_width = addr_width
        super().__init__({
            "req": Out(stream.Signature(read_request_layout(addr_width))),
            "resp": In(stream.Signature(READ_RESPONSE)),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"MemReadSignature({self.addr_width})"


class MemWriteSignature(wiring.Signature):
    """One client's write port, from the client's view.

    Members
    -------
    req : ``Out(stream.Signature(write_request_layout(addr_width)))``
        ``addr``: an 8-byte aligned address with ``strb`` covering both halves, or the
        4-byte aligned address of the half ``strb`` stays in. ``data`` is little-endian
        (``fctl.BE=0``), byte ``i`` in lane ``i``.
    resp : ``In(stream.Signature(WRITE_RESPONSE))``
        ``err`` on an access fault.
    """

    def __init__(self, addr_width):
        _check_addr_width(addr_width)
        self.addr_width = addr_width
        super().__init__({
            "req": Out(stream.Signature(write_request_layout(addr_width))),
            "resp": In(stream.Signature(WRITE_RESPONSE)),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"MemWriteSignature({self.addr_width})"


class MemoryMaster(wiring.Component):
    """Arbitrates read and write clients onto one AXI4 manager port.

    Clients of each kind are served in round-robin order, so that a busy client cannot
    starve another (a walker that spins on misses must not block the queues).

    Parameters
    ----------
    addr_width : int
        Physical address width (``capabilities.PAS``).
    clients : int
        Number of read clients.
    write_clients : int
        Number of write clients (0 leaves the write channels idle).

    Members
    -------
    bus : ``Out(AXI4Signature(addr_width, 64, 4))``
        The AXI4 manager port.
    clients : ``In(MemReadSignature(addr_width)).array(clients)``
        The read client ports; read client ``i`` uses ARID ``i``.
    write_clients : ``In(MemWriteSignature(addr_width)).array(write_clients)``
        The write client ports (only when ``write_clients`` > 0); write client ``i`` uses
        AWID ``i``.

    Raises
    ------
    ValueError
        If ``clients`` is not between 1 and 16, or ``write_clients`` not between 0 and 16
        (the ID space).
    """

    def __init__(self, addr_width, clients, write_clients=0):
        try:
            if not isinstance(clients, int) or not 1 <= clients <= 1 << ID_WIDTH:
                raise ValueError(f"clients must be an integer between 1 and {1 << ID_WIDTH}, "
                                 f"not {clients!r}")
            if not isinstance(write_clients, int) or not 0 <= write_clients <= 1 << ID_WIDTH:
                raise ValueError(f"write_clients must be an integer between 0 and "
                                 f"{1 << ID_WIDTH}, not {write_clients!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._addr_width = addr_width
        self._clients = clients
        self._write_clients = write_clients
        members = {
            "bus": Out(AXI4Signature(addr_width, DATA_WIDTH, ID_WIDTH)),
            "clients": In(MemReadSignature(addr_width)).array(clients),
        }
        if write_clients:
            members["write_clients"] = In(MemWriteSignature(addr_width)).array(write_clients)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        self._elaborate_reads(m)
        if self._write_clients:
            self._elaborate_writes(m)
        else:
            bus = self.bus
            m.d.comb += [
                bus.awvalid.eq(0), bus.wvalid.eq(0), bus.bready.eq(1),
                bus.awlen.eq(0), bus.awsize.eq(3), bus.awburst.eq(Burst.INCR),
                bus.wlast.eq(1), bus.wstrb.eq(0xFF),
            ]
        return m

    def _elaborate_reads(self, m):
        n = self._clients
        bus = self.bus

        # Fixed read shape: one beat of 8 bytes.
        m.d.comb += [bus.arlen.eq(0), bus.arsize.eq(3), bus.arburst.eq(Burst.INCR)]

        owner = Signal(range(n))
        addr = Signal(self._addr_width)
        m.submodules.read_arbiter = arbiter = RoundRobin(n)
        m.d.comb += arbiter.requests.eq(Cat(c.req.valid for c in self.clients))
        grant, any_req = arbiter.grant, arbiter.valid

        with m.FSM(name="read"):
            with m.State("IDLE"):
                with m.If(any_req):
                    for i in range(n):
                        with m.If(grant == i):
                            m.d.comb += self.clients[i].req.ready.eq(1)
                            m.d.sync += addr.eq(self.clients[i].req.payload.addr)
                    m.d.comb += arbiter.advance.eq(1)
                    m.d.sync += owner.eq(grant)
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

    def _elaborate_writes(self, m):
        n = self._write_clients
        bus = self.bus
        clients = self.write_clients

        req = Signal(write_request_layout(self._addr_width))
        owner = Signal(range(n))
        aw_done = Signal()                   # the address was taken
        w_done = Signal()                    # the data beat was taken
        m.submodules.write_arbiter = arbiter = RoundRobin(n)
        m.d.comb += arbiter.requests.eq(Cat(c.req.valid for c in clients))
        grant, any_req = arbiter.grant, arbiter.valid

        # Strobes in one half only: a 4-byte write (AXI A3.4.1 narrow transfer).
        narrow = (req.strb[:4] == 0) | (req.strb[4:] == 0)
        m.d.comb += [
            bus.awlen.eq(0), bus.awburst.eq(Burst.INCR), bus.wlast.eq(1),
            bus.awsize.eq(Mux(narrow, 2, 3)),
            bus.awaddr.eq(req.addr), bus.awid.eq(owner),
            bus.wdata.eq(req.data), bus.wstrb.eq(req.strb),
        ]

        with m.FSM(name="write"):
            with m.State("IDLE"):
                with m.If(any_req):
                    for i in range(n):
                        with m.If(grant == i):
                            m.d.comb += clients[i].req.ready.eq(1)
                            m.d.sync += req.eq(clients[i].req.payload)
                    m.d.comb += arbiter.advance.eq(1)
                    m.d.sync += [owner.eq(grant), aw_done.eq(0), w_done.eq(0)]
                    m.next = "AW_W"
            with m.State("AW_W"):
                # Address and data are offered together; each channel completes on its
                # own handshake (AXI A3.3.1: neither may wait for the other).
                m.d.comb += [bus.awvalid.eq(~aw_done), bus.wvalid.eq(~w_done)]
                aw_now = aw_done | bus.awready
                w_now = w_done | bus.wready
                m.d.sync += [aw_done.eq(aw_now), w_done.eq(w_now)]
                with m.If(aw_now & w_now):
                    m.next = "B"
            with m.State("B"):
                for i in range(n):
                    with m.If(owner == i):
                        m.d.comb += [
                            clients[i].resp.valid.eq(bus.bvalid),
                            bus.bready.eq(clients[i].resp.ready),
                        ]
                with m.If(bus.bvalid & bus.bready):
                    m.next = "IDLE"

        err = (bus.bresp == Resp.SLVERR) | (bus.bresp == Resp.DECERR)
        for i in range(n):
            m.d.comb += clients[i].resp.payload.err.eq(err)
