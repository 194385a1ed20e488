"""A readable account of one translation mismatch: what was asked, what the spec allows,
what the RTL gave, and the tables the walk visits, read from the model's view of memory.

The walk here is a *trace*, not a second oracle: it follows ``ddtp``, the device directory
(spec "Process to locate the Device-context"), the device context (spec "Device-context fields") and
the page tables (Privileged spec "Virtual Address Translation Process"; for two-stage, every
first-stage PTE address and the final GPA through the G-stage, spec "Process to translate an IOVA"
steps 17 and 19) and prints every entry it reads, stopping where a walk would stop (V=0, a leaf, a
bus error). With ``capabilities.MSI_FLAT`` the device context is the 64-byte extended format
(reference N.3) and, when the first stage's GPA matches the DC's MSI mask/pattern, the trace shows
the match, the interrupt file number and the MSI PTE it reads (step 18, reference N.4) instead of
the G-stage walk. The verdict stays the model's.
"""

from iogate.hdl import bits
from iogate.hdl.formats import (
    DC_EXT_SIZE,
    DC_SIZE,
    DDTE,
    IOHGATP,
    IOSATP,
    MSI_ADDR_MASK,
    MSI_PTE_BASIC,
    MSI_PTE_MRIF,
    MSIPTP,
    PTE,
    TA,
    TC,
    Cause,
    IohgatpMode,
    IosatpMode,
    MsiptpMode,
    PdtpMode,
)
from iogate.hdl.regs import DDTP, IommuMode

from iogate.cosim.model import msi
from iogate.cosim.model.memory import AccessFault
from iogate.cosim.model.walk import FIRST_STAGE, SECOND_STAGE

__all__ = ["explain", "describe_result"]

# Index bits of every table but an x4 root (whose width is IohgatpMode.root_index_bits).
_INDEX_BITS = IosatpMode.SV39.index_bits
_PTE_FLAGS = "vrwxugad"


def _name(enum, value):
    try:
        return enum(value).name
    except ValueError:
        return f"reserved({value})"


def describe_result(result):
    """One line for a model :class:`~iogate.cosim.model.result.Result`."""
    if result.fault:
        return f"fault cause={int(result.cause)} ({_name(Cause, int(result.cause))})"
    if result.absorbed:
        return "absorbed (the IOMMU completed the access to an MRIF page)"
    perm = "".join(c if getattr(result, c) else "-" for c in "rwx")
    return f"pa={result.pa:#x} {perm} pbmt={int(result.pbmt)}"


def _pte(value):
    f = bits.unpack(PTE, value)
    flags = "".join(c.upper() if f[c] else "-" for c in _PTE_FLAGS)
    extra = []
    if f["n"]:
        extra.append("N")
    if int(f["pbmt"]):
        extra.append(f"pbmt={int(f['pbmt'])}")
    reserved = value & bits.reserved_mask(PTE)
    if reserved:
        extra.append(f"RESERVED {reserved:#x}")
    return f"{value:#018x} [{flags} ppn={f['ppn']:#x}{' ' + ' '.join(extra) if extra else ''}]"


class _Tracer:
    def __init__(self, model):
        self.memory = model.memory
        self.limit = 1 << model.config.pas
        self.extended = model.config.dc_extended
        self.lines = []

    def load64(self, address):
        """The doubleword at ``address``, or None (and a line saying so) on a bus error."""
        if address + 8 > self.limit:
            return None
        try:
            return self.memory.read64(address)
        except AccessFault:
            return None

    def say(self, indent, text):
        self.lines.append("  " * indent + text)

    # -- device directory (spec "Process to locate the Device-context") ---------------------------

    def device_context(self, ddtp, device_id):
        mode = bits.get(DDTP, ddtp, "iommu_mode")
        ppn = bits.get(DDTP, ddtp, "ppn")
        self.say(1, f"ddtp: {_name(IommuMode, mode)} root={ppn << 12:#x}")
        try:
            mode = IommuMode(mode)
        except ValueError:
            return None
        if not mode.levels:                     # Off and Bare locate no device context
            return None
        ddi = mode.ddi(device_id, self.extended)
        if device_id >> mode.device_id_bits_of(self.extended):
            self.say(2, f"device_id {device_id:#x} wider than {mode.name} (cause 260)")
            return None
        a = ppn << 12
        for i in range(mode.levels - 1, 0, -1):
            address = a + ddi[i] * 8
            ddte = self.load64(address)
            if ddte is None:
                self.say(2, f"DDT level {i} entry @{address:#x}: BUS ERROR (cause 257)")
                return None
            f = bits.unpack(DDTE, ddte)
            self.say(2, f"DDT level {i} entry @{address:#x} = {ddte:#x} "
                        f"[V={f['v']} ppn={f['ppn']:#x}]")
            if not f["v"] or ddte & bits.reserved_mask(DDTE):
                return None
            a = f["ppn"] << 12
        size = DC_EXT_SIZE if self.extended else DC_SIZE
        address = a + ddi[0] * size
        words = [self.load64(address + 8 * k) for k in range(size // 8)]
        if None in words:
            self.say(2, f"DC @{address:#x}: BUS ERROR (cause 257)")
            return None
        tc, iohgatp, ta, fsc = words[:4]
        self.say(2, f"DC @{address:#x}: tc={tc:#x} iohgatp={iohgatp:#x} ta={ta:#x} "
                    f"fsc={fsc:#x}")
        msi_dc = None
        if self.extended:
            msiptp, mask, pattern, dw7 = words[4:]
            m = bits.unpack(MSIPTP, msiptp)
            mask_v = bits.get(MSI_ADDR_MASK, mask, "value")
            pattern_v = bits.get(MSI_ADDR_MASK, pattern, "value")
            reserved = (msiptp & bits.reserved_mask(MSIPTP)) or (
                (mask | pattern) & bits.reserved_mask(MSI_ADDR_MASK)) or dw7
            self.say(3, f"msiptp: {_name(MsiptpMode, m['mode'])} table={m['ppn'] << 12:#x} "
                        f"mask={mask_v:#x} pattern={pattern_v:#x}"
                        f"{' RESERVED BITS SET' if reserved else ''}")
            if m["mode"] == MsiptpMode.FLAT:
                msi_dc = (m["ppn"], mask_v, pattern_v)
        t = bits.unpack(TC, tc)
        on = [k.upper() for k, v in t.items() if v and not k.startswith("_")]
        reserved = tc & bits.reserved_mask(TC)
        self.say(3, f"tc: {' '.join(on) or '-'}"
                    f"{f' RESERVED {reserved:#x}' if reserved else ''}")
        g = bits.unpack(IOHGATP, iohgatp)
        s = bits.unpack(IOSATP, fsc)
        self.say(3, f"iohgatp: {_name(IohgatpMode, g['mode'])} gscid={g['gscid']} "
                    f"root={g['ppn'] << 12:#x}")
        if t["pdtv"]:
            # fsc is a pdtp (reference N.1.1): the first stage comes from a process context.
            self.say(3, f"pdtp: {_name(PdtpMode, s['mode'])} root={s['ppn'] << 12:#x} "
                        "(process contexts are not traced)")
            return None
        self.say(3, f"fsc: {_name(IosatpMode, s['mode'])} root={s['ppn'] << 12:#x} "
                    f"pscid={bits.get(TA, ta, 'pscid')}")
        return t["v"], g["mode"], g["ppn"], s["mode"], s["ppn"], msi_dc

    # -- page tables ------------------------------------------------------------------------

    def walk(self, indent, title, va, levels, root, root_bits, translate=None):
        """Print the PTEs a walk of ``va`` reads; returns the leaf's (pte, level) or None.

        ``translate(address) -> address or None`` maps each PTE address (a GPA in a nested
        walk) to where it is read from.
        """
        self.say(indent, title)
        a = root
        for i in range(levels - 1, -1, -1):
            width = root_bits if i == levels - 1 else _INDEX_BITS
            index = (va >> (12 + _INDEX_BITS * i)) & ((1 << width) - 1)
            address = a + index * 8
            where = f"@{address:#x}"
            if translate is not None:
                spa = translate(address)
                if spa is None:
                    self.say(indent + 1, f"L{i} pte gpa {address:#x}: G-stage fails")
                    return None
                where = f"gpa {address:#x} -> @{spa:#x}"
                address = spa
            pte = self.load64(address)
            if pte is None:
                self.say(indent + 1, f"L{i} pte {where}: BUS ERROR")
                return None
            self.say(indent + 1, f"L{i} pte {where} = {_pte(pte)}")
            v, r, w, x = (pte >> k & 1 for k in range(4))
            if not v or (w and not r):
                return None
            if r or x:
                return pte, i
            a = bits.get(PTE, pte, "ppn") << 12
        return None

    def msi_pte(self, indent, gpa, msi_dc):
        """Trace step 18 for ``gpa`` (reference N.4); True when it is an MSI address."""
        table, mask, pattern = msi_dc
        if not msi.matches(gpa, mask, pattern):
            self.say(indent, f"gpa {gpa:#x}: no MSI match (page & ~mask != pattern & ~mask)")
            return False
        index = msi.extract(gpa >> 12, mask)
        address = msi.pte_address(table, index)
        self.say(indent, f"gpa {gpa:#x}: MSI address, interrupt file {index}")
        dw0, dw1 = self.load64(address), self.load64(address + 8)
        if dw0 is None or dw1 is None:
            self.say(indent + 1, f"MSI PTE @{address:#x}: BUS ERROR (cause 261)")
            return True
        v, m, c = dw0 & 1, (dw0 >> 1) & 3, dw0 >> 63
        text = f"MSI PTE @{address:#x} = {dw0:#018x} {dw1:#018x} [V={v} M={m} C={c}"
        if m == 3:
            reserved = dw0 & bits.reserved_mask(MSI_PTE_BASIC) & ~(1 << 63)
            text += f" basic ppn={bits.get(MSI_PTE_BASIC, dw0, 'ppn'):#x}"
        elif m == 1:
            f = bits.unpack(MSI_PTE_MRIF, dw0 | dw1 << 64)
            reserved = (dw0 | dw1 << 64) & bits.reserved_mask(MSI_PTE_MRIF) & ~(1 << 63)
            text += (f" MRIF @{f['mrif_addr'] << 9:#x} notice @{f['nppn'] << 12:#x} "
                     f"nid={f['nid10'] << 10 | f['nid']:#x}")
        else:
            reserved = 0
            text += " reserved mode"
        if reserved:
            text += f" RESERVED {reserved:#x}"
        self.say(indent + 1, text + "]")
        return True

    def g_stage(self, indent, gpa, mode, root_ppn):
        """Trace the G-stage walk of ``gpa``; returns the SPA or None."""
        mode = IohgatpMode(mode)
        leaf = self.walk(indent, f"G-stage ({mode.name}) of gpa {gpa:#x}:",
                         gpa, mode.levels, root_ppn << 12, mode.root_index_bits)
        return None if leaf is None else _leaf_address(leaf, gpa)


def _leaf_address(leaf, va):
    pte, level = leaf
    size_bits = 12 + _INDEX_BITS * level
    base = bits.get(PTE, pte, "ppn") << 12
    return (base & ~((1 << size_bits) - 1)) | (va & ((1 << size_bits) - 1))


def explain(model, request, expected, got):
    """Render a mismatch: request, expected answers, the RTL's answer, DC and PTEs.

    Parameters
    ----------
    model : iogate.cosim.model.IommuModel
        Whose ``ddtp`` and memory are traced (as they are *now*).
    request
        Has ``device_id``, ``iova`` and ``access`` (an :class:`iogate.hdl.port.Access`).
    expected : iterable of Result
        The answers the model allowed.
    got
        What the RTL answered (its ``str`` is printed).

    Returns
    -------
    str
        Several lines; the first starts with ``MISMATCH``.
    """
    access = request.access.name.lower()
    t = _Tracer(model)
    pid = getattr(request, "process_id", None)
    process = "" if pid is None else (f" pid={pid:#x}"
                                      + (" S" if getattr(request, "priv", False) else ""))
    t.lines += [f"MISMATCH {access} did={request.device_id:#x} iova={request.iova:#x}"
                + process,
                "  expected: " + (" | ".join(describe_result(r) for r in expected)
                                  or "(nothing)"),
                f"  got:      {got}"]
    dc = t.device_context(model.regs.ddtp, request.device_id)
    if dc is None or not dc[0]:
        return "\n".join(t.lines)
    _, g_mode, g_root, s_mode, s_root, msi_dc = dc
    iova = request.iova
    gpa = iova
    nested = g_mode in SECOND_STAGE
    if s_mode in FIRST_STAGE:
        s_mode = IosatpMode(s_mode)
        translate = None
        if nested:
            # Every first-stage PTE address is a GPA read through the G-stage (spec
            # "Process to translate an IOVA").
            def translate(address):
                return t.g_stage(3, address, g_mode, g_root)
        leaf = t.walk(1, f"first stage ({s_mode.name}) of iova {iova:#x}:",
                      iova, s_mode.levels, s_root << 12, s_mode.index_bits, translate)
        if leaf is None:
            return "\n".join(t.lines)
        gpa = _leaf_address(leaf, iova)
    if msi_dc is not None and t.msi_pte(1, gpa, msi_dc):
        return "\n".join(t.lines)
    if nested:
        t.g_stage(1, gpa, g_mode, g_root)
    return "\n".join(t.lines)
