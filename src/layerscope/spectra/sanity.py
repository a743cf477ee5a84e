"""Sanity checks of EELS inputs and results: a real zero-loss peak, and flags on suspicious numbers.

A flag is ``{"code": ..., "message": ...}``: the number is still computed and reported, the flag
says why it may be wrong and what to do (a command-line option). Checks work on the mean
spectrum of each edge (the summary level), so they cost nothing on large spectrum images.

* :func:`check_zero_loss` refuses a "low loss" without a zero-loss peak (a plasmon taken as the
  ZLP gives a meaningless t/lambda and deconvolution);
* :func:`edge_position_flags` - onset or L3 far from the tabulated edge (energy scale off);
* :func:`overlap_flags` - another element's edge inside an edge's background or integration window;
* :func:`background_flags` - poor background fit (reduced chi-square) or a background-subtracted
  edge that dips well below zero (another edge's tail in the fit window);
* :func:`range_flags` - ratios outside their physical range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.spectra._windows import noise_sigma

__all__ = [
    "check_zero_loss",
    "edge_position_flags",
    "overlap_flags",
    "background_flags",
    "range_flags",
    "flag",
    "OVERLAPS",
]

#: Edges that sit under or just before another edge: analysed edge -> interfering edges.
OVERLAPS: dict[str, tuple[str, ...]] = {
    "Ni_L": ("La_M",),
    "Cu_L": ("La_M", "Ce_M", "Pr_M"),
    "Co_L": ("La_M", "Ba_M"),
    "Fe_L": ("F_K", "Mn_L"),
    "Ce_M": ("Ba_M", "La_M"),
    "La_M": ("Ba_M", "Ce_M"),
    "Ba_M": ("La_M", "Ce_M"),
    "O_K": ("Ti_L", "V_L", "Sc_L", "Ca_L"),
    "F_K": ("Mn_L", "Fe_L"),
    "Mn_L": ("F_K", "Fe_L"),
    "Ti_L": ("Ca_L", "N_K"),
    "C_K": ("Ca_L", "K_L"),
}


def flag(code: str, message: str) -> dict[str, str]:
    """One flag: a short code and a one-line message with the fix."""
    return {"code": code, "message": message}


def check_zero_loss(lowloss: np.ndarray, energy_eV: np.ndarray, *, source: Any = "low loss",
                    max_offset_eV: float = 10.0, max_fwhm_eV: float = 5.0) -> dict[str, float]:
    """Refuse a low loss without a zero-loss peak; return its position and FWHM (eV).

    The summed spectrum's maximum must lie within ``max_offset_eV`` of 0 eV, with channels on
    both sides of it (a peak cut at the range start is a removed ZLP), and be narrower than
    ``max_fwhm_eV`` at half maximum (a plasmon is 5-30 eV wide).

    Raises
    ------
    InputError
        One line naming the file, what is wrong and the fix.
    """
    y = np.asarray(lowloss, dtype=np.float64).reshape(-1, np.shape(lowloss)[-1])
    y = np.nansum(y, axis=0)
    e = np.asarray(energy_eV, dtype=np.float64)
    name = Path(str(source)).name if source is not None else "low loss"
    i = int(np.argmax(y))
    pos = float(e[i])
    if i < 3:
        raise InputError(
            f"'{name}': the highest intensity is at the first channels ({pos:.2f} eV): the zero-loss peak is cut "
            "off or was removed, so t/lambda and deconvolution are undefined; give --lowloss a spectrum that "
            "contains the whole zero-loss peak, or leave --lowloss out"
        )
    if abs(pos) > max_offset_eV:
        raise InputError(
            f"'{name}': the strongest peak is at {pos:.1f} eV, not near 0 eV, so this is no zero-loss peak (a "
            "plasmon or an edge?); give --lowloss a spectrum with the zero-loss peak, or leave --lowloss out"
        )
    half = 0.5 * y[i]
    left = np.nonzero(y[:i] < half)[0]
    right = np.nonzero(y[i:] < half)[0]
    if left.size == 0 or right.size == 0:
        raise InputError(f"'{name}': the peak at {pos:.1f} eV does not fall to half height inside the range: no "
                         "zero-loss peak; give --lowloss a spectrum with the whole zero-loss peak")
    fwhm = float(e[i + right[0]] - e[left[-1]])
    if fwhm > max_fwhm_eV:
        raise InputError(
            f"'{name}': the peak at {pos:.1f} eV is {fwhm:.1f} eV wide (a zero-loss peak is < {max_fwhm_eV:g} eV), "
            "so it is no zero-loss peak; give --lowloss a spectrum with the zero-loss peak, or leave --lowloss out"
        )
    return {"zlp_position_eV": pos, "zlp_fwhm_eV": fwhm}


def edge_position_flags(name: str, tabulated_onset_eV: float, onset_eV: float | None,
                        peak_eV: float | None, white_lines: bool, tolerance_eV: float = 2.0,
                        crystal_field_split: bool = False, below_tolerance_eV: float | None = None) -> list[dict]:
    """Flag an onset (or an L3 maximum) more than ``tolerance_eV`` from where the edge belongs.

    The measured half-height onset is compared with the tabulated onset; for white-line edges
    the L3 maximum may sit up to ~4 eV above the tabulated onset, so it is compared with
    ``onset + 2 eV`` and flagged beyond ``tolerance_eV + 1 eV`` of that (``+ 2.5 eV`` for the
    crystal-field split L3 of Sc-Cr, whose e_g line ~2 eV above t2g is often the strongest).
    ``below_tolerance_eV`` allows more room below the tabulated onset (the O-K pre-peak of
    layered oxides starts ~4 eV below the main edge at 532 eV).
    """
    out = []
    below = tolerance_eV if below_tolerance_eV is None else below_tolerance_eV
    if onset_eV is not None and np.isfinite(onset_eV) and not (
            tabulated_onset_eV - below <= onset_eV <= tabulated_onset_eV + tolerance_eV):
        d = tabulated_onset_eV - onset_eV
        out.append(flag(f"{name}.onset_off", f"{name}: onset at {onset_eV:.1f} eV is {abs(d):.1f} eV from the "
                        f"tabulated {tabulated_onset_eV:.1f} eV; check the energy scale (e.g. --energy-shift-ev "
                        f"{d:.1f}) or the edge name"))
    if white_lines and peak_eV is not None and np.isfinite(peak_eV):
        expect = tabulated_onset_eV + 2.0
        if abs(peak_eV - expect) > tolerance_eV + (2.5 if crystal_field_split else 1.0):
            d = expect - peak_eV
            out.append(flag(f"{name}.l3_off", f"{name}: L3 maximum at {peak_eV:.1f} eV, {abs(d):.1f} eV from the "
                            f"expected ~{expect:.0f} eV; the energy scale is probably off (e.g. --energy-shift-ev "
                            f"{d:.1f})"))
    return out


def overlap_flags(name: str, windows: dict[str, tuple[float, float]], present: set[str],
                  edge_table: dict[str, tuple[float, float]]) -> list[dict]:
    """Flag another element's edge (known to be present) inside ``name``'s background or integration windows.

    ``present`` holds the edge names known in the specimen (from --edges or the file's formula);
    ``edge_table`` maps edge names to (first onset, last feature) in eV.
    """
    out = []
    for other in OVERLAPS.get(name, ()):
        if other not in present or other not in edge_table:
            continue
        lo, hi = edge_table[other]
        for wname, (a, b) in windows.items():
            # an edge inside a window, or its post-edge tail (first 50 eV) reaching into the window
            if a - 50.0 <= hi and lo <= b:
                fix = ("--window %s=START,END ending before %.0f eV or after its tail" % (name, lo)
                       if wname == "background" else "--background lcpl or a narrower edge window")
                out.append(flag(f"{name}.overlap", f"{name}: the {other} edge ({lo:.0f}-{hi:.0f} eV) lies in or just "
                                f"before its {wname} window {a:.0f}-{b:.0f} eV, so the {name} numbers include it; "
                                f"try {fix}, or treat the result as an upper bound"))
                break
    return out


def background_flags(name: str, raw: np.ndarray, subtracted: np.ndarray, e: np.ndarray,
                     window_eV: tuple[float, float] | None, onset_eV: float) -> tuple[list[dict], dict[str, float]]:
    """Reduced chi-square of the background fit and the depth of negative signal after the onset.

    Returns the flags and the numbers (``background_chi2_red``, ``min_after_onset_rel``).
    """
    out: list[dict] = []
    info: dict[str, float] = {}
    raw = np.asarray(raw, dtype=np.float64)
    sub = np.asarray(subtracted, dtype=np.float64)
    if window_eV is not None:
        m = (e >= window_eV[0]) & (e <= window_eV[1])
        if m.sum() >= 6:
            s = float(np.median(noise_sigma(raw[None, :])))
            resid = sub[m]
            # residual of the fit relative to a smooth local trend: chi2 against the channel noise
            chi2 = float(np.mean(resid**2) / s**2) if s > 0 else float("nan")
            info["background_chi2_red"] = chi2
            if np.isfinite(chi2) and chi2 > 5.0:
                out.append(flag(f"{name}.background_fit", f"{name}: the background fit is poor (reduced chi2 "
                                f"{chi2:.1f} in {window_eV[0]:.0f}-{window_eV[1]:.0f} eV); choose a window without "
                                f"other edges (--window {name}=START,END) or --background lcpl"))
    after = (e >= onset_eV) & (e <= onset_eV + 50.0)
    if after.sum() >= 5:
        top = float(np.nanmax(sub[after]))
        low = float(np.nanmin(sub[after]))
        if top > 0:
            info["min_after_onset_rel"] = low / top
            if low < -0.1 * top:
                out.append(flag(f"{name}.negative_signal", f"{name}: the background-subtracted edge dips to "
                                f"{low:.4g} ({100 * low / top:.0f} % of its maximum) - the background is overestimated, "
                                f"often by the tail of an edge below it; move the fit window (--window "
                                f"{name}=START,END) or use --background lcpl"))
    return out, info


#: Plausible ranges of summary quantities: key suffix -> (low, high, what).
_RANGES = {
    "l3_l2": (0.5, 6.0, "L3/L2 of 3d metals lies between ~1 and ~5"),
    "preedge_ratio": (0.0, 2.0, "an O-K pre-edge integral is positive and smaller than twice the main peak"),
    "t_over_lambda": (0.0, 5.0, "t/lambda of a specimen thin enough for EELS is 0-3"),
}


def range_flags(medians: dict[str, float | None]) -> list[dict]:
    """Flag summary medians outside their physical range (negative ratios, L3/L2 of 8 ...)."""
    out = []
    for key, value in medians.items():
        if value is None or not np.isfinite(value):
            continue
        for suffix, (lo, hi, why) in _RANGES.items():
            if key.endswith(suffix) and not (lo <= value <= hi):
                out.append(flag(f"{key}.out_of_range", f"{key} = {value:.3g} is outside {lo:g}-{hi:g} ({why}); "
                                "check the flags above (overlapping edges, background) before using it"))
    return out
