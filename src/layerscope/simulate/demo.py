"""The demo's simulated specimen: a degraded NMC811 cathode with known ground truth.

:func:`demo_structure` builds the scene with :mod:`layerscope.crystal.scenes` (top to bottom: a
~2 nm rock-salt surface layer, an O3 matrix, a chunky O1 block, O3, a thin O3' twin layer, O3;
Li/TM mixing in a region of the matrix; a void through the lamella). :func:`demo_scene`
images it with the fast incoherent model and degrades it (dose, scan jitter, slow drift, blur,
background) so that the imaging analyses can be run on it and scored against the truth.
:func:`demo_section` is the report section of ``layerscope demo``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pandas as pd

from layerscope.simulate.incoherent import simulate_haadf
from layerscope.simulate.noise import apparent_columns, degrade
from layerscope.simulate.result import Simulation

__all__ = ["DemoSettings", "demo_structure", "demo_scene", "demo_section"]


@dataclass(frozen=True)
class DemoSettings:
    """Physical settings of the demo acquisition (all documented in the report)."""

    composition: str = "LiNi0.8Mn0.1Co0.1O2"
    zone: str = "100"
    width_nm: float = 8.0
    thickness_nm: float = 4.0
    rock_salt_nm: float = 2.0
    mixing_fraction: float = 0.15
    mixing_region_nm: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 4.0), (2.4, 4.2))
    void_center_nm: tuple[float, float] = (6.0, 6.3)
    void_radius_nm: float = 0.8
    pixel_size_nm: float = 0.012
    probe_fwhm_nm: float = 0.07
    z_exponent: float = 1.7
    energy_keV: float = 200.0
    detector_mrad: tuple[float, float] = (80.0, 200.0)
    dose_e_per_A2: float = 2e5
    blur_nm: float = 0.02
    background: float = 0.002
    scan_jitter_px: float = 0.25
    drift_nm_per_s: tuple[float, float] = (0.05, 0.02)
    dwell_time_s: float = 4e-6
    line_flyback_s: float = 5e-4


def demo_structure(*, seed: int = 0, settings: DemoSettings = DemoSettings()):
    """The degraded NMC811 scene as labelled ``ase.Atoms`` (Angstrom, beam along +z, stacking down y)."""
    from layerscope.crystal.scenes import Block, add_mixing, block_for_thickness, stack, void

    comp = settings.composition
    blocks = [
        block_for_thickness("rock_salt", settings.rock_salt_nm, composition=comp, li_fraction=0.0),
        Block("O3", 10),
        Block("O1", 6, li_fraction=0.0),
        Block("O3", 6),
        Block("O3'", 3),
        Block("O3", 8),
    ]
    atoms = stack(blocks, composition=comp, zone=settings.zone, width_nm=settings.width_nm,
                  thickness_nm=settings.thickness_nm, seed=seed)
    (x0, x1), (y0, y1) = settings.mixing_region_nm
    atoms = add_mixing(atoms, settings.mixing_fraction, seed=seed + 1, x_range_nm=(x0, x1), y_range_nm=(y0, y1))
    atoms = void(atoms, center_nm=settings.void_center_nm, radius_nm=settings.void_radius_nm)
    return atoms


def demo_scene(seed: int = 0, *, settings: DemoSettings = DemoSettings()) -> Simulation:
    """The demo specimen imaged by the fast HAADF model and degraded like a real acquisition.

    Returns
    -------
    Simulation
        ``.image``: the degraded image (detected electrons per pixel, calibrated); ``.clean``: the
        noise-free image (detected fraction); ``.columns``: the ground truth with positions as
        they appear in the degraded image (``x_true_nm, y_true_nm``: undistorted); ``.atoms``:
        the structure with ``info["blocks"]``, ``["mixing"]``, ``["voids"]``.
    """
    atoms = demo_structure(seed=seed, settings=settings)
    sim = simulate_haadf(
        atoms,
        pixel_size_nm=settings.pixel_size_nm,
        probe_fwhm_nm=settings.probe_fwhm_nm,
        z_exponent=settings.z_exponent,
        energy_keV=settings.energy_keV,
        detector_mrad=settings.detector_mrad,
    )
    degraded = degrade(
        sim.image,
        dose_e_per_A2=settings.dose_e_per_A2,
        seed=seed,
        blur_nm=settings.blur_nm,
        background=settings.background,
        scan_jitter_px=settings.scan_jitter_px,
        drift_nm_per_s=settings.drift_nm_per_s,
        dwell_time_s=settings.dwell_time_s,
        line_flyback_s=settings.line_flyback_s,
    )
    columns = apparent_columns(sim.columns, degraded)
    columns.attrs.update(sim.columns.attrs)
    provenance = sim.provenance
    provenance.parameters.update({"demo_seed": seed, "degradation": degraded.metadata["degradation"]})
    return Simulation(degraded, columns, provenance, atoms, clean=sim.image)


def truth_counts(columns: pd.DataFrame) -> pd.DataFrame:
    """Columns per phase and site kind, with the mixed Li-site columns and mean TM fraction."""
    counts = columns.groupby(["phase", "kind"]).agg(
        columns=("x_nm", "size"),
        atoms=("n_atoms", "sum"),
        mean_tm_fraction=("tm_fraction", "mean"),
    )
    return counts.reset_index()


def _truth_figure(scene, settings: DemoSettings) -> bytes:
    """The degraded image beside the clean one with the ground-truth columns and block boundaries."""
    from layerscope.report import figure_to_png
    from layerscope.report.figures import OKABE_ITO, add_scalebar, legend_outside, plt

    cols, info = scene.columns, scene.atoms.info
    p = scene.pixel_size_nm
    fig, axes = plt.subplots(1, 2, figsize=(11, 6.2))
    axes[0].imshow(scene.image.data, cmap="gray", interpolation="nearest")
    axes[0].set_title(f"degraded HAADF, {settings.dose_e_per_A2:.0e} e/Å²")
    axes[1].imshow(scene.clean.data, cmap="gray", interpolation="nearest")
    colours = {"TM": OKABE_ITO[4], "Li": OKABE_ITO[5], "O": OKABE_ITO[1]}  # colour-blind safe
    for kind, colour in colours.items():
        sel = cols[cols.kind == kind]
        mixed = sel.tm_fraction > 0 if kind == "Li" else np.zeros(len(sel), bool)
        axes[1].scatter(sel.x_true_nm[~mixed] / p - 0.5, sel.y_true_nm[~mixed] / p - 0.5, s=1.5, c=colour,
                        label=f"{kind} column", linewidths=0)
        if kind == "Li":
            axes[1].scatter(sel.x_true_nm[mixed] / p - 0.5, sel.y_true_nm[mixed] / p - 0.5, s=6, c=OKABE_ITO[2],
                            label="Li site with TM (mixing)", linewidths=0)
    for block in info.get("blocks", []):
        y = block["y_min_nm"] / p
        axes[1].axhline(y, color=OKABE_ITO[6], lw=0.6, ls="--")
        axes[1].text(3, y + 8, block["phase"].replace("_", " "), color=OKABE_ITO[6], fontsize=8, va="top")
    axes[1].set_title("clean image with the ground truth")
    legend_outside(axes[1], where="right", markerscale=3)
    for ax in axes:
        ax.set_axis_off()
        add_scalebar(ax, p)
    return figure_to_png(fig)


def demo_section(workdir: Path, *, seed: int = 0):
    """Report section: the simulated degraded NMC811 image, its ground truth and the settings.

    Writes ``image.tif``/``image.hspy`` (degraded), ``clean.tif``, ``columns.csv``, ``summary.json``
    and ``preview.png`` into ``workdir``.
    """
    from layerscope.report import Figure, Section, Table
    from layerscope.simulate.outputs import write_simulation

    settings = DemoSettings()
    start = time.perf_counter()
    scene = demo_scene(seed, settings=settings)
    elapsed = time.perf_counter() - start
    cols = scene.columns
    info = scene.atoms.info
    write_simulation(scene, Path(workdir), summary_extra={"blocks": info.get("blocks"), "mixing": info.get("mixing"),
                                                          "voids": info.get("voids")})

    p = scene.pixel_size_nm
    png = _truth_figure(scene, settings)

    blocks = pd.DataFrame(info.get("blocks", []))
    if not blocks.empty:
        blocks = blocks[["phase", "n_layers", "y_min_nm", "y_max_nm", "li_fraction", "layer_spacing_nm"]]
    mixing = (info.get("mixing") or [{}])[0]
    n_mixed = int(((cols.kind == "Li") & (cols.tm_fraction > 0)).sum())
    metrics = {
        "field (nm)": f"{scene.image.extent_nm[0]:.2f} x {scene.image.extent_nm[1]:.2f}",
        "pixel size (nm)": p,
        "atom columns in the image": int(len(cols)),
        "atoms in the model": int(len(scene.atoms)),
        "Li-site columns holding TM (mixing truth)": n_mixed,
        "mixing fraction realised in the region": round(float(mixing.get("fraction_realised", 0.0)), 4),
        "dose (e/Å²)": settings.dose_e_per_A2,
        "electrons per pixel": round(float(scene.image.metadata["electrons_per_pixel"]), 1),
        "mean detected fraction (clean)": float(scene.clean.data.mean()),
        "simulation + degradation time (s)": round(elapsed, 2),
    }
    text = (
        f"A degraded {settings.composition} lamella viewed along [{settings.zone}], {settings.thickness_nm:g} nm "
        f"thick, built by layerscope.crystal (top to bottom: a {settings.rock_salt_nm:g} nm rock-salt surface layer, "
        f"O3 matrix, a delithiated O1 block, O3, an O3' twin layer, O3; Li/TM mixing of "
        f"{settings.mixing_fraction:g} in the region x {settings.mixing_region_nm[0]} nm, y "
        f"{settings.mixing_region_nm[1]} nm; a {settings.void_radius_nm:g} nm void through the lamella at "
        f"{settings.void_center_nm} nm).\n\n"
        f"Imaged with the fast incoherent HAADF model ({settings.energy_keV:g} kV, detector "
        f"{settings.detector_mrad[0]:g}-{settings.detector_mrad[1]:g} mrad, Gaussian probe of "
        f"{settings.probe_fwhm_nm:g} nm FWHM, column weight sum Z^{settings.z_exponent:g}, absolute scale from "
        f"kinematic cross-sections), then degraded: Poisson noise at {settings.dose_e_per_A2:.0e} e/Å², "
        f"{settings.blur_nm:g} nm blur, background {settings.background:g} of the beam, line jitter "
        f"{settings.scan_jitter_px:g} px rms and a drift of {settings.drift_nm_per_s} nm/s at "
        f"{settings.dwell_time_s:g} s per pixel. The ground-truth table gives every column's position as it "
        f"appears in the degraded image (and undistorted), its phase, layer, site kind, composition and TM "
        f"fraction; the imaging analyses below are scored against it."
    )
    return Section(
        title="Simulated specimen (ground truth)",
        text=text,
        figures=[Figure("Degraded image and ground truth", png,
                        "Left: the acquisition the analyses see. Right: the clean image with the projected "
                        "columns (orange TM, cyan Li, red O, green Li sites holding TM) and the block "
                        "boundaries.")],
        tables=[Table("Blocks of the stack", blocks), Table("Ground-truth columns per phase and site",
                                                           truth_counts(cols))],
        metrics=metrics,
        provenance=scene.provenance,
        headline=(),  # the ground truth, not a result: the overview quotes the analyses
    )
