"""The Python API takes what a user has in hand: a NumPy volume with its voxel size, or a 3-D HyperSpy signal
whose axes carry the calibration; never a guessed length scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.errors import CalibrationError, InputError
from layerscope.tomo import TomoOptions, analyse
from layerscope.tomo.readers import Volume, as_volume


def _signal(volume, scales, units):
    import hyperspy.api as hs

    sig = hs.signals.Signal2D(volume)
    for ax, scale, unit in zip(sig.axes_manager._axes, scales, units):
        ax.scale, ax.units = scale, unit
    return sig


def test_a_numpy_volume_gives_the_tables_of_a_volume(phantom):
    ref = analyse(Volume(phantom.volume, 50.0), TomoOptions())
    res = analyse(phantom.volume, TomoOptions(), voxel_size_nm=50.0)
    assert len(res.cracks) == len(ref.cracks) == 4  # the phantom's truth
    pd.testing.assert_frame_equal(res.particles, ref.particles)
    with pytest.raises(CalibrationError, match="voxel_size_nm"):
        analyse(phantom.volume, TomoOptions())
    with pytest.raises(InputError, match="2-D"):
        analyse(phantom.volume[0], TomoOptions(), voxel_size_nm=50.0)


def test_a_hyperspy_signal_brings_its_calibration(phantom):
    vol = as_volume(_signal(phantom.volume, [0.05, 0.05, 0.05], ["µm", "um", "micron"]))
    assert vol.voxel_size_nm == pytest.approx(50.0, rel=1e-9)
    assert not vol.labels and vol.data.shape == phantom.volume.shape
    assert as_volume(_signal(phantom.volume, [500, 500, 500], ["Å"] * 3)).voxel_size_nm == pytest.approx(50.0)
    assert as_volume(_signal(phantom.volume, [1, 1, 1], ["px"] * 3), voxel_size_nm=20.0).voxel_size_nm == 20.0
    with pytest.raises(CalibrationError, match="not cubic"):
        as_volume(_signal(phantom.volume, [0.05, 0.05, 0.1], ["µm"] * 3))
    with pytest.raises(CalibrationError, match="no voxel size"):
        as_volume(_signal(phantom.volume, [1, 1, 1], ["<undefined>"] * 3))
    labels = (phantom.particles > 0).astype(np.uint8)
    assert as_volume(labels, voxel_size_nm=50.0).labels


def test_centroids_are_in_nm_from_the_corner_of_the_first_voxel():
    """A solid box of voxels z 10-29, y 20-39, x 30-59 has its centre at (20, 30, 45) voxels from the corner,
    i.e. 400, 600, 900 nm at 20 nm voxels (docs/conventions.md); a round pore inside it likewise."""
    vol = np.zeros((48, 64, 80), np.float32)
    vol[10:30, 20:40, 30:60] = 1.0
    z, y, x = np.ogrid[:48, :64, :80]
    vol[(z - 20) ** 2 + (y - 30) ** 2 + (x - 40) ** 2 <= 9] = 0.0  # pore centred on voxel (20, 30, 40)
    res = analyse(vol, TomoOptions(split=False, min_particle_voxels=50), voxel_size_nm=20.0)
    assert len(res.particles) == 1
    got = res.particles[["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]].to_numpy()[0]
    np.testing.assert_allclose(got, [400.0, 600.0, 900.0], atol=0.5)  # the envelope holds the pore (1 nm off if not)
    assert len(res.pores) == 1
    pore = res.pores[["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]].to_numpy()[0]
    np.testing.assert_allclose(pore, [410.0, 610.0, 810.0], atol=1e-6)
