"""Layered oxides (R-3m, alpha-NaFeO2 type) and rock-salt phases from a powder pattern.

What is measured, and from which reflections (hexagonal setting; reflection condition
``-h + k + l = 3n``):

* ``I(003)/I(104)``: ratio of integrated K-alpha1 intensities, the usual indicator of Li/TM
  cation mixing (values below ~1.2 signal mixing; Ohzuku et al., J. Electrochem. Soc. 140 (1993)
  1862). Preferred orientation of the platelets raises it as well: read it with the texture of the
  sample in mind. A randomly oriented LiCoO2 powder gives 1.44-1.48 (integrated Cu K-alpha1
  intensities computed with pymatgen's ``XRDCalculator`` from COD 1550397 and 4505482), NMC and
  LiNiO2 powders 1.2-2 in the literature; a ratio above :data:`I003_I104_TEXTURE_LIMIT` (3, twice
  the random-powder value) cannot come from cation order and is flagged ``preferred_orientation``
  (platelets lying flat on the holder raise the basal (00l) reflections).
* Fit quality: a reflection whose window fit has a reduced chi-square above
  :data:`POOR_FIT_REDUCED_CHI2` (10: the model misses the counts by about three counting-noise
  standard deviations at every point) is flagged ``poor_fit`` (an asymmetric low-angle profile, a
  shoulder or an overlapping phase); its uncertainties are already scaled by the chi-square.
* ``c`` from ``d(003)`` (``c = 3 d``), ``a`` from ``d(110)`` (``a = 2 d``), and both refined by least
  squares on every indexed reflection, ``1/d^2 = 4 (h^2 + hk + k^2) / (3 a^2) + l^2 / c^2``, with an
  optional specimen-displacement term ``d2theta = -2 s cos(theta) / R`` (Klug & Alexander, *X-ray
  diffraction procedures*, 2nd ed., 1974, ch. 5).
* the (006)/(012) and (018)/(110) splittings and ``c/a`` (> 4.90 for a layered rather than cubic
  close-packed cation order). The literature often writes (108) for the reflection indexed here as
  (018), which is the one R-3m allows.
* Williamson-Hall (Acta Metall. 1 (1953) 22): ``beta cos(theta) = K lambda / D + 4 eps sin(theta)``
  with ``beta`` the instrument-corrected FWHM in radians; crystallite size ``D`` and microstrain
  ``eps`` with the straight-line fit's uncertainties. Without an instrumental FWHM the result is
  flagged *uncorrected* (D is then a lower bound and eps an upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import least_squares
from scipy.signal import find_peaks

from layerscope.diffraction.peaks import PeakFit, fit_peaks, snip_background, strip_kalpha2
from layerscope.diffraction.readers import Pattern
from layerscope.errors import InputError

__all__ = [
    "NotLayeredError",
    "I003_I104_TEXTURE_LIMIT",
    "POOR_FIT_REDUCED_CHI2",
    "LAYERED_REFERENCES",
    "ROCK_SALT_REFERENCES",
    "DEFAULT_LAYERED_REFLECTIONS",
    "hexagonal_d",
    "cubic_d",
    "two_theta_deg",
    "d_spacing",
    "find_candidate_peaks",
    "fit_reflections",
    "refine_lattice",
    "williamson_hall",
    "LayeredResult",
    "analyse_layered",
    "analyse_rock_salt",
    "track_reflection",
]

#: I(003)/I(104) above which preferred orientation is flagged (random LiCoO2 powder: 1.44-1.48).
I003_I104_TEXTURE_LIMIT = 3.0
#: Reduced chi-square of a reflection's window fit above which the fit is flagged as poor.
POOR_FIT_REDUCED_CHI2 = 10.0


class NotLayeredError(InputError):
    """The pattern shows no layered-oxide (003)/(104) reflection: xrd refuses to label it."""


def flag(code: str, message: str) -> dict[str, str]:
    """A plausibility flag: a short ``code`` and a one-sentence ``message``."""
    return {"code": code, "message": message}


#: Hexagonal a, c (Angstrom) of common layered cathodes (ICSD/literature room-temperature values).
LAYERED_REFERENCES: dict[str, tuple[float, float]] = {
    "LiCoO2": (2.8156, 14.0542),   # Akimoto et al., J. Solid State Chem. 141 (1998) 298
    "LiNiO2": (2.8782, 14.1902),   # Dutta et al., J. Solid State Chem. 96 (1992) 123
    "NMC811": (2.8720, 14.2000),   # Noh et al., J. Power Sources 233 (2013) 121
    "NMC622": (2.8680, 14.2250),   # Noh et al. (2013)
    "NMC111": (2.8600, 14.2300),   # Noh et al. (2013)
}
#: Cubic Fm-3m lattice parameters (Angstrom).
ROCK_SALT_REFERENCES: dict[str, float] = {
    "NiO": 4.1769,   # ICDD 47-1049
    "CoO": 4.2612,   # ICDD 48-1719
    "MnO": 4.4448,   # ICDD 07-0230
}
#: Reflections analysed by default, (h, k, l) in the hexagonal setting of R-3m.
DEFAULT_LAYERED_REFLECTIONS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 3), (1, 0, 1), (0, 0, 6), (0, 1, 2), (1, 0, 4), (0, 1, 5), (1, 0, 7), (0, 1, 8), (1, 1, 0), (1, 1, 3),
)
_ROCK_SALT_REFLECTIONS = ((1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2))


def _name(hkl: Sequence[int]) -> str:
    return "(" + "".join(str(int(i)) for i in hkl) + ")"


def hexagonal_d(hkl: Sequence[int], a_A: float, c_A: float) -> float:
    """d-spacing (Angstrom) of ``hkl`` in a hexagonal cell."""
    h, k, l = hkl
    return float(1.0 / np.sqrt(4.0 * (h * h + h * k + k * k) / (3.0 * a_A**2) + l * l / c_A**2))


def cubic_d(hkl: Sequence[int], a_A: float) -> float:
    """d-spacing (Angstrom) of ``hkl`` in a cubic cell."""
    return float(a_A / np.sqrt(sum(i * i for i in hkl)))


def two_theta_deg(d_A: float | np.ndarray, wavelength_A: float) -> np.ndarray:
    """Bragg angle 2-theta (degrees) of a d-spacing; NaN where the reflection is out of reach."""
    s = wavelength_A / (2.0 * np.asarray(d_A, float))
    with np.errstate(invalid="ignore"):
        return 2.0 * np.degrees(np.where(np.abs(s) <= 1, np.arcsin(np.clip(s, -1, 1)), np.nan))


def d_spacing(two_theta: float | np.ndarray, wavelength_A: float) -> np.ndarray:
    """d-spacing (Angstrom) from 2-theta (degrees)."""
    return wavelength_A / (2.0 * np.sin(np.radians(np.asarray(two_theta, float)) / 2.0))


def find_candidate_peaks(pattern: Pattern, *, background_half_width_deg: float = 1.5,
                         min_snr: float = 5.0) -> pd.DataFrame:
    """Peak positions in the background-subtracted, K-alpha2-stripped pattern.

    A candidate must stand ``min_snr`` standard deviations of counting noise above the
    background (prominence). Returns ``two_theta_deg``, ``height`` and ``prominence``.
    """
    bg = snip_background(pattern.two_theta_deg, pattern.intensity, half_width_deg=background_half_width_deg)
    net = pattern.intensity - bg
    if pattern.kalpha2_A is not None and pattern.kalpha2_ratio > 0:
        net = strip_kalpha2(pattern, intensity=net)
    noise = np.sqrt(np.clip(bg, 1.0, None))
    step = pattern.step_deg
    smooth = np.convolve(net, np.ones(3) / 3.0, mode="same")
    idx, props = find_peaks(smooth, prominence=min_snr * noise, distance=max(1, int(0.05 / step)))
    return pd.DataFrame({"two_theta_deg": pattern.two_theta_deg[idx], "height": smooth[idx],
                         "prominence": props["prominences"]})


def fit_reflections(
    pattern: Pattern,
    predicted: dict[str, float],
    *,
    group_within_deg: float = 0.9,
    half_window_deg: float = 0.5,
    max_shift_deg: float = 0.2,
    min_significance: float = 2.0,
    min_snr: float = 5.0,
    shoulder_chi2: float | None = None,
) -> pd.DataFrame:
    """Fit named reflections at predicted positions; reflections closer than ``group_within_deg`` share a window.

    Returns
    -------
    pandas.DataFrame
        One row per reflection: ``reflection``, ``predicted_deg`` and the :class:`PeakFit` fields.
    """
    items = sorted(((n, p) for n, p in predicted.items() if np.isfinite(p)), key=lambda t: t[1])
    lo_x, hi_x = pattern.two_theta_deg[0], pattern.two_theta_deg[-1]
    items = [(n, p) for n, p in items if lo_x + half_window_deg <= p <= hi_x - half_window_deg]
    groups: list[list[tuple[str, float]]] = []
    for item in items:
        if groups and item[1] - groups[-1][-1][1] < group_within_deg:
            groups[-1].append(item)
        else:
            groups.append([item])
    rows = []
    for grp in groups:
        centers = [p for _, p in grp]
        fits: list[PeakFit] = fit_peaks(pattern, centers, half_window_deg=half_window_deg, max_shift_deg=max_shift_deg,
                                        min_significance=min_significance, min_snr=min_snr,
                                        shoulder_chi2=shoulder_chi2)
        for (n, p), f in zip(grp, fits):
            rows.append({"reflection": n, "predicted_deg": p, **f.to_dict()})
    for n, p in predicted.items():
        if n not in {r["reflection"] for r in rows}:
            rows.append({"reflection": n, "predicted_deg": p, "significant": False,
                         "reason": "outside the measured 2-theta range"})
    return pd.DataFrame(rows)


def refine_lattice(
    reflections: dict[str, tuple[Sequence[int], float, float]],
    *,
    wavelength_A: float,
    system: str = "hexagonal",
    start: Sequence[float],
    displacement: bool = False,
    goniometer_radius_mm: float | None = None,
) -> dict[str, Any]:
    """Least-squares lattice parameters from indexed peak positions.

    Parameters
    ----------
    reflections : dict name -> (hkl, two_theta_deg, sigma_deg)
    wavelength_A : float
    system : {"hexagonal", "cubic"}
    start : sequence of float
        (a, c) or (a,), Angstrom.
    displacement : bool
        Fit a specimen-displacement shift ``D cos(theta)`` (degrees) as well.
    goniometer_radius_mm : float, optional
        Converts ``D`` into a displacement in micrometres.

    Returns
    -------
    dict
        ``a_A``, ``a_err_A`` (and ``c_A``, ``c_err_A``, ``c_over_a``), ``displacement_deg`` (shift at
        theta = 0), ``displacement_um``, ``n_reflections``, ``rms_residual_deg``.
    """
    names = list(reflections)
    hkl = np.array([reflections[n][0] for n in names], float)
    obs = np.array([reflections[n][1] for n in names], float)
    sig = np.array([max(reflections[n][2], 1e-4) for n in names], float)
    n_par = (2 if system == "hexagonal" else 1) + (1 if displacement else 0)
    if obs.size < n_par + 1:
        raise InputError(f"refine_lattice: {obs.size} indexed reflections for {n_par} parameters; need at least "
                         f"{n_par + 1} (switch the displacement term off or index more reflections).")

    def model(p):
        if system == "hexagonal":
            a, c = p[0], p[1]
            inv_d2 = 4.0 * (hkl[:, 0] ** 2 + hkl[:, 0] * hkl[:, 1] + hkl[:, 1] ** 2) / (3 * a * a) + hkl[:, 2] ** 2 / (c * c)
        else:
            inv_d2 = (hkl**2).sum(axis=1) / p[0] ** 2
        tt = two_theta_deg(1.0 / np.sqrt(inv_d2), wavelength_A)
        if displacement:
            tt = tt + p[-1] * np.cos(np.radians(tt / 2.0))
        return tt

    p0 = list(start) + ([0.0] if displacement else [])
    res = least_squares(lambda p: (model(p) - obs) / sig, p0, x_scale="jac")
    dof = max(1, obs.size - len(p0))
    chi2 = float(np.sum(res.fun**2) / dof)
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * max(chi2, 1.0)
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        err = np.full(len(p0), np.nan)
    out: dict[str, Any] = {"a_A": float(res.x[0]), "a_err_A": float(err[0]), "n_reflections": int(obs.size),
                           "rms_residual_deg": float(np.sqrt(np.mean((model(res.x) - obs) ** 2)))}
    if system == "hexagonal":
        out.update(c_A=float(res.x[1]), c_err_A=float(err[1]), c_over_a=float(res.x[1] / res.x[0]))
    if displacement:
        out["displacement_deg"] = float(res.x[-1])
        out["displacement_err_deg"] = float(err[-1])
        if goniometer_radius_mm:
            # d2theta = -2 s cos(theta) / R  ->  s = -D R / 2 (D in rad)
            out["displacement_um"] = float(-np.radians(res.x[-1]) * goniometer_radius_mm / 2.0 * 1000.0)
    return out


def williamson_hall(
    two_theta_deg_: np.ndarray,
    fwhm_deg: np.ndarray,
    *,
    wavelength_A: float,
    instrument_fwhm_deg: float | np.ndarray | None,
    scherrer_k: float = 0.9,
    correction: str = "quadratic",
    fwhm_err_deg: np.ndarray | None = None,
) -> dict[str, Any]:
    """Crystallite size and microstrain from peak widths (Williamson & Hall 1953).

    Parameters
    ----------
    two_theta_deg_ : ndarray
        Peak positions, degrees.
    fwhm_deg : ndarray
        Measured FWHM, degrees.
    wavelength_A : float
    instrument_fwhm_deg : float, ndarray or None
        Instrumental FWHM (from a line-profile standard such as LaB6) at each peak or one value;
        None: no correction, flagged ``instrument_corrected = False``.
    scherrer_k : float
        Scherrer shape factor.
    correction : {"quadratic", "linear"}
        Subtract the instrumental width in quadrature (Gaussian profiles) or linearly (Lorentzian).
    fwhm_err_deg : ndarray, optional
        Weights of the straight-line fit.

    Returns
    -------
    dict
        ``size_nm``, ``size_err_nm``, ``microstrain`` (dimensionless), ``microstrain_err``,
        ``intercept``, ``slope``, ``r2``, ``n_peaks``, ``instrument_corrected``, ``flag``.
    """
    tt = np.asarray(two_theta_deg_, float)
    w = np.asarray(fwhm_deg, float)
    if tt.size < 3:
        raise InputError(f"williamson_hall: {tt.size} peaks; the straight-line fit needs at least 3.")
    corrected = instrument_fwhm_deg is not None
    if corrected:
        wi = np.broadcast_to(np.asarray(instrument_fwhm_deg, float), w.shape)
        if np.any(wi >= w):
            raise InputError("williamson_hall: the instrumental FWHM is not smaller than every measured FWHM; "
                             "check the instrument standard (the sample peaks cannot be narrower).")
        beta = np.sqrt(w**2 - wi**2) if correction == "quadratic" else w - wi
    else:
        beta = w
    theta = np.radians(tt / 2.0)
    y = np.radians(beta) * np.cos(theta)
    x = 4.0 * np.sin(theta)
    if fwhm_err_deg is not None and np.all(np.asarray(fwhm_err_deg) > 0):
        wts = 1.0 / (np.radians(np.asarray(fwhm_err_deg, float)) * np.cos(theta)) ** 2
        coef, cov = np.polyfit(x, y, 1, w=np.sqrt(wts), cov="unscaled" if tt.size <= 3 else True)
        slope, intercept = coef
        slope_err, intercept_err = np.sqrt(np.diag(cov))
        pred = slope * x + intercept
        r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    else:
        fit = stats.linregress(x, y)
        slope, intercept, slope_err, intercept_err, r2 = fit.slope, fit.intercept, fit.stderr, fit.intercept_stderr, fit.rvalue**2
    flags = []
    if not corrected:
        flags.append("instrumental broadening not removed: size is a lower bound, strain an upper bound")
    if intercept <= 0:
        flags.append("intercept <= 0: size not determined (strain-dominated broadening)")
        size = size_err = np.nan
    else:
        size = scherrer_k * wavelength_A / intercept / 10.0
        size_err = size * intercept_err / intercept
    if slope < 0:
        flags.append("negative slope: no measurable microstrain (anisotropic broadening?)")
    return {"size_nm": float(size), "size_err_nm": float(size_err), "microstrain": float(slope),
            "microstrain_err": float(slope_err), "intercept": float(intercept), "slope": float(slope),
            "r2": float(r2), "n_peaks": int(tt.size), "instrument_corrected": corrected, "flag": "; ".join(flags)}


@dataclass
class LayeredResult:
    """Everything :func:`analyse_layered` measured.

    Attributes
    ----------
    reflections : pandas.DataFrame
        One row per reflection (predicted and fitted position, d, area, FWHM, significance).
    i003_i104, i003_i104_err : float
        Integrated-intensity ratio and its 1-sigma uncertainty (NaN when a peak is missing).
    height_ratio_003_104 : float
    lattice : dict
        Refined ``a_A``, ``c_A`` (see :func:`refine_lattice`) and ``c_from_003_A``,
        ``a_from_110_A`` with uncertainties.
    splittings_deg : dict
        ``(012)-(006)`` and ``(110)-(018)`` separations, degrees.
    williamson_hall : dict or None
    flags : list of dict
        Plausibility flags, each ``{"code": ..., "message": ...}`` (see :func:`plausibility_flags`).
    """

    reflections: pd.DataFrame
    i003_i104: float
    i003_i104_err: float
    height_ratio_003_104: float
    lattice: dict[str, Any]
    splittings_deg: dict[str, float]
    williamson_hall: dict[str, Any] | None
    flags: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Key numbers as a JSON-safe dict."""
        return {"I003_I104": self.i003_i104, "I003_I104_err": self.i003_i104_err,
                "height_ratio_003_104": self.height_ratio_003_104, "lattice": self.lattice,
                "splittings_deg": self.splittings_deg, "williamson_hall": self.williamson_hall,
                "flags": self.flags}


def _start_lattice(pattern: Pattern, reference: str | tuple[float, float] | None,
                   background_half_width_deg: float) -> tuple[float, float, list[str]]:
    """(a, c) to predict the reflections from: a named reference, a pair, or found from (003) and (104)."""
    lam = pattern.wavelength_A
    if isinstance(reference, str):
        if reference not in LAYERED_REFERENCES:
            raise InputError(f"--reference {reference!r} unknown; give one of {', '.join(sorted(LAYERED_REFERENCES))}.")
        return (*LAYERED_REFERENCES[reference], [])
    if reference is not None:
        a, c = reference
        return float(a), float(c), []
    cand = find_candidate_peaks(pattern, background_half_width_deg=background_half_width_deg)
    d = d_spacing(cand["two_theta_deg"].to_numpy(), lam)
    # (003): d between 4.55 and 4.85 A (c = 13.65-14.55 A covers LiCoO2 to Li-rich and NMC);
    # (104): d between 1.97 and 2.07 A
    in003 = cand[(d > 4.55) & (d < 4.85)]
    in104 = cand[(d > 1.97) & (d < 2.07)]
    if in003.empty:
        raise NotLayeredError(
            f"{pattern.source or 'pattern'}: no layered-oxide (003) peak with d = 4.55-4.85 A "
            f"(2-theta {float(two_theta_deg(4.85, lam)):.1f}-{float(two_theta_deg(4.55, lam)):.1f} deg at this "
            "wavelength) stands out of the background: not a layered oxide, so no I003/I104 or lattice is "
            "reported; for a rock-salt phase alone give --rock-salt NiO, to fit layered positions anyway give "
            "--reference LiCoO2."
        )
    t003 = float(in003.loc[in003["prominence"].idxmax(), "two_theta_deg"])
    c = 3.0 * float(d_spacing(t003, lam))
    flags = []
    if in104.empty:
        flags.append(flag("no_104_candidate", "no (104) candidate peak; the starting a is the NMC811 reference"))
        a = LAYERED_REFERENCES["NMC811"][0]
    else:
        t104 = float(in104.loc[in104["prominence"].idxmax(), "two_theta_deg"])
        inv = 1.0 / float(d_spacing(t104, lam)) ** 2 - 16.0 / c**2
        a = float(np.sqrt(4.0 / (3.0 * inv))) if inv > 0 else LAYERED_REFERENCES["NMC811"][0]
    return a, c, flags


def analyse_layered(
    pattern: Pattern,
    *,
    reference: str | tuple[float, float] | None = None,
    reflections: Sequence[Sequence[int]] = DEFAULT_LAYERED_REFLECTIONS,
    instrument_fwhm_deg: float | None = None,
    scherrer_k: float = 0.9,
    displacement: bool = True,
    background_half_width_deg: float = 1.5,
    min_significance: float = 2.0,
    min_snr: float = 5.0,
    max_shift_deg: float = 0.2,
) -> LayeredResult:
    """I(003)/I(104), lattice parameters, splittings and Williamson-Hall of a layered oxide.

    Parameters
    ----------
    pattern : Pattern
    reference : str or (a, c), optional
        Starting lattice: a name of :data:`LAYERED_REFERENCES`, an (a, c) pair in Angstrom, or
        None to locate (003) and (104) in the pattern itself.
    reflections : sequence of hkl
        Reflections to fit (hexagonal setting).
    instrument_fwhm_deg : float, optional
        Instrumental FWHM for Williamson-Hall (see :func:`williamson_hall`).
    scherrer_k : float
    displacement : bool
        Refine a specimen-displacement term with the lattice (when enough reflections).
    background_half_width_deg : float
        SNIP half-width for the candidate-peak search.
    min_significance : float
        Area / uncertainty needed for a reflection to count as present.
    min_snr : float
        Height / sqrt(background) needed for a reflection to count as present.
    max_shift_deg : float
        How far a fitted position may move from the predicted one.

    Returns
    -------
    LayeredResult

    Raises
    ------
    InputError
        When neither (003) nor (104) is present: the pattern is not a layered oxide.
    """
    lam = pattern.wavelength_A
    a0, c0, flags = _start_lattice(pattern, reference, background_half_width_deg)
    hkls = {_name(h): tuple(int(i) for i in h) for h in reflections}
    predicted = {n: float(two_theta_deg(hexagonal_d(h, a0, c0), lam)) for n, h in hkls.items()}
    table = fit_reflections(pattern, predicted, max_shift_deg=max_shift_deg, min_significance=min_significance,
                            min_snr=min_snr)
    table["hkl"] = table["reflection"].map(hkls)
    table["d_A"] = d_spacing(table["center_deg"].to_numpy(dtype=float), lam)
    table = table.set_index("reflection").loc[list(hkls)].reset_index()
    sig = table[table["significant"] == True]  # noqa: E712 - column holds bools and NaN
    present = set(sig["reflection"])
    if "(003)" not in present and "(104)" not in present:
        raise NotLayeredError(
            f"{pattern.source or 'pattern'}: neither (003) nor (104) of a layered oxide was found near "
            f"{predicted['(003)']:.2f} / {predicted['(104)']:.2f} deg: not a layered oxide; for a rock-salt "
            "phase alone give --rock-salt NiO."
        )
    for n in ("(003)", "(104)", "(110)"):
        if n not in present:
            flags.append(flag("missing_reflection", f"{n} not found"))
    row = table.set_index("reflection")
    if {"(003)", "(104)"} <= present:
        a3, a4 = row.loc["(003)", "area"], row.loc["(104)", "area"]
        e3, e4 = row.loc["(003)", "area_err"], row.loc["(104)", "area_err"]
        ratio = a3 / a4
        ratio_err = ratio * np.hypot(e3 / a3, e4 / a4)
        hratio = row.loc["(003)", "height"] / row.loc["(104)", "height"]
    else:
        ratio = ratio_err = hratio = np.nan
    lattice: dict[str, Any] = {}
    if "(003)" in present:
        t, te = row.loc["(003)", "center_deg"], row.loc["(003)", "center_err_deg"]
        c3 = 3.0 * float(d_spacing(t, lam))
        # dc/d(2theta) = -c cot(theta) / 2 per radian of 2-theta
        lattice["c_from_003_A"] = c3
        lattice["c_from_003_err_A"] = abs(c3 / np.tan(np.radians(t / 2)) / 2 * np.radians(te))
    if "(110)" in present:
        t, te = row.loc["(110)", "center_deg"], row.loc["(110)", "center_err_deg"]
        a1 = 2.0 * float(d_spacing(t, lam))
        lattice["a_from_110_A"] = a1
        lattice["a_from_110_err_A"] = abs(a1 / np.tan(np.radians(t / 2)) / 2 * np.radians(te))
    indexed = {n: (hkls[n], float(row.loc[n, "center_deg"]), float(row.loc[n, "center_err_deg"])) for n in present}
    has_a = any(h[0] or h[1] for h, _, _ in indexed.values())
    has_c = any(h[2] for h, _, _ in indexed.values())
    if has_a and has_c and len(indexed) >= 3:
        use_disp = displacement and len(indexed) >= 4
        lattice.update(refine_lattice(indexed, wavelength_A=lam, system="hexagonal", start=(a0, c0),
                                      displacement=use_disp,
                                      goniometer_radius_mm=pattern.metadata.get("goniometer_radius_mm")))
        lattice["displacement_refined"] = use_disp
    else:
        flags.append(flag("few_reflections", "too few indexed reflections to refine a and c together"))
    split = {}
    if {"(006)", "(012)"} <= present:
        split["(012)-(006)"] = float(row.loc["(012)", "center_deg"] - row.loc["(006)", "center_deg"])
    if {"(018)", "(110)"} <= present:
        split["(110)-(018)"] = float(row.loc["(110)", "center_deg"] - row.loc["(018)", "center_deg"])
    wh = None
    if len(sig) >= 3:
        wh = williamson_hall(sig["center_deg"].to_numpy(float), sig["fwhm_deg"].to_numpy(float), wavelength_A=lam,
                             instrument_fwhm_deg=instrument_fwhm_deg, scherrer_k=scherrer_k)
    else:
        flags.append(flag("no_williamson_hall", "fewer than 3 reflections: no Williamson-Hall analysis"))
    flags += plausibility_flags(table, float(ratio), float(ratio_err))
    return LayeredResult(table, float(ratio), float(ratio_err), float(hratio), lattice, split, wh, flags)


def plausibility_flags(table: pd.DataFrame, i003_i104: float, i003_i104_err: float) -> list[dict[str, str]]:
    """Flags for numbers that are computable but suspicious (see the module docstring).

    Parameters
    ----------
    table : DataFrame
        The reflections (``reflection``, ``significant``, ``reduced_chi2``).
    i003_i104, i003_i104_err : float

    Returns
    -------
    list of dict
        ``preferred_orientation`` when I(003)/I(104) exceeds :data:`I003_I104_TEXTURE_LIMIT` by
        more than its uncertainty; ``poor_fit`` naming every significant reflection whose window
        fit has a reduced chi-square above :data:`POOR_FIT_REDUCED_CHI2`.
    """
    out = []
    lower = i003_i104 - (i003_i104_err if np.isfinite(i003_i104_err) else 0.0)
    if np.isfinite(i003_i104) and lower > I003_I104_TEXTURE_LIMIT:
        out.append(flag("preferred_orientation",
                        f"I003/I104 = {i003_i104:.3g} is above {I003_I104_TEXTURE_LIMIT:g} (a random LiCoO2 powder "
                        "gives ~1.5): the platelets are oriented, so the ratio says nothing about Li/TM mixing"))
    sig = table[(table["significant"] == True) & (table["reduced_chi2"] > POOR_FIT_REDUCED_CHI2)]  # noqa: E712
    if not sig.empty:
        worst = ", ".join(f"{r.reflection} {r.reduced_chi2:.0f}" for r in sig.itertuples())
        out.append(flag("poor_fit", f"reduced chi-square above {POOR_FIT_REDUCED_CHI2:g} ({worst}): the pseudo-Voigt "
                                    "doublet misses the profile (asymmetry, a shoulder or an overlapping phase); "
                                    "uncertainties are scaled up by it"))
    return out


def analyse_rock_salt(
    pattern: Pattern,
    *,
    phase: str | float = "NiO",
    tolerance_deg: float = 0.5,
    displacement: bool = True,
    min_significance: float = 2.0,
    min_snr: float = 5.0,
    background_half_width_deg: float = 1.5,
    shoulder_chi2: float | None = 4.0,
) -> dict[str, Any]:
    """Identify a rock-salt (Fm-3m) phase: match its reflections to peaks and refine ``a``.

    Each reflection is matched to the strongest candidate peak (see :func:`find_candidate_peaks`)
    within ``tolerance_deg`` of its reference position, fitted, and ``a`` is refined (with a
    displacement term when at least three reflections are found). Rock-salt reflections in
    cathode mixtures often sit on a shoulder of another phase, so a window whose reduced
    chi-square exceeds ``shoulder_chi2`` gets one extra free component (see
    :func:`~layerscope.diffraction.peaks.fit_peaks`).

    Returns
    -------
    dict
        ``phase``, ``reference_a_A``, ``reflections`` (DataFrame with an ``identified`` column: a
        candidate peak within tolerance whose fitted centre stays within 0.1 deg of it with an
        uncertainty below 0.05 deg), ``identified`` (the (200) and at least one more reflection),
        ``a_A``, ``a_err_A``, ``displacement_deg`` ...
    """
    if isinstance(phase, str) and phase not in ROCK_SALT_REFERENCES:
        raise InputError(f"--rock-salt {phase!r} unknown; give one of {', '.join(sorted(ROCK_SALT_REFERENCES))}.")
    a_ref = ROCK_SALT_REFERENCES[phase] if isinstance(phase, str) else float(phase)
    lam = pattern.wavelength_A
    cand = find_candidate_peaks(pattern, background_half_width_deg=background_half_width_deg)
    predicted = {}
    for h in _ROCK_SALT_REFLECTIONS:
        ref = float(two_theta_deg(cubic_d(h, a_ref), lam))
        near = cand[np.abs(cand["two_theta_deg"] - ref) <= tolerance_deg]
        if not near.empty:
            predicted[_name(h)] = float(near.loc[near["prominence"].idxmax(), "two_theta_deg"])
    if not predicted:
        raise InputError(f"{pattern.source or 'pattern'}: no peak within {tolerance_deg} deg of any {phase} "
                         "rock-salt reflection; the phase is not present (or the wavelength is wrong).")
    table = fit_reflections(pattern, predicted, max_shift_deg=0.1, min_significance=min_significance,
                            min_snr=min_snr, shoulder_chi2=shoulder_chi2)
    names = {_name(h): h for h in _ROCK_SALT_REFLECTIONS}
    table["hkl"] = table["reflection"].map(names)
    table["reference_deg"] = [float(two_theta_deg(cubic_d(names[n], a_ref), lam)) for n in table["reflection"]]
    # a reflection is identified by its position: a candidate peak stands out of the noise and the
    # fit keeps its centre there with a small uncertainty. Whether its area is well determined
    # (``significant``) matters for quantification, not for identification: broad rock-salt peaks
    # on the shoulder of another phase have ill-determined areas but well-determined positions.
    cand_pos = table["reflection"].map(predicted)
    table["identified"] = ((table["center_deg"] - cand_pos).abs() <= 0.1) & (table["center_err_deg"] < 0.05)
    ident = table[table["identified"]]
    out: dict[str, Any] = {"phase": phase, "reference_a_A": a_ref, "reflections": table,
                           "identified": bool("(200)" in set(ident["reflection"]) and len(ident) >= 2)}
    if len(ident) >= 2:
        indexed = {r.reflection: (names[r.reflection], r.center_deg, r.center_err_deg) for r in ident.itertuples()}
        use_disp = displacement and len(indexed) >= 3
        out.update(refine_lattice(indexed, wavelength_A=lam, system="cubic", start=(a_ref,), displacement=use_disp,
                                  goniometer_radius_mm=pattern.metadata.get("goniometer_radius_mm")))
        out["displacement_refined"] = use_disp
    return out


def track_reflection(
    patterns: Sequence[Pattern],
    *,
    center_deg: float,
    labels: Sequence[float],
    label_name: str = "time_s",
    half_window_deg: float = 0.6,
    max_shift_deg: float = 0.5,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Follow one reflection through an in situ series (time, temperature or voltage).

    Parameters
    ----------
    patterns : sequence of Pattern
    center_deg : float
        Starting position, degrees; each pattern starts from the previous pattern's fit, so a peak
        that moves steadily is followed beyond ``max_shift_deg`` over the series.
    labels : sequence of float
        The series coordinate of each pattern (``label_name`` names it: ``time_s``,
        ``temperature_C``, ``voltage_V`` ...).
    scheduler : str, optional
        Accepted for CLI symmetry; the fits run in sequence because each starts from the last.

    Returns
    -------
    pandas.DataFrame
        ``label_name``, ``center_deg``, ``center_err_deg``, ``d_A``, ``fwhm_deg``, ``area``,
        ``significant``.
    """
    if len(patterns) != len(labels):
        raise InputError(f"track_reflection: {len(patterns)} patterns but {len(labels)} labels.")
    rows, c = [], float(center_deg)
    for pat, lab in zip(patterns, labels):
        f = fit_peaks(pat, [c], half_window_deg=half_window_deg, max_shift_deg=max_shift_deg)[0]
        rows.append({label_name: lab, **f.to_dict(), "d_A": float(d_spacing(f.center_deg, pat.wavelength_A))})
        if f.significant:
            c = f.center_deg
    return pd.DataFrame(rows)
