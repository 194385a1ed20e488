"""The architectural model of iogate: the RISC-V IOMMU v1.0 subset of the first target.

Written from the RISC-V IOMMU specification and the Privileged specification, never from
the RTL; every hardware test trusts it. One concept per module:

========================  =============================================================
:mod:`.iommu`             :class:`IommuModel`: translation, ``allowed`` (spec "Process to
                          translate an IOVA")
:mod:`.registers`         the MMIO register file (spec "Memory-mapped register interface")
:mod:`.ddt`               device directory walk and DC checks (spec "Process to locate the
                          Device-context")
:mod:`.walk`              Sv39/Sv48 and Sv39x4/Sv48x4 page-table walks (Privileged spec)
:mod:`.caches`            what the DDT cache and IOTLB may hold (spec "Caching in-memory data
                          structures")
:mod:`.cmdq`              the command queue (spec "Command-Queue (CQ)")
:mod:`.faultq`            the fault queue (spec "Fault/Event-Queue (FQ)")
:mod:`.result`            :class:`Result`, one translation outcome
:mod:`.bus`               :class:`ModelBus`, a ``iogate.firmware.bus.Bus`` over the model
:mod:`.bench`             translations per second
========================  =============================================================

Usage::

    from iogate.hdl import Config
    from iogate.cosim.model import IommuModel, Memory
    mem = Memory()
    iommu = IommuModel(Config(), mem)
    iommu.mmio_write(0x10, 8, ddtp)
    r = iommu.translate(device_id, iova, "read")
    r.fault, r.cause, r.pa
"""

from iogate.cosim.model.iommu import IommuModel
from iogate.cosim.model.memory import AccessFault, Memory
from iogate.cosim.model.result import Result

__all__ = ["IommuModel", "Memory", "AccessFault", "Result"]
