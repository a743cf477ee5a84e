"""Demo: a small, fast atomistic case for ``layerscope demo`` (< 60 s on 2 cores).

CHGNet 0.3.0 relaxes LiCoO2 (lattice parameters against experiment), computes μO from Li and Li2O,
relaxes the 24-atom Σ3 twin model built by the boundary generator (boundary energy), and the relaxed
twin is imaged edge-on with the foundation's incoherent HAADF simulator. The full protocols (vacancy
scans, CI-NEB vs gliding) are the ``layerscope atomistic`` commands; they take minutes to hours on a
CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["demo_section"]

#: Experimental LiCoO2 lattice parameters (Å), Akimoto et al., J. Solid State Chem. 141, 298 (1998).
EXPERIMENT_A_C = (2.816, 14.05)


def demo_section(workdir: Path, *, seed: int = 0):
    """Run the small atomistic case and return a report section.

    Parameters
    ----------
    workdir : Path
        Folder for the relaxed twin model (``twin_relaxed.extxyz``).
    seed : int
        Seed of the structure builders (no randomness in the LiCoO2 case; kept for the interface).

    Returns
    -------
    layerscope.report.Section
    """
    from ase.io import write as ase_write

    from layerscope.atomistic.chemical_potential import oxygen_chemical_potential
    from layerscope.atomistic.potentials import load_potential, relax
    from layerscope.atomistic.structures import host_bulk, layered_lattice_parameters
    from layerscope.provenance import Provenance
    from layerscope.report import Figure, Section, Table, Value, figure_to_png

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    pot = load_potential("chgnet-0.3.0", device="cpu", num_threads=1)
    bulk = relax(host_bulk("LiCoO2", seed=seed), pot, relax_cell=True, fmax_eV_per_A=0.02, max_steps=150,
                 require_convergence=True, optimizer="BFGS")
    a, c = layered_lattice_parameters(bulk.atoms)
    oxygen = oxygen_chemical_potential(pot, fmax_eV_per_A=0.02)
    model, relaxed, gamma = _relaxed_twin(bulk, pot, seed)
    save = model.copy()
    save.info = {}
    ase_write(workdir / "twin_relaxed.extxyz", save)
    fig = _twin_figure(model)
    table = _lattice_table(a, c, oxygen.mu_O_eV, gamma)
    prov = Provenance.create([model], parameters={"potential": pot.describe(), "seed": seed,
                                                  "twin_relax_converged": relaxed.converged})
    text = ("CHGNet 0.3.0 (offline weights) on LiCoO2: relaxed lattice parameters against experiment, the oxygen "
            "chemical potential from Li/Li2O with ΔHf(Li2O) = -6.197 eV, and the Σ3 twin (60° about c) built by "
            "pymatgen's grain-boundary generator, relaxed at fixed cell and imaged edge-on with the incoherent "
            "HAADF model (5 nm thick, 0.08 nm probe) to hold against an experimental image. Vacancy scans and "
            "NEB barriers: 'layerscope atomistic vacancies|neb'.")
    return Section(
        title="Atomistic modelling",
        text=text,
        figures=[Figure("Simulated HAADF of the relaxed Σ3 twin", figure_to_png(fig),
                        "Beam along an a axis lying in the twin plane; the twin plane runs horizontally.")],
        tables=[Table("LiCoO2 with CHGNet", table)],
        metrics={"Σ3 twin energy (J/m², one relaxed calculation)": Value(gamma, None, "J/m²"),
                 "a deviation from experiment (%, one calculation)": Value(table.loc[0, "deviation_%"], None, "%"),
                 "c deviation from experiment (%, one calculation)": Value(table.loc[1, "deviation_%"], None, "%"),
                 "μO (eV, one calculation)": Value(oxygen.mu_O_eV, None, "eV")},
        provenance=prov,
        headline=["Σ3 twin energy (J/m², one relaxed calculation)", "a deviation from experiment (%, one calculation)",
                  "c deviation from experiment (%, one calculation)"],
    )


def _relaxed_twin(bulk, pot, seed: int):
    """The Σ3 twin of the relaxed bulk relaxed at fixed cell: (model, relax result, boundary energy in J/m²)."""
    from layerscope.atomistic.potentials import relax
    from layerscope.atomistic.structures import boundary_area_m2, twin_boundary

    e_fu = bulk.energy_eV / (len(bulk.atoms) / 4)
    twin = twin_boundary(bulk.atoms, expand_times=1, seed=seed)
    relaxed = relax(twin, pot, fmax_eV_per_A=0.05, max_steps=150, relax_cell=False, optimizer="BFGS")
    model = relaxed.atoms
    model.info["boundary"] = twin.info["boundary"]
    for name in twin.arrays:
        if name not in model.arrays:
            model.new_array(name, twin.arrays[name].copy())
    gamma = (relaxed.energy_eV - len(model) / 4 * e_fu) * 1.602176634e-19 / (2 * boundary_area_m2(model))
    return model, relaxed, gamma


def _twin_figure(model):
    """The relaxed twin imaged edge-on (incoherent HAADF, 0.08 nm probe, 5 nm thick), tiled to ~2 nm wide."""
    import matplotlib.pyplot as plt

    from layerscope.atomistic.to_image import simulate_boundary_image
    from layerscope.report import add_scalebar

    sim, _ = simulate_boundary_image(model, pixel_size_nm=0.02, probe_fwhm_nm=0.08, thickness_nm=5.0)
    img = sim.image.data
    reps = max(1, int(np.ceil(2.0 / (img.shape[1] * 0.02))))
    fig, ax = plt.subplots(figsize=(3.2, 4.5))
    ax.imshow(np.tile(img, (1, reps)), cmap="gray")
    ax.set_axis_off()
    add_scalebar(ax, 0.02)
    ax.set_title("Σ3 twin, relaxed (CHGNet)", fontsize=9)
    return fig


def _lattice_table(a: float, c: float, mu_o_eV: float, gamma: float):
    """CHGNet's a, c (Å) against experiment, μO (eV) and the twin energy (J/m²) as the report's table."""
    import pandas as pd

    nan = float("nan")
    return pd.DataFrame([
        {"quantity": "a (Å)", "CHGNet": a, "reference": EXPERIMENT_A_C[0], "deviation_%": 100 * (a / EXPERIMENT_A_C[0] - 1)},
        {"quantity": "c (Å)", "CHGNet": c, "reference": EXPERIMENT_A_C[1], "deviation_%": 100 * (c / EXPERIMENT_A_C[1] - 1)},
        {"quantity": "μO (eV)", "CHGNet": mu_o_eV, "reference": nan, "deviation_%": nan},
        {"quantity": "Σ3 twin energy (J/m²)", "CHGNet": gamma, "reference": nan, "deviation_%": nan},
    ]).round(4)
