"""Per-half-cycle and per-cycle metrics from the tidy cycler table.

Capacity, energy, mean voltage and hysteresis follow the usual definitions (e.g. Dahn & Ehrlich,
"Lithium-ion batteries", in *Linden's Handbook of Batteries*, 4th ed., ch. 26):

* capacity of a half cycle: the charge passed in that direction, from the cycler's counters;
* energy: ``sum(V_mid * dQ)`` over the records of the half cycle (trapezoid in capacity), mWh;
* mean voltage: energy / capacity, V;
* hysteresis: mean charge voltage - mean discharge voltage of the same cycle, V;
* Coulombic efficiency: for a cathode (or a full cell) discharge / charge capacity; for an
  anode half cell (``electrode="anode"``, first lithiated on discharge) charge / discharge;
* energy efficiency: discharge energy / charge energy of the measured cell (energy out / energy
  in, whatever the electrode: for an anode half cell vs Li the cell delivers energy while the
  anode is lithiated);
* retention: the "reversible" capacity (discharge for a cathode, charge for an anode) relative to
  a reference cycle.

A cycle that lacks one of its halves (or whose half is below ``min_half_fraction`` of the other)
is flagged ``complete = False`` and gets NaN for every ratio: a ratio is never computed from a
half that is not there. A truncated last cycle or a first cycle that began partly charged keeps its
numbers but is left out of the headline (``headline = False``; see
:mod:`layerscope.cells.plausibility`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from layerscope.cells.plausibility import mark_headline
from layerscope.cells.readers import CyclerData
from layerscope.errors import InputError

__all__ = ["half_cycle_metrics", "cycle_metrics", "pair_cycles", "increments"]

Electrode = Literal["cathode", "anode"]


def _table(data: CyclerData | pd.DataFrame) -> pd.DataFrame:
    table = data.data if isinstance(data, CyclerData) else data
    need = ["time_s", "cycle", "current_A", "voltage_V", "state", "half_cycle", "charge_capacity_mAh",
            "discharge_capacity_mAh"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError(f"cycler table: column(s) {missing} are missing; read the file with "
                         "layerscope.cells.read_cycler, which writes the tidy columns.")
    return table


def increments(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-record charge and discharge increments (mAh) recovered from the per-cycle cumulative columns."""
    key = table["cycle"].fillna(-1).to_numpy()
    out = []
    for col in ("charge_capacity_mAh", "discharge_capacity_mAh"):
        c = table[col].to_numpy(dtype=float)
        d = pd.Series(c).groupby(key).diff().to_numpy()
        out.append(np.where(np.isnan(d), c, d))
    return out[0], out[1]


def pair_cycles(data: CyclerData | pd.DataFrame, *, electrode: Electrode = "cathode") -> pd.DataFrame:
    """Renumber cycles as charge/discharge pairs, ignoring the cycler's own cycle counter.

    A new cycle starts at every charge half cycle for a cathode (at every discharge half cycle
    for an anode half cell); records before the first such start form cycle 0. Use it when the
    cycler's counter groups several cycles (e.g. a Maccor loop without an advance-cycle step).

    Returns
    -------
    pandas.DataFrame
        A copy of the tidy table with ``cycle`` and the cumulative capacities recomputed; the
        cycler's counter is kept as ``cycler_cycle``.
    """
    table = _table(data).copy()
    first = "charge" if electrode == "cathode" else "discharge"
    ch, dis = increments(table)
    state = table["state"].astype(str).to_numpy()
    half = table["half_cycle"].to_numpy()
    start = np.zeros(len(table), dtype=bool)
    new_half = np.r_[True, half[1:] != half[:-1]]
    # the direction of each half cycle is the state of its first non-rest record
    direction = pd.Series(np.where(state == "rest", None, state)).groupby(half).transform("first").to_numpy()
    # a new cycle at every half cycle of the first direction, and at a half cycle that repeats the
    # direction of the one before it (e.g. a slow diagnostic discharge after a fast loop's discharge)
    half_dir = pd.Series(direction).where(new_half).ffill()
    prev_dir = pd.Series(np.where(new_half, half_dir.shift(1).to_numpy(), None)).to_numpy()
    repeat = new_half & (direction == prev_dir) & pd.notna(direction)
    start = new_half & ((direction == first) | repeat)
    table["cycler_cycle"] = table["cycle"]
    table["cycle"] = pd.array(np.cumsum(start), dtype="Int64")
    key = table["cycle"].to_numpy()
    table["charge_capacity_mAh"] = pd.Series(ch).groupby(key).cumsum().to_numpy()
    table["discharge_capacity_mAh"] = pd.Series(dis).groupby(key).cumsum().to_numpy()
    return table


def half_cycle_metrics(data: CyclerData | pd.DataFrame) -> pd.DataFrame:
    """One row per charge or discharge half cycle.

    Returns
    -------
    pandas.DataFrame
        ``cycle``, ``half_cycle``, ``direction``, ``capacity_mAh``, ``energy_mWh``,
        ``mean_voltage_V``, ``start_voltage_V``, ``end_voltage_V``, ``duration_s``,
        ``median_current_A`` (median abs(I) of the active records, the constant-current part for a
        CC-CV step), ``n_records``.
    """
    table = _table(data)
    if table["cycle"].isna().any():
        raise InputError(
            "cycler table: some records have no cycle number (the file has no cycle counter); per-cycle "
            "metrics need one: export the file with the cycle index, or give --pairs to number charge/discharge pairs."
        )
    ch, dis = increments(table)
    state = table["state"].astype(str).to_numpy()
    v = table["voltage_V"].to_numpy(dtype=float)
    half = table["half_cycle"].to_numpy()
    v_prev = np.r_[v[0], v[:-1]]
    same = np.r_[False, half[1:] == half[:-1]]
    v_mid = np.where(same, 0.5 * (v + v_prev), v)
    # a half cycle is the run of records from one change of direction to the next, rests included:
    # the counter of a cycler can still advance on the record that already reads zero current
    direction = pd.Series(np.where(state == "rest", None, state)).groupby(
        [table["cycle"].to_numpy(), half]).transform("first").to_numpy()
    dq = np.where(direction == "charge", ch, np.where(direction == "discharge", dis, 0.0))
    active = state != "rest"
    frame = pd.DataFrame({
        "cycle": table["cycle"].to_numpy(), "half_cycle": half, "direction": direction, "dq": dq,
        "de": dq * v_mid, "v": np.where(active, v, np.nan),
        "t": np.where(active, table["time_s"].to_numpy(dtype=float), np.nan),
        "absI": np.where(active, np.abs(table["current_A"].to_numpy(dtype=float)), np.nan),
    })
    frame = frame[frame["direction"].notna()]
    if frame.empty:
        raise InputError("cycler table: no charge or discharge records (only rest); nothing to analyse.")
    grouped = frame.groupby(["cycle", "half_cycle"], sort=True)
    out = grouped.agg(
        direction=("direction", "first"),
        capacity_mAh=("dq", "sum"),
        energy_mWh=("de", "sum"),
        start_voltage_V=("v", "first"),
        end_voltage_V=("v", "last"),
        t0=("t", "min"),
        t1=("t", "max"),
        median_current_A=("absI", "median"),
        n_records=("v", "count"),
    ).reset_index()
    out["duration_s"] = out.pop("t1") - out.pop("t0")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean_voltage_V"] = np.where(out["capacity_mAh"] > 0, out["energy_mWh"] / out["capacity_mAh"], np.nan)
    return out



def _cycle_rows(halves: pd.DataFrame, min_half_fraction: float) -> pd.DataFrame:
    """Capacities, energies, mean voltages and completeness of every cycle (no ratios yet)."""
    cycles = np.unique(halves["cycle"].to_numpy())
    rows = []
    for c in cycles:
        h = halves[halves["cycle"] == c]
        chg, dis = h[h["direction"] == "charge"], h[h["direction"] == "discharge"]
        qc, qd = float(chg["capacity_mAh"].sum()), float(dis["capacity_mAh"].sum())
        ec, ed = float(chg["energy_mWh"].sum()), float(dis["energy_mWh"].sum())
        flags = []
        big = max(qc, qd)
        if qc <= min_half_fraction * big:
            flags.append("no charge")
        if qd <= min_half_fraction * big:
            flags.append("no discharge")
        if len(chg) > 1 or len(dis) > 1:
            flags.append(f"{len(chg)} charge and {len(dis)} discharge segments in one cycle "
                         "(give --pairs to split them)")
        complete = not any(f.startswith("no ") for f in flags)
        rows.append({
            "cycle": int(c),
            "charge_capacity_mAh": qc,
            "discharge_capacity_mAh": qd,
            "charge_energy_mWh": ec,
            "discharge_energy_mWh": ed,
            "mean_charge_voltage_V": ec / qc if qc > 0 else np.nan,
            "mean_discharge_voltage_V": ed / qd if qd > 0 else np.nan,
            "n_charge_segments": len(chg),
            "n_discharge_segments": len(dis),
            "complete": complete,
            "flag": "; ".join(flags),
        })
    out = pd.DataFrame(rows)
    return out


def cycle_metrics(
    data: CyclerData | pd.DataFrame,
    *,
    electrode: Electrode = "cathode",
    reference_cycle: int | None = None,
    min_half_fraction: float = 0.05,
    active_mass_mg: float | None = None,
) -> pd.DataFrame:
    """Capacity, Coulombic efficiency, retention, mean voltages, hysteresis and energy per cycle.

    Parameters
    ----------
    data : CyclerData or pandas.DataFrame
        The tidy table (see :mod:`layerscope.cells.readers`). Cycles are the table's ``cycle``
        column; use :func:`pair_cycles` first to number charge/discharge pairs instead.
    electrode : {"cathode", "anode"}
        Which direction is the reversible capacity (see the module docstring).
    reference_cycle : int, optional
        Cycle number that retention and voltage fade are relative to; default: the first headline
        cycle (reported in the ``reference_cycle`` column).
    min_half_fraction : float
        A half whose capacity is below this fraction of the other half's counts as missing.
    active_mass_mg : float, optional
        Active mass, mg, for specific capacities; defaults to the mass given to the reader
        (``CyclerData.active_mass_mg``); without either there are no specific columns.

    Returns
    -------
    pandas.DataFrame
        One row per cycle: ``charge_capacity_mAh``, ``discharge_capacity_mAh``,
        ``coulombic_efficiency``, ``retention``, ``mean_charge_voltage_V``,
        ``mean_discharge_voltage_V``, ``hysteresis_V``, ``discharge_voltage_change_V`` (vs the
        reference cycle), ``charge_energy_mWh``, ``discharge_energy_mWh``,
        ``energy_efficiency``, ``n_charge_segments``, ``n_discharge_segments``, ``complete``,
        ``flag`` (why a cycle is incomplete or unusual), ``excluded`` (why it is left out of the
        headline, '' if it is not), ``headline``, ``reference_cycle``, and the
        ``specific_*_mAh_g`` columns when a mass is known.
    """
    if electrode not in ("cathode", "anode"):
        raise InputError(f"--electrode {electrode!r}: choose cathode or anode.")
    halves = half_cycle_metrics(data)
    out = _cycle_rows(halves, min_half_fraction)
    ok = out["complete"].to_numpy()
    rev, irr = (("discharge", "charge") if electrode == "cathode" else ("charge", "discharge"))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["coulombic_efficiency"] = np.where(ok, out[f"{rev}_capacity_mAh"] / out[f"{irr}_capacity_mAh"], np.nan)
        # energy out of the measured cell / energy put in: a round trip whatever the electrode
        out["energy_efficiency"] = np.where(ok, out["discharge_energy_mWh"] / out["charge_energy_mWh"], np.nan)
        out["hysteresis_V"] = np.where(ok, out["mean_charge_voltage_V"] - out["mean_discharge_voltage_V"], np.nan)
    out = mark_headline(out, halves)
    if not ok.any():
        raise InputError("cycler table: no complete cycle (every cycle lacks a charge or a discharge); retention "
                         "cannot be computed. If the cycler's counter is wrong, give --pairs.")
    if reference_cycle is None:
        use = out["headline"] if out["headline"].any() else out["complete"]
        reference_cycle = int(out.loc[use, "cycle"].iloc[0])
    ref = out[out["cycle"] == reference_cycle]
    if ref.empty or not bool(ref["complete"].iloc[0]):
        raise InputError(
            f"--reference-cycle {reference_cycle}: not a complete cycle of this file (complete cycles: "
            f"{out.loc[ok, 'cycle'].tolist()[:20]}); give one of those."
        )
    q_ref = float(ref[f"{rev}_capacity_mAh"].iloc[0])
    v_ref = float(ref["mean_discharge_voltage_V"].iloc[0])
    out["retention"] = np.where(ok, out[f"{rev}_capacity_mAh"] / q_ref, np.nan)
    out["discharge_voltage_change_V"] = np.where(ok, out["mean_discharge_voltage_V"] - v_ref, np.nan)
    out["reference_cycle"] = reference_cycle
    mass = active_mass_mg if active_mass_mg is not None else (
        data.active_mass_mg if isinstance(data, CyclerData) else None)
    if mass is not None:
        if not np.isfinite(mass) or mass <= 0:
            raise InputError(f"--mass-mg {mass!r}: must be a positive number of milligrams.")
        out["specific_charge_capacity_mAh_g"] = out["charge_capacity_mAh"] / (mass / 1000.0)
        out["specific_discharge_capacity_mAh_g"] = out["discharge_capacity_mAh"] / (mass / 1000.0)
    return out
