"""``TranslationRequest`` carries an ``iogate.hdl.port.Access``, never a name or a number:
names are converted once, at the test author's edge (``session.request``)."""

import pytest

from iogate.hdl.port import Access

from iogate.cosim.check.request import TranslationRequest
from iogate.cosim.scenarios.session import request


@pytest.mark.parametrize("bad", ["read", 0, None])
def test_request_takes_the_enum_only(bad):
    with pytest.raises(TypeError, match=f"access must be an iogate.hdl.port.Access, not {bad!r}"):
        TranslationRequest(5, 0x1000, bad)


def test_the_shorthand_converts_a_name_once():
    assert request(5, 0x1000, "execute") == TranslationRequest(5, 0x1000, Access.EXECUTE)
    assert request(5, 0x1000, Access.WRITE).access is Access.WRITE
    assert str(request(5, 0x1000, "read")) == "read did=0x5 iova=0x1000"
