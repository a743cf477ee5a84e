"""Locate a sharp change (a reduction or delithiation front) in a profile or a map.

A front is modelled as an error-function step between two plateaus::

    p(x) = low + (high - low) * 0.5 * (1 + erf((x - x0) / (sqrt(2) w)))

so that the 10-90 % width is ``2 * sqrt(2) * erfinv(0.8) * w = 2.563 w``. The fit is a
weighted non-linear least squares (:func:`scipy.optimize.curve_fit`); the uncertainties are
the square roots of the covariance diagonal, scaled by the reduced chi-square when no
per-point sigma is given. Across a map the front is a straight line at angle ``theta``: the
same step in the signed distance ``x cos(theta) + y sin(theta) - d`` of each pixel centre.

The 10-90 % width is only resolved when it exceeds about one sampling step; below that the
fit returns widths near the sampling step with a large uncertainty (the result says so in
``resolved``).

References
----------
W. H. Press et al., *Numerical Recipes*, 3rd ed., Cambridge University Press (2007), section
15.5 (non-linear least squares and the covariance of its parameters).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import curve_fit
from scipy.special import erf, erfinv

from layerscope.errors import ConvergenceError, InputError

__all__ = ["Front", "MapFront", "locate_front", "locate_front_map", "WIDTH_10_90_PER_SIGMA"]

#: 10-90 % width of an error-function step per unit Gaussian sigma: 2 sqrt(2) erfinv(0.8).
WIDTH_10_90_PER_SIGMA = float(2.0 * np.sqrt(2.0) * erfinv(0.8))


def _step(x: np.ndarray, low: float, high: float, x0: float, w: float) -> np.ndarray:
    return low + (high - low) * 0.5 * (1.0 + erf((x - x0) / (np.sqrt(2.0) * w)))


@dataclass(frozen=True)
class Front:
    """A front along a profile (all lengths in nm).

    Attributes
    ----------
    position_nm, position_sigma_nm : float
        Centre of the step (50 % point) and its one-sigma uncertainty.
    width_nm, width_sigma_nm : float
        10-90 % width and its uncertainty.
    low, high : float
        Plateau values before and after the front (in the profile's units).
    low_sigma, high_sigma : float
        Their uncertainties.
    rising : bool
        True when the value increases along the positive direction.
    resolved : bool
        False when the width is below the sampling step (then only an upper bound).
    reduced_chi2 : float
        Residual variance per degree of freedom (1 for a good fit with correct sigma).
    """

    position_nm: float
    position_sigma_nm: float
    width_nm: float
    width_sigma_nm: float
    low: float
    high: float
    low_sigma: float
    high_sigma: float
    rising: bool
    resolved: bool
    reduced_chi2: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary (for summary.json)."""
        return {k: (bool(v) if isinstance(v, (bool, np.bool_)) else float(v)) for k, v in asdict(self).items()}


def _initial_guess(x: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float]:
    n = len(x)
    m = max(2, n // 5)
    low, high = float(np.median(p[:m])), float(np.median(p[-m:]))
    mid = 0.5 * (low + high)
    sgn = 1.0 if high >= low else -1.0
    above = sgn * (p - mid) > 0
    idx = int(np.argmax(above)) if above.any() else n // 2
    x0 = float(x[max(idx, 1)] if idx > 0 else x[n // 2])
    step = float(np.median(np.diff(x)))
    w = max(2.0 * step, 0.05 * (x[-1] - x[0]))
    return low, high, x0, w


def locate_front(
    profile: Any,
    positions_nm: Any,
    *,
    sigma: Any = None,
) -> Front:
    """Fit an error-function step to a 1-D profile and return the front.

    Parameters
    ----------
    profile : array (n,)
        Values along the line (valence, L3/L2, ratio, ...). NaN points are ignored.
    positions_nm : array (n,)
        Positions of the points (nm), increasing.
    sigma : array (n,) or None
        One-sigma uncertainty of each point; None: equal weights, covariance scaled by the
        residual.

    Returns
    -------
    Front

    Raises
    ------
    InputError
        Fewer than 6 finite points, or positions not increasing.
    ConvergenceError
        When the fit fails or the step is not significant (abs(high - low) < 3 sigma).
    """
    p = np.asarray(profile, dtype=np.float64).ravel()
    x = np.asarray(positions_nm, dtype=np.float64).ravel()
    if p.size != x.size:
        raise InputError(f"front: profile has {p.size} points but positions_nm has {x.size}.")
    if np.any(np.diff(x) <= 0):
        raise InputError("front: positions_nm must increase strictly along the profile.")
    ok = np.isfinite(p)
    s = None
    if sigma is not None:
        s = np.asarray(sigma, dtype=np.float64).ravel()
        if s.size != p.size:
            raise InputError(f"front: sigma has {s.size} points but the profile has {p.size}.")
        ok &= np.isfinite(s) & (s > 0)
    if ok.sum() < 6:
        raise InputError(
            f"front: only {int(ok.sum())} finite points in the profile; need >= 6 (check the maps "
            "for NaN, e.g. pixels outside the references' valence range)."
        )
    x, p = x[ok], p[ok]
    s = s[ok] if s is not None else None
    p0 = _initial_guess(x, p)
    step = float(np.median(np.diff(x)))
    span = float(x[-1] - x[0])
    bounds = ([-np.inf, -np.inf, x[0], 0.05 * step], [np.inf, np.inf, x[-1], span])
    try:
        popt, pcov = curve_fit(
            _step, x, p, p0=p0, sigma=s, absolute_sigma=s is not None, bounds=bounds, maxfev=20000
        )
    except (RuntimeError, ValueError) as exc:
        raise ConvergenceError(f"front: the step fit did not converge ({exc}); the profile may have no front.") from exc
    perr = np.sqrt(np.clip(np.diag(pcov), 0, None))
    resid = p - _step(x, *popt)
    dof = max(p.size - 4, 1)
    chi2 = float(((resid / s) ** 2).sum() / dof) if s is not None else float((resid**2).sum() / dof)
    low, high, x0, w = popt
    amp_sigma = float(np.hypot(perr[0], perr[1]))
    if not np.all(np.isfinite(perr)) or abs(high - low) < 3 * amp_sigma:
        raise ConvergenceError(
            f"front: no significant step (abs(high - low) = {abs(high - low):.3g} against an "
            f"uncertainty of {amp_sigma:.3g}); the profile shows no front at this noise level."
        )
    width = WIDTH_10_90_PER_SIGMA * w
    return Front(
        position_nm=float(x0),
        position_sigma_nm=float(perr[2]),
        width_nm=float(width),
        width_sigma_nm=float(WIDTH_10_90_PER_SIGMA * perr[3]),
        low=float(low),
        high=float(high),
        low_sigma=float(perr[0]),
        high_sigma=float(perr[1]),
        rising=bool(high > low),
        resolved=bool(width > step),
        reduced_chi2=chi2,
    )


@dataclass(frozen=True)
class MapFront:
    """A straight front across a map (lengths in nm, angles in degrees).

    Attributes
    ----------
    angle_deg, angle_sigma_deg : float
        Direction of the front *normal* (the direction in which the value rises), measured
        from +x (to the right) towards +y (down).
    distance_nm, distance_sigma_nm : float
        Signed distance of the front line from the top-left corner of the map along the
        normal.
    width_nm, width_sigma_nm : float
        10-90 % width across the front.
    low, high : float
        Plateau values on either side.
    centre_x_nm, centre_y_nm : float
        The point of the front line closest to the map centre.
    reduced_chi2 : float
        Residual variance per degree of freedom.
    """

    angle_deg: float
    angle_sigma_deg: float
    distance_nm: float
    distance_sigma_nm: float
    width_nm: float
    width_sigma_nm: float
    low: float
    high: float
    centre_x_nm: float
    centre_y_nm: float
    reduced_chi2: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary (for summary.json)."""
        return {k: float(v) for k, v in asdict(self).items()}


def locate_front_map(values: Any, *, pixel_size_nm: float, sigma: Any = None) -> MapFront:
    """Fit a straight error-function front to a 2-D map.

    Parameters
    ----------
    values : array (rows, cols)
        Map of valence, ratio, ... (NaN pixels ignored).
    pixel_size_nm : float
        Pixel size (nm); pixel centres at ``((col + 0.5) s, (row + 0.5) s)``.
    sigma : array (rows, cols) or None
        Per-pixel uncertainty (None: equal weights).

    Returns
    -------
    MapFront
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise InputError(f"front map: expected a 2-D map, got shape {v.shape}.")
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise InputError(f"front map: pixel_size_nm={pixel_size_nm} must be a positive length in nm.")
    rows, cols = np.indices(v.shape)
    x = (cols + 0.5) * pixel_size_nm
    y = (rows + 0.5) * pixel_size_nm
    ok = np.isfinite(v)
    s = None
    if sigma is not None:
        s = np.asarray(sigma, dtype=np.float64)
        ok &= np.isfinite(s) & (s > 0)
    if ok.sum() < 10:
        raise InputError(f"front map: only {int(ok.sum())} finite pixels; need >= 10.")
    xv, yv, vv = x[ok], y[ok], v[ok]
    sv = s[ok] if s is not None else None
    # initial direction from the mean gradient, distance from the mid level
    gy, gx = np.gradient(np.where(ok, v, np.nanmean(v)))
    theta0 = float(np.arctan2(np.nanmean(gy), np.nanmean(gx)))
    proj = xv * np.cos(theta0) + yv * np.sin(theta0)
    order = np.argsort(proj)
    low0, high0, d0, w0 = _initial_guess(proj[order], vv[order])

    def model(xy: np.ndarray, low: float, high: float, theta: float, d: float, w: float) -> np.ndarray:
        t = xy[0] * np.cos(theta) + xy[1] * np.sin(theta)
        return _step(t, low, high, d, w)

    extent = float(np.hypot(*v.shape) * pixel_size_nm)
    try:
        popt, pcov = curve_fit(
            model, np.vstack([xv, yv]), vv, p0=(low0, high0, theta0, d0, w0), sigma=sv,
            absolute_sigma=sv is not None,
            bounds=([-np.inf, -np.inf, theta0 - np.pi / 2, -extent, 0.05 * pixel_size_nm],
                    [np.inf, np.inf, theta0 + np.pi / 2, extent, extent]),
            maxfev=20000,
        )
    except (RuntimeError, ValueError) as exc:
        raise ConvergenceError(f"front map: the fit did not converge ({exc}).") from exc
    perr = np.sqrt(np.clip(np.diag(pcov), 0, None))
    low, high, theta, d, w = popt
    if high < low:  # orient the normal towards rising values
        low, high, theta, d = high, low, theta + np.pi, -d
    resid = vv - model(np.vstack([xv, yv]), *popt)
    dof = max(vv.size - 5, 1)
    chi2 = float(((resid / sv) ** 2).sum() / dof) if sv is not None else float((resid**2).sum() / dof)
    if abs(high - low) < 3 * float(np.hypot(perr[0], perr[1])):
        raise ConvergenceError("front map: no significant step across the map at this noise level.")
    cx, cy = v.shape[1] * pixel_size_nm / 2, v.shape[0] * pixel_size_nm / 2
    nx, ny = np.cos(theta), np.sin(theta)
    t_c = cx * nx + cy * ny - d
    ang = (np.degrees(theta) + 180.0) % 360.0 - 180.0
    return MapFront(
        angle_deg=float(ang),
        angle_sigma_deg=float(np.degrees(perr[2])),
        distance_nm=float(d),
        distance_sigma_nm=float(perr[3]),
        width_nm=float(WIDTH_10_90_PER_SIGMA * w),
        width_sigma_nm=float(WIDTH_10_90_PER_SIGMA * perr[4]),
        low=float(low),
        high=float(high),
        centre_x_nm=float(cx - t_c * nx),
        centre_y_nm=float(cy - t_c * ny),
        reduced_chi2=chi2,
    )
