"""Particle split seeds (issue 20, helper tomosplit; docs/validation.md "tomosplit").

Truth: voxelised spheres drawn here (one particle each, or two touching ones), with planar cracks of known
width; the closing radius is 3 voxels (the default ``crack_max_width_nm`` of 6 voxels).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from layerscope.tomo.segment import closed_envelope, h_maxima_core, joined_tops, particle_labels


def _cracked_sphere(rng, shape=49):
    """A sphere (radius 6-16 voxels, centre off the grid) cut through its centre by a planar crack 1.5-3.5 wide."""
    r, c, w = rng.uniform(6, 16), shape // 2 + rng.uniform(0, 1, 3), rng.uniform(1.5, 3.5)
    n = rng.normal(size=3)
    n /= np.linalg.norm(n)
    z, y, x = np.ogrid[:shape, :shape, :shape]
    d = (z - c[0]) * n[0] + (y - c[1]) * n[1] + (x - c[2]) * n[2]
    return (((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) <= r * r) & (np.abs(d) > w / 2)


def test_tied_tops_of_one_particle_are_one_seed():
    """30 cracked spheres, the crack bridged by the closing: one seed each (truth: one particle). Without the
    join, h-maxima's 26-connected tops are two seeds in some (equal distance tops with a voxel between)."""
    rng = np.random.default_rng(0)
    joined, plain = [], []
    for _ in range(30):
        env = ndi.binary_fill_holes(closed_envelope(_cracked_sphere(rng), 3))
        tops = h_maxima_core(ndi.distance_transform_edt(env), 2.0)
        joined.append(int(joined_tops(tops).max()))
        plain.append(ndi.label(tops, structure=np.ones((3, 3, 3)))[1])
    assert joined == [1] * 30, joined
    assert sum(n > 1 for n in plain) >= 2, plain  # the case is exercised


def test_joined_seeds_are_numbered_by_first_voxel_and_touching_spheres_stay_two():
    """Two spheres (radius 10 and 8, centres 16 voxels apart: a neck of radius 4.7) are two particles, numbered
    in raster order of their seeds; seed ids are 1..n with the first voxel of seed 1 first."""
    z, y, x = np.ogrid[:40, :30, :30]
    solid = ((z - 12) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 <= 100) | ((z - 28) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 <= 64)
    lab = particle_labels(solid, close_voxels=3)
    assert lab.max() == 2 and lab[12, 15, 15] == 1 and lab[28, 15, 15] == 2
    seeds = joined_tops(h_maxima_core(ndi.distance_transform_edt(solid), 2.0))
    first = [np.flatnonzero(seeds.ravel() == i)[0] for i in (1, 2)]
    assert seeds.max() == 2 and first[0] < first[1]
