"""The root Typer application; domain modules add their commands to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="layerscope",
    help=(
        "Quantified degradation of layered oxide cathodes, from the raw file to a report.\n\n"
        "Lengths are in nm, energies in eV, times in s; x runs to the right, y down. "
        "Every command writes its outputs with provenance into --out, all or nothing."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

SchedulerOption = typer.Option(
    None,
    "--scheduler",
    help="threads (default: local threads in this process), processes (local worker processes) or the address "
    "of a dask.distributed scheduler (tcp://host:8786).",
)

OutOption = typer.Option(
    ...,
    "--out",
    help="Output folder; written all or nothing (nothing is left behind when the analysis fails).",
)

PixelSizeOption = typer.Option(
    None,
    "--pixel-size-nm",
    help="Pixel size (scan step) in nm: required where the input carries none (plain images, folders of "
    "frames, movies, arrays); overrides the file's calibration otherwise.",
)
