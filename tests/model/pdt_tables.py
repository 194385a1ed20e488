"""Hand-built process directories for the model tests (spec "Process-Directory-Table (PDT)";
reference N.1.2, N.1.3).

The PDI split and the entry addresses are written out here from the reference's table
(``PDI[0] = pid[7:0]``, ``PDI[1] = pid[16:8]``, ``PDI[2] = pid[19:17]``; a non-leaf entry at
``base + PDI[i]*8``, the PC at ``base + PDI[0]*16``), not taken from the code under test.
"""

from iogate.hdl import Config, bits
from iogate.hdl.formats import IODIR, IOSATP, PC_TA, PDTE, PDTP, TC
from iogate.hdl.regs import IommuMode

from model_tables import Queues, Rig, dc_words

PROCESS = Config.process()
DEVICE = 5


def pdi(pid):
    """``(PDI[0], PDI[1], PDI[2])`` by the reference's bit ranges."""
    return pid & 0xFF, (pid >> 8) & 0x1FF, (pid >> 17) & 0x7


def tc(**fields):
    return bits.pack(TC, v=1, **fields)


def pdtp(mode, ppn):
    return bits.pack(PDTP, mode=mode, ppn=ppn)


def pc_ta(pscid=0, ens=0, sum_=0, v=1):
    return bits.pack(PC_TA, v=v, ens=ens, sum=sum_, pscid=pscid)


def fsc(mode, ppn):
    return bits.pack(IOSATP, mode=mode, ppn=ppn)


def iodir_inval_pdt(dv=1, did=DEVICE, pid=0):
    """``IODIR.INVAL_PDT`` (opcode 3, func3 1; spec "IOMMU directory cache invalidation
    commands")."""
    return bits.pack(IODIR, opcode=3, func3=1, dv=dv, did=did, pid=pid)


class PdtRig(Rig):
    """A :class:`Rig` with a 1LVL DDT, queues, and helpers for PDTs.

    ``tr`` maps a table GPA to its SPA when the PDT lives in guest-physical space
    (the tests place guest pages at a fixed offset and map them with the G-stage).
    """

    def __init__(self, config=PROCESS, **kwargs):
        super().__init__(config, **kwargs)
        self.ddt = self.page()
        self.set_ddtp(IommuMode.LVL1, self.ddt)
        self.q = Queues(self)
        self.tr = lambda a: a

    def set_dc(self, *, tc_=None, iohgatp=0, ta=0, fsc_=0, device_id=DEVICE):
        self.write_dc(self.ddt, device_id, dc_words(tc_, iohgatp, ta, fsc_))

    def pdt_entry_addresses(self, mode, root_ppn, pid):
        """The (GPA) address of every entry GET_PC reads for ``pid``, root first, allocating
        the non-leaf tables (V=1) on the way; the last one is the PC's."""
        d0, d1, d2 = pdi(pid)
        levels = {1: [d0], 2: [d1, d0], 3: [d2, d1, d0]}[mode]
        a = root_ppn << 12
        out = []
        for k, index in enumerate(levels):
            leaf = k == len(levels) - 1
            address = a + index * (16 if leaf else 8)
            out.append(address)
            if leaf:
                break
            entry = self.mem.read64(self.tr(address))
            if not entry & 1:
                entry = bits.pack(PDTE, v=1, ppn=self.page())
                self.w64(self.tr(address), entry)
            a = bits.get(PDTE, entry, "ppn") << 12
        return out

    def write_pc(self, mode, root_ppn, pid, ta, fsc_):
        """Write the PC of ``pid``; returns its (GPA) address."""
        a = self.pdt_entry_addresses(mode, root_ppn, pid)[-1]
        self.w64(self.tr(a), ta)
        self.w64(self.tr(a) + 8, fsc_)
        return a

    def translate(self, iova, access="read", device_id=DEVICE, **kw):
        return self.iommu.translate(device_id, iova, access, **kw)

    def record(self, index=0):
        """Fault record ``index`` as a dict of the spec's fields (spec "Fault/Event-Queue")."""
        dw0, _, iotval, iotval2 = self.q.record(index)
        return dict(cause=dw0 & 0xFFF, pid=(dw0 >> 12) & 0xFFFFF, pv=(dw0 >> 32) & 1,
                    priv=(dw0 >> 33) & 1, ttyp=(dw0 >> 34) & 0x3F, did=(dw0 >> 40) & 0xFFFFFF,
                    iotval=iotval, iotval2=iotval2)
