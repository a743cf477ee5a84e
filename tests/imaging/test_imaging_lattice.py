"""Lattice orientation by FFT, row grouping and registry on drawn layered lattices (analytic truth)."""

from __future__ import annotations

import numpy as np
import pytest

from imaging_synthetic import draw_columns, layered_lattice
from layerscope.errors import CalibrationError, InputError
from layerscope.imaging.columns import find_columns
from layerscope.imaging.lattice import fft_lattice, group_rows, refine_directions, row_registry, wrap_half

PX = 0.01
SIGMA = 0.04
D_T = 0.2438  # LiCoO2 a*sqrt(3)/2, nm
C3 = 0.4683  # LiCoO2 c/3, nm


def _image(angle_deg, shift, *, scale=50.0, seed=1, size=384):
    x, y, k = layered_lattice(width_nm=size * PX, height_nm=size * PX, angle_deg=angle_deg,
                              shift_per_layer=shift)
    img = draw_columns((size, size), x, y, 1.0, pixel_size_nm=PX, sigma_nm=SIGMA, background=0.05)
    return np.random.default_rng(seed).poisson(img * scale).astype(float), x, y, k


@pytest.mark.parametrize("angle_deg,shift", [(0.0, 1 / 3), (8.0, -1 / 3), (-15.0, 0.0)])
def test_orientation_rows_and_registry(angle_deg, shift):
    img, x, y, k = _image(angle_deg, shift)
    lat = fft_lattice(img, pixel_size_nm=PX, layer_spacing_nm=C3, inplane_spacing_nm=D_T)
    # FFT alone: a few tenths of a degree and 1 % in the periods on a 3.8 nm field.
    assert lat.angle_deg == pytest.approx(angle_deg, abs=0.3)
    assert lat.layer_period_nm == pytest.approx(C3, rel=0.01)
    assert lat.inplane_period_nm == pytest.approx(D_T, rel=0.01)
    tab = find_columns(img, pixel_size_nm=PX, min_separation_nm=0.9 * D_T, column_sigma_nm=SIGMA)
    xs, ys = tab.x_nm.to_numpy(), tab.y_nm.to_numpy()
    rows = group_rows(xs, ys, inplane=lat.inplane, normal=lat.normal, inplane_spacing_nm=lat.inplane_period_nm,
                      row_spacing_nm=C3)
    # Rows equal the drawn layers (one-to-one mapping of labels).
    truth = k[np.argmin((x[None, :] - xs[:, None]) ** 2 + (y[None, :] - ys[:, None]) ** 2, axis=1)]
    assert np.unique(rows).size == np.unique(truth).size
    assert np.all(np.diff(truth[np.argsort(rows, kind="stable")]) >= 0)
    t, n = refine_directions(xs, ys, rows, normal=lat.normal)
    assert np.degrees(np.arctan2(-n[0], n[1])) == pytest.approx(angle_deg, abs=0.02)
    nr = rows.max() + 1
    reg, _ = row_registry(xs, ys, rows, inplane=t, inplane_spacing_nm=D_T,
                          pairs=np.column_stack([np.arange(nr - 1), np.arange(1, nr)]), max_normal_distance_nm=0.6)
    got = reg[np.isfinite(reg)]
    assert got.size > 0.8 * xs.size
    assert np.mean(got) == pytest.approx(shift, abs=0.003)
    assert np.max(np.abs(got - shift)) < 0.1


def test_wrong_pixel_size_is_a_calibration_error():
    img, *_ = _image(0.0, 1 / 3)
    with pytest.raises(CalibrationError, match="pixel size"):
        fft_lattice(img, pixel_size_nm=PX * 1.3, layer_spacing_nm=C3, inplane_spacing_nm=D_T)
    # 10 % off is still accepted (the refined lattice reports the real spacing).
    lat = fft_lattice(img, pixel_size_nm=PX * 1.1, layer_spacing_nm=C3, inplane_spacing_nm=D_T)
    assert lat.layer_period_nm == pytest.approx(C3 * 1.1, rel=0.01)


def test_noise_only_image_has_no_lattice():
    noise = np.random.default_rng(0).poisson(30.0, (256, 256)).astype(float)
    with pytest.raises(InputError, match="no lattice fringes"):
        fft_lattice(noise, pixel_size_nm=PX, layer_spacing_nm=C3, inplane_spacing_nm=D_T)


def test_wrap_half():
    np.testing.assert_allclose(wrap_half([0.4, 0.6, -0.6, 1 / 3, -1 / 3 + 1, 0.5]),
                               [0.4, -0.4, 0.4, 1 / 3, -1 / 3, -0.5])
