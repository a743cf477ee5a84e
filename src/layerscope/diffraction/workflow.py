"""From pattern or thermal files to tables, figures, ``summary.json`` and report sections (CLI and demo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from layerscope.diffraction.kinetics import ActivationEnergy, ThermalCurve, kissinger, ozawa
from layerscope.diffraction.layered import LayeredResult, flag
from layerscope.diffraction.options import KineticsOptions, XRDOptions
from layerscope.diffraction.peaks import snip_background
from layerscope.diffraction.readers import Pattern
from layerscope.errors import InputError
from layerscope.provenance import Provenance
from layerscope.io.output import writes_folder

__all__ = ["XRDResult", "XRDOptions", "analyse_xrd", "run_xrd", "KineticsResult", "KineticsOptions", "analyse_kinetics",
           "run_kinetics"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass
class XRDResult:
    """Layered-oxide analysis of one or more patterns (an in situ series when several)."""

    patterns: list[Pattern]
    layered: list[LayeredResult]
    rock_salt: dict[str, Any] | None
    labels: list[float]
    label_name: str
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    provenance: Provenance | None = None

    @property
    def series(self) -> pd.DataFrame:
        """(003), (104), (110) positions, I003/I104, a and c per pattern."""
        rows = []
        for lab, res in zip(self.labels, self.layered):
            r = res.reflections.set_index("reflection")
            row = {self.label_name: lab, "I003_I104": res.i003_i104, "I003_I104_err": res.i003_i104_err,
                   "a_A": res.lattice.get("a_A", np.nan), "c_A": res.lattice.get("c_A", np.nan),
                   "c_from_003_A": res.lattice.get("c_from_003_A", np.nan)}
            for n in ("(003)", "(104)", "(110)"):
                ok = n in r.index and bool(r.loc[n, "significant"])
                row[f"{n}_deg"] = float(r.loc[n, "center_deg"]) if ok else np.nan
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def flags(self) -> list[dict[str, Any]]:
        """Every plausibility flag: ``code``, ``message`` and the ``pattern`` (file) it concerns."""
        out = []
        for p, r in zip(self.patterns, self.layered):
            out += [{**f, "pattern": p.source.name if p.source else None} for f in r.flags]
        if not self.layered:
            p = self.patterns[0]
            out.append({**flag("no_layered_phase", "no layered-oxide (003) reflection: only the "
                                                   f"{self.rock_salt['phase']} rock-salt phase is analysed"),
                        "pattern": p.source.name if p.source else None})
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_patterns": len(self.patterns), "flags": self.flags, "notes": self.notes,
                               "wavelength_A": self.patterns[0].wavelength_A,
                               "layered_phase": bool(self.layered)}
        out["patterns"] = [{"source": str(p.source) if p.source else None,
                            "format": p.metadata.get("format"), "wavelength_from": p.metadata.get("wavelength_from"),
                            "kalpha2_A": p.kalpha2_A, "kalpha2_ratio": p.kalpha2_ratio,
                            **(r.summary() if r is not None else {})}
                           for p, r in zip(self.patterns, self.layered or [None] * len(self.patterns))]
        if self.rock_salt is not None:
            out["rock_salt"] = {k: v for k, v in self.rock_salt.items() if k != "reflections"}
        return out

    def cli_line(self) -> str:
        """The one line the command prints: key numbers and the flag codes."""
        name = self.patterns[0].source.name if self.patterns[0].source else "pattern"
        if self.layered:
            r = self.layered[0]
            text = (f"{name}: I003/I104 = {r.i003_i104:.3g} ± {r.i003_i104_err:.2g}, "
                    f"c = {r.lattice.get('c_A', float('nan')):.4f} Å")
        else:
            text = f"{name}: no layered phase"
        if self.rock_salt is not None:
            rs = self.rock_salt
            text += (f", {rs['phase']} {'identified' if rs['identified'] else 'not identified'}"
                     + (f" (a = {rs['a_A']:.4f} Å)" if "a_A" in rs else ""))
        codes = sorted({f["code"] for f in self.flags})
        if codes:
            text += f"; flags: {', '.join(codes)}"
        return text

    def figures(self) -> list:
        """Report figures (made once, then reused by :meth:`section` and :meth:`write`)."""
        if getattr(self, "_figures", None) is None:
            self._figures = self._make_figures()
        return self._figures

    def _make_figures(self) -> list:
        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import axis_label, legend_outside

        plt = _plt()
        figs = []
        pat = self.patterns[0]
        res = self.layered[0] if self.layered else None
        table = res.reflections if res is not None else self.rock_salt["reflections"]
        fig, ax = plt.subplots(figsize=(9, 3.4))
        bg = snip_background(pat.two_theta_deg, pat.intensity)
        ax.plot(pat.two_theta_deg, pat.intensity, lw=0.6, color="k", label="measured")
        ax.plot(pat.two_theta_deg, bg, lw=0.8, color="C1", label="SNIP background")
        ax.set_yscale("log")
        top = float(np.nanmax(pat.intensity))
        for row in table.itertuples():
            if bool(row.significant):
                ax.axvline(row.center_deg, color="C0", lw=0.6, alpha=0.6)
                ax.text(row.center_deg, top, row.reflection, rotation=90, fontsize=7, va="top", ha="right")
        ax.set_xlabel("2θ (deg)")
        ax.set_ylabel("intensity (counts)")
        legend_outside(ax, where="right")
        fig.tight_layout()
        phase = "layered-oxide" if res is not None else f"{self.rock_salt['phase']} rock-salt"
        figs.append(Figure(f"Pattern with indexed {phase} reflections", figure_to_png(fig),
                           f"λ(Kα1) = {pat.wavelength_A:.5f} Å; lines: reflections fitted as Kα1/Kα2 pseudo-Voigt doublets."))
        plt.close(fig)
        wh = res.williamson_hall if res is not None else None
        if wh is not None:
            sig = res.reflections[res.reflections["significant"] == True]  # noqa: E712
            theta = np.radians(sig["center_deg"].to_numpy(float) / 2)
            beta = np.radians(sig["fwhm_deg"].to_numpy(float))
            inst = self.parameters.get("instrument_fwhm_deg")
            if inst is not None:
                beta = np.sqrt(np.clip(beta**2 - np.radians(inst) ** 2, 0, None))
            fig, ax = plt.subplots(figsize=(4.5, 3.4))
            x = 4 * np.sin(theta)
            ax.plot(x, beta * np.cos(theta), "o")
            xx = np.linspace(0, x.max() * 1.05, 10)
            ax.plot(xx, wh["intercept"] + wh["slope"] * xx, "-", color="C1")
            for xi, yi, n in zip(x, beta * np.cos(theta), sig["reflection"]):
                ax.annotate(n, (xi, yi), fontsize=7)
            ax.set_xlabel("4 sin θ (dimensionless)")
            ax.set_ylabel("β cos θ (rad)")
            fig.tight_layout()
            figs.append(Figure("Williamson-Hall plot", figure_to_png(fig),
                               f"D = {wh['size_nm']:.3g} ± {wh['size_err_nm']:.2g} nm, ε = {wh['microstrain']:.2e} ± "
                               f"{wh['microstrain_err']:.1e}. {wh['flag']}"))
            plt.close(fig)
        if len(self.patterns) > 1:
            s = self.series
            fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
            ax[0].plot(s[self.label_name], s["(003)_deg"], "o-", ms=3)
            ax[0].set_xlabel(axis_label(self.label_name))
            ax[0].set_ylabel("(003) 2θ (deg)")
            ax[1].plot(s[self.label_name], s["c_A"], "o-", ms=3)
            ax[1].set_xlabel(axis_label(self.label_name))
            ax[1].set_ylabel("c (Å)")
            fig.tight_layout()
            figs.append(Figure("In situ series", figure_to_png(fig), "(003) position and refined c per pattern."))
            plt.close(fig)
        return figs

    def _layered_metrics(self) -> dict[str, Any]:
        res = self.layered[0]
        lat = res.lattice
        from layerscope.report import Value

        metrics: dict[str, Any] = {"I(003)/I(104)": Value(res.i003_i104, res.i003_i104_err)}
        if "c_A" in lat:
            metrics["a (Å)"] = Value(lat["a_A"], lat["a_err_A"], "Å")
            metrics["c (Å)"] = Value(lat["c_A"], lat["c_err_A"], "Å")
            metrics["c/a"] = lat["c_over_a"]
        if "c_from_003_A" in lat:
            metrics["c from (003) alone (Å)"] = lat["c_from_003_A"]
        for k, v in res.splittings_deg.items():
            metrics[f"{k} splitting (deg)"] = v
        if res.williamson_hall is not None:
            wh = res.williamson_hall
            metrics["crystallite size (nm)"] = Value(wh["size_nm"], wh.get("size_err_nm"), "nm")
            metrics["microstrain"] = Value(wh["microstrain"], wh.get("microstrain_err"))
        return metrics

    def section(self, provenance: Provenance | None = None):
        from layerscope.report import Section, Table

        from layerscope.report import Value

        metrics = self._layered_metrics() if self.layered else {"layered phase": "none found"}
        if self.rock_salt is not None:
            metrics[f"{self.rock_salt['phase']} rock salt identified"] = self.rock_salt["identified"]
            if "a_A" in self.rock_salt:
                metrics[f"{self.rock_salt['phase']} a (Å)"] = Value(self.rock_salt["a_A"], self.rock_salt["a_err_A"], "Å")
        headline = [k for k in ("c (Å)", "I(003)/I(104)", "crystallite size (nm)") if k in metrics] or None
        cols = ["reflection", "predicted_deg", "center_deg", "center_err_deg", "d_A", "area", "area_err", "fwhm_deg",
                "eta", "reduced_chi2", "significant", "reason"]
        tables = []
        if self.layered:
            refl = self.layered[0].reflections
            tables.append(Table("Reflections (first pattern)", refl[[c for c in cols if c in refl]]))
        elif self.rock_salt is not None:
            refl = self.rock_salt["reflections"]
            tables.append(Table("Rock-salt reflections", refl[[c for c in cols + ["identified"] if c in refl]]))
        if len(self.patterns) > 1:
            tables.append(Table("Series", self.series))
        text = ("Layered-oxide reflections (R-3m, hexagonal setting) fitted as Kα1/Kα2 pseudo-Voigt doublets; "
                "I(003)/I(104) is the ratio of integrated Kα1 intensities (raised by preferred orientation as well "
                "as lowered by Li/TM mixing).")
        if self.flags:
            text += "\n\nFlags: " + "; ".join(f"{f['code']}: {f['message']}" for f in self.flags)
        if self.notes:
            text += "\n\nNotes: " + "; ".join(self.notes)
        return Section("X-ray diffraction", text=text, figures=self.figures(), tables=tables, metrics=metrics,
                       provenance=provenance, headline=headline)

    @writes_folder()
    def write(self, out_dir: Path, provenance: Provenance) -> None:
        from layerscope.io.output import write_summary, write_table

        for k, res in enumerate(self.layered):
            write_table(res.reflections.drop(columns=["hkl"], errors="ignore"),
                        out_dir / (f"reflections_{k:03d}.csv" if len(self.layered) > 1 else "reflections.csv"))
        if len(self.patterns) > 1:
            write_table(self.series, out_dir / "series.csv")
        if self.rock_salt is not None:
            write_table(self.rock_salt["reflections"].drop(columns=["hkl"], errors="ignore"), out_dir / "rock_salt.csv")
        for k, p in enumerate(self.patterns):
            write_table(pd.DataFrame({"two_theta_deg": p.two_theta_deg, "intensity": p.intensity}),
                        out_dir / (f"pattern_{k:03d}.csv" if len(self.patterns) > 1 else "pattern.csv"))
        for k, fig in enumerate(self.figures()):
            (out_dir / f"figure_{k + 1}.png").write_bytes(fig.png)
        write_summary(out_dir, self.summary(), provenance)


def analyse_xrd(patterns: Sequence[Pattern], options: XRDOptions | None = None) -> XRDResult:
    """Layered-oxide analysis of patterns already read (no file is read or written).

    Parameters
    ----------
    patterns : sequence of Pattern
        From :func:`layerscope.diffraction.analysis.read_patterns` (several: an in situ series).
    options : XRDOptions, optional
        What to fit and how (defaults when None).

    Returns
    -------
    XRDResult
        With one :class:`~layerscope.provenance.Provenance` (sha256 of every pattern file, every option).
    """
    from layerscope.diffraction.analysis import layered_results, rock_salt_result, sources_provenance

    o = options if options is not None else XRDOptions()
    patterns = list(patterns)
    if not patterns:
        raise InputError("run_xrd: no pattern given.")
    labels = list(o.labels) if o.labels is not None else list(range(len(patterns)))
    if len(labels) != len(patterns):
        raise InputError(f"--labels has {len(labels)} values for {len(patterns)} files; give one per file.")
    results = layered_results(patterns, o)
    rs = rock_salt_result(patterns, results, o)
    params = o.to_dict()
    notes = [f"{p.source.name if p.source else 'pattern'}: {n}" for p in patterns
             for n in p.metadata.get("reader_notes", [])]
    return XRDResult(patterns, list(results), rs, labels, o.label_name, params, notes,
                     provenance=sources_provenance(patterns, params))


def run_xrd(
    patterns: Sequence[Pattern],
    *,
    labels: Sequence[float] | None = None,
    label_name: str = "index",
    reference: str | tuple[float, float] | None = None,
    instrument_fwhm_deg: float | None = None,
    rock_salt: str | None = None,
    scheduler: str | None = None,
) -> XRDResult:
    """Layered-oxide analysis of every pattern (keywords kept; see :func:`analyse_xrd`).

    Parameters
    ----------
    patterns : sequence of Pattern
    labels : sequence of float, optional
        Series coordinate per pattern (time, temperature, voltage); default 0, 1, 2 ...
    label_name : str
        Name of that coordinate with its unit (``time_s``, ``temperature_C``, ``voltage_V``).
    reference, instrument_fwhm_deg : see :func:`~layerscope.diffraction.layered.analyse_layered`.
    rock_salt : str, optional
        Also look for this rock-salt phase in the first pattern (``"NiO"``...).
    scheduler : str, optional
        Dask scheduler address.
    """
    return analyse_xrd(patterns, XRDOptions(labels=labels, label_name=label_name, reference=reference,
                                            instrument_fwhm_deg=instrument_fwhm_deg, rock_salt=rock_salt,
                                            scheduler=scheduler))


@dataclass
class KineticsResult:
    """Peak temperatures and Kissinger/Ozawa activation energies of a set of heating runs."""

    curves: list[ThermalCurve]
    peaks: pd.DataFrame
    kissinger: ActivationEnergy
    ozawa: ActivationEnergy
    parameters: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None

    def summary(self) -> dict[str, Any]:
        return {"peaks": self.peaks.to_dict(orient="records"), "kissinger": self.kissinger.summary(),
                "ozawa": self.ozawa.summary()}

    def figures(self) -> list:
        """Report figures (made once, then reused by :meth:`section` and :meth:`write`)."""
        if getattr(self, "_figures", None) is None:
            self._figures = self._make_figures()
        return self._figures

    def _make_figures(self) -> list:
        from layerscope.report import Figure, figure_to_png
        from layerscope.report.figures import legend_outside

        plt = _plt()
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        for c, row in zip(self.curves, self.peaks.itertuples()):
            y = c.signal / np.nanmax(np.abs(c.signal))
            ax[0].plot(c.temperature_K - 273.15, y, lw=1, label=f"{c.heating_rate_K_min:g} K/min")
            ax[0].axvline(row.peak_C, color="0.6", lw=0.6)
        ax[0].set_xlabel("temperature (°C)")
        ax[0].set_ylabel(f"{self.curves[0].signal_name} (normalised)")
        legend_outside(ax[0], where="below")
        k = self.kissinger
        ax[1].plot(1000 * k.table["inv_T_per_K"], k.table["ln_beta_over_T2"], "o")
        xx = np.linspace(k.table["inv_T_per_K"].min(), k.table["inv_T_per_K"].max(), 10)
        ax[1].plot(1000 * xx, k.intercept - k.ea_kJ_mol * 1000 / 8.314462618 * xx, "-")
        ax[1].set_xlabel("1000 / Tp (1/K)")
        ax[1].set_ylabel("ln(β / Tp²)")
        fig.tight_layout()
        png = figure_to_png(fig)
        plt.close(fig)
        return [Figure("Oxygen release and Kissinger plot", png,
                       f"Kissinger Ea = {k.ea_kJ_mol:.1f} ± {k.ea_err_kJ_mol:.1f} kJ/mol; Ozawa "
                       f"{self.ozawa.ea_kJ_mol:.1f} ± {self.ozawa.ea_err_kJ_mol:.1f} kJ/mol.")]

    def section(self, provenance: Provenance | None = None):
        from layerscope.report import Section, Table, Value

        k, o = self.kissinger, self.ozawa
        metrics = {"Kissinger Ea (kJ/mol)": Value(k.ea_kJ_mol, k.ea_err_kJ_mol, "kJ/mol"),
                   "Kissinger Ea (eV)": Value(k.ea_eV, k.ea_err_eV, "eV"),
                   "Ozawa Ea (kJ/mol)": Value(o.ea_kJ_mol, o.ea_err_kJ_mol, "kJ/mol"),
                   "T of max O2 release at the slowest rate (°C, one run)":
                       Value(float(self.peaks["peak_C"].iloc[0]), None, "°C")}
        text = ("Temperature of maximum oxygen release from each heating run (Savitzky-Golay smoothing, parabola "
                "through the top 20 % of the peak); Kissinger and Ozawa straight-line fits over the heating rates, "
                "uncertainties are the standard errors of the slopes.")
        return Section("Thermal kinetics of oxygen release", text=text, figures=self.figures(),
                       tables=[Table("Peak temperatures", self.peaks)], metrics=metrics, provenance=provenance)

    @writes_folder()
    def write(self, out_dir: Path, provenance: Provenance) -> None:
        from layerscope.io.output import write_summary, write_table

        write_table(self.peaks, out_dir / "peaks.csv")
        write_table(self.kissinger.table, out_dir / "kissinger.csv")
        write_table(self.ozawa.table, out_dir / "ozawa.csv")
        for k, fig in enumerate(self.figures()):
            (out_dir / f"figure_{k + 1}.png").write_bytes(fig.png)
        write_summary(out_dir, self.summary(), provenance)


def analyse_kinetics(curves: Sequence[ThermalCurve], options: KineticsOptions | None = None) -> KineticsResult:
    """Peak temperature of every heating run already read, then Kissinger and Ozawa over the rates.

    Parameters
    ----------
    curves : sequence of ThermalCurve
        From :func:`layerscope.diffraction.analysis.read_thermal_curves` (one per heating rate).
    options : KineticsOptions, optional
        Defaults when None (the signal name is then taken from the curves for the record).

    Returns
    -------
    KineticsResult
        With one :class:`~layerscope.provenance.Provenance` (sha256 of every file, every option).
    """
    from layerscope.diffraction.analysis import peak_table, sources_provenance

    curves = sorted(curves, key=lambda c: c.heating_rate_K_min)
    o = options if options is not None else KineticsOptions(signal=curves[0].signal_name if curves else "")
    peaks = peak_table(curves, o)
    b, tp = peaks["heating_rate_K_min"].to_numpy(), peaks["peak_K"].to_numpy()
    params = o.to_dict()
    return KineticsResult(list(curves), peaks, kissinger(b, tp), ozawa(b, tp), parameters=params,
                          provenance=sources_provenance(curves, params))


def run_kinetics(curves: Sequence[ThermalCurve], *, window_K: float = 10.0) -> KineticsResult:
    """Peak temperature of every run, then Kissinger and Ozawa over the heating rates (see :func:`analyse_kinetics`)."""
    signal = min(curves, key=lambda c: c.heating_rate_K_min).signal_name if len(curves) else ""
    return analyse_kinetics(curves, KineticsOptions(signal=signal, window_K=window_K))
