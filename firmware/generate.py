"""``generate(out_dir)``: write ``iogate.h`` and ``iogate.dtsi``.

Both come from the same definitions as the RTL (:mod:`iogate.firmware.header` from
:mod:`iogate.hdl.regs`/:mod:`iogate.hdl.formats`; :mod:`iogate.firmware.devicetree`), so
regenerating after a layout change is all it takes to keep C code and the platform description in
step.
"""

import pathlib

from iogate.hdl import Config

from iogate.firmware.devicetree import fragment
from iogate.firmware.header import header

__all__ = ["generate", "DEFAULT_DEVICETREE"]

#: The device-tree description used when the caller gives none: the IOMMU's register page
#: and its four wired interrupts on an APLIC, with no endpoints.
DEFAULT_DEVICETREE = {
    "address": 0x1001_0000,
    "interrupts": (32, 33, 34, 35),
    "interrupt_parent": "aplic",
}


def generate(out_dir, *, config=None, devicetree=None):
    """Write ``iogate.h`` and ``iogate.dtsi`` into ``out_dir`` (created if missing).

    Parameters
    ----------
    out_dir : str or os.PathLike
    config : iogate.hdl.Config or None
        Its ``capabilities`` go into the header (default ``Config()``).
    devicetree : dict or None
        Keyword arguments of :func:`iogate.firmware.devicetree.fragment`
        (default :data:`DEFAULT_DEVICETREE`).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h = out / "iogate.h"
    h.write_text(header(config if config is not None else Config()))
    dtsi = out / "iogate.dtsi"
    dtsi.write_text(fragment(**(devicetree if devicetree is not None else DEFAULT_DEVICETREE)))
    return [h, dtsi]
