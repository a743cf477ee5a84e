"""``phases`` recall under wide (~0.15 nm) probes: the columns its detection keeps only as evidence (issue 19, helper
imgphrec; docs/validation.md "imgphrec").

Of ``phases``' 164 misses on the 34 wide-probe tuning draws at >= 1e3 e/A^2 (main at 6667cb7), 109 had a placed site
(``detected`` False) within 0.07 nm: the generic finder's lattice and residual passes find 46 of them, and
``RESIDUAL_EVIDENCE`` runs those passes on ``phases``' own fits to confirm such sites. 23 more were full TM columns whose
Gaussian fit failed with no site placed there (their neighbours' fits pulled 1.7 spacings apart, or two failed side by
side): ``FAILED_FIT_REPORT`` reports such a lone failed fit as a detected column beyond the rows (put in the rows,
measured and removed, it moved the rims and twins of draws 56 and 4114). Random draws are fixed scenes (the seed fixes
every parameter and the noise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging import pipeline as pl

D_T = 0.25  # in-plane column spacing, nm


def _fits():
    """A 12 x 8 square lattice of fitted columns D_T apart from (0.5, 0.5) nm, and four failed fits: one on an empty
    site (lone), one 0.05 nm from a fitted column, one 0.1 nm from the image's edge, one a dim maximum (not fitted)."""
    g = np.stack(np.meshgrid(0.5 + D_T * np.arange(12), 0.5 + D_T * np.arange(8)), -1).reshape(-1, 2)
    empty = 5 * 12 + 6  # the site left out: the failed fit's column
    fitted = np.delete(g, empty, axis=0)
    failed = np.array([g[empty], fitted[10] + [0.05, 0.0], [0.1, 1.0], g[empty] + [0.0, 3 * D_T + 0.5]])
    xy = np.vstack([fitted, failed])
    n = len(fitted)
    tab = pd.DataFrame({"x_nm": xy[:, 0], "y_nm": xy[:, 1], "fit_ok": np.r_[np.ones(n, bool), np.zeros(4, bool)]})
    dim = np.r_[np.zeros(n + 3, bool), True]
    return tab, dim, n


def test_a_failed_fit_on_an_empty_site_is_lone():
    tab, dim, n = _fits()
    lone = pl._lone_failed_fits(tab, dim, (400, 400), 0.01, neighbour_nm=D_T, min_sep=0.85 * D_T)
    assert lone.tolist() == [False] * n + [True, False, False, False]


def test_a_lone_failed_fit_is_reported_beyond_the_rows_with_its_layer_kind():
    class Geo:
        tvec, nvec = np.array([1.0, 0.0]), np.array([0.0, 1.0])

    u = D_T * np.arange(10)
    # TM layers at y 0 and 0.48 nm, a Li layer at 0.24 nm; the TM layer at 0 lacks its sites 4 and 5
    rows = [(x, 0.0, "TM", 0) for i, x in enumerate(u) if i not in (4, 5)]
    rows += [(x, 0.24, "Li", 1) for x in u] + [(x, 0.48, "TM", 2) for x in u]
    table = pd.DataFrame(rows, columns=["x_nm", "y_nm", "kind", "layer"])
    failed = pd.DataFrame({"x_nm": [u[4] + 0.01, u[7] + 0.02, u[2]], "y_nm": [0.01, 0.24, 0.68],
                           "lone": [True, True, True]})
    notes: list[str] = []
    out = pl._unrowed_failed_fits(failed, table, Geo(), d_t=D_T, cation=0.24, notes=notes)
    # the first lies in the TM layer's gap; the second 0.02 nm from a Li-layer row (that row's column); the third
    # 0.2 nm beyond the last layer (on no layer)
    assert len(out) == 1 and len(notes) == 1
    assert out["kind"].tolist() == ["TM"] and out["layer"].tolist() == [-1]
    assert out["detected"].all() and not out["fit_ok"].any()
    assert out["x_nm"].iloc[0] == pytest.approx(u[4] + 0.01)


def _phases_score(seed, monkeypatch, **switches):
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    for name, value in switches.items():
        monkeypatch.setattr(pl, name, value)
    image, px, truth = draw_scene(seed)
    p = truth.parameters
    pm = pl.map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    return score_columns(pm.columns, truth.columns, extent_nm=(image.shape[1] * px, image.shape[0] * px),
                         margin_nm=MARGIN_NM)


@pytest.mark.parametrize("switch", [True, False])
def test_random_draw_102_placed_sites_confirmed_by_the_residual_pass(monkeypatch, switch):
    # tuning seed 102: 0.155 nm probe, 1.1e4 e/A^2. Measured: recall 0.9736 without (main at 6667cb7: 11 misses, 8
    # of them with a generic detection and a placed site within 0.07 nm), 0.9856 with the lattice and residual passes.
    # The joint site test (imgwide7) held off: it finds some of the same sites by their counts.
    sc = _phases_score(102, monkeypatch, RESIDUAL_EVIDENCE=switch, LATTICE_EVIDENCE=switch, FAILED_FIT_REPORT=False,
                       JOINT_SITE_TEST=False)
    if switch:
        assert sc.recall >= 0.983
    else:
        assert sc.recall == pytest.approx(0.9736, abs=0.001)
    assert sc.precision >= 0.99


@pytest.mark.parametrize("switch", [True, False])
def test_random_draw_2085_lone_failed_fits_reported(monkeypatch, switch):
    # tuning seed 2085: 0.149 nm probe, 1.5e3 e/A^2. Measured: recall 0.9616 without (main at 6667cb7: 9 full TM
    # columns whose fit failed, no site within 0.2 nm), 0.9847 with them reported (both with RESIDUAL_EVIDENCE on).
    sc = _phases_score(2085, monkeypatch, FAILED_FIT_REPORT=switch, RESIDUAL_EVIDENCE=True, LATTICE_EVIDENCE=True)
    if switch:
        assert sc.recall >= 0.98
    else:
        assert sc.recall == pytest.approx(0.9616, abs=0.001)
    assert sc.precision >= 0.99


def test_random_draw_4114_evidence_width_one_height_per_window(monkeypatch):
    # tuning seed 4114 (a wide probe): ``phases``' residual evidence with the one-height width. Measured (session 36,
    # lead): recall 0.9676, precision 0.9953 (0.9630 / 0.9952 with the heights-free width, the switch
    # EVIDENCE_HEIGHTS_FREE removed by pruneimg); the generic finder's own width is heights-free.
    sc = _phases_score(4114, monkeypatch)
    assert sc.recall == pytest.approx(0.9676, abs=0.001)
    assert sc.precision >= 0.99
