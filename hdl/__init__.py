"""iogate gateware: a RISC-V IOMMU (architecture v1.0) in Amaranth HDL.

Only Amaranth is imported here; the firmware and the cosimulation stack import the
register and format layouts from :mod:`iogate.hdl.regs` and :mod:`iogate.hdl.formats`.
"""

from iogate.hdl.config import Config

__all__ = ["Config"]
