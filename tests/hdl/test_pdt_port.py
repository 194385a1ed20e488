"""iogate.hdl.port with process contexts: the PASID fields of a translation request.

The agreed request layout (helpers' brief, after spec "Process to translate an IOVA" steps 7 and
11-15): with ``Config.pd_levels > 0`` a request is {tag, device_id, iova, access, pv, pid:20,
priv}; without, exactly as before (a Config without process contexts carries nothing more).
"""

from iogate.hdl import Config
from iogate.hdl.iommu import Iommu
from iogate.hdl.port import PASID, REQUEST, embedded, request_layout


def test_without_pasid_nothing_is_added():
    assert list(dict(request_layout(4)).keys()) == ["tag", "device_id", "iova", "access"]
    assert request_layout(4).size == 4 + REQUEST.size


def test_with_pasid_the_fields_follow_the_request():
    layout = request_layout(4, pasid=True)
    assert list(dict(layout).keys()) == ["tag", "device_id", "iova", "access", "pv", "pid",
                                         "priv"]
    # tag 4 + device_id 24 + iova 64 + access 2 = 94: pv at 94, pid 95..114, priv 115.
    assert (layout["pv"].offset, layout["pid"].offset, layout["priv"].offset) == (94, 95, 115)
    assert layout["pid"].width == 20
    assert layout.size == 116


def test_ports_carry_the_pasid_only_with_process_contexts():
    def port_layout(config):
        return Iommu(config).tr[0].req.payload.shape()
    assert port_layout(Config.full()) == request_layout(Config.full().tag_width)
    cfg = Config.full().replace(pd_levels=1)
    assert port_layout(cfg) == request_layout(cfg.tag_width, pasid=True)


def test_pasid_is_one_piece_of_the_port_request():
    from amaranth.hdl import Signal
    payload = Signal(request_layout(3, pasid=True))
    assert embedded(payload, PASID).shape() == PASID
