"""The tomography validator's limited tilt range (``scripts/validate_tomo_draws.py --tilt-range-deg``): the
projection draws are projected over -range/2 ... +range/2 (an electron-tomography tilt series) with the draw's own
number of angles, and a 180 deg run is the draws' own 0-180 deg series, unchanged."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def validator(load_script):
    return load_script("validate_tomo_draws")


def test_tilt_angles_span_the_range_with_both_ends(validator):
    a = validator.tilt_angles_deg(71, 140.0)
    assert a.size == 71 and a[0] == pytest.approx(-70.0, abs=1e-12) and a[-1] == pytest.approx(70.0, abs=1e-12)
    np.testing.assert_allclose(np.diff(a), 2.0, atol=1e-12)  # 140 deg in 70 steps
    np.testing.assert_array_equal(validator.tilt_angles_deg(120), np.linspace(0.0, 180.0, 120, endpoint=False))


def test_a_projection_draw_is_projected_over_the_tilt_range(validator):
    """Draw 11 (64^3, projected, 145 angles): +-70 deg gives 145 projections from -70 to +70 deg without shifts;
    the 180 deg run without shifts is the draw's own data (the same projections as ``draw_volume``)."""
    from layerscope.tomo.phantom import draw_volume, random_phantom

    ph = random_phantom(11)
    n = ph.specs["draw"]["n_angles"]
    limited = validator._prepare(ph, rms_px=0.0, kind="white", tilt_range_deg=140.0)
    assert limited.data.shape[0] == n == 145
    assert limited.angles_deg.min() == pytest.approx(-70.0) and limited.angles_deg.max() == pytest.approx(70.0)
    full = validator._prepare(ph, rms_px=0.0, kind="white")
    own = draw_volume(ph)
    np.testing.assert_array_equal(full.angles_deg, own.angles_deg)
    np.testing.assert_array_equal(full.data, own.data)


def test_the_limited_angle_flag_says_the_counts_are_not_validated():
    """The validator's +-70 deg run (docs/validation.md) found pores called cracks in 4 of 19 draws: the flag a user
    gets on such a series says so; a full 180 deg series gets no flag."""
    from layerscope.tomo.recon import _angle_flags

    (flag,) = _angle_flags(np.linspace(-70.0, 70.0, 71))
    assert flag["code"] == "limited_angle" and "140 deg" in flag["message"] and "not validated" in flag["message"]
    assert _angle_flags(np.linspace(0.0, 180.0, 120, endpoint=False)) == []


@pytest.mark.parametrize("span", ["0", "200", "x"])
def test_a_tilt_range_outside_0_180_is_refused_before_any_output(validator, tmp_path, span):
    out = tmp_path / "rows.csv"
    with pytest.raises(SystemExit) as exit_:
        validator.main(["--seeds", "11:12", "--out", str(out), "--tilt-range-deg", span])
    assert exit_.value.code == 2 and not out.exists()
