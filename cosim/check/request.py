"""One translation request and its answer, as every target reports them and every checker
takes them.

RISC-V IOMMU spec, "Process to translate an IOVA": an Untranslated request names a device
(``device_id``), an address (``iova``) and an access; the answer is a fault with its cause
or a physical page with the permissions and the PBMT that apply. The cocotb translation
agents, the batch recorder and the board's DMA requester all produce
:class:`TranslationResponse` values, so one scoreboard checks them all.
"""

from dataclasses import dataclass

from iogate.hdl.formats import Cause
from iogate.hdl.port import Access

#: The request kinds with ATS, in the port's ``ATS.kind`` encoding order (the model's
#: :data:`iogate.cosim.model.ats.KINDS`, which a test checks; the check layer does not import
#: the model).
KINDS = ("untranslated", "translated", "ats")

__all__ = ["TranslationRequest", "TranslationResponse", "BoardTranslation"]


@dataclass(frozen=True)
class TranslationRequest:
    """One Untranslated request.

    ``process_id`` is the request's PASID (None: the request carries none) and ``priv``
    its "Privilege Mode Requested" (True: supervisor), which only a request with a
    ``process_id`` can ask for (spec "Process to translate an IOVA"; reference N.1.6).
    ``word`` says the access is exactly one 32-bit word and ``data`` is a write's 32 bits
    as sent (bytes in address order; None: not a write with data): the port's
    :data:`~iogate.hdl.port.MSI_WRITE` with ``Config.msi_mrif``, which a page mapped by an
    MRIF-mode MSI PTE looks at (reference N.4.4). ``kind`` is the request's kind with ATS
    (``"untranslated"``, ``"translated"`` or ``"ats"``, the port's ``ATS.kind``, reference
    N.6.2-N.6.3: :data:`iogate.cosim.model.ats.KINDS`) and ``nw`` an ATS Translation
    Request's No Write.

    Raises
    ------
    TypeError
        If ``access`` is not an :class:`iogate.hdl.port.Access`: names (``"read"``) are
        converted at the edges (the CLI, :func:`iogate.cosim.scenarios.session.request`),
        so every checker and target behind them sees the enum only.
    """
    device_id: int
    iova: int
    access: Access
    process_id: int | None = None
    priv: bool = False
    word: bool = True
    data: int | None = None
    kind: str = "untranslated"
    nw: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.access, Access):
            raise TypeError(f"access must be an iogate.hdl.port.Access, not {self.access!r}")
        if self.process_id is not None and not 0 <= self.process_id < 1 << 20:
            raise ValueError(f"process_id must be a 20-bit integer or None, not "
                             f"{self.process_id!r}")
        if self.priv and self.process_id is None:
            raise ValueError("priv (supervisor) needs a process_id: a request without a "
                             "PASID is a User-mode request")
        if self.data is not None and not 0 <= self.data < 1 << 32:
            raise ValueError(f"data must be a 32-bit integer or None, not {self.data!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.nw and self.kind != "ats":
            raise ValueError("nw (No Write) belongs to an ATS Translation Request only")

    def __str__(self) -> str:
        text = f"{self.access.name.lower()} did={self.device_id:#x} iova={self.iova:#x}"
        if self.process_id is not None:
            text += f" pid={self.process_id:#x}" + (" S" if self.priv else "")
        if not self.word:
            text += " not-word"
        if self.data is not None:
            text += f" data={self.data:#x}"
        if self.kind != "untranslated":
            text += f" {self.kind}" + (" NW" if self.nw else "")
        return text


@dataclass(frozen=True)
class TranslationResponse:
    """What a port answered. ``pa`` is derived: ``ppn << 12 | iova[11:0]``; ``cycles`` is
    the latency from acceptance to answer, where the target measures it; ``absorbed``: the
    IOMMU completed the access itself (an MRIF-mode MSI page, reference N.4.4); ``size_log2``,
    ``u``, ``g``, ``priv``: an ATS Translation Completion's (:data:`iogate.hdl.port.ATS_ANSWER`;
    0 for every other answer)."""
    fault: bool
    cause: int
    ppn: int
    r: bool
    w: bool
    x: bool
    pbmt: int
    hit: bool
    pa: int
    cycles: int = 0
    absorbed: bool = False
    size_log2: int = 0
    u: bool = False
    g: bool = False
    priv: bool = False

    def __str__(self) -> str:
        if self.fault:
            try:
                name = Cause(self.cause).name
            except ValueError:
                name = "?"
            return f"fault cause={self.cause} ({name})"
        if self.absorbed:
            return "absorbed"
        flags = (self.r, self.w, self.x)
        perm = "".join(c if f else "-" for c, f in zip("rwx", flags, strict=True))
        return f"pa={self.pa:#x} {perm} pbmt={self.pbmt}"


@dataclass(frozen=True)
class BoardTranslation(TranslationResponse):
    """What a board's DMA requester got back (``boards.protocol.REPLIES[TRANSLATE]``):
    the last answer of a run, with ``hits`` the IOTLB hits of the whole run and ``cycles``
    its clock cycles, first request offered to last response."""
    hits: int = 0
