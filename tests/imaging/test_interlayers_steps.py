"""Steps of Li-layer sites without a TM pair (interlayers.csv ``step_source``): extended from the
measured run of the same gap only where the image determines them.

Hand-made column tables (one gap between TM layers 0 and 2, O3 in the [100] view: the Li-layer
site one third of a column spacing past the TM column above, the TM column below another third on)
and two fixed random draws whose void-rim / layer-end segments used to be ``unknown``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging.interlayers import interlayer_table

D_T = 0.25  # column spacing, nm
V_TM = {0: 0.0, 2: 0.47}  # TM layers across the gap, nm
S_O3 = 1.0 / 3.0  # O3 step per cation layer in [100], column spacings


def _gap(n: int = 20, *, hole=(9, 10), unknown=(10,), shift=0.0, right_twin=False, end_unknown=0) -> pd.DataFrame:
    """TM layer 0 (columns 0..n-1), TM layer 2 without the columns of ``hole``; Li layer 1 with one site
    per TM pair (relation O3, own pair), none in the hole except the detected sites ``unknown``
    (relation "", no pair) placed ``shift`` spacings off the O3 position; ``right_twin``: the sites
    and TM-2 columns past the hole in O3' stacking; ``end_unknown``: that many pair-less sites past
    the last column of TM layer 2 (TM layer 0 goes on under them)."""
    rows = []
    n_top = n + end_unknown
    for i in range(n_top):
        rows.append({"kind": "TM", "layer": 0, "u_nm": i * D_T, "pair": -1})
    for i in range(n):
        twin = right_twin and i > hole[-1]
        s = -S_O3 if twin else S_O3
        if i not in hole:
            rows.append({"kind": "TM", "layer": 2, "u_nm": (i + 2 * s) * D_T, "pair": -1})
            rows.append({"kind": "Li", "layer": 1, "u_nm": (i + s) * D_T, "relation": "O3'" if twin else "O3",
                         "registry": 2 * s, "pair": i})
        elif i in unknown:
            rows.append({"kind": "Li", "layer": 1, "u_nm": (i + S_O3 + shift) * D_T, "relation": "", "registry": np.nan,
                         "pair": -1})
    for j in range(end_unknown):
        rows.append({"kind": "Li", "layer": 1, "u_nm": (n + j + S_O3) * D_T, "relation": "", "registry": np.nan,
                     "pair": -1})
    t = pd.DataFrame(rows)
    t["v_nm"] = np.where(t["kind"] == "TM", t["layer"].map(V_TM), 0.235)
    t["registry"] = ((t["registry"] + 0.5) % 1.0) - 0.5
    return t.assign(x_nm=t["u_nm"], y_nm=t["v_nm"], site="octahedral", mixing=0.02, environment="layered",
                    mixed="no")


def _site_step(table: pd.DataFrame, u_nm: float) -> tuple[str, str]:
    row = table[(table["u_start_nm"] <= u_nm + 1e-9) & (table["u_end_nm"] >= u_nm - 1e-9)].iloc[0]
    return row["step"], row["step_source"]


def test_a_detected_site_over_a_void_takes_the_step_of_its_gap():
    t = interlayer_table(_gap())
    # the site at 10 + 1/3 spacings over the two-column hole of TM layer 2: O3 from both sides, its offset
    # from TM layer 0 the measured run's (1/3), so extended; every other segment measured O3
    assert _site_step(t, (10 + S_O3) * D_T) == ("O3", "extended")
    assert set(t["step"]) == {"O3"}
    assert (t["step_source"] == "extended").sum() == 1 and t.loc[t["step_source"] == "extended", "n_sites"].sum() == 1
    assert t["n_sites"].sum() == 19


@pytest.mark.parametrize("shift", [1.0 / 3.0, -1.0 / 3.0, 0.2])
def test_a_site_off_the_measured_stacking_stays_unknown(shift):
    # 1/3 spacing off is where O1 or O3' would put it (a registry change in the hole); 0.2 is past the
    # 0.15-spacing tolerance
    t = interlayer_table(_gap(shift=shift))
    assert _site_step(t, (10 + S_O3 + shift) * D_T) == ("unknown", "none")
    assert (t["step_source"] == "extended").sum() == 0


def test_a_site_between_two_different_steps_stays_unknown():
    t = interlayer_table(_gap(right_twin=True))
    assert _site_step(t, (10 + S_O3) * D_T) == ("unknown", "none")
    assert {"O3", "O3'"} <= set(t["step"])


def test_the_end_of_a_gap_is_extended_by_at_most_two_sites():
    t = interlayer_table(_gap(hole=(), unknown=(), end_unknown=2))
    assert _site_step(t, (20 + S_O3) * D_T) == ("O3", "extended")
    assert _site_step(t, (21 + S_O3) * D_T) == ("O3", "extended")
    # three pair-less sites past the end: the two nearest the measured run take its step, the third stays
    # unknown (draw 5029's void-rim run; before EXTEND_END_PARTIAL all three stayed unknown)
    t3 = interlayer_table(_gap(hole=(), unknown=(), end_unknown=3))
    assert [_site_step(t3, (20 + k + S_O3) * D_T) for k in range(3)] == [("O3", "extended")] * 2 + [("unknown", "none")]


def test_without_the_partial_end_rule_a_three_site_end_stays_unknown(monkeypatch):
    from layerscope.imaging import interlayers

    monkeypatch.setattr(interlayers, "EXTEND_END_PARTIAL", False)
    t3 = interlayer_table(_gap(hole=(), unknown=(), end_unknown=3))
    assert [_site_step(t3, (20 + k + S_O3) * D_T) for k in range(3)] == [("unknown", "none")] * 3


def test_a_partial_end_extension_stops_at_a_site_off_the_stacking():
    # the three end sites, the nearest of them a third of a spacing off the O3 position (where O3' puts it):
    # the two nearest are checked together, so neither takes the step
    g = _gap(hole=(), unknown=(), end_unknown=3)
    first = (g["kind"] == "Li") & np.isclose(g["u_nm"], (20 + S_O3) * D_T)
    g.loc[first, "u_nm"] += S_O3 * D_T
    t = interlayer_table(g)
    assert (t["step_source"] == "extended").sum() == 0


def test_no_tm_columns_no_extension():
    # the Li sites alone (no TM layer to check the site against): the unknown site stays unknown
    g = _gap()
    t = interlayer_table(g[g["kind"] == "Li"])
    assert _site_step(t, (10 + S_O3) * D_T) == ("unknown", "none")


def test_a_short_run_on_a_tm_column_off_its_layer_is_unknown_not_o1():
    # one pair at the end of the gap whose TM-0 column sits straight above a TM-2 column (an O1 registry)
    g = _gap(hole=(), unknown=())
    extra_u = 20 * D_T + 2 * S_O3 * D_T  # right above the last TM-2 column + 1 spacing
    tm2 = pd.DataFrame({"kind": "TM", "layer": 2, "u_nm": [extra_u], "v_nm": [V_TM[2]], "pair": -1})
    li = pd.DataFrame({"kind": "Li", "layer": 1, "u_nm": [extra_u], "v_nm": [0.235], "relation": ["O1"],
                       "registry": [0.0], "pair": [20]})
    for off_nm, want in ((0.12, ("unknown", "none")), (0.02, ("O1", "measured"))):
        tm0 = pd.DataFrame({"kind": "TM", "layer": 0, "u_nm": [extra_u], "v_nm": [off_nm], "pair": -1})
        t = pd.concat([g, tm0, tm2, li], ignore_index=True)
        t = t.assign(x_nm=t["u_nm"], y_nm=t["v_nm"], site="octahedral", mixing=0.02, environment="layered", mixed="no")
        # 0.12 nm is half the 0.235 nm layer spacing off the line of TM layer 0: not a column of it
        assert _site_step(interlayer_table(t), extra_u) == want


@pytest.mark.parametrize("seed", [6, 9])
def test_random_draws_whose_rim_segments_were_unknown(seed):
    """Seed 6 (4.5e4 e/A^2): a detected Li-layer column over a two-column hole of a TM layer (void rim);
    seed 9 (2.4e3 e/A^2): one at the end of a Li layer. Neither has a TM pair, so both were the only
    ``unknown`` segments of their draw (step accuracy 0.996 / 0.997); now the step of their gap,
    marked extended, and every scored site right."""
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import segment_truth

    image, px, truth = draw_scene(seed)
    p = truth.parameters
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    seg = segment_truth(pm.columns, pm.interlayers, truth)
    seg = seg[(seg["n_matched"] > 0) & seg["truth_relation"].isin(["O3", "O3'", "O1"])]
    ext = seg[seg["step_source"] == "extended"]
    assert len(ext) >= 1 and (ext["step"] == ext["truth_relation"]).all()
    # each extended site had no step of its own in the column table
    li = pm.columns[(pm.columns["kind"] == "Li") & (pm.columns["site"] == "octahedral")]
    for r in ext.itertuples():
        own = li[(li["layer"] == r.li_layer) & li["u_nm"].between(r.u_start_nm, r.u_end_nm)]
        assert (own["relation"].fillna("") == "").all() and (own["pair"] < 0).all()
    assert (seg["step"] == "unknown").sum() == 0
    assert np.average(seg["step"] == seg["truth_relation"], weights=seg["n_sites"]) == 1.0
    # summary.json (and the report) count the sites by the source of their step, as the table has them
    counts = pm.summary["interlayers"]
    assert counts["step_sites_extended"] == int(pm.interlayers.loc[pm.interlayers["step_source"] == "extended",
                                                                   "n_sites"].sum()) >= len(ext)
    assert sum(counts[f"step_sites_{k}"] for k in ("measured", "extended", "none")) == int(pm.interlayers["n_sites"].sum())


def test_a_longer_run_between_two_runs_of_the_same_step_is_extended():
    # three pair-less sites over a four-column hole of TM layer 2, O3 on both sides within 2 spacings:
    # bridged, so longer than an end extension
    t = interlayer_table(_gap(hole=(9, 10, 11, 12), unknown=(9, 10, 11)))
    ext = t[t["step_source"] == "extended"]
    assert len(ext) == 1 and ext["n_sites"].iloc[0] == 3 and ext["step"].iloc[0] == "O3"
    # the same three sites at the end of the gap (nothing measured past them): only the two nearest the
    # measured run are extended
    g = _gap(hole=(9, 10, 11, 12), unknown=(9, 10, 11))
    past = g["u_nm"] > 12 * D_T
    g = g[~(past & ((g["kind"] == "Li") | (g["layer"] == 2)))]
    te = interlayer_table(g)
    assert [_site_step(te, (k + S_O3) * D_T) for k in (9, 10, 11)] == [("O3", "extended")] * 2 + [("unknown", "none")]
