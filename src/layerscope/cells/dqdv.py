"""Differential capacity (dQ/dV, incremental capacity analysis) and peak tracking over cycles.

Method (documented smoothing, after Bloom et al., J. Power Sources 139 (2005) 295 and the
incremental-capacity practice reviewed by Dubarry & Anseán, Front. Energy Res. 10 (2022) 1023555):

1. the half cycle is ordered by capacity and the voltage is interpolated onto a uniform capacity
   grid (``n_capacity_points``);
2. the voltage is smoothed along capacity with a Savitzky-Golay filter (window
   ``capacity_window_fraction`` of the half cycle's capacity, cubic) - the noise of a real cycler
   is in the voltage;
3. the smoothed V(Q) is made monotonic by isotonic least squares (pool-adjacent-violators,
   ``scipy.optimize.isotonic_regression``; removes what is left of the noise on plateaus
   without biasing the voltage) and the capacity is interpolated onto a uniform voltage
   grid of spacing ``voltage_step_V``;
4. dQ/dV is the first derivative of that Q(V) from a Savitzky-Golay filter of width ``window_V``
   (``polyorder`` 2).

Symmetric filters do not move symmetric peaks; on synthetic curves with known peaks the positions
come back within 1 mV (see ``tests/cells/test_dqdv.py``). dQ/dV is positive on charge and negative
on discharge (capacity grows while the voltage falls).

Named peaks of Ni-rich layered oxides vs Li/Li+ on charge (phase transitions of
Li(1-x)NiO2-type cathodes: H1 -> M, M -> H2, H2 -> H3; Li et al., J. Electrochem. Soc. 166 (2019)
A429; Ryu et al., Chem. Mater. 30 (2018) 1155) are in :data:`NI_RICH_NMC_CHARGE_PEAKS`; the
H2-H3 peak near 4.2 V is the one whose fading tracks c-axis collapse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import isotonic_regression
from scipy.signal import find_peaks, peak_widths, savgol_filter

from layerscope.cells.readers import CyclerData
from layerscope.errors import InputError

__all__ = [
    "NI_RICH_NMC_CHARGE_PEAKS",
    "NI_RICH_NMC_DISCHARGE_PEAKS",
    "DQDVCurve",
    "dqdv",
    "find_dqdv_peaks",
    "half_cycle_curve",
    "dqdv_by_cycle",
    "track_peaks",
]

#: Voltage windows (V vs Li/Li+) of the Ni-rich NMC phase-transition peaks on charge.
NI_RICH_NMC_CHARGE_PEAKS: dict[str, tuple[float, float]] = {
    "H1-M": (3.55, 3.85),
    "M-H2": (3.90, 4.10),
    "H2-H3": (4.10, 4.30),
}
#: The same transitions on discharge (shifted down by the hysteresis).
NI_RICH_NMC_DISCHARGE_PEAKS: dict[str, tuple[float, float]] = {
    "M-H1": (3.50, 3.80),
    "H2-M": (3.85, 4.05),
    "H3-H2": (4.05, 4.25),
}


@dataclass
class DQDVCurve:
    """dQ/dV of one half cycle.

    Attributes
    ----------
    voltage_V : ndarray
        Uniform voltage grid, V.
    dqdv : ndarray
        dQ/dV on that grid, mAh/V (or mAh/(g V) when computed from specific capacity); positive on
        charge, negative on discharge.
    direction : str
        ``"charge"`` or ``"discharge"``.
    parameters : dict
        The smoothing parameters used.
    """

    voltage_V: np.ndarray
    dqdv: np.ndarray
    direction: str
    parameters: dict


def _odd(n: int) -> int:
    n = int(n)
    return n if n % 2 == 1 else n + 1


def dqdv(
    capacity_mAh: np.ndarray,
    voltage_V: np.ndarray,
    *,
    voltage_step_V: float = 0.001,
    window_V: float = 0.015,
    n_capacity_points: int = 4000,
    capacity_window_fraction: float = 0.005,
    polyorder: int = 2,
) -> DQDVCurve:
    """dQ/dV of one half cycle (see the module docstring for the method).

    Parameters
    ----------
    capacity_mAh : ndarray
        Capacity passed since the start of the half cycle (any capacity unit; the result is that
        unit per V).
    voltage_V : ndarray
        Voltage, V, same length.
    voltage_step_V : float
        Spacing of the output voltage grid, V.
    window_V : float
        Width of the Savitzky-Golay derivative window, V (sets the resolution: peaks narrower than
        this are broadened).
    n_capacity_points : int
        Points of the uniform capacity grid for step 1.
    capacity_window_fraction : float
        Savitzky-Golay window on V(Q), as a fraction of the half cycle's capacity; 0 switches
        step 2 off.
    polyorder : int
        Polynomial order of the derivative filter.

    Returns
    -------
    DQDVCurve
    """
    q = np.asarray(capacity_mAh, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    if q.shape != v.shape or q.ndim != 1:
        raise InputError(f"dqdv: capacity and voltage must be 1-D arrays of one length (got {q.shape}, {v.shape}).")
    keep = np.isfinite(q) & np.isfinite(v)
    q, v = q[keep], v[keep]
    if q.size < 10 or np.ptp(q) <= 0:
        raise InputError(f"dqdv: the half cycle has {q.size} usable records and capacity range {np.ptp(q) if q.size else 0}; "
                         "it needs at least 10 records over a non-zero capacity.")
    if voltage_step_V <= 0 or window_V < 3 * voltage_step_V:
        raise InputError(f"dQ/dV window {window_V * 1000:g} mV: must be at least 3 voltage steps ({3000 * voltage_step_V:g} "
                         "mV); give a wider --dqdv-window-mv.")
    order = np.argsort(q, kind="stable")
    q, v = q[order], v[order]
    q, first = np.unique(q, return_index=True)
    # for repeated capacities (rest records) take the mean voltage
    v = np.add.reduceat(v, first) / np.diff(np.r_[first, order.size])
    direction = "charge" if v[-1] >= v[0] else "discharge"
    qg = np.linspace(q[0], q[-1], int(n_capacity_points))
    vg = np.interp(qg, q, v)
    if capacity_window_fraction > 0:
        w = _odd(max(5, capacity_window_fraction * n_capacity_points))
        vg = savgol_filter(vg, w, 3, mode="interp")
    if direction == "discharge":
        vg, qg = vg[::-1], qg[::-1]
    # least-squares monotonic fit (pool-adjacent-violators): unbiased on noisy plateaus, unlike a
    # running maximum, which pushes the voltage up by the noise amplitude
    vm = isotonic_regression(vg, increasing=True).x
    vm, first = np.unique(vm, return_index=True)
    qg = np.add.reduceat(qg, first) / np.diff(np.r_[first, qg.size])
    lo, hi = vm[0], vm[-1]
    n_v = int(np.floor((hi - lo) / voltage_step_V)) + 1
    if n_v < 5:
        raise InputError(f"dqdv: the half cycle spans only {hi - lo:.4f} V; too little for a dQ/dV curve.")
    vgrid = lo + voltage_step_V * np.arange(n_v)
    qv = np.interp(vgrid, vm, qg)
    w = _odd(max(polyorder + 2, round(window_V / voltage_step_V)))
    if w > n_v:
        raise InputError(f"dQ/dV window {window_V * 1000:g} mV is wider than the half cycle's {1000 * (hi - lo):.0f} mV "
                         "range; give a narrower --dqdv-window-mv.")
    d = savgol_filter(qv, w, polyorder, deriv=1, delta=voltage_step_V, mode="interp")
    params = dict(voltage_step_V=voltage_step_V, window_V=window_V, n_capacity_points=n_capacity_points,
                  capacity_window_fraction=capacity_window_fraction, polyorder=polyorder)
    return DQDVCurve(vgrid, d, direction, params)


def find_dqdv_peaks(
    curve: DQDVCurve,
    *,
    min_prominence_fraction: float = 0.05,
    min_separation_V: float = 0.02,
    window: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Peaks of abs(dQ/dV), refined by a least-squares parabola through the top 20 % of each peak.

    Parameters
    ----------
    curve : DQDVCurve
    min_prominence_fraction : float
        Minimum prominence, as a fraction of the largest abs(dQ/dV) of the whole curve (also when a
        window is given, so that noise on a flat stretch never passes for a peak).
    min_separation_V : float
        Minimum distance between two peaks, V.
    window : (float, float), optional
        Only look between these voltages, V.

    Returns
    -------
    pandas.DataFrame
        ``position_V``, ``height`` (signed dQ/dV at the peak, capacity unit per V),
        ``prominence``, ``fwhm_V``; sorted by voltage.
    """
    v, y = curve.voltage_V, np.abs(curve.dqdv)
    sel = np.ones(v.size, dtype=bool) if window is None else (v >= window[0]) & (v <= window[1])
    if sel.sum() < 5:
        return pd.DataFrame(columns=["position_V", "height", "prominence", "fwhm_V"])
    vs, ys, ds = v[sel], y[sel], curve.dqdv[sel]
    step = float(vs[1] - vs[0])
    idx, props = find_peaks(ys, prominence=min_prominence_fraction * np.nanmax(y),
                            distance=max(1, int(round(min_separation_V / step))))
    widths = peak_widths(ys, idx, rel_height=0.5)[0] * step if idx.size else np.array([])
    rows = []
    for k, i in enumerate(idx):
        pos, top = vs[i], ds[i]
        # parabola through the contiguous top of the peak (within 20 % of its prominence): uses
        # many points, so noise on a broad, flat-topped peak does not pick a random local maximum
        level = ys[i] - 0.2 * props["prominences"][k]
        lo = i
        while lo > 0 and ys[lo - 1] >= level:
            lo -= 1
        hi = i
        while hi < ys.size - 1 and ys[hi + 1] >= level:
            hi += 1
        lo, hi = min(lo, i - 2), max(hi, i + 2)
        if lo >= 0 and hi < ys.size:
            x = vs[lo:hi + 1] - vs[i]
            a, b, c = np.polyfit(x, ds[lo:hi + 1], 2)
            if a != 0 and vs[lo] <= vs[i] - b / (2 * a) <= vs[hi]:
                pos = vs[i] - b / (2 * a)
                top = c - b * b / (4 * a)
        rows.append({"position_V": float(pos), "height": float(top),
                     "prominence": float(props["prominences"][k]), "fwhm_V": float(widths[k])})
    return pd.DataFrame(rows, columns=["position_V", "height", "prominence", "fwhm_V"])


def half_cycle_curve(
    data: CyclerData | pd.DataFrame, *, cycle: int, direction: Literal["charge", "discharge"],
    specific: bool = False, cv_tolerance_V: float = 0.001,
) -> tuple[np.ndarray, np.ndarray]:
    """Capacity and voltage of the longest ``direction`` half cycle of ``cycle``, without its CV tail.

    A constant-voltage hold at the end is left out: the records from the first one within 10 mV
    of the end voltage whose current is below 97 % of the constant current before it (or, when the
    current does not fall, after the first record within ``cv_tolerance_V`` of the end voltage).

    Returns
    -------
    (capacity, voltage_V) : tuple of ndarray
        Capacity in mAh, or mAh/g with ``specific=True`` (needs the active mass).
    """
    table = data.data if isinstance(data, CyclerData) else data
    col = "specific_capacity_mAh_g" if specific else "capacity_mAh"
    if col not in table.columns:
        raise InputError("specific dQ/dV needs the active mass: give --mass-mg.")
    rows = table[(table["cycle"] == cycle) & (table["state"] == direction)]
    if rows.empty:
        raise InputError(f"cycle {cycle}: has no {direction} records.")
    longest = rows.groupby("half_cycle")[col].max().idxmax()
    seg = rows[rows["half_cycle"] == longest]
    q, v = seg[col].to_numpy(dtype=float), seg["voltage_V"].to_numpy(dtype=float)
    i = np.abs(seg["current_A"].to_numpy(dtype=float))
    # drop a constant-voltage tail: it adds capacity at one voltage, which is not a dQ/dV feature.
    # The tail starts at the first record near the end voltage whose current has fallen below 97 %
    # of the constant current before it, or at the first record within cv_tolerance_V of the end.
    end = np.nanmax(v) if direction == "charge" else np.nanmin(v)
    near = np.cumsum(np.abs(v - end) <= 0.01) > 0
    cc = float(np.median(i[~near])) if (~near).any() else float(np.median(i))
    tail = near & (i < 0.97 * cc)
    stop = int(np.flatnonzero(tail)[0]) if tail.any() else int(np.flatnonzero(np.abs(v - end) <= cv_tolerance_V)[0]) + 1
    return q[:stop], v[:stop]


def dqdv_by_cycle(
    data: CyclerData | pd.DataFrame,
    *,
    direction: Literal["charge", "discharge"] = "charge",
    cycles: list[int] | None = None,
    specific: bool = False,
    **dqdv_options,
) -> dict[int, DQDVCurve]:
    """dQ/dV of the ``direction`` half cycle of every cycle (cycles lacking it are skipped).

    ``dqdv_options`` go to :func:`dqdv`.
    """
    table = data.data if isinstance(data, CyclerData) else data
    if cycles is None:
        cycles = sorted(int(c) for c in table.loc[table["state"] == direction, "cycle"].dropna().unique())
    out = {}
    for c in cycles:
        try:
            q, v = half_cycle_curve(table, cycle=c, direction=direction, specific=specific)
            out[c] = dqdv(q, v, **dqdv_options)
        except InputError:
            continue  # too short a half cycle: reported as a missing cycle by track_peaks
    return out


def track_peaks(
    data: CyclerData | pd.DataFrame,
    *,
    windows: dict[str, tuple[float, float]] | None = None,
    direction: Literal["charge", "discharge"] = "charge",
    cycles: list[int] | None = None,
    specific: bool = False,
    min_prominence_fraction: float = 0.05,
    **dqdv_options,
) -> pd.DataFrame:
    """Position and height of named dQ/dV peaks in every cycle.

    Parameters
    ----------
    data : CyclerData or pandas.DataFrame
    windows : dict of name -> (V_low, V_high)
        Voltage window of each named peak; default :data:`NI_RICH_NMC_CHARGE_PEAKS` on charge,
        :data:`NI_RICH_NMC_DISCHARGE_PEAKS` on discharge (vs Li/Li+; shift them for a full cell).
    direction : {"charge", "discharge"}
    cycles : list of int, optional
    specific : bool
        Heights per gram (needs the active mass).
    min_prominence_fraction : float
        A peak must stand out by this fraction of the half cycle's largest abs(dQ/dV).

    Returns
    -------
    pandas.DataFrame
        ``cycle``, ``peak``, ``position_V``, ``height``, ``fwhm_V``, ``found`` (False where no
        peak stands out in the window: position and height are NaN, never a window edge),
        ``relative_height`` (height / height in the first cycle where the peak was found).
    """
    if windows is None:
        windows = NI_RICH_NMC_CHARGE_PEAKS if direction == "charge" else NI_RICH_NMC_DISCHARGE_PEAKS
    curves = dqdv_by_cycle(data, direction=direction, cycles=cycles, specific=specific, **dqdv_options)
    if not curves:
        raise InputError(f"track_peaks: no cycle has a usable {direction} half cycle.")
    rows = []
    for c, curve in curves.items():
        for name, (lo, hi) in windows.items():
            pk = find_dqdv_peaks(curve, window=(lo, hi), min_prominence_fraction=min_prominence_fraction)
            # a maximum sitting on the window edge is the flank of a neighbour, not this peak
            pk = pk[(pk["position_V"] > lo + 0.002) & (pk["position_V"] < hi - 0.002)]
            if pk.empty:
                rows.append({"cycle": c, "peak": name, "position_V": np.nan, "height": np.nan,
                             "fwhm_V": np.nan, "found": False})
            else:
                best = pk.loc[pk["height"].abs().idxmax()]
                rows.append({"cycle": c, "peak": name, "position_V": best["position_V"], "height": best["height"],
                             "fwhm_V": best["fwhm_V"], "found": True})
    out = pd.DataFrame(rows)
    out["relative_height"] = np.nan
    for name, grp in out.groupby("peak"):
        found = grp[grp["found"]]
        if not found.empty:
            out.loc[grp.index, "relative_height"] = grp["height"] / found["height"].iloc[0]
    return out
