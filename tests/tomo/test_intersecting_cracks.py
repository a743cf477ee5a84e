"""Intersecting cracks count as separate planar features (issue 20 item 3); a bent crack stays one; pores stay pores.

Truth: phantoms built with known crack planes (``build_phantom``) analysed as grey volumes (no
reconstruction: the shapes alone), one reconstructed from noisy projections.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from layerscope.tomo import TomoOptions, analyse, project_phantom
from layerscope.tomo.phantom import MU_EPOXY, CrackSpec, ParticleSpec, PoreSpec, build_phantom
from layerscope.tomo.readers import Volume
from layerscope.tomo.segment import planar_sheets

PARTICLE = ParticleSpec((32, 32, 32), (24, 24, 24))
PORE = PoreSpec(1, 3.5, (8, -12, -12))


def _crossing(angle_deg: float, width: float = 2.5):
    a = np.radians(angle_deg)
    return [CrackSpec(1, (0, 0, 1), width, radius_voxels=14), CrackSpec(1, (0, np.sin(a), np.cos(a)), width, radius_voxels=14)]


def _angle_deg(u, v) -> float:
    return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(u, v)) / np.linalg.norm(u) / np.linalg.norm(v))))))


@pytest.mark.parametrize("cracks, n_truth", [
    (_crossing(90), 2), (_crossing(45), 2), (_crossing(30), 2),
    # a T: a disc whose edge stops on another one
    ([CrackSpec(1, (0, 0, 1), 2.0, radius_voxels=12), CrackSpec(1, (0.6, 0.8, 0), 3.0, offset=(0, 0, 6), radius_voxels=10)], 2),
    # three mutually perpendicular discs through one point
    ([CrackSpec(1, n, 2.0, radius_voxels=12) for n in ((0, 0, 1), (0, 1, 0), (1, 0, 0))], 3),
])
def test_crossing_cracks_are_counted_one_per_plane(cracks, n_truth):
    ph = build_phantom((64, 64, 64), [PARTICLE], cracks, [PORE])
    r = analyse(Volume(ph.volume, 50.0, labels=False), TomoOptions())
    assert len(r.cracks) == n_truth and len(r.pores) == 1  # before: 0 or 1 crack, the X called a pore
    assert r.cracks["sheet"].tolist() == list(range(1, n_truth + 1)) and r.cracks["crack"].nunique() == 1
    assert int(r.particles["crack_count"].iloc[0]) == n_truth
    # Each truth plane is matched by a measured sheet within 5 deg.
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    for n in ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy():
        assert min(_angle_deg(n, m) for m in normals) < 5.0
    # The sheets share the feature's voxels: their volumes add up to the truth (the union of the planes) within 10 %.
    assert r.cracks["volume_voxels"].sum() == pytest.approx(int((ph.cracks > 0).sum()), rel=0.10)


def test_a_bent_crack_is_one_crack():
    # Two half-discs meeting at a line at 50 deg (a V): one crack changing direction, not two.
    ph = build_phantom((64, 64, 64), [PARTICLE], [], [PORE])
    z, y, x = np.indices(ph.volume.shape, dtype=float) - 32
    a = np.radians(50)
    half_a = (np.abs(x) <= 1.25) & (y >= 0) & (y**2 + z**2 <= 14**2)
    t = np.cos(a) * y - np.sin(a) * x  # in-plane coordinate of the second half along the bend's normal
    half_b = (np.abs(np.sin(a) * y + np.cos(a) * x) <= 1.25) & (t <= 0) & (t**2 + z**2 <= 14**2)
    vol = ph.volume.copy()
    vol[(half_a | half_b) & (ph.particles == 1)] = MU_EPOXY
    r = analyse(Volume(vol, 50.0, labels=False), TomoOptions())
    assert len(r.cracks) == 1 and len(r.pores) == 1


@pytest.mark.parametrize("angle_deg, overshoot", [(40, 4), (50, 3), (60, 3), (60, 6)])
def test_two_cracks_crossing_near_their_rims_count_two(angle_deg, overshoot):
    # The V above with each half running ``overshoot`` voxels past the common line: two planar cracks that cross
    # near their rims (one ending on the other, as in draws 4, 5, 22, 24), flat as a whole. Each overshoots the
    # other's plane by a strip of at least 30 voxels (in 3 of the 4 cases under the 15 % share that was asked before): two cracks.
    ph = build_phantom((64, 64, 64), [PARTICLE], [], [PORE])
    z, y, x = np.indices(ph.volume.shape, dtype=float) - 32
    a = np.radians(angle_deg)
    half_a = (np.abs(x) <= 1.25) & (y >= -overshoot) & (y**2 + z**2 <= 14**2)
    t = np.cos(a) * y - np.sin(a) * x
    half_b = (np.abs(np.sin(a) * y + np.cos(a) * x) <= 1.25) & (t <= overshoot) & (t**2 + z**2 <= 14**2)
    vol = ph.volume.copy()
    vol[(half_a | half_b) & (ph.particles == 1)] = MU_EPOXY
    r = analyse(Volume(vol, 50.0, labels=False), TomoOptions())
    assert len(r.cracks) == 2 and len(r.pores) == 1  # before: one bent crack
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    for n in ((0, 0, 1), (0, np.sin(a), np.cos(a))):
        assert min(_angle_deg(n, m) for m in normals) < 8.0


def test_an_l_shaped_crack_counts_two_and_is_no_pore():
    # Two half-discs at 90 deg (an L): not flat as a whole, so it was a pore; its two planes count.
    ph = build_phantom((64, 64, 64), [PARTICLE], [], [PORE])
    z, y, x = np.indices(ph.volume.shape, dtype=float) - 32
    half_a = (np.abs(y) <= 1.25) & (x >= 0) & (x**2 + z**2 <= 14**2)
    half_b = (np.abs(x) <= 1.25) & (y >= 0) & (y**2 + z**2 <= 14**2)
    vol = ph.volume.copy()
    vol[(half_a | half_b) & (ph.particles == 1)] = MU_EPOXY
    r = analyse(Volume(vol, 50.0, labels=False), TomoOptions())
    assert len(r.cracks) == 2 and len(r.pores) == 1
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    assert min(_angle_deg(n, (0, 1, 0)) for n in normals) < 5.0 and min(_angle_deg(n, (0, 0, 1)) for n in normals) < 5.0


@pytest.mark.parametrize("angles", [(0, 120, 240), (0, 90, 225)])
def test_three_radial_cracks_meeting_on_a_line_count_three(angles):
    # A Y of half-discs around one axis (radial cracks): a plane across two arms holds as many voxels as one
    # arm within the tolerance; planes are chosen among voxels of their own orientation, so each arm is one.
    ph = build_phantom((64, 64, 64), [PARTICLE], [], [PORE])
    z, y, x = np.indices(ph.volume.shape, dtype=float) - 32
    arms = np.zeros(ph.volume.shape, bool)
    for a in np.radians(angles):
        along, across = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
        arms |= (np.abs(across) <= 1.25) & (along >= 0) & (along**2 + z**2 <= 14**2)
    vol = ph.volume.copy()
    vol[arms & (ph.particles == 1)] = MU_EPOXY
    r = analyse(Volume(vol, 50.0, labels=False), TomoOptions())
    assert len(r.cracks) == 3 and len(r.pores) == 1
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    for a in np.radians(angles):
        assert min(_angle_deg(n, (0, np.cos(a), -np.sin(a))) for n in normals) < 5.0


def _ball(centre, radius, shape=(41, 41, 41)):
    return np.sum(np.square(np.indices(shape) - np.asarray(centre)[:, None, None, None]), axis=0) <= radius**2


@pytest.mark.parametrize("mask", [_ball((20, 20, 20), r) for r in (3, 4, 5, 7, 10)]
                         + [_ball((20, 20, 20 - s), r) | _ball((20, 20, 20 + s), r) for r, s in ((3, 3), (4, 4), (6, 6))],
                         ids=[f"ball {r}" for r in (3, 4, 5, 7, 10)] + [f"two balls {r}" for r in (3, 4, 6)])
@pytest.mark.parametrize("require_crossing", [True, False])
def test_round_pores_are_never_cut_into_sheets(mask, require_crossing):
    # They fill the hull of their voxel centres 0.9-1.7 times (the test needs <= 0.8).
    half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
    assert planar_sheets(np.argwhere(mask).astype(float), tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5,
                         require_crossing=require_crossing) is None


def test_crossing_cracks_from_noisy_projections():
    ph = build_phantom((64, 64, 64), [PARTICLE], _crossing(45), [PORE, PoreSpec(1, 3.0, (-10, 12, 8))])
    proj = project_phantom(ph.volume, n_angles=120, photons=1e5, pixel_size_nm=50.0, seed=1)
    r = analyse(proj, TomoOptions())
    assert (len(r.cracks), len(r.pores), len(r.particles)) == (2, 2, 1)
    # The report shows the two planes of the one feature and the ring removal used.
    from layerscope.tomo.outputs import report_section

    sec = report_section(r, pngs={})
    cracks = next(t for t in sec.tables if t.title == "cracks")
    assert cracks.dataframe["sheet"].tolist() == [1, 2] and cracks.dataframe["crack"].nunique() == 1
    # the FBP default extends the sinograms (mass)
    assert sec.metrics["reconstruction"].endswith("ring removal: sorting, sinogram extended (truncation, mass)")
    assert sec.metrics["reconstruction"].startswith("FBP (ram-lak filter) on ")  # the filter used, named
    assert r.cracks["volume_voxels"].sum() == pytest.approx(int((ph.cracks > 0).sum()), rel=0.10)


def _small_disc_across_two(min_share=None):
    # Two discs of radius 20 crossing at 90 deg and a small disc (radius 9, 5-8 % of the joint feature once
    # the large planes took their tolerance slabs) crossing both: three cracks, three planes.
    big = [CrackSpec(1, (0, 0, 1), 2.5, radius_voxels=20), CrackSpec(1, (0, 1, 0), 2.5, radius_voxels=20)]
    return build_phantom((64, 64, 64), [PARTICLE], big + [CrackSpec(1, (1, 0, 0), 2.5, radius_voxels=9)], [PORE])


def test_a_small_disc_crossing_larger_cracks_is_its_own_plane():
    ph = _small_disc_across_two()
    mask = ph.cracks > 0
    share = (ph.cracks == 3).sum() / mask.sum()
    assert share < 0.1  # the old 10 % floor could not take it
    half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
    coords = np.argwhere(mask).astype(float)
    sheets = planar_sheets(coords, tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5)
    assert sheets is not None and sheets.max() + 1 == 3
    # the share floor alone (without the cut planes, which no longer depend on it): 10 % reads two planes
    assert planar_sheets(coords, tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5, min_share=0.1,
                         cut_planes=False).max() + 1 == 2
    r = analyse(Volume(ph.volume, 50.0, labels=False), TomoOptions())
    assert len(r.cracks) == 3 and len(r.pores) == 1
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    for n in ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy():
        assert min(_angle_deg(n, m) for m in normals) < 5.0


def test_a_sheet_in_the_surface_shell_is_merged():
    # Two crossing planes (depth 5-15 voxels into the particle) and a third sheet lying in the envelope's
    # surface shell (depth 1): the shell sheet is a crack mouth bridged by the closing; its voxels join a plane.
    from layerscope.tomo.measure import _surface_sheets

    g = np.arange(-10, 11, dtype=float)
    a = np.array([(0.0, u, v) for u in g for v in g])  # plane z = 0
    b = np.array([(u, 0.0, v) for u in g for v in g if u != 0])  # plane y = 0
    c = np.array([(3.0, u, v) for u in (6.0, 8.0, 10.0) for v in g[::2]])  # the shell sheet, nearer z = 0 than y = 0
    coords = np.concatenate([a, b, c])
    sheets = np.repeat([0, 1, 2], [len(a), len(b), len(c)])
    depth = np.concatenate([np.full(len(a) + len(b), 10.0), np.full(len(c), 1.0)])
    out = _surface_sheets(coords, sheets, depth)
    assert out.max() == 1 and (out[: len(a) + len(b)] == sheets[: len(a) + len(b)]).all()
    assert (out[len(a) + len(b):] == 0).all()


def test_a_slab_parallel_to_a_plane_taken_does_not_make_a_crossing_a_pore():
    """Two discs (radius 16, 2 voxels thick) crossing at 90 deg, one with a 3 % patch 3-4 voxels off its plane
    (a thicker stretch of the crack, beyond the plane's tolerance): the patch's plane, parallel to one taken,
    ends the search instead of rejecting the whole feature (the tiled 256^3 phantom lost 4 such crossings
    to "pores" at a 3 % floor); two sheets."""
    z, y, x = np.mgrid[-20:21, -20:21, -20:21]
    a = (np.abs(z) <= 1) & (y ** 2 + x ** 2 <= 256)
    b = (np.abs(x) <= 1) & (y ** 2 + z ** 2 <= 256)
    patch = (z >= 2) & (z <= 4) & (np.abs(y - 8) <= 3) & (np.abs(x - 8) <= 4)
    coords = np.argwhere(a | b | patch).astype(float)
    assert 0.02 < patch.sum() / len(coords) < 0.05
    sheets = planar_sheets(coords, tol=1.5, max_flatness=0.45, min_sheet_voxels=1.5, coverage=0.9)
    assert sheets is not None and sheets.max() == 1


def _pore_on_crossing(width: float, disc: float, pore: float, offset: tuple):
    """Two discs crossing at 90 deg and a round pore touching both (the pore is 30-45 % of the joint feature)."""
    cracks = [CrackSpec(1, (0, 0, 1), width, radius_voxels=disc), CrackSpec(1, (0, 1, 0), width, radius_voxels=disc)]
    return build_phantom((64, 64, 64), [PARTICLE], cracks, [PoreSpec(1, pore, offset)])


# (2.0, 9, 5.5, (0, 6, 6)) is out of reach: beside a pore of radius 5.5 a disc of radius 9 is no wider than the
# opening ball and stays part of one pore.
@pytest.mark.parametrize("width, disc, pore, offset", [(2.0, 10, 5.0, (0, 6, 6)), (3.0, 10, 5.0, (0, 6.5, 6.5)),
                                                       (2.0, 12, 5.0, (0, 5, 5)), (3.0, 12, 5.0, (4, 6, 6))])
def test_a_pore_joined_to_crossing_cracks_is_split_off(width, disc, pore, offset):
    from layerscope.tomo.measure import _sheets
    from layerscope.tomo.segment import feature_shape

    ph = _pore_on_crossing(width, disc, pore, offset)
    r = analyse(Volume(ph.volume, 50.0, labels=False), TomoOptions())
    m = r.feature_labels == r.cracks["crack"].iloc[0]
    coords = np.argwhere(m).astype(float)
    # Without the split the planes hold under 90 % of the feature and all of it was one pore.
    assert _sheets(m, coords, feature_shape(coords), TomoOptions(), joined=False) is None
    assert len(r.cracks) == 2 and len(r.pores) == 1 and r.pores["pore"].iloc[0] == r.cracks["crack"].iloc[0]
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    for n in ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy():
        assert min(_angle_deg(n, q) for q in normals) < 5.0
    # The pore's partial-volume content goes to the pore, not the cracks (truth: the voxels of each).
    assert r.pores["volume_voxels"].iloc[0] == pytest.approx(int((ph.pores > 0).sum()), rel=0.15)
    assert r.cracks["volume_voxels"].sum() == pytest.approx(int((ph.cracks > 0).sum()), rel=0.10)


@pytest.mark.parametrize("mask", [_ball((20, 20, 20), r) for r in (3, 4, 5, 7, 10)]
                         + [_ball((20, 20, 20 - s), r) | _ball((20, 20, 20 + s), r) for r, s in ((3, 3), (4, 4), (6, 6))]
                         + [_ball((20, 20, 14), 6) | _ball((20, 20, 24), 3), _ball((20, 14, 20), 4) | _ball((20, 24, 20), 7)],
                         ids=[f"ball {r}" for r in (3, 4, 5, 7, 10)] + [f"two balls {r}" for r in (3, 4, 6)]
                         + ["balls 6 and 3", "balls 4 and 7"])
def test_round_pores_are_never_split_into_a_pore_and_cracks(mask):
    # The opening of a round pore (or of touching ones) is the pore itself: nothing is left to be a crack.
    from layerscope.tomo.measure import _sheets
    from layerscope.tomo.segment import feature_shape

    coords = np.argwhere(mask).astype(float)
    assert _sheets(mask, coords, feature_shape(coords), TomoOptions(), np.full(len(coords), 10.0)) is None


@pytest.mark.parametrize("radius, overshoot", [(5, 0), (6, 2)])
def test_small_discs_meeting_at_40_deg_that_fill_085_of_their_hull_are_two_sheets(radius, overshoot):
    """Two small discs (radius 5-6, 2.5 voxels thick) meeting at 40 deg near their rims fill 0.84-0.86 of the
    convex hull of their voxel centres (draws 10 and 45 of 0-49: 0.81 and 0.87): under ``max_fill`` 0.9, above the
    0.8 asked before, when they were a pore or one crack. A digitised convex body fills its hull at least once
    (the balls of ``test_round_pores_are_never_cut_into_sheets``: 1.05-1.4)."""
    from scipy.spatial import ConvexHull

    z, y, x = np.mgrid[-15:16, -15:16, -15:16].astype(float)
    a = np.radians(40)
    disc_a = (np.abs(x) <= 1.25) & (y >= -overshoot) & ((y - radius + overshoot) ** 2 + z ** 2 <= radius ** 2)
    t = np.cos(a) * y - np.sin(a) * x
    disc_b = ((np.abs(np.sin(a) * y + np.cos(a) * x) <= 1.25) & (t <= overshoot)
              & ((t + radius - overshoot) ** 2 + z ** 2 <= radius ** 2))
    m = disc_a | disc_b
    coords = np.argwhere(m).astype(float)
    assert 0.8 < len(coords) / ConvexHull(coords).volume < 0.9
    half = float(np.percentile(ndi.distance_transform_edt(m)[m], 90))
    kw = dict(tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5, require_crossing=False)
    sheets = planar_sheets(coords, **kw)
    assert sheets is not None and sheets.max() == 1
    # Each disc's normal is a sheet's (its voxels' least-squares plane) within 8 deg (measured 1.1-7.1: the voxels
    # near the line where they meet, within the tolerance of both planes, go to the nearer one).
    from layerscope.tomo.segment import plane_of

    normals = [plane_of(coords[sheets == i])[1] for i in (0, 1)]
    for n in ((0, 0, 1), (0, np.sin(a), np.cos(a))):
        assert min(_angle_deg(n, q) for q in normals) < 8.0
    assert planar_sheets(coords, **kw, max_fill=0.8) is None


def _v_with_a_ragged_bend(angle_deg: float, seed: int, ragged: float = 0.25, past: int = 0):
    """Coordinates of the V of ``test_a_bent_crack_is_one_crack`` (two 2.5-voxel half-discs of radius 14 meeting on
    the z axis at ``angle_deg``), each half running ``past`` voxels beyond the common line, with ``ragged`` of the
    voxels within 4 voxels of that line dark at random (a ragged, blurred bend)."""
    z, y, x = np.mgrid[-32:32, -32:32, -32:32].astype(float)
    a = np.radians(angle_deg)
    t = np.cos(a) * y - np.sin(a) * x
    m = (np.abs(x) <= 1.25) & (y >= -past) & (y ** 2 + z ** 2 <= 14 ** 2)
    m |= (np.abs(np.sin(a) * y + np.cos(a) * x) <= 1.25) & (t <= past) & (t ** 2 + z ** 2 <= 14 ** 2)
    if ragged:
        m |= (np.hypot(x, y) <= 4) & (np.abs(z) <= 14) & (np.random.default_rng(seed).random(x.shape) < ragged)
    return np.argwhere(m).astype(float), m


def _sheet_count(coords, m) -> int:
    half = float(np.percentile(ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1, 1:-1][m], 90))
    sheets = planar_sheets(coords, tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5, require_crossing=True)
    return 1 if sheets is None else int(sheets.max()) + 1


@pytest.mark.xfail(strict=True, reason="known weakness of the overshoot rule (docs/validation.md 'tomosheet'): "
                   "main reads 10 of the 12 ragged bends as two cracks")
def test_a_ragged_bend_is_mostly_not_a_crossing():
    """A bent crack whose bend is ragged (25 % of the voxels within 4 voxels of the common line dark) leaves
    35-80 voxels past the other half's plane, over ``min_voxels``: main (4bd3a2f) reads 10 of these 12 Vs (30-60 deg,
    3 random bends each) as two crossing cracks (tomoedge's overshoot rule, which gave held-out draw 1041 a new split
    sheet). Truth: one crack each; a fix should read at most 4 of them as two. A test of the overshoot's thickness
    (``_as_thick``, tomosheet) got 4 but read tomoedge's 60 deg V running 3 voxels past as one crack, and was not
    kept."""
    twos = sum(_sheet_count(*_v_with_a_ragged_bend(a, s)) == 2 for a in (30, 40, 50, 60) for s in range(3))
    assert twos <= 4


@pytest.mark.parametrize("angle_deg, past", [(30, 4), (40, 3), (40, 4), (50, 3), (60, 3)])
def test_cracks_running_past_each_other_still_cross(angle_deg, past):
    # The same Vs without the ragged bend, each half running 3-4 voxels past the line (two cracks meeting near their
    # rims): the overshoot is the crack itself, as thick as elsewhere, and they stay two.
    assert _sheet_count(*_v_with_a_ragged_bend(angle_deg, 0, ragged=0.0, past=past)) == 2
