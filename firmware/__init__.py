"""Software that drives an iogate through a :class:`~iogate.firmware.bus.Bus`: initialisation,
device directory, page tables, command and fault queues, and the generated C header.

One concept per module:

========================  =============================================================
:mod:`.bus`               the ``Bus`` protocol: registers and system memory
:mod:`.mmio`              register access by spec offset, bounded polls
:mod:`.alloc`             the physical page allocator
:mod:`.commands`          16-byte commands (IOTINVAL, IOFENCE.C, IODIR)
:mod:`.cq`                the command-queue producer and ``fence()``
:mod:`.fq`                the fault-queue drain and :class:`~.fq.FaultRecord`
:mod:`.ddt`               the device directory and :class:`~.ddt.DeviceContext`
:mod:`.pagetable`         Sv39/Sv48 and Sv39x4/Sv48x4 tables, :class:`~.pagetable.TableChanges`
:mod:`.guest`             a guest's memory seen through its second-stage table
:mod:`.pdt`               process directories and process contexts
:mod:`.msi`               flat MSI page tables (basic and MRIF PTEs)
:mod:`.mrif`              memory-resident interrupt files: allocation and pending bits
:mod:`.invalidate`        the spec's invalidation recipe for each kind of change
:mod:`.driver`            :class:`~.driver.Iommu`: init sequence and the operations above
:mod:`.header`            ``iogate.h``
:mod:`.devicetree`        ``iogate.dtsi``
:mod:`.generate`          ``generate(out_dir)`` writes both
:mod:`.errors`            the exceptions
========================  =============================================================

Usage::

    io = Iommu(bus, PageAllocator(bus, base, size))
    io.init(device_id_bits=16)
    table = io.page_table(IosatpMode.SV39)
    io.set_first_stage(device_id, table, pscid=1)
    io.map(table, iova, pa, size, r=True, w=True, pscid=1)   # PTEs, IOTINVAL, IOFENCE.C
"""
