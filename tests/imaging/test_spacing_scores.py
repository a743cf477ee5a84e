"""The validator's spacing score: the truth's apparent TM-layer spacing per phase on a built lattice, and the
reported spacing's error against it (issue 19, imgstrain)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from layerscope.simulate.validation import _spacing_scores, apparent_spacings

D_T = 0.2438  # nm, LiCoO2 column spacing along the rows
GAPS = {1: "O3", 3: "C2/m", 5: "O1", 7: "O3", 9: "O3"}  # Li layer -> its block's phase
SPACING = {"O3": 0.4683, "C2/m": 0.4683, "O1": 0.429}  # nm, TM layer to TM layer across each gap


def _lattice(angle_deg: float = 23.0) -> pd.DataFrame:
    """TM layers 0-10 and Li layers 1-9, 12 sites each, O3-like lateral steps, rotated and shifted."""
    v_tm = np.concatenate([[0.0], np.cumsum([SPACING[GAPS[k]] for k in sorted(GAPS)])])
    rows = []
    for k in range(11):
        tm = k % 2 == 0
        v = v_tm[k // 2] if tm else (v_tm[k // 2] + v_tm[k // 2 + 1]) / 2
        phase = GAPS[k] if not tm else GAPS[k + 1] if k + 1 in GAPS else GAPS[k - 1]
        for i in range(12):
            rows.append({"u": (i + k / 3.0) * D_T, "v": v, "layer": k, "kind": "TM" if tm else "Li", "phase": phase})
    f = pd.DataFrame(rows)
    a = np.radians(angle_deg)
    f["x_nm"] = 1.3 + f["u"] * np.cos(a) - f["v"] * np.sin(a)
    f["y_nm"] = 0.7 + f["u"] * np.sin(a) + f["v"] * np.cos(a)
    f["in_image"] = True
    return f


def test_apparent_spacings_of_a_built_lattice():
    got = apparent_spacings(_lattice(), D_T)
    # O3 gaps (C2/m counted as O3) and the O1 gap; a rotated, shifted lattice shows its built spacings (to
    # 0.01 pm: the plane fit of the layer numbers tilts the normal by 0.2 deg where the spacings differ).
    assert got["O3"] == pytest.approx(0.4683, abs=1e-5)
    assert got["O1"] == pytest.approx(0.429, abs=1e-5)
    assert "C2/m" not in got


def test_spacing_error_of_a_report():
    truth = SimpleNamespace(sites=_lattice(), parameters={"chemistry": "LiCoO2", "zone": "100"})
    summary = {"quantities": {"tm_layer_spacing_nm": {"O3": 0.4683 * 1.01, "rock_salt": 0.47}}}
    got = _spacing_scores(summary, truth)
    assert got["o3_spacing_err_pct"] == pytest.approx(1.0, abs=0.005)
    assert np.isnan(got["o1_spacing_err_pct"])  # no O1 reported
