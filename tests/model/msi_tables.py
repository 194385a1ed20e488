"""Helpers for the MSI-translation model tests: extended-format DCs, MSI PTEs, MRIFs.

Every word is packed with :func:`iogate.hdl.bits.pack` from the shared layouts
(``DC_EXT``'s pieces, ``MSI_PTE_BASIC``, ``MSI_PTE_MRIF``); the DDT walk here writes the
extended split (6/9/9, 64-byte DCs) by hand from reference N.3.2, not from
``IommuMode.ddi``. Expected values in the tests are worked out by hand from the spec.

The standard world (:func:`msi_rig`): a 3LVL DDT; device 5 has an extended DC with Sv48x4
(GSCID 3) whose G-stage maps GPA 1 GiB..2 GiB onto SPA 0..1 GiB with one 1 GiB leaf, and
msiptp Flat over a table at ``rig.msi_pt`` with mask 0b101 and pattern 0x2_8000 (GPA page
0x2_8000 = GPA 0x2800_0000, 640 MiB): MSI pages are GPA 0x2800_0000 + {0, 1, 4, 5} pages
(interrupt files 0..3).
"""

from iogate.hdl import Config, bits
from iogate.hdl.formats import (
    DDTE,
    MSI_ADDR_MASK,
    MSI_PTE_BASIC,
    MSI_PTE_MRIF,
    MSIPTP,
    TC,
)
from iogate.hdl.regs import IommuMode

from model_tables import URWX, Rig, iohgatp, pte

MSI = Config.msi()
GIB = 1 << 30
#: The standard world's MSI mask and pattern (page numbers) and its first MSI GPA.
MASK = 0b101
PATTERN = 0x2_8000
MSI_GPA = PATTERN << 12


def ext_dc_words(tc=None, iohgatp_=0, ta=0, fsc=0, msiptp=0, mask=0, pattern=0, dw7=0):
    """The eight doublewords of an extended DC (reference N.3.1); ``tc`` defaults to V=1."""
    if tc is None:
        tc = bits.pack(TC, v=1)
    return (tc, iohgatp_, ta, fsc, msiptp, mask, pattern, dw7)


def msiptp(ppn, mode=1):
    return bits.pack(MSIPTP, mode=mode, ppn=ppn)


def addr_mask(value):
    return bits.pack(MSI_ADDR_MASK, value=value)


def basic_pte(ppn, **extra):
    """A basic-translate MSI PTE (M=3) as (dw0, dw1)."""
    fields = dict(v=1, m=3, ppn=ppn)
    fields.update(extra)
    return bits.pack(MSI_PTE_BASIC, **fields), 0


def mrif_pte(mrif, nppn, nid, **extra):
    """An MRIF-mode MSI PTE (M=1) as (dw0, dw1): MRIF at byte address ``mrif`` (512-byte
    aligned), notice MSI ``nid`` (11 bits) to page ``nppn``."""
    fields = dict(v=1, m=1, mrif_addr=mrif >> 9, nid=nid & 0x3FF, nid10=nid >> 10, nppn=nppn)
    fields.update(extra)
    word = bits.pack(MSI_PTE_MRIF, **fields)
    return word & ((1 << 64) - 1), word >> 64


def write_ext_dc(rig, root_ppn, device_id, words, levels=3):
    """Write the 64-byte DC of ``device_id`` under a ``levels``-level DDT: DDI[0] = did[5:0],
    DDI[1] = did[14:6], DDI[2] = did[23:15] (reference N.3.2); returns its address."""
    ddi = [device_id & 0x3F, (device_id >> 6) & 0x1FF, (device_id >> 15) & 0x1FF]
    a = root_ppn << 12
    for i in range(levels - 1, 0, -1):
        entry = rig.mem.read64(a + ddi[i] * 8)
        if not entry & 1:
            entry = bits.pack(DDTE, v=1, ppn=rig.page())
            rig.w64(a + ddi[i] * 8, entry)
        a = bits.get(DDTE, entry, "ppn") << 12
    base = a + ddi[0] * 64
    for k, w in enumerate(words):
        rig.w64(base + 8 * k, w)
    return base


def write_msi_pte(rig, table_ppn, index, words):
    """MSI PTE ``index`` of the table at ``table_ppn``: 16 bytes at ``ppn << 12 | index * 16``."""
    address = (table_ppn << 12) + index * 16
    rig.w64(address, words[0])
    rig.w64(address + 8, words[1])
    return address


def msi_rig(config=MSI, fsc=0, ta=0, tc=None, mask=MASK, pattern=PATTERN, device_id=5,
            g_mode=9, **kwargs):
    """The standard world of the module docstring (``g_mode`` 8 for Sv39x4)."""
    rig = Rig(config, **kwargs)
    rig.root = rig.page()
    rig.g = rig.page(4, align=4)
    rig.g_levels = 4 if g_mode == 9 else 3
    # GPA 1 GiB -> SPA 0: a 1 GiB leaf at level 2.
    rig.map(rig.g, GIB, pte(0, **URWX), level=2, levels=rig.g_levels, x4=True)
    rig.gpa = lambda spa: spa + GIB
    rig.spa = lambda gpa: gpa - GIB
    rig.msi_pt = rig.page()
    rig.dc_words = ext_dc_words(tc=tc, iohgatp_=iohgatp(g_mode, rig.g, gscid=3), ta=ta,
                                fsc=fsc,
                                msiptp=msiptp(rig.msi_pt), mask=addr_mask(mask),
                                pattern=addr_mask(pattern))
    rig.dc_address = write_ext_dc(rig, rig.root, device_id, rig.dc_words)
    rig.set_ddtp(IommuMode.LVL3, rig.root)
    return rig


def rewrite_dc(rig, device_id=5, **changes):
    """Rewrite fields of the standard DC (``ext_dc_words`` keywords, packed values)."""
    names = ("tc", "iohgatp_", "ta", "fsc", "msiptp", "mask", "pattern", "dw7")
    current = dict(zip(names, rig.dc_words, strict=True))
    current.update(changes)
    rig.dc_words = ext_dc_words(**current)
    write_ext_dc(rig, rig.root, device_id, rig.dc_words)


def record(rig, index):
    """Fault record ``index`` as (cause, ttyp, did, iotval, iotval2); the queue is ``rig.q``."""
    dw0, _, iotval, iotval2 = rig.q.record(index)
    return dw0 & 0xFFF, (dw0 >> 34) & 0x3F, (dw0 >> 40) & 0xFFFFFF, iotval, iotval2
