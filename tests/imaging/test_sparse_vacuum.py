"""Sparse counts: noise maxima alone in vacuum need the full noise margin (issue 19, imgrecall5).

On sparse counts (:func:`layerscope.imaging.columns.is_count_image`, under ~0.4 counts a pixel) the
detector's noise margin is lowered to ``SPARSE_COUNT_SHARE`` (2 of 5 Poisson spreads) for dim columns
beside the crystal; :func:`layerscope.imaging.columns._beside_significant` keeps a maximum below the full
margin only within ``ANCHOR_SEPARATIONS`` (4.4 separations, 88 px here) of one above it. Truth: a Poisson image of
a square lattice of Gaussian columns (sigma 3 px, 20 px apart, 0.2 counts a pixel) over the left half, a row
of dimmer rim columns (0.3 of a bulk column) just beyond it and a vacuum of 0.03 counts a pixel.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from layerscope.imaging import columns as C

KW = dict(pixel_size_nm=0.01, min_separation_nm=0.2, column_sigma_nm=0.03)


def _scene(seed: int, scale: float = 1.0):
    """Counts (``scale`` x the expected counts), bulk centres (200) and rim centres (20), (row, col) pixels."""
    y, x = np.mgrid[0:400, 0:400]
    bulk = np.array([(r, c) for r in range(10, 400, 20) for c in range(10, 200, 20)])
    rim = np.array([(r, 210) for r in range(10, 400, 20)])

    def image(centres):
        return sum(np.exp(-((y - r) ** 2 + (x - c) ** 2) / 18.0) for r, c in centres)

    sb = image(bulk)
    lam = 0.2 / sb[:, :200].mean() * (sb + 0.3 * image(rim)) + 0.03
    return np.random.default_rng(seed).poisson(scale * lam).astype(float), bulk, rim


def _split(det, truth):
    """Truth columns found within 3 px (set of indices) and the number of maxima off every column."""
    found = np.column_stack([det.rows, det.cols]).astype(float)
    hit = set(np.flatnonzero(cKDTree(found).query(truth)[0] <= 3.0).tolist())
    off = int(np.sum(cKDTree(truth).query(found)[0] > 3.0))
    return hit, off


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_isolated_vacuum_maxima_dropped_columns_kept(seed, monkeypatch):
    """Every bulk column found (200 of 200), the same columns (bulk and rim) with and without the test; the
    maxima off every column fall to at most half (measured 60 -> 11, 53 -> 20, 51 -> 6, 46 -> 11) and those
    beyond the reach of every column (col > 300) to at most a fifth (47 -> 0, 37 -> 7, 44 -> 0, 32 -> 0: on
    seed 1 noise maxima above the full margin vouch for some)."""
    img, bulk, rim = _scene(seed)
    truth = np.vstack([bulk, rim])
    with_test = C.detect_columns(img, **KW)
    monkeypatch.setattr(C, "_beside_significant", lambda rows, cols, contrast, keep, **kw: keep)
    without = C.detect_columns(img, **KW)
    hit, off = _split(with_test, truth)
    hit0, off0 = _split(without, truth)
    assert set(range(len(bulk))) <= hit
    assert hit == hit0
    assert off0 >= 30
    assert off <= 0.5 * off0
    assert np.sum(with_test.cols > 300) <= 0.2 * np.sum(without.cols > 300)


def test_dense_counts_unchanged(monkeypatch):
    """The test applies to sparse counts only: at 50 x the counts the detection is the same with and without it."""
    img, _, _ = _scene(0, scale=50.0)
    assert not C.image_pixel_noise(img)[1]
    a = C.detect_columns(img, **KW)
    monkeypatch.setattr(C, "_beside_significant", lambda rows, cols, contrast, keep, **kw: keep)
    b = C.detect_columns(img, **KW)
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols)
