"""Imaging commands: ``layerscope columns`` and ``layerscope phases``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from layerscope.cli.app import OverwriteOption, claim_output, OutOption, PixelSizeOption, SchedulerOption, app

_IMAGE_HELP = "HAADF/ADF image: TIFF, dm3/dm4, emd, ser, npy or hspy (one 2-D greyscale image)."
_ZONE_HELP = "Zone axis of the hexagonal cell: 100 or 110 (sets the sign of the O3 stacking)."
_COMP_HELP = "Cathode: LiCoO2, NMC811, NMC622, NMC111, Li1.2Ni0.2Mn0.6O2 (lattice scale and calibration check)."
_ENH_HELP = "Denoise and localise with the neural enhancer before column finding."


@app.command()
def columns(
    image: Path = typer.Argument(..., help=_IMAGE_HELP),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    pixel_size_nm: Optional[float] = PixelSizeOption,
    zone: str = typer.Option("100", "--zone", help=_ZONE_HELP),
    composition: str = typer.Option("LiCoO2", "--composition", help=_COMP_HELP),
    enhance: bool = typer.Option(False, "--enhance", help=_ENH_HELP),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write overlay.png."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Find every atom column of IMAGE with sub-pixel precision; writes OUT/columns.csv."""
    target = claim_output(out, overwrite, image)
    import numpy as np

    from layerscope.imaging.pipeline import find_atom_columns, load_image
    from layerscope.imaging.report import overlay_figure, write_columns
    from layerscope.io.output import write_summary
    from layerscope.provenance import Provenance

    if enhance:
        from layerscope._extras import require

        require("enhance", "--enhance")
    data, px, handle = load_image(image, pixel_size_nm=pixel_size_nm)
    res = find_atom_columns(data, pixel_size_nm=px, zone=zone, composition=composition, enhance=enhance,
                            scheduler=scheduler)
    table = res.columns.drop(columns=["pair", "above", "below", "relation", "relation_above", "relation_below",
                                      "relation_up"], errors="ignore")
    provenance = Provenance.create(inputs=[handle], parameters=dict(pixel_size_nm=px, zone=zone, composition=composition,
                                                                     enhance=enhance, command="columns"))
    summary = {
        "image": {"shape": list(res.shape), "pixel_size_nm": px},
        "columns": {"detected": int(table["detected"].sum()), "li_sites_placed": int((~table["detected"]).sum()),
                    "tm": int((table["kind"] == "TM").sum())},
        "lattice": {"basal_normal_angle_deg": res.lattice.angle_deg, "inplane_spacing_nm": res.lattice.inplane_period_nm,
                    "tm_layer_period_nm": res.lattice.layer_period_nm, "column_sigma_nm": res.column_sigma_nm},
        "median_position_error_pm": float(np.nanmedian(table["position_error_pm"])),
        "notes": res.notes,
        "timings_s": res.timings_s,
    }
    with target.open() as tmp:
        write_columns(table, tmp / "columns.csv")
        write_summary(tmp, summary, provenance)
        if figures:
            from layerscope.report import figure_to_png

            fig = overlay_figure(data, table.assign(phase="O3"), px, title="atom columns")
            (tmp / "overlay.png").write_bytes(figure_to_png(fig))
    typer.echo(f"{summary['columns']['detected']} columns found ({summary['columns']['tm']} TM), "
               f"{summary['columns']['li_sites_placed']} Li-layer sites placed -> {out}/columns.csv")


@app.command()
def phases(
    image: Path = typer.Argument(..., help=_IMAGE_HELP),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    pixel_size_nm: Optional[float] = PixelSizeOption,
    zone: str = typer.Option("100", "--zone", help=_ZONE_HELP),
    composition: str = typer.Option("LiCoO2", "--composition", help=_COMP_HELP),
    enhance: bool = typer.Option(False, "--enhance", help=_ENH_HELP),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write overlay.png and report.html."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Map phases atom column by atom column (O3, O3', O1, rock salt, spinel), mixing, domains, gliding.

    Writes OUT/columns.csv, domains.csv, layers.csv, interfaces.csv, phase_map.tif, summary.json,
    provenance.json, overlay.png and report.html.
    """
    target = claim_output(out, overwrite, image)
    from layerscope.imaging.pipeline import load_image, map_phases
    from layerscope.imaging.report import write_phase_map

    if enhance:
        from layerscope._extras import require

        require("enhance", "--enhance")
    data, px, handle = load_image(image, pixel_size_nm=pixel_size_nm)
    pm = map_phases(data, pixel_size_nm=px, zone=zone, composition=composition, enhance=enhance, scheduler=scheduler)
    pm.provenance = type(pm.provenance).create(inputs=[handle], parameters={**pm.provenance.parameters,
                                                                             "command": "phases"})
    with target.open() as tmp:
        write_phase_map(pm, tmp, data, figures=figures)
    fr = ", ".join(f"{k} {v:.1%}" for k, v in pm.summary["phase_fractions"].items())
    typer.echo(f"{len(pm.columns)} columns; {fr}; {len(pm.domains)} domains -> {out}")
