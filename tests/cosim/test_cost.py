"""``iogate bench cost``'s rows and report, without running the tools (measure_row is
replaced; the real run is ``iogate bench cost``)."""

import dataclasses

import pytest

from iogate.hdl import Config

from iogate.cosim.bench import cost


def test_unknown_row_is_refused_before_anything_runs(monkeypatch):
    monkeypatch.setattr(cost, "measure_row", lambda *a: pytest.fail("ran the tools"))
    with pytest.raises(ValueError, match="unknown cost rows \\['sv64'\\]"):
        cost.measure_cost(("full", "sv64"))


def test_every_row_adds_only_its_options_to_the_first_target():
    base = dataclasses.asdict(Config.full())
    assert cost.ROWS["full"][1]() == Config.full()
    changed = {name: {k for k, v in dataclasses.asdict(make()).items() if base[k] != v}
               for name, (_, make) in cost.ROWS.items()}
    assert changed == {"full": set(), "sv57": {"sv57", "sv57x4"}, "pd8": {"pd_levels"},
                       "pd20": {"pd_levels"}, "process": {"sv57", "sv57x4", "pd_levels"},
                       "msi_flat": {"msi_flat"}, "msi_mrif": {"msi_flat", "msi_mrif"},
                       "igs_msi": {"igs"}, "igs_both": {"igs"},
                       "msi": {"msi_flat", "msi_mrif", "igs"},
                       "hpm": {"hpm_counters"}, "hpm31": {"hpm_counters"},
                       "ats": {"ats"}, "ats_t2gpa": {"ats", "t2gpa"}}


def test_deltas_are_against_the_first_target_which_is_always_measured(monkeypatch, tmp_path):
    seen = []

    def fake(config, work_dir):
        seen.append(config)
        lut = 1000 + 100 * config.pd_levels
        return {"lut4": lut, "ff": lut // 2, "dpr16x4": 0, "fmax_mhz": 50.0, "seconds": 1.0}

    monkeypatch.setattr(cost, "measure_row", fake)
    out = tmp_path / "cost.json"
    result = cost.measure_cost(("pd20",), out=out, progress=lambda *a: None)
    assert seen == [Config.full(), Config.full().replace(pd_levels=3)]
    row = result["rows"]["pd20"]
    assert (row["lut4_delta"], row["ff_delta"], row["lut4_ratio"]) == (300, 150, 1.3)
    assert out.exists()
    table = cost.markdown(result)
    assert "| 1,300 | 650 | 50.00 MHz | +300 (1.30x) |" in table
