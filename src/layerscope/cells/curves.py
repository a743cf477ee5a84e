"""Processed voltage curves with a normalised capacity (no mAh): the voltage curve and its dQ/dV.

Some published cycling data are not cycler exports but processed pseudo-OCV curves whose capacity
axis is normalised to 0-1 (or 0-100 % state of charge). What a user can get from them is the
voltage curve and dQ/dV (in fraction of the capacity per volt, 1/V) with its peaks; what needs
mAh (capacity, Coulombic efficiency, retention, energy, specific capacity, C-rates) cannot be
computed and is refused with a one-line message.

Known layouts:

* ``tum-mat``: MATLAB struct with fields ``normalizedCapacity`` (0-1) and ``voltage`` (V), as in
  tum-ees/DegradationModeAnalysis ``InputData/``; the arrays may run either way, the capacity is
  the degree of delithiation (the voltage rises with it).
* ``aligned-csv``: BEEP's ``*_aligned.csv`` with ``SOC_aligned`` (0-100 %) and
  ``Voltage_aligned`` (V).

The direction (delithiation/lithiation, charge/discharge) cannot be read from a processed curve;
it is taken from the file name when the name says it, and reported as ``None`` otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.cells.dqdv import (
    NI_RICH_NMC_CHARGE_PEAKS,
    NI_RICH_NMC_DISCHARGE_PEAKS,
    DQDVCurve,
    dqdv,
    find_dqdv_peaks,
)
from layerscope.errors import InputError
from layerscope.io.output import writes_folder
from layerscope.provenance import Provenance

__all__ = ["NormalisedCurve", "CurveOptions", "CurveResult", "curve_layout", "read_normalised_curve",
           "analyse_curve"]

#: Largest excursion of a normalised capacity outside 0-1 that is still rounding, fraction.
NORMALISED_TOLERANCE = 0.01


@dataclass
class NormalisedCurve:
    """A voltage curve against a normalised capacity.

    Attributes
    ----------
    capacity_fraction : ndarray
        Normalised capacity, 0-1 (dimensionless).
    voltage_V : ndarray
        Voltage, V.
    label : str or None
        ``"delithiation"``, ``"lithiation"``, ``"charge"`` or ``"discharge"`` when the file name says
        so, else None.
    layout : str
        ``"tum-mat"`` or ``"aligned-csv"``.
    source : Path
    """

    capacity_fraction: np.ndarray
    voltage_V: np.ndarray
    label: str | None
    layout: str
    source: Path
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CurveOptions:
    """Options of :func:`analyse_curve`.

    Attributes
    ----------
    voltage_step_V : float
        Voltage grid of dQ/dV, V.
    window_V : float
        Savitzky-Golay window of dQ/dV, V.
    min_prominence_fraction : float
        Peaks lower than this fraction of the highest abs(dQ/dV) are ignored.
    """

    voltage_step_V: float = 0.001
    window_V: float = 0.015
    min_prominence_fraction: float = 0.05


def curve_layout(path: str | Path) -> str | None:
    """``"tum-mat"`` or ``"aligned-csv"`` when ``path`` is a normalised curve, else None (cheap: header only)."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return "tum-mat"
    if path.suffix.lower() == ".csv" and path.is_file():
        with open(path, encoding="latin-1", errors="replace") as fh:
            head = fh.readline()
        if "SOC_aligned" in head and "Voltage_aligned" in head:
            return "aligned-csv"
    return None


def _label(name: str) -> str | None:
    low = name.lower()
    for word in ("delithiation", "lithiation", "discharge", "charge"):
        if re.search(rf"(^|[^a-z]){word}([^a-z]|$)", low):
            return word
    return None


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises several types on damaged or v7.3 (HDF5) files
        raise InputError(f"{path}: scipy.io.loadmat cannot read it ({exc}); save it with MATLAB 'save -v7'.") from exc
    for key, value in mat.items():
        if key.startswith("__"):
            continue
        names = getattr(value, "_fieldnames", None) or []
        if "normalizedCapacity" in names and "voltage" in names:
            return (np.asarray(value.normalizedCapacity, dtype=float).ravel(),
                    np.asarray(value.voltage, dtype=float).ravel())
    found = {k: getattr(v, "_fieldnames", None) for k, v in mat.items() if not k.startswith("__")}
    raise InputError(f"{path}: a .mat file without a struct holding normalizedCapacity and voltage (found {found}); "
                     "cycling reads MATLAB files only in that layout (tum-ees/DegradationModeAnalysis).")


def read_normalised_curve(path: str | Path) -> NormalisedCurve:
    """Read a processed voltage curve with a normalised capacity (layouts in the module docstring).

    Raises
    ------
    InputError
        Unknown layout, unequal lengths, fewer than 20 finite points, or a capacity outside 0-1.
    """
    path = Path(path)
    layout = curve_layout(path)
    if layout == "tum-mat":
        q, v = _read_mat(path)
    elif layout == "aligned-csv":
        raw = pd.read_csv(path)
        q = pd.to_numeric(raw["SOC_aligned"], errors="coerce").to_numpy(float) / 100.0
        v = pd.to_numeric(raw["Voltage_aligned"], errors="coerce").to_numpy(float)
    else:
        raise InputError(f"{path}: not a normalised voltage curve (.mat with normalizedCapacity/voltage, or a CSV "
                         "with SOC_aligned/Voltage_aligned).")
    if q.shape != v.shape:
        raise InputError(f"{path}: {q.size} capacities but {v.size} voltages; the curve is damaged.")
    keep = np.isfinite(q) & np.isfinite(v)
    q, v = q[keep], v[keep]
    if q.size < 20:
        raise InputError(f"{path}: only {q.size} finite points; a voltage curve needs at least 20.")
    if q.min() < -NORMALISED_TOLERANCE or q.max() > 1 + NORMALISED_TOLERANCE:
        raise InputError(f"{path}: capacity runs {q.min():.4g}-{q.max():.4g}, not 0-1: not a normalised curve; "
                         "give a cycler export instead.")
    return NormalisedCurve(q, v, _label(path.stem), layout, path, {"n_dropped_non_finite": int((~keep).sum())})


@dataclass
class CurveResult:
    """Voltage curve, dQ/dV and its peaks of a :class:`NormalisedCurve`."""

    curve: NormalisedCurve
    dqdv: DQDVCurve
    peaks: pd.DataFrame
    named_peaks: dict[str, dict[str, float] | None]
    options: CurveOptions
    flags: list[dict[str, str]]

    @property
    def parameters(self) -> dict[str, Any]:
        """Options and derived settings, for provenance."""
        o = self.options
        return {"kind": "normalised-curve", "voltage_step_V": o.voltage_step_V, "window_V": o.window_V,
                "min_prominence_fraction": o.min_prominence_fraction, "label": self.curve.label}

    def summary(self) -> dict[str, Any]:
        """Key numbers (JSON-safe)."""
        c = self.curve
        main = self.peaks.loc[self.peaks["prominence"].idxmax()] if not self.peaks.empty else None
        return {
            "layout": c.layout,
            "kind": "normalised voltage curve (no mAh)",
            "label": c.label,
            "n_points": int(c.capacity_fraction.size),
            "voltage_min_V": float(c.voltage_V.min()),
            "voltage_max_V": float(c.voltage_V.max()),
            "capacity_fraction_range": [float(c.capacity_fraction.min()), float(c.capacity_fraction.max())],
            "n_dqdv_peaks": int(len(self.peaks)),
            "main_peak_V": None if main is None else float(main["position_V"]),
            "main_peak_height_per_V": None if main is None else float(abs(main["height"])),
            "dqdv_peaks": self.peaks.to_dict(orient="records"),
            "named_peaks": self.named_peaks,
            "flags": self.flags,
        }

    def _figures(self) -> list:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from layerscope.report import Figure, figure_to_png

        c = self.curve
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        order = np.argsort(c.capacity_fraction, kind="stable")
        ax[0].plot(c.capacity_fraction[order], c.voltage_V[order], "-", lw=1)
        ax[0].set_xlabel("normalised capacity (fraction)")
        ax[0].set_ylabel("voltage (V)")
        ax[1].plot(self.dqdv.voltage_V, np.abs(self.dqdv.dqdv), "-", lw=1)
        for _, p in self.peaks.iterrows():
            ax[1].axvline(p["position_V"], color="0.7", lw=0.6, zorder=0)
        ax[1].set_xlabel("voltage (V)")
        ax[1].set_ylabel("abs(dQ/dV) (1/V, normalised)")
        fig.tight_layout()
        o = self.options
        out = [Figure("Voltage curve and dQ/dV", figure_to_png(fig),
                      f"Normalised capacity (no mAh in the file). dQ/dV by Savitzky-Golay differentiation on a "
                      f"{o.voltage_step_V * 1000:g} mV grid, window {o.window_V * 1000:g} mV; grey lines: peaks.")]
        plt.close(fig)
        return out

    def section(self, provenance: Provenance | None = None):
        """The report section."""
        from layerscope.report import Section, Table

        s = self.summary()
        metrics = {"points": s["n_points"], "voltage range (V)": f"{s['voltage_min_V']:.3f}-{s['voltage_max_V']:.3f}",
                   "direction (from the file name)": s["label"] or "not stated", "dQ/dV peaks": s["n_dqdv_peaks"]}
        if s["main_peak_V"] is not None:
            from layerscope.report import Value

            metrics["main dQ/dV peak (V, one curve)"] = Value(s["main_peak_V"], None, "V")
        text = (f"Processed voltage curve {self.curve.source.name} ({self.curve.layout}) with a normalised "
                "capacity. Flags: " + " ".join(f"[{f['code']}] {f['message']}." for f in self.flags))
        return Section("Voltage curve (normalised capacity)", text=text, figures=self._figures(),
                       tables=[Table("dQ/dV peaks", self.peaks)], metrics=metrics, provenance=provenance)

    @writes_folder()
    def write(self, out_dir: Path, provenance: Provenance) -> None:
        """``curve.csv``, ``dqdv.csv``, ``dqdv_peaks.csv``, the figure and ``summary.json`` into ``out_dir``."""
        from layerscope.io.output import write_summary, write_table

        c = self.curve
        write_table(pd.DataFrame({"capacity_fraction": c.capacity_fraction, "voltage_V": c.voltage_V}),
                    out_dir / "curve.csv")
        write_table(pd.DataFrame({"voltage_V": self.dqdv.voltage_V, "dqdv_per_V": self.dqdv.dqdv}),
                    out_dir / "dqdv.csv")
        write_table(self.peaks, out_dir / "dqdv_peaks.csv")
        for k, fig in enumerate(self._figures()):
            (out_dir / f"figure_{k + 1}.png").write_bytes(fig.png)
        write_summary(out_dir, self.summary(), provenance)


def _named_peaks(curve: DQDVCurve, label: str | None, options: CurveOptions) -> dict[str, dict[str, float] | None]:
    """Ni-rich NMC phase-transition peaks, for a cathode curve whose direction the file name states."""
    windows = {"delithiation": NI_RICH_NMC_CHARGE_PEAKS, "charge": NI_RICH_NMC_CHARGE_PEAKS,
               "lithiation": NI_RICH_NMC_DISCHARGE_PEAKS, "discharge": NI_RICH_NMC_DISCHARGE_PEAKS}.get(label or "")
    if windows is None or curve.voltage_V.max() < 3.8:
        return {}
    out: dict[str, dict[str, float] | None] = {}
    for name, win in windows.items():
        p = find_dqdv_peaks(curve, window=win, min_prominence_fraction=options.min_prominence_fraction)
        out[name] = None if p.empty else {"position_V": float(p.loc[p["prominence"].idxmax(), "position_V"]),
                                          "height_per_V": float(abs(p.loc[p["prominence"].idxmax(), "height"]))}
    return out


def analyse_curve(curve: NormalisedCurve, options: CurveOptions = CurveOptions()) -> CurveResult:
    """dQ/dV of a normalised voltage curve and its peaks (no file I/O).

    Parameters
    ----------
    curve : NormalisedCurve
    options : CurveOptions

    Returns
    -------
    CurveResult
        dQ/dV in fraction of the capacity per volt (1/V); peaks from
        :func:`~layerscope.cells.dqdv.find_dqdv_peaks`.
    """
    d = dqdv(curve.capacity_fraction, curve.voltage_V, voltage_step_V=options.voltage_step_V,
             window_V=options.window_V)
    peaks = find_dqdv_peaks(d, min_prominence_fraction=options.min_prominence_fraction)
    flags = [{"code": "capacity_normalised",
              "message": "the capacity is normalised (0-1, no mAh): capacity, Coulombic efficiency, retention and energy "
                         "are not computed; run cycling on the cycler export for those"}]
    if curve.label is None:
        flags.append({"code": "direction_unknown", "message": "the file name does not say delithiation or lithiation "
                                                              "(charge or discharge); peaks are reported unnamed"})
    return CurveResult(curve, d, peaks, _named_peaks(d, curve.label, options), options, flags)
