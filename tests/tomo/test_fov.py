"""The projections' field of view (``layerscope.tomo.fov``, tomofov): the cylinder about the rotation axis that the
detector sees at every angle, from the geometry the reconstruction used; cracks mostly outside it marked
(``outside_field_of_view``, ``in_field_of_view`` in cracks.csv), counts of the cracks in view, the validator's in-view
scores; a volume input has no field of view. All fail on main (the module and the columns do not exist there)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.tomo.fov import MAX_OUTSIDE_SHARE, MEASURED_MAX_OUTSIDE_SHARE, sampled_radius_px
from layerscope.tomo.phantom import CrackSpec, ParticleSpec, build_phantom, project_phantom

N = 64
COLUMNS = ["crack", "sheet", "particle", "outside_field_of_view", "in_field_of_view"]


def test_the_sampled_radius_is_the_centre_to_the_nearer_detector_edge():
    """64 columns (outer edges at -0.5 and 63.5 px): centred (31.5 px) 32 px; centre at 40 px: 23.5 px to the right
    edge; a shift of 2.5 px undone by the alignment takes 2.5 px off; never below 0. Exact (1e-12)."""
    assert sampled_radius_px(64, 31.5) == pytest.approx(32.0, abs=1e-12)
    assert sampled_radius_px(64, 40.0) == pytest.approx(23.5, abs=1e-12)
    assert sampled_radius_px(64, 20.0, 2.5) == pytest.approx(18.0, abs=1e-12)
    assert sampled_radius_px(64, 70.0) == 0.0


def _corner_phantom():
    """64^3: a sphere (radius 12 voxels) on the axis with a through crack 2.5 voxels wide (normal along x: wholly
    inside the cylinder of radius 32 voxels), and an ellipsoid in the +y+x corner (centre 29.0 voxels from the axis)
    with a through crack 3 voxels wide whose plane faces the axis 4.2 voxels outwards (90 % of its voxels beyond
    32 voxels from the axis)."""
    s = 1 / np.sqrt(2)
    parts = [ParticleSpec((32, 30, 30), (12, 12, 12)), ParticleSpec((32, 52, 52), (12, 10, 10))]
    cracks = [CrackSpec(1, (0.0, 0.0, 1.0), 2.5), CrackSpec(2, (0.0, s, s), 3.0, (0.0, 3.0, 3.0))]
    return build_phantom((N, N, N), parts, cracks, seed=1)


def _truth_outside(ph) -> np.ndarray:
    """Per truth crack: the share of its voxels farther than N/2 from the axis ((N-1)/2, (N-1)/2), computed here."""
    _, yy, xx = np.indices(ph.volume.shape, sparse=True)
    r = np.broadcast_to(np.hypot(yy - (N - 1) / 2, xx - (N - 1) / 2), ph.volume.shape)
    return np.array([(r[ph.cracks == c] > N / 2).mean() for c in ph.crack_truth["crack"]])


@pytest.fixture(scope="module")
def corner():
    from layerscope.tomo.analysis import TomoOptions, analyse

    ph = _corner_phantom()
    proj = project_phantom(ph.volume, n_angles=180, photons=2e4, seed=2)
    return ph, proj, analyse(proj, TomoOptions())


def test_the_corner_crack_is_marked_and_the_inside_one_not(corner):
    """Truth: crack 1 wholly inside, crack 2 90 % outside. Both are found (2 of 2); the measured crack in the corner
    particle has >= 0.4 (``MEASURED_MAX_OUTSIDE_SHARE``) of its voxels outside (measured 0.74) and is not in view; the other 0 and in view. In-view
    counts: 1 per the summary, particles 1 and 0; the cylinder's radius is 32 voxels (the search finds the centre at
    31.5 px, within 0.25 px) = 1600 nm at 50 nm, and 1 - pi/4 of the slice lies outside it (0.2119 on the 64 x 64
    grid, within 0.005 of 0.2146)."""
    ph, _, res = corner
    np.testing.assert_allclose(_truth_outside(ph), [0.0, 0.90], atol=0.01)
    assert len(res.cracks) == 2
    cr = res.cracks.sort_values("centroid_x_nm")
    assert cr["outside_field_of_view"].iloc[0] == 0.0 and bool(cr["in_field_of_view"].iloc[0])
    assert cr["outside_field_of_view"].iloc[1] >= MEASURED_MAX_OUTSIDE_SHARE and not bool(cr["in_field_of_view"].iloc[1])
    parts = res.particles.sort_values("centroid_x_nm")
    assert list(parts["crack_count"]) == [1, 1] and list(parts["crack_count_in_view"]) == [1, 0]
    assert parts["outside_field_of_view"].iloc[0] == 0.0 and 0.0 < parts["outside_field_of_view"].iloc[1] < 0.5
    s = res.summary
    assert (s["n_cracks"], s["n_cracks_in_view"], s["n_cracks_outside_view"], s["n_cracks_partly_outside_view"]) == (2, 1, 1, 1)
    fov = s["field_of_view"]
    assert fov["radius_voxels"] == pytest.approx(32.0, abs=0.25) and fov["radius_nm"] == pytest.approx(1600.0, abs=12.5)
    assert fov["axis_yx_voxels"] == [31.5, 31.5]
    assert fov["volume_share_outside"] == pytest.approx(1 - np.pi / 4, abs=0.005)
    flag = [f for f in res.flags if f["code"] == "outside_field_of_view"]
    assert len(flag) == 1 and flag[0]["message"].startswith("1 crack(s) lie partly outside")


def test_the_scores_in_view_count_only_the_crack_inside(corner):
    """``score_draw``: the plain counts 2 of 2 (exact); in view 1 truth crack (90 % outside: not in view) and 1
    measured, exact, per particle exact, none missed."""
    from layerscope.tomo.scoring import score_draw

    ph, _, res = corner
    sc = score_draw(res, ph)
    assert (sc["n_cracks_truth"], sc["n_cracks_found"], sc["cracks_exact"]) == (2, 2, 1)
    assert (sc["n_cracks_truth_in_view"], sc["n_cracks_found_in_view"]) == (1, 1)
    assert (sc["cracks_exact_in_view"], sc["cracks_exact_per_particle_in_view"], sc["cracks_missed_in_view"]) == (1, 1, 0)


def test_a_volume_input_has_no_field_of_view():
    """The same phantom given as a (noise-free) volume: no geometry, so no crack is marked (share NaN, in view True),
    no ``field_of_view`` in the summary, no flag; in-view counts = the counts (2)."""
    from layerscope.tomo.analysis import TomoOptions, analyse

    res = analyse(_corner_phantom().volume, TomoOptions(), voxel_size_nm=50.0)
    assert len(res.cracks) == 2 and res.cracks["outside_field_of_view"].isna().all()
    assert res.cracks["in_field_of_view"].all() and res.particles["outside_field_of_view"].isna().all()
    assert list(res.particles["crack_count_in_view"]) == list(res.particles["crack_count"])
    assert "field_of_view" not in res.summary and res.summary["n_cracks_in_view"] == 2
    assert not [f for f in res.flags if f["code"] == "outside_field_of_view"]


def test_out_of_core_marks_the_same_cracks(corner):
    """``out_of_core`` (slabs of 10 slices) gives the same field of view and the same columns, to 1e-12."""
    from layerscope.tomo.analysis import TomoOptions, analyse

    _, proj, res = corner
    there = analyse(proj, TomoOptions(out_of_core=True, slab_slices=10), scheduler="threads")
    assert there.summary["field_of_view"] == res.summary["field_of_view"]
    for key in ("n_cracks_in_view", "n_cracks_outside_view", "n_cracks_partly_outside_view"):
        assert there.summary[key] == res.summary[key]
    a, b = (r.cracks[COLUMNS].sort_values(["crack", "sheet"]).reset_index(drop=True) for r in (res, there))
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-12)
    cols = ["particle", "outside_field_of_view", "crack_count_in_view"]
    pd.testing.assert_frame_equal(res.particles[cols].reset_index(drop=True),
                                  there.particles[cols].reset_index(drop=True), check_exact=False, atol=1e-12)


def test_the_validator_rows_score_the_cracks_in_view(load_script, tmp_path):
    """Draws 29 (128^3 grey, no crack) and 30 (64^3 projected, 4 truth cracks, 2 of them 66 % and 98 % outside the
    cylinder of radius 32 voxels): the rows carry the in-view columns; draw 30's truth in view is 2 (as computed here
    from the phantom), the grey draw's in-view scores equal its plain ones; the summary lists the in-view targets."""
    from layerscope.tomo.phantom import random_phantom

    validator = load_script("validate_tomo_draws")
    out, md = tmp_path / "rows.csv", tmp_path / "summary.md"
    validator.main(["--seeds", "29:31", "--out", str(out), "--summary", str(md)])
    rows = pd.read_csv(out).set_index("seed")
    for c in ("n_cracks_truth_in_view", "n_cracks_found_in_view", "cracks_exact_in_view",
              "cracks_exact_per_particle_in_view", "cracks_missed_in_view"):
        assert c in rows
    assert int((_truth_outside(random_phantom(30)) < MAX_OUTSIDE_SHARE).sum()) == 2
    assert rows.loc[30, "n_cracks_truth"] == 4 and rows.loc[30, "n_cracks_truth_in_view"] == 2
    assert rows.loc[30, "n_cracks_found_in_view"] <= rows.loc[30, "n_cracks_found"]
    assert not rows.loc[29, "projected"]
    for plain in ("cracks_exact", "cracks_exact_per_particle", "cracks_missed"):
        assert rows.loc[29, f"{plain}_in_view"] == rows.loc[29, plain]
    text = md.read_text()
    assert "| cracks_exact_in_view |" in text and "| cracks_exact_per_particle_in_view |" in text


def test_the_wide_detector_option_sees_the_corners(load_script):
    """``--wide-detector`` (tomofov): a detector as wide as the slices' diagonal (64 -> 92 px, 96 -> 136 px: >= n sqrt 2,
    n's parity). Draw 30 (64^3, projected) reconstructed that way and cut back to 64^3: the RMS error against the
    phantom in the corners (> 32 voxels from the axis) is that of the inside (measured 0.0435 and 0.0437 of the
    particle-epoxy contrast; bound 1.2 x), where the draw's own detector gives 1.8 x (0.079 against 0.044; bound > 1.5 x)."""
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.recon import reconstruct

    validator = load_script("validate_tomo_draws")
    assert [validator.diagonal_columns(n) for n in (64, 80, 96, 112)] == [92, 114, 136, 160]
    ph = random_phantom(30)
    ro = validator.recon_options("default")
    wide = validator._wide_detector(ph, ro)
    own = reconstruct(draw_volume(ph), ro).volume
    assert wide.data.shape == own.shape == ph.volume.shape == (N, N, N)
    _, yy, xx = np.indices(ph.volume.shape, sparse=True)
    out = np.broadcast_to(np.hypot(yy - (N - 1) / 2, xx - (N - 1) / 2) > N / 2, ph.volume.shape)
    contrast = ph.specs["draw"]["mu_particle"] - ph.specs["draw"]["mu_epoxy"]

    def rms(vol, where):
        return float(np.sqrt(np.mean(((vol - ph.volume) / contrast)[where] ** 2)))

    assert rms(wide.data, out) < 1.2 * rms(wide.data, ~out)
    assert rms(own, out) > 1.5 * rms(own, ~out)


def test_the_cli_line_and_the_report_name_the_cracks_outside_the_view(tmp_path, capsys):
    """``layerscope tomo`` on the corner phantom's projections (a transmission TIFF, 0-180 deg): the summary line
    says 1 crack lies partly outside the region seen at every angle, 1 mostly, 1 in view; report.html's metrics say
    the same in words; cracks.csv and particles.csv carry the columns; summary.json the field of view (32 voxels)."""
    import json

    import tifffile

    from layerscope.cli import run
    from layerscope.tomo.recon import transmission

    proj = project_phantom(_corner_phantom().volume, n_angles=180, photons=2e4, seed=2)
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.exp(-transmission(proj)[0]).astype(np.float32))
    out = tmp_path / "out"
    assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "2 cracks (1 partly outside the region the projections saw at every angle, 1 mostly: 1 in view)" in line
    html = (out / "report.html").read_text()
    assert "cracks partly outside the region seen at every angle" in html and "1 of 2 (1 mostly outside" in html
    cracks = pd.read_csv(out / "cracks.csv")
    assert sorted(cracks["in_field_of_view"].tolist()) == [False, True]
    assert pd.read_csv(out / "particles.csv")["crack_count_in_view"].sum() == 1
    s = json.loads((out / "summary.json").read_text())
    assert s["field_of_view"]["radius_voxels"] == pytest.approx(32.0, abs=0.25) and s["n_cracks_in_view"] == 1
