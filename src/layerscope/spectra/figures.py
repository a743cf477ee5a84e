"""Figures and the report section of an EELS analysis (maps with nm scale bars, profiles, spectra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.spectra.fronts import WIDTH_10_90_PER_SIGMA

__all__ = ["eels_section", "write_figures", "map_figure", "profile_figure", "spectra_figure"]

_LABELS = {
    "preedge_peak_eV": "pre-edge peak energy (eV)",
    "t_over_lambda": "t/λ",
    "valence_interp": "valence (interpolation)",
    "valence_lc": "valence (linear combination)",
    "shift_eV": "chemical shift (eV)",
    "l3_l2": "L3/L2",
    "preedge_ratio": "O-K pre-edge / main",
    "peak_eV": "first-peak energy (eV)",
    "onset_eV": "onset (eV)",
}


def _label(key: str) -> str:
    for k, v in _LABELS.items():
        if key.endswith(k):
            prefix = key[: -len(k)].rstrip(".")
            return f"{prefix} {v}".strip()
    return key.replace("_", " ")


def _axis_label(text: str) -> str:
    """An axis or colour-bar label with its unit: ratios and valences are marked dimensionless."""
    return text if text.rstrip().endswith(")") and "(eV)" in text else f"{text} (dimensionless)"


#: Quantities drawn as maps/profiles (all maps are still written as .npy and in pixels.csv).
_DISPLAYED = ("t_over_lambda", "valence_interp", "valence_lc", "shift_eV", "l3_l2", "preedge_ratio", "O_per_")


def _display_keys(maps: dict[str, np.ndarray]) -> list[str]:
    return [k for k in maps if "sigma" not in k and any(q in k for q in _DISPLAYED)]


def map_figure(values: np.ndarray, pixel_size_nm: float, title: str, front: dict | None = None) -> bytes:
    """PNG of one map with a colour bar, an nm scale bar and the fitted front line (if any)."""
    from layerscope.report import add_scalebar, figure_to_png
    from layerscope.report.figures import plt

    fig, ax = plt.subplots(figsize=(4.6, 4.6 * values.shape[0] / max(values.shape[1], 1) + 0.4))
    fin = values[np.isfinite(values)]
    vmin, vmax = (np.percentile(fin, [2, 98]) if fin.size else (0, 1))
    im = ax.imshow(values, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
    if front and "angle_deg" in front:
        th = np.radians(front["angle_deg"])
        cx, cy = front["centre_x_nm"] / pixel_size_nm - 0.5, front["centre_y_nm"] / pixel_size_nm - 0.5
        t = np.linspace(-2, 2, 2) * max(values.shape)
        ax.plot(cx - t * np.sin(th), cy + t * np.cos(th), "w--", lw=1)
        ax.set_xlim(-0.5, values.shape[1] - 0.5)
        ax.set_ylim(values.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    ax.set_title(title)
    add_scalebar(ax, pixel_size_nm)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label(_axis_label(title))
    return figure_to_png(fig)


def profile_figure(
    positions_nm: np.ndarray, values: np.ndarray, sigma: np.ndarray | None, title: str, front: dict | None = None
) -> bytes:
    """PNG of a line-scan profile with error bars and the fitted error-function front."""
    from scipy.special import erf

    from layerscope.report import figure_to_png
    from layerscope.report.figures import legend_outside, plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.errorbar(positions_nm, values, yerr=sigma, fmt="o", ms=3, lw=0.8, capsize=0)
    if front and "position_nm" in front:
        x = np.linspace(positions_nm[0], positions_nm[-1], 400)
        w = front["width_nm"] / WIDTH_10_90_PER_SIGMA
        y = front["low"] + (front["high"] - front["low"]) * 0.5 * (1 + erf((x - front["position_nm"]) / (np.sqrt(2) * w)))
        ax.plot(x, y, "r-", lw=1.2,
                label=f"front {front['position_nm']:.2f} ± {front['position_sigma_nm']:.2f} nm, "
                      f"10-90 % {front['width_nm']:.2f} ± {front['width_sigma_nm']:.2f} nm")
    ax.set_xlabel("position (nm)")
    ax.set_ylabel(_axis_label(title))
    if front and "position_nm" in front:
        legend_outside(ax, where="below", ncol=1)
    ax.grid(alpha=0.3)
    return figure_to_png(fig)


def spectra_figure(edge_spectra: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """PNG of the mean processed spectrum of every edge."""
    from layerscope.report import figure_to_png
    from layerscope.report.figures import plt

    n = max(len(edge_spectra), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), squeeze=False, layout="constrained")
    from layerscope.spectra.edges import get_edge
    from layerscope.spectra.edgekinds import edge_windows

    for ax, (name, (e, y)) in zip(axes[0], edge_spectra.items()):
        lo, hi = edge_windows(get_edge(name))["edge"]
        m = (e >= lo - 10) & (e <= hi + 15)
        ax.plot(e[m], y[m], lw=1)
        ax.set_title(f"{name} (mean, background removed)")
        ax.set_xlabel("energy loss (eV)")
        ax.set_ylabel("intensity (counts)")
        ax.grid(alpha=0.3)
    return figure_to_png(fig)


def _figures(res: Any) -> list[tuple[str, str, bytes, str]]:
    """(file name, title, png, caption) of every figure (made once per analysis, then cached)."""
    cached = getattr(res, "_figure_cache", None)
    if cached is not None:
        return cached
    out = []
    keys = _display_keys(res.maps)
    if res.kind == "spectrum_image":
        for k in keys:
            out.append((f"map_{k}.png", _label(k), map_figure(res.maps[k], res.pixel_size_nm, _label(k), res.fronts.get(k)),
                        f"{_label(k)} per pixel; dashed line: fitted front (if one was found)."))
    elif res.kind == "line_scan":
        x = (np.arange(res.pixel_shape[0]) + 0.5) * res.pixel_size_nm
        for k in keys:
            s = res.maps.get(f"{k}_sigma", res.maps.get(k.replace("_eV", "_sigma_eV")) if k.endswith("_eV") else None)
            out.append((f"profile_{k}.png", _label(k), profile_figure(x, res.maps[k], s, _label(k), res.fronts.get(k)),
                        f"{_label(k)} along the scan (one sigma error bars); red: error-function front fit."))
    if res.edge_spectra:
        out.append(("edge_spectra.png", "Edge spectra", spectra_figure(res.edge_spectra),
                    "Mean spectrum of each edge after background removal (and Fourier-ratio deconvolution)."))
    res._figure_cache = out
    return out


def write_figures(res: Any, out_dir: Path) -> None:
    """Write every figure of ``res`` as PNG into ``out_dir`` (and a profiles table for line scans)."""
    from layerscope.io.output import write_table

    for fname, _, png, _ in _figures(res):
        (Path(out_dir) / fname).write_bytes(png)
    if res.kind == "line_scan":
        write_table(res.table(), Path(out_dir) / "profiles.csv")


def _fronts_table(fronts: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for k, f in fronts.items():
        if "error" in f:
            rows.append({"quantity": k, "result": f["error"][:120]})
        elif "position_nm" in f:
            rows.append({"quantity": k, "position (nm)": f["position_nm"], "± (nm)": f["position_sigma_nm"],
                         "10-90 % width (nm)": f["width_nm"], "width ± (nm)": f["width_sigma_nm"],
                         "low": f["low"], "high": f["high"]})
        else:
            rows.append({"quantity": k, "angle (deg)": f["angle_deg"], "distance (nm)": f["distance_nm"],
                         "± (nm)": f["distance_sigma_nm"], "10-90 % width (nm)": f["width_nm"],
                         "width ± (nm)": f["width_sigma_nm"], "low": f["low"], "high": f["high"]})
    return pd.DataFrame(rows)


def eels_section(res: Any, *, title: str = "EELS") -> Any:
    """A :class:`layerscope.report.Section` for an :class:`~layerscope.spectra.pipeline.EELSAnalysis`."""
    from layerscope.report import Figure, Section, Table, Value

    figs = [Figure(t, png, cap) for _, t, png, cap in _figures(res)]
    tables = []
    if res.fronts:
        tables.append(Table("Fronts (error-function fits)", _fronts_table(res.fronts)))
    if res.references:
        tables.append(Table("References used", pd.DataFrame(res.references)))
    metrics, headline = _front_metrics(res.fronts)
    for k, st in res.summary["maps"].items():
        if "sigma" in k or st["median"] is None:
            continue
        metrics[f"median {_label(k)}"] = Value(round(st["median"], 4), None, "eV" if k.endswith("eV") else "")
    p = res.parameters
    valence = res.summary.get("valence") or {}
    if valence:
        tables.append(Table("Valence by method (medians)", _valence_table(valence)))
    text = _section_text(res, p)
    flags = res.summary.get("flags") or []
    if flags:
        text += "\n\nFlags: " + "; ".join(f"[{f['code']}] {f['message']}" for f in flags) + "."
    if res.summary.get("notes"):
        text += "\n\nNotes: " + "; ".join(res.summary["notes"]) + "."
    return Section(title, text=text, figures=figs, tables=tables, metrics=metrics, provenance=res.provenance(),
                   headline=headline or None)


#: Quantities whose line-scan front leads the headline, in order of preference (one valence, then ratios).
_HEADLINE_FRONTS = (("Co_L.valence_lc", "Co_L.valence_interp", "Ni_L.valence_lc", "Mn_L.valence_lc"),
                    ("Co_L.l3_l2", "Ni_L.l3_l2", "Mn_L.l3_l2"), ("O_K.preedge_ratio",))


def _front_metrics(fronts: dict[str, dict]) -> tuple[dict[str, Any], list[str]]:
    """Front positions and widths (fit ± s.e.) and, for line scans, the plateau on each side of the front
    (fit ± s.e.) as report Values; and the headline keys (the front of a valence, the L3/L2 and O-K
    pre-edge plateaus)."""
    from layerscope.report import Value

    metrics: dict[str, Any] = {}
    headline: list[str] = []
    for k, f in fronts.items():
        if "position_nm" not in f:
            continue
        pos, width = f"front of {_label(k)} (nm, fit ± s.e.)", f"10-90 % width of {_label(k)} (nm, fit ± s.e.)"
        metrics[pos] = Value(f["position_nm"], f["position_sigma_nm"], "nm")
        metrics[width] = Value(f["width_nm"], f["width_sigma_nm"], "nm")
        unit = "eV" if k.endswith("eV") else ""
        start, end = f"{_label(k)} at the scan start (fit ± s.e.)", f"{_label(k)} at the scan end (fit ± s.e.)"
        metrics[start] = Value(f["low"], f.get("low_sigma"), unit)
        metrics[end] = Value(f["high"], f.get("high_sigma"), unit)
        if any(k in group for group in _HEADLINE_FRONTS[1:]):
            headline += [start, end]
    valence = [k for k in _HEADLINE_FRONTS[0] if "position_nm" in fronts.get(k, {})]
    if valence:
        headline.insert(0, f"front of {_label(valence[0])} (nm, fit ± s.e.)")
    return metrics, headline


def _valence_table(valence: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for edge, v in valence.items():
        for m, d in v["methods"].items():
            rows.append({"edge": edge, "method": m, "valence": d["median"], "sigma": d["sigma"],
                         "recommended": "yes" if m == v["recommended"] else ""})
    return pd.DataFrame(rows)


def _section_text(res: Any, p: dict[str, Any]) -> str:
    if p.get("mode") == "lowloss":
        return ("Low loss: zero-loss peak " + ("aligned to 0 eV; " if p.get("align") else "; ")
                + "t/lambda by the log-ratio method (Egerton 2011, eq. 5.11).")
    wins = p["background_windows"]
    return (
        f"{res.kind.replace('_', ' ')} of {len(p['edges'])} edge(s) ({', '.join(p['edges'])}). "
        f"Background: {p['background_method']}"
        + (f" fitted in the windows {', '.join(f'{edge} {lo:.1f}-{hi:.1f}' for edge, (lo, hi) in wins.items())} eV. "
           if wins else " (no background fitted). ")
        + ("Zero-loss peaks aligned to 0 eV" + (" and the same shifts applied to the core loss (dual EELS). "
                                                 if p.get('dual_eels') else ". ") if p.get("align") else "")
        + ("Edges Fourier-ratio deconvolved with the low loss. " if p.get("deconvolve") else "")
        + f"L3/L2 by the {p['whiteline_method'].replace('_', ' ')} method; O-K pre-edge window "
        f"{p['preedge_window_eV']} eV over the main-peak window {p['main_window_eV']} eV. "
        "Valence by linear interpolation of the chemical shift between references and by "
        "non-negative least-squares combination of the reference spectra, and by L3-position and L3/L2 "
        "interpolation (when references are given)."
    )
