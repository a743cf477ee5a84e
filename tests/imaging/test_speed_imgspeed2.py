"""Issue 19 speed with a wide probe (imgspeed2, session 37): each rearrangement computes exactly the numbers of the
code it replaces (its switch off), and those numbers still measure the scene's truth.

* ``columns.JOINT_SHARED``: within a round of ``refine_jointly`` the heights' window readings hand their sources'
  1-D profiles and each column's masked Gaussian to the centres' steps (``_joint_block``) -- the same centres,
  heights and backgrounds bit for bit, on 1 and 2 threads and with several blocks;
* ``columns.WIDTH_THREADS``: the width grids' sums (``_site_residuals``) and the valley search's residuals
  (``_valley_minimum``) read on threads -- the same widths bit for bit (``measure_column_width``,
  ``measure_lattice_width``, ``measure_width_heights_free``);
* ``columns.LEVEL_BESIDE``: the residual pass's local level (a median filter) on a thread beside its blur -- the same
  columns;
* ``_gaussian_squares`` given the profiles (``_source_profiles``) equals it computing them.

The scene (``test_joint_threads``'s): plain Gaussians of width 4 pixels on a constant background, Poisson counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging import columns as col

from test_joint_threads import N, SIGMA_PX, STEP, _scene, _start, _truth_heights


@pytest.fixture(scope="module")
def scene():
    return _scene()


@pytest.mark.parametrize("threads, budget", [(1, None), (2, None), (2, 1 << 14)])
def test_refine_jointly_shared_equals_unshared_bit_for_bit(scene, monkeypatch, threads, budget):
    img, rows, cols = scene
    r, c, fixed = _start(rows, cols)
    monkeypatch.setattr(col, "JOINT_THREADS", threads)
    monkeypatch.setattr(col, "JOINT_PART_ROWS", 9)
    if budget is not None:  # several blocks, each with its own neighbour padding
        monkeypatch.setattr(col, "_JOINT_BUDGET", budget)
    kw = dict(sigma_px=SIGMA_PX, radius_px=2.5 * SIGMA_PX, fixed=fixed)
    out = {}
    for shared in (False, True):
        monkeypatch.setattr(col, "JOINT_SHARED", shared)
        out[shared] = col.refine_jointly(img, r, c, **kw)
    for a, b in zip(out[True], out[False]):
        assert np.array_equal(a, b, equal_nan=True)  # exact: every bit
    # and the fit did its work: the free centres' median distance to their truth 1.17 px at the start, < 0.2 after
    free = np.arange(rows.size) % 5 != 0
    err = np.hypot(out[True][0] - rows[free], out[True][1] - cols[free])
    assert np.median(np.hypot(r - rows[free], c - cols[free])) > 1.0 and np.median(err) < 0.2


def test_gaussian_squares_given_profiles_equal_computed():
    rng = np.random.default_rng(1)
    n, m, r = 40, 9, 6
    r0, c0 = rng.integers(20, 80, n), rng.integers(20, 80, n)
    k = np.arange(-r, r + 1)
    src = np.stack([r0[:, None] + rng.uniform(-15, 15, (n, m)), c0[:, None] + rng.uniform(-15, 15, (n, m))], axis=-1)
    weight = rng.uniform(0, 500, (n, m)) * (rng.random((n, m)) > 0.2)
    given = col._gaussian_squares(r0, c0, k, src, weight, 3.3, profiles=col._source_profiles(r0, c0, k, src, 3.3))
    assert np.array_equal(given, col._gaussian_squares(r0, c0, k, src, weight, 3.3))


def _sites(rows, cols, every=3):
    pick = np.arange(rows.size) % every == 0
    return rows[pick] + 0.3, cols[pick] - 0.2


@pytest.mark.parametrize("threads", [2, 3])
def test_width_measurements_on_threads_equal_one_after_another(scene, monkeypatch, threads):
    img, rows, cols = scene
    monkeypatch.setattr(col, "JOINT_THREADS", threads)
    sr, sc = _sites(rows, cols)
    calls = {
        "column": lambda: col.measure_column_width(img, sr, sc, radius_px=2.0 * SIGMA_PX, sigma_px=3.0),
        "lattice": lambda: col.measure_lattice_width(img, sr, sc, rows, cols, radius_px=3.5 * SIGMA_PX, sigma_px=3.5),
        "heights free": lambda: col.measure_width_heights_free(img, sr, sc, rows, cols, radius_px=3.5 * SIGMA_PX,
                                                               sigma_px=3.5),
    }
    for name, call in calls.items():
        monkeypatch.setattr(col, "WIDTH_THREADS", False)
        before = call()
        monkeypatch.setattr(col, "WIDTH_THREADS", True)
        assert call() == before, name  # exact
        if name != "column":  # the neighbours in the model: the truth's width within 3 %
            assert abs(before / SIGMA_PX - 1) < 0.03, (name, before)


def test_valley_search_reads_the_same_widths_together(monkeypatch):
    """The search's answer and the set of residuals it reads do not depend on reading them together; on a valley
    that is a parabola in log width it lands on the bottom (4.1 pixels) to rounding."""
    grid = np.geomspace(2.0, 6.0, 25)
    seen = {}
    for together in (False, True):
        res = np.full(grid.size, np.nan)
        read = []

        def residual(k):
            if np.isnan(res[k]):
                read.append(k)
                res[k] = (np.log(grid[k]) - np.log(4.1)) ** 2
            return res[k]

        monkeypatch.setattr(col, "WIDTH_THREADS", together)
        seen[together] = (col._valley_minimum(grid, residual), sorted(read))
    assert seen[True] == seen[False]
    assert abs(seen[True][0] / 4.1 - 1) < 1e-9


def test_residual_pass_level_beside_equals_after(scene, monkeypatch):
    img, rows, cols = scene
    fit = pd.DataFrame({"row": rows + 0.2, "col": cols - 0.1, "sigma_px": SIGMA_PX * 0.8,
                        "amplitude": 400.0 * np.array(_truth_heights()), "fit_ok": True})
    hidden = np.arange(len(fit)) % 6 == 3
    fit = fit[~hidden].reset_index(drop=True)  # hidden columns for the pass to find
    tests = dict(pixel_size_nm=0.0125, column_sigma_nm=SIGMA_PX * 0.0125, neighbour_nm=STEP * 0.0125,
                 min_separation_nm=0.85 * STEP * 0.0125, noise_sigmas=5.0, relative_threshold=0.3)
    out = {}
    for beside in (False, True):
        monkeypatch.setattr(col, "LEVEL_BESIDE", beside)
        out[beside] = col.residual_columns(img, fit, **tests)
    pd.testing.assert_frame_equal(out[True], out[False], check_exact=True)
    # what it finds lies on hidden columns (within 1.5 pixels)
    found = out[True][["row", "col"]].to_numpy()
    truth = np.column_stack([rows[hidden], cols[hidden]])
    assert len(found) >= 1
    assert np.all(np.min(np.hypot(*(found[:, None, :] - truth[None]).transpose(2, 0, 1)), axis=1) < 1.5)
    assert N == 160  # the scene's size these numbers were read on
