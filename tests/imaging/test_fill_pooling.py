"""A Li layer's run of agreeing segments pools its sites, not its segments' means (issue 19, fill).

``layerscope.imaging.interlayers._site_weights``: an uncertain segment takes the decision of the run of
its Li layer whose fills agree. The run's fill was the inverse-variance mean of its segments' plain
means, each carrying the error of its noisiest site, so the same sites decided differently as the
cuts moved (random draw 56: a false column in a void cut a clean layer there; without it the layer's
pooled fill went uncertain). Sites are now pooled one by one, weighted by their TM reference
(``(tm_reference / s)^2``), not by their own Poisson errors (which would favour sites that caught fewer
electrons and read a mixed layer low). docs/validation.md, helper noise2, 2026-12-04.
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, interlayer_table


def _clean_layer_with_a_thin_end():
    # 39 O3 sites of a clean Li layer (truth index 0): 3 at a thin end (TM reference 0.04, index error
    # 1.5, i.e. intensity error 0.06; indices 1.9, 1.8, -1.0) and 36 in the bulk (reference 0.4, index
    # error 0.25, intensity error 0.1; indices 0.2, -0.2, 0.1, -0.1, 0, 0.05, -0.05, 0.15, -0.15 four
    # times: mean 0).
    m = np.r_[1.9, 1.8, -1.0, np.tile([0.2, -0.2, 0.1, -0.1, 0.0, 0.05, -0.05, 0.15, -0.15], 4)]
    e = np.r_[np.full(3, 1.5), np.full(36, 0.25)]
    t = _layer(1, m, e)
    t["tm_reference"] = np.r_[np.full(3, 0.04), np.full(36, 0.4)]
    return t


@pytest.mark.parametrize("max_sites", [4, 6, 8, 12, 16])
def test_pooled_decision_does_not_depend_on_the_cut(max_sites):
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02
    # By hand: s = median(index error x reference) = 0.1; weights (0.4 / 0.1)^2 = 16 (bulk) and
    # (0.04 / 0.1)^2 = 0.16 (thin end). Pooled index 0.16 x 2.7 / 576.48 = 0.0007, counting error
    # sqrt(36 x (16 x 0.25)^2 + 3 x (0.16 x 1.5)^2) / 576.48 = 0.0416: 0.0007 + 2 x hypot(0.0416, 0.02)
    # = 0.093 < 0.1 -> "no" from all 39 sites, whatever the cut. Every segment alone is uncertain
    # (8 bulk sites: 2 x hypot(0.088, 0.02) = 0.18). Pooling the segments' plain means instead gave
    # "no" for cuts of 4 and 6 sites, "uncertain" for 8, 12 and 16 (the thin end's segment, e.g.
    # 0.34 +- 0.33 for 8, pulls the pooled mean up with its bulk sites kept at its weight).
    t = interlayer_table(_clean_layer_with_a_thin_end(), max_sites=max_sites)
    assert len(t) == int(np.ceil(39 / max_sites))
    assert (t["mixing"] == "no").all()
    assert (t["mixing_sites"] == 39).all()


@pytest.mark.parametrize(("max_sites", "want"), [(6, "no"), (8, "uncertain")])
def test_without_reference_the_segments_pool_as_before(max_sites, want):
    # No tm_reference column (tables made by hand): the segments' means pool by their errors, as before.
    t = interlayer_table(_clean_layer_with_a_thin_end().drop(columns="tm_reference"), max_sites=max_sites)
    assert (t["mixing"] == want).all()


def test_draw_56_clean_layers_across_a_void_decide():
    # NMC811 [110], 0.157 nm probe, 2.3e3 e/A^2, two voids: with the sparse-count noise test the six false
    # TM columns inside a void are gone, and the clean layers across it pool all their sites: fill 0.689
    # (main before both changes: 0.659), rim fill 0.667 (4 of 6 rim segments decided, 2 uncertain), none
    # wrong. These are the numbers on every CPU since the fit's normal equations are summed in float64;
    # with float32 sums one dim TM column's fit converged on AVX-512 BLAS and failed on AVX2 BLAS, and
    # an AVX2 machine read rim 1.0 / fill 0.831 (docs/validation.md, "Same numbers on every CPU").
    from layerscope.simulate.validation import score_draw

    row = score_draw(56)
    assert row["fill_wrong_yes"] == 0 and row["fill_wrong_no"] == 0
    assert row["fill_accuracy_rim"] >= 0.6
    assert row["fill_accuracy"] >= 0.68
