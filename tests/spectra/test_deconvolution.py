"""Fourier-ratio deconvolution: exact plural-scattering truth, eXSpy on real data, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from layerscope.errors import CalibrationError, InputError
from layerscope.spectra import synthetic as syn
from layerscope.spectra.deconvolution import fourier_ratio

LE = syn.energy_axis(-10.0, 246.0, 0.25)
CE = syn.energy_axis(400.0, 656.0, 0.25)


def _broadened(y: np.ndarray, fwhm: float) -> np.ndarray:
    g = syn.gaussian(CE, CE[CE.size // 2], fwhm, 1.0)
    g = np.roll(g / g.sum(), -(CE.size // 2))
    return np.real(np.fft.ifft(np.fft.fft(y, axis=-1) * np.fft.fft(g), axis=-1))


def test_recovers_single_scattering_edge_from_exact_plural_scattering():
    tl = np.array([0.2, 0.6, 1.2])
    ll = syn.low_loss(LE, t_over_lambda=tl, total_counts=1e7, zlp_fwhm_eV=1.0)
    single = syn.white_line_edge(CE, l3_eV=500.0, splitting_eV=12.0, l3_area=4000.0, l2_area=1500.0,
                                 fwhm_eV=1.5, continuum=100.0, step_width_eV=0.5)
    single = np.tile(single, (3, 1))
    measured = syn.plural_scattering(single, ll, LE)
    out = fourier_ratio(measured, CE, ll, LE, fwhm_eV=1.0)
    # truth: the single-scattering edge (normalised to I0 = I_t exp(-t/lambda)) convolved with
    # the 1 eV Gaussian of the method
    expect = _broadened(single, 1.0) * np.exp(-tl)[:, None]
    m = (CE > 480) & (CE < 600)
    err = np.linalg.norm((out - expect)[:, m], axis=1) / np.linalg.norm(expect[:, m], axis=1)
    assert np.all(err < 0.015)
    before = np.linalg.norm((measured * np.exp(-tl)[:, None] - expect)[:, m], axis=1) / np.linalg.norm(expect[:, m], axis=1)
    assert np.all(err < 0.1 * before)  # the plural scattering really was removed


def test_equals_exspy_fourier_ratio_on_real_spectra(exspy_pair):
    cl, ll = exspy_pair
    clb = cl.remove_background(signal_range=(480.0, 520.0), fast=True, zero_fill=True, show_progressbar=False)
    theirs = clb.fourier_ratio_deconvolution(ll)
    scale = ll.axes_manager[-1].scale
    ours = fourier_ratio(clb.data, cl.axes_manager[-1].axis, ll.data, ll.axes_manager[-1].axis)
    # eXSpy's Gaussian has unit area in eV, ours unit sum over channels: a factor 1/dispersion
    rel = np.linalg.norm(ours - theirs.data * scale) / np.linalg.norm(theirs.data * scale)
    assert rel < 0.01


def test_float32_lazy_equals_eager():
    rng = np.random.default_rng(0)
    tl = rng.uniform(0.2, 0.8, (2, 3))
    ll = syn.low_loss(LE, t_over_lambda=tl, total_counts=1e6).astype(np.float32)
    single = syn.white_line_edge(CE, l3_eV=500.0, splitting_eV=12.0, l3_area=4000.0, l2_area=1500.0,
                                 fwhm_eV=1.5, continuum=100.0)
    cl = syn.plural_scattering(np.broadcast_to(single, (2, 3, CE.size)), ll, LE).astype(np.float32)
    eager = fourier_ratio(cl, CE, ll, LE)
    lazy = fourier_ratio(da.from_array(cl, chunks=(1, 3, -1)), CE, da.from_array(ll, chunks=(1, 3, -1)), LE)
    assert eager.dtype == np.float32
    np.testing.assert_allclose(lazy.compute(), eager, rtol=1e-4, atol=1e-3 * np.abs(eager).max())


def test_deconvolution_errors_say_the_fix():
    ll = syn.low_loss(LE, t_over_lambda=0.3, total_counts=1e6)
    cl = np.ones(CE.size)
    with pytest.raises(CalibrationError, match="share the dispersion.*Rebin"):
        fourier_ratio(cl, CE, ll, 2 * LE)
    with pytest.raises(CalibrationError, match="align the zero-loss peak"):
        fourier_ratio(cl, CE, ll, LE + 20.0)
    with pytest.raises(InputError, match="pixel shape"):
        fourier_ratio(np.ones((2, CE.size)), CE, np.ones((3, LE.size)), LE)
    with pytest.raises(InputError, match="NaN"):
        fourier_ratio(np.full(CE.size, np.nan), CE, ll, LE)
