"""Translation request/response stream ports: how devices reach the IOMMU.

A device (or the IO bridge in front of it) sends an Untranslated request (RISC-V IOMMU
spec "Process to translate an IOVA": device_id, IOVA, read/write/execute) with a tag, and receives
the tag back with either a fault and its CAUSE (spec "Fault/Event-Queue (FQ)") or the 4 KiB physical
page the IOVA maps to, the permissions of the leaf and its Svpbmt memory type. Requests carry no
process_id and no privilege: they are User-mode requests without PASID (spec "Process to translate
an IOVA").

Each port is a pair of ``amaranth.lib.stream`` interfaces whose payloads are the layouts
below; the cocotb test benches pack and unpack the same layouts with :mod:`iogate.hdl.bits`.
"""

from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.formats import Cause, Pbmt, Ttyp

__all__ = ["Access", "request_layout", "response_layout", "TranslationPort", "ttyp_of"]


class Access(enum.Enum, shape=2):
    """What the device wants to do with the memory behind the IOVA."""
    READ = 0
    WRITE = 1
    EXECUTE = 2


def ttyp_of(access):
    """The fault-record TTYP of an Untranslated request of kind ``access``: an alias of
    :meth:`iogate.hdl.formats.Ttyp.untranslated`, where the mapping lives."""
    return Ttyp.untranslated(access)


def request_layout(tag_width):
    """Payload of a translation request."""
    return data.StructLayout({
        "tag": tag_width, "device_id": 24, "iova": 64, "access": Access,
    })


def response_layout(tag_width):
    """Payload of a translation response.

    ``ppn`` is the 4 KiB page holding the IOVA (superpage PPN plus the IOVA's low VPN
    bits), so the physical address is ``ppn << 12 | iova[11:0]``. ``r``/``w``/``x`` are the
    permissions the leaf grants (``w`` only with D=1, since the IOMMU does not set D).
    ``hit`` says the answer came from the IOTLB or the identity path without a table walk;
    it is an implementation extra for statistics, not an architectural field.
    """
    return data.StructLayout({
        "tag": tag_width, "fault": 1, "cause": Cause, "ppn": 44,
        "r": 1, "w": 1, "x": 1, "pbmt": Pbmt, "hit": 1,
    })


class TranslationPort(wiring.Signature):
    """One translation port, from the IOMMU's side: requests in, responses out."""

    def __init__(self, tag_width):
        super().__init__({
            "req": In(stream.Signature(request_layout(tag_width))),
            "resp": Out(stream.Signature(response_layout(tag_width))),
        })
