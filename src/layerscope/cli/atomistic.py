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
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"{name} {text!r}: give {n} comma-separated integers, e.g. {','.join(['2'] * n)}") from exc
    if len(vals) != n or min(vals) < 1:
        raise InputError(f"{name} {text!r}: give {n} comma-separated positive integers")
    return vals


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
    if structure not in ("bulk", "twin", "tilt"):
        raise InputError(f"--structure {structure!r}: choose bulk, twin or tilt")
    image = None
    if haadf_thickness_nm is not None:
        if structure == "bulk":
            raise InputError("--haadf-thickness-nm images a boundary model; use it with --structure twin or tilt")
        image = {"pixel_size_nm": haadf_pixel_nm, "probe_fwhm_nm": haadf_probe_nm, "thickness_nm": haadf_thickness_nm}
    from layerscope.atomistic.vacancies import run_vacancy_study
    from layerscope.provenance import Provenance
    from layerscope.report import render_report

    sizes = (_ints(size, name="--size", n=3), _ints(bulk_size, name="--bulk-size", n=3),
             _ints(repeat, name="--repeat", n=2))
    pot = _load(potential, device, threads)
    study = run_vacancy_study(structure, composition=composition, li_fraction=li_fraction, potential=pot,
                              temperature_K=temperature_k, max_distance_A=max_distance_a, size=sizes[0],
                              bulk_size=sizes[1], expand_times=expand_times, repeat=sizes[2], sigma=sigma,
                              fmax_eV_per_A=fmax, max_steps=max_steps, use_symmetry=not all_sites, seed=seed,
                              scheduler=scheduler)
    prov = Provenance.create([study.scan.host.atoms], parameters=study.parameters)
    with target.open() as tmp:
        study.write(tmp, prov, image=image)
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
    from layerscope.atomistic.migration import run_gliding_study
    from layerscope.provenance import Provenance
    from layerscope.report import render_report

    dirs = []
    for d in direction.split(","):
        d = d.strip().strip("[]")
        if d not in ("100", "120"):
            raise InputError(f"--direction {direction!r}: use 100 and/or 120")
        dirs.append(f"[{d}]")
    if relax_radius_a < 0:
        raise InputError(f"--relax-radius-a {relax_radius_a}: give a distance in Å, or 0 to relax all atoms")
    glide = parse_floats(gliding, name="--gliding", example="0,0.01,0.02")
    sizes = (_ints(size, name="--size", n=3), _ints(bulk_size, name="--bulk-size", n=3))
    pot = _load(potential, device, threads)
    study = run_gliding_study(composition=composition, potential=pot, cation=cation, gliding=glide, directions=dirs,
                              size=sizes[0], bulk_size=sizes[1],
                              n_images=n_images, relax_radius_A=relax_radius_a or None, fmax_eV_per_A=fmax,
                              max_steps=max_steps, seed=seed, scheduler=scheduler)
    prov = Provenance.create([], parameters=study.parameters)
    with target.open() as tmp:
        study.write(tmp, prov)
        render_report([study.section(prov)], tmp / "report.html", title=f"Migration barrier vs gliding: {composition}",
                      provenance=prov)
    t = study.table
    typer.echo("; ".join(f"{d} {100 * g:g} %: {b:.2f} eV{'' if c else ' (not converged)'}"
                         for g, d, b, c in zip(t["gliding"], t["direction"], t["barrier_eV"], t["converged"]))
               + f" -> {out}")
