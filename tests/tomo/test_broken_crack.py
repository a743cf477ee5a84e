"""A crack broken in two by a brighter bridge is one crack with the join on (docs/validation.md "tomosplit2"; off by
default, ``measure.JOIN_GAP_VOXELS = 0``: these tests set it to 6 voxels).

Noise or a narrowing lifts a strip across a crack above the solid threshold: the crack falls into two dark
features, each one sheet, in the same plane a few voxels apart (0-49 draws 4 and 31: gaps of 5.8 and 4.2 voxels).
:func:`layerscope.tomo.measure._join_pieces` reads them as one crack. Truth: grey phantoms (a ball particle of
radius 24, one 3-voxel disc crack of radius 16 through its centre) with a strip across the crack set to the
particle's grey level; parallel cracks offset along their normal and coplanar cracks far apart stay two.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.tomo import TomoOptions, analyse, measure
from layerscope.tomo.phantom import CrackSpec, ParticleSpec, build_phantom
from layerscope.tomo.readers import Volume

SHAPE, CENTRE = (64, 64, 64), (32.0, 32.0, 32.0)
NORMAL = (0.8, 0.0, 0.6)
GAP = 6.0  # the join measured (off by default: measure.JOIN_GAP_VOXELS = 0)


@pytest.fixture(autouse=True)
def join(monkeypatch):
    monkeypatch.setattr(measure, "JOIN_GAP_VOXELS", GAP)


def _bridged(gap_voxels: float, noise: float = 0.0):
    """A disc crack with a strip ``gap_voxels`` wide across it (through its centre, along y) at the particle's
    grey level; the grey volume (Gaussian noise ``noise`` x the particle level) and the phantom."""
    ph = build_phantom(SHAPE, [ParticleSpec(CENTRE, (24, 24, 24))], [CrackSpec(1, NORMAL, 3.0, radius_voxels=16.0)],
                       binder_voxels=0.0)
    z, y, x = np.indices(SHAPE).astype(float)
    e = np.array([0.6, 0.0, -0.8])  # in the crack's plane, across the strip
    along = (z - CENTRE[0]) * e[0] + (x - CENTRE[2]) * e[2]
    vol = ph.volume.copy()
    level = float(np.median(ph.volume[(ph.particles == 1) & (ph.cracks == 0)]))
    vol[(ph.cracks > 0) & (np.abs(along) <= gap_voxels / 2)] = level
    vol += np.random.default_rng(0).normal(0, noise * level, SHAPE).astype(vol.dtype)
    return Volume(vol, 50.0, labels=False), ph


@pytest.mark.parametrize("gap_voxels, noise", [(2.0, 0.0), (4.0, 0.0), (4.0, 0.1)])
def test_a_crack_broken_by_a_bright_strip_is_one_crack(gap_voxels, noise):
    # Two half-discs 2-4 voxels apart in one plane: one crack (two with the join off), its normal within 5 deg of the
    # truth, its volume the crack's voxels left dark within 10 % (the strip itself is solid).
    vol, ph = _bridged(gap_voxels, noise)
    r = analyse(vol, TomoOptions())
    assert len(r.particles) == 1 and len(r.cracks) == 1
    c = r.cracks.iloc[0]
    n = np.array([c.normal_z, c.normal_y, c.normal_x])
    assert np.degrees(np.arccos(min(1.0, abs(float(n @ NORMAL))))) < 5.0
    dark = float(((ph.cracks > 0) & (np.asarray(vol.data) < 0.5 * np.asarray(vol.data).max())).sum()) if noise == 0 \
        else None
    if dark is not None:
        assert abs(c.volume_voxels / dark - 1) < 0.10
    labels = np.asarray(r.feature_labels)
    assert set(np.unique(labels[labels > 0])) == {int(c.crack)}  # both halves carry the crack's id


def test_the_join_is_off_by_default(monkeypatch):
    # With the default (no join) the broken crack is two cracks, main's reading.
    monkeypatch.setattr(measure, "JOIN_GAP_VOXELS", 0.0)
    vol, _ = _bridged(4.0)
    assert len(analyse(vol, TomoOptions()).cracks) == 2


def test_a_wide_strip_leaves_two_cracks():
    # The strip wider than JOIN_GAP_VOXELS: two cracks.
    vol, _ = _bridged(GAP + 3)
    assert len(analyse(vol, TomoOptions()).cracks) == 2


@pytest.mark.parametrize("offset", [6.0, 9.0])
def test_parallel_cracks_offset_along_their_normal_stay_two(offset):
    # Two parallel 3-voxel discs (radius 10) whose planes lie ``offset`` voxels apart (their rims 3-6 voxels apart
    # across the gap): not one plane, two cracks.
    n = np.array(NORMAL)
    cracks = [CrackSpec(1, NORMAL, 3.0, offset=tuple(s * offset / 2 * n), radius_voxels=10.0) for s in (-1, 1)]
    ph = build_phantom(SHAPE, [ParticleSpec(CENTRE, (24, 24, 24))], cracks, binder_voxels=0.0)
    assert len(analyse(Volume(ph.volume, 50.0, labels=False), TomoOptions()).cracks) == 2


def test_a_broken_crack_in_slabs_equals_in_memory(tmp_path):
    # Out of core, in slabs of 9 slices: the same tables and labels as in memory.
    import pandas as pd

    vol, _ = _bridged(4.0, 0.1)
    here = analyse(vol, TomoOptions())
    there = analyse(vol, TomoOptions(out_of_core=True, slab_slices=9), scheduler="threads", scratch_dir=tmp_path)
    for name in ("particles", "cracks", "pores"):
        pd.testing.assert_frame_equal(getattr(here, name), getattr(there, name), check_exact=True)
    assert np.array_equal(np.asarray(here.feature_labels), np.asarray(there.feature_labels))
