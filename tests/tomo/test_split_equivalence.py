"""The split's lower-memory steps (``layerscope.tomo.segment``: distance transform from the feature transform,
h-maxima on float32 ranks) give exactly what SciPy's and scikit-image's own calls give: the same bits, the
same voxels (no tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import h_maxima

from layerscope.tomo.segment import distance_transform_core, h_maxima_core


def _blobs(seed: int, shape=(36, 41, 33), sigma=2.5) -> np.ndarray:
    """Smoothed noise thresholded at its median: touching blobs, holes, thin bridges, the array's faces cut."""
    return ndi.gaussian_filter(np.random.default_rng(seed).random(shape), sigma) > 0.5


@pytest.mark.parametrize("seed", range(4))
def test_distance_transform_core_equals_scipy_bit_for_bit(seed):
    """On 4 random blob volumes, the whole array and a core of z slices 7:25: float64 bits equal SciPy's."""
    mask = _blobs(seed)
    full = ndi.distance_transform_edt(mask)
    for core in (slice(None), slice(7, 25)):
        assert np.array_equal(full[core].view(np.int64), distance_transform_core(mask, core).view(np.int64))
    assert full.max() > 3  # the blobs are thick enough for distances to mean something


@pytest.mark.parametrize("seed", range(4))
def test_h_maxima_on_ranks_equals_scikit_image(seed):
    """Seeds of distance maps (h = 0.5, 1, 2, 3.7, and above the range: none) and of smooth grey values
    (h = 0.01), on the whole array and on a core of z slices: the same voxels as ``skimage.morphology.h_maxima``."""
    edt = ndi.distance_transform_edt(_blobs(seed))
    grey = ndi.gaussian_filter(np.random.default_rng(seed).random((20, 30, 30)), 1.5)
    n_seeds = 0
    for f, h in [(edt, 0.5), (edt, 1.0), (edt, 2.0), (edt, 3.7), (edt, 1e3), (grey, 0.01)]:
        want = h_maxima(f, h) > 0
        for core in (slice(None), slice(4, 15)):
            got = h_maxima_core(f, h, core)
            assert got.dtype == bool and np.array_equal(want[core], got), (h, core)
        n_seeds += int(want.sum())
    assert n_seeds > 20
