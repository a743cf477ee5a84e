"""Reaction fronts: where the layered lattice turns into rock salt, how fast and how wide.

In a layered oxide (R-3m) seen edge-on, the alternation of transition-metal and Li layers gives a
lattice fringe at the layer period (003, ~0.47 nm). In the rock-salt (Fm-3m) product the cations are
mixed and that fringe vanishes, while the 0.24 nm cation-row fringes remain. The local complex
amplitude of the layer fringe (lock-in demodulation at the Bragg vector, as in geometric phase
analysis: Hytch, Snoeck & Kilaas, *Ultramicroscopy* 74, 131 (1998)) is therefore proportional to the
layered order parameter ``s`` (1 pristine, 0 rock salt), smoothed by the demodulation window.

For a straight front, the mean fringe power along lines parallel to the front follows
``P(d) = P_rs + (P_lay - P_rs) * Phi((d - d_front) / sigma)**2``: ``d`` the distance along the
propagation direction (nm), ``Phi`` the normal CDF. The fitted ``sigma`` is the transition zone's
width convolved with the known demodulation window (``sigma_window``), which is removed in
quadrature; the reported width is the 10-90 % width of ``s``, ``2.563 * sigma_s`` (nm).

Positions are in specimen coordinates (the first frame's, nm from its top-left corner); directions
are angles of ``(cos a, sin a)`` in ``(x_nm, y_nm)``: 0 deg right, 90 deg down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.fft as sfft
from scipy import optimize, stats
from scipy.special import ndtr

from layerscope.errors import ConvergenceError, InputError
from layerscope.insitu.registration import FourierGrid

__all__ = [
    "LatticePeak",
    "find_layer_peak",
    "demodulate",
    "FrontProfile",
    "front_profile",
    "fit_front",
    "estimate_direction",
    "fit_direction",
    "front_velocity",
    "angle_to_layers_deg",
    "WIDTH_10_90_PER_SIGMA",
]

WIDTH_10_90_PER_SIGMA = 2.0 * 1.2815515655446004


@dataclass(frozen=True)
class LatticePeak:
    """A Bragg peak of the frame's power spectrum.

    Attributes
    ----------
    gy, gx : float
        Spatial frequency in cycles per pixel (rows, cols).
    spacing_nm : float
        Lattice-plane spacing ``1/|g|`` (nm).
    normal_deg : float
        Direction of ``g`` (the plane normal), deg in ``(x, y)``, folded into [0, 180).
    strength : float
        Peak power over the median power at that radius.
    """

    gy: float
    gx: float
    spacing_nm: float
    normal_deg: float
    strength: float


def find_layer_peak(
    spectrum: np.ndarray,
    grid: FourierGrid,
    *,
    pixel_size_nm: float,
    layer_spacing_nm: float | None = None,
    spacing_range_nm: tuple[float, float] = (0.38, 0.60),
) -> LatticePeak:
    """The layer-fringe Bragg peak (the one that rock salt lacks) in one frame's spectrum.

    Parameters
    ----------
    spectrum : ndarray, complex
        ``rfft2`` of the (periodic component of the) frame.
    grid : FourierGrid
    pixel_size_nm : float
    layer_spacing_nm : float, optional
        Expected layer period (nm), e.g. 0.468 for LiCoO2 (003); searched within +-10 %.
        Default: the strongest peak with a spacing in ``spacing_range_nm`` (0.38-0.60 nm covers the
        (003) of LiCoO2, NMC and Li-rich layered oxides).

    Raises
    ------
    InputError
        No lattice peak stands out (not a lattice image, or the fringe is not resolved at this
        pixel size: it needs at least 2.5 pixels per period).
    """
    if layer_spacing_nm is not None:
        lo, hi = 0.9 * layer_spacing_nm, 1.1 * layer_spacing_nm
    else:
        lo, hi = spacing_range_nm
    power = np.abs(spectrum) ** 2
    k = np.sqrt(grid.k2()) / pixel_size_nm  # cycles/nm
    with np.errstate(divide="ignore"):
        spacing = np.where(k > 0, 1.0 / np.maximum(k, 1e-30), np.inf)
    band = (spacing >= lo) & (spacing <= hi) & (k * pixel_size_nm <= 0.4)
    if not band.any():
        raise InputError(
            f"a {lo:.3g}-{hi:.3g} nm lattice period cannot be resolved with {pixel_size_nm:g} nm pixels; "
            f"the front analysis needs lattice images with at least 2.5 pixels per layer period"
        )
    ref = np.median(power[band])
    idx = np.flatnonzero(np.where(band, power, -1.0).ravel() == np.max(np.where(band, power, -1.0)))[0]
    iy, ix = np.unravel_index(idx, power.shape)
    strength = float(power[iy, ix] / max(ref, 1e-30))
    if strength < 20.0:
        raise InputError(
            f"no lattice fringe with a {lo:.3g}-{hi:.3g} nm period stands out in the first frame (peak "
            f"{strength:.1f}x the background); give the layer period with --layer-spacing-nm, or leave out --fronts "
            f"on images without lattice fringes"
        )
    # centroid of the peak (3 x 3) for a sub-bin frequency
    n, m = grid.shape
    ys = (iy + np.arange(-1, 2)) % n
    xs = np.clip(ix + np.arange(-1, 2), 0, power.shape[1] - 1)
    w = power[np.ix_(ys, xs)]
    fy_vals = grid.fy[ys]
    fx_vals = grid.fx[xs]
    gy = float((w.sum(axis=1) * fy_vals).sum() / w.sum())
    gx = float((w.sum(axis=0) * fx_vals).sum() / w.sum())
    g = np.hypot(gy, gx)
    return LatticePeak(gy, gx, pixel_size_nm / g, float(np.rad2deg(np.arctan2(gy, gx)) % 180.0), strength)


def _window_sigma_cycles(sigma_px: float) -> float:
    return 1.0 / (2.0 * np.pi * sigma_px)


def demodulate(
    spectrum: np.ndarray, grid: FourierGrid, peak: LatticePeak, *, sigma_px: float
) -> tuple[np.ndarray, tuple[float, float]]:
    """Local complex amplitude of one lattice fringe (lock-in at ``g`` with a Gaussian window).

    Only the spectral patch around ``g`` is transformed back, so the map comes out on a coarse grid
    (the amplitude varies on the scale of ``sigma_px`` only); this is much cheaper than a full-size
    inverse FFT.

    Parameters
    ----------
    spectrum : ndarray (complex) or FrameSpectrum
        ``rfft2`` of the periodic component of the frame (for lattice fringes), or a
        :class:`~layerscope.insitu.registration.FrameSpectrum`, whose plain spectrum is used (for the
        local mean intensity at zero frequency, which the periodic component distorts).
    grid : FourierGrid
    peak : LatticePeak
    sigma_px : float
        Real-space width (px) of the Gaussian window: the resolution of the amplitude map.

    Returns
    -------
    amplitude : ndarray, complex, (ny, nx)
        Demodulated fringe on a coarse grid; sample ``(i, j)`` is at pixel-index coordinates
        ``(i * step_y, j * step_x)`` of the frame.
    step : (float, float)
        The coarse grid step in frame pixels (rows, cols).
    """
    n, m = grid.shape
    sk = _window_sigma_cycles(sigma_px)
    ky = max(4, int(np.ceil(4.0 * sk * n)))
    kx = max(4, int(np.ceil(4.0 * sk * m)))
    ny, nx = min(n, sfft.next_fast_len(2 * ky)), min(m, sfft.next_fast_len(2 * kx))
    cy, cx = int(round(peak.gy * n)), int(round(peak.gx * m))
    iy = cy + np.arange(-(ny // 2), ny - ny // 2)
    ix = cx + np.arange(-(nx // 2), nx - nx // 2)
    iyy, ixx = np.meshgrid(iy, ix, indexing="ij")
    neg = ixx < 0
    rows = np.where(neg, -iyy, iyy) % n
    cols = np.abs(ixx)
    valid = cols <= m // 2
    patch = np.zeros((ny, nx), np.complex64)
    if hasattr(spectrum, "full"):  # a FrameSpectrum: take the plain (non-periodic) spectrum
        need = np.unique(rows[valid])
        block = spectrum.full(need, int(cols[valid].max()) + 1)
        vals = block[np.searchsorted(need, rows[valid]), cols[valid]]
    else:
        vals = spectrum[rows[valid], cols[valid]]
    vals = np.where(neg[valid], np.conj(vals), vals)
    patch[valid] = vals
    wy = (iy / n - peak.gy)[:, None]
    wx = (ix / m - peak.gx)[None, :]
    patch *= np.exp(-0.5 * (wy**2 + wx**2) / sk**2).astype(np.float32)
    z = sfft.ifft2(sfft.ifftshift(patch), workers=1) * (ny * nx) / (n * m)
    # ifftshift puts the patch centre (index ny//2) at 0, i.e. demodulation at the integer bin (cy, cx)
    return z.astype(np.complex64), (n / ny, m / nx)


@dataclass
class FrontProfile:
    """Mean fringe power in bins along the propagation direction.

    Attributes
    ----------
    d_nm : ndarray
        Bin centres: distance along the direction from the frame's top-left corner (nm, raw frame
        coordinates, before drift correction).
    power : ndarray
        Mean demodulated power per bin.
    count : ndarray
        Samples per bin.
    blur_nm : float
        Real-space sigma of the demodulation window plus the binning (nm), to remove from the fit.
    """

    d_nm: np.ndarray
    power: np.ndarray
    count: np.ndarray
    blur_nm: float


def front_profile(
    power_map: np.ndarray,
    step_px: tuple[float, float],
    *,
    pixel_size_nm: float,
    direction_deg: float,
    exclude: np.ndarray | None = None,
    margin_px: float = 0.0,
    window_sigma_px: float = 0.0,
    bin_nm: float | None = None,
) -> FrontProfile:
    """Bin a (coarse-grid) power map along a direction.

    Parameters
    ----------
    power_map : ndarray (ny, nx)
        Fringe power on the coarse grid of :func:`demodulate`.
    step_px : (float, float)
        Coarse grid step in frame pixels.
    pixel_size_nm : float
    direction_deg : float
        Propagation direction (deg).
    exclude : ndarray of bool (ny, nx), optional
        Samples to leave out (voids, cracks, electrolyte: they lower the fringe without any phase change).
    margin_px : float
        Frame-border band (px) left out (the demodulation wraps around the frame edges).
    window_sigma_px : float
        The demodulation window's real-space sigma (px), recorded for the width correction.
    bin_nm : float, optional
        Bin width (nm); default the coarse grid step.
    """
    ny, nx = power_map.shape
    sy, sx = step_px
    yv = (np.arange(ny) * sy + 0.5) * pixel_size_nm
    xv = (np.arange(nx) * sx + 0.5) * pixel_size_nm
    a = np.deg2rad(direction_deg)
    d = xv[None, :] * np.cos(a) + yv[:, None] * np.sin(a)
    frame_h, frame_w = ny * sy, nx * sx
    rows = np.arange(ny) * sy
    cols = np.arange(nx) * sx
    keep = ((rows[:, None] >= margin_px) & (rows[:, None] <= frame_h - 1 - margin_px)
            & (cols[None, :] >= margin_px) & (cols[None, :] <= frame_w - 1 - margin_px))
    if exclude is not None:
        keep &= ~exclude
    step_nm = float(bin_nm if bin_nm is not None else min(sy, sx) * pixel_size_nm)
    dk, pk = d[keep], power_map[keep].astype(float)
    if dk.size == 0:
        return FrontProfile(np.empty(0), np.empty(0), np.empty(0, int), 0.0)
    lo = np.floor(dk.min() / step_nm) * step_nm
    idx = np.floor((dk - lo) / step_nm).astype(int)
    count = np.bincount(idx)
    sums = np.bincount(idx, weights=pk)
    ok = count > 0
    centres = lo + (np.arange(count.size) + 0.5) * step_nm
    blur = np.sqrt((window_sigma_px * pixel_size_nm) ** 2 + step_nm**2 / 12.0)
    return FrontProfile(centres[ok], sums[ok] / count[ok], count[ok], float(blur))


def _model(d, d0, sigma, lo, hi):
    return lo + (hi - lo) * ndtr((d - d0) / sigma) ** 2


@dataclass(frozen=True)
class FrontFit:
    """A fitted front profile (raw frame coordinates).

    Attributes
    ----------
    position_nm, position_err_nm : float
        Where ``s = 0.5`` (nm along the direction) and its standard error.
    sigma_nm, sigma_err_nm : float
        Fitted total sigma (transition zone and window together).
    width_nm, width_err_nm : float
        10-90 % width of the order parameter after removing the window blur (nm).
    level_layered, level_rocksalt : float
        Fitted power plateaus.
    ok : bool
        The front lies inside the profile (with at least 2 sigma of both plateaus seen).
    """

    position_nm: float
    position_err_nm: float
    sigma_nm: float
    sigma_err_nm: float
    width_nm: float
    width_err_nm: float
    level_layered: float
    level_rocksalt: float
    ok: bool


def fit_front(profile: FrontProfile, *, levels: tuple[float, float] | None = None) -> FrontFit:
    """Fit the front model to a profile (least squares, weights by bin counts).

    Parameters
    ----------
    profile : FrontProfile
    levels : (layered, rocksalt), optional
        Fix the plateaus (e.g. from the whole series) instead of fitting them.

    Raises
    ------
    ConvergenceError
        The fit does not converge.
    """
    d, p, w = profile.d_nm, profile.power, profile.count.astype(float)
    if d.size < 6:
        raise ConvergenceError(f"the front profile has only {d.size} bins; the field of view is too small")
    sigma_w = 1.0 / np.sqrt(w)
    hi0 = np.percentile(p, 95) if levels is None else levels[0]
    lo0 = np.percentile(p, 5) if levels is None else levels[1]
    half = lo0 + 0.25 * (hi0 - lo0)  # s = 0.5 -> power at 1/4 of the step
    # start where the (smoothed) profile crosses the s = 0.5 power level
    order = np.argsort(d)
    above = p[order] > half
    cross = np.flatnonzero(above[1:] != above[:-1])
    d0 = float(d[order][cross[0]] if cross.size else np.median(d))
    s0 = max(4 * profile.blur_nm, 0.5)
    try:
        if levels is None:
            popt, pcov = optimize.curve_fit(_model, d, p, p0=[d0, s0, lo0, hi0], sigma=sigma_w,
                                            bounds=([d.min() - 50, 1e-3, -np.inf, -np.inf], [d.max() + 50, 50.0, np.inf, np.inf]),
                                            maxfev=4000)
        else:
            f = lambda dd, a, b: _model(dd, a, b, levels[1], levels[0])  # noqa: E731
            popt2, pcov2 = optimize.curve_fit(f, d, p, p0=[d0, s0], sigma=sigma_w,
                                              bounds=([d.min() - 50, 1e-3], [d.max() + 50, 50.0]), maxfev=4000)
            popt = np.r_[popt2, levels[1], levels[0]]
            pcov = np.zeros((4, 4))
            pcov[:2, :2] = pcov2
    except (RuntimeError, ValueError) as err:
        raise ConvergenceError(f"the front profile fit did not converge ({err})") from err
    d0, sig, lo, hi = (float(v) for v in popt)
    err = np.sqrt(np.clip(np.diag(pcov), 0, None))
    s_true2 = sig**2 - profile.blur_nm**2
    s_true = float(np.sqrt(max(s_true2, 0.0)))
    width = WIDTH_10_90_PER_SIGMA * s_true
    width_err = WIDTH_10_90_PER_SIGMA * (sig / max(s_true, 1e-6)) * float(err[1])
    ok = bool(hi > lo and d.min() + 2 * sig < d0 < d.max() - 2 * sig and np.all(np.isfinite(err[:2])))
    return FrontFit(d0, float(err[0]), sig, float(err[1]), width, float(width_err), hi, lo, ok)


def estimate_direction(power_maps: list[np.ndarray], step_px: tuple[float, float], *, margin_px: float = 0.0) -> float:
    """Propagation direction (deg) from fringe-power maps: the mean gradient from rock salt to layered.

    The front moves into the pristine (layered, high-power) side, so the direction is that of the
    power gradient averaged over the field (and over the given frames). NaN samples (features,
    electrolyte) are left out.
    """
    gy_tot = gx_tot = 0.0
    for pm in power_maps:
        ny, nx = pm.shape
        sy, sx = step_px
        rows = np.arange(ny) * sy
        cols = np.arange(nx) * sx
        keep = ((rows[:, None] >= margin_px) & (rows[:, None] <= ny * sy - 1 - margin_px)
                & (cols[None, :] >= margin_px) & (cols[None, :] <= nx * sx - 1 - margin_px))
        norm = pm / (np.nanmedian(pm[keep]) + 1e-30)
        gy, gx = np.gradient(norm, sy, sx)
        use = keep & np.isfinite(gy) & np.isfinite(gx)
        gy_tot += float(gy[use].sum())
        gx_tot += float(gx[use].sum())
    if gy_tot == 0 and gx_tot == 0:
        raise InputError("no layered/rock-salt contrast gradient found; give --front-direction-deg")
    return float(np.rad2deg(np.arctan2(gy_tot, gx_tot)) % 360.0)


def fit_direction(
    power_map: np.ndarray,
    step_px: tuple[float, float],
    *,
    pixel_size_nm: float,
    initial_deg: float,
    margin_px: float,
    window_sigma_px: float,
    exclude: np.ndarray | None = None,
) -> tuple[float, float]:
    """Front direction from one frame by a 2-D least-squares fit of the straight-front model.

    ``P(x, y) = lo + (hi - lo) * Phi((x cos a + y sin a - d0) / sigma)**2`` is fitted to every kept
    sample of the coarse power map (no binning), starting from ``initial_deg`` and the 1-D fit
    along it.

    Returns
    -------
    direction_deg, direction_err_deg : float
        Best direction and its standard error (deg); NaN error when the fit is degenerate.
    """
    ny, nx = power_map.shape
    sy, sx = step_px
    yv = (np.arange(ny) * sy + 0.5) * pixel_size_nm
    xv = (np.arange(nx) * sx + 0.5) * pixel_size_nm
    rows = np.arange(ny) * sy
    cols = np.arange(nx) * sx
    keep = ((rows[:, None] >= margin_px) & (rows[:, None] <= ny * sy - 1 - margin_px)
            & (cols[None, :] >= margin_px) & (cols[None, :] <= nx * sx - 1 - margin_px))
    if exclude is not None:
        keep &= ~exclude
    yy, xx = np.meshgrid(yv, xv, indexing="ij")
    x, y, p = xx[keep], yy[keep], power_map[keep].astype(float)
    prof = front_profile(power_map, step_px, pixel_size_nm=pixel_size_nm, direction_deg=initial_deg, exclude=exclude,
                         margin_px=margin_px, window_sigma_px=window_sigma_px)
    start = fit_front(prof)
    if start.level_layered < start.level_rocksalt:  # the start points into the rock salt: turn round
        initial_deg = initial_deg + 180.0
        prof = front_profile(power_map, step_px, pixel_size_nm=pixel_size_nm, direction_deg=initial_deg,
                             exclude=exclude, margin_px=margin_px, window_sigma_px=window_sigma_px)
        start = fit_front(prof)
    a0 = np.deg2rad(initial_deg)

    def resid(q):
        a, d0, sig, lo, hi = q
        return _model(x * np.cos(a) + y * np.sin(a), d0, sig, lo, hi) - p

    q0 = [a0, start.position_nm, max(start.sigma_nm, 0.05), start.level_rocksalt, start.level_layered]
    res = optimize.least_squares(resid, q0, bounds=([a0 - 0.8, -np.inf, 1e-3, -np.inf, -np.inf],
                                                    [a0 + 0.8, np.inf, 50.0, np.inf, np.inf]))
    if not res.success:
        raise ConvergenceError(f"the 2-D front fit did not converge ({res.message})")
    dof = max(1, p.size - 5)
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * (2 * res.cost / dof)
        err = float(np.rad2deg(np.sqrt(max(cov[0, 0], 0.0))))
    except np.linalg.LinAlgError:
        err = float("nan")
    return float(np.rad2deg(res.x[0]) % 360.0), err


def angle_to_layers_deg(direction_deg: float, layer_normal_deg: float) -> float:
    """Angle between the propagation direction and the layer normal, folded into [0, 90] deg.

    0 deg: the front advances across the layers (perpendicular to the planes); 90 deg: along them.
    """
    diff = np.deg2rad(direction_deg - layer_normal_deg)
    return float(np.rad2deg(np.arccos(min(1.0, abs(np.cos(diff))))))


def front_velocity(times_s: np.ndarray, position_nm: np.ndarray, position_err_nm: np.ndarray | None = None) -> dict:
    """Front velocity by least squares on position vs time.

    Parameters
    ----------
    times_s, position_nm : ndarray
        Frames where the front was found.
    position_err_nm : ndarray, optional
        Per-frame standard errors; used as weights when given.

    Returns
    -------
    dict
        ``velocity_nm_per_s`` and ``velocity_err_nm_per_s`` (standard error: the larger of the
        scatter-based OLS error and the error propagated from the per-frame errors), ``intercept_nm``,
        ``r2``, ``n_frames``.
    """
    t = np.asarray(times_s, float)
    x = np.asarray(position_nm, float)
    ok = np.isfinite(t) & np.isfinite(x)
    t, x = t[ok], x[ok]
    if t.size < 2:
        raise InputError("the front was found in fewer than 2 frames; no velocity can be measured")
    if t.size == 2:
        v = (x[1] - x[0]) / (t[1] - t[0])
        return {"velocity_nm_per_s": float(v), "velocity_err_nm_per_s": float("nan"), "intercept_nm": float(x[0] - v * t[0]),
                "r2": float("nan"), "n_frames": 2}
    res = stats.linregress(t, x)
    err = float(res.stderr)
    if position_err_nm is not None:
        e = np.asarray(position_err_nm, float)[ok]
        if np.all(np.isfinite(e)) and np.all(e > 0):
            w = 1.0 / e**2
            tw = np.sum(w * t) / np.sum(w)
            err = max(err, float(np.sqrt(1.0 / np.sum(w * (t - tw) ** 2))))
    return {"velocity_nm_per_s": float(res.slope), "velocity_err_nm_per_s": err, "intercept_nm": float(res.intercept),
            "r2": float(res.rvalue**2), "n_frames": int(t.size)}


def summarise_fronts(table: pd.DataFrame) -> dict:
    """Velocity, width and stop of a per-frame front table (``time_s, position_nm, ...``)."""
    good = table[table["front_ok"]]
    out: dict = {"n_frames_with_front": int(len(good))}
    if len(good) >= 2:
        out.update(front_velocity(good["time_s"].to_numpy(), good["position_nm"].to_numpy(),
                                  good["position_err_nm"].to_numpy()))
    if len(good):
        out["width_nm"] = float(np.median(good["width_nm"]))
        out["width_err_nm"] = float(np.std(good["width_nm"], ddof=1) / np.sqrt(len(good))) if len(good) > 1 else float("nan")
        out["travel_nm"] = float(good["position_nm"].max() - good["position_nm"].min())
    return out
