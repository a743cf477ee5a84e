"""Windowed multislice of a stack (layerscope.simulate.stacked): layout, exactness, resampling.

The abTEM check runs one window of a thin (0.56 nm) rock-salt | O3 LiCoO2 stack, 3 x 4 probe
positions, against the same positions in one box holding the whole scene: a few seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from layerscope.crystal.scenes import Block, stack
from layerscope.errors import InputError
from layerscope.provenance import structure_sha256
from layerscope.simulate.stacked import StackScan, _simulate_window, _window_box, stack_geometry

BEAM = {"energy_keV": 200.0, "convergence_mrad": 25.0}


@pytest.fixture(scope="module")
def thin_stack():
    return stack([Block("rock_salt", 2, li_fraction=0.0), Block("O3", 6)], composition="LiCoO2", zone="100",
                 width_nm=0.4, thickness_nm=0.5, seed=1)


def test_geometry_is_nyquist_sampled_and_fft_friendly(thin_stack):
    geo = stack_geometry(thin_stack, **BEAM)
    assert geo.n_x == 21 and geo.step_nm == pytest.approx(0.48775 / 21, rel=1e-4)  # below 0.0251 nm
    assert geo.gpts == (256, 768)  # 2^8 and 2^8 * 3: 0.22 s per probe against 0.50 s for 257 x 768
    assert geo.sampling_A <= 0.0397  # what the 200 mrad detector edge needs at 200 kV
    assert geo.margin_nm >= 0.75
    # the windows' rows cover the scene with its vacuum above and below
    assert geo.y_start_nm == pytest.approx(-0.6)
    assert geo.y_start_nm + geo.n_rows * geo.step_nm >= thin_stack.cell[1, 1] / 10 + 0.6
    with pytest.raises(InputError, match="Nyquist"):
        stack_geometry(thin_stack, scan_step_nm=0.03, **BEAM)


def test_window_box_holds_the_scene_around_its_rows(thin_stack):
    geo = stack_geometry(thin_stack, **BEAM)
    window = 2
    box = _window_box(thin_stack, geo, window)
    y0 = geo.y_start_nm + window * geo.rows_per_window * geo.step_nm
    y = thin_stack.positions[:, 1] / 10 - y0
    inside = (y >= -geo.margin_nm) & (y < geo.rows_per_window * geo.step_nm + geo.margin_nm)
    assert len(box) == 2 * inside.sum()  # every atom within the margins, the x period twice
    assert box.cell[1, 1] / 10 == pytest.approx(geo.box_height_nm)
    # an atom just above the window wraps to the top of the box, one inside keeps its offset
    expect = np.sort(np.mod(y[inside], geo.box_height_nm))
    got = np.sort(box.positions[: inside.sum(), 1] / 10)
    np.testing.assert_allclose(got, expect, atol=1e-9)


def test_window_equals_the_whole_scene_in_one_box(thin_stack):
    """Cutting the scene 0.75 nm from the rows costs ~1 % of the peak here (measured 1.1 %): the
    aberration-free probe keeps ~lambda / (pi^2 alpha m) = 1.4 % of its intensity beyond m = 0.75 nm
    (Airy tails), and in one box it reaches the whole scene. 5 nm thick: docs/validation.md."""
    geo = dataclasses.replace(stack_geometry(thin_stack, rows_per_window=4, **BEAM), n_x=3)
    ms = {**BEAM, "detector": "HAADF", "slice_thickness_A": 1.408, "device": "cpu"}
    window = 7  # rows around the rock-salt | O3 boundary
    part = _simulate_window(window, atoms=thin_stack, geo=geo, cache_dir=None, multislice=ms)
    whole = dataclasses.replace(geo, box_height_nm=thin_stack.cell[1, 1] / 10 + 4.0)  # all of it, 2 nm vacuum
    ref = _simulate_window(window, atoms=thin_stack, geo=whole, cache_dir=None, multislice=ms)
    assert part.shape == ref.shape == (4, 3)
    assert ref.max() > 5e-5  # the rows see crystal (0.56 nm thick: ~1e-4 of the beam)
    assert np.max(np.abs(part - ref)) < 0.02 * ref.max()


def _analytic(x, y, period_x, period_y):
    return (1.5 + np.cos(2 * np.pi * 3 * x / period_x + 0.3))[None, :] * (
        2.0 + np.sin(2 * np.pi * 17 * y / period_y) + 0.5 * np.cos(2 * np.pi * 40 * y / period_y))[:, None]


def test_resample_is_exact_for_band_limited_scans(thin_stack):
    geo = stack_geometry(thin_stack, **BEAM)
    length = geo.n_rows * geo.step_nm
    xs = (np.arange(geo.n_x) + 0.5) * geo.step_nm
    ys = geo.y_start_nm + (np.arange(geo.n_rows) + 0.5) * geo.step_nm
    scan = StackScan(_analytic(xs, ys, geo.period_x_nm, length), geo, {**BEAM, "detector": "HAADF"})
    px, shape = 0.0123, (150, 90)  # 1.1 nm wide: the period tiled twice and more
    got = scan.resample(pixel_size_nm=px, shape=shape)
    grid = (np.arange(shape[1]) + 0.5) * px, (np.arange(shape[0]) + 0.5) * px
    np.testing.assert_allclose(got, _analytic(*grid, geo.period_x_nm, length), atol=1e-9)
    with pytest.raises(InputError, match="past the scan"):
        scan.resample(pixel_size_nm=px, shape=(10_000, 10))


def test_simulation_tiles_the_truth_and_save_round_trips(thin_stack, tmp_path):
    geo = stack_geometry(thin_stack, **BEAM)
    xs = (np.arange(geo.n_x) + 0.5) * geo.step_nm
    ys = geo.y_start_nm + (np.arange(geo.n_rows) + 0.5) * geo.step_nm
    scan = StackScan(_analytic(xs, ys, geo.period_x_nm, geo.n_rows * geo.step_nm).astype(np.float32), geo,
                     {**BEAM, "detector": "HAADF"})
    path = tmp_path / "scan.npz"
    scan.save(path)
    back = StackScan.load(path)
    assert back.geometry == geo and back.parameters == scan.parameters
    np.testing.assert_array_equal(back.scan, scan.scan)
    sim = back.simulation(thin_stack, pixel_size_nm=0.012, width_nm=2.0)
    assert sim.image.shape == (round(thin_stack.cell[1, 1] / 10 / 0.012), round(2.0 / 0.012))
    first = sim.columns[sim.columns["x_nm"] < geo.period_x_nm]
    assert first["kind"].isin(["TM", "Li"]).sum() == 2 * 8  # 2 per cation layer and period, 8 layers
    per_period = len(first)
    assert len(sim.columns) == pytest.approx(per_period * 2.0 / geo.period_x_nm, abs=per_period)
    assert sim.columns["x_nm"].max() < 2.0
    other = thin_stack.copy()
    other.positions[0, 0] += 0.1
    stamped = StackScan(scan.scan, geo, {**scan.parameters, "scene_sha256": structure_sha256(thin_stack)})
    stamped_sim = stamped.simulation(thin_stack, pixel_size_nm=0.012, width_nm=1.0)
    assert stamped_sim.image.shape[1] == 83 and stamped_sim.image.metadata["signal_type"] == "HAADF"
    adf = StackScan(scan.scan, geo, {**scan.parameters, "detector": [40.0, 80.0]})
    assert adf.simulation(thin_stack, pixel_size_nm=0.012, width_nm=1.0).image.metadata["signal_type"] == "ADF"
    with pytest.raises(InputError, match="not the structure"):
        stamped.simulation(other, pixel_size_nm=0.012, width_nm=1.0)
    (tmp_path / "bad.npz").write_bytes(b"not a scan")
    with pytest.raises(InputError, match="bad.npz"):
        StackScan.load(tmp_path / "bad.npz")
