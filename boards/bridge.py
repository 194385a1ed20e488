"""The host bridge: framed commands from a UART byte stream onto the IOMMU and its memory.

The host (:mod:`iogate.cosim.targets.board`) sends requests in the frame format of
:mod:`iogate.boards.protocol`; the bridge collects one, carries it out, and sends its reply:

* ``MMIO_READ``/``MMIO_WRITE`` become AXI4-Lite transactions on the IOMMU's register page.
  Over a 32-bit register interface an 8-byte access is two 4-byte ones: a write sends the
  high word first, because the fields whose write starts something (``ddtp.iommu_mode``,
  ``tr_req_ctl.Go``, ``cqcsr.cqen``...; RISC-V IOMMU spec "Memory-mapped register interface") sit in
  the low word and must see the whole new value; a read takes the low word first.
* ``MEM_READ``/``MEM_WRITE``/``MEM_FILL`` are doubleword accesses to the on-chip memory
  (:class:`iogate.boards.memory.OnChipMemory`).
* ``TRANSLATE`` runs the DMA requester (:class:`iogate.boards.requester.Requester`).
* ``IDENT`` answers what the host needs before it can allocate tables: where the on-chip
  memory is and how big, and the clock.

One shift register, ``frame``, holds the request's payload as it arrives and then the
reply's payload as it leaves (each op has read its arguments before it writes its reply),
so the bridge costs one frame of flip-flops and no multiplexer per frame byte: bytes enter
at the top and the frame is shifted on with zeros until the payload sits at bit 0, where the
layouts of :mod:`iogate.boards.protocol` view it; replies leave from the bottom. A UART break
(``abort``, from the receiver's framing error) drops a request still coming in, so a host
that was interrupted regains frame sync by sending one.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.axi import AXI4LiteSignature
from iogate.hdl.mem_master import MemReadSignature, MemWriteSignature
from iogate.hdl.regfile import MMIO_ADDR_WIDTH

from iogate.boards import protocol
from iogate.boards.memory import HOST_ADDR_WIDTH
from iogate.boards.protocol import MAGIC, REPLIES, REQUESTS, VERSION, Op, Status
from iogate.boards.requester import COMMAND, RESULT

__all__ = ["Bridge", "FRAME_BYTES"]

#: Bytes in the frame register: the longest request or reply payload, but for TRANSLATE's
#: reply, which is sent from the requester's result.
FRAME_BYTES = max(protocol.MAX_REQUEST_BYTES,
                  *(protocol.reply_bytes(o) for o in Op if o != Op.TRANSLATE))


class Bridge(wiring.Component):
    """Serves :mod:`iogate.boards.protocol` requests.

    Parameters
    ----------
    mmio_data_width : int
        The IOMMU's AXI4-Lite data width, 32 or 64 (``Config.mmio_data_width``).
    ram_base, ram_size : int
        Where the on-chip memory is, for ``IDENT``.
    clk_hz : int
        The clock frequency, for ``IDENT``.

    Members
    -------
    rx : ``In(stream.Signature(8))``
        Bytes from the host (the UART receiver).
    abort : ``In(1)``
        Drop the request coming in, if any (the receiver's ``frame_error``: a break).
    tx : ``Out(stream.Signature(8))``
        Bytes to the host (the UART transmitter).
    mmio : ``Out(AXI4LiteSignature(12, mmio_data_width))``
        Manager of the IOMMU's register page.
    mem_read : ``Out(MemReadSignature(32))``
        Doubleword reads of the on-chip memory.
    mem_write : ``Out(MemWriteSignature(32))``
        Doubleword writes of the on-chip memory.
    translate : ``Out(stream.Signature(requester.COMMAND))``
        Runs for the DMA requester; taken when the run is over.
    result : ``In(requester.RESULT)``
        The outcome of the run last taken.

    Raises
    ------
    TypeError
        If an argument is not an integer.
    ValueError
        If ``mmio_data_width`` is not 32 or 64, ``ram_size`` is not a power of two of at
        least 4 KiB, ``ram_base`` not a multiple of it with the memory in the low 4 GiB,
        or ``clk_hz`` wider than 32 bits.
    """

    def __init__(self, *, mmio_data_width, ram_base, ram_size, clk_hz):
        try:
            for name, value in (("mmio_data_width", mmio_data_width), ("ram_base", ram_base),
                                ("ram_size", ram_size), ("clk_hz", clk_hz)):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{name} must be an integer, not {value!r}")
            if mmio_data_width not in (32, 64):
                raise ValueError(f"mmio_data_width must be 32 or 64, not {mmio_data_width!r}")
            if ram_size < 4096 or ram_size & (ram_size - 1):
                raise ValueError(f"ram_size must be a power of two of at least 4096, "
                                 f"not {ram_size!r}")
            if ram_base < 0 or ram_base % ram_size or ram_base + ram_size > 1 << 32:
                raise ValueError(f"ram_base must be a multiple of ram_size in the low 4 GiB, "
                                 f"not {ram_base:#x}")
            if not 0 <= clk_hz < 1 << 32:
                raise ValueError(f"clk_hz must fit in 32 bits, not {clk_hz!r}")
        except (TypeError, ValueError):
            # A refused component is not an unused one: no UnusedElaboratable.
            self._MustUse__silence = True
            raise
        self._mmio_data_width = mmio_data_width
        self._ident = dict(magic=MAGIC, version=VERSION, ram_base=ram_base,
                           ram_size_log2=ram_size.bit_length() - 1, clk_hz=clk_hz)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "abort": In(1),
            "tx": Out(stream.Signature(8)),
            "mmio": Out(AXI4LiteSignature(MMIO_ADDR_WIDTH, mmio_data_width)),
            "mem_read": Out(MemReadSignature(HOST_ADDR_WIDTH)),
            "mem_write": Out(MemWriteSignature(HOST_ADDR_WIDTH)),
            "translate": Out(stream.Signature(COMMAND)),
            "result": In(RESULT),
        })

    def elaborate(self, platform):
        """The bridge: frame lengths, the ports driven from the frame, the reply byte, and
        the state machine that receives a request, carries it out and replies."""
        m = Module()
        b = _Frame(m)
        self._frame_lengths(m, b)
        self._mmio_lanes(m, b)
        self._port_arguments(m, b)
        self._reply_byte(m, b)
        with m.FSM():
            self._receive_states(m, b)
            with m.State("EXEC"):
                self._exec(m, b)
            self._mmio_states(m, b)
            self._memory_states(m, b)
            # -- the DMA requester: the command is taken when the run is over.
            with m.State("TRANSLATE"):
                m.d.comb += self.translate.valid.eq(1)
                with m.If(self.translate.ready):
                    # The result is the requester's from the next cycle on.
                    m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += self.tx.valid.eq(1)
                with m.If(self.tx.ready):
                    m.d.sync += b.count.eq(b.count + 1)
                    with m.If(b.count >= 2):
                        b.shift_in(0)
                    with m.If(b.count == b.reply_last):
                        m.next = "OP"
        return m

    def _frame_lengths(self, m, b):
        """Frame lengths, by op (:mod:`iogate.boards.protocol`): whether the byte coming
        in is an op with a payload, and the index of its request's and reply's last
        bytes."""
        byte = self.rx.payload
        b.known = known = Signal(name="known")          # ``byte`` is an op
        b.has_args = has_args = Signal(name="has_args")  # ... whose request has a payload
        with m.Switch(byte):
            for o in Op:
                with m.Case(o):
                    m.d.comb += [known.eq(1), has_args.eq(protocol.request_bytes(o) != 0)]
        # Index of the request's last byte, and of the reply's.
        b.args_last = args_last = Signal(range(FRAME_BYTES), name="args_last")
        b.reply_last = reply_last = Signal(range(b.frame_end), name="reply_last")
        with m.Switch(b.op):
            for o in Op:
                with m.Case(o):
                    m.d.comb += [args_last.eq(max(protocol.request_bytes(o) - 1, 0)),
                                 reply_last.eq(1 + protocol.reply_bytes(o))]

    def _mmio_lanes(self, m, b):
        """The AXI4-Lite manager's address and write lanes (AXI A3.4.3: a 4-byte access
        uses the byte lanes of its address; over 32 bits an 8-byte access is two)."""
        mmio = self.mmio
        w64 = self._mmio_data_width == 64
        # ``offset`` is copied: a read's data overwrites the frame.
        b.offset = offset = Signal(MMIO_ADDR_WIDTH, name="offset")
        b.eight = eight = Signal(name="eight")      # an 8-byte access
        b.upper = upper = Signal(name="upper")      # over 32 bits: the access to the high word
        b.aw_done = Signal(name="aw_done")
        b.w_done = Signal(name="w_done")
        write_data = b.args(Op.MMIO_WRITE).data
        if w64:
            m.d.comb += [mmio.awaddr.eq(offset), mmio.araddr.eq(offset)]
            with m.If(eight):
                m.d.comb += [mmio.wdata.eq(write_data), mmio.wstrb.eq(0xFF)]
            with m.Else():
                # A 4-byte access uses the byte lanes of its address (AXI A3.4.3).
                m.d.comb += [mmio.wdata.eq(Cat(write_data[:32], write_data[:32])),
                             mmio.wstrb.eq(Mux(offset[2], 0xF0, 0x0F))]
        else:
            word_addr = offset | (upper << 2)
            m.d.comb += [mmio.awaddr.eq(word_addr), mmio.araddr.eq(word_addr),
                         mmio.wdata.eq(write_data.word_select(upper, 32)), mmio.wstrb.eq(0xF)]
        m.d.comb += [mmio.awprot.eq(0), mmio.arprot.eq(0)]

    def _port_arguments(self, m, b):
        """The memory's and the requester's request payloads, straight from the frame."""
        mem_args = b.args(Op.MEM_WRITE)
        b.fill = fill = b.op == Op.MEM_FILL
        m.d.comb += [
            self.mem_read.req.payload.addr.eq(mem_args.addr),
            self.mem_write.req.payload.addr.eq(mem_args.addr),
            # MEM_FILL keeps ``addr`` and ``data`` where MEM_WRITE has them.
            self.mem_write.req.payload.data.eq(mem_args.data),
            self.mem_write.req.payload.strb.eq(Mux(fill, 0xFF, mem_args.strb)),
        ]
        tr_args = b.args(Op.TRANSLATE)
        m.d.comb += [
            self.translate.payload.device_id.eq(tr_args.device_id),
            self.translate.payload.iova.eq(tr_args.iova),
            self.translate.payload.access.eq(tr_args.access),
            self.translate.payload.count.eq(tr_args.count),
        ]

    def _reply_byte(self, m, b):
        """The byte ``tx`` offers: op, status, then the payload (zero unless OK).

        The payload comes from the bottom of the frame, or for TRANSLATE straight from the
        requester's result, which holds until the next run (copying it into the frame
        would cost a multiplexer per bit).
        """
        count, op, status, frame = b.count, b.op, b.status, b.frame
        translated = Signal(REPLIES[Op.TRANSLATE], name="translated")
        results = {name for name, _ in RESULT}
        m.d.comb += [translated[name].eq(self.result[name])
                     for name, _ in REPLIES[Op.TRANSLATE] if name in results]
        # One case per byte of the result, counted from the reply's third byte.
        translated_byte = Signal(8, name="translated_byte")
        with m.Switch(count):
            for i in range(protocol.reply_bytes(Op.TRANSLATE)):
                with m.Case(2 + i):
                    m.d.comb += translated_byte.eq(translated.as_value()[8 * i:8 * i + 8])
        payload = Mux(op == Op.TRANSLATE, translated_byte, frame[:8])
        with m.Switch(count):
            with m.Case(0):
                m.d.comb += self.tx.payload.eq(op)
            with m.Case(1):
                m.d.comb += self.tx.payload.eq(status)
            with m.Default():
                m.d.comb += self.tx.payload.eq(Mux(status == Status.OK, payload, 0))

    def _receive_states(self, m, b):
        """OP, ARGS and ALIGN: take a request's op, then its payload into the frame, then
        shift zeros in until the payload sits at bit 0. A break drops the request."""
        byte = self.rx.payload
        with m.State("OP"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid & b.known):
                m.d.sync += [b.op.eq(byte), b.status.eq(Status.OK), b.count.eq(0)]
                m.next = "EXEC"
                with m.If(b.has_args):
                    m.next = "ARGS"

        with m.State("ARGS"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.abort):
                m.next = "OP"
            with m.Elif(self.rx.valid):
                b.shift_in(byte)
                m.d.sync += b.count.eq(b.count + 1)
                with m.If(b.count == b.args_last):
                    m.next = "ALIGN"

        with m.State("ALIGN"):
            # Zeros in at the top until the payload's first byte is at the bottom.
            with m.If(b.count == FRAME_BYTES):
                m.next = "EXEC"
            with m.Else():
                b.shift_in(0)
                m.d.sync += b.count.eq(b.count + 1)

    def _exec(self, m, b):
        """EXEC: check the request's arguments and start the op (or reply at once)."""
        op, w64 = b.op, self._mmio_data_width == 64
        mem_args = b.args(Op.MEM_WRITE)
        fill_args = b.args(Op.MEM_FILL)
        tr_args = b.args(Op.TRANSLATE)
        m.d.sync += b.count.eq(0)
        m.next = "REPLY"
        with m.Switch(op):
            with m.Case(Op.IDENT):
                # The reply fills the whole frame: nothing to clear.
                for name, value in self._ident.items():
                    m.d.sync += getattr(b.reply(Op.IDENT), name).eq(value)

            with m.Case(Op.MMIO_READ, Op.MMIO_WRITE):
                a = b.args(Op.MMIO_READ)      # offset and size sit alike in both
                size_ok = (a.size == 4) | (a.size == 8)
                aligned = (a.offset & (a.size - 1)) == 0
                in_page = a.offset[MMIO_ADDR_WIDTH:] == 0
                m.d.sync += [b.offset.eq(a.offset), b.eight.eq(a.size == 8),
                             b.aw_done.eq(0), b.w_done.eq(0)]
                with m.If(~(size_ok & aligned & in_page)):
                    b.error(Status.BAD_ARGUMENT)
                with m.Elif(op == Op.MMIO_READ):
                    # The arguments are copied and the frame becomes the reply:
                    # its bytes 3 to 7 are zero since ALIGN, so a 4-byte read over
                    # 32 bits leaves the high word 0.
                    m.d.sync += b.upper.eq(0)
                    m.next = "MMIO_AR"
                with m.Else():
                    # An 8-byte write over 32 bits starts with the high word.
                    m.d.sync += b.upper.eq(0 if w64 else a.size == 8)
                    m.next = "MMIO_AW_W"

            with m.Case(Op.MEM_READ, Op.MEM_WRITE, Op.MEM_FILL):
                with m.If(mem_args.addr[:3] != 0):
                    b.error(Status.BAD_ARGUMENT)
                with m.Elif(op == Op.MEM_READ):
                    m.next = "MEM_READ"
                with m.Elif(~b.fill | (fill_args.count != 0)):
                    m.next = "MEM_WRITE"

            with m.Case(Op.TRANSLATE):
                # Access 3 is not an iogate.hdl.port.Access.
                with m.If(tr_args.access.as_value() == 3):
                    b.error(Status.BAD_ARGUMENT)
                with m.Else():
                    m.next = "TRANSLATE"

    def _mmio_states(self, m, b):
        """The AXI4-Lite transactions of MMIO_READ and MMIO_WRITE (RISC-V IOMMU spec
        "Memory-mapped register interface": a write's high word first, a read's low word first)."""
        mmio = self.mmio
        w64 = self._mmio_data_width == 64
        eight, upper, offset = b.eight, b.upper, b.offset
        read_data = b.reply(Op.MMIO_READ).data
        # -- MMIO reads: AR, then R, once or (8 bytes over 32 bits) twice.
        with m.State("MMIO_AR"):
            m.d.comb += mmio.arvalid.eq(1)
            with m.If(mmio.arready):
                m.next = "MMIO_R"
        with m.State("MMIO_R"):
            m.d.comb += mmio.rready.eq(1)
            with m.If(mmio.rvalid):
                with m.If(mmio.rresp.as_value()[1]):    # SLVERR or DECERR
                    b.error(mmio.rresp.as_value())
                m.next = "REPLY"
                if w64:
                    with m.If(eight):
                        m.d.sync += read_data.eq(mmio.rdata)
                    with m.Else():
                        m.d.sync += read_data.eq(mmio.rdata.word_select(offset[2], 32))
                else:
                    m.d.sync += [read_data.word_select(upper, 32).eq(mmio.rdata),
                                 upper.eq(1)]
                    with m.If(eight & ~upper):
                        m.next = "MMIO_AR"

        # -- MMIO writes: AW and W together (neither may wait for the other, AXI
        # A3.3.1), then B; over 32 bits an 8-byte write goes high word, low word.
        with m.State("MMIO_AW_W"):
            m.d.comb += [mmio.awvalid.eq(~b.aw_done), mmio.wvalid.eq(~b.w_done)]
            aw_now = b.aw_done | mmio.awready
            w_now = b.w_done | mmio.wready
            m.d.sync += [b.aw_done.eq(aw_now), b.w_done.eq(w_now)]
            with m.If(aw_now & w_now):
                m.next = "MMIO_B"
        with m.State("MMIO_B"):
            m.d.comb += mmio.bready.eq(1)
            with m.If(mmio.bvalid):
                with m.If(mmio.bresp.as_value()[1]):
                    b.error(mmio.bresp.as_value())
                m.d.sync += [b.aw_done.eq(0), b.w_done.eq(0), upper.eq(0)]
                m.next = "REPLY"
                if not w64:
                    with m.If(upper):
                        m.next = "MMIO_AW_W"

    def _memory_states(self, m, b):
        """The on-chip memory: one doubleword, or MEM_FILL's ``count`` of them."""
        fill_args = b.args(Op.MEM_FILL)
        with m.State("MEM_READ"):
            m.d.comb += self.mem_read.req.valid.eq(1)
            with m.If(self.mem_read.req.ready):
                m.next = "MEM_READ_RESP"
        with m.State("MEM_READ_RESP"):
            m.d.comb += self.mem_read.resp.ready.eq(1)
            with m.If(self.mem_read.resp.valid):
                # MEM_READ's reply data covers its address: one load, no clearing.
                m.d.sync += b.reply(Op.MEM_READ).data.eq(self.mem_read.resp.payload.data)
                with m.If(self.mem_read.resp.payload.err):
                    b.error(Status.DECERR)
                m.next = "REPLY"
        with m.State("MEM_WRITE"):
            m.d.comb += self.mem_write.req.valid.eq(1)
            with m.If(self.mem_write.req.ready):
                m.next = "MEM_WRITE_RESP"
        with m.State("MEM_WRITE_RESP"):
            m.d.comb += self.mem_write.resp.ready.eq(1)
            with m.If(self.mem_write.resp.valid):
                m.d.sync += [fill_args.addr[3:].eq(fill_args.addr[3:] + 1),
                             fill_args.count.eq(fill_args.count - 1)]
                m.next = "REPLY"
                with m.If(self.mem_write.resp.payload.err):
                    b.error(Status.DECERR)
                with m.Elif(b.fill & (fill_args.count != 1)):
                    m.next = "MEM_WRITE"


class _Frame:
    """One bridge elaboration's request in progress: its op, status, frame and count."""

    def __init__(self, m):
        self._m = m
        self.op = Signal(8, name="op")
        self.status = Signal(8, name="status")
        self.frame = Signal(8 * FRAME_BYTES, name="frame")
        # Bytes in or out so far: up to the longest reply, with its op and status bytes.
        self.frame_end = 2 + max(FRAME_BYTES, protocol.MAX_REPLY_BYTES)
        self.count = Signal(range(self.frame_end + 1), name="count")

    def args(self, o):
        """The frame viewed as ``o``'s request payload."""
        return data.View(REQUESTS[o], self.frame[:REQUESTS[o].size])

    def reply(self, o):
        """The frame viewed as ``o``'s reply payload."""
        return data.View(REPLIES[o], self.frame[:REPLIES[o].size])

    def shift_in(self, byte):
        """Shift ``byte`` in at the top of the frame."""
        self._m.d.sync += self.frame.eq(Cat(self.frame[8:], byte))

    def error(self, why):
        """Report ``why`` unless an earlier error of the request is reported."""
        with self._m.If(self.status == Status.OK):
            self._m.d.sync += self.status.eq(why)
