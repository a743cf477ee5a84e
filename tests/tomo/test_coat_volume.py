"""A particle's volume below a carbon-binder coat (`measure.COAT_VOLUME`, off by default): a coat brighter than the
surroundings pulls the thresholded envelope out, so a coated particle's volume reads high and its crack volume
fraction low; with the particle surface fitted below the coat they read closer to the truth. A particle without a
coat reads as on main; the same tables in memory and out of core."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

import layerscope.tomo.measure as measure
from layerscope.tomo import TomoOptions, Volume, analyse
from layerscope.tomo.phantom import MU_BINDER, MU_EPOXY, MU_PARTICLE, CrackSpec, ParticleSpec, build_phantom


def _coated(binder: float, *, radius: float = 12.0, coat: float = 0.35, blur: float = 0.3, noise: float = 0.1, seed: int = 5):
    """A sphere of ``radius`` voxels cut by a 3-voxel through crack (normal (0.3, 0.5, 0.81)) with a patchy binder coat
    ``binder`` voxels thick (`build_phantom`; 0: none) at ``coat`` x the particle-epoxy contrast above the epoxy (the
    draws' 0.1-0.4), Gaussian blur ``blur`` voxels and noise ``noise`` x the contrast. Returns the volume and the truth
    particle row (volume_voxels, crack_volume_fraction)."""
    n = int(2 * radius + 16)
    ph = build_phantom((n, n, n), [ParticleSpec((n / 2,) * 3, (radius,) * 3)], [CrackSpec(1, (0.3, 0.5, 0.81), 3.0)],
                       binder_voxels=binder, seed=seed)
    v = np.where(ph.volume == MU_BINDER, MU_EPOXY + coat * (MU_PARTICLE - MU_EPOXY), ph.volume).astype(np.float32)
    v = ndi.gaussian_filter(v, blur) + noise * (MU_PARTICLE - MU_EPOXY) * np.random.default_rng(seed).standard_normal(v.shape)
    return Volume(v.astype(np.float32), 50.0, labels=False), ph.truth.iloc[0]


def _errors(vol, truth) -> tuple[float, float]:
    p = analyse(vol, TomoOptions()).particles.iloc[0]
    return (p["volume_voxels"] / truth["volume_voxels"] - 1,
            p["crack_volume_fraction"] / truth["crack_volume_fraction"] - 1)


def test_coated_particle_volume_and_crack_volume_fraction(monkeypatch):
    vol, truth = _coated(2.0)
    monkeypatch.setattr(measure, "COAT_VOLUME", True)
    volume, cvf = _errors(vol, truth)
    # with the fitted surface: volume +2.5 %, cvf -6.8 %; on main (the envelope): +5.1 %, -9.1 %
    assert abs(volume) < 0.035
    assert abs(cvf) < 0.08
    monkeypatch.setattr(measure, "COAT_VOLUME", False)
    volume, cvf = _errors(vol, truth)
    assert volume > 0.045 and cvf < -0.085  # main's reads, outside both limits


def test_particle_without_a_coat_reads_as_on_main(monkeypatch):
    vol, _ = _coated(0.0)
    monkeypatch.setattr(measure, "COAT_VOLUME", False)
    main = analyse(vol, TomoOptions())
    monkeypatch.setattr(measure, "COAT_VOLUME", True)
    here = analyse(vol, TomoOptions())
    for name in ("particles", "cracks", "pores"):
        pd.testing.assert_frame_equal(getattr(main, name), getattr(here, name), check_exact=True)


@pytest.mark.parametrize("depth, coat, found", [(0.0, 0.0, 0.0), (0.25, 0.3, 0.25), (0.375, 0.15, 0.375), (0.25, 0.0, 0.0)])
def test_coat_depth_found_on_its_own_model(depth, coat, found):
    """On a ball whose grey is the model itself (blur 0.5, a 2-voxel shell at ``coat`` x the contrast), the fit returns
    the depth it was made with; without a coat (below `COAT_MIN_LEVEL`) the surface stays the envelope's (0)."""
    n, r = 40, 12.0
    z, y, x = np.mgrid[:n, :n, :n]
    part = ((z - 19.5) ** 2 + (y - 19.5) ** 2 + (x - 19.5) ** 2) <= r ** 2
    depth_in = np.where(part, ndi.distance_transform_edt(part), 1.0 - ndi.distance_transform_edt(~part))
    shell = ((depth_in <= 0) & (depth_in > -2)).astype(np.float32)
    p, e = 1.0, 0.2
    grey = e + (p - e) * ndi.gaussian_filter(np.clip(depth_in - depth, 0, 1).astype(np.float32), 0.5) \
        + coat * (p - e) * ndi.gaussian_filter(shell, 0.5)
    band = measure._surface_band(part, np.zeros_like(part), np.zeros_like(part), reach=measure.COAT_REACH, dark_reach=3)
    assert measure._coat_depth(grey, depth_in, band, np.zeros_like(part), p, e) == found


def test_coat_volume_equals_out_of_core_in_pieces(monkeypatch):
    import layerscope.tomo.chunked as chunked

    monkeypatch.setattr(measure, "COAT_VOLUME", True)
    vol, _ = _coated(2.0)
    here = analyse(vol, TomoOptions())
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 16 ** 3)  # the particle measured by slabs
    there = analyse(vol, TomoOptions(out_of_core=True, slab_slices=8), scheduler="threads")
    for name in ("particles", "cracks", "pores"):
        pd.testing.assert_frame_equal(getattr(here, name), getattr(there, name), check_exact=True)
    assert here.particles["volume_voxels"].iloc[0] != int(here.particles["volume_voxels"].iloc[0])  # the coat was taken off
