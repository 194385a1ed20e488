"""The msi-isolation and msi-mrif scenarios of ``iogate run`` on the architectural model, and
that they fail when the IOMMU (here: a probe or host standing for one) does not do what the
spec says."""

import errno

import pytest

from iogate.hdl import Config
from iogate.hdl.formats import Cause
from iogate.hdl.port import Access

from iogate.cosim.host.core import HostIommu
from iogate.cosim.scenarios import msi
from iogate.cosim.scenarios.run import run_scenario


@pytest.mark.parametrize("name", ["msi-isolation", "msi-mrif"])
def test_scenario_passes_on_the_model(name):
    r = msi.run_on_model(name)
    assert r["error"] is None and r["mismatches"] == 0 and r["translations"] > 5
    # Every fault either scenario provokes is an MSI PTE with V=0 (the decision).
    assert set(r["faults"]) == {int(Cause.MSI_PTE_NOT_VALID)}


def test_isolation_report_holds_the_record():
    r = msi.run_on_model("msi-isolation")["result"]
    assert r["stopped_record"] == {"cause": 262, "ttyp": 3, "did": hex(msi.DEV_A),
                                   "iotval": hex(0x0800_0000 + msi.FILE_B * 4096),
                                   "iotval2": 0}
    assert r["faults"] == 5


def test_run_scenario_on_the_model(tmp_path, capsys):
    assert run_scenario("msi-isolation", sim="model", out=tmp_path) == 0
    assert run_scenario("msi-mrif", sim="model", out=tmp_path) == 0
    out = capsys.readouterr().out
    assert "msi-isolation passed" in out and "msi-mrif passed" in out
    assert (tmp_path / "msi-mrif-model" / "report.json").exists()
    with pytest.raises(ValueError, match="Config.msi"):
        run_scenario("msi-mrif", sim="model", config="full", out=tmp_path)


def test_without_msi_translation_vfio_refuses_the_guest():
    host = HostIommu.on_model(Config.full())
    with pytest.raises(msi.ScenarioFailed, match=f"SET_IOMMU .* = {-errno.EPERM}"):
        msi.msi_isolation(host, msi.ModelProbe(host))


class _Leaky(msi.ModelProbe):
    """An IOMMU that lets a write to another guest's interrupt file through."""

    def translate(self, device_id, address, access=Access.WRITE, data=None):
        r = super().translate(device_id, address, access, data)
        if r.fault and r.cause == Cause.MSI_PTE_NOT_VALID:
            return type("R", (), {"fault": False, "cause": 0, "pa": address,
                                  "absorbed": False})()
        return r


def test_a_leaky_iommu_fails_isolation():
    host = HostIommu.on_model(msi.CONFIG)
    with pytest.raises(msi.ScenarioFailed, match="expected fault MSI_PTE_NOT_VALID"):
        msi.msi_isolation(host, _Leaky(host))


class _NoRecord(msi.ModelProbe):
    """Faults right, but writes no fault record."""

    def translate(self, device_id, address, access=Access.WRITE, data=None):
        self.requests += 1
        return self.model.translate(device_id, address, access, data=data, report=False)


def test_a_missing_fault_record_fails_isolation():
    host = HostIommu.on_model(msi.CONFIG)
    with pytest.raises(msi.ScenarioFailed, match="expected the record"):
        msi.msi_isolation(host, _NoRecord(host))


class _NoUpdate(msi.ModelProbe):
    """Absorbs MRIF writes without recording them (a bridge that drops MSIs)."""

    def translate(self, device_id, address, access=Access.WRITE, data=None):
        self.requests += 1
        (a,) = self.model.allowed(device_id, address, access, data=data)
        return a


def test_an_iommu_that_drops_mrif_writes_fails_msi_mrif():
    host = HostIommu.on_model(msi.CONFIG)
    with pytest.raises(msi.ScenarioFailed, match="pending bit not set"):
        msi.msi_mrif(host, _NoUpdate(host))
