"""A "no" that out-votes a clearly filled site is not one clean segment (issue 19, imgcrack).

A basal crack through a mixed Li layer alone (both TM layers stay) leaves sites placed in the crack that read ~0,
like clean Li sites: neither ``site_in_void`` nor ``site_at_gap`` marks them, and their local background does not
tell them from material (docs/validation.md "imgspinel9"). Where seven of them share a segment with one real site
of the layer, ``split_fill_changes`` cannot cut that site off (:data:`interlayers.SPLIT_MIN_SITES` = 2) and the
segment read "no" for a truth of 0.2 TM per site (random draw 4179: a wrong "no"). A clean Li layer holds no TM, so
a site reading :data:`interlayers.FILLED_SITE_SIGNIFICANCE` (3.5) errors above the threshold contradicts "no":
with :data:`interlayers.NO_WITH_FILLED_SITE` (on) such a segment is "uncertain" unless its layer's pooled run says
"yes". Truth: the hand-made readings below (their z worked out by hand) and the random draw's own scoring
(``layerscope.simulate.validation.score_draw``).
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import li_layer_sites
from layerscope.imaging import interlayers

#: 4179's segment 13/1 (1.1e4 e/A^2; main's column table), in order along the layer: seven crack sites at
#: -0.02..0.02 (+- 0.012-0.02), then the layer's real site 0.32 +- 0.05
CRACK = np.array([-0.0070, 0.0069, -0.0042, 0.0031, 0.0049, 0.0241, -0.0194])
CRACK_SEM = np.array([0.0203, 0.0173, 0.0120, 0.0146, 0.0159, 0.0153, 0.0157])


def _segment(filled: float, filled_sem: float):
    return li_layer_sites(1, np.r_[CRACK, filled], np.r_[CRACK_SEM, filled_sem])


def test_a_no_holding_a_clearly_filled_site_is_uncertain(monkeypatch):
    # z of the filled site: (0.32 - 0.1) / hypot(0.05, 0.02) = 4.09 > 3.5. No cut (the last two sites, 0.15 +- 0.026,
    # do not decide "yes"). The segment's mean 0.040 +- 0.008 (counting) reads "no" (0.040 + 2 hypot(0.008, 0.02) =
    # 0.083 < 0.1) on main; with the rule (default) "uncertain".
    assert interlayers.NO_WITH_FILLED_SITE is True and interlayers.FILLED_SITE_SIGNIFICANCE == 3.5
    t = interlayers.interlayer_table(_segment(0.32, 0.05))
    assert t["n_sites"].tolist() == [8]
    assert t["li_fill"].iloc[0] == pytest.approx((CRACK.sum() + 0.32) / 8, abs=1e-9)
    assert t["mixing"].tolist() == ["uncertain"]
    monkeypatch.setattr(interlayers, "NO_WITH_FILLED_SITE", False)  # main's reading: a confident "no"
    assert interlayers.interlayer_table(_segment(0.32, 0.05))["mixing"].tolist() == ["no"]


def test_a_noisy_site_does_not_undo_a_clean_no():
    # A clean segment whose highest site reads 0.15 +- 0.05 (z = 0.05 / 0.054 = 0.93) or 0.25 +- 0.05 (z = 2.79, as high
    # as any correct "no" segment of the 257 cached tuning draws: 2.84) stays "no"; so does one whose site is filled but
    # carries a large error (0.35 +- 0.08: z = 3.03).
    for filled, sem in ((0.15, 0.05), (0.25, 0.05), (0.35, 0.08)):
        assert interlayers.interlayer_table(_segment(filled, sem))["mixing"].tolist() == ["no"], (filled, sem)


def test_random_draw_4179_crack_segment_no_longer_reads_no(monkeypatch):
    # Random draw 4179 (NMC622 [100], 1.1e4 e/A^2): a basal crack 0.39 nm wide through mixed Li layer 13 alone. Its
    # segment 13/1 (7 crack sites and one real site, truth 0.2) read 0.033 "no" on main: the only wrong "no" of the
    # 257 cached tuning draws. With the rule it reads "uncertain" (its run of the layer does not pool: the segments
    # beside it read 0.34): the wrong "no" is gone, the fill score (a miss either way) unchanged.
    from imaging_scenes import scored_off_and_on

    off, on = scored_off_and_on(monkeypatch, interlayers, "NO_WITH_FILLED_SITE", 4179)
    assert off["fill_wrong_no"] == 1 and off["fill_wrong_yes"] == 0
    assert on["fill_wrong_no"] == 0 and on["fill_wrong_yes"] == 0
    assert on["fill_accuracy"] == pytest.approx(off["fill_accuracy"], abs=1e-9)
    assert on["fill_uncertain"] > off["fill_uncertain"]
    assert on["step_accuracy"] == off["step_accuracy"] and on["phases_recall"] == off["phases_recall"]
