"""Wiring (issue 21, item 6): three EELS bugs that once passed the whole suite.

1. the per-pixel uncertainties must reach the front fit (weights and the reported sigma);
2. dual EELS: the core-loss energy axis is corrected per pixel with the low loss's ZLP position;
3. elemental ratios integrate each edge over the documented width (``ratio_width_eV``).

Each test compares a number with a truth built into the synthetic data, with a stated tolerance,
and fails when the corresponding step is skipped or miswired.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from layerscope.containers import Spectrum, SpectrumImage
from layerscope.spectra import synthetic as syn
from layerscope.spectra.fronts import WIDTH_10_90_PER_SIGMA, locate_front
from layerscope.spectra.pipeline import _fronts, analyse_eels

# ----------------------------------------------------------------------------- 1. front uncertainty
X_NM = (np.arange(60) + 0.5) * 0.4
TRUE = dict(low=2.0, high=3.0, x0=11.3, w=3.2 / WIDTH_10_90_PER_SIGMA)  # w: Gaussian sigma of the step (nm)


def _step(x, low, high, x0, w):
    return low + (high - low) * 0.5 * (1 + erf((x - x0) / (np.sqrt(2) * w)))


def _fisher_sigma_x0(sigma: np.ndarray) -> float:
    """Independent one-sigma of the front position: inverse Fisher matrix at the true parameters."""
    p = np.array([TRUE["low"], TRUE["high"], TRUE["x0"], TRUE["w"]])
    jac = np.empty((X_NM.size, 4))
    for k in range(4):
        h = np.zeros(4)
        h[k] = 1e-6
        jac[:, k] = (_step(X_NM, *(p + h)) - _step(X_NM, *(p - h))) / 2e-6
    fisher = jac.T @ (jac / sigma[:, None] ** 2)
    return float(np.sqrt(np.linalg.inv(fisher)[2, 2]))


def _noisy(sigma: np.ndarray, seed: int) -> np.ndarray:
    return _step(X_NM, **TRUE) + np.random.default_rng(seed).normal(0.0, 1.0, X_NM.size) * sigma


NEAR = np.abs(X_NM - TRUE["x0"]) < 3.0  # the points that carry the front position


@pytest.mark.parametrize("near, far", [(0.01, 0.1), (0.1, 0.01), (0.03, 0.03)])
def test_front_sigma_follows_heteroscedastic_noise(near, far):
    sigma = np.where(NEAR, near, far)
    expect = _fisher_sigma_x0(sigma)
    errs = []
    for seed in range(5):
        f = locate_front(_noisy(sigma, seed), X_NM, sigma=sigma)
        # the reported sigma is the covariance with absolute per-point sigma: the Fisher value
        # within 25 % (it is evaluated at the fitted, not the true parameters)
        assert f.position_sigma_nm == pytest.approx(expect, rel=0.25)
        errs.append((f.position_nm - TRUE["x0"]) / f.position_sigma_nm)
    assert np.max(np.abs(errs)) < 3.0  # within 3 sigma of the truth, every seed
    # unit weights would give one sigma for the noise as a whole: the two patterns differ > 5-fold
    if near != far:
        other = _fisher_sigma_x0(np.where(NEAR, far, near))
        assert abs(np.log(expect / other)) > np.log(5.0)


def test_front_sigma_scales_with_the_noise():
    sigma = np.where(NEAR, 0.02, 0.06)
    a = locate_front(_noisy(sigma, 7), X_NM, sigma=sigma)
    b = locate_front(_noisy(4.0 * sigma, 7), X_NM, sigma=4.0 * sigma)
    assert b.position_sigma_nm / a.position_sigma_nm == pytest.approx(4.0, rel=0.1)


def _with_bogus_points(sigma_bogus: float) -> tuple[np.ndarray, np.ndarray]:
    """Profile with 4 points just past the front set to the low plateau, declared with sigma_bogus."""
    sigma = np.full(X_NM.size, 0.03)
    v = _noisy(sigma, 3)
    bad = np.flatnonzero(X_NM > TRUE["x0"])[:4]
    v[bad] = TRUE["low"]
    sigma[bad] = sigma_bogus
    return v, sigma


def test_points_with_huge_sigma_do_not_pull_the_front():
    v, sigma = _with_bogus_points(1e3)
    f = locate_front(v, X_NM, sigma=sigma)
    assert abs(f.position_nm - TRUE["x0"]) < 3 * f.position_sigma_nm
    assert abs(f.position_nm - TRUE["x0"]) < 0.1  # nm
    # the same points at face value pull the front by more than 0.5 nm: the weights matter
    g = locate_front(v, X_NM, sigma=np.full(X_NM.size, 0.03))
    assert g.position_nm - TRUE["x0"] > 0.5


@pytest.mark.parametrize("key, sigma_key", [("Co_L.valence_lc", "Co_L.valence_lc_sigma"),
                                            ("O_per_Co", "O_per_Co_sigma"),
                                            ("Co_L.shift_eV", "Co_L.shift_sigma_eV")])
def test_pipeline_fronts_use_the_per_pixel_sigma_maps(key, sigma_key):
    # the pipeline's front step pairs each map with its sigma map: weights and honest sigma
    v, sigma = _with_bogus_points(1e3)
    step_nm = 0.4
    out = _fronts({key: v, sigma_key: sigma}, "line_scan", step_nm)
    f = out[key]
    assert abs(f["position_nm"] - TRUE["x0"]) < min(3 * f["position_sigma_nm"], 0.1)
    good = sigma < 1.0
    expect = _fisher_sigma_x0(np.where(good, 0.03, 1e3))
    assert f["position_sigma_nm"] == pytest.approx(expect, rel=0.25)
    # the same pixels with 10x the sigma: 10x the reported uncertainty, same position
    g = _fronts({key: v, sigma_key: 10 * sigma}, "line_scan", step_nm)[key]
    assert g["position_sigma_nm"] / f["position_sigma_nm"] == pytest.approx(10.0, rel=0.05)
    assert set(out) == {key}  # the sigma map itself is not fitted as a front


def test_pipeline_map_front_uses_the_sigma_map():
    p = 0.5
    rows, cols = np.indices((20, 30))
    xn = (cols + 0.5) * p
    sigma = np.full(xn.shape, 0.03)
    v = _step(xn, 2.0, 3.0, 7.0, 1.0) + np.random.default_rng(4).normal(0, 1, xn.shape) * sigma
    bad = (cols >= 14) & (cols <= 16)  # three columns just past the front, wrong and declared useless
    v[bad], sigma[bad] = 2.0, 1e3
    f = _fronts({"Co_L.l3_l2": v, "Co_L.l3_l2_sigma": sigma}, "spectrum_image", p)["Co_L.l3_l2"]
    assert abs(f["distance_nm"] - 7.0) < min(3 * f["distance_sigma_nm"] + 0.01, 0.1)
    assert f["distance_sigma_nm"] < 0.05


# ----------------------------------------------------------------------------- 2. dual-EELS drift
LL_E = syn.energy_axis(-20.0, 60.0, 0.1)
CL_E = syn.energy_axis(470.0, 630.0, 0.1)  # same dispersion as the low loss (dual EELS)


def _dual_si(drift_eV: np.ndarray):
    """3 x 4 spectrum image: ZLP and O-K edge both displaced by the pixel's energy drift."""
    d = drift_eV[..., None]
    ll = syn.gaussian(LL_E, d, 1.0, 1e6) + syn.gaussian(LL_E, 22.0 + d, 8.0, 3e5)
    # the synthetic edge takes a 1-D axis: one pixel at a time, the same edge on an axis moved by the drift
    core = np.stack([syn.oxygen_k_for_valence(CL_E - x, 3.0) for x in drift_eV.ravel()]).reshape(d.shape[:-1] + (-1,))
    core += syn.power_law(CL_E - d, amplitude=3000.0 * 470.0**3, exponent=3.0)
    cl = SpectrumImage.from_array(core, pixel_size_nm=1.0, offset_eV=CL_E[0], scale_eV=0.1)
    lls = SpectrumImage.from_array(ll, pixel_size_nm=1.0, offset_eV=LL_E[0], scale_eV=0.1)
    return cl, lls


@pytest.fixture(scope="module")
def drift():
    return np.random.default_rng(5).uniform(-1.5, 1.5, (3, 4))  # eV


def _onsets(drift_eV, dual: bool) -> tuple[np.ndarray, dict]:
    cl, ll = _dual_si(drift_eV)
    res = analyse_eels(cl, lowloss=ll, edges="O_K", dual_eels=dual, deconvolve=False)
    return res.maps["O_K.onset_eV"], res.parameters


def test_dual_eels_removes_the_per_pixel_energy_drift(drift):
    truth, _ = _onsets(np.zeros_like(drift), dual=True)  # the same measurement without drift
    assert np.ptp(truth) < 0.01
    onset, params = _onsets(drift, dual=True)
    assert params["dual_eels"] is True
    # every pixel's O-K onset back at the drift-free value within 0.1 eV (drift spans ~2.5 eV)
    np.testing.assert_allclose(onset, np.median(truth), atol=0.1)
    # without the correction the onsets follow the drift: the test data really drift
    raw, params = _onsets(drift, dual=False)
    assert params["dual_eels"] is False
    np.testing.assert_allclose(raw - np.median(truth), drift, atol=0.1)


# ----------------------------------------------------------------------------- 3. ratio width
E_Q = syn.energy_axis(450.0, 900.0, 0.5)
O_ONSET, CO_ONSET = 532.0, 779.0  # tabulated onsets: the windows start there
O_HEIGHT, CO_HEIGHT, O_DECAY_EV = 400.0, 60.0, 10.0


def _o_edge(e):
    """O-K: a sharp rise at 530 eV, then a continuum decaying over 10 eV (most counts early)."""
    return O_HEIGHT * 0.5 * (1 + erf((e - 530.0) / 0.5)) * np.exp(-np.clip(e - 530.0, 0, None) / O_DECAY_EV)


def _co_edge(e):
    """Co-L: a flat step at 777 eV (counts spread evenly over any window)."""
    return CO_HEIGHT * 0.5 * (1 + erf((e - 777.0) / 0.5))


def _window_area(f, lo, width):
    x = np.linspace(lo, lo + width, 20001)
    return float(np.trapezoid(f(x), x)) if hasattr(np, "trapezoid") else float(np.trapz(f(x), x))


def _true_ratio(width_eV: float, k: float) -> float:
    """k * I_O / I_Co over [onset, onset + width], integrated finely here (counts per eV x 1/dispersion)."""
    return k * _window_area(_o_edge, O_ONSET, width_eV) / _window_area(_co_edge, CO_ONSET, width_eV)


def _ratio_spectrum() -> Spectrum:
    bg = syn.power_law(E_Q, amplitude=2000.0 * 450.0**3, exponent=3.0)
    return Spectrum.from_array(bg + _o_edge(E_Q) + _co_edge(E_Q), offset_eV=E_Q[0], scale_eV=0.5)


@pytest.mark.parametrize("width_eV", [None, 30.0, 80.0])
def test_elemental_ratio_integrates_over_the_documented_width(width_eV):
    kw = {} if width_eV is None else {"ratio_width_eV": width_eV}
    res = analyse_eels(_ratio_spectrum(), edges="O_K,Co_L", k_factors={"O_K/Co_L": 1.5}, **kw)
    used = 50.0 if width_eV is None else width_eV  # the documented default is 50 eV
    assert res.parameters["ratio_width_eV"] == used
    truth = _true_ratio(used, 1.5)
    # background fits on a pure power law: the ratio within 2 %; half the width would be ~1.9x off
    assert float(np.ravel(res.maps["O_per_Co"])[0]) == pytest.approx(truth, rel=0.02)
    assert _true_ratio(used / 2, 1.5) / truth > 1.5


def test_identical_zero_loss_peaks_leave_no_nan_channel():
    # all ZLPs at the same energy: the mean differs from each position only by rounding; the
    # aligned low loss must keep every channel finite (it stopped t/lambda with 'NaN or inf')
    from layerscope.spectra.alignment import align_zero_loss

    ll = np.repeat(syn.gaussian(LL_E, 0.37, 1.0, 1e6)[None, :], 7, axis=0)
    al = align_zero_loss(ll, LL_E)
    assert np.isfinite(al.lowloss).all() and al.lowloss.shape == ll.shape
    np.testing.assert_allclose(al.zlp_position_eV, 0.37, atol=0.005)
