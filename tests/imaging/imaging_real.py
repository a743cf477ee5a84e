"""Independent checks of columns found on real images (plain NumPy / SciPy / scikit-image).

Used by tests/imaging/test_columns_real.py and the corpus rows (tests/realdata/rows_imaging.py).
Nothing here calls layerscope: the lattice is read from the power spectrum with
``skimage.feature.peak_local_max``, the maxima from a SciPy Gaussian filter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.feature import peak_local_max

STEM = "stem"
#: Real images: (path under shared/data, pixel size nm or None for the file's calibration,
#: nominal scale?, columns per primitive cell of the power spectrum's lattice, what is seen).
IMAGES = {
    "stem/atomsegnet/Si110_5nmX25us_03_none_none.png": (5.0 / 512, False, 1, "Si [110]: one column per dumbbell (its two columns, 0.136 nm apart, are one elongated blob at this resolution)"),
    "stem/atomsegnet/Grain_boundry_gold_512px.png": (0.01, True, 1, "Au grain boundary: one column per cell of each grain (lattice per quadrant: two grains)"),
    "stem/atomsegnet/10_dso_8nm_none_none.png": (8.0 / 1024, False, 1, "DyScO3-like perovskite: the bright A-site columns (B-site and O columns are darker than the mean)"),
    "stem/atomsegnet/03_afterimage_8nm_crp.png": (8.0 / 730, False, 1, "dumbbell crystal with scan after-images: one column per blob"),
    "stem/atomsegnet/11133.png": (0.01, True, 1, "low-dose nanoparticle patch (nominal 0.01 nm/px)"),
    "stem/atomsegnet/12219.png": (0.01, True, 1, "low-dose nanoparticle patch (nominal 0.01 nm/px)"),
    "stem/atomsegnet/12965.png": (0.01, True, 1, "nanoparticle in vacuum (nominal 0.01 nm/px)"),
    "stem/temul/example_Se_implanted_MoS2.dm3": (None, False, 1, "monolayer MoS2 (Se implanted): the Mo sublattice (S2 columns are near the noise)"),
}
#: Quadrant-wise lattice (two grains in the field).
PER_QUADRANT = {"stem/atomsegnet/Grain_boundry_gold_512px.png"}
#: Tolerances of the checks (stated in docs/validation.md).
COUNT_TOLERANCE = 0.12  # detected / (columns per cell x lattice area / cell area) within 12 % (11133: 0.88)
MAXIMA_MEDIAN_NN = 0.05  # median distance to the smoothed image's maximum, in nearest-neighbour distances
MAXIMA_P90_NN = 0.15  # 90th percentile


def read_image(path: Path) -> np.ndarray:
    """The image as float (PNG via imageio, dm3 via RosettaSciIO)."""
    if path.suffix.lower() == ".png":
        import imageio.v3 as iio

        return np.asarray(iio.imread(path), dtype=float)
    from rsciio.digitalmicrograph import file_reader

    return np.asarray(file_reader(str(path))[0]["data"], dtype=float)


def fft_cell_area_px2(img: np.ndarray, n_peaks: int = 16) -> tuple[float, np.ndarray]:
    """Primitive cell area (px^2) of the lattice in the power spectrum, and the spot periods (px).

    The 16 strongest local maxima of the radially flattened log power spectrum (Hann window) are
    the spots; the shortest and the shortest non-collinear one span the reciprocal lattice.
    """
    n = min(img.shape)
    a = img[:n, :n] - img[:n, :n].mean()
    w = np.hanning(n)
    power = np.abs(np.fft.fftshift(np.fft.fft2(a * np.outer(w, w)))) ** 2
    c = n // 2
    yy, xx = np.indices(power.shape)
    r = np.hypot(yy - c, xx - c)
    lp = ndimage.gaussian_filter(np.log(power + 1e-12), 1.0)
    rb = np.rint(r).astype(int)
    lp = lp - np.asarray(ndimage.median(lp, rb, np.arange(rb.max() + 1)))[rb]
    lp[(r < 5) | (r > 0.45 * n)] = -np.inf
    pk = peak_local_max(lp, min_distance=3, num_peaks=n_peaks, exclude_border=False)
    g = (pk - c)[:, ::-1] / n
    gm = np.hypot(g[:, 0], g[:, 1])
    i = int(np.argmin(gm))
    cross = np.abs(g[:, 0] * g[i, 1] - g[:, 1] * g[i, 0])
    j = int(np.argmin(np.where(cross > 0.25 * gm * gm[i], gm, np.inf)))
    return float(1.0 / cross[j]), 1.0 / gm


def crystal_mask(img: np.ndarray, period_px: float) -> np.ndarray:
    """Pixels where the lattice is seen: the local power of the band-passed image (difference of
    Gaussians of 0.1 and 0.5 lattice periods), averaged over 1.5 periods, above a quarter of its
    95th percentile (vacuum, and a region too thin to show columns, fall below)."""
    bp = ndimage.gaussian_filter(img, 0.1 * period_px) - ndimage.gaussian_filter(img, 0.5 * period_px)
    energy = ndimage.gaussian_filter(bp * bp, 1.5 * period_px)
    return energy >= 0.25 * np.percentile(energy, 95)


def count_ratio(img: np.ndarray, x_px: np.ndarray, y_px: np.ndarray, nn_px: float, per_cell: int,
                quadrants: bool = False) -> float:
    """Detected columns over the number the power spectrum's lattice puts on the crystal's area.

    Counted away from the border (one nearest-neighbour distance); with ``quadrants`` the lattice
    is measured in each quarter of the image and the ratios are pooled.
    """
    h, w = img.shape
    boxes = [(0, h, 0, w)] if not quadrants else [(0, h // 2, 0, w // 2), (0, h // 2, w // 2, w),
                                                  (h // 2, h, 0, w // 2), (h // 2, h, w // 2, w)]
    m = int(np.ceil(nn_px))
    found = expected = 0.0
    for r0, r1, c0, c1 in boxes:
        sub = img[r0:r1, c0:c1]
        area, periods = fft_cell_area_px2(sub)
        mask = crystal_mask(sub, float(np.max(periods)))
        mask[:m], mask[-m:], mask[:, :m], mask[:, -m:] = False, False, False, False
        xi, yi = np.rint(x_px - c0).astype(int), np.rint(y_px - r0).astype(int)
        ok = (xi >= 0) & (xi < c1 - c0) & (yi >= 0) & (yi < r1 - r0)
        found += mask[yi[ok], xi[ok]].sum()
        expected += per_cell * mask.sum() / area
    return float(found / expected)


def distance_to_maxima(img: np.ndarray, x_px: np.ndarray, y_px: np.ndarray, nn_px: float) -> np.ndarray:
    """Distance (px) from each column to the maximum of the image smoothed by 0.15 nn, within 0.3 nn."""
    s = ndimage.gaussian_filter(img, max(1.0, 0.15 * nn_px))
    r = max(2, int(0.3 * nn_px))
    out = np.empty(len(x_px))
    for k, (x, y) in enumerate(zip(x_px, y_px)):
        i, j = int(round(y)), int(round(x))
        r0, c0 = max(0, i - r), max(0, j - r)
        win = s[r0 : i + r + 1, c0 : j + r + 1]
        a = np.unravel_index(int(np.argmax(win)), win.shape)
        out[k] = np.hypot(a[0] + r0 - y, a[1] + c0 - x)
    return out


def check_columns(img: np.ndarray, table: pd.DataFrame, pixel_size_nm: float, rel_path: str) -> dict:
    """Assert the two checks of a real image's columns; return the numbers."""
    x = table["x_nm"].to_numpy() / pixel_size_nm - 0.5
    y = table["y_nm"].to_numpy() / pixel_size_nm - 0.5
    nn_px = float(np.median(table["nn_distance_nm"])) / pixel_size_nm
    per_cell = IMAGES[rel_path][2]
    ratio = count_ratio(img, x, y, nn_px, per_cell, quadrants=rel_path in PER_QUADRANT)
    d = distance_to_maxima(img, x, y, nn_px) / nn_px
    numbers = {"count_ratio": ratio, "maxima_median_nn": float(np.median(d)), "maxima_p90_nn": float(np.percentile(d, 90))}
    assert abs(ratio - 1.0) <= COUNT_TOLERANCE, (rel_path, numbers)
    assert numbers["maxima_median_nn"] <= MAXIMA_MEDIAN_NN, (rel_path, numbers)
    assert numbers["maxima_p90_nn"] <= MAXIMA_P90_NN, (rel_path, numbers)
    return numbers
