"""``layerscope cycling``, ``layerscope xrd`` and ``layerscope kinetics``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from layerscope.cli.app import parse_floats, OverwriteOption, claim_output, OutOption, SchedulerOption, app
from layerscope.errors import InputError


@app.command()
def cycling(
    file: Path = typer.Argument(..., help="Cycler file: Maccor text, BioLogic .mpr/.mpt/CSV, Neware .nda/.ndax/CSV, "
                                          "Arbin .res/CSV, or a CSV with time_s, cycle, current_A, voltage_V; or a "
                                          "processed voltage curve with a normalised capacity (.mat normalizedCapacity/"
                                          "voltage, CSV SOC_aligned/Voltage_aligned: voltage curve and dQ/dV only)."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    mass_mg: Optional[float] = typer.Option(None, "--mass-mg", help="Active mass in mg (specific capacities only "
                                                                     "with it; never taken from the file)."),
    electrode: str = typer.Option("cathode", "--electrode", help="cathode (CE = discharge/charge) or anode half "
                                                                 "cell (CE = charge/discharge)."),
    reference_cycle: Optional[int] = typer.Option(None, "--reference-cycle", help="Cycle that retention is relative "
                                                                                 "to (default: first complete)."),
    pairs: bool = typer.Option(False, "--pairs", help="Number cycles as charge/discharge pairs, not by the cycler."),
    direction: str = typer.Option("charge", "--direction", help="Half cycle used for dQ/dV: charge or discharge."),
    nominal_capacity_mah: Optional[float] = typer.Option(None, "--nominal-capacity-mah",
                                                         help="Capacity that defines 1C, mAh (enables the rate table)."),
    window_mv: float = typer.Option(15.0, "--dqdv-window-mv", help="Savitzky-Golay window of dQ/dV, mV."),
) -> None:
    """Per-cycle capacity, Coulombic efficiency, retention, voltages, dQ/dV peaks (and rates) of FILE."""
    target = claim_output(out, overwrite, file)
    from layerscope.cells.analysis import read_cycling
    from layerscope.cells.curves import curve_layout
    from layerscope.cells.options import CyclingOptions
    from layerscope.cells.workflow import analyse_cycling
    from layerscope.report import render_report

    opts = CyclingOptions(active_mass_mg=mass_mg, electrode=electrode, reference_cycle=reference_cycle, pairs=pairs,
                          direction=direction, nominal_capacity_mAh=nominal_capacity_mah, dqdv_window_mV=window_mv)
    if curve_layout(file) is not None:
        given = [name for name, v in (("--mass-mg", mass_mg), ("--nominal-capacity-mah", nominal_capacity_mah),
                                      ("--reference-cycle", reference_cycle), ("--pairs", pairs or None)) if v is not None]
        _normalised_curve(file, target, out, given=given, window_mv=window_mv)
        return
    res = analyse_cycling(read_cycling(file, opts), opts)
    prov = res.provenance
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(prov)], tmp / "report.html", title=f"Cycling: {file.name}", provenance=prov)
    typer.echo(_cycling_line(file, res.summary(), out))


def _normalised_curve(file: Path, target, out: Path, *, given: list[str], window_mv: float) -> None:
    """``cycling`` on a processed voltage curve with a normalised capacity: voltage curve and dQ/dV only."""
    from layerscope.cells.curves import CurveOptions, analyse_curve, read_normalised_curve
    from layerscope.provenance import Provenance
    from layerscope.report import render_report

    if given:
        raise InputError(f"{file}: the capacity in this file is normalised to 0-1 (a processed voltage curve, no mAh), "
                         f"so {', '.join(given)} cannot be applied; drop {'it' if len(given) == 1 else 'them'} "
                         "(the voltage curve and dQ/dV need none).")
    res = analyse_curve(read_normalised_curve(file), CurveOptions(window_V=window_mv / 1000.0))
    prov = Provenance.create([file], parameters=res.parameters)
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(prov)], tmp / "report.html", title=f"Voltage curve: {file.name}", provenance=prov)
    s = res.summary()
    peak = f"main dQ/dV peak at {s['main_peak_V']:.3f} V" if s["main_peak_V"] is not None else "no dQ/dV peak"
    typer.echo(f"{file.name}: normalised voltage curve ({s['label'] or 'direction not stated'}), {s['n_points']} points, "
               f"{s['voltage_min_V']:.2f}-{s['voltage_max_V']:.2f} V, {s['n_dqdv_peaks']} dQ/dV peaks, {peak}; FLAGS: "
               + ", ".join(f["code"] for f in s["flags"]) + f" -> {out}")
    for f in s["flags"]:
        typer.echo(f"  flag {f['code']}: {f['message']}")


def _cycling_line(file: Path, s: dict, out: Path) -> str:
    """The one-line result of ``layerscope cycling``, flags included (their messages on the next lines)."""
    line = f"{file.name}: {s['layout']}, {s['n_cycles']} cycles ({s['n_complete_cycles']} complete"
    line += f", {s['n_headline_cycles']} in the headline)"
    if s.get("last_retention") is not None:
        line += (f", retention {100 * s['last_retention']:.1f} % at cycle {s['last_cycle']} vs {s['reference_cycle']}"
                 f", first CE {100 * s['first_cycle_coulombic_efficiency']:.1f} %")
    if s["flags"]:
        line += "; FLAGS: " + ", ".join(f["code"] for f in s["flags"])
    line += f" -> {out}"
    return "\n".join([line] + [f"  flag {f['code']}: {f['message']}" for f in s["flags"]])


@app.command()
def xrd(
    files: List[Path] = typer.Argument(..., help="Pattern(s): .xrdml, Bruker .raw (v1-v4)/.uxd, Rigaku .ras/.rasx, "
                                                 "or FullProf .dat / two-column .xy/.csv/.txt (then give --radiation). "
                                                 "Several files form an in situ series."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    radiation: Optional[str] = typer.Option(None, "--radiation", help="Anode for files without a wavelength (Cu, "
                                                                      "Co, Mo, ...); overrides a file's own."),
    wavelength_a: Optional[float] = typer.Option(None, "--wavelength-a", help="Single wavelength (Å) for "
                                                                               "monochromatic text data."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Starting lattice (LiCoO2, NMC811, ...); default: "
                                                                      "found from (003) and (104)."),
    instrument_fwhm_deg: Optional[float] = typer.Option(None, "--instrument-fwhm-deg",
                                                        help="Instrumental FWHM for Williamson-Hall (from a standard)."),
    rock_salt: Optional[str] = typer.Option(None, "--rock-salt", help="Also identify a rock-salt phase (NiO, CoO, MnO)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated series coordinate per file."),
    label_name: str = typer.Option("index", "--label-name", help="Name and unit of --labels (time_s, temperature_C, "
                                                                 "voltage_V)."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """I(003)/I(104), a and c, splittings and Williamson-Hall of layered-oxide pattern(s)."""
    target = claim_output(out, overwrite, files)
    from layerscope.diffraction.analysis import read_patterns
    from layerscope.diffraction.options import XRDOptions
    from layerscope.diffraction.workflow import analyse_xrd
    from layerscope.report import render_report

    opts = XRDOptions(radiation=radiation, wavelength_A=wavelength_a, reference=reference,
                      instrument_fwhm_deg=instrument_fwhm_deg, rock_salt=rock_salt,
                      labels=parse_floats(labels, name="--labels", example="0,60,120"), label_name=label_name,
                      scheduler=scheduler)
    res = analyse_xrd(read_patterns(files, opts), opts)
    prov = res.provenance
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(prov)], tmp / "report.html", title=f"XRD: {files[0].name}", provenance=prov)
    typer.echo(f"{res.cli_line()} -> {out}")


@app.command()
def kinetics(
    files: List[Path] = typer.Argument(..., help="One CSV per heating rate with temperature_C or temperature_K, the "
                                                 "signal column and (preferably) time_s."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    signal: str = typer.Option(..., "--signal", help="Name of the O2 release column (e.g. an m/z 32 ion current)."),
    heating_rates: Optional[str] = typer.Option(None, "--heating-rates", help="Comma-separated K/min, one per file, "
                                                                               "for files without time_s."),
    window_k: float = typer.Option(10.0, "--window-k", help="Smoothing window, K."),
) -> None:
    """Temperature of maximum O2 release and the Kissinger/Ozawa activation energy over several heating rates."""
    target = claim_output(out, overwrite, files)
    from layerscope.diffraction.analysis import read_thermal_curves
    from layerscope.diffraction.options import KineticsOptions
    from layerscope.diffraction.workflow import analyse_kinetics
    from layerscope.report import render_report

    opts = KineticsOptions(signal=signal, window_K=window_k,
                           heating_rates_K_min=parse_floats(heating_rates, name="--heating-rates", example="2,5,10,20"))
    res = analyse_kinetics(read_thermal_curves(files, opts), opts)
    prov = res.provenance
    with target.open() as tmp:
        res.write(tmp, prov)
        render_report([res.section(prov)], tmp / "report.html", title="Oxygen-release kinetics", provenance=prov)
    k = res.kissinger
    typer.echo(f"Kissinger Ea = {k.ea_kJ_mol:.1f} ± {k.ea_err_kJ_mol:.1f} kJ/mol over {k.n_rates} rates -> {out}")
