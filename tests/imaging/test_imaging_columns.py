"""Column finding on Gaussian lattices drawn at known positions (analytic truth)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from imaging_synthetic import draw_columns, layered_lattice
from layerscope.errors import InputError
from layerscope.imaging.columns import detect_columns, estimate_noise, find_columns, refine_columns, site_intensities

PX = 0.01  # nm per pixel (0.1 A, as in the reference measurement)
SIGMA = 0.04  # nm, column width
D_T = 0.2438  # nm, LiCoO2 in-plane spacing along [100]


def _match(tab, x, y, tol=0.05):
    tree = cKDTree(np.column_stack([x, y]))
    d, i = tree.query(np.column_stack([tab.x_nm, tab.y_nm]))
    good = d < tol
    found = np.zeros(x.size, dtype=bool)
    found[i[good]] = True
    return d, good, found


@pytest.fixture(scope="module")
def lattice():
    x, y, _ = layered_lattice(width_nm=3.2, height_nm=3.2, angle_deg=4.0)
    clean = draw_columns((320, 320), x, y, 1.0, pixel_size_nm=PX, sigma_nm=SIGMA, background=0.05)
    return x, y, clean


def test_noise_free_positions_are_exact(lattice):
    x, y, clean = lattice
    tab = find_columns(clean, pixel_size_nm=PX, min_separation_nm=0.9 * D_T, column_sigma_nm=SIGMA)
    d, good, found = _match(tab, x, y)
    interior = (x > 0.05) & (x < 3.15) & (y > 0.05) & (y < 3.15)
    assert found[interior].all()
    assert good.all()
    # A Gaussian fitted to a Gaussian: sub-0.05 pm in a 10 pm pixel.
    assert np.sqrt(np.mean(d[good] ** 2)) * 1e3 < 0.05
    np.testing.assert_allclose(np.median(tab.sigma_nm[tab.fit_ok]), SIGMA, rtol=1e-3)


def _crlb_pm(clean, scale, x, y):
    """Cramer-Rao bound (pm, 2-D RMS) of a column position under Poisson noise, from the truth image.

    Fisher information for x0 of lambda = scale * image: sum (d lambda / d x0)^2 / lambda over the
    column's window (neighbour tails ignored), evaluated for an interior column.
    """
    yc = (np.arange(clean.shape[0]) + 0.5) * PX
    xc = (np.arange(clean.shape[1]) + 0.5) * PX
    i = np.argmin((x - 1.6) ** 2 + (y - 1.6) ** 2)
    gx = np.exp(-0.5 * ((xc - x[i]) / SIGMA) ** 2)
    gy = np.exp(-0.5 * ((yc - y[i]) / SIGMA) ** 2)
    dlam = scale * (gy[:, None] * gx[None, :]) * (xc[None, :] - x[i]) / SIGMA**2
    info = np.sum(dlam**2 / (scale * clean))
    return np.sqrt(2.0 / info) * 1e3


@pytest.mark.parametrize("scale", [20.0, 200.0])
def test_poisson_precision_near_cramer_rao(lattice, scale):
    x, y, clean = lattice
    rng = np.random.default_rng(7)
    noisy = rng.poisson(clean * scale).astype(float)
    tab = find_columns(noisy, pixel_size_nm=PX, min_separation_nm=0.9 * D_T, column_sigma_nm=SIGMA)
    d, good, found = _match(tab, x, y)
    interior = (x > 0.1) & (x < 3.1) & (y > 0.1) & (y < 3.1)
    assert found[interior].all()  # recall 100 % away from the edge
    assert good.mean() == 1.0  # precision 100 %
    inner = np.nonzero(good)[0]
    tx, ty = tab.x_nm.to_numpy()[inner], tab.y_nm.to_numpy()[inner]
    keep = (tx > 0.1) & (tx < 3.1) & (ty > 0.1) & (ty < 3.1)
    rms = np.sqrt(np.mean(d[inner][keep] ** 2)) * 1e3
    bound = _crlb_pm(clean, scale, x, y)
    # A 5-parameter fit on a window reaches the bound within ~30 % (not below it).
    assert bound * 0.8 < rms < bound * 1.4
    # The reported per-axis error is the fit covariance: consistent with the scatter within 35 %.
    reported = np.sqrt(2) * np.median(tab.position_error_pm[tab.fit_ok])
    assert reported == pytest.approx(rms, rel=0.35)


def test_void_and_vacuum_give_no_columns():
    x, y, _ = layered_lattice(width_nm=3.2, height_nm=3.2)
    hole = np.hypot(x - 1.6, y - 1.6) < 0.6
    vacuum = y < 0.8
    keep = ~hole & ~vacuum
    img = draw_columns((320, 320), x[keep], y[keep], 1.0, pixel_size_nm=PX, sigma_nm=SIGMA, background=0.02)
    noisy = np.random.default_rng(3).poisson(img * 100).astype(float)
    tab = find_columns(noisy, pixel_size_nm=PX, min_separation_nm=0.9 * D_T, column_sigma_nm=SIGMA)
    d, good, found = _match(tab, x[keep], y[keep])
    assert good.all()  # nothing found in the void or in the vacuum
    xs, ys = x[keep], y[keep]
    interior = (xs > 0.1) & (xs < 3.1) & (ys < 3.1)
    assert found[interior].all()


def test_site_intensity_recovers_amplitude_and_background():
    x = np.array([0.5, 1.0, 1.5])
    y = np.array([0.5, 0.8, 1.2])
    amp = np.array([1.0, 0.3, 0.05])
    img = draw_columns((200, 200), x, y, amp, pixel_size_nm=PX, sigma_nm=SIGMA, background=0.2)
    a, b = site_intensities(img, y / PX - 0.5, x / PX - 0.5, sigma_px=SIGMA / PX, radius_px=8)
    np.testing.assert_allclose(a, amp, atol=1e-9)
    np.testing.assert_allclose(b, 0.2, atol=1e-9)


def test_bright_close_neighbour_does_not_pull_the_fit():
    # A weak column 0.2 nm from a column four times brighter (a Li-layer site with some TM next to a
    # TM row, widths 0.05 nm): a single fit on the own Voronoi cell is pulled by the neighbour's tail
    # by several pm; subtracting the neighbours' fitted tails and refitting removes the bias.
    x = np.array([1.0, 1.2])
    y = np.array([1.0, 1.03])
    img = draw_columns((200, 200), x, y, [0.25, 1.0], pixel_size_nm=PX, sigma_nm=0.05, background=0.0)
    rows, cols = y / PX - 0.5, x / PX - 0.5
    start_r, start_c = np.rint(rows), np.rint(cols)
    single = refine_columns(img, start_r, start_c, radius_px=12, sigma_px=4, neighbour_passes=0)
    joint = refine_columns(img, start_r, start_c, radius_px=12, sigma_px=4, neighbour_passes=2)
    err_single = np.hypot(single.row[0] - rows[0], single.col[0] - cols[0]) * PX * 1e3
    err_joint = np.hypot(joint.row - rows, joint.col - cols) * PX * 1e3
    assert err_single > 3.0
    assert np.all(err_joint < 0.5)
    np.testing.assert_allclose(joint.amplitude, [0.25, 1.0], rtol=5e-3)


def test_noise_estimate_of_gaussian_noise():
    yy, xx = np.mgrid[0:300, 0:300]
    smooth = 100 + 20 * np.sin(xx / 15.0) * np.cos(yy / 11.0)
    noisy = smooth + np.random.default_rng(5).normal(0, 3.0, smooth.shape)
    assert estimate_noise(noisy) == pytest.approx(3.0, rel=0.05)


def test_colour_image_is_refused():
    rgb = np.zeros((64, 64, 3))
    with pytest.raises(InputError, match="colour"):
        find_columns(rgb, pixel_size_nm=PX, min_separation_nm=D_T, column_sigma_nm=SIGMA)


def test_too_coarse_pixels_are_refused():
    with pytest.raises(InputError, match="pixel size"):
        find_columns(np.zeros((64, 64)), pixel_size_nm=0.1, min_separation_nm=D_T, column_sigma_nm=SIGMA)


def _sparse_lattice(counts: float, vacuum: float, seed: int = 0):
    """Poisson counts: a square lattice of Gaussian columns (sigma 3 px, 20 px apart) over the left half
    of a 400 px field (mean ``counts`` a pixel there), the right half vacuum; ``vacuum`` counts a pixel
    everywhere. Returns the image, its expected counts and the 200 column centres (row, col)."""
    y, x = np.mgrid[0:400, 0:400]
    centres = np.array([(r, c) for r in range(10, 400, 20) for c in range(10, 200, 20)])
    sig = sum(np.exp(-((y - r) ** 2 + (x - c) ** 2) / 18.0) for r, c in centres)
    lam = counts * sig / sig[:, :200].mean() + vacuum
    return np.random.default_rng(seed).poisson(lam).astype(float), lam, centres


@pytest.mark.parametrize("counts", [0.05, 0.2])
def test_estimate_noise_on_sparse_counts_is_the_poisson_spread(counts):
    """Below ~0.4 counts a pixel more than half the second differences of whole-number counts are equal
    and their MAD is 0 (the estimate was 0): it is now the Poisson spread sqrt(mean expected count),
    within 5 %; a noise-free float image still gives 0."""
    img, lam, _ = _sparse_lattice(counts, 0.0)
    assert estimate_noise(img) == pytest.approx(np.sqrt(lam.mean()), rel=0.05)
    assert estimate_noise(np.zeros((64, 64)) + 0.5) == 0.0


def test_sparse_count_noise_test_drops_vacuum_maxima_and_keeps_the_columns():
    """0.2 counts a pixel on the lattice, 0.03 in the vacuum half: every one of the 200 columns is found
    (within 3 px) and the noise test (2 Poisson spreads of the filtered image) drops at least 15 % of the
    maxima in the vacuum (measured 65 -> 47 with seed 0; before, with the noise 0, it dropped none)."""
    img, _, centres = _sparse_lattice(0.2, 0.03)
    kw = dict(pixel_size_nm=0.01, min_separation_nm=0.2, column_sigma_nm=0.03)
    det = detect_columns(img, **kw)
    off = detect_columns(img, noise_sigmas=1e-9, **kw)
    found = np.column_stack([det.rows, det.cols])
    assert np.all(cKDTree(found).query(centres)[0] <= 3.0)
    n_vac, n_vac_off = int(np.sum(det.cols > 215)), int(np.sum(off.cols > 215))
    assert n_vac_off >= 30
    assert n_vac <= 0.85 * n_vac_off
