"""iogate gateware: a RISC-V IOMMU (architecture v1.0) in Amaranth HDL.

Only Amaranth is imported here; the firmware and the cosimulation stack import the
register and format layouts from :mod:`hdl.regs` and :mod:`hdl.formats`.
"""

from .config import Config

__all__ = ["Config"]
