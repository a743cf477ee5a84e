"""Rate-capability table: capacity at each C-rate.

The C-rate of a half cycle is its median abs(current) (the constant-current part of a CC or CC-CV
step) divided by the nominal capacity, which the user states explicitly (1C = the current that
would pass the nominal capacity in one hour). Consecutive cycles whose discharge rate agrees
within ``rate_tolerance`` form one rate step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from layerscope.cells.metrics import cycle_metrics, half_cycle_metrics
from layerscope.cells.readers import CyclerData
from layerscope.errors import InputError

__all__ = ["c_rates", "rate_capability"]


def c_rates(data: CyclerData | pd.DataFrame, *, nominal_capacity_mAh: float) -> pd.DataFrame:
    """Charge and discharge C-rate of every cycle.

    Returns
    -------
    pandas.DataFrame
        ``cycle``, ``charge_c_rate``, ``discharge_c_rate`` (NaN where the half is missing).
    """
    if not (nominal_capacity_mAh and nominal_capacity_mAh > 0):
        raise InputError(f"--nominal-capacity-mah {nominal_capacity_mAh!r}: the nominal capacity must be > 0 mAh; give the cell's nominal "
                         "capacity (C-rates are defined against it).")
    halves = half_cycle_metrics(data)
    # the longest half cycle of each direction sets the cycle's rate
    idx = halves.groupby(["cycle", "direction"])["capacity_mAh"].idxmax()
    main = halves.loc[idx.to_numpy()]
    rate = main.assign(c_rate=main["median_current_A"] * 1000.0 / nominal_capacity_mAh)
    wide = rate.pivot(index="cycle", columns="direction", values="c_rate")
    out = pd.DataFrame({"cycle": wide.index.astype(int)})
    for d in ("charge", "discharge"):
        out[f"{d}_c_rate"] = wide[d].to_numpy() if d in wide.columns else np.nan
    return out


def rate_capability(
    data: CyclerData | pd.DataFrame,
    *,
    nominal_capacity_mAh: float,
    electrode: Literal["cathode", "anode"] = "cathode",
    rate_tolerance: float = 0.1,
    active_mass_mg: float | None = None,
) -> pd.DataFrame:
    """Capacity per C-rate step.

    Parameters
    ----------
    data : CyclerData or pandas.DataFrame
    nominal_capacity_mAh : float
        The capacity that defines 1C, mAh (no default).
    electrode : {"cathode", "anode"}
        The reversible direction whose rate and capacity are tabulated (discharge for a cathode,
        charge = delithiation for an anode half cell).
    rate_tolerance : float
        Relative difference of C-rate below which consecutive cycles belong to one step.
    active_mass_mg : float, optional
        For specific capacities (defaults to the mass given to the reader).

    Returns
    -------
    pandas.DataFrame
        One row per rate step: ``c_rate``, ``first_cycle``, ``last_cycle``, ``n_cycles``,
        ``capacity_mAh`` (mean), ``capacity_std_mAh``, ``mean_voltage_V``,
        ``capacity_vs_slowest`` (mean capacity / that of the slowest step), and
        ``specific_capacity_mAh_g`` when a mass is known.
    """
    direction = "discharge" if electrode == "cathode" else "charge"
    metrics = cycle_metrics(data, electrode=electrode, active_mass_mg=active_mass_mg)
    rates = c_rates(data, nominal_capacity_mAh=nominal_capacity_mAh)
    m = metrics.merge(rates, on="cycle")
    m = m[m["headline"] & m[f"{direction}_c_rate"].notna()].reset_index(drop=True)
    if m.empty:
        raise InputError("--nominal-capacity-mah: no complete cycle with a measurable rate, so there is no rate table; "
                         "drop the option.")
    r = m[f"{direction}_c_rate"].to_numpy()
    step = np.zeros(r.size, dtype=int)
    for k in range(1, r.size):
        same = abs(r[k] - r[k - 1]) <= rate_tolerance * max(r[k], r[k - 1])
        step[k] = step[k - 1] + (0 if same else 1)
    m["rate_step"] = step
    cap = f"{direction}_capacity_mAh"
    volt = f"mean_{direction}_voltage_V"
    out = m.groupby("rate_step").agg(
        c_rate=(f"{direction}_c_rate", "median"),
        first_cycle=("cycle", "first"),
        last_cycle=("cycle", "last"),
        n_cycles=("cycle", "size"),
        capacity_mAh=(cap, "mean"),
        capacity_std_mAh=(cap, "std"),
        mean_voltage_V=(volt, "mean"),
    ).reset_index(drop=True)
    slowest = out.loc[out["c_rate"].idxmin(), "capacity_mAh"]
    out["capacity_vs_slowest"] = out["capacity_mAh"] / slowest
    spec = f"specific_{direction}_capacity_mAh_g"
    if spec in m.columns:
        out["specific_capacity_mAh_g"] = m.groupby("rate_step")[spec].mean().to_numpy()
    return out
