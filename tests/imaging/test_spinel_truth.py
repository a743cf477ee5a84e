"""The scorer's truth of a spinel segment is its TM per octahedral position (issue 19, imgspinel4).

A spinel Li layer holds TM on one octahedral site in four: every other column along the layer, every
other position along the beam. The draws' truth table holds only the filled columns, with ``fill`` as TM
per site of the column (two octahedral positions), so the plain mean of the matched sites read 1.0 for a
full spinel Li layer, and 0.2 for a segment whose one matched column (Li-rich: 20 % Li on the TM sites)
held one TM in five sites, where the pipeline reads the segment's fill per octahedral site (random draw
4000: a 3-site segment read 0.074 +- 0.008, "no", scored wrong against 0.2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.simulate.draws import DrawTruth
from layerscope.simulate.validation import segment_truth

D_T = 0.25  # column spacing along the layers, nm
LAYER_NM = 0.235  # cation-layer spacing, nm


def _truth() -> DrawTruth:
    """TM layers 0, 2, 4; Li layer 1 spinel (filled columns every 2 D_T), Li layer 3 O3 with fill 0.2."""
    rows = []
    for k in (0, 2, 4):
        rows += [dict(x_nm=i * D_T, y_nm=k * LAYER_NM, kind="TM", layer=k, phase="O3", n_atoms=10, fill=1.0)
                 for i in range(12)]
    rows += [dict(x_nm=2 * i * D_T, y_nm=LAYER_NM, kind="Li", layer=1, phase="spinel", n_atoms=5, fill=f)
             for i, f in enumerate([1.0, 0.2, 1.0, 0.6, 1.0, 1.0])]
    rows += [dict(x_nm=i * D_T, y_nm=3 * LAYER_NM, kind="Li", layer=3, phase="O3", n_atoms=10, fill=0.2)
             for i in range(12)]
    sites = pd.DataFrame(rows).assign(edge_nm=np.inf)
    gaps = pd.DataFrame({"li_layer": [1, 3], "relation": ["O3", "O3"]})
    return DrawTruth(columns=sites, sites=sites, gaps=gaps, twin_runs={}, twin_ambiguous=False)


def _columns() -> pd.DataFrame:
    """The reported Li-layer sites: every octahedral position of both Li layers (x = u)."""
    x = np.arange(12) * D_T
    li = [pd.DataFrame({"x_nm": x, "u_nm": x, "y_nm": k * LAYER_NM, "layer": k}) for k in (1, 3)]
    return pd.concat(li, ignore_index=True).assign(kind="Li", site="octahedral")


def _segments(spans: list[tuple[int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(spans, columns=["li_layer", "u_start_nm", "u_end_nm"])


def test_spinel_segment_truth_is_per_octahedral_position():
    # Li layer 1: sites at u = 0, 0.25, ...; filled columns at u = 0 (1.0), 0.5 (0.2), 1.0 (1.0), 1.5 (0.6)
    seg = segment_truth(_columns(), _segments([
        (1, 0.0, 1.0),    # 5 sites, 3 filled columns matched (1.0, 0.2, 1.0): (2.2 / 3) / 4 = 0.1833
        (1, 0.25, 0.75),  # 3 sites (empty, filled 0.2, empty): 0.2 / 4 = 0.05 (was 0.2: "yes")
        (1, 1.5, 1.5),    # 1 site, the filled column of 0.6 alone (one sublattice): 0.6 / 2 = 0.3
        (3, 0.0, 1.0),    # O3 Li layer: unchanged, 0.2
    ]), _truth())
    assert seg["n_matched"].tolist() == [3, 1, 1, 5]
    assert seg["truth_phase"].tolist() == ["spinel", "spinel", "spinel", "O3"]
    assert seg["truth_fill"].to_numpy(dtype=float) == pytest.approx([2.2 / 12, 0.05, 0.3, 0.2], abs=1e-12)
