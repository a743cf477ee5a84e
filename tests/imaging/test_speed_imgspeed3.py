"""Issue 19 speed with a wide probe (imgspeed3, session 38): sums of Gaussians cut at a stated reach in column widths
instead of ``columns.GAUSSIAN_REACH`` (8) -- ``columns.JOINT_REACH_WIDTHS`` (the joint fit's sources within that many
widths of each window's square), ``columns.RESIDUAL_REACH_WIDTHS`` (the residual pass's heights) and
``pipeline.LEAK_REACH_WIDTHS`` (the wide probe's lattice leaks): each keeps the full reach's numbers to a stated
tolerance at 4 widths, and a short reach moves them (the reach is applied).

The joint fit's scene (``test_joint_threads``'s): plain Gaussians of width 4 pixels on a constant background, Poisson counts;
windows of 2.5 widths as the pipeline's. Read on it: 4 widths moves no centre by more than 3.3e-8 pixels from the full
reach (heights by 4e-9 relative) with 897 of 2202 window-source pairs; 2 widths moves centres by up to 0.087 pixels
(the reach is applied: a source 2 widths past the square is not negligible).
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.imaging import columns as col

from test_joint_threads import SIGMA_PX, _scene, _start


@pytest.fixture(scope="module")
def fits():
    img, rows, cols = _scene()
    r, c, fixed = _start(rows, cols)
    kw = dict(sigma_px=SIGMA_PX, radius_px=2.5 * SIGMA_PX, fixed=fixed)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for reach in (None, 4.0, 2.0):
            mp.setattr(col, "JOINT_REACH_WIDTHS", reach)
            out[reach] = col.refine_jointly(img, r, c, **kw)
    return out, (img, r, c, fixed), rows, cols


def test_reach_4_widths_keeps_the_full_reach_centres_and_heights(fits):
    out, _, rows, cols = fits
    full, cut = out[None], out[4.0]
    assert np.max(np.hypot(cut[0] - full[0], cut[1] - full[1])) < 1e-6  # pixels; read 3.3e-8
    assert np.max(np.abs(cut[2] - full[2])) < 1e-6 * np.max(np.abs(full[2]))  # read 4e-9
    free = np.arange(rows.size) % 5 != 0  # and at the truth: median < 0.2 px (the start 1.17 px off)
    assert np.median(np.hypot(cut[0] - rows[free], cut[1] - cols[free])) < 0.2


def test_reach_is_applied_fewer_sources_and_a_short_reach_moves_centres(fits):
    out, (img, r, c, fixed), _, _ = fits
    full, short = out[None], out[2.0]
    assert np.max(np.hypot(short[0] - full[0], short[1] - full[1])) > 0.01  # read 0.087 px
    pos = np.column_stack([r, c])
    src = np.vstack([pos, np.column_stack(fixed[:2])])
    dy, dx = col.disc_offsets(2.5 * SIGMA_PX)
    pairs = {reach: sum(int(w.used.sum()) for w in col._joint_windows(img, pos, src, dy, dx, SIGMA_PX, reach=reach))
             for reach in (None, 4.0)}
    assert pairs[4.0] < 0.5 * pairs[None]  # read 897 of 2202


def test_residual_reach_4_widths_keeps_the_residual_image():
    """``columns.RESIDUAL_REACH_WIDTHS``: the residual pass's heights from the sources within 4 widths give the residual
    image of the full reach to 1e-4 counts (read 1.7e-6; the image's peak 450 counts) and its heights to 1e-6 relative
    (read 4e-9); 2 widths moves it by over 1 count (read 5.2: the reach is applied)."""
    img, rows, cols = _scene()
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for reach in (None, 4.0, 2.0):
            mp.setattr(col, "RESIDUAL_REACH_WIDTHS", reach)
            out[reach] = col._residual_image(img, rows + 0.2, cols - 0.1, sigma_px=SIGMA_PX)
    full = out[None]
    assert np.max(np.abs(out[4.0][0] - full[0])) < 1e-4
    assert np.max(np.abs(out[4.0][1] - full[1])) < 1e-6 * np.max(full[1])
    assert np.max(np.abs(out[2.0][0] - full[0])) > 1.0


def test_leak_reach_4_widths_keeps_the_lattice_leaks():
    """``pipeline.LEAK_REACH_WIDTHS``: the Li-layer sites' readings of the TM columns' unit Gaussians (a 0.15 nm probe,
    the TM lattice of test_wide_probe_window) summed over the columns within 4 widths equal the full reach's to 1e-6
    (read 6.9e-8; the largest reading 0.041); within 1 width the neighbours' tails are lost (the reach is applied)."""
    from layerscope.imaging import pipeline as pl

    from test_wide_probe_window import PX, _lattice

    _, tm_xy, li_xy = _lattice(0.0)
    sigma_nm = 0.064
    kw = dict(shape=(250, 280), px=PX, sigma_nm=sigma_nm, radius_nm=pl.SITE_WINDOW_WIDTHS * sigma_nm)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for reach in (None, 4.0, 1.0):
            mp.setattr(pl, "LEAK_REACH_WIDTHS", reach)
            out[reach] = pl._unit_readings(li_xy, tm_xy, **kw)
    assert np.nanmax(np.abs(out[None])) > 0.03
    np.testing.assert_allclose(out[4.0], out[None], rtol=0, atol=1e-6)
    assert np.nanmax(np.abs(out[1.0] - out[None])) > 0.01


def test_one_gauss_newton_step_a_round_keeps_the_centres_near_two_steps(monkeypatch):
    """``columns.JOINT_STEPS`` (measured): one Gauss-Newton step of each centre per round instead of two. On the joint
    fit's scene (started 1.17 px off) 4 rounds of one step land within 0.2 px of the two steps' centres (read 0.093
    px at most, 0.0066 median) and as near the truth (median 0.093 against 0.092 px; RMS 0.132 against 0.130); the
    step count is applied (the centres differ by more than 0.01 px somewhere)."""
    img, rows, cols = _scene()
    r, c, fixed = _start(rows, cols)
    kw = dict(sigma_px=SIGMA_PX, radius_px=2.5 * SIGMA_PX, fixed=fixed)
    out = {}
    for steps in (2, 1):
        monkeypatch.setattr(col, "JOINT_STEPS", steps)
        out[steps] = col.refine_jointly(img, r, c, **kw)
    d = np.hypot(out[1][0] - out[2][0], out[1][1] - out[2][1])
    assert 0.01 < np.max(d) < 0.2
    free = np.arange(rows.size) % 5 != 0
    err = {k: np.hypot(v[0] - rows[free], v[1] - cols[free]) for k, v in out.items()}
    assert np.median(err[1]) < 0.1 and np.sqrt(np.mean(err[1] ** 2)) < 1.05 * np.sqrt(np.mean(err[2] ** 2))
