"""The architectural model of iogate: RISC-V IOMMU v1.0, as far as iogate builds it.

Written from the RISC-V IOMMU specification and the Privileged specification, never from
the RTL; every hardware test trusts it. One concept per module:

========================  =============================================================
:mod:`.iommu`             :class:`IommuModel`: translation, ``allowed`` (spec "Process to
                          translate an IOVA")
:mod:`.registers`         the MMIO register file (spec "Memory-mapped register interface")
:mod:`.ddt`               device directory walk and DC checks (spec "Process to locate the
                          Device-context")
:mod:`.walk`              Sv39/Sv48/Sv57 and their x4 page-table walks (Privileged spec)
:mod:`.pdt`               process directories: GET_PC (spec "Process to locate the
                          Process-context")
:mod:`.msi`               MSI address translation and MRIF updates (spec "MSI page
                          tables", AIA "Memory-resident interrupt files")
:mod:`.interrupts`        IOMMU-generated MSIs (spec "MSI configuration table")
:mod:`.caches`            what the DDT cache and IOTLB may hold (spec "Caching in-memory data
                          structures")
:mod:`.cmdq`              the command queue (spec "Command-Queue (CQ)")
:mod:`.faultq`            the fault queue (spec "Fault/Event-Queue (FQ)")
:mod:`.result`            :class:`Result`, one translation outcome
:mod:`.bus`               :class:`ModelBus`, a ``iogate.firmware.bus.Bus`` over the model
:mod:`.memory`            system memory, with access-fault ranges
:mod:`.access`            which register accesses the spec allows
:mod:`.explain`           a mismatch explained: the DC, the PTEs, the steps
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
