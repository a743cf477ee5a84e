"""How far a Li layer's segments may disagree and still pool their counts (``interlayers.POOL_CHI2``; issue 19,
imgspinel8).

An uncertain segment takes the decision of the run of adjacent segments of its layer whose fills agree: the
run's reduced chi-square (counting errors and half the systematic) at most ``POOL_CHI2``. At ~1e3 e/A^2 a clean
segment that reads two to three counting errors high beside clean neighbours (random draws 2177, 4160: 0.053 +-
0.027 and 0.082 +- 0.025, truth 0) is a run of its own and stays "uncertain". Truth below: a hand-made clean layer
(index 0 at every site) and a layer with a real change (0 beside 0.2).
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging import interlayers
from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, interlayer_table

SPREAD = np.array([-0.03, 0.03, -0.02, 0.02, -0.01, 0.01, 0.0])  # mean 0


def _three_segments(middle: float, sides: float = 0.0):
    # Three 7-site segments, index error 0.05 per site (segment: 0.05 / sqrt(7) = 0.0189): sides, middle, sides.
    m = np.r_[sides + SPREAD, middle + SPREAD, sides + SPREAD]
    return _layer(1, m, np.full(m.size, 0.05))


@pytest.mark.parametrize(("chi2", "want"), [(3.0, ["no", "uncertain", "no"]), (4.5, ["no", "no", "no"])])
def test_a_clean_segment_two_errors_high_pools_with_its_layer(monkeypatch, chi2, want):
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02
    # By hand. Middle alone: 0.055 + 2 x hypot(0.0189, 0.02) = 0.110 > 0.1: uncertain; sides 0 + 0.055 < 0.1:
    # "no". Pair (side, middle), errors with 0.01: weight 1 / (0.0189^2 + 0.01^2) = 2188, mean 0.0275,
    # chi-square 2188 x 2 x 0.0275^2 = 3.31: > 3 no run; <= 4.5 a run, and the third segment joins it
    # (chi-square 2.21). Run of 21 sites: 0.0183 +- 0.0109 -> 0.0183 + 2 x hypot(0.0109, 0.02) = 0.064 < 0.1.
    monkeypatch.setattr(interlayers, "POOL_CHI2", chi2)
    t = interlayer_table(_three_segments(0.055), max_sites=7)
    assert t["li_fill"].to_numpy() == pytest.approx([0.0, 0.055, 0.0], abs=1e-12)
    assert t["mixing"].tolist() == want
    assert t["mixing_sites"].tolist() == ([7, 7, 7] if chi2 == 3.0 else [7, 21, 7])


def test_the_default_pools_the_two_error_segment():
    # The default (imgspinel8): the clean layer above decides "no" in all three segments.
    assert interlayers.POOL_CHI2 == 4.5
    assert interlayer_table(_three_segments(0.055), max_sites=7)["mixing"].tolist() == ["no", "no", "no"]


def test_a_real_change_does_not_pool():
    # Middle 0.14 (truth above the threshold, alone uncertain: 0.14 - 0.055 = 0.085 < 0.1) between clean sides:
    # pair chi-square 2188 x 2 x 0.07^2 = 21 > 4.5 (any POOL_CHI2 up to 20): no run, it stays uncertain, not "no".
    t = interlayer_table(_three_segments(0.14), max_sites=7)
    assert t["mixing"].tolist() == ["no", "uncertain", "no"]
