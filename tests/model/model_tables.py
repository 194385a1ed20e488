"""Small helpers that build device directories and page tables for the model tests.

Every word is packed with :func:`iogate.hdl.bits.pack` from the shared layouts; the expected
values in the tests themselves are worked out by hand from the spec.
"""

from iogate.hdl import Config, bits
from iogate.hdl.formats import DDTE, IODIR, IOFENCE, IOHGATP, IOSATP, IOTINVAL, PTE, TA, TC
from iogate.hdl.regs import DDTP, QB, Offset

from iogate.cosim.model import IommuModel, Memory

FULL = Config.full()

#: PTE flag sets used over and over: a valid user leaf with A and D.
URWX = dict(v=1, r=1, w=1, x=1, u=1, a=1, d=1)
URW = dict(v=1, r=1, w=1, u=1, a=1, d=1)
UR = dict(v=1, r=1, u=1, a=1)


def pte(ppn, **flags):
    """A PTE word: ``ppn`` and the given flag fields (v, r, w, x, u, g, a, d, n, pbmt)."""
    return bits.pack(PTE, ppn=ppn, **flags)


def nonleaf(ppn):
    return bits.pack(PTE, v=1, ppn=ppn)


def dc_words(tc=None, iohgatp=0, ta=0, fsc=0):
    """The four doublewords of a DC; ``tc`` defaults to V=1."""
    if tc is None:
        tc = bits.pack(TC, v=1)
    return (tc, iohgatp, ta, fsc)


def iosatp(mode, ppn):
    return bits.pack(IOSATP, mode=mode, ppn=ppn)


def iohgatp(mode, ppn, gscid=0):
    return bits.pack(IOHGATP, mode=mode, ppn=ppn, gscid=gscid)


def ta(pscid):
    return bits.pack(TA, pscid=pscid)


class Rig:
    """A memory, a model and a bump allocator of 4 KiB pages for tables."""

    def __init__(self, config=None, **kwargs):
        self.config = config or Config()
        self.mem = Memory()
        self.iommu = IommuModel(self.config, self.mem, **kwargs)
        self._next = 0x100_0000            # tables live from 16 MiB up

    def page(self, count=1, align=1):
        """PPN of ``count`` fresh zeroed pages aligned to ``align`` pages."""
        ppn = -(-(self._next >> 12) // align) * align
        self._next = (ppn + count) << 12
        return ppn

    def w64(self, address, value):
        self.mem.write64(address, value)

    def set_ddtp(self, mode, ppn):
        self.iommu.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=mode, ppn=ppn))

    def write_dc(self, root_ppn, device_id, words, levels=1):
        """Write ``words`` as the DC of ``device_id`` under a DDT of ``levels`` levels,
        allocating the non-leaf tables on the way."""
        ddi = [device_id & 0x7F, (device_id >> 7) & 0x1FF, (device_id >> 16) & 0xFF]
        a = root_ppn << 12
        for i in range(levels - 1, 0, -1):
            entry = self.mem.read64(a + ddi[i] * 8)
            if not entry & 1:
                entry = bits.pack(DDTE, v=1, ppn=self.page())
                self.w64(a + ddi[i] * 8, entry)
            a = bits.get(DDTE, entry, "ppn") << 12
        base = a + ddi[0] * 32
        for k, w in enumerate(words):
            self.w64(base + 8 * k, w)
        return base

    def map(self, root_ppn, va, leaf, level=0, levels=3, x4=False, translate=None):
        """Install the leaf PTE word ``leaf`` for ``va`` at ``level`` of the table rooted at
        ``root_ppn``, creating non-leaf tables as needed. ``translate(gpa) -> spa`` maps
        table addresses when the tables are guest-physical. Returns the leaf's address."""
        tr = translate or (lambda a: a)
        a = root_ppn << 12
        for i in range(levels - 1, level - 1, -1):
            mask = 0x7FF if (x4 and i == levels - 1) else 0x1FF
            address = a + ((va >> (12 + 9 * i)) & mask) * 8
            if i == level:
                self.w64(tr(address), leaf)
                return tr(address)
            entry = self.mem.read64(tr(address))
            if not entry & 1:
                entry = nonleaf(self.page())
                self.w64(tr(address), entry)
            a = bits.get(PTE, entry, "ppn") << 12

    def queue(self, offset_b, log2szm1, ppn):
        self.iommu.mmio_write(offset_b, 8, bits.pack(QB, log2szm1=log2szm1, ppn=ppn))


def cmd_bytes(cmd):
    """A 128-bit command as its 16 little-endian bytes (two doublewords, fctl.BE=0)."""
    return cmd.to_bytes(16, "little")


class Queues:
    """A command queue and a fault queue set up on ``rig`` the way the spec's init does
    (spec "Guidelines for initialization": base, then tail/head 0, then enable)."""

    def __init__(self, rig, cq_log2szm1=3, fq_log2szm1=3, cie=0, fie=0):
        self.rig = rig
        m = rig.iommu
        self.cq = rig.page()
        self.fq = rig.page()
        self.cq_entries = 2 << cq_log2szm1
        rig.queue(Offset.CQB, cq_log2szm1, self.cq)
        m.mmio_write(Offset.CQT, 4, 0)
        m.mmio_write(Offset.CQCSR, 4, 1 | cie << 1)
        rig.queue(Offset.FQB, fq_log2szm1, self.fq)
        m.mmio_write(Offset.FQH, 4, 0)
        m.mmio_write(Offset.FQCSR, 4, 1 | fie << 1)

    def submit(self, *cmds, run=True):
        """Write commands at ``cqt``, advance it, and run the queue."""
        m = self.rig.iommu
        tail = m.mmio_read(Offset.CQT, 4)
        for cmd in cmds:
            self.rig.mem.write((self.cq << 12) + tail * 16, cmd_bytes(cmd))
            tail = (tail + 1) % self.cq_entries
        m.mmio_write(Offset.CQT, 4, tail)
        if run:
            m.process_commands()

    @property
    def cqh(self):
        return self.rig.iommu.mmio_read(Offset.CQH, 4)

    @property
    def cqcsr(self):
        return self.rig.iommu.mmio_read(Offset.CQCSR, 4)

    @property
    def fqt(self):
        return self.rig.iommu.mmio_read(Offset.FQT, 4)

    def record(self, index):
        """The four doublewords of fault record ``index``."""
        base = (self.fq << 12) + index * 32
        return tuple(self.rig.mem.read64(base + 8 * k) for k in range(4))


def iotinval_vma(gv=0, gscid=0, pscv=0, pscid=0, av=0, addr=0):
    return bits.pack(IOTINVAL, opcode=1, func3=0, gv=gv, gscid=gscid, pscv=pscv, pscid=pscid,
                     av=av, addr=addr >> 12)


def iotinval_gvma(gv=0, gscid=0, av=0, addr=0):
    return bits.pack(IOTINVAL, opcode=1, func3=1, gv=gv, gscid=gscid, av=av, addr=addr >> 12)


def iofence_c(av=0, addr=0, data=0, wsi=0, pr=0, pw=0):
    return bits.pack(IOFENCE, opcode=2, func3=0, av=av, addr=addr >> 2, data=data, wsi=wsi,
                     pr=pr, pw=pw)


def iodir_inval_ddt(dv=0, did=0):
    return bits.pack(IODIR, opcode=3, func3=0, dv=dv, did=did)
