"""Wide (~0.15 nm) probes: the site intensities in a window of 2 column widths, the neighbours' tails unmixed
(issue 19, imgwide; ``pipeline._wide_probe_window``, ``_lattice_leaks``, ``_measure_li_sites``).

Truths here are exact: a noiseless lattice of Gaussian columns of one width on a constant background,
whose Li-layer columns hold ``fill`` times a TM column's height.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging import pipeline as pl
from layerscope.simulate.incoherent import render_gaussians

PX = 0.01          # nm per pixel
SIGMA = 0.064      # nm: a 0.15 nm FWHM probe
D_T = 0.28         # nm between columns along a layer
HALF = 0.237       # nm between a TM layer and the Li layer beside it
SHAPE = (300, 300)
#: A render cut this many widths out is a plain Gaussian to double precision (exp(-72) = 5e-32 at the cut): the
#: model of pipeline._unit_readings (imgfill2: not cut at the simulator's 5 widths).
UNCUT = 12.0


def _lattice(fill: float, *, tm_height: float = 2.0, background: float = 0.7):
    """TM layers at y = 2k HALF, Li layers at (2k + 1) HALF (shifted by D_T / 2), columns every D_T."""
    x = np.arange(0.1, SHAPE[1] * PX, D_T)
    tm = [(xi, 2 * k * HALF) for k in range(4) for xi in x]
    li = [(xi + D_T / 2, (2 * k + 1) * HALF) for k in range(3) for xi in x if xi + D_T / 2 < SHAPE[1] * PX]
    tm_xy, li_xy = np.array(tm), np.array(li)
    img = (render_gaussians(tm_xy[:, 0], tm_xy[:, 1], np.full(len(tm_xy), tm_height), shape=SHAPE, pixel_size_nm=PX,
                            sigma_nm=SIGMA, truncate=UNCUT)
           + render_gaussians(li_xy[:, 0], li_xy[:, 1], np.full(len(li_xy), fill * tm_height), shape=SHAPE,
                              pixel_size_nm=PX, sigma_nm=SIGMA, truncate=UNCUT) + background)
    return img, tm_xy, li_xy


def _index(img, tm_xy, li_xy, *, radius_nm, leaks):
    tm = pd.DataFrame({"x_nm": tm_xy[:, 0], "y_nm": tm_xy[:, 1]})
    tm["intensity"] = pl._site_intensities(img, PX, tm, sigma_nm=SIGMA, radius_nm=radius_nm)[0]
    li = pd.DataFrame({"x_nm": li_xy[:, 0], "y_nm": li_xy[:, 1]})
    lk = (pl._lattice_leaks(img.shape, PX, sigma_nm=SIGMA, radius_nm=radius_nm, tm_xy=tm_xy,
                            tm_found=np.ones(len(tm_xy), bool), li_xy=li_xy) if leaks else None)
    pl._measure_li_sites(img, PX, li, tm, sigma_nm=SIGMA, radius_nm=radius_nm, counts=False, leaks=lk)
    return li["mixing"].to_numpy()


def test_clean_li_layer_reads_zero_with_the_tails_unmixed(monkeypatch):
    # truth 0: the plain ratio in a 2-width window reads -0.041 (the TM tails at the window's edge taken for
    # background); unmixed, every site reads 0 to 1e-9 (the estimator is linear in the image, the
    # constant background goes to B) with every column's tail in the leaks (LEAK_REACH_WIDTHS None); with the
    # default reach of 4 widths (imgspeed3) to 1e-6 (read 7.3e-8)
    img, tm_xy, li_xy = _lattice(0.0)
    radius = pl.SITE_WINDOW_WIDTHS * SIGMA
    plain = _index(img, tm_xy, li_xy, radius_nm=radius, leaks=False)
    cut = _index(img, tm_xy, li_xy, radius_nm=radius, leaks=True)
    monkeypatch.setattr(pl, "LEAK_REACH_WIDTHS", None)
    unmixed = _index(img, tm_xy, li_xy, radius_nm=radius, leaks=True)
    assert np.nanmax(np.abs(plain)) > 0.03
    assert np.nanmax(np.abs(unmixed)) < 1e-9
    assert np.nanmax(np.abs(cut)) < 1e-6


@pytest.mark.parametrize("fill", [0.1, 0.3])
def test_mixed_li_layer_reads_its_fill(fill):
    # truth ``fill``; what the model leaves is the Li-layer columns' tails in the TM reference (measured:
    # 0.1002-0.1003 and 0.3017-0.3035): within 0.02 x fill; the plain ratio reads 0.058-0.060 and 0.261-0.263
    img, tm_xy, li_xy = _lattice(fill)
    radius = pl.SITE_WINDOW_WIDTHS * SIGMA
    unmixed = _index(img, tm_xy, li_xy, radius_nm=radius, leaks=True)
    plain = _index(img, tm_xy, li_xy, radius_nm=radius, leaks=False)
    assert np.nanmax(np.abs(unmixed - fill)) < 0.02 * fill
    assert np.nanmin(np.abs(plain - fill)) > 0.1 * fill


def test_window_grows_only_where_the_columns_fill_it():
    # narrow columns (2 widths inside the spacing's window) keep width and window exactly; wide ones get
    # a window of 2 widths of the width measured in it (truth 0.064 nm, measured 0.0636 from a 0.05 start)
    notes: list[str] = []
    img, tm_xy, _ = _lattice(0.0)
    assert pl._wide_probe_window(img, PX, tm_xy, sigma_nm=0.03, radius_nm=0.08, notes=notes) == (0.03, 0.08)
    assert notes == []
    width, window = pl._wide_probe_window(img, PX, tm_xy, sigma_nm=0.05, radius_nm=0.08, notes=notes)
    assert width == pytest.approx(SIGMA, rel=0.02)
    assert window == pytest.approx(pl.SITE_WINDOW_WIDTHS * width)
    assert len(notes) == 1 and "window" in notes[0]


def test_draw_2160_wide_probe_fill_and_spinel():
    # tuning seed 2160 (NMC811 [110], 0.148 nm probe, 6.5e3 e/A^2): before, fill 0.898 and spinel 0.25 (its
    # spinel Li layer read 0.15 +- 0.07, uncertain); measured after: fill 1.0, spinel 1.0, no wrong decision
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import _interlayer_scores, segment_truth

    image, px, truth = draw_scene(2160)
    p = truth.parameters
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    scores = _interlayer_scores(segment_truth(pm.columns, pm.interlayers, truth))
    assert scores["fill_accuracy"] >= 0.98
    assert scores["fill_accuracy_spinel"] == 1.0
    assert scores["fill_wrong_yes"] == 0 and scores["fill_wrong_no"] == 0


def _rendered_leaks(shape, *, sigma_nm, radius_nm, tm_xy, tm_found, li_xy):
    """The leaks as first defined (imgwide): the site estimator on full noiseless renders of unit Gaussians (uncut)."""
    def read(at, where):
        img = render_gaussians(where[:, 0], where[:, 1], np.ones(len(where)), shape=shape, pixel_size_nm=PX,
                               sigma_nm=sigma_nm, truncate=UNCUT)
        return pl._site_intensities(img, PX, pd.DataFrame({"x_nm": at[:, 0], "y_nm": at[:, 1]}), sigma_nm=sigma_nm,
                                    radius_nm=radius_nm)[0]
    return read(tm_xy, tm_xy), read(li_xy, tm_xy[tm_found]), read(li_xy, li_xy)


@pytest.mark.parametrize("sigma_nm", [0.064, 0.047])
def test_local_leaks_equal_the_rendered_ones(sigma_nm, monkeypatch):
    # imgspeed: _lattice_leaks reads each site's window from the columns that reach it instead of rendering the
    # image; the truth is the rendered reading. An irregular lattice (positions jittered by 0.02 nm), a void
    # (columns removed), columns not found, sites at and beyond the field's edges (windows cut, windows with too
    # few pixels: NaN) and columns outside the field whose tails reach in: equal to 1e-9 (measured ~1e-15)
    rng = np.random.default_rng(5)
    _, tm_xy, li_xy = _lattice(0.0)
    shape = (250, 280)  # cuts the lattice: sites on and beyond the edges
    tm_xy = tm_xy + rng.normal(0, 0.02, tm_xy.shape)
    li_xy = np.vstack([li_xy + rng.normal(0, 0.02, li_xy.shape), [[-0.05, 0.5], [2.79, -0.1], [-0.13, 0.7]]])
    void = np.hypot(tm_xy[:, 0] - 1.3, tm_xy[:, 1] - 0.95) < 0.35
    tm_xy = tm_xy[~void]
    found = rng.random(len(tm_xy)) > 0.1
    radius = pl.SITE_WINDOW_WIDTHS * sigma_nm
    monkeypatch.setattr(pl, "LEAK_REACH_WIDTHS", None)  # every column's tail, as the uncut render (imgspeed3 cuts it)
    local = pl._lattice_leaks(shape, PX, sigma_nm=sigma_nm, radius_nm=radius, tm_xy=tm_xy, tm_found=found, li_xy=li_xy)
    rendered = _rendered_leaks(shape, sigma_nm=sigma_nm, radius_nm=radius, tm_xy=tm_xy, tm_found=found, li_xy=li_xy)
    for a, b in zip(local, rendered):
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, equal_nan=True)
    assert np.isnan(rendered[2][-1]) and np.isfinite(rendered[2][-3])  # a window with no pixel in the field; one cut
    assert np.nanmax(np.abs(rendered[1])) > 0.01  # the TM tails reach the Li-layer windows
    none = pl._unit_readings(li_xy, tm_xy[:0], shape=shape, px=PX, sigma_nm=sigma_nm, radius_nm=radius)
    assert np.array_equal(np.isnan(none), np.isnan(rendered[2])) and np.nanmax(np.abs(none)) == 0  # no column: 0


def test_site_model_is_a_plain_gaussian_not_the_simulators_cut():
    # imgfill2: the analysis models a column as a plain Gaussian; it does not import the simulator (whose renderer
    # cuts at TRUNCATE_SIGMA = 5 widths). A lone unit column read by a site 5.5 widths away: the plain Gaussian's
    # tail there, exp(-5.5^2 / 2) = 2.7e-7 of the peak at the window's centre (the window's weights then give
    # the reading; measured against a render with no cut to 1e-12), where a model cut at 5 widths reads 0.
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(pl))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("layerscope.simulate")]
    sigma = 0.03
    src = np.array([[1.0, 1.0]])
    at = np.array([[1.0 + 5.5 * sigma, 1.0]])
    radius = pl.SITE_WINDOW_WIDTHS * sigma
    model = pl._unit_readings(at, src, shape=SHAPE, px=PX, sigma_nm=sigma, radius_nm=radius)
    img = render_gaussians(src[:, 0], src[:, 1], np.ones(1), shape=SHAPE, pixel_size_nm=PX, sigma_nm=sigma, truncate=UNCUT)
    rendered = pl._site_intensities(img, PX, pd.DataFrame({"x_nm": at[:, 0], "y_nm": at[:, 1]}), sigma_nm=sigma,
                                    radius_nm=radius)[0]
    assert abs(model[0]) > 1e-8
    np.testing.assert_allclose(model, rendered, rtol=0, atol=1e-12)
