"""The heights-free width measurement's cost (issue 19, imgwspeed): ``columns.WIDTH_HEIGHTS_REACH`` (the heights
and the sites' residual read with the sources within a few trial widths) and ``columns.gather_windows``'s flat read.

The synthetic truth is exact: imgwidth's lattice of Gaussian columns (0.068 nm, layers of alternately bright and dim
columns, heights 1 and 0.4; tests/imaging/test_width_heights_free.py) at their true centres. The heights are checked
against a direct dense solve written here (every Gaussian in full, no reach), the width against the full reading.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.imaging import columns as col
from test_width_heights_free import PX, SIGMA, _fit


def _dense_heights(data, pos, dy, dx, sigma):
    """Each column's height with every other column's Gaussian in its window's model, solved densely: per window
    ``(A_i, B_i)`` the least squares of ``[g_i, 1]`` on ``z_i - sum_j A_j g_j`` (disc ``dy, dx`` around the nearest
    pixel, inside the image), every Gaussian in full."""
    n = len(pos)
    system, rhs = np.eye(n), np.zeros(n)
    for i, (r, c) in enumerate(pos):
        rr, cc = np.rint(r) + dy, np.rint(c) + dx
        ok = (rr >= 0) & (rr < data.shape[0]) & (cc >= 0) & (cc < data.shape[1])
        rr, cc = rr[ok], cc[ok]
        t = np.exp(-0.5 * ((rr[None] - pos[:, 0, None]) ** 2 + (cc[None] - pos[:, 1, None]) ** 2) / sigma**2)
        design = np.column_stack([t[i], np.ones(rr.size)])
        a_row = np.linalg.pinv(design)[0]  # A_i as a linear map of the window's values
        rhs[i] = a_row @ data[rr.astype(int), cc.astype(int)]
        others = np.arange(n) != i
        system[i, others] += t[others] @ a_row
    return np.linalg.solve(system, rhs)


@pytest.mark.parametrize("reach, tol", [(None, 1e-9), (4.0, 1e-4)])
def test_heights_equal_a_dense_solve(reach, tol):
    # a 200^2 corner of the lattice (72 columns), the height windows of 2.5 widths. The sparse solve against the dense
    # one, max relative difference: every source (8 widths) 2.6e-15 (tolerance 1e-9); sources within 4 widths 1.3e-5
    # (tolerance 1e-4); a reach cut too short fails it: 2 widths 7e-4, 1 width 0.39 (checked with 1 below)
    img, fit = _fit(0.4)
    pos = fit[["row", "col"]].to_numpy()
    keep = (pos < 200).all(1)
    data, pos = np.ascontiguousarray(img[:200, :200], float), pos[keep]
    s = SIGMA / PX
    dy, dx = col.disc_offsets(col.RESIDUAL_HEIGHT_WIDTHS * s)
    dense = _dense_heights(data, pos, dy, dx, s)
    amp, _ = col._joint_heights(data, pos, np.zeros((0, 2)), np.zeros(0), dy, dx, s, reach=reach)
    assert np.max(np.abs(amp - dense) / np.abs(dense)) < tol
    short, _ = col._joint_heights(data, pos, np.zeros((0, 2)), np.zeros(0), dy, dx, s, reach=1.0)
    assert np.max(np.abs(short - dense) / np.abs(dense)) > 1e-4


@pytest.mark.parametrize("dose", [None, 60.0])
def test_width_with_a_short_reach_equals_the_full_reading(dose, monkeypatch):
    # the shared width read with the heights and the sites' residual from the sources within 4 trial widths against
    # every source (GAUSSIAN_REACH): measured relative differences -8.0e-7 / -5.2e-7 here (noiseless / Poisson; at most
    # 6.9e-6 on the 38 wide tuning draws); tolerance 1e-5
    img, fit = _fit(0.4, dose)
    widths = {}
    for reach in (None, 4.0):
        monkeypatch.setattr(col, "WIDTH_HEIGHTS_REACH", reach)
        widths[reach] = col._found_width(img, fit)
    assert widths[4.0] == pytest.approx(widths[None], rel=1e-5)
    assert widths[None] * PX == pytest.approx(SIGMA, rel=0.02)


def test_gather_reads_the_fancy_index_values():
    # the flat read equals data[rows, cols] to the bit, windows over the edges included; a non-contiguous image too
    rng = np.random.default_rng(0)
    data = rng.normal(size=(64, 80))
    r0, c0 = rng.integers(-5, 70, 50), rng.integers(-5, 85, 50)
    dy, dx = col.disc_offsets(6.5)
    for image in (data, data[:, ::2], data.astype(np.float32)):
        z, yy, xx, valid = col.gather_windows(image, r0, c0, dy, dx)
        rr, cc = r0[:, None] + dy, c0[:, None] + dx
        want = image[np.clip(rr, 0, image.shape[0] - 1), np.clip(cc, 0, image.shape[1] - 1)]
        assert z.dtype == want.dtype and np.array_equal(z, want)
        assert np.array_equal(yy, rr.astype(float)) and np.array_equal(valid, (rr >= 0) & (rr < image.shape[0])
                                                                        & (cc >= 0) & (cc < image.shape[1]))
