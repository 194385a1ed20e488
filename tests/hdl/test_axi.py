"""iogate.hdl.axi: the AXI4 and AXI4-Lite signatures (AMBA AXI spec, issue H, A2 and B1)."""

import pytest
from amaranth.lib.wiring import Flow

from iogate.hdl.axi import AXI4LiteSignature, AXI4Signature, Burst, Resp

# (name, flow from the manager's view, width): the AMBA signal tables.
AXI4_LITE_32_12 = [
    ("awaddr", Flow.Out, 12), ("awprot", Flow.Out, 3), ("awvalid", Flow.Out, 1),
    ("awready", Flow.In, 1),
    ("wdata", Flow.Out, 32), ("wstrb", Flow.Out, 4), ("wvalid", Flow.Out, 1),
    ("wready", Flow.In, 1),
    ("bresp", Flow.In, 2), ("bvalid", Flow.In, 1), ("bready", Flow.Out, 1),
    ("araddr", Flow.Out, 12), ("arprot", Flow.Out, 3), ("arvalid", Flow.Out, 1),
    ("arready", Flow.In, 1),
    ("rdata", Flow.In, 32), ("rresp", Flow.In, 2), ("rvalid", Flow.In, 1),
    ("rready", Flow.Out, 1),
]

AXI4_56_64_4 = [
    ("awid", Flow.Out, 4), ("awaddr", Flow.Out, 56), ("awlen", Flow.Out, 8),
    ("awsize", Flow.Out, 3), ("awburst", Flow.Out, 2), ("awvalid", Flow.Out, 1),
    ("awready", Flow.In, 1),
    ("wdata", Flow.Out, 64), ("wstrb", Flow.Out, 8), ("wlast", Flow.Out, 1),
    ("wvalid", Flow.Out, 1), ("wready", Flow.In, 1),
    ("bid", Flow.In, 4), ("bresp", Flow.In, 2), ("bvalid", Flow.In, 1),
    ("bready", Flow.Out, 1),
    ("arid", Flow.Out, 4), ("araddr", Flow.Out, 56), ("arlen", Flow.Out, 8),
    ("arsize", Flow.Out, 3), ("arburst", Flow.Out, 2), ("arvalid", Flow.Out, 1),
    ("arready", Flow.In, 1),
    ("rid", Flow.In, 4), ("rdata", Flow.In, 64), ("rresp", Flow.In, 2), ("rlast", Flow.In, 1),
    ("rvalid", Flow.In, 1), ("rready", Flow.Out, 1),
]


def members(sig):
    from amaranth.hdl import Shape
    return [(name, m.flow, Shape.cast(m.shape).width) for name, m in sig.members.items()]


def test_axi4_lite_members():
    assert members(AXI4LiteSignature(12, 32)) == AXI4_LITE_32_12


def test_axi4_members():
    assert members(AXI4Signature(56, 64, 4)) == AXI4_56_64_4


def test_encodings():
    assert [r.value for r in Resp] == [0, 1, 2, 3]
    assert (Burst.FIXED.value, Burst.INCR.value, Burst.WRAP.value) == (0, 1, 2)


def test_equality():
    assert AXI4LiteSignature(12, 64) == AXI4LiteSignature(12, 64)
    assert AXI4LiteSignature(12, 64) != AXI4LiteSignature(12, 32)
    assert AXI4Signature(56, 64, 4) != AXI4Signature(56, 64, 5)


@pytest.mark.parametrize("make, exc, message", [
    (lambda: AXI4LiteSignature(12, 128), ValueError,
     r"^data_width must be one of \(32, 64\), not 128$"),
    (lambda: AXI4LiteSignature(0, 32), ValueError,
     r"^addr_width must be between 1 and 64, not 0$"),
    (lambda: AXI4LiteSignature("12", 32), TypeError, r"^addr_width must be an integer, not '12'$"),
    (lambda: AXI4Signature(56, 48, 4), ValueError,
     r"^data_width must be one of \(32, 64, 128, 256, 512, 1024\), not 48$"),
    (lambda: AXI4Signature(56, 64, 0), ValueError, r"^id_width must be between 1 and 16, not 0$"),
    (lambda: AXI4Signature(56, 64, 4.0), TypeError, r"^id_width must be an integer, not 4.0$"),
])
def test_constructor_checks(make, exc, message):
    with pytest.raises(exc, match=message):
        make()
