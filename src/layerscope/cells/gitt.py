"""Chemical diffusion coefficient from GITT pulses (Weppner & Huggins).

For a constant-current pulse of duration ``tau`` short compared with the diffusion time
(``tau << L^2 / D``), Weppner & Huggins (J. Electrochem. Soc. 124 (1977) 1569) give

    D = 4 / (pi * tau) * L^2 * (dE_s / dE_t)^2,

where ``L`` is the diffusion length (the electrode's volume over its electrolyte-contact area,
``L = m V_M / (M S)``; ``r/3`` for spheres of radius ``r``; the thickness for a film), ``dE_s`` the
change of the relaxed (steady-state) voltage caused by the pulse and ``dE_t`` the transient
change during the pulse *without* the ohmic drop. ``dE_t`` is taken from a straight-line fit of
E against sqrt(t) over the pulse (the short-time solution is linear in sqrt(t)), which removes the
IR step at the start; the fit's R^2 is reported so that pulses outside the sqrt(t) regime can be
discarded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.errors import InputError

__all__ = ["gitt_diffusion", "find_pulses"]


def find_pulses(current_A: np.ndarray, *, rest_current_fraction: float = 1e-3) -> list[tuple[int, int, int]]:
    """Locate GITT pulses: runs of non-zero current, each followed by a rest.

    Parameters
    ----------
    current_A : ndarray
    rest_current_fraction : float
        ``abs(I) <= rest_current_fraction * maxabs(I)`` counts as rest.

    Returns
    -------
    list of (start, stop, rest_stop)
        Index of the first pulse record, one past the last pulse record, and one past the last
        record of the rest that follows.
    """
    i = np.asarray(current_A, dtype=float)
    on = np.abs(i) > rest_current_fraction * np.nanmax(np.abs(i))
    edges = np.flatnonzero(np.diff(on.astype(np.int8))) + 1
    bounds = np.r_[0, edges, on.size]
    runs = [(int(a), int(b), bool(on[a])) for a, b in zip(bounds[:-1], bounds[1:])]
    pulses = []
    for k, (a, b, is_on) in enumerate(runs):
        if is_on and k + 1 < len(runs):
            pulses.append((a, b, runs[k + 1][1]))
    return pulses


def gitt_diffusion(
    time_s: np.ndarray,
    voltage_V: np.ndarray,
    current_A: np.ndarray,
    *,
    diffusion_length_nm: float | None = None,
    active_mass_mg: float | None = None,
    molar_mass_g_mol: float | None = None,
    molar_volume_cm3_mol: float | None = None,
    area_cm2: float | None = None,
    rest_current_fraction: float = 1e-3,
    sqrt_fit_skip_fraction: float = 0.1,
) -> pd.DataFrame:
    """Weppner-Huggins diffusion coefficient for every pulse of a GITT record.

    Give the geometry either as ``diffusion_length_nm`` (L) or as the four quantities
    ``active_mass_mg``, ``molar_mass_g_mol``, ``molar_volume_cm3_mol`` and ``area_cm2``
    (L = m V_M / (M S)). There is no default geometry.

    Parameters
    ----------
    time_s, voltage_V, current_A : ndarray
        The record (s, V, A), in time order.
    diffusion_length_nm : float, optional
        Diffusion length, nm (e.g. particle radius / 3 for spheres).
    active_mass_mg, molar_mass_g_mol, molar_volume_cm3_mol, area_cm2 : float, optional
        The alternative geometry.
    rest_current_fraction : float
        See :func:`find_pulses`.
    sqrt_fit_skip_fraction : float
        Fraction of the pulse skipped at its start before the E-sqrt(t) fit (double-layer charging).

    Returns
    -------
    pandas.DataFrame
        One row per pulse: ``pulse``, ``start_time_s``, ``tau_s``, ``current_A``,
        ``E_before_V`` (relaxed voltage before), ``E_after_V`` (relaxed voltage after),
        ``delta_Es_V``, ``delta_Et_V``, ``ir_drop_V``, ``sqrt_fit_r2``, ``D_cm2_s``,
        ``validity`` (``D tau / L^2``; Weppner-Huggins needs it well below 1, flagged above 0.1
        in ``flag``), ``flag``.
    """
    t = np.asarray(time_s, dtype=float)
    e = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    if not (t.shape == e.shape == i.shape) or t.ndim != 1:
        raise InputError("gitt_diffusion: time, voltage and current must be 1-D arrays of one length.")
    if np.any(np.diff(t) < 0):
        raise InputError("gitt_diffusion: time_s must increase; sort the record by time.")
    geometry = [active_mass_mg, molar_mass_g_mol, molar_volume_cm3_mol, area_cm2]
    if diffusion_length_nm is not None:
        if any(g is not None for g in geometry):
            raise InputError("gitt_diffusion: give either diffusion_length_nm or the mass/molar mass/molar "
                             "volume/area set, not both.")
        if not diffusion_length_nm > 0:
            raise InputError(f"gitt_diffusion: diffusion_length_nm must be > 0 (got {diffusion_length_nm}).")
        length_cm = diffusion_length_nm * 1e-7
    elif all(g is not None for g in geometry):
        if not all(g > 0 for g in geometry):
            raise InputError(f"gitt_diffusion: mass, molar mass, molar volume and area must be > 0 (got {geometry}).")
        length_cm = (active_mass_mg / 1000.0) * molar_volume_cm3_mol / (molar_mass_g_mol * area_cm2)
    else:
        raise InputError(
            "gitt_diffusion: the diffusion geometry is missing; pass diffusion_length_nm (e.g. particle "
            "radius / 3) or all of active_mass_mg, molar_mass_g_mol, molar_volume_cm3_mol and area_cm2."
        )
    pulses = find_pulses(i, rest_current_fraction=rest_current_fraction)
    if not pulses:
        raise InputError("gitt_diffusion: no current pulse followed by a rest was found in the record.")
    rows = []
    for k, (a, b, c) in enumerate(pulses):
        # the pulse runs from its first record to the first record of the following rest
        tau = t[b] - t[a] if b < t.size else t[b - 1] - t[a]
        flags = []
        if a > 0:
            e_before = e[a - 1]
        else:
            e_before = np.nan
            flags.append("no rest before the pulse")
        e_after = e[c - 1]
        seg_t = t[a:b] - t[a]
        seg_e = e[a:b]
        use = (seg_t >= sqrt_fit_skip_fraction * tau) & (seg_t > 0)
        if use.sum() < 3:
            flags.append("too few records in the pulse for the sqrt(t) fit")
            slope = intercept = r2 = np.nan
        else:
            x = np.sqrt(seg_t[use])
            slope, intercept = np.polyfit(x, seg_e[use], 1)
            pred = slope * x + intercept
            ss = np.sum((seg_e[use] - seg_e[use].mean()) ** 2)
            r2 = 1.0 - np.sum((seg_e[use] - pred) ** 2) / ss if ss > 0 else np.nan
        d_et = abs(slope) * np.sqrt(tau)
        d_es = abs(e_after - e_before)
        d = 4.0 / (np.pi * tau) * length_cm**2 * (d_es / d_et) ** 2 if tau > 0 and d_et > 0 else np.nan
        validity = d * tau / length_cm**2 if np.isfinite(d) else np.nan
        if np.isfinite(validity) and validity > 0.1:
            flags.append("pulse not short against L^2/D (Weppner-Huggins assumption violated)")
        if np.isfinite(r2) and r2 < 0.95:
            flags.append("E is not linear in sqrt(t) during the pulse")
        rows.append({
            "pulse": k, "start_time_s": t[a], "tau_s": tau, "current_A": float(np.median(i[a:b])),
            "E_before_V": e_before, "E_after_V": e_after, "delta_Es_V": d_es, "delta_Et_V": d_et,
            "ir_drop_V": intercept - e_before if np.isfinite(intercept) else np.nan,
            "sqrt_fit_r2": r2, "D_cm2_s": d, "validity": validity, "flag": "; ".join(flags),
        })
    return pd.DataFrame(rows)
