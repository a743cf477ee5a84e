"""interlayers.csv: step and Li-layer fill of every TM-TM gap, against the degraded scene's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging_scenes import PX, degraded_stack, noisy
from layerscope.imaging.pipeline import map_phases


@pytest.fixture(scope="module")
def mapped():
    sim, at = degraded_stack()
    return sim, at, map_phases(noisy(sim, 1e4, seed=3), pixel_size_nm=PX, zone="100", composition="LiCoO2")


def _truth_gaps(truth: pd.DataFrame, a_nm: float) -> pd.DataFrame:
    """Each gap between consecutive TM layers of the scene: y of its middle and the relation of its registry."""
    d_t = a_nm * np.sqrt(3) / 2
    tm = truth[truth["kind"] == "TM"]
    layers = sorted(tm["layer"].unique())
    rows = []
    for k0, k1 in zip(layers[:-1], layers[1:]):
        a, b = tm[tm["layer"] == k0], tm[tm["layer"] == k1]
        xa = np.sort(a["x_nm"].to_numpy())[0]
        # partner: the column of the next layer nearest to xa along x (modulo the period)
        r = ((b["x_nm"].to_numpy() - xa) / d_t + 0.5) % 1.0 - 0.5
        reg = float(r[np.argmin(np.abs(b["x_nm"].to_numpy() - xa))])
        ideal = {"O3": -1 / 3, "O3'": 1 / 3, "O1": 0.0}
        rel = min(ideal, key=lambda k: abs(((reg - ideal[k]) + 0.5) % 1.0 - 0.5))
        rows.append({"y_nm": 0.5 * (a["y_nm"].mean() + b["y_nm"].mean()), "relation": rel})
    return pd.DataFrame(rows)


def test_steps_match_the_scene(mapped):
    sim, at, pm = mapped
    inter = pm.interlayers
    assert {"step", "li_fill", "li_fill_sem", "mixing", "registry_sem"} <= set(inter.columns)
    gaps = _truth_gaps(sim.columns, at.info["a_nm"])
    nearest = np.abs(inter["y_nm"].to_numpy()[:, None] - gaps["y_nm"].to_numpy()[None, :]).argmin(axis=1)
    want = gaps["relation"].to_numpy()[nearest]
    agree = np.average(inter["step"].to_numpy() == want, weights=inter["n_sites"])
    assert agree >= 0.95
    # Every kind of step of the scene is found: O3, the O3' twin and the O1 block.
    assert {"O3", "O3'", "O1"} <= set(inter["step"])


def test_mixing_where_the_scene_was_exchanged(mapped):
    _, _, pm = mapped
    inter = pm.interlayers
    layered = inter[inter["environment"] == "layered"]
    # Built: 20 % Li/TM exchange in the O3 block at stack y 1.5-3.3 nm (+0.8 nm vacuum on top), none
    # in the O3 block at 6-10 nm.
    mixed = layered[(layered["y_nm"] > 2.4) & (layered["y_nm"] < 4.0)]
    clean = layered[(layered["y_nm"] > 6.0) & (layered["y_nm"] < 10.0)]
    assert len(mixed) >= 5 and len(clean) >= 10
    assert (mixed["mixing"] == "yes").mean() >= 0.8
    assert (clean["mixing"] == "yes").sum() == 0 and (clean["mixing"] == "no").mean() >= 0.8
    # The fill of the mixed gaps: 20 % of the Li-layer sites hold a TM (index ~0.2-0.3, see
    # test_imaging_phases' mixing test) with a standard error that tells it from 0.1.
    assert 0.15 <= mixed["li_fill"].median() <= 0.4
    assert mixed["li_fill_sem"].median() < 0.05


def test_phases_command_writes_interlayers(tmp_path):
    from layerscope.cli import run

    sim, _ = degraded_stack()
    src = tmp_path / "d.npy"
    np.save(src, noisy(sim, 1e4, seed=3))
    assert run(["phases", str(src), "--pixel-size-nm", str(PX), "--no-figures", "--out", str(tmp_path / "o")]) == 0
    table = pd.read_csv(tmp_path / "o" / "interlayers.csv")
    assert len(table) > 20 and set(table["mixing"]) <= {"yes", "no", "uncertain"}
    # where each step comes from; an unknown step has no source
    assert set(table["step_source"]) <= {"measured", "extended", "none"}
    assert ((table["step"] == "unknown") == (table["step_source"] == "none")).all()


def test_segment_statistics_against_hand_computed_values():
    from layerscope.imaging.interlayers import interlayer_table

    # one Li layer: 3 O3 sites whose registry straddles the +-0.5 wrap, then 2 O1 sites; a second
    # layer of one site with no mixing value
    li = pd.DataFrame({
        "kind": "Li", "site": "octahedral", "layer": [3, 3, 3, 3, 3, 5],
        "u_nm": [0.0, 0.3, 0.6, 0.9, 1.2, 0.0], "x_nm": [0.0, 0.3, 0.6, 0.9, 1.2, 0.0], "y_nm": [1.0] * 5 + [2.0],
        "relation": ["O3", "O3", "O3", "O1", "O1", None], "registry": [0.49, -0.49, 0.47, 0.0, 0.02, np.nan],
        "mixing": [0.30, 0.34, 0.32, 0.0, 0.02, np.nan],
        "environment": ["rock_salt", "", "rock_salt", "", "spinel", ""], "mixed": ["yes", "yes", "uncertain", "no", "no", ""],
    })
    t = interlayer_table(li)
    assert t["step"].tolist() == ["O3", "O1", "unknown"] and t["n_sites"].tolist() == [3, 2, 1]
    a = t.iloc[0]
    dev = np.array([0.49, -0.49 + 1.0, 0.47]) - 0.49  # about the circular mean 0.49 (+-0.5 wrap)
    assert abs(abs(a["registry"]) - 0.49) < 1e-9
    assert a["registry_sem"] == pytest.approx(np.std(dev) / np.sqrt(2), abs=1e-9)
    assert a["li_fill"] == pytest.approx(0.32, abs=1e-12)
    assert a["li_fill_sem"] == pytest.approx(0.02 / np.sqrt(3), abs=1e-12) and a["mixing"] == "yes"
    assert a["environment"] == "rock_salt" and (a["n_sites_mixed"], a["n_sites_uncertain"]) == (2, 1)
    b = t.iloc[1]
    assert b["environment"] == "layered"   # a tie between layered and spinel: the first in sort order
    assert b["mixing"] == "no" and b["li_fill"] == pytest.approx(0.01, abs=1e-12)
    c = t.iloc[2]
    assert np.isnan(c["li_fill"]) and c["mixing"] == "uncertain" and np.isnan(c["registry"])
    assert (c["upper_tm_layer"], c["lower_tm_layer"]) == (4, 6)
