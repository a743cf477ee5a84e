"""Core commands: ``info``, ``demo`` and ``version``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from layerscope.cli.app import OverwriteOption, claim_output, PixelSizeOption, SchedulerOption, app


@app.command()
def info(
    file: Path = typer.Argument(..., help="A dm3/dm4/emd/ser/tif/mrc/msa/hspy/zspy/npy or text spectrum file."),
    pixel_size_nm: Optional[float] = PixelSizeOption,
    offset_ev: Optional[float] = typer.Option(None, "--offset-ev", help="Energy of the first channel (eV), if the file has none."),
    scale_ev: Optional[float] = typer.Option(None, "--scale-ev", help="Dispersion (eV per channel), if the file has none."),
    index: Optional[int] = typer.Option(None, "--index", help="Which signal, when the file holds several."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Print the shape, calibration and key metadata of FILE."""
    from layerscope.io import load

    sig = load(file, pixel_size_nm=pixel_size_nm, offset_eV=offset_ev, scale_eV=scale_ev, index=index, lazy=True)
    desc = sig.describe()
    if as_json:
        typer.echo(json.dumps(desc, indent=2, default=str))
        return
    typer.echo(f"{file}: {desc['kind'].replace('_', ' ')} {tuple(desc['shape'])} {desc['dtype']}")
    for ax in desc["axes"]:
        typer.echo(f"  {ax['name']:>8}: {ax['size']} × {ax['scale']:.6g} {ax['units']}  (offset {ax['offset']:.6g})")
    for key, value in desc["metadata"].items():
        typer.echo(f"  {key}: {value}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Output folder (report.html and per-analysis results)."),
    overwrite: bool = OverwriteOption,
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulated data."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Simulate a degraded NMC811 cathode and run every analysis on it; writes OUT/report.html."""
    from layerscope.demo import run_demo

    claim_output(out, overwrite)
    report = run_demo(out, seed=seed, scheduler=scheduler, overwrite=overwrite)
    typer.echo(f"report written to {report}")


@app.command()
def version() -> None:
    """Print the layerscope version."""
    from layerscope._version import __version__

    typer.echo(__version__)
