"""The image's own clean-layer level taken off the Li-layer index (issue 19, helper imgfill, 2026-12-05).

A clean Li layer's index is not zero (its Li columns' own scattering, the O columns' tails): random draws
2000-2199 read 0.01-0.03 on their clean layers, so a clean segment at 1e3 e/A^2 (counting error 0.02-0.03)
read 0.04-0.08 and stayed uncertain (0.06 + 2 x hypot(0.025, 0.02) > 0.1). ``interlayers.clean_level``: the
inverse-variance mean of the layered segments decided "no" in a first pass, where it lies
``CLEAN_LEVEL_SIGNIFICANCE`` errors above zero over >= ``CLEAN_LEVEL_SEGMENTS`` segments, is taken off the
index of every layered site before the decision (docs/validation.md, "imgfill").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging.interlayers import (CLEAN_LEVEL_SIGNIFICANCE, MIXING_SYSTEMATIC, MIXING_THRESHOLD,
                                            clean_level, interlayer_table)


def _scene(clean: float, second: float, *, mixed: float = 0.3):
    # Layers 1 and 3: 32 clean sites at ``clean`` (error 0.01 per site: 0.0035 per 8-site segment, "no"
    # with 0.02 systematic when clean + 2 x 0.0203 < 0.1). Layer 5: 8 sites at ``second`` with error 0.06
    # (0.0212 per segment): a clean segment of a noisy stretch. Layer 7: 8 mixed sites at ``mixed``
    # (error 0.05: 0.0177).
    return pd.concat([_layer(1, np.full(32, clean), np.full(32, 0.01)), _layer(3, np.full(32, clean), np.full(32, 0.01)),
                      _layer(5, np.full(8, second), np.full(8, 0.06)), _layer(7, np.full(8, mixed), np.full(8, 0.05))],
                     ignore_index=True)


def test_clean_level_taken_off_by_hand():
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02 and CLEAN_LEVEL_SIGNIFICANCE == 2.0
    # First pass: layers 1 and 3 (8 segments at 0.03 +- 0.01 / sqrt(8)) "no"; layer 5 at 0.06: 0.06 + 2 x
    # hypot(0.0212, 0.02) = 0.118 > 0.1, uncertain. Level: the mean of the 8 "no" segments, 0.03, error
    # 0.01 / sqrt(64) = 0.00125 (significant). Second pass: layer 5 reads 0.03, 0.03 + 0.058 < 0.1: "no";
    # the mixed layer 0.27 - 2 x hypot(0.0177, 0.02) > 0.1: "yes"; the clean layers read 0.0.
    t = interlayer_table(_scene(0.03, 0.06))
    by = t.groupby("li_layer")
    assert by["mixing"].agg(set).to_dict() == {1: {"no"}, 3: {"no"}, 5: {"no"}, 7: {"yes"}}
    assert t["clean_level"].to_numpy() == pytest.approx(0.03, abs=1e-12)
    assert t["clean_level_sem"].to_numpy() == pytest.approx(0.01 / 8, rel=1e-9)
    assert by["li_fill"].mean().to_numpy() == pytest.approx([0.0, 0.0, 0.03, 0.27], abs=1e-12)
    assert t["li_fill_count_sem"].iloc[-1] == pytest.approx(0.05 / np.sqrt(8), rel=1e-12)


def test_level_not_taken_below_zero_or_within_noise():
    # Clean layers at -0.05 (an offset of the background, as under wide probes): not taken, the index stays.
    t = interlayer_table(_scene(-0.05, 0.06))
    assert (t["clean_level"] == 0).all() and t.loc[t["li_layer"] == 5, "mixing"].tolist() == ["uncertain"]
    assert t.loc[t["li_layer"] == 1, "li_fill"].to_numpy() == pytest.approx(-0.05, abs=1e-12)
    # Clean layers at 0.002 +- 0.00125: within 2 errors of zero, nothing is taken off.
    assert clean_level(interlayer_table(_scene(0.002, 0.06))) == (0.0, 0.0)


def test_fewer_than_three_clean_segments_take_nothing():
    # One 16-site clean layer: two "no" segments only.
    t = interlayer_table(pd.concat([_layer(1, np.full(16, 0.04), np.full(16, 0.01)),
                                    _layer(3, np.full(8, 0.06), np.full(8, 0.06))], ignore_index=True))
    assert (t["clean_level"] == 0).all() and t["li_fill"].iloc[0] == pytest.approx(0.04, abs=1e-12)


def test_spinel_and_rock_salt_sites_keep_their_index():
    # A rock-salt layer (index 0.9) beside the clean layers: its fill is not shifted by the clean level.
    rs = _layer(9, np.full(8, 0.9), np.full(8, 0.05)).assign(environment="rock_salt")
    t = interlayer_table(pd.concat([_scene(0.03, 0.06), rs], ignore_index=True))
    row = t[t["li_layer"] == 9]
    assert row["li_fill"].iloc[0] == pytest.approx(0.9, abs=1e-12) and row["clean_level"].iloc[0] == 0.0
    assert t.loc[t["li_layer"] == 1, "clean_level"].to_numpy() == pytest.approx(0.03, abs=1e-12)


@pytest.mark.parametrize("seed", [2080, 2135])
def test_random_draws_with_clean_layers_read_high(seed):
    # Tuning range 2000-2199. 2080 (Li-rich [100], 3.0e3 e/A^2, 0.071 nm probe; clean level 0.023) and
    # 2135 (Li-rich [100], 1.2e3, 0.044 nm; 0.030): clean segments read 0.044-0.073 +- 0.014-0.025 and
    # stayed uncertain: fill 0.948 / 0.912, rims 0.851 / 0.955 before; after >= 0.98 fill, and no wrong decision.
    from layerscope.simulate.validation import score_draw

    row = score_draw(seed)
    assert row["fill_wrong_yes"] == 0 and row["fill_wrong_no"] == 0
    assert row["fill_accuracy"] >= 0.98
    assert row["step_accuracy"] == 1.0


def test_empty_o1_layers_have_their_own_level():
    # imgnarrow: the Li layers of an O1 (delithiated) block hold no Li and read below the O3 layers (random
    # draw 2033: O1 segments -0.012 to -0.019 +- 0.002-0.003, O3 clean ones +0.02-0.05 +- 0.006). Pooled by
    # their counting errors, two empty O1 layers at -0.015 +- 0.004 per site (8 segments of weight
    # 1 / (0.004 / sqrt 8)^2) outweigh the O3 layers at 0.03 +- 0.01: (8 x 0.03 / 0.01^2 - 8 x 0.015 / 0.004^2)
    # < 0, no level, and the noisy O3 layer at 0.06 stays "uncertain". Each stacking group measured apart:
    # the O3 level 0.03 +- 0.00125 is taken off the O3 sites (layer 5 "no"), the O1 level (negative) is not
    # taken and the O1 layers keep -0.015.
    o1 = pd.concat([_layer(k, np.full(32, -0.015), np.full(32, 0.004)) for k in (9, 11)], ignore_index=True)
    t = interlayer_table(pd.concat([_scene(0.03, 0.06), o1.assign(relation="O1", registry=0.0)], ignore_index=True))
    by = t.groupby("li_layer")
    assert by["mixing"].agg(set).to_dict() == {1: {"no"}, 3: {"no"}, 5: {"no"}, 7: {"yes"}, 9: {"no"}, 11: {"no"}}
    assert by["clean_level"].max().to_numpy() == pytest.approx([0.03, 0.03, 0.03, 0.03, 0.0, 0.0], abs=1e-12)
    assert by["clean_level"].min().to_numpy() == pytest.approx([0.03, 0.03, 0.03, 0.03, 0.0, 0.0], abs=1e-12)
    assert by["li_fill"].mean().to_numpy() == pytest.approx([0.0, 0.0, 0.03, 0.27, -0.015, -0.015], abs=1e-12)


def test_clean_spread_by_hand():
    # imgnarrow: sqrt(mean((f - level)^2 - e^2)) over the layered "no" segments, within [0.01, 0.02].
    from layerscope.imaging.interlayers import CLEAN_SPREAD_FLOOR, clean_spread

    assert CLEAN_SPREAD_FLOOR == 0.01

    def table(f):
        return pd.DataFrame({"environment": "layered", "mixing": "no", "li_fill": f, "li_fill_count_sem": 0.005})

    # (0.015^2 - 0.005^2) = 0.0002: 0.01414
    assert clean_spread(table([0.015, 0.045, 0.015, 0.045]), 0.03) == pytest.approx(np.sqrt(2e-4), rel=1e-9)
    # (0.01^2 - 0.005^2) = 7.5e-5: 0.0087, below the floor
    assert clean_spread(table([0.02, 0.04, 0.02, 0.04]), 0.03) == CLEAN_SPREAD_FLOOR
    # (0.03^2 - 0.005^2): 0.0296, above MIXING_SYSTEMATIC
    assert clean_spread(table([0.0, 0.06, 0.0, 0.06]), 0.03) == MIXING_SYSTEMATIC
    # two segments, or "uncertain" / spinel ones: not measured
    assert clean_spread(table([0.015, 0.045]), 0.03) == MIXING_SYSTEMATIC
    assert clean_spread(table([0.015, 0.045, 0.015, 0.045]).assign(environment="spinel"), 0.03) == MIXING_SYSTEMATIC


def test_mixed_segment_decided_with_the_measured_spread():
    # The clean layers of _scene read 0.03 +- 0.01 per site, no spread beyond counting: the floor 0.01 replaces
    # 0.02 once their level is off. A mixed layer at 0.185 (0.155 after the level) with 0.0566 per site
    # (0.02 per 8-site segment): 0.155 - 2 x hypot(0.02, 0.02) = 0.098 "uncertain" with 0.02, 0.155 - 2 x
    # hypot(0.02, 0.01) = 0.110 "yes" now (truth of such a segment, e.g. random draw 2107: 0.150).
    t = interlayer_table(_scene(0.03, 0.06, mixed=0.185).assign(
        mixing_sem=lambda d: np.where(d["layer"] == 7, 0.02 * np.sqrt(8), d["mixing_sem"])))
    row = t[t["li_layer"] == 7]
    assert row["li_fill"].iloc[0] == pytest.approx(0.155, abs=1e-12)
    assert row["li_fill_count_sem"].iloc[0] == pytest.approx(0.02, rel=1e-12)
    assert row["mixing"].tolist() == ["yes"]
    assert t.loc[t["li_layer"] == 5, "mixing"].tolist() == ["no"]


def test_fill_systematic_column_is_the_error_of_the_decision():
    # _scene(0.03, ...): a level is taken; the clean segments read 0.03 +- 0.0035 each (no spread beyond counting):
    # clean_spread gives its floor, and every counted segment's yes/no follows li_fill +- 2 hypot(sem, 0.01).
    from layerscope.imaging.interlayers import CLEAN_SPREAD_FLOOR, _decide

    t = interlayer_table(_scene(0.03, 0.06))
    assert t["fill_systematic"].to_numpy() == pytest.approx(CLEAN_SPREAD_FLOOR, abs=1e-15)
    own = t["mixing_sites"] == t["n_sites"]
    d = _decide(t["li_fill"], np.hypot(t["li_fill_count_sem"], t["fill_systematic"]), MIXING_THRESHOLD)
    assert own.sum() >= 10 and (d[own.to_numpy()] == t.loc[own, "mixing"].to_numpy()).all()
    # No level taken (clean layers below zero): the fixed systematic error.
    assert interlayer_table(_scene(-0.05, 0.06))["fill_systematic"].to_numpy() == pytest.approx(MIXING_SYSTEMATIC)
