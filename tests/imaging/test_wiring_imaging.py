"""Wiring of ``layerscope columns`` and ``layerscope phases`` (issue 21): every option reaches the analysis.

Each CLI option changes the result against a known truth, or at least the recorded parameters
(provenance.json); the input file's SHA-256 is recorded; ``analyse`` takes arrays and HyperSpy
Signal2D (calibration from the axes); bad option values are one InputError line naming the option.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from imaging_scenes import PX, noisy, small_o3
from imaging_synthetic import draw_columns
from layerscope.cli import run
from layerscope.errors import InputError
from layerscope.imaging import generic, pipeline
from layerscope.imaging.options import ColumnsOptions, PhasesOptions

#: Two-level test lattice: a square lattice of 0.3 nm, rows alternately of amplitude 1 and 0.5.
SQ_PX, SQ_SPACING_NM, SQ_SIGMA_NM = 0.01, 0.3, 0.04


def _square_truth():
    x, y = np.meshgrid(np.arange(0.15, 6.0, SQ_SPACING_NM), np.arange(0.15, 6.0, SQ_SPACING_NM))
    bright = (np.rint((y - 0.15) / SQ_SPACING_NM) % 2) == 0
    return x.ravel(), y.ravel(), np.where(bright, 1.0, 0.5).ravel()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``o3.npy`` (3 x 3 nm O3 LiCoO2 [100], 1e4 e/A^2) and ``square.npy`` (400 columns, 200 bright)."""
    d = tmp_path_factory.mktemp("wiring")
    np.save(d / "o3.npy", noisy(small_o3(), 1e4, seed=1))
    x, y, a = _square_truth()
    img = draw_columns((600, 600), x, y, a, pixel_size_nm=SQ_PX, sigma_nm=SQ_SIGMA_NM, background=0.1)
    np.save(d / "square.npy", img + np.random.default_rng(0).normal(0.0, 0.03, img.shape))
    return d


def _run(args, out) -> tuple[int, dict, dict]:
    code = run(args + ["--out", str(out)])
    if code != 0:
        return code, {}, {}
    return code, json.loads((out / "provenance.json").read_text()), json.loads((out / "summary.json").read_text())


def _columns(files, out, *extra):
    return _run(["columns", str(files / "square.npy"), "--pixel-size-nm", str(SQ_PX), "--no-figures", *extra],
                files / out)


def _phases(files, out, *extra, figures=False):
    fig = [] if figures else ["--no-figures"]
    return _run(["phases", str(files / "o3.npy"), "--pixel-size-nm", str(PX), *fig, *extra], files / out)


def test_columns_records_the_input_hash_and_every_default(files):
    code, prov, _ = _columns(files, "c_base")
    assert code == 0
    assert prov["inputs"][0]["sha256"] == hashlib.sha256((files / "square.npy").read_bytes()).hexdigest()
    assert prov["parameters"] == {"pixel_size_nm": SQ_PX, "composition": None, "zone": "100",
                                  "relative_threshold": 0.3, "noise_sigmas": 5.0, "noise_model": "poisson",
                                  "enhance": False, "nn_distance_nm": None, "contrast": "bright",
                                  "command": "columns"}
    table = pd.read_csv(files / "c_base" / "columns.csv")
    assert len(table) == 400  # every column of the truth
    assert not (files / "c_base" / "overlay.png").exists()  # --no-figures


@pytest.mark.parametrize("option, value, n_expected", [
    # Dim rows have half the bright rows' contrast: a threshold of 0.75 of the brightest keeps
    # only the 200 bright columns.
    ("--relative-threshold", "0.75", 200),
    # Matched-filter SNR: bright columns 227-233, dim 113-118 (noise 0.03): 170 keeps the bright.
    ("--noise-sigmas", "170", 200),
])
def test_columns_detection_options_select_the_bright_columns(files, option, value, n_expected):
    code, prov, _ = _columns(files, f"c{option}", option, value)
    assert code == 0
    assert prov["parameters"][option.lstrip("-").replace("-", "_")] == float(value)
    table = pd.read_csv(files / f"c{option}" / "columns.csv")
    assert len(table) == n_expected
    # The ones kept are the bright rows (truth amplitude 1.0, background 0.1), within 5 %.
    assert table["intensity"].min() == pytest.approx(1.0, rel=0.05)


def test_columns_noise_model_changes_the_fit(files):
    x, y, _ = _square_truth()
    tables = {}
    for model in ("poisson", "gaussian"):
        code, prov, _ = _columns(files, f"c_{model}", "--noise-model", model)
        assert code == 0 and prov["parameters"]["noise_model"] == model
        t = pd.read_csv(files / f"c_{model}" / "columns.csv").sort_values(["y_nm", "x_nm"]).reset_index(drop=True)
        tables[model] = t
        # Both recover the truth to 1 pm rms (noise 3 % of the bright columns, 0.04 nm columns).
        d, _ = cKDTree(np.column_stack([x, y])).query(t[["x_nm", "y_nm"]].to_numpy())
        assert np.sqrt(np.mean(d**2)) * 1e3 < 1.0
    shift = np.abs(tables["poisson"][["x_nm", "y_nm"]].to_numpy() - tables["gaussian"][["x_nm", "y_nm"]].to_numpy())
    assert shift.max() > 1e-6  # a different estimator: the positions differ (by far less than a pm rms)


def test_columns_scale_material_and_figures(files):
    _, _, base = _columns(files, "c_scale0")
    code, prov, summary = _run(["columns", str(files / "square.npy"), "--pixel-size-nm", str(2 * SQ_PX),
                                "--composition", "NMC811", "--zone", "110"],
                               files / "c_scale")
    assert code == 0
    p = prov["parameters"]
    assert (p["pixel_size_nm"], p["composition"], p["zone"]) == (2 * SQ_PX, "NMC811", "110")
    # A square lattice is no layered oxide: --composition flags the calibration.
    assert [f["code"] for f in summary["flags"]] == ["calibration"] and base["flags"] == []
    a = pd.read_csv(files / "c_scale0" / "columns.csv")
    b = pd.read_csv(files / "c_scale" / "columns.csv")
    assert len(a) == len(b) == 400
    np.testing.assert_allclose(np.sort(b["x_nm"]), 2 * np.sort(a["x_nm"]), rtol=1e-9)
    assert (files / "c_scale" / "overlay.png").stat().st_size > 10_000  # figures by default


def test_phases_records_the_input_hash_and_its_options(files):
    code, prov, summary = _phases(files, "p_base", figures=True)
    assert code == 0
    assert prov["inputs"] == [{"name": str(files / "o3.npy"), "kind": "file",
                               "sha256": hashlib.sha256((files / "o3.npy").read_bytes()).hexdigest()}]
    assert summary["provenance"]["inputs"] == prov["inputs"]
    assert prov["parameters"] == {"pixel_size_nm": PX, "zone": "100", "composition": "LiCoO2", "enhance": False,
                                  "noise_model": "poisson", "command": "phases"}
    assert summary["phase_fractions"]["O3"] > 0.99
    for name in ("overlay.png", "report.html"):
        assert (files / "p_base" / name).stat().st_size > 10_000
    code, _, _ = _phases(files, "p_nofig")
    assert code == 0 and not (files / "p_nofig" / "overlay.png").exists()
    assert not (files / "p_nofig" / "report.html").exists()


def test_phases_pixel_size_scales_every_position(files):
    _phases(files, "p_px0")
    code, prov, summary = _run(["phases", str(files / "o3.npy"), "--pixel-size-nm", str(1.05 * PX), "--no-figures"],
                               files / "p_px")
    assert code == 0 and prov["parameters"]["pixel_size_nm"] == pytest.approx(1.05 * PX, rel=1e-12)
    a, b = (pd.read_csv(files / k / "columns.csv") for k in ("p_px0", "p_px"))
    assert len(a) == len(b)
    np.testing.assert_allclose(b["x_nm"], 1.05 * a["x_nm"], rtol=1e-9)
    assert summary["lattice"]["inplane_spacing_nm"] == pytest.approx(1.05 * 0.2438, rel=0.03)


def test_phases_zone_composition_and_noise_model(files):
    _phases(files, "p_ref")
    ref = pd.read_csv(files / "p_ref" / "columns.csv")
    # [110] convention on a [100] image: the majority steps the other way -> analysed as the mirror
    # view, still all O3.
    code, prov, summary = _phases(files, "p_zone", "--zone", "110")
    assert code == 0 and prov["parameters"]["zone"] == "110" and summary["lattice"]["zone"] == "100"
    assert any("mirror view" in n for n in summary["notes"]) and summary["phase_fractions"]["O3"] > 0.99
    code, prov, summary = _phases(files, "p_comp", "--composition", "NMC811")
    assert code == 0 and prov["parameters"]["composition"] == "NMC811"
    assert summary["lattice"]["composition"] == "NMC811"
    code, prov, _ = _phases(files, "p_gauss", "--noise-model", "gaussian")
    assert code == 0 and prov["parameters"]["noise_model"] == "gaussian"
    g = pd.read_csv(files / "p_gauss" / "columns.csv")
    assert len(g) == len(ref)
    dx = np.abs(g["x_nm"] - ref["x_nm"]).max()
    assert 1e-6 < dx < 0.01  # another estimator of the same columns: different, within 10 pm


@pytest.mark.parametrize("command", ["columns", "phases"])
def test_scheduler_reaches_the_refinement(files, command, capsys):
    src = "square.npy" if command == "columns" else "o3.npy"
    px = SQ_PX if command == "columns" else PX
    code = run([command, str(files / src), "--pixel-size-nm", str(px), "--no-figures", "--scheduler", "nonsense",
                "--out", str(files / f"s_{command}")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--scheduler 'nonsense'" in err[0]
    assert not (files / f"s_{command}").exists()


def test_overwrite(files):
    args = ["columns", str(files / "square.npy"), "--pixel-size-nm", str(SQ_PX), "--no-figures", "--out",
            str(files / "ow")]
    assert run(args) == 0
    assert run(args) == 2
    assert run(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("command", ["columns", "phases"])
def test_enhance_is_recorded_and_detects_on_the_denoised_image(files, command):
    pytest.importorskip("torch")
    src, px = ("square.npy", SQ_PX) if command == "columns" else ("o3.npy", PX)
    code, prov, summary = _run([command, str(files / src), "--pixel-size-nm", str(px), "--no-figures", "--enhance"],
                               files / f"e_{command}")
    assert code == 0 and prov["parameters"]["enhance"] is True
    assert any("neural enhancer's denoised image" in n for n in summary["notes"])
    # Every column of the truth: the 400 of the square lattice; the 86 TM columns of the O3 image
    # (its Li columns are invisible), within 1.
    n_expected = 400 if command == "columns" else int((small_o3().columns["kind"] == "TM").sum())
    assert len(pd.read_csv(files / f"e_{command}" / "columns.csv")) == pytest.approx(n_expected, abs=1)


@pytest.mark.parametrize("make, option", [
    (lambda: PhasesOptions(zone="111"), "--zone"),
    (lambda: PhasesOptions(composition="LiXO2"), "--composition"),
    (lambda: PhasesOptions(noise_model="cauchy"), "--noise-model"),
    (lambda: ColumnsOptions(zone="001"), "--zone"),
    (lambda: ColumnsOptions(composition="Fe2O3"), "--composition"),
    (lambda: ColumnsOptions(relative_threshold=0.0), "--relative-threshold"),
    (lambda: ColumnsOptions(relative_threshold=1.5), "--relative-threshold"),
    (lambda: ColumnsOptions(noise_sigmas=-1.0), "--noise-sigmas"),
    (lambda: ColumnsOptions(nn_distance_nm=float("nan")), "--nn-distance-nm"),
    (lambda: ColumnsOptions(noise_model="gauss"), "--noise-model"),
])
def test_invalid_options_name_the_cli_option(make, option):
    with pytest.raises(InputError) as info:
        make()
    assert str(info.value).startswith(option) and "\n" not in str(info.value)


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        PhasesOptions().zone = "110"  # type: ignore[misc]


@pytest.fixture(scope="module")
def o3_signal():
    from layerscope.containers import Image

    img = noisy(small_o3(), 1e4, seed=1)
    return img, Image.from_array(img, pixel_size_nm=PX).to_hyperspy()


def test_columns_analyse_takes_an_array_and_a_hyperspy_signal(o3_signal):
    from layerscope.provenance import array_sha256

    img, signal = o3_signal
    assert type(signal).__name__ == "Signal2D"
    a = generic.analyse(img, ColumnsOptions(), pixel_size_nm=PX)
    s = generic.analyse(signal, ColumnsOptions())  # calibration from the signal's axes
    assert s.pixel_size_nm == pytest.approx(PX, rel=1e-9)
    np.testing.assert_allclose(s.columns[["x_nm", "y_nm"]], a.columns[["x_nm", "y_nm"]], atol=1e-9)
    assert a.provenance.inputs[0]["kind"] == "array" and a.provenance.inputs[0]["sha256"] == array_sha256(img)
    # pixel_size_nm overrides the signal's axes: every position scales.
    s2 = generic.analyse(signal, ColumnsOptions(), pixel_size_nm=2 * PX)
    np.testing.assert_allclose(s2.columns["x_nm"], 2 * a.columns["x_nm"], rtol=1e-9)


def test_phases_analyse_takes_an_array_and_a_hyperspy_signal_and_map_phases_wraps_it(o3_signal):
    img, signal = o3_signal
    a = pipeline.analyse(img, PhasesOptions(), pixel_size_nm=PX)
    s = pipeline.analyse(signal, PhasesOptions())
    w = pipeline.map_phases(img, pixel_size_nm=PX)
    assert s.result.pixel_size_nm == pytest.approx(PX, rel=1e-9)
    for other in (s, w):
        np.testing.assert_allclose(other.columns[["x_nm", "y_nm", "intensity"]],
                                   a.columns[["x_nm", "y_nm", "intensity"]], atol=1e-9)
        assert list(other.columns["phase"]) == list(a.columns["phase"])
    assert a.provenance.parameters == {"pixel_size_nm": PX, "zone": "100", "composition": "LiCoO2",
                                       "enhance": False, "noise_model": "poisson", "command": "phases"}
