"""AXI4 and AXI4-Lite signatures (AMBA AXI and ACE Protocol Specification, issue H).

Both signatures are described from the **manager's** (master's) view: what a manager drives
is ``Out``, what it receives is ``In``. A subordinate (slave) port is therefore
``In(AXI4LiteSignature(...))``. Member names are the AMBA signal names without the ``A``
prefix (``awaddr``, ``rvalid``...), so that an Amaranth port flattens to ``mmio__awaddr``
and the cocotb AXI agents bind to it with ``bus_separator="__"``.

Only what iogate uses is included: no ``*lock``, ``*cache``, ``*qos``, ``*region`` or user
signals (their defaults are what a simple manager would drive anyway).
"""

from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Resp", "Burst", "AXI4LiteSignature", "AXI4Signature"]


class Resp(enum.Enum, shape=2):
    """``BRESP``/``RRESP`` encodings (AXI spec A3.4.4)."""
    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class Burst(enum.Enum, shape=2):
    """``AWBURST``/``ARBURST`` encodings (AXI spec A3.4.1)."""
    FIXED = 0
    INCR = 1
    WRAP = 2


def _check_widths(addr_width, data_width, allowed_data):
    if not isinstance(addr_width, int) or isinstance(addr_width, bool):
        raise TypeError(f"addr_width must be an integer, not {addr_width!r}")
    if not 1 <= addr_width <= 64:
        raise ValueError(f"addr_width must be between 1 and 64, not {addr_width!r}")
    if not isinstance(data_width, int) or isinstance(data_width, bool):
        raise TypeError(f"data_width must be an integer, not {data_width!r}")
    if data_width not in allowed_data:
        raise ValueError(f"data_width must be one of {allowed_data}, not {data_width!r}")


class AXI4LiteSignature(wiring.Signature):
    """An AXI4-Lite interface, from the manager's view.

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr``/``araddr`` in bits (1 to 64).
    data_width : int
        Width of ``wdata``/``rdata``: 32 or 64 (AXI spec B1.1: AXI4-Lite data is 32 or 64
        bits wide).

    Members
    -------
    awaddr, awprot, awvalid, awready : write address channel
    wdata, wstrb, wvalid, wready : write data channel (``wstrb`` has one bit per byte)
    bresp, bvalid, bready : write response channel
    araddr, arprot, arvalid, arready : read address channel
    rdata, rresp, rvalid, rready : read data channel

    Raises
    ------
    TypeError
        If a width is not an integer.
    ValueError
        If a width is out of range.
    """

    def __init__(self, addr_width, data_width):
        _check_widths(addr_width, data_width, (32, 64))
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(Resp), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(Resp), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AXI4LiteSignature({self.addr_width}, {self.data_width})"


class AXI4Signature(wiring.Signature):
    """A full AXI4 interface, from the manager's view.

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr``/``araddr`` in bits (1 to 64).
    data_width : int
        Width of ``wdata``/``rdata``: 32, 64, 128, 256, 512 or 1024.
    id_width : int
        Width of the transaction IDs (``awid``, ``bid``, ``arid``, ``rid``), 1 to 16.

    Members
    -------
    awid, awaddr, awlen, awsize, awburst, awvalid, awready : write address channel
    wdata, wstrb, wlast, wvalid, wready : write data channel
    bid, bresp, bvalid, bready : write response channel
    arid, araddr, arlen, arsize, arburst, arvalid, arready : read address channel
    rid, rdata, rresp, rlast, rvalid, rready : read data channel

    Raises
    ------
    TypeError
        If a width is not an integer.
    ValueError
        If a width is out of range.
    """

    def __init__(self, addr_width, data_width, id_width):
        _check_widths(addr_width, data_width, (32, 64, 128, 256, 512, 1024))
        if not isinstance(id_width, int) or isinstance(id_width, bool):
            raise TypeError(f"id_width must be an integer, not {id_width!r}")
        if not 1 <= id_width <= 16:
            raise ValueError(f"id_width must be between 1 and 16, not {id_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        super().__init__({
            "awid": Out(id_width), "awaddr": Out(addr_width), "awlen": Out(8),
            "awsize": Out(3), "awburst": Out(Burst), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(Resp), "bvalid": In(1), "bready": Out(1),
            "arid": Out(id_width), "araddr": Out(addr_width), "arlen": Out(8),
            "arsize": Out(3), "arburst": Out(Burst), "arvalid": Out(1), "arready": In(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(Resp), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width and other.id_width == self.id_width)

    def __repr__(self):
        return f"AXI4Signature({self.addr_width}, {self.data_width}, {self.id_width})"
