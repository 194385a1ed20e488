"""Host software on any iogate: the ``iogate host`` API.

A user's script is plain synchronous Python that receives ``host``, a
:class:`~iogate.cosim.client.host.Host`:

``host.bus``
    A :class:`iogate.firmware.bus.Bus`: ``mmio_read(offset, size)``,
    ``mmio_write(offset, size, value)``, ``mem_read(address, length)``,
    ``mem_write(address, data)``. The driver (:class:`iogate.firmware.driver.Iommu`) takes it.
``host.alloc``, ``host.ram_base``, ``host.ram_size``
    A :class:`iogate.firmware.alloc.PageAllocator` over the memory set aside for tables.
``host.dma(device_id, iova, access, *, pasid=None, count=1)``
    Real translation requests through a translation port; the answer
    (:class:`iogate.cosim.check.request.TranslationResponse`).
``host.wait_interrupt(line=None, timeout_cycles=...)``, ``host.on_interrupt(line, handler)``,
``host.lines``
    The wired interrupt lines (``wsi``).
``host.wait(cycles)``, ``host.cycles``
    Time.
``host.config``
    The :class:`iogate.hdl.Config` of the iogate.

Targets (:mod:`iogate.cosim.client.targets`, :mod:`iogate.cosim.client.on_rtl`): the
architectural model, the RTL on Verilator or Icarus, a board over its serial port. Every
register read, DMA answer and interrupt line is checked against the model unless turned
off; :func:`iogate.cosim.client.run.run` returns the report, ``iogate host`` prints it.
"""

from iogate.cosim.client.host import Host, InterruptTimeout, RegisterAccessError

__all__ = ["Host", "InterruptTimeout", "RegisterAccessError"]
