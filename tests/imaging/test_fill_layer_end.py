"""Spinel fill at the end of a Li layer (issue 19, helper fillend, 2026-12-05).

Two faults of the tuning draws, each with a known truth (docs/validation.md, "fillend"):

- ``interlayers._spinel_pool_fill``: a spinel segment holding sites of one sublattice only (the filled
  sites left beside a void) enters its layer's pooled run with its sublattice's mean balanced by the other
  sublattice's mean of the adjacent spinel segment, not with its plain mean, which the run's chi-square
  could not compare with the balanced means beside it (random draw 82: a 6-site segment stayed uncertain).
- ``pipeline._place_li_sites``: a TM column fitted outside the image does not place a Li-layer site
  (random draw 0: its extrapolated registry put three spinel sites at the end of a layer 0.08-0.17 nm off
  theirs, where they read -0.08, a wrong "no" for a truth of 0.83-1.0 TM per site); the site is put on the
  lattice of its layer's nearest other site (``_replace_from_neighbours``).
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, POOL_CHI2, interlayer_table


def _spinel_layer_with_filled_end():
    # One spinel Li layer: 6 sites alternating filled (index 0.5) / empty (0.0), counting error 0.25 each
    # (step O3), then 3 sites of the filled sublattice only (0.5, error 0.05; step O1, so a segment of its
    # own: the sites of the other sublattice lie in a void). Truth: filled 0.5, empty 0.
    m = np.r_[np.tile([0.5, 0.0], 3), np.full(3, 0.5)]
    e = np.r_[np.full(6, 0.25), np.full(3, 0.05)]
    t = _layer(1, m, e)
    t["relation"] = ["O3"] * 6 + ["O1"] * 3
    t["environment"] = "spinel"
    t["dark_sublattice"] = m == 0
    return t


def test_one_sublattice_segment_pools_as_a_balanced_one():
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02 and POOL_CHI2 == 4.5
    # By hand. Mixed segment: balanced 0.25, counting error sqrt(2 x 3 x 0.25^2 / 9) / 2 = 0.1021 ->
    # 0.25 - 2 x hypot(0.1021, 0.02) = 0.042 < 0.1: uncertain alone. End segment: plain mean 0.5, counting
    # error 0.05 / sqrt(3) = 0.0289 -> "yes" alone. Compared as they are (errors with 0.01): weights 95.2 and
    # 1072, chi-square 5.4 > 4.5 (POOL_CHI2; was 3 when written): no run, the mixed segment stays uncertain. The end segment balanced by its
    # neighbour's empty sublattice: (0.5 + 0.0) / 2 = 0.25, error sqrt(0.05^2 / 3 + 0.25^2 / 3) / 2 =
    # 0.0736: chi-square 0, one run of weights 1 / 0.1021^2 + 1 / 0.0736^2 = 280.6 -> 0.25 +- 0.0597,
    # 0.25 - 2 x hypot(0.0597, 0.02) = 0.124 > 0.1: "yes" from all 9 sites.
    t = interlayer_table(_spinel_layer_with_filled_end())
    assert len(t) == 2
    assert t["li_fill"].to_numpy() == pytest.approx([0.25, 0.5], abs=1e-9)  # reported: its own sites
    assert t["li_fill_count_sem"].iloc[1] == pytest.approx(0.05 / np.sqrt(3), rel=1e-9)
    assert t["mixing"].tolist() == ["yes", "yes"]
    assert t["mixing_sites"].tolist() == [9, 3]  # the end segment decided alone


def test_without_sublattices_the_mixed_segment_stays_uncertain():
    # Without ``dark_sublattice`` (plain means: 0.25 and 0.5) the run breaks at the end segment, as before.
    t = interlayer_table(_spinel_layer_with_filled_end().drop(columns="dark_sublattice"))
    assert t["mixing"].tolist() == ["uncertain", "yes"]


def test_draw_0_layer_end_spinel_sites_read_filled():
    # NMC811-like draw 0 (2.4e3 e/A^2): its spinel Li layer next to the top edge of the field. Before the
    # fix, the segment at the layer's end read -0.08 ("no", truth 0.83); now every spinel segment of the
    # draw is decided right (truth from the simulator's sites) and no fill decision is wrong.
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import _interlayer_scores, segment_truth

    image, px, truth = draw_scene(0)
    p = truth.parameters
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    cols = pm.columns
    tm = cols[cols["kind"] == "TM"]
    li = cols[cols["kind"] == "Li"]
    w, h = image.shape[1] * px, image.shape[0] * px
    outside = ~(tm["x_nm"].between(0, w) & tm["y_nm"].between(0, h))
    assert outside.any()  # the fault's cause is still in the scene ...
    placed_from = set(li["above"].dropna().astype(int)) | set(li["below"].dropna().astype(int))
    assert not placed_from & set(np.flatnonzero(outside.to_numpy()))  # ... but places no site itself
    seg = segment_truth(cols, pm.interlayers, truth)
    spinel = seg[seg["on_li_layer"].astype(bool) & (seg["truth_phase"] == "spinel")]
    want = np.where(spinel["truth_fill"] >= MIXING_THRESHOLD, "yes", "no")
    assert (spinel["mixing"].to_numpy() == want).all()
    scores = _interlayer_scores(seg)
    assert scores["fill_accuracy_spinel"] == 1.0
    assert scores["fill_wrong_yes"] == 0 and scores["fill_wrong_no"] == 0


def test_site_from_an_outside_column_moves_onto_its_layers_lattice():
    import pandas as pd

    from layerscope.imaging.pipeline import _replace_from_neighbours

    # Layer 3: trusted sites at u = 0, 0.25, 0.5 nm (column spacing 0.25 nm, step -1/3, contexts 0-2). Sites
    # placed from outside columns: u = 0.83 (an extrapolated registry, 0.08 nm off its lattice site 0.75),
    # 0.44 (on the site at 0.5), 1.6 (4 spacings out) and one in layer 5, which has no trusted site.
    sites = pd.DataFrame({"u_nm": [0.0, 0.25, 0.5, 0.83, 0.44, 1.6, 0.3], "v_nm": [1.0, 1.0, 1.0, 1.1, 1.0, 1.0, 2.0],
                          "layer": [3, 3, 3, 3, 3, 3, 5], "pair": [0, 1, 2, 3, 4, 5, 6], "context": [0, 1, 2, 3, 4, 5, 6],
                          "step": [-1 / 3] * 3 + [0.0] * 4})
    bad = np.array([False, False, False, True, True, True, True])
    out = _replace_from_neighbours(sites, bad, d_t=0.25)
    assert len(out) == 4
    moved = out.iloc[3]
    assert moved["u_nm"] == pytest.approx(0.75, abs=1e-12) and moved["v_nm"] == 1.0 and moved["layer"] == 3
    assert moved["pair"] == -1 and moved["context"] == 2 and moved["step"] == pytest.approx(-1 / 3)
