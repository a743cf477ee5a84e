"""Random validation draws (issue 19, item 6): the generator, its truth, and a small fixed draw scored.

The full report (200 draws) is docs/validation.md "Random-draw validation (issue 19 item 6)";
here a few seeds on small fields keep the test under a minute.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layerscope.simulate.draws import (
    BUILD_THICKNESS_NM,
    DrawRanges,
    background_texture,
    crack,
    draw_parameters,
    draw_scene,
    probe_fwhm_nm,
    wedge_factor,
)

#: Small fields (4.5-5 nm) at 3e3-3e4 e/A^2: the fixed draw of the scored test.
SMALL = DrawRanges(field_nm=(4.5, 5.0), dose_e_per_A2=(3e3, 3e4))
REPO = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=None)
def _small(seed: int):
    return draw_scene(seed, SMALL)


def test_probe_fwhm_is_the_airy_disc_in_focus_and_grows_with_defocus():
    lam_nm = 0.00250793  # 200 kV, relativistic (0.0251 A)
    assert probe_fwhm_nm(25.0, 0.0) == pytest.approx(0.5145 * lam_nm / 25e-3, rel=0.01)
    assert probe_fwhm_nm(18.0, 0.0) == pytest.approx(0.5145 * lam_nm / 18e-3, rel=0.01)
    # no spherical aberration: the sign of the defocus does not matter; more defocus, a wider probe
    assert probe_fwhm_nm(30.0, 3.0) == pytest.approx(probe_fwhm_nm(30.0, -3.0), rel=1e-6)
    widths = [probe_fwhm_nm(30.0, d) for d in (0.0, 2.0, 4.0, 5.0)]
    assert np.all(np.diff(widths) > 0) and widths[-1] > 2.5 * widths[0]


def test_background_texture_has_its_mean_spread_and_correlation_length():
    px, corr = 0.01, 0.1
    tex = background_texture((600, 600), px, mean=0.02, correlation_nm=corr, seed=3)
    assert tex.min() >= 0
    assert tex.mean() == pytest.approx(0.02, rel=0.03)
    assert tex.std() / tex.mean() == pytest.approx(0.5, rel=0.1)
    # Gaussian-smoothed white noise: correlation exp(-d^2 / (4 s^2)) = 0.78 at d = s (clipping < 3 % of pixels)
    z = tex - tex.mean()
    lag = int(round(corr / px))
    rho = np.mean(z[:, lag:] * z[:, :-lag]) / np.mean(z * z)
    assert rho == pytest.approx(np.exp(-0.25), abs=0.03)
    assert np.array_equal(tex, background_texture((600, 600), px, mean=0.02, correlation_nm=corr, seed=3))


def test_wedge_runs_between_its_two_thicknesses():
    f = 6.0
    kw = dict(field_nm=f, thickness_nm=(4.0, 28.0), angle_deg=30.0)
    assert wedge_factor(f / 2, f / 2, **kw) == pytest.approx(16.0 / BUILD_THICKNESS_NM)
    xs, ys = np.meshgrid(np.linspace(0, f, 61), np.linspace(0, f, 61))
    w = wedge_factor(xs, ys, **kw) * BUILD_THICKNESS_NM
    assert w.min() >= 4.0 - 1e-9 and w.max() <= 28.0 + 1e-9
    assert w.max() - w.min() > 0.9 * 24.0  # the corners along the direction reach (almost) both ends


def test_crack_removes_the_band_and_nothing_else():
    from layerscope.crystal.scenes import Block, stack

    at = stack([Block("O3", 16)], composition="LiCoO2", zone="100", width_nm=3, thickness_nm=2, seed=1)
    cut = crack(at, start_nm=(0.5, 1.0), end_nm=(2.5, 2.5), width_nm=0.4)
    a, b = np.array([5.0, 10.0]), np.array([25.0, 25.0])

    def dist(pos):
        t = np.clip((pos[:, :2] - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
        return np.hypot(*(pos[:, :2] - a - t[:, None] * (b - a)).T) / 10.0

    assert dist(cut.positions).min() >= 0.2
    removed = int(np.sum(dist(at.positions) < 0.2))
    assert len(at) - len(cut) == removed == cut.info["cracks"][0]["n_removed"] > 50


def test_same_seed_same_image_and_truth():
    a, px, ta = draw_scene(4, SMALL)
    b, _, tb = draw_scene(4, SMALL)
    assert np.array_equal(a, b)
    pd.testing.assert_frame_equal(ta.columns, tb.columns)
    assert ta.twin_runs == tb.twin_runs
    c, _, _ = draw_scene(5, SMALL)
    assert c.shape != a.shape or not np.array_equal(a, c)


def test_parameters_stay_in_their_ranges_over_100_draws():
    r = DrawRanges()
    draws = [draw_parameters(s) for s in range(100)]
    for name in ("z_exponent", "convergence_mrad", "defocus_nm", "source_fwhm_nm", "jitter_px", "flyback_px",
                 "drift_fraction", "background_fraction", "texture_correlation_nm", "pixel_size_nm"):
        lo, hi = getattr(r, name)
        v = np.array([d[name] for d in draws])
        assert v.min() >= lo - 1e-9 and v.max() <= hi + 1e-9, name
        assert v.max() - v.min() > 0.7 * (hi - lo), name  # the range is used, not a corner of it
    t = np.array([(d["thickness_min_nm"], d["thickness_max_nm"]) for d in draws])
    assert t.min() >= 4.0 and t.max() <= 30.0 and np.all(t[:, 0] <= t[:, 1])
    dose = np.array([d["dose_e_per_A2"] for d in draws])
    assert dose.min() >= 5e2 and dose.max() <= 1e5 and np.mean(dose < 1e3) > 0.05
    field = np.array([d["field_px"] * d["pixel_size_nm"] for d in draws])
    assert field.min() >= 5.5 - 0.015 and field.max() <= 7.0 + 0.015
    assert {d["chemistry"] for d in draws} == set(r.chemistries) and {d["zone"] for d in draws} == {"100", "110"}
    rot = np.array([d["rotation_deg"] for d in draws])
    assert np.histogram(rot, bins=4, range=(0, 360))[0].min() >= 10
    phases = {b["phase"] for d in draws for b in d["blocks"]}
    assert phases == {"O3", "O3'", "O1", "spinel", "rock_salt", "C2/m"}
    mixing = [b["mixing"] for d in draws for b in d["blocks"] if b.get("mixing")]
    assert len(mixing) > 20 and min(mixing) >= 0.12 and max(mixing) <= 0.4
    assert sum(len(d["voids"]) > 0 for d in draws) > 30 and sum(len(d["cracks"]) > 0 for d in draws) > 15
    assert 20 < sum(d["surface"] for d in draws) < 50


def test_truth_counts_rotation_and_voids_are_those_of_the_image():
    image, px, truth = _small(4)  # NMC622 [110], no void, crack or surface
    p = truth.parameters
    assert not (p["voids"] or p["cracks"] or p["surface"])
    field = image.shape[0] * px
    tm = truth.sites[truth.sites["kind"] == "TM"]
    assert tm[["x_true_nm", "y_true_nm"]].to_numpy().min() >= 0 and tm[["x_true_nm", "y_true_nm"]].to_numpy().max() < field
    # TM sites in the field: one per column spacing a sqrt(3)/2 along a layer and per TM-TM distance across
    from layerscope.crystal import lattice

    lat = lattice("O3", p["chemistry"])
    per_site_nm2 = lat.a_A / 10 * np.sqrt(3) / 2 * 2 * lat.layer_spacing_A / 10
    assert len(tm) == pytest.approx(field**2 / per_site_nm2, rel=0.05)
    # the layers run along the drawn rotation: TM sites of one layer lie on a line at rotation_deg (mod 180)
    layer = tm[tm["layer"] == tm["layer"].value_counts().idxmax()]
    d = np.polyfit(layer["x_true_nm"], layer["y_true_nm"], 1) if np.ptp(layer["x_true_nm"]) > 1 else None
    if d is not None:
        angle = np.degrees(np.arctan(d[0]))
        assert ((angle - p["rotation_deg"]) + 90) % 180 - 90 == pytest.approx(0, abs=0.5)


def test_voids_are_empty_of_truth_and_rimmed():
    image, px, truth = _small(0)  # Li-rich [110] with one void
    (v,) = truth.parameters["voids"]
    s = truth.sites
    r = np.hypot(s["x_true_nm"] - v["x_nm"], s["y_true_nm"] - v["y_nm"])
    assert r.min() >= v["radius_nm"] - 0.01
    assert np.sum(r < v["radius_nm"] + 0.3) >= 8  # the rim is populated
    assert np.all(s.loc[r < v["radius_nm"] + 0.3, "edge_nm"] < 0.31)


def test_a_small_fixed_draw_scores_above_its_floors():
    from layerscope.simulate.validation import score_draw

    # measured: recall 0.993-1, precision 1, RMS 1.7-3.3 pm, steps 0.987-1 (none wrong), fill 0.89-1
    # (no wrong yes/no decision), twin counts exact on the 3 draws that have a fair count (2 before
    # they were counted from the interlayer steps)
    rows = pd.DataFrame([score_draw(s, SMALL) for s in range(4)])
    assert not rows["phases_refused"].any() and not rows["generic_refused"].any()
    # generic recall, measured: 0.987-1. Draw 0 read 0.993 until the detector's coarse background stopped
    # padding its last partial blocks with 0 (that inflated the contrast along the right and bottom edges);
    # its second miss is a half-occupied TM column at 0.38 of its neighbours, 0.27 nm from the right edge,
    # below the 0.3 relative threshold once the edge is judged like the others (docs/validation.md).
    assert rows["generic_recall"].min() >= 0.985 and rows["generic_precision"].min() >= 0.99
    assert rows["generic_rms_pm"].max() < 5.0 and rows["phases_rms_pm"].max() < 5.0
    # phases columns, measured: recall 0.987-1 (0.974-1 before the corner rows of a rotated field were
    # numbered), precision 1
    assert rows["phases_recall"].min() >= 0.985 and rows["phases_precision"].min() >= 0.99
    assert rows["step_accuracy"].min() >= 0.98 and rows["step_wrong"].max() == 0
    assert rows["fill_accuracy"].median() >= 0.95 and rows["fill_wrong_yes"].sum() + rows["fill_wrong_no"].sum() == 0
    assert rows["twin_exact"].sum() == 3 and rows["twin_exact"].count() == 3


def test_script_writes_one_row_per_seed_with_its_parameters(tmp_path):
    spec = importlib.util.spec_from_file_location("validate_random_draws", REPO / "scripts" / "validate_random_draws.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "draws.csv"
    assert mod.main(["--seeds", "7:8", "--jobs", "1", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert df["seed"].tolist() == [7]
    p = draw_parameters(7)
    assert df.loc[0, "dose_e_per_A2"] == pytest.approx(p["dose_e_per_A2"], rel=1e-5)
    assert df.loc[0, "chemistry"] == p["chemistry"] and 0 <= df.loc[0, "generic_recall"] <= 1
    with pytest.raises(SystemExit):
        mod.main(["--seeds", "5:5", "--out", str(out)])


def test_out_of_field_marks_li_sites_whose_tm_layer_is_not_in_the_image():
    """Truth: TM layers 0 and 2 span x = 0-5 nm (columns 0.3 nm apart, layers 0.4 nm); Li layer 1 between them, Li layer 3
    below TM layer 2 with no TM layer 4 in the image. In field: the Li sites of layer 1 within 0.45 nm
    of both TM layers; out: every site of layer 3 and the layer-1 sites past x = 5.40 nm."""
    from types import SimpleNamespace

    from layerscope.simulate.validation import IN_FIELD_NM, out_of_field

    x_tm = np.arange(0.0, 5.01, 0.3)
    tm = pd.DataFrame({"x_nm": np.tile(x_tm, 2), "y_nm": np.repeat([0.0, 0.4], len(x_tm)),
                       "layer": np.repeat([0, 2], len(x_tm)), "kind": "TM"})
    x_li = np.arange(0.15, 6.5, 0.3)
    li = pd.DataFrame({"x_nm": np.tile(x_li, 2), "y_nm": np.repeat([0.2, 0.6], len(x_li)),
                       "layer": np.repeat([1, 3], len(x_li)), "kind": "Li"})
    truth = SimpleNamespace(sites=pd.concat([tm, li], ignore_index=True))
    out = out_of_field(li, truth)
    layer1 = li["layer"].to_numpy() == 1
    # distance from a layer-1 site to the nearest TM site of a layer: hypot(dx, 0.2)
    nearest = np.array([np.min(np.hypot(x_tm - x, 0.2)) for x in li["x_nm"]])
    np.testing.assert_array_equal(out[layer1], nearest[layer1] > IN_FIELD_NM)
    assert out[~layer1].all() and (~out[layer1]).sum() == int((nearest[layer1] <= IN_FIELD_NM).sum()) > 10


def test_out_of_field_does_not_count_tm_columns_cut_by_the_image_edge():
    """A field of 100 px of 0.05 nm (5 nm): TM layer 0 at y = 0.8 nm, TM layer 2 at y = 0.02 nm (0.02 nm from the top
    edge, inside the 0.15 nm margin where columns are not scored), Li layer 1 at y = 0.4 nm between them, 0.38 nm
    from layer 2. With the field given, layer 2 does not count as in the image: every Li site is out of field;
    without it (no ``parameters``) the layer counts and none is."""
    from types import SimpleNamespace

    from layerscope.simulate.validation import IN_FIELD_NM, MARGIN_NM, out_of_field

    x = np.arange(0.5, 4.51, 0.3)
    tm = pd.DataFrame({"x_nm": np.tile(x, 2), "y_nm": np.repeat([0.8, 0.02], len(x)),
                       "layer": np.repeat([0, 2], len(x)), "kind": "TM"})
    li = pd.DataFrame({"x_nm": x, "y_nm": 0.4, "layer": 1, "kind": "Li"})
    sites = pd.concat([tm, li], ignore_index=True)
    assert 0.02 < MARGIN_NM and 0.38 < IN_FIELD_NM
    field = {"field_px": 100, "pixel_size_nm": 0.05}
    assert out_of_field(li, SimpleNamespace(sites=sites, parameters=field)).all()
    assert not out_of_field(li, SimpleNamespace(sites=sites)).any()
    moved = sites.assign(y_nm=np.where(sites["layer"] == 2, 0.2, sites["y_nm"]))  # 0.2 nm inside: counts
    assert not out_of_field(li, SimpleNamespace(sites=moved, parameters=field)).any()
