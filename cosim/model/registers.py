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
* ``capabilities`` is RO. ``fctl`` is WARL: little-endian (``capabilities.END=0``), ``GXL=0``;
  ``WSI`` reads 1 with ``IGS=WSI``, 0 with ``IGS=MSI``, and with ``IGS=BOTH`` takes the value
  written, resetting to 0 (decision 8 of issue 16).
* ``ddtp.iommu_mode`` is WARL: a write of a mode this Config does not offer keeps the old
  mode; ``busy`` reads 0 (the model completes a mode change at once).
* The three queues (command, fault and, with ``Config.ats``, page-request) share one set of
  rules (:class:`_QueueRegisters` names each queue's registers):

  * ``cqb``/``fqb``/``pqb``: ``LOG2SZ-1`` is WARL, a value above
    ``Config.queue_log2sz_max - 1`` reads as that maximum, and PPN bits at and above ``PAS``
    read 0; after a write, the software-owned index (``cqt``/``fqh``/``pqh``) reads 0 at and
    above LOG2SZ (spec "Command-queue base (cqb)", "Fault queue base (fqb)",
    "Page-request-queue base (pqb)");
  * the software-owned index keeps only bits LOG2SZ-1:0 of a write; the IOMMU-owned one
    (``cqh``/``fqt``/``pqt``) is read-only;
  * ``cqcsr``/``fqcsr``/``pqcsr``: the enable 0->1 clears the IOMMU-owned index and the error
    bits and turns the queue on at once (``cqon``/``fqon``/``pqon``; ``busy`` stays 0); the
    enable 1->0 turns it off; the error bits are RW1C (spec "Command-queue CSR (cqcsr)",
    "Fault queue CSR (fqcsr)", "Page-request-queue CSR (pqcsr)").
* Without ``Config.ats`` (``capabilities.ATS=0``) ``pqb``, ``pqh``, ``pqt`` and ``pqcsr``
  read 0 and ignore writes (reference N.6.5: they are absent).
* ``ipsr`` is RW1C and a bit whose condition still holds is set again (spec "Interrupt pending
  status register (ipsr)"): ``cip`` while ``cie`` and a ``cqcsr`` error bit, ``fip`` while
  ``fie`` and ``fqof``/``fqmf``, ``pip`` while ``pie`` and ``pqof``/``pqmf`` (a new record
  sets ``fip``/``pip`` once, it is not a condition that holds).
* ``tr_req_ctl.Go`` is RW1S; the model runs the translation during the write and clears it
  (spec "Translation-request control (tr_req_ctl)", "Debug support").
* ``icvec``: of each of the four vector fields the low ``Config.vector_bits`` bits are
  writable (WARL), the rest reads 0.
* ``msi_cfg_tbl`` (spec "MSI configuration table (msi_cfg_tbl)", decision 8 of issue 16), only
  with ``IGS`` MSI or BOTH (else it reads 0 and ignores writes): ``msi_addr_x`` ADDR [55:2]
  with the bits at and above ``PAS`` reading 0, ``msi_data_x`` 32 bits, ``msi_vec_ctl_x.M``;
  reset 0, 0 and M=1. A write of M 1->0 calls :attr:`RegisterFile.on_unmask`.
* Every 0->1 change of an ``ipsr`` bit, whatever made it, calls
  :attr:`RegisterFile.on_ipsr_rise` with the bits that rose (the MSI edge rule,
  :mod:`iogate.cosim.model.interrupts`); a W1C of a bit whose condition still holds leaves it
  1 without a change, as the hardware does.
* The HPM registers (0x58-0x257) are :class:`~iogate.cosim.model.hpm.Hpm`'s (decisions 1-12
  of issue 17 (HPM)); with ``hpm_counters=0`` they read 0 and ignore writes. ``ipsr.pmip`` is
  RW1C and set only on an OF edge (decision 5): no condition sets it again.
* Some bits the model cannot predict (a clock-cycle count, walk and IOATC-miss counts, the
  OFs and ``pmip`` they may set): :meth:`RegisterFile.read_care` says which bits of a read
  are known, :meth:`RegisterFile.adopt` takes a target's value for the others.
"""

from iogate.hdl import bits
from iogate.hdl.regs import (
    CAPABILITIES,
    CQCSR,
    DDTP,
    FCTL,
    FQCSR,
    ICVEC,
    IPSR,
    MSI_ADDR,
    MSI_CFG_ENTRIES,
    MSI_CFG_ENTRY_SIZE,
    MSI_VEC_CTL,
    PQCSR,
    QB,
    TR_RESPONSE,
    Igs,
    IommuMode,
    Kind,
    Offset,
    kind_mask,
)

from iogate.cosim.model import access, hpm

__all__ = ["RegisterFile"]

_W32 = 0xFFFF_FFFF
_PMIP = bits.mask(IPSR, "pmip")


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
# (fqcsr)", "Page-request-queue CSR (pqcsr)"); fence_w_ip does not stop the queue.
_CQCSR_ERR = kind_mask(Offset.CQCSR, Kind.RW1C)
_CQCSR_STOP = _CQCSR_ERR & ~bits.mask(CQCSR, "fence_w_ip")
_TR_CTL_RW = kind_mask(Offset.TR_REQ_CTL, Kind.RW)
_TR_CTL_GO = kind_mask(Offset.TR_REQ_CTL, Kind.RW1S)

#: The 8-byte registers, by offset; every other decoded register is 4 bytes.
_WIDE = {Offset.CAPABILITIES, Offset.DDTP, Offset.CQB, Offset.FQB, Offset.PQB,
         Offset.TR_REQ_IOVA, Offset.TR_REQ_CTL, Offset.TR_RESPONSE, Offset.ICVEC}

#: The page-request queue's registers: absent without capabilities.ATS (reference N.6.5).
_PQ_OFFSETS = frozenset({Offset.PQB, Offset.PQH, Offset.PQT, Offset.PQCSR})
#: The debug interface's registers: absent without capabilities.DBG.
_DBG_OFFSETS = frozenset({Offset.TR_REQ_IOVA, Offset.TR_REQ_CTL, Offset.TR_RESPONSE})


class _QueueRegisters:
    """The registers of one in-memory queue, by attribute name: its base register, the index
    software owns (written by software, legalised to the queue size), the index the IOMMU
    owns (read-only, cleared by the enable), and the CSR with its enable, on and error bits.
    """

    __slots__ = ("base", "sw_index", "hw_index", "csr", "offsets", "en", "on", "err")

    def __init__(self, prefix, sw_index, hw_index, layout):
        self.base, self.csr = prefix + "b", prefix + "csr"
        self.sw_index, self.hw_index = prefix + sw_index, prefix + hw_index
        #: (base, software-owned index, CSR) offsets.
        self.offsets = tuple(Offset[name.upper()] for name in (self.base, self.sw_index,
                                                                self.csr))
        self.en = bits.mask(layout, prefix + "en")
        self.on = bits.mask(layout, prefix + "on")
        self.err = kind_mask(self.offsets[2], Kind.RW1C)


# Software owns the command queue's tail and the fault and page-request queues' heads.
_CQ = _QueueRegisters("cq", "t", "h", CQCSR)
_FQ = _QueueRegisters("fq", "h", "t", FQCSR)
_PQ = _QueueRegisters("pq", "h", "t", PQCSR)


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
    capabilities, fctl, ddtp, cqb, cqh, cqt, fqb, fqh, fqt, pqb, pqh, pqt, cqcsr, fqcsr,
    pqcsr, ipsr, icvec, tr_req_iova, tr_req_ctl, tr_response : int
        Register values as software reads them (``pqb``..``pqcsr`` stay 0 without
        ``Config.ats``).
    """

    def __init__(self, config, on_debug_go):
        self.config = config
        self._on_debug_go = on_debug_go
        self.capabilities = config.capabilities
        caps = bits.unpack(CAPABILITIES, self.capabilities)
        self._dbg = bool(caps["dbg"])
        # Optional registers this Config does not build: they read 0 and ignore writes.
        self._absent = (frozenset() if caps["ats"] else _PQ_OFFSETS) | (
            frozenset() if self._dbg else _DBG_OFFSETS)
        # PPN bits that exist below capabilities.PAS (the rest of a WARL PPN reads 0).
        self._ppn_mask = (1 << (config.pas - 12)) - 1
        # fctl: BE=0 with END=0, GXL=0; WSI=1 with IGS=WSI, else 0 (IGS=BOTH: the reset value
        # of decision 8 of issue 16).
        self._igs = config.igs
        self.fctl = bits.pack(FCTL, be=0, wsi=int(config.igs == Igs.WSI), gxl=0)
        # icvec WARL: the low vector_bits bits of each field.
        self._icvec_mask = sum(((1 << config.vector_bits) - 1) << bits.field_range(ICVEC, f)[0]
                               for f in ("civ", "fiv", "pmiv", "piv"))
        #: msi_cfg_tbl, with IGS MSI or BOTH: raw register values per entry.
        self._msi = config.igs != Igs.WSI
        self._msi_addr_mask = bits.mask(MSI_ADDR, "addr") & ((1 << config.pas) - 1)
        self.msi_addr = [0] * MSI_CFG_ENTRIES
        self.msi_data = [0] * MSI_CFG_ENTRIES
        self.msi_vec_ctl = [bits.pack(MSI_VEC_CTL, m=1)] * MSI_CFG_ENTRIES
        #: Called with the ipsr bits that went 0->1, and with an entry whose M went 1->0.
        self.on_ipsr_rise = None
        self.on_unmask = None
        self._ipsr = 0
        #: The performance monitor (decision 1 of issue 17 (HPM): absent with 0 counters).
        self.hpm = hpm.Hpm(config, self._set_pmip)
        # Reset values (spec "Reset behavior"): ddtp Off with busy 0, queues off, ipsr 0, Go 0. The
        # rest is UNSPECIFIED; the model picks 0.
        self.ddtp = bits.pack(DDTP, iommu_mode=IommuMode.OFF)
        self.cqb = self.cqh = self.cqt = 0
        self.fqb = self.fqh = self.fqt = 0
        self.pqb = self.pqh = self.pqt = 0
        self.cqcsr = self.fqcsr = self.pqcsr = 0
        self.icvec = 0
        self.tr_req_iova = self.tr_req_ctl = self.tr_response = 0

    # -- derived values used by the model ------------------------------------------------

    @property
    def ipsr(self):
        return self._ipsr

    @ipsr.setter
    def ipsr(self, value):
        rose = value & ~self._ipsr
        self._ipsr = value
        if rose and self.on_ipsr_rise is not None:
            self.on_ipsr_rise(rose)

    def _set_pmip(self):
        # Decision 4/5 of issue 17 (HPM): an OF 0->1 by counting sets pmip (an edge).
        self.ipsr = self._ipsr | _PMIP

    def read_care(self, offset, size):
        """``(value, care)`` of a read: ``care`` has the bits the model predicts exactly
        (all of them but the HPM's unknown counts, their OFs and ``ipsr.pmip``)."""
        self.check_access(offset, size, "read")
        if hpm.in_range(offset):
            return self.hpm.read(offset, size)
        self.hpm.touch()
        value = self.read(offset, size)
        care = (1 << (8 * size)) - 1
        if offset == Offset.IPSR and not self.hpm.pmip_known:
            care &= ~_PMIP
        return value, care

    def adopt(self, offset, size, value):
        """Take ``value``, read from a target at ``offset``, for the bits :meth:`read_care`
        does not know. A ``pmip`` adopted 0->1 is an edge: with MSIs it sends one message,
        as the target did (:mod:`iogate.cosim.model.interrupts`)."""
        if hpm.in_range(offset):
            self.hpm.adopt(offset, size, value)
        elif offset == Offset.IPSR and not self.hpm.pmip_known:
            self.ipsr = (self._ipsr & ~_PMIP) | (value & _PMIP)
            self.hpm.adopt_pmip()

    @property
    def wsi(self):
        """``fctl.WSI``: interrupts are wired (else messages)."""
        return bool(bits.get(FCTL, self.fctl, "wsi"))

    def msi_entry(self, x):
        """``(address, data, masked)`` of ``msi_cfg_tbl`` entry ``x``: the byte address
        ``ADDR << 2``."""
        return (self.msi_addr[x] & ~3, self.msi_data[x],
                bool(bits.get(MSI_VEC_CTL, self.msi_vec_ctl[x], "m")))

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
        """Set ``cip``/``fip``/``pip`` while their conditions hold (spec "Interrupt pending
        status register (ipsr)"); setting ``cie``/``fie``/``pie`` while an error bit is already
        1 sets it too (N.9 P7)."""
        conditions = self._ipsr_conditions()
        if conditions & ~self.ipsr:
            self.ipsr |= conditions

    def _ipsr_conditions(self):
        out = 0
        if self.cqcsr & bits.mask(CQCSR, "cie") and self.cqcsr & _CQCSR_ERR:
            out |= bits.mask(IPSR, "cip")
        if self.fqcsr & bits.mask(FQCSR, "fie") and self.fqcsr & _FQ.err:
            out |= bits.mask(IPSR, "fip")
        if self.pqcsr & bits.mask(PQCSR, "pie") and self.pqcsr & _PQ.err:
            out |= bits.mask(IPSR, "pip")
        return out

    # -- MMIO ------------------------------------------------------------------------------

    @staticmethod
    def check_access(offset, size, op="access"):
        """Raise :class:`~iogate.cosim.model.access.RegisterAccessError` unless the model
        takes this access (:mod:`iogate.cosim.model.access`)."""
        access.check_access(op, offset, size)

    def read(self, offset, size):
        """The ``size``-byte value at ``offset``."""
        self.check_access(offset, size, "read")
        if hpm.in_range(offset):
            return self.hpm.read(offset, size)[0]
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
        if base in _WIDE or _is_msi_addr(base):
            return (self._value(base) >> (32 if offset & 4 else 0)) & _W32
        return self._value(offset) & _W32

    def _value(self, offset):
        if offset in self._absent:
            return 0
        if Offset.MSI_CFG_TBL <= offset < Offset.MSI_CFG_TBL + 0x100:
            if not self._msi:
                return 0
            x, at = divmod(offset - Offset.MSI_CFG_TBL, MSI_CFG_ENTRY_SIZE)
            return (self.msi_addr, None, self.msi_data, self.msi_vec_ctl)[at // 4][x]
        name = _NAMES.get(offset)
        return getattr(self, name) if name else 0

    def _write32(self, offset, value):
        if hpm.in_range(offset):
            self.hpm.write32(offset, value)
            return
        base = offset & ~7
        if _is_msi_addr(base) or (Offset.MSI_CFG_TBL <= offset < Offset.MSI_CFG_TBL + 0x100):
            if self._msi:
                self._w_msi_cfg(offset, value)
            return
        if base in _WIDE:
            shift = 32 if offset & 4 else 0
            old = self._value(base)
            new = (old & ~(_W32 << shift)) | (value << shift)
            written = _W32 << shift
            offset = base
        else:
            old, new, written = self._value(offset), value, _W32
        handler = _HANDLERS.get(offset)
        if handler is not None and offset not in self._absent:
            handler(self, old, new, written)

    # -- per-register write rules --------------------------------------------------------

    def _w_ddtp(self, old, new, written):
        new = _by_kind(Offset.DDTP, old, new)
        mode = bits.get(DDTP, new, "iommu_mode")
        if mode not in {int(m) for m in self.config.iommu_modes}:
            mode = bits.get(DDTP, old, "iommu_mode")        # WARL: keep the legal value
        ppn = bits.get(DDTP, new, "ppn") & self._ppn_mask
        self.ddtp = bits.pack(DDTP, iommu_mode=mode, ppn=ppn)

    # The three queues' rules (module docstring), one implementation.

    def _w_qb(self, q, old, new):
        qb = self._qb(_by_kind(q.offsets[0], old, new))
        setattr(self, q.base, qb)
        setattr(self, q.sw_index, getattr(self, q.sw_index) & (self.queue_entries(qb) - 1))

    def _qb(self, new):
        # LOG2SZ-1 is WARL: a size above the Config's largest reads as that largest.
        log2szm1 = min(bits.get(QB, new, "log2szm1"), self.config.queue_log2sz_max - 1)
        return bits.pack(QB, log2szm1=log2szm1,
                         ppn=bits.get(QB, new, "ppn") & self._ppn_mask)

    def _w_index(self, q, old, new):
        setattr(self, q.sw_index, new & (self.queue_entries(getattr(self, q.base)) - 1))

    def _w_qcsr(self, q, old, new):
        v = _by_kind(q.offsets[2], old, new)
        if new & q.en and not old & q.en:
            # The enable 0->1: the IOMMU-owned index and the error bits read 0, the queue
            # turns on.
            setattr(self, q.hw_index, 0)
            v = (v & ~q.err) | q.on
        elif not new & q.en and old & q.en:
            v &= ~q.on
        setattr(self, q.csr, v)
        self.update_ipsr()

    def _w_ipsr(self, old, new, written):
        if new & _PMIP and not self.hpm.pmip_known:
            # A pmip the model did not know is cleared: a rise the target may have had (and
            # its message) is now never seen (the interrupt monitor allows one such message).
            self.hpm.unseen_pmip_clears += 1
        # One change: a bit cleared while its condition holds stays 1 (no new edge).
        self.ipsr = _by_kind(Offset.IPSR, old, new) | self._ipsr_conditions()

    def _w_icvec(self, old, new, written):
        self.icvec = _by_kind(Offset.ICVEC, old, new) & self._icvec_mask

    def _w_fctl(self, old, new, written):
        # Only WSI with IGS=BOTH is writable.
        if self._igs == Igs.BOTH:
            self.fctl = new & bits.mask(FCTL, "wsi")

    def _w_msi_cfg(self, offset, value):
        x, at = divmod(offset - Offset.MSI_CFG_TBL, MSI_CFG_ENTRY_SIZE)
        if at < 8:
            shift = 8 * (at & 4)
            old = self.msi_addr[x]
            new = (old & ~(_W32 << shift)) | (value << shift)
            self.msi_addr[x] = new & self._msi_addr_mask
        elif at == 8:
            self.msi_data[x] = value
        else:
            was_masked = self.msi_entry(x)[2]
            self.msi_vec_ctl[x] = value & bits.mask(MSI_VEC_CTL, "m")
            if was_masked and not self.msi_entry(x)[2] and self.on_unmask is not None:
                self.on_unmask(x)

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
    Offset.PQB: "pqb", Offset.PQH: "pqh", Offset.PQT: "pqt",
    Offset.CQCSR: "cqcsr", Offset.FQCSR: "fqcsr", Offset.PQCSR: "pqcsr", Offset.IPSR: "ipsr",
    Offset.ICVEC: "icvec", Offset.TR_REQ_IOVA: "tr_req_iova",
    Offset.TR_REQ_CTL: "tr_req_ctl", Offset.TR_RESPONSE: "tr_response",
}


def _queue_handler(method, q):
    def handler(self, old, new, written):
        method(self, q, old, new)
    return handler


# Registers not listed (capabilities, cqh, fqt, pqt, tr_response) are read-only.
_HANDLERS = {
    Offset.FCTL: RegisterFile._w_fctl, Offset.DDTP: RegisterFile._w_ddtp,
    Offset.IPSR: RegisterFile._w_ipsr, Offset.ICVEC: RegisterFile._w_icvec,
    Offset.TR_REQ_IOVA: RegisterFile._w_tr_req_iova,
    Offset.TR_REQ_CTL: RegisterFile._w_tr_req_ctl,
}
for _q in (_CQ, _FQ, _PQ):
    for _offset, _method in zip(_q.offsets, (RegisterFile._w_qb, RegisterFile._w_index,
                                             RegisterFile._w_qcsr), strict=True):
        _HANDLERS[_offset] = _queue_handler(_method, _q)


def _is_msi_addr(base):
    """``base`` is the offset of an ``msi_addr_x`` (8 bytes)."""
    return (Offset.MSI_CFG_TBL <= base < Offset.MSI_CFG_TBL + 0x100
            and (base - Offset.MSI_CFG_TBL) % MSI_CFG_ENTRY_SIZE == 0)


assert TR_RESPONSE.size == 64
