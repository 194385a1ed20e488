"""Fuzz campaign: malformed inputs into every front-end and every hardware parser of the model.

Issue 18 item 5: at least 10^5 malformed inputs per front-end (virtio-iommu requests, VFIO
ioctls, iommufd ioctls) and per hardware parser (commands, device contexts, PTEs), with no
exception and the state unchanged after each error.

Each target is a harness built from a fixed initial state. Case ``i`` of seed ``s`` draws its
input from ``random.Random(f"{s}:{target}:{i}")`` and runs it on that initial state; an error
answer must leave the observable state as it was (checked against a snapshot taken before),
and a case that changed the state legitimately (an accepted request) rebuilds the harness.
So every case starts from the same state and :func:`replay` reruns one case alone.

What each target checks:

``virtio``
    ``VirtioIommu.request``: the reply is empty (used length 0) or ``writable`` bytes ending
    in a spec status (virtio-iommu "Device operation"); any status but OK leaves the device's
    state, every page the driver allocated and the queue registers as they were.
``vfio``, ``iommufd``
    ``ioctl``: an int, 0 or a Linux ``-errno``; on an errno the container's state, the host's
    memory and registers and the caller's argument buffer are unchanged, except for the two
    documented partial effects of iommufd (``IOAS_UNMAP`` stopping at a hole, and
    ``HWPT_INVALIDATE`` writing back ``entry_num`` and handling the entries before the bad
    one), which are counted apart.
``commands``
    One 128-bit command in the model's command queue (spec "Command-Queue (CQ)"): ``cmd_ill``
    exactly when :func:`command_illegal` (written from the command layouts and the spec's
    rules, independently of the model's decoder) says so, ``cqh`` left at the command, every
    other register, the caches' contents and the fence-store page unchanged.
``device_contexts``
    A random or mutated DC (and sometimes its non-leaf DDT entry) looked up by a translation
    (spec "Process to locate the Device-context", "Device-context configuration checks"):
    a :class:`~iogate.cosim.model.result.Result`, 258 when V=0, 259 when a reserved bit is
    set with V=1; after a directory fault (256-260) registers but the fault queue's, and the
    caches, are unchanged, and the record written carries the cause answered.
``ptes``
    A random or mutated PTE on the walk of a first-stage (Sv39) or second-stage (Sv39x4)
    mapping (spec "Process to translate an IOVA"): a translation or a fault of the access's
    family; after a fault the page tables, the caches and the registers but the fault queue's
    are unchanged.

``iogate fuzz`` runs the campaign and merges ``fuzz_cases`` into ``results/reliability.json``.
"""

import copy
import errno
import json
import random
import struct
import time
import traceback
from pathlib import Path

from iogate.hdl import Config, bits
from iogate.hdl.formats import (
    DDTE,
    DTF_REPORTED_CAUSES,
    IODIR,
    IOFENCE,
    IOHGATP,
    IOSATP,
    IOTINVAL,
    PTE,
    TA,
    TC,
    Cause,
)
from iogate.hdl.regs import CQCSR, DDTP, FCTL, QB, IommuMode, Offset

from iogate.firmware import commands as fwcmd

from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.iommufd import uapi as fdapi
from iogate.cosim.host.iommufd.ictx import Iommufd
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.vfio import uapi as vfapi
from iogate.cosim.host.virtio import VirtioIommu
from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import Status
from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.result import Result

__all__ = ["TARGETS", "Finding", "run_target", "run_campaign", "replay", "merge_results",
           "command_illegal", "HARNESSES"]

TARGETS = ("virtio", "vfio", "iommufd", "commands", "device_contexts", "ptes")
DEFAULT_CASES = 100_000

ERRNOS = {-e: errno.errorcode[e] for e in (
    errno.EINVAL, errno.EFAULT, errno.ENOTTY, errno.EEXIST, errno.ENOSPC, errno.ENOENT,
    errno.ENODEV, errno.ENOMEM, errno.EOVERFLOW, errno.EOPNOTSUPP, errno.E2BIG, errno.EBUSY,
    errno.EADDRINUSE)}


class Finding(Exception):
    """A case broke a rule: ``kind`` is ``exception``, ``state_changed`` or ``wrong_answer``."""

    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# -- input generators shared by the front-ends -----------------------------------------------

_INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFF, 0x1000, 0xFFFF, 0x1_0000, 0x10_0000,
                0x10_0FFF, 0x10_FFFF, 0x40_0000, 0x7FFF_FFFF, 1 << 31, 0xFFFF_FFFF, 1 << 32,
                0x2_0000_0000, 0x2_0010_0000, 1 << 47, (1 << 47) - 1, 1 << 63,
                (1 << 64) - 0x1000, (1 << 64) - 1)


def _rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def mutate(rng, raw):
    """``raw`` damaged in one to three ways: bit flips, a truncation, an extension, a word
    replaced by a boundary value, a byte range randomised."""
    out = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        if op == 0 and out:                                   # flip one bit
            i = rng.randrange(len(out) * 8)
            out[i >> 3] ^= 1 << (i & 7)
        elif op == 1 and out:                                 # truncate
            del out[rng.randrange(len(out)):]
        elif op == 2:                                         # extend
            out += _rand_bytes(rng, rng.choice((1, 3, 4, 8, 16, 64)))
        elif op == 3 and len(out) >= 4:                       # boundary value in a field
            width = rng.choice((4, 8)) if len(out) >= 8 else 4
            at = rng.randrange(0, len(out) - width + 1, 4 if len(out) % 4 == 0 else 1)
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            out[at:at + width] = value.to_bytes(width, "little")
        elif op == 4 and out:                                 # random run of bytes
            at = rng.randrange(len(out))
            n = rng.randint(1, len(out) - at)
            out[at:at + n] = _rand_bytes(rng, n)
        else:                                                 # one byte set to 0xFF or 0
            if out:
                out[rng.randrange(len(out))] = rng.choice((0, 0xFF))
    return bytes(out)


def _malformed(rng, valid):
    """Random bytes a tenth of the time, else a mutation of one of the ``valid`` encodings."""
    if rng.random() < 0.1:
        return _rand_bytes(rng, rng.randrange(0, 100))
    return mutate(rng, rng.choice(valid))


def host_snapshot(host):
    """Every block the host's driver allocated and the queue registers (what a rejected
    request must not write; the same as tests/frontends/frontend_helpers.snapshot)."""
    blocks = {a: host.bus.mem_read(a, n) for a, n in sorted(host.driver.alloc.allocated.items())}
    regs = {o: host.driver.regs.read(o) for o in (Offset.DDTP, Offset.CQB, Offset.CQT,
                                                   Offset.CQH, Offset.FQB, Offset.FQH,
                                                   Offset.FQT, Offset.CQCSR, Offset.FQCSR)}
    return blocks, regs


def _diff(before, after):
    """A short description of where two snapshots differ (for the finding's message)."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after), key=repr)
        return "; ".join(f"{k!r}: {before.get(k)!r:.80} -> {after.get(k)!r:.80}"
                         for k in keys if before.get(k) != after.get(k))[:600]
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        return "; ".join(f"[{i}] {_diff(b, a)}" for i, (b, a) in enumerate(zip(before, after,
                                                                                  strict=True))
                         if b != a)[:600]
    return f"{before!r:.200} -> {after!r:.200}"


class _Harness:
    """One target: ``case(rng)`` runs one input and returns its kind (an errno or status
    name, a cause, "ok"); it raises :class:`Finding` when a rule breaks. ``dirty`` says the
    state moved on legitimately, so the next case needs a fresh harness."""

    dirty = False

    def case(self, rng):
        raise NotImplementedError


# -- virtio-iommu ------------------------------------------------------------------------------

class VirtioHarness(_Harness):
    """A virtio-iommu device with endpoints 1-3, endpoint 1 attached to domain 1 with one
    mapping (virtio-iommu "Device operation")."""

    def __init__(self):
        self.host = HostIommu.on_model()
        self.dev = VirtioIommu([1, 2, 3], backend=self.host, probe_size=64)
        for request in (rq.Attach(1, 1), rq.Map(1, 0x10_0000, 0x10_FFFF, 0x40_0000, 3)):
            assert self.dev.request(request.encode(), 4) == b"\0\0\0\0"
        self._valid = [r.encode() for r in (
            rq.Attach(1, 1), rq.Attach(2, 2), rq.Attach(1, 3, 1), rq.Detach(1, 1),
            rq.Detach(2, 2), rq.Map(1, 0x10_0000, 0x10_FFFF, 0x40_0000, 3),
            rq.Map(1, 0x20_0000, 0x20_0FFF, 0x50_0000, 1), rq.Map(2, 0, 0xFFF, 0x1000, 3),
            rq.Unmap(1, 0x10_0000, 0x10_FFFF), rq.Unmap(1, 0x10_8000, 0x10_8FFF),
            rq.Unmap(1, 0, (1 << 64) - 1), rq.Probe(1), rq.Probe(3))]

    def state(self):
        return self.dev.state(), host_snapshot(self.host)

    def case(self, rng):
        readable = _malformed(rng, self._valid)
        writable = rng.choice((4, 4, 4, 68, 80, 3, 0, 200, -1))
        before = self.state()
        try:
            written = self.dev.request(readable, writable)
        except Exception as e:
            raise Finding("exception", f"request({readable.hex()}, {writable}): "
                          f"{traceback.format_exc(limit=-3)}") from e
        if not isinstance(written, bytes | bytearray) or (written and len(written) != writable):
            raise Finding("wrong_answer", f"reply {written!r} for writable={writable}")
        kind = "no_reply"
        if written:
            if written[-4] not in tuple(Status) or written[-3:] != b"\0\0\0":
                raise Finding("wrong_answer", f"tail {bytes(written[-4:]).hex()} not a status")
            kind = Status(written[-4]).name
        after = self.state()
        if kind != "OK" and after != before:
            raise Finding("state_changed", f"{kind} on {readable.hex()}: {_diff(before, after)}")
        self.dirty = after != before
        return kind


# -- VFIO --------------------------------------------------------------------------------------

class VfioHarness(_Harness):
    """A type1v2 VFIO container with device 3 and one DMA mapping (Linux
    ``include/uapi/linux/vfio.h``)."""

    def __init__(self):
        self.c = VfioContainer(dma_entry_limit=8, allow_unsafe_interrupts=True)
        assert self.c.add_device(3) == 0
        assert self.c.ioctl(vfapi.Ioctl.SET_IOMMU, vfapi.Extension.TYPE1v2_IOMMU) == 0
        arg = bytearray(vfapi.DMA_MAP.pack(32, 3, 0x2_0010_0000, 0x10_0000, 0x1_0000))
        assert self.c.ioctl(vfapi.Ioctl.IOMMU_MAP_DMA, arg) == 0
        self._structs = [
            vfapi.DMA_MAP.pack(32, 3, 0x2_0020_0000, 0x20_0000, 0x1000),
            vfapi.DMA_MAP.pack(32, 1, 0x2_0030_0000, 0x10_8000, 0x1000),
            vfapi.DMA_UNMAP.pack(24, 0, 0x10_0000, 0x1_0000),
            vfapi.DMA_UNMAP.pack(24, 0, 0x10_8000, 0x1000),
            vfapi.INFO.pack(16, 0, 0, 0, 0), vfapi.INFO.pack(88, 0, 0, 0, 0)]
        self._main = [vfapi.Ioctl.IOMMU_GET_INFO, vfapi.Ioctl.IOMMU_MAP_DMA,
                      vfapi.Ioctl.IOMMU_UNMAP_DMA]

    def state(self, arg):
        return (self.c.state(), host_snapshot(self.c.host),
                bytes(arg) if isinstance(arg, bytearray) else arg)

    def case(self, rng):
        r = rng.random()
        if r < 0.7:
            request = rng.choice(self._main)
        elif r < 0.9:
            request = rng.choice(list(vfapi.Ioctl))
        else:
            request = rng.randrange(0x10000)
        if rng.random() < 0.85:
            arg = bytearray(_malformed(rng, self._structs))
        else:
            arg = rng.choice((None, -1, 0, 1, 3, 8, 1 << 64, rng.getrandbits(32), b"\0" * 4,
                              bytearray(4)))
        before = self.state(arg)
        try:
            rc = self.c.ioctl(request, arg)
        except Exception as e:
            raise Finding("exception", f"ioctl({request:#x}, {arg!r}): "
                          f"{traceback.format_exc(limit=-3)}") from e
        if not isinstance(rc, int) or (rc < 0 and rc not in ERRNOS):
            raise Finding("wrong_answer", f"ioctl({request:#x}) returned {rc!r}")
        after = self.state(arg)
        if rc < 0 and after != before:
            raise Finding("state_changed", f"{ERRNOS[rc]} on ioctl({request:#x}, {arg!r}): "
                          f"{_diff(before, after)}")
        self.dirty = after[:2] != before[:2]
        return ERRNOS[rc] if rc < 0 else "ok"


# -- iommufd -----------------------------------------------------------------------------------

class IommufdHarness(_Harness):
    """An iommufd context: device 4 bound, one IOAS with a mapping, a paging HWPT and a
    nested RISC-V HWPT, and an invalidation array in user memory (Linux
    ``include/uapi/linux/iommufd.h``)."""

    USER = 0x2_0000_0000

    def __init__(self):
        fd = self.fd = Iommufd(allow_unsafe_interrupts=True)
        dev = fd.bind(4)
        arg = bytearray(fdapi.IOAS_ALLOC.pack(12, 0, 0))
        fd.ioctl(fdapi.Ioctl.IOAS_ALLOC, arg)
        ioas = fdapi.IOAS_ALLOC.unpack(arg)[2]
        arg = bytearray(fdapi.IOAS_MAP.pack(40, 7, ioas, 0, self.USER, 0x10_0000, 0))
        assert fd.ioctl(fdapi.Ioctl.IOAS_MAP, arg) == 0
        arg = bytearray(fdapi.HWPT_ALLOC.pack(48, 1, dev, ioas, 0, 0, 0, 0, 0, 0, 0))
        assert fd.ioctl(fdapi.Ioctl.HWPT_ALLOC, arg) == 0
        parent = fdapi.HWPT_ALLOC.unpack(arg)[4]
        fd.host.bus.mem_write(self.USER + 0x8000, fdapi.HWPT_RISCV.pack(1, 0, 0))
        arg = bytearray(fdapi.HWPT_ALLOC.pack(48, 0, dev, parent, 0, 0,
                                              fdapi.HwptDataType.RISCV_IOGATE, 24,
                                              self.USER + 0x8000, 0, 0))
        assert fd.ioctl(fdapi.Ioctl.HWPT_ALLOC, arg) == 0
        nested = fdapi.HWPT_ALLOC.unpack(arg)[4]
        good = fwcmd.to_bytes(fwcmd.iotinval_vma(pscid=1, addr=0x1000))
        fd.host.bus.mem_write(self.USER + 0x9000, good * 3 + bytes(16) + good)
        riscv = fdapi.HwptInvalidateDataType.RISCV_IOGATE
        rv = fdapi.HwptDataType.RISCV_IOGATE
        self._structs = [
            fdapi.DESTROY.pack(8, nested), fdapi.DESTROY.pack(8, ioas),
            fdapi.IOAS_ALLOC.pack(12, 0, 0),
            fdapi.IOAS_MAP.pack(40, 7, ioas, 0, self.USER + 0x20_0000, 0x1000, 0x20_0000),
            fdapi.IOAS_MAP.pack(40, 3, ioas, 0, self.USER, 0x1000, 0x8000),
            fdapi.IOAS_UNMAP.pack(24, ioas, 0, 0x1000), fdapi.IOAS_UNMAP.pack(24, ioas, 0, 0),
            fdapi.HWPT_ALLOC.pack(48, 1, dev, ioas, 0, 0, 0, 0, 0, 0, 0),
            fdapi.HWPT_ALLOC.pack(48, 0, dev, parent, 0, 0, rv, 24, self.USER + 0x8000, 0, 0),
            fdapi.HWPT_INVALIDATE.pack(32, nested, self.USER + 0x9000, riscv, 16, 3, 0),
            fdapi.HWPT_INVALIDATE.pack(32, nested, self.USER + 0x9000, riscv, 16, 5, 0)]
        self._ops = list(fdapi.OPS)

    def state(self, arg):
        return self.fd.state(), host_snapshot(self.fd.host), bytes(arg)

    def case(self, rng):
        r = rng.random()
        request = rng.choice(self._ops) if r < 0.9 else rng.randrange(0x3B70, 0x3BA0)
        arg = bytearray(_malformed(rng, self._structs))
        before = self.state(arg)
        try:
            rc = self.fd.ioctl(request, arg)
        except Exception as e:
            raise Finding("exception", f"ioctl({request:#x}, {bytes(arg).hex()}): "
                          f"{traceback.format_exc(limit=-3)}") from e
        if not isinstance(rc, int) or (rc < 0 and rc not in ERRNOS):
            raise Finding("wrong_answer", f"ioctl({request:#x}) returned {rc!r}")
        after = self.state(arg)
        self.dirty = after[:2] != before[:2]
        if rc >= 0:
            return "ok"
        # The documented partial effects (iommufd.h): IOAS_UNMAP may have removed the areas
        # before a hole; HWPT_INVALIDATE writes entry_num back (0 when nothing was handled)
        # and has handled the entries before the one it stops at.
        if request == fdapi.Ioctl.HWPT_INVALIDATE and len(arg) >= 28:
            done = struct.unpack_from("<I", arg, 24)[0]
            if done:
                return ERRNOS[rc] + "_partial"
            if bytes(arg[:24]) == before[2][:24]:
                before = (before[0], before[1], bytes(arg))
        if request == fdapi.Ioctl.IOAS_UNMAP and rc == -errno.ENOENT and after != before:
            return ERRNOS[rc] + "_partial"
        if after != before:
            raise Finding("state_changed", f"{ERRNOS[rc]} on ioctl({request:#x}, "
                          f"{bytes(arg).hex()}): {_diff(before, after)}")
        return ERRNOS[rc]


# -- the model: tables, caches and a state snapshot ------------------------------------------

_PAGE = 4096
_FQ_REGS = ("fqt", "fqcsr", "ipsr")
_REGS = ("capabilities", "fctl", "ddtp", "cqb", "cqh", "cqt", "fqb", "fqh", "fqt", "cqcsr",
         "fqcsr", "ipsr", "icvec", "tr_req_iova", "tr_req_ctl", "tr_response")


def cache_state(model):
    """What every cache of ``model`` may hold, as plain values (the entries and their doomed
    flags), so that two states compare equal exactly when the caches answer alike."""
    dcc = {k: [(e.dc.words, e.doomed) for e in v] for k, v in model.dc_cache._entries.items()}
    keyed = tuple({k: [(repr(e[0]), e[1]) for e in v] for k, v in c._entries.items()}
                  for c in (model.pc_cache, model.pdte_cache))
    slots = None
    tlb = {}
    for tag, by_size in model.iotlb._tags.items():
        for size, by_iova in by_size.items():
            for iova, bucket in by_iova.items():
                if bucket:
                    slots = slots or type(bucket[0]).__slots__
                    tlb[tag, size, iova] = [tuple(getattr(e, s) for s in slots)
                                            for e in bucket]
    return dcc, keyed, tlb


def model_state(model, skip=()):
    """Registers (but those in ``skip``) and caches of ``model``."""
    regs = {name: getattr(model.regs, name) for name in _REGS if name not in skip}
    return regs, cache_state(model)


class _ModelRig:
    """A model (Config.process(): Sv39-57, x4 modes, process directory, caching on) with a
    two-level DDT, a command queue and a fault queue at their spec init."""

    def __init__(self, config=None):
        self.config = config or Config.process()
        self.mem = Memory()
        self.m = IommuModel(self.config, self.mem, cache=True)
        self._next = 0x100_0000
        self.ddt = self.page()
        self.m.mmio_write(Offset.DDTP, 8, bits.pack(DDTP, iommu_mode=IommuMode.LVL2,
                                                    ppn=self.ddt))
        self.cq, self.fq = self.page(), self.page()
        self.m.mmio_write(Offset.CQB, 8, bits.pack(QB, log2szm1=5, ppn=self.cq))
        self.m.mmio_write(Offset.CQT, 4, 0)
        self.m.mmio_write(Offset.CQCSR, 4, 1)
        self.m.mmio_write(Offset.FQB, 8, bits.pack(QB, log2szm1=9, ppn=self.fq))
        self.m.mmio_write(Offset.FQH, 4, 0)
        self.m.mmio_write(Offset.FQCSR, 4, 1)

    def page(self):
        ppn = self._next >> 12
        self._next += _PAGE * 4           # 16 KiB aligned, enough for an x4 root
        return ppn

    def write_dc(self, device_id, words):
        """The DC of ``device_id`` (2LVL: DDI[1] = bits 15:7, DDI[0] = bits 6:0); returns
        its address and the address of its non-leaf entry."""
        at = (self.ddt << 12) + ((device_id >> 7) & 0x1FF) * 8
        entry = self.mem.read64(at)
        if not entry & 1:
            entry = bits.pack(DDTE, v=1, ppn=self.page())
            self.mem.write64(at, entry)
        base = (bits.get(DDTE, entry, "ppn") << 12) + (device_id & 0x7F) * 32
        for k, w in enumerate(words):
            self.mem.write64(base + 8 * k, w)
        return base, at

    def map(self, root, va, leaf, level=0, levels=3, x4=False):
        """Install ``leaf`` for ``va`` at ``level``; returns the addresses of every entry
        on the walk, root first."""
        a, path = root << 12, []
        for i in range(levels - 1, level - 1, -1):
            mask = 0x7FF if (x4 and i == levels - 1) else 0x1FF
            address = a + ((va >> (12 + 9 * i)) & mask) * 8
            path.append(address)
            if i == level:
                self.mem.write64(address, leaf)
                return path
            entry = self.mem.read64(address)
            if not entry & 1:
                entry = bits.pack(PTE, v=1, ppn=self.page())
                self.mem.write64(address, entry)
            a = bits.get(PTE, entry, "ppn") << 12
        return path

    def record_cause(self, index):
        word = self.mem.read64((self.fq << 12) + index * 32)
        return word & 0xFFF


_LEAF = dict(v=1, r=1, w=1, x=1, u=1, a=1, d=1)
_S1_DEV, _S2_DEV = 0x21, 0x22
_VA, _SUPER_VA = 0x1000_0000, 0x4000_0000
_ACCESSES = ("read", "write", "execute")
_FAMILY = {
    "read": {Cause.READ_ACCESS_FAULT, Cause.READ_PAGE_FAULT, Cause.READ_GUEST_PAGE_FAULT,
             Cause.READ_ADDRESS_MISALIGNED},
    "write": {Cause.WRITE_ACCESS_FAULT, Cause.WRITE_PAGE_FAULT, Cause.WRITE_GUEST_PAGE_FAULT,
              Cause.WRITE_ADDRESS_MISALIGNED},
    "execute": {Cause.INSTRUCTION_ACCESS_FAULT, Cause.INSTRUCTION_PAGE_FAULT,
                Cause.INSTRUCTION_GUEST_PAGE_FAULT},
}
_GRANT = {"read": "r", "write": "w", "execute": "x"}
_DIRECTORY_CAUSES = {Cause.DDT_LOAD_ACCESS_FAULT, Cause.DDT_ENTRY_NOT_VALID,
                     Cause.DDT_ENTRY_MISCONFIGURED}


def _translate(rig, device_id, iova, access, **kw):
    try:
        return rig.m.translate(device_id, iova, access, **kw)
    except Exception as e:
        raise Finding("exception", f"translate({device_id:#x}, {iova:#x}, {access}, {kw}): "
                      f"{traceback.format_exc(limit=-3)}") from e


def _check_fault_record(rig, res, fqt_before, dc_words=None):
    """A fault wrote one record with its cause, unless DTF=1 suppresses that cause (spec
    "Fault/Event-Queue (FQ)")."""
    dtf = dc_words is not None and dc_words[0] & 1 and bits.get(TC, dc_words[0], "dtf")
    fqt = rig.m.regs.fqt
    if res.fault:
        if dtf and res.cause not in DTF_REPORTED_CAUSES and fqt == fqt_before:
            return
        if fqt != fqt_before + 1 or rig.record_cause(fqt_before) != res.cause:
            raise Finding("wrong_answer", f"fault {res} recorded as fqt {fqt_before}->{fqt}")
    elif fqt != fqt_before:
        raise Finding("wrong_answer", f"translation {res} wrote a fault record")


class _TranslatingHarness(_Harness):
    """Shared by the DC and PTE targets: a rig with a first-stage device and a second-stage
    device, each with a 4 KiB and a 2 MiB mapping, translated once so the caches hold
    them."""

    def __init__(self):
        rig = self.rig = _ModelRig()
        self.s1_root, self.s2_root = rig.page(), rig.page()
        self.dc = {
            _S1_DEV: (bits.pack(TC, v=1), 0, bits.pack(TA, pscid=5),
                      bits.pack(IOSATP, mode=8, ppn=self.s1_root)),
            _S2_DEV: (bits.pack(TC, v=1), bits.pack(IOHGATP, mode=8, ppn=self.s2_root,
                                                    gscid=3), 0, 0),
        }
        self.dc_at = {d: rig.write_dc(d, w) for d, w in self.dc.items()}
        self.paths = {}
        for dev, root, x4 in ((_S1_DEV, self.s1_root, False), (_S2_DEV, self.s2_root, True)):
            self.paths[dev, _VA] = rig.map(root, _VA, bits.pack(PTE, ppn=0x8_0000, **_LEAF),
                                           x4=x4)
            self.paths[dev, _SUPER_VA] = rig.map(root, _SUPER_VA,
                                                 bits.pack(PTE, ppn=0x9_0000, **_LEAF),
                                                 level=1, x4=x4)
        for dev, va in self.paths:
            assert not rig.m.translate(dev, va, "read").fault
        self.tables = sorted({a & ~(_PAGE - 1) for p in self.paths.values() for a in p})

    def tables_state(self):
        return tuple(self.rig.mem.read(a, _PAGE) for a in self.tables)


# -- device contexts -------------------------------------------------------------------------

_TC_RSVD = bits.reserved_mask(TC)
_DDTE_RSVD = bits.reserved_mask(DDTE)


class DeviceContextHarness(_TranslatingHarness):
    """Random and mutated DCs for device ids 0x80-0x8F (a second leaf table under the same
    root), sometimes with a damaged non-leaf entry."""

    def case(self, rng):
        rig = self.rig
        device_id = 0x80 + rng.randrange(16)
        pick = rng.random()
        if pick < 0.15:
            words = tuple(rng.getrandbits(64) for _ in range(4))
        else:
            words = list(rng.choice(list(self.dc.values())))
            if rng.random() < 0.3:                            # a PDTV DC with some pdtp
                words[0] |= bits.pack(TC, pdtv=1)
                words[3] = bits.pack(IOSATP, mode=rng.randrange(16), ppn=rig.page())
            for _ in range(rng.randint(1, 3)):
                k = rng.randrange(4)
                op = rng.randrange(4)
                if op == 0:
                    words[k] ^= 1 << rng.randrange(64)
                elif op == 1:
                    words[k] = rng.choice(_INTERESTING)
                elif op == 2 and k == 0:
                    words[0] |= 1 << rng.choice([b for b in range(64) if _TC_RSVD >> b & 1])
                else:                                         # a mode field: bits 63:60
                    words[k] = (words[k] & ((1 << 60) - 1)) | rng.randrange(16) << 60
            words = tuple(words)
        _, ddte_at = rig.write_dc(device_id, words)
        ddte = rig.mem.read64(ddte_at)
        bad_ddte = rng.random() < 0.1
        if bad_ddte:
            rig.mem.write64(ddte_at, rng.choice((ddte & ~1, ddte | (1 << rng.choice(
                [b for b in range(64) if _DDTE_RSVD >> b & 1])), rng.getrandbits(64))))
        access = rng.choice(_ACCESSES)
        pid = rng.choice((None, None, 0, 1, rng.randrange(1 << 20)))
        kw = {"process_id": pid, "priv": pid is not None and rng.random() < 0.3}
        iova = rng.choice((_VA, _SUPER_VA, 0, rng.getrandbits(39), rng.getrandbits(64)))
        before = model_state(rig.m, _FQ_REGS)
        fqt = rig.m.regs.fqt
        res = _translate(rig, device_id, iova, access, **kw)
        if not isinstance(res, Result):
            raise Finding("wrong_answer", f"translate returned {res!r}")
        self.dirty = True                     # the DC written stays; rebuild next time
        if not bad_ddte:
            # Spec "Process to locate the Device-context", steps 7-8 (V=0: 258; a reserved
            # bit with V=1: 259).
            if not words[0] & 1 and res.cause != Cause.DDT_ENTRY_NOT_VALID:
                raise Finding("wrong_answer", f"DC {words} with V=0 answered {res}")
            if words[0] & 1 and words[0] & _TC_RSVD and res.cause != \
                    Cause.DDT_ENTRY_MISCONFIGURED:
                raise Finding("wrong_answer", f"DC {words} with tc reserved bits answered {res}")
        elif not rig.mem.read64(ddte_at) & 1 and res.cause != Cause.DDT_ENTRY_NOT_VALID:
            raise Finding("wrong_answer", f"DDTE with V=0 answered {res}")
        _check_fault_record(rig, res, fqt, None if bad_ddte else words)
        if res.fault and res.cause in _DIRECTORY_CAUSES:
            after = model_state(rig.m, _FQ_REGS)
            if after != before:
                raise Finding("state_changed", f"DC {words} ({Cause(res.cause).name}): "
                              f"{_diff(before, after)}")
        return Cause(res.cause).name if res.fault else "ok"


# -- PTEs ----------------------------------------------------------------------------------------

_PTE_RSVD = bits.reserved_mask(PTE)


class PteHarness(_TranslatingHarness):
    """One entry on a walk replaced by a random or mutated PTE, then a request through it
    (the cached answer for that IOVA dropped first, as after an invalidation, so the walk
    reads the damaged entry)."""

    def case(self, rng):
        rig = self.rig
        dev, va = rng.choice(list(self.paths))
        path = self.paths[dev, va]
        at = rng.choice(path)
        old = rig.mem.read64(at)
        r = rng.random()
        if r < 0.2:
            new = rng.getrandbits(64)
        elif r < 0.4:
            new = old | (1 << rng.choice([b for b in range(64) if _PTE_RSVD >> b & 1]))
        elif r < 0.55:                                        # flags: reserved combinations
            new = (old & ~0xFF) | rng.getrandbits(8)
        elif r < 0.7:                                         # PBMT, N, RSW
            new = old ^ (rng.getrandbits(3) << 61) ^ (rng.getrandbits(2) << 8)
        elif r < 0.85:                                        # a misaligned or huge PPN
            new = (old & ~(((1 << 44) - 1) << 10)) | (rng.choice(
                (1, 0x1FF, 0x200, 0x3FFFF, (1 << 44) - 1, rng.getrandbits(44))) << 10)
        else:
            new = old ^ (1 << rng.randrange(64))
        rig.mem.write64(at, new)
        # Forget the cached translations so that the walk reads the new entry.
        rig.m.iotlb.inval_vma(0, 0, 0, 0, 0, 0)
        rig.m.iotlb.inval_gvma(0, 0, 0, 0)
        rig.m.iotlb.fence()
        access = rng.choice(_ACCESSES)
        iova = va + rng.choice((0, 8, 0xFFF, 0x1000 if va == _SUPER_VA else 0, 0x1F_F000
                                if va == _SUPER_VA else 0))
        before = model_state(rig.m, _FQ_REGS), self.tables_state()
        fqt = rig.m.regs.fqt
        res = _translate(rig, dev, iova, access)
        if not isinstance(res, Result):
            raise Finding("wrong_answer", f"translate returned {res!r}")
        if res.fault and res.cause not in _FAMILY[access]:
            raise Finding("wrong_answer", f"PTE {new:#x} at {at:#x} on a {access}: {res} "
                          "is not a fault of the access's family")
        if not res.fault and not getattr(res, _GRANT[access]):
            raise Finding("wrong_answer", f"PTE {new:#x} at {at:#x}: a {access} translated "
                          f"to {res}, which does not grant it")
        _check_fault_record(rig, res, fqt)
        self.dirty = True
        if res.fault:
            after = model_state(rig.m, _FQ_REGS), self.tables_state()
            if after != before:
                raise Finding("state_changed", f"PTE {new:#x} at {at:#x} ({res}): "
                              f"{_diff(before, after)}")
        return Cause(res.cause).name if res.fault else "ok"


# -- commands ----------------------------------------------------------------------------------

_IOTINVAL_RSVD = bits.reserved_mask(IOTINVAL)
_IOFENCE_RSVD = bits.reserved_mask(IOFENCE)
_IODIR_RSVD = bits.reserved_mask(IODIR)


def command_illegal(cmd, *, pid_bits, ats, wsi, did_bits):
    """Whether the spec makes ``cmd`` illegal or unsupported here (spec "Command-Queue (CQ)":
    reserved opcodes and func3 values, set reserved bits, PSCV with GVMA, WSI while
    ``fctl.WSI=0``, ATS without ``capabilities.ATS``; IODIR.INVAL_DDT with a PID; a DID wider
    than the directory mode; IODIR.INVAL_PDT without a process directory, with DV=0 or a PID
    wider than supported, reference N.1.7). Written from the layouts, not from the model."""
    opcode, func3 = cmd & 0x7F, (cmd >> 7) & 7
    if opcode == 1:                                           # IOTINVAL
        return (func3 > 1 or bool(cmd & _IOTINVAL_RSVD)
                or (func3 == 1 and bits.get(IOTINVAL, cmd, "pscv") == 1))
    if opcode == 2:                                           # IOFENCE
        return func3 != 0 or bool(cmd & _IOFENCE_RSVD) or (
            bits.get(IOFENCE, cmd, "wsi") == 1 and not wsi)
    if opcode == 3:                                           # IODIR
        if func3 > 1 or cmd & _IODIR_RSVD:
            return True
        dv, did, pid = (bits.get(IODIR, cmd, f) for f in ("dv", "did", "pid"))
        if dv and did >> did_bits:
            return True
        if func3 == 0:
            return pid != 0
        return not pid_bits or not dv or bool(pid >> pid_bits)
    if opcode == 4:                                           # ATS: this IOMMU has none
        return True
    return True                                               # reserved or custom


class CommandHarness(_TranslatingHarness):
    """One command, legal or illegal, written at ``cqt`` and run. The caches hold stale
    translations (the tables changed after they were filled), so a command that wrongly
    ran would show in the caches' contents."""

    def __init__(self):
        super().__init__()
        rig = self.rig
        # Stale: the leaf PTE and a DC changed under the cached copies.
        rig.mem.write64(self.paths[_S1_DEV, _VA][-1], bits.pack(PTE, ppn=0x8_1000, **_LEAF))
        rig.mem.write64(self.dc_at[_S1_DEV][0] + 16, bits.pack(TA, pscid=6))
        self.fence_page = rig.page()
        caps = rig.m.caps
        self.oracle = dict(
            pid_bits=20 if caps["pd20"] else 17 if caps["pd17"] else 8 if caps["pd8"] else 0,
            ats=bool(caps["ats"]), wsi=bool(bits.get(FCTL, rig.m.regs.fctl, "wsi")),
            did_bits=rig.m.regs.iommu_mode.device_id_bits)
        self._valid = [
            fwcmd.iotinval_vma(pscid=5, addr=_VA), fwcmd.iotinval_vma(),
            fwcmd.iotinval_gvma(gscid=3, addr=_VA),
            fwcmd.iofence_c(addr=(self.fence_page << 12) + 0x40, data=0x1234),
            fwcmd.iofence_c(), fwcmd.iofence_c(wsi=True, pr=True),
            fwcmd.iodir_inval_ddt(did=_S1_DEV), fwcmd.iodir_inval_ddt(),
            fwcmd.iodir_inval_pdt(did=_S1_DEV, pid=1)]

    def _command(self, rng):
        r = rng.random()
        if r < 0.1:
            return rng.getrandbits(128)
        cmd = rng.choice(self._valid)
        if r < 0.5:                                           # one reserved bit
            mask = {1: _IOTINVAL_RSVD, 2: _IOFENCE_RSVD, 3: _IODIR_RSVD}[cmd & 0x7F]
            return cmd | (1 << rng.choice([b for b in range(128) if mask >> b & 1]))
        if r < 0.65:                                          # another func3 or opcode
            return (cmd & ~0x3FF) | rng.randrange(1 << 10) if rng.random() < 0.5 else \
                (cmd & ~0x380) | rng.randrange(8) << 7
        if r < 0.85:                                          # bit flips anywhere
            for _ in range(rng.randint(1, 3)):
                cmd ^= 1 << rng.randrange(128)
            return cmd
        return cmd                                            # valid, for the legal path

    def case(self, rig_rng):
        rng, rig = rig_rng, self.rig
        cmd = self._command(rng)
        expect_ill = command_illegal(cmd, **self.oracle)
        regs = rig.m.regs
        cqh = regs.cqh
        rig.mem.write((rig.cq << 12) + regs.cqt * 16, cmd.to_bytes(16, "little"))
        before = model_state(rig.m), rig.mem.read(self.fence_page << 12, _PAGE)
        try:
            rig.m.mmio_write(Offset.CQT, 4, (regs.cqt + 1) % 64)
            rig.m.process_commands()
        except Exception as e:
            raise Finding("exception", f"command {cmd:#034x}: "
                          f"{traceback.format_exc(limit=-3)}") from e
        ill = bool(bits.get(CQCSR, regs.cqcsr, "cmd_ill"))
        if ill != expect_ill:
            raise Finding("wrong_answer", f"command {cmd:#034x}: cmd_ill={int(ill)}, the spec "
                          f"says {int(expect_ill)} ({rig.m.command_queue.last_error})")
        self.dirty = True
        # IOFENCE.C with AV=1 stores beyond capabilities.PAS: cqmf, the fence not completed
        # (spec "IOMMU Command-queue Fence commands").
        expect_mf = (not ill and cmd & 0x3FF == 2 and bits.get(IOFENCE, cmd, "av") == 1
                     and (bits.get(IOFENCE, cmd, "addr") << 2) + 4 > 1 << self.rig.config.pas)
        mf = bool(bits.get(CQCSR, regs.cqcsr, "cqmf"))
        if mf != expect_mf:
            raise Finding("wrong_answer", f"command {cmd:#034x}: cqmf={int(mf)}, the spec says "
                          f"{int(expect_mf)} ({rig.m.command_queue.last_error})")
        if not ill and not mf:
            if regs.cqh != (cqh + 1) % 64 or regs.cqcsr & _CQ_STOP:
                raise Finding("wrong_answer", f"command {cmd:#034x} ran to cqh={regs.cqh}, "
                              f"cqcsr={regs.cqcsr:#x}")
            return "ok"
        after = model_state(rig.m), rig.mem.read(self.fence_page << 12, _PAGE)
        regs_b, regs_a = dict(before[0][0]), dict(after[0][0])
        # What cmd_ill or cqmf itself changes: the bit (and cip when cie=1), and cqt,
        # written by software to submit the command.
        for name in ("cqcsr", "ipsr", "cqt"):
            regs_b.pop(name)
            regs_a.pop(name)
        kept_b = (regs_b, before[0][1], before[1])
        kept_a = (regs_a, after[0][1], after[1])
        if regs.cqh != cqh or kept_a != kept_b:
            raise Finding("state_changed", f"stopped command {cmd:#034x}: cqh {cqh}->"
                          f"{regs.cqh}; {_diff(kept_b, kept_a)}")
        return "cmd_ill" if ill else "cqmf"


_CQ_STOP = bits.mask(CQCSR, "cqmf") | bits.mask(CQCSR, "cmd_to") | bits.mask(CQCSR, "cmd_ill")


HARNESSES = {
    "virtio": VirtioHarness,
    "vfio": VfioHarness,
    "iommufd": IommufdHarness,
    "commands": CommandHarness,
    "device_contexts": DeviceContextHarness,
    "ptes": PteHarness,
}


# -- running -----------------------------------------------------------------------------------

def case_rng(seed, target, index):
    """The generator of case ``index`` of ``target`` under ``seed`` (independent of the
    other cases, so one case replays alone)."""
    return random.Random(f"{seed}:{target}:{index}")


def replay_command(target, seed, index):
    return f"iogate fuzz --targets {target} --seed {seed} --replay {index}"


class _Prototype:
    """A harness built once and copied for each case that needs a fresh one (copying is
    cheaper than building)."""

    def __init__(self, target):
        self._proto = HARNESSES[target]()
        self._current = None

    def get(self):
        if self._current is None or self._current.dirty:
            self._current = copy.deepcopy(self._proto)
        return self._current


def run_target(target, cases=DEFAULT_CASES, seed=1, *, stop_on_finding=False, progress=None):
    """Run ``cases`` cases of ``target``; returns the ``fuzz_cases`` entry plus the findings
    (each with its replay command)."""
    proto = _Prototype(target)
    kinds, findings = {}, []
    counts = {"exception": 0, "state_changed_on_error": 0, "wrong_answer": 0}
    start = time.perf_counter()
    for index in range(cases):
        harness = proto.get()
        try:
            kind = harness.case(case_rng(seed, target, index))
        except Finding as f:
            key = "state_changed_on_error" if f.kind == "state_changed" else f.kind
            counts[key if key in counts else "exception"] += 1
            findings.append({"index": index, "kind": f.kind, "detail": f.detail,
                             "replay": replay_command(target, seed, index)})
            harness.dirty = True
            if stop_on_finding:
                break
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        if progress and (index + 1) % 10_000 == 0:
            progress(target, index + 1, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    ran = index + 1 if cases else 0
    entry = {"cases": ran, "seed": seed, "exceptions": counts["exception"],
             "state_changed_on_error": counts["state_changed_on_error"],
             "wrong_answers": counts["wrong_answer"],
             "errors_by_kind": dict(sorted(kinds.items())), "seconds": round(seconds, 1),
             "cases_per_s": round(ran / seconds) if seconds else None}
    return entry, findings


def replay(target, seed, index):
    """Rerun case ``index`` alone on a fresh harness; returns its kind or raises
    :class:`Finding`."""
    return HARNESSES[target]().case(case_rng(seed, target, index))


def run_campaign(targets=TARGETS, cases=DEFAULT_CASES, seed=1, progress=None):
    """Every target in turn: ``({target: entry}, {target: findings})``."""
    results, findings = {}, {}
    for target in targets:
        results[target], findings[target] = run_target(target, cases, seed, progress=progress)
    return results, findings


def merge_results(path, fuzz_cases):
    """Write ``fuzz_cases`` into the JSON file at ``path``, keeping its other keys and the
    entries of targets not run now."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    merged = dict(data.get("fuzz_cases", {}))
    merged.update(fuzz_cases)
    data["fuzz_cases"] = dict(sorted(merged.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data
