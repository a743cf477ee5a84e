"""A small cracked particle beside a larger one: seeds from low distance tops kept at a neck (issue 20, helper
tomomerge2; docs/validation.md "tomomerge2"; ``segment.LOW_TOPS``, switched on here by a fixture).

Truth: voxelised spheres drawn here. The small sphere's crack junction is a tube wider than the closing's ball, open
to its surface (the cavity the smoothing leaves where cracks meet): its envelope's distance top falls to within
``h`` = 2 voxels of the neck to the larger sphere, so the base seeds it with no top of its own and merges it. The
counts are exact (tolerance 0): two particles with the rule, one on the base; the guards stay one particle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from layerscope.tomo import segment
from layerscope.tomo.segment import particle_labels


@pytest.fixture(autouse=True)
def low_tops(monkeypatch):
    """The rule on at half of ``h`` (the measured setting; the module's default is off)."""
    monkeypatch.setattr(segment, "LOW_TOPS", 0.5)


def _ball(shape, c, r):
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r


def _tube(shape, c, r, axis, lo, hi):
    """Voxels within ``r`` of the line through ``c`` along ``axis``, from ``lo`` to ``hi`` along it."""
    g = np.ogrid[:shape[0], :shape[1], :shape[2]]
    d2 = sum((g[a] - c[a]) ** 2 for a in range(3) if a != axis)
    return (d2 <= r * r) & (g[axis] >= lo) & (g[axis] <= hi)


def _pair(small: float, big: float, gap: float, tube: float):
    """A sphere of radius ``big`` and one of ``small`` along x with centres ``gap`` x the sum of radii apart; the small
    one hollowed by a tube of radius ``tube`` along z from its centre out through its top (0: no tube)."""
    shape = (int(2 * big + 12), int(2 * big + 12), int(2 * (big + small) + 14))
    c1 = np.array([big + 6.3, big + 5.8, big + 6.0])
    c2 = c1 + [0.0, 0.0, gap * (big + small)]
    solid = _ball(shape, c1, big) | _ball(shape, c2, small)
    return solid & ~_tube(shape, c2, tube, 0, c2[0] - 1, shape[0]) if tube else solid


def _top_over_saddle(solid, small: float, big: float, gap: float) -> float:
    """The small sphere's envelope distance top less the saddle to the large one's (the highest level at which the
    two tops are joined in the distance map at or above it; bisection to 0.01 voxel): the top's dynamic."""
    env = segment.filled_envelope(segment.closed_envelope(solid, 3))
    d = segment.distance_transform_core(env, slice(None))
    mine = np.zeros(solid.shape, bool)
    mine[:, :, int(big + 6.0 + gap * (big + small) - 0.3 * small):] = True
    a = np.unravel_index(np.argmax(np.where(mine, d, -1)), d.shape)
    b = np.unravel_index(np.argmax(np.where(mine, -1, d)), d.shape)
    lo, hi = 0.0, float(min(d[a], d[b]))
    while hi - lo > 0.01:
        lab = ndi.label(d >= (lo + hi) / 2, structure=np.ones((3, 3, 3)))[0]
        lo, hi = ((lo + hi) / 2, hi) if lab[a] == lab[b] else (lo, (lo + hi) / 2)
    return float(d[a]) - lo


@pytest.mark.parametrize("small,big,gap", [(11, 20, 1.0), (11, 25, 1.0), (12, 22, 0.98), (13, 22, 0.98)])
def test_small_cracked_sphere_beside_a_larger_one_is_two_particles(small, big, gap, monkeypatch):
    """A sphere of radius 11-13 touching one of 20-25 (centres 0.98-1.0 x the sum of radii apart), its crack junction
    a tube of radius 4 from its centre out: its top lies 1-2 voxels above the saddle (at least ``LOW_TOPS * h``,
    below ``h``; the class of the 12000-12099 merges): two particles with the rule, one (merged) with it off; without
    the tube (no crack) two either way."""
    solid = _pair(small, big, gap, 4)
    assert 0.5 * 2.0 <= _top_over_saddle(solid, small, big, gap) < 2.0
    assert int(particle_labels(solid, close_voxels=3).max()) == 2
    monkeypatch.setattr(segment, "LOW_TOPS", None)
    assert int(particle_labels(solid, close_voxels=3).max()) == 1
    assert int(particle_labels(_pair(small, big, gap, 0), close_voxels=3).max()) == 2


@pytest.mark.parametrize("r,tube", [(11, 4), (14, 4.5), (20, 4)])
def test_sphere_with_an_open_junction_alone_is_one_particle(r, tube):
    """The hollowed small sphere alone (its low tops round the tube meet each other at wide faces) is one particle."""
    shape = (2 * r + 9,) * 3
    c = np.array([r + 4.3, r + 4.6, r + 4.1])
    solid = _ball(shape, c, r) & ~_tube(shape, c, tube, 0, c[0] - 1, shape[0])
    assert int(particle_labels(solid, close_voxels=3).max()) == 1


@pytest.mark.parametrize("r,width,offset", [(15, 2, 0), (15, 3, 0), (15, 2, 6), (20, 3, 10), (12, 2, 5)])
def test_sphere_cut_through_by_a_crack_stays_one_particle(r, width, offset):
    """tests/tomo/test_particle_contacts.py's guard with the rule on: a sphere cut through by a plane crack 2-3 voxels
    wide is one particle."""
    shape = (2 * r + 9,) * 3
    c = np.array([r + 4.3, r + 4.6, r + 4.1])
    x = np.arange(shape[2])[None, None, :]
    solid = _ball(shape, c, r) & ~(np.abs(x - (c[2] + offset)) < width / 2)
    assert int(particle_labels(solid, close_voxels=3).max()) == 1


@pytest.mark.parametrize("r,width", [(14, 7), (18, 7), (11, 8)])
def test_crossing_cracks_wider_than_the_closing_leave_one_particle(r, width):
    """A sphere of radius 11-18 cut by two perpendicular plane cracks 7-8 voxels wide (wider than the closing's ball:
    outside the envelope) through its upper half, open to its surface, its four quarters joined below: their low
    tops meet each other along the cracks or at wide faces, one particle."""
    n = 2 * r + 9
    c = np.array([r + 4.3, r + 4.4, r + 4.1])
    z, y, x = np.ogrid[:n, :n, :n]
    cracks = ((np.abs(x - c[2]) < width / 2) | (np.abs(y - c[1]) < width / 2)) & (z > c[0] - 2)
    assert int(particle_labels(_ball((n, n, n), c, r) & ~cracks, close_voxels=3).max()) == 1


def test_out_of_core_slabs_equal_the_in_memory_labels(monkeypatch):
    """The pair of the first test as a label volume: the in-memory analysis, the out-of-core one with the cluster
    whole and with it split in z slabs of 6 (the big-cluster path: low h-maxima slab by slab, the low-top join on
    faces summed over slabs) give the same 2 particles, labels and tables (no tolerance)."""
    import layerscope.tomo.chunked as chunked
    from layerscope.tomo import TomoOptions, Volume, analyse

    vol = Volume(_pair(11, 20, 1.0, 4).astype(np.uint8), 50.0, labels=True)
    opts = dict(particle_label=1, min_particle_voxels=50)
    here = analyse(vol, TomoOptions(**opts))
    assert len(here.particles) == 2
    whole = analyse(vol, TomoOptions(out_of_core=True, slab_slices=6, **opts), scheduler="sync")
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 10 ** 3)
    pieces = analyse(vol, TomoOptions(out_of_core=True, slab_slices=6, **opts), scheduler="sync")
    for other in (whole, pieces):
        assert np.array_equal(np.asarray(here.particle_labels), np.asarray(other.particle_labels))
        for name in ("particles", "cracks", "pores"):
            pd.testing.assert_frame_equal(getattr(here, name), getattr(other, name), check_exact=True)


def test_random_volumes_in_tiny_slabs_equal_the_whole_cluster_with_low_tops(monkeypatch):
    """tests/tomo/test_chunked.py's random 44^3 label volumes (seeds 0-11) with the rule on: every cluster above
    10^3 voxels split in slabs of 4 z slices gives the particle labels and tables of the whole-cluster path."""
    from test_chunked import slabs_equal_whole

    for seed in range(12):
        slabs_equal_whole(seed, monkeypatch)


@pytest.mark.parametrize("radius,low,rest", [(13.6, 32, 6), (12.0, 30, 7), (15.0, 26, 5)])
def test_low_top_in_a_larger_body_joins_its_small_rest_through_solid(radius, low, rest, monkeypatch):
    """9036's case (tomomerge3): a low-top label that is the larger part of a particle, meeting the rest of it (a
    smaller label seeded at ``h``) at a face through solid. Here a solid cylinder of radius 12-15 cut across into a
    long low-top label (26-32 slices) and a short rest (5-7): the face is a disc as wide as the cylinder, 0.8-0.9 of
    the low label's equivalent radius (a neck by that radius) but 1.3-1.6 of the rest's (no neck): joined, one
    particle, with :data:`~layerscope.tomo.segment.LOW_TOPS_SMALLER`; kept apart (two) with it off."""
    n = int(2 * radius + 5)
    y, x = np.ogrid[:n, :n]
    disc = (y - n / 2 + 0.3) ** 2 + (x - n / 2 + 0.2) ** 2 <= radius ** 2
    lab = np.zeros((low + rest + 2, n, n), np.int32)
    lab[1:1 + rest][:, disc], lab[1 + rest:1 + rest + low][:, disc] = 1, 2
    faces, sizes = segment.label_faces(lab, np.zeros(lab.shape, bool)), np.bincount(lab.ravel())
    own, small = (segment.face_radius(faces[(1, 2)]) / np.cbrt(3 * sizes[i] / (4 * np.pi)) for i in (2, 1))
    assert own < segment.LOW_TOPS_NECK <= small
    assert list(segment.low_top_roots(faces, sizes, 1)) == [0, 1, 1]
    monkeypatch.setattr(segment, "LOW_TOPS_SMALLER", False)
    assert list(segment.low_top_roots(faces, sizes, 1)) == [0, 1, 2]


def _ellipsoid_cut(semi: tuple[float, float, float], cut: float) -> np.ndarray:
    """Labels of an ellipsoid (semi-axes z, y, x in voxels) cut across z at ``cut`` voxels from its centre: 1 below
    the cut (the rest, seeded at ``h``), 2 above (the low-top label)."""
    shape = tuple(int(2 * s + 5) for s in semi)
    g = np.ogrid[:shape[0], :shape[1], :shape[2]]
    c = [n / 2 - 0.3 + 0.1 * i for i, n in enumerate(shape)]
    inside = sum(((g[i] - c[i]) / semi[i]) ** 2 for i in range(3)) <= 1
    return np.where(inside, np.where(g[0] < c[0] + cut, 1, 2), 0).astype(np.int32)


def _roots(lab: np.ndarray) -> list[int]:
    """:func:`segment.low_top_roots` of labels 1 (at ``h``) and 2 (a low top), faces through solid, waists read as
    :func:`segment.join_low_tops` reads them."""
    faces, sizes = segment.label_faces(lab, np.zeros(lab.shape, bool)), np.bincount(lab.ravel())
    planes = segment.waist_planes(faces, 1)
    waist = segment.waists(segment.section_counts(lab, planes, lab.shape), planes) if planes else None
    return list(segment.low_top_roots(faces, sizes, 1, waist))


def _ratio(lab: np.ndarray) -> float:
    """The face's disc radius over the smaller label's equivalent-sphere radius (as the rule reads a neck)."""
    face, sizes = segment.label_faces(lab, np.zeros(lab.shape, bool))[(1, 2)], np.bincount(lab.ravel())
    return segment.face_radius(face) / np.cbrt(3 * sizes[1:].min() / (4 * np.pi))


@pytest.mark.parametrize("semi,cut", [((33, 11, 11), 0.0), ((30, 10, 12), 2.0), ((36, 12, 12), -3.0)])
def test_low_top_in_its_own_body_stays_one_through_a_section_that_is_no_waist(semi, cut, monkeypatch):
    """9063's case (tomomerge4): a low-top label meeting the rest of its (convex) particle through solid at a face
    narrower than :data:`~layerscope.tomo.segment.LOW_TOPS_NECK` times the smaller label's radius. Here an ellipsoid
    of semi-axes 30-36 x 10-12 x 11-12 voxels cut across its long axis within 3 voxels of its centre: the face reads
    0.88-0.94 of the smaller part's equivalent radius (a neck by the ratio) but is the widest section of the union (a
    convex body has no waist): joined, one particle; kept apart (two) with ``LOW_TOPS_WAIST`` None."""
    lab = _ellipsoid_cut(semi, cut)
    assert _ratio(lab) < segment.LOW_TOPS_NECK
    assert _roots(lab) == [0, 1, 1]
    monkeypatch.setattr(segment, "LOW_TOPS_WAIST", None)
    assert _roots(lab) == [0, 1, 2]


@pytest.mark.parametrize("r1,r2,gap", [(12, 12, 0.85), (11, 16, 0.85), (10, 20, 0.9)])
def test_two_fused_spheres_meet_at_a_waist_and_stay_two(r1, r2, gap):
    """Two spheres of radius 10-20 overlapping (centres 0.85-0.9 x the sum of radii apart, the overlap given to the
    sphere whose surface it lies deeper in): their face is a neck by the ratio (below 1 of the smaller part's radius) and a waist (at
    least a voxel narrower than the widest section on each side): two particles with the guard (a guard: two without
    it too)."""
    shape = (int(2 * max(r1, r2) + 6),) * 2 + (int(2 * (r1 + r2) + 8),)
    g = np.ogrid[:shape[0], :shape[1], :shape[2]]
    c1 = np.array([shape[0] / 2 - 0.3, shape[1] / 2 + 0.2, r1 + 3.7])
    c2 = c1 + [0, 0, gap * (r1 + r2)]
    d1, d2 = (np.sqrt(sum((g[i] - c[i]) ** 2 for i in range(3))) for c in (c1, c2))
    lab = np.where((d2 <= r2) & (d2 / r2 < d1 / r1), 2, np.where(d1 <= r1, 1, 0)).astype(np.int32)
    assert _ratio(lab) < segment.LOW_TOPS_NECK
    assert _roots(lab) == [0, 1, 2]


def test_waist_read_in_slabs_equals_the_whole_cluster():
    """The big-cluster path's join (:func:`chunked._join_low_tops`, faces and sections summed over z slabs of 4) on
    two cut ellipsoids gives the in-memory join's labels (no tolerance): one particle each."""
    import layerscope.tomo.chunked as chunked

    for lab in (_ellipsoid_cut((33, 11, 11), 0.0), _ellipsoid_cut((30, 10, 12), 2.0)):
        want = segment.join_low_tops(lab, 1, np.zeros(lab.shape, bool))[lab]
        plab, sizes = lab.copy(), np.bincount(lab.ravel()).astype(np.int64)
        first = np.array([-1] + [int(np.flatnonzero(lab.ravel() == i)[0]) for i in (1, 2)])
        sl = tuple(slice(0, n) for n in lab.shape)
        chunked._join_low_tops(plab, np.ones(lab.shape, bool), sl, 0, first, sizes, 4, 1)
        assert np.array_equal(plab, want) and int(plab.max()) == 1
