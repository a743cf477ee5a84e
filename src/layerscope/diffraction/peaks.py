"""Background, K-alpha2 stripping and pseudo-Voigt peak fits with uncertainties.

* Background: SNIP (statistics-sensitive non-linear iterative peak clipping; Ryan et al., Nucl.
  Instrum. Methods B 34 (1988) 396; Morhac et al., Nucl. Instrum. Methods A 401 (1997) 113) on
  the log-log-sqrt transformed intensity, with a clipping half-width in degrees.
* K-alpha2 stripping: Rachinger's method (J. Sci. Instrum. 25 (1948) 254): walking up in angle,
  ``I1(2t) = I(2t) - R * I1(2t')``, where ``2t'`` is the K-alpha1 angle whose K-alpha2 line falls at
  ``2t``.
* Peaks: pseudo-Voigt ``A [eta L + (1 - eta) G]`` with area-normalised Lorentzian and Gaussian of
  one FWHM (Wertheim et al., Rev. Sci. Instrum. 45 (1974) 1369), as K-alpha1/K-alpha2 doublets with
  the K-alpha2 line at the angle the wavelength ratio puts it and ``R`` times the area, on a
  linear background; least squares (``scipy.optimize.curve_fit``) with Poisson weights, 1-sigma
  uncertainties from the covariance scaled by the reduced chi-square.

A fitted peak is ``significant`` only if its height stands ``min_snr`` counting-noise standard
deviations (``sqrt`` of the fitted background) above the background, its area exceeds
``min_significance`` times its own uncertainty, its centre stays inside the allowed range and its
FWHM is pinned to neither bound: anything else is returned with ``significant = False`` and must
not be used as a measured peak. A window whose reduced chi-square stays above ``shoulder_chi2``
gets one extra free component at its largest residual (an overlapping reflection of another phase
or a shoulder), kept only if it lowers the reduced chi-square by a third; the named reflections
keep the components that started at their own positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import curve_fit

from layerscope.diffraction.readers import Pattern
from layerscope.errors import ConvergenceError, InputError

__all__ = [
    "snip_background",
    "strip_kalpha2",
    "kalpha2_position",
    "pseudo_voigt",
    "PeakFit",
    "fit_peaks",
    "fit_peak",
]


def snip_background(two_theta_deg: np.ndarray, intensity: np.ndarray, *, half_width_deg: float = 1.5,
                    lls: bool = True) -> np.ndarray:
    """SNIP background of a pattern.

    Parameters
    ----------
    two_theta_deg, intensity : ndarray
    half_width_deg : float
        Largest clipping half-width, degrees: a little wider than the widest peak's FWHM.
    lls : bool
        Clip in log-log-sqrt space (keeps weak peaks on a strong background).

    Returns
    -------
    ndarray
        Background, same unit as ``intensity``.
    """
    x = np.asarray(two_theta_deg, float)
    y = np.clip(np.asarray(intensity, float), 0.0, None)
    step = float(np.median(np.diff(x)))
    m = int(max(1, round(half_width_deg / step)))
    if m * 2 >= y.size:
        raise InputError(f"snip_background: half_width_deg {half_width_deg} is wider than the pattern.")
    v = np.log(np.log(np.sqrt(y + 1.0) + 1.0) + 1.0) if lls else y.copy()
    for p in range(1, m + 1):
        mean = 0.5 * (v[:-2 * p] + v[2 * p:])
        v[p:-p] = np.minimum(v[p:-p], mean)
    if lls:
        v = (np.exp(np.exp(v) - 1.0) - 1.0) ** 2 - 1.0
    return v


def kalpha2_position(two_theta1_deg: np.ndarray | float, *, kalpha1_A: float, kalpha2_A: float) -> np.ndarray:
    """2-theta of the K-alpha2 line of a reflection seen at ``two_theta1_deg`` with K-alpha1 (Bragg's law)."""
    s = np.sin(np.radians(np.asarray(two_theta1_deg, float)) / 2.0) * (kalpha2_A / kalpha1_A)
    return 2.0 * np.degrees(np.arcsin(np.clip(s, -1.0, 1.0)))


def strip_kalpha2(pattern: Pattern, *, intensity: np.ndarray | None = None) -> np.ndarray:
    """K-alpha1-only intensity by Rachinger's method.

    Parameters
    ----------
    pattern : Pattern
        Gives the angles, wavelengths and the K-alpha2/K-alpha1 ratio.
    intensity : ndarray, optional
        Intensity to strip (e.g. background-subtracted); default ``pattern.intensity``.

    Returns
    -------
    ndarray
    """
    if pattern.kalpha2_A is None or pattern.kalpha2_ratio <= 0:
        raise InputError("strip_kalpha2: the pattern has no K-alpha2 line (monochromatic); nothing to strip.")
    x = pattern.two_theta_deg
    y = np.asarray(pattern.intensity if intensity is None else intensity, float)
    ratio = pattern.kalpha2_ratio
    # the K-alpha1 angle whose K-alpha2 falls at x
    s = np.sin(np.radians(x) / 2.0) * (pattern.wavelength_A / pattern.kalpha2_A)
    x1 = 2.0 * np.degrees(np.arcsin(np.clip(s, -1.0, 1.0)))
    j = np.searchsorted(x, x1) - 1  # x[j] <= x1 < x[j+1]
    out = y.copy()
    for i in range(x.size):
        k = j[i]
        if k < 0:
            continue  # the source angle lies before the first point: nothing known to strip
        if k + 1 >= i:
            src = out[i - 1] if i > 0 else 0.0
        else:
            f = (x1[i] - x[k]) / (x[k + 1] - x[k])
            src = out[k] * (1.0 - f) + out[k + 1] * f
        out[i] = y[i] - ratio * src
    return out


def pseudo_voigt(x: np.ndarray, center: float, area: float, fwhm: float, eta: float) -> np.ndarray:
    """Area-normalised pseudo-Voigt times ``area``: ``area * [eta L + (1 - eta) G]`` (same FWHM)."""
    hw = fwhm / 2.0
    dx = x - center
    lor = hw / (np.pi * (dx * dx + hw * hw))
    sig = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    gau = np.exp(-0.5 * (dx / sig) ** 2) / (sig * np.sqrt(2.0 * np.pi))
    return area * (eta * lor + (1.0 - eta) * gau)


@dataclass
class PeakFit:
    """One fitted reflection (K-alpha1 component for a doublet fit).

    Attributes
    ----------
    center_deg, center_err_deg : float
        K-alpha1 2-theta and its 1-sigma uncertainty, degrees.
    area, area_err : float
        Integrated intensity of the K-alpha1 component (counts x degrees).
    fwhm_deg, fwhm_err_deg : float
        Full width at half maximum, degrees.
    eta, eta_err : float
        Lorentzian fraction.
    height : float
        Peak height of the K-alpha1 component above the background (counts).
    significant : bool
        See the module docstring; ``reason`` says why not.
    reduced_chi2 : float
        Of the window fit (Poisson weights).
    window_deg : (float, float)
    """

    center_deg: float
    center_err_deg: float
    area: float
    area_err: float
    fwhm_deg: float
    fwhm_err_deg: float
    eta: float
    eta_err: float
    height: float
    significant: bool
    reduced_chi2: float
    window_deg: tuple[float, float]
    reason: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain dictionary (for tables)."""
        return {k: getattr(self, k) for k in ("center_deg", "center_err_deg", "area", "area_err", "fwhm_deg",
                                             "fwhm_err_deg", "eta", "eta_err", "height", "significant",
                                             "reduced_chi2", "reason")}


def fit_peaks(
    pattern: Pattern,
    centers_deg: list[float] | np.ndarray,
    *,
    window_deg: tuple[float, float] | None = None,
    half_window_deg: float = 0.6,
    intensity: np.ndarray | None = None,
    doublet: bool | None = None,
    fwhm_bounds_deg: tuple[float, float] = (0.01, 1.5),
    max_shift_deg: float = 0.3,
    min_significance: float = 2.0,
    min_snr: float = 5.0,
    shoulder_chi2: float | None = None,
) -> list[PeakFit]:
    """Fit one or several (overlapping) reflections in one window.

    Parameters
    ----------
    pattern : Pattern
    centers_deg : sequence of float
        Starting K-alpha1 2-theta of each reflection, degrees.
    window_deg : (float, float), optional
        Fit window; default from the first centre - ``half_window_deg`` to the last +
        ``half_window_deg``.
    intensity : ndarray, optional
        Intensity to fit (default the pattern's raw counts; a linear background is fitted in the
        window in any case).
    doublet : bool, optional
        Fit K-alpha1 + K-alpha2 doublets; default: when the pattern has a K-alpha2 line.
    fwhm_bounds_deg : (float, float)
        Bounds of the FWHM, degrees.
    max_shift_deg : float
        How far each centre may move from its start, degrees.
    min_significance : float
        Area / area uncertainty needed for ``significant``.
    min_snr : float
        Height / sqrt(background) needed for ``significant``.
    shoulder_chi2 : float or None
        Reduced chi-square above which one extra component is tried (None, the default: never; a
        strong peak with an asymmetric profile also has a large chi-square, and splitting it
        would move part of its area into the extra component).

    Returns
    -------
    list of PeakFit
        In the order of ``centers_deg``.

    Raises
    ------
    ConvergenceError
        If the least-squares fit fails.
    """
    c0 = np.atleast_1d(np.asarray(centers_deg, float))
    if c0.size == 0:
        raise InputError("fit_peaks: no starting centre given.")
    x_all = pattern.two_theta_deg
    y_all = np.asarray(pattern.intensity if intensity is None else intensity, float)
    lo, hi = window_deg if window_deg is not None else (c0.min() - half_window_deg, c0.max() + half_window_deg)
    sel = (x_all >= lo) & (x_all <= hi)
    if sel.sum() < 5 + 4 * c0.size:
        raise InputError(f"fit_peaks: window {lo:.2f}-{hi:.2f} deg holds {int(sel.sum())} points of the pattern "
                         f"({x_all[0]:.2f}-{x_all[-1]:.2f} deg); too few for {c0.size} peak(s).")
    x, y = x_all[sel], y_all[sel]
    use_doublet = (pattern.kalpha2_A is not None and pattern.kalpha2_ratio > 0) if doublet is None else doublet
    if use_doublet and pattern.kalpha2_A is None:
        raise InputError("fit_peaks: doublet=True but the pattern has no K-alpha2 wavelength.")
    xc = 0.5 * (lo + hi)
    sigma = np.sqrt(np.clip(y, 1.0, None))
    popt, perr, redchi, lower, upper, n_extra = _fit_window(
        x, y, sigma, c0, xc=xc, pattern=pattern, use_doublet=use_doublet, fwhm_bounds_deg=fwhm_bounds_deg,
        max_shift_deg=max_shift_deg, extra=())
    if shoulder_chi2 is not None and redchi > shoulder_chi2:
        resid = y - _model(c0.size, xc, pattern, use_doublet)(x, *popt)
        smooth = np.convolve(resid, np.ones(5) / 5.0, mode="same")
        guess = float(x[int(np.argmax(smooth))])
        try:
            trial = _fit_window(x, y, sigma, c0, xc=xc, pattern=pattern, use_doublet=use_doublet,
                                fwhm_bounds_deg=fwhm_bounds_deg, max_shift_deg=max_shift_deg, extra=(guess,))
            if trial[2] < redchi * (2.0 / 3.0):
                popt, perr, redchi, lower, upper, n_extra = _keep_identity(trial, c0)
        except ConvergenceError:
            pass  # keep the fit without the extra component
    fits = []
    for k in range(c0.size):
        c, a, w, e = popt[2 + 4 * k:6 + 4 * k]
        ce, ae, we, ee = perr[2 + 4 * k:6 + 4 * k]
        height = float(pseudo_voigt(np.array([c]), c, a, w, e)[0])
        background = float(popt[0] + popt[1] * (c - xc))
        reasons = []
        if height < min_snr * np.sqrt(max(background, 1.0)):
            reasons.append(f"height {height:.3g} below {min_snr:g} x the noise sqrt(background) "
                           f"{np.sqrt(max(background, 1.0)):.3g}")
        if not np.isfinite(ae) or a <= min_significance * ae:
            reasons.append(f"area {a:.3g} not above {min_significance:g} x its uncertainty {ae:.3g}")
        if abs(c - lower[2 + 4 * k]) < 1e-6 or abs(c - upper[2 + 4 * k]) < 1e-6 or not (lo < c < hi):
            reasons.append("centre ran to the end of its allowed range")
        if w <= fwhm_bounds_deg[0] * 1.001 or w >= fwhm_bounds_deg[1] * 0.999:
            reasons.append("FWHM pinned at a bound")
        extra_info = {"background": (float(popt[0]), float(popt[1])), "doublet": use_doublet,
                      "extra_components": n_extra}
        if n_extra:
            extra_info["extra_centers_deg"] = [float(popt[2 + 4 * j]) for j in range(c0.size, c0.size + n_extra)]
        fits.append(PeakFit(float(c), float(ce), float(a), float(ae), float(w), float(we), float(e), float(ee),
                            height, not reasons, redchi, (float(lo), float(hi)), "; ".join(reasons), extra_info))
    return fits


def _keep_identity(fit, c0):
    """After adding a component, give each named reflection the component nearest its start position."""
    popt, perr, redchi, lower, upper, n_extra = fit
    popt, perr = popt.copy(), perr.copy()
    n = c0.size
    for k in range(n):
        for j in range(n, n + n_extra):
            ck, cj = popt[2 + 4 * k], popt[2 + 4 * j]
            if abs(cj - c0[k]) < abs(ck - c0[k]):
                for arr in (popt, perr):
                    a, b = arr[2 + 4 * k:6 + 4 * k].copy(), arr[2 + 4 * j:6 + 4 * j].copy()
                    arr[2 + 4 * k:6 + 4 * k], arr[2 + 4 * j:6 + 4 * j] = b, a
    return popt, perr, redchi, lower, upper, n_extra


def _model(n: int, xc: float, pattern: Pattern, use_doublet: bool):
    ratio = pattern.kalpha2_ratio if use_doublet else 0.0

    def model(xx, *p):
        out = p[0] + p[1] * (xx - xc)
        for k in range(n):
            c, a, w, e = p[2 + 4 * k:6 + 4 * k]
            out = out + pseudo_voigt(xx, c, a, w, e)
            if use_doublet:
                c2 = kalpha2_position(c, kalpha1_A=pattern.wavelength_A, kalpha2_A=pattern.kalpha2_A)
                out = out + pseudo_voigt(xx, c2, ratio * a, w, e)
        return out

    return model


def _fit_window(x, y, sigma, c0, *, xc, pattern, use_doublet, fwhm_bounds_deg, max_shift_deg, extra):
    """Least-squares fit of len(c0) + len(extra) pseudo-Voigt (doublets) on a linear background."""
    ratio = pattern.kalpha2_ratio if use_doublet else 0.0
    n = c0.size + len(extra)
    edge = max(3, x.size // 20)
    b0 = float(np.median(np.r_[y[:edge], y[-edge:]]))
    b1 = float((np.median(y[-edge:]) - np.median(y[:edge])) / (x[-1] - x[0]))
    step = float(np.median(np.diff(x)))
    p0, lower, upper = [b0, b1], [-np.inf, -np.inf], [np.inf, np.inf]
    for k, c in enumerate(list(c0) + list(extra)):
        near = np.abs(x - c) <= max(3 * step, 0.05)
        peak = float(np.max(y[near]) - b0) if near.any() else float(np.max(y) - b0)
        w0 = float(np.clip(0.1, *fwhm_bounds_deg))
        area0 = max(peak, 1.0) * w0 * 1.064 / (1.0 + ratio)
        shift = max_shift_deg if k < c0.size else float(x[-1] - x[0])
        p0 += [float(c), area0, w0, 0.5]
        lower += [max(float(c) - shift, float(x[0])) if k >= c0.size else float(c) - shift, 0.0, fwhm_bounds_deg[0], 0.0]
        upper += [min(float(c) + shift, float(x[-1])) if k >= c0.size else float(c) + shift, np.inf, fwhm_bounds_deg[1], 1.0]
    model = _model(n, xc, pattern, use_doublet)
    try:
        popt, pcov = curve_fit(model, x, y, p0=p0, bounds=(lower, upper), sigma=sigma, absolute_sigma=True,
                               max_nfev=4000)
    except (RuntimeError, ValueError) as exc:
        raise ConvergenceError(f"fit_peaks: pseudo-Voigt fit near {np.round(c0, 3).tolist()} deg did not converge "
                               f"({exc}).") from exc
    resid = (y - model(x, *popt)) / sigma
    dof = max(1, x.size - len(popt))
    redchi = float(np.sum(resid**2) / dof)
    perr = np.sqrt(np.clip(np.diag(pcov), 0.0, None) * max(redchi, 1.0))
    return popt, perr, redchi, lower, upper, len(extra)


def fit_peak(pattern: Pattern, center_deg: float, **options) -> PeakFit:
    """Fit one reflection; see :func:`fit_peaks` for the options."""
    return fit_peaks(pattern, [center_deg], **options)[0]
