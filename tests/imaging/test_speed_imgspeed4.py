"""Issue 19 speed with a wide probe (imgspeed4, session 39): two rearrangements that keep every number.

* ``columns._joint_windows`` cuts each block's rows into parts of ``JOINT_PART_ROWS`` on one thread too (before:
  the blocks whole there), so that a part's (rows x window pixels) arrays stay in a core's cache; the joint fit's
  centres, heights and backgrounds stay those of session 35's code (``test_joint_threads._old_refine_jointly``) bit
  for bit on 1 and 2 threads, at 128 rows (the default) and 9;
* ``columns._coarse_median`` (the residual pass's local level) runs its median in row strips, each read with the
  ``half`` rows beside it that its rows' windows need, and its smoothing in line strips, on ``JOINT_THREADS``
  threads (``LEVEL_STRIPS``, on): ``scipy.ndimage.median_filter`` then ``uniform_filter`` of the whole block image,
  bit for bit (an image with a NaN pixel), at the image's edges too; off: those filters themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from layerscope.imaging import columns as col
from test_joint_threads import SIGMA_PX, _old_refine_jointly, _scene, _start


@pytest.fixture(scope="module")
def scene():
    return _scene()


@pytest.mark.parametrize("threads, part_rows", [(1, 9), (1, 128), (2, 128), (2, 9)])
def test_joint_fit_in_parts_equals_session35_code(scene, monkeypatch, threads, part_rows):
    img, rows, cols = scene
    r, c, fixed = _start(rows, cols)
    monkeypatch.setattr(col, "JOINT_THREADS", threads)
    monkeypatch.setattr(col, "JOINT_PART_ROWS", part_rows)
    monkeypatch.setattr(col, "JOINT_REACH_WIDTHS", None)  # session 35's reach, as its code
    kw = dict(sigma_px=SIGMA_PX, radius_px=2.5 * SIGMA_PX, fixed=fixed)
    # the rows are read in parts of part_rows on any number of threads (base: one thread read each block whole)
    dy, dx = col.disc_offsets(2.5 * SIGMA_PX)
    pos = np.column_stack([r, c])
    parts = col._joint_windows(img, pos, np.vstack([pos, np.column_stack(fixed[:2])]), dy, dx, SIGMA_PX)
    assert max(p.sl.stop - p.sl.start for p in parts) == min(part_rows, r.size)
    new, old = col.refine_jointly(img, r, c, **kw), _old_refine_jointly(img, r, c, **kw)
    for a, b in zip(new, old):
        assert np.array_equal(a, b, equal_nan=True)  # every bit
    # and the fit works: the free centres' median distance to the truth 1.17 px at the start, < 0.2 px after
    free = np.arange(rows.size) % 5 != 0
    assert np.median(np.hypot(new[0] - rows[free], new[1] - cols[free])) < 0.2


def _scipy_level(values, factor, half):
    """Session 38's ``_coarse_median``: SciPy's filters on the whole block image."""
    h, w = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    blocks = values[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    size = 2 * half + 1
    return ndimage.uniform_filter(ndimage.median_filter(blocks, size=size, mode="nearest"), size=size, mode="nearest")


@pytest.mark.parametrize("threads, strips", [(2, True), (3, True), (2, False)])
@pytest.mark.parametrize("shape, factor, half", [((400, 372), 4, 4), ((61, 50), 3, 1), ((203, 117), 5, 6)])
def test_coarse_median_in_strips_equals_scipy(monkeypatch, threads, strips, shape, factor, half):
    rng = np.random.default_rng(7)
    img = rng.poisson(50.0 + 30.0 * np.sin(np.arange(shape[1]) / 9.0)[None, :], size=shape).astype(float)
    img[13, 17] = np.nan  # a NaN is read where SciPy reads it
    heights = []
    plain = ndimage.median_filter
    monkeypatch.setattr(ndimage, "median_filter", lambda a, **k: heights.append(a.shape[0]) or plain(a, **k))
    monkeypatch.setattr(col, "JOINT_THREADS", threads)
    monkeypatch.setattr(col, "LEVEL_STRIPS", strips, raising=False)
    got = col._coarse_median(img, factor, half)
    monkeypatch.setattr(ndimage, "median_filter", plain)
    want = _scipy_level(img, factor, half)
    assert np.array_equal(got, want, equal_nan=True)  # every bit
    # with LEVEL_STRIPS the median ran in strips (base: once, on all block rows), each at most its share plus 2 x
    # half rows; without, once on all
    n = shape[0] // factor
    if strips:
        assert len(heights) == threads and max(heights) <= -(-n // threads) + 2 * half + 1
    else:
        assert heights == [n]


@pytest.mark.parametrize("reach, most", [(None, 0.0), (4.0, 1e-3)])
def test_splat_reach_keeps_the_residual_image(scene, monkeypatch, reach, most):
    """``SPLAT_REACH_WIDTHS`` (measured, off): the residual image with the splat's blur cut at 4 widths stays within
    1e-3 of the columns' largest height of the full reach (8 widths; a tail 4 widths out is exp(-8) ~ 3e-4); None is
    the full reach itself; a cut at 1 width moves it by more than 5 % (a test that cannot tell them apart fails)."""
    img, rows, cols = scene
    full = col._residual_image(img, rows, cols, sigma_px=SIGMA_PX)
    monkeypatch.setattr(col, "SPLAT_REACH_WIDTHS", reach, raising=False)
    cut = col._residual_image(img, rows, cols, sigma_px=SIGMA_PX)
    top = full[1].max()
    assert np.array_equal(cut[1], full[1])  # the heights do not depend on the blur
    assert np.abs(cut[0] - full[0]).max() <= most * top
    assert np.abs(full[0]).mean() < 0.1 * top  # the columns come off: what is left is noise and the background
    monkeypatch.setattr(col, "SPLAT_REACH_WIDTHS", 1.0, raising=False)
    assert np.abs(col._residual_image(img, rows, cols, sigma_px=SIGMA_PX)[0] - full[0]).max() > 0.05 * top
