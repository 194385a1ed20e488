"""iogate's reference stack and test benches: the architectural model, the front-ends
(virtio-iommu, VFIO/iommufd), the cocotb agents, the simulator runner and the command line."""
