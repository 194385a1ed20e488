"""iogate: a RISC-V IOMMU (architecture v1.0) in Amaranth HDL, with the software that
drives it and the architectural model that checks it.

The repository's root is this package (``pyproject.toml`` maps ``iogate`` to it), so the
folders install where they are:

========================  =============================================================
:mod:`iogate.hdl`         the gateware and the one :class:`Config`
:mod:`iogate.firmware`    the driver over a ``Bus``, the C header, the device tree
:mod:`iogate.cosim`       the model, the host stack, targets, checkers, campaigns, CLI
:mod:`iogate.boards`      board tops and bitstream builds
========================  =============================================================

The main entry points are here, imported on first use so that ``import iogate`` stays
cheap::

    import iogate
    config = iogate.Config.full()
    model = iogate.IommuModel(config, iogate.Memory())
    driver = iogate.Iommu(iogate.ModelBus(model), allocator)
"""

import importlib

__all__ = ["Config", "IommuModel", "Memory", "ModelBus", "Iommu", "PageAllocator",
           "Bus", "main"]

_ENTRY_POINTS = {
    "Config": "iogate.hdl.config",
    "IommuModel": "iogate.cosim.model",
    "Memory": "iogate.cosim.model",
    "ModelBus": "iogate.cosim.model.bus",
    "Iommu": "iogate.firmware.driver",
    "PageAllocator": "iogate.firmware.alloc",
    "Bus": "iogate.firmware.bus",
    "main": "iogate.cosim.cli",
}


def __getattr__(name):
    try:
        module = _ENTRY_POINTS[name]
    except KeyError:
        raise AttributeError(f"module 'iogate' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(list(globals()) + __all__)
