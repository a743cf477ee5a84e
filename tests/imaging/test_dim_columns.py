"""Dim columns one lattice spacing from bright ones: the detector's lattice-neighbour test (issue 19, helper
recall4; docs/validation.md, section "recall4").

A constructed Poisson image: layers of bright columns (amplitude 1) 0.25 nm apart, 0.47 nm between layers;
half-way between two layers a layer of dim columns (a half-occupied spinel-like Li layer, amplitude
``DIM``), 0.27 nm (1.07 spacings) from their nearest bright columns; O-like columns (0.08) 0.12 nm from
the bright ones; an empty vacuum strip. Truth is known exactly, so recall and precision are exact counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from layerscope.imaging import columns as col

PX, A, C, S = 0.0125, 0.25, 0.47, 0.03  # pixel, in-plane spacing, layer spacing, column width (nm)
DIM = 0.25  # dim column amplitude relative to a bright one (its maxima read 0.21-0.29 of the reference)


def _scene(seed: int, counts: float = 40.0, n: int = 480):
    """Image (Poisson counts, ``counts`` at a bright column's peak over a 0.1 background), bright, dim, O positions (nm)."""
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[:n, :n] + 0.5) * PX
    width = n * PX
    crystal = width * 0.7  # vacuum beyond x = 0.7 of the field
    bright = np.array([(x, y) for y in np.arange(0.2, width - 0.1, C) for x in np.arange(0.15, crystal, A)])
    dim = np.array([(x + A / 2, y + C / 2) for x, y in bright if y + C / 2 < width - 0.1 and x + A / 2 < crystal])
    oxy = np.array([(x, y + 0.12) for x, y in bright] + [(x, y - 0.12) for x, y in bright])
    lam = np.full((n, n), 0.1)
    for xy, amp in ((bright, 1.0), (dim, DIM), (oxy, 0.08)):
        for x, y in xy:
            lo, hi = np.floor((np.array([y, x]) - 5 * S) / PX).astype(int), np.ceil((np.array([y, x]) + 5 * S) / PX).astype(int)
            r0, r1, c0, c1 = max(lo[0], 0), min(hi[0], n), max(lo[1], 0), min(hi[1], n)
            lam[r0:r1, c0:c1] += amp * np.exp(-((xx[r0:r1, c0:c1] - x) ** 2 + (yy[r0:r1, c0:c1] - y) ** 2) / (2 * S * S))
    return rng.poisson(lam * counts).astype(float), bright, dim, oxy


def _scores(det, bright, dim, margin=0.15, n=480):
    """Recall of the bright and dim columns (a detection within 0.07 nm), and the number of detections farther
    than 0.07 nm from every bright or dim column, all counted more than ``margin`` nm inside the field."""
    xy = np.column_stack([(det.cols + 0.5) * PX, (det.rows + 0.5) * PX])
    width = n * PX

    def inside(p):
        return (p[:, 0] > margin) & (p[:, 1] > margin) & (p[:, 0] < width - margin) & (p[:, 1] < width - margin)

    tree = cKDTree(xy)
    rec = [float(np.mean(tree.query(t[inside(t)])[0] < 0.07)) for t in (bright, dim)]
    d, _ = cKDTree(np.vstack([bright, dim])).query(xy[inside(xy)])
    return rec[0], rec[1], int(np.sum(d >= 0.07))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dim_columns_one_spacing_from_bright_ones_are_found(seed):
    image, bright, dim, _ = _scene(seed)
    kw = dict(pixel_size_nm=PX, min_separation_nm=0.85 * A, column_sigma_nm=S)
    plain = col.detect_columns(image, **kw)
    det = col.detect_columns(image, neighbour_nm=A, **kw)
    rb0, rd0, false0 = _scores(plain, bright, dim)
    rb, rd, false = _scores(det, bright, dim)
    # the relative test alone (0.3 of the local reference) loses the dim columns: their maxima read 0.19-0.28
    assert rd0 < 0.05
    # with the lattice-neighbour test: every bright and at least 98 % of the dim columns (1 of 96 reads 0.187 on
    # seed 2, below NEIGHBOUR_SHARE x 0.3); no detection added on an O column (0.12 nm = 0.48 spacings from a
    # bright one) or in the vacuum strip (the first pass's own 0-1 noise maxima there are unchanged)
    assert rb == 1.0 and rb0 == 1.0
    assert rd >= 0.98
    assert false == false0 <= 1
    # the flag marks exactly the added maxima; the first pass's maxima are unchanged
    assert det.neighbour is not None and int(det.neighbour.sum()) == det.rows.size - plain.rows.size
    first = ~det.neighbour
    assert np.array_equal(np.sort(det.rows[first] * 10_000 + det.cols[first]), np.sort(plain.rows * 10_000 + plain.cols))


def test_neighbour_band_excludes_o_columns_at_high_dose():
    # at 50x the dose every O column (0.08 of a bright one) is a significant maximum; they lie 0.48 spacings
    # from a bright column, outside NEIGHBOUR_BAND, and below NEIGHBOUR_SHARE of the relative threshold
    image, bright, dim, oxy = _scene(3, counts=2000.0)
    det = col.detect_columns(image, pixel_size_nm=PX, min_separation_nm=0.85 * A, column_sigma_nm=S, neighbour_nm=A)
    rb, rd, false = _scores(det, bright, dim)
    assert rb == 1.0 and rd == 1.0 and false == 0
    assert not np.any(cKDTree(oxy).query(np.column_stack([(det.cols + 0.5) * PX, (det.rows + 0.5) * PX]))[0] < 0.05)


def test_find_columns_reports_unfitted_neighbours_at_their_pixel():
    image, bright, dim, _ = _scene(4)
    kw = dict(pixel_size_nm=PX, min_separation_nm=0.85 * A, column_sigma_nm=S, neighbour_nm=A)
    fitted = col.find_columns(image, **kw)
    unfitted = col.find_columns(image, fit_neighbours=False, **kw)
    plain = col.find_columns(image, pixel_size_nm=PX, min_separation_nm=0.85 * A, column_sigma_nm=S)
    nb = unfitted["neighbour_pass"].to_numpy()
    assert nb.sum() > 0 and nb.sum() == fitted["neighbour_pass"].sum()
    assert not unfitted.loc[nb, "fit_ok"].any() and unfitted.loc[nb, "amplitude"].isna().all()
    # without fitting them, the other columns' fits are those of the detector without the test (to 1e-9 nm)
    a = unfitted.loc[~nb, ["x_nm", "y_nm"]].sort_values(["y_nm", "x_nm"]).to_numpy()
    b = plain[["x_nm", "y_nm"]].sort_values(["y_nm", "x_nm"]).to_numpy()
    assert a.shape == b.shape and np.allclose(a, b, atol=1e-9)
    # the dim columns' fitted positions lie within 0.03 nm of their truth (RMS), their pixels within 0.02 nm
    d_fit, _ = cKDTree(dim).query(fitted.loc[fitted["neighbour_pass"], ["x_nm", "y_nm"]].to_numpy())
    assert np.sqrt(np.mean(d_fit ** 2)) < 0.03
