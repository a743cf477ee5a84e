"""A Li-layer site listed twice counts twice in the fill (issue 19, helper imgspinel6).

The column table can hold one Li-layer site twice (layer-end extensions of both sides meeting in a void, a detected
column beside the site placed at it); random draws 3035 and 4191 hold such copies in a void across a spinel Li layer,
where the void then weighs twice in the segment's balanced fill (docs/validation.md, "imgspinel6"). Counting such a
copy once (``interlayers.DEDUPLICATE``, ``distinct_sites``) was measured, left off and removed (pruneimg).
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_scenes import li_layer_sites as _layer
from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, interlayer_table


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


def test_counted_twice_the_void_dilutes_the_fill():
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02
    # The copy counted: bright (0.5 + 0 + 0 + 0.5) / 4 -> 0.125, error
    # sqrt((2 * 0.0036 + 2 * 0.0009) / 16 + 0.0036 / 16) / 2 = 0.01403, with 0.02: 0.02443 -> 0.076 < 0.1: "uncertain".
    t = interlayer_table(_spinel_layer_with_a_copied_void_site())
    assert t["n_sites"].iloc[0] == 8 and t["li_fill"].iloc[0] == pytest.approx(0.125, abs=1e-9)
    assert t["mixing"].iloc[0] == "uncertain"
