# iogate host cosim/client/examples/readme_example.py [--target verilator|icarus|board]
# `host` is given: registers, memory, DMA, interrupts and time of the chosen iogate.
from iogate.hdl.formats import IosatpMode

from iogate.firmware.driver import Iommu

iommu = Iommu(host.bus, host.alloc, interrupts=True)   # fault interrupts on the wires
iommu.init(device_id_bits=7)                   # 1LVL is enough for 0x42
table = iommu.page_table(IosatpMode.SV39)
iommu.set_first_stage(0x42, table, pscid=1)
buffer = host.alloc.alloc()                            # a page for the device to read
iommu.map(table, 0x10_0000, buffer, 0x1000, r=True, w=True, pscid=1)

ok = host.dma(0x42, 0x10_0010, "read")
assert not ok.fault and ok.pa == buffer + 0x10, ok

iommu.unmap(table, 0x10_0000, 0x1000, pscid=1)
gone = host.dma(0x42, 0x10_0010, "read")
assert gone.fault and gone.cause == 13, gone            # read page fault

line = host.wait_interrupt(timeout_cycles=1000)        # fqcsr.fie: the fault interrupt
records = iommu.drain_faults().records
result = {"pa": hex(ok.pa), "cause": gone.cause, "line": line, "faults": len(records)}
