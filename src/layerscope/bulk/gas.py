"""Gas evolution from DEMS or TGA-MS: onsets, calibrated rates and integrated amounts per gram of active material.

* Input: a CSV with ``time_s`` and/or ``voltage_V`` / ``temperature_C`` / ``temperature_K`` and ion
  currents named by their mass-to-charge ratio (``mz32``, ``m/z 32``, ``m32_A``, ``ion_current_32_A``);
  ion currents in A.
* Baseline: the median of the first ``baseline_fraction`` of the run (before any release) is
  subtracted (``linear``: a straight line through the first and last parts instead).
* Onset (extrapolated, as in thermal analysis): where a straight line fitted to the leading edge
  of the largest peak (between 20 and 80 % of its height) meets the baseline; its uncertainty from
  the line's covariance. The threshold onset is the first point after
  which the smoothed signal stays above ``max(threshold_sigma * noise, 2 % of the peak)`` for
  ``min_run`` points.
* Rates: ``n_dot (mol/s) = factor (mol/s per A) * I (A)`` with the factor given per m/z (from a
  calibration gas or an electrochemical O2/H2 calibration); integrated amounts over time (trapezoid),
  in umol per g of active material with the mass given explicitly (never assumed).

The thermal kinetics of O2 release (Kissinger, Ozawa) over several heating rates is
:func:`layerscope.diffraction.workflow.run_kinetics`; :func:`analyse_gas` calls it when asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid
from scipy.signal import savgol_filter

from layerscope.bulk._common import flag, short_list
from layerscope.errors import InputError

if TYPE_CHECKING:
    from layerscope.bulk.gas_outputs import GasResult

__all__ = ["GasOptions", "GasRun", "read_gas", "onset", "channel_metrics", "analyse_gas", "MZ_NAMES"]

#: Usual assignments of the m/z channels followed in cathode DEMS/TGA-MS.
MZ_NAMES = {2: "H2", 18: "H2O", 28: "CO/N2", 32: "O2", 34: "18O16O", 36: "18O2", 44: "CO2", 46: "C18O16O", 64: "SO2"}
_X_COLUMNS = {"voltage": ("voltage_V", "V"), "temperature": ("temperature_C", "°C"), "time": ("time_s", "s")}


@dataclass(frozen=True)
class GasOptions:
    """Settings of the gas-evolution analysis.

    Attributes
    ----------
    x_axis : str or None
        ``voltage``, ``temperature`` or ``time`` for onsets and peaks (default: voltage, else temperature, else time).
    calibration : tuple of (int, float)
        (m/z, factor in mol/s per A) pairs.
    active_mass_mg : float or None
        Active mass, mg (required for calibrated amounts).
    baseline : str
        ``start`` (median of the first part) or ``linear`` (line through first and last parts).
    baseline_fraction : float
        Fraction of the run used for the baseline at each end.
    threshold_sigma : float
        Threshold onset: multiples of the baseline noise.
    min_run : int
        Points the signal must stay above the threshold.
    onset_channel : int
        m/z whose onset is reported first (32, O2).
    kinetics : bool
        Also run Kissinger/Ozawa over the files (one heating rate each).
    """

    x_axis: str | None = None
    calibration: tuple[tuple[int, float], ...] = ()
    active_mass_mg: float | None = None
    baseline: str = "start"
    baseline_fraction: float = 0.05
    threshold_sigma: float = 5.0
    min_run: int = 5
    onset_channel: int = 32
    kinetics: bool = False


@dataclass
class GasRun:
    """One measurement: the columns of the file and its ion currents by m/z."""

    columns: dict[str, np.ndarray]
    channels: dict[int, np.ndarray]
    source: Path | None = None
    name: str = "run"


def _mz(name: str) -> int | None:
    key = name.strip().lower().replace(" ", "")
    m = re.fullmatch(r"(?:m/?z|mz|m|mass|ion_?current_?|i_?)[_=:]?(\d{1,3})(?:[_(\[]?a[)\]]?|_amps?)?", key)
    return int(m.group(1)) if m else None


def read_gas(path: str | Path) -> GasRun:
    """Read a DEMS / TGA-MS CSV (see the module notes for the column names)."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".txt", ".dat", ".tsv", ""):
        raise InputError(f"{path}: a {path.suffix} file is not a gas-evolution export; give a CSV with time_s and/or "
                         "voltage_V / temperature_C and ion currents named by m/z (mz32, mz44).")
    try:
        raw = pd.read_csv(path, comment="#")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file.") from exc
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable CSV ({type(exc).__name__}); export the ion currents as CSV.") from exc
    cols = {str(c).strip(): c for c in raw.columns}
    channels = {}
    for name, c in cols.items():
        mz = _mz(name)
        if mz is not None:
            channels[mz] = pd.to_numeric(raw[c], errors="coerce").to_numpy(float)
    if not channels:
        raise InputError(f"{path}: no ion-current column (found {short_list(cols)}); name them by m/z, e.g. mz32 "
                         "and mz44.")
    axes = {}
    for key in ("time_s", "voltage_V", "temperature_C", "temperature_K"):
        if key in cols:
            axes[key] = pd.to_numeric(raw[cols[key]], errors="coerce").to_numpy(float)
    if "temperature_K" in axes and "temperature_C" not in axes:
        axes["temperature_C"] = axes["temperature_K"] - 273.15
    if not axes:
        raise InputError(f"{path}: no time_s, voltage_V or temperature_C column (found {short_list(cols)}); the ion "
                         "currents need an axis.")
    return GasRun(axes, channels, path, path.stem)


def _smooth(y: np.ndarray) -> np.ndarray:
    w = max(5, (y.size // 50) | 1)
    return savgol_filter(y, w, 2, mode="interp") if y.size > w else y


def _baseline(x: np.ndarray, y: np.ndarray, how: str, fraction: float) -> tuple[np.ndarray, float]:
    k = max(5, int(round(fraction * y.size)))
    if how == "linear":
        coef = np.polyfit(np.r_[x[:k], x[-k:]], np.r_[y[:k], y[-k:]], 1)
        base = np.polyval(coef, x)
        noise = float(np.std(np.r_[y[:k], y[-k:]] - np.r_[base[:k], base[-k:]]))
    elif how == "start":
        base = np.full(y.shape, float(np.median(y[:k])))
        noise = float(np.std(y[:k] - np.polyval(np.polyfit(x[:k], y[:k], 1), x[:k])))
    else:
        raise InputError(f"--baseline {how!r}: choose start or linear.")
    return base, noise


def onset(x: np.ndarray, y: np.ndarray, noise: float, *, threshold_sigma: float = 5.0,
          min_run: int = 5) -> dict[str, float]:
    """Extrapolated (tangent) and threshold onsets of the largest peak of a baseline-free signal ``y``.

    Returns
    -------
    dict
        ``onset_extrapolated``, ``onset_err``, ``onset_threshold``, ``peak_x``, ``peak_height`` (in the
        units of ``x`` and ``y``); NaN onsets when nothing rises above the threshold.
    """
    ys = _smooth(y)
    i_pk = int(np.argmax(ys))
    height = float(ys[i_pk])
    level = max(threshold_sigma * noise, 0.02 * height)
    out = {"peak_x": float(x[i_pk]), "peak_height": height, "onset_extrapolated": np.nan, "onset_err": np.nan,
           "onset_threshold": np.nan}
    if height <= threshold_sigma * noise or i_pk == 0:
        return out
    above = ys > level
    start = i_pk
    while start > 0 and above[start - 1]:
        start -= 1
    if start + min_run > above.size or not above[start:start + min_run].all():
        return out
    out["onset_threshold"] = float(x[start - 1] + (level - ys[start - 1]) * (x[start] - x[start - 1])
                                   / (ys[start] - ys[start - 1])) if start > 0 else float(x[0])
    edge = np.arange(start, i_pk + 1)
    edge = edge[(ys[edge] >= 0.2 * height) & (ys[edge] <= 0.8 * height)]
    if edge.size >= 4:
        (a, b), cov = np.polyfit(x[edge], y[edge], 1, cov=True)
        if a > 0:
            x0 = -b / a
            grad = np.array([b / a**2, -1.0 / a])
            out["onset_extrapolated"] = float(x0)
            out["onset_err"] = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    return out


def channel_metrics(run: GasRun, mz: int, x_key: str, options: GasOptions) -> tuple[dict[str, Any], np.ndarray]:
    """Onset, peak and integrals of one m/z channel; returns the row and the baseline-free current (A)."""
    x, y = run.columns[x_key], run.channels[mz]
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 20:
        raise InputError(f"{run.source}: m/z {mz} has {int(ok.sum())} finite points against {x_key}; need at least 20.")
    base, noise = _baseline(x[ok], y[ok], options.baseline, options.baseline_fraction)
    sig = np.full(y.shape, np.nan)
    sig[ok] = y[ok] - base
    row: dict[str, Any] = {"run": run.name, "mz": mz, "gas": MZ_NAMES.get(mz, f"m/z {mz}"), "axis": x_key,
                           "noise_A": noise, **onset(x[ok], sig[ok], noise, threshold_sigma=options.threshold_sigma,
                                                     min_run=options.min_run)}
    if "time_s" in run.columns:
        t = run.columns["time_s"]
        good = ok & np.isfinite(t)
        row["charge_As"] = float(trapezoid(sig[good], t[good]))
        factor = dict(options.calibration).get(mz)
        if factor is not None:
            row["amount_mol"] = factor * row["charge_As"]
            row["peak_rate_mol_s"] = factor * row["peak_height"]
            row["amount_umol_g"] = row["amount_mol"] * 1e6 / (options.active_mass_mg * 1e-3)
    return row, sig


def _x_key(run: GasRun, wanted: str | None) -> str:
    order = [wanted] if wanted else ["voltage", "temperature", "time"]
    for w in order:
        if w not in _X_COLUMNS:
            raise InputError(f"--x {w!r}: choose voltage, temperature or time.")
        if _X_COLUMNS[w][0] in run.columns:
            return _X_COLUMNS[w][0]
    raise InputError(f"{run.source}: no {_X_COLUMNS[wanted][0]} column for --x {wanted} "
                     f"(found {short_list(run.columns)}).")


def _check_options(runs: Sequence[GasRun], options: GasOptions) -> None:
    if options.calibration and options.active_mass_mg is None:
        raise InputError("calibrated amounts need the active mass: give --active-mass-mg (it is never taken from the "
                         "file).")
    if options.active_mass_mg is not None and not options.active_mass_mg > 0:
        raise InputError(f"--active-mass-mg {options.active_mass_mg}: give a positive mass in mg.")
    for mz, factor in options.calibration:
        if not factor > 0:
            raise InputError(f"--calibration {mz}={factor}: the factor (mol/s per A) must be positive.")
        missing = [r.name for r in runs if mz not in r.channels]
        if missing:
            raise InputError(f"--calibration names m/z {mz} but {missing[0]} has no such column.")
    if options.calibration and any("time_s" not in r.columns for r in runs):
        raise InputError("integrated amounts need a time_s column (rates are integrated over time); add it to the CSV.")


@dataclass
class GasAnalysis:
    """Per-run channel rows and baseline-free signals."""

    run: GasRun
    x_key: str
    rows: list[dict[str, Any]]
    signals: dict[int, np.ndarray]
    flags: list[dict[str, Any]] = field(default_factory=list)


def analyse_gas(runs: Sequence[GasRun], options: GasOptions = GasOptions()) -> GasResult:
    """Onsets, peaks and (calibrated) amounts of every channel of every run; no file I/O."""
    from layerscope.bulk.gas_outputs import GasResult

    if not runs:
        raise InputError("no gas-evolution files; give at least one CSV.")
    _check_options(runs, options)
    analyses = []
    for run in runs:
        x_key = _x_key(run, options.x_axis)
        rows, sigs, flags = [], {}, []
        for mz in sorted(run.channels):
            row, sig = channel_metrics(run, mz, x_key, options)
            rows.append(row)
            sigs[mz] = sig
            if mz == options.onset_channel and not np.isfinite(row["onset_extrapolated"]):
                flags.append(flag("no_release", f"m/z {mz} never rises above {options.threshold_sigma:g} x the "
                                  "baseline noise: no onset", run=run.name))
            if "time_s" in run.columns and mz in dict(options.calibration) and row["charge_As"] < 0:
                flags.append(flag("negative_amount", f"m/z {mz}: the baseline-free current integrates below zero; "
                                  "check the baseline (--baseline)", run=run.name))
        if options.calibration and any(mz not in dict(options.calibration) for mz in run.channels):
            flags.append(flag("uncalibrated_channels", "channels without --calibration are reported as ion charge "
                              "(A s) only", run=run.name))
        analyses.append(GasAnalysis(run, x_key, rows, sigs, flags))
    kinetics = _kinetics(runs, options) if options.kinetics else None
    return GasResult(analyses, options, kinetics)


def _kinetics(runs: Sequence[GasRun], options: GasOptions):
    """Kissinger/Ozawa over the runs (each a heating run with time_s and temperature)."""
    from layerscope.diffraction.kinetics import ThermalCurve
    from layerscope.diffraction.workflow import run_kinetics
    from scipy import stats

    curves = []
    for r in runs:
        if "time_s" not in r.columns or "temperature_C" not in r.columns:
            raise InputError(f"{r.source}: --kinetics needs time_s and temperature_C in every file (one heating rate "
                             "per file).")
        t_k = r.columns["temperature_C"] + 273.15
        rate = stats.linregress(r.columns["time_s"], t_k).slope * 60.0
        if not rate > 0:
            raise InputError(f"{r.source}: temperature does not rise with time_s; --kinetics needs heating runs.")
        curves.append(ThermalCurve(t_k, r.channels[options.onset_channel], float(rate), r.source,
                                   f"m/z {options.onset_channel}", "fitted to temperature vs time_s"))
    return run_kinetics(curves)


def parse_calibration(text: str | None) -> tuple[tuple[int, float], ...]:
    """``32=2.1e-9,44=1.5e-9`` (the ``--calibration`` option) to (m/z, factor) pairs."""
    out = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        mz, sep, value = item.partition("=")
        try:
            out.append((int(mz.strip()), float(value)))
        except ValueError as exc:
            raise InputError(f"--calibration {text!r}: give MZ=FACTOR pairs (mol/s per A), e.g. --calibration "
                             "32=2.1e-9,44=1.5e-9.") from exc
    return tuple(out)
