"""Imaging commands: ``layerscope columns`` and ``layerscope phases``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from layerscope.cli.app import (OverwriteOption, claim_output, command_imports, OutOption, PixelSizeOption,
                                SchedulerOption, app)

_IMAGE_HELP = "HAADF/ADF image: TIFF, dm3/dm4, emd, ser, npy or hspy (one 2-D greyscale image)."
_ZONE_HELP = "Zone axis of the hexagonal cell: 100 or 110 (sets the sign of the O3 stacking)."
_COMP_HELP = "Cathode: LiCoO2, NMC811, NMC622, NMC111, Li1.2Ni0.2Mn0.6O2 (lattice scale and calibration check)."
_COLS_COMP_HELP = ("A material to check the calibration against (LiCoO2, NMC811, ...): a lattice that "
                   "disagrees with it is flagged. Default: none, no material model.")
_ENH_HELP = "Denoise and localise with the neural enhancer before column finding."


_NOISE_HELP = "Noise model of the Gaussian refinement: poisson (counts) or gaussian (images that are not counts, e.g. PNG)."
NoiseModelOption = typer.Option("poisson", "--noise-model", help=_NOISE_HELP)


@app.command()
def columns(
    image: Path = typer.Argument(..., help=_IMAGE_HELP),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    pixel_size_nm: Optional[float] = PixelSizeOption,
    composition: Optional[str] = typer.Option(None, "--composition", help=_COLS_COMP_HELP),
    zone: str = typer.Option("100", "--zone", help=_ZONE_HELP + " Used with --composition."),
    nn_distance_nm: Optional[float] = typer.Option(
        None, "--nn-distance-nm", help="Nearest column distance (nm), the detection scale: maxima closer than about half of it merge; "
                     "default: measured on the image (autocorrelation)."),
    relative_threshold: float = typer.Option(
        0.3, "--relative-threshold", help="A maximum is a column when its contrast is at least this fraction of the "
                                          "brightest columns nearby (0-1]."),
    noise_sigmas: float = typer.Option(
        5.0, "--noise-sigmas", help="A column must also stand this many noise standard deviations above its background."),
    noise_model: Optional[str] = typer.Option(
        None, "--noise-model", help=_NOISE_HELP + " Default: poisson, gaussian with --contrast dark."),
    contrast: str = typer.Option(
        "bright", "--contrast", help="bright: columns brighter than the background (HAADF/ADF); dark: columns darker "
                                     "(ABF/BF; the image is inverted). An image that looks the other way round is refused."),
    enhance: bool = typer.Option(False, "--enhance", help=_ENH_HELP),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write overlay.png and report.html."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Find every atom column of IMAGE (any crystal) with sub-pixel precision; writes OUT/columns.csv.

    The detection scale comes from the image's own autocorrelation; only columns present in the
    image are reported (invisible Li-layer sites of a cathode are placed by `layerscope phases`).
    """
    target = claim_output(out, overwrite, image)
    with command_imports():
        from layerscope.imaging.generic import analyse
        from layerscope.imaging.options import ColumnsOptions, image_input

    options = ColumnsOptions(composition=composition, zone=zone, relative_threshold=relative_threshold,
                             noise_sigmas=noise_sigmas, noise_model=noise_model, enhance=enhance,
                             nn_distance_nm=nn_distance_nm, contrast=contrast)
    if enhance:
        from layerscope._extras import require

        require("enhance", "--enhance")
    inp = image_input(image, pixel_size_nm=pixel_size_nm)
    res = analyse(inp, options, scheduler=scheduler)
    with target.open() as tmp:
        res.write(tmp, image=inp.data, figures=figures)
    flags = "".join(f"; FLAG {f['code']}: {f['message']}" for f in res.flags)
    n_edge = int(res.columns["at_border"].sum())
    edge = f"; {n_edge} cut by the image edge (at_border, fitted on one flank)" if n_edge else ""
    typer.echo(f"{len(res.columns)} columns found (nearest-neighbour distance {res.lattice.nn_distance_nm:.3f} nm)"
               f"{edge}{flags} -> {out}/columns.csv")


@app.command()
def phases(
    image: Path = typer.Argument(..., help=_IMAGE_HELP),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    pixel_size_nm: Optional[float] = PixelSizeOption,
    zone: str = typer.Option("100", "--zone", help=_ZONE_HELP),
    composition: str = typer.Option("LiCoO2", "--composition", help=_COMP_HELP),
    noise_model: str = NoiseModelOption,
    enhance: bool = typer.Option(False, "--enhance", help=_ENH_HELP),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write overlay.png and report.html."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Map phases atom column by atom column (O3, O3', O1, rock salt, spinel), mixing, domains, gliding.

    Writes OUT/columns.csv (columns found), sites.csv (sites placed from the lattice), domains.csv, layers.csv, interfaces.csv, interlayers.csv, phase_map.tif, summary.json,
    provenance.json, overlay.png and report.html.
    """
    target = claim_output(out, overwrite, image)
    with command_imports():
        from layerscope.imaging.options import PhasesOptions, image_input
        from layerscope.imaging.pipeline import analyse
        from layerscope.imaging.report import write_phase_map

    options = PhasesOptions(zone=zone, composition=composition, enhance=enhance, noise_model=noise_model)
    if enhance:
        from layerscope._extras import require

        require("enhance", "--enhance")
    inp = image_input(image, pixel_size_nm=pixel_size_nm)
    pm = analyse(inp, options, scheduler=scheduler)
    with target.open() as tmp:
        write_phase_map(pm, tmp, inp.data, figures=figures)
    fr = ", ".join(f"{k} {v:.1%}" for k, v in pm.summary["phase_fractions"].items())
    n_edge = pm.summary["columns"].get("at_border", 0)
    edge = f"; {n_edge} cut by the image edge (at_border)" if n_edge else ""
    n_out = pm.summary["columns"].get("unindexed", 0)
    edge += f"; {n_out} beyond the analysed layers (indexed = false)" if n_out else ""
    flags = "".join(f"; FLAG {f['code']}: {f['message']}" for f in pm.summary.get("flags", []))
    typer.echo(f"{len(pm.columns)} columns; {fr}; {len(pm.domains)} domains{edge}{flags} -> {out}")
