"""Spinel fill when the empty sublattice reads below zero (issue 19, helper imgspinel, 2026-12-05).

``interlayers._balanced``: a spinel segment's fill per octahedral site is the mean of its two sublattices'
means, or half their difference where the empty (dark) sublattice reads more than
``EMPTY_OFFSET_SIGNIFICANCE`` counting errors below zero: no site holds fewer than no TM atoms, so that
reading is an offset of the index (under a wide probe, the bright neighbours' tails taken as background)
that the filled sites share. Random draw 2031 (0.149 nm probe, 2.2e4 e/A^2): empty sublattices read
-0.16 +- 0.04 beside filled ones at 0.48, and two spinel segments (truth 1.0 TM per filled site) were left
uncertain (docs/validation.md, "imgspinel").
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging.interlayers import EMPTY_OFFSET_SIGNIFICANCE, MIXING_SYSTEMATIC, MIXING_THRESHOLD, interlayer_table


def _spinel_segment(empty: float):
    # 8 sites of one spinel Li layer, alternating filled (index 0.45, counting error 0.2) and empty (index
    # ``empty``, error 0.05): one segment (8 sites, one step).
    m = np.tile([0.45, empty], 4)
    e = np.tile([0.2, 0.05], 4)
    t = _layer(1, m, e)
    t["environment"] = "spinel"
    t["dark_sublattice"] = np.tile([False, True], 4)
    return t


def test_empty_sublattice_below_zero_is_an_offset():
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02 and EMPTY_OFFSET_SIGNIFICANCE == 2.0
    # By hand. Empty sublattice (the layer's only segment): -0.15, counting error sqrt(4 x 0.05^2) / 4 = 0.025;
    # -0.15 + 2 x 0.025 < 0: an offset. Fill (0.45 - 0.15) / 2 + 0.15 = 0.30 (the plain balance: 0.15); error
    # sqrt(4 x 0.2^2 / 16 + 0.025^2) / 2 = 0.05154 -> 0.30 - 2 x hypot(0.05154, 0.02) = 0.189 > 0.1: "yes"
    # (the plain balance: 0.15 - 0.111 = 0.039, uncertain).
    t = interlayer_table(_spinel_segment(-0.15))
    assert len(t) == 1
    assert t["li_fill"].iloc[0] == pytest.approx(0.30, abs=1e-9)
    assert t["li_fill_count_sem"].iloc[0] == pytest.approx(np.sqrt(0.01 + 0.025 ** 2) / 2, rel=1e-9)
    assert t["mixing"].iloc[0] == "yes"


def test_empty_sublattice_within_noise_keeps_the_plain_balance():
    # -0.03 + 2 x 0.025 = 0.02 >= 0: noise, not an offset. Fill (0.45 - 0.03) / 2 = 0.21 (not 0.24);
    # 0.21 - 0.111 = 0.099 < 0.1: uncertain, as before the change.
    t = interlayer_table(_spinel_segment(-0.03))
    assert t["li_fill"].iloc[0] == pytest.approx(0.21, abs=1e-9)
    assert t["mixing"].iloc[0] == "uncertain"


def test_draw_2031_spinel_layers_read_filled():
    # NMC622 [100], 0.149 nm probe, 2.2e4 e/A^2 (tuning range 2000-2199). Before the change two spinel
    # segments of its last spinel Li layer (truth: 1.0 TM per filled site) read 0.16 and 0.21 and stayed
    # uncertain (spinel fill 0.6875); now every spinel segment is decided right and no decision is wrong.
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import _interlayer_scores, segment_truth

    image, px, truth = draw_scene(2031)
    p = truth.parameters
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    scores = _interlayer_scores(segment_truth(pm.columns, pm.interlayers, truth))
    assert scores["fill_accuracy_spinel"] == 1.0
    assert scores["fill_accuracy"] == 1.0
    assert scores["fill_wrong_yes"] == 0 and scores["fill_wrong_no"] == 0
