"""``Host.dma`` with a PASID (the ``iogate host`` API the sva/vsva scripts use): what it
refuses before anything reaches a port, and that a PASID-tagged request it sends carries its
process_id and privilege to the model (reference N.1.6: a supervisor request needs a PASID;
only a Config with process contexts has ports that carry one)."""

import pytest

from iogate.hdl import Config

from iogate.cosim.client.host import Host
from iogate.cosim.client.targets import ModelTarget


@pytest.mark.parametrize("config, kwargs, exc, text", [
    (Config.full(), {"pasid": 5}, ValueError, "pasid must be None"),
    (Config.process(), {"pasid": 1 << 20}, ValueError, "pasid must be a 20-bit integer"),
    (Config.process(), {"pasid": -1}, ValueError, "pasid must be a 20-bit integer"),
    (Config.process(), {"pasid": True}, TypeError, "pasid must be an integer"),
    (Config.process(), {"priv": True}, ValueError, "priv \\(supervisor\\) needs a pasid"),
])
def test_refusals(config, kwargs, exc, text):
    host = Host(ModelTarget(config))
    with pytest.raises(exc, match=text):
        host.dma(1, 0x1000, "read", **kwargs)
    assert host.translations == 0


def test_a_pasid_request_reaches_the_scoreboard_with_its_fields():
    host = Host(ModelTarget(Config.process()))
    seen = []
    expect = host.scoreboard.expect
    host.scoreboard.expect = lambda request: (seen.append(request), expect(request))[1]
    host.dma(1, 0x1000, "read", pasid=0x12345, priv=True)
    assert [(r.process_id, r.priv) for r in seen] == [(0x12345, True)]
