"""``layerscope atomistic vacancies`` and ``layerscope atomistic neb``.

Both run a seed-study protocol end to end with a universal machine-learned potential whose weights
ship in its wheel (CHGNet 0.3.0, SevenNet 7net-0 / 7net-l3i5): nothing downloads. CPU by default
when no GPU is present; one PyTorch thread per task (set --threads for a single large task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from layerscope.cli.app import parse_floats, OverwriteOption, claim_output, OutOption, SchedulerOption, app
from layerscope.errors import InputError

atomistic_app = typer.Typer(
    name="atomistic",
    help="Atomistic modelling with offline universal potentials: O-vacancy energies at boundaries, "
         "cation migration barriers vs planar gliding.",
    no_args_is_help=True,
)
app.add_typer(atomistic_app, name="atomistic")


@atomistic_app.callback()
def _needs_extra() -> None:
    """Atomistic modelling with offline universal potentials."""
    from layerscope._extras import require

    require("atomistic", "layerscope atomistic", ("ase", "pymatgen", "torch"))

_POTENTIAL_HELP = "chgnet-0.3.0, 7net-0 or 7net-l3i5 (weights ship in the wheels; no download)."


def _ints(text: str, *, name: str, n: int) -> tuple[int, ...]:
    """The integers of a comma-separated option (their count and range are checked by the options)."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"{name} {text!r}: give {n} comma-separated integers, e.g. {name} {','.join(['2'] * n)}") from exc


def _load(potential: str, device: str, threads: int):
    import warnings

    from layerscope._extras import require
    from layerscope.atomistic.potentials import load_potential

    require("atomistic", f"--potential {potential}", ("sevenn",) if potential.startswith("7net") else ("chgnet",))

    # CHGNet converts its volume tensor with requires_grad=True on every call: harmless, but it would
    # print a PyTorch warning per structure into the user's terminal
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True", category=UserWarning)
    return load_potential(potential, device=device, num_threads=threads)


@atomistic_app.command()
def vacancies(
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    structure: str = typer.Option("bulk", "--structure", help="bulk, twin (Σ3, 60° about c) or tilt (Σ7/Σ13 [0001])."),
    composition: str = typer.Option("LiCoO2", "--composition", help="LiCoO2, NCM111 (Li3NiCoMnO6), NCM622, NCM811 (layerscope.crystal names)."),
    li_fraction: float = typer.Option(1.0, "--li-fraction", help="Fraction of Li-layer sites kept (Ewald-ordered); "
                                                                 "must be whole in the cell."),
    potential: str = typer.Option("chgnet-0.3.0", "--potential", help=_POTENTIAL_HELP),
    temperature_k: float = typer.Option(300.0, "--temperature-k", help="Temperature of the O2 entropy term, K."),
    max_distance_a: float = typer.Option(3.0, "--max-distance-a", help="Boundaries: O sites within this distance "
                                                                       "of a boundary plane, Å."),
    size: str = typer.Option("2,2,1", "--size", help="Bulk host: repeats of the relaxed hexagonal cell."),
    bulk_size: str = typer.Option("1,1,1", "--bulk-size", help="Repeats of the crystal cell for the relaxed bulk "
                                                               "(NCM622: a multiple of 5 TM sites; NCM111: of 3)."),
    expand_times: int = typer.Option(1, "--expand-times", help="Boundaries: grain thickness (generator repeats)."),
    repeat: str = typer.Option("2,2", "--repeat", help="Boundaries: in-plane repeats."),
    sigma: int = typer.Option(7, "--sigma", help="Tilt boundary Σ: 7 or 13."),
    fmax: float = typer.Option(0.05, "--fmax", help="Force convergence, eV/Å."),
    max_steps: int = typer.Option(300, "--max-steps", help="Optimiser steps per relaxation."),
    haadf_thickness_nm: Optional[float] = typer.Option(None, "--haadf-thickness-nm", help="Boundaries: also simulate "
                                                       "the relaxed model edge-on (incoherent HAADF) at this thickness, nm."),
    haadf_pixel_nm: float = typer.Option(0.02, "--haadf-pixel-nm", help="Pixel size of that image, nm."),
    haadf_probe_nm: float = typer.Option(0.08, "--haadf-probe-nm", help="Probe FWHM of that image, nm."),
    all_sites: bool = typer.Option(False, "--all-sites", help="Boundaries: compute every site near the plane, not "
                                                              "one per symmetry class."),
    seed: int = typer.Option(0, "--seed", help="Seed of the Ewald ordering searches."),
    device: str = typer.Option("auto", "--device", help="auto (GPU when present), cpu or cuda."),
    threads: int = typer.Option(1, "--threads", help="PyTorch threads per task."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """O-vacancy formation free energy of every O site (bulk: symmetry-distinct; boundaries: near the plane)."""
    target = claim_output(out, overwrite)
    from layerscope.atomistic.options import VacancyOptions

    opts = VacancyOptions(structure=structure, composition=composition, li_fraction=li_fraction, potential=potential,
                          device=device, threads=threads, temperature_K=temperature_k, max_distance_A=max_distance_a,
                          size=_ints(size, name="--size", n=3), bulk_size=_ints(bulk_size, name="--bulk-size", n=3),
                          expand_times=expand_times, repeat=_ints(repeat, name="--repeat", n=2), sigma=sigma,
                          fmax_eV_per_A=fmax, max_steps=max_steps, use_symmetry=not all_sites, seed=seed,
                          haadf_thickness_nm=haadf_thickness_nm, haadf_pixel_nm=haadf_pixel_nm,
                          haadf_probe_nm=haadf_probe_nm)
    from layerscope.atomistic.vacancies import analyse_vacancies
    from layerscope.report import render_report

    study = analyse_vacancies(_load(opts.potential, opts.device, opts.threads), opts, scheduler=scheduler)
    prov = study.provenance
    with target.open() as tmp:
        study.write(tmp, prov, image=opts.image)
        render_report([study.section(prov)], tmp / "report.html", title=f"O vacancies: {composition} {structure}",
                      provenance=prov)
    s = study.summary()
    typer.echo(f"{s['host_formula']} {structure}: {s['n_sites']} sites, ΔG {s['dG_min_eV']:.2f}-{s['dG_max_eV']:.2f} eV "
               f"({s['n_unconverged']} not converged) -> {out}")


@atomistic_app.command()
def neb(
    out: Path = OutOption,
    overwrite: bool = OverwriteOption,
    cation: str = typer.Option("Co", "--cation", help="Migrating TM cation (Co, Ni, Mn)."),
    gliding: str = typer.Option("0,0.01,0.02,0.03,0.05", "--gliding", help="Gliding ratios (fractions of a)."),
    direction: str = typer.Option("100", "--direction", help="Comma-separated gliding directions: 100 and/or 120 "
                                                             "(in-plane perpendicular)."),
    composition: str = typer.Option("LiCoO2", "--composition", help="LiCoO2 (seed study) or an NMC composition."),
    potential: str = typer.Option("chgnet-0.3.0", "--potential", help=_POTENTIAL_HELP),
    size: str = typer.Option("2,2,1", "--size", help="Repeats of the relaxed bulk cell (2,2,1: 47 atoms)."),
    bulk_size: str = typer.Option("1,1,1", "--bulk-size", help="Repeats of the crystal cell for the relaxed bulk."),
    n_images: int = typer.Option(4, "--n-images", help="Intermediate NEB images."),
    relax_radius_a: float = typer.Option(6.0, "--relax-radius-a", help="Only atoms within this distance of the "
                                                                       "cation relax (keeps the glide); 0 = all atoms."),
    fmax: float = typer.Option(0.05, "--fmax", help="NEB force convergence, eV/Å."),
    max_steps: int = typer.Option(300, "--max-steps", help="NEB optimiser steps."),
    seed: int = typer.Option(0, "--seed", help="Seed of NMC TM ordering."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(1, "--threads", help="PyTorch threads per task."),
    scheduler: Optional[str] = SchedulerOption,
) -> None:
    """CI-NEB barrier of the TM oct -> tet -> Li-layer oct jump against planar gliding."""
    target = claim_output(out, overwrite)
    from layerscope.atomistic.options import NEBOptions

    glide = parse_floats(gliding, name="--gliding", example="0,0.01,0.02")
    # --relax-radius-a 0 relaxes every atom (None); a negative distance is refused by NEBOptions
    opts = NEBOptions(cation=cation, gliding=tuple(glide), directions=tuple(direction.split(",")),
                      composition=composition, potential=potential, device=device, threads=threads,
                      size=_ints(size, name="--size", n=3), bulk_size=_ints(bulk_size, name="--bulk-size", n=3),
                      n_images=n_images, relax_radius_A=relax_radius_a if relax_radius_a != 0 else None,
                      fmax_eV_per_A=fmax, max_steps=max_steps, seed=seed)
    from layerscope.atomistic.migration import analyse_gliding
    from layerscope.report import render_report

    study = analyse_gliding(_load(opts.potential, opts.device, opts.threads), opts, scheduler=scheduler)
    prov = study.provenance
    with target.open() as tmp:
        study.write(tmp, prov)
        render_report([study.section(prov)], tmp / "report.html", title=f"Migration barrier vs gliding: {composition}",
                      provenance=prov)
    t = study.table
    typer.echo("; ".join(f"{d} {100 * g:g} %: {b:.2f} eV{'' if c else ' (not converged)'}"
                         for g, d, b, c in zip(t["gliding"], t["direction"], t["barrier_eV"], t["converged"]))
               + f" -> {out}")
