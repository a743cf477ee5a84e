"""Trigonometric resampling of periodic band-limited images against analytic functions (exact to 1e-10)."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.errors import InputError
from layerscope.simulate.incoherent import electron_wavelength_A
from layerscope.simulate.periodic import resample_periodic_image, stem_max_harmonic, trig_interpolation_matrix

PX, PY = 0.4877, 1.405  # the O3 LiCoO2 [100] cell (nm)
KX, KY = 10, 29


def analytic(x, y, dx=0, dy=0):
    """A 2-D trigonometric polynomial of period (PX, PY) with harmonics up to (KX, KY), or a derivative."""
    terms = [(0, 0, 0.7, 0.0), (KX, 0, 0.2, 0.3), (3, KY, 0.1, -1.1), (-KX, KY, 0.05, 2.0), (1, -7, 0.3, 0.9)]
    out = np.zeros(np.broadcast(x, y).shape)
    for m, n, amp, ph in terms:
        wx, wy = 2 * np.pi * m / PX, 2 * np.pi * n / PY
        # d^k/dt^k cos(w t + ph) = w^k cos(w t + ph + k pi / 2)
        out = out + amp * wx**dx * wy**dy * np.cos(wx * x + wy * y + ph + 0.5 * np.pi * (dx + dy))
    return out


@pytest.mark.parametrize("n_samples", [21, 24, 30])
def test_commensurate_and_incommensurate_1d_exact(n_samples):
    # 21 samples: classical interpolation (step = period / 21); 24 and 30: steps that do not divide it
    step = PX / 21 if n_samples == 21 else 0.52 / n_samples
    xs = (np.arange(n_samples) + 0.5) * step
    xt = np.linspace(-0.7, 2.3, 301)
    m = trig_interpolation_matrix(xs, xt, period_nm=PX, max_harmonic=KX)
    np.testing.assert_allclose(m @ analytic(xs, 0.0), analytic(xt, 0.0), rtol=0, atol=1e-10)
    d = trig_interpolation_matrix(xs, xt, period_nm=PX, max_harmonic=KX, derivative=1)
    np.testing.assert_allclose(d @ analytic(xs, 0.0), analytic(xt, 0.0, dx=1), rtol=0, atol=1e-10 * 2 * np.pi * KX / PX)


@pytest.mark.parametrize("derivative", [(0, 0), (1, 0), (0, 1)])
def test_image_resampled_onto_a_fine_grid_exactly(derivative):
    step = PX / 21
    rows = int(np.ceil(PY / step))  # 61 rows: one period plus a fraction of a step
    ys, xs = (np.arange(rows) + 0.5) * step, (np.arange(21) + 0.5) * step
    cell = analytic(xs[None, :], ys[:, None])
    out = resample_periodic_image(cell, step_nm=step, period_nm=(PX, PY), max_harmonic=(KX, KY),
                                  pixel_size_nm=0.01, shape=(400, 410), derivative=derivative)
    yt, xt = (np.arange(400) + 0.5) * 0.01, (np.arange(410) + 0.5) * 0.01
    truth = analytic(xt[None, :], yt[:, None], dx=derivative[0], dy=derivative[1])
    scale = (2 * np.pi * KY / PY) ** sum(derivative)  # derivatives grow with the highest frequency
    np.testing.assert_allclose(out, truth, rtol=0, atol=1e-10 * scale)


def test_a_harmonic_above_the_band_is_not_reproduced():
    # the truth the exactness rests on: a harmonic beyond K aliases, so the error is order one
    xs = (np.arange(21) + 0.5) * PX / 21
    xt = np.linspace(0, PX, 97)
    f = lambda x: np.cos(2 * np.pi * (KX + 1) * x / PX)  # noqa: E731
    m = trig_interpolation_matrix(xs, xt, period_nm=PX, max_harmonic=KX)
    assert np.max(np.abs(m @ f(xs) - f(xt))) > 0.5


def test_stem_max_harmonic_is_the_aperture_difference_band():
    lam_nm = electron_wavelength_A(200.0) / 10  # 2.508 pm
    band = 2 * 0.025 / lam_nm  # 19.94 per nm: HAADF Nyquist step lambda / (4 alpha) = 0.0251 nm
    assert stem_max_harmonic(PX, energy_keV=200, convergence_mrad=25) == int(PX * band) == 9
    assert stem_max_harmonic(PY, energy_keV=200, convergence_mrad=25) == 28
    # abTEM's soft aperture edge adds 1 / box: 2 cells wide (0.975 nm) -> 10; one c (1.405 nm) -> 29
    assert stem_max_harmonic(PX, energy_keV=200, convergence_mrad=25, box_nm=2 * PX) == 10
    assert stem_max_harmonic(PY, energy_keV=200, convergence_mrad=25, box_nm=PY) == 29


def test_too_few_or_clustered_samples_are_refused_with_the_fix():
    with pytest.raises(InputError, match="scan at least 21 steps"):
        trig_interpolation_matrix(np.arange(20) * 0.02, [0.1], period_nm=PX, max_harmonic=KX)
    # 21 samples bunched into a tenth of the period cannot separate 21 harmonics
    with pytest.raises(InputError, match="spread the samples"):
        trig_interpolation_matrix(np.linspace(0, 0.05, 21), [0.1], period_nm=PX, max_harmonic=KX)
