"""Cracks as users see them (issue 20 item 3): curved and wavy sheets are one crack; radial cracks meeting on a
line or at the centre count one per plane; widths within 1 voxel; pores stay pores.

Truth: ``build_phantom`` with curved, wavy and radial crack specs (crack id per voxel), analysed as grey
volumes (no reconstruction: the shapes alone) and once reconstructed from noisy projections.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.tomo import TomoOptions, analyse, project_phantom
from layerscope.tomo.phantom import (CurvedCrackSpec, ParticleSpec, PoreSpec, RadialCrackSpec, WavyCrackSpec,
                                     build_phantom, radial_star)
from layerscope.tomo.readers import Volume

PARTICLE = ParticleSpec((32, 32, 32), (24, 24, 24))
PORE = PoreSpec(1, 3.5, (8, -12, -12))
W = 2.5  # crack width, voxels


def _angle_deg(u, v) -> float:
    return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(u, v)) / np.linalg.norm(u) / np.linalg.norm(v))))))


def _analyse(cracks):
    ph = build_phantom((64, 64, 64), [PARTICLE], cracks, [PORE])
    return ph, analyse(Volume(ph.volume, 50.0, labels=False), TomoOptions())


def _check_widths_and_volume(r, ph):
    # Widths within 1 voxel of the truth (mean within 0.6, as for the flat cracks); volume within 10 %.
    w_mean, w_max = r.cracks["width_mean_nm"] / 50.0, r.cracks["width_max_nm"] / 50.0
    assert np.all(np.abs(w_mean - W) < 0.6), w_mean.tolist()
    assert np.all(np.abs(w_max - W) <= 1.0), w_max.tolist()
    assert r.cracks["volume_voxels"].sum() == pytest.approx(int((ph.cracks > 0).sum()), rel=0.10)


@pytest.mark.parametrize("crack", [
    CurvedCrackSpec(1, (0, 0.6, 0.8), W, 24, offset=(0, 3, 4)),  # a sphere of the particle's radius, to the surface
    CurvedCrackSpec(1, (0, 0.6, 0.8), W, 48),
    CurvedCrackSpec(1, (0, 0, 1), W, 24, cylinder_axis=(0.6, 0.8, 0), radius_voxels=16),  # internal, cylindrical
    WavyCrackSpec(1, (0, 0, 1), W, 2.0, 24.0, (0, 1, 0)),
], ids=["sphere R=1x", "sphere R=2x", "cylinder R=1x internal", "wavy A=2 L=24"])
def test_a_curved_crack_is_one_crack(crack):
    ph, r = _analyse([crack])
    assert (len(r.cracks), len(r.pores), len(r.particles)) == (1, 1, 1)
    _check_widths_and_volume(r, ph)
    # The sheet's mean normal is the normal at the crack's centre within 10 deg.
    n = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()[0]
    assert _angle_deg(n, crack.normal) < 10.0


@pytest.mark.parametrize("cracks, n_planes", [
    (radial_star(1, 2, W), 1),  # two opposite half-planes: one plane, one crack
    (radial_star(1, 3, W, start_deg=10), 3),
    (radial_star(1, 4, W, start_deg=10), 2),  # two planes crossing on the axis, as an X
    # Five planes 36 deg apart, the cracks out to 16 voxels from the centre (the particle's radius is 24): 4 before,
    # when a plane halfway between two of them took both.
    (radial_star(1, 5, W, start_deg=10, radius_voxels=16), 5),
    (radial_star(1, 6, W, start_deg=10, radius_voxels=16), 3),
    ([RadialCrackSpec(1, (1, 0, 0), (0, 1, 0), W), RadialCrackSpec(1, (0, 1, 0), (0, 0, 1), W),
      RadialCrackSpec(1, (0, 0, 1), (1, 0, 0), W)], 3),  # three half-planes meeting at the centre only
], ids=["2 opposite", "3", "4", "5", "6", "3 axes"])
def test_radial_cracks_count_one_per_plane(cracks, n_planes):
    ph, r = _analyse(cracks)
    assert (len(r.cracks), len(r.pores), len(r.particles)) == (n_planes, 1, 1)
    _check_widths_and_volume(r, ph)
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    for n in ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy():
        assert min(_angle_deg(n, m) for m in normals) < 5.0


@pytest.mark.parametrize("cracks, n_planes", [
    ([CurvedCrackSpec(1, (0, 0.6, 0.8), W, 24, offset=(0, 3, 4))], 1),
    (radial_star(1, 5, W, start_deg=10, radius_voxels=16), 5),
], ids=["sphere R=1x", "5 radial"])
def test_curved_and_radial_cracks_from_noisy_projections(cracks, n_planes):
    ph = build_phantom((64, 64, 64), [PARTICLE], cracks, [PORE])
    r = analyse(project_phantom(ph.volume, n_angles=120, photons=1e5, pixel_size_nm=50.0, seed=1), TomoOptions())
    assert (len(r.cracks), len(r.pores), len(r.particles)) == (n_planes, 1, 1)
    _check_widths_and_volume(r, ph)


def test_a_grain_boundary_crack_is_one_crack_on_its_facet():
    # One facet of a Voronoi tessellation of 12 grains: a planar polygon, one crack of the grains' bisector normal.
    from layerscope.tomo.phantom import grain_boundary_cracks

    cracks = grain_boundary_cracks(1, 20, 12, 1, W, seed=0)
    ph, r = _analyse(cracks)
    assert (len(r.cracks), len(r.pores), len(r.particles)) == (1, 1, 1)
    _check_widths_and_volume(r, ph)
    assert _angle_deg(r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()[0], cracks[0].normal) < 5.0
