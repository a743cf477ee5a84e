"""Issue 19 speed: the faster steps of ``layerscope phases`` compute exactly the numbers of the ones they replace.

* :func:`layerscope.imaging.columns.local_maxima` is the mask ``maximum_filter(x, size) == x`` (the
  column peaks of ``detect_columns``, the autocorrelation's neighbours), bit for bit, also on ties,
  plateaus (SciPy's filter then runs itself) and at the image edges;
* ``columns._block_min`` is ``skimage.measure.block_reduce(x, (f, f), np.min, cval=x.max())`` (a partial block: its own minimum), and
  ``lattice._window_max`` (the power spectrum's 7 x 7 maxima) is ``maximum_filter(x, size)``;
* one :func:`layerscope.imaging.lattice.power_spectrum` shared by the check and the column finder gives
  the lattices of the spectra each computed for itself;
* ``lattice._annulus_medians`` (16-bit radix sort, ring starts from the sorted rings) is the int64 sort and
  ``np.unique``, and ``lattice.spectrum_spots`` takes the log power at the spots only, bit for bit;
* ``find_atom_columns`` of a float32 image (converted to float64 once) equals that of its float64 copy.

Tolerance: none (exact equality of masks, arrays and tables).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from imaging_scenes import PX, degraded_stack, noisy


@pytest.fixture(scope="module")
def scene():
    sim, _ = degraded_stack()
    return noisy(sim, 1e3, seed=5)


def _arrays(scene):
    rng = np.random.default_rng(7)
    smooth = ndimage.gaussian_filter(np.asarray(scene, dtype=float), 3.0, mode="nearest")
    return [smooth, smooth[:201, :333], rng.random((120, 90)), np.round(rng.random((64, 64)) * 2),  # ties
            np.zeros((40, 50)), ndimage.gaussian_filter(rng.poisson(0.05, (300, 300)).astype(float), 2.0),
            rng.random((2, 30)), rng.random((30, 3))]


def test_local_maxima_is_the_maximum_filter_mask(scene):
    from layerscope.imaging.columns import local_maxima

    n_checked = 0
    for a in _arrays(scene):
        for size in (3, 5, 7, 9, 17, 19):
            for mode in ("nearest", "reflect", "mirror"):
                want = ndimage.maximum_filter(a, size=size, mode=mode) == a
                assert np.array_equal(local_maxima(a, size), want), (a.shape, size, mode)
                n_checked += 1
        for size in (1, 2, 4):  # even or trivial windows: SciPy's own filter (its default mode)
            assert np.array_equal(local_maxima(a, size), ndimage.maximum_filter(a, size=size) == a)
    assert n_checked == 8 * 6 * 3
    assert local_maxima(_arrays(scene)[0], 17).sum() > 100  # the scene's column peaks, not an empty mask


def test_block_min_is_skimage_block_reduce(scene):
    from skimage.measure import block_reduce

    from layerscope.imaging.columns import _block_min

    for a in _arrays(scene):
        for factor in (1, 2, 3, 4, 5, 7):
            top = block_reduce(a, (factor, factor), np.min, cval=float(a.max()))  # partial blocks: their own minimum
            assert np.array_equal(_block_min(a, factor), top), (a.shape, factor)


def test_a_shared_power_spectrum_gives_the_same_lattices(scene):
    from layerscope.imaging.generic import image_lattice
    from layerscope.imaging.lattice import fft_lattice, power_spectrum
    from layerscope.imaging.materials import material_spacings

    sp = material_spacings("LiCoO2", "100")
    spectrum = power_spectrum(scene, pixel_size_nm=PX)
    assert not spectrum.power.flags.writeable  # shared by two threads: read-only
    kw = dict(pixel_size_nm=PX, layer_spacing_nm=sp.tm_spacing_nm, inplane_spacing_nm=sp.inplane_spacing_nm)
    own, shared = fft_lattice(scene, **kw), fft_lattice(scene, **kw, spectrum=spectrum)
    for f in dataclasses.fields(own):
        assert np.array_equal(getattr(own, f.name), getattr(shared, f.name)), f.name
    own, shared = image_lattice(scene, pixel_size_nm=PX), image_lattice(scene, pixel_size_nm=PX, spectrum=spectrum)
    assert own.to_dict() == shared.to_dict() and own.nn_distance_nm == shared.nn_distance_nm
    assert own.column_sigma_nm == shared.column_sigma_nm and 0.1 < own.nn_distance_nm < 0.4


def test_find_atom_columns_of_float32_equals_float64(scene):
    from layerscope.imaging.pipeline import find_atom_columns

    img32 = np.asarray(scene, dtype=np.float32)
    a = find_atom_columns(img32, pixel_size_nm=PX)
    b = find_atom_columns(img32.astype(np.float64), pixel_size_nm=PX)
    pd.testing.assert_frame_equal(a.columns, b.columns, check_exact=True)
    assert a.column_sigma_nm == b.column_sigma_nm and len(a.columns) > 500


def test_window_max_is_the_maximum_filter(scene):
    from layerscope.imaging.lattice import _window_max

    rng = np.random.default_rng(3)
    spectrum = ndimage.uniform_filter(rng.gamma(1.0, size=(256, 256)), 3)
    for a in [spectrum, spectrum[:37, :91], *_arrays(scene)]:
        for size in (3, 5, 7, 9, 17, 21):
            for mode in ("reflect", "nearest", "mirror"):
                assert np.array_equal(_window_max(a, size), ndimage.maximum_filter(a, size=size, mode=mode)), \
                    (a.shape, size, mode)
        assert np.array_equal(_window_max(a, 4), ndimage.maximum_filter(a, size=4))  # even: SciPy's own



def _annulus_medians_reference(ring: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``lattice.spectrum_spots``'s annulus medians as they were computed: a stable int64 sort and ``np.unique``."""
    order = np.argsort(ring, kind="stable")
    rsorted, vsorted = ring[order], values[order]
    uniq, starts = np.unique(rsorted, return_index=True)
    return uniq, np.array([np.median(v) for v in np.split(vsorted, starts[1:])])


def test_annulus_medians_are_those_of_the_int64_sort_and_np_unique(scene):
    from layerscope.imaging.lattice import _annulus_medians, power_spectrum

    spectrum = power_spectrum(scene, pixel_size_nm=PX)
    k = spectrum.k
    gmag = np.hypot(k[None, :], k[:, None])
    rng = np.random.default_rng(4)
    for ring, values in ((np.floor(gmag / abs(k[1] - k[0])).astype(np.int64), spectrum.smooth),
                         (rng.integers(0, 40, 5000), np.round(rng.random(5000), 2)),  # ties in the values
                         (np.array([3, 3, 0, 7], dtype=np.int64), np.array([1.0, 2.0, 5.0, 4.0]))):
        for sel in (np.ones(ring.shape, bool), ring < 0.6 * ring.max()):
            got, want = _annulus_medians(ring[sel], values[sel]), _annulus_medians_reference(ring[sel], values[sel])
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_spots_take_the_log_power_at_the_spots_as_of_the_whole_spectrum(scene):
    """``lattice.spectrum_spots``'s sub-bin positions from the log power at the spots' bins only: those of the log of
    the whole spectrum, bit for bit."""
    from layerscope.imaging.lattice import spectrum_spots, power_spectrum

    spectrum = power_spectrum(scene, pixel_size_nm=PX)
    k = spectrum.k
    dk = abs(k[1] - k[0])
    gmag = np.hypot(k[None, :], k[:, None])
    lp = np.log(np.maximum(spectrum.power, np.finfo(float).tiny))  # the whole log spectrum, as before
    for g_min, g_max in ((4 * dk, 0.45 / PX), (2 * dk, 0.2 / PX)):
        g, pw, _ = spectrum_spots(spectrum.power, k, k, g_min=g_min, g_max=g_max, smoothed=(spectrum.smooth, spectrum.peaks))
        iy, ix = np.nonzero(spectrum.peaks & (gmag >= g_min) & (gmag <= g_max))
        iyc, ixc = np.clip(iy, 1, len(k) - 2), np.clip(ix, 1, len(k) - 2)
        for axis, (m, c, p) in ((1, (lp[iyc - 1, ixc], lp[iyc, ixc], lp[iyc + 1, ixc])),
                                (0, (lp[iyc, ixc - 1], lp[iyc, ixc], lp[iyc, ixc + 1]))):
            den = m - 2 * c + p
            off = np.where(np.abs(den) > 1e-12, 0.5 * (m - p) / den, 0.0).clip(-0.5, 0.5)
            assert np.array_equal(g[:, axis], (k[iyc] if axis else k[ixc]) + off * dk)
        assert np.array_equal(pw, spectrum.smooth[iy, ix]) and len(g) > 10
