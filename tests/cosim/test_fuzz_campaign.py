"""The fuzz campaign (iogate.cosim.regress.fuzz, issue 18 item 5): it runs clean on a small
number of cases, its checker catches a planted bug (an exception, a state change on an error,
a wrong answer), a finding replays alone from its seed and index, and results merge into
results/reliability.json without losing other keys."""

import errno
import json

import pytest

from iogate.firmware import commands as fwcmd

from iogate.cosim import cli
from iogate.cosim.host.iommufd import ictx
from iogate.cosim.host.vfio import VfioContainer
from iogate.cosim.host.virtio import VirtioIommu
from iogate.cosim.model.cmdq import CommandQueue
from iogate.cosim.regress import fuzz

SEED = 7
CASES = 300


@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_small_campaign_is_clean(target):
    entry, findings = fuzz.run_target(target, CASES, SEED)
    print(f"seed {SEED}")
    assert findings == []
    assert entry["cases"] == CASES and entry["exceptions"] == 0
    assert entry["state_changed_on_error"] == 0 and entry["wrong_answers"] == 0
    # The inputs reach both the refusals and the accepted paths.
    assert sum(entry["errors_by_kind"].values()) == CASES
    assert len(entry["errors_by_kind"]) >= 2


def _first_finding(target, cases=200):
    _, findings = fuzz.run_target(target, cases, SEED, stop_on_finding=True)
    assert findings, "the planted bug was not caught"
    return findings[0]


def test_catches_a_virtio_state_change_on_error(monkeypatch):
    """A device that forgets endpoint 1's attachment before refusing a request."""
    real = VirtioIommu.request

    def leaky(self, readable, writable):
        out = real(self, readable, writable)
        if out and out[-4] != 0:
            self._attached.pop(1, None)
        return out

    monkeypatch.setattr(VirtioIommu, "request", leaky)
    f = _first_finding("virtio")
    assert f["kind"] == "state_changed"


def test_catches_a_vfio_state_change_on_error(monkeypatch):
    """A container whose refused ioctls still write into the caller's buffer."""
    real = VfioContainer.ioctl

    def leaky(self, request, arg=0):
        rc = real(self, request, arg)
        if rc < 0 and isinstance(arg, bytearray) and arg:
            arg[0] ^= 1
        return rc

    monkeypatch.setattr(VfioContainer, "ioctl", leaky)
    f = _first_finding("vfio")
    assert f["kind"] == "state_changed"
    # The finding replays alone, from its seed and index, with the bug still planted.
    with pytest.raises(fuzz.Finding, match="state_changed"):
        fuzz.replay("vfio", SEED, f["index"])


def test_catches_an_exception_and_replays_it(monkeypatch, capsys):
    real = ictx.Iommufd.ioctl

    def raising(self, request, arg):
        if len(arg) % 7 == 3:
            raise KeyError("planted")
        return real(self, request, arg)

    monkeypatch.setattr(ictx.Iommufd, "ioctl", raising)
    f = _first_finding("iommufd")
    assert f["kind"] == "exception" and "planted" in f["detail"]
    assert f["replay"] == f"iogate fuzz --targets iommufd --seed {SEED} --replay {f['index']}"
    # The one-command replay shows the same finding and fails.
    assert cli.main(f["replay"].split()[1:]) == 1
    assert "planted" in capsys.readouterr().out


def test_catches_a_command_decoder_that_ignores_reserved_bits(monkeypatch):
    """A decoder that runs IOTINVAL with reserved bits set instead of cmd_ill."""
    real = CommandQueue._iotinval

    def lax(self, cmd, func3):
        return real(self, cmd & ~fuzz._IOTINVAL_RSVD, func3)

    monkeypatch.setattr(CommandQueue, "_iotinval", lax)
    f = _first_finding("commands", 400)
    assert f["kind"] == "wrong_answer" and "cmd_ill=0" in f["detail"]


def test_catches_a_fence_that_completes_on_a_store_fault(monkeypatch):
    """A fence whose AV store beyond capabilities.PAS is dropped instead of setting cqmf
    (spec "IOMMU Command-queue Fence commands")."""
    from iogate.cosim.model.memory import AccessFault
    real = CommandQueue._iofence

    def swallowing(self, cmd, func3):
        try:
            return real(self, cmd, func3)
        except AccessFault:
            return None

    monkeypatch.setattr(CommandQueue, "_iofence", swallowing)
    f = _first_finding("commands", 3000)
    assert f["kind"] == "wrong_answer" and "cqmf=0" in f["detail"]


def test_command_oracle_follows_the_spec():
    """Spec "Command-Queue (CQ)": worked by hand from the command layouts."""
    o = dict(pid_bits=20, ats=False, wsi=True, did_bits=24)
    assert not fuzz.command_illegal(fwcmd.iotinval_vma(pscid=5, addr=0x1000), **o)
    assert fuzz.command_illegal(fwcmd.iotinval_vma() | 1 << 11, **o)         # rsvd0
    assert fuzz.command_illegal(fwcmd.iotinval_gvma() | 1 << 32, **o)        # GVMA with PSCV
    assert fuzz.command_illegal(fwcmd.iotinval_vma() | 2 << 7, **o)          # func3 2
    assert fuzz.command_illegal(fwcmd.iofence_c(wsi=True), **{**o, "wsi": False})
    assert not fuzz.command_illegal(fwcmd.iofence_c(wsi=True), **o)
    assert fuzz.command_illegal(fwcmd.iodir_inval_pdt(did=1, pid=1), **{**o, "pid_bits": 0})
    assert fuzz.command_illegal(fwcmd.iodir_inval_pdt(did=1, pid=0x100), **{**o, "pid_bits": 8})
    assert fuzz.command_illegal(fwcmd.iodir_inval_ddt(did=1) | 1 << 12, **o)  # PID with DDT
    assert fuzz.command_illegal(4, **o) and fuzz.command_illegal(5, **o)     # ATS, reserved
    assert fuzz.command_illegal(fwcmd.iodir_inval_ddt(did=0x80), **{**o, "did_bits": 7})


def test_catches_a_walk_that_caches_a_fault(monkeypatch):
    """A model that fills its DC cache even when the DC is misconfigured."""
    from iogate.cosim.model.iommu import IommuModel
    real = IommuModel._device_context

    def filling(self, device_id):
        try:
            return real(self, device_id)
        except Exception:
            self.dc_cache.fill(device_id, object())
            raise

    monkeypatch.setattr(IommuModel, "_device_context", filling)
    monkeypatch.setattr(fuzz, "cache_state", lambda m: {k: len(v) for k, v in
                                                        m.dc_cache._entries.items()})
    f = _first_finding("device_contexts")
    assert f["kind"] == "state_changed"


def test_huge_iommufd_user_struct_stops_at_the_first_nonzero_byte():
    """A found bug: a 4 GiB ``data_len`` was read into one buffer (16 s for one ioctl);
    the kernel's check_zeroed_user stops at the first non-zero byte."""
    asked = []

    def read(offset, n):
        asked.append(n)
        return bytes(n) if offset < 64 else b"\1" * n

    with pytest.raises(ictx._Errno) as e:
        ictx.copy_struct_from_user(read, 24, 1 << 32)
    assert e.value.rc == -errno.E2BIG
    assert sum(asked) < 1 << 20
    # A short user struct is zero-extended; a zero tail is accepted.
    assert ictx.copy_struct_from_user(lambda o, n: bytes(n), 24, 100) == bytes(24)


def test_merge_keeps_other_keys(tmp_path):
    out = tmp_path / "reliability.json"
    out.write_text(json.dumps({"seeds": 100, "fuzz_cases": {"ptes": {"cases": 1}}}))
    entry, _ = fuzz.run_target("vfio", 20, SEED)
    fuzz.merge_results(out, {"vfio": entry})
    data = json.loads(out.read_text())
    assert data["seeds"] == 100
    assert data["fuzz_cases"]["ptes"] == {"cases": 1}
    assert data["fuzz_cases"]["vfio"]["cases"] == 20


def test_cli_runs_and_refuses_unknown_targets(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert cli.main(["fuzz", "--targets", "ptes,commands", "--cases", "50", "--seed", "3",
                     "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())["fuzz_cases"]) == {"ptes", "commands"}
    assert cli.main(["fuzz", "--targets", "nope"]) == 2
    assert "unknown targets nope" in capsys.readouterr().err
