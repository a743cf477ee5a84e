"""Columns cut by the image border (issue 19, recall2): flagged, never reported as a column inside.

A square lattice of Gaussian columns (0.25 nm spacing, width 0.04 nm, 0.01 nm pixels) is drawn with
its first row and column centred 0.02 or 0.05 nm outside the top and left edges: their tails leave
maxima on the edge pixels, fitted there from one flank (noise-free exactly, outside the field; with
shot noise anywhere near the edge). Truth is analytic (``imaging_synthetic.draw_columns``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from imaging_synthetic import draw_columns
from layerscope.imaging.columns import BORDER_WIDTHS, border_columns, find_columns

PX = 0.01  # nm per pixel
SIGMA = 0.04  # nm, column width
SPACING = 0.25  # nm
SHAPE = (200, 200)  # 2 x 2 nm


def _scene(dose_scale=None, seed=0, outside_nm=0.02):
    g = np.arange(-outside_nm, 2.2, SPACING)  # first row and column outside the field
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    image = draw_columns(SHAPE, x, y, 1.0, pixel_size_nm=PX, sigma_nm=SIGMA, background=0.05)
    if dose_scale is not None:
        image = np.random.default_rng(seed).poisson(image * dose_scale).astype(float)
    return x, y, image


@pytest.mark.parametrize(("dose_scale", "outside_nm"), [(None, 0.02), (400.0, 0.02), (400.0, 0.05)])
def test_border_maxima_are_flagged_and_the_rest_are_true(dose_scale, outside_nm):
    x, y, image = _scene(dose_scale, outside_nm=outside_nm)
    tab = find_columns(image, pixel_size_nm=PX, min_separation_nm=0.9 * SPACING, column_sigma_nm=SIGMA)
    inside = (x >= 0) & (x < 2.0) & (y >= 0) & (y < 2.0)
    d, i = cKDTree(np.column_stack([x, y])).query(tab[["x_nm", "y_nm"]].to_numpy())
    kept = ~tab["at_border"].to_numpy()
    # The maxima of the columns outside the field exist (the case this guards) and are all flagged.
    outside_hit = ~inside[i]
    assert outside_hit.sum() >= 10
    assert not (outside_hit & kept).any()
    # Every column kept is a column of the field, within 5 pm (noise-free: < 0.5 pm).
    tol_pm = 0.5 if dose_scale is None else 5.0
    assert np.sqrt(np.mean(d[kept] ** 2)) * 1e3 < tol_pm
    assert d[kept].max() * 1e3 < 4 * tol_pm
    # Every column of the field 1.5 widths or more from the edges is found and kept.
    edge = np.minimum.reduce([x, y, 2.0 - x, 2.0 - y])
    want = inside & (edge >= BORDER_WIDTHS * SIGMA + 0.005)
    found = np.zeros(x.size, bool)
    found[i[kept & (d < 0.02)]] = True
    assert found[want].all()


def test_border_columns_rule():
    x = np.array([0.03, 0.07, 1.0, 1.95, -0.01])
    y = np.array([1.0, 1.0, 0.059, 1.0, 1.0])
    sig = np.array([0.04, 0.04, np.nan, 0.04, 0.04])  # median 0.04 nm: border band 0.06 nm
    got = border_columns(x, y, sig, shape=(200, 200), pixel_size_nm=PX)
    np.testing.assert_array_equal(got, [True, False, True, True, True])


def test_columns_cli_counts_the_border_columns(tmp_path, capsys):
    # Wiring: the generic `columns` command reports the at_border rows in summary.json and its CLI line.
    # The first row and column (17 columns) lie 0.02 nm outside the field and leave maxima on its edge.
    import json

    import pandas as pd

    from layerscope.cli import run

    _, _, image = _scene(400.0, outside_nm=0.02)
    src = tmp_path / "square.npy"
    np.save(src, image)
    assert run(["columns", str(src), "--pixel-size-nm", str(PX), "--no-figures", "--out", str(tmp_path / "c")]) == 0
    table = pd.read_csv(tmp_path / "c" / "columns.csv")
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    n_edge = int(table["at_border"].sum())
    assert n_edge >= 10 and summary["columns"]["at_border"] == n_edge
    assert f"{n_edge} cut by the image edge" in capsys.readouterr().out


def test_columns_report_states_the_border_count(tmp_path):
    # Wiring: with figures, `columns` writes report.html whose metrics carry the same at_border count
    # as summary.json, and overlay.png (the at_border columns drawn apart).
    import json
    import re

    from layerscope.cli import run

    _, _, image = _scene(400.0, outside_nm=0.02)
    src = tmp_path / "square.npy"
    np.save(src, image)
    assert run(["columns", str(src), "--pixel-size-nm", str(PX), "--out", str(tmp_path / "c")]) == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    html = (tmp_path / "c" / "report.html").read_text()
    assert (tmp_path / "c" / "overlay.png").stat().st_size > 1000
    m = re.search(r"<b>(\d+)</b><span>columns cut by the image edge \(at_border", html)
    assert m, "the at_border metric is missing from report.html"
    assert int(m.group(1)) == summary["columns"]["at_border"] >= 10
    assert f"{summary['columns']['detected']}" in html
