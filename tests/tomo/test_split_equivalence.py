"""The split's lower-memory steps (``layerscope.tomo.segment``: distance transform from the feature transform,
h-maxima on float32 ranks, float32 watershed levels) give exactly what SciPy's and scikit-image's own calls
give: the same bits, the same voxels, the same labels (no tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from layerscope.tomo.segment import _FLOAT32_DISTINCT_SQ, distance_transform_core, flood_levels, h_maxima_core


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


def test_float32_square_roots_of_integers_are_distinct_below_the_limit():
    """The claim behind float32 watershed levels: float32(sqrt(m)) strictly increases for integers m < 2^22."""
    m = np.arange(_FLOAT32_DISTINCT_SQ, dtype=np.float64)
    assert np.all(np.diff(np.sqrt(m).astype(np.float32)) > 0)


@pytest.mark.parametrize("seed", range(4))
def test_watershed_on_float32_levels_equals_float64(seed):
    """Watershed from the h-maxima of the distance map, levels ``-edt`` (float64) against :func:`flood_levels`
    (float32 here): identical labels, with several seeds (a real split) on every volume."""
    mask = _blobs(seed)
    edt = ndi.distance_transform_edt(mask)
    markers = ndi.label(h_maxima(edt, 1.0), structure=np.ones((3, 3, 3)))[0]
    levels = flood_levels(edt)
    assert levels.dtype == np.float32 and markers.max() >= 3
    assert np.array_equal(watershed(-edt, markers, mask=mask), watershed(levels, markers, mask=mask))


def test_flood_levels_stay_float64_where_float32_would_merge_values():
    """A distance of 2048 voxels or more keeps float64 (float32 could tie two different distances)."""
    edt = np.array([[[0.0, 1.0, 2048.0]]])
    assert flood_levels(edt).dtype == np.float64 and np.array_equal(flood_levels(edt), -edt)


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
