"""iogate.hdl.port: the request and answer field sets, spliced into every layout that
carries them."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data
from amaranth.sim import Simulator

from iogate.hdl.config import Config
from iogate.hdl.formats import Cause, Pbmt
from iogate.hdl.port import (
    ANSWER,
    REQUEST,
    Access,
    embedded,
    fields,
    request_layout,
    response_layout,
)
from iogate.hdl.translate import pipeline_request_layout, pipeline_response_layout


def test_fields_keep_order_and_shapes():
    assert list(fields(REQUEST)) == ["device_id", "iova", "access"]
    assert fields(ANSWER)["cause"] is Cause and fields(ANSWER)["pbmt"] is Pbmt


@pytest.mark.parametrize("layout, part", [
    (request_layout(5), REQUEST), (response_layout(5), ANSWER),
    (pipeline_request_layout(Config()), REQUEST), (pipeline_response_layout(Config()), ANSWER),
])
def test_every_carrier_holds_the_part_in_one_piece(layout, part):
    view = embedded(Signal(layout), part)
    assert view.shape() == part


def test_one_eq_copies_the_whole_request():
    src = Signal(request_layout(4))
    dst = Signal(pipeline_request_layout(Config()))
    seen = {}

    async def bench(ctx):
        ctx.set(src, {"tag": 9, "device_id": 0xABCDE, "iova": 0x1234_5678_9000,
                      "access": Access.WRITE})
        seen.update(tag=ctx.get(dst.tag), device_id=ctx.get(dst.device_id),
                    iova=ctx.get(dst.iova), access=ctx.get(dst.access),
                    pv=ctx.get(dst.pv))

    m = Module()
    m.d.comb += embedded(dst, REQUEST).eq(embedded(src, REQUEST))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"tag": 0, "device_id": 0xABCDE, "iova": 0x1234_5678_9000,
                    "access": Access.WRITE, "pv": 0}


def test_refuses_a_layout_without_the_fields_in_one_piece():
    missing = data.StructLayout({"tag": 4, "iova": 64})
    split = data.StructLayout({"device_id": 24, "pv": 1, "iova": 64, "access": Access})
    reshaped = data.StructLayout({"device_id": 16, "iova": 64, "access": Access})
    for layout in (missing, split, reshaped):
        with pytest.raises(ValueError):
            embedded(Signal(layout), REQUEST)
