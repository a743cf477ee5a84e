"""Background models: analytic truths, HyperSpy's power law on real data, lazy = eager, bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from layerscope.errors import CalibrationError, InputError
from layerscope.spectra.background import fit_background, subtract_background

E = 400.0 + 0.25 * np.arange(800)  # 400-600 eV


@pytest.mark.parametrize(("method", "rtol"), [("power_law", 1e-3), ("power_law_lsq", 1e-9)])
def test_power_law_recovered_on_an_exact_power_law(method, rtol):
    a, r = 3.0e9, 3.2
    y = a * E ** (-r)
    fit = fit_background(y, E, window_eV=(420.0, 480.0), method=method)
    # the two-area exponent formula (Egerton eq. 4.64, as in HyperSpy) is itself an
    # approximation, good to ~1e-3 over 60 eV at 450 eV; the log-log least squares is exact
    np.testing.assert_allclose(fit.evaluate(E), y, rtol=rtol)
    np.testing.assert_allclose(fit.params[1], r, rtol=rtol)


def test_exponential_recovered_on_an_exponential():
    y = np.exp(12.0 - 0.01 * E)
    fit = fit_background(y, E, window_eV=(420.0, 480.0), method="exponential")
    np.testing.assert_allclose(fit.evaluate(E), y, rtol=1e-9)


def test_lcpl_follows_a_sum_of_two_power_laws_better_than_one_power_law():
    # spectra whose background is c1 E^-2 + c2 E^-4 with per-pixel weights; the summed spectrum's
    # power-law exponent is not exactly 3, so the fixed exponents r0 -+ 1 only approximate 2 and 4
    rng = np.random.default_rng(0)
    c1 = rng.uniform(1e5, 3e5, 6)[:, None]
    c2 = rng.uniform(1e10, 3e10, 6)[:, None]
    y = c1 * E**-2 + c2 * E**-4
    far = E > 500  # 20-120 eV past the window
    lcpl = fit_background(y, E, window_eV=(420.0, 480.0), method="lcpl")
    single = fit_background(y, E, window_eV=(420.0, 480.0), method="power_law_lsq")
    assert lcpl.exponents[1] - lcpl.exponents[0] == pytest.approx(2.0)
    err_lcpl = np.abs(lcpl.evaluate(E)[:, far] / y[:, far] - 1).max()
    err_pl = np.abs(single.evaluate(E)[:, far] / y[:, far] - 1).max()
    assert err_lcpl < 0.02
    assert err_lcpl < 0.5 * err_pl


def test_power_law_equals_hyperspy_remove_background_on_real_spectrum(exspy_pair):
    cl, _ = exspy_pair
    e = cl.axes_manager[-1].axis
    theirs = cl.remove_background(signal_range=(480.0, 520.0), fast=True, zero_fill=True, show_progressbar=False)
    ours, fit = subtract_background(cl.data, e, window_eV=(480.0, 520.0))
    # independent implementation (HyperSpy's PowerLaw.estimate_parameters + Model1D); the only
    # difference is HyperSpy's channel-centre convention, a ~r dE/(2E) = 0.05 % background bias
    bg = fit.evaluate(e)
    edge = e >= 480.0
    np.testing.assert_allclose(ours[edge], theirs.data[edge], rtol=0, atol=1e-3 * bg[edge].max())
    np.testing.assert_allclose((cl.data - theirs.data)[edge], bg[edge], rtol=1e-3)


def test_lazy_equals_eager_and_float32_kept():
    rng = np.random.default_rng(1)
    y = (5e9 * E ** (-3.0))[None, None, :] * rng.uniform(0.8, 1.2, (4, 5, 1))
    y = rng.poisson(y).astype(np.float32)
    eager, fit_e = subtract_background(y, E, window_eV=(420.0, 480.0))
    lazy, fit_l = subtract_background(da.from_array(y, chunks=(2, 5, 800)), E, window_eV=(420.0, 480.0))
    assert eager.dtype == np.float32
    np.testing.assert_allclose(lazy.compute(), eager, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(fit_l.params.compute(), fit_e.params, rtol=1e-10)


def test_zero_counts_in_window_raise_with_the_fix_or_become_nan_on_request():
    y = np.tile(5e9 * E ** (-3.0), (3, 1))
    y[1, 80:320] = 0.0  # pixel 1: no counts in the window
    with pytest.raises(InputError, match="zero or negative counts.*widen the window.*--nan-invalid"):
        fit_background(y, E, window_eV=(420.0, 480.0))
    fit = fit_background(y, E, window_eV=(420.0, 480.0), on_invalid="nan")
    assert np.isnan(fit.params[1]).all() and np.isfinite(fit.params[[0, 2]]).all()
    assert fit.valid.tolist() == [True, False, True]


def test_bad_input_messages():
    y = 5e9 * E ** (-3.0)
    with pytest.raises(InputError, match="outside the spectrum's energy range"):
        fit_background(y, E, window_eV=(300.0, 350.0))
    bad = y.copy()
    bad[10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fit_background(bad, E, window_eV=(420.0, 480.0))
    with pytest.raises(CalibrationError, match="no energy axis"):
        fit_background(y, None, window_eV=(420.0, 480.0))
    with pytest.raises(CalibrationError, match="channels on their last axis"):
        fit_background(y[None, :].T, E, window_eV=(420.0, 480.0))
    with pytest.raises(InputError, match="unknown method"):
        fit_background(y, E, window_eV=(420.0, 480.0), method="spline")


def test_float32_subtraction_survives_extreme_power_law_parameters():
    # a rising 8 eV pre-edge gives r ~ -60 and A ~ 1e-170: fine in float64, 0 * inf in float32
    e = 560.0 + 0.1 * np.arange(400)
    y = (1e-170 * e**62.0).astype(np.float32)
    sig, fit = subtract_background(y, e, window_eV=(560.5, 569.0), method="power_law_lsq")
    assert fit.params[1] == pytest.approx(-62.0, rel=1e-6)
    assert np.all(np.isfinite(sig))
    np.testing.assert_allclose(sig[e >= 560.5], 0.0, atol=1e-4 * y.max())
