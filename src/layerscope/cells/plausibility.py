"""Plausibility of per-cycle metrics: which cycles may enter the headline numbers, and why not.

Real cycler files end mid-cycle, start from a partly charged cell, or are read with the wrong
electrode convention. The numbers of such cycles are still computed (they are in ``cycles.csv``),
but they are left out of the headline (retention, mean Coulombic efficiency, energy efficiency)
and named in ``summary.json`` ``flags``:

* ``incomplete_cycles``: a cycle lacks its charge or its discharge (fewer than
  ``min_half_fraction`` of the other half).
* ``truncated_last_cycle``: the file's last cycle has both halves, but one of them ended early:
  its capacity is below ``TRUNCATED_CAPACITY_FRACTION`` of the previous cycles at the same
  current (within ``SAME_RATE_TOLERANCE``), or it stopped more than ``EARLY_END_FRACTION`` of the
  voltage window before the cut-off that the earlier half cycles of that direction reached.
* ``partial_first_cycle``: the file's first half cycle started more than
  ``PARTIAL_START_FRACTION`` of the voltage window past where the later half cycles of that
  direction start (a charge that begins from a partly charged cell): its efficiency would exceed 1.
* ``coulombic_efficiency_above_1`` / ``energy_efficiency_above_1``: more charge (energy) out than
  in, beyond ``EFFICIENCY_TOLERANCE``; when most cycles do it, the likely cause is the electrode
  convention (``--electrode``).
* ``anode_voltage_range``: cathode convention on a file whose charges end below
  ``ANODE_MAX_VOLTAGE_V`` (an anode half cell vs Li).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["mark_headline", "headline_flags"]

TRUNCATED_CAPACITY_FRACTION = 0.5
SAME_RATE_TOLERANCE = 0.1
EARLY_END_FRACTION = 0.1
PARTIAL_START_FRACTION = 0.25
EFFICIENCY_TOLERANCE = 0.005
ANODE_MAX_VOLTAGE_V = 2.0


def _main_halves(halves: pd.DataFrame) -> pd.DataFrame:
    """The largest half cycle of each (cycle, direction)."""
    idx = halves.groupby(["cycle", "direction"])["capacity_mAh"].idxmax()
    return halves.loc[idx.to_numpy()].set_index(["cycle", "direction"])


def _voltage_window_V(main: pd.DataFrame) -> float:
    """Median charge end voltage minus median discharge end voltage, V."""
    ends = main["end_voltage_V"].groupby(level="direction").median()
    if "charge" not in ends or "discharge" not in ends:
        return float("nan")
    return float(abs(ends["charge"] - ends["discharge"]))


def _truncation_reason(cycles: pd.DataFrame, main: pd.DataFrame, last: int) -> str:
    """Why the complete last cycle counts as truncated ('' when it does not)."""
    earlier = cycles.loc[(cycles["cycle"] < last) & (cycles["excluded"] == ""), "cycle"].to_numpy()
    window = _voltage_window_V(main)
    if earlier.size == 0 or not np.isfinite(window) or window <= 0:
        return ""
    for d, sign in (("charge", -1.0), ("discharge", 1.0)):
        if (last, d) not in main.index:
            continue
        h = main.loc[(last, d)]
        prev = main.loc[[(c, d) for c in earlier[-5:] if (c, d) in main.index]]
        same = prev[(prev["median_current_A"] - h["median_current_A"]).abs()
                    <= SAME_RATE_TOLERANCE * prev["median_current_A"]]
        if not same.empty and h["capacity_mAh"] < TRUNCATED_CAPACITY_FRACTION * same["capacity_mAh"].median():
            return (f"its {d} ({h['capacity_mAh']:.4g} mAh) is {100 * h['capacity_mAh'] / same['capacity_mAh'].median():.0f} % "
                    f"of the previous cycles' at the same current ({same['capacity_mAh'].median():.4g} mAh)")
        ref_end = main.loc[[(c, d) for c in earlier if (c, d) in main.index], "end_voltage_V"].median()
        if sign * (h["end_voltage_V"] - ref_end) > EARLY_END_FRACTION * window:
            return f"its {d} stopped at {h['end_voltage_V']:.3f} V (earlier {d}s ended at {ref_end:.3f} V)"
    return ""


def _partial_start_reason(cycles: pd.DataFrame, halves: pd.DataFrame, main: pd.DataFrame) -> str:
    """Why the file's first cycle started from a partly (dis)charged cell ('' when it did not)."""
    first = halves.iloc[0]
    c0 = cycles.iloc[0]
    if int(first["cycle"]) != int(c0["cycle"]) or not bool(c0["complete"]):
        return ""
    d = first["direction"]
    later = main.xs(d, level="direction")
    later = later[later.index > c0["cycle"]]["start_voltage_V"]
    window = _voltage_window_V(main)
    if later.empty or not np.isfinite(window) or window <= 0:
        return ""
    sign = 1.0 if d == "charge" else -1.0
    if sign * (first["start_voltage_V"] - later.median()) > PARTIAL_START_FRACTION * window:
        return (f"its {d} started at {first['start_voltage_V']:.3f} V, where the later {d}s start at "
                f"{later.median():.3f} V: the cell was partly {d}d before the file begins")
    return ""


def mark_headline(cycles: pd.DataFrame, halves: pd.DataFrame) -> pd.DataFrame:
    """Add ``excluded`` (why a cycle is left out of the headline, '' if it is not) and ``headline``.

    Parameters
    ----------
    cycles : pandas.DataFrame
        Per-cycle table with ``cycle``, ``complete`` and ``flag``.
    halves : pandas.DataFrame
        :func:`~layerscope.cells.metrics.half_cycle_metrics` of the same table.

    Returns
    -------
    pandas.DataFrame
        ``cycles`` with ``excluded`` and ``headline`` added and the reason appended to ``flag``.
    """
    out = cycles.copy()
    out["excluded"] = np.where(out["complete"], "", "incomplete")
    main = _main_halves(halves)
    why = _partial_start_reason(out, halves, main)
    if why:
        out.loc[out.index[0], "excluded"] = "partial_first_cycle"
        out.loc[out.index[0], "flag"] = why
    last = out.index[-1]
    if out.loc[last, "excluded"] == "" and len(out) > 1:
        why = _truncation_reason(out, main, int(out.loc[last, "cycle"]))
        if why:
            out.loc[last, "excluded"] = "truncated_last_cycle"
            out.loc[last, "flag"] = "truncated: " + why
    out["headline"] = out["excluded"] == ""
    return out


def _cycle_list(values) -> str:
    v = [int(x) for x in values]
    return ", ".join(map(str, v[:12])) + (f" ... ({len(v)} cycles)" if len(v) > 12 else "")


def _efficiency_cause(median: float, *, electrode: str, upper_cutoff_V: float) -> str:
    """The likely cause of efficiencies above 1, with the CLI option that fixes it."""
    other = "anode" if electrode == "cathode" else "cathode"
    if median <= 1 + EFFICIENCY_TOLERANCE:
        return ("but not in most cycles: more came out than went in (a cycle that began partly charged, or counter "
                f"noise on short steps); if the whole file is another electrode give --electrode {other}")
    anode_like = upper_cutoff_V < ANODE_MAX_VOLTAGE_V
    if (electrode == "anode") == anode_like:
        return (f"in most cycles (median {median:.3f}) although the voltages (charges end at {upper_cutoff_V:.2f} V) "
                f"fit --electrode {electrode}: check the current calibration and the cycler's capacity counters")
    return f"in most cycles (median {median:.3f}): the electrode convention is probably wrong, give --electrode {other}"


def headline_flags(cycles: pd.DataFrame, *, electrode: str, upper_cutoff_V: float) -> list[dict[str, str]]:
    """The summary-level flags (code + one-line message) of a per-cycle table with ``headline``.

    Parameters
    ----------
    cycles : pandas.DataFrame
        Output of :func:`~layerscope.cells.metrics.cycle_metrics`.
    electrode : {"cathode", "anode"}
        The convention the cycles were computed with.
    upper_cutoff_V : float
        Median end voltage of the charge half cycles, V (the upper cut-off).

    Returns
    -------
    list of dict
        ``{"code": ..., "message": ...}``, in a fixed order.
    """
    flags = []
    for code in ("partial_first_cycle", "truncated_last_cycle"):
        for _, r in cycles[cycles["excluded"] == code].iterrows():
            flags.append({"code": code, "message": f"cycle {int(r['cycle'])}: {r['flag'].removeprefix('truncated: ')}; "
                                                   "left out of retention, mean efficiencies and the last-cycle values"})
    inc = cycles[cycles["excluded"] == "incomplete"]
    if not inc.empty:
        flags.append({"code": "incomplete_cycles", "message": f"cycle(s) {_cycle_list(inc['cycle'])} lack a charge or a "
                                                             "discharge; left out of the headline"})
    head = cycles[cycles["headline"]]
    if head.empty:
        flags.append({"code": "no_headline_cycle", "message": "no complete, untruncated cycle: no retention or mean "
                                                              "efficiency is reported"})
    for col, code, what in (("coulombic_efficiency", "coulombic_efficiency_above_1", "Coulombic"),
                            ("energy_efficiency", "energy_efficiency_above_1", "energy")):
        high = head[head[col] > 1 + EFFICIENCY_TOLERANCE]
        if high.empty:
            continue
        cause = _efficiency_cause(head[col].median(), electrode=electrode, upper_cutoff_V=upper_cutoff_V)
        flags.append({"code": code, "message": f"{what} efficiency above 1 in cycle(s) {_cycle_list(high['cycle'])} "
                                               f"(max {high[col].max():.3f}) {cause}"})
    if electrode == "cathode" and upper_cutoff_V < ANODE_MAX_VOLTAGE_V:
        flags.append({"code": "anode_voltage_range", "message": f"charges end at {upper_cutoff_V:.2f} V: an anode half "
                                                                "cell vs Li? give --electrode anode"})
    return flags
