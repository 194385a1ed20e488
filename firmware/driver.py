"""The ``Iommu`` driver object: initialisation, device contexts, mappings, faults.

Everything goes through a :class:`~iogate.firmware.bus.Bus`, so the same driver runs on the
architectural model, on the RTL through cocotb agents and on a board. The initialisation is
the spec's (RISC-V IOMMU spec, "Guidelines for initialization"); every table change is
followed by the spec's invalidation recipe (:mod:`iogate.firmware.invalidate`) and an
``IOFENCE.C``, so when a method returns, the IOMMU uses the new tables and nothing else.
"""

import dataclasses
from collections.abc import Sequence

from iogate.hdl import bits
from iogate.hdl.formats import (
    IOHGATP,
    IOSATP,
    MSI_ADDR_MASK,
    MSIPTP,
    PC_TA,
    PDTP,
    TA,
    TC,
    IohgatpMode,
    IosatpMode,
    MsiptpMode,
    Pbmt,
    PdtpMode,
)
from iogate.hdl.port import Access
from iogate.hdl.regs import (
    CAPABILITIES,
    DDTP,
    FCTL,
    ICVEC,
    IPSR,
    MSI_ADDR,
    MSI_CFG_ENTRY_SIZE,
    MSI_VEC_CTL,
    TR_REQ_CTL,
    TR_REQ_IOVA,
    TR_RESPONSE,
    Igs,
    IommuMode,
    Offset,
)

from iogate.firmware import invalidate
from iogate.firmware.alloc import PAGE_SIZE, PageAllocator
from iogate.firmware.bus import Bus
from iogate.firmware.cq import CommandQueue
from iogate.firmware.ddt import DeviceContext, DeviceDirectory
from iogate.firmware.errors import IommuError, UnsupportedError
from iogate.firmware.fq import FaultDrain, FaultQueue
from iogate.firmware.hpm import PerformanceMonitor
from iogate.firmware.mmio import Registers
from iogate.firmware.mrif import MrifAllocator
from iogate.firmware.msi import MsiPageTable
from iogate.firmware.pagetable import PageTable, Stage, TableChanges
from iogate.firmware.pdt import ProcessContext, ProcessDirectory

__all__ = ["Iommu", "DebugTranslation", "MsiEvents", "MSI_DATA_BASE"]

# The table modes this driver builds, by the name of the capabilities bit that offers
# each (spec "IOMMU capabilities (capabilities)"). Keyed by name: IosatpMode.SV39 and
# IohgatpMode.SV39X4 are both 8.
_MODE_CAPABILITIES = ("sv39", "sv48", "sv57", "sv39x4", "sv48x4", "sv57x4")
# The process-directory modes, shallowest first, by their capabilities bit (spec
# "IOMMU capabilities (capabilities)": PD8, PD17, PD20).
_PDT_MODES = ((PdtpMode.PD8, "pd8"), (PdtpMode.PD17, "pd17"), (PdtpMode.PD20, "pd20"))
_DIRECTORY_MODES = (IommuMode.LVL1, IommuMode.LVL2, IommuMode.LVL3)
#: The interrupt causes, in ``icvec`` field order (spec "Interrupt cause to vector register").
_CAUSES = ("civ", "fiv", "pmiv", "piv")
#: ``msi_data_x`` of vector x is this plus x: never 0, so a doorbell word that is still 0
#: has not been written.
MSI_DATA_BASE = 0x1A0
#: MGPAW by the widest second stage offered (reference N.3.3), else capabilities.PAS.
_MGPAW = (("sv57x4", 59), ("sv48x4", 50), ("sv39x4", 41), ("sv32x4", 34))


@dataclasses.dataclass(frozen=True)
class DebugTranslation:
    """The answer of the debug translation interface (spec "Debug support").

    Attributes
    ----------
    fault : bool
    pa : int or None
        The translated address (None on a fault).
    size : int or None
        Size of the page that ``tr_response.S`` reports (4 KiB when S=0).
    pbmt : Pbmt or int
    """

    fault: bool
    pa: int | None
    size: int | None
    pbmt: int


@dataclasses.dataclass(frozen=True)
class MsiEvents:
    """What :meth:`Iommu.handle_msis` found and did.

    Attributes
    ----------
    vectors : tuple of int
        The vectors whose MSI had arrived in the driver's doorbell page.
    cip : bool
        ``ipsr.cip`` was set and has been cleared (the command queue's state is in
        ``cqcsr``; :meth:`~iogate.firmware.cq.CommandQueue.check` raises its error).
    faults : FaultDrain or None
        The fault queue's records, drained after ``ipsr.fip`` was cleared (None when the
        fault vector had no MSI).
    """

    vectors: tuple[int, ...]
    cip: bool
    faults: FaultDrain | None


class Iommu:
    """A RISC-V IOMMU, driven through ``bus``, with tables allocated from ``alloc``.

    Nothing is read or written until :meth:`init`.

    Parameters
    ----------
    bus : Bus
    alloc : PageAllocator
        Physical memory for the queues, the device directory and page tables.
    cq_entries, fq_entries : int
        Queue sizes (powers of two).
    max_polls : int
        Bound of every poll.
    interrupts : bool
        Enable ``cqcsr.cie`` and ``fqcsr.fie``. Wired unless ``msi``: the driver itself
        polls; wires are for a platform that routes them somewhere.
    msi : bool
        Signal the IOMMU's interrupts as MSIs (``fctl.WSI=0``, needs ``capabilities.IGS``
        MSI or BOTH; reference N.5): ``msi_cfg_tbl`` entry x sends ``MSI_DATA_BASE + x`` to
        word x of a doorbell page of the driver's, which :meth:`handle_msis` polls. An
        IOMMU whose IGS is MSI only always gets MSIs when ``interrupts`` is set.
    """

    def __init__(self, bus: Bus, alloc: PageAllocator, *, cq_entries: int = 64,
                 fq_entries: int = 64, max_polls: int = 10_000,
                 interrupts: bool = False, msi: bool = False) -> None:
        self.bus = bus
        self.alloc = alloc
        self.regs = Registers(bus, max_polls=max_polls)
        self.cq = CommandQueue(self.regs, alloc, entries=cq_entries)
        self.fq = FaultQueue(self.regs, alloc, entries=fq_entries)
        self.interrupts = bool(interrupts)
        self.msi = bool(msi)
        #: The page whose word x vector x's MSI writes (None without msi_cfg_tbl).
        self.msi_doorbells: int | None = None
        #: Extended-format device contexts (``capabilities.MSI_FLAT``), known after init().
        self.extended = False
        self._mrifs: MrifAllocator | None = None
        # None until init(), which every method that reads them requires first.
        self.capabilities: dict[str, int] = None  # type: ignore[assignment]
        self.vectors: dict[str, int] | None = None
        self.ddt: DeviceDirectory = None  # type: ignore[assignment]
        # Valid device contexts written by this driver, by device_id: a second-stage
        # change must also invalidate contexts whose fsc holds a GPA it remaps.
        self._contexts: dict[int, DeviceContext] = {}
        # Process directories this driver pointed device contexts at, by device_id.
        self._pdts: dict[int, ProcessDirectory] = {}
        #: The performance monitor (``capabilities.HPM``), discovered and reset by init().
        self.hpm: PerformanceMonitor | None = None

    # -- initialisation (spec "Guidelines for initialization") -------------------------

    def init(self, *, device_id_bits: int = 16) -> None:
        """Bring the IOMMU up: capabilities, fctl, icvec, CQ, FQ, DDT root, ddtp.

        Parameters
        ----------
        device_id_bits : int
            Width of the device_ids that will be used (1 to 24); the directory mode is the
            shallowest one the IOMMU accepts that reaches them.

        Raises
        ------
        UnsupportedError
            If the version is not 1.x, little-endian or wired interrupts are not
            available, or no directory mode reaches ``device_id_bits``.
        PollTimeout
            If a queue never turns on or ``ddtp`` stays busy.
        """
        if not isinstance(device_id_bits, int) or not 1 <= device_id_bits <= 24:
            raise ValueError(f"device_id_bits must be between 1 and 24, not {device_id_bits!r}")
        caps = bits.unpack(CAPABILITIES, self.regs.read(Offset.CAPABILITIES))
        if caps["version"] >> 4 != 1:
            raise UnsupportedError(f"capabilities.version {caps['version']:#x} is not 1.x")
        self.capabilities = caps
        # HPM reset values are UNSPECIFIED: inhibit and clear it before use (reference N.7).
        self.hpm = PerformanceMonitor(self.bus) if caps["hpm"] else None
        if self.hpm is not None:
            self.hpm.reset()
        # With MSI_FLAT every device context is the 64-byte extended format, with its
        # own device_id split (reference N.3; issue 16 decision 1).
        self.extended = bool(caps["msi_flat"])
        # Mode changes and fctl writes are only specified with the IOMMU Off and the
        # queues off (spec "Features-control register (fctl)", "Device-directory-table
        # pointer (ddtp)"), so an IOMMU left running by an earlier owner is stopped first.
        self._write_ddtp(IommuMode.OFF, 0)
        self._program_fctl(caps)
        self._program_icvec()
        # msi_cfg_tbl is programmed before any *ie is set (its reset value is UNSPECIFIED,
        # reference N.5), and unmasked only when MSIs are used.
        self._program_msi_cfg(caps)
        self.cq.enable(interrupts=self.interrupts)
        self.fq.enable(interrupts=self.interrupts)
        root = self.alloc.alloc(PAGE_SIZE)
        mode = self._choose_directory_mode(device_id_bits, root)
        self.ddt = DeviceDirectory(self.bus, self.alloc, mode, root, extended=self.extended)
        self._contexts.clear()
        self._pdts.clear()

    def _program_fctl(self, caps):
        igs = Igs(caps["igs"])
        if self.msi and igs == Igs.WSI:
            raise UnsupportedError("MSIs requested but capabilities.IGS is WSI")
        if igs == Igs.MSI and self.interrupts:
            self.msi = True          # the only way this IOMMU signals anything
        # fctl.WSI=1 for wires, 0 for MSIs; writable only with IGS=BOTH, else it reads as
        # the one method there is (reference N.5).
        wsi = igs != Igs.MSI and not self.msi
        # Little-endian tables and queues (BE=0); the Sv39x4/Sv48x4 encodings (GXL=0).
        self.regs.write(Offset.FCTL, bits.pack(FCTL, wsi=wsi))
        fctl = bits.unpack(FCTL, self.regs.read(Offset.FCTL))
        if fctl["be"]:
            raise UnsupportedError("fctl.BE stays 1: the IOMMU is big-endian only")
        if fctl["gxl"]:
            raise UnsupportedError("fctl.GXL stays 1: only Sv32x4 second stage")
        if bool(fctl["wsi"]) != wsi:
            raise UnsupportedError(f"fctl.WSI stays {fctl['wsi']} with capabilities.IGS "
                                   f"{igs.name}")

    def _program_icvec(self):
        # Write 0xF to each field and read back how many vector bits are writable (WARL,
        # reference N.5: N writable bits give 2**N vectors); then give each cause (civ,
        # fiv, pmiv, piv) its own vector where there are enough.
        self.regs.write(Offset.ICVEC, bits.pack(ICVEC, civ=0xF, fiv=0xF, pmiv=0xF, piv=0xF))
        readback = bits.unpack(ICVEC, self.regs.read(Offset.ICVEC))
        count = 1 << readback["civ"].bit_length()
        self.vector_count = count
        self.vectors = {name: i % count for i, name in enumerate(_CAUSES)}
        self.regs.write(Offset.ICVEC, bits.pack(ICVEC, **self.vectors))

    def _program_msi_cfg(self, caps):
        # msi_cfg_tbl exists only with IGS != WSI. Entry x: address = word x of the
        # doorbell page, data = MSI_DATA_BASE + x; masked (M=1) unless MSIs are used, so
        # nothing is sent while the driver does not listen.
        self.msi_doorbells = None
        if Igs(caps["igs"]) == Igs.WSI:
            return
        page = self.alloc.alloc(PAGE_SIZE)
        self.msi_doorbells = page
        for x in range(self.vector_count):
            base = int(Offset.MSI_CFG_TBL) + x * MSI_CFG_ENTRY_SIZE
            self.bus.mmio_write(base + 12, 4, bits.pack(MSI_VEC_CTL, m=1))
            self.bus.mmio_write(base, 8, bits.pack(MSI_ADDR, addr=(page + 4 * x) >> 2))
            self.bus.mmio_write(base + 8, 4, MSI_DATA_BASE + x)
            if self.msi:
                if self.bus.mmio_read(base, 8) != page + 4 * x:
                    raise UnsupportedError(f"msi_addr_{x} does not hold {page + 4 * x:#x}")
                self.bus.mmio_write(base + 12, 4, bits.pack(MSI_VEC_CTL, m=0))

    def msi_cfg(self, vector: int) -> tuple[int, int, bool]:
        """``(address, data, masked)`` of ``msi_cfg_tbl`` entry ``vector`` as read now."""
        base = int(Offset.MSI_CFG_TBL) + vector * MSI_CFG_ENTRY_SIZE
        addr = bits.get(MSI_ADDR, self.bus.mmio_read(base, 8), "addr") << 2
        return (addr, self.bus.mmio_read(base + 8, 4),
                bool(bits.get(MSI_VEC_CTL, self.bus.mmio_read(base + 12, 4), "m")))

    # -- IOMMU MSIs (reference N.5) -------------------------------------------------------

    def pending_msis(self) -> tuple[int, ...]:
        """The vectors whose MSI is in the doorbell page now (not cleared)."""
        if self.msi_doorbells is None:
            return ()
        raw = self.bus.mem_read(self.msi_doorbells, 4 * self.vector_count)
        return tuple(x for x in range(self.vector_count)
                     if int.from_bytes(raw[4 * x:4 * x + 4], "little") == MSI_DATA_BASE + x)

    def wait_msi(self, polls: int | None = None) -> tuple[int, ...]:
        """Poll the doorbell page until an MSI is there (at most ``polls`` reads, default
        ``max_polls``); the vectors found, ``()`` if none came."""
        for _ in range(self.regs.max_polls if polls is None else polls):
            found = self.pending_msis()
            if found:
                return found
        return ()

    def handle_msis(self) -> MsiEvents:
        """The interrupt handler, run when an MSI may have arrived.

        For each vector whose word is in the doorbell page: the word is cleared, then the
        causes mapped to it are handled. Fault vector: ``ipsr.fip`` is cleared (RW1C) and
        only *then* ``fqt`` read and the queue drained (:meth:`FaultQueue.drain`). With
        MSIs a record that lands while ``fip`` is still 1 sends nothing (one message per
        0->1 edge), so reading ``fqt`` after the clear is what keeps it from being lost
        (reference N.9 P7). Command vector: ``ipsr.cip`` is cleared.
        """
        self._require_init()
        fired = self.pending_msis()
        doorbells, vectors = self.msi_doorbells, self.vectors
        if not fired or doorbells is None or vectors is None:
            return MsiEvents((), False, None)
        for x in fired:
            self.bus.mem_write(doorbells + 4 * x, bytes(4))
        causes = {name for name, v in vectors.items() if v in fired}
        cip = False
        if "civ" in causes:
            cip = bool(bits.get(IPSR, self.regs.read(Offset.IPSR), "cip"))
            self.regs.write(Offset.IPSR, bits.pack(IPSR, cip=1))
        faults = self.fq.drain() if "fiv" in causes else None
        return MsiEvents(fired, cip, faults)

    def _write_ddtp(self, mode, root):
        self.regs.poll(Offset.DDTP, "busy", 0)
        self.regs.write(Offset.DDTP, bits.pack(DDTP, iommu_mode=mode, ppn=root >> 12))
        return bits.get(DDTP, self.regs.poll(Offset.DDTP, "busy", 0), "iommu_mode")

    def _choose_directory_mode(self, device_id_bits, root):
        # iommu_mode is WARL: a mode the IOMMU lacks does not stick. Try the modes that
        # reach device_id_bits, shallowest first, going back to Off after each miss
        # (switching between directory modes must go through Off,
        # spec "Device-directory-table pointer (ddtp)").
        for mode in _DIRECTORY_MODES:
            if mode.device_id_bits_of(self.extended) < device_id_bits:
                continue
            if self._write_ddtp(mode, root) == mode:
                return mode
            self._write_ddtp(IommuMode.OFF, 0)
        raise UnsupportedError(f"no directory mode reaches {device_id_bits}-bit device_ids")

    # -- queues ---------------------------------------------------------------------------

    def run(self, cmds: Sequence[int]) -> None:
        """Submit ``cmds`` and an ``IOFENCE.C``, and wait for the fence (nothing if empty)."""
        if cmds:
            self.cq.submit(*cmds)
            self.cq.fence()

    def fence(self, *, pr: bool = False, pw: bool = False) -> int:
        """An ``IOFENCE.C`` on its own (``pr``/``pw`` also commit earlier DMA)."""
        return self.cq.fence(pr=pr, pw=pw)

    def drain_faults(self, limit: int | None = None) -> FaultDrain:
        """The records in the fault queue (:class:`~iogate.firmware.fq.FaultDrain`)."""
        return self.fq.drain(limit)

    # -- page tables ----------------------------------------------------------------------

    def _require_init(self):
        if self.ddt is None:
            raise IommuError("the IOMMU is not initialised: call init() first")

    def _check_mode(self, mode):
        self._require_init()
        name = mode.name.lower()
        if name not in _MODE_CAPABILITIES or not self.capabilities[name]:
            raise UnsupportedError(f"the IOMMU does not offer {mode.name}")

    def page_table(self, mode: IosatpMode | IohgatpMode) -> PageTable:
        """A new, empty :class:`~iogate.firmware.pagetable.PageTable` in system memory.

        Raises
        ------
        UnsupportedError
            If ``capabilities`` does not offer ``mode``.
        """
        self._check_mode(mode)
        return PageTable(self.bus, self.alloc, mode, oa_bits=self.capabilities["pas"],
                         svpbmt=bool(self.capabilities["svpbmt"]))

    def sync(self, table: PageTable, changes: TableChanges, *, pscid: int | None = None,
             gscid: int | None = None) -> None:
        """Invalidate what ``changes`` (to ``table``) left stale, fence, free unlinked pages.

        First-stage changes need the ``pscid`` of the contexts using the table, and the
        ``gscid`` too if the table is a guest's (nested). Second-stage changes need the
        ``gscid``; contexts of that VM whose first-stage root GPA was remapped also get
        ``IODIR.INVAL_DDT`` (spec "Changing second-stage page table entry": a cached DC
        may hold the translated root).
        """
        if changes.stage is Stage.FIRST:
            if pscid is None:
                raise TypeError("first-stage changes need the pscid of the address space")
            cmds = invalidate.first_stage(changes, pscid=pscid, gscid=gscid)
        else:
            if gscid is None:
                raise TypeError("second-stage changes need the gscid of the VM")
            if pscid is not None:
                raise ValueError("second-stage invalidations take no pscid (PSCV=1 is illegal "
                                 "with IOTINVAL.GVMA)")
            cmds = invalidate.second_stage(changes, gscid=gscid)
            cmds += [cmd for did in self._remapped_roots(changes, gscid)
                     for cmd in invalidate.dc_change(did, DeviceContext())]
        self.run(cmds)
        table.release(changes)

    def _remapped_roots(self, changes, gscid):
        for did, dc in sorted(self._contexts.items()):
            if (bits.get(IOHGATP, dc.iohgatp, "mode") == IohgatpMode.BARE
                    or bits.get(IOHGATP, dc.iohgatp, "gscid") != gscid
                    or bits.get(IOSATP, dc.fsc, "mode") == IosatpMode.BARE):
                continue
            if bits.get(TC, dc.tc, "pdtv"):
                # pdtp, the PDTEs and each PC.fsc hold GPAs the directory caches may keep
                # translated (reference N.1.7); the guest may own the PDT, so any remap in
                # the VM is taken to touch one: INVAL_DDT DV=1 drops the DC and its PDT.
                yield did
                continue
            root = bits.get(IOSATP, dc.fsc, "ppn") << 12
            if changes.nonleaf or any(a <= root < a + n for a, n in changes.leaves):
                yield did

    def map(self, table: PageTable, iova: int, pa: int, size: int, *, r: bool = False,
            w: bool = False, x: bool = False, pbmt: Pbmt = Pbmt.PMA, pscid: int | None = None,
            gscid: int | None = None) -> TableChanges:
        """:meth:`PageTable.map` followed by :meth:`sync`; returns the changes."""
        changes = table.map(iova, pa, size, r=r, w=w, x=x, pbmt=pbmt)
        self.sync(table, changes, pscid=pscid, gscid=gscid)
        return changes

    def unmap(self, table: PageTable, iova: int, size: int, *, pscid: int | None = None,
              gscid: int | None = None) -> TableChanges:
        """:meth:`PageTable.unmap` followed by :meth:`sync`; returns the changes."""
        changes = table.unmap(iova, size)
        self.sync(table, changes, pscid=pscid, gscid=gscid)
        return changes

    # -- device contexts --------------------------------------------------------------------

    def device_context(self, device_id: int) -> DeviceContext:
        """The device context of ``device_id`` as it is in memory."""
        return self.ddt.read(device_id)

    def set_dc(self, device_id: int, *, tc: int, iohgatp: int = 0, ta: int = 0, fsc: int = 0,
               msiptp: int = 0, msi_addr_mask: int = 0, msi_addr_pattern: int = 0,
               rsvd: int = 0, check: bool = True) -> None:
        """Write the device context of ``device_id`` and invalidate.

        Parameters
        ----------
        device_id : int
        tc, iohgatp, ta, fsc : int
            The four doublewords (layouts :data:`~iogate.hdl.formats.TC`, ``IOHGATP``, ``TA``,
            ``IOSATP``).
        msiptp, msi_addr_mask, msi_addr_pattern, rsvd : int
            The extended format's doublewords 4-7 (``MSIPTP``, ``MSI_ADDR_MASK``; dw7 is
            reserved); only an IOMMU with ``capabilities.MSI_FLAT`` has them.
        check : bool
            Refuse reserved bits and modes ``capabilities`` does not offer. A test that
            wants the IOMMU to see a misconfigured context (cause 259) passes False.

        Notes
        -----
        A context is 4 doublewords and the IOMMU may read it between two stores, so a
        valid context is never edited in place: ``tc.V`` is cleared first and the old
        context's invalidation recipe run (spec "Changing device directory table entry",
        which decides on the old values), then the new words are stored with ``tc``
        last, then ``IODIR.INVAL_DDT`` ``DV=1``. Each step ends with an ``IOFENCE.C``.
        """
        self._require_init()
        new = DeviceContext(tc, iohgatp, ta, fsc, msiptp, msi_addr_mask, msi_addr_pattern, rsvd)
        if new.has_extended_fields and not self.extended:
            raise UnsupportedError("the IOMMU has no MSI_FLAT: device contexts have no "
                                   "msiptp, msi_addr_mask or msi_addr_pattern")
        if check:
            self._check_dc(new)
        self.ddt.check_device_id(device_id)
        old = self.ddt.read(device_id)
        rest = self.ddt.words[1:]       # every doubleword but tc, in memory order
        if old.valid and new.valid:
            self.ddt.write(device_id, dataclasses.replace(old, tc=old.tc & ~1), words=("tc",))
            self.run(invalidate.dc_change(device_id, old))
            self.ddt.write(device_id, new, words=(*rest, "tc"))
            self.run(invalidate.dc_change(device_id, DeviceContext()))
        elif new.valid:
            self.ddt.write(device_id, new, words=(*rest, "tc"))
            self.run(invalidate.dc_change(device_id, old))
        else:
            self.ddt.write(device_id, new, words=("tc", *rest))
            self.run(invalidate.dc_change(device_id, old))
        if new.valid:
            self._contexts[device_id] = new
        else:
            self._contexts.pop(device_id, None)
        if not bits.get(TC, new.tc, "pdtv"):
            self._pdts.pop(device_id, None)

    def _check_dc(self, dc):
        pdtv = bool(bits.get(TC, dc.tc, "pdtv"))
        fsc_layout, fsc_enum = (PDTP, PdtpMode) if pdtv else (IOSATP, IosatpMode)
        for name, layout in (("tc", TC), ("ta", TA), ("fsc", fsc_layout)):
            reserved = getattr(dc, name) & bits.reserved_mask(layout)
            if reserved:
                raise ValueError(f"{name} has reserved bits set: {reserved:#x}")
        # PDTV (and DPE with it) only where the IOMMU has a PDT mode: a directory that is
        # always Bare would be an expensive way to say "first stage Bare".
        no_pdt = ("pdtv", "dpe") if not self.process_id_bits else ()
        unsupported = [n for n in ("en_ats", "en_pri", "t2gpa", *no_pdt, "prpr", "gade",
                                   "sade", "sbe", "sxl") if bits.get(TC, dc.tc, n)]
        if unsupported:
            raise UnsupportedError(f"tc.{unsupported[0]} is not offered by this driver")
        if bits.get(TC, dc.tc, "dpe") and not pdtv:
            # Spec "Device-context configuration checks": DPE=1 with PDTV=0 is cause 259.
            raise ValueError("tc.DPE needs tc.PDTV")
        for name, enum, word, layout in (("iohgatp", IohgatpMode, dc.iohgatp, IOHGATP),
                                         ("fsc", fsc_enum, dc.fsc, fsc_layout)):
            value = bits.get(layout, word, "mode")
            try:
                mode = enum(value)
            except ValueError:
                raise ValueError(f"{name}.MODE {value} is a reserved encoding") from None
            if mode == enum.BARE:
                continue
            if enum is PdtpMode:
                self._check_pdt_mode(mode)
            else:
                self._check_mode(mode)
        gmode = bits.get(IOHGATP, dc.iohgatp, "mode")
        # The second-stage root is 16 KiB and must be 16 KiB aligned (spec "IO
        # hypervisor guest address translation and protection (iohgatp)").
        if gmode != IohgatpMode.BARE and bits.get(IOHGATP, dc.iohgatp, "ppn") & 3:
            raise ValueError("iohgatp.PPN must be 16 KiB aligned")
        if self.extended:
            self._check_msi_fields(dc, gmode)

    def _check_msi_fields(self, dc, gmode):
        # The driver's side of the extended-format checks (reference N.3.3; issue 16
        # decision 1): each one the IOMMU would answer with cause 259.
        reserved = dc.msiptp & bits.reserved_mask(MSIPTP)
        if reserved:
            raise ValueError(f"msiptp has reserved bits set: {reserved:#x}")
        value = bits.get(MSIPTP, dc.msiptp, "mode")
        if value not in (MsiptpMode.OFF, MsiptpMode.FLAT):
            raise ValueError(f"msiptp.MODE {value} is reserved or custom")
        if value != MsiptpMode.OFF and gmode == IohgatpMode.BARE:
            raise ValueError("msiptp.MODE Flat needs a second stage (iohgatp not Bare)")
        limit = 1 << max(self.mgpaw - 12, 0)
        for name in ("msi_addr_mask", "msi_addr_pattern"):
            word = getattr(dc, name)
            if word & bits.reserved_mask(MSI_ADDR_MASK) or word >= limit:
                raise ValueError(f"{name} {word:#x} has bits at or above MGPAW-12 "
                                 f"({self.mgpaw - 12}) set: reserved")
        if dc.rsvd:
            raise ValueError("device-context doubleword 7 is reserved")

    @property
    def mgpaw(self) -> int:
        """The maximum guest physical address width (reference N.3.3): 59 with Sv57x4,
        50 with Sv48x4, 41 with Sv39x4, 34 with Sv32x4, else ``capabilities.PAS``."""
        self._require_init()
        for cap, width in _MGPAW:
            if self.capabilities.get(cap):
                return width
        return self.capabilities["pas"]

    # -- MSI page tables (reference N.4) ----------------------------------------------------

    def msi_page_table(self, mask: int, pattern: int) -> MsiPageTable:
        """A new MSI page table, every entry invalid, for the guest pages that match
        ``pattern`` under ``mask`` (:class:`~iogate.firmware.msi.MsiPageTable`).

        Raises
        ------
        UnsupportedError
            Without ``capabilities.MSI_FLAT``.
        """
        self._require_init()
        if not self.extended:
            raise UnsupportedError("the IOMMU has no MSI_FLAT: no MSI page tables")
        return MsiPageTable(self.bus, self.alloc, mask, pattern, mgpaw=self.mgpaw)

    @property
    def mrifs(self) -> MrifAllocator:
        """Where memory-resident interrupt files come from (system memory of ``alloc``)."""
        if self._mrifs is None:
            self._mrifs = MrifAllocator(self.bus, self.alloc)
        return self._mrifs

    def msi_gscids(self, table: MsiPageTable) -> list[int]:
        """The GSCIDs of the valid device contexts whose ``msiptp`` points at ``table``."""
        out = set()
        for dc in self._contexts.values():
            if (bits.get(MSIPTP, dc.msiptp, "mode") == MsiptpMode.FLAT
                    and bits.get(MSIPTP, dc.msiptp, "ppn") == table.base >> 12):
                out.add(bits.get(IOHGATP, dc.iohgatp, "gscid"))
        return sorted(out)

    def _msi_changed(self, table, gpa):
        # One MSI PTE: IOTINVAL.GVMA GV=1 AV=1 with its GPA, for each VM using the table
        # (reference N.4.5), and a fence in every case, so the change is in use on return.
        cmds = invalidate.msi_pte_change(gpa, self.msi_gscids(table))
        if cmds:
            self.run(cmds)
        else:
            self.fence()
        return gpa

    def msi_map_basic(self, table: MsiPageTable, *, ppn: int, index: int | None = None,
                      gpa: int | None = None) -> int:
        """:meth:`MsiPageTable.map_basic` (interrupt file ``index`` or ``gpa``'s goes to the
        page ``ppn``), invalidated and fenced; returns the entry's GPA."""
        return self._msi_changed(table, table.map_basic(ppn=ppn, index=index, gpa=gpa))

    def msi_map_mrif(self, table: MsiPageTable, *, mrif: int, notice_ppn: int, nid: int,
                     index: int | None = None, gpa: int | None = None) -> int:
        """:meth:`MsiPageTable.map_mrif`, invalidated and fenced; returns the GPA.

        Raises
        ------
        UnsupportedError
            Without ``capabilities.MSI_MRIF`` (the IOMMU would answer 263).
        """
        if not self.capabilities["msi_mrif"]:
            raise UnsupportedError("the IOMMU has no MSI_MRIF: no MRIF-mode MSI PTEs")
        return self._msi_changed(table, table.map_mrif(mrif=mrif, notice_ppn=notice_ppn,
                                                       nid=nid, index=index, gpa=gpa))

    def msi_unmap(self, table: MsiPageTable, *, index: int | None = None,
                  gpa: int | None = None) -> int:
        """:meth:`MsiPageTable.unmap` (MSIs to that interrupt file then fault with 262),
        invalidated and fenced; returns the GPA."""
        return self._msi_changed(table, table.unmap(index=index, gpa=gpa))

    def msi_sync_table(self, table: MsiPageTable) -> None:
        """After editing many entries of ``table`` directly: ``IOTINVAL.GVMA`` ``GV=1, AV=0``
        for each VM using it (reference N.4.5, "Whole MSI PT"), and a fence."""
        cmds = invalidate.msi_table_change(self.msi_gscids(table))
        if cmds:
            self.run(cmds)
        else:
            self.fence()

    @staticmethod
    def _msi_words(msi):
        if msi is None:
            return {}
        if not isinstance(msi, MsiPageTable):
            raise TypeError(f"msi must be an MsiPageTable, not {msi!r}")
        return {"msiptp": msi.msiptp, "msi_addr_mask": msi.msi_addr_mask,
                "msi_addr_pattern": msi.msi_addr_pattern}

    # -- process directories (spec "Process-Directory-Table (PDT)") --------------------------

    def _check_pdt_mode(self, mode):
        self._require_init()
        if not any(m == mode and self.capabilities[cap] for m, cap in _PDT_MODES):
            raise UnsupportedError(f"the IOMMU does not offer {PdtpMode(mode).name}")

    def pdt_mode(self, process_id_bits: int | None = None) -> PdtpMode:
        """The shallowest PDT mode ``capabilities`` offers that indexes ``process_id_bits``
        (``None``: the widest mode offered, so any process_id the IOMMU takes fits).

        Raises
        ------
        UnsupportedError
            If no offered mode is wide enough (or the IOMMU has no process contexts).
        """
        self._require_init()
        if process_id_bits is None:
            process_id_bits = max(self.process_id_bits, 1)
        if not isinstance(process_id_bits, int) or not 1 <= process_id_bits <= 20:
            raise ValueError(f"process_id_bits must be between 1 and 20, not "
                             f"{process_id_bits!r}")
        for mode, cap in _PDT_MODES:
            if self.capabilities[cap] and mode.pid_bits >= process_id_bits:
                return mode
        raise UnsupportedError(f"no process-directory mode reaches {process_id_bits}-bit "
                               f"process_ids")

    @property
    def process_id_bits(self) -> int:
        """Widest process_id the IOMMU's PDT modes index (0 without process contexts)."""
        self._require_init()
        return max((m.pid_bits for m, cap in _PDT_MODES if self.capabilities[cap]), default=0)

    def process_directory(self, process_id_bits: int | None = None, *, bus: Bus | None = None,
                          alloc: PageAllocator | None = None) -> ProcessDirectory:
        """A new, empty process directory in the mode :meth:`pdt_mode` chooses.

        ``bus``/``alloc`` default to the host's; a guest's
        :class:`~iogate.firmware.guest.GuestMemory` and allocator put the table in guest
        memory (its addresses are then GPAs, as ``pdtp`` under a non-Bare ``iohgatp``).
        """
        mode = self.pdt_mode(process_id_bits)
        return ProcessDirectory(self.bus if bus is None else bus,
                                self.alloc if alloc is None else alloc, mode)

    def set_process_directory(self, device_id: int, pdt: ProcessDirectory | int, *,
                              dpe: bool = False, second: PageTable | None = None,
                              gscid: int | None = None, dtf: bool = False) -> None:
        """``device_id`` translates through the process directory ``pdt`` (``tc.PDTV=1``).

        Parameters
        ----------
        pdt : ProcessDirectory or int
            The table, or a raw ``pdtp`` (a guest's, which the host does not walk).
        dpe : bool
            ``tc.DPE``: requests without a process_id use process_id 0 (spec "Device-context
            fields"); without it they are translated with the first stage Bare.
        second, gscid : PageTable, int or None
            The VM's second stage when the directory is a guest's (``pdtp`` is a GPA).
        """
        if (second is None) != (gscid is None):
            raise TypeError("second and gscid go together")
        iohgatp = 0
        if second is not None:
            if second.stage is not Stage.SECOND:
                raise ValueError("second must be a second-stage table")
            iohgatp = bits.pack(IOHGATP, mode=second.mode, gscid=gscid, ppn=second.root >> 12)
        pdtp = pdt.pdtp if isinstance(pdt, ProcessDirectory) else pdt
        self.set_dc(device_id, tc=bits.pack(TC, v=1, dtf=dtf, pdtv=1, dpe=bool(dpe)),
                    iohgatp=iohgatp, fsc=pdtp)
        if isinstance(pdt, ProcessDirectory):
            self._pdts[device_id] = pdt
        else:
            self._pdts.pop(device_id, None)

    def _device_pdt(self, device_id):
        self._require_init()
        pdt = self._pdts.get(device_id)
        if pdt is None or device_id not in self._contexts:
            raise IommuError(f"device {device_id:#x} has no process directory of this driver")
        return pdt

    def _device_gscid(self, device_id):
        dc = self._contexts[device_id]
        if bits.get(IOHGATP, dc.iohgatp, "mode") == IohgatpMode.BARE:
            return None
        return bits.get(IOHGATP, dc.iohgatp, "gscid")

    def set_pc(self, device_id: int, process_id: int, pc: ProcessContext) -> None:
        """Write the process context (``device_id``, ``process_id``) and invalidate.

        A valid PC is never edited in place: ``ta.V`` is cleared first and the old PC's
        recipe run (reference N.1.7: ``IODIR.INVAL_PDT`` DV=1 DID PID, then
        ``IOTINVAL.VMA`` PSCV=1 with the old PSCID, GV=1 with the GSCID when ``iohgatp``
        is not Bare), then ``fsc`` and ``ta`` are stored. Setting V 0->1 needs no command
        (invalid entries are never cached), nor does linking a new non-leaf page.
        """
        pdt = self._device_pdt(device_id)
        pdt.check_process_id(process_id)
        if pc.valid:
            self._check_pc(pc)
        if not pc.valid and pdt.pc_address(process_id) is None:
            return      # nothing there to clear: do not build levels only to prune them
        gscid = self._device_gscid(device_id)
        old = pdt.read(process_id)
        if old.valid:
            pdt.write(process_id, ProcessContext(old.ta & ~1, old.fsc), words=("ta",))
            self.run(invalidate.pc_change(device_id, process_id, old, gscid=gscid))
        pdt.write(process_id, pc, words=("fsc", "ta") if pc.valid else ("ta", "fsc"))

    def _check_pc(self, pc):
        # The driver's side of spec "Process-context configuration checks" (cause 267).
        for name, layout in (("ta", PC_TA), ("fsc", IOSATP)):
            reserved = getattr(pc, name) & bits.reserved_mask(layout)
            if reserved:
                raise ValueError(f"pc.{name} has reserved bits set: {reserved:#x}")
        value = bits.get(IOSATP, pc.fsc, "mode")
        try:
            mode = IosatpMode(value)
        except ValueError:
            raise ValueError(f"pc.fsc.MODE {value} is a reserved encoding") from None
        if mode != IosatpMode.BARE:
            self._check_mode(mode)

    def attach_process(self, device_id: int, process_id: int, table: PageTable, *,
                       pscid: int, ens: bool = False, sum: bool = False) -> None:
        """Process ``process_id`` of ``device_id`` translates through the first-stage
        ``table`` tagged ``pscid`` (``ens``: supervisor requests allowed, ``sum``: they
        may reach U=1 pages)."""
        if table.stage is not Stage.FIRST:
            raise ValueError("attach_process() needs a first-stage table")
        self.set_pc(device_id, process_id, ProcessContext.make(
            pscid=pscid, mode=table.mode, root=table.root, ens=ens, sum=sum))

    def detach_process(self, device_id: int, process_id: int) -> None:
        """Invalidate the PC (``device_id``, ``process_id``) and give back PDT pages left
        without a valid PC: a non-leaf PDTE change, ``IODIR.INVAL_DDT`` DV=1 (reference
        N.1.7) and a fence come before the pages are freed."""
        pdt = self._device_pdt(device_id)
        self.set_pc(device_id, process_id, ProcessContext())
        pages = pdt.prune(process_id)
        if pages:
            self.run(invalidate.pdt_nonleaf_change(device_id))
            for page in pages:
                pdt.alloc.free(page)

    def set_bypass(self, device_id: int, *, dtf: bool = False) -> None:
        """``device_id``'s DMA passes untranslated: V=1, fsc and iohgatp Bare."""
        self.set_dc(device_id, tc=bits.pack(TC, v=1, dtf=dtf))

    def set_blocked(self, device_id: int) -> None:
        """``device_id``'s DMA is refused (cause 258): the context has V=0."""
        self.set_dc(device_id, tc=0)

    def set_first_stage(self, device_id: int, table: PageTable, *, pscid: int,
                        dtf: bool = False) -> None:
        """``device_id`` translates through the first-stage ``table`` tagged ``pscid``."""
        if table.stage is not Stage.FIRST:
            raise ValueError("set_first_stage() needs a first-stage table")
        self.set_dc(device_id, tc=bits.pack(TC, v=1, dtf=dtf), ta=bits.pack(TA, pscid=pscid),
                    fsc=bits.pack(IOSATP, mode=table.mode, ppn=table.root >> 12))

    def set_second_stage(self, device_id: int, table: PageTable, *, gscid: int,
                         dtf: bool = False, msi: MsiPageTable | None = None) -> None:
        """``device_id`` translates through the second-stage ``table`` only (VM ``gscid``);
        with ``msi``, guest addresses matching its pattern go through that MSI page table
        instead (reference N.4)."""
        if table.stage is not Stage.SECOND:
            raise ValueError("set_second_stage() needs a second-stage table")
        self.set_dc(device_id, tc=bits.pack(TC, v=1, dtf=dtf),
                    iohgatp=bits.pack(IOHGATP, mode=table.mode, gscid=gscid,
                                      ppn=table.root >> 12), **self._msi_words(msi))

    def set_nested(self, device_id: int, first: PageTable, second: PageTable, *, pscid: int,
                   gscid: int, dtf: bool = False, msi: MsiPageTable | None = None) -> None:
        """``device_id`` translates through a guest's ``first`` table (rooted at a GPA)
        and then the VM's ``second`` table (or, for a GPA matching ``msi``'s pattern, the
        MSI page table)."""
        if first.stage is not Stage.FIRST or second.stage is not Stage.SECOND:
            raise ValueError("set_nested() needs a first-stage and a second-stage table")
        self.set_dc(device_id, tc=bits.pack(TC, v=1, dtf=dtf),
                    iohgatp=bits.pack(IOHGATP, mode=second.mode, gscid=gscid,
                                      ppn=second.root >> 12),
                    ta=bits.pack(TA, pscid=pscid),
                    fsc=bits.pack(IOSATP, mode=first.mode, ppn=first.root >> 12),
                    **self._msi_words(msi))

    def remove_device(self, device_id: int) -> None:
        """Block ``device_id`` and give back directory pages left without a valid context.

        Unlinking a non-leaf entry is a non-leaf DDT change: ``IODIR.INVAL_DDT`` with
        ``DV=0`` and a fence come before the pages are freed.
        """
        self.set_blocked(device_id)
        pages = self.ddt.prune(device_id)
        if pages:
            self.run(invalidate.ddt_nonleaf_change())
            for page in pages:
                self.alloc.free(page)

    # -- debug translation interface (spec "Debug support") -----------------------------

    def debug_translate(self, device_id: int, iova: int,
                        access: Access = Access.READ) -> DebugTranslation:
        """Ask the IOMMU to translate ``iova`` for ``device_id`` through ``tr_req_*``.

        Raises
        ------
        UnsupportedError
            Without ``capabilities.DBG``.
        """
        if not self.capabilities["dbg"]:
            raise UnsupportedError("the IOMMU has no debug translation interface")
        access = Access(access)
        self.regs.poll(Offset.TR_REQ_CTL, "go", 0)
        self.regs.write(Offset.TR_REQ_IOVA, bits.pack(TR_REQ_IOVA, vpn=iova >> 12))
        self.regs.write(Offset.TR_REQ_CTL, bits.pack(
            TR_REQ_CTL, go=1, nw=access is not Access.WRITE, exe=access is Access.EXECUTE,
            did=device_id))
        self.regs.poll(Offset.TR_REQ_CTL, "go", 0)
        r = bits.unpack(TR_RESPONSE, self.regs.read(Offset.TR_RESPONSE))
        if r["fault"]:
            return DebugTranslation(True, None, None, r["pbmt"])
        ppn, pages = r["ppn"], 1
        if r["s"]:
            # NAPOT size encoding: the lowest 0 bit at position X means 2^(X+1) pages.
            x = (~ppn & (ppn + 1)).bit_length() - 1
            pages = 1 << (x + 1)
            ppn &= ~(pages - 1)
        size = pages * PAGE_SIZE
        return DebugTranslation(False, (ppn << 12) | iova & (size - 1), size, r["pbmt"])
