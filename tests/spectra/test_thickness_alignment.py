"""ZLP alignment and log-ratio t/lambda: simulated truth, eXSpy on real low losses, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from layerscope.errors import CalibrationError, InputError
from layerscope.spectra import synthetic as syn
from layerscope.spectra.alignment import align_zero_loss, zero_loss_peak_fwhm, zero_loss_peak_position
from layerscope.spectra.thickness import relative_thickness

LE = syn.energy_axis(-10.0, 246.0, 0.25)


def test_t_over_lambda_of_exact_poisson_low_loss():
    truth = np.array([0.1, 0.3, 0.6, 1.0, 1.5])
    ll = syn.low_loss(LE, t_over_lambda=truth, total_counts=1e7, zlp_fwhm_eV=1.0)
    res = relative_thickness(ll, LE)
    # the truncated ZLP integral misses the plasmon tail below the threshold: <= 1 %
    np.testing.assert_allclose(res.t_over_lambda, truth, rtol=0.01)
    assert np.all((res.threshold_eV > 1.0) & (res.threshold_eV < 4.0))


@pytest.mark.parametrize(
    "name", ["exspy/lowloss_spectrum.msa", "pyeelsmodel_SrTiO3/ll.msa", "exspy/Cr_L_ll.hspy"]
)
def test_t_over_lambda_equals_exspy_estimate_thickness_on_real_low_loss(shared_data, name):
    from tests.spectra.conftest import hs_load

    s = hs_load(shared_data / "eels" / name, signal_type="EELS")
    theirs = float(s.estimate_thickness(threshold=s.estimate_elastic_scattering_threshold()).data.ravel()[0])
    ours = float(relative_thickness(s.data, s.axes_manager[-1].axis).t_over_lambda)
    # both find the valley after the ZLP automatically (eXSpy: flattest derivative; here: the
    # smoothed minimum); the issue asks for 1 % on eXSpy's low loss
    assert ours == pytest.approx(theirs, rel=0.01)


def test_zlp_position_and_fwhm_sub_channel():
    offsets = np.array([-0.37, -0.11, 0.0, 0.05, 0.23, 0.49])  # eV, dispersion 0.25 eV
    spectra = np.stack([syn.gaussian(LE, o, 1.1, 1e6) for o in offsets])
    np.testing.assert_allclose(zero_loss_peak_position(spectra, LE), offsets, atol=0.0025)  # 1 % of a channel
    # half-maximum crossings interpolated linearly between 4.4 samples per FWHM: <= 0.04 eV
    np.testing.assert_allclose(zero_loss_peak_fwhm(spectra, LE), 1.1, atol=0.04)


def test_align_zero_loss_dual_eels_moves_core_loss_with_the_same_shifts():
    rng = np.random.default_rng(3)
    drift = rng.uniform(-1.5, 1.5, (3, 4))  # eV of energy drift per pixel
    ll = syn.gaussian(LE[None, None, :], drift[..., None], 1.0, 1e6)
    ce = syn.energy_axis(500.0, 600.0, 0.25)
    cl = syn.gaussian(ce[None, None, :], 540.0 + drift[..., None], 1.5, 1e4)  # a peak at 540 eV + drift
    al = align_zero_loss(ll, LE, coreloss=cl, coreloss_energy_eV=ce)
    np.testing.assert_allclose(al.zlp_position_eV, drift, atol=0.005)
    np.testing.assert_allclose(zero_loss_peak_position(al.lowloss, al.energy_eV), 0.0, atol=0.01)
    peak = zero_loss_peak_position(al.coreloss, al.coreloss_energy_eV)
    np.testing.assert_allclose(peak, 540.0, atol=0.01)
    # the lazy path gives the same aligned data
    lz = align_zero_loss(da.from_array(ll, chunks=(2, 4, -1)), LE)
    np.testing.assert_allclose(lz.lowloss.compute(), al.lowloss, rtol=1e-9, atol=1e-6)


def test_lazy_thickness_map_equals_eager():
    tl = np.linspace(0.2, 0.9, 12).reshape(3, 4)
    ll = syn.low_loss(LE, t_over_lambda=tl, total_counts=1e6)
    eager = relative_thickness(ll, LE).t_over_lambda
    lazy = relative_thickness(da.from_array(ll, chunks=(1, 4, -1)), LE).t_over_lambda.compute()
    np.testing.assert_allclose(lazy, eager, rtol=1e-12)


def test_thickness_errors_say_the_fix():
    ll = syn.low_loss(LE, t_over_lambda=0.3, total_counts=1e6)
    with pytest.raises(InputError, match="does not contain 0 eV"):
        relative_thickness(ll, LE + 50.0)
    with pytest.raises(CalibrationError, match="not uniform"):
        e = LE.copy()
        e[100:] += 0.1
        relative_thickness(ll, e)
    with pytest.raises(CalibrationError, match="dispersion"):
        align_zero_loss(ll[None], LE, coreloss=ll[None], coreloss_energy_eV=LE * 2)
