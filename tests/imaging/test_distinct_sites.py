"""One octahedral site counted once in the Li-layer fill (issue 19, helper imgspinel6).

``layerscope.imaging.interlayers.distinct_sites``: the column table can hold one Li-layer site twice
(layer-end extensions of both sides meeting in a void, a detected column beside the site placed at it);
random draws 3035 and 4191 hold such copies in a void across a spinel Li layer, where the void then
weighs twice in the segment's balanced fill (docs/validation.md, "imgspinel6").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging import interlayers
from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, distinct_sites, interlayer_table


def _spinel_layer_with_a_copied_void_site():
    # 7 sites of one spinel Li layer 0.25 nm apart: filled (bright) sites at 0.25, 0.75 and 1.25 nm, the one at
    # 0.75 nm in a void (reads 0.0), and a copy of that void site 0.002 nm beside it (placed from the other side).
    m = np.array([0.0, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
    e = np.array([0.03, 0.06, 0.03, 0.03, 0.03, 0.06, 0.03, 0.03])
    t = _layer(1, m, e)
    t["u_nm"] = t["x_nm"] = np.r_[np.arange(7) * 0.25, 0.752]
    t["dark_sublattice"] = np.r_[np.arange(7) % 2 == 0, False]
    t["pair"] = np.r_[np.arange(7), -1]
    t["environment"] = "spinel"
    t["inplane_nm"] = 0.25
    return t.sort_values("u_nm").reset_index(drop=True)


def test_the_copy_is_not_counted_by_hand(monkeypatch):
    monkeypatch.setattr(interlayers, "DEDUPLICATE", True)
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02
    # Counted once: bright (0.5 + 0 + 0.5) / 3, dark 0 -> 1/6 = 0.1667; counting error
    # sqrt((2 * 0.06^2 + 0.03^2) / 9 + 4 * 0.03^2 / 16) / 2 = 0.01677, with 0.02: 0.02610 -> 0.1667 - 0.0522 = 0.1145: "yes".
    t = interlayer_table(_spinel_layer_with_a_copied_void_site())
    assert len(t) == 1 and t["n_sites"].iloc[0] == 7
    assert t["li_fill"].iloc[0] == pytest.approx(1 / 6, abs=1e-9)
    assert t["li_fill_count_sem"].iloc[0] == pytest.approx(np.sqrt(0.0081 / 9 + 0.0036 / 16) / 2, rel=1e-9)
    assert t["mixing"].iloc[0] == "yes"


def test_counted_twice_the_void_dilutes_the_fill(monkeypatch):
    # The copy counted (the default, DEDUPLICATE off, and a table without the column spacing): bright (0.5 + 0 + 0 + 0.5) / 4 -> 0.125, error
    # sqrt((2 * 0.0036 + 2 * 0.0009) / 16 + 0.0036 / 16) / 2 = 0.01403, with 0.02: 0.02443 -> 0.076 < 0.1: "uncertain".
    t = interlayer_table(_spinel_layer_with_a_copied_void_site())
    assert t["n_sites"].iloc[0] == 8 and t["li_fill"].iloc[0] == pytest.approx(0.125, abs=1e-9)
    assert t["mixing"].iloc[0] == "uncertain"
    monkeypatch.setattr(interlayers, "DEDUPLICATE", True)
    t = interlayer_table(_spinel_layer_with_a_copied_void_site().assign(inplane_nm=np.nan))
    assert t["li_fill"].iloc[0] == pytest.approx(0.125, abs=1e-9)


def test_the_site_with_its_own_pair_is_kept():
    li = pd.DataFrame({"layer": [3, 3, 3, 5], "u_nm": [1.0, 1.01, 1.26, 1.0], "pair": [-1, 7, 8, -1],
                       "detected": [True, False, False, False]})
    assert distinct_sites(li, 0.25).tolist() == [False, True, True, True]  # one site at 1.0 nm of layer 3
    assert distinct_sites(li.assign(pair=-1), 0.25).tolist() == [True, False, True, True]  # then the detected one
    assert distinct_sites(li, float("nan")).all()
