"""XRD: the real LiCoO2 and NiO patterns of ../shared/data/xrd against independent fits and
published lattice parameters, and synthetic patterns with known lattice, intensities and broadening."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from diffraction_synthetic import CU_KA1, layered_pattern
from layerscope.diffraction import (
    analyse_layered,
    analyse_rock_salt,
    fit_peak,
    pattern_from_arrays,
    read_pattern,
    snip_background,
    strip_kalpha2,
    track_reflection,
    williamson_hall,
)
from layerscope.errors import CalibrationError, InputError


@pytest.fixture(scope="module")
def lco(shared_data):
    return read_pattern(shared_data / "xrd" / "Nb2O5_CuO_LiCoO2.12-min.xrdml")


@pytest.fixture(scope="module")
def nio(shared_data):
    return read_pattern(shared_data / "xrd" / "NiO_0p6007-Bi2O3_0p4008--8min.xrdml")


def test_xrdml_reader(lco):
    assert lco.two_theta_deg.size == lco.intensity.size == 8293
    assert lco.two_theta_deg[0] == pytest.approx(9.99043322) and lco.two_theta_deg[-1] == pytest.approx(100.09495370)
    assert (lco.wavelength_A, lco.kalpha2_A, lco.kalpha2_ratio) == (1.5405980, 1.5444260, 0.5)
    assert lco.metadata["goniometer_radius_mm"] == 145.0


def test_text_pattern_needs_its_radiation(tmp_path):
    x, y, _ = layered_pattern(noise=False)
    path = tmp_path / "p.xy"
    np.savetxt(path, np.c_[x, y], header="2theta counts")
    with pytest.raises(CalibrationError, match="give --radiation Cu"):
        read_pattern(path)
    p = read_pattern(path, radiation="Cu")
    assert p.wavelength_A == pytest.approx(CU_KA1) and p.kalpha2_ratio == 0.5


def _independent_003(pattern):
    """A plain scipy fit: Lorentzian K-alpha1/K-alpha2 doublet (ratio 0.5) on a straight line."""
    x, y = pattern.two_theta_deg, pattern.intensity
    sel = (x > 18.4) & (x < 19.6)
    x, y = x[sel], y[sel]
    l1, l2 = pattern.wavelength_A, pattern.kalpha2_A

    def model(p):
        c, amp, w, b0, b1 = p
        c2 = 2 * np.degrees(np.arcsin(np.sin(np.radians(c / 2)) * l2 / l1))
        lor = lambda cc: amp * (w / 2) ** 2 / ((x - cc) ** 2 + (w / 2) ** 2)  # noqa: E731
        return lor(c) + 0.5 * lor(c2) + b0 + b1 * (x - 19)

    res = least_squares(lambda p: (model(p) - y) / np.sqrt(np.maximum(y, 1)), [19.0, y.max(), 0.1, y.min(), 0.0])
    return res.x[0]


def test_licoo2_003_against_an_independent_fit(lco):
    res = analyse_layered(lco)
    row = res.reflections.set_index("reflection").loc["(003)"]
    ref = _independent_003(lco)
    assert row["significant"]
    assert abs(row["center_deg"] - ref) < 0.02
    c_ref = 3 * lco.wavelength_A / (2 * np.sin(np.radians(ref / 2)))
    assert res.lattice["c_from_003_A"] == pytest.approx(c_ref, rel=1e-3)


def test_licoo2_lattice_against_published_values(lco):
    """Refined a and c (with specimen displacement) vs LiCoO2 of Akimoto et al. (1998): 2.8156 / 14.0542 A."""
    res = analyse_layered(lco)
    assert res.lattice["displacement_refined"]
    assert res.lattice["a_A"] == pytest.approx(2.8156, rel=1.5e-3)
    assert res.lattice["c_A"] == pytest.approx(14.0542, rel=1.5e-3)
    assert res.lattice["c_over_a"] > 4.9  # layered, not cubic close packing
    # the platelet texture of this mount makes (003) far stronger than (104)
    assert res.i003_i104 > 5


def test_nio_200_identified_and_a_close_to_icdd(nio, lco):
    out = analyse_rock_salt(nio, phase="NiO")
    assert out["identified"]
    r = out["reflections"].set_index("reflection")
    assert r.loc["(200)", "identified"] and 43.2 < r.loc["(200)", "center_deg"] < 43.8
    assert out["a_A"] == pytest.approx(4.1769, rel=3e-3)  # ICDD 47-1049
    assert not analyse_rock_salt(lco, phase="NiO")["identified"]  # negative control: no NiO there


def test_pattern_without_layered_oxide_raises(nio):
    with pytest.raises(InputError, match="not a layered oxide.*--rock-salt NiO"):
        analyse_layered(nio)


def test_synthetic_layered_pattern_recovers_truth():
    a, c = 2.8720, 14.200
    x, y, truth = layered_pattern(a=a, c=c, size_nm=40.0, strain=1.5e-3, seed=1)
    p = pattern_from_arrays(x, y, radiation="Cu")
    res = analyse_layered(p, displacement=False)
    assert res.lattice["a_A"] == pytest.approx(a, rel=2e-4)
    assert res.lattice["c_A"] == pytest.approx(c, rel=2e-4)
    expect = truth[(0, 0, 3)]["area"] / truth[(1, 0, 4)]["area"]
    assert res.i003_i104 == pytest.approx(expect, rel=0.03)
    assert abs(res.i003_i104 - expect) < 3 * res.i003_i104_err + 0.01
    wh = res.williamson_hall
    assert not wh["instrument_corrected"]
    assert wh["size_nm"] == pytest.approx(40.0, rel=0.10)
    assert wh["microstrain"] == pytest.approx(1.5e-3, rel=0.10)
    r = res.reflections.set_index("reflection")
    for hkl, name in (((0, 0, 3), "(003)"), ((1, 0, 4), "(104)"), ((1, 1, 0), "(110)")):
        assert r.loc[name, "center_deg"] == pytest.approx(truth[hkl]["two_theta"], abs=0.005)


def test_williamson_hall_exact_and_instrument_correction():
    tt = np.array([20.0, 40.0, 60.0, 80.0])
    th = np.radians(tt / 2)
    beta = 0.9 * CU_KA1 / (250.0 * np.cos(th)) + 4 * 2e-3 * np.tan(th)  # D = 25 nm, eps = 2e-3
    inst = 0.05
    measured = np.sqrt(np.degrees(beta) ** 2 + inst**2)
    wh = williamson_hall(tt, measured, wavelength_A=CU_KA1, instrument_fwhm_deg=inst)
    assert wh["size_nm"] == pytest.approx(25.0, rel=1e-6)
    assert wh["microstrain"] == pytest.approx(2e-3, rel=1e-6)
    with pytest.raises(InputError, match="instrumental FWHM"):
        williamson_hall(tt, measured, wavelength_A=CU_KA1, instrument_fwhm_deg=1.0)


def test_background_and_kalpha2_stripping():
    # Gaussian peaks (no Lorentzian tails) on a known smooth background: SNIP must return that
    # background, also underneath the peaks
    x, y, truth = layered_pattern(noise=False, eta=0.0)
    true_bg = 200.0 + 30.0 * np.exp(-(x - 15.0) / 20.0)
    bg = snip_background(x, y, half_width_deg=1.5)
    inner = (x > 17) & (x < 78)
    np.testing.assert_allclose(bg[inner], true_bg[inner], rtol=0.03)
    # Rachinger stripping of the doublet pattern gives back the K-alpha1-only pattern
    x, y, _ = layered_pattern(noise=False)
    _, y1, _ = layered_pattern(noise=False, ka2_ratio=0.0)
    true_bg = 200.0 + 30.0 * np.exp(-(x - 15.0) / 20.0)
    stripped = strip_kalpha2(pattern_from_arrays(x, y, radiation="Cu"), intensity=y - true_bg)
    np.testing.assert_allclose(stripped, y1 - true_bg, atol=0.01 * np.max(y1 - true_bg))


def test_single_peak_fit_uncertainty_covers_the_truth():
    x, y, truth = layered_pattern(seed=4)
    p = pattern_from_arrays(x, y, radiation="Cu")
    t = truth[(1, 0, 4)]
    f = fit_peak(p, t["two_theta"] + 0.05)
    assert abs(f.center_deg - t["two_theta"]) < 4 * f.center_err_deg + 1e-4
    assert f.area == pytest.approx(t["area"], rel=0.05)
    assert f.fwhm_deg == pytest.approx(t["fwhm"], rel=0.05)


def test_in_situ_series_tracks_003():
    cs = [14.20, 14.25, 14.30, 14.35]
    pats = []
    for k, c in enumerate(cs):
        x, y, _ = layered_pattern(c=c, seed=10 + k, lo=16, hi=22)
        pats.append(pattern_from_arrays(x, y, radiation="Cu"))
    table = track_reflection(pats, center_deg=18.7, labels=[0.0, 60.0, 120.0, 180.0])
    np.testing.assert_allclose(3 * table["d_A"], cs, rtol=3e-4)
