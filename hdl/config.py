"""``Config``: the one place where every size and supported mode of an iogate is chosen.

The RTL, the architectural model, the driver and the board tops all take their parameters
from a ``Config``; the ``capabilities`` register value (RISC-V IOMMU spec "IOMMU capabilities
(capabilities)") is computed from it, so what the hardware advertises is exactly what was built.
"""

import dataclasses
from typing import Any

from amaranth import Elaboratable

from iogate.hdl import bits
from iogate.hdl.formats import PdtpMode
from iogate.hdl.regs import CAPABILITIES, Igs, IommuMode

__all__ = ["Config", "require_config"]

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
    def max_device_id_bits(self) -> int:
        """device_id bits reachable by the deepest DDT mode, base format (spec
        "Device-Directory-Table (DDT)")."""
        return IommuMode.for_levels(self.ddt_levels).device_id_bits

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

        Only what is built is advertised: no MSI translation, ATS, HPM or extension.
        Svnapot is mandatory and has no bit. Interrupts are wired (IGS=WSI).
        """
        return bits.pack(
            CAPABILITIES,
            version=VERSION_1_0,
            sv39=self.sv39, sv48=self.sv48, sv57=self.sv57,
            sv39x4=self.sv39x4, sv48x4=self.sv48x4, sv57x4=self.sv57x4,
            svpbmt=self.svpbmt,
            igs=Igs.WSI,
            dbg=self.dbg,
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
