"""``layerscope simulate``: a simulated STEM image with its ground-truth columns.

Writes into ``--out``: ``image.tif`` (float32, ImageJ calibration in nm), ``image.hspy`` (HyperSpy,
calibrated, with the metadata), ``clean.tif`` when the image was degraded, ``columns.csv`` (the
ground truth), ``summary.json`` + ``provenance.json`` and ``preview.png`` (with a scale bar).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from layerscope.cli.app import OverwriteOption, claim_output, OutOption, app
from layerscope.errors import InputError

__all__ = ["simulate", "write_simulation", "build_scene"]


def build_scene(*args, **kwargs):
    """Moved to :func:`layerscope.simulate.scenes.build_scene` (kept here for old imports)."""
    from layerscope.simulate.scenes import build_scene as _build

    return _build(*args, **kwargs)


def write_simulation(*args, **kwargs):
    """Moved to :func:`layerscope.simulate.outputs.write_simulation` (kept here for old imports)."""
    from layerscope.simulate.outputs import write_simulation as _write

    return _write(*args, **kwargs)


def _pair(text: Optional[str], *, name: str) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 2:
        raise InputError(f"{name} {text!r}: give two comma-separated numbers, e.g. 0.1,0.05")
    return values[0], values[1]



@app.command()
def simulate(
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    scene: str = typer.Option("bulk", "--scene", help="bulk (one phase), demo (the degraded NMC811 specimen), "
                              "degraded or spinel (the LiCoO2 validation stacks of docs/validation.md)."),
    phase: str = typer.Option("O3", "--phase", help="Bulk phase: O3, O1, O3', rock_salt, spinel, C2/m."),
    composition: str = typer.Option("LiCoO2", "--composition", help="LiCoO2, NMC811, NMC622, NMC111, Li1.2Ni0.2Mn0.6O2, ..."),
    zone: str = typer.Option("100", "--zone", help="Zone axis of the hexagonal cell: 100 or 110."),
    width_nm: float = typer.Option(4.0, "--width-nm", help="Field width in nm (bulk; rounded to whole periods)."),
    height_nm: float = typer.Option(4.0, "--height-nm", help="Field height in nm (bulk; rounded to whole layers)."),
    thickness_nm: float = typer.Option(5.0, "--thickness-nm", help="Specimen thickness along the beam in nm (bulk)."),
    pixel_size_nm: float = typer.Option(0.01, "--pixel-size-nm", help="Pixel size (scan step) in nm."),
    engine: str = typer.Option("fast", "--engine", help="fast (incoherent model), multislice (abTEM, small fields) or "
                               "multislice-stack (abTEM window by window along y; one x period scanned and tiled)."),
    probe_fwhm_nm: float = typer.Option(0.07, "--probe-fwhm-nm", help="Fast engine: probe FWHM in nm."),
    z_exponent: float = typer.Option(1.7, "--z-exponent", help="Fast engine: column weight sum Z^n."),
    energy_kev: float = typer.Option(200.0, "--energy-kev", help="Beam energy in keV."),
    convergence_mrad: float = typer.Option(25.0, "--convergence-mrad", help="Multislice: probe semi-angle, mrad."),
    detector: str = typer.Option("HAADF", "--detector", help="HAADF (80-200 mrad), ADF, BF, ABF or inner,outer mrad."),
    frozen_phonons: int = typer.Option(0, "--frozen-phonons", help="Multislice: frozen-phonon configurations."),
    phonon_sigma_a: Optional[float] = typer.Option(None, "--phonon-sigma-a", help="RMS thermal displacement, Å."),
    device: str = typer.Option("auto", "--device", help="Multislice: auto, cpu or gpu."),
    dose: Optional[float] = typer.Option(None, "--dose", help="Electron dose in e/Å² (Poisson noise); none: clean."),
    blur_nm: float = typer.Option(0.0, "--blur-nm", help="Extra Gaussian blur FWHM in nm."),
    background: float = typer.Option(0.0, "--background", help="Uniform background, fraction of the beam."),
    scan_jitter_px: float = typer.Option(0.0, "--scan-jitter-px", help="RMS random offset per scan line, px."),
    scan_distortion_px: float = typer.Option(0.0, "--scan-distortion-px", help="Flyback distortion amplitude, px."),
    scan_distortion_decay_px: Optional[float] = typer.Option(None, "--scan-distortion-decay-px",
                                                             help="Flyback distortion decay length, px."),
    drift_nm_per_s: Optional[str] = typer.Option(None, "--drift-nm-per-s", help="Drift vx,vy in nm/s."),
    dwell_time_s: Optional[float] = typer.Option(None, "--dwell-time-s", help="Dwell time per pixel in s."),
    line_flyback_s: float = typer.Option(0.0, "--line-flyback-s", help="Dead time between scan lines in s."),
    seed: int = typer.Option(0, "--seed", help="Seed of the structure decoration and the noise."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="multislice-stack: where windows run: threads "
                                            "(default), processes, or a dask.distributed address."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="multislice-stack: keep each window's scan "
                                             "here, so an interrupted run resumes."),
) -> None:
    """Simulate a STEM image of a cathode scene with its ground-truth atom columns."""
    target = claim_output(out, overwrite)
    from layerscope.simulate.options import SimulateOptions, run_simulation

    options = SimulateOptions(
        scene=scene, phase=phase, composition=composition, zone=zone, width_nm=width_nm, height_nm=height_nm,
        thickness_nm=thickness_nm, pixel_size_nm=pixel_size_nm, engine=engine, probe_fwhm_nm=probe_fwhm_nm,
        z_exponent=z_exponent, energy_keV=energy_kev, convergence_mrad=convergence_mrad,
        detector=_pair(detector, name="--detector") if "," in detector else detector,
        frozen_phonons=frozen_phonons, phonon_sigma_A=phonon_sigma_a, device=device, dose_e_per_A2=dose,
        blur_nm=blur_nm, background=background, scan_jitter_px=scan_jitter_px,
        scan_distortion_px=scan_distortion_px, scan_distortion_decay_px=scan_distortion_decay_px,
        drift_nm_per_s=_pair(drift_nm_per_s, name="--drift-nm-per-s") or (0.0, 0.0), dwell_time_s=dwell_time_s,
        line_flyback_s=line_flyback_s, seed=seed, cache_dir=cache_dir)
    from layerscope._extras import require

    require("sim", "layerscope simulate")
    sim, atoms = run_simulation(options, scheduler=scheduler)
    with target.open() as tmp:
        summary = write_simulation(sim, tmp, summary_extra={"scene": scene, "blocks": atoms.info.get("blocks")})
    typer.echo(
        f"{scene} {engine}: {sim.image.shape[1]} x {sim.image.shape[0]} px at {pixel_size_nm:g} nm, "
        f"{summary['columns']['total']} columns -> {out}"
    )
