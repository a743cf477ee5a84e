"""Which cracks a limited tilt range sees (``layerscope.tomo.wedge``, tomowedge2): each crack's normal against the
missing wedge (``wedge_angle_deg``, ``in_missing_wedge`` in cracks.csv), the counts of visible cracks, the
``limited_angle`` flag naming the rule, the validator's restricted scores; a 0-180 deg series is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.tomo.phantom import CrackSpec, ParticleSpec, build_phantom, project_phantom
from layerscope.tomo.wedge import (WEDGE_MARGIN_DEG, edge_on_tilt_deg, inplane_wedge_angle_deg, tilt_interval_deg,
                                   wedge_angle_deg)


@pytest.mark.parametrize("tilt_deg", [-80.0, -45.0, 0.0, 30.0, 75.0])
def test_the_edge_on_tilt_is_where_astra_projects_the_slab_sharpest(tilt_deg):
    """A thin slab (one (y, x) slice) whose normal is ``edge_on_tilt_deg``'s inverse: ASTRA's parallel projector (the
    one the phantom is projected and the volume reconstructed with) gives its highest peak at that tilt (1 deg
    steps: within 1 deg), so the sign and the 0 of the tilts are the reconstruction's."""
    import astra

    t = np.radians(tilt_deg)
    normal = np.array([0.0, -np.sin(t), np.cos(t)])
    assert edge_on_tilt_deg(normal)[0] == pytest.approx(tilt_deg, abs=1e-9)
    yy, xx = np.mgrid[:64, :64] - 31.5
    d = yy * normal[1] + xx * normal[2]
    img = ((np.abs(d) < 1.0) & (yy ** 2 + xx ** 2 < 25 ** 2)).astype(np.float32)
    angles = np.arange(-90.0, 90.0, 1.0)
    pid = astra.create_projector("strip", astra.create_proj_geom("parallel", 1.0, 64, np.radians(angles)),
                                 astra.create_vol_geom(64, 64))
    try:
        sid, sino = astra.create_sino(img, pid)
        astra.data2d.delete(sid)
    finally:
        astra.projector.delete(pid)
    sharpest = angles[int(np.argmax(sino.max(axis=1)))]
    assert abs((sharpest - tilt_deg + 90.0) % 180.0 - 90.0) <= 1.0


def test_wedge_angles_of_known_normals():
    """+-60 deg (a 60 deg wedge about y): a normal along x lies 60 deg from the wedge, along y 30 deg inside it, along
    z (the rotation axis) on its edge; a normal 20 deg from z towards y lies asin(sin 20 sin 30) = 9.85 deg inside.
    An asymmetric -60..+70 range moves the nearer edge; a 0-180 deg series has no wedge (NaN)."""
    n = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [np.cos(np.radians(20)), np.sin(np.radians(20)), 0]], float)
    a = wedge_angle_deg(n, tilt_interval_deg(np.linspace(-60, 60, 121), 170.0))
    np.testing.assert_allclose(a, [60.0, -30.0, 0.0, -np.degrees(np.arcsin(np.sin(np.radians(20)) * 0.5))],
                               atol=1e-9)
    # edge-on tilt 75 deg: inside -60..+70 by nothing, 5 deg into the wedge; -75 deg: 15 deg into it
    s75, c75 = np.sin(np.radians(75)), np.cos(np.radians(75))
    m = np.array([[0, -s75, c75], [0, s75, c75]])
    np.testing.assert_allclose(inplane_wedge_angle_deg(m, (-60.0, 70.0)), [-5.0, -15.0], atol=1e-9)
    assert np.isnan(wedge_angle_deg(n, tilt_interval_deg(np.linspace(0, 180, 120, endpoint=False), 170.0))).all()


def _two_cracks():
    """Two spheres (radius 13 voxels, 64^3), one through crack each, 2 voxels wide: the first's normal along x (60 deg
    outside the wedge of a +-60 deg series), the second's 20 deg from z towards y (9.85 deg inside it)."""
    parts = [ParticleSpec((32, 32, 18), (13, 13, 13)), ParticleSpec((32, 32, 46), (13, 13, 13))]
    s20, c20 = np.sin(np.radians(20)), np.cos(np.radians(20))
    cracks = [CrackSpec(1, (0.0, 0.0, 1.0), 2.0, (0.0, 0.0, 0.25)),
              CrackSpec(2, (c20, s20, 0.0), 2.0, (0.0, 0.25, 0.0))]
    return build_phantom((64, 64, 64), parts, cracks, seed=1)


@pytest.fixture(scope="module")
def two_cracks():
    from layerscope.tomo.analysis import TomoOptions, analyse

    ph = _two_cracks()
    out = {}
    for name, angles in (("60", np.linspace(-60, 60, 121)), ("180", np.linspace(0, 180, 120, endpoint=False))):
        proj = project_phantom(ph.volume, photons=2e4, seed=2, angles_deg=angles)
        out[name] = analyse(proj, TomoOptions(allow_limited_angle=True))
    return ph, out


def _crack_of(res, truth_particle_x_vox: float):
    """The measured crack row in the particle whose centre lies at ``truth_particle_x_vox`` (x, voxels)."""
    parts = res.particles.set_index("particle")
    pid = (parts["centroid_x_nm"] / res.voxel_size_nm - truth_particle_x_vox).abs().idxmin()
    return res.cracks[res.cracks["particle"] == pid]


def test_at_60_deg_the_sampled_crack_is_counted_and_the_wedge_crack_is_marked(two_cracks):
    """+-60 deg: the crack whose normal lies among the sampled tilts is found, 60 deg from the wedge (measured 59.99;
    within 1 deg), not in the wedge; the crack 9.85 deg inside the wedge is found too (near the rotation axis the
    wedge is thin) but its measured normal is pulled towards z (the missing wedge smears along the beam): measured
    -3.5 deg, asserted in the wedge (below 0) and within 8 deg of the truth, and ``in_missing_wedge``. Each particle's
    ``crack_count_visible`` and the summary's ``n_cracks_visible`` count the first only; the summary names the rule."""
    ph, res = two_cracks
    r = res["60"]
    seen, hidden = _crack_of(r, 18.0), _crack_of(r, 46.0)
    assert len(seen) == 1 and len(hidden) == 1
    assert seen["wedge_angle_deg"].iloc[0] == pytest.approx(60.0, abs=1.0) and not seen["in_missing_wedge"].iloc[0]
    truth = wedge_angle_deg(ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy(float), (-60.0, 60.0))
    assert truth[1] == pytest.approx(-9.85, abs=0.01)
    got = hidden["wedge_angle_deg"].iloc[0]
    assert got < 0 and abs(got - truth[1]) <= 8.0
    assert hidden["in_missing_wedge"].iloc[0]
    assert sorted(r.particles["crack_count_visible"]) == [0, 1] and sorted(r.particles["crack_count"]) == [1, 1]
    assert r.summary["n_cracks"] == 2 and r.summary["n_cracks_visible"] == 1
    assert r.summary["missing_wedge"]["sampled_tilts_deg"] == [-60.0, 60.0]
    assert f"within {WEDGE_MARGIN_DEG:g} deg" in r.summary["missing_wedge"]["rule"]


def test_the_validator_scores_the_visible_counts(two_cracks):
    """``score_draw``: at +-60 deg one truth crack is visible (the other 9.85 deg inside the wedge) and one measured
    sheet is not in it, so the visible counts are exact; over 0-180 deg there is no wedge and the visible scores are
    the plain ones (2 of 2)."""
    from layerscope.tomo.scoring import score_draw

    ph, res = two_cracks
    s = score_draw(res["60"], ph)
    assert (s["n_cracks_truth_visible"], s["n_cracks_found_visible"], s["cracks_exact_visible"]) == (1, 1, 1)
    assert s["cracks_exact_per_particle_visible"] == 1 and s["cracks_missed_visible"] == 0
    full = score_draw(res["180"], ph)
    assert (full["n_cracks_truth_visible"], full["n_cracks_found_visible"]) == (2, full["n_cracks_found"]) == (2, 2)
    assert full["cracks_exact_visible"] == full["cracks_exact"] == 1
    assert full["cracks_exact_per_particle_visible"] == full["cracks_exact_per_particle"] == 1


def test_over_0_180_deg_no_crack_is_in_a_wedge(two_cracks):
    """The same phantom over 0-180 deg: both cracks found, no angle (NaN), none ``in_missing_wedge``, the visible
    counts equal the counts and the summary holds no ``missing_wedge``."""
    _, res = two_cracks
    r = res["180"]
    assert len(r.cracks) == 2 and r.cracks["wedge_angle_deg"].isna().all() and not r.cracks["in_missing_wedge"].any()
    assert (r.particles["crack_count_visible"] == r.particles["crack_count"]).all()
    assert r.summary["n_cracks_visible"] == r.summary["n_cracks"] == 2 and "missing_wedge" not in r.summary


def test_the_limited_angle_flag_names_the_orientations_counted():
    from layerscope.tomo.recon import _angle_flags

    (flag,) = _angle_flags(np.linspace(-60.0, 60.0, 121))
    m = flag["message"]
    assert "missing wedge of 60 deg" in m and f"within {WEDGE_MARGIN_DEG:g} deg of it" in m
    assert "in_missing_wedge" in m and "n_cracks_visible" in m
