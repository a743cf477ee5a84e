"""``layerscope insitu``: drift, voids and pores, cracks and reaction fronts of an in situ series."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from layerscope.cli.app import OverwriteOption, claim_output, OutOption, PixelSizeOption, SchedulerOption, app
from layerscope.errors import InputError


def _numbers(text: Optional[str], *, name: str, n: int, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"{name} {text!r}: give {n} numbers separated by commas ({what})") from exc
    if len(parts) != n:
        raise InputError(f"{name} {text!r}: give {n} numbers separated by commas ({what})")
    return parts


def _read_map(path: Optional[Path], pixel_size_nm: Optional[float]):
    """The t/lambda map of --thickness-map (None without it)."""
    if path is None:
        return None
    from layerscope.io import load

    return load(path, pixel_size_nm=pixel_size_nm).data


@app.command()
def insitu(
    series: Path = typer.Argument(..., help="Multi-frame dm4/emd/tif/hspy file, folder of frames, or MP4/AVI movie."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    pixel_size_nm: Optional[float] = PixelSizeOption,
    fps: Optional[float] = typer.Option(None, "--fps", help="Frames per second, when the series has no time stamps "
                                        "(overrides a movie's rate)."),
    drift: bool = typer.Option(True, "--drift/--no-drift", help="Measure and correct drift."),
    reference: str = typer.Option("auto", "--reference", help="Drift reference: auto, first, previous, rolling or "
                                  "hybrid (rolling + first, robust on lattice images)."),
    window: int = typer.Option(3, "--window", help="Frames in the rolling reference."),
    upsample: int = typer.Option(20, "--upsample", help="Sub-pixel resolution of the drift: 1/UPSAMPLE px."),
    roi_nm: Optional[str] = typer.Option(None, "--roi-nm", help="Register on this rectangle only: x0,y0,x1,y1 in nm."),
    voids: bool = typer.Option(True, "--voids/--no-voids", help="Segment and track voids and pores."),
    cracks: bool = typer.Option(True, "--cracks/--no-cracks", help="Measure elongated dark features as cracks."),
    fronts: bool = typer.Option(False, "--fronts/--no-fronts", help="Track the layered/rock-salt reaction front "
                                "(lattice images)."),
    front_window_nm: float = typer.Option(0.4, "--front-window-nm", help="Sigma (nm) of the window that maps the "
                                          "layer fringe (the resolution of the order map)."),
    front_direction_deg: Optional[float] = typer.Option(None, "--front-direction-deg", help="Front propagation "
                                                        "direction in deg (0 right, 90 down); estimated if not given."),
    layer_spacing_nm: Optional[float] = typer.Option(None, "--layer-spacing-nm", help="Layer period of the fringe "
                                                     "that vanishes in rock salt (0.47 nm for (003)); searched in "
                                                     "0.38-0.60 nm if not given."),
    smooth_nm: float = typer.Option(0.25, "--smooth-nm", help="Low-pass sigma (nm) before void segmentation; a bit "
                                    "over half the largest lattice period."),
    background_nm: float = typer.Option(4.0, "--background-nm", help="Local background sigma (nm); several void "
                                        "diameters."),
    min_contrast: float = typer.Option(0.08, "--min-contrast", help="Smallest relative darkness of a void (0.08 = 8 %)."),
    min_diameter_nm: float = typer.Option(0.5, "--min-diameter-nm", help="Smallest void kept (equivalent diameter, nm)."),
    edge_level: float = typer.Option(0.5, "--edge-level", help="Outline at this fraction of each void's depth (0.5 "
                                     "for flat-bottomed voids, ~0.2 for spherical ones)."),
    contact_frames: int = typer.Option(3, "--contact-frames", help="A void merge undone within this many frames "
                                       "is a contact, not a coalescence (0: report every merge and split)."),
    bright: bool = typer.Option(False, "--bright-voids", help="Voids appear bright (over-focused HRTEM)."),
    interface: Optional[str] = typer.Option(None, "--interface", help="Electrolyte interface: 'detect' (amorphous "
                                            "region without lattice fringes) or x0,y0,x1,y1 in nm (first frame)."),
    surface_distance_nm: float = typer.Option(1.0, "--surface-distance-nm", help="Voids this close to the interface "
                                              "are surface pores (nm)."),
    thickness_nm: Optional[float] = typer.Option(None, "--thickness-nm", help="Foil thickness (nm), for void depths "
                                                 "and volumes."),
    thickness_map: Optional[Path] = typer.Option(None, "--thickness-map", help="Relative-thickness (t/lambda) map of "
                                                 "the first frame's field (any image layerscope reads), with --mfp-nm."),
    mfp_nm: Optional[float] = typer.Option(None, "--mfp-nm", help="Inelastic mean free path (nm) to turn --thickness-map "
                                           "into nm."),
    movie: str = typer.Option("mp4", "--movie", help="Annotated movie: mp4, gif or none."),
    aligned: Optional[str] = typer.Option(None, "--aligned", help="Also write the aligned stack: zarr or tif."),
    on_bad_frame: str = typer.Option("skip", "--on-bad-frame", help="Unreadable frame: skip (report it and go on) or "
                                     "stop (keep the frames before it, then exit with an error)."),
    chunk_frames: int = typer.Option(16, "--chunk-frames", help="Frames per Dask task."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Drift-correct an in situ SERIES and measure voids/pores, cracks and the reaction front over time.

    Writes frames.csv (the per-frame time series), voids.csv, void_tracks.csv, void_events.csv,
    cracks.csv, front.csv, bad_frames.csv, plots (PNG), an annotated movie, summary.json,
    provenance.json and report.html into --out.
    """
    target = claim_output(out, overwrite, series, thickness_map)
    from layerscope.errors import LayerscopeError
    from layerscope.insitu import InsituOptions, VoidParams, analyse_series, open_series
    from layerscope.insitu.outputs import write_outputs
    from layerscope.insitu.registration import write_aligned
    from layerscope.parallel import session

    if movie not in ("mp4", "gif", "none"):
        raise InputError(f"--movie {movie!r}: choose mp4, gif or none")
    if aligned not in (None, "zarr", "tif"):
        raise InputError(f"--aligned {aligned!r}: choose zarr or tif")
    roi = _numbers(roi_nm, name="--roi-nm", n=4, what="x0,y0,x1,y1 in nm")
    iface: object = None
    if interface is not None:
        iface = "detect" if interface.strip() == "detect" else _numbers(interface, name="--interface", n=4,
                                                                         what="x0,y0,x1,y1 in nm, or 'detect'")
    options = InsituOptions(
        drift=drift, reference=reference, window=window, upsample=upsample, roi_nm=roi, voids=voids,
        void_params=VoidParams(smooth_nm=smooth_nm, background_nm=background_nm, min_contrast=min_contrast,
                               min_diameter_nm=min_diameter_nm, edge_level=edge_level,
                               polarity="bright" if bright else "dark"),
        contact_frames=contact_frames, cracks=cracks, fronts=fronts, front_direction_deg=front_direction_deg,
        layer_spacing_nm=layer_spacing_nm, front_window_nm=front_window_nm, interface=iface,
        surface_distance_nm=surface_distance_nm, thickness_nm=thickness_nm,
        thickness_t_lambda=_read_map(thickness_map, pixel_size_nm), mfp_nm=mfp_nm, chunk_frames=chunk_frames,
        on_bad_frame=on_bad_frame,
    )
    params = {"series": str(series), "pixel_size_nm": pixel_size_nm, "fps": fps, "scheduler": scheduler}
    with session(scheduler) as where:  # one connection (checked first) for the analysis and the outputs
        data = open_series(series, pixel_size_nm=pixel_size_nm, fps=fps, chunk_frames=chunk_frames)
        result = analyse_series(data, options=options, scheduler=where, progress=True)
        with target.open() as tmp:
            write_outputs(data, result, tmp, movie=None if movie == "none" else movie, parameters=params,
                          scheduler=where)
            if aligned is not None:
                write_aligned(data.data[: len(result.frames)], result.frames, tmp / f"aligned.{aligned}",
                              scheduler=where)
    s = result.summary
    flags = "".join(f"; flag {f['code']}: {f['message']}" for f in s.get("flags", []))
    typer.echo(f"{s['n_frames_analysed']} of {s['n_frames']} frames analysed; results in {out}{flags}")
    if result.stopped_at is not None:
        raise LayerscopeError(
            f"frame {result.stopped_at} of '{series}' could not be read ({result.bad_frames['reason'].iloc[0]}); "
            f"the analysis stopped there and the results of frames 0-{result.stopped_at - 1} are in '{out}'. "
            f"Use --on-bad-frame skip to go on past unreadable frames"
        )
