"""``layerscope xas``, ``layerscope eis`` and ``layerscope gas`` (bulk spectroscopy)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from layerscope.cli.app import OverwriteOption, OutOption, app, claim_output
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
    reference: Optional[List[str]] = typer.Option(None, "--reference", help="NAME=VALENCE: a spectrum (or file) of "
                                                                            "known valence; repeat for each reference."),
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
