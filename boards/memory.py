"""On-chip memory for the IOMMU's tables and queues: an AXI4 subordinate plus a host port.

On a board the device directory, the page tables and the command and fault queues live in
the FPGA's own RAM (block RAM, or the iCE40 UP5K's four 256 Kbit SPRAMs). The IOMMU's
``mem`` manager reaches it over AXI4; the host bridge reaches it over two simple client
ports (the ones :mod:`iogate.hdl.mem_master` gives the IOMMU's walkers), so that the host can write
tables while the IOMMU runs, as a CPU writes DRAM.

The memory occupies ``[base, base + size)`` of the physical address space; an access outside
answers DECERR (AMBA AXI spec A3.4.4: "no slave at the transaction address"), which the
IOMMU turns into the access-fault causes of its structure (RISC-V IOMMU spec "Fault/Event-Queue
(FQ)": 1/5/7 for a page table, 257 for the device directory). So a board can show access faults by
pointing a table outside the RAM.

The RAM has one port: reads and writes from the three sources are served one transaction
at a time (AXI4 lets a subordinate order its read and write channels as it likes), in
round-robin order so that a busy walker cannot starve the host and the reverse. Every
burst type is accepted (FIXED, INCR, WRAP, ``*size`` up to 8 bytes); a burst never crosses
a 4 KiB boundary (AXI spec A3.4.1), so only the low twelve address bits advance.
"""

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from iogate.hdl.arbiter import RoundRobin
from iogate.hdl.axi import AXI4Signature, Burst, Resp
from iogate.hdl.mem_master import MemReadSignature, MemWriteSignature

__all__ = ["OnChipMemory", "SPRAM_BYTES"]

#: The iCE40 UP5K's single-port RAM: four SB_SPRAM256KA of 16K x 16 bits, side by side.
SPRAM_BYTES = 128 * 1024

#: Address width of the host ports: the host bridge reaches the low 4 GiB, where the memory
#: must then be.
HOST_ADDR_WIDTH = 32


class OnChipMemory(wiring.Component):
    """``size`` bytes of RAM at ``base``, 64 bits wide.

    Parameters
    ----------
    base : int
        First byte address; a multiple of ``size``.
    size : int
        Bytes; a power of two of at least 4 KiB (so that no burst crosses its end).
    addr_width : int
        Width of the AXI4 addresses (the IOMMU's ``capabilities.PAS``).
    id_width : int
        Width of the AXI4 IDs.
    spram : bool
        Build the RAM from the iCE40 UP5K's SB_SPRAM256KA primitives (``size`` must then be
        128 KiB). Otherwise it is an ``amaranth.lib.memory.Memory``, which synthesis maps to
        block RAM and which simulates anywhere.

    Members
    -------
    bus : ``In(AXI4Signature(addr_width, 64, id_width))``
        The subordinate port the IOMMU's ``mem`` manager connects to.
    host_read : ``In(MemReadSignature(32))``
        Doubleword reads for the host bridge (``err`` outside the RAM).
    host_write : ``In(MemWriteSignature(32))``
        Byte-strobed doubleword writes for the host bridge (``err`` outside the RAM).

    Raises
    ------
    TypeError
        If ``base`` or ``size`` is not an integer.
    ValueError
        If ``size`` is not a power of two of at least 4096, ``base`` not a multiple of it,
        the memory not below ``2**addr_width`` and 4 GiB (the host ports' reach), or
        ``spram`` is asked for another size than 128 KiB.
    """

    def __init__(self, *, base, size, addr_width, id_width=4, spram=False):
        try:
            for name, value in (("base", base), ("size", size)):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{name} must be an integer, not {value!r}")
            if size < 4096 or size & (size - 1):
                raise ValueError(f"size must be a power of two of at least 4096, not {size!r}")
            if base < 0 or base % size:
                raise ValueError(f"base must be a non-negative multiple of size ({size:#x}), "
                                 f"not {base:#x}")
            if base + size > 1 << min(addr_width, HOST_ADDR_WIDTH):
                raise ValueError(f"base + size ({base + size:#x}) must fit in "
                                 f"{min(addr_width, HOST_ADDR_WIDTH)} address bits")
            if spram and size != SPRAM_BYTES:
                raise ValueError(f"spram needs size {SPRAM_BYTES:#x}, not {size:#x}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._base = base
        self._size = size
        self._spram = bool(spram)
        super().__init__({
            "bus": In(AXI4Signature(addr_width, 64, id_width)),
            "host_read": In(MemReadSignature(HOST_ADDR_WIDTH)),
            "host_write": In(MemWriteSignature(HOST_ADDR_WIDTH)),
        })

    @property
    def base(self):
        return self._base

    @property
    def size(self):
        return self._size

    def _ram(self, m, addr, wdata, wstrb, we, re, rdata):
        """The single RAM port: ``rdata`` is the word at ``addr`` the cycle after ``re``."""
        depth = self._size // 8
        if self._spram:
            # Each SPRAM holds 16 bits of every word; MASKWREN has one bit per nibble, so
            # a byte strobe enables two.
            for i in range(4):
                mask = Cat(wstrb[2 * i], wstrb[2 * i], wstrb[2 * i + 1], wstrb[2 * i + 1])
                m.submodules[f"spram{i}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr, i_DATAIN=wdata[16 * i:16 * i + 16], i_MASKWREN=mask,
                    i_WREN=we, i_CHIPSELECT=we | re, i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                    o_DATAOUT=rdata[16 * i:16 * i + 16])
            return
        m.submodules.ram = ram = memory.Memory(shape=64, depth=depth, init=[])
        wr = ram.write_port(granularity=8)
        rd = ram.read_port(transparent_for=())
        m.d.comb += [wr.addr.eq(addr), wr.data.eq(wdata), wr.en.eq(Mux(we, wstrb, 0)),
                     rd.addr.eq(addr), rd.en.eq(re), rdata.eq(rd.data)]

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        log2_size = (self._size - 1).bit_length()

        def hit(address):
            # Whether the RAM holds ``address``: its bits above the RAM's size are base's.
            return address[log2_size:] == self._base >> log2_size

        # The current beat's offset in the RAM and whether the access is inside it. A
        # burst stays inside one 4 KiB block (AXI A3.4.1), and the RAM is a whole number
        # of those blocks, so ``inside`` holds for a whole burst.
        offset = Signal(log2_size)
        inside = Signal()
        word = offset[3:]

        ram_wdata = Signal(64)
        ram_wstrb = Signal(8)
        ram_we = Signal()
        ram_re = Signal()
        ram_rdata = Signal(64)
        # Read data holds until the RAM is next enabled, and each transaction has the RAM
        # to itself, so a beat is answered straight from the RAM's output.
        self._ram(m, word, ram_wdata, ram_wstrb, ram_we, ram_re, ram_rdata)

        # The AXI burst being served. The reset values are what a manager of single
        # doubleword beats always sends (the IOMMU's): where it does, synthesis finds the
        # register constant and drops the burst logic.
        axi_id = Signal.like(bus.arid)
        length = Signal(8)              # AxLEN: beats - 1
        beats = Signal(8)               # beats left after this one
        size = Signal(3, init=3)
        burst = Signal(Burst, init=Burst.INCR)
        low = offset[:min(12, log2_size)]
        step = Signal(12)
        wrap_mask = Signal(12)          # the wrap boundary: (AxLEN + 1) beats (A3.4.1)
        m.d.comb += [step.eq(1 << size), wrap_mask.eq(((length + 1) << size) - 1)]
        incremented = Signal(12)
        next_low = Signal(12)
        m.d.comb += incremented.eq(low + step)
        with m.Switch(burst):
            with m.Case(Burst.FIXED):
                m.d.comb += next_low.eq(low)
            with m.Case(Burst.WRAP):
                m.d.comb += next_low.eq((low & ~wrap_mask) | (incremented & wrap_mask))
            with m.Default():
                m.d.comb += next_low.eq(incremented)

        # Round-robin over the four sources: AR, AW, host read, host write.
        valids = [bus.arvalid, bus.awvalid, self.host_read.req.valid,
                  self.host_write.req.valid]
        m.submodules.arbiter = arbiter = RoundRobin(4, last=3)
        m.d.comb += arbiter.requests.eq(Cat(valids))
        grant, any_req = arbiter.grant, arbiter.valid

        host_r = self.host_read.req.payload
        host_w = self.host_write.req.payload
        # Outputs that only matter with their ``valid``: driven in every state, so that
        # no state decodes them (64 multiplexers saved per data bus).
        m.d.comb += [
            bus.rdata.eq(ram_rdata), bus.rid.eq(axi_id), bus.rlast.eq(beats == 0),
            bus.rresp.eq(Mux(inside, Resp.OKAY, Resp.DECERR)), bus.bid.eq(axi_id),
            bus.bresp.eq(Mux(inside, Resp.OKAY, Resp.DECERR)),
            self.host_read.resp.payload.data.eq(ram_rdata),
            self.host_read.resp.payload.err.eq(~inside),
            self.host_write.resp.payload.err.eq(~inside),
            ram_wstrb.eq(Mux(self.host_write.req.ready, host_w.strb, bus.wstrb)),
            ram_wdata.eq(Mux(self.host_write.req.ready, host_w.data, bus.wdata)),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += arbiter.advance.eq(any_req)
                with m.If(any_req & (grant == 0)):
                    m.d.comb += bus.arready.eq(1)
                    m.d.sync += [offset.eq(bus.araddr), inside.eq(hit(bus.araddr)),
                                 axi_id.eq(bus.arid), beats.eq(bus.arlen),
                                 length.eq(bus.arlen), size.eq(bus.arsize),
                                 burst.eq(bus.arburst)]
                    m.next = "AXI_READ"
                with m.If(any_req & (grant == 1)):
                    m.d.comb += bus.awready.eq(1)
                    m.d.sync += [offset.eq(bus.awaddr), inside.eq(hit(bus.awaddr)),
                                 axi_id.eq(bus.awid), beats.eq(bus.awlen),
                                 length.eq(bus.awlen), size.eq(bus.awsize),
                                 burst.eq(bus.awburst)]
                    m.next = "AXI_WRITE"
                with m.If(any_req & (grant == 2)):
                    m.d.comb += self.host_read.req.ready.eq(1)
                    m.d.sync += [offset.eq(host_r.addr), inside.eq(hit(host_r.addr))]
                    m.next = "HOST_READ"
                with m.If(any_req & (grant == 3)):
                    # Taken only in HOST_WRITE: until then the payload stays on the
                    # stream (it holds while valid and not ready), so the data needs no
                    # copy.
                    m.d.sync += [offset.eq(host_w.addr), inside.eq(hit(host_w.addr))]
                    m.next = "HOST_WRITE"

            # -- AXI read burst: read, then the beat; DECERR beats read nothing.
            with m.State("AXI_READ"):
                m.d.comb += ram_re.eq(inside)
                m.next = "AXI_READ_BEAT"
            with m.State("AXI_READ_BEAT"):
                m.d.comb += bus.rvalid.eq(1)
                with m.If(bus.rready):
                    m.d.sync += [beats.eq(beats - 1), low.eq(next_low)]
                    m.next = "AXI_READ"
                    with m.If(beats == 0):
                        m.next = "IDLE"

            # -- AXI write burst: one beat a cycle while the manager has data.
            with m.State("AXI_WRITE"):
                m.d.comb += bus.wready.eq(1)
                with m.If(bus.wvalid):
                    m.d.comb += ram_we.eq(inside)
                    m.d.sync += [beats.eq(beats - 1), low.eq(next_low)]
                    # WLAST ends the burst; the count is the check for a manager that
                    # forgets it.
                    with m.If(bus.wlast | (beats == 0)):
                        m.next = "AXI_WRITE_RESP"
            with m.State("AXI_WRITE_RESP"):
                m.d.comb += bus.bvalid.eq(1)
                with m.If(bus.bready):
                    m.next = "IDLE"

            # -- Host read: read, then answer.
            with m.State("HOST_READ"):
                m.d.comb += ram_re.eq(inside)
                m.next = "HOST_READ_RESP"
            with m.State("HOST_READ_RESP"):
                m.d.comb += self.host_read.resp.valid.eq(1)
                with m.If(self.host_read.resp.ready):
                    m.next = "IDLE"

            # -- Host write: written straight from the request stream, then taken.
            with m.State("HOST_WRITE"):
                m.d.comb += [self.host_write.req.ready.eq(1), ram_we.eq(inside)]
                m.next = "HOST_WRITE_RESP"
            with m.State("HOST_WRITE_RESP"):
                m.d.comb += self.host_write.resp.valid.eq(1)
                with m.If(self.host_write.resp.ready):
                    m.next = "IDLE"
        return m
