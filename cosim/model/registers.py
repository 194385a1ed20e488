"""The memory-mapped register file of the model (RISC-V IOMMU spec
"Memory-mapped register interface").

Access rules (the kind of each field is the table :data:`iogate.hdl.regs.ACCESS`, the
spec's "Attribute" column; :func:`_by_kind` applies it, the write rules below add each
register's legalising rule and side effects):

* 4- and 8-byte, naturally aligned accesses; an 8-byte access is carried out as two
  4-byte ones, high half first (spec "Memory-mapped register interface", "may appear ... first to
  the high half and second to the low half"). Anything else (a misaligned access, a size not 4
  or 8, an 8-byte access to a 4-byte register, an offset outside the page or in reserved space)
  is UNSPECIFIED in the spec and raises
  :class:`~iogate.cosim.model.access.RegisterAccessError` (:mod:`iogate.cosim.model.access`).
* Offsets with no register of this implementation read 0 and ignore writes (absent
  optional registers: spec "Memory-mapped register interface", "a read ... returns 0 and writes ...
  are ignored"); reserved (WPRI) and custom fields read 0.
* ``capabilities`` is RO. ``fctl`` is WARL with a single legal value: little-endian
  (``capabilities.END=0``), wired interrupts (``IGS=WSI``), ``GXL=0``.
* ``ddtp.iommu_mode`` is WARL: a write of a mode this Config does not offer keeps the old
  mode; ``busy`` reads 0 (the model completes a mode change at once).
* ``cqb``/``fqb``: ``LOG2SZ-1`` is WARL, a value above ``Config.queue_log2sz_max - 1``
  reads as that maximum; after a write, ``cqt``/``fqh`` bits at and above LOG2SZ read 0
  (spec "Command-queue base (cqb)", "Fault queue base (fqb)"); ``cqt``/``fqh`` keep only bits
  LOG2SZ-1:0 of a write.
* ``cqcsr``/``fqcsr``: ``cqen``/``fqen`` 0->1 clears ``cqh``/``fqt`` and the error bits and
  turns the queue on at once (``cqon``/``fqon``, ``busy`` stays 0); the error bits are
  RW1C (spec "Command-queue CSR (cqcsr)", "Fault queue CSR (fqcsr)").
* ``ipsr`` is RW1C and a bit whose condition still holds is set again (spec "Interrupt pending
  status register (ipsr)").
* ``tr_req_ctl.Go`` is RW1S; the model runs the translation during the write and clears it
  (spec "Translation-request control (tr_req_ctl)", "Debug support").
* ``icvec``: the four 4-bit vector fields are writable (WARL), the rest reads 0.
"""

from iogate.hdl import bits
from iogate.hdl.regs import (
    CAPABILITIES,
    CQCSR,
    DDTP,
    FCTL,
    FQCSR,
    IPSR,
    QB,
    TR_RESPONSE,
    IommuMode,
    Kind,
    Offset,
    kind_mask,
)

from iogate.cosim.model import access

__all__ = ["RegisterFile"]

_W32 = 0xFFFF_FFFF


def _by_kind(offset, old, new):
    """The register at ``offset`` after ``new`` is written over ``old``, field by field as
    its access kind says; WARL fields take ``new`` (the caller legalises them), RW1S fields
    ``old | new``; reserved, custom and ZERO fields read 0."""
    keep = kind_mask(offset, Kind.RO)
    take = kind_mask(offset, Kind.RW, Kind.WARL)
    w1c = kind_mask(offset, Kind.RW1C)
    w1s = kind_mask(offset, Kind.RW1S)
    return (old & keep) | (new & take) | (old & w1c & ~new) | ((old | new) & w1s)


# The error bits are the RW1C ones (spec "Command-queue CSR (cqcsr)", "Fault queue CSR
# (fqcsr)"); fence_w_ip does not stop the queue.
_CQCSR_ERR = kind_mask(Offset.CQCSR, Kind.RW1C)
_CQCSR_STOP = _CQCSR_ERR & ~bits.mask(CQCSR, "fence_w_ip")
_FQCSR_ERR = kind_mask(Offset.FQCSR, Kind.RW1C)
_TR_CTL_RW = kind_mask(Offset.TR_REQ_CTL, Kind.RW)
_TR_CTL_GO = kind_mask(Offset.TR_REQ_CTL, Kind.RW1S)

#: The 8-byte registers, by offset; every other decoded register is 4 bytes.
_WIDE = {Offset.CAPABILITIES, Offset.DDTP, Offset.CQB, Offset.FQB, Offset.TR_REQ_IOVA,
         Offset.TR_REQ_CTL, Offset.TR_RESPONSE, Offset.ICVEC}


class RegisterFile:
    """Register state and its access behaviour.

    Parameters
    ----------
    config : iogate.hdl.Config
        Decides ``capabilities``, the legal ``ddtp`` modes, ``PAS`` and the debug interface.
    on_debug_go : callable
        Called with no argument when software sets ``tr_req_ctl.Go``; it must fill
        ``tr_response``.

    Attributes
    ----------
    capabilities, fctl, ddtp, cqb, cqh, cqt, fqb, fqh, fqt, cqcsr, fqcsr, ipsr, icvec,
    tr_req_iova, tr_req_ctl, tr_response : int
        Register values as software reads them.
    """

    def __init__(self, config, on_debug_go):
        self.config = config
        self._on_debug_go = on_debug_go
        self.capabilities = config.capabilities
        caps = bits.unpack(CAPABILITIES, self.capabilities)
        self._dbg = bool(caps["dbg"])
        # PPN bits that exist below capabilities.PAS (the rest of a WARL PPN reads 0).
        self._ppn_mask = (1 << (config.pas - 12)) - 1
        # fctl: the only legal value (BE=0 with END=0, WSI=1 with IGS=WSI, GXL=0).
        self.fctl = bits.pack(FCTL, be=0, wsi=1, gxl=0)
        # Reset values (spec "Reset behavior"): ddtp Off with busy 0, queues off, ipsr 0, Go 0. The
        # rest is UNSPECIFIED; the model picks 0.
        self.ddtp = bits.pack(DDTP, iommu_mode=IommuMode.OFF)
        self.cqb = self.cqh = self.cqt = 0
        self.fqb = self.fqh = self.fqt = 0
        self.cqcsr = self.fqcsr = self.ipsr = 0
        self.icvec = 0
        self.tr_req_iova = self.tr_req_ctl = self.tr_response = 0

    # -- derived values used by the model ------------------------------------------------

    @property
    def iommu_mode(self):
        return IommuMode(self.ddtp & 0xF)

    @property
    def ddt_ppn(self):
        return bits.get(DDTP, self.ddtp, "ppn")

    @staticmethod
    def queue_entries(qb):
        """Entries of a queue whose base register holds ``qb`` (2^(LOG2SZ-1+1))."""
        return 2 << bits.get(QB, qb, "log2szm1")

    @staticmethod
    def queue_base(qb):
        return bits.get(QB, qb, "ppn") << 12

    def cq_runnable(self):
        """The CQ is on and not stopped by ``cqmf``/``cmd_to``/``cmd_ill`` (spec "Command-queue CSR
        (cqcsr)")."""
        return (self.cqcsr & bits.mask(CQCSR, "cqon")) and not self.cqcsr & _CQCSR_STOP

    def update_ipsr(self):
        """Set ``cip``/``fip`` while their conditions hold (spec "Interrupt pending status register
        (ipsr)")."""
        if self.cqcsr & bits.mask(CQCSR, "cie") and self.cqcsr & _CQCSR_ERR:
            self.ipsr |= bits.mask(IPSR, "cip")
        if self.fqcsr & bits.mask(FQCSR, "fie") and self.fqcsr & _FQCSR_ERR:
            self.ipsr |= bits.mask(IPSR, "fip")

    # -- MMIO ------------------------------------------------------------------------------

    @staticmethod
    def check_access(offset, size, op="access"):
        """Raise :class:`~iogate.cosim.model.access.RegisterAccessError` unless the model
        takes this access (:mod:`iogate.cosim.model.access`)."""
        access.check_access(op, offset, size)

    def read(self, offset, size):
        """The ``size``-byte value at ``offset``."""
        self.check_access(offset, size, "read")
        if size == 8:
            return self._read32(offset) | (self._read32(offset + 4) << 32)
        return self._read32(offset)

    def write(self, offset, size, value):
        """Write ``value``; an 8-byte write is two 4-byte writes, high half first."""
        self.check_access(offset, size, "write")
        if not isinstance(value, int) or value < 0 or value >> (8 * size):
            raise ValueError(f"register write at {offset:#05x}: value {value!r} does not fit "
                             f"{size} bytes")
        if size == 8:
            self._write32(offset + 4, value >> 32)
            self._write32(offset, value & _W32)
        else:
            self._write32(offset, value)

    def _read32(self, offset):
        base = offset & ~7
        if base in _WIDE:
            return (self._value(base) >> (32 if offset & 4 else 0)) & _W32
        return self._value(offset) & _W32

    def _value(self, offset):
        if offset in (Offset.TR_REQ_IOVA, Offset.TR_REQ_CTL, Offset.TR_RESPONSE) \
                and not self._dbg:
            return 0
        name = _NAMES.get(offset)
        return getattr(self, name) if name else 0

    def _write32(self, offset, value):
        base = offset & ~7
        if base in _WIDE:
            shift = 32 if offset & 4 else 0
            old = self._value(base)
            new = (old & ~(_W32 << shift)) | (value << shift)
            written = _W32 << shift
            offset = base
        else:
            old, new, written = self._value(offset), value, _W32
        handler = _HANDLERS.get(offset)
        if handler is not None:
            if offset in (Offset.TR_REQ_IOVA, Offset.TR_REQ_CTL) and not self._dbg:
                return
            handler(self, old, new, written)

    # -- per-register write rules --------------------------------------------------------

    def _w_ddtp(self, old, new, written):
        new = _by_kind(Offset.DDTP, old, new)
        mode = bits.get(DDTP, new, "iommu_mode")
        if mode not in {int(m) for m in self.config.iommu_modes}:
            mode = bits.get(DDTP, old, "iommu_mode")        # WARL: keep the legal value
        ppn = bits.get(DDTP, new, "ppn") & self._ppn_mask
        self.ddtp = bits.pack(DDTP, iommu_mode=mode, ppn=ppn)

    def _w_cqb(self, old, new, written):
        self.cqb = self._qb(_by_kind(Offset.CQB, old, new))
        self.cqt &= self.queue_entries(self.cqb) - 1

    def _w_fqb(self, old, new, written):
        self.fqb = self._qb(_by_kind(Offset.FQB, old, new))
        self.fqh &= self.queue_entries(self.fqb) - 1

    def _qb(self, new):
        # LOG2SZ-1 is WARL: a size above the Config's largest reads as that largest.
        log2szm1 = min(bits.get(QB, new, "log2szm1"), self.config.queue_log2sz_max - 1)
        return bits.pack(QB, log2szm1=log2szm1,
                         ppn=bits.get(QB, new, "ppn") & self._ppn_mask)

    def _w_cqt(self, old, new, written):
        self.cqt = new & (self.queue_entries(self.cqb) - 1)

    def _w_fqh(self, old, new, written):
        self.fqh = new & (self.queue_entries(self.fqb) - 1)

    def _w_cqcsr(self, old, new, written):
        en, on = bits.mask(CQCSR, "cqen"), bits.mask(CQCSR, "cqon")
        v = _by_kind(Offset.CQCSR, old, new)
        if new & en and not old & en:
            # cqen 0->1: cqh and the error bits read 0, the queue turns on (spec
            # "Command-queue CSR (cqcsr)").
            self.cqh = 0
            v = (v & ~_CQCSR_ERR) | on
        elif not new & en and old & en:
            v &= ~on
        self.cqcsr = v
        self.update_ipsr()

    def _w_fqcsr(self, old, new, written):
        en, on = bits.mask(FQCSR, "fqen"), bits.mask(FQCSR, "fqon")
        v = _by_kind(Offset.FQCSR, old, new)
        if new & en and not old & en:
            # fqen 0->1: fqt, fqof and fqmf read 0, the queue turns on (spec
            # "Fault queue CSR (fqcsr)").
            self.fqt = 0
            v = (v & ~_FQCSR_ERR) | on
        elif not new & en and old & en:
            v &= ~on
        self.fqcsr = v
        self.update_ipsr()

    def _w_ipsr(self, old, new, written):
        self.ipsr = _by_kind(Offset.IPSR, old, new)
        self.update_ipsr()

    def _w_icvec(self, old, new, written):
        self.icvec = _by_kind(Offset.ICVEC, old, new)

    def _w_tr_req_iova(self, old, new, written):
        self.tr_req_iova = _by_kind(Offset.TR_REQ_IOVA, old, new)

    def _w_tr_req_ctl(self, old, new, written):
        self.tr_req_ctl = (new & _TR_CTL_RW) | (old & _TR_CTL_GO)
        if written & new & _TR_CTL_GO:                      # RW1S
            self.tr_req_ctl |= _TR_CTL_GO
            self._on_debug_go()
            self.tr_req_ctl &= ~_TR_CTL_GO


_NAMES = {
    Offset.CAPABILITIES: "capabilities", Offset.FCTL: "fctl", Offset.DDTP: "ddtp",
    Offset.CQB: "cqb", Offset.CQH: "cqh", Offset.CQT: "cqt",
    Offset.FQB: "fqb", Offset.FQH: "fqh", Offset.FQT: "fqt",
    Offset.CQCSR: "cqcsr", Offset.FQCSR: "fqcsr", Offset.IPSR: "ipsr",
    Offset.ICVEC: "icvec", Offset.TR_REQ_IOVA: "tr_req_iova",
    Offset.TR_REQ_CTL: "tr_req_ctl", Offset.TR_RESPONSE: "tr_response",
}

# Registers not listed (capabilities, fctl, cqh, fqt, tr_response) are read-only.
_HANDLERS = {
    Offset.DDTP: RegisterFile._w_ddtp, Offset.CQB: RegisterFile._w_cqb,
    Offset.FQB: RegisterFile._w_fqb, Offset.CQT: RegisterFile._w_cqt,
    Offset.FQH: RegisterFile._w_fqh, Offset.CQCSR: RegisterFile._w_cqcsr,
    Offset.FQCSR: RegisterFile._w_fqcsr, Offset.IPSR: RegisterFile._w_ipsr,
    Offset.ICVEC: RegisterFile._w_icvec, Offset.TR_REQ_IOVA: RegisterFile._w_tr_req_iova,
    Offset.TR_REQ_CTL: RegisterFile._w_tr_req_ctl,
}

assert TR_RESPONSE.size == 64
