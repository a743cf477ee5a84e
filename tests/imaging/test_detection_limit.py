"""The image's detection limit -- the dimmest column that one neighbour distance from bright ones stands 3 standard
errors out of the noise in a joint fit -- and its flag ``dim_columns_below_limit`` (issue 19, imgflag;
docs/validation.md "imgflag"; :mod:`layerscope.imaging.detection_limit`).

The synthetic truth is exact: plain Gaussians (``imaging_synthetic.draw_columns``) of one width on a square lattice,
with Gaussian white noise of a known standard deviation, so the standard error of a column's least-squares height is
known by sampling the noise; the fit is written out here (a disc of 2 widths, the neighbours' heights free, a
constant), not the code under test's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from imaging_scenes import PX as O3_PX
from imaging_scenes import noisy, small_o3
from imaging_synthetic import draw_columns
from layerscope.cli import run
from layerscope.imaging import detection_limit as dl
from layerscope.imaging.generic import ColumnsOptions, analyse

PX = 0.0125       # nm per pixel
A = 0.25          # nm: square lattice (a spinel / mixed Li-layer column one such distance from TM columns)
SIGMA = 0.068     # nm: a 0.16 nm FWHM probe (wide)
N_SIDE = 32       # columns a side (8 nm field, 640 pixels)


def _sites() -> np.ndarray:
    g = (np.arange(N_SIDE) + 0.5) * A
    x, y = np.meshgrid(g, g)
    return np.column_stack([x.ravel(), y.ravel()])


def _fitted_heights(dim: float, noise: float, n: int, seed: int = 0) -> np.ndarray:
    """``n`` least-squares heights of a column of height ``dim`` at an interior site among columns of height 1, each
    with fresh white noise of ``noise``: a disc of 2 widths about the column's pixel, every column whose centre lies
    within 3 widths of the disc in the model with a free height, a constant."""
    xy = _sites()
    i0 = int(np.argmin(np.hypot(*(xy - 4.0).T)))  # the site nearest the field's centre
    cx, cy = xy[i0]
    r = 2 * SIGMA
    c = np.arange(int((cx - r) / PX) - 1, int((cx + r) / PX) + 2)
    row = np.arange(int((cy - r) / PX) - 1, int((cy + r) / PX) + 2)
    xx, yy = np.meshgrid((c + 0.5) * PX, (row + 0.5) * PX)
    disc = np.hypot(xx - (np.floor(cx / PX) + 0.5) * PX, yy - (np.floor(cy / PX) + 0.5) * PX) <= r
    xx, yy = xx[disc], yy[disc]
    near = np.nonzero(np.hypot(*(xy - [cx, cy]).T) <= r + 3 * SIGMA)[0]
    near = np.concatenate([[i0], near[near != i0]])
    a = np.column_stack([np.exp(-0.5 * ((xx - xy[j, 0]) ** 2 + (yy - xy[j, 1]) ** 2) / SIGMA**2) for j in near]
                        + [np.ones(xx.size)])
    heights = np.where(near == i0, dim, 1.0)
    clean = a[:, :-1] @ heights + 0.1
    rng = np.random.default_rng(seed)
    z = clean[None, :] + rng.normal(0.0, noise, (n, clean.size))
    return np.linalg.lstsq(a, z.T, rcond=None)[0][0]


def test_the_limit_is_three_standard_errors_of_the_fitted_height():
    """The limit's standard error (limit x median height / 3) is the spread of the dim column's fitted height over
    800 noise draws within 8 % (the spread's own sampling error is 2.5 %); a column at 1.3 x the limit stands at
    least 3 standard errors out in most draws, one at 0.7 x in few (the limit separates them)."""
    noise = 0.4
    lim = dl.detection_limit(_sites(), column_sigma_nm=SIGMA, pixel_noise=noise, median_height=1.0, pixel_size_nm=PX)
    se = lim.fraction / 3.0
    assert 0.2 < lim.fraction < 1.5  # a limit in the range that matters
    spread = float(np.std(_fitted_heights(0.5, noise, 800)))
    assert spread == pytest.approx(se, rel=0.08)
    above = _fitted_heights(1.3 * lim.fraction, noise, 800, seed=1) / se
    below = _fitted_heights(0.7 * lim.fraction, noise, 800, seed=2) / se
    assert np.mean(above >= 3.0) > 0.75
    assert np.mean(below >= 3.0) < 0.25
    assert lim.nn_distance_nm == pytest.approx(A, abs=1e-9)


def test_the_limit_grows_with_the_noise_and_the_width():
    """Linear in the noise over the height; at one integrated intensity (one dose: the height x the width squared)
    wider columns one spacing apart share more of their pixels and read a higher limit."""
    f = lambda s, n, h: dl.detection_limit(_sites(), column_sigma_nm=s, pixel_noise=n, median_height=h,  # noqa: E731
                                           pixel_size_nm=PX).fraction
    assert f(SIGMA, 0.8, 1.0) == pytest.approx(2 * f(SIGMA, 0.4, 1.0), rel=1e-9)
    assert f(SIGMA, 0.4, 2.0) == pytest.approx(0.5 * f(SIGMA, 0.4, 1.0), rel=1e-9)
    assert f(0.034, 0.4, (SIGMA / 0.034) ** 2) < 0.5 * f(SIGMA, 0.4, 1.0)


def _image(sigma_nm: float, noise: float, seed: int = 0) -> np.ndarray:
    """The lattice, every column of one integrated intensity (a height of 1 at :data:`SIGMA`), white noise."""
    xy = _sites()
    n = int(round(N_SIDE * A / PX))
    img = draw_columns((n, n), xy[:, 0], xy[:, 1], (SIGMA / sigma_nm) ** 2, pixel_size_nm=PX, sigma_nm=sigma_nm,
                       background=0.1)
    return img + np.random.default_rng(seed).normal(0.0, noise, img.shape)


@pytest.mark.parametrize("noise, flagged", [(0.6, True), (0.25, False)])
def test_columns_reports_the_limit_from_the_image_alone(noise, flagged):
    """``generic.analyse`` on the wide lattice: the limit it reports from its own width, noise, heights and columns
    within 15 % of the limit of the truth (width, noise, height 1, positions); flagged above 0.5 only."""
    res = analyse(_image(SIGMA, noise), ColumnsOptions(), pixel_size_nm=PX)
    truth = dl.detection_limit(_sites(), column_sigma_nm=SIGMA, pixel_noise=noise, median_height=1.0,
                               pixel_size_nm=PX).fraction
    got = res.summary()["detection_limit"]
    assert got["fraction_of_median_column"] == pytest.approx(truth, rel=0.15)
    assert got["column_sigma_nm"] == pytest.approx(SIGMA, rel=0.1)
    assert got["pixel_noise"] == pytest.approx(noise, rel=0.05)
    assert ("dim_columns_below_limit" in [f["code"] for f in res.flags]) is flagged
    assert (truth > dl.FLAG_FRACTION) is flagged


def test_a_narrow_probe_image_does_not_flag():
    """The same lattice, dose and noise that flag under a wide probe, with a 0.08 nm FWHM probe's width (0.034 nm;
    the columns' integrated intensity kept): the columns stand apart and the limit is below the flag's level."""
    res = analyse(_image(0.034, 0.6), ColumnsOptions(), pixel_size_nm=PX)
    assert res.summary()["detection_limit"]["fraction_of_median_column"] < dl.FLAG_FRACTION
    assert "dim_columns_below_limit" not in [f["code"] for f in res.flags]


def test_switched_off_nothing_is_added(monkeypatch):
    """``DETECTION_LIMIT`` off: no summary key, no flag; the column table equal to the one with it on."""
    img = _image(SIGMA, 0.25)
    on = analyse(img, ColumnsOptions(), pixel_size_nm=PX)
    monkeypatch.setattr(dl, "DETECTION_LIMIT", False)
    off = analyse(img, ColumnsOptions(), pixel_size_nm=PX)
    assert "detection_limit" not in off.summary()
    assert "dim_columns_below_limit" not in [f["code"] for f in off.flags]
    assert on.columns.equals(off.columns)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgflag")
    np.save(d / "wide.npy", _image(SIGMA, 0.6))
    np.save(d / "o3.npy", noisy(small_o3(), 1e4, seed=1))
    return d


def test_columns_cli_summary_and_report_carry_the_limit_and_flag(files, capsys):
    out = files / "c"
    assert run(["columns", str(files / "wide.npy"), "--pixel-size-nm", str(PX), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "FLAG dim_columns_below_limit:" in line and "narrower probe or a higher dose" in line
    s = json.loads((out / "summary.json").read_text())
    assert s["detection_limit"]["fraction_of_median_column"] > dl.FLAG_FRACTION
    assert "dim_columns_below_limit" in [f["code"] for f in s["flags"]]
    html = (out / "report.html").read_text()
    assert "detection limit" in html and "dim_columns_below_limit" in html


def test_phases_narrow_probe_reports_the_limit_without_a_flag(files, capsys):
    """``layerscope phases`` on a 0.08 nm probe's O3 image at 1e4 e/A^2: the limit in summary.json and the report,
    well below the level; no flag, no flag line."""
    out = files / "p"
    assert run(["phases", str(files / "o3.npy"), "--pixel-size-nm", str(O3_PX), "--out", str(out)]) == 0
    assert "dim_columns_below_limit" not in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert 0 < s["detection_limit"]["fraction_of_median_column"] < dl.FLAG_FRACTION
    assert "dim_columns_below_limit" not in [f["code"] for f in s["flags"]]
    assert "detection limit" in (out / "report.html").read_text()


def test_phases_flag_reaches_the_cli_summary_and_report(files, capsys, monkeypatch):
    """The flag's wiring in ``phases``: with the level set below the image's limit it is in the CLI line,
    summary.json's flags and the report."""
    monkeypatch.setattr(dl, "FLAG_FRACTION", 0.0)
    out = files / "p_flag"
    assert run(["phases", str(files / "o3.npy"), "--pixel-size-nm", str(O3_PX), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "FLAG dim_columns_below_limit:" in line and "layerscope phases places the Li-layer" in line
    s = json.loads((out / "summary.json").read_text())
    assert "dim_columns_below_limit" in [f["code"] for f in s["flags"]]
    assert s["detection_limit"]["flag_above"] == 0.0
    assert "dim_columns_below_limit" in (out / "report.html").read_text()
