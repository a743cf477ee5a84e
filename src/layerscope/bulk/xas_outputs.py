"""The XAS result: edges.csv, normalised.csv, figures, summary.json and the report section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.bulk._common import FiguresOnce, plt
from layerscope.io.output import writes_folder
from layerscope.provenance import Provenance

__all__ = ["XASResult"]


@dataclass
class XASResult(FiguresOnce):
    """Edges (and valences) of a set of absorption spectra; see :func:`layerscope.bulk.xas.analyse_xas`."""

    edges: list
    valences: list[dict[str, Any]]
    options: Any
    flags: list[dict[str, Any]]

    @property
    def table(self) -> pd.DataFrame:
        """One row per spectrum: edge energies (eV), white line, step, valences."""
        rows = []
        for r, val in zip(self.edges, self.valences):
            s = r.spectrum
            rows.append({"spectrum": s.name, "composition": s.composition, "voltage": s.voltage_V,
                         "edge_energy_eV": r.edge_energy_eV, "edge_energy_err_eV": r.edge_energy_err_eV,
                         "e0_derivative_eV": r.e0_eV, "e0_err_eV": r.e0_err_eV, "white_line_eV": r.white_line_eV,
                         "white_line_height": r.white_line_height, "edge_step": r.edge_step,
                         "normalisation": r.normalisation, **val,
                         "source": s.source.name if s.source else ""})
        return pd.DataFrame(rows)

    @property
    def parameters(self) -> dict[str, Any]:
        o = self.options
        return {"pre_edge_eV": list(o.pre_edge_eV), "post_edge_eV": list(o.post_edge_eV),
                "post_edge_order": o.post_edge_order, "references": [list(p) for p in o.references],
                "lcf_window_eV": list(o.lcf_window_eV)}

    def summary(self) -> dict[str, Any]:
        t = self.table
        return {"n_spectra": len(self.edges), "edge_energy_eV_range": [float(t.edge_energy_eV.min()),
                                                                       float(t.edge_energy_eV.max())],
                "spectra": t.to_dict(orient="records"), "parameters": self.parameters, "flags": self.flags}

    def normalised_table(self) -> pd.DataFrame:
        """Every normalised spectrum on the first spectrum's energy grid (NaN outside its range)."""
        e = self.edges[0].spectrum.energy_eV
        cols = {"energy_eV": e}
        for r in self.edges:
            x = r.spectrum.energy_eV
            cols[r.spectrum.name] = np.where((e >= x[0]) & (e <= x[-1]), np.interp(e, x, r.norm), np.nan)
        return pd.DataFrame(cols)

    def _make_figures(self) -> list:
        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import legend_outside

        pyplot = plt()
        fig, ax = pyplot.subplots(1, 2, figsize=(10, 3.6))
        for r in self.edges:
            lab = r.spectrum.name + (f" {r.spectrum.voltage_V:g} V" if np.isfinite(r.spectrum.voltage_V) else "")
            ax[0].plot(r.spectrum.energy_eV, r.norm, lw=1, label=lab)
            ax[1].plot(r.spectrum.energy_eV, r.derivative, lw=1)
        ax[0].set_xlabel("energy (eV)")
        ax[0].set_ylabel("normalised absorption (edge step = 1)")
        if len(self.edges) <= 16:
            legend_outside(ax[0], where="below", ncol=2)
        ax[1].set_xlabel("energy (eV)")
        ax[1].set_ylabel("d(norm)/dE (1/eV)")
        figs = [Figure("Normalised spectra and derivatives", figure_to_png(fig),
                       "Pre-edge line subtracted, divided by the edge step (or the white line, see flags).")]
        t = self.table
        if t["voltage"].notna().any():
            fig, ax = pyplot.subplots(figsize=(5, 3.4))
            for comp, g in t.groupby("composition"):
                v = g["voltage"].fillna(0.0)
                ax.errorbar(v, g["edge_energy_eV"], yerr=g["edge_energy_err_eV"], fmt="o", label=comp or "sample")
            ax.set_xlabel("voltage (V); pristine at 0")
            ax.set_ylabel("half-step edge energy (eV)")
            legend_outside(ax, where="right")
            figs.append(Figure("Edge energy against voltage", figure_to_png(fig),
                               "Pristine samples (no voltage) at 0."))
        return figs

    def section(self, provenance: Provenance | None = None):
        from layerscope.report import Section, Table

        t = self.table
        metrics = {"spectra": len(t),
                   "edge energy range (eV)": f"{t.edge_energy_eV.min():.2f}-{t.edge_energy_eV.max():.2f}"}
        metrics.update(self._valence_extremes(t))
        text = ("Normalisation: pre-edge line and post-edge polynomial (Athena convention), E0 at the derivative "
                "maximum; edge energy where the normalised spectrum crosses 0.5; white line = maximum within 30 eV "
                "above E0. Valences (with references) by edge shift and by non-negative linear combination.")
        if self.flags:
            text += "\n\nFlags: " + "; ".join(sorted({f["code"] + ": " + f["message"] for f in self.flags}))
        cols = [c for c in ("spectrum", "composition", "voltage", "edge_energy_eV", "e0_derivative_eV", "white_line_eV",
                            "white_line_height", "valence_shift", "valence_lcf") if c in t]
        return Section("X-ray absorption edges", text=text, figures=self.figures(), tables=[Table("Edges", t[cols])],
                       metrics=metrics, provenance=provenance)

    def _valence_extremes(self, t: pd.DataFrame) -> dict[str, Any]:
        """Lowest and highest linear-combination valence of the samples (references left out), ± fit s.e."""
        from layerscope.report import Value

        if "valence_lcf" not in t:
            return {}
        refs = {n for n, _ in self.options.references}
        is_ref = [r.spectrum.name in refs or (r.spectrum.source is not None and (
            r.spectrum.source.name in refs or str(r.spectrum.source) in refs)) for r in self.edges]
        samples = t[~np.asarray(is_ref, bool)].dropna(subset=["valence_lcf"])
        if samples.empty:
            return {}
        out = {}
        for label, i in (("lowest", samples["valence_lcf"].idxmin()), ("highest", samples["valence_lcf"].idxmax())):
            row = samples.loc[i]
            err = row.get("valence_lcf_err")
            out[f"{label} valence, linear combination ({row['spectrum']}; ± fit s.e.)"] = Value(
                float(row["valence_lcf"]), float(err) if err is not None and np.isfinite(err) else None)
        return out

    @writes_folder()
    def write(self, out_dir: Path, provenance: Provenance) -> None:
        """Write edges.csv, normalised.csv, figure_N.png and summary.json into ``out_dir``."""
        from layerscope.io.output import write_summary, write_table

        write_table(self.table, out_dir / "edges.csv")
        write_table(self.normalised_table(), out_dir / "normalised.csv")
        for k, fig in enumerate(self.figures()):
            (out_dir / f"figure_{k + 1}.png").write_bytes(fig.png)
        write_summary(out_dir, self.summary(), provenance)
