"""The ``cycling``, ``xrd`` and ``kinetics`` commands end to end on real and synthetic files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import layerscope.cli.cells  # noqa: F401  (registers the commands)
from layerscope.cli.app import app
from layerscope.errors import InputError

from test_kinetics import first_order_run

runner = CliRunner()


def test_cycling_command_on_a_real_file(shared_data, tmp_path):
    path = shared_data / "cycling" / "neware" / "TestFile.nda"
    raw = __import__("NewareNDA").read(str(path))
    out = tmp_path / "cyc"
    result = runner.invoke(app, ["cycling", str(path), "--out", str(out), "--mass-mg", "25000"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cycles"] == raw["Cycle"].nunique() == 3
    # cycle 2 is the only complete one: its discharge is the Discharge_Capacity maximum of its steps
    q = raw[raw["Cycle"] == 2].groupby("Step")["Discharge_Capacity(mAh)"].max().sum()
    assert summary["first_discharge_capacity_mAh"] == pytest.approx(q, rel=1e-6)
    assert summary["first_specific_discharge_capacity_mAh_g"] == pytest.approx(q / 25.0, rel=1e-6)
    assert summary["provenance"]["inputs"][0]["sha256"]
    for name in ("cycles.csv", "dqdv_peaks.csv", "report.html", "records.parquet"):
        assert (out / name).is_file()
    assert pd.read_csv(out / "cycles.csv")["flag"].fillna("").str.contains("no charge").iloc[0]


def test_cycling_command_rejects_unknown_layout(tmp_path):
    # (the BEEP aligned CSV used here before is now read as a normalised voltage curve: tests/realdata/rows_cells.py)
    path = tmp_path / "odd.csv"
    path.write_text("when,volts,amps\n0,3.5,0.1\n")
    out = tmp_path / "bad"
    result = runner.invoke(app, ["cycling", str(path), "--out", str(out)])
    assert isinstance(result.exception, InputError) and "volts" in str(result.exception)
    assert not out.exists()  # nothing half-written


def test_xrd_command_on_licoo2(shared_data, tmp_path):
    path = shared_data / "xrd" / "Nb2O5_CuO_LiCoO2.12-min.xrdml"
    out = tmp_path / "xrd"
    result = runner.invoke(app, ["xrd", str(path), "--out", str(out), "--rock-salt", "NiO"])
    assert result.exit_code == 0, result.output
    s = json.loads((out / "summary.json").read_text())
    lat = s["patterns"][0]["lattice"]
    assert lat["c_A"] == pytest.approx(14.0542, rel=1.5e-3) and lat["a_A"] == pytest.approx(2.8156, rel=1.5e-3)
    assert s["rock_salt"]["identified"] is False
    assert (out / "reflections.csv").is_file() and (out / "report.html").is_file()


def test_kinetics_command(tmp_path):
    files = []
    for b in (2.0, 5.0, 10.0, 20.0):
        t, time_s, r = first_order_run(b, seed=int(b))
        p = tmp_path / f"run_{b:g}.csv"
        pd.DataFrame({"time_s": time_s, "temperature_C": t - 273.15, "ion_current_m32_A": r * 1e-9}).to_csv(p, index=False)
        files.append(str(p))
    out = tmp_path / "kin"
    result = runner.invoke(app, ["kinetics", *files, "--signal", "ion_current_m32_A", "--out", str(out)])
    assert result.exit_code == 0, result.output
    s = json.loads((out / "summary.json").read_text())
    assert s["kissinger"]["ea_kJ_mol"] == pytest.approx(150.0, rel=0.02)
