"""Tied distance tops read as untied ones under ``segment.LOW_TOPS`` (issue 20, helper tomorule; docs/validation.md
"tomorule"; ``segment.LOW_TOPS_TIED``; ``LOW_TOPS`` switched on here at 0.5 by a fixture).

Truth: voxelised balls drawn here. Two balls of radius 10 with centres ``d`` voxels apart along x are two particles
(the phantom draws each particle as one sphere or ellipsoid): at d = 10 and 12 their union has a waist (the section
through the contact's circle, radius sqrt(100 - d^2 / 4) = 8.7 / 8.0, against 10 at each centre) and the distance
map dips 1.05-2 voxels between the centres, at least ``LOW_TOPS * h`` = 1. With the radii 10 and 10.2 the tops are
untied and ``LOW_TOPS`` seeds the lower one (a low top kept apart at the waist): two particles. With radii 10 and 10
the tops tie exactly (mirror images about a grid plane) and the tied join made them one seed: one particle, where the
rule reads the tie as the untied pair is read: two. Two balls overlapped further (d = 6, 8: a dip of 0.5-0.8 voxel,
below ``LOW_TOPS * h``) stay one either way (a guard). Counts exact (tolerance 0).
"""

from __future__ import annotations

import numpy as np
import pytest

import layerscope.tomo.segment as sg
from layerscope.tomo.analysis import TomoOptions, Volume, analyse


@pytest.fixture(autouse=True)
def low_tops(monkeypatch):
    """``LOW_TOPS`` on at half of ``h`` (the measured setting), ``LOW_TOPS_TIED`` at its module value."""
    monkeypatch.setattr(sg, "LOW_TOPS", 0.5)


def _pair(d: float, r2: float, shape: int = 45) -> np.ndarray:
    """Balls of radius 10 and ``r2`` centred on (c, c, c -/+ d/2), ``c`` the middle voxel (mirror images for r2 = 10)."""
    c = shape // 2
    z, y, x = np.ogrid[:shape, :shape, :shape]
    return (((z - c) ** 2 + (y - c) ** 2 + (x - c + d / 2) ** 2 <= 100)
            | ((z - c) ** 2 + (y - c) ** 2 + (x - c - d / 2) ** 2 <= r2 * r2))


@pytest.mark.parametrize("d", [10, 12])
def test_tied_and_untied_peanuts_read_alike_two_particles(d, monkeypatch):
    """Radii 10 / 10 (tied) and 10 / 10.2 (untied), centres 10-12 voxels apart, a waist between them: two particles
    each, each ball's centre in its own label. With ``LOW_TOPS_TIED`` False (the tied group one seed) the tied pair
    reads one (what main reads with ``LOW_TOPS`` on)."""
    c = 22
    for r2 in (10.0, 10.2):
        lab = sg.particle_labels(_pair(d, r2), close_voxels=3)
        assert lab.max() == 2 and lab[c, c, c - d // 2] != lab[c, c, c + d // 2], r2
    monkeypatch.setattr(sg, "LOW_TOPS_TIED", False)
    assert sg.particle_labels(_pair(d, 10.0), close_voxels=3).max() == 1
    assert sg.particle_labels(_pair(d, 10.2), close_voxels=3).max() == 2


@pytest.mark.parametrize("d", [6, 8])
def test_tied_pair_further_overlapped_stays_one(d):
    """Centres 6-8 voxels apart: the tops dip 0.5-0.8 voxel (< ``LOW_TOPS * h``), so the tie is not read apart: one
    particle, tied or untied (a guard: one on main too)."""
    for r2 in (10.0, 10.2):
        assert sg.particle_labels(_pair(d, r2), close_voxels=3).max() == 1


def test_untied_at_low_tops_gives_the_other_low_groups_ids_above_the_tied_ones():
    """Seeds 1..6: the tied join (``lut``) makes groups {1, 3, 4}, {2}, {5, 6}; at ``LOW_TOPS * h`` (``low``) 1 and 4
    stay joined, 3 and 6 stand apart: 3 and 6 get ids 4 and 5 (after m = 3, in their seeds' order), the rest keep
    their group's id."""
    lut = np.array([0, 1, 2, 1, 1, 3, 3])
    low = np.array([0, 1, 2, 3, 1, 4, 5])
    out, m = sg.untied_at_low_tops(lut, low)
    assert m == 3 and out.tolist() == [0, 1, 2, 4, 1, 3, 5]
    same, m = sg.untied_at_low_tops(lut, lut)  # nothing apart: the table as it was
    assert m == 3 and same.tolist() == lut.tolist()


def test_in_memory_and_both_out_of_core_paths_agree_on_the_tied_peanut(monkeypatch):
    """The tied d = 10 peanut (two) beside balls of radius 10 and 8 with centres 16 voxels apart (two), as a label
    volume: in memory, out of core by clusters and out of core with each cluster split in slabs of 6 z slices
    (``chunked._untie_low_tops``): the same particle labels, 4 particles; with ``LOW_TOPS_TIED`` False 3 on every path."""
    import layerscope.tomo.chunked as chunked

    z, y, x = np.ogrid[:45, :45, :45]
    other = ((z - 22) ** 2 + (y - 22) ** 2 + (x - 14) ** 2 <= 100) | ((z - 22) ** 2 + (y - 22) ** 2 + (x - 30) ** 2 <= 64)
    vol = Volume(np.concatenate([_pair(10, 10.0), other], axis=1).astype(np.uint8), 50.0, labels=True)
    opts = dict(particle_label=1, min_particle_voxels=50, crack_max_width_nm=150.0)

    def three() -> list[np.ndarray]:
        mem = analyse(vol, TomoOptions(**opts))
        clusters = analyse(vol, TomoOptions(out_of_core=True, slab_slices=6, **opts), scheduler="sync")
        with monkeypatch.context() as m:
            m.setattr(chunked, "MAX_CLUSTER_VOXELS", 10 ** 3)
            slabs = analyse(vol, TomoOptions(out_of_core=True, slab_slices=6, **opts), scheduler="sync")
        return [np.asarray(r.particle_labels) for r in (mem, clusters, slabs)]

    labs = three()
    assert [int(lab.max()) for lab in labs] == [4, 4, 4]
    assert np.array_equal(labs[0], labs[1]) and np.array_equal(labs[0], labs[2])
    monkeypatch.setattr(sg, "LOW_TOPS_TIED", False)
    assert [int(lab.max()) for lab in three()] == [3, 3, 3]
