"""What a formal property is: a harness to prove, how, to what depth, and why.

A :class:`Property` names a harness factory (an Elaboratable with ``Assert``, ``Assume`` and
``Cover`` statements over one component whose neighbours are free inputs), the method
(``"prove"``: k-induction, unbounded; ``"bmc"``: bounded model checking to ``depth``), the
depth of the cover run that shows the property is not vacuous, and the reason for the
method and the size of the Config the harness uses.

A *mutant* is the same harness over a deliberately broken copy of the component (a wrapper
or subclass in the harness, never an edit of the RTL); its proof must fail.
"""

import dataclasses
from collections.abc import Callable

__all__ = ["Property"]


@dataclasses.dataclass(frozen=True)
class Property:
    """One property of the formal flow.

    Parameters
    ----------
    harness : callable
        Returns a fresh Elaboratable (the harness) each call.
    method : str
        ``"prove"`` (k-induction, unbounded) or ``"bmc"`` (bounded to ``depth``).
    depth : int
        The induction length for ``"prove"``, the bound for ``"bmc"``.
    cover_depth : int
        The bound of the cover run (every ``Cover`` must be reached within it).
    reason : str
        Why this method, depth and Config (one sentence or two).
    expect : str
        ``"pass"``, or ``"fail"`` for a mutant.
    ci_depth : int or None
        The smaller depth ``make formal-ci`` and the tests use (None: ``depth``).
    ci : bool
        Part of ``make formal-ci`` (small enough for CI).
    """

    harness: Callable[[], object]
    method: str
    depth: int
    cover_depth: int
    reason: str
    expect: str = "pass"
    ci_depth: int | None = None
    ci: bool = True

    def __post_init__(self):
        if self.method not in ("prove", "bmc"):
            raise ValueError(f"method must be 'prove' or 'bmc', not {self.method!r}")
        if self.expect not in ("pass", "fail"):
            raise ValueError(f"expect must be 'pass' or 'fail', not {self.expect!r}")
