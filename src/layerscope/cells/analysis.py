"""Stages of the cycling analysis (issue 21): read once, then number cycles, dQ/dV and provenance.

:func:`layerscope.cells.workflow.analyse_cycling` runs them in order on data already read; nothing
here writes a file or draws a figure. :func:`read_cycling` is the one place a cycler file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from layerscope.cells.dqdv import NI_RICH_NMC_CHARGE_PEAKS, NI_RICH_NMC_DISCHARGE_PEAKS, DQDVCurve, dqdv_by_cycle, track_peaks
from layerscope.cells.metrics import half_cycle_metrics, pair_cycles
from layerscope.cells.options import CyclingOptions
from layerscope.cells.readers import CyclerData, read_cycler, with_active_mass
from layerscope.errors import InputError
from layerscope.provenance import Provenance

__all__ = ["read_cycling", "with_options", "number_cycles", "dqdv_stage", "cycling_provenance"]


def read_cycling(path: str | Path, options: CyclingOptions) -> CyclerData:
    """Read a cycler file (any supported layout) with the active mass of ``options``.

    Parameters
    ----------
    path : str or Path
        Cycler file (see :func:`layerscope.cells.readers.read_cycler`).
    options : CyclingOptions

    Returns
    -------
    CyclerData
    """
    return read_cycler(path, active_mass_mg=options.active_mass_mg)


def with_options(data: CyclerData, options: CyclingOptions) -> CyclerData:
    """Data read elsewhere, with the specific capacities of ``options.active_mass_mg`` when given."""
    return data if options.active_mass_mg is None else with_active_mass(data, options.active_mass_mg)


def number_cycles(data: CyclerData, options: CyclingOptions) -> tuple[CyclerData, bool, list[str]]:
    """The table with the cycle numbers the analysis uses.

    The cycler's own counter, unless ``options.pairs`` is set or the counter groups several
    charges or discharges into one cycle (then charge/discharge pairs, with a note).

    Returns
    -------
    (CyclerData, bool, list of str)
        The renumbered data, whether pairs were used, and notes.
    """
    table = data.data
    pairs = options.pairs
    notes: list[str] = []
    _refuse_without_cycles(data)
    if table["cycle"].isna().any() and not pairs:
        raise InputError(f"{data.source}: records without a cycle number ({data.metadata.get('warning', '')}); "
                         "per-cycle analysis needs them. Use --pairs to number charge/discharge pairs instead.")
    if not pairs:
        counts = half_cycle_metrics(table).groupby(["cycle", "direction"]).size()
        if (counts > 1).any():
            notes.append("The cycler's cycle counter groups several charges or discharges into one cycle; cycles "
                         "were renumbered as charge/discharge pairs (the cycler's number is kept as cycler_cycle).")
            pairs = True
    if pairs:
        table = pair_cycles(table, electrode=options.electrode)
    return CyclerData(table, data.layout, data.source, data.metadata), pairs, notes


def dqdv_stage(work: CyclerData, options: CyclingOptions
               ) -> tuple[dict[int, DQDVCurve], pd.DataFrame | None, dict | None, list[str]]:
    """dQ/dV of every cycle and the named peaks tracked over the cycles.

    Returns
    -------
    (dict, DataFrame or None, dict or None, list of str)
        Curves by cycle, the peak table (None without curves), the peak windows used (V) and notes.
    """
    direction = options.direction
    if options.peak_windows is not None:
        windows = dict(options.peak_windows)
    else:
        # the windows track_peaks uses by default, recorded as such (provenance names what was used)
        windows = NI_RICH_NMC_CHARGE_PEAKS if direction == "charge" else NI_RICH_NMC_DISCHARGE_PEAKS
    opts = options.dqdv
    specific = "specific_capacity_mAh_g" in work.data.columns
    curves = dqdv_by_cycle(work, direction=direction, specific=specific, **opts)
    notes: list[str] = []
    peaks = None
    if curves:
        peaks = track_peaks(work, windows=windows, direction=direction, specific=specific, **opts)
        if not peaks["found"].any():
            notes.append("None of the named dQ/dV peaks was found in any cycle (is this a Ni-rich cathode vs Li? "
                         "give peak windows for other chemistries or full cells).")
    else:
        notes.append(f"No {direction} half cycle long enough for dQ/dV (at least 10 records spanning more than the "
                     f"{opts['window_V'] * 1000:g} mV window of --dqdv-window-mv).")
    return curves, peaks, windows, notes


def cycling_provenance(data: CyclerData, parameters: dict[str, Any]) -> Provenance:
    """One provenance record: the sha256 of the cycler file (of the numeric table when in memory)."""
    src = data.source
    if src is not None and Path(src).is_file():
        return Provenance.create([Path(src)], parameters=parameters)
    return Provenance.create([data.data.select_dtypes("number").to_numpy(float)], parameters=parameters)


def _refuse_without_cycles(data: CyclerData) -> None:
    """Refuse, in one line, a file that holds no charge or no discharge at all (nothing to pair)."""
    t = data.data
    present = set(t["state"].astype(str))
    for d in ("charge", "discharge"):
        if d not in present:
            v = t["voltage_V"]
            raise InputError(
                f"{data.source}: the file holds no {d} ({len(t)} records over {t['time_s'].iloc[-1]:.0f} s, "
                f"{v.min():.2f}-{v.max():.2f} V, {t['charge_capacity_mAh'].max() + t['discharge_capacity_mAh'].max():.4g} "
                "mAh passed): there is no cycle to analyse; cycling needs a charge and a discharge.")
