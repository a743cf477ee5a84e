"""A site whose window holds no count has a counting error (issue 19, imgfresh).

``sitetests.amplitude_errors`` floors a count image's Poisson variance at a quarter of the window's mean count;
a window without a single count (a crack, a void or vacuum at low dose) had a floor of zero, so its site read
0 +- 0 and ``interlayers.split_fill_changes`` would not cut a segment holding it. ``sitetests.ZERO_COUNT_FLOOR``
(on) takes such a window as holding one count. Truth: the variance of a least-squares amplitude,
``v [(X^T X)^-1]_AA`` for the design matrix ``X = [g, 1]`` of the window and a per-pixel variance ``v``, worked
out here with ``numpy.linalg.inv``; and the random draws' own scoring (``layerscope.simulate.validation``).
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.imaging import sitetests
from layerscope.imaging.columns import disc_offsets

PX, SIGMA, RADIUS = 0.0125, 0.03, 0.09  # nm: a narrow-probe draw's pixel, column width and window


def _expected_zero_window_error() -> float:
    """Standard error of the amplitude with the floor of a window holding one count: a per-pixel variance of a
    quarter of one count spread over the window's pixels."""
    dy, dx = disc_offsets(RADIUS / PX)
    # the site sits on a pixel centre (x = y = (40 + 0.5) px), as below
    g = np.exp(-0.5 * (dy ** 2 + dx ** 2) / (SIGMA / PX) ** 2)
    design = np.column_stack([g, np.ones_like(g)])
    var_pixel = 0.25 * 1.0 / g.size
    return float(np.sqrt(var_pixel * np.linalg.inv(design.T @ design)[0, 0]))


def _image() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80 x 80 count image, zero except a 20 x 20 patch of 3 counts per pixel; one site in the empty part, one
    on the patch."""
    img = np.zeros((80, 80))
    img[5:25, 5:25] = 3.0
    x = np.array([40.5, 15.5]) * PX
    return img, x, x.copy()


def test_an_empty_window_is_floored_as_holding_one_count(monkeypatch):
    img, x, y = _image()
    want = _expected_zero_window_error()
    on = sitetests.amplitude_errors(img, x, y, pixel_size_nm=PX, sigma_nm=SIGMA, radius_nm=RADIUS, counts=True)
    assert sitetests.ZERO_COUNT_FLOOR is True
    assert want > 0.0
    assert on[0] == pytest.approx(want, rel=1e-9)  # main: exactly 0.0
    monkeypatch.setattr(sitetests, "ZERO_COUNT_FLOOR", False)
    off = sitetests.amplitude_errors(img, x, y, pixel_size_nm=PX, sigma_nm=SIGMA, radius_nm=RADIUS, counts=True)
    assert off[0] == 0.0
    # a window holding counts is unchanged (the same number with the switch on or off)
    assert on[1] > 0.0 and on[1] == off[1]


def test_random_draw_5103_crack_site_no_longer_blocks_the_cut(monkeypatch):
    # Random draw 5103 (NMC622 [100], 1.28e3 e/A^2, the fresh tuning range): a basal crack 0.21 nm wide took a
    # stretch of mixed Li layer 15 alone (both TM layers stay). Its first segment holds the layer's first site
    # (truth 0.5 TM per site, reading 1.46 +- 0.32) and 7 sites in the crack (no truth site; ~0), one of which
    # caught no count: 0 +- 0 kept the segment whole, read 0.166 "uncertain" over 8 sites -> fill 0.967, rims 0.926
    # (+- 0.002). With an error for that site the segment is cut (the site and its neighbour: "yes", the crack: "no",
    # not scored): fill and rims 1.0; no wrong yes / no either way.
    from imaging_scenes import scored_off_and_on

    off, on = scored_off_and_on(monkeypatch, sitetests, "ZERO_COUNT_FLOOR", 5103)
    assert off["fill_accuracy"] == pytest.approx(0.9675, abs=0.002)
    assert off["fill_accuracy_rim"] == pytest.approx(0.926, abs=0.002)
    assert on["fill_accuracy"] == pytest.approx(1.0, abs=1e-9) and on["fill_accuracy_rim"] == pytest.approx(1.0, abs=1e-9)
    for row in (off, on):
        assert row["fill_wrong_yes"] == 0 and row["fill_wrong_no"] == 0
    assert on["phases_recall"] == off["phases_recall"] and on["step_accuracy"] == off["step_accuracy"]


def test_crack_scene_crack_sites_cut_off_as_their_own_segment(monkeypatch):
    # test_gap_sites.py's crack scene at 1e4 e/A^2 (a basal crack takes TM layer 10 and Li layer 9; truth: the mixed
    # block's Li layers hold 0.3 TM per site where they hold material). Measured (seed 1), defaults: one crack site's
    # window holds no count; with its error, split_fill_changes cuts Li layer 9's first segment into its 5 real
    # sites (0.55 +- 0.05, "yes") and the 2 crack sites (u 1.38-1.63 nm, -0.02, "no") before read-as-empty could
    # leave them out. The block's two "no" segments are the 2 + 2 gap sites of Li layer 9 in the crack (no material:
    # the random draws' scorer has no truth site there; the second, u 3.58-3.82 nm, read "no" before too), every
    # other segment reads "yes". The empty-window crack site (u 1.63 nm) then leaves the fill outright
    # (interlayers.EMPTY_WINDOW_SITES_OUT "gap", imgvacuum): the first "no" segment keeps its other crack site only.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from imaging_scenes import PX as SCENE_PX, noisy
    from layerscope.imaging.pipeline import map_phases
    from test_gap_sites import _crack_scene, _mixed_segments

    from layerscope.imaging import lattice

    # Measured along the first-order spot's period (0.528 nm for LiCoO2's 0.468: the crack's layers stretch it); the
    # harmonics' period (0.475 nm, the default since session 32) at the end
    monkeypatch.setattr(lattice, "LAYER_HARMONICS", None)
    pm = map_phases(noisy(_crack_scene(), 1e4, seed=1), pixel_size_nm=SCENE_PX, zone="100", composition="LiCoO2")
    li = pm.columns[(pm.columns["kind"] == "Li") & (pm.columns["site"] == "octahedral")]
    assert int((li["intensity"] == 0).sum()) >= 1
    seg = _mixed_segments(pm)
    assert len(seg) >= 10
    for row in seg.itertuples():
        sites = li[(li["layer"] == row.li_layer) & li["u_nm"].between(row.u_start_nm, row.u_end_nm)]
        on_gap = bool(sites["site_at_gap"].astype(bool).all())
        if row.mixing == "no":  # only crack sites of the crack's own Li layer 9 (Li layer 11's gap sites are real)
            n_crack = 1 if row.u_start_nm < 2.0 else 2  # u 1.38 nm alone (its empty neighbour left), u 3.58-3.82 nm
            assert on_gap and row.li_layer == 9 and row.n_sites == n_crack, (row.li_layer, row.segment)
        else:
            assert row.mixing == "yes", (row.li_layer, row.segment, row.mixing)
    assert (seg["mixing"] == "no").sum() == 2
    # With the harmonics' period the crack's sites read no count (5 empty windows) and leave the fill: no segment of
    # gap sites is left, and every segment of the block reads "yes" (the truth where there is material)
    monkeypatch.setattr(lattice, "LAYER_HARMONICS", 4)
    pm = map_phases(noisy(_crack_scene(), 1e4, seed=1), pixel_size_nm=SCENE_PX, zone="100", composition="LiCoO2")
    assert pm.result.lattice.layer_period_nm == pytest.approx(0.468, rel=0.02)
    seg = _mixed_segments(pm)
    assert len(seg) >= 10 and np.all(seg["mixing"] == "yes")
