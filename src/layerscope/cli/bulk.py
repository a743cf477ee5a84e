"""``layerscope xas``, ``layerscope eis`` and ``layerscope gas`` (bulk spectroscopy)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import math

import typer

from layerscope.cli.app import parse_floats, OverwriteOption, OutOption, app, claim_output
from layerscope.errors import InputError


def _pair(text: Optional[str], *, name: str, example: str) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.replace(",", ":").split(":")
    try:
        a, b = (float(p) for p in parts)
    except ValueError as exc:
        raise InputError(f"{name} {text!r}: give two numbers as A:B, e.g. {name} {example}.") from exc
    return a, b


@app.command()
def xas(
    files: List[Path] = typer.Argument(..., help="Absorption spectra: column text or Athena export (energy and mu, "
                                                 "or I0 with It/If), XDI, or a JSON table of spectra."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    reference: Optional[List[str]] = typer.Option(None, "--reference",
                                                  help="NAME=VALENCE: a spectrum (or file) of known valence; repeat "
                                                  "for each reference."),
    energy_grid: Optional[str] = typer.Option(None, "--energy-grid", help="START:STEP in eV for JSON spectra that "
                                                                          "store no energies."),
    pre_edge_ev: str = typer.Option("-150:-30", "--pre-edge-ev", help="Pre-edge fit range relative to E0, eV."),
    post_edge_ev: str = typer.Option("50:400", "--post-edge-ev", help="Post-edge fit range relative to E0, eV."),
) -> None:
    """Normalised XANES: edge energy (half step, derivative maximum), white line, valence from references."""
    target = claim_output(out, overwrite, files)
    from layerscope.bulk.xas import XASOptions, analyse_xas, parse_references
    from layerscope.bulk.xas_readers import read_xas
    from layerscope.bulk._common import flag_line
    from layerscope.provenance import Provenance
    from layerscope.report import render_report

    grid = _pair(energy_grid, name="--energy-grid", example="8330:0.4")
    opts = XASOptions(pre_edge_eV=_pair(pre_edge_ev, name="--pre-edge-ev", example="-150:-30"),
                      post_edge_eV=_pair(post_edge_ev, name="--post-edge-ev", example="50:400"),
                      references=parse_references(reference))
    spectra = []
    for f in files:
        spectra.extend(read_xas(f, energy_grid_eV=grid))
    res = analyse_xas(spectra, opts)
    prov = Provenance.create(list(files), parameters={**res.parameters, "energy_grid_eV": grid})
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(prov)], tmp / "report.html", title=f"XAS: {files[0].name}", provenance=prov)
    lo, hi = res.summary()["edge_energy_eV_range"]
    typer.echo(f"{len(spectra)} spectra: edge energy {lo:.2f}-{hi:.2f} eV{flag_line(res.flags)} -> {out}")


def _as_tuple(values: list[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)


@app.command()
def eis(
    files: List[Path] = typer.Argument(..., help="Impedance spectra: BioLogic .mpt, Gamry .DTA, ZPlot .z, Autolab or "
                                                 "CH Instruments .txt, or CSV (frequency Hz, Z' Ohm, Z'' Ohm). "
                                                 "Several files form a series (e.g. over cycles)."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    circuit: str = typer.Option("R0-p(R1,CPE1)-p(R2,CPE2)-W1", "--circuit", help="impedance.py circuit string."),
    initial_guess: Optional[str] = typer.Option(None, "--initial-guess",
                                                help="Comma-separated starting values of all circuit parameters "
                                                "(default: from the data, several starts)."),
    instrument: Optional[str] = typer.Option(None, "--instrument",
                                             help="File format when not detected: gamry, autolab, parstat, zplot, "
                                             "versastudio, powersuite, biologic, chinstruments, csv."),
    cycles: Optional[str] = typer.Option(None, "--cycles",
                                         help="Comma-separated cycle number per file (default 1..n)."),
    drt: bool = typer.Option(False, "--drt", help="Also compute the distribution of relaxation times."),
    drt_lambda: float = typer.Option(1e-3, "--drt-lambda", help="Regularisation of the DRT."),
    keep_inductive: bool = typer.Option(False, "--keep-inductive", help="Fit points with Im Z > 0 too (dropped by "
                                                                        "default unless the circuit has an L)."),
    weight_by_modulus: bool = typer.Option(False, "--weight-by-modulus", help="Weight the fit by 1/|Z|."),
) -> None:
    """Equivalent-circuit fit with uncertainties, Kramers-Kronig check, DRT, resistances over a series."""
    target = claim_output(out, overwrite, files)
    from layerscope._extras import require

    require("spectroscopy", "layerscope eis")
    from layerscope.bulk._common import flag_line
    from layerscope.bulk.eis import EISOptions, analyse_eis
    from layerscope.bulk.eis_readers import read_impedance
    from layerscope.provenance import Provenance
    from layerscope.report import render_report

    guess = parse_floats(initial_guess, name="--initial-guess", example="0.01,0.01,100")
    guess = _as_tuple(guess)
    opts = EISOptions(circuit=circuit, initial_guess=guess,
                      drop_inductive=not keep_inductive, weight_by_modulus=weight_by_modulus, drt=drt,
                      drt_lambda=drt_lambda)
    spectra = [read_impedance(f, instrument=instrument) for f in files]
    res = analyse_eis(spectra, opts, labels=_as_tuple(parse_floats(cycles, name="--cycles", example="1,50,100")))
    prov = Provenance.create(list(files), parameters={**res.parameters, "instrument": instrument})
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(prov)], tmp / "report.html", title=f"Impedance: {files[0].name}", provenance=prov)
    fit = res.items[0].fit
    rs = ", ".join(f"{n} = {v:.4g} ± {e:.2g}" for n, v, e, u in zip(fit.names, fit.values, fit.errors, fit.units)
                   if u == "Ohm")
    typer.echo(f"{files[0].name}: {rs} Ohm; residual {fit.relative_residual:.3g}"
               f"{' (+%d more spectra)' % (len(files) - 1) if len(files) > 1 else ''}{flag_line(res.flags)} -> {out}")


@app.command()
def gas(
    files: List[Path] = typer.Argument(..., help="DEMS / TGA-MS CSV: time_s and/or voltage_V / temperature_C, and ion "
                                                 "currents in A named by m/z (mz32, mz44, ...)."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    calibration: Optional[str] = typer.Option(None, "--calibration", help="MZ=FACTOR pairs, factor in mol/s per A "
                                                                          "(e.g. 32=2.1e-9,44=1.5e-9)."),
    active_mass_mg: Optional[float] = typer.Option(None, "--active-mass-mg",
                                                   help="Active mass, mg (required with --calibration; never from "
                                                   "the file)."),
    x: Optional[str] = typer.Option(None, "--x", help="Axis of onsets and peaks: voltage, temperature or time "
                                                      "(default: the first present)."),
    baseline: str = typer.Option("start", "--baseline", help="start (median of the first 5 %) or linear."),
    onset_mz: int = typer.Option(32, "--onset-mz", help="Channel whose onset is reported (32 = O2)."),
    kinetics: bool = typer.Option(False, "--kinetics", help="Kissinger/Ozawa over the files (heating runs at "
                                                            "different rates, with time_s and temperature_C)."),
) -> None:
    """Onset of O2 (and CO2...) release, calibrated amounts in umol/g, and the Kissinger link for TGA-MS."""
    target = claim_output(out, overwrite, files)
    from layerscope.bulk._common import flag_line
    from layerscope.bulk.gas import GasOptions, analyse_gas, parse_calibration, read_gas
    from layerscope.provenance import Provenance
    from layerscope.report import render_report

    opts = GasOptions(x_axis=x, calibration=parse_calibration(calibration), active_mass_mg=active_mass_mg,
                      baseline=baseline, onset_channel=onset_mz, kinetics=kinetics)
    runs = [read_gas(f) for f in files]
    res = analyse_gas(runs, opts)
    prov = Provenance.create(list(files), parameters=res.parameters)
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(prov)], tmp / "report.html", title=f"Gas evolution: {files[0].name}",
                      provenance=prov)
    t = res.table
    o2 = t[t["mz"] == onset_mz]
    parts = [f"{len(runs)} run(s)"]
    if len(o2):
        r = o2.iloc[0]
        parts.append(f"m/z {onset_mz} onset {r['onset_extrapolated']:.4g} ({r['axis']})")
        if "amount_umol_g" in o2 and math.isfinite(float(r["amount_umol_g"])):
            parts.append(f"{r['amount_umol_g']:.4g} umol/g")
    if res.kinetics is not None:
        k = res.kinetics.kissinger
        parts.append(f"Kissinger Ea = {k.ea_kJ_mol:.1f} ± {k.ea_err_kJ_mol:.1f} kJ/mol")
    typer.echo(", ".join(parts) + flag_line(res.flags) + f" -> {out}")
