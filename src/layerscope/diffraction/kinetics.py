"""Thermal kinetics of oxygen release: peak temperature, Kissinger and Ozawa activation energies.

* Temperature of maximum O2 release: the maximum of the (baseline-subtracted) MS ion current or
  the TGA mass-loss rate, located on a Savitzky-Golay-smoothed copy and refined by a least-squares
  cubic through the top of the raw curve (a cubic follows the skew of a release peak, where a
  parabola is pulled towards the slow side).
* Kissinger (Anal. Chem. 29 (1957) 1702): ``ln(beta / Tp^2) = ln(A R / Ea) - Ea / (R Tp)``; exact for
  a first-order reaction at the rate maximum.
* Ozawa / Flynn-Wall-Ozawa at the peak (Ozawa, Bull. Chem. Soc. Jpn. 38 (1965) 1881) with Doyle's
  approximation ``ln p(x) ~ -5.331 - 1.052 x``: ``ln beta = const - 1.052 Ea / (R Tp)``. The
  approximation is good for ``Ea / (R T)`` between 20 and 60; outside, Ozawa is biased by a few %.

Temperatures in K, heating rates in K/min, activation energies in kJ/mol (and eV per event).
The fit uncertainties are the standard errors of the straight-line slopes (``scipy.stats.linregress``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.signal import savgol_filter

from layerscope.errors import InputError

__all__ = [
    "GAS_CONSTANT_J_MOL_K",
    "KJ_PER_MOL_PER_EV",
    "ThermalCurve",
    "read_thermal_curve",
    "peak_temperature",
    "ActivationEnergy",
    "kissinger",
    "ozawa",
]

GAS_CONSTANT_J_MOL_K = 8.314462618
#: 1 eV per event in kJ/mol (Faraday constant / 1000).
KJ_PER_MOL_PER_EV = 96.48533212


@dataclass
class ThermalCurve:
    """One heating run: temperature (K), a release signal, and the heating rate (K/min)."""

    temperature_K: np.ndarray
    signal: np.ndarray
    heating_rate_K_min: float
    source: Path | None = None
    signal_name: str = "signal"
    heating_rate_from: str = ""


def read_thermal_curve(path: str | Path, *, signal_column: str, heating_rate_K_min: float | None = None) -> ThermalCurve:
    """Read a TGA-MS / MS CSV with named columns.

    Required: ``temperature_C`` or ``temperature_K``, and the column named by ``signal_column``
    (an O2 ion current, m/z 32, or a mass-loss rate). The heating rate is the slope of a straight
    line through temperature against ``time_s`` when the file has that column; otherwise it must be
    given as ``heating_rate_K_min`` (never assumed). Giving both checks them against each other
    (within 5 %).
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, comment="#")
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc}).") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    cols = list(raw.columns)
    if "temperature_K" in cols:
        t_k = raw["temperature_K"].to_numpy(float)
    elif "temperature_C" in cols:
        t_k = raw["temperature_C"].to_numpy(float) + 273.15
    else:
        raise InputError(f"{path}: no temperature column (need 'temperature_C' or 'temperature_K'; found {cols}).")
    if signal_column not in cols:
        raise InputError(f"{path}: no column {signal_column!r} (found {cols}); pass --signal with one of them.")
    sig = raw[signal_column].to_numpy(float)
    rate, origin = heating_rate_K_min, "given"
    if "time_s" in cols:
        fit = stats.linregress(raw["time_s"].to_numpy(float), t_k)
        measured = fit.slope * 60.0
        if measured <= 0:
            raise InputError(f"{path}: temperature does not rise with time_s (slope {measured:.3g} K/min).")
        if heating_rate_K_min is not None and abs(measured - heating_rate_K_min) > 0.05 * heating_rate_K_min:
            raise InputError(f"{path}: the given heating rate {heating_rate_K_min} K/min disagrees with the "
                             f"{measured:.3f} K/min measured from time_s and temperature; check which is right.")
        rate, origin = float(measured), "fitted to temperature vs time_s"
    if rate is None:
        raise InputError(f"{path}: no time_s column to measure the heating rate from; give --heating-rates "
                         "2,5,10,20 (K/min, one per file).")
    return ThermalCurve(t_k, sig, float(rate), path, signal_column, origin)


def peak_temperature(
    temperature_K: np.ndarray,
    signal: np.ndarray,
    *,
    window_K: float = 10.0,
    baseline: bool = True,
    top_fraction: float = 0.2,
    min_snr: float = 5.0,
) -> dict[str, float]:
    """Temperature of the maximum of a release curve.

    Parameters
    ----------
    temperature_K, signal : ndarray
        The heating run (temperature must increase).
    window_K : float
        Savitzky-Golay smoothing window, K (quadratic).
    baseline : bool
        Subtract the straight line through the first and last 5 % of the run.
    top_fraction : float
        The cubic is fitted through the contiguous part of the smoothed peak within this
        fraction of its height below the maximum.
    min_snr : float
        The peak must exceed this many standard deviations of the high-frequency noise.

    Returns
    -------
    dict
        ``peak_K``, ``peak_C``, ``peak_err_K`` (delta method on the cubic fit), ``height``.
    """
    t = np.asarray(temperature_K, float)
    y = np.asarray(signal, float)
    if t.shape != y.shape or t.size < 20:
        raise InputError(f"peak_temperature: need matching 1-D arrays of >= 20 points (got {t.shape}, {y.shape}).")
    if np.any(np.diff(t) <= 0):
        raise InputError("peak_temperature: temperature must increase strictly (a heating run); cut the cooling part.")
    if baseline:
        k = max(2, t.size // 20)
        fit = np.polyfit(np.r_[t[:k], t[-k:]], np.r_[y[:k], y[-k:]], 1)
        y = y - np.polyval(fit, t)
    step = float(np.median(np.diff(t)))
    w = int(round(window_K / step)) | 1
    ys = savgol_filter(y, max(5, w), 2, mode="interp") if w >= 5 else y
    noise = float(np.std(np.diff(y)) / np.sqrt(2.0))
    i = int(np.argmax(ys))
    height = float(ys[i])
    if height <= min_snr * max(noise, 1e-300):
        raise InputError(f"peak_temperature: no release peak stands out of the noise (max {height:.3g}, noise "
                         f"{noise:.3g}); check the signal column.")
    if i == 0 or i == t.size - 1:
        raise InputError("peak_temperature: the maximum is at the end of the run; the peak is not complete.")
    level = height * (1.0 - top_fraction)
    lo, hi = i, i
    while lo > 0 and ys[lo - 1] >= level:
        lo -= 1
    while hi < t.size - 1 and ys[hi + 1] >= level:
        hi += 1
    lo, hi = min(lo, i - 2), max(hi, i + 2)
    lo, hi = max(lo, 0), min(hi, t.size - 1)
    x = t[lo:hi + 1] - t[i]
    if x.size < 6:
        return {"peak_K": float(t[i]), "peak_C": float(t[i] - 273.15), "peak_err_K": float(step), "height": height}
    # a cubic through the top: release peaks are skewed (a first-order peak falls faster than it
    # rises), and a parabola through an asymmetric top is biased towards the slow side
    coef, cov = np.polyfit(x, y[lo:hi + 1], 3, cov=True)

    def top(cf: np.ndarray) -> float:
        roots = np.roots(np.polyder(cf))
        roots = roots[np.isreal(roots)].real
        roots = roots[(roots >= x[0]) & (roots <= x[-1]) & (np.polyval(np.polyder(cf, 2), roots) < 0)]
        return float(roots[np.argmin(np.abs(roots))]) if roots.size else np.nan

    x0 = top(coef)
    if not np.isfinite(x0):
        return {"peak_K": float(t[i]), "peak_C": float(t[i] - 273.15), "peak_err_K": float(step), "height": height}
    # delta-method uncertainty with a numerical gradient of the maximum's position
    grad = np.zeros(4)
    for k in range(4):
        h = 1e-6 * max(abs(coef[k]), 1e-12)
        cp = coef.copy()
        cp[k] += h
        xk = top(cp)
        grad[k] = (xk - x0) / h if np.isfinite(xk) else 0.0
    err = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    tp = float(t[i] + x0)
    return {"peak_K": tp, "peak_C": tp - 273.15, "peak_err_K": err, "height": float(np.polyval(coef, x0))}


@dataclass
class ActivationEnergy:
    """A straight-line activation-energy fit.

    Attributes
    ----------
    method : str
    ea_kJ_mol, ea_err_kJ_mol : float
        Activation energy and the standard error of the fit, kJ/mol.
    ea_eV, ea_err_eV : float
        The same per event, eV.
    intercept, r2 : float
    ln_prefactor_per_s : float
        ln A (A in 1/s) for Kissinger, NaN for Ozawa.
    n_rates : int
    table : pandas.DataFrame
        The points: heating rate, peak temperature, and the plotted x and y.
    """

    method: str
    ea_kJ_mol: float
    ea_err_kJ_mol: float
    ea_eV: float
    ea_err_eV: float
    intercept: float
    r2: float
    ln_prefactor_per_s: float
    n_rates: int
    table: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """JSON-safe key numbers."""
        return {k: getattr(self, k) for k in ("method", "ea_kJ_mol", "ea_err_kJ_mol", "ea_eV", "ea_err_eV", "r2",
                                             "ln_prefactor_per_s", "n_rates")}


def _check(rates: Sequence[float], peaks: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(rates, float)
    tp = np.asarray(peaks, float)
    if b.shape != tp.shape or b.ndim != 1:
        raise InputError(f"activation energy: {b.size} heating rates but {tp.size} peak temperatures.")
    if b.size < 3:
        raise InputError(f"activation energy: {b.size} heating rates; at least 3 are needed for a slope with an "
                         "uncertainty (4-5 spanning a factor of 10 is usual).")
    if np.any(b <= 0) or np.any(tp <= 0):
        raise InputError("activation energy: heating rates (K/min) and peak temperatures (K) must be positive.")
    if np.unique(np.round(b, 9)).size < b.size:
        raise InputError("activation energy: repeated heating rates; give distinct rates.")
    return b, tp


def kissinger(heating_rates_K_min: Sequence[float], peak_temperatures_K: Sequence[float]) -> ActivationEnergy:
    """Kissinger activation energy from the peak temperatures at several heating rates.

    Parameters
    ----------
    heating_rates_K_min : sequence of float
        Heating rates beta, K/min.
    peak_temperatures_K : sequence of float
        Temperature of maximum rate at each rate, K.

    Returns
    -------
    ActivationEnergy
    """
    b, tp = _check(heating_rates_K_min, peak_temperatures_K)
    x = 1.0 / tp
    y = np.log(b / 60.0 / tp**2)  # beta in K/s so that A comes out in 1/s
    fit = stats.linregress(x, y)
    ea = -fit.slope * GAS_CONSTANT_J_MOL_K / 1000.0
    err = fit.stderr * GAS_CONSTANT_J_MOL_K / 1000.0
    ln_a = fit.intercept + np.log(ea * 1000.0 / GAS_CONSTANT_J_MOL_K)
    table = pd.DataFrame({"heating_rate_K_min": b, "peak_K": tp, "inv_T_per_K": x, "ln_beta_over_T2": y})
    return ActivationEnergy("Kissinger", float(ea), float(err), float(ea / KJ_PER_MOL_PER_EV),
                            float(err / KJ_PER_MOL_PER_EV), float(fit.intercept), float(fit.rvalue**2), float(ln_a),
                            int(b.size), table)


def ozawa(heating_rates_K_min: Sequence[float], peak_temperatures_K: Sequence[float]) -> ActivationEnergy:
    """Ozawa (Flynn-Wall-Ozawa at the peak, Doyle's approximation) activation energy.

    Same parameters and return as :func:`kissinger` (``ln_prefactor_per_s`` is NaN).
    """
    b, tp = _check(heating_rates_K_min, peak_temperatures_K)
    x = 1.0 / tp
    y = np.log(b)
    fit = stats.linregress(x, y)
    ea = -fit.slope * GAS_CONSTANT_J_MOL_K / 1.052 / 1000.0
    err = fit.stderr * GAS_CONSTANT_J_MOL_K / 1.052 / 1000.0
    table = pd.DataFrame({"heating_rate_K_min": b, "peak_K": tp, "inv_T_per_K": x, "ln_beta": y})
    return ActivationEnergy("Ozawa", float(ea), float(err), float(ea / KJ_PER_MOL_PER_EV), float(err / KJ_PER_MOL_PER_EV),
                            float(fit.intercept), float(fit.rvalue**2), float("nan"), int(b.size), table)
