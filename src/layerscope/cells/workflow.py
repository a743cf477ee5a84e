"""From a cycler file to tables, figures, ``summary.json`` and a report section (used by the CLI and the demo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from layerscope.cells.dqdv import DQDVCurve
from layerscope.cells.metrics import cycle_metrics, half_cycle_metrics
from layerscope.cells.options import CyclingOptions
from layerscope.cells.plausibility import headline_flags
from layerscope.cells.rate import rate_capability
from layerscope.cells.readers import CyclerData
from layerscope.provenance import Provenance
from layerscope.io.output import writes_folder

__all__ = ["CyclingResult", "CyclingOptions", "analyse_cycling", "run_cycling"]


@dataclass
class CyclingResult:
    """Everything :func:`run_cycling` computed."""

    data: CyclerData
    table: pd.DataFrame
    halves: pd.DataFrame
    cycles: pd.DataFrame
    peaks: pd.DataFrame | None
    curves: dict[int, DQDVCurve]
    rate: pd.DataFrame | None
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    flags: list[dict[str, str]] = field(default_factory=list)
    provenance: Provenance | None = None

    def summary(self) -> dict[str, Any]:
        """Key numbers (JSON-safe); the headline numbers use only the cycles with ``headline`` set."""
        c = self.cycles
        ok = c[c["headline"]]
        out: dict[str, Any] = {
            "layout": self.data.layout,
            "n_records": int(len(self.table)),
            "n_cycles": int(len(c)),
            "n_complete_cycles": int(c["complete"].sum()),
            "n_headline_cycles": int(len(ok)),
            "excluded_cycles": {str(int(r["cycle"])): r["excluded"] for _, r in c[~c["headline"]].iterrows()},
            "reference_cycle": int(c["reference_cycle"].iloc[0]),
            "electrode": self.parameters["electrode"],
            "active_mass_mg": self.data.active_mass_mg,
            "flags": self.flags,
            "notes": self.notes,
        }
        if not ok.empty:
            first, last = ok.iloc[0], ok.iloc[-1]
            out.update({
                "first_cycle": int(first["cycle"]),
                "first_cycle_coulombic_efficiency": float(first["coulombic_efficiency"]),
                "first_discharge_capacity_mAh": float(first["discharge_capacity_mAh"]),
                "first_charge_capacity_mAh": float(first["charge_capacity_mAh"]),
                "last_cycle": int(last["cycle"]),
                "last_retention": float(last["retention"]),
                "last_mean_discharge_voltage_V": float(last["mean_discharge_voltage_V"]),
                "last_hysteresis_V": float(last["hysteresis_V"]),
                "mean_coulombic_efficiency_after_first": float(ok["coulombic_efficiency"].iloc[1:].mean())
                if len(ok) > 1 else None,
                "mean_energy_efficiency": float(ok["energy_efficiency"].mean()),
            })
            if "specific_discharge_capacity_mAh_g" in c.columns:
                out["first_specific_discharge_capacity_mAh_g"] = float(first["specific_discharge_capacity_mAh_g"])
        if self.peaks is not None and not self.peaks.empty:
            pk = {}
            for name, grp in self.peaks.groupby("peak"):
                found = grp[grp["found"]]
                if not found.empty:
                    pk[name] = {"first_position_V": float(found["position_V"].iloc[0]),
                                "last_position_V": float(found["position_V"].iloc[-1]),
                                "last_relative_height": float(found["relative_height"].iloc[-1]),
                                "cycles_found": int(len(found)), "cycles_missing": int((~grp["found"]).sum())}
            out["dqdv_peaks"] = pk
        if self.rate is not None:
            out["rate_capability"] = self.rate.to_dict(orient="records")
        return out

    def figures(self) -> list:
        """Report figures (made once, then reused by :meth:`section` and :meth:`write`)."""
        if getattr(self, "_figures", None) is None:
            self._figures = self._make_figures()
        return self._figures

    def _make_figures(self) -> list:
        """Report figures (capacity/CE, voltage curves, dQ/dV, peak tracking)."""
        import matplotlib

        matplotlib.use("Agg")
        figs = [self._capacity_figure(), self._curves_figure()]
        if self.peaks is not None and self.peaks["found"].any():
            figs.append(self._peaks_figure())
        return figs

    def _capacity_figure(self):
        """Capacity (charge and discharge) and Coulombic efficiency against the cycle number."""
        import matplotlib.pyplot as plt

        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import legend_outside

        c = self.cycles
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        spec = "specific_discharge_capacity_mAh_g" in c.columns
        ycol = "specific_discharge_capacity_mAh_g" if spec else "discharge_capacity_mAh"
        ax[0].plot(c["cycle"], c[ycol], "o-", ms=3, label="discharge")
        ax[0].plot(c["cycle"], c[ycol.replace("discharge", "charge")], "s-", ms=3, label="charge")
        ax[0].set_xlabel("cycle number")
        ax[0].set_ylabel("capacity (mAh/g)" if spec else "capacity (mAh)")
        legend_outside(ax[0], where="below", ncol=2)
        ax[1].plot(c["cycle"], 100 * c["coulombic_efficiency"], "o-", ms=3, color="C2")
        ax[1].set_xlabel("cycle number")
        ax[1].set_ylabel("Coulombic efficiency (%)")
        fig.tight_layout()
        out = Figure("Capacity and Coulombic efficiency", figure_to_png(fig),
                     "Per-cycle capacities from the cycler's counters; incomplete cycles have no efficiency.")
        plt.close(fig)
        return out

    def _curves_figure(self):
        """Voltage against capacity and dQ/dV against voltage for up to seven cycles, peak windows shaded."""
        import matplotlib.pyplot as plt

        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import legend_outside

        t = self.table
        col = "specific_capacity_mAh_g" if "specific_capacity_mAh_g" in t.columns else "capacity_mAh"
        cycles = sorted(self.curves) if self.curves else sorted(int(x) for x in t["cycle"].dropna().unique())
        show = cycles[:: max(1, len(cycles) // 6)][:7]
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        cmap = plt.get_cmap("viridis")
        for k, cy in enumerate(show):
            color = cmap(k / max(1, len(show) - 1))
            rows = t[(t["cycle"] == cy) & (t["state"] != "rest")]
            for d in ("charge", "discharge"):
                seg = rows[rows["state"] == d]
                ax[0].plot(seg[col], seg["voltage_V"], "-", lw=0.8, color=color,
                           label=f"cycle {cy}" if d == "charge" else None)
            if cy in self.curves:
                cv = self.curves[cy]
                ax[1].plot(cv.voltage_V, cv.dqdv, color=color, lw=1)
        ax[0].set_xlabel("capacity (mAh/g)" if col.startswith("specific") else "capacity (mAh)")
        ax[0].set_ylabel("voltage (V)")
        legend_outside(ax[0], where="below", ncol=4)
        ax[1].set_xlabel("voltage (V)")
        ax[1].set_ylabel("dQ/dV (mAh/(g V))" if col.startswith("specific") else "dQ/dV (mAh/V)")
        if self.peaks is not None:
            for name, (lo, hi) in self.parameters.get("peak_windows", {}).items():
                ax[1].axvspan(lo, hi, color="0.9", zorder=0)
                # y in axes units: a data-unit position far outside a flat curve's limits made a giant figure
                ax[1].text(0.5 * (lo + hi), 0.97, name, ha="center", va="top", fontsize=7,
                           transform=ax[1].get_xaxis_transform())
        fig.tight_layout()
        p = self.parameters.get("dqdv", {})
        out = Figure("Voltage curves and dQ/dV", figure_to_png(fig),
                     f"dQ/dV by Savitzky-Golay differentiation of capacity on a {p.get('voltage_step_V', 0.001)*1000:g} mV "
                     f"grid, window {p.get('window_V', 0.015)*1000:g} mV; grey bands are the named peak windows.")
        plt.close(fig)
        return out

    def _peaks_figure(self):
        """Position (V) and height relative to the first cycle of each named dQ/dV peak against the cycle."""
        import matplotlib.pyplot as plt

        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import legend_outside

        fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
        for name, grp in self.peaks.groupby("peak", sort=False):
            ax[0].plot(grp["cycle"], grp["position_V"], "o-", ms=3, label=name)
            ax[1].plot(grp["cycle"], grp["relative_height"], "o-", ms=3, label=name)
        ax[0].set_xlabel("cycle number")
        ax[0].set_ylabel("peak position (V)")
        ax[1].set_xlabel("cycle number")
        ax[1].set_ylabel("height / first height (ratio)")
        legend_outside(ax[1], where="right")
        fig.tight_layout()
        out = Figure("dQ/dV peak tracking", figure_to_png(fig),
                     "Position and relative height of each named peak; gaps are cycles where it was not found.")
        plt.close(fig)
        return out

    def section(self, provenance: Provenance | None = None):
        """The report section."""
        from layerscope.report import Section, Table

        s = self.summary()
        metrics = {"cycles (complete, in the headline)":
                   f"{s['n_cycles']} ({s['n_complete_cycles']}, {s['n_headline_cycles']})"}
        metrics.update(self._headline_metrics(s))
        for name, v in s.get("dqdv_peaks", {}).items():
            metrics[f"{name} peak, first -> last (V)"] = f"{v['first_position_V']:.3f} -> {v['last_position_V']:.3f}"
            metrics[f"{name} peak height, last / first"] = v["last_relative_height"]
        cols = [c for c in ("cycle", "charge_capacity_mAh", "discharge_capacity_mAh", "specific_discharge_capacity_mAh_g",
                            "coulombic_efficiency", "retention", "mean_charge_voltage_V", "mean_discharge_voltage_V",
                            "hysteresis_V", "energy_efficiency", "excluded", "flag") if c in self.cycles.columns]
        tables = [Table("Per-cycle metrics", self.cycles[cols])]
        if self.rate is not None:
            tables.append(Table("Rate capability", self.rate))
        text = (f"Cycler file {self.data.source.name if self.data.source else ''} ({self.data.layout}), "
                f"{len(self.table)} records. Capacities are the cycler's own counters; cathode convention "
                f"(charge = delithiation) with electrode = {self.parameters['electrode']}.")
        if self.flags:
            text += "\n\nFlags: " + " ".join(f"[{f['code']}] {f['message']}." for f in self.flags)
        if self.notes:
            text += "\n\n" + " ".join(self.notes)
        headline = [k for k in metrics if k.startswith(("retention at", "capacity fade", "first-cycle Coulombic"))]
        return Section("Cycling", text=text, figures=self.figures(), tables=tables, metrics=metrics,
                       provenance=provenance, headline=headline or None)

    def _headline_metrics(self, s: dict[str, Any]) -> dict[str, Any]:
        """Retention, fade rate (linear fit ± standard error), efficiencies and voltages as report Values."""
        import numpy as np

        from layerscope.report import Value

        if "first_cycle_coulombic_efficiency" not in s:
            return {}
        ok = self.cycles[self.cycles["headline"]]
        out: dict[str, Any] = {
            f"retention at cycle {s['last_cycle']} vs {s['reference_cycle']} (%, one cycle)":
                Value(100 * s["last_retention"], None, "%")}
        fin = ok[np.isfinite(ok["retention"].to_numpy(float))]
        if len(fin) >= 3:
            (slope, _), cov = np.polyfit(fin["cycle"].to_numpy(float), 100 * fin["retention"].to_numpy(float), 1,
                                         cov=True)
            out[f"capacity fade (% of cycle {s['reference_cycle']} per cycle; linear fit ± s.e. over {len(fin)} "
                "cycles)"] = Value(-slope, np.sqrt(cov[0, 0]), "%/cycle")
        out["first-cycle Coulombic efficiency (%, one cycle)"] = Value(100 * s["first_cycle_coulombic_efficiency"],
                                                                        None, "%")
        ce = 100 * ok["coulombic_efficiency"].iloc[1:].dropna()
        if len(ce) >= 2:
            out[f"Coulombic efficiency after the first cycle (%, mean ± s.d. over {len(ce)} cycles)"] = Value(
                ce.mean(), ce.std(ddof=1), "%")
        out["mean discharge voltage, last cycle (V)"] = Value(s["last_mean_discharge_voltage_V"], None, "V")
        out["hysteresis, last cycle (V)"] = Value(s["last_hysteresis_V"], None, "V")
        return out

    @writes_folder()
    def write(self, out_dir: Path, provenance: Provenance) -> None:
        """Tables (CSV + the tidy record as Parquet), figures and summary.json into ``out_dir``."""
        from layerscope.io.output import write_summary, write_table

        write_table(self.table, out_dir / "records.parquet")
        write_table(self.halves, out_dir / "half_cycles.csv")
        write_table(self.cycles, out_dir / "cycles.csv")
        if self.peaks is not None:
            write_table(self.peaks, out_dir / "dqdv_peaks.csv")
        if self.rate is not None:
            write_table(self.rate, out_dir / "rate_capability.csv")
        for k, fig in enumerate(self.figures()):
            (out_dir / f"figure_{k + 1}.png").write_bytes(fig.png)
        write_summary(out_dir, self.summary(), provenance)


def analyse_cycling(data: CyclerData, options: CyclingOptions | None = None) -> CyclingResult:
    """Every cycling analysis of cycler data already read (no file is read or written).

    Parameters
    ----------
    data : CyclerData
        From :func:`layerscope.cells.analysis.read_cycling` (or any reader of :mod:`layerscope.cells.readers`).
    options : CyclingOptions, optional
        What to compute and how (defaults when None).

    Returns
    -------
    CyclingResult
        With one :class:`~layerscope.provenance.Provenance` (sha256 of the cycler file, every option).
    """
    from layerscope.cells.analysis import cycling_provenance, dqdv_stage, number_cycles

    o = options if options is not None else CyclingOptions()
    work, pairs, notes = number_cycles(data, o)
    halves = half_cycle_metrics(work)
    cycles = cycle_metrics(work, electrode=o.electrode, reference_cycle=o.reference_cycle)
    curves, peaks, windows, dq_notes = dqdv_stage(work, o)
    rate = None
    if o.nominal_capacity_mAh is not None:
        rate = rate_capability(work, nominal_capacity_mAh=o.nominal_capacity_mAh, electrode=o.electrode)
    params = {"active_mass_mg": data.active_mass_mg, "electrode": o.electrode, "reference_cycle": o.reference_cycle,
              "pairs": pairs, "peak_windows": windows or {}, "direction": o.direction,
              "nominal_capacity_mAh": o.nominal_capacity_mAh, "dqdv": o.dqdv}
    upper = float(halves.loc[halves["direction"] == "charge", "end_voltage_V"].median())
    flags = headline_flags(cycles, electrode=o.electrode, upper_cutoff_V=upper)
    return CyclingResult(work, work.data, halves, cycles, peaks, curves, rate, params, notes + dq_notes, flags,
                         provenance=cycling_provenance(data, params))


def run_cycling(
    source: str | Path | CyclerData,
    *,
    active_mass_mg: float | None = None,
    electrode: Literal["cathode", "anode"] = "cathode",
    reference_cycle: int | None = None,
    pairs: bool = False,
    peak_windows: dict[str, tuple[float, float]] | None = None,
    direction: Literal["charge", "discharge"] = "charge",
    nominal_capacity_mAh: float | None = None,
    dqdv_options: dict[str, float] | None = None,
) -> CyclingResult:
    """Read a cycler file and compute every cycling analysis (keywords kept; see :func:`analyse_cycling`).

    Parameters
    ----------
    source : path or CyclerData
    active_mass_mg : float, optional
        Explicit active mass for specific quantities.
    electrode : {"cathode", "anode"}
    reference_cycle : int, optional
        Cycle for retention (default: first complete cycle).
    pairs : bool
        Number cycles as charge/discharge pairs instead of the cycler's counter (see
        :func:`~layerscope.cells.metrics.pair_cycles`); switched on automatically, with a note,
        when the cycler's counter puts several charges into one cycle.
    peak_windows : dict, optional
        Named dQ/dV peak windows (default: Ni-rich NMC on charge).
    direction : {"charge", "discharge"}
        Half cycle for dQ/dV.
    nominal_capacity_mAh : float, optional
        For the rate-capability table (skipped without it).
    dqdv_options : dict, optional
        Passed to :func:`~layerscope.cells.dqdv.dqdv`.
    """
    from layerscope.cells.analysis import read_cycling, with_options

    options = CyclingOptions(active_mass_mg=active_mass_mg, electrode=electrode, reference_cycle=reference_cycle,
                             pairs=pairs, peak_windows=peak_windows, direction=direction,
                             nominal_capacity_mAh=nominal_capacity_mAh, dqdv_options=dqdv_options or {})
    data = with_options(source, options) if isinstance(source, CyclerData) else read_cycling(source, options)
    return analyse_cycling(data, options)
