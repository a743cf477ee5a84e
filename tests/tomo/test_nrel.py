"""The real segmented NMC electrode (NREL, 251 x 301 x 301 labels 0 pore / 1 NMC / 2 carbon-binder):
porosity and particle counts against plain SciPy on a full-resolution crop."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from layerscope.tomo import TomoOptions, Volume, analyse


@pytest.fixture(scope="module")
def crop(shared_data):
    v = tifffile.imread(shared_data / "tomo" / "nrel_nmc_ct" / "nmc-1-cal_generatedCBD_bridge.tif")
    assert v.shape == (251, 301, 301)
    return np.ascontiguousarray(v[:64, :128, :128])


def _components(mask: np.ndarray, min_voxels: int) -> tuple[np.ndarray, int]:
    lab, n = ndi.label(ndi.binary_fill_holes(mask), structure=np.ones((3, 3, 3)))
    sizes = np.bincount(lab.ravel())
    return lab, int((sizes[1:] >= min_voxels).sum())


def test_porosity_and_unsplit_particle_count_match_scipy(crop):
    res = analyse(Volume(crop, 400.0, labels=True),
                  TomoOptions(particle_label=1, pore_label=0, split=False, crack_max_width_nm=0.0))
    assert res.summary["porosity"] == pytest.approx(float(np.mean(crop == 0)), abs=1e-12)
    assert res.summary["label_fractions"]["2"] == pytest.approx(float(np.mean(crop == 2)), abs=1e-12)
    _, n = _components(crop == 1, 200)
    assert len(res.particles) == n
    assert res.summary["n_cracks"] == 0  # segmented labels: no sheet-like holes inside NMC particles


def test_split_particles_partition_the_connected_solid(crop):
    res = analyse(Volume(crop, 400.0, labels=True),
                  TomoOptions(particle_label=1, pore_label=0, crack_max_width_nm=0.0))
    comp, n = _components(crop == 1, 1)
    lab = res.particle_labels
    assert len(res.particles) >= n // 2 and len(res.particles) > 10
    for pid in range(1, lab.max() + 1):  # every particle lies in one connected component of the solid
        assert np.unique(comp[lab == pid]).size == 1
    kept = np.isin(comp, np.unique(comp[lab > 0]))
    assert not np.any((lab > 0) & ~kept)  # no voxel outside the solid
    lost = 1 - (lab > 0).sum() / kept.sum()
    assert 0 <= lost < 0.02, lost  # only watershed fragments below --min-particle-voxels are dropped
