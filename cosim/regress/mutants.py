"""Deliberately broken RTL, for showing that a campaign catches a bug and shrinks it.

Each mutant is the real :class:`iogate.hdl.iommu.Iommu` with one submodule class swapped for
a subclass that breaks one rule of the spec, at elaboration time (as the formal mutants of
:mod:`iogate.hdl.formal` wrap their unit). The Verilog differs from the good build's, so it
is built in a folder of its own (``build/sim/<design>-<mutant>``) and never replaces it.
Only tests and ``iogate regress/farm --mutant`` use them.

* ``iotlb-drop-vma-av``: IOTINVAL.VMA with AV=1 (one address, the driver's invalidation
  after a first-stage PTE change) removes nothing, so a stale translation outlives its
  IOFENCE.C (spec "IOMMU Page-Table cache invalidation commands").
"""

from contextlib import contextmanager
from unittest import mock

from amaranth.hdl import Mux, Signal

from iogate.hdl.iotlb import IOTLB, InvalKind

from iogate.cosim.targets import sim as simulators

__all__ = ["MUTANTS", "build_mutant"]


class DroppedVmaAv(IOTLB):
    """The IOTLB with IOTINVAL.VMA AV=1 dropped: every other invalidation as the spec says."""

    def _inval_hits(self, m, e):
        hits = super()._inval_hits(m, e)
        inv = self.inval.payload
        dropped = Signal(name="mutant_dropped")
        m.d.comb += dropped.eq((inv.kind == InvalKind.VMA) & inv.av)
        out = Signal(self.entries, name="mutant_inval_hit")
        m.d.comb += out.eq(Mux(dropped, 0, hits))
        return out


#: Mutant name -> ``(module path, class name, replacement)`` swapped while elaborating.
MUTANTS = {"iotlb-drop-vma-av": ("iogate.hdl.translate", "IOTLB", DroppedVmaAv)}


@contextmanager
def _swapped(name):
    if name not in MUTANTS:
        raise ValueError(f"unknown mutant {name!r}; the mutants are {sorted(MUTANTS)}")
    module, attr, cls = MUTANTS[name]
    with mock.patch(f"{module}.{attr}", cls):
        yield


def build_mutant(name, config, sim, *, waves=False):
    """Build the Iommu of ``config`` with mutant ``name`` for ``sim``; a :class:`Build`."""
    from iogate.hdl.iommu import Iommu
    with _swapped(name):
        # Elaboration (inside verilog_of) must see the swapped class.
        text = simulators.verilog_of(Iommu(config), "top")
    return simulators.build(text, f"{simulators.design_name(config)}-{name}", sim, waves=waves)
