"""A clean level at zero: the decision's error beyond counting measured on the image's clean layers
(``interlayers.ZERO_LEVEL_SPREAD``; issue 19, helper imgfill2, 2026-12-07).

At 1-2e3 e/A^2 the clean Li layers of narrow-probe random draws 3037, 7094, 5026 read 0 +- their counting errors
(no level to take off), so their segments were decided with the fixed ``MIXING_SYSTEMATIC`` (0.02), the spread of
clean layers about zero where it is not measured. A clean layer's run of 24-27 sites read 0.05-0.06 +- 0.016 and
stayed "uncertain" by that 0.02 alone. Now the image's clean segments' spread about zero beyond counting
(``clean_spread`` with level 0, at least ``CLEAN_SPREAD_FLOOR``) is the error, as where a level is taken.

The scene: Li layers of O3 sites at a dose where the counting error of a site's index is 0.08 (random draw
7094, 1.2e3 e/A^2: 0.085), no TM reference (segments pool by their errors). Every number below is by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging import interlayers
from layerscope.imaging.interlayers import CLEAN_SPREAD_FLOOR, MIXING_SYSTEMATIC, MIXING_THRESHOLD, interlayer_table

SITE_SEM = 0.08  # counting error of one site's index (dimensionless), ~1e3 e/A^2 under a narrow probe
PATTERN = np.tile([0.02, -0.02], 4)  # the sites' readings about their segment's mean: no spread beyond counting


def _scene() -> pd.DataFrame:
    # Layers 1, 3, 5: clean (occupancy 0), 24 sites each reading 0 +- 0.02 -> 9 segments of 8 at 0.0 +- 0.0283
    # (0.08 / sqrt 8): "no" in the first pass (0 + 2 hypot(0.0283, 0.02) = 0.069 < 0.1); their level 0 is not
    # significant (not taken) and their spread beyond counting is none (mean(f^2 - e^2) < 0): CLEAN_SPREAD_FLOOR.
    # Layer 7: 24 sites of a sparsely exchanged layer (0.03 TM per site) reading 0.05 (1.2 of its run's errors high).
    # Layer 9: one segment of 8 sites reading 0.05: the same reading with a third of the sites.
    clean = [_layer(k, np.tile(PATTERN, 3), np.full(24, SITE_SEM)) for k in (1, 3, 5)]
    return pd.concat(clean + [_layer(7, 0.05 + np.tile(PATTERN, 3), np.full(24, SITE_SEM)),
                              _layer(9, 0.05 + PATTERN, np.full(8, SITE_SEM))], ignore_index=True)


def test_clean_run_at_low_dose_decided_with_the_measured_spread(monkeypatch):
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02 and CLEAN_SPREAD_FLOOR == 0.01
    seg = SITE_SEM / np.sqrt(8)  # 0.0283
    run = seg / np.sqrt(3)  # 0.0163: layer 7's three segments pooled (chi-square 0)
    # Layer 7's segments alone: 0.05 + 2 hypot(0.0283, 0.01) = 0.110 -> uncertain; its pooled run:
    # 0.05 + 2 hypot(0.0163, 0.01) = 0.088 < 0.1 -> "no" (right: occupancy 0.03). With the fixed 0.02 (main):
    # 0.05 + 2 hypot(0.0163, 0.02) = 0.1016 -> uncertain.
    assert 0.05 + 2 * np.hypot(run, CLEAN_SPREAD_FLOOR) < MIXING_THRESHOLD < 0.05 + 2 * np.hypot(run, MIXING_SYSTEMATIC)
    t = interlayer_table(_scene())
    by = t.groupby("li_layer")
    assert t["fill_systematic"].to_numpy() == pytest.approx(CLEAN_SPREAD_FLOOR, abs=1e-15)
    assert (t["clean_level"] == 0).all()
    assert t.loc[t["li_layer"] == 7, "li_fill"].to_numpy() == pytest.approx(0.05, abs=1e-12)
    assert t.loc[t["li_layer"] == 7, "li_fill_count_sem"].to_numpy() == pytest.approx(seg, rel=1e-12)
    assert by["mixing"].agg(set).to_dict() == {1: {"no"}, 3: {"no"}, 5: {"no"}, 7: {"no"}, 9: {"uncertain"}}
    assert t.loc[t["li_layer"] == 7, "mixing_sites"].tolist() == [24, 24, 24]
    monkeypatch.setattr(interlayers, "ZERO_LEVEL_SPREAD", False)  # main: the fixed 0.02, layer 7 uncertain
    off = interlayer_table(_scene())
    assert off.loc[off["li_layer"] == 7, "mixing"].tolist() == ["uncertain"] * 3
    assert off["fill_systematic"].to_numpy() == pytest.approx(MIXING_SYSTEMATIC, abs=1e-15)


def test_one_segment_the_counts_cannot_decide_stays_uncertain():
    # Layer 9: 8 sites reading 0.05 +- 0.0283, nothing to pool with: 0.05 + 2 hypot(0.0283, 0.01) = 0.110 > 0.1 and
    # 0.05 - 0.060 < 0.1: both a clean layer and one at the threshold lie within two errors -- uncertain.
    t = interlayer_table(_scene())
    row = t[t["li_layer"] == 9]
    assert row["mixing"].tolist() == ["uncertain"] and row["mixing_sites"].tolist() == [8]
    assert 0.05 + 2 * np.hypot(SITE_SEM / np.sqrt(8), CLEAN_SPREAD_FLOOR) > MIXING_THRESHOLD


def test_clean_layers_with_a_spread_keep_it_and_below_zero_keep_the_fixed_error():
    # The clean layers read 0 +- 0.02 per segment beyond counting (segments alternating +-0.02 about 0 with errors
    # 0.0035): spread sqrt(0.02^2 - 0.0035^2) = 0.0197 is the error. Clean layers at -0.05 (a wide probe's offset):
    # their spread about zero is 0.05, capped at MIXING_SYSTEMATIC -- as before.
    segs = [_layer(k, np.full(8, v), np.full(8, 0.01)) for k, v in ((1, 0.02), (3, -0.02), (5, 0.02), (7, -0.02))]
    t = interlayer_table(pd.concat(segs, ignore_index=True))
    assert t["fill_systematic"].to_numpy() == pytest.approx(np.sqrt(0.02**2 - 0.01**2 / 8), rel=1e-9)
    low = interlayer_table(pd.concat([_layer(k, np.full(8, -0.05), np.full(8, 0.01)) for k in (1, 3, 5)],
                                     ignore_index=True))
    assert low["fill_systematic"].to_numpy() == pytest.approx(MIXING_SYSTEMATIC, abs=1e-15)
