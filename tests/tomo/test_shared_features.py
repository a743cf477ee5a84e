"""Cracks of touching particles joined through the gap between them (one dark feature shared by two particle
labels): cut at the contact, each particle keeps its crack, the gap itself stays dropped; the same tables in
memory and out of core (the shared feature cut slab by slab in a cluster measured in pieces)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.tomo import TomoOptions, Volume, analyse
from layerscope.tomo.phantom import CrackSpec, ParticleSpec, build_phantom


def _touching(cracks: bool):
    """Two spheres of radius 14 touching at (31, 24, 24); with ``cracks``, each has a disc crack (radius 10, 2.5
    voxels wide) in the plane x = 24 centred 6 voxels towards the contact, so both reach the surface there and
    nowhere else (truth: one crack per particle)."""
    parts = [ParticleSpec((17.0, 24.0, 24.0), (14.0, 14.0, 14.0)), ParticleSpec((45.0, 24.0, 24.0), (14.0, 14.0, 14.0))]
    specs = [CrackSpec(i, (0.0, 0.0, 1.0), 2.5, offset=(dz, 0.0, 0.0), radius_voxels=10.0)
             for i, dz in ((1, 6.0), (2, -6.0))] if cracks else []
    ph = build_phantom((62, 48, 48), parts, specs, seed=3)
    return Volume(ph.volume.astype(np.float32), 50.0, labels=False)


@pytest.fixture(scope="module")
def joined():
    vol = _touching(True)
    return vol, analyse(vol, TomoOptions())


def test_cracks_joined_through_the_contact_are_one_per_particle(joined):
    _, res = joined
    assert len(res.particles) == 2
    assert sorted(res.particles["crack_count"]) == [1, 1]  # truth: one each (before: the shared feature dropped, 0)
    normals = res.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    assert (np.abs(normals[:, 2]) > np.cos(np.radians(5))).all()  # truth: normal along x, within 5 deg
    assert (np.abs(res.cracks["width_mean_nm"] / 50.0 - 2.5) < 1.0).all()  # truth 2.5 voxels, within 1
    assert (np.abs(res.cracks["volume_voxels"] / 865 - 1) < 0.25).all()  # truth 865 and 864 voxels, within 25 %


def test_the_gap_alone_is_no_crack():
    res = analyse(_touching(False), TomoOptions())
    assert len(res.particles) == 2 and len(res.cracks) == 0  # truth: no crack, the contact gap stays dropped


def test_cut_equals_out_of_core_in_pieces(joined, monkeypatch):
    import layerscope.tomo.chunked as chunked

    vol, here = joined
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 20 ** 3)  # the cluster measured by slabs and particles
    there = analyse(vol, TomoOptions(out_of_core=True, slab_slices=8), scheduler="threads")
    for name in ("particles", "cracks", "pores"):
        pd.testing.assert_frame_equal(getattr(here, name), getattr(there, name), check_exact=True)
    assert np.array_equal(np.asarray(here.feature_labels), np.asarray(there.feature_labels))
