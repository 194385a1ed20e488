"""``iogate run msi-isolation`` and ``iogate run msi-mrif``: interrupt isolation for assigned
devices through the IOMMU's MSI page tables (issue 16).

RISC-V IOMMU spec "MSI page tables" and "Process to translate addresses of MSIs" (reference
N.4), AIA "IOMMU support for MSIs to virtual machines" and "Memory-resident interrupt files".
The platform's interrupt files are the 4 KiB pages of the host's MSI window
(:data:`iogate.cosim.host.core.MSI_WINDOW`: file k at ``0x0800_0000 + k * 4096``). Each guest
is a VFIO type1 container made *without* ``allow_unsafe_interrupts``: it is accepted only
because the IOMMU translates MSIs (``capabilities.MSI_FLAT``), and its devices' MSI page
table maps exactly the interrupt files it was granted
(:meth:`iogate.cosim.host.vfio.VfioContainer.grant_interrupt_file`).

**msi-isolation**: guest A (device :data:`DEV_A`) owns interrupt file :data:`FILE_A`, guest B
(:data:`DEV_B`) owns :data:`FILE_B`. Each device's write to its own file is translated by its
basic-mode MSI PTE to that file's page and arrives; a write to the other guest's file is
stopped. Why it stops, and with which record (the decision): both containers' MSI page
tables cover the *whole* window (pattern = the window, mask = its 256 pages), so the other
guest's file matches the pattern and is looked up in the device's own MSI page table, where
its entry has V=0: **cause 262** ("MSI PTE not valid"), TTYP 3 (untranslated write),
``iotval`` the address written, ``iotval2`` 0 (every MSI cause has ``iotval2`` 0, reference
N.4.3), DID the writer. The alternative, a pattern covering only the granted file, would send
the other file's address to the second stage (a guest-page fault, 23, with ``iotval2`` the
GPA): correct too, but it leaves the window's safety to what the second stage happens not to
map, and a cached superpage could cover it; with the window in the pattern, no second-stage
mapping can ever reach an interrupt file. After the owner revokes its file, its own writes
fault with 262 as well.

**msi-mrif**: a guest without an interrupt file of its own gets an MRIF-mode PTE for
:data:`FILE_MRIF`: the IOMMU records a write of identity D by setting bit D of the MRIF's
pending bits (pair ``D // 64``, bit ``D % 64``) and then writes the notice identity
:data:`NOTICE_ID` to the hypervisor's own interrupt file :data:`FILE_HV` (its
``seteipnum_le``, offset 0), whatever the MRIF's enable bits say. The device sees the write
*absorbed* (it never reaches memory at the file's address). A write of an identity of 2048 or
more, or at a page offset other than 0 or 4, is accepted and silently discarded (no pending
bit, no notice; AIA), and a read of the page reads 0 (absorbed).

Both scenarios are synchronous code over a :class:`~iogate.cosim.host.core.HostIommu` and a
*probe* that sends a device's access (``translate(device_id, address, access, data=None)``,
answering with the model's ``Result`` fields ``fault``, ``cause``, ``pa``, ``absorbed``):
:class:`ModelProbe` on the architectural model (``iogate run ... --sim model``, in-process), or
the RTL through the cocotb tests at the end of this module, every answer checked against the
model by the session's scoreboard. The expected answers here come from the grants and the
spec, never from the target.
"""

import os

from iogate.hdl import Config
from iogate.hdl.formats import Cause, Ttyp
from iogate.hdl.port import Access

from iogate.cosim.host.core import MSI_WINDOW, HostIommu
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.vfio.uapi import DMA_MAP, Extension, Ioctl, MapFlag

__all__ = ["SCENARIOS", "CONFIG", "ModelProbe", "ScenarioFailed", "msi_isolation", "msi_mrif",
           "run_on_model", "file_address", "DEV_A", "DEV_B", "DEV_C", "FILE_A", "FILE_B",
           "FILE_MRIF", "FILE_HV", "NOTICE_ID"]

#: The Config both scenarios need: MSI_FLAT and MSI_MRIF (``Config.msi()``).
CONFIG = Config.msi()
DEV_A, DEV_B, DEV_C = 0x0210, 0x0318, 0x0420
FILE_A, FILE_B, FILE_MRIF, FILE_HV = 5, 9, 12, 0
#: The hypervisor's identity for "a guest MRIF has something pending".
NOTICE_ID = 0x2A
_USER = 0x2_0000_0000
_PAGE = 4096


def file_address(index):
    """Interrupt file ``index`` of the platform (its page in the MSI window)."""
    return MSI_WINDOW[0] + index * _PAGE


class ScenarioFailed(AssertionError):
    """A device's access did not get what the grants and the spec say."""


class ModelProbe:
    """A device's accesses on the architectural model behind ``host`` (its fault records go
    to the model's fault queue, which the host's driver drains)."""

    def __init__(self, host):
        if host.model is None:
            raise ValueError("the host has no model behind it")
        self.model = host.model
        self.requests = 0
        self.faults: dict[int, int] = {}

    def translate(self, device_id, address, access=Access.WRITE, data=None):
        self.requests += 1
        r = self.model.translate(device_id, address, access, data=data)
        if r.fault:
            self.faults[int(r.cause)] = self.faults.get(int(r.cause), 0) + 1
        return r


class _Checks:
    def __init__(self, host, probe):
        self.host = host
        self.probe = probe
        self.checked = 0
        self.faults = 0

    def arrives(self, device_id, address, pa, data=None):
        r = self.probe.translate(device_id, address, Access.WRITE, data=data)
        self.checked += 1
        if r.fault or getattr(r, "absorbed", False) or r.pa != pa:
            raise ScenarioFailed(f"device {device_id:#x} write at {address:#x}: expected it at "
                                 f"{pa:#x}, got {r}")

    def absorbed(self, device_id, address, access=Access.WRITE, data=None):
        r = self.probe.translate(device_id, address, access, data=data)
        self.checked += 1
        if r.fault or not getattr(r, "absorbed", False):
            raise ScenarioFailed(f"device {device_id:#x} {access.name.lower()} at "
                                 f"{address:#x}: expected absorbed, got {r}")

    def stopped(self, device_id, address, cause, data=None):
        r = self.probe.translate(device_id, address, Access.WRITE, data=data)
        self.checked += 1
        self.faults += 1
        if not r.fault or r.cause != cause:
            raise ScenarioFailed(f"device {device_id:#x} write at {address:#x}: expected fault "
                                 f"{Cause(cause).name}, got {r}")
        records = self.host.faults([device_id])
        want = (int(cause), int(Ttyp.UNTRANSLATED_WRITE), device_id, address, 0)
        got = [(int(x.cause), int(x.ttyp), x.did, x.iotval, x.iotval2) for x in records]
        if got != [want]:
            raise ScenarioFailed(f"device {device_id:#x} write at {address:#x}: expected the "
                                 f"record (cause, ttyp, did, iotval, iotval2) {want}, got {got}")
        return records[0]


def _guest(host, device_id, ram_iova, vaddr, ram_pages=4):
    """A VFIO guest: a container without allow_unsafe_interrupts, one device, and
    ``ram_pages`` of the process's memory at ``vaddr`` mapped at ``ram_iova``."""
    c = VfioContainer(host)            # Linux's default: allow_unsafe_interrupts off
    rc = c.add_device(device_id)
    if rc:
        raise ScenarioFailed(f"add_device({device_id:#x}) = {rc}")
    rc = c.ioctl(Ioctl.SET_IOMMU, Extension.TYPE1v2_IOMMU)
    if rc:
        raise ScenarioFailed(f"SET_IOMMU without allow_unsafe_interrupts = {rc}: the IOMMU "
                             f"does not isolate MSIs (log: {host.log[-1:]})")
    arg = bytearray(DMA_MAP.pack(32, MapFlag.READ | MapFlag.WRITE, vaddr, ram_iova,
                                 ram_pages * _PAGE))
    rc = c.ioctl(Ioctl.IOMMU_MAP_DMA, arg)
    if rc:
        raise ScenarioFailed(f"MAP_DMA = {rc}")
    return c, vaddr


def msi_isolation(host, probe):
    """The msi-isolation scenario (module docstring); returns its report."""
    chk = _Checks(host, probe)
    a, a_ram = _guest(host, DEV_A, 0x10_0000, _USER)
    b, b_ram = _guest(host, DEV_B, 0x10_0000, _USER + 0x10_0000)
    for c, index in ((a, FILE_A), (b, FILE_B)):
        rc = c.grant_interrupt_file(index)
        if rc:
            raise ScenarioFailed(f"grant_interrupt_file({index}) = {rc}")
    fa, fb = file_address(FILE_A), file_address(FILE_B)
    # Ordinary DMA still works (second stage), each guest to its own RAM.
    chk.arrives(DEV_A, 0x10_0040, a_ram + 0x40)
    chk.arrives(DEV_B, 0x10_1080, b_ram + 0x1080)
    # Each rings its own interrupt file (seteipnum_le at offset 0, seteipnum_be at 4).
    chk.arrives(DEV_A, fa, fa)
    chk.arrives(DEV_A, fa + 4, fa + 4)
    chk.arrives(DEV_B, fb, fb)
    # ... and neither reaches the other's, nor any file it was not granted.
    rec_ab = chk.stopped(DEV_A, fb, Cause.MSI_PTE_NOT_VALID)
    chk.stopped(DEV_B, fa, Cause.MSI_PTE_NOT_VALID)
    chk.stopped(DEV_A, file_address(FILE_HV), Cause.MSI_PTE_NOT_VALID)
    chk.stopped(DEV_A, file_address(255) + 4, Cause.MSI_PTE_NOT_VALID)
    # A takes its file back (a vCPU migrated away): now its own writes are stopped too,
    # after the GVMA the driver sent (and the fence it waited for).
    a.revoke_interrupt_file(FILE_A)
    chk.stopped(DEV_A, fa, Cause.MSI_PTE_NOT_VALID)
    chk.arrives(DEV_B, fb + 4, fb + 4)
    return {"guest_a": {"device": hex(DEV_A), "file": hex(fa)},
            "guest_b": {"device": hex(DEV_B), "file": hex(fb)},
            "stopped_record": {"cause": int(rec_ab.cause), "ttyp": int(rec_ab.ttyp),
                               "did": hex(rec_ab.did), "iotval": hex(rec_ab.iotval),
                               "iotval2": rec_ab.iotval2},
            "accesses_checked": chk.checked, "faults": chk.faults}


def msi_mrif(host, probe):
    """The msi-mrif scenario (module docstring); returns its report."""
    chk = _Checks(host, probe)
    c, _ = _guest(host, DEV_C, 0x20_0000, _USER + 0x20_0000)
    io = host.driver
    mrif = io.mrifs.alloc_mrif()
    notice = file_address(FILE_HV)
    rc = c.grant_mrif(FILE_MRIF, mrif.address, notice >> 12, NOTICE_ID)
    if rc:
        raise ScenarioFailed(f"grant_mrif = {rc}")
    page = file_address(FILE_MRIF)

    def notice_word():
        return int.from_bytes(host.bus.mem_read(notice, 4), "little")

    def clear_notice():
        host.bus.mem_write(notice, bytes(4))

    clear_notice()
    identities = (0x123, 1, 2047)
    for d in identities:
        clear_notice()
        chk.absorbed(DEV_C, page, data=d)
        if not mrif.is_pending(d):
            raise ScenarioFailed(f"identity {d}: pending bit not set in the MRIF")
        if notice_word() != NOTICE_ID:
            raise ScenarioFailed(f"identity {d}: notice MSI {notice_word():#x}, expected "
                                 f"{NOTICE_ID:#x} at {notice:#x}")
    # The pending doubleword of 0x123 (= 291 = 4 * 64 + 35): pair 4, bit 35 (AIA layout).
    word = int.from_bytes(host.bus.mem_read(mrif.address + 4 * 16, 8), "little")
    if not word >> 35 & 1:
        raise ScenarioFailed(f"MRIF pair 4 pending doubleword {word:#x}: bit 35 not set")
    if sorted(mrif.pending()) != sorted(identities):
        raise ScenarioFailed(f"pending identities {mrif.pending()}, expected {identities}")
    # The write never reached memory at the file's address.
    if host.bus.mem_read(page, 8) != bytes(8):
        raise ScenarioFailed("the MRIF-mode write reached memory at the interrupt file")
    # Discarded: identity >= 2048, or a page offset other than 0/4 (AIA): absorbed, no
    # pending bit, no notice.
    clear_notice()
    before = mrif.pending()
    chk.absorbed(DEV_C, page, data=2048)
    chk.absorbed(DEV_C, page + 0x10, data=7)
    if mrif.pending() != before or notice_word() != 0:
        raise ScenarioFailed("a discarded MSI changed the MRIF or sent a notice")
    # A read of the page: absorbed, reads 0 (decision 5).
    chk.absorbed(DEV_C, page, Access.READ)
    # The hypervisor takes the interrupts: clears the pending bits.
    for d in identities:
        mrif.clear(d)
    # Another file of the window is still stopped for this guest.
    chk.stopped(DEV_C, file_address(FILE_A), Cause.MSI_PTE_NOT_VALID)
    return {"device": hex(DEV_C), "file": hex(page), "mrif": hex(mrif.address),
            "notice": {"address": hex(notice), "nid": hex(NOTICE_ID)},
            "identities_recorded": list(identities), "accesses_checked": chk.checked,
            "faults": chk.faults}


#: name -> (function, description) of each scenario.
SCENARIOS = {
    "msi-isolation": (msi_isolation,
                      "two VFIO guests without allow_unsafe_interrupts: each device's write to "
                      "its own interrupt file arrives (basic MSI PTE), to the other's is "
                      "stopped (262, MSI PTE not valid, with its record) (--config msi)"),
    "msi-mrif": (msi_mrif,
                 "a guest with a memory-resident interrupt file: a write sets the MRIF's pending "
                 "bit and the notice MSI reaches the hypervisor's file; discards and reads "
                 "absorbed (--config msi)"),
}


def run_on_model(name, config=None):
    """Scenario ``name`` on a fresh architectural model; its report (raises
    :class:`ScenarioFailed` on a wrong answer)."""
    fn = SCENARIOS[name][0]
    host = HostIommu.on_model(CONFIG if config is None else config)
    probe = ModelProbe(host)
    result = fn(host, probe)
    lost = host.lost_faults
    return {"scenario": name, "sim": "model", "seed": 0, "result": result,
            "translations": probe.requests, "faults": dict(sorted(probe.faults.items())),
            "iotlb_hits": 0,
            "iotlb_misses": 0, "cycles": 0, "mismatches": 0,
            "error": "fault records lost" if lost else None}


# -- on the RTL (cocotb) ------------------------------------------------------------------------

class _RtlMsiProbe:
    """The scenarios' probe API on the RTL: each access is one request on the session's
    translation port 0, carrying the write's data (the port's ``MSI_WRITE`` word/data), its
    answer checked against the model by the session's scoreboard. The model's result for
    the RTL's answer is returned (or the port's response on a mismatch, already counted),
    as :class:`~iogate.cosim.scenarios.rtl_probe.RtlProbe` does."""

    def __init__(self, session):
        from cocotb.task import resume
        self.session = session
        self.requests = 0
        self._send = resume(self._asend)

    async def _asend(self, device_id, address, access, data):
        from iogate.cosim.check.request import TranslationRequest
        s = self.session
        request = TranslationRequest(device_id, address, access, data=data)
        allowed = s.scoreboard.expect(request)          # before the RTL can answer
        event = await s.tb.ports[0].submit(request)
        await event.wait()
        s.scoreboard.check(request, event.response, allowed)
        self.requests += 1
        return event.response, allowed

    def translate(self, device_id, address, access=Access.WRITE, data=None):
        from iogate.cosim.check.scoreboard import same_answer
        response, allowed = self._send(device_id, address, access, data)
        return next((a for a in allowed if same_answer(response, a)), response)


async def _run_on_rtl(dut, name):
    import json

    from iogate.cosim.scenarios.session import open_session
    s = await open_session(dut, CONFIG)
    probe = _RtlMsiProbe(s)
    error, result = None, {}
    try:
        host = await s.run(HostIommu.of, s.bus)
        result = await s.run(SCENARIOS[name][0], host, probe)
        await s.check_fault_records()
    except Exception as e:  # reported, then raised again: the test fails
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        report = s.report(scenario=name, seed=0, sim=os.environ.get("IOGATE_SIM", "?"),
                          probes=probe.requests, result=result, error=error)
        path = os.environ.get("IOGATE_REPORT")
        if path:
            with open(path, "w") as f:
                json.dump(report, f, indent=2, default=str)
    assert not s.mismatches, "\n".join(s.mismatches[:10])


try:
    import cocotb
except ImportError:     # the model path needs no simulator
    _HAVE_COCOTB = False
else:
    _HAVE_COCOTB = True

if _HAVE_COCOTB:
    @cocotb.test()
    async def msi_isolation_rtl(dut):
        await _run_on_rtl(dut, "msi-isolation")

    @cocotb.test()
    async def msi_mrif_rtl(dut):
        await _run_on_rtl(dut, "msi-mrif")
