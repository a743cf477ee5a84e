"""Voids and pores: blur corrections against brute force, areal fraction and count against the
synthetic truth, polarity, the electrolyte interface and surface pores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from layerscope.errors import InputError
from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import ElectrolyteSpec, LayeredLattice, VoidSpec, synthetic_series, void_truth
from layerscope.insitu.voids import VoidParams, disk_radius_from_outline


@pytest.mark.parametrize("radius_nm", [0.5, 0.8, 1.5])
def test_disk_outline_correction_against_a_rendered_blurred_disk(radius_nm):
    # brute force: rasterise the disk finely, blur it, find the half-depth radius, invert with the table
    h, sigma = 0.01, 0.25
    n = int(2 * (radius_nm + 5 * sigma) / h)
    yy, xx = (np.mgrid[:n, :n] + 0.5) * h - n * h / 2
    disk = (xx**2 + yy**2 <= radius_nm**2).astype(float)
    blurred = ndi.gaussian_filter(disk, sigma / h)
    row = blurred[n // 2, n // 2 :]
    r = (np.arange(row.size) + 0.5) * h
    level = 0.5 * blurred.max()
    r_out = np.interp(-level, -row, r)  # row decreases outwards
    assert float(disk_radius_from_outline(r_out, sigma, 0.5)) == pytest.approx(radius_nm, abs=0.01)


def test_void_fraction_within_one_point_and_count_exact(degrading, degrading_result):
    series, truth = degrading
    res = degrading_result
    vt = void_truth(truth, min_diameter_nm=1.0)
    frames = res.frames
    truth_fraction = vt["void_area_nm2"] / frames["analysed_area_nm2"]
    np.testing.assert_array_less(np.abs(frames["void_fraction"] - truth_fraction), 0.01)
    # count exact wherever the voids are resolved: every gap between neighbours is above 0.4 nm (about
    # 1.5 smoothing sigmas) or they overlap (one void); in between the blur joins them early
    resolved = _resolved_frames(truth, min_gap_nm=0.4)
    assert len(resolved) >= 6
    np.testing.assert_array_equal(frames.loc[resolved, "n_voids"], vt.loc[resolved, "n_voids_min"])


def _resolved_frames(truth, *, min_gap_nm):
    out = []
    for i, t in enumerate(truth.times_s):
        disks = [(v.x_nm, v.y_nm, v.radius_at(t)) for v in truth.voids if v.radius_at(t) > 0]
        gaps = [np.hypot(a[0] - b[0], a[1] - b[1]) - a[2] - b[2] for k, a in enumerate(disks) for b in disks[k + 1:]]
        if all(g < 0 or g > min_gap_nm for g in gaps):
            out.append(i)
    return out


def test_each_void_area_and_position(degrading, degrading_result):
    _, truth = degrading
    last = degrading_result.voids[degrading_result.voids["frame"] == 0]
    t = truth.times_s[0]
    for v in truth.voids:
        r = v.radius_at(t)
        if r <= 0:
            continue
        d = np.hypot(last["x_nm"] - v.x_nm, last["y_nm"] - v.y_nm)
        k = int(np.argmin(d))
        assert d.iloc[k] < 0.1  # centroid within 0.1 nm (2.5 px), in first-frame coordinates
        assert last["area_nm2"].iloc[k] == pytest.approx(np.pi * r * r, rel=0.15)  # 1-1.2 nm voids: 7 % in radius


def test_bright_polarity_finds_the_same_voids():
    voids = [VoidSpec(3.0, 3.0, 0.7), VoidSpec(5.2, 5.0, 0.9)]
    series, truth = synthetic_series(shape=(192, 192), n_frames=2, voids=voids, counts_per_pixel=200.0, seed=8)
    bright = series.with_data(np.float32(2.0 * np.mean(series.data)) - series.data)  # same mean, voids bright
    res = analyse_series(bright, options=InsituOptions(void_params=VoidParams(polarity="bright"), drift=False))
    assert list(res.frames["n_voids"]) == [2, 2]
    np.testing.assert_allclose(np.sort(res.voids[res.voids.frame == 0]["area_nm2"]),
                               np.pi * np.array([0.7, 0.9]) ** 2, rtol=0.12)


def test_electrolyte_detected_and_surface_pores_separated():
    voids = [VoidSpec(6.5, 3.3, 0.6), VoidSpec(3.0, 5.6, 0.6)]  # 0.3 nm and 2.6 nm from the interface
    series, truth = synthetic_series(shape=(192, 192), n_frames=3, voids=voids, electrolyte=ElectrolyteSpec(0.0, 2.4, -90.0),
                                     lattice=LayeredLattice(layer_angle_deg=5.0), counts_per_pixel=200.0, seed=9)
    res = analyse_series(series, options=InsituOptions(interface="detect", surface_distance_nm=1.0))
    v = res.voids[res.voids.frame == 2].sort_values("y_nm")
    assert list(v["kind"]) == ["surface", "bulk"]
    # the bulk void's edge is 2.6 nm from the interface; the interface is found on the coarse grid of
    # the fringe demodulation (0.29 nm steps, 0.4 nm window), so within 0.45 nm
    assert v["interface_distance_nm"].iloc[1] == pytest.approx(2.6, abs=0.45)
    # the electrolyte covers y < 2.4 nm of a 7.68 nm field: 31 % (less the border band)
    assert res.frames["electrolyte_fraction"].iloc[-1] == pytest.approx(2.4 / 7.68, abs=0.08)


def test_void_options_are_validated():
    with pytest.raises(InputError, match="--edge-level"):
        VoidParams(edge_level=1.5)
    with pytest.raises(InputError, match="--background-nm"):
        VoidParams(smooth_nm=0.5, background_nm=1.0)
    with pytest.raises(InputError, match="polarity"):
        VoidParams(polarity="grey")


def test_thickness_gives_void_depth_and_volume():
    # HAADF intensity ~ thickness: a void missing 35 % of a 30 nm foil is 10.5 nm deep
    voids = [VoidSpec(3.8, 3.8, 1.2, depth=0.35)]
    series, _ = synthetic_series(shape=(192, 192), n_frames=2, voids=voids, counts_per_pixel=200.0, seed=17)
    res = analyse_series(series, options=InsituOptions(thickness_nm=30.0, drift=False))
    v = res.voids.iloc[0]
    assert v["missing_thickness_nm"] == pytest.approx(0.35 * 30.0, rel=0.05)
    assert v["volume_nm3"] == pytest.approx(0.35 * 30.0 * np.pi * 1.2**2, rel=0.12)


@pytest.mark.parametrize("shape, pixel_size_nm", [((193, 171), 0.04), ((150, 171), 0.04), ((161, 160), 0.04),
                                                  ((1917, 1851), 0.163)])
def test_smoothed_frame_of_odd_and_non_square_frames(shape, pixel_size_nm):
    """The binned low-pass equals an independent Gaussian filter (wrapped borders) sampled every ``bin``
    pixels, for odd, even and non-square frames (1917 x 1851: the real gold movie, which failed)."""
    from layerscope.insitu.registration import FourierGrid, periodic_spectrum
    from layerscope.insitu.voids import SegmentationGrid, smoothed_frame

    frame = np.random.default_rng(3).normal(100.0, 10.0, shape).astype(np.float32)
    params = VoidParams(smooth_nm=0.25)
    grid = SegmentationGrid(shape, pixel_size_nm, params)
    got = smoothed_frame(periodic_spectrum(frame, FourierGrid(shape)), grid)
    b = grid.bin
    truth = ndi.gaussian_filter(frame.astype(float), 0.25 / pixel_size_nm, mode="wrap", truncate=8.0)[::b, ::b]
    assert got.shape == truth.shape == grid.small_shape
    # float32 spectra: agreement to 1e-4 of the 10-count noise
    np.testing.assert_allclose(got, truth, atol=1e-3)


def test_dark_features_without_a_lattice_are_flagged():
    """The same voids on a lattice image: no flag; on an image without fringes (a particle movie, a
    low-magnification frame) they are still measured, but summary.json flags the label."""
    voids = [VoidSpec(3.8, 3.8, 1.0)]
    with_lattice, _ = synthetic_series(shape=(160, 160), n_frames=2, voids=voids, seed=4)
    without, _ = synthetic_series(shape=(160, 160), n_frames=2, voids=voids, lattice=None, seed=4)
    opts = InsituOptions(drift=False)
    assert analyse_series(with_lattice, options=opts).summary["flags"] == []
    res = analyse_series(without, options=opts)
    assert [f["code"] for f in res.summary["flags"]] == ["no_lattice"]
    assert res.frames["n_voids"].tolist() == [1, 1]  # measured all the same
    assert analyse_series(without, options=InsituOptions(drift=False, voids=False, cracks=False)).summary["flags"] == []
