"""Translation request/response stream ports: how devices reach the IOMMU.

A device (or the IO bridge in front of it) sends an Untranslated request (RISC-V IOMMU
spec "Process to translate an IOVA": device_id, IOVA, read/write/execute) with a tag, and receives
the tag back with either a fault and its CAUSE (spec "Fault/Event-Queue (FQ)") or the 4 KiB physical
page the IOVA maps to, the permissions of the leaf and its Svpbmt memory type. Without process
contexts (``Config.pd_levels == 0``) requests carry no process_id and no privilege: they are
User-mode requests without PASID (spec "Process to translate an IOVA"). With them, a request
also carries :data:`PASID`: the process_id, its valid bit and the privilege (spec "Process to
translate an IOVA", steps 7 and 11-15).

With ATS (``Config.ats``, reference N.6) a request also carries :data:`ATS`: its kind
(Untranslated, Translated, or an ATS Translation Request) and, for a Translation Request, No
Write; the response then carries :data:`ATS_ANSWER`, what a Translation Completion holds
besides the address and the permissions.

Each port is a pair of ``amaranth.lib.stream`` interfaces whose payloads are the layouts
below; the cocotb test benches pack and unpack the same layouts with :mod:`iogate.hdl.bits`.
"""

from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from iogate.hdl.formats import Cause, Pbmt

__all__ = ["Access", "AtsKind", "REQUEST", "PASID", "MSI_WRITE", "ATS", "ANSWER", "ATS_ANSWER",
           "fields", "embedded",
           "request_layout", "response_layout", "TranslationPort"]


class Access(enum.Enum, shape=2):
    """What the device wants to do with the memory behind the IOVA."""
    READ = 0
    WRITE = 1
    EXECUTE = 2


#: What an Untranslated request asks (spec "Process to translate an IOVA"): the device, the
#: IOVA and the kind of access. Every layout that carries a request holds these fields in
#: this order, one after another, so that :func:`embedded` copies them with one ``.eq``.
REQUEST = data.StructLayout({"device_id": 24, "iova": 64, "access": Access})

#: The PASID of a request (PCIe's PASID prefix): ``pv`` says a ``process_id`` (``pid``) came
#: with it, ``priv`` asks for supervisor privilege ("Privilege Mode Requested"; only with
#: ``pv``). Exec is :data:`REQUEST`'s ``access``, also without a PASID (a choice, see
#: :mod:`iogate.hdl.translate`).
PASID = data.StructLayout({"pv": 1, "pid": 20, "priv": 1})

#: What a request carries with ``Config.msi_mrif`` (reference N.4.4): ``word`` says the
#: access is exactly 4 bytes (a single beat of 32 bits), ``data`` is that write's data as the
#: device sent it (bytes in address order). The IOMMU needs both to handle a write to a page
#: mapped by an MRIF-mode MSI PTE itself: only an aligned 32-bit write is an MSI.
MSI_WRITE = data.StructLayout({"word": 1, "data": 32})

class AtsKind(enum.Enum, shape=2):
    """What a request is, with ATS (reference N.6.2, N.6.3; docs/ats-pri.md "Ports")."""
    UNTRANSLATED = 0   #: an Untranslated request (TTYP 1-3), as without ATS
    TRANSLATED = 1     #: a Translated request (TTYP 5-7): ``iova`` is what the device's ATC holds
    ATS_REQUEST = 2    #: an ATS Translation Request (TTYP 8): ``access`` READ, or EXECUTE
    #: for "Execute Requested" (counted only with a PASID)


#: What a request carries with ``Config.ats``: its kind and, for an ATS Translation Request,
#: No Write (``nw``: no write permission is asked for; otherwise the request is a read with
#: write requested, reference N.6.2).
ATS = data.StructLayout({"kind": AtsKind, "nw": 1})

#: What the IOMMU answers: a fault and its CAUSE (spec "Fault/Event-Queue (FQ)"), or the
#: 4 KiB page, the permissions the leaf grants and its Svpbmt memory type. Carried the
#: same way as :data:`REQUEST`.
ANSWER = data.StructLayout({"fault": 1, "cause": Cause, "ppn": 44, "r": 1, "w": 1, "x": 1,
                            "pbmt": Pbmt})


#: What an ATS Translation Request's answer carries besides :data:`ANSWER` (reference N.6.2,
#: the Translation Completion): ``size_log2`` the log2 of the translation's size in bytes (12
#: for 4 KiB; the device side encodes it as PCIe's S bit and NAPOT address), ``u`` (1 only
#: for an MRIF-mode MSI page: never here, Config.ats excludes MRIFs), ``g`` (the first
#: stage's G, with a PASID, not for an MSI page) and ``priv`` (the request's "Privilege Mode
#: Requested", with a PASID). All 0 for every other answer; a completion without a
#: translation (R=W=0 for a page fault) has ``size_log2`` 12 and the rest 0.
ATS_ANSWER = data.StructLayout({"size_log2": 6, "u": 1, "g": 1, "priv": 1})


def fields(layout):
    """``layout``'s members as a ``{name: shape}`` dict, to splice into a bigger layout."""
    return {name: field.shape for name, field in layout}


def embedded(payload, layout):
    """The fields of ``layout`` inside the view ``payload``, as one view of ``layout``.

    ``payload``'s layout must hold them with the same shapes, in the same order and one
    after another (as :data:`REQUEST` and :data:`ANSWER` are spliced in everywhere), so
    that a whole request or answer is copied with one ``.eq``.

    Raises
    ------
    ValueError
        If ``payload``'s layout does not hold ``layout``'s fields that way.
    """
    outer = payload.shape()
    names = [name for name, _ in layout]
    if names[0] not in outer.members:
        raise ValueError(f"{outer!r} has no field {names[0]!r}")
    base = outer[names[0]].offset
    for name, field in layout:
        if (name not in outer.members or outer[name].offset != base + field.offset
                or outer[name].shape != field.shape):
            raise ValueError(f"{outer!r} does not hold {layout!r} in one piece")
    return data.View(layout, payload.as_value()[base:base + layout.size])


def request_layout(tag_width, pasid=False, msi_write=False, ats=False):
    """Payload of a translation request: the tag, then :data:`REQUEST`, then with ``pasid``
    :data:`PASID` (a Config with process contexts), then with ``msi_write``
    :data:`MSI_WRITE` (a Config with MRIFs), then with ``ats`` :data:`ATS`; without them the
    port costs nothing."""
    return data.StructLayout({"tag": tag_width, **fields(REQUEST),
                              **(fields(PASID) if pasid else {}),
                              **(fields(MSI_WRITE) if msi_write else {}),
                              **(fields(ATS) if ats else {})})


def response_layout(tag_width, absorbed=False, ats=False):
    """Payload of a translation response: the tag, :data:`ANSWER` and ``hit``, then with
    ``absorbed`` (a Config with MRIFs) the ``absorbed`` bit.

    ``absorbed`` says the IOMMU has itself completed the access, which targeted a page
    mapped by an MRIF-mode MSI PTE (reference N.4.4): an MSI write was recorded in the MRIF
    (and its notice MSI sent) or silently discarded, or an aligned 32-bit read reads 0. The
    requester must not forward it to memory; ``ppn`` and the permissions are then 0.

    ``ppn`` is the 4 KiB page holding the IOVA (superpage PPN plus the IOVA's low VPN
    bits), so the physical address is ``ppn << 12 | iova[11:0]``. ``r``/``w``/``x`` are the
    permissions the leaf grants (``w`` only with D=1, since the IOMMU does not set D).
    ``hit`` says the answer came from the IOTLB or the identity path without a table walk;
    it is an implementation extra for statistics, not an architectural field.

    With ``ats`` (a Config with ATS) :data:`ATS_ANSWER` follows. An ATS Translation Request
    is never answered with a fault for a page or guest-page fault (12, 13, 15, 20, 21, 23),
    262 or 266: those are a success with ``r=w=x=0`` (reference N.6.2); ``w`` is 0 with No
    Write, ``x`` only with Execute Requested (and a PASID) and ``r``.
    """
    return data.StructLayout({"tag": tag_width, **fields(ANSWER), "hit": 1,
                              **({"absorbed": 1} if absorbed else {}),
                              **(fields(ATS_ANSWER) if ats else {})})


class TranslationPort(wiring.Signature):
    """One translation port, from the IOMMU's side: requests in, responses out; with
    ``pasid`` the requests carry :data:`PASID`, with ``msi_write`` :data:`MSI_WRITE` and the
    responses ``absorbed``, with ``ats`` the requests :data:`ATS` and the responses
    :data:`ATS_ANSWER`."""

    def __init__(self, tag_width, pasid=False, msi_write=False, ats=False):
        super().__init__({
            "req": In(stream.Signature(request_layout(tag_width, pasid, msi_write, ats))),
            "resp": Out(stream.Signature(response_layout(tag_width, msi_write, ats))),
        })
