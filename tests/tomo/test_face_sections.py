"""A particle cut by a volume face with a cavity that reaches the face (issue 20, helper tomomerge;
docs/validation.md "tomomerge").

The rule (:data:`~layerscope.tomo.segment.FACE_SECTION_HOLES`) is off by default and switched on here.
Truth: voxelised spheres drawn here, a small one centred on the face y = 0 (cut through its centre), its core
hollowed by a tube of radius 3.5-5 voxels from the face to a depth of 9-12 voxels (the junction cavity of cracks
that meet in a face-cut particle, wider than the closing's ball, as in draws 3084, 3086 of the fresh range), and a
larger sphere beside it. Counts are exact (tolerance 0); the filled voxels are the tube's, exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.tomo import segment
from layerscope.tomo.segment import filled_envelope, particle_labels


@pytest.fixture(autouse=True)
def face_holes(monkeypatch):
    """The rule under test, off by default (:data:`~layerscope.tomo.segment.FACE_SECTION_HOLES`)."""
    monkeypatch.setattr(segment, "FACE_SECTION_HOLES", True)


def _ball(shape, c, r):
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r


def _scene(small: float, big: float, tube: float, depth: int, gap: float):
    """Solid mask: a sphere of radius ``small`` centred 0.4 voxel inside the face y = 0, hollowed by a tube along y
    (radius ``tube``, to y = ``depth``), and a sphere of radius ``big`` with centres ``gap`` x the sum of the radii
    apart; and the tube's voxels."""
    c1 = np.array([big + 6.3, 0.4, big + 6.0])
    c2 = c1 + np.array([0.0, 0.6, 0.8]) * gap * (big + small)
    shape = (int(2 * big + 12), int(c2[1] + big + 6), int(c2[2] + big + 6))
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    hollow = ((z - c1[0]) ** 2 + (x - c1[2]) ** 2 <= tube ** 2) & (y <= depth) & _ball(shape, c1, small)
    return (_ball(shape, c1, small) | _ball(shape, c2, big)) & ~hollow, hollow


@pytest.mark.parametrize("small,big,tube,depth,gap", [(14, 22, 4, 10, 0.95), (12, 20, 4, 9, 0.95),
                                                      (16, 16, 5, 12, 0.95), (14, 22, 3.5, 10, 0.95),
                                                      (14, 22, 4, 10, 1.2)])
def test_face_cut_particle_with_a_cavity_at_the_face_is_one_particle(small, big, tube, depth, gap, monkeypatch):
    """Two particles: the cavity enclosed by the small particle's section on the face is inside its envelope. Without
    :data:`~layerscope.tomo.segment.FACE_SECTION_HOLES` the channel lowers the small particle's distance map below
    the neck (merged: 1 particle at 0.95) or splits it round the tube (more than 2 particles at 1.2, apart; between
    tied distance tops round the tube, which :data:`~layerscope.tomo.segment.TIED_TOPS` alone joins again: 2, so
    it is off for that count)."""
    solid, _ = _scene(small, big, tube, depth, gap)
    assert int(particle_labels(solid, close_voxels=3).max()) == 2
    monkeypatch.setattr(segment, "FACE_SECTION_HOLES", False)
    monkeypatch.setattr(segment, "TIED_TOPS", False)
    main = int(particle_labels(solid, close_voxels=3).max())
    assert main == 1 if gap < 1 else main > 2


def test_filled_envelope_takes_the_enclosed_cavity_and_leaves_a_groove_open_to_the_face_outline(monkeypatch):
    """The tube (enclosed by the section on the face) is filled voxel for voxel; a slot cut from the section's
    outline (open in the face plane) is not, nor is the tube without the face rule."""
    solid, hollow = _scene(14, 22, 4, 10, 0.95)
    assert np.array_equal(filled_envelope(solid) & ~solid, hollow)
    c = 22 + 6.3
    z, y, x = np.ogrid[:solid.shape[0], :solid.shape[1], :solid.shape[2]]
    slot = (np.abs(z - c) <= 2) & (y <= 6) & (x <= 21)  # from the small sphere's rim (x = 14) halfway to the tube
    grooved = solid & ~slot
    assert slot[solid].sum() > 100 and np.array_equal(filled_envelope(grooved) & ~grooved, hollow)
    monkeypatch.setattr(segment, "FACE_SECTION_HOLES", False)
    assert np.array_equal(filled_envelope(solid), solid)


@pytest.mark.parametrize("slab_slices", [5, 16])
def test_face_cut_particle_out_of_core_equals_in_memory(slab_slices, tmp_path):
    """The chunked path fills the same holes from the face planes (``chunked._open_face_ids``): the same labels,
    tables and 2 particles as in memory, the solid given as a label volume (1 solid, 0 epoxy)."""
    from layerscope.tomo import TomoOptions, Volume, analyse

    solid, _ = _scene(14, 22, 4, 10, 0.95)
    vol = Volume(solid.astype(np.uint8), 50.0, labels=True)
    here = analyse(vol, TomoOptions(particle_label=1))
    there = analyse(vol, TomoOptions(particle_label=1, out_of_core=True, slab_slices=slab_slices),
                    scheduler="threads", scratch_dir=tmp_path)
    assert len(here.particles) == 2
    assert np.array_equal(np.asarray(here.particle_labels), np.asarray(there.particle_labels))
    assert np.array_equal(np.asarray(here.feature_labels), np.asarray(there.feature_labels))
    for name in ("particles", "cracks", "pores"):
        assert getattr(here, name).equals(getattr(there, name)), name
