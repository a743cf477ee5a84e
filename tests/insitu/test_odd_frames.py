"""Frames of any size: odd and non-square frames through every in situ step, against the truth.

The real gold movie has 1917 x 1851 px frames and stopped with 'binned grid mismatch'; these
synthetic series (known drift, voids, crack, front, electrolyte) have odd and non-square sizes and
must give the same accuracy as the square ones in the other tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import ElectrolyteSpec, FrontSpec, LayeredLattice, VoidSpec, synthetic_series, void_truth


@pytest.mark.parametrize("shape", [(193, 171), (171, 194)])
def test_drift_voids_front_on_odd_frames(shape, tmp_path):
    series, truth = synthetic_series(
        shape=shape, n_frames=6, lattice=LayeredLattice(layer_angle_deg=4.0),
        front=FrontSpec(position_nm=3.0, velocity_nm_per_s=0.15, direction_deg=4.0, width_nm=2.0),
        voids=[VoidSpec(2.0, 4.0, 0.6, growth_nm_per_s=0.05), VoidSpec(4.6, 2.2, 0.5)], counts_per_pixel=200.0,
        seed=41)
    res = analyse_series(series, options=InsituOptions(fronts=True, chunk_frames=4))
    err = np.hypot(res.frames["drift_y_px"] - truth.drift_y_px, res.frames["drift_x_px"] - truth.drift_x_px)
    assert err.max() <= 0.1  # px, as on square frames
    np.testing.assert_array_equal(res.frames["n_voids"], void_truth(truth)["n_voids"])
    assert res.summary["front"]["velocity_nm_per_s"] == pytest.approx(0.15, rel=0.1)
    assert (res.frames["n_cracks"] == 0).all()  # round voids are not cracks
    # the aligned stack of odd frames keeps their size and undoes the drift
    from layerscope.insitu.registration import write_aligned

    import zarr

    path = write_aligned(series.data, res.frames, tmp_path / "aligned.zarr")
    assert zarr.open(str(path), mode="r").shape == (6, *shape)


def test_electrolyte_on_an_odd_frame():
    voids = [VoidSpec(6.5, 3.3, 0.6), VoidSpec(3.0, 5.6, 0.6)]  # 0.3 nm and 2.6 nm from the interface
    series, _ = synthetic_series(shape=(193, 195), n_frames=2, voids=voids, electrolyte=ElectrolyteSpec(0.0, 2.4, -90.0),
                                 lattice=LayeredLattice(layer_angle_deg=5.0), counts_per_pixel=200.0, seed=9)
    res = analyse_series(series, options=InsituOptions(interface="detect", surface_distance_nm=1.0))
    v = res.voids[res.voids.frame == 1].sort_values("y_nm")
    assert list(v["kind"]) == ["surface", "bulk"]
    assert v["interface_distance_nm"].iloc[1] == pytest.approx(2.6, abs=0.45)
    assert res.frames["electrolyte_fraction"].iloc[-1] == pytest.approx(2.4 / (193 * 0.04), abs=0.08)
