"""Cracks: width and length against the synthetic truth and the analytic band model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from layerscope.insitu.cracks import band_width_from_outline, is_band
from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import CrackSpec, LayeredLattice, VoidSpec, synthetic_series


def test_crack_width_within_0p2_nm_and_length(degrading, degrading_result):
    _, truth = degrading
    c = degrading_result.cracks
    assert (degrading_result.frames["n_cracks"] == 1).all()
    np.testing.assert_allclose(c["width_nm"], truth.cracks[0].width_nm, atol=0.2)
    np.testing.assert_allclose(c["length_nm"], truth.cracks[0].length_nm, rtol=0.1)
    np.testing.assert_allclose(np.median(c["orientation_deg"]), truth.cracks[0].angle_deg, atol=3.0)


@pytest.mark.parametrize("width_nm, angle_deg", [(1.0, 35.0), (1.5, 120.0)])
def test_crack_width_at_other_widths_and_angles(width_nm, angle_deg):
    crack = CrackSpec(3.8, 3.8, 4.8, width_nm, angle_deg)
    series, _ = synthetic_series(shape=(192, 192), n_frames=2, cracks=[crack], lattice=LayeredLattice(layer_angle_deg=-4.0),
                                 counts_per_pixel=200.0, seed=13)
    res = analyse_series(series, options=InsituOptions(voids=False))
    assert len(res.cracks) == 2
    np.testing.assert_allclose(res.cracks["width_nm"], width_nm, atol=0.2)


def test_band_width_correction_against_a_blurred_band():
    # brute force: a band of width w blurred by sigma; its half-depth full width, inverted
    sigma, h = 0.25, 0.002
    for w in (0.5, 1.0, 2.0):
        x = np.arange(-4, 4, h)
        prof = ndtr((x + w / 2) / sigma) - ndtr((x - w / 2) / sigma)
        inside = x[prof >= 0.5 * prof.max()]
        w_out = inside.max() - inside.min() + h
        assert band_width_from_outline(w_out, sigma, 0.5) == pytest.approx(w, abs=0.01)


def test_two_touching_voids_are_not_a_crack():
    voids = [VoidSpec(3.0, 3.8, 0.8), VoidSpec(4.62, 3.8, 0.8)]  # just touching: a dumbbell, 3.2 x 1.6 nm
    series, _ = synthetic_series(shape=(192, 192), n_frames=2, voids=voids, counts_per_pixel=200.0, seed=14)
    res = analyse_series(series, options=InsituOptions(drift=False))
    assert len(res.cracks) == 0
    assert list(res.frames["n_voids"]) == [1, 1]
    assert not is_band({"width_outline_nm": 1.6, "length_nm": 3.2, "width_p10_nm": 0.8, "width_p90_nm": 1.6})
