"""ATS in the model: the request kinds, the Translation Completion, and the ``ats_msg`` form
of the IOMMU's own PRG responses (reference N.6.1-N.6.3, N.6.7; docs/ats-pri.md).

Request kinds (the port's ``ATS.kind``, docs/ats-pri.md "Ports"): ``"untranslated"`` (an
Untranslated request), ``"translated"`` (a Translated request, TTYP 5/6/7) and ``"ats"`` (an
ATS Translation Request, TTYP 8). Their fault records' TTYP is :func:`ttyp`.

An ATS Translation Request is walked as a read (``check_access_perms=0`` of N.0: a walk that
denies the read denies everything, since W needs R and Exe needs R), and the Translation
Completion is built from the leaf the walk found (N.6.2 "Completion fields"), never from
permissions checked for another access:

* R: R of both stages, and the privilege rule (a supervisor request on a U=1 leaf needs SUM;
  a User request needs U=1).
* W: W with D=1 of both stages, and only when the request asks for write (``NW=0``): the
  IOMMU does not set D (no SADE/GADE), so a clean page is granted read-only (the W row of
  N.6.2's table, "partial permission: the missing bit is cleared"; decision "ats-1").
* Exe: only with a PASID and Execute Requested, X of both stages and R granted. A
  supervisor's Execute Requested on a U=1 page is a privilege mismatch (the execute rule of
  reference N.1.6 holds whatever SUM says): R=W=0, as libiommu answers it.
* U: 1 only for an MRIF-mode MSI page, which is answered with U=1 ("Untranslated access
  only"), R/W of the first stage, address 0 and 4 KiB (reference N.4.4; the address of a U=1
  completion is not used by the device). No MRIF update is done.
* Priv: 0 without a PASID, else Privilege Mode Requested.
* Global: first-stage G (also inherited from a non-leaf PTE) with a PASID, not for an MSI
  page.
* Size: the range the translation covers (min of the two stages; 4 KiB for an MSI page,
  and 4 KiB when both stages are Bare: decision "ats-2", the smallest size is always
  correct, the spec leaves it to the implementation).
* Translated Address: the SPA page of the IOVA; with ``DC.tc.T2GPA=1`` the GPA page
  (first-stage output), permissions and size still from both stages.
* PBMT is not part of a completion: the answer carries ``Pbmt.PMA`` (decision "ats-3").

"Success with R=W=0 and no fault record" (N.6.2, D.4): page and guest-page faults (12, 13,
15, 20, 21, 23), 262, 266, and privilege mismatches (which are page faults of the read
walk); that answer has every field 0 but ``size_log2`` 12 (decision "ats-4": the address is
UNSPECIFIED when R=W=0). Every other fault (UR for 256-260, CA for access faults and
misconfigurations) is a fault answer with its record (TTYP 8).
"""

from iogate.hdl import bits
from iogate.hdl.formats import ATS_PRGR_PAYLOAD, AtsFunc, Cause, Pbmt, Ttyp
from iogate.hdl.port import Access

from iogate.cosim.model.result import Result

__all__ = ["KINDS", "UNTRANSLATED", "TRANSLATED", "ATS_REQUEST", "check_kind", "ttyp",
           "NO_RECORD_CAUSES", "no_permission", "completion", "prgr_message"]

UNTRANSLATED = "untranslated"
TRANSLATED = "translated"
ATS_REQUEST = "ats"
#: The request kinds, in the order of the port's ``ATS.kind`` encoding (0, 1, 2).
KINDS = (UNTRANSLATED, TRANSLATED, ATS_REQUEST)

#: Causes an ATS Translation Request answers with Success, R=W=0 and no record (N.6.2).
NO_RECORD_CAUSES = frozenset({
    Cause.INSTRUCTION_PAGE_FAULT, Cause.READ_PAGE_FAULT, Cause.WRITE_PAGE_FAULT,
    Cause.INSTRUCTION_GUEST_PAGE_FAULT, Cause.READ_GUEST_PAGE_FAULT,
    Cause.WRITE_GUEST_PAGE_FAULT, Cause.MSI_PTE_NOT_VALID, Cause.PDT_ENTRY_NOT_VALID,
})

_TRANSLATED_TTYP = {Access.READ: Ttyp.TRANSLATED_READ, Access.WRITE: Ttyp.TRANSLATED_WRITE,
                    Access.EXECUTE: Ttyp.TRANSLATED_EXEC}


def check_kind(kind):
    """``kind`` if it is one of :data:`KINDS`, else ValueError naming it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    return kind


def ttyp(kind, access):
    """The fault record's TTYP of a request (spec "Fault/Event-Queue (FQ)", TTYP table)."""
    if kind == ATS_REQUEST:
        return Ttyp.ATS_TRANSLATION_REQUEST
    if kind == TRANSLATED:
        return _TRANSLATED_TTYP[access]
    return Ttyp.untranslated(access)


def no_permission():
    """The "Success with R=W=0" completion (decision "ats-4")."""
    return Result(fault=False, size_log2=12)


def completion(*, ppn, size, r, w, x, u=False, g=False, priv=False, offset=0):
    """A Translation Completion: ``size`` bytes (a power of two, 4 KiB at least) at page
    ``ppn`` (the page of the request's address, not the range base); all-0 permissions give
    :func:`no_permission`."""
    if not (r or w or x or u):
        return no_permission()
    return Result(fault=False, ppn=ppn, r=bool(r), w=bool(w), x=bool(x), pbmt=Pbmt.PMA,
                  offset=offset, size=size, u=bool(u), g=bool(g), priv=bool(priv),
                  size_log2=size.bit_length() - 1)


def prgr_message(device_id, response, pasid):
    """The ``ats_msg`` message of a PRG response the IOMMU sends itself (N.6.7).

    It is the message an ATS.PRGR command would have sent (decision "pq-9" of issue 17, as
    :mod:`iogate.hdl.ats_msg`): ``kind`` PRGR, RID ``device_id[15:0]``, ``DSV=1`` with DSEG
    ``device_id[23:16]`` (the requester's 24-bit ``device_id`` names its segment), PV/PID the
    PASID N.6.7 chose (``pasid`` None: none), the ATS.PRGR PAYLOAD layout
    (:data:`iogate.hdl.formats.ATS_PRGR_PAYLOAD`: PRG index, Response Code) and ITAG 0.
    ``response`` is the :class:`~iogate.cosim.model.pageq.PageRequestOutcome`'s ``response``
    with its PRG index: ``(code, prg_index)``.
    """
    code, prg_index = response
    return {"kind": int(AtsFunc.PRGR), "rid": device_id & 0xFFFF, "dsv": 1,
            "dseg": device_id >> 16, "pv": int(pasid is not None),
            "pid": pasid if pasid is not None else 0,
            "payload": bits.pack(ATS_PRGR_PAYLOAD, prg_index=prg_index,
                                 response_code=int(code)),
            "itag": 0}
