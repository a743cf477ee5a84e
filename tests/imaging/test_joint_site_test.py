"""A placed Li-layer site tested for a column by its own joint height (issue 19, helper imgwide7; docs/validation.md
"imgwide7").

Under a ~0.15 nm probe a half-occupied Li-layer column one spacing from full TM columns has no maximum of its own;
``pipeline.JOINT_SITE_TEST`` reports a placed Li-layer site as found where its height, fitted with every TM and
Li-layer lattice position's height free and a constant (``sitetests.joint_site_heights``), is at least
``JOINT_SITE_SIGMAS`` (4) standard errors. The synthetic lattice here is written out in the test: plain Gaussians of
a 0.16 nm FWHM probe, TM rows 0.48 nm apart with Li rows between them, a fixed third of the Li-layer columns at half
a TM column's height and the rest empty, Poisson counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging import pipeline as pl
from layerscope.imaging import sitetests as st

PX = 0.0125  # nm
N = 480  # pixels a side
SIGMA = 0.068  # nm: a 0.16 nm FWHM probe
D_T = 0.25  # in-plane spacing, nm
CATION = 0.24  # cation-layer spacing, nm
PEAK, BACKGROUND = 4.0, 1.5  # counts at a TM column's peak, counts a pixel


def _lattice(seed: int = 0):
    """(counts image, TM positions, Li-layer positions, which Li-layer columns are half-occupied)."""
    rng = np.random.default_rng(seed)
    v_tm = np.arange(0.3, N * PX - 0.2, 2 * CATION)
    tm = np.array([(u + (k % 2) * D_T / 2, v) for k, v in enumerate(v_tm) for u in np.arange(0.2, N * PX - 0.1, D_T)])
    li = tm[tm[:, 1] + CATION < N * PX - 0.2] + [D_T / 4, CATION]
    half = rng.random(len(li)) < 1.0 / 3.0
    yy, xx = (np.mgrid[0:N, 0:N] + 0.5) * PX
    img = np.full((N, N), BACKGROUND)
    for (x, y), h in zip(np.vstack([tm, li]), np.concatenate([np.ones(len(tm)), 0.5 * half])):
        if h:
            img += PEAK * h * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / SIGMA**2)
    return rng.poisson(img).astype(float), tm, li, half


@pytest.fixture(scope="module")
def lattice():
    return _lattice()


def _interior(xy: np.ndarray) -> np.ndarray:
    return np.all((xy > 0.5) & (xy < N * PX - 0.5), axis=1)


def test_joint_heights_of_empty_sites_read_as_noise(lattice):
    img, tm, li, half = lattice
    h, e = st.joint_site_heights(img, li, np.vstack([tm, li]), pixel_size_nm=PX, sigma_nm=SIGMA,
                                 radius_nm=pl.JOINT_SITE_WINDOW_WIDTHS * SIGMA, counts=True)
    z = (h / e)[_interior(li) & ~half]
    assert len(z) > 150
    assert abs(np.mean(z)) < 0.3 and 0.8 < np.std(z) < 1.2  # the model is the image's: z of an empty site ~ N(0, 1)


@pytest.mark.parametrize("block", [1, 7, 256])
def test_the_sites_per_batch_do_not_change_the_heights(lattice, block):
    """The batch size is a memory setting only: each site's least squares is its own (a bug mixing sites across
    a batch, or a padding slot read as a Gaussian, moves the heights by far more than 1e-9 of their scale)."""
    img, tm, li, half = lattice
    kw = dict(pixel_size_nm=PX, sigma_nm=SIGMA, radius_nm=pl.JOINT_SITE_WINDOW_WIDTHS * SIGMA, counts=True)
    h0, e0 = st.joint_site_heights(img, li, np.vstack([tm, li]), **kw)
    h, e = st.joint_site_heights(img, li, np.vstack([tm, li]), block=block, **kw)
    scale = np.nanmax(np.abs(h0))
    assert np.array_equal(np.isnan(h), np.isnan(h0)) and np.isfinite(h0).sum() > 150
    assert np.nanmax(np.abs(h - h0)) < 1e-9 * scale and np.nanmax(np.abs(e - e0)) < 1e-9 * scale


def _run(lattice, *, wide: bool = True, mixing: float = 0.1, on: bool = True, monkeypatch=None):
    img, tm, li_xy, half = lattice
    monkeypatch.setattr(pl, "JOINT_SITE_TEST", on, raising=False)
    li = pd.DataFrame({"x_nm": li_xy[:, 0], "y_nm": li_xy[:, 1], "detected": False, "mixing": mixing})
    tm_rows = pd.DataFrame({"x_nm": tm[:, 0], "y_nm": tm[:, 1], "detected": True})
    notes: list[str] = []
    pl._joint_site_columns(img, PX, (tm_rows, li), tm, li_xy, d_t=D_T, width_nm=SIGMA, wide=wide, counts=True,
                           notes=notes)
    return li["detected"].to_numpy(bool), notes


def test_half_occupied_sites_found_empty_ones_not(lattice, monkeypatch):
    found, notes = _run(lattice, monkeypatch=monkeypatch)
    _, _, li, half = lattice
    inner = _interior(li)
    # measured (seed 0): all 64 interior half-occupied sites (z 5.5 at least, median 7.3), none of the 156 empty ones
    # (their largest z 2.4); seeds 1-3: 76 / 78 / 63 of 76 / 78 / 63, none of 144 / 142 / 157
    assert (half & inner).sum() == 64 and (~half & inner).sum() == 156
    assert (found & half & inner).sum() >= 0.95 * (half & inner).sum()
    assert (found & ~half & inner).sum() <= 1
    assert len(notes) == 1


def test_a_disc_of_the_site_window_alone_finds_few(lattice, monkeypatch):
    # at 2 widths the neighbours' heights are read from their tails alone: 4 of the 64 half-occupied sites reach 4
    monkeypatch.setattr(pl, "JOINT_SITE_WINDOW_WIDTHS", 2.0, raising=False)
    found, _ = _run(lattice, monkeypatch=monkeypatch)
    _, _, li, half = lattice
    assert (found & half & _interior(li)).sum() <= 10


@pytest.mark.parametrize("kw", [dict(wide=False), dict(mixing=-0.1), dict(on=False)])
def test_not_tested_on_a_narrow_probe_below_zero_mixing_or_switched_off(lattice, monkeypatch, kw):
    found, _ = _run(lattice, monkeypatch=monkeypatch, **kw)
    assert not found.any()


def _draw_scores(seed: int, on: bool, monkeypatch) -> tuple[float, float]:
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    monkeypatch.setattr(pl, "JOINT_SITE_TEST", on)
    image, px, truth = draw_scene(seed)
    p = truth.parameters
    pm = pl.map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    sc = score_columns(pm.columns, truth.columns, extent_nm=(image.shape[1] * px, image.shape[0] * px),
                       margin_nm=MARGIN_NM)
    return sc.recall, sc.precision


# tuning seeds (fixed scenes): 102, 0.155 nm probe, 1.1e4 e/A^2, 6 visible columns missed; 4084, 0.151 nm, 2.5e3,
# where a placed site 5 pm from a detected Li-layer column would make a false row unless left out.
# Measured (91b9dc3 and this branch): off = base; on: RECALL_ON
RECALL_OFF = {102: 0.98561, 4084: 0.95775}
RECALL_ON = {102: 0.99520, 4084: 0.96338}


@pytest.mark.parametrize("seed", sorted(RECALL_ON))
def test_random_draws_recall_up_precision_kept(seed, monkeypatch):
    recall, precision = _draw_scores(seed, True, monkeypatch)
    assert recall >= RECALL_ON[seed] - 1e-4
    assert precision >= 0.999
    recall_off, _ = _draw_scores(seed, False, monkeypatch)
    assert abs(recall_off - RECALL_OFF[seed]) < 1e-4
