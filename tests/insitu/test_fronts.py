"""Reaction front: velocity, width, direction against the synthetic truth; the fit on analytic profiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from layerscope.insitu.fronts import (FrontProfile, WIDTH_10_90_PER_SIGMA, angle_to_layers_deg, fit_front,
                                      front_velocity)
from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import FrontSpec, LayeredLattice, synthetic_series


def test_front_velocity_width_and_direction(degrading, degrading_result):
    _, truth = degrading
    s = degrading_result.summary["front"]
    assert s["velocity_nm_per_s"] == pytest.approx(truth.front.velocity_nm_per_s, rel=0.05)
    assert s["velocity_err_nm_per_s"] < 0.05 * truth.front.velocity_nm_per_s
    assert s["width_nm"] == pytest.approx(truth.front.width_nm, abs=0.5)
    assert s["direction_deg"] == pytest.approx(truth.front.direction_deg, abs=2.0)
    # the front moves right, along the layers (layer normal at 95 deg): 90 deg to the normal
    assert s["layer_spacing_nm"] == pytest.approx(2 * truth.lattice.layer_spacing_nm, rel=0.01)
    assert s["angle_to_layer_normal_deg"] > 87.0
    fronts = degrading_result.fronts
    good = fronts[fronts["front_ok"]]
    assert len(good) >= 6  # frames whose profile shows 2 sigma of both plateaus (from t = 5 s on)
    np.testing.assert_allclose(good["position_nm"], truth.front_position_nm()[good["frame"]], atol=0.1)


def test_front_across_the_layers_that_stops():
    # a front moving down, across the layers, that stops at 5.5 nm (as fronts stop at planar layers)
    front = FrontSpec(position_nm=3.0, velocity_nm_per_s=0.5, direction_deg=93.0, width_nm=3.5, stop_nm=5.5)
    series, truth = synthetic_series(shape=(256, 192), n_frames=9, lattice=LayeredLattice(layer_angle_deg=3.0),
                                     front=front, counts_per_pixel=200.0, seed=21)
    res = analyse_series(series, options=InsituOptions(fronts=True, voids=False, cracks=False))
    s = res.summary["front"]
    assert s["angle_to_layer_normal_deg"] < 3.0  # across the layers
    good = res.fronts[res.fronts["front_ok"]]
    np.testing.assert_allclose(good["position_nm"], truth.front_position_nm()[good["frame"]], atol=0.12)
    assert s["width_nm"] == pytest.approx(3.5, abs=0.5)
    moving = good[good["time_s"] <= 5.0]
    v = front_velocity(moving["time_s"].to_numpy(), moving["position_nm"].to_numpy())
    assert v["velocity_nm_per_s"] == pytest.approx(0.5, rel=0.05)


def test_fit_front_on_an_analytic_profile():
    d = np.linspace(0, 10, 120)
    sigma_s, blur = 1.1, 0.4
    total = np.hypot(sigma_s, blur)
    power = 0.2 + 3.0 * ndtr((d - 4.3) / total) ** 2
    fit = fit_front(FrontProfile(d, power, np.full(d.size, 50), blur))
    assert fit.position_nm == pytest.approx(4.3, abs=1e-4)
    assert fit.width_nm == pytest.approx(WIDTH_10_90_PER_SIGMA * sigma_s, abs=1e-3)
    assert fit.ok


def test_velocity_and_its_error_from_a_known_line():
    rng = np.random.default_rng(4)
    t = np.arange(20.0)
    x = 1.0 + 0.3 * t + rng.normal(0, 0.05, t.size)
    v = front_velocity(t, x)
    from scipy import stats

    ref = stats.linregress(t, x)  # independent: scipy's regression
    assert v["velocity_nm_per_s"] == pytest.approx(ref.slope, rel=1e-12)
    assert v["velocity_err_nm_per_s"] == pytest.approx(ref.stderr, rel=1e-12)
    assert abs(v["velocity_nm_per_s"] - 0.3) < 3 * v["velocity_err_nm_per_s"]


@pytest.mark.parametrize("direction, normal, expected", [(95, 95, 0), (5, 95, 90), (140, 95, 45), (275, 95, 0)])
def test_angle_to_layers(direction, normal, expected):
    assert angle_to_layers_deg(direction, normal) == pytest.approx(expected, abs=1e-9)
