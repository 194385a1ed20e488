"""``Result``: the answer of the IOMMU to one translation request.

RISC-V IOMMU spec "Process to translate an IOVA": a request either completes with a
supervisor physical address, or stops with a fault CAUSE (spec "Fault/Event-Queue (FQ)"). The fields
mirror the response stream of :mod:`iogate.hdl.port` (fault, cause, 4 KiB page, leaf permissions,
Svpbmt memory type, and ``absorbed`` for an access the IOMMU completed itself) plus what a fault
record or the debug interface needs (``iotval2``, the size of the translation range). An
ATS Translation Request's answer is a Translation Completion (reference N.6.2): it also
carries ``u``, ``g``, ``priv`` and ``size_log2`` (docs/ats-pri.md ``ATS_ANSWER``), which
every other answer leaves at their defaults.
"""

import dataclasses

from iogate.hdl.formats import Cause, Pbmt

__all__ = ["Result"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    """One translation outcome, built with keywords only (ten fields are too many to read
    by position).

    Equality and hashing look only at what a device sees (``fault``, ``cause``, ``ppn``,
    ``r``, ``w``, ``x``, ``pbmt``, ``absorbed``, and a completion's ``u``, ``g``, ``priv``,
    ``size_log2``), so sets of results (see
    :meth:`iogate.cosim.model.IommuModel.allowed`) hold each distinct answer once.

    Attributes
    ----------
    fault : bool
        The request stopped with ``cause``.
    cause : int
        A :class:`iogate.hdl.formats.Cause` when ``fault``, else 0.
    ppn : int
        The 4 KiB physical page holding the IOVA (superpage or NAPOT base plus the IOVA's
        low VPN bits); 0 on a fault.
    r, w, x : bool
        Permissions the translation grants for the whole range, both stages combined;
        ``w`` is W with D=1, since the IOMMU does not set D (spec "Translation control (tc)",
        ``SADE``/``GADE``).
    pbmt : Pbmt
        Svpbmt memory type: a non-zero first-stage type overrides the second-stage one
        (Privileged spec, Svpbmt, two-stage rule).
    offset : int
        IOVA bits 11:0, so that ``pa`` is the full address (not compared).
    size : int
        Bytes of the naturally aligned range the translation covers, 4 KiB at least
        (for ``tr_response.S``; not compared).
    iotval2 : int
        The fault record's ``iotval2`` (spec "Fault/Event-Queue (FQ)"): GPA[63:2] << 2, bit 0 for an
        implicit first-stage access; 0 unless a guest-page fault (not compared).
    absorbed : bool
        The access targeted a page mapped by an MRIF-mode MSI PTE and the IOMMU completed
        it itself (reference N.4.4; issue 16 decision 5): an MSI write recorded in the MRIF
        (notice sent) or silently discarded, or an aligned 32-bit read that reads 0. The
        requester drops it; ``ppn``, ``r``, ``w``, ``x`` and ``pbmt`` are then 0.
    u, g, priv : bool
        A Translation Completion's U ("Untranslated access only", an MRIF-mode MSI page),
        Global and Priv fields (reference N.6.2, :mod:`iogate.cosim.model.ats`); False for
        every other answer.
    size_log2 : int or None
        A Translation Completion's range size, log2 of bytes (12 for 4 KiB; S=1 above
        12); None for every other answer (their ``size`` is not compared).
    """

    fault: bool
    cause: int = 0
    ppn: int = 0
    r: bool = False
    w: bool = False
    x: bool = False
    pbmt: Pbmt = Pbmt.PMA
    offset: int = dataclasses.field(default=0, compare=False)
    size: int = dataclasses.field(default=4096, compare=False)
    iotval2: int = dataclasses.field(default=0, compare=False)
    absorbed: bool = False
    u: bool = False
    g: bool = False
    priv: bool = False
    size_log2: int | None = None

    @property
    def pa(self) -> int | None:
        """The physical address, page offset included (``None`` on a fault, or when the
        access was absorbed: it reaches no memory)."""
        if self.fault or self.absorbed:
            return None
        return (self.ppn << 12) | self.offset

    def __repr__(self) -> str:
        if self.fault:
            extra = f", iotval2={self.iotval2:#x}" if self.iotval2 else ""
            return f"Result(fault, cause={Cause(self.cause).name}{extra})"
        if self.absorbed:
            return "Result(absorbed)"
        flags = (self.r, self.w, self.x)
        perms = "".join(c if f else "-" for c, f in zip("rwx", flags, strict=True))
        if self.size_log2 is not None:
            extra = "".join(f", {n}" for n in ("u", "g", "priv") if getattr(self, n))
            return (f"Result(completion, ppn={self.ppn:#x}, {perms}, "
                    f"size_log2={self.size_log2}{extra})")
        return (f"Result(ppn={self.ppn:#x}, {perms}, pbmt={Pbmt(self.pbmt).name}, "
                f"size={self.size:#x})")

