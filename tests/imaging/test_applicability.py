"""`phases` refuses a wrong calibration and accepts simulated layered oxides (known truth)."""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import PX, degraded_stack, noisy, small_o3, spinel_stack
from layerscope.errors import CalibrationError
from layerscope.imaging.applicability import CALIBRATION_TOLERANCE, check_layered_oxide


@pytest.mark.parametrize("scene", ["o3", "degraded", "spinel"])
def test_simulated_layered_images_pass(scene):
    sim = {"o3": small_o3, "degraded": lambda: degraded_stack()[0], "spinel": lambda: spinel_stack()[0]}[scene]()
    img = noisy(sim, 1e3, seed=2)
    check = check_layered_oxide(img, pixel_size_nm=PX, composition="LiCoO2", zone="100")
    # Truth: LiCoO2 a = 0.2815 nm -> d_t = a sqrt(3)/2 = 0.2438 nm; the simulated pixel size is exact.
    assert check.nn_distance_nm == pytest.approx(0.2438, rel=0.03)
    assert check.row_fraction >= 0.5


@pytest.mark.parametrize("factor", [2.0, 1.15, 1 / 1.15, 0.5])
def test_pixel_size_off_by_more_than_ten_percent_is_refused(factor):
    img = noisy(small_o3(), 1e4, seed=1)
    with pytest.raises(CalibrationError, match=r"--pixel-size-nm") as info:
        check_layered_oxide(img, pixel_size_nm=PX * factor, composition="LiCoO2", zone="100")
    # The suggested pixel size is the true one within 3 %.
    suggested = float(str(info.value).split("about ")[1].split(" nm")[0])
    assert suggested == pytest.approx(PX, rel=0.03)


def test_pixel_size_within_tolerance_is_accepted():
    img = noisy(small_o3(), 1e4, seed=1)
    check = check_layered_oxide(img, pixel_size_nm=PX * 1.05, composition="LiCoO2", zone="100")
    assert check.deviation == pytest.approx(0.05, abs=0.03)
    assert abs(check.deviation) < CALIBRATION_TOLERANCE
