"""A board made of the architectural model, on a pseudo-terminal, for ``iogate host
--target board --port /dev/pts/N``.

A thread answers the board bridge's frames (:mod:`iogate.boards.protocol`) on the master
side of a pty the way the bridge is specified to: register accesses of another size or
alignment get BAD_ARGUMENT, memory outside the on-chip RAM (128 KiB at 0x8000_0000, as on
the boards) DECERR, and TRANSLATE goes to the model's translation (``corrupt``: with PPN
bit 0 flipped). The model is an independent one, so the host's own checking model is
checked against it.
"""

import os
import threading
import tty

from iogate.hdl import Config, bits

from iogate.boards.protocol import MAGIC, REPLIES, REQUESTS, VERSION, Op, Status, request_bytes

from iogate.cosim.model import IommuModel
from iogate.cosim.model.bus import ModelBus
from iogate.cosim.model.memory import Memory

RAM_BASE, RAM_SIZE = 0x8000_0000, 128 * 1024


class ModelBoard:
    """The board; :attr:`port` is the path to give ``--port``. Use as a context manager."""

    def __init__(self, config=Config(), *, corrupt=False):
        self.corrupt = corrupt
        memory = Memory()
        memory.inject_fault(0, RAM_BASE)
        memory.inject_fault(RAM_BASE + RAM_SIZE, memory.size)
        self.bus = ModelBus(IommuModel(config, memory))
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.requests = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        os.close(self._slave)
        os.close(self.master)

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = os.read(self.master, n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def _serve(self):
        try:
            while not self._stop:
                head = self._read(1)
                try:
                    op = Op(head[0])
                except ValueError:
                    continue                     # the break's NUL, or noise
                raw = self._read(request_bytes(op))
                fields = bits.unpack(REQUESTS[op], int.from_bytes(raw, "little"))
                fields = {k: v for k, v in fields.items() if not k.startswith("_")}
                self.requests.append(op)
                status, reply = self.serve(op, fields)
                payload = bits.pack(REPLIES[op], **reply) if status == Status.OK else 0
                os.write(self.master, bytes([op.value, status.value])
                         + payload.to_bytes(REPLIES[op].size // 8, "little"))
        except (EOFError, OSError):
            pass

    def serve(self, op, f):
        iommu = self.bus.iommu
        if op == Op.IDENT:
            return Status.OK, dict(magic=MAGIC, version=VERSION, ram_base=RAM_BASE,
                                   ram_size_log2=17, clk_hz=12_000_000)
        if op in (Op.MMIO_READ, Op.MMIO_WRITE):
            if f["size"] not in (4, 8) or f["offset"] % f["size"] or f["offset"] >= 4096:
                return Status.BAD_ARGUMENT, {}
            if op == Op.MMIO_READ:
                return Status.OK, dict(data=self.bus.mmio_read(f["offset"], f["size"]))
            self.bus.mmio_write(f["offset"], f["size"], f["data"])
            return Status.OK, {}
        if op == Op.TRANSLATE:
            from iogate.hdl.port import Access
            for _ in range(f["count"]):
                r = iommu.translate(f["device_id"], f["iova"], Access(f["access"]))
            ppn = 0 if r.fault else r.ppn ^ self.corrupt
            return Status.OK, dict(fault=r.fault, cause=int(r.cause) if r.fault else 0,
                                   ppn=ppn, r=r.r, w=r.w, x=r.x,
                                   pbmt=0 if r.fault else int(r.pbmt), hit=0, hits=0,
                                   cycles=f["count"])
        addr, count = f["addr"], f.get("count", 1)
        if addr % 8:
            return Status.BAD_ARGUMENT, {}
        if not (RAM_BASE <= addr and addr + 8 * count <= RAM_BASE + RAM_SIZE):
            return Status.DECERR, {}
        if op == Op.MEM_READ:
            return Status.OK, dict(data=iommu.memory.read64(addr))
        strb = f.get("strb", 0xFF)
        for i in range(count):
            old = iommu.memory.read64(addr + 8 * i)
            mask = sum(0xFF << (8 * b) for b in range(8) if strb >> b & 1)
            value = (old & ~mask) | (f["data"] & mask)
            iommu.memory.write(addr + 8 * i, value.to_bytes(8, "little"))
        return Status.OK, {}
