"""The gas-evolution result: gas.csv, traces.csv, figures, summary.json and the report section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.bulk._common import FiguresOnce, plt
from layerscope.io.output import writes_folder
from layerscope.provenance import Provenance

__all__ = ["GasResult"]


@dataclass
class GasResult(FiguresOnce):
    """Channels of one or more DEMS / TGA-MS runs (see :func:`layerscope.bulk.gas.analyse_gas`)."""

    analyses: list
    options: Any
    kinetics: Any = None

    @property
    def flags(self) -> list[dict[str, Any]]:
        return [f for a in self.analyses for f in a.flags]

    @property
    def table(self) -> pd.DataFrame:
        """One row per run and m/z: onsets and peak on the run's axis, charge (A s), amounts (mol, umol/g)."""
        return pd.DataFrame([row for a in self.analyses for row in a.rows])

    def traces(self) -> pd.DataFrame:
        parts = []
        for a in self.analyses:
            cols = {"run": a.run.name, **{k: v for k, v in a.run.columns.items()}}
            cols.update({f"mz{mz}_baseline_free_A": s for mz, s in a.signals.items()})
            parts.append(pd.DataFrame(cols))
        return pd.concat(parts, ignore_index=True)

    @property
    def parameters(self) -> dict[str, Any]:
        o = self.options
        return {"x_axis": o.x_axis, "calibration_mol_s_per_A": {str(m): f for m, f in o.calibration},
                "active_mass_mg": o.active_mass_mg, "baseline": o.baseline, "baseline_fraction": o.baseline_fraction,
                "threshold_sigma": o.threshold_sigma, "min_run": o.min_run, "onset_channel": o.onset_channel,
                "kinetics": o.kinetics}

    def summary(self) -> dict[str, Any]:
        out = {"n_runs": len(self.analyses), "channels": self.table.to_dict(orient="records"),
               "parameters": self.parameters, "flags": self.flags}
        if self.kinetics is not None:
            out["kinetics"] = self.kinetics.summary()
        return out

    def _make_figures(self) -> list:
        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import axis_label, legend_outside

        pyplot = plt()
        n = len(self.analyses)
        fig, axes = pyplot.subplots(1, n, figsize=(4.6 * n, 3.4), squeeze=False)
        for ax, a in zip(axes[0], self.analyses):
            x = a.run.columns[a.x_key]
            for row in a.rows:
                ax.plot(x, a.signals[row["mz"]], lw=1, label=row["gas"])
                if row["mz"] == self.options.onset_channel and np.isfinite(row["onset_extrapolated"]):
                    ax.axvline(row["onset_extrapolated"], color="0.5", lw=0.7, ls="--")
            ax.set_xlabel(axis_label(a.x_key))
            ax.set_ylabel("ion current above baseline (A)")
            ax.set_title(a.run.name, fontsize=8)
            legend_outside(ax, where="below", ncol=2)
        fig.tight_layout()
        figs = [Figure("Ion currents", figure_to_png(fig), "Dashed: extrapolated onset of the O2 channel.")]
        if self.kinetics is not None:
            figs.extend(self.kinetics.figures())
        return figs

    def section(self, provenance: Provenance | None = None):
        from layerscope.report import Section, Table, Value

        t = self.table
        o2 = t[t["mz"] == self.options.onset_channel]
        metrics = {"runs": len(self.analyses)}
        if len(o2):
            key = f"onset m/z {self.options.onset_channel} ({o2['axis'].iloc[0]})"
            metrics[key] = Value(o2["onset_extrapolated"].iloc[0], o2["onset_err"].iloc[0] if "onset_err" in o2 else None,
                                 "V" if o2["axis"].iloc[0].endswith("_V") else "")
        if "amount_umol_g" in t and len(o2) and np.isfinite(o2["amount_umol_g"].iloc[0]):
            metrics["O2 released (umol/g, first run)"] = Value(o2["amount_umol_g"].iloc[0], None, "µmol/g")
        text = ("Baseline-free ion currents; onset where a line through the leading edge (20-80 % of the peak) meets "
                "the baseline (threshold onset also given); amounts = calibration factor x integrated ion current, "
                "per gram of the given active mass.")
        if self.flags:
            text += "\n\nFlags: " + "; ".join(f"{f['run']}: {f['code']}" for f in self.flags)
        section = Section("Gas evolution", text=text, figures=self.figures(), tables=[Table("Channels", t)],
                          metrics=metrics, provenance=provenance)
        return section

    @writes_folder()
    def write(self, out_dir: Path, provenance: Provenance) -> None:
        """Write gas.csv, traces.csv, figure_N.png and summary.json (and kissinger.csv with kinetics)."""
        from layerscope.io.output import write_summary, write_table

        write_table(self.table, out_dir / "gas.csv")
        write_table(self.traces(), out_dir / "traces.csv")
        if self.kinetics is not None:
            write_table(self.kinetics.peaks, out_dir / "peaks.csv")
            write_table(self.kinetics.kissinger.table, out_dir / "kissinger.csv")
        for k, fig in enumerate(self.figures()):
            (out_dir / f"figure_{k + 1}.png").write_bytes(fig.png)
        write_summary(out_dir, self.summary(), provenance)
