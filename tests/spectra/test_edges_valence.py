"""Edge energetics and valence: known sub-channel shifts, valence between references, NNLS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from layerscope.errors import InputError
from layerscope.spectra import synthetic as syn
from layerscope.spectra.edges import (
    chemical_shift,
    default_background_window,
    edge_onset,
    get_edge,
    l3_peak_position,
    parse_edges,
)
from layerscope.spectra.valence import valence_from_indicator, valence_from_linear_combination

E = syn.energy_axis(750.0, 840.0, 0.2)
SHIFTS = np.array([-0.83, -0.41, -0.137, 0.0, 0.07, 0.29, 0.55, 1.12])  # eV, sub-channel


def _co2(e, shift=0.0):
    return syn.white_line_edge(e, l3_eV=778.6 + shift, splitting_eV=15.2, l3_area=8000.0, l2_area=1800.0,
                               fwhm_eV=1.9, continuum=120.0, step_width_eV=0.3)


def _noisy(clean: np.ndarray, seed: int) -> np.ndarray:
    # Poisson noise on top of a 400-count background that was then subtracted exactly
    rng = np.random.default_rng(seed)
    return rng.poisson(clean + 400.0).astype(float) - 400.0


def test_chemical_shift_and_l3_position_within_0_05_eV():
    ref = _co2(E)
    spectra = _noisy(np.stack([_co2(E, s) for s in SHIFTS]), seed=1)
    cs = chemical_shift(spectra, E, ref, E, window_eV=(770.0, 806.0))
    assert np.abs(cs.shift_eV - SHIFTS).max() <= 0.05
    # the reported uncertainty is honest: errors within 4 sigma
    assert np.all(np.abs(cs.shift_eV - SHIFTS) < 4 * cs.sigma_eV + 1e-3)


def test_l3_peak_position_is_sub_channel():
    shifts = np.linspace(-1.0, 1.0, 41)  # 0.05 eV steps, a quarter channel
    clean = np.stack([_co2(E, s) for s in shifts])
    l3 = l3_peak_position(clean, E, window_eV=(772.0, 786.0))
    # noise-free: the parabola vertex follows sub-channel shifts to 0.015 eV (7 % of a channel);
    # the step under the line biases the absolute position by a constant ~0.05 eV
    rel = l3 - l3[shifts == 0]
    assert np.abs(rel - shifts).max() <= 0.015
    assert abs(float(l3[shifts == 0][0]) - 778.6) < 0.08
    # with counting noise the rms error stays below 0.05 eV (a quarter channel)
    noisy = l3_peak_position(_noisy(clean, seed=4), E, window_eV=(772.0, 786.0))
    assert np.sqrt(np.mean((noisy - l3) ** 2)) <= 0.05


def test_onset_moves_with_the_shift():
    spectra = np.stack([_co2(E, s) for s in SHIFTS])
    on = edge_onset(spectra, E, window_eV=(770.0, 786.0))
    np.testing.assert_allclose(on - on[SHIFTS == 0], SHIFTS, atol=0.02)
    assert np.all(on < 778.6 + SHIFTS)  # the half-height point lies below the maximum


def test_valence_by_interpolation_between_references_within_0_1():
    # references Co2+ and Co3+ whose edges differ by a 1.3 eV shift; unknowns at valences between
    refs = {2.0: _co2(E, 0.0), 3.0: _co2(E, 1.3)}
    valences = np.array([2.0, 2.13, 2.37, 2.5, 2.71, 2.94, 3.0])
    spectra = _noisy(np.stack([_co2(E, (v - 2.0) * 1.3) for v in valences]), seed=2)
    cs = chemical_shift(spectra, E, refs[2.0], E, window_eV=(770.0, 806.0))
    ref_shift = [float(chemical_shift(refs[v], E, refs[2.0], E, window_eV=(770.0, 806.0)).shift_eV) for v in (2.0, 3.0)]
    vi = valence_from_indicator(cs.shift_eV, ref_shift, [2.0, 3.0], indicator_sigma=cs.sigma_eV, extrapolate=True)
    assert np.abs(vi.valence - valences).max() <= 0.1
    np.testing.assert_allclose(vi.sigma, cs.sigma_eV / 1.3, rtol=0.02)
    # outside the references' range: NaN unless extrapolation is asked for
    out = valence_from_indicator([-0.5, 2.0], ref_shift, [2.0, 3.0])
    assert np.isnan(out.valence).all() and not out.in_range.any()


def test_valence_by_linear_combination_within_0_1():
    r2 = _co2(E, 0.0)
    r3 = syn.white_line_edge(E, l3_eV=779.9, splitting_eV=15.2, l3_area=6500.0, l2_area=2500.0,
                             fwhm_eV=1.6, continuum=120.0, step_width_eV=0.3)
    f3 = np.array([0.0, 0.1, 0.35, 0.5, 0.8, 1.0])
    spectra = _noisy(np.outer(1 - f3, r2) + np.outer(f3, r3), seed=3)
    lc = valence_from_linear_combination(spectra, E, np.stack([r2, r3]), [2.0, 3.0], window_eV=(770.0, 830.0))
    assert np.abs(lc.valence - (2.0 + f3)).max() <= 0.1
    np.testing.assert_allclose(lc.fractions.sum(axis=-1), 1.0)
    assert np.all(np.abs(lc.valence - (2.0 + f3)) < 4 * lc.sigma + 0.01)


def test_vectorised_nnls_equals_scipy_nnls():
    rng = np.random.default_rng(5)
    refs = np.abs(rng.normal(size=(4, 60))) + 0.1
    e = np.arange(60, dtype=float) + 500.0
    y = rng.normal(size=(25, 60)) + rng.uniform(0, 2, (25, 4)) @ refs
    lc = valence_from_linear_combination(y, e, refs, [1.0, 2.0, 3.0, 4.0], window_eV=(500.0, 559.0))
    basis = (refs / refs.sum(axis=1, keepdims=True)).T
    for i in range(25):
        w, _ = nnls(basis, y[i])
        np.testing.assert_allclose(lc.weights[i], w, rtol=1e-6, atol=1e-8 * np.abs(w).max())


def test_edge_table_and_default_windows():
    co, o, ni = get_edge("Co_L"), get_edge("O_K"), get_edge("Ni_L2,3")
    assert (co.onset_eV, co.second_onset_eV, o.onset_eV, ni.onset_eV) == (779.0, 794.0, 532.0, 855.0)
    assert [x.name for x in parse_edges("O_K,Co_L")] == ["O_K", "Co_L"]
    e = syn.energy_axis(450.0, 950.0, 0.25)
    lo, hi = default_background_window(ni, e, other_edges=[co])
    assert hi < 855.0 and lo >= 794.0 + 15.0  # clear of the Co L2 white line
    with pytest.raises(InputError, match="outside the core-loss energy range"):
        default_background_window(get_edge("Co_L"), syn.energy_axis(360.0, 770.0, 0.2))
    with pytest.raises(InputError, match="unknown element"):
        get_edge("Xx_L")
    with pytest.raises(InputError, match="has no tabulated"):
        get_edge("O_L")
    with pytest.raises(InputError, match="ELEMENT_SHELL"):
        get_edge("cobalt")
