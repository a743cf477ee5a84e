"""A small cracked particle beside a larger one: seeds from low distance tops kept at a neck (issue 20, helper
tomomerge2; docs/validation.md "tomomerge2"; ``segment.LOW_TOPS``, switched on here by a fixture).

Truth: voxelised spheres drawn here. The small sphere's crack junction is a tube wider than the closing's ball, open
to its surface (the cavity the smoothing leaves where cracks meet): its envelope's distance top falls to within
``h`` = 2 voxels of the neck to the larger sphere, so the base seeds it with no top of its own and merges it. The
counts are exact (tolerance 0): two particles with the rule, one on the base; the guards stay one particle.
"""

from __future__ import annotations

import numpy as np
import pytest

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
    one hollowed by a tube of radius ``tube`` along z from its centre out through its top."""
    shape = (int(2 * big + 12), int(2 * big + 12), int(2 * (big + small) + 14))
    c1 = np.array([big + 6.3, big + 5.8, big + 6.0])
    c2 = c1 + [0.0, 0.0, gap * (big + small)]
    solid = _ball(shape, c1, big) | _ball(shape, c2, small)
    return solid & ~_tube(shape, c2, tube, 0, c2[0] - 1, shape[0])


def _small_top_and_pass(solid) -> tuple[float, float]:
    """The envelope's distance top in the small sphere's half and the highest distance on the plane between them."""
    env = segment.filled_envelope(segment.closed_envelope(solid, 3))
    d = segment.distance_transform_core(env, slice(None))
    cut = int(np.argmin(env.sum(axis=(0, 1))[solid.shape[2] // 2:])) + solid.shape[2] // 2
    return float(d[:, :, cut + 1:].max()), float(d[:, :, cut].max())


@pytest.mark.parametrize("small,big,gap,tube", [(11, 20, 0.95, 4), (11, 22, 0.95, 4), (12, 20, 0.95, 4.5)])
def test_small_cracked_sphere_beside_a_larger_one_is_two_particles(small, big, gap, tube, monkeypatch):
    """The small sphere's top lies less than ``h`` above the neck (the class of the 12000-12099 merges), and at least
    ``LOW_TOPS * h`` above it: two particles with the rule; one (merged) with it off."""
    solid = _pair(small, big, gap, tube)
    top, neck = _small_top_and_pass(solid)
    assert 0.5 * 2.0 <= top - neck < 2.0
    assert int(particle_labels(solid, close_voxels=3).max()) == 2
    monkeypatch.setattr(segment, "LOW_TOPS", None)
    assert int(particle_labels(solid, close_voxels=3).max()) == 1


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


def test_two_crossing_cracks_wider_than_the_closing_leave_one_particle():
    """A sphere of radius 14 cut by two perpendicular plane cracks 7 voxels wide that stop 4 voxels short of each
    side (its four quarters joined by solid rims): its quarters' low tops meet at wide faces, one particle."""
    r, shape = 14, (37, 37, 37)
    c = np.array([18.3, 18.4, 18.1])
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    inner = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= (r - 4) ** 2
    cracks = inner & ((np.abs(x - c[2]) < 3.5) | (np.abs(y - c[1]) < 3.5))
    solid = _ball(shape, c, r) & ~cracks
    assert int(particle_labels(solid, close_voxels=3).max()) == 1
