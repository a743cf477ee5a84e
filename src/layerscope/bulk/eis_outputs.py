"""The impedance result: fits.csv, spectra.csv, drt.csv, Nyquist/Bode figures, summary.json, report section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.bulk._common import FiguresOnce, plt
from layerscope.io.output import writes_folder
from layerscope.provenance import Provenance

__all__ = ["EISResult"]


@dataclass
class EISResult(FiguresOnce):
    """Fits of one impedance spectrum or a series (see :func:`layerscope.bulk.eis.analyse_eis`)."""

    items: list
    options: Any
    label_name: str = "cycle"

    @property
    def flags(self) -> list[dict[str, Any]]:
        return [f for it in self.items for f in it.flags]

    @property
    def fits(self) -> pd.DataFrame:
        """One row per spectrum: label, fitted parameters with standard errors, residuals, KK numbers."""
        rows = []
        for it in self.items:
            kk = {k: v for k, v in it.kk.items() if k != "z_kk_Ohm"}
            rows.append({"spectrum": it.spectrum.name, self.label_name: it.label, **it.fit.as_dict(),
                         "relative_residual": it.fit.relative_residual, "hf_intercept_Ohm": it.hf_intercept_Ohm,
                         "n_points": int(it.spectrum.frequency_Hz.size), "n_fitted": int(it.fitted_mask.sum()),
                         "f_min_Hz": float(it.spectrum.frequency_Hz.min()),
                         "f_max_Hz": float(it.spectrum.frequency_Hz.max()), **kk,
                         "instrument": it.spectrum.instrument})
        return pd.DataFrame(rows)

    def spectra_table(self) -> pd.DataFrame:
        """Every measured point with the fitted impedance (NaN where not fitted)."""
        parts = []
        for it in self.items:
            s = it.spectrum
            zf = np.full(s.z_Ohm.shape, np.nan + 0j)
            zf[it.fitted_mask] = it.fit.z_fit_Ohm
            parts.append(pd.DataFrame({"spectrum": s.name, self.label_name: it.label, "frequency_Hz": s.frequency_Hz,
                                       "z_real_Ohm": s.z_Ohm.real, "z_imag_Ohm": s.z_Ohm.imag,
                                       "z_fit_real_Ohm": zf.real, "z_fit_imag_Ohm": zf.imag,
                                       "fitted": it.fitted_mask}))
        return pd.concat(parts, ignore_index=True)

    def drt_table(self) -> pd.DataFrame | None:
        parts = [pd.DataFrame({"spectrum": it.spectrum.name, "tau_s": it.drt["tau_s"],
                               "gamma_Ohm": it.drt["gamma_Ohm"]}) for it in self.items if it.drt is not None]
        return pd.concat(parts, ignore_index=True) if parts else None

    @property
    def parameters(self) -> dict[str, Any]:
        o = self.options
        return {"circuit": o.circuit, "initial_guess": None if o.initial_guess is None else list(o.initial_guess),
                "drop_inductive": o.drop_inductive, "weight_by_modulus": o.weight_by_modulus, "drt": o.drt,
                "drt_lambda": o.drt_lambda, "label_name": self.label_name}

    def summary(self) -> dict[str, Any]:
        spectra = []
        for it, row in zip(self.items, self.fits.to_dict(orient="records")):
            entry = {**row, "units": dict(zip(it.fit.names, it.fit.units))}
            if it.drt is not None:
                entry["drt_peaks"] = it.drt["peaks"]
                entry["drt_r_inf_Ohm"] = it.drt["r_inf_Ohm"]
            spectra.append(entry)
        return {"n_spectra": len(self.items), "circuit": self.options.circuit, "spectra": spectra,
                "parameters": self.parameters, "flags": self.flags}

    def _make_figures(self) -> list:
        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import legend_outside

        pyplot = plt()
        fig, ax = pyplot.subplots(1, 3, figsize=(13, 3.8))
        for it in self.items:
            s, m = it.spectrum, it.fitted_mask
            line = ax[0].plot(s.z_Ohm.real, -s.z_Ohm.imag, "o", ms=3, label=s.name)[0]
            ax[0].plot(it.fit.z_fit_Ohm.real, -it.fit.z_fit_Ohm.imag, "-", color=line.get_color(), lw=1)
            ax[1].loglog(s.frequency_Hz, np.abs(s.z_Ohm), "o", ms=3, color=line.get_color())
            ax[1].loglog(s.frequency_Hz[m], np.abs(it.fit.z_fit_Ohm), "-", color=line.get_color(), lw=1)
            ax[2].semilogx(s.frequency_Hz, -np.degrees(np.angle(s.z_Ohm)), "o", ms=3, color=line.get_color())
            ax[2].semilogx(s.frequency_Hz[m], -np.degrees(np.angle(it.fit.z_fit_Ohm)), "-", color=line.get_color(),
                           lw=1)
        ax[0].set_xlabel("Z' (Ohm)")
        ax[0].set_ylabel("-Z'' (Ohm)")
        ax[0].set_aspect("equal", adjustable="datalim")
        legend_outside(ax[0], where="below", ncol=2)
        ax[1].set_xlabel("frequency (Hz)")
        ax[1].set_ylabel("|Z| (Ohm)")
        ax[2].set_xlabel("frequency (Hz)")
        ax[2].set_ylabel("-phase (deg)")
        fig.tight_layout()
        figs = [Figure("Nyquist and Bode plots", figure_to_png(fig),
                       f"Points: data; lines: {self.options.circuit} fit.")]
        if len(self.items) > 1:
            figs.append(self._series_figure(pyplot))
        if any(it.drt is not None for it in self.items):
            fig, ax = pyplot.subplots(figsize=(5, 3.4))
            for it in self.items:
                if it.drt is not None:
                    ax.semilogx(it.drt["tau_s"], it.drt["gamma_Ohm"], lw=1, label=it.spectrum.name)
            ax.set_xlabel("relaxation time τ (s)")
            ax.set_ylabel("resistance per grid point (Ohm)")
            legend_outside(ax, where="right")
            figs.append(Figure("Distribution of relaxation times", figure_to_png(fig),
                               f"Tikhonov-regularised NNLS, λ = {self.options.drt_lambda:g}."))
        return figs

    def _series_figure(self, pyplot):
        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import axis_label, legend_outside

        t = self.fits
        names = [n for n, u in zip(self.items[0].fit.names, self.items[0].fit.units) if u == "Ohm"]
        fig, ax = pyplot.subplots(figsize=(5, 3.4))
        for n in names:
            ax.errorbar(t[self.label_name], t[n], yerr=t[f"{n}_err"], fmt="o-", ms=3, label=n)
        ax.set_xlabel(axis_label(self.label_name))
        ax.set_ylabel("resistance (Ohm)")
        legend_outside(ax, where="right")
        return Figure(f"Resistances against {self.label_name}", figure_to_png(fig), "Error bars: fit standard errors.")

    def section(self, provenance: Provenance | None = None):
        from layerscope.report import Section, Table, Value

        t = self.fits
        metrics: dict = {}
        first = self.items[0]
        for n, v, e, u in zip(first.fit.names, first.fit.values, first.fit.errors, first.fit.units):
            if u == "Ohm":
                metrics[f"{n} of {first.spectrum.name} (Ohm, fit ± s.e.)"] = Value(v, e, "Ohm")
        headline = list(metrics)[:3]
        metrics.update({"spectra": len(t), "circuit": self.options.circuit,
                        "largest relative residual": float(t["relative_residual"].max())})
        text = ("Equivalent-circuit fit with impedance.py (several starting points, lowest residual kept); parameter "
                "uncertainties are standard errors from the fit covariance. Kramers-Kronig validity by linKK "
                "(residuals in % of |Z|).")
        if self.flags:
            text += "\n\nFlags: " + "; ".join(f"{f['spectrum']}: {f['code']}" for f in self.flags)
        return Section("Impedance", text=text, figures=self.figures(), tables=[Table("Fits", t)], metrics=metrics,
                       provenance=provenance, headline=headline or None)

    @writes_folder()
    def write(self, out_dir: Path, provenance: Provenance) -> None:
        """Write fits.csv, spectra.csv, drt.csv (with --drt), figure_N.png and summary.json into ``out_dir``."""
        from layerscope.io.output import write_summary, write_table

        write_table(self.fits, out_dir / "fits.csv")
        write_table(self.spectra_table(), out_dir / "spectra.csv")
        d = self.drt_table()
        if d is not None:
            write_table(d, out_dir / "drt.csv")
        for k, fig in enumerate(self.figures()):
            (out_dir / f"figure_{k + 1}.png").write_bytes(fig.png)
        write_summary(out_dir, self.summary(), provenance)
