"""``Config``: the one place where every size and supported mode of an iogate is chosen.

The RTL, the architectural model, the driver and the board tops all take their parameters
from a ``Config``; the ``capabilities`` register value (RISC-V IOMMU spec "IOMMU capabilities
(capabilities)") is computed from it, so what the hardware advertises is exactly what was built.
"""

import dataclasses
from typing import Any

from amaranth import Elaboratable

from iogate.hdl import bits
from iogate.hdl.formats import DC_EXT_SIZE, DC_SIZE, PdtpMode
from iogate.hdl.regs import CAPABILITIES, HPM_COUNTERS_MAX, Igs, IommuMode

__all__ = ["Config", "require_config", "check_pas"]

#: capabilities.version for v1.0 (spec "IOMMU capabilities (capabilities)").
VERSION_1_0 = 0x10


@dataclasses.dataclass(frozen=True)
class Config:
    """Parameters of one iogate instance.

    Parameters
    ----------
    sv39, sv48 : bool
        First-stage modes offered in ``DC.fsc`` (spec "First-Stage context (fsc)"). Sv48
        requires Sv39.
    sv57 : bool
        First-stage Sv57 (``capabilities.Sv57``), in ``DC.fsc`` and ``PC.fsc``; requires Sv48.
    sv39x4, sv48x4 : bool
        Second-stage modes offered in ``DC.iohgatp`` (spec "IO hypervisor guest address
        translation and protection (iohgatp)"). Sv48x4 requires Sv39x4.
    sv57x4 : bool
        Second-stage Sv57x4 (``capabilities.Sv57x4``); requires Sv48x4 (the spec states no
        implication between the x4 bits; iogate keeps the modes nested as for the first
        stage, so that a walker for Sv57x4 is one for Sv48x4 with a level more).
    svpbmt : bool
        Page-based memory types in leaf PTEs (``capabilities.Svpbmt``).
    ddt_levels : int
        Deepest device directory offered: 1 (1LVL), 2 (2LVL) or 3 (3LVL). Off and Bare are
        always offered (spec "Device-directory-table pointer (ddtp)").
    pas : int
        Physical address size in bits (``capabilities.PAS``).
    iotlb_entries, iotlb_ways : int
        IOTLB size and associativity; ``iotlb_entries`` is a multiple of ``iotlb_ways`` and
        the number of sets is a power of two.
    ddtc_entries : int
        Device-context cache entries.
    pd_levels : int
        Process contexts (spec "Process-Directory-Table (PDT)"): 0 builds none (``DC.tc.PDTV``
        is then only legal with ``pdtp`` Bare), 1 offers PD8, 2 PD8 and PD17, 3 PD8, PD17
        and PD20 (``capabilities.PD8``/``PD17``/``PD20``). With process contexts the
        translation ports carry a ``process_id``, its valid bit and the privilege
        (:func:`iogate.hdl.port.request_layout`); without them they carry none, so a Config
        without process contexts costs nothing.
    pdtc_entries : int
        Process-context cache entries (used only when ``pd_levels`` > 0).
    msi_flat : bool
        MSI address translation with flat MSI page tables (``capabilities.MSI_FLAT``,
        reference N.3 and N.4): device contexts become the 64-byte extended format (with
        its device_id split, :meth:`iogate.hdl.regs.IommuMode.ddi_bits_of`), and a GPA that
        matches ``DC.msi_addr_mask``/``msi_addr_pattern`` is translated by the MSI page table
        in place of the second stage. Without it nothing of the kind is elaborated.
    msi_mrif : bool
        MRIF-mode MSI PTEs (``capabilities.MSI_MRIF``, reference N.4.4); requires
        ``msi_flat``. With it the translation ports carry the write's size and 32-bit data
        (:func:`iogate.hdl.port.request_layout`), the IOMMU itself sets the pending bit in
        the memory-resident interrupt file and sends the notice MSI, and answers such a
        write as absorbed (the requester drops it). ``capabilities.AMO_MRIF`` stays 0: the
        update is a read-modify-write.
    msi_ptc_entries : int
        MSI page-table cache entries, tagged by GSCID and guest page (reference N.4.5; used
        only with ``msi_flat``).
    igs : Igs
        How the IOMMU signals its interrupts (``capabilities.IGS``, reference N.5): ``WSI``
        wires only, ``MSI`` messages from ``msi_cfg_tbl`` only, ``BOTH`` chosen by
        ``fctl.WSI``.
    interrupt_vectors : int
        Vectors an ``icvec`` field can name: 1, 2, 4, 8 or 16 (the writable low bits of each
        field, WARL); the number of wired lines, and of ``msi_cfg_tbl`` entries used.
    ats : bool
        PCIe ATS and PRI (``capabilities.ATS``, reference N.6; the plan is docs/ats-pri.md):
        the ATS commands, the ATS message stream and its completion input, the page-request
        port and the page-request queue. Without it ATS commands are ``cmd_ill`` and the
        page-request queue registers read 0. Not with ``msi_mrif`` yet.
    t2gpa : bool
        ``capabilities.T2GPA``: ATS completions may return GPAs (``DC.tc.T2GPA``); requires
        ``ats`` and ``sv39x4``.
    ats_inval_tags : int
        ATS.INVAL commands outstanding at once (PCIe ITAGs, 1-32); one more waits in the
        command queue until a completion frees a tag.
    ats_timeout_cycles : int
        Clock cycles after which an ATS.INVAL without its completion has timed out (the
        "protocol-defined timeout" of reference N.6.4; PCIe's is a minute, which a simulation
        cannot wait, so it is a parameter a board build sets to its clock's minute).
    hpm_counters : int
        Programmable performance counters ``iohpmctr1..N`` with their ``iohpmevtX`` (0-31,
        spec "Hardware performance monitor", reference N.7). 0 builds no performance monitor
        (``capabilities.HPM=0``: every HPM register reads 0); 1 or more builds
        ``iohpmcycles``, ``iocountovf``, ``iocountinh`` and the counters, and ``ipsr.pmip``.
    hpm_counter_width : int
        Implemented bits of each counter, 32-64 (the spec's minimum is 32; WARL: the bits
        above read 0 and a counter wraps at this width). ``iohpmcycles`` has at most 63.
    ports : int
        Translation request/response stream ports.
    tag_width : int
        Width of the requester's tag carried from request to response.
    mmio_data_width : int
        AXI4-Lite data width of the register interface: 32 or 64.
    dbg : bool
        The debug translation interface (``capabilities.DBG``).
    queue_log2sz_max : int
        The largest LOG2SZ the command and fault queues take: ``cqb``/``fqb``'s ``LOG2SZ-1``
        field is WARL (spec "Command-queue base (cqb)", "Fault queue base (fqb)") and a value
        above ``queue_log2sz_max - 1`` reads back as that maximum, so queues hold up to
        ``2**queue_log2sz_max`` entries and the queue indices (``cqh``, ``cqt``, ``fqh``,
        ``fqt``) are this many bits wide. 32, the default, is every size the field encodes.
        Software finds the maximum as Linux does, by writing all ones and reading back.

    Raises
    ------
    ValueError
        On an impossible combination, naming the parameter.
    """

    sv39: bool = True
    sv48: bool = False
    sv57: bool = False
    sv39x4: bool = False
    sv48x4: bool = False
    sv57x4: bool = False
    svpbmt: bool = False
    ddt_levels: int = 1
    pas: int = 56
    iotlb_entries: int = 8
    iotlb_ways: int = 8
    ddtc_entries: int = 4
    pd_levels: int = 0
    pdtc_entries: int = 4
    msi_flat: bool = False
    msi_mrif: bool = False
    msi_ptc_entries: int = 2
    igs: Igs = Igs.WSI
    interrupt_vectors: int = 16
    ats: bool = False
    t2gpa: bool = False
    ats_inval_tags: int = 4
    ats_timeout_cycles: int = 1 << 16
    hpm_counters: int = 0
    hpm_counter_width: int = 40
    ports: int = 1
    tag_width: int = 8
    mmio_data_width: int = 64
    dbg: bool = True
    queue_log2sz_max: int = 32

    def __post_init__(self) -> None:
        if not self.sv39 and self.sv48:
            raise ValueError("sv48 requires sv39 (capabilities.Sv48 requires Sv39)")
        if not self.sv48 and self.sv57:
            raise ValueError("sv57 requires sv48 (capabilities.Sv57 requires Sv48)")
        if not self.sv39x4 and self.sv48x4:
            raise ValueError("sv48x4 requires sv39x4")
        if not self.sv48x4 and self.sv57x4:
            raise ValueError("sv57x4 requires sv48x4")
        if self.pd_levels not in (0, 1, 2, 3):
            raise ValueError(f"pd_levels must be 0, 1, 2 or 3, not {self.pd_levels!r}")
        if self.pdtc_entries < 1:
            raise ValueError(f"pdtc_entries must be at least 1, not {self.pdtc_entries!r}")
        if self.msi_flat and not self.sv39x4:
            # msiptp must be Off when iohgatp is Bare (reference N.3.3): without a second
            # stage the MSI page tables could never be used.
            raise ValueError("msi_flat requires sv39x4 (MSI translation needs a second stage)")
        if self.msi_mrif and not self.msi_flat:
            raise ValueError("msi_mrif requires msi_flat (MRIF PTEs live in MSI page tables)")
        if self.msi_ptc_entries < 1:
            raise ValueError(f"msi_ptc_entries must be at least 1, not "
                             f"{self.msi_ptc_entries!r}")
        if self.igs not in (Igs.MSI, Igs.WSI, Igs.BOTH):
            raise ValueError(f"igs must be Igs.MSI, Igs.WSI or Igs.BOTH, not {self.igs!r}")
        if self.interrupt_vectors not in (1, 2, 4, 8, 16):
            raise ValueError(f"interrupt_vectors must be 1, 2, 4, 8 or 16, not "
                             f"{self.interrupt_vectors!r}")
        if self.ats and self.msi_mrif:
            # An ATS Translation Request to an MRIF-mode page answers U=1 (reference N.6.2):
            # not built yet (issue 17); a Config cannot ask for what is not there.
            raise ValueError("ats with msi_mrif is not built yet")
        if self.t2gpa and not (self.ats and self.sv39x4):
            raise ValueError("t2gpa requires ats and sv39x4 (it returns GPAs of a second stage)")
        if not 1 <= self.ats_inval_tags <= 32:
            raise ValueError(f"ats_inval_tags must be between 1 and 32, not "
                             f"{self.ats_inval_tags!r}")
        if self.ats_timeout_cycles < 1:
            raise ValueError(f"ats_timeout_cycles must be at least 1, not "
                             f"{self.ats_timeout_cycles!r}")
        if not 0 <= self.hpm_counters <= HPM_COUNTERS_MAX:
            raise ValueError(f"hpm_counters must be between 0 and {HPM_COUNTERS_MAX}, not "
                             f"{self.hpm_counters!r}")
        if not 32 <= self.hpm_counter_width <= 64:
            raise ValueError(f"hpm_counter_width must be between 32 and 64, not "
                             f"{self.hpm_counter_width!r}")
        if self.ddt_levels not in (1, 2, 3):
            raise ValueError(f"ddt_levels must be 1, 2 or 3, not {self.ddt_levels!r}")
        if not 32 <= self.pas <= 56:
            raise ValueError(f"pas must be between 32 and 56, not {self.pas!r}")
        if self.iotlb_ways < 1 or self.iotlb_entries % self.iotlb_ways:
            raise ValueError(f"iotlb_entries ({self.iotlb_entries}) must be a multiple of "
                             f"iotlb_ways ({self.iotlb_ways})")
        sets = self.iotlb_entries // self.iotlb_ways
        if sets & (sets - 1):
            raise ValueError(f"iotlb_entries / iotlb_ways must be a power of two, not {sets}")
        if self.ddtc_entries < 1:
            raise ValueError(f"ddtc_entries must be at least 1, not {self.ddtc_entries!r}")
        if self.ports < 1:
            raise ValueError(f"ports must be at least 1, not {self.ports!r}")
        if not 1 <= self.tag_width <= 32:
            raise ValueError(f"tag_width must be between 1 and 32, not {self.tag_width!r}")
        if self.mmio_data_width not in (32, 64):
            raise ValueError(f"mmio_data_width must be 32 or 64, not {self.mmio_data_width!r}")
        if not 1 <= self.queue_log2sz_max <= 32:
            raise ValueError(f"queue_log2sz_max must be between 1 and 32, not "
                             f"{self.queue_log2sz_max!r}")

    @classmethod
    def full(cls) -> "Config":
        """The full first target: first stage Sv39 and Sv48, second stage Sv39x4 and
        Sv48x4, Svpbmt, and a 3LVL device directory (24-bit device_ids); the rest default.

        It is what the ECPIX-5 board starts from (:func:`iogate.boards.ecpix5.richest_config`)
        and the richest build the test bench, regression and benchmarks run.
        """
        return cls(sv48=True, sv39x4=True, sv48x4=True, svpbmt=True, ddt_levels=3)

    @classmethod
    def process(cls) -> "Config":
        """:meth:`full` with process contexts: PD8, PD17 and PD20, Sv57 and Sv57x4.

        The richest build of the process-contexts feature; its cost beside :meth:`full` is
        the feature's row in the benchmarks.
        """
        return cls.full().replace(sv57=True, sv57x4=True, pd_levels=3)

    @classmethod
    def msi(cls) -> "Config":
        """:meth:`full` with MSI translation (flat and MRIF page tables) and interrupts as
        MSIs or wires (IGS=BOTH): the richest build of the MSI feature; its cost beside
        :meth:`full` is the feature's row in the benchmarks."""
        return cls.full().replace(msi_flat=True, msi_mrif=True, igs=Igs.BOTH)

    @classmethod
    def hpm(cls) -> "Config":
        """:meth:`full` with the performance monitor: ``iohpmcycles`` and 7 counters of 40
        bits (7 is the number the spec recommends); its cost beside :meth:`full` is the
        feature's row in the benchmarks."""
        return cls.full().replace(hpm_counters=7)

    @classmethod
    def icebreaker(cls) -> "Config":
        """What fits the ICEBreaker's iCE40UP5K beside the board bridge
        (:mod:`iogate.boards.icebreaker`): Sv39 only, a 1LVL device directory, one IOTLB
        and one device-context entry, ``PAS`` 32, a 1-bit tag, a 32-bit register interface,
        queues of up to 256 entries and no debug translation interface.
        """
        return cls(sv39=True, ddt_levels=1, iotlb_entries=1, iotlb_ways=1, ddtc_entries=1,
                   pas=32, tag_width=1, mmio_data_width=32, dbg=False, queue_log2sz_max=8)

    @property
    def iotlb_sets(self) -> int:
        return self.iotlb_entries // self.iotlb_ways

    @property
    def iommu_modes(self) -> tuple[IommuMode, ...]:
        """The ``ddtp.iommu_mode`` values this instance accepts (the rest are WARL-ignored)."""
        return tuple(mode for mode in IommuMode if mode.levels <= self.ddt_levels)

    @property
    def dc_extended(self) -> bool:
        """Device contexts are the 64-byte extended format (``capabilities.MSI_FLAT``)."""
        return self.msi_flat

    @property
    def dc_size(self) -> int:
        """Bytes of one device context: 32 (base format) or 64 (extended format)."""
        return DC_EXT_SIZE if self.dc_extended else DC_SIZE

    @property
    def max_device_id_bits(self) -> int:
        """device_id bits reachable by the deepest DDT mode in the built DC format (spec
        "Device-Directory-Table (DDT)", reference N.3.2)."""
        return IommuMode.for_levels(self.ddt_levels).device_id_bits_of(self.dc_extended)

    @property
    def mgpaw(self) -> int:
        """Width of a guest physical address the second stage accepts (reference N.3.3,
        "MGPAW"): 59 with Sv57x4, 50 with Sv48x4, 41 with Sv39x4, else ``pas``. Bits
        [51:mgpaw-12] of ``msi_addr_mask``/``msi_addr_pattern`` are reserved."""
        if self.sv57x4:
            return 59
        if self.sv48x4:
            return 50
        if self.sv39x4:
            return 41
        return self.pas

    @property
    def vector_bits(self) -> int:
        """Writable low bits of each ``icvec`` field (``interrupt_vectors`` = 2**this)."""
        return (self.interrupt_vectors - 1).bit_length()

    @property
    def has_hpm(self) -> bool:
        """The performance monitor is built (``capabilities.HPM``)."""
        return self.hpm_counters > 0

    @property
    def hpm_cycles_width(self) -> int:
        """Implemented bits of ``iohpmcycles.counter`` (at most 63: bit 63 is OF)."""
        return min(self.hpm_counter_width, 63)

    @property
    def pdtp_modes(self) -> tuple[PdtpMode, ...]:
        """The ``pdtp.MODE`` values offered besides Bare (PD8 up to the deepest built)."""
        return tuple(mode for mode in PdtpMode if 0 < mode.levels <= self.pd_levels)

    @property
    def process_id_bits(self) -> int:
        """Widest ``process_id`` supported: 20 with PD20, 17 with PD17, 8 with PD8, 0 without
        process contexts (the IODIR.INVAL_PDT PID check, spec "IOMMU directory cache
        invalidation commands")."""
        return PdtpMode(self.pd_levels).pid_bits

    @property
    def capabilities(self) -> int:
        """The ``capabilities`` register value (spec "IOMMU capabilities (capabilities)").

        Only what is built is advertised: no extension. Svnapot is mandatory
        and has no bit. ``AMO_MRIF`` is 0 (MRIF updates are read-modify-writes).
        """
        return bits.pack(
            CAPABILITIES,
            version=VERSION_1_0,
            sv39=self.sv39, sv48=self.sv48, sv57=self.sv57,
            sv39x4=self.sv39x4, sv48x4=self.sv48x4, sv57x4=self.sv57x4,
            svpbmt=self.svpbmt,
            igs=self.igs, msi_flat=self.msi_flat, msi_mrif=self.msi_mrif,
            ats=self.ats, t2gpa=self.t2gpa, hpm=self.has_hpm, dbg=self.dbg,
            pas=self.pas,
            pd8=self.pd_levels >= 1, pd17=self.pd_levels >= 2, pd20=self.pd_levels >= 3,
        )

    def replace(self, **changes: Any) -> "Config":
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)


def require_config(component: Elaboratable, config: object) -> None:
    """Check a component constructor's ``config`` argument.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`Config`. The refused component is marked so that
        Amaranth does not also warn that it was created and never used.
    """
    if not isinstance(config, Config):
        component._MustUse__silence = True
        raise TypeError(f"config must be a Config, not {config!r}")


def check_pas(pas: object) -> None:
    """Check a component constructor's ``pas`` argument (a physical address size, as
    ``Config.pas`` allows).

    Raises
    ------
    ValueError
        If ``pas`` is not an integer between 32 and 56.
    """
    if not isinstance(pas, int) or not 32 <= pas <= 56:
        raise ValueError(f"pas must be an integer between 32 and 56, not {pas!r}")
