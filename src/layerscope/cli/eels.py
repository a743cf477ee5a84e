"""``layerscope eels``: EELS maps and profiles (t/lambda, valence, L3/L2, O-K pre-edge, ratios, fronts)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from layerscope.cli.app import OverwriteOption, claim_output, OutOption, PixelSizeOption, SchedulerOption, app
from layerscope.errors import InputError


def _window(text: Optional[str], *, name: str) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        parts = [float(v) for v in text.replace(":", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise InputError(f"{name} {text!r}: give two energies in eV, e.g. 527,532.5.") from exc
    if len(parts) != 2:
        raise InputError(f"{name} {text!r}: give two energies in eV, e.g. 527,532.5.")
    return parts[0], parts[1]


def _edge_windows(items: Optional[List[str]]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--window {item!r}: write EDGE=START,END in eV, e.g. Co_L=700,770.")
        edge, win = item.split("=", 1)
        out[edge.strip()] = _window(win, name=f"--window {edge}")
    return out


def _align_edge(text: Optional[str]) -> tuple[str, float] | None:
    if text is None:
        return None
    edge, _, value = text.partition("=")
    try:
        return edge.strip(), float(value)
    except ValueError:
        raise InputError(f"--align-edge {text!r}: write EDGE=ENERGY in eV, e.g. O_K=532.") from None


def _k_factors(items: Optional[List[str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--k-factor {item!r}: write O_K/Co_L=VALUE.")
        key, val = item.split("=", 1)
        try:
            out[key.strip()] = float(val)
        except ValueError as exc:
            raise InputError(f"--k-factor {item!r}: {val!r} is not a number.") from exc
    return out


@app.command()
def eels(
    coreloss: Path = typer.Argument(..., help="Core-loss spectrum, line scan or spectrum image (msa, dm3/dm4, hspy, "
                                              "two-column text, ...)."),
    edges: Optional[str] = typer.Option(None, "--edges", help="Edges to analyse, comma-separated, e.g. Co_L,O_K or "
                                         "Mn_L,O_K. Without --edges a low loss is analysed (ZLP, t/lambda)."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    lowloss: Optional[Path] = typer.Option(None, "--lowloss", help="Matching low loss with the zero-loss peak "
                                                                   "(alignment, t/lambda, Fourier-ratio deconvolution)."),
    references: Optional[Path] = typer.Option(None, "--references", help="Folder of reference spectra of known valence "
                                                                         "with references.csv (format: layerscope.spectra.references)."),
    pixel_size_nm: Optional[float] = PixelSizeOption,
    offset_ev: Optional[float] = typer.Option(None, "--offset-ev", help="Energy of the first core-loss channel in eV, "
                                                                        "for files without an energy unit."),
    scale_ev: Optional[float] = typer.Option(None, "--scale-ev", help="Core-loss dispersion in eV per channel, for "
                                                                      "files without an energy unit."),
    dual_eels: Optional[bool] = typer.Option(None, "--dual-eels/--separate-lowloss", help="Low and core loss recorded "
                                             "together (ZLP shifts also correct the core-loss energy) or separately. "
                                             "Default: together only when the files' metadata say so."),
    deconvolve: bool = typer.Option(True, "--deconvolve/--no-deconvolve", help="Fourier-ratio deconvolution of each "
                                                                              "edge with the low loss."),
    background: str = typer.Option("power_law", "--background", help="power_law, power_law_lsq, exponential, lcpl, "
                                                                     "or none for spectra whose background is removed."),
    energy_shift_ev: float = typer.Option(0.0, "--energy-shift-ev", help="Added to the core-loss energy axis (eV), "
                                                                          "to correct a calibration offset."),
    align_edge: Optional[str] = typer.Option(None, "--align-edge", help="EDGE=ENERGY: shift the energy axis so that "
                                             "the measured onset of EDGE (one of --edges) is at ENERGY eV, e.g. "
                                             "O_K=532."),
    resolution_ev: Optional[float] = typer.Option(None, "--resolution-ev", help="Energy resolution (FWHM, eV) of the "
                                                  "core loss for matching references (default: the low loss's ZLP)."),
    window: Optional[List[str]] = typer.Option(None, "--window", help="Background fit window of an edge, "
                                                                      "EDGE=START,END in eV (repeatable)."),
    whiteline: str = typer.Option("pearson", "--whiteline", help="L3/L2 method: pearson or second_derivative."),
    preedge_window: Optional[str] = typer.Option(None, "--preedge-window", help="O-K pre-edge window START,END in eV "
                                                                                "(default 527,532.5)."),
    main_window: Optional[str] = typer.Option(None, "--main-window", help="O-K main-peak window START,END in eV "
                                                                          "(default 533.5,548)."),
    beam_energy_kev: Optional[float] = typer.Option(None, "--beam-energy-kev", help="Beam energy in keV (default: "
                                                                                   "from the file's metadata)."),
    collection_angle_mrad: Optional[float] = typer.Option(None, "--collection-angle-mrad",
                                                          help="Collection semi-angle in mrad (default: metadata)."),
    convergence_angle_mrad: Optional[float] = typer.Option(None, "--convergence-angle-mrad",
                                                           help="Convergence semi-angle in mrad (default: metadata)."),
    k_factor: Optional[List[str]] = typer.Option(None, "--k-factor", help="k-factor for an elemental ratio, "
                                                                          "O_K/Co_L=VALUE (repeatable)."),
    nan_invalid: bool = typer.Option(False, "--nan-invalid", help="Mark pixels without positive counts in a "
                                                                  "background window as NaN instead of stopping."),
    lazy: bool = typer.Option(False, "--lazy", help="Read the data lazily (Dask) - for spectrum images larger than "
                                                    "memory."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Thickness, valence, L3/L2, O-K pre-edge, elemental-ratio maps and fronts of CORELOSS.

    Writes pixels.csv (one row per pixel), maps/*.npy, PNG maps or profiles, edge_spectra.csv,
    summary.json, provenance.json and report.html into --out.
    """
    target = claim_output(out, overwrite, coreloss, lowloss, references)
    from layerscope._extras import require

    require("eels", "layerscope eels")
    from layerscope.report import render_report
    from layerscope.spectra.pipeline import analyse_eels

    if whiteline not in ("pearson", "second_derivative"):
        raise InputError(f"--whiteline {whiteline!r}: choose pearson or second_derivative.")
    kw = {}
    pw = _window(preedge_window, name="--preedge-window")
    mw = _window(main_window, name="--main-window")
    if pw is not None:
        kw["preedge_window_eV"] = pw
    if mw is not None:
        kw["main_window_eV"] = mw
    res = analyse_eels(
        coreloss, edges=edges, lowloss=lowloss, references=references, pixel_size_nm=pixel_size_nm,
        offset_eV=offset_ev, scale_eV=scale_ev, lazy=lazy,
        dual_eels=dual_eels, deconvolve=deconvolve, background_method=background,
        background_windows=_edge_windows(window), on_invalid="nan" if nan_invalid else "raise",
        energy_shift_eV=energy_shift_ev, resolution_eV=resolution_ev, align_edge=_align_edge(align_edge),
        whiteline_method=whiteline, beam_energy_keV=beam_energy_kev, collection_angle_mrad=collection_angle_mrad,
        convergence_angle_mrad=convergence_angle_mrad, k_factors=_k_factors(k_factor), scheduler=scheduler, **kw,
    )
    prov = res.provenance()
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(title=f"EELS: {coreloss.name}")], tmp / "report.html",
                      title=f"EELS: {coreloss.name}", provenance=prov)
    fronts = {k: f for k, f in res.fronts.items() if "error" not in f}
    flags = res.summary.get("flags") or []
    what = f"edges {', '.join(res.parameters['edges'])}" if res.parameters["edges"] else "low loss"
    typer.echo(
        f"{coreloss.name}: {res.kind.replace('_', ' ')} {list(res.pixel_shape)}, {what}, "
        f"{len(res.maps)} maps, {len(fronts)} front(s), {len(flags)} flag(s) -> {out}"
    )
    for key, text in _key_numbers(res):
        typer.echo(f"  {key}: {text}")
    for f in flags:
        typer.echo(f"  FLAG {f['code']}: {f['message']}")


def _key_numbers(res) -> list[tuple[str, str]]:
    """One line per key number of a single spectrum (median of the map otherwise)."""
    out = []
    for key, st in res.summary.get("maps", {}).items():
        if key.endswith(("sigma", "sigma_eV", "_extrapolated")) or st.get("median") is None:
            continue
        if key.endswith(("onset_eV", "peak_eV", "l3_l2", "preedge_ratio", "t_over_lambda")) or "valence" in key:
            out.append((key, f"{st['median']:.4g}"))
    for edge, v in (res.summary.get("valence") or {}).items():
        if v.get("value") is not None:
            out.append((f"{edge}.valence", f"{v['value']:.2f} ({v['recommended']}, recommended)"))
    return out
