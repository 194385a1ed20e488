"""The host kernel's IOMMU layer: domains, attachment, mappings and faults over the driver.

Linux's IOMMU core (``include/linux/iommu.h``: ``iommu_domain``, ``iommu_map()``,
``attach_dev``, identity and blocking domains, ``IOMMU_CAP_*``) rendered on top of
:class:`iogate.firmware.driver.Iommu`. The VFIO type1 container, iommufd and the virtio-iommu
device all lower onto it, so each front-end decides *what* a request means and this layer
alone decides how it becomes device contexts, PTEs and commands (project design,
"Mapping the front-ends onto the hardware"):

====================  ===================================================================
paging domain         a first-stage Sv48 (Sv39 without ``capabilities.Sv48``) table and a
                      PSCID; the device context has ``fsc`` = the table, ``ta.PSCID``
nest parent           a second-stage Sv48x4 (or Sv39x4) table and a GSCID; ``iohgatp``
nested domain         a guest's first stage (root at a GPA) over a nest parent
identity              ``fsc`` and ``iohgatp`` Bare: DMA passes untranslated
blocked               ``DC.V=0``: every request faults with cause 258
====================  ===================================================================

A paging domain may also be attached to a (device, PASID) pair (Linux's
``iommu_attach_device_pasid``; the domain was made PASID-capable). The device context then
points at a host process directory (``tc.PDTV=1``, RISC-V IOMMU spec "Process-Directory-Table
(PDT)"), each PASID's process context holding that domain's table and PSCID. The device's
own (RID) domain becomes the default process: PASID 0 with ``tc.DPE=1`` for a paging domain
(Linux's ``IOMMU_NO_PASID`` is 0 too, so no PASID attach can take it), ``DPE=0`` for the
identity domain (untagged DMA then has the first stage Bare), and ``DPE=1`` with PC 0 invalid
for the blocking domain: untagged DMA then faults with cause 266, not 258. When the last
PASID goes, the device context is rewritten without a directory and the directory freed.

Every call returns only after the driver has run the spec's invalidation recipe and an
``IOFENCE.C`` has completed (RISC-V IOMMU spec "Guidelines for invalidations"),
so what a front-end tells its caller is what the IOMMU does from then on. A map into
entries that were invalid needs no invalidation (invalid entries are never cached), but
it still ends with a fence so that every request completes the same way.

The platform's MSI doorbell window is mapped, IOVA equal to PA, into every paging domain
by the host, as Linux maps its software MSI window: virtio-iommu reports it as a
``RESV_MEM`` MSI region and VFIO leaves it out of the valid IOVA ranges, so no user can
map over it.

**MSI isolation** (issue 16). The window holds the platform's interrupt files, one 4 KiB
page each (IMSIC interrupt files: file k at ``MSI_WINDOW[0] + k * 4096``). A device whose
DMA may reach the window can raise any of them, which is why VFIO and iommufd refuse a
device whose MSIs are not isolated (Linux's ``iommu_group_has_isolated_msi``). This IOMMU
isolates them when it has ``capabilities.MSI_FLAT``: an :class:`MsiDomain` is a second-stage
table (since the 20260222 spec, ``msiptp`` must be Off with a Bare ``iohgatp``, reference
N.4.1) with an MSI page table whose pattern and mask cover the whole window at the same
guest addresses, every entry invalid (V=0: an MSI there faults with cause 262, "MSI PTE not
valid", ``iotval`` the address, ``iotval2`` 0) until the owner *grants* an interrupt file
(:meth:`MsiDomain.grant`, a basic-translate PTE to that file's page, or
:meth:`MsiDomain.grant_mrif`, an MRIF-mode PTE). So the MSI page table maps exactly the
interrupt files the user may use, and the window is not mapped by the second stage at all.
:attr:`HostIommu.msi_isolation` says whether the host can do this.
"""

import enum
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from iogate.hdl import Config, bits
from iogate.hdl.formats import IOHGATP, TA, TC, IohgatpMode, IosatpMode, Pbmt

from iogate.firmware import commands
from iogate.firmware.alloc import PageAllocator
from iogate.firmware.bus import Bus
from iogate.firmware.driver import Iommu
from iogate.firmware.errors import OutOfMemory, UnsupportedError
from iogate.firmware.fq import FaultRecord
from iogate.firmware.msi import MsiPageTable
from iogate.firmware.pagetable import NAPOT_SIZE, PageTable, TableChanges, Translation
from iogate.firmware.pdt import ProcessContext, ProcessDirectory

from iogate.cosim.host.ids import IdAllocator

if TYPE_CHECKING:   # only on_model() imports the model, and only when called
    from iogate.cosim.model import IommuModel

__all__ = [
    "Prot", "Cap", "HostIommu", "PagingDomain", "ParentDomain", "MsiDomain", "NestedDomain",
    "IDENTITY", "BLOCKED", "DEFAULT_CONFIG", "TABLE_POOL", "MSI_WINDOW",
]

#: The configuration the front-ends run on by default (the project brief's backend).
DEFAULT_CONFIG = Config.full()
#: ``(base, size)`` of the system memory the host's queues, directory and tables come from.
TABLE_POOL = (0x10_0000_0000, 256 << 20)
#: The platform's MSI doorbell window, ``(first, last)`` inclusive; IOVA equals PA.
MSI_WINDOW = (0x0800_0000, 0x080F_FFFF)


class Prot(enum.IntFlag):
    """``IOMMU_*`` protection flags of ``iommu_map()`` (``include/linux/iommu.h``)."""
    READ = 1 << 0
    WRITE = 1 << 1
    #: "DMA cache coherency": the mapping is coherent with the CPU caches.
    CACHE = 1 << 2
    NOEXEC = 1 << 3
    MMIO = 1 << 4
    PRIV = 1 << 5


class Cap(enum.Enum):
    """``enum iommu_cap`` values the front-ends ask about."""
    CACHE_COHERENCY = "IOMMU_CAP_CACHE_COHERENCY"
    ENFORCE_CACHE_COHERENCY = "IOMMU_CAP_ENFORCE_CACHE_COHERENCY"


def pte_attributes(prot: Prot, svpbmt: bool) -> tuple[bool, bool, bool, Pbmt]:
    """``(r, w, x, pbmt)`` of a leaf for ``prot``.

    * WRITE gives R as well: ``xwr=010`` is a reserved encoding (Privileged spec), so a
      write-only mapping is read-write (virtio-iommu allows that: "if the underlying
      architecture does not support write-only mappings, the device MAY allow reads").
    * X goes with R unless NOEXEC: a read-for-execute is a read.
    * Memory type (Svpbmt): MMIO is ``IO``; CACHE is ``PMA`` (main memory is coherent);
      a mapping with neither asks for non-coherent access, which is ``NC``. Without Svpbmt
      every leaf is ``PMA``: the stronger, coherent type, which is what Linux's RISC-V
      driver gives every mapping since it ignores ``IOMMU_CACHE``.
    """
    prot = Prot(prot)
    r = bool(prot & (Prot.READ | Prot.WRITE))
    w = bool(prot & Prot.WRITE)
    x = r and not prot & Prot.NOEXEC
    if not svpbmt:
        pbmt = Pbmt.PMA
    elif prot & Prot.MMIO:
        pbmt = Pbmt.IO
    elif prot & Prot.CACHE:
        pbmt = Pbmt.PMA
    else:
        pbmt = Pbmt.NC
    return r, w, x, pbmt


class _Domain:
    """What every domain has: a host and what is attached to it: device_ids (the RID's
    domain) and ``(device_id, pasid)`` pairs (a PASID's domain)."""

    kind: str | None = None

    def __init__(self, host: "HostIommu | None") -> None:
        self.host = host
        self.devices: set[int | tuple[int, int]] = set()

    def attached(self) -> list[int | tuple[int, int]]:
        """What is attached, in order: by device_id, the RID before its PASIDs."""
        return sorted(self.devices, key=lambda d: d if isinstance(d, tuple) else (d, -1))

    def __repr__(self) -> str:
        return f"<{self.kind} domain, devices {self.attached()}>"


class _Static(_Domain):
    # The identity and blocking domains: one of each, shared by every device.
    def __init__(self, kind: str) -> None:
        super().__init__(None)
        self.kind = kind


#: The identity domain: DMA is not translated.
IDENTITY = _Static("identity")
#: The blocking domain: DMA is refused (``DC.V=0``).
BLOCKED = _Static("blocked")


class _TableDomain(_Domain):
    """A domain whose page table the host owns (paging or nest parent)."""

    def __init__(self, host: "HostIommu", table: PageTable, tag: int) -> None:
        super().__init__(host)
        self.table = table
        self.tag = tag
        self.alive = True

    @property
    def page_sizes(self) -> int:
        """Bitmap of the page sizes of the table (``pgsize_bitmap``)."""
        return sum(self.table.page_sizes)

    def map(self, iova: int, pa: int, size: int, prot: Prot) -> None:
        """Map ``[iova, iova + size)`` to ``[pa, pa + size)`` with ``prot``; fenced.

        Raises
        ------
        ValueError
            On a misaligned or out-of-range address (the caller validates first).
        OutOfMemory
            If no table page could be allocated; what was mapped is taken back first.
        """
        r, w, x, pbmt = pte_attributes(prot, self.table.svpbmt)
        try:
            changes = self.table.map(iova, pa, size, r=r, w=w, x=x, pbmt=pbmt)
        except OutOfMemory:
            self._sync(self.table.unmap(iova, size))
            raise
        self._sync(changes)

    def unmap(self, iova: int, size: int) -> None:
        """Remove every leaf in ``[iova, iova + size)``; invalidated and fenced."""
        self.unmap_many([(iova, size)])

    def unmap_many(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Remove every leaf in each ``(iova, size)`` of ``ranges``, then one invalidation
        and one fence for all of them."""
        changes = None
        for iova, size in ranges:
            c = self.table.unmap(iova, size)
            changes = c if changes is None else changes.merge(c)
        if changes is not None:
            self._sync(changes)

    def lookup(self, iova: int) -> Translation | None:
        """The table's translation of ``iova`` (a software walk), or ``None``."""
        return self.table.lookup(iova)

    def _sync(self, changes):
        self.host.sync(self, changes)


class PagingDomain(_TableDomain):
    """A kernel-managed first-stage address space: a table and its PSCID."""

    kind = "paging"

    @property
    def msi_reserved(self) -> tuple[int, int] | None:
        """The IOVAs no user mapping may take: the MSI window the host maps itself."""
        return None if self.host is None else self.host.msi_window

    @property
    def pscid(self) -> int:
        return self.tag

    @property
    def aperture(self) -> tuple[int, int]:
        """``(first, last)`` IOVAs the table translates: the lower canonical half.

        Linux's RISC-V driver sets ``aperture_end = DMA_BIT_MASK(va_bits - 1)``; the upper
        half would need sign-extended IOVAs no DMA API hands out.
        """
        return 0, (1 << (self.table.va_bits - 1)) - 1


class ParentDomain(_TableDomain):
    """A kernel-managed second-stage table and its GSCID (iommufd ``NEST_PARENT``)."""

    kind = "nest_parent"

    def __init__(self, host: "HostIommu", table: PageTable, tag: int) -> None:
        super().__init__(host, table, tag)
        #: The nested domains built on this parent.
        self.children: set[NestedDomain] = set()

    @property
    def gscid(self) -> int:
        return self.tag

    @property
    def aperture(self) -> tuple[int, int]:
        """``(first, last)`` guest physical addresses the table translates."""
        return 0, (1 << self.table.va_bits) - 1

    #: No MSI page table (see :class:`MsiDomain`).
    msi: MsiPageTable | None = None

    @property
    def msi_reserved(self) -> tuple[int, int] | None:
        """A plain nest parent reserves nothing: the guest's own layout decides."""
        return None


class MsiDomain(ParentDomain):
    """A second-stage domain whose MSIs are isolated: its table, its GSCID and an MSI page
    table over the host's MSI window (module docstring, "MSI isolation").

    Attributes
    ----------
    msi : iogate.firmware.msi.MsiPageTable
        Pattern = the window's first page number, mask = its page count - 1: interrupt
        file k of the window is entry k, at guest address ``window + k * 4096``.
    granted : dict
        ``{file: ("basic", ppn) or ("mrif", mrif, notice_ppn, nid)}`` of the files granted.
    """

    kind = "msi_paging"

    def __init__(self, host: "HostIommu", table: PageTable, tag: int,
                 msi: MsiPageTable) -> None:
        super().__init__(host, table, tag)
        self.msi = msi
        self._owner = host
        self._msi = msi
        self.granted: dict[int, tuple] = {}

    @property
    def msi_reserved(self) -> tuple[int, int] | None:
        """The window's guest addresses belong to the MSI page table."""
        return self._owner.msi_window

    @property
    def files(self) -> int:
        """How many interrupt files the window holds (entries of the MSI page table)."""
        return self._msi.entries

    def file_address(self, index: int) -> int:
        """The address of interrupt file ``index`` (its guest address too)."""
        return self._msi.gpa_of(index)

    def grant(self, index: int) -> None:
        """MSIs to interrupt file ``index`` reach it (basic-translate PTE, M=3); fenced."""
        ppn = self.file_address(index) >> 12
        self._owner.driver.msi_map_basic(self._msi, index=index, ppn=ppn)
        self.granted[index] = ("basic", ppn)

    def grant_mrif(self, index: int, mrif: int, notice_ppn: int, nid: int) -> None:
        """MSIs to interrupt file ``index`` are recorded in the MRIF at ``mrif`` and
        announced by the notice MSI ``nid`` to ``notice_ppn << 12`` (MRIF PTE, M=1; a guest
        without an interrupt file of its own); fenced."""
        self._owner.driver.msi_map_mrif(self._msi, index=index, mrif=mrif,
                                        notice_ppn=notice_ppn, nid=nid)
        self.granted[index] = ("mrif", mrif, notice_ppn, nid)

    def revoke(self, index: int) -> None:
        """Interrupt file ``index`` is no longer reachable (V=0: 262); invalidated, fenced."""
        self._owner.driver.msi_unmap(self._msi, index=index)
        self.granted.pop(index, None)


class NestedDomain(_Domain):
    """A guest's first stage over a nest parent (iommufd nested HWPT).

    Attributes
    ----------
    parent : ParentDomain
    fsc : int
        ``DC.fsc`` as the guest gave it: ``iosatp`` with a guest PPN (spec "First-Stage context
        (fsc)": under a non-Bare ``iohgatp`` the PPN is a GPA).
    dtf : bool
        The guest's ``tc.DTF``.
    pscid : int
        The host's PSCID for this address space (the guest's own PSCID is replaced).
    """

    kind = "nested"

    def __init__(self, host: "HostIommu", parent: "ParentDomain", fsc: int, dtf: bool,
                 pscid: int, pdtv: bool = False, dpe: bool = False) -> None:
        super().__init__(host)
        self.parent = parent
        self.fsc = fsc
        self.dtf = dtf
        self.pscid = pscid
        #: The guest owns a process directory: ``fsc`` is its ``pdtp`` (a GPA), the
        #: PSCIDs are the guest's own, in its process contexts.
        self.pdtv = pdtv
        self.dpe = dpe
        self.alive = True
        parent.children.add(self)


class HostIommu:
    """The host's view of one iogate: domains, attached devices, DMA owners, faults.

    Parameters
    ----------
    driver : iogate.firmware.driver.Iommu
        An initialised driver (:meth:`~iogate.firmware.driver.Iommu.init` done).
    model : iogate.cosim.model.IommuModel or None
        The architectural model behind the driver's bus, when there is one; only scenario
        tests look at it, to check what DMA would do. The front-ends never do.
    msi_window : (int, int) or None
        The MSI doorbell window mapped into every paging domain (inclusive; 4 KiB
        aligned), or ``None`` for none.

    Raises
    ------
    TypeError
        If ``driver`` is not a :class:`iogate.firmware.driver.Iommu`.
    ValueError
        If the driver has not been initialised, or ``msi_window`` is not page aligned.
    """

    def __init__(self, driver: Iommu, *, model: "IommuModel | None" = None,
                 msi_window: tuple[int, int] = MSI_WINDOW) -> None:
        if not isinstance(driver, Iommu):
            raise TypeError(f"driver must be a iogate.firmware.driver.Iommu, not {driver!r}")
        if driver.capabilities is None or driver.ddt is None:
            raise ValueError("the driver must be initialised (Iommu.init) first")
        if msi_window is not None:
            first, last = msi_window
            if first % 4096 or (last + 1) % 4096 or last < first:
                raise ValueError(f"msi_window must be 4 KiB aligned, not {msi_window!r}")
        self.driver = driver
        self.bus = driver.bus
        self.model = model
        self.msi_window = msi_window
        caps = driver.capabilities
        self.svpbmt = bool(caps["svpbmt"])
        self.stage1_mode = IosatpMode.SV48 if caps["sv48"] else IosatpMode.SV39
        self.stage2_mode = (IohgatpMode.SV48X4 if caps["sv48x4"] else
                            IohgatpMode.SV39X4 if caps["sv39x4"] else None)
        self.device_id_bits = driver.ddt.device_id_bits
        #: The kernel log (``pr_warn``/``dev_warn`` lines of the front-ends).
        self.log: list[str] = []
        # PSCID 0 and GSCID 0 are left unused so that a zero in a command never names a
        # live address space by accident.
        self._pscids = IdAllocator(1, (1 << 20) - 1)
        self._gscids = IdAllocator(1, (1 << 16) - 1)
        self._attached: dict[int, _Domain] = {}
        # PASID attachments: device_id -> {pasid: PagingDomain}, and each such device's
        # process directory.
        self._pasids: dict[int, dict[int, PagingDomain]] = {}
        self._pdts: dict[int, ProcessDirectory] = {}
        #: Widest PASID + 1 the IOMMU indexes (``dev->iommu->max_pasids``): 0 without
        #: process contexts.
        self.max_pasids = 1 << driver.process_id_bits if driver.process_id_bits else 0
        self._owners: dict[int, object] = {}
        self._faults: list[FaultRecord] = []
        self.lost_faults = False

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def on_model(cls, config: Config | None = None, *, device_id_bits: int | None = None,
                 cache: bool = True, msi_window: tuple[int, int] = MSI_WINDOW) -> "HostIommu":
        """A host over a fresh architectural model (``iogate.cosim.model.IommuModel``).

        Parameters
        ----------
        config : iogate.hdl.Config or None
            Defaults to :data:`DEFAULT_CONFIG`.
        device_id_bits : int or None
            Widest device_id that will be used (chooses the directory mode); see
            :meth:`on_bus`.
        cache : bool
            The model answers from its own caches, as hardware would, so that a missing
            invalidation shows up as a stale answer.
        """
        from iogate.cosim.model import IommuModel
        from iogate.cosim.model.bus import ModelBus
        from iogate.cosim.model.memory import Memory
        model = IommuModel(DEFAULT_CONFIG if config is None else config, Memory(),
                           cache=cache)
        host = cls.on_bus(ModelBus(model), device_id_bits=device_id_bits,
                          msi_window=msi_window)
        host.model = model
        return host

    @classmethod
    def on_bus(cls, bus: Bus, *, pool: tuple[int, int] = TABLE_POOL,
               device_id_bits: int | None = None,
               msi_window: tuple[int, int] = MSI_WINDOW) -> "HostIommu":
        """A host over any :class:`iogate.firmware.bus.Bus`: a driver is made and initialised.

        Parameters
        ----------
        pool : (int, int)
            ``(base, size)`` of the memory the driver allocates from.
        device_id_bits : int or None
            Widest device_id that will be used. ``None``: 16 (a PCI BDF) if the IOMMU has
            a directory mode that reaches it, else 7 (1LVL, the hardware's first slice).
        """
        for bits_ in (16, 7) if device_id_bits is None else (device_id_bits,):
            driver = Iommu(bus, PageAllocator(bus, *pool))
            try:
                driver.init(device_id_bits=bits_)
            except UnsupportedError:
                if bits_ == 7 or device_id_bits is not None:
                    raise
                continue
            return cls(driver, msi_window=msi_window)
        raise AssertionError("unreachable: the last try returns or raises")

    @classmethod
    def of(cls, backend: "HostIommu | Iommu | Bus | None") -> "HostIommu":
        """The host for ``backend``: ``None`` (a new model), a host, a driver or a bus."""
        if backend is None:
            return cls.on_model()
        if isinstance(backend, HostIommu):
            return backend
        if isinstance(backend, Iommu):
            return cls(backend)
        if all(hasattr(backend, m) for m in ("mmio_read", "mmio_write", "mem_read",
                                              "mem_write")):
            return cls.on_bus(backend)
        raise TypeError(f"backend must be None, a HostIommu, a iogate.firmware.driver.Iommu or a "
                        f"iogate.firmware.bus.Bus, not {backend!r}")

    # -- what the IOMMU offers ------------------------------------------------------------

    def capable(self, device_id: int, cap: Cap) -> bool:
        """``device_iommu_capable()`` for a device behind this IOMMU.

        ``CACHE_COHERENCY``: yes, "The RISC-V IOMMU is always DMA cache coherent" (Linux's
        driver), and every leaf the host writes for an ``IOMMU_CACHE`` mapping is PMA.
        ``ENFORCE_CACHE_COHERENCY``: no. The RISC-V IOMMU has no control that stops a
        device's no-snoop transactions, so it cannot "prevent any kind of DMA from
        bypassing IOMMU_CACHE"; Linux's RISC-V driver does not implement it either.
        """
        return Cap(cap) is Cap.CACHE_COHERENCY

    @property
    def stage1_page_sizes(self) -> int:
        """Bitmap of the leaf sizes of a paging domain's table (``pgsize_bitmap``):
        4 KiB, 64 KiB (Svnapot, mandatory for the IOMMU), 2 MiB, 1 GiB, and 512 GiB with
        Sv48 (Privileged spec "Sv39", "Sv48", "Svnapot")."""
        levels = self.stage1_mode.levels
        sizes = [PageTable.page_size(level) for level in range(levels)] + [NAPOT_SIZE]
        return sum(sizes)

    @property
    def stage1_aperture(self) -> tuple[int, int]:
        """``(first, last)`` IOVAs of a paging domain (see :attr:`PagingDomain.aperture`)."""
        return 0, (1 << (self.stage1_mode.va_bits - 1)) - 1

    @property
    def msi_isolation(self) -> bool:
        """The host can isolate a device's MSIs (Linux's ``iommu_group_has_isolated_msi``):
        the IOMMU translates MSIs (``capabilities.MSI_FLAT``), has a second stage for the
        :class:`MsiDomain`, and the window is a naturally aligned power-of-two number of
        pages (one MSI page-table entry per interrupt file)."""
        if not self.driver.capabilities["msi_flat"] or self.stage2_mode is None:
            return False
        if self.msi_window is None:
            return False
        first, last = self.msi_window
        pages = (last + 1 - first) >> 12
        return pages & (pages - 1) == 0 and (first >> 12) % pages == 0

    def warn(self, line: str) -> None:
        """Append ``line`` to :attr:`log` (the kernel's ``pr_warn``)."""
        self.log.append(line)

    def valid_device_id(self, device_id: object) -> bool:
        """``device_id`` is an integer the device directory reaches."""
        return (isinstance(device_id, int) and not isinstance(device_id, bool)
                and 0 <= device_id < 1 << self.device_id_bits)

    # -- domains --------------------------------------------------------------------------

    def _tagged_table(self, ids, mode):
        """A tag from ``ids`` and a new empty table of ``mode``; the tag is given back if
        the table cannot be allocated.

        Raises
        ------
        IdsExhausted, OutOfMemory
        """
        tag = ids.alloc()
        try:
            return tag, self.driver.page_table(mode)
        except OutOfMemory:
            ids.free(tag)
            raise

    def paging_domain(self) -> PagingDomain:
        """A new, empty first-stage domain with its own PSCID (and the MSI window).

        Raises
        ------
        IdsExhausted, OutOfMemory
        """
        pscid, table = self._tagged_table(self._pscids, self.stage1_mode)
        domain = PagingDomain(self, table, pscid)
        if self.msi_window is not None:
            first, last = self.msi_window
            try:
                domain.map(first, first, last - first + 1,
                           Prot.READ | Prot.WRITE | Prot.MMIO | Prot.NOEXEC)
            except OutOfMemory:
                self.free_domain(domain)
                raise
        return domain

    def parent_domain(self) -> ParentDomain:
        """A new, empty second-stage domain with its own GSCID.

        Raises
        ------
        ValueError
            If the IOMMU offers no second stage.
        IdsExhausted, OutOfMemory
        """
        if self.stage2_mode is None:
            raise ValueError("the IOMMU offers no second-stage mode")
        gscid, table = self._tagged_table(self._gscids, self.stage2_mode)
        return ParentDomain(self, table, gscid)

    def msi_domain(self) -> MsiDomain:
        """A new, empty :class:`MsiDomain`: a second-stage table, its GSCID and an MSI page
        table over the window with no interrupt file granted.

        Raises
        ------
        ValueError
            If the host cannot isolate MSIs (:attr:`msi_isolation`).
        IdsExhausted, OutOfMemory
        """
        if not self.msi_isolation or self.stage2_mode is None or self.msi_window is None:
            raise ValueError("this IOMMU cannot isolate MSIs (no MSI_FLAT or second stage)")
        first, last = self.msi_window
        pages = (last + 1 - first) >> 12
        gscid, table = self._tagged_table(self._gscids, self.stage2_mode)
        try:
            msi = self.driver.msi_page_table(pages - 1, first >> 12)
        except OutOfMemory:
            table.destroy()
            self._gscids.free(gscid)
            raise
        return MsiDomain(self, table, gscid, msi)

    def nested_domain(self, parent: ParentDomain, *, fsc: int, dtf: bool = False,
                      pdtv: bool = False, dpe: bool = False) -> NestedDomain:
        """A guest first stage ``fsc`` (an ``iosatp`` with a guest PPN) over ``parent``, or
        with ``pdtv`` a guest process directory (``fsc`` its ``pdtp``, a guest PPN).

        The caller has checked ``fsc``; it is written to device contexts as given.
        """
        if not isinstance(parent, ParentDomain) or not parent.alive:
            raise ValueError("parent must be a live ParentDomain")
        pscid = self._pscids.alloc()
        return NestedDomain(self, parent, fsc, bool(dtf), pscid, bool(pdtv), bool(dpe))

    def free_domain(self, domain: "_Domain") -> None:
        """Destroy a domain no device is attached to, and give back its tag and tables.

        Its address space is invalidated (``IOTINVAL.VMA`` with its PSCID, or
        ``IOTINVAL.GVMA`` with its GSCID) and fenced before the tag can be reused and
        before the table pages are freed.

        Raises
        ------
        ValueError
            If devices are still attached, or a nest parent still has nested domains.
        """
        if domain.devices:
            raise ValueError(f"devices {domain.attached()} are still attached")
        if isinstance(domain, ParentDomain):
            if domain.children:
                raise ValueError("nested domains still use this parent")
            # GVMA also drops the MSI PTEs cached for the GSCID (reference N.4.5).
            self.driver.run([commands.iotinval_vma(gscid=domain.gscid),
                             commands.iotinval_gvma(gscid=domain.gscid)])
            domain.table.destroy()
            if domain.msi is not None:
                domain.msi.destroy()
            self._gscids.free(domain.gscid)
        elif isinstance(domain, PagingDomain):
            self.driver.run([commands.iotinval_vma(pscid=domain.pscid)])
            domain.table.destroy()
            self._pscids.free(domain.pscid)
        elif isinstance(domain, NestedDomain):
            # A guest directory's PSCIDs are the guest's: all of the VM's first stage.
            self.driver.run([commands.iotinval_vma(
                pscid=None if domain.pdtv else domain.pscid, gscid=domain.parent.gscid)])
            domain.parent.children.discard(domain)
            self._pscids.free(domain.pscid)
        else:
            raise ValueError(f"{domain!r} cannot be freed")
        domain.alive = False

    def sync(self, domain: "PagingDomain | ParentDomain", changes: TableChanges) -> None:
        """Invalidate what ``changes`` to ``domain``'s table left stale, then fence."""
        if isinstance(domain, ParentDomain):
            self.driver.sync(domain.table, changes, gscid=domain.gscid)
        else:
            self.driver.sync(domain.table, changes, pscid=domain.pscid)
        if not changes:
            self.driver.fence()

    def invalidate(self, cmds: Sequence[int]) -> None:
        """Submit raw commands (already checked and rewritten) and an ``IOFENCE.C``."""
        self.driver.cq.submit(*cmds)
        self.driver.fence()

    # -- devices --------------------------------------------------------------------------

    def domain_of(self, device_id: int) -> "_Domain":
        """The domain ``device_id`` is attached to (``BLOCKED`` if never attached)."""
        return self._attached.get(device_id, BLOCKED)

    def attach(self, device_id: int, domain: "_Domain") -> None:
        """Point ``device_id``'s device context at ``domain``; invalidated and fenced.

        The driver clears ``V`` and invalidates the old context before writing the new
        one, so no request is translated by a mix of the two.
        """
        if not self.valid_device_id(device_id):
            raise ValueError(f"device_id {device_id!r} is not reachable in the directory")
        d = self.driver
        if self._pasids.get(device_id):
            self._attach_default_process(device_id, domain)
        elif domain is IDENTITY:
            d.set_bypass(device_id)
        elif domain is BLOCKED:
            d.set_blocked(device_id)
        elif isinstance(domain, PagingDomain):
            d.set_first_stage(device_id, domain.table, pscid=domain.pscid)
        elif isinstance(domain, ParentDomain):
            d.set_second_stage(device_id, domain.table, gscid=domain.gscid, msi=domain.msi)
        elif isinstance(domain, NestedDomain):
            parent = domain.parent
            # With PDTV, DC.ta.PSCID is ignored (the PSCIDs are in the guest's PCs).
            d.set_dc(device_id, tc=bits.pack(TC, v=1, dtf=domain.dtf, pdtv=domain.pdtv,
                                             dpe=domain.dpe),
                     iohgatp=bits.pack(IOHGATP, mode=parent.table.mode, gscid=parent.gscid,
                                       ppn=parent.table.root >> 12),
                     ta=0 if domain.pdtv else bits.pack(TA, pscid=domain.pscid),
                     fsc=domain.fsc, **Iommu._msi_words(parent.msi))
        else:
            raise TypeError(f"not a domain: {domain!r}")
        self.domain_of(device_id).devices.discard(device_id)
        domain.devices.add(device_id)
        self._attached[device_id] = domain

    # -- PASIDs (iommu_attach_device_pasid) ----------------------------------------------

    def pasids_of(self, device_id: int) -> dict[int, PagingDomain]:
        """``{pasid: domain}`` of ``device_id``'s PASID attachments."""
        return dict(self._pasids.get(device_id, {}))

    def valid_pasid(self, pasid: object) -> bool:
        """``pasid`` is one a PASID attach may name: 1 to ``max_pasids - 1`` (0 is the
        device's own domain, ``IOMMU_NO_PASID``)."""
        return (isinstance(pasid, int) and not isinstance(pasid, bool)
                and 0 < pasid < self.max_pasids)

    def attach_pasid(self, device_id: int, pasid: int, domain: PagingDomain) -> None:
        """Translate ``device_id``'s requests tagged ``pasid`` through ``domain``; fenced.

        The first PASID puts the device context on a new process directory (the RID domain
        becoming the default process, see the module docstring); a PASID already attached
        is replaced through the driver's PC recipe (old PC invalidated first).

        Raises
        ------
        ValueError
            If ``pasid`` or ``device_id`` is out of range, ``domain`` is not a live paging
            domain, or the device's own domain is nested (a guest directory owns its PASIDs).
        """
        if not self.valid_device_id(device_id) or not self.valid_pasid(pasid):
            raise ValueError(f"no PASID {pasid!r} on device {device_id!r}")
        if not isinstance(domain, PagingDomain) or not domain.alive:
            raise ValueError("a PASID takes a live paging domain")
        rid = self.domain_of(device_id)
        if isinstance(rid, (NestedDomain, ParentDomain)):
            raise ValueError("the device's own domain is not a first-stage one")
        if device_id not in self._pdts:
            # The new directory is built whole (PC 0 for the RID's domain, the PASID's PC)
            # before the device context points at it: untagged DMA never sees a directory
            # without PC 0, no invalidation is needed (the IOMMU never reached these
            # tables), and running out of memory leaves everything as it was.
            pdt = self.driver.process_directory()
            try:
                if isinstance(rid, PagingDomain):
                    pdt.write(0, ProcessContext.make(pscid=rid.pscid, mode=rid.table.mode,
                                                     root=rid.table.root))
                pdt.write(pasid, ProcessContext.make(pscid=domain.pscid,
                                                     mode=domain.table.mode,
                                                     root=domain.table.root))
            except OutOfMemory:
                for page in pdt.pages():
                    self.driver.alloc.free(page)
                raise
            self._pdts[device_id] = pdt
            self._pasids[device_id] = {}
            self.driver.set_process_directory(device_id, pdt, dpe=rid is not IDENTITY)
        else:
            # Only new PDT levels are allocated here, before anything is linked to a PC.
            self.driver.attach_process(device_id, pasid, domain.table, pscid=domain.pscid)
        pasids = self._pasids[device_id]
        old = pasids.get(pasid)
        if old is not None:
            old.devices.discard((device_id, pasid))
        pasids[pasid] = domain
        domain.devices.add((device_id, pasid))

    def detach_pasid(self, device_id: int, pasid: int) -> None:
        """``device_id``'s requests tagged ``pasid`` fault (PC invalid, cause 266); fenced.
        Nothing happens if the PASID is not attached."""
        pasids = self._pasids.get(device_id, {})
        domain = pasids.pop(pasid, None)
        if domain is None:
            return
        self.driver.detach_process(device_id, pasid)
        domain.devices.discard((device_id, pasid))
        if not pasids:
            # No PASID left: back to a context without a directory, then free the table.
            del self._pasids[device_id]
            pdt = self._pdts.pop(device_id)
            rid = self.domain_of(device_id)
            self._attached.pop(device_id, None)
            rid.devices.discard(device_id)
            self.attach(device_id, rid)
            for page in pdt.pages():
                self.driver.alloc.free(page)

    def _attach_default_process(self, device_id, domain):
        # The RID domain of a device with PASIDs: PC 0 under DPE (module docstring).
        if isinstance(domain, (NestedDomain, ParentDomain)):
            raise ValueError("a device with PASIDs takes a first-stage, identity or "
                             "blocking domain")
        pdt = self._pdts[device_id]
        dpe = domain is not IDENTITY
        dc = self.driver.device_context(device_id)
        if bool(bits.get(TC, dc.tc, "dpe")) != dpe:
            self.driver.set_process_directory(device_id, pdt, dpe=dpe)
        if isinstance(domain, PagingDomain):
            self.driver.attach_process(device_id, 0, domain.table, pscid=domain.pscid)
        else:
            self.driver.detach_process(device_id, 0)

    # -- DMA ownership (iommu_device_claim_dma_owner) -------------------------------------

    def owner_of(self, device_id: int) -> object:
        return self._owners.get(device_id)

    def claim(self, device_id: int, owner: object) -> bool:
        """Make ``owner`` the one user of ``device_id``'s DMA; the device is blocked.

        Returns
        -------
        bool
            False if another owner holds the device (Linux: -EBUSY).
        """
        current = self._owners.get(device_id)
        if current is not None:
            return current is owner
        self._owners[device_id] = owner
        self.attach(device_id, BLOCKED)
        return True

    def release(self, device_id: int, owner: object) -> None:
        """``owner`` gives ``device_id`` up; its DMA is blocked before anyone else gets it."""
        if self._owners.get(device_id) is not owner:
            raise ValueError(f"device {device_id:#x} is not owned by {owner!r}")
        for pasid in sorted(self._pasids.get(device_id, {})):
            self.detach_pasid(device_id, pasid)
        self.attach(device_id, BLOCKED)
        del self._owners[device_id]

    # -- faults ---------------------------------------------------------------------------

    def faults(self, device_ids: Iterable[int]) -> list[FaultRecord]:
        """Fault records of ``device_ids`` since the last call, oldest first.

        The fault queue is drained into a host-wide list; each front-end takes the
        records of its own devices, so a drain for one never loses another's.
        """
        drain = self.driver.drain_faults()
        self.lost_faults |= drain.overflow or drain.memory_fault
        self._faults.extend(drain.records)
        wanted = set(device_ids)
        mine = [r for r in self._faults if r.did in wanted]
        self._faults = [r for r in self._faults if r.did not in wanted]
        return mine

