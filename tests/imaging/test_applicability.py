"""`phases` refuses a wrong calibration and accepts simulated layered oxides (known truth)."""

from __future__ import annotations

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


# Degraded layered oxides (issue 19): heavy cation mixing (a third of the Li-layer sites filled
# with TM) and spinel blocks give their columns 4-6 neighbours, so fewer than 30 % sit in layered
# rows; they were refused as "not a layered oxide". Fixed draws of the tuning range (seeds 0-399):
# seed 43: spinel(8)|O3(5)|O3(7,mix=0.284)|O3(7)|O3'(2), NMC622 [110], 4.2e4 e/A^2, 17 % layered rows;
# seed 103: O3(9,mix=0.34)|O3(8)|O3'(2) under a rock-salt surface, NMC622 [100], 6.6e4 e/A^2, 19 %.
DEGRADED_SEEDS = {43: 0.175, 103: 0.187}


@pytest.mark.parametrize("seed", sorted(DEGRADED_SEEDS))
def test_degraded_layered_draws_are_accepted_and_mapped(seed):
    from layerscope.imaging.applicability import MIN_ROW_FRACTION, MIN_RUN_FRACTION
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene

    img, px, truth = draw_scene(seed)
    p = truth.parameters
    check = check_layered_oxide(img, pixel_size_nm=px, composition=p["chemistry"], zone=p["zone"])
    # accepted by check 1b, not by the layered-row fraction: it would fail this test before the change
    assert check.degraded and check.row_fraction < MIN_ROW_FRACTION
    assert check.row_fraction == pytest.approx(DEGRADED_SEEDS[seed], abs=0.03)
    assert check.run_fraction >= MIN_RUN_FRACTION
    # the pixel size of the draw is exact: the spacing along the layers within 2 % of the material's
    assert abs(check.deviation) < 0.02
    pm = map_phases(img, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    extent = (img.shape[1] * px, img.shape[0] * px)
    sc = score_columns(pm.columns, truth.columns, extent_nm=extent, margin_nm=0.15)
    # measured 0.990 / 0.985 recall, precision 1.0 (tolerance 0.02 below)
    assert sc.recall >= 0.97 and sc.precision >= 0.98
    assert any("layered-oxide check" in n and "degraded" in n for n in pm.result.notes)


def test_low_dose_layers_without_strong_column_spots_are_refused_as_too_few_counts():
    # seed 17: O3(7,mix=0.322)|O3(4)|O3'(3)|O3(4)|O1(2), NMC622 [110] at 5.2e2 e/A^2: the c/3
    # fringe stands 388x above the noise, the column spots at 0.2469 nm (truth 0.2484 nm) only 19x.
    # Mapped anyway (threshold halved), 20 % of the columns were missed and 5 % of the steps wrong:
    # still refused, but as too few counts, not as a wrong scale.
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene

    img, px, truth = draw_scene(17)
    p = truth.parameters
    with pytest.raises(CalibrationError, match=r"too few counts.*higher dose") as info:
        map_phases(img, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    spacing = float(str(info.value).split("spacing (")[1].split(" nm")[0])
    assert spacing == pytest.approx(0.2484, rel=0.02) and "\n" not in str(info.value)


def test_spacing_along_the_layers_comes_from_the_spectrum_when_the_nearest_columns_are_a_pair(monkeypatch):
    # A Li-rich report draw (C2/m(8)|O3|mixed O3|spinel, pixel size right) had its nearest-column
    # distance at 0.1955 nm, 21 % short of the 0.2464 nm column spacing: refused as a wrong pixel
    # size. Here the nearest distance of a clean O3 image is made 21 % short the same way; the
    # column spacing along the layers is then read from the power spectrum (truth 0.2438 nm).
    import dataclasses

    import layerscope.imaging.generic as generic

    real = generic.image_lattice

    def short_pair(data, *, pixel_size_nm, **kw):  # kw: a shared power spectrum (pipeline.analyse)
        lat = real(data, pixel_size_nm=pixel_size_nm, **kw)
        return dataclasses.replace(lat, nn_distance_nm=0.79 * lat.nn_distance_nm)

    img = noisy(small_o3(), 1e4, seed=1)
    monkeypatch.setattr(generic, "image_lattice", short_pair)
    check = check_layered_oxide(img, pixel_size_nm=PX, composition="LiCoO2", zone="100")
    assert check.nn_distance_nm == pytest.approx(0.79 * 0.2438, rel=0.03)
    assert check.spacing_nm == pytest.approx(0.2438, rel=0.02) and abs(check.deviation) < 0.02
    # the pixel size 15 % off is still refused, and the suggestion is the true one within 3 %
    with pytest.raises(CalibrationError, match=r"--pixel-size-nm") as info:
        check_layered_oxide(img, pixel_size_nm=PX * 1.15, composition="LiCoO2", zone="100")
    assert float(str(info.value).split("about ")[1].split(" nm")[0]) == pytest.approx(PX, rel=0.03)
