"""Runs of placed sites across a void as segments of their own: ``interlayer_table(cut_placed_runs=True)``
(issue 19, imgspinel4; off by default, docs/validation.md "imgspinel4")."""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging.interlayers import _placed_across, interlayer_table


def _void_layer():
    # 12 sites 0.25 nm apart: 4 measured (0.35 +- 0.03), 4 placed in a void (0.0 +- 0.01: no TM pair, not
    # detected), 1 measured rim site (0.30) and 3 measured (0.35)
    m = np.r_[np.full(4, 0.35), np.zeros(4), 0.30, np.full(3, 0.35)]
    e = np.r_[np.full(4, 0.03), np.full(4, 0.01), np.full(4, 0.03)]
    li = _layer(1, m, e)
    li["pair"] = np.r_[np.arange(4), np.full(4, -1), np.arange(8, 12)]
    li["detected"] = False
    return li


def test_placed_runs_by_hand():
    li = _void_layer()
    assert _placed_across(li).tolist() == [False] * 4 + [True] * 4 + [False] * 4
    li.loc[7, "detected"] = True  # a detected column is material: the run shrinks to 3 sites
    assert _placed_across(li).tolist() == [False] * 4 + [True] * 3 + [False] * 5
    li = _void_layer()
    li.loc[8:, "pair"] = -1  # placed sites that reach the layer's end: no measured site beyond, not cut
    assert not _placed_across(li).any()
    li = _void_layer()
    li.loc[5:7, "pair"] = np.arange(5, 8)  # one placed site alone (a one-site gap fill): not cut
    assert not _placed_across(li).any()


def test_cut_placed_runs_keeps_the_void_out_of_the_measured_fill():
    li = _void_layer()
    t = interlayer_table(li, cut_placed_runs=True)
    assert t["n_sites"].tolist() == [4, 4, 4]
    # the rim site's segment: (0.30 + 3 * 0.35) / 4 = 0.3375 +- 0.03 / 2 -> "yes"; the void reads 0 -> "no"
    assert t["li_fill"].to_numpy() == pytest.approx([0.35, 0.0, 0.3375], abs=1e-9)
    assert t["mixing"].tolist() == ["yes", "no", "yes"]
    assert interlayer_table(li)["n_sites"].tolist() != [4, 4, 4]  # off by default: main's segments
