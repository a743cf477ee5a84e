"""`layerscope simulate` outputs (calibrated files, truth table, provenance) and the demo scene's truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import layerscope.cli.simulate  # noqa: F401  (registers the command)
from layerscope.cli.app import app
from layerscope.errors import InputError


def test_cli_bulk_fast_writes_calibrated_image_and_truth(tmp_path):
    out = tmp_path / "sim"
    res = CliRunner().invoke(app, ["simulate", "--out", str(out), "--composition", "LiCoO2", "--width-nm", "1.5",
                                   "--height-nm", "1.5", "--thickness-nm", "2", "--pixel-size-nm", "0.01",
                                   "--dose", "1e5", "--scan-jitter-px", "0.2", "--seed", "4"])
    assert res.exit_code == 0, res.output
    for name in ("image.tif", "image.hspy", "clean.tif", "columns.csv", "summary.json", "provenance.json", "preview.png"):
        assert (out / name).is_file(), name
    from layerscope.io import load

    img = load(out / "image.tif")
    assert img.pixel_size_nm == pytest.approx(0.01, rel=1e-4)  # calibration survives the TIFF round trip
    clean = load(out / "clean.tif")
    summary = json.loads((out / "summary.json").read_text())
    # Poisson counts at 1e5 e/A^2 on 0.1 A pixels: 1000 electrons per pixel
    assert summary["electrons_per_pixel"] == pytest.approx(1000.0)
    assert np.asarray(img.data).mean() == pytest.approx(1000 * np.asarray(clean.data).mean(), rel=0.02)
    cols = pd.read_csv(out / "columns.csv")
    assert len(cols) == summary["columns"]["total"]
    assert set(cols.kind) == {"TM", "Li", "O"}
    # LiCoO2 [100]: per Co column one Li column and two O columns
    n = cols.kind.value_counts()
    assert n["O"] == pytest.approx(2 * n["TM"], abs=4) and n["Li"] == pytest.approx(n["TM"], abs=4)
    assert summary["provenance"]["parameters"]["scene"] == "bulk"
    assert summary["provenance"]["inputs"][0]["kind"] == "structure"


def test_cli_multislice_stack_tiles_and_resamples_the_windows(tmp_path, monkeypatch):
    """The CLI's wiring of the windowed engine: each window's scan is replaced by samples of an
    analytic band-limited image (the abTEM windows themselves: test_stacked.py), so the written
    image must equal that image on the output grid and the truth must tile the x period."""
    import layerscope.simulate.stacked as stacked

    def analytic(x, y, geo):
        return (1.5 + np.cos(2 * np.pi * 2 * x / geo.period_x_nm))[None, :] * (
            2.0 + np.sin(2 * np.pi * 9 * y / (geo.n_rows * geo.step_nm)))[:, None]

    def fake_window(window, *, atoms, geo, cache_dir, multislice):
        rows = window * geo.rows_per_window + np.arange(geo.rows_per_window)
        return analytic((np.arange(geo.n_x) + 0.5) * geo.step_nm, geo.y_start_nm + (rows + 0.5) * geo.step_nm, geo) * 1e-3

    monkeypatch.setattr(stacked, "_simulate_window", fake_window)
    out = tmp_path / "stack"
    res = CliRunner().invoke(app, ["simulate", "--out", str(out), "--scene", "bulk", "--composition", "LiCoO2",
                                   "--engine", "multislice-stack", "--width-nm", "1.2", "--height-nm", "1.0",
                                   "--thickness-nm", "0.6", "--pixel-size-nm", "0.01"])
    assert res.exit_code == 0, res.output
    from layerscope.io import load

    img = np.asarray(load(out / "image.tif").data, dtype=float)
    summary = json.loads((out / "summary.json").read_text())
    geo = summary["provenance"]["parameters"]["geometry"]
    assert img.shape[1] == 120 and geo["n_x"] == 21
    g = type("G", (), {"period_x_nm": geo["period_x_nm"], "n_rows": geo["n_rows"], "step_nm": geo["step_nm"]})
    want = analytic((np.arange(img.shape[1]) + 0.5) * 0.01, (np.arange(img.shape[0]) + 0.5) * 0.01, g) * 1e-3
    np.testing.assert_allclose(img, want, rtol=1e-5, atol=1e-9)
    cols = pd.read_csv(out / "columns.csv")
    cations = cols[cols.kind.isin(["TM", "Li"])]
    # every cation column of the first period, repeated while it stays inside the 1.2 nm field
    first = cations[cations.x_nm < geo["period_x_nm"]]
    assert len(cations) == int(np.ceil((1.2 - first.x_nm) / geo["period_x_nm"]).sum())
    assert cations.x_nm.max() < 1.2
    res = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "y"), "--scene", "demo", "--engine",
                                   "multislice-stack"])
    assert isinstance(res.exception, InputError) and "periodic along x" in str(res.exception)
    res = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "z"), "--scene", "degraded", "--composition",
                                   "NMC811"])
    assert isinstance(res.exception, InputError) and "LiCoO2 validation stack" in str(res.exception)
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_cli_rejects_bad_options(tmp_path):
    res = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--engine", "bloch"])
    assert isinstance(res.exception, InputError)
    res = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--drift-nm-per-s", "1"])
    assert isinstance(res.exception, InputError)
    assert not (tmp_path / "x").exists()


def test_demo_scene_truth_matches_its_structure():
    from layerscope.simulate.demo import DemoSettings, demo_scene

    settings = DemoSettings()
    scene = demo_scene(0, settings=settings)
    atoms, cols = scene.atoms, scene.columns
    assert scene.clean is not None and scene.image.shape == scene.clean.shape
    # the TM atoms on Li-layer sites of the layered blocks equal the truth table's mixing count
    symbols = np.array(atoms.get_chemical_symbols())
    tm_on_li = (atoms.arrays["site"] == "Li") & np.isin(symbols, ["Ni", "Mn", "Co"]) & (atoms.arrays["phase"] != "rock_salt")
    x, y = atoms.positions[:, 0] / 10, atoms.positions[:, 1] / 10
    w, h = scene.image.extent_nm
    in_field = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    layered_li = cols[(cols.kind == "Li") & (cols.phase != "rock_salt")]
    assert np.rint((layered_li.tm_fraction * layered_li.n_atoms).sum()) == np.count_nonzero(tm_on_li & in_field)
    # no column inside the void (in the undistorted frame); rock-salt Li sites are all TM (li_fraction 0)
    cx, cy = settings.void_center_nm
    assert np.hypot(cols.x_true_nm - cx, cols.y_true_nm - cy).min() > settings.void_radius_nm - 0.03
    assert (cols[(cols.phase == "rock_salt") & (cols.kind == "Li")].tm_fraction == 1).all()
    # drift moved the columns by at most v * frame time
    frame_s = scene.image.shape[0] * (scene.image.shape[1] * settings.dwell_time_s + settings.line_flyback_s)
    shift = np.hypot(cols.x_nm - cols.x_true_nm, cols.y_nm - cols.y_true_nm)
    assert shift.max() <= np.hypot(*settings.drift_nm_per_s) * frame_s * 1.001
    assert scene.image.metadata["signal_units"] == "detected electrons per pixel"
