"""A device-tree fragment (``iogate.dtsi``) for the IOMMU and the devices behind it.

Follows the Linux bindings: ``iommu/riscv,iommu.yaml`` (``compatible`` ending in
``"riscv,iommu"``, ``reg``, up to four wired ``interrupts`` in ``icvec`` vector order, or
``msi-parent`` for an IOMMU that signals with MSIs (``capabilities.IGS`` MSI or BOTH),
``#iommu-cells = <1>`` whose one cell is the device_id), ``iommu/iommu.txt`` (an endpoint's
``iommus = <&iommu DID>``; a PCI host's ``iommu-map = <rid-base &iommu did-base length>``)
and ``reserved-memory`` (a ``restricted-dma-pool`` a device bounces its DMA through,
referenced by the device's ``memory-region``). ``dma-coherent`` goes on the devices, whose
DMA the IOMMU passes on to coherent memory; the IOMMU binding itself does not allow it.

The fragment assumes the parent node has ``#address-cells = <2>`` and
``#size-cells = <2>``, as 64-bit RISC-V platforms do.
"""

import dataclasses

__all__ = ["Endpoint", "PciHost", "DmaPool", "fragment", "IRQ_TYPE_LEVEL_HIGH"]

#: dt-bindings/interrupt-controller/irq.h
IRQ_TYPE_LEVEL_HIGH = 4
_DID_MAX = (1 << 24) - 1


def _check_int(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:#x} and {hi:#x}, not {value:#x}")


def _check_name(name):
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"name must be a non-empty node name of letters, digits, '-' and '_', "
                         f"not {name!r}")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A platform device behind the IOMMU.

    Parameters
    ----------
    name : str
        Node name (the unit address is added); also its label.
    address, size : int
        Its registers.
    device_ids : tuple of int
        The device_ids its DMA carries (one ``iommus`` entry each).
    compatible : tuple of str
    """

    name: str
    address: int
    size: int
    device_ids: tuple
    compatible: tuple = ()

    def __post_init__(self):
        _check_name(self.name)
        _check_int("address", self.address, 0, (1 << 64) - 1)
        _check_int("size", self.size, 1, (1 << 64) - 1)
        if not self.device_ids:
            raise ValueError("an endpoint needs at least one device_id")
        for did in self.device_ids:
            _check_int("device_id", did, 0, _DID_MAX)


@dataclasses.dataclass(frozen=True)
class PciHost:
    """A PCIe host bridge whose requester IDs map onto device_ids.

    Requester IDs ``rid_base .. rid_base + length - 1`` become device_ids
    ``device_id_base ..`` (``iommu-map``).
    """

    name: str
    address: int
    size: int
    rid_base: int = 0
    device_id_base: int = 0
    length: int = 1 << 16
    compatible: tuple = ("pci-host-ecam-generic",)

    def __post_init__(self):
        _check_name(self.name)
        _check_int("address", self.address, 0, (1 << 64) - 1)
        _check_int("size", self.size, 1, (1 << 64) - 1)
        _check_int("rid_base", self.rid_base, 0, 0xFFFF)
        _check_int("length", self.length, 1, 1 << 16)
        _check_int("device_id_base", self.device_id_base, 0, _DID_MAX + 1 - self.length)


@dataclasses.dataclass(frozen=True)
class DmaPool:
    """A reserved-memory pool for DMA buffers.

    Parameters
    ----------
    address, size : int
    compatible : str
        ``"restricted-dma-pool"`` (devices bounce through it, via ``memory-region``) or
        ``"shared-dma-pool"``.
    default : bool
        Add ``linux,dma-default``: the default pool of the coherent DMA allocator. Only
        with ``shared-dma-pool``: Linux refuses a ``restricted-dma-pool`` carrying it
        (``rmem_swiotlb_setup()`` in kernel/dma/swiotlb.c returns -EINVAL).
    """

    address: int
    size: int
    compatible: str = "restricted-dma-pool"
    default: bool = False

    def __post_init__(self):
        _check_int("address", self.address, 0, (1 << 64) - 1)
        _check_int("size", self.size, 1, (1 << 64) - 1)
        if self.compatible not in ("restricted-dma-pool", "shared-dma-pool"):
            raise ValueError(f"compatible must be 'restricted-dma-pool' or 'shared-dma-pool', "
                             f"not {self.compatible!r}")
        if self.default and self.compatible == "restricted-dma-pool":
            raise ValueError("linux,dma-default is refused on a restricted-dma-pool "
                             "(Linux rmem_swiotlb_setup returns -EINVAL); use shared-dma-pool")


def _cells(value):
    return f"{value >> 32:#x} {value & 0xFFFF_FFFF:#x}"


def _strings(values):
    return ", ".join(f'"{v}"' for v in values)


def _node(label, name, address, props, indent=1):
    tab = "\t" * indent
    # Labels may not contain "-", node names may.
    head = f"{tab}{label.replace('-', '_')}: {name}@{address:x} {{"
    body = [f"{tab}\t{p};" for p in props]
    return [head, *body, f"{tab}}};"]


def fragment(*, address, size=0x1000, interrupts=(), interrupt_parent=None, msi_parent=None,
             compatible=("iogate,riscv-iommu", "riscv,iommu"), label="iogate_iommu",
             endpoints=(), pci_hosts=(), dma_pool=None):
    """The text of the device-tree fragment.

    Parameters
    ----------
    address, size : int
        The IOMMU's register page.
    interrupts : sequence of int
        The interrupt-controller inputs the IOMMU's wires drive, vector 0 first (at most
        four: ``icvec`` has four causes). Level-high.
    interrupt_parent : str or None
        Label of the interrupt controller (for example ``"aplic"``).
    msi_parent : str or None
        Label of the MSI controller the IOMMU's own MSIs go to (for example
        ``"imsics_smode"``): ``msi-parent = <&label>``, the binding's MSI example. The OS
        then programs ``msi_cfg_tbl`` (reference N.5); both may be given for IGS=BOTH.
    compatible : sequence of str
        The last entry must be ``"riscv,iommu"``.
    label : str
        Label of the IOMMU node, which ``iommus``/``iommu-map`` refer to.
    endpoints : sequence of Endpoint
    pci_hosts : sequence of PciHost
    dma_pool : DmaPool or None
        When given, every endpoint and PCI host gets ``memory-region`` pointing at it.

    Raises
    ------
    ValueError
        On a compatible list not ending in ``"riscv,iommu"``, more than four interrupts,
        or interrupts without an interrupt parent.
    """
    _check_int("address", address, 0, (1 << 64) - 1)
    _check_int("size", size, 0x1000, (1 << 64) - 1)
    compatible = tuple(compatible)
    if not compatible or compatible[-1] != "riscv,iommu":
        raise ValueError(f"compatible must end with 'riscv,iommu', not {compatible!r}")
    interrupts = tuple(interrupts)
    if len(interrupts) > 4:
        raise ValueError(f"at most 4 interrupts (one per icvec cause), not {len(interrupts)}")
    if interrupts and interrupt_parent is None:
        raise ValueError("interrupts need an interrupt_parent")
    _check_name(label)
    label = label.replace("-", "_")
    if msi_parent is not None:
        _check_name(msi_parent)

    out = ["/* iogate.dtsi: generated by firmware/devicetree.py; do not edit. */", "", "/ {"]
    pool_ref = None
    if dma_pool is not None:
        pool_ref = "iogate_dma_pool"
        props = [f'compatible = "{dma_pool.compatible}"',
                 f"reg = <{_cells(dma_pool.address)} {_cells(dma_pool.size)}>"]
        if dma_pool.default:
            props.append("linux,dma-default")
        out += ["\treserved-memory {", "\t\t#address-cells = <2>;", "\t\t#size-cells = <2>;",
                "\t\tranges;", ""]
        out += _node(pool_ref, "dma-pool", dma_pool.address, props, indent=2)
        out += ["\t};", ""]

    props = [f"compatible = {_strings(compatible)}", f"reg = <{_cells(address)} {_cells(size)}>"]
    if interrupts:
        props.append(f"interrupt-parent = <&{interrupt_parent}>")
        props.append("interrupts = " + ", ".join(f"<{irq} {IRQ_TYPE_LEVEL_HIGH}>"
                                                 for irq in interrupts))
    if msi_parent is not None:
        props.append(f"msi-parent = <&{msi_parent.replace('-', '_')}>")
    props.append("#iommu-cells = <1>")
    out += _node(label, "iommu", address, props)

    for ep in endpoints:
        props = []
        if ep.compatible:
            props.append(f"compatible = {_strings(ep.compatible)}")
        props.append(f"reg = <{_cells(ep.address)} {_cells(ep.size)}>")
        props.append("iommus = " + ", ".join(f"<&{label} {did:#x}>" for did in ep.device_ids))
        props.append("dma-coherent")
        if pool_ref:
            props.append(f"memory-region = <&{pool_ref}>")
        out += [""] + _node(ep.name, ep.name, ep.address, props)

    for host in pci_hosts:
        props = [f"compatible = {_strings(host.compatible)}", 'device_type = "pci"',
                 "#address-cells = <3>", "#size-cells = <2>",
                 f"reg = <{_cells(host.address)} {_cells(host.size)}>",
                 f"iommu-map = <{host.rid_base:#x} &{label} {host.device_id_base:#x} "
                 f"{host.length:#x}>",
                 "dma-coherent"]
        if pool_ref:
            props.append(f"memory-region = <&{pool_ref}>")
        out += [""] + _node(host.name, "pcie", host.address, props)

    out += ["};", ""]
    return "\n".join(out)
