"""iogate.cosim.targets.board: the host side of the board link, against a board made of Python.

``FakeBoard`` answers iogate.boards.protocol frames the way the bridge is specified to (memory
outside ``[base, base + size)`` is DECERR, misaligned addresses BAD_ARGUMENT) and logs the
requests, so the tests see exactly which frames the link sends for each Bus call.
"""

import pytest

from iogate.hdl import bits

from iogate.boards.protocol import (
    MAGIC,
    REPLIES,
    REQUESTS,
    VERSION,
    Op,
    ProtocolError,
    Status,
    request_bytes,
)

from iogate.cosim.model.memory import AccessFault
from iogate.cosim.targets.board import BoardLink, LinkError

BASE = 0x8000_0000
SIZE = 0x2_0000


class FakeBoard:
    """A pyserial-like object that is a board."""

    def __init__(self, *, magic=MAGIC, version=VERSION, answer=True):
        self.magic, self.version, self.answer = magic, version, answer
        self.memory = {}
        self.log = []
        self.out = bytearray()
        self.breaks = self.resets = 0

    def send_break(self, duration):
        self.breaks += 1

    def reset_input_buffer(self):
        self.resets += 1
        self.out.clear()

    def write(self, frame):
        op = Op(frame[0])
        assert len(frame) == 1 + request_bytes(op)
        fields = bits.unpack(REQUESTS[op], int.from_bytes(frame[1:], "little"))
        fields = {k: v for k, v in fields.items() if not k.startswith("_")}
        self.log.append((op, fields))
        status, reply = self.serve(op, fields)
        if self.answer:
            payload = bits.pack(REPLIES[op], **reply) if status == Status.OK else 0
            self.out += bytes([op.value, status.value])
            self.out += payload.to_bytes(REPLIES[op].size // 8, "little")
        return len(frame)

    def read(self, n):
        data, self.out[:] = bytes(self.out[:n]), self.out[n:]
        return data

    def serve(self, op, f):
        if op == Op.IDENT:
            return Status.OK, dict(magic=self.magic, version=self.version, ram_base=BASE,
                                   ram_size_log2=17, clk_hz=12_000_000)
        if op == Op.MMIO_READ:
            return (Status.BAD_ARGUMENT, {}) if f["size"] not in (4, 8) else \
                (Status.OK, dict(data=0x10))
        if op == Op.MMIO_WRITE:
            return Status.OK, {}
        if op == Op.TRANSLATE:
            return Status.OK, dict(fault=0, r=1, w=0, x=1, hit=1, pbmt=2, cause=0,
                                   ppn=0x12345, hits=f["count"] - 1, cycles=7)
        addr = f["addr"]
        if addr % 8:
            return Status.BAD_ARGUMENT, {}
        count = f.get("count", 1)
        if not (BASE <= addr and addr + 8 * count <= BASE + SIZE):
            return Status.DECERR, {}
        if op == Op.MEM_READ:
            return Status.OK, dict(data=self.memory.get(addr, 0))
        strb = f.get("strb", 0xFF)
        for i in range(count):
            old = self.memory.get(addr + 8 * i, 0)
            mask = sum(0xFF << (8 * b) for b in range(8) if strb >> b & 1)
            self.memory[addr + 8 * i] = (old & ~mask) | (f["data"] & mask)
        return Status.OK, {}


def link(board=None, **kwargs):
    board = board or FakeBoard()
    return BoardLink(board, **kwargs), board


def test_ident_and_resync():
    lk, board = link()
    assert (lk.ram_base, lk.ram_size, lk.clk_hz) == (BASE, SIZE, 12_000_000)
    assert (board.breaks, board.resets) == (1, 1)
    assert board.log == [(Op.IDENT, {})]
    _, board = link(resync=False)
    assert (board.breaks, board.resets) == (0, 0)


@pytest.mark.parametrize("board, error, message", [
    (FakeBoard(magic=0x1234), ProtocolError, "IDENT magic 0x00001234 is not an iogate bridge"),
    (FakeBoard(version=9), ProtocolError, "bridge protocol version 9, this host speaks 1"),
    (FakeBoard(answer=False), LinkError, "no reply to IDENT (0 of 16 bytes)"),
])
def test_ident_refusals(board, error, message):
    with pytest.raises(error) as info:
        BoardLink(board, resync=False)
    assert str(info.value) == message


def test_unaligned_write_uses_strobes():
    lk, board = link(resync=False)
    lk.mem_write(BASE + 3, bytes(range(1, 12)))            # bytes 3..13
    assert board.log[1:] == [
        (Op.MEM_WRITE, dict(addr=BASE, data=0x0504_0302_0100_0000, strb=0b1111_1000)),
        (Op.MEM_WRITE, dict(addr=BASE + 8, data=0x0000_0B0A_0908_0706, strb=0b0011_1111)),
    ]
    assert lk.mem_read(BASE + 2, 13) == bytes([0]) + bytes(range(1, 12)) + bytes([0])


def test_runs_of_equal_doublewords_become_fills():
    lk, board = link(resync=False)
    a, b, c = (v.to_bytes(8, "little") for v in (0xAA, 0xBB, 0xCC))
    lk.mem_write(BASE + 0x1000, bytes(4096))
    lk.mem_write(BASE, a + a + b + c + c + c)
    assert board.log[1:] == [
        (Op.MEM_FILL, dict(addr=BASE + 0x1000, data=0, count=512)),
        (Op.MEM_FILL, dict(addr=BASE, data=0xAA, count=2)),
        (Op.MEM_WRITE, dict(addr=BASE + 16, data=0xBB, strb=0xFF)),
        (Op.MEM_FILL, dict(addr=BASE + 24, data=0xCC, count=3)),
    ]


def test_outside_the_memory_is_an_access_fault():
    lk, board = link(resync=False)
    with pytest.raises(AccessFault):
        lk.mem_read(BASE - 8, 8)
    with pytest.raises(AccessFault):
        lk.mem_write(BASE + SIZE - 4, bytes(8))
    sent = len(board.log)
    # Beyond the bridge's 32-bit reach nothing is sent at all.
    with pytest.raises(AccessFault):
        lk.mem_write(1 << 32, b"\x01")
    assert len(board.log) == sent


def test_errors_other_than_decerr_are_link_errors():
    lk, _ = link(resync=False)
    with pytest.raises(LinkError) as info:
        lk.mmio_read(0x10, 2)
    assert info.value.status == Status.BAD_ARGUMENT


def test_translate():
    lk, board = link(resync=False)
    t = lk.translate(0x2A, 0x1234_5ABC, "execute", count=4)
    assert board.log[-1] == (Op.TRANSLATE, dict(device_id=0x2A, iova=0x1234_5ABC, access=2,
                                                count=4))
    assert (t.pa, t.r, t.w, t.x, t.pbmt, t.hits, t.cycles) == \
        (0x1234_5ABC, True, False, True, 2, 3, 7)
    with pytest.raises(ValueError, match=r"^count must be between 1 and 65535, not 0$"):
        lk.translate(1, 0, "read", count=0)


def test_serial_must_look_like_one():
    with pytest.raises(TypeError, match=r"^serial must have write\(\) and read\(\), not 3$"):
        BoardLink(3)


def test_over_pyserial():
    """A real pyserial port (its loopback URL): the resync and the IDENT go through, and a
    port that only echoes is not taken for a board."""
    import serial
    port = serial.serial_for_url("loop://", timeout=0.05)
    with pytest.raises(LinkError, match=r"^no reply to IDENT \(1 of 16 bytes\)$"):
        BoardLink(port)
