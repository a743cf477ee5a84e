"""Degradations against their statistical and geometric truths (Poisson moments, known shifts, quadrature blur)."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.containers import Image
from layerscope.errors import InputError
from layerscope.simulate import apparent_columns, degrade

FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))


def gaussian_image(shape, p, x0, y0, fwhm, peak=0.1):
    yc = (np.arange(shape[0]) + 0.5) * p
    xc = (np.arange(shape[1]) + 0.5) * p
    s = fwhm / FWHM_PER_SIGMA
    data = peak * np.exp(-((yc[:, None] - y0) ** 2 + (xc[None, :] - x0) ** 2) / (2 * s * s))
    return Image.from_array(data, pixel_size_nm=p)


def peak_moments(data, p):
    """Centroid (nm) and rms width (nm) of a single peak from its first and second moments."""
    yc = (np.arange(data.shape[0]) + 0.5) * p
    xc = (np.arange(data.shape[1]) + 0.5) * p
    total = data.sum()
    x = (data.sum(0) * xc).sum() / total
    y = (data.sum(1) * yc).sum() / total
    sx = np.sqrt((data.sum(0) * (xc - x) ** 2).sum() / total)
    return x, y, sx


def test_poisson_counts_have_the_dose_mean_and_variance():
    p, fraction, dose = 0.01, 0.05, 1e4  # 1e4 e/A^2 on (0.1 A)^2 pixels = 100 e per pixel, 5 detected
    img = Image.from_array(np.full((256, 256), fraction), pixel_size_nm=p)
    out = degrade(img, dose_e_per_A2=dose, seed=3)
    n = out.data.size
    expected = dose * (10 * p) ** 2 * fraction
    assert out.metadata["electrons_per_pixel"] == pytest.approx(100.0)
    # sample mean within 5 standard errors of the Poisson mean; variance = mean to 5 standard errors
    assert abs(out.data.mean() - expected) < 5 * np.sqrt(expected / n)
    assert abs(out.data.var() / expected - 1) < 5 * np.sqrt(2 / n)
    assert np.all(out.data == np.round(out.data)) and out.data.min() >= 0
    # background adds its fraction times the electrons per pixel
    out_bg = degrade(img, dose_e_per_A2=dose, seed=3, background=0.02)
    assert abs(out_bg.data.mean() - 100 * 0.07) < 5 * np.sqrt(7 / n)


def test_same_seed_same_image_other_seed_other_image():
    img = Image.from_array(np.full((64, 64), 0.1), pixel_size_nm=0.02)
    kw = dict(dose_e_per_A2=1e3, scan_jitter_px=0.5)
    a, b, c = degrade(img, seed=1, **kw), degrade(img, seed=1, **kw), degrade(img, seed=2, **kw)
    np.testing.assert_array_equal(a.data, b.data)
    assert np.any(a.data != c.data)


def test_blur_adds_in_quadrature():
    p, fwhm, blur = 0.005, 0.08, 0.1
    img = gaussian_image((200, 200), p, 0.5, 0.5, fwhm)
    out = degrade(img, dose_e_per_A2=None, seed=0, blur_nm=blur)
    _, _, s = peak_moments(out.data, p)
    assert s * FWHM_PER_SIGMA == pytest.approx(np.hypot(fwhm, blur), rel=0.01)
    # blurring keeps the total detected signal
    assert out.data.sum() == pytest.approx(img.data.sum(), rel=1e-6)


def test_drift_moves_peaks_where_apparent_columns_says():
    import pandas as pd

    p, shape = 0.01, (160, 160)
    truth = pd.DataFrame({"x_nm": [0.4, 1.1, 0.6], "y_nm": [0.35, 0.7, 1.2]})
    data = sum(gaussian_image(shape, p, x, y, 0.08).data for x, y in zip(truth.x_nm, truth.y_nm))
    img = Image.from_array(data, pixel_size_nm=p)
    # 2 nm/s at 20 us per pixel over 160 x 160 pixels: 1 nm over the frame, 0.3 nm between the peaks
    out = degrade(img, dose_e_per_A2=None, seed=0, drift_nm_per_s=(2.0, -1.0), dwell_time_s=2e-5,
                  line_flyback_s=1e-4)
    seen = apparent_columns(truth, out)
    # analytic truth for uniform drift: a point seen at pixel (r, c) at time t satisfies r = r0 + v_y t / p, ...
    for _, col in seen.iterrows():
        r, c = col.y_nm / p - 0.5, col.x_nm / p - 0.5
        t = r * (160 * 2e-5 + 1e-4) + c * 2e-5
        assert col.x_nm - 2.0 * t == pytest.approx(col.x_true_nm, abs=1e-9)
        assert col.y_nm + 1.0 * t == pytest.approx(col.y_true_nm, abs=1e-9)
        # and the degraded image has its peak maximum there (to 0.5 pm)
        r0, c0 = int(col.y_nm / p), int(col.x_nm / p)
        win = out.data[r0 - 8 : r0 + 9, c0 - 8 : c0 + 9]
        rr, cc = np.mgrid[r0 - 8 : r0 + 9, c0 - 8 : c0 + 9]
        keep = win > 0.3 * win.max()  # the core of the (sheared) Gaussian: log is a quadratic there
        x, y = (cc[keep] + 0.5) * p, (rr[keep] + 0.5) * p
        a = np.c_[x * x, y * y, x * y, x, y, np.ones_like(x)]
        k = np.linalg.lstsq(a, np.log(win[keep]), rcond=None)[0]
        xm, ym = np.linalg.solve([[2 * k[0], k[2]], [k[2], 2 * k[1]]], [-k[3], -k[4]])
        assert abs(xm - col.x_nm) < 5e-4 and abs(ym - col.y_nm) < 5e-4
    assert seen.in_image.all()


def test_jitter_shifts_each_line_by_a_random_offset_of_the_given_rms():
    p, rms = 0.01, 0.7
    ramp = np.tile(np.linspace(0.1, 0.9, 400), (600, 1))  # value rises linearly with the column
    img = Image.from_array(ramp, pixel_size_nm=p)
    out = degrade(img, dose_e_per_A2=None, seed=5, scan_jitter_px=rms)
    slope = ramp[0, 1] - ramp[0, 0]
    offsets = (out.data[:, 50:350] - ramp[:, 50:350]).mean(axis=1) / slope  # px, per line
    assert np.allclose(out.data[:, 50:350] - ramp[:, 50:350], (offsets * slope)[:, None], atol=1e-9)
    assert offsets.std() == pytest.approx(rms, rel=0.1)  # 600 lines: 3 % standard error of an rms
    assert abs(offsets.mean()) < 4 * rms / np.sqrt(600)


def test_flyback_distortion_decays_along_the_line():
    p = 0.01
    ramp = np.tile(np.linspace(0.1, 0.9, 400), (20, 1))
    out = degrade(Image.from_array(ramp, pixel_size_nm=p), dose_e_per_A2=None, seed=0,
                  scan_distortion_px=3.0, scan_distortion_decay_px=25.0)
    slope = ramp[0, 1] - ramp[0, 0]
    cols = np.arange(15, 200)  # away from the reflecting left edge (spline boundary condition)
    shift = (out.data[10, cols] - ramp[10, cols]) / slope
    np.testing.assert_allclose(shift, -3.0 * np.exp(-cols / 25.0), atol=1e-6)


def test_apparent_columns_with_flyback_stay_finite_left_of_the_image():
    import pandas as pd

    p = 0.01
    img = Image.from_array(np.full((20, 400), 0.1), pixel_size_nm=p)
    out = degrade(img, dose_e_per_A2=None, seed=0, scan_distortion_px=3.0, scan_distortion_decay_px=25.0)
    truth = pd.DataFrame({"x_nm": [-2.0, -0.3, 0.5, 2.0], "y_nm": [0.1, 0.1, 0.1, 0.1]})
    seen = apparent_columns(truth, out)
    assert np.all(np.isfinite(seen[["x_nm", "y_nm"]].to_numpy()))
    assert list(seen["in_image"]) == [False, False, True, True]
    # inside the image the apparent column solves x_seen - A exp(-x_seen / tau) = x_true (pixels)
    c = seen["x_nm"].to_numpy()[2:] / p - 0.5
    np.testing.assert_allclose(c - 3.0 * np.exp(-c / 25.0), truth["x_nm"].to_numpy()[2:] / p - 0.5, atol=1e-6)


def test_bad_degradations_raise():
    img = Image.from_array(np.full((8, 8), 0.1), pixel_size_nm=0.02)
    with pytest.raises(InputError, match="dwell_time_s"):
        degrade(img, dose_e_per_A2=1e4, seed=0, drift_nm_per_s=(1.0, 0.0))
    with pytest.raises(InputError, match="scan_distortion_decay_px"):
        degrade(img, dose_e_per_A2=1e4, seed=0, scan_distortion_px=2.0)
    with pytest.raises(InputError, match="dose_e_per_A2"):
        degrade(img, dose_e_per_A2=-5, seed=0)
    with pytest.raises(InputError, match="detected fraction"):
        degrade(Image.from_array(np.full((8, 8), 7.0), pixel_size_nm=0.02), dose_e_per_A2=1e4, seed=0)
    with pytest.raises(InputError, match="Image"):
        degrade(np.zeros((8, 8)), dose_e_per_A2=1e4, seed=0)
