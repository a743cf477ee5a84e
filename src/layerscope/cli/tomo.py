"""``layerscope tomo``: reconstruct a projection series (or read a volume) and measure cracked particles."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from layerscope.cli.app import OutOption, OverwriteOption, SchedulerOption, app, claim_output
from layerscope.errors import InputError


def _range(text: Optional[str]) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        parts = ()
    if len(parts) != 2:
        raise InputError(f"--angle-range-deg {text!r}: give START,STOP in deg (e.g. 0,180; STOP excluded)")
    return parts  # type: ignore[return-value]


def _reconstruct_to_disk(data, options, scheduler, tmp: Path, prov, save_volume: bool = True):
    """Reconstruct into a memory-mapped scratch file in the output folder (and, with --out-of-core, measure
    with scratch memory maps there), write the results, remove the scratch files."""
    import numpy as np

    from layerscope.tomo import analyse

    scratch = tmp / "volume-scratch.npy"
    rows, cols = data.data.shape[1] // options.bin_voxels, data.data.shape[2] // options.bin_voxels
    disk = np.lib.format.open_memmap(scratch, mode="w+", dtype=np.float32, shape=(rows, cols, cols))
    try:
        result = analyse(data, options, scheduler=scheduler, progress=True, out=disk, scratch_dir=tmp)
        result.write(tmp, prov, save_volume=save_volume)
    finally:
        del disk
        scratch.unlink(missing_ok=True)
    return result


def _sidecar(data) -> Path | None:
    """The angle file read beside the projections (IMOD .tlt/.rawtlt, SerialEM .mdoc): hashed like the input."""
    src = getattr(data, "angles_source", None)
    return Path(src) if src and Path(src).is_file() and Path(src) != getattr(data, "source", None) else None


@app.command()
def tomo(
    input: Path = typer.Argument(..., help="Projections (DXchange .h5, TIFF stack, MRC tilt series) or, with "
                                 "--volume, a reconstructed or segmented volume (TIFF, HDF5, MRC); a folder of "
                                 "2-D TIFFs (one slice or projection each, natural name order) for either."),
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    volume: bool = typer.Option(False, "--volume", help="INPUT is a volume (z, y, x), not projections."),
    voxel_size_nm: Optional[float] = typer.Option(None, "--voxel-size-nm", help="Detector pixel / voxel size in nm: "
                                                  "required where the file states none; overrides the file."),
    angles_file: Optional[Path] = typer.Option(None, "--angles-file", help="Text file, one projection angle (deg) per line."),
    angle_range_deg: Optional[str] = typer.Option(None, "--angle-range-deg", help="START,STOP in deg: projections "
                                                  "evenly spaced from START, STOP excluded (0,180)."),
    flats: Optional[Path] = typer.Option(None, "--flats", help="TIFF stack of flat (open-beam) fields."),
    darks: Optional[Path] = typer.Option(None, "--darks", help="TIFF stack of dark fields."),
    transmission: bool = typer.Option(False, "--transmission", help="TIFF/MRC projections are already flat-field corrected."),
    line_integrals: bool = typer.Option(False, "--line-integrals", help="Projections are line integrals already, "
                                        "reconstructed as they are (no flats, no -log): a HAADF-STEM tilt series, "
                                        "or -log data."),
    algorithm: str = typer.Option("fbp", "--algorithm", help="fbp, sirt or cgls (ASTRA Toolbox)."),
    iterations: int = typer.Option(50, "--iterations", help="Iterations of SIRT/CGLS."),
    fbp_filter: str = typer.Option("ram-lak", "--fbp-filter", help="FBP filter (ASTRA FilterType): ram-lak (the "
                                   "plain ramp), shepp-logan, cosine, hamming or hann (the ramp tapered towards "
                                   "the Nyquist frequency: less noise, more in-plane blur; docs/validation.md, "
                                   "tomorecon)."),
    centre_px: Optional[float] = typer.Option(None, "--centre-px", help="Rotation axis column (px, 0-based); "
                                              "searched if not given (Vo's method; on projections spanning under 170 deg, "
                                              "the centres of mass of each row's projections)."),
    rings: bool = typer.Option(True, "--rings/--no-rings", help="Remove ring artefacts (sinogram stripes)."),
    ring_method: str = typer.Option("sorting", "--ring-method", help="sorting: algotom's sorting-based removal "
                                    "on every column (also flattens cracks near the rotation axis); detect: "
                                    "correct only the detector columns found to hold a stripe, selected over "
                                    "each chunk's rows, bands up to 6 px (keeps those cracks; faint stripes "
                                    "stay). Both interpolate dead columns first."),
    extend_sinogram: Optional[bool] = typer.Option(None, "--extend-sinogram/--no-extend-sinogram", help="FBP "
                                                   "(default: on; --no-extend-sinogram: plain FBP): extend each sinogram "
                                                   "beyond the detector, edges fading to zero, against the bright "
                                                   "rim of truncated projections (a sample or particle leaving the "
                                                   "field of view); never with SIRT/CGLS."),
    extension: Optional[str] = typer.Option(None, "--extension", help="How the extension fades: mass (default; per "
                                            "angle, over the length that restores the line-integral sum the angle "
                                            "misses against the angles that see the whole sample; nothing where the "
                                            "edges are empty or every angle sees the same sum) or half_width (half "
                                            "the detector width at every angle, also for a sample wider than the "
                                            "field at every angle; sinks the slice edge a little). Refused where the "
                                            "extension is off (--no-extend-sinogram, SIRT/CGLS)."),
    align: str = typer.Option("auto", "--align", help="Per-angle shifts of the projections (stage drift, jitter): "
                              "auto (default: xcorr where the series is flagged projections_shifted, otherwise "
                              "none), none (reconstructed as given; a shifted series is still flagged) or xcorr "
                              "(estimated by projection matching over the whole series and undone before the "
                              "reconstruction; shifts.csv lists them; where the aligned series is still "
                              "inconsistent it is flagged alignment_failed)."),
    device: str = typer.Option("auto", "--device", help="auto (ASTRA CUDA when a GPU is present), cpu or gpu."),
    reconstruct_only: bool = typer.Option(False, "--reconstruct-only", help="Reconstruct, write volume.tif and stop "
                                          "(no particle analysis); the volume is written chunk by chunk, so it may "
                                          "be larger than memory."),
    allow_limited_angle: bool = typer.Option(False, "--allow-limited-angle", help="Analyse projections spanning "
                                             "less than 170 deg (an electron-tomography +-60-70 deg series: the missing "
                                             "wedge) anyway, flagged limited_angle; without it such a series is refused "
                                             "(exit 2, nothing written) unless --reconstruct-only: the crack counts, "
                                             "volumes and widths are not valid there (docs/validation.md, tomowedge); "
                                             "cracks whose normals lie in the missing wedge are marked in cracks.csv "
                                             "(in_missing_wedge) and left out of crack_count_visible (tomowedge2)."),
    save_volume: bool = typer.Option(False, "--save-volume", help="Also write the volume as volume.tif (float32, nm)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Grey level between solid and epoxy "
                                              "(default: halfway between the two levels)."),
    particle_label: Optional[int] = typer.Option(None, "--particle-label", help="Segmented volume: label of the "
                                                 "active material (required for label volumes)."),
    pore_label: Optional[int] = typer.Option(None, "--pore-label", help="Segmented volume: label of the pores (porosity)."),
    crack_max_width_nm: Optional[float] = typer.Option(None, "--crack-max-width-nm", help="Widest crack bridged when "
                                                       "closing particle envelopes (nm; default 6 voxels)."),
    split: bool = typer.Option(True, "--split/--no-split", help="Split touching particles (watershed)."),
    split_h_voxels: float = typer.Option(2.0, "--split-h-voxels", help="Distance-transform peak depth (voxels) "
                                         "that seeds a separate particle."),
    min_particle_voxels: int = typer.Option(200, "--min-particle-voxels", help="Smallest particle kept (voxels)."),
    max_flatness: float = typer.Option(0.45, "--max-flatness", help="Dark features flatter than this (smallest / "
                                       "middle principal extent) are cracks, others pores."),
    cut_planes: bool = typer.Option(True, "--cut-planes/--no-cut-planes", help="In crossing cracks, look for "
                                    "planes through the voxels the found planes leave (a small crack crossing larger "
                                    "ones); --no-cut-planes: without them."),
    bin_voxels: int = typer.Option(1, "--bin", help="Bin detector pixels (projections) or voxels (volume) by this "
                                   "factor first; the voxel size grows by it."),
    chunk_slices: int = typer.Option(8, "--chunk-slices", help="Slices per reconstruction task."),
    out_of_core: bool = typer.Option(False, "--out-of-core", help="Measure with bounded memory: slabs of z slices, "
                                     "then one cluster of touching particles at a time, with scratch files in the "
                                     "output folder (DXchange/TIFF/MRC projections are read a chunk of rows at a time and reconstructed into "
                                     "one); same numbers."),
    slab_slices: int = typer.Option(32, "--slab-slices", help="z slices per slab of --out-of-core."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """Reconstruct INPUT (or read a volume) and measure particles, cracks and pores.

    Writes particles.csv, cracks.csv, pores.csv, slices.png, rendering_3d.png, (volume.tif),
    summary.json, provenance.json and report.html into --out.
    """
    target = claim_output(out, overwrite, input, angles_file, flats, darks)
    from layerscope._extras import require

    require("tomo", "layerscope tomo")
    from layerscope.provenance import Provenance
    from layerscope.tomo import ReconOptions, TomoOptions, analyse, read_tomo
    from layerscope.tomo.analysis import check_tilt_span
    from layerscope.tomo.stages import enter as stage

    recon = ReconOptions(algorithm=algorithm, iterations=iterations, centre_px=centre_px, rings=rings,
                         ring_method=ring_method, extend_sinogram=extend_sinogram, extension=extension or "mass",
                         chunk_slices=chunk_slices, device=device, align=align, fbp_filter=fbp_filter)
    if extension is not None and not recon.extends:
        raise InputError(f"--extension {extension} applies to the sinogram extension, which is off here "
                         f"({'--no-extend-sinogram' if extend_sinogram is False else '--algorithm ' + algorithm}): "
                         f"leave --extension out or reconstruct with FBP and the extension on")
    options = TomoOptions(recon=recon, reconstruct_only=reconstruct_only, threshold=threshold,
                          particle_label=particle_label, pore_label=pore_label, crack_max_width_nm=crack_max_width_nm,
                          split=split, split_h_voxels=split_h_voxels, min_particle_voxels=min_particle_voxels,
                          max_flatness=max_flatness, cut_planes=cut_planes, bin_voxels=bin_voxels, out_of_core=out_of_core,
                          slab_slices=slab_slices, allow_limited_angle=allow_limited_angle)
    stage("read")
    data = read_tomo(input, volume=volume, voxel_size_nm=voxel_size_nm, angles_file=angles_file,
                     angle_range_deg=_range(angle_range_deg), flats=flats, darks=darks, transmission=transmission,
                     line_integrals=line_integrals, mmap=out_of_core)
    check_tilt_span(data, options)  # before anything is written (the out-of-core path writes into the folder)
    inputs = [p for p in (input, angles_file, flats, darks, _sidecar(data)) if p is not None]
    prov = Provenance.create(inputs=inputs, parameters={"voxel_size_nm": data.voxel_size_nm if volume else data.pixel_size_nm,
                                                        "volume": volume, "scheduler": scheduler,
                                                        "options": options.to_dict()})
    if (reconstruct_only or out_of_core) and not volume:  # the volume goes to disk chunk by chunk (larger than memory)
        with target.open() as tmp:
            result = _reconstruct_to_disk(data, options, scheduler, tmp, prov, save_volume or reconstruct_only)
    elif out_of_core:
        with target.open() as tmp:
            result = analyse(data, options, scheduler=scheduler, progress=True, scratch_dir=tmp)
            result.write(tmp, prov, save_volume=save_volume)
    else:
        result = analyse(data, options, scheduler=scheduler, progress=True)
        with target.open() as tmp:
            result.write(tmp, prov, save_volume=save_volume)
    s = result.summary
    flags = "".join(f"; FLAG {f['code']}: {f['message']}" for f in result.flags)
    if reconstruct_only:
        rc = s["reconstruction"]
        typer.echo(f"reconstructed {' x '.join(map(str, s['shape_zyx']))} voxels ({rc['algorithm']}, centre "
                   f"{rc['centre_px']:.2f} px){flags}; results in {out}")
    else:
        seen = f" ({s['n_cracks_visible']} outside the missing wedge)" if "missing_wedge" in s else ""
        if s.get("n_cracks_partly_outside_view"):
            seen += (f" ({s['n_cracks_partly_outside_view']} partly outside the region the projections saw at every "
                     f"angle, {s['n_cracks_outside_view']} mostly: {s['n_cracks_in_view']} in view)")
        typer.echo(f"{s['n_particles']} particles, {s['n_cracks']} cracks{seen}, {s['n_pores']} pores; crack volume "
                   f"fraction {s.get('crack_volume_fraction', 0):.4f}{flags}; results in {out}")
