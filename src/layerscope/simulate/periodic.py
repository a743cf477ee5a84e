"""Exact resampling of a band-limited periodic image: scan one crystal cell, evaluate any pixel grid.

A STEM image of a perfect crystal is periodic with the projected cell, and it is band-limited:
the intensity at probe position ``r`` is bilinear in the incident wave's components
``A(k) exp(-2 pi i k.r)``, so it only contains the frequencies ``k - k'`` of two wavevectors inside
the probe-forming aperture, ``|f| <= 2 alpha / lambda`` (Kirkland 2020, sec. 5.4; the HAADF
Nyquist step is ``lambda / (4 alpha)``). Such an image is a trigonometric polynomial of the cell
with finitely many harmonics, so a scan of one cell at or below that step determines it exactly,
and its values on any other grid follow from two small matrix products (trigonometric
interpolation, generalised here to least squares so that the scan step need not divide the period).

References
----------
- E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 3rd ed., Springer (2020), ch. 5.
- A. Zygmund, *Trigonometric Series*, 3rd ed., Cambridge University Press (2002), ch. X:
  trigonometric interpolation.
"""

from __future__ import annotations

import numpy as np

from layerscope.errors import InputError
from layerscope.simulate.incoherent import check_positive, electron_wavelength_A
from layerscope import linalg as robust_linalg

__all__ = ["stem_max_harmonic", "trig_interpolation_matrix", "resample_periodic_image"]

#: Largest condition number of the sample matrix accepted before the samples are declared unable
#: to tell the harmonics apart (float32 images keep ~7 digits; 1e4 leaves 3).
MAX_CONDITION = 1e4


def stem_max_harmonic(
    period_nm: float, *, energy_keV: float, convergence_mrad: float, box_nm: float | None = None
) -> int:
    """Highest harmonic of a crystal period present in a STEM image (any detector).

    Frequencies are differences of two wavevectors inside the aperture, ``|f| <= 2 alpha / lambda``.
    A simulated aperture sampled on a finite box with a soft edge (abTEM tapers it over one
    reciprocal pixel, ``1 / box``) reaches half a reciprocal pixel further, so ``1 / box`` is added.

    Parameters
    ----------
    period_nm : float
        Period of the crystal along this axis in nm.
    energy_keV : float
        Beam energy in keV.
    convergence_mrad : float
        Probe convergence semi-angle in mrad.
    box_nm : float, optional
        Extent of the simulation box along this axis in nm (soft-edge margin); ``None`` for a hard,
        continuous aperture.

    Returns
    -------
    int
        ``floor(period * (2 alpha / lambda + 1 / box))``.
    """
    period = check_positive("period_nm", period_nm, "nm, e.g. 0.4877")
    alpha = check_positive("convergence_mrad", convergence_mrad, "mrad, e.g. 25") * 1e-3
    lam_nm = electron_wavelength_A(check_positive("energy_keV", energy_keV, "keV, e.g. 200")) / 10.0
    band = 2.0 * alpha / lam_nm
    if box_nm is not None:
        band += 1.0 / check_positive("box_nm", box_nm, "nm, the simulation box along this axis")
    return int(np.floor(period * band))


def _harmonic_basis(coords_nm: np.ndarray, period_nm: float, max_harmonic: int, derivative: int = 0) -> np.ndarray:
    """Real Fourier basis ``[1, cos(w_m x), sin(w_m x) for m = 1..K]`` (``w_m = 2 pi m / P``) at
    ``coords_nm``, or its ``derivative``-th derivative in x (per nm^derivative)."""
    w = 2.0 * np.pi * np.arange(1, max_harmonic + 1) / period_nm
    phase = np.outer(coords_nm, w) + 0.5 * np.pi * derivative  # d/dx cos(wx) = w cos(wx + pi/2)
    const = np.full((coords_nm.size, 1), 1.0 if derivative == 0 else 0.0)
    return np.hstack([const, w**derivative * np.cos(phase), w**derivative * np.sin(phase)])


def trig_interpolation_matrix(
    sample_nm: np.ndarray, target_nm: np.ndarray, *, period_nm: float, max_harmonic: int, derivative: int = 0
) -> np.ndarray:
    """Matrix taking samples of a periodic band-limited function to its values at other points.

    For every real trigonometric polynomial ``f`` of period ``period_nm`` with harmonics
    ``|m| <= max_harmonic``, ``f(target_nm) = M @ f(sample_nm)`` exactly (to rounding). The
    coefficients are the least-squares fit to the samples, which is exact for such ``f`` once the
    samples determine them (at least ``2 K + 1`` distinct phases; with ``N`` equally spaced samples
    per period, ``N > 2 K``, this is classical trigonometric interpolation).

    Parameters
    ----------
    sample_nm : array_like, shape (n,)
        Sample coordinates in nm (any spacing; need not lie within one period).
    target_nm : array_like, shape (t,)
        Coordinates in nm where the function is wanted.
    period_nm : float
        Period in nm.
    max_harmonic : int
        Highest harmonic ``K`` (see :func:`stem_max_harmonic`).
    derivative : int
        Order of the derivative of ``f`` evaluated at ``target_nm`` (0: the values; 1: ``df/dx``
        in units of f per nm; ...).

    Returns
    -------
    numpy.ndarray, shape (t, n)
        The interpolation matrix.

    Raises
    ------
    InputError
        Fewer than ``2 K + 1`` samples, or samples whose phases cannot tell the harmonics apart
        (condition number above :data:`MAX_CONDITION`): scan more or finer steps over the period.
    """
    period = check_positive("period_nm", period_nm, "nm, e.g. 0.4877")
    if int(max_harmonic) != max_harmonic or max_harmonic < 0:
        raise InputError(f"max_harmonic={max_harmonic!r} must be a non-negative integer")
    k = int(max_harmonic)
    if int(derivative) != derivative or derivative < 0:
        raise InputError(f"derivative={derivative!r} must be a non-negative integer")
    xs = np.asarray(sample_nm, dtype=float).ravel()
    xt = np.asarray(target_nm, dtype=float).ravel()
    if xs.size < 2 * k + 1:
        raise InputError(
            f"{xs.size} samples cannot determine {2 * k + 1} Fourier coefficients (harmonics up to {k}); "
            f"scan at least {2 * k + 1} steps over the period of {period:g} nm"
        )
    a = _harmonic_basis(xs, period, k)
    u, s, vt = robust_linalg.svd(a)
    if s[-1] <= 0 or s[0] / s[-1] > MAX_CONDITION:
        raise InputError(
            f"the {xs.size} sample phases over the period of {period:g} nm do not determine harmonics up to "
            f"{k} (condition number {s[0] / max(s[-1], 1e-300):.3g}); spread the samples evenly over the period"
        )
    return _harmonic_basis(xt, period, k, int(derivative)) @ (vt.T / s) @ u.T


def resample_periodic_image(
    cell_image: np.ndarray,
    *,
    step_nm: float,
    period_nm: tuple[float, float],
    max_harmonic: tuple[int, int],
    pixel_size_nm: float,
    shape: tuple[int, int],
    derivative: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Evaluate a periodic band-limited image, scanned over (at least) one cell, on a pixel grid.

    Both grids follow the image convention: sample ``[i, j]`` of the scan sits at
    ``((j + 0.5) step, (i + 0.5) step)`` and pixel ``[r, c]`` of the result at
    ``((c + 0.5) pixel, (r + 0.5) pixel)`` (``x_nm``, ``y_nm``), both from the same origin. The
    result is ``My @ cell_image @ Mx.T`` with the matrices of :func:`trig_interpolation_matrix`.

    Parameters
    ----------
    cell_image : numpy.ndarray, shape (rows, cols)
        The scanned samples; they must cover at least ``2 K + 1`` distinct phases per axis.
    step_nm : float
        Scan step in nm (square).
    period_nm : (float, float)
        Cell period ``(x, y)`` in nm.
    max_harmonic : (int, int)
        Highest harmonic ``(Kx, Ky)`` of the periods (see :func:`stem_max_harmonic`).
    pixel_size_nm : float
        Pixel size of the result in nm.
    shape : (int, int)
        ``(rows, cols)`` of the result.
    derivative : (int, int)
        Orders of the derivatives in ``(x, y)``: ``(1, 0)`` gives ``dI/dx_nm`` (image units per nm).

    Returns
    -------
    numpy.ndarray
        The image (or its derivative) on the new grid (float64).
    """
    data = np.asarray(cell_image, dtype=float)
    if data.ndim != 2 or not np.all(np.isfinite(data)):
        raise InputError(f"cell_image must be a finite 2-D array, got shape {data.shape}")
    step = check_positive("step_nm", step_nm, "nm, e.g. 0.024")
    px = check_positive("pixel_size_nm", pixel_size_nm, "nm, e.g. 0.01")
    rows, cols = (int(v) for v in shape)
    if rows < 1 or cols < 1:
        raise InputError(f"shape={shape!r} must be positive (rows, cols)")
    my = trig_interpolation_matrix((np.arange(data.shape[0]) + 0.5) * step, (np.arange(rows) + 0.5) * px,
                                   period_nm=period_nm[1], max_harmonic=max_harmonic[1], derivative=derivative[1])
    mx = trig_interpolation_matrix((np.arange(data.shape[1]) + 0.5) * step, (np.arange(cols) + 0.5) * px,
                                   period_nm=period_nm[0], max_harmonic=max_harmonic[0], derivative=derivative[0])
    return my @ data @ mx.T
