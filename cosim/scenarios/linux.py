"""A replay of what the Linux riscv-iommu driver does to the hardware (``iogate run linux``).

Written from the driver's source, ``drivers/iommu/riscv/iommu.c`` and ``iommu-platform.c``
as merged for v6.13 (the functions are named in each docstring), as a synchronous
function over the ``iogate host`` API (:class:`iogate.cosim.client.host.Host`): every
register access the driver makes, in its order and width, every store it makes to its
tables and queues, and the checks it makes of what it reads back -- where the driver gives
up (``-EBUSY``, ``-EINVAL``, ``-ENODEV``), the replay raises :class:`LinuxRefuses` naming the
driver function and its message. Around the driver, :func:`replay` plays the part of the
IOMMU core and the DMA API: devices probed, attached to paging, identity and blocking
domains, pages mapped and unmapped, DMA from several devices checked before and after.

What is rendered:

* probe (``riscv_iommu_platform_probe``): ``capabilities`` and ``fctl`` read; wired
  interrupts (``capabilities.IGS`` WSI) with ``fctl.WSI`` written only when it reads 0;
* ``riscv_iommu_init_check``: ``ddtp`` must not be busy nor translating; ``fctl.BE``
  must match the CPU (little-endian); ``icvec`` written with the vectors distributed over
  the interrupt count (``CIV`` 0, ``FIV`` 1, ``PIV`` 2, ``PMIV`` 3 modulo the count) and read
  back: a vector at or above the count is refused;
* ``riscv_iommu_iodir_alloc``: ``ddtp`` written with the mode it holds (Off) and no PPN,
  read back: a non-zero PPN would be a fixed device-directory root;
* ``riscv_iommu_queue_alloc``: ``cqb``/``fqb`` written with ``LOG2SZ`` all ones and read
  back (the hardware's largest queue, capped at Linux's 8192 commands and 4096 records), then
  written with the ring's address and required to read back exactly;
* ``riscv_iommu_queue_enable``: ``cqcsr`` written ``CQEN|CIE|CQMF`` (``FQEN|FIE|FQMF``),
  ``BUSY`` polled, then the *same* read must show ``ON`` alone (Linux does not poll ``ON``);
  ``ipsr`` cleared;
* ``riscv_iommu_iodir_set_mode``: 3LVL written, read back, lowered while the hardware
  answers Off/Bare, refused if it answers another xLVL; then ``IODIR.INVAL_DDT``, a global
  ``IOTINVAL.VMA`` and ``IOFENCE.C(PR, PW)``, waited for by polling ``cqh``
  (``riscv_iommu_cmd_sync``, ``riscv_iommu_queue_wait``);
* ``riscv_iommu_probe_device``, ``riscv_iommu_attach_paging_domain``,
  ``riscv_iommu_attach_identity_domain``, ``riscv_iommu_attach_blocking_domain`` with
  ``riscv_iommu_iodir_update`` and ``riscv_iommu_bond_unlink``;
* ``riscv_iommu_map_pages``, ``riscv_iommu_unmap_pages``, ``riscv_iommu_iotlb_inval``
  (per-page ``IOTINVAL.VMA`` under 2 MiB, PSCID-wide otherwise);
* the threaded interrupt handlers ``riscv_iommu_fltq_process`` and
  ``riscv_iommu_cmdq_process``, behind ``riscv_iommu_queue_ipsr``, on the wired line each
  queue's vector selects;
* ``riscv_iommu_remove``: ``ddtp`` Off, both queues disabled.

With a 32-bit register bus (``Config.mmio_data_width == 32``) each 8-byte access is made
as two 4-byte ones, low half first: the driver needs ``CONFIG_64BIT`` and uses
``readq``/``writeq``, so a 32-bit register bus is a 64-bit CPU behind a width-converting
bridge, which issues the beats in ascending address order (the order of Linux's
``lo_hi_writeq``).
"""

from iogate.hdl import bits
from iogate.hdl.formats import CMD_SIZE, FAULT_RECORD, FQ_RECORD_SIZE, Cause
from iogate.hdl.port import Access
from iogate.hdl.regs import Offset

from iogate.firmware import commands
from iogate.firmware.errors import OutOfMemory

__all__ = ["LinuxRefuses", "LinuxDriver", "replay"]

# iommu-bits.h
_QUEUE_ENABLE, _QUEUE_INTR_ENABLE, _QUEUE_MEM_FAULT = 1 << 0, 1 << 1, 1 << 8
_QUEUE_OVERFLOW, _QUEUE_ACTIVE, _QUEUE_BUSY = 1 << 9, 1 << 16, 1 << 17
_CQCSR_CMD_TO, _CQCSR_CMD_ILL, _CQCSR_FENCE_W_IP = 1 << 9, 1 << 10, 1 << 11
_LOG2SZ = 0x1F
_PPN_FIELD = ((1 << 44) - 1) << 10
_DDTP_BUSY = 1 << 4
_FCTL_BE, _FCTL_WSI = 1 << 0, 1 << 1
_MODE_OFF, _MODE_BARE, _MODE_1LVL, _MODE_3LVL = 0, 1, 2, 4
_IGS_MSI, _IGS_WSI, _IGS_BOTH = 0, 1, 2
_INTR_CQ, _INTR_FQ = 0, 1
_INTR_COUNT = 4
_DC_TC_V, _DC_TC_SADE = 1 << 0, 1 << 8
_PC_TA_V = 1 << 0
_PC_TA_PSCID = ((1 << 20) - 1) << 12
_FSC_SV39, _FSC_SV48, _FSC_SV57 = 8, 9, 10
_CAP_SV39, _CAP_SV48, _CAP_SV57 = 1 << 9, 1 << 10, 1 << 11
_CAP_MSI_FLAT, _CAP_AMO_HWAD, _CAP_END = 1 << 22, 1 << 24, 1 << 27
# arch/riscv/include/asm/pgtable-bits.h
_PAGE_PRESENT, _PAGE_READ, _PAGE_WRITE = 1 << 0, 1 << 1, 1 << 2
_PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY = 1 << 4, 1 << 6, 1 << 7
_PAGE_LEAF = _PAGE_READ | _PAGE_WRITE | 1 << 3
_PAGE_BASE = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_USER
_PAGE_TABLE = _PAGE_PRESENT
# iommu.c
_DEF_CQ_COUNT, _DEF_FQ_COUNT = 8192, 4096
_IOTLB_INVAL_LIMIT = 2 << 20
_PAGE = 4096
_SZ_2M, _SZ_1G = 2 << 20, 1 << 30
_MAX_POLLS = 100_000


class LinuxRefuses(Exception):
    """Where the Linux driver would give up on the hardware: the function and its message."""


def _phys_to_ppn(pa):
    return (pa >> 2) & _PPN_FIELD


def _ppn_to_phys(pn):
    return (pn << 2) & (((1 << 44) - 1) << 12)


def _ilog2(n):
    return n.bit_length() - 1


class _Queue:
    """``struct riscv_iommu_queue``: the unbounded shadow indices and the ring."""

    def __init__(self, qid, qbr, qcr, count, entry_size):
        self.qid, self.qbr, self.qcr = qid, qbr, qcr
        self.head_reg, self.tail_reg = qbr + 8, qbr + 12
        self.mask = count - 1
        self.entry_size = entry_size
        self.prod = self.head = self.tail = 0
        self.base = None
        self.active = False


class LinuxDriver:
    """``struct riscv_iommu_device`` and the driver's functions over a host.

    Parameters
    ----------
    host : iogate.cosim.client.host.Host
    irqs_count : int
        Interrupts the platform gives the IOMMU (the device tree's ``interrupts``): iogate's
        fragment (:mod:`iogate.firmware.devicetree`) lists one wire per ``icvec`` cause, 4.
    """

    def __init__(self, host, *, irqs_count=_INTR_COUNT):
        self.host = host
        self.bus = host.bus
        self.split = host.config.mmio_data_width == 32
        self.irqs_count = min(irqs_count, _INTR_COUNT)
        self.cmdq = _Queue(_INTR_CQ, Offset.CQB, Offset.CQCSR, _DEF_CQ_COUNT, CMD_SIZE)
        self.fltq = _Queue(_INTR_FQ, Offset.FQB, Offset.FQCSR, _DEF_FQ_COUNT, FQ_RECORD_SIZE)
        self.caps = self.fctl = self.icvec = 0
        self.ddt_mode = _MODE_OFF
        self.ddt_phys = None
        self.faults = []            # records riscv_iommu_fault() reported
        self.queue_errors = []      # what the handlers' dev_warn()s said
        self.commands = 0
        self._next_pscid = 1
        self._line_queues = {}

    # -- riscv_iommu_readl/readq/writel/writeq ------------------------------------------

    def readl(self, offset):
        return self.bus.mmio_read(offset, 4)

    def writel(self, offset, value):
        self.bus.mmio_write(offset, 4, value & 0xFFFF_FFFF)

    def readq(self, offset):
        if self.split:
            lo = self.bus.mmio_read(offset, 4)
            return lo | self.bus.mmio_read(offset + 4, 4) << 32
        return self.bus.mmio_read(offset, 8)

    def writeq(self, offset, value):
        if self.split:
            self.bus.mmio_write(offset, 4, value & 0xFFFF_FFFF)
            self.bus.mmio_write(offset + 4, 4, value >> 32)
        else:
            self.bus.mmio_write(offset, 8, value)

    def _poll(self, read, offset, cond, what, delay=0):
        """``readx_poll_timeout``: the last value read, and whether ``cond`` held."""
        for _ in range(_MAX_POLLS):
            value = read(offset)
            if cond(value):
                return value, True
            if delay:
                self.host.wait(delay)
        return value, False

    def read_ddtp(self):
        """``riscv_iommu_read_ddtp``: ``ddtp`` once ``BUSY`` reads 0 (10 us between reads)."""
        value, _ = self._poll(self.readq, Offset.DDTP, lambda v: not v & _DDTP_BUSY, "ddtp",
                              delay=10)
        return value

    # -- memory: the driver's stores and loads -----------------------------------------

    def _store64(self, address, value):
        self.bus.mem_write(address, value.to_bytes(8, "little"))

    def _load64(self, address):
        return int.from_bytes(self.bus.mem_read(address, 8), "little")

    def _get_page(self, size=_PAGE):
        """``riscv_iommu_get_pages``: zeroed, naturally aligned (the buddy allocator's)."""
        return self.host.alloc.alloc(size, align=max(size, _PAGE))

    # -- probe --------------------------------------------------------------------------

    def platform_probe(self):
        """``riscv_iommu_platform_probe`` (iommu-platform.c), then ``riscv_iommu_init``."""
        self.caps = self.readq(Offset.CAPABILITIES)
        self.fctl = self.readl(Offset.FCTL)
        igs = (self.caps >> 28) & 3
        if igs in (_IGS_MSI, _IGS_BOTH) and igs == _IGS_MSI:
            raise LinuxRefuses("riscv_iommu_platform_probe: unable to use wire-signaled "
                               "interrupts (capabilities.IGS is MSI and no MSI domain here)")
        if igs not in (_IGS_WSI, _IGS_BOTH):
            raise LinuxRefuses("riscv_iommu_platform_probe: invalid IGS")
        if not self.fctl & _FCTL_WSI:
            self.fctl |= _FCTL_WSI
            self.writel(Offset.FCTL, self.fctl)
        self.init()

    def init(self):
        """``riscv_iommu_init``."""
        self.init_check()
        self.iodir_alloc()
        self.queue_alloc(self.cmdq)
        self.queue_alloc(self.fltq)
        self.queue_enable(self.cmdq, self.cmdq_process)
        self.queue_enable(self.fltq, self.fltq_process)
        self.iodir_set_mode(_MODE_3LVL)

    def init_check(self):
        """``riscv_iommu_init_check``: the IOMMU is off, little-endian, and ``icvec``
        distributes the causes over the interrupts Linux has, as it reads back."""
        ddtp = self.readq(Offset.DDTP)
        if ddtp & _DDTP_BUSY:
            raise LinuxRefuses("riscv_iommu_init_check: ddtp busy (-EBUSY)")
        if ddtp & 0xF > _MODE_BARE:
            raise LinuxRefuses("riscv_iommu_init_check: ddtp translating at probe, not a kdump "
                               "kernel (-EBUSY)")
        if self.fctl & _FCTL_BE:
            if not self.caps & _CAP_END:
                raise LinuxRefuses("riscv_iommu_init_check: big-endian only (-EINVAL)")
            self.writel(Offset.FCTL, self.fctl ^ _FCTL_BE)
            self.fctl = self.readl(Offset.FCTL)
            if self.fctl & _FCTL_BE:
                raise LinuxRefuses("riscv_iommu_init_check: fctl.BE stays 1 (-EINVAL)")
        n = self.irqs_count
        icvec = (1 % n) << 4 | (2 % n) << 12 | (3 % n) << 8
        self.writeq(Offset.ICVEC, icvec)
        self.icvec = self.readq(Offset.ICVEC)
        vectors = [(self.icvec >> shift) & 0xF for shift in (0, 4, 8, 12)]
        if max(vectors) >= n:
            raise LinuxRefuses(f"riscv_iommu_init_check: icvec {self.icvec:#x} names a vector "
                               f"at or above the {n} interrupts (-EINVAL)")

    def iodir_alloc(self):
        """``riscv_iommu_iodir_alloc``: discover a fixed root (WARL PPN), else allocate."""
        ddtp = self.read_ddtp()
        if ddtp & _DDTP_BUSY:
            raise LinuxRefuses("riscv_iommu_iodir_alloc: ddtp busy (-EBUSY)")
        mode = ddtp & 0xF
        if mode in (_MODE_BARE, _MODE_OFF):
            self.writeq(Offset.DDTP, mode)
            ddtp = self.read_ddtp()
            if ddtp & _DDTP_BUSY:
                raise LinuxRefuses("riscv_iommu_iodir_alloc: ddtp busy (-EBUSY)")
            fixed = _ppn_to_phys(ddtp)
            if fixed:
                # devm_ioremap() and memset(): a root the hardware chose.
                self.ddt_phys = fixed
                self.bus.mem_write(fixed, bytes(_PAGE))
        if self.ddt_phys is None:
            self.ddt_phys = self._get_page()

    def queue_alloc(self, q):
        """``riscv_iommu_queue_alloc``: the hardware's queue size (WARL ``LOG2SZ``), an
        optional fixed ring address (WARL PPN), then an exact read-back."""
        self.writeq(q.qbr, _LOG2SZ)
        qb = self.readq(q.qbr)
        logsz = min(_ilog2(q.mask), qb & _LOG2SZ)
        if qb & _PPN_FIELD:
            q.base = _ppn_to_phys(qb)       # devm_ioremap() of the fixed ring
        else:
            while True:
                try:
                    q.base = self._get_page(q.entry_size << (logsz + 1))
                    break
                except OutOfMemory:
                    if logsz == 0:
                        raise LinuxRefuses("riscv_iommu_queue_alloc: -ENOMEM") from None
                    logsz -= 1
        qb = _phys_to_ppn(q.base) | logsz
        self.writeq(q.qbr, qb)
        rb = self.readq(q.qbr)
        if rb != qb:
            raise LinuxRefuses(f"riscv_iommu_queue_alloc: queue #{q.qid} allocation failed "
                               f"(wrote {qb:#x}, read {rb:#x}: -ENODEV)")
        q.mask = (2 << logsz) - 1

    def queue_vec(self, n):
        """``riscv_iommu_queue_vec``: the wire of cause ``n`` (the ``CIV`` mask for all)."""
        return (self.icvec >> (n * 4)) & 0xF

    def queue_enable(self, q, handler):
        """``riscv_iommu_queue_enable``: the threaded IRQ requested, the queue enabled with
        its interrupt and its memory fault cleared; once ``BUSY`` reads 0 the same read
        must show the queue ``ACTIVE`` with no memory fault (Linux does not poll ``ON``)."""
        line = self.queue_vec(q.qid)
        self._request_irq(line, q, handler)
        self.writel(q.qcr, _QUEUE_ENABLE | _QUEUE_INTR_ENABLE | _QUEUE_MEM_FAULT)
        csr, _ = self._poll(self.readl, q.qcr, lambda v: not v & _QUEUE_BUSY, "qcsr")
        if csr & (_QUEUE_ACTIVE | _QUEUE_BUSY | _QUEUE_MEM_FAULT) != _QUEUE_ACTIVE:
            self.writel(q.qcr, 0)
            self._line_queues[line].remove((q, handler))
            raise LinuxRefuses(f"riscv_iommu_queue_enable: queue #{q.qid} failed to start "
                               f"(csr {csr:#x}: -EBUSY)")
        q.active = True
        self.writel(Offset.IPSR, 1 << q.qid)

    def _request_irq(self, line, q, handler):
        # request_threaded_irq(IRQF_SHARED): every queue on the wire gets its hard handler
        # riscv_iommu_queue_ipsr, which wakes the thread when its ipsr bit is set.
        queues = self._line_queues.setdefault(line, [])
        queues.append((q, handler))
        self.host.on_interrupt(line, self._irq)

    def _irq(self, line):
        for q, handler in list(self._line_queues.get(line, ())):
            if self.readl(Offset.IPSR) & (1 << q.qid):    # riscv_iommu_queue_ipsr
                handler(q)

    def queue_disable(self, q):
        """``riscv_iommu_queue_disable``: free the IRQ, disable, wait for ``BUSY`` to clear;
        a queue still active or busy is reported (and the replay counts that as refusal)."""
        if not q.active:
            return
        line = self.queue_vec(q.qid)
        self._line_queues[line] = [e for e in self._line_queues[line] if e[0] is not q]
        if not self._line_queues[line]:
            self.host.on_interrupt(line, None)
        self.writel(q.qcr, 0)
        csr, _ = self._poll(self.readl, q.qcr, lambda v: not v & _QUEUE_BUSY, "qcsr")
        q.active = False
        if csr & (_QUEUE_ACTIVE | _QUEUE_BUSY):
            raise LinuxRefuses(f"riscv_iommu_queue_disable: fail to disable hardware queue "
                               f"#{q.qid}, csr {csr:#x}")

    # -- queues -------------------------------------------------------------------------

    def queue_send(self, q, entry):
        """``riscv_iommu_queue_send``: store the entry, ring the tail doorbell."""
        prod = q.prod
        q.prod += 1
        if prod - q.head > q.mask:
            raise LinuxRefuses("riscv_iommu_queue_send: command enqueue failed")
        if prod - q.head == q.mask:
            last = q.head & q.mask
            head, ok = self._poll(self.readl, q.head_reg,
                                  lambda h: not h & ~q.mask and h != last, "cqh")
            if not ok:
                raise LinuxRefuses("riscv_iommu_queue_send: command enqueue failed")
            q.head += (head - last) & q.mask
        self.bus.mem_write(q.base + (prod & q.mask) * q.entry_size, entry)
        self.writel(q.tail_reg, (prod + 1) & q.mask)
        q.tail += 1
        return prod

    def queue_cons(self, q):
        """``riscv_iommu_queue_cons``: the consumer index from the hardware's head."""
        cons = q.head
        last = cons & q.mask
        head, ok = self._poll(self.readl, q.head_reg, lambda h: not h & ~q.mask, "cqh")
        if not ok:
            return cons
        return cons + ((head - last) & q.mask)

    def queue_wait(self, q, index):
        """``riscv_iommu_queue_wait``: poll the consumer index past ``index``."""
        if q.head - index > 0:
            return
        for _ in range(_MAX_POLLS):
            if self.queue_cons(q) - index > 0:
                return
        raise LinuxRefuses("riscv_iommu_cmd_sync: Hardware error: command execution timeout")

    def cmd_send(self, command):
        """``riscv_iommu_cmd_send``."""
        self.commands += 1
        return self.queue_send(self.cmdq, commands.to_bytes(command))

    def cmd_sync(self):
        """``riscv_iommu_cmd_sync``: ``IOFENCE.C`` with ``PR`` and ``PW``, waited for."""
        prod = self.cmd_send(commands.iofence_c(pr=True, pw=True))
        self.queue_wait(self.cmdq, prod)

    def queue_consume(self, q):
        """``riscv_iommu_queue_consume``: records available and the first index."""
        index = q.head
        available = q.tail - q.head
        if available > 0:
            return available, index
        last = q.tail & q.mask
        tail, ok = self._poll(self.readl, q.tail_reg, lambda t: not t & ~q.mask, "fqt")
        if not ok:
            self.queue_errors.append("Hardware error: queue access timeout")
            return 0, index
        if tail == last:
            return 0, index
        q.tail += (tail - last) & q.mask
        return q.tail - q.head, index

    def queue_release(self, q, count):
        """``riscv_iommu_queue_release``: the consumed records handed back (``fqh``)."""
        q.head += count
        self.writel(q.head_reg, q.head & q.mask)

    # -- the interrupt handlers ---------------------------------------------------------

    def cmdq_process(self, q):
        """``riscv_iommu_cmdq_process``: write back the error bits, clear ``ipsr.cip``."""
        ctrl = self.readl(q.qcr)
        errors = _QUEUE_MEM_FAULT | _CQCSR_CMD_TO | _CQCSR_CMD_ILL | _CQCSR_FENCE_W_IP
        if ctrl & errors:
            self.writel(q.qcr, ctrl)
            self.queue_errors.append(f"cq error csr {ctrl:#x}")
        self.writel(Offset.IPSR, 1 << q.qid)

    def fltq_process(self, q):
        """``riscv_iommu_fltq_process``: clear ``ipsr.fip``, consume every record (``fqt``
        read, records reported, ``fqh`` written) until none is left, then write back
        ``FQMF``/``FQOF``."""
        self.writel(Offset.IPSR, 1 << q.qid)
        while True:
            count, index = self.queue_consume(q)
            for i in range(count):
                raw = self.bus.mem_read(q.base + ((index + i) & q.mask) * q.entry_size,
                                        q.entry_size)
                self.faults.append(bits.unpack(FAULT_RECORD, int.from_bytes(raw, "little")))
            self.queue_release(q, count)
            if count <= 0:
                break
        ctrl = self.readl(q.qcr)
        if ctrl & (_QUEUE_MEM_FAULT | _QUEUE_OVERFLOW):
            self.writel(q.qcr, ctrl)
            self.queue_errors.append(f"fq error csr {ctrl:#x}")

    # -- the device directory ------------------------------------------------------------

    def iodir_set_mode(self, ddtp_mode):
        """``riscv_iommu_iodir_set_mode``: the deepest mode the hardware keeps, from
        ``ddtp_mode`` down, then the caches invalidated and fenced."""
        ddtp = self.read_ddtp()
        if ddtp & _DDTP_BUSY:
            raise LinuxRefuses("riscv_iommu_iodir_set_mode: -EBUSY")
        mode = ddtp & 0xF
        rq_mode = ddtp_mode
        if mode not in (_MODE_BARE, _MODE_OFF) and rq_mode not in (_MODE_BARE, _MODE_OFF):
            raise LinuxRefuses("riscv_iommu_iodir_set_mode: xLVL to xLVL (-EINVAL)")
        while True:
            rq_ddtp = rq_mode
            if rq_mode > _MODE_BARE:
                rq_ddtp |= _phys_to_ppn(self.ddt_phys)
            self.writeq(Offset.DDTP, rq_ddtp)
            ddtp = self.read_ddtp()
            if ddtp & _DDTP_BUSY:
                raise LinuxRefuses(f"riscv_iommu_iodir_set_mode: timeout when setting ddtp "
                                   f"(ddt mode: {rq_mode}, read: {ddtp:#x})")
            mode = ddtp & 0xF
            if rq_mode == mode:
                break
            if rq_mode < _MODE_1LVL and rq_ddtp != ddtp:
                raise LinuxRefuses(f"riscv_iommu_iodir_set_mode: DDTP update failed hw: "
                                   f"{ddtp:#x} vs {rq_ddtp:#x}")
            if mode < _MODE_1LVL and rq_mode > _MODE_1LVL:
                rq_mode -= 1
                continue
            raise LinuxRefuses(f"riscv_iommu_iodir_set_mode: DDTP hw mode {mode}, failed to "
                               f"set {ddtp_mode}")
        self.ddt_mode = mode
        self.cmd_send(commands.iodir_inval_ddt())
        self.cmd_send(commands.iotinval_vma())
        self.cmd_sync()

    def get_dc(self, devid):
        """``riscv_iommu_get_dc``: the address of ``devid``'s device context, directory
        levels allocated on the way (None where the mode cannot reach it)."""
        if not _MODE_1LVL <= self.ddt_mode <= _MODE_3LVL:
            return None
        base_format = not self.caps & _CAP_MSI_FLAT
        ddi_bits = (7, 16, 24) if base_format else (6, 15, 24)
        depth = self.ddt_mode - _MODE_1LVL
        if devid >= 1 << ddi_bits[depth]:
            return None
        table = self.ddt_phys
        while depth > 0:
            depth -= 1
            entry = table + ((devid >> ddi_bits[depth]) & 0x1FF) * 8
            ddt = self._load64(entry)
            if ddt & 1:
                table = _ppn_to_phys(ddt)
                continue
            page = self._get_page()
            self._store64(entry, _phys_to_ppn(page) | 1)
            table = page
        return table + ((devid & ((64 << base_format) - 1)) << (3 - base_format)) * 8

    def probe_device(self, devid):
        """``riscv_iommu_probe_device``: the context allocated, ``tc`` written without V."""
        if self.ddt_mode <= _MODE_BARE:
            raise LinuxRefuses("riscv_iommu_probe_device: fail-over Bare mode (-ENODEV)")
        dc = self.get_dc(devid)
        if dc is None:
            raise LinuxRefuses(f"riscv_iommu_probe_device: device {devid:#x} beyond the "
                               f"directory (-ENODEV)")
        tc = _DC_TC_SADE if self.caps & _CAP_AMO_HWAD else 0
        self._store64(dc, tc)
        return Device(devid)

    def iodir_update(self, dev, fsc, ta):
        """``riscv_iommu_iodir_update``: a valid context is made invalid and its cache
        entry invalidated and fenced first; then ``fsc``, ``ta`` and ``tc`` (V last), each
        followed by ``IODIR.INVAL_DDT``, and a fence."""
        sync_required = False
        for devid in dev.ids:
            dc = self.get_dc(devid)
            tc = self._load64(dc)
            if not tc & _DC_TC_V:
                continue
            self._store64(dc, tc & ~_DC_TC_V)
            self.cmd_send(commands.iodir_inval_ddt(did=devid))
            sync_required = True
        if sync_required:
            self.cmd_sync()
        for devid in dev.ids:
            dc = self.get_dc(devid)
            tc = self._load64(dc) | (ta & _DC_TC_V)
            self._store64(dc + 24, fsc)
            self._store64(dc + 16, ta & _PC_TA_PSCID)
            self._store64(dc, tc)
            self.cmd_send(commands.iodir_inval_ddt(did=devid))
        self.cmd_sync()

    def bond_unlink(self, domain, dev):
        """``riscv_iommu_bond_unlink``: the last device of ``domain`` gone, its PSCID is
        invalidated."""
        if domain is None:
            return
        domain.bonds.remove(dev)
        if not domain.bonds:
            self.cmd_send(commands.iotinval_vma(pscid=domain.pscid))
            self.cmd_sync()

    def attach_paging_domain(self, domain, dev):
        """``riscv_iommu_attach_paging_domain``."""
        fsc = domain.pgd_mode << 60 | domain.root >> 12
        ta = domain.pscid << 12 | _PC_TA_V
        domain.bonds.append(dev)
        self.iodir_update(dev, fsc, ta)
        self.bond_unlink(dev.domain, dev)
        dev.domain = domain

    def attach_identity_domain(self, dev):
        """``riscv_iommu_attach_identity_domain``: V with first stage Bare."""
        self.iodir_update(dev, 0, _PC_TA_V)
        self.bond_unlink(dev.domain, dev)
        dev.domain = None

    def attach_blocking_domain(self, dev):
        """``riscv_iommu_attach_blocking_domain``: the context invalid (cause 258)."""
        self.iodir_update(dev, 0, 0)
        self.bond_unlink(dev.domain, dev)
        dev.domain = None

    # -- paging domains -----------------------------------------------------------------

    def alloc_paging_domain(self):
        """``riscv_iommu_alloc_paging_domain``: the highest first-stage mode offered."""
        offered = [(mode, va_bits) for cap, mode, va_bits in
                   ((_CAP_SV57, _FSC_SV57, 57), (_CAP_SV48, _FSC_SV48, 48),
                    (_CAP_SV39, _FSC_SV39, 39)) if self.caps & cap]
        if not offered:
            raise LinuxRefuses("riscv_iommu_alloc_paging_domain: cannot find supported page "
                               "table mode")
        mode, va_bits = offered[0]
        pscid = self._next_pscid       # ida_alloc_range(1, 2**20 - 1)
        self._next_pscid += 1
        return Domain(self, mode, va_bits, self._get_page(), pscid)

    def iotlb_inval(self, domain, start, end):
        """``riscv_iommu_iotlb_inval``: per-page ``IOTINVAL.VMA`` under 2 MiB, else the
        whole PSCID; then a fence."""
        if not domain.bonds:
            return
        length = (end - start + 1) & (1 << 64) - 1
        if length and length < _IOTLB_INVAL_LIMIT:
            for iova in range(start, end, _PAGE):
                self.cmd_send(commands.iotinval_vma(pscid=domain.pscid, addr=iova))
        else:
            self.cmd_send(commands.iotinval_vma(pscid=domain.pscid))
        self.cmd_sync()

    def remove(self):
        """``riscv_iommu_remove``: ``ddtp`` Off, both queues disabled."""
        self.iodir_set_mode(_MODE_OFF)
        self.queue_disable(self.cmdq)
        self.queue_disable(self.fltq)


class Device:
    """A device the IOMMU core probed: its ``fwspec`` ids and current paging domain."""

    def __init__(self, devid):
        self.ids = (devid,)
        self.domain = None


class Domain:
    """``struct riscv_iommu_domain`` with the page-table code of ``riscv_iommu_pte_alloc``,
    ``riscv_iommu_pte_fetch``, ``riscv_iommu_map_pages`` and ``riscv_iommu_unmap_pages``."""

    def __init__(self, driver, pgd_mode, va_bits, root, pscid):
        self.driver = driver
        self.pgd_mode, self.va_bits, self.root, self.pscid = pgd_mode, va_bits, root, pscid
        self.bonds = []
        va_mask = (1 << (va_bits - 1)) - 1
        self.pgsize_bitmap = va_mask & (_PAGE | _SZ_2M | _SZ_1G | 1 << 39)

    def _top_level(self):
        return self.pgd_mode - _FSC_SV39 + 2

    def pte_alloc(self, iova, pgsize):
        d = self.driver
        table, level = self.root, self._top_level()
        while True:
            shift = 12 + 9 * level
            ptr = table + ((iova >> shift) & 511) * 8
            if 1 << shift == pgsize:
                return ptr
            pte = d._load64(ptr)
            if pte & _PAGE_PRESENT and pte & _PAGE_LEAF:
                return None
            if pte == 0:
                page = d._get_page()
                pte = (page >> 12) << 10 | _PAGE_TABLE
                d._store64(ptr, pte)
            table = (pte >> 10) << 12
            level -= 1
            if level < 0:
                return None

    def pte_fetch(self, iova):
        d = self.driver
        table, level = self.root, self._top_level()
        while level >= 0:
            shift = 12 + 9 * level
            ptr = table + ((iova >> shift) & 511) * 8
            pte = d._load64(ptr)
            if pte & _PAGE_PRESENT and pte & _PAGE_LEAF:
                return ptr, 1 << shift
            if pte == 0:
                return None, 0
            table = (pte >> 10) << 12
            level -= 1
        return None, 0

    def map_pages(self, iova, phys, pgsize, pgcount, writable):
        """``riscv_iommu_map_pages``: leaves of ``pgsize``; no invalidation (an invalid
        entry is never cached) unless a table was replaced by a leaf."""
        d = self.driver
        if not pgsize & self.pgsize_bitmap:
            raise ValueError(f"page size {pgsize:#x} not in the domain's bitmap")
        prot = _PAGE_BASE | _PAGE_READ
        if writable:
            prot |= _PAGE_WRITE | (0 if d.caps & _CAP_AMO_HWAD else _PAGE_DIRTY)
        freed = False
        for _ in range(pgcount):
            ptr = self.pte_alloc(iova, pgsize)
            if ptr is None:
                raise LinuxRefuses("riscv_iommu_map_pages: -ENOMEM")
            old = d._load64(ptr)
            d._store64(ptr, (phys >> 12) << 10 | prot)
            freed |= bool(old & _PAGE_PRESENT and not old & _PAGE_LEAF)
            iova += pgsize
            phys += pgsize
        if freed:
            d.iotlb_inval(self, 0, (1 << 64) - 1)

    def unmap(self, iova, size):
        """``iommu_unmap``: ``riscv_iommu_unmap_pages`` gathering the range, then
        ``riscv_iommu_iotlb_sync``. Returns the bytes unmapped."""
        d = self.driver
        start, unmapped = iova, 0
        while unmapped < size:
            ptr, pte_size = self.pte_fetch(iova)
            if ptr is None or iova & (pte_size - 1):
                break
            d._store64(ptr, 0)
            iova += pte_size
            unmapped += pte_size
        if unmapped:
            d.iotlb_inval(self, start, start + unmapped - 1)
        return unmapped


# -- the replay: the IOMMU core and the DMA API around the driver ---------------------------

def _devices(driver):
    """Device ids for the directory mode the driver found: every level of the directory
    gets more than one entry where it has levels."""
    if driver.ddt_mode == _MODE_3LVL:
        return (0x01_0203, 0x01_0284, 0x7F_0001)
    if driver.ddt_mode == _MODE_1LVL + 1:
        return (0x0203, 0x0284, 0x7F01)
    return (0x21, 0x22, 0x5A)


class _Dma:
    """The DMA checks of the replay: what Linux's mappings say a device's DMA must get."""

    def __init__(self, host):
        self.host = host
        self.checked = 0
        self.faults = 0

    def reaches(self, devid, iova, pa, access=Access.READ):
        r = self.host.dma(devid, iova, access)
        self.checked += 1
        if r.fault or r.pa != pa:
            raise AssertionError(f"{access.name.lower()} by {devid:#x} at {iova:#x}: expected "
                                 f"{pa:#x}, got {r}")

    def faults_with(self, devid, iova, cause, access=Access.READ):
        r = self.host.dma(devid, iova, access)
        self.checked += 1
        self.faults += 1
        if not r.fault or r.cause != cause:
            raise AssertionError(f"{access.name.lower()} by {devid:#x} at {iova:#x}: expected "
                                 f"fault {Cause(cause).name}, got {r}")


def replay(host):
    """Linux's probe, attach, map/unmap and fault handling on ``host``; returns a report.

    Raises
    ------
    LinuxRefuses
        Where the driver would give up on the hardware.
    AssertionError
        Where DMA does not get what Linux's mappings say it must.
    """
    d = LinuxDriver(host)
    d.platform_probe()
    dma = _Dma(host)
    a_id, b_id, c_id = _devices(d)
    a, b, c = (d.probe_device(i) for i in (a_id, b_id, c_id))
    # Probed, not attached: tc without V (cause 258).
    dma.faults_with(c_id, 0x1000, Cause.DDT_ENTRY_NOT_VALID)

    # The default DMA domains (no def_domain_type: paging), one per device (group).
    da, db = d.alloc_paging_domain(), d.alloc_paging_domain()
    d.attach_paging_domain(da, a)
    d.attach_paging_domain(db, b)
    buf = host.alloc.alloc(0x4000, align=0x4000)
    da.map_pages(0x10_0000, buf, _PAGE, 4, writable=True)
    da.map_pages(0x20_0000, buf, _PAGE, 1, writable=False)
    # Superpages at physical addresses every PAS (32 and up) has: 128 MiB and 3 GiB.
    pa_2m, big = _SZ_2M * 64, _SZ_1G * 3
    da.map_pages(0x40_0000, pa_2m, _SZ_2M, 1, writable=True)
    da.map_pages(0x4000_0000, big, _SZ_1G, 1, writable=True)
    db.map_pages(0x10_0000, buf + 0x2000, _PAGE, 2, writable=True)
    for off in (0, 0x1008, 0x3FF8):
        dma.reaches(a_id, 0x10_0000 + off, buf + off)
        dma.reaches(a_id, 0x10_0000 + off, buf + off, Access.WRITE)
    dma.reaches(a_id, 0x20_0010, buf + 0x10)
    dma.faults_with(a_id, 0x20_0010, Cause.WRITE_PAGE_FAULT, Access.WRITE)
    dma.reaches(a_id, 0x40_0000 + 0x1F_F000, pa_2m + 0x1F_F000, Access.WRITE)
    dma.reaches(a_id, 0x4000_0000 + 0x1234_5678, big + 0x1234_5678)
    dma.reaches(b_id, 0x10_1000, buf + 0x3000)
    dma.faults_with(b_id, 0x10_2000, Cause.READ_PAGE_FAULT)
    dma.faults_with(a_id, 0x10_0000, Cause.INSTRUCTION_PAGE_FAULT, Access.EXECUTE)

    # Unmap: 2 pages (per-page IOTINVAL.VMA), then the 2 MiB leaf (PSCID-wide).
    check(da.unmap(0x10_1000, 0x2000) == 0x2000, "unmap of two 4 KiB pages")
    check(da.unmap(0x40_0000, _SZ_2M) == _SZ_2M, "unmap of the 2 MiB page")
    dma.faults_with(a_id, 0x10_1000, Cause.READ_PAGE_FAULT)
    dma.faults_with(a_id, 0x10_2008, Cause.WRITE_PAGE_FAULT, Access.WRITE)
    dma.faults_with(a_id, 0x40_0000, Cause.READ_PAGE_FAULT)
    dma.reaches(a_id, 0x10_3000, buf + 0x3000)
    dma.reaches(b_id, 0x10_0000, buf + 0x2000)

    # Identity for a, blocking for b; a paging domain again for a (a new PSCID).
    d.attach_identity_domain(a)
    dma.reaches(a_id, 0x10_1000, 0x10_1000, Access.WRITE)
    d.attach_blocking_domain(b)
    dma.faults_with(b_id, 0x10_0000, Cause.DDT_ENTRY_NOT_VALID)
    dc_ = d.alloc_paging_domain()
    dc_.map_pages(0x30_0000, buf, _PAGE, 1, writable=True)
    d.attach_paging_domain(dc_, a)
    dma.reaches(a_id, 0x30_0040, buf + 0x40, Access.WRITE)
    dma.faults_with(a_id, 0x10_1000, Cause.READ_PAGE_FAULT)

    # Every fault above was reported; the fault interrupt's handler consumed them all.
    host.wait(64)
    records = len(d.faults)
    ddt_mode = d.ddt_mode
    check(records == dma.faults, f"the fault handler consumed {records} records, "
                                 f"{dma.faults} faults were reported")
    d.remove()
    dma.faults_with(a_id, 0x30_0040, Cause.ALL_INBOUND_DISALLOWED)
    return {
        "capabilities": hex(d.caps), "fctl": hex(d.fctl), "icvec": hex(d.icvec),
        "ddt_mode": {2: "1LVL", 3: "2LVL", 4: "3LVL"}[ddt_mode],
        "first_stage": {_FSC_SV39: "Sv39", _FSC_SV48: "Sv48", _FSC_SV57: "Sv57"}[da.pgd_mode],
        "cq_entries": d.cmdq.mask + 1, "fq_entries": d.fltq.mask + 1,
        "split_64bit_accesses": d.split, "commands": d.commands, "dma_checked": dma.checked,
        "fault_records": records, "queue_errors": d.queue_errors,
        "devices": [hex(i) for i in (a_id, b_id, c_id)],
    }


def check(condition, what):
    if not condition:
        raise AssertionError(what)
