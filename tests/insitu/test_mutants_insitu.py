"""Tests that kill surviving mutants of ``layerscope.insitu.pipeline`` (issue 21, docs/mutation.md).

A small synthetic series (4 frames of 192 x 192 px, one void, a crack from the third frame on) with a known foil
thickness: each test checks a number against the documented formula or a record against its source.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import CrackSpec, LayeredLattice, VoidSpec, synthetic_series

P_NM = 0.04
SHAPE = (192, 192)


@pytest.fixture(scope="module")
def series():
    s, _ = synthetic_series(shape=SHAPE, pixel_size_nm=P_NM, n_frames=4, frame_interval_s=1.0,
                            lattice=LayeredLattice(layer_angle_deg=5.0),
                            voids=[VoidSpec(1.5, 3.6, 0.5, growth_nm_per_s=0.02)],
                            cracks=[CrackSpec(4.5, 1.5, 5.0, 1.0, 6.0, appears_s=2.0)], counts_per_pixel=200.0, seed=4)
    return s


@pytest.fixture(scope="module")
def thick_map():
    # thickness grows down the rows: 20 nm at the top to 20 + 191 nm at the bottom (1 nm per pixel row)
    return np.repeat((20.0 + np.arange(SHAPE[0], dtype=float))[:, None], SHAPE[1], axis=1)


@pytest.fixture  # per test: mutmut picks the tests to run by the calls each one makes itself
def result(series, thick_map):
    return analyse_series(series, options=InsituOptions(drift=False, thickness_nm=thick_map))


def test_void_volume_is_depth_times_local_thickness_times_area(result, thick_map):
    v = result.voids
    assert len(v) >= 1 and {"missing_thickness_nm", "volume_nm3"} <= set(v.columns)
    # the thickness at the void's centre is the map's value in the pixel holding (x, y)
    rows = np.clip(np.floor(v["y_nm"].to_numpy() / P_NM).astype(int), 0, SHAPE[0] - 1)
    cols = np.clip(np.floor(v["x_nm"].to_numpy() / P_NM).astype(int), 0, SHAPE[1] - 1)
    t_here = thick_map[rows, cols]
    assert np.all(t_here > 50.0)  # the voids sit 38-91 rows down, far from the 20 nm top row
    np.testing.assert_allclose(v["missing_thickness_nm"], v["depth"] * t_here, rtol=1e-9)
    np.testing.assert_allclose(v["volume_nm3"], v["depth"] * t_here * v["area_nm2"], rtol=1e-9)


def test_frame_table_and_summary_records(result, series):
    f = result.frames
    assert np.all(np.isfinite(f["void_noise"].to_numpy(dtype=float)))
    assert result.summary["source"] == (str(series.source) if series.source else series.title)
    assert result.summary["cracks"]["n_in_last_frame"] == int(f["n_cracks"].iloc[-1])
    # the crack appears at 2 s: none in the first two frames, one in the last
    assert list(f["n_cracks"]) == [0, 0, 1, 1]
