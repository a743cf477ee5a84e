"""The envelope's wider closing adds no crack volume where a crack's mouth faces a neighbouring particle (issue 20,
tomocvf5).

The wider closing (:func:`layerscope.tomo.segment.closed_envelope`, ``WIDER_CLOSE_VOXELS``) bridges gaps up to 8
voxels below the surface shell. Where a through crack opens towards a neighbour 2-4 voxels away, the pocket
between the two particles is the gap (:func:`layerscope.tomo.measure.feature_ids`), not the crack: the crack volume
stays within a few per cent of its truth with the wider closing on or off. (The +4.5 points of crack volume
fraction the wider closing added on the 256^3 scale check came from four cracks at the bright rim of its truncated
reconstruction, a pocket between a particle and the rim read as one particle: docs/validation.md "tomocvf5".)
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from layerscope.tomo import segment
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import CrackSpec, ParticleSpec, build_phantom
from layerscope.tomo.readers import Volume

MU_P, MU_E = 0.05, 0.005
R1 = 14.0


def _scene(gap_voxels: float, r2_voxels: float):
    """A sphere (radius 14 voxels) cut by a 2.5-voxel through crack whose mouth line faces a second sphere
    ``gap_voxels`` away along x; blur 0.7 voxel, Gaussian noise 0.1 x the contrast."""
    shape = (44, 44, int(2 * R1 + 2 * r2_voxels + gap_voxels + 12))
    parts = [ParticleSpec((22.0, 22.0, 6 + R1), (R1,) * 3),
             ParticleSpec((22.0, 22.0, 6 + 2 * R1 + gap_voxels + r2_voxels), (r2_voxels,) * 3)]
    ph = build_phantom(shape, parts, [CrackSpec(1, (0.0, 1.0, 0.0), 2.5, (0.0, 2.0, 0.0))], binder_voxels=0.0)
    vol = ndi.gaussian_filter(np.where(ph.volume > 0.03, MU_P, MU_E).astype(np.float32), 0.7)
    vol += (0.1 * (MU_P - MU_E) * np.random.default_rng(3).standard_normal(shape)).astype(np.float32)
    return ph, Volume(vol, 50.0, labels=False)


@pytest.mark.parametrize("gap_voxels, r2_voxels", [(2.0, 8.0), (4.0, 14.0)])
def test_crack_facing_a_neighbour_keeps_its_volume(monkeypatch, gap_voxels, r2_voxels):
    """Crack volume within 6 % of the truth's 1795 voxels with the wider closing (read +4.1 % and -1.4 %), and the
    wider closing moves it by at most 4 % of the truth (0 and +2.9 % measured)."""
    ph, vol = _scene(gap_voxels, r2_voxels)
    truth = float(ph.crack_truth["volume_voxels"].sum())
    read = {}
    for wider in (0, 1):
        monkeypatch.setattr(segment, "WIDER_CLOSE_VOXELS", wider)
        res = analyse(vol, TomoOptions())
        assert len(res.particles) == 2
        assert len(res.cracks) == 1
        read[wider] = float(res.cracks["volume_voxels"].sum())
    assert abs(read[1] / truth - 1) <= 0.06
    assert abs(read[1] - read[0]) <= 0.04 * truth
