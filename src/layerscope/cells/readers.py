"""Cycler files to one tidy table: Maccor, BioLogic, Neware, Arbin and plain CSV.

Every reader maps a *known* vendor layout explicitly (column names and units written out below)
and returns a :class:`CyclerData` whose ``data`` table has the same columns whatever the cycler:

==========================  =====================================================================
column                      meaning
==========================  =====================================================================
``time_s``                  test time since the first record, s
``cycle``                   the cycler's own cycle counter (nullable integer; NA where the file
                            has none)
``step``                    the cycler's step counter (nullable integer)
``current_A``               current, A; positive = charge = oxidation of the working electrode
                            (delithiation of a cathode)
``voltage_V``               cell voltage, V
``state``                   ``"charge"``, ``"discharge"`` or ``"rest"``
``half_cycle``              running number of charge/discharge segments (rests join the segment
                            before them), from 0
``charge_capacity_mAh``     charge passed while charging since the start of the cycle, mAh
``discharge_capacity_mAh``  charge passed while discharging since the start of the cycle, mAh
``capacity_mAh``            charge passed since the start of the half cycle, mAh (the x axis of
                            a voltage-capacity curve)
``specific_*_mAh_g``        the three capacities per gram of active material; only when the
                            active mass is given explicitly
==========================  =====================================================================

The capacities come from the cycler's own counters (which it integrates at its internal rate), not
from re-integrating the logged current. Each vendor resets its counters at a different moment
(Maccor: every step; Neware: every step; BioLogic: every half cycle; Arbin: every cycle); the
readers undo those resets with the rule written in :func:`counter_increments`.

An unknown layout raises :class:`~layerscope.errors.InputError` listing the columns that were
found, and so does a known layout with a column missing: no column is ever guessed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from layerscope.errors import InputError

__all__ = [
    "CyclerData",
    "TIDY_COLUMNS",
    "read_cycler",
    "read_maccor_text",
    "read_biologic_text",
    "read_biologic_mpr",
    "read_neware_nda",
    "read_neware_csv",
    "read_arbin_csv",
    "read_arbin_res",
    "read_plain_csv",
    "detect_layout",
    "counter_increments",
    "tidy_from_counters",
    "with_active_mass",
]

TIDY_COLUMNS = (
    "time_s",
    "cycle",
    "step",
    "current_A",
    "voltage_V",
    "state",
    "half_cycle",
    "charge_capacity_mAh",
    "discharge_capacity_mAh",
    "capacity_mAh",
)

#: Fraction of the largest abs(current) below which a record without a vendor state counts as rest.
DEFAULT_REST_CURRENT_FRACTION = 1e-3


@dataclass
class CyclerData:
    """A cycler file as one tidy table.

    Attributes
    ----------
    data : pandas.DataFrame
        The tidy table (columns in the module docstring).
    layout : str
        The vendor layout that was read (``"maccor-text"``, ``"biologic-text"``,
        ``"biologic-mpr"``, ``"neware-nda"``, ``"neware-csv"``, ``"arbin-csv"``, ``"arbin-res"``,
        ``"plain-csv"``).
    source : Path or None
        The file read.
    metadata : dict
        What the file says about itself (vendor header fields), plus ``active_mass_mg`` when
        given. The active mass stored by the vendor software is reported under
        ``vendor_active_mass`` for information only; it is never used.
    """

    data: pd.DataFrame
    layout: str
    source: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def active_mass_mg(self) -> float | None:
        """The active mass given explicitly by the user, mg (None when not given)."""
        return self.metadata.get("active_mass_mg")

    @property
    def n_cycles(self) -> int:
        """Number of distinct cycle numbers in the file (0 when the file has no cycle counter)."""
        return int(self.data["cycle"].dropna().nunique())


# ---------------------------------------------------------------------------------------------
# generic helpers
# ---------------------------------------------------------------------------------------------


def counter_increments(counter: np.ndarray, *, reset_groups: np.ndarray | None = None) -> np.ndarray:
    """Per-record increments of a cumulative cycler counter that is reset now and then.

    Rule: inside one reset group the increment is the difference to the previous record; the
    first record of a group, and any record where the counter *decreases* (a reset the file does
    not announce), contributes its own value (the counter restarts from zero). Summing the
    increments therefore reproduces the counter's final value in every group.

    Parameters
    ----------
    counter : ndarray
        Non-negative cumulative counter (e.g. charge capacity), any unit.
    reset_groups : ndarray, optional
        Labels of the runs in which the vendor documents that the counter is continuous (e.g. a
        step number). A change of label is a reset.

    Returns
    -------
    ndarray
        Increments, same unit as ``counter``; NaN counters give 0.
    """
    c = np.nan_to_num(np.asarray(counter, dtype=float), nan=0.0)
    inc = np.empty_like(c)
    if c.size == 0:
        return inc
    inc[0] = c[0]
    d = np.diff(c)
    restart = d < 0
    if reset_groups is not None:
        g = np.asarray(reset_groups)
        missing = pd.isna(g)
        # a missing label (no cycle number in the file) continues a run of missing labels: NaN != NaN
        # would make every record a restart and sum the counter's values instead of its steps
        restart |= (g[1:] != g[:-1]) & ~(missing[1:] & missing[:-1])
    inc[1:] = np.where(restart, c[1:], d)
    return inc


def _state_from_current(current_A: np.ndarray, *, rest_fraction: float) -> np.ndarray:
    i = np.asarray(current_A, dtype=float)
    imax = np.nanmax(np.abs(i)) if i.size else 0.0
    thr = rest_fraction * imax
    return np.where(i > thr, "charge", np.where(i < -thr, "discharge", "rest"))


def _half_cycles(state: np.ndarray, cycle: np.ndarray | None = None) -> np.ndarray:
    """Running number of charge/discharge segments; rests belong to the segment before them.

    A segment also ends where the cycler's own cycle counter changes, so that two discharges of
    different cycler cycles (e.g. a fast loop's last discharge and a slow diagnostic discharge after
    a rest) never merge into one half cycle.
    """
    state = np.asarray(state)
    active = state != "rest"
    # the last active state seen so far, carried over rests
    codes = np.where(state == "charge", 1, np.where(state == "discharge", 2, 0))
    last = pd.Series(np.where(active, codes, np.nan)).ffill().to_numpy()
    change = np.zeros(state.size, dtype=bool)
    if state.size:
        prev = np.concatenate([[np.nan], last[:-1]])
        change = active & (last != prev) & ~np.isnan(prev)
        if cycle is not None:
            cyc = pd.Series(cycle).astype("Float64").fillna(-1).to_numpy(dtype=float)
            change[1:] |= cyc[1:] != cyc[:-1]
    return np.cumsum(change).astype(np.int64)


def tidy_from_counters(
    *,
    time_s: np.ndarray,
    cycle: np.ndarray | None,
    step: np.ndarray | None,
    current_A: np.ndarray,
    voltage_V: np.ndarray,
    charge_increment_mAh: np.ndarray,
    discharge_increment_mAh: np.ndarray,
    state: np.ndarray | None = None,
    rest_current_fraction: float = DEFAULT_REST_CURRENT_FRACTION,
) -> pd.DataFrame:
    """Assemble the tidy table from mapped vendor columns.

    Parameters
    ----------
    time_s, current_A, voltage_V : ndarray
        Test time (s, any origin), current (A, positive = charge), voltage (V).
    cycle, step : ndarray or None
        Vendor counters; None when the file has none (stored as NA).
    charge_increment_mAh, discharge_increment_mAh : ndarray
        Non-negative per-record charge passed while charging / discharging (see
        :func:`counter_increments`).
    state : ndarray of str, optional
        ``"charge"``/``"discharge"``/``"rest"`` from the vendor's own state column; when None it
        is derived from the sign of the current, with ``abs(I) <= rest_current_fraction * maxabs(I)``
        counted as rest.
    rest_current_fraction : float
        See ``state``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TIDY_COLUMNS`.
    """
    n = len(time_s)
    t = np.asarray(time_s, dtype=float)
    if n == 0:
        raise InputError("cycler table: the file holds no data records; check that the export is complete.")
    if state is None:
        state = _state_from_current(current_A, rest_fraction=rest_current_fraction)
    state = np.asarray(state, dtype=object)
    cyc = pd.array(np.asarray(cycle), dtype="Int64") if cycle is not None else pd.array([pd.NA] * n, dtype="Int64")
    stp = pd.array(np.asarray(step), dtype="Int64") if step is not None else pd.array([pd.NA] * n, dtype="Int64")
    ch = np.clip(np.asarray(charge_increment_mAh, dtype=float), 0.0, None)
    dis = np.clip(np.asarray(discharge_increment_mAh, dtype=float), 0.0, None)
    half = _half_cycles(state, None if cycle is None else np.asarray(cyc, dtype=object))
    frame = pd.DataFrame(
        {
            "time_s": t - t[0],
            "cycle": cyc,
            "step": stp,
            "current_A": np.asarray(current_A, dtype=float),
            "voltage_V": np.asarray(voltage_V, dtype=float),
            "state": pd.Categorical(state, categories=["charge", "discharge", "rest"]),
            "half_cycle": half,
        }
    )
    cycle_key = frame["cycle"].fillna(-1).to_numpy()
    frame["charge_capacity_mAh"] = pd.Series(ch).groupby(cycle_key).cumsum().to_numpy()
    frame["discharge_capacity_mAh"] = pd.Series(dis).groupby(cycle_key).cumsum().to_numpy()
    # capacity within the half cycle: the increments that belong to the segment's direction
    seg_dir = pd.Series(np.where(state == "rest", None, state)).ffill().to_numpy()
    own = np.where(seg_dir == "charge", ch, np.where(seg_dir == "discharge", dis, 0.0))
    frame["capacity_mAh"] = pd.Series(own).groupby(half).cumsum().to_numpy()
    return frame


def with_active_mass(data: CyclerData, active_mass_mg: float | None) -> CyclerData:
    """Add the specific capacities (mAh/g) for an explicitly given active mass.

    Parameters
    ----------
    data : CyclerData
    active_mass_mg : float or None
        Mass of active material, mg. None leaves the table without specific columns.

    Returns
    -------
    CyclerData
        The same object, with ``specific_capacity_mAh_g``, ``specific_charge_capacity_mAh_g`` and
        ``specific_discharge_capacity_mAh_g`` added and ``metadata["active_mass_mg"]`` set.
    """
    if active_mass_mg is None:
        return data
    m = float(active_mass_mg)
    if not np.isfinite(m) or m <= 0:
        raise InputError(
            f"active mass {active_mass_mg!r} mg: must be a positive number of milligrams; pass the "
            "weighed mass of active material (e.g. --mass-mg 12.5)."
        )
    grams = m / 1000.0
    df = data.data
    df["specific_capacity_mAh_g"] = df["capacity_mAh"] / grams
    df["specific_charge_capacity_mAh_g"] = df["charge_capacity_mAh"] / grams
    df["specific_discharge_capacity_mAh_g"] = df["discharge_capacity_mAh"] / grams
    data.metadata["active_mass_mg"] = m
    return data


def _require(columns: list[str] | pd.Index, needed: list[str], *, path: Path, layout: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise InputError(
            f"{path}: looks like a {layout} file but the column(s) {missing} are missing "
            f"(found: {list(columns)}); export the file again with these columns switched on."
        )


def _numeric(series: pd.Series, *, path: Path, name: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        first = series[bad].iloc[0]
        raise InputError(
            f"{path}: column {name!r} has non-numeric value {first!r} at record {int(np.flatnonzero(bad)[0])}; "
            "check the decimal separator and that the export is not truncated mid-line."
        )
    return values.to_numpy(dtype=float)


def _hms_to_seconds(values: pd.Series, *, path: Path, name: str) -> np.ndarray:
    """'H:MM:SS(.s)' strings with hours possibly above 24 (Neware exports) to seconds."""
    parts = values.astype(str).str.strip().str.split(":", expand=True)
    if parts.shape[1] != 3:
        raise InputError(f"{path}: column {name!r} is not in H:MM:SS form (first value {values.iloc[0]!r}).")
    try:
        h, m, s = (parts[i].astype(float) for i in range(3))
    except ValueError as exc:
        raise InputError(f"{path}: column {name!r} is not in H:MM:SS form ({exc}).") from exc
    return (h * 3600.0 + m * 60.0 + s).to_numpy()


# ---------------------------------------------------------------------------------------------
# Maccor text export
# ---------------------------------------------------------------------------------------------

_MACCOR_STATES = {"C": "charge", "D": "discharge", "R": "rest"}


def read_maccor_text(path: str | Path, *, encoding: str = "latin-1") -> CyclerData:
    """Read a Maccor text export (tab-separated, ``Rec#``/``Cyc#``/``Step``/``Amp-hr`` columns).

    Maccor's ``Amp-hr`` is one unsigned counter that restarts at every step; ``State`` says
    whether the record is charge (C), discharge (D) or rest (R). ``Amps`` may be exported signed
    or unsigned; the sign is taken from ``State``. Any other state letter raises an error (it
    would need a mapping that cannot be guessed).

    Parameters
    ----------
    path : str or Path
    encoding : str
        Text encoding of the export (Maccor writes Windows code pages).

    Returns
    -------
    CyclerData
    """
    path = Path(path)
    with open(path, encoding=encoding, errors="replace") as fh:
        head = [fh.readline() for _ in range(5)]
    header_row = next((i for i, line in enumerate(head) if line.startswith("Rec#")), None)
    if header_row is None:
        raise InputError(f"{path}: no 'Rec#' header line in the first 5 lines; not a Maccor text export.")
    raw = pd.read_csv(path, sep="\t", skiprows=header_row, encoding=encoding, low_memory=False)
    raw.columns = [str(c).strip() for c in raw.columns]
    need = ["Cyc#", "Step", "Test (Sec)", "Amp-hr", "Amps", "Volts", "State"]
    _require(raw.columns, need, path=path, layout="Maccor text")
    letters = raw["State"].astype(str).str.strip().to_numpy()
    unknown = sorted(set(letters) - set(_MACCOR_STATES))
    if unknown:
        raise InputError(
            f"{path}: Maccor state letter(s) {unknown} have no charge/discharge/rest mapping here "
            f"(known: {sorted(_MACCOR_STATES)}); remove those records or export without them."
        )
    state = np.array([_MACCOR_STATES[s] for s in letters], dtype=object)
    sign = np.where(state == "charge", 1.0, np.where(state == "discharge", -1.0, 0.0))
    amps = _numeric(raw["Amps"], path=path, name="Amps")
    amp_hr = _numeric(raw["Amp-hr"], path=path, name="Amp-hr")
    step = raw["Step"].to_numpy()
    run = np.cumsum(np.r_[True, (step[1:] != step[:-1]) | (letters[1:] != letters[:-1])])
    inc_mAh = counter_increments(amp_hr, reset_groups=run) * 1000.0
    frame = tidy_from_counters(
        time_s=_numeric(raw["Test (Sec)"], path=path, name="Test (Sec)"),
        cycle=raw["Cyc#"].to_numpy(),
        step=step,
        current_A=np.abs(amps) * sign,
        voltage_V=_numeric(raw["Volts"], path=path, name="Volts"),
        charge_increment_mAh=np.where(state == "charge", inc_mAh, 0.0),
        discharge_increment_mAh=np.where(state == "discharge", inc_mAh, 0.0),
        state=state,
    )
    meta = {"header": head[0].strip()} if header_row > 0 else {}
    return CyclerData(frame, "maccor-text", path, meta)


# ---------------------------------------------------------------------------------------------
# BioLogic EC-Lab (.mpt text / ';' CSV export, and .mpr through galvani)
# ---------------------------------------------------------------------------------------------

_BIOLOGIC_VOLTAGE = ("Ecell/V", "Ewe/V")
_BIOLOGIC_TIME_FORMAT = "%m/%d/%Y %H:%M:%S.%f"


def _biologic_tidy(raw: pd.DataFrame, *, path: Path) -> pd.DataFrame:
    """Map EC-Lab column names (the same in .mpt, CSV and galvani's .mpr table) to the tidy table."""
    cols = list(raw.columns)
    volt = next((c for c in _BIOLOGIC_VOLTAGE if c in cols), None)
    if volt is None:
        raise InputError(
            f"{path}: BioLogic file without a voltage column (looked for {list(_BIOLOGIC_VOLTAGE)}; "
            f"found: {cols}); export Ecell/V or Ewe/V."
        )
    _require(cols, ["time/s", "I/mA", "cycle number"], path=path, layout="BioLogic EC-Lab")
    t = raw["time/s"]
    if pd.api.types.is_numeric_dtype(t):
        time_s = t.to_numpy(dtype=float)
    else:
        stamps = pd.to_datetime(t.astype(str).str.strip(), format=_BIOLOGIC_TIME_FORMAT, errors="coerce")
        if stamps.isna().any():
            raise InputError(
                f"{path}: 'time/s' holds neither seconds nor absolute MM/DD/YYYY HH:MM:SS.fff times "
                f"(first value {t.iloc[0]!r}); export with the relative or absolute MMDDYYYY time format."
            )
        time_s = (stamps - stamps.iloc[0]).dt.total_seconds().to_numpy()
    current_A = _numeric(raw["I/mA"], path=path, name="I/mA") / 1000.0
    if "Q charge/mA.h" in cols and "Q discharge/mA.h" in cols:
        # EC-Lab restarts both counters at every change of half cycle
        ch = counter_increments(_numeric(raw["Q charge/mA.h"], path=path, name="Q charge/mA.h"))
        dis = counter_increments(_numeric(raw["Q discharge/mA.h"], path=path, name="Q discharge/mA.h"))
    elif "(Q-Qo)/mA.h" in cols:
        # net charge since the start, signed (+ = oxidation): split its increments by sign
        dq = np.diff(_numeric(raw["(Q-Qo)/mA.h"], path=path, name="(Q-Qo)/mA.h"), prepend=0.0)
        ch, dis = np.clip(dq, 0, None), np.clip(-dq, 0, None)
    else:
        raise InputError(
            f"{path}: BioLogic file without a capacity counter (needs 'Q charge/mA.h' and "
            f"'Q discharge/mA.h', or '(Q-Qo)/mA.h'; found: {cols})."
        )
    step = raw["Ns"].to_numpy() if "Ns" in cols else None
    return tidy_from_counters(
        time_s=time_s,
        cycle=raw["cycle number"].to_numpy().astype(np.int64),
        step=step,
        current_A=current_A,
        voltage_V=_numeric(raw[volt], path=path, name=volt),
        charge_increment_mAh=ch,
        discharge_increment_mAh=dis,
    )


def read_biologic_text(path: str | Path, *, encoding: str = "latin-1") -> CyclerData:
    """Read an EC-Lab text export: ``.mpt`` (tab, with the 'EC-Lab ASCII FILE' header) or CSV (';').

    Columns used: ``time/s`` (seconds, or absolute ``MM/DD/YYYY HH:MM:SS.fff``), ``Ecell/V`` or
    ``Ewe/V``, ``I/mA`` (positive = oxidation of the working electrode), ``cycle number``, ``Ns``
    (sequence = step), and ``Q charge/mA.h`` + ``Q discharge/mA.h`` (restart at every half
    cycle) or else ``(Q-Qo)/mA.h``.
    """
    path = Path(path)
    with open(path, encoding=encoding, errors="replace") as fh:
        first = fh.readline()
        second = fh.readline()
    if first.startswith("EC-Lab ASCII FILE"):
        m = re.search(r"(\d+)", second)
        if m is None:
            raise InputError(f"{path}: EC-Lab header without 'Nb header lines'; the file is damaged.")
        skip = int(m.group(1)) - 1
        with open(path, encoding=encoding, errors="replace") as fh:
            for _ in range(skip + 1):
                fh.readline()
            first_row = fh.readline().rstrip("\n").split("\t")
        # EC-Lab writes the decimal separator of the Windows locale: "0,5" in many European set-ups
        comma = any(re.fullmatch(r"-?\d+,\d+(?:[eE][-+]?\d+)?", v.strip()) for v in first_row)
        raw = pd.read_csv(path, sep="\t", skiprows=skip, encoding=encoding, decimal="," if comma else ".",
                          low_memory=False)
    else:
        raw = pd.read_csv(path, sep=";", encoding=encoding, low_memory=False)
    raw.columns = [str(c).strip() for c in raw.columns]
    raw = raw.loc[:, [c for c in raw.columns if c and not c.startswith("Unnamed")]]
    return CyclerData(_biologic_tidy(raw, path=path), "biologic-text", path, {})


def read_biologic_mpr(path: str | Path) -> CyclerData:
    """Read an EC-Lab binary ``.mpr`` file through ``galvani`` (same column mapping as the text export)."""
    path = Path(path)
    from galvani import BioLogic

    try:
        mpr = BioLogic.MPRfile(str(path))
    except Exception as exc:  # galvani raises bare ValueError/NotImplementedError on unknown modules
        raise InputError(f"{path}: galvani could not read this .mpr file ({exc}); export it as text from EC-Lab.") from exc
    raw = pd.DataFrame(mpr.data)
    meta = {}
    if getattr(mpr, "startdate", None) is not None:
        meta["start_date"] = str(mpr.startdate)
    return CyclerData(_biologic_tidy(raw, path=path), "biologic-mpr", path, meta)


# ---------------------------------------------------------------------------------------------
# Neware (.nda/.ndax through NewareNDA, and the CSV export)
# ---------------------------------------------------------------------------------------------


def read_neware_nda(path: str | Path) -> CyclerData:
    """Read a Neware ``.nda``/``.ndax`` file through ``NewareNDA``.

    Columns used: ``Time`` (test time, s), ``Cycle``, ``Step`` (running step number; the
    capacity counters restart at every step), ``Current(mA)`` (negative on discharge),
    ``Voltage``, ``Charge_Capacity(mAh)``, ``Discharge_Capacity(mAh)``, ``Status`` (state).
    """
    path = Path(path)
    import NewareNDA

    try:
        raw = NewareNDA.read(str(path))
    except Exception as exc:  # the library raises bare exceptions on unknown versions
        raise InputError(f"{path}: NewareNDA could not read this file ({exc}); export it as CSV from BTSDA.") from exc
    need = ["Time", "Cycle", "Step", "Status", "Voltage", "Current(mA)", "Charge_Capacity(mAh)", "Discharge_Capacity(mAh)"]
    _require(raw.columns, need, path=path, layout="Neware NDA")
    return CyclerData(_neware_tidy(raw, path=path, current_scale=1e-3, capacity_scale=1.0,
                                   cols=dict(time="Time", cycle="Cycle", step="Step", status="Status",
                                             voltage="Voltage", current="Current(mA)",
                                             charge="Charge_Capacity(mAh)", discharge="Discharge_Capacity(mAh)")),
                      "neware-nda", path, {})


_NEWARE_STATUS = {
    "CC_Chg": "charge", "CV_Chg": "charge", "CCCV_Chg": "charge", "CP_Chg": "charge", "CR_Chg": "charge",
    "CC_DChg": "discharge", "CV_DChg": "discharge", "CCCV_DChg": "discharge", "CP_DChg": "discharge",
    "CR_DChg": "discharge",
    "Rest": "rest", "Pause": "rest",
}


def _neware_state(status: pd.Series, *, path: Path) -> np.ndarray:
    key = status.astype(str).str.strip().str.replace(" ", "_", regex=False)
    unknown = sorted(set(key.unique()) - set(_NEWARE_STATUS))
    if unknown:
        raise InputError(
            f"{path}: Neware step type(s) {unknown} have no charge/discharge/rest mapping here "
            f"(known: {sorted(_NEWARE_STATUS)}); drop those steps before reading."
        )
    return key.map(_NEWARE_STATUS).to_numpy(dtype=object)


def _neware_tidy(raw: pd.DataFrame, *, path: Path, current_scale: float, capacity_scale: float,
                 cols: dict[str, str], time_s: np.ndarray | None = None) -> pd.DataFrame:
    state = _neware_state(raw[cols["status"]], path=path)
    step = raw[cols["step"]].to_numpy()
    ch = counter_increments(_numeric(raw[cols["charge"]], path=path, name=cols["charge"]), reset_groups=step)
    dis = counter_increments(_numeric(raw[cols["discharge"]], path=path, name=cols["discharge"]), reset_groups=step)
    if time_s is None:
        time_s = _numeric(raw[cols["time"]], path=path, name=cols["time"])
    return tidy_from_counters(
        time_s=time_s,
        cycle=raw[cols["cycle"]].to_numpy(),
        step=step,
        current_A=_numeric(raw[cols["current"]], path=path, name=cols["current"]) * current_scale,
        voltage_V=_numeric(raw[cols["voltage"]], path=path, name=cols["voltage"]),
        charge_increment_mAh=ch * capacity_scale,
        discharge_increment_mAh=dis * capacity_scale,
        state=state,
    )


def read_neware_csv(path: str | Path, *, encoding: str = "utf-8") -> CyclerData:
    """Read a Neware BTSDA CSV export (``Cycle Index``, ``Step Index``, ``Step Type`` ...).

    Columns used: ``Cumulative Time`` (H:MM:SS), ``Cycle Index``, ``Step Index`` (counters
    restart at every step), ``Step Type``, ``Current(A)``, ``Voltage(V)``, ``Chg. Cap.(Ah)``,
    ``DChg. Cap.(Ah)``.
    """
    path = Path(path)
    raw = pd.read_csv(path, encoding=encoding, encoding_errors="replace", low_memory=False)
    raw.columns = [str(c).strip() for c in raw.columns]
    need = ["Cycle Index", "Step Index", "Step Type", "Cumulative Time", "Current(A)", "Voltage(V)",
            "Chg. Cap.(Ah)", "DChg. Cap.(Ah)"]
    _require(raw.columns, need, path=path, layout="Neware CSV")
    # the Step Index of a CSV export is the schedule line: a new step starts when it changes
    step_run = np.cumsum(np.r_[True, raw["Step Index"].to_numpy()[1:] != raw["Step Index"].to_numpy()[:-1]])
    raw = raw.assign(_step_run=step_run)
    time_s = _hms_to_seconds(raw["Cumulative Time"], path=path, name="Cumulative Time")
    frame = _neware_tidy(raw, path=path, current_scale=1.0, capacity_scale=1000.0, time_s=time_s,
                         cols=dict(time="Cumulative Time", cycle="Cycle Index", step="_step_run", status="Step Type",
                                   voltage="Voltage(V)", current="Current(A)", charge="Chg. Cap.(Ah)",
                                   discharge="DChg. Cap.(Ah)"))
    frame["step"] = pd.array(raw["Step Index"].to_numpy(), dtype="Int64")
    return CyclerData(frame, "neware-csv", path, {})


# ---------------------------------------------------------------------------------------------
# Arbin (CSV export and .res through mdbtools)
# ---------------------------------------------------------------------------------------------

_ARBIN_NEED = ["Test_Time", "Step_Index", "Cycle_Index", "Current", "Voltage", "Charge_Capacity", "Discharge_Capacity"]


def _arbin_tidy(raw: pd.DataFrame, *, path: Path) -> pd.DataFrame:
    """Arbin columns (A, V, Ah; counters restart at every cycle) to the tidy table."""
    _require(raw.columns, _ARBIN_NEED, path=path, layout="Arbin")
    cycle = pd.to_numeric(raw["Cycle_Index"], errors="coerce")
    step = pd.to_numeric(raw["Step_Index"], errors="coerce")
    groups = cycle.fillna(-1).to_numpy()
    ch = counter_increments(_numeric(raw["Charge_Capacity"], path=path, name="Charge_Capacity"), reset_groups=groups)
    dis = counter_increments(_numeric(raw["Discharge_Capacity"], path=path, name="Discharge_Capacity"),
                             reset_groups=groups)
    return tidy_from_counters(
        time_s=_numeric(raw["Test_Time"], path=path, name="Test_Time"),
        cycle=cycle.astype("Int64").to_numpy(),
        step=step.astype("Int64").to_numpy(),
        current_A=_numeric(raw["Current"], path=path, name="Current"),
        voltage_V=_numeric(raw["Voltage"], path=path, name="Voltage"),
        charge_increment_mAh=ch * 1000.0,
        discharge_increment_mAh=dis * 1000.0,
    )


def _arbin_meta(frame: pd.DataFrame) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if frame["cycle"].isna().all():
        meta["warning"] = ("the file has no Cycle_Index values: cycles are NA and per-cycle metrics "
                           "cannot be computed from it")
    return meta


def read_arbin_csv(path: str | Path) -> CyclerData:
    """Read an Arbin CSV export (``Data_Point``, ``Test_Time``, ``Cycle_Index`` ... in A, V, Ah).

    The sidecar ``*_Metadata.csv`` written next to it by BEEP-style exports is read into
    ``metadata`` when present.
    """
    path = Path(path)
    raw = pd.read_csv(path, low_memory=False)
    raw.columns = [str(c).strip() for c in raw.columns]
    frame = _arbin_tidy(raw, path=path)
    meta = _arbin_meta(frame)
    side = path.with_name(path.stem + "_Metadata.csv")
    if side.is_file():
        m = pd.read_csv(side)
        meta["vendor_metadata"] = {str(k): (None if pd.isna(v) else v) for k, v in m.iloc[0].items()
                                   if not str(k).startswith("Unnamed")}
    return CyclerData(frame, "arbin-csv", path, meta)


def read_arbin_res(path: str | Path) -> CyclerData:
    """Read an Arbin ``.res`` file (MS Access) with Debian's ``mdb-export`` (package mdbtools).

    Reads ``Channel_Normal_Table`` (same columns as the CSV export) and, for information only,
    the mass stored in ``Global_Table`` (``vendor_active_mass``, never used for specific
    capacities).
    """
    path = Path(path)
    exe = shutil.which("mdb-export")
    if exe is None:
        raise InputError(
            f"{path}: reading Arbin .res files needs the 'mdb-export' program, which is not installed; "
            "install it with 'apt-get install mdbtools' (Debian/Ubuntu) or 'brew install mdbtools' (macOS), "
            "or export the file as CSV from Arbin MITS Pro."
        )

    def export(table: str) -> pd.DataFrame:
        proc = subprocess.run([exe, str(path), table], capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise InputError(f"{path}: mdb-export could not read table {table!r} ({proc.stderr.strip()}); "
                             "is this an Arbin .res file?")
        return pd.read_csv(StringIO(proc.stdout), low_memory=False)

    raw = export("Channel_Normal_Table")
    raw = raw.sort_values(["Test_Time", "Data_Point"], kind="stable").reset_index(drop=True) \
        if "Data_Point" in raw.columns and "Test_Time" in raw.columns else raw
    frame = _arbin_tidy(raw, path=path)
    meta = _arbin_meta(frame)
    try:
        glob = export("Global_Table")
        if "MASS" in glob.columns:
            meta["vendor_active_mass"] = float(glob["MASS"].iloc[0])
        if "Test_Name" in glob.columns:
            meta["test_name"] = str(glob["Test_Name"].iloc[0])
    except InputError:
        pass  # the data table is what matters; the global table is information only
    return CyclerData(frame, "arbin-res", path, meta)


# ---------------------------------------------------------------------------------------------
# plain CSV with the tidy column names
# ---------------------------------------------------------------------------------------------

_PLAIN_NEED = ["time_s", "cycle", "current_A", "voltage_V"]


def read_plain_csv(path: str | Path) -> CyclerData:
    """Read a CSV that already uses the tidy names.

    Required: ``time_s``, ``cycle``, ``current_A`` (positive = charge), ``voltage_V``. Optional:
    ``step``; ``charge_capacity_mAh`` and ``discharge_capacity_mAh`` as counters restarting at
    most once per cycle (when absent, the capacities are integrated from the current with the
    trapezoid rule).
    """
    path = Path(path)
    raw = pd.read_csv(path, comment="#")
    raw.columns = [str(c).strip() for c in raw.columns]
    _require(raw.columns, _PLAIN_NEED, path=path, layout="plain CSV")
    t = _numeric(raw["time_s"], path=path, name="time_s")
    i = _numeric(raw["current_A"], path=path, name="current_A")
    cycle = raw["cycle"].to_numpy()
    if "charge_capacity_mAh" in raw.columns and "discharge_capacity_mAh" in raw.columns:
        ch = counter_increments(_numeric(raw["charge_capacity_mAh"], path=path, name="charge_capacity_mAh"),
                                reset_groups=cycle)
        dis = counter_increments(_numeric(raw["discharge_capacity_mAh"], path=path, name="discharge_capacity_mAh"),
                                 reset_groups=cycle)
    else:
        if np.any(np.diff(t) < 0):
            raise InputError(f"{path}: time_s decreases; sort the records by time before reading.")
        # trapezoid charge in each interval, mAh; the interval's sign decides the direction
        dq = np.r_[0.0, 0.5 * (i[1:] + i[:-1]) * np.diff(t) / 3.6]
        ch, dis = np.clip(dq, 0, None), np.clip(-dq, 0, None)
    frame = tidy_from_counters(
        time_s=t, cycle=cycle, step=raw["step"].to_numpy() if "step" in raw.columns else None,
        current_A=i, voltage_V=_numeric(raw["voltage_V"], path=path, name="voltage_V"),
        charge_increment_mAh=ch, discharge_increment_mAh=dis,
    )
    return CyclerData(frame, "plain-csv", path, {})


# ---------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------

_READERS: dict[str, Callable[[Path], CyclerData]] = {
    "maccor-text": read_maccor_text,
    "biologic-text": read_biologic_text,
    "biologic-mpr": read_biologic_mpr,
    "neware-nda": read_neware_nda,
    "neware-csv": read_neware_csv,
    "arbin-csv": read_arbin_csv,
    "arbin-res": read_arbin_res,
    "plain-csv": read_plain_csv,
}


def _header_columns(line: str) -> list[str]:
    for sep in ("\t", ";", ","):
        if sep in line:
            return [c.strip() for c in line.strip().split(sep)]
    return [line.strip()]


def _refuse_non_data(path: Path) -> None:
    """One named line for files that sit next to cycler data but hold none (logs, metadata, curves)."""
    with open(path, encoding="latin-1", errors="replace") as fh:
        first = fh.readline()
    siblings = sorted(p.name for p in path.parent.glob(path.stem + ".*") if p != path and p.suffix.lower() in
                      (".csv", ".mpt", ".mpr", ".txt"))
    if path.suffix.lower() == ".mpl" or "LOG FILE" in first[:40]:
        hint = f"run cycling on {siblings[0]}" if siblings else "run cycling on the .mpr/.mpt/.csv data file"
        raise InputError(f"{path}: a BioLogic log file (settings and events, no data records); {hint}.")
    if path.name.endswith("_Metadata.csv") and "Test_ID" in first:
        main = path.name[: -len("_Metadata.csv")] + ".csv"
        raise InputError(f"{path}: an Arbin metadata sidecar (no data records); run cycling on {main}, which reads "
                         "this file with it.")
    if path.suffix.lower() == ".mat" or ("SOC_aligned" in first and "Voltage_aligned" in first):
        raise InputError(f"{path}: a processed voltage curve with a normalised capacity, not a cycler export; "
                         "'layerscope cycling' gives its voltage curve and dQ/dV (no per-cycle metrics).")


def detect_layout(path: str | Path) -> str:
    """Name the cycler layout of ``path`` from its extension and its header.

    Raises
    ------
    InputError
        For a file that matches no known layout; the message lists the columns found.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    if suffix == ".mpr":
        return "biologic-mpr"
    if suffix in (".nda", ".ndax"):
        return "neware-nda"
    if suffix == ".res":
        return "arbin-res"
    _refuse_non_data(path)
    with open(path, encoding="latin-1", errors="replace") as fh:
        lines = [fh.readline() for _ in range(8)]
    if lines[0].startswith("EC-Lab ASCII FILE"):
        return "biologic-text"
    if any(line.startswith("Rec#") for line in lines) and "Cyc#" in "".join(lines):
        return "maccor-text"
    first = next((line for line in lines if line.strip() and not line.startswith("#")), lines[0])
    cols = _header_columns(first)
    cset = set(cols)
    if {"time/s", "I/mA", "cycle number"} <= cset and cset & set(_BIOLOGIC_VOLTAGE):
        return "biologic-text"
    if {"Data_Point", "Test_Time", "Cycle_Index", "Charge_Capacity"} <= cset:
        return "arbin-csv"
    if {"Cycle Index", "Step Index", "Step Type", "Chg. Cap.(Ah)"} <= cset:
        return "neware-csv"
    if set(_PLAIN_NEED) <= cset:
        return "plain-csv"
    raise InputError(
        f"{path}: unknown cycler layout (columns found: {cols}). Known: Maccor text export, BioLogic "
        "EC-Lab (.mpr/.mpt/';' CSV), Neware (.nda/.ndax/CSV), Arbin (.res/CSV), or a plain CSV with "
        f"the columns {_PLAIN_NEED} (+ optional step, charge_capacity_mAh, discharge_capacity_mAh)."
    )


def read_cycler(path: str | Path, *, active_mass_mg: float | None = None, layout: str | None = None) -> CyclerData:
    """Read any supported cycler file into the tidy table.

    Parameters
    ----------
    path : str or Path
        Maccor text export, BioLogic ``.mpr``/``.mpt``/CSV, Neware ``.nda``/``.ndax``/CSV, Arbin
        ``.res``/CSV, or a plain CSV with the tidy column names.
    active_mass_mg : float, optional
        Mass of active material, mg. Specific capacities (mAh/g) are only computed when it is
        given; the mass stored by vendor software is never used.
    layout : str, optional
        Force a layout name (see :func:`detect_layout`) instead of detecting it.

    Returns
    -------
    CyclerData
    """
    path = Path(path)
    if layout is None:
        layout = detect_layout(path)
    if layout not in _READERS:
        raise InputError(f"layout {layout!r} is not known; choose one of {sorted(_READERS)}.")
    data = _READERS[layout](path)
    return with_active_mass(data, active_mass_mg)
