"""The layer fringe's vector fitted to its harmonics in the power spectrum (issue 19, lead, session 32).

:func:`layerscope.imaging.lattice.fft_lattice` took the layers' direction and period from the first-order c/3 spot
alone. On a small field that spot lies a dozen spectrum bins from the origin, so a bin of error is degrees of
direction. :func:`layerscope.imaging.lattice.harmonic_fringe` fits the fringe vector to its orders 1..4 (least
squares through the origin). Truth: spot lists made by hand (the fit's arithmetic is exact) and the random draws'
own columns (``layerscope.simulate.draw_scene``: the TM columns' layer coordinate regressed on their apparent
positions gives the true layer normal).
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.imaging import lattice as _lat

BIN = 0.17  # spectrum bin, cycles/nm (a 5.9 nm field)


def _spots(g1: np.ndarray, *, error: np.ndarray, orders=(1, 2, 3)) -> np.ndarray:
    """Spots at n * g1 (both signs), the first order displaced by ``error`` (cycles/nm), plus two unrelated spots."""
    pts = [n * g1 + (error if n == 1 else 0.0) for n in orders]
    pts += [-p for p in pts]
    pts += [np.array([3.1, -2.0]), np.array([-0.4, 4.4])]
    return np.array(pts)


def test_harmonics_correct_a_displaced_first_order_exactly():
    g1 = np.array([2.0, 0.9])
    err = np.array([-0.9, 2.0]) / np.hypot(0.9, 2.0) * BIN  # one bin across the fringe: ~4.4 deg of direction
    g = _spots(g1, error=err)
    fit = _lat.harmonic_fringe(g, 0, bin_nm=BIN, max_order=4)
    # orders 2 and 3 exact: G = (g1 + err + 4 g1 + 9 g1) / 14 = g1 + err / 14
    assert np.allclose(fit, g1 + err / 14.0, atol=1e-12)
    off = np.degrees(np.arccos(fit @ g1 / np.hypot(*fit) / np.hypot(*g1)))
    assert off < 0.35  # from 4.4 deg


def test_no_harmonic_within_reach_leaves_the_spot():
    g1 = np.array([2.0, 0.9])
    g = _spots(g1, error=np.zeros(2), orders=(1,))
    assert np.array_equal(_lat.harmonic_fringe(g, 0, bin_nm=BIN), g1)
    # a second-order spot 3 bins off its place (radius 2 bins x 2 = 4) is taken; 5 bins off is not
    near = np.vstack([g, 2 * g1 + np.array([3 * BIN, 0.0])])
    far = np.vstack([g, 2 * g1 + np.array([5 * BIN, 0.0])])
    assert not np.array_equal(_lat.harmonic_fringe(near, 0, bin_nm=BIN), g1)
    assert np.array_equal(_lat.harmonic_fringe(far, 0, bin_nm=BIN), g1)


def _normal_error_deg(seed: int) -> tuple[float, float]:
    from layerscope.imaging.materials import material_spacings
    from layerscope.simulate.draws import draw_scene

    img, px, truth = draw_scene(seed)
    tm = truth.columns[truth.columns.kind == "TM"]
    coef, *_ = np.linalg.lstsq(np.column_stack([tm.x_nm, tm.y_nm, np.ones(len(tm))]), tm.scene_y_nm, rcond=None)
    n_true = coef[:2] / np.hypot(*coef[:2])
    p = truth.parameters
    sp = material_spacings(p["chemistry"], p["zone"])
    lat = _lat.fft_lattice(img, pixel_size_nm=px, layer_spacing_nm=sp.tm_spacing_nm,
                           inplane_spacing_nm=sp.inplane_spacing_nm)
    return (float(np.degrees(np.arccos(min(1.0, abs(float(lat.normal @ n_true)))))),
            lat.layer_period_nm / sp.tm_spacing_nm - 1.0)


@pytest.mark.parametrize("seed, main_deg", [(4135, 5.69), (7027, 1.87)])
def test_small_fields_layer_normal_from_harmonics(seed, main_deg, monkeypatch):
    """Draw 4135 (5.9 nm field, a heavily mixed block): the first-order spot reads the normal 5.69 deg off and the
    period 4.4 % long; 7027 (6.8 nm): 1.87 deg. With the harmonics both within 0.5 deg and the period within 1 %."""
    ang, per = _normal_error_deg(seed)
    assert ang < 0.5 and abs(per) < 0.01
    monkeypatch.setattr(_lat, "LAYER_HARMONICS", None)
    ang0, _ = _normal_error_deg(seed)
    assert ang0 == pytest.approx(main_deg, abs=0.05)  # the first-order spot alone: main's reading


@pytest.mark.parametrize("seed", [120, 2023, 2029, 4135])
def test_draws_whose_rows_joined_layers_are_right_without_the_row_patches(seed, monkeypatch):
    """The four tuning draws whose straight grouping joined cation layers (img120, imgbent: the first-order spot's
    normal 1.4-5.7 deg off) needed a second grouping (``REGROUP_ROWS``) or the rows' offset field (``BENT_ROWS``).
    Along the harmonics' direction, with both off, every step is right and no fill is wrongly yes or no (main with
    both off: steps 0.41-0.68, 5 wrong "no" on 120)."""
    from layerscope.imaging import pipeline
    from layerscope.simulate.validation import score_draw

    monkeypatch.setattr(pipeline, "BENT_ROWS", False)
    monkeypatch.setattr(pipeline, "REGROUP_ROWS", False)
    row = score_draw(seed)
    assert row["step_accuracy"] == pytest.approx(1.0, abs=1e-9)
    assert row["fill_wrong_no"] == 0 and row["fill_wrong_yes"] == 0
