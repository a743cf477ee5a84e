"""Issue 19 speed with a wide probe (imgspeed2, session 37): each rearrangement computes exactly the numbers of the
code it replaces (its switch off), and those numbers still measure the scene's truth.

* ``columns.JOINT_SHARED``: within a round of ``refine_jointly`` the heights' window readings hand their sources'
  1-D profiles and each column's masked Gaussian to the centres' steps (``_joint_block``) -- the same centres,
  heights and backgrounds bit for bit, on 1 and 2 threads and with several blocks;
* ``_gaussian_squares`` given the profiles (``_source_profiles``) equals it computing them.

The scene (``test_joint_threads``'s): plain Gaussians of width 4 pixels on a constant background, Poisson counts.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.imaging import columns as col

from test_joint_threads import SIGMA_PX, _scene, _start


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
