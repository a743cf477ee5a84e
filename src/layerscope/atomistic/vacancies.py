"""Oxygen-vacancy formation free energies in bulk and near domain boundaries.

For every chosen O site of a relaxed host the O atom is removed, the cell is relaxed at fixed
shape, and

    ΔG = E(host with vacancy) - E(host) + μO - T·ΔS

with μO from the Li2O formation enthalpy computed with the *same* potential and T·ΔS the O2 gas
entropy per O atom (:mod:`layerscope.atomistic.chemical_potential`) — the protocol of the seed
study, with a universal machine-learned potential in place of PBE+U. Each site also gets its
distance to the boundary plane, its cation coordination, a bond-valence sum on the O in the host
(Brese & O'Keeffe parameters through pymatgen) and, with CHGNet, the mean magnetic moment of its TM
neighbours (a valence proxy in place of Bader charges). Sites fan out through
:func:`layerscope.parallel.map_tasks`; a relaxation that does not converge is kept and flagged
(``converged=False``), never dropped.

References
----------
Brese & O'Keeffe, *Acta Cryst. B* 47, 192 (1991) (bond-valence parameters).
Freysoldt et al., *Rev. Mod. Phys.* 86, 253 (2014) (defect formation energies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from ase import Atoms

from layerscope.atomistic.chemical_potential import OxygenReference, oxygen_entropy_term_eV
from layerscope.atomistic.options import VacancyOptions, loaded_as
from layerscope.atomistic.potentials import Potential, RelaxResult, relax
from layerscope.atomistic.structures import boundary_distance
from layerscope.errors import InputError
from layerscope.io.output import writes_folder

__all__ = [
    "VacancyScan",
    "symmetry_classes",
    "symmetry_distinct_sites",
    "reduce_by_symmetry",
    "boundary_sites",
    "site_descriptors",
    "vacancy_free_energy",
    "scan_vacancies",
    "analyse_vacancies",
    "run_vacancy_study",
    "VacancyOptions",
]

#: Cation-O bond cutoff (Å) for the O coordination count (bulk Co-O 1.92, Li-O 2.09 Å).
_BOND_CUTOFF_A = 2.5
_TM = ("Co", "Ni", "Mn")


def symmetry_classes(atoms: Atoms, *, element: str = "O", symprec_A: float = 0.05) -> list[list[int]]:
    """Symmetry-equivalent classes of the ``element`` atoms (pymatgen ``SpacegroupAnalyzer``/spglib).

    Parameters
    ----------
    atoms : ase.Atoms
    element : str
    symprec_A : float
        spglib tolerance (Å).

    Returns
    -------
    list of list of int
        Atom indices per class, each sorted, classes ordered by their lowest index.
    """
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    structure = AseAtomsAdaptor.get_structure(_bare(atoms))
    sym = SpacegroupAnalyzer(structure, symprec=symprec_A).get_symmetrized_structure()
    classes = sorted(sorted(int(i) for i in group) for group in sym.equivalent_indices
                     if str(structure[group[0]].specie) == element)
    if not classes:
        raise InputError(f"the cell holds no {element} atom")
    return classes


def symmetry_distinct_sites(atoms: Atoms, *, element: str = "O", symprec_A: float = 0.05) -> list[int]:
    """One representative (the lowest index) per symmetry class of ``element`` sites."""
    return [c[0] for c in symmetry_classes(atoms, element=element, symprec_A=symprec_A)]


def reduce_by_symmetry(atoms: Atoms, sites: list[int], *, symprec_A: float = 0.05) -> dict[int, int]:
    """Representatives of ``sites`` under the cell's symmetry and how many sites each stands for.

    Returns
    -------
    dict
        ``{representative index: multiplicity}`` (multiplicities add up to ``len(sites)``).
    """
    element = atoms.get_chemical_symbols()[sites[0]]
    wanted = set(int(i) for i in sites)
    out: dict[int, int] = {}
    for cls in symmetry_classes(atoms, element=element, symprec_A=symprec_A):
        members = [i for i in cls if i in wanted]
        if members:
            out[members[0]] = len(members)
    return dict(sorted(out.items()))


def boundary_sites(atoms: Atoms, *, max_distance_A: float, element: str = "O") -> list[int]:
    """Indices of ``element`` atoms within ``max_distance_A`` (Å) of a boundary plane."""
    if max_distance_A <= 0:
        raise InputError(f"max_distance_A={max_distance_A} must be positive (Å)")
    d = boundary_distance(atoms)
    symbols = np.array(atoms.get_chemical_symbols())
    idx = np.flatnonzero((symbols == element) & (d <= max_distance_A))
    if len(idx) == 0:
        raise InputError(f"no {element} atom lies within {max_distance_A} Å of the boundary; raise max_distance_A")
    return idx.tolist()


def _bare(atoms: Atoms) -> Atoms:
    """A copy without calculator, constraints or string arrays (for pymatgen conversion)."""
    out = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    return out


def site_descriptors(host: Atoms, index: int, *, magmoms: np.ndarray | None = None) -> dict[str, Any]:
    """Coordination, bond-valence sum and TM valence proxy of one O site of the host.

    Parameters
    ----------
    host : ase.Atoms
        The relaxed host.
    index : int
        The O atom.
    magmoms : numpy.ndarray, optional
        Per-atom magnetic moments of the host (CHGNet), μB.

    Returns
    -------
    dict
        ``n_TM``, ``n_Li`` (cations within 2.5 Å), ``bond_valence_sum`` (negative for O, -2 ideal),
        ``tm_magmom_mean_uB`` (NaN without magmoms), ``distance_to_boundary_A`` (NaN in bulk).
    """
    from ase.neighborlist import neighbor_list
    from pymatgen.core.bond_valence import calculate_bv_sum
    from pymatgen.io.ase import AseAtomsAdaptor

    i, j = neighbor_list("ij", host, _BOND_CUTOFF_A)
    nbrs = j[i == index]
    symbols = np.array(host.get_chemical_symbols())
    tm = nbrs[np.isin(symbols[nbrs], _TM)]
    structure = AseAtomsAdaptor.get_structure(_bare(host))
    bvs = calculate_bv_sum(structure[index], structure.get_neighbors(structure[index], 3.0))
    dist = float(boundary_distance(host)[index]) if "boundary" in host.info else float("nan")
    return {
        "n_TM": int(len(tm)),
        "n_Li": int(np.sum(symbols[nbrs] == "Li")),
        "bond_valence_sum": float(bvs),
        "tm_magmom_mean_uB": float(np.mean(np.abs(magmoms[tm]))) if magmoms is not None and len(tm) else float("nan"),
        "distance_to_boundary_A": dist,
    }


def vacancy_free_energy(e_defect_eV: float, e_host_eV: float, *, mu_O_eV: float, t_dS_eV: float) -> float:
    """ΔG = E(with vacancy) - E(host) + μO - T·ΔS (eV)."""
    return float(e_defect_eV - e_host_eV + mu_O_eV - t_dS_eV)


def _vacancy_task(index: int, *, host: Atoms, potential: Potential, e_host_eV: float, mu_O_eV: float,
                  t_dS_eV: float, fmax_eV_per_A: float, max_steps: int, optimizer: str) -> dict[str, Any]:
    """Remove O ``index``, relax at fixed cell, return one table row (top level: picklable)."""
    work = host.copy()
    del work[index]
    if "boundary" in host.info:
        work.info["boundary"] = host.info["boundary"]
    try:
        res = relax(work, potential, fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps, optimizer=optimizer)
        err = ""
    except Exception as exc:  # a failed site is reported, not dropped
        res, err = None, f"{type(exc).__name__}: {exc}"
    row: dict[str, Any] = {"site_index": int(index), "x_A": float(host.positions[index, 0]),
                           "y_A": float(host.positions[index, 1]), "z_A": float(host.positions[index, 2])}
    if res is None:
        row.update(dG_eV=float("nan"), dE_eV=float("nan"), converged=False, steps=0,
                   max_force_eV_per_A=float("nan"), error=err)
    else:
        row.update(dE_eV=float(res.energy_eV - e_host_eV),
                   dG_eV=vacancy_free_energy(res.energy_eV, e_host_eV, mu_O_eV=mu_O_eV, t_dS_eV=t_dS_eV),
                   converged=bool(res.converged), steps=int(res.steps),
                   max_force_eV_per_A=float(res.max_force_eV_per_A), error="")
    return row


@dataclass
class VacancyScan:
    """Result of :func:`scan_vacancies`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per site: ``site_index``, ``multiplicity`` (symmetry-equivalent sites it stands
        for), position (Å), ``distance_to_boundary_A``, ``n_TM``,
        ``n_Li``, ``bond_valence_sum``, ``tm_magmom_mean_uB``, ``dE_eV``, ``dG_eV``, ``converged``,
        ``steps``, ``max_force_eV_per_A``, ``error``.
    host : RelaxResult
        The relaxed host.
    oxygen : OxygenReference
    t_dS_eV : float
    temperature_K : float
    parameters : dict
    """

    table: pd.DataFrame
    host: RelaxResult
    oxygen: OxygenReference
    t_dS_eV: float
    temperature_K: float
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def n_unconverged(self) -> int:
        """Sites whose relaxation did not converge (kept in the table, flagged)."""
        return int((~self.table["converged"].astype(bool)).sum())


def scan_vacancies(
    host: Atoms,
    potential: Potential,
    oxygen: OxygenReference,
    *,
    sites: list[int],
    temperature_K: float,
    fmax_eV_per_A: float = 0.05,
    max_steps: int = 300,
    relax_host: bool = True,
    relax_host_cell: bool = True,
    optimizer: Literal["FIRE", "BFGS"] = "FIRE",
    scheduler: Any = None,
    progress: bool = True,
) -> VacancyScan:
    """Relax the host, then every O vacancy in ``sites`` at fixed cell; tabulate ΔG per site.

    Parameters
    ----------
    host : ase.Atoms
        The host cell (bulk or boundary; ``info["boundary"]`` gives distances to the plane).
    potential : Potential
    oxygen : OxygenReference
        μO from the same potential (:func:`~layerscope.atomistic.chemical_potential.oxygen_chemical_potential`).
    sites : list of int or dict
        O atom indices in ``host`` (:func:`symmetry_distinct_sites`, :func:`boundary_sites`), or
        ``{index: multiplicity}`` from :func:`reduce_by_symmetry` (the table gets a ``multiplicity``).
    temperature_K : float
        For the O2 entropy term (the seed study: 300 K).
    fmax_eV_per_A, max_steps : float, int
        Convergence of every relaxation.
    relax_host, relax_host_cell : bool
        Relax the host positions (and cell) first; the host must converge
        (:class:`~layerscope.errors.ConvergenceError` otherwise).
    optimizer : {"FIRE", "BFGS"}
    scheduler : optional
        Dask scheduler for the site fan-out (:func:`layerscope.parallel.map_tasks`).
    progress : bool

    Returns
    -------
    VacancyScan
    """
    from layerscope.parallel import map_tasks

    if potential.name != oxygen.potential:
        raise InputError(f"μO was computed with {oxygen.potential} but the scan uses {potential.name}; "
                         f"compute μO with the same potential")
    multiplicity = dict(sites) if isinstance(sites, dict) else {int(i): 1 for i in sites}
    sites = list(multiplicity)
    symbols = np.array(host.get_chemical_symbols())
    bad = [i for i in sites if not (0 <= i < len(host)) or symbols[i] != "O"]
    if bad:
        raise InputError(f"sites {bad[:5]} are not O atoms of the host; pass O indices")
    if relax_host:
        host_res = relax(host, potential, fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps,
                         relax_cell=relax_host_cell, require_convergence=True, optimizer=optimizer)
        host_res.atoms.info = dict(host.info)
        for name in host.arrays:
            if name not in host_res.atoms.arrays:
                host_res.atoms.new_array(name, host.arrays[name].copy())
    else:
        work = host.copy()
        work.calc = potential.calculator()
        forces = work.get_forces()
        magmoms = work.calc.results.get("magmoms") if potential.has_magmoms else None
        host_res = RelaxResult(atoms=host.copy(), energy_eV=float(work.get_potential_energy()), converged=True,
                               steps=0, max_force_eV_per_A=float(np.linalg.norm(forces, axis=1).max()),
                               magmoms=None if magmoms is None else np.asarray(magmoms, dtype=float))
    relaxed = host_res.atoms
    t_ds = oxygen_entropy_term_eV(temperature_K)
    rows = map_tasks(_vacancy_task, list(sites), scheduler=scheduler, progress=progress,
                     description="O vacancies", host=relaxed, potential=potential, e_host_eV=host_res.energy_eV,
                     mu_O_eV=oxygen.mu_O_eV, t_dS_eV=t_ds, fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps,
                     optimizer=optimizer)
    for row in rows:
        row.update(site_descriptors(relaxed, row["site_index"], magmoms=host_res.magmoms))
        row["multiplicity"] = multiplicity[row["site_index"]]
    columns = ["site_index", "multiplicity", "x_A", "y_A", "z_A", "distance_to_boundary_A", "n_TM", "n_Li", "bond_valence_sum",
               "tm_magmom_mean_uB", "dE_eV", "dG_eV", "converged", "steps", "max_force_eV_per_A", "error"]
    table = pd.DataFrame(rows)[columns]
    params = {"potential": potential.describe(), "mu_O_eV": oxygen.mu_O_eV, "temperature_K": float(temperature_K),
              "t_dS_eV": t_ds, "fmax_eV_per_A": fmax_eV_per_A, "max_steps": max_steps, "relax_host": relax_host,
              "relax_host_cell": relax_host_cell, "optimizer": optimizer, "n_sites": len(sites)}
    return VacancyScan(table=table, host=host_res, oxygen=oxygen, t_dS_eV=t_ds, temperature_K=float(temperature_K),
                       parameters=params)


# --------------------------------------------------------------------------------------------
# The whole protocol: build the host, μO, scan, figure, report
# --------------------------------------------------------------------------------------------
#: The seed study's values (PBE+U, NCM) to print next to ours; eV.
PAPER_BULK_DG_EV = {1.0: 2.1, 0.125: 0.04}


def build_host(
    structure: Literal["bulk", "twin", "tilt"],
    *,
    relaxed_bulk: Atoms,
    li_fraction: float,
    size: tuple[int, int, int] = (2, 2, 1),
    expand_times: int = 1,
    repeat: tuple[int, int] = (2, 2),
    sigma: int = 7,
    seed: int = 0,
) -> Atoms:
    """The host cell of a vacancy scan, from a bulk cell relaxed with the scan's potential.

    Parameters
    ----------
    structure : {"bulk", "twin", "tilt"}
    relaxed_bulk : ase.Atoms
        Fully lithiated O3 bulk (hexagonal setting) relaxed with the potential: its lattice
        parameters and TM fractions define the host.
    li_fraction : float
        Fraction of Li-layer sites left occupied (Ewald-ordered, :func:`~layerscope.atomistic.structures.delithiate`).
    size : tuple of int
        Bulk supercell of ``relaxed_bulk`` (``structure="bulk"``).
    expand_times, repeat, sigma : int, tuple, int
        Boundary cells (:func:`~layerscope.atomistic.structures.twin_boundary`,
        :func:`~layerscope.atomistic.structures.tilt_boundary`).
    seed : int

    Returns
    -------
    ase.Atoms
    """
    from layerscope.atomistic.structures import delithiate, tilt_boundary, twin_boundary

    if structure == "bulk":
        host = relaxed_bulk.repeat(tuple(int(n) for n in size))
    elif structure == "twin":
        host = twin_boundary(relaxed_bulk, expand_times=expand_times, repeat=repeat, seed=seed)
    elif structure == "tilt":
        host = tilt_boundary(relaxed_bulk, sigma=sigma, expand_times=expand_times, repeat=repeat, seed=seed)
    else:
        raise InputError(f"structure={structure!r} is not known; use bulk, twin or tilt")
    if li_fraction != 1.0:
        host = delithiate(host, li_fraction=li_fraction, seed=seed)
    return host


def _pearson(x: pd.Series, y: pd.Series) -> float:
    """Pearson correlation of two columns (NaN rows dropped; NaN for fewer than 3 points or no spread)."""
    m = np.isfinite(x.to_numpy(dtype=float)) & np.isfinite(y.to_numpy(dtype=float))
    a, b = x.to_numpy(dtype=float)[m], y.to_numpy(dtype=float)[m]
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class VacancyStudy:
    """A finished vacancy protocol: the scan plus what it was run on.

    ``options`` are the :class:`~layerscope.atomistic.options.VacancyOptions` it ran with and
    ``provenance`` the one record of the run (built by :func:`analyse_vacancies`).
    """

    scan: VacancyScan
    structure: str
    composition: str
    li_fraction: float
    bulk_lattice_A: tuple[float, float]
    bulk_energy_eV_per_fu: float
    boundary_energy_J_per_m2: float | None
    parameters: dict[str, Any] = field(default_factory=dict)
    options: VacancyOptions | None = None
    provenance: Any = None

    def summary(self) -> dict[str, Any]:
        """Key numbers (JSON-safe)."""
        t = self.scan.table
        ok = t[t["converged"].astype(bool)]
        out = {
            "structure": self.structure, "composition": self.composition, "li_fraction": self.li_fraction,
            "potential": self.scan.parameters["potential"]["potential"], "n_sites": int(len(t)),
            "n_unconverged": self.scan.n_unconverged, "mu_O_eV": self.scan.oxygen.mu_O_eV,
            "t_dS_eV": self.scan.t_dS_eV, "bulk_a_A": self.bulk_lattice_A[0], "bulk_c_A": self.bulk_lattice_A[1],
            "host_atoms": len(self.scan.host.atoms), "host_formula": self.scan.host.atoms.get_chemical_formula(),
            "dG_min_eV": float(ok["dG_eV"].min()) if len(ok) else float("nan"),
            "dG_max_eV": float(ok["dG_eV"].max()) if len(ok) else float("nan"),
            "dG_mean_eV": float(np.average(ok["dG_eV"], weights=ok["multiplicity"])) if len(ok) else float("nan"),
            "n_sites_represented": int(t["multiplicity"].sum()),
            # the seed study: ΔG follows the net charge on O; here with the bond-valence sum and the
            # neighbouring-TM moment as proxies (Pearson r over converged sites, NaN below 3 sites)
            "r_dG_bond_valence": _pearson(ok["dG_eV"], ok["bond_valence_sum"]),
            "r_dG_tm_magmom": _pearson(ok["dG_eV"], ok["tm_magmom_mean_uB"]),
            "boundary_energy_J_per_m2": self.boundary_energy_J_per_m2,
        }
        if self.structure == "bulk" and self.li_fraction in PAPER_BULK_DG_EV:
            out["paper_bulk_dG_eV"] = PAPER_BULK_DG_EV[self.li_fraction]
        return out

    def figure(self):
        """ΔG per site against its distance to the boundary plane (index order in bulk)."""
        import matplotlib.pyplot as plt

        from layerscope.report.figures import OKABE_ITO, legend_outside

        t = self.scan.table
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        x = t["distance_to_boundary_A"] / 10.0 if self.structure != "bulk" else np.arange(len(t))
        conv = t["converged"].astype(bool).to_numpy()
        ax.scatter(np.asarray(x)[conv], t["dG_eV"][conv], c=OKABE_ITO[0], label="converged")
        if (~conv).any():
            ax.scatter(np.asarray(x)[~conv], t["dG_eV"][~conv], marker="x", c=OKABE_ITO[1], label="not converged")
        if self.structure == "bulk" and self.li_fraction in PAPER_BULK_DG_EV:
            ax.axhline(PAPER_BULK_DG_EV[self.li_fraction], color="0.4", ls="--", label="seed study (PBE+U, NCM)")
        ax.set_xlabel("distance to boundary plane (nm)" if self.structure != "bulk" else "symmetry-distinct O site index")
        ax.set_ylabel("ΔG O vacancy (eV)")
        ax.set_title(f"{self.composition} {self.structure}, Li {self.li_fraction:g}, "
                     f"{self.scan.parameters['potential']['potential']}")
        legend_outside(ax, where="right")
        fig.tight_layout()
        return fig

    def relaxed_boundary(self) -> Atoms:
        """The relaxed host with its boundary description (for :mod:`layerscope.atomistic.to_image`)."""
        host = self.scan.host.atoms.copy()
        if "boundary" not in host.info:
            raise InputError(f"the {self.structure} host has no boundary to image")
        return host

    @writes_folder()
    def write(self, out_dir, provenance, *, image: dict[str, float] | None = None) -> None:
        """sites.csv, host.extxyz (relaxed), dG_profile.png, summary.json, provenance.json.

        Parameters
        ----------
        out_dir : path
        provenance : Provenance
        image : dict, optional
            ``{"pixel_size_nm", "probe_fwhm_nm", "thickness_nm"}``: also write the edge-on HAADF
            simulation of the relaxed boundary (``host_haadf.hspy`` and ``host_haadf.png``).
        """
        from pathlib import Path

        from ase.io import write as ase_write

        from layerscope.io.output import write_summary, write_table
        from layerscope.report import figure_to_png

        out_dir = Path(out_dir)
        write_table(self.scan.table, out_dir / "sites.csv")
        host = self.scan.host.atoms.copy()
        host.info = {k: v for k, v in host.info.items() if isinstance(v, (int, float, str))}
        ase_write(out_dir / "host.extxyz", host)
        (out_dir / "dG_profile.png").write_bytes(figure_to_png(self.figure()))
        if image is not None:
            import matplotlib.pyplot as plt

            from layerscope.atomistic.to_image import simulate_boundary_image
            from layerscope.report import add_scalebar

            sim, _ = simulate_boundary_image(self.relaxed_boundary(), **image)
            sim.image.to_hyperspy().save(out_dir / "host_haadf.hspy", overwrite=True)
            fig, ax = plt.subplots(figsize=(4, 5))
            ax.imshow(sim.image.data, cmap="gray")
            ax.set_axis_off()
            add_scalebar(ax, sim.image.pixel_size_nm)
            (out_dir / "host_haadf.png").write_bytes(figure_to_png(fig))
        write_summary(out_dir, {**self.summary(), "parameters": self.parameters}, provenance)

    def section(self, provenance=None):
        """A report section: the profile, the table and the key numbers."""
        from layerscope.report import Figure, Section, Table, Value, figure_to_png

        s = self.summary()
        text = (f"O-vacancy formation free energies ΔG = E(vac) - E(host) + μO - TΔS for {s['n_sites']} symmetry-distinct O sites (standing for {s['n_sites_represented']}) of "
                f"{s['host_formula']} ({self.structure}), {s['potential']}; μO = {s['mu_O_eV']:.3f} eV from Li/Li2O "
                f"with ΔHf(Li2O) = -6.197 eV, TΔS = {s['t_dS_eV']:.3f} eV. Sites whose relaxation did not converge "
                f"are kept and marked ({s['n_unconverged']}).")
        metrics = {"ΔG min (eV, one site)": Value(s["dG_min_eV"], None, "eV"),
                   "ΔG max (eV, one site)": Value(s["dG_max_eV"], None, "eV")}
        t = self.scan.table
        dg = t.loc[t["converged"].astype(bool), "dG_eV"].dropna()
        if len(dg) >= 2:
            metrics[f"ΔG (eV, mean ± s.d. over {len(dg)} converged sites)"] = Value(dg.mean(), dg.std(ddof=1), "eV")
        metrics.update({"μO (eV)": Value(s["mu_O_eV"], None, "eV"), "bulk a (Å)": Value(s["bulk_a_A"], None, "Å"),
                        "bulk c (Å)": Value(s["bulk_c_A"], None, "Å")})
        if s.get("boundary_energy_J_per_m2") is not None:
            metrics["boundary energy (J/m², one calculation)"] = Value(s["boundary_energy_J_per_m2"], None, "J/m²")
        return Section(title=f"Atomistic: O vacancies ({self.structure})", text=text,
                       figures=[Figure("ΔG vs position", figure_to_png(self.figure()),
                                       "Each point is one O site; crosses did not converge.")],
                       tables=[Table("Sites", self.scan.table.drop(columns=["error"]).round(4))], metrics=metrics,
                       provenance=provenance)


def run_vacancy_study(
    structure: Literal["bulk", "twin", "tilt"],
    *,
    composition: str,
    li_fraction: float,
    potential: Potential,
    temperature_K: float = 300.0,
    max_distance_A: float = 3.0,
    size: tuple[int, int, int] = (2, 2, 1),
    bulk_size: tuple[int, int, int] = (1, 1, 1),
    expand_times: int = 1,
    repeat: tuple[int, int] = (2, 2),
    sigma: int = 7,
    fmax_eV_per_A: float = 0.05,
    max_steps: int = 300,
    optimizer: Literal["FIRE", "BFGS"] = "BFGS",
    use_symmetry: bool = True,
    seed: int = 0,
    scheduler: Any = None,
    progress: bool = True,
) -> VacancyStudy:
    """Run the seed study's O-vacancy protocol with one potential, end to end.

    A keyword front end of :func:`analyse_vacancies`: the keywords become a
    :class:`~layerscope.atomistic.options.VacancyOptions` (same names and meaning).

    Parameters
    ----------
    structure : {"bulk", "twin", "tilt"}
    composition : str
        ``"LiCoO2"``, ``"NCM622"``, ``"NCM811"`` ... (:mod:`layerscope.crystal`).
    li_fraction : float
    potential : Potential
    temperature_K : float
        Temperature of the O2 entropy term (the seed study: 300 K).
    max_distance_A : float
        Boundary scans: O sites within this distance (Å) of a boundary plane.
    size : tuple of int
        Bulk host: repeats of the relaxed bulk cell.
    bulk_size : tuple of int
        Repeats of the crystal module's hexagonal cell for the bulk reference (NCM622 needs 5 TM
        sites per layer multiple, e.g. (5, 1, 1) is not hexagonal-friendly; see docs).
    expand_times, repeat, sigma
        Boundary cells.
    fmax_eV_per_A, max_steps, optimizer
        Relaxation settings.
    use_symmetry : bool
        Compute one representative per class of symmetry-equivalent boundary sites (spglib on the
        unrelaxed host; ``multiplicity`` column) instead of every site; the bulk always uses symmetry.
    seed : int
    scheduler, progress
        Site fan-out (:func:`layerscope.parallel.map_tasks`).

    Returns
    -------
    VacancyStudy
    """
    options = VacancyOptions(structure=structure, composition=composition, li_fraction=li_fraction, potential=None,
                             temperature_K=temperature_K, max_distance_A=max_distance_A, size=size,
                             bulk_size=bulk_size, expand_times=expand_times, repeat=repeat, sigma=sigma,
                             fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps, optimizer=optimizer,
                             use_symmetry=use_symmetry, seed=seed)
    return analyse_vacancies(potential, options, scheduler=scheduler, progress=progress)


def _relaxed_bulk(potential: Potential, o: VacancyOptions) -> tuple[RelaxResult, tuple[float, float], float]:
    """The lithiated bulk relaxed (cell and positions), its a and c (Å) and energy per formula unit (eV).

    A dry run of :func:`build_host` on the unrelaxed bulk first: bad Li fractions and impossible
    boundaries fail before any relaxation.
    """
    from layerscope.atomistic.structures import host_bulk, layered_lattice_parameters

    bulk0 = host_bulk(o.composition, size=o.bulk_size, seed=o.seed)
    build_host(o.structure, relaxed_bulk=bulk0, li_fraction=o.li_fraction, size=o.size, expand_times=o.expand_times,
               repeat=o.repeat, sigma=o.sigma, seed=o.seed)
    bulk = relax(bulk0, potential, fmax_eV_per_A=min(o.fmax_eV_per_A, 0.02), max_steps=300, relax_cell=True,
                 require_convergence=True, optimizer="BFGS")
    for name in bulk0.arrays:
        if name not in bulk.atoms.arrays:
            bulk.atoms.new_array(name, bulk0.arrays[name].copy())
    a_c = layered_lattice_parameters(bulk.atoms)
    n_fu = int(np.sum(np.array(bulk.atoms.get_chemical_symbols()) == "O")) / 2
    return bulk, (float(a_c[0]), float(a_c[1])), float(bulk.energy_eV / n_fu)


def _scan_sites(host: Atoms, o: VacancyOptions) -> dict[int, int] | list[int]:
    """Every symmetry-distinct O site in bulk; those near a boundary plane (by symmetry unless --all-sites)."""
    if o.structure == "bulk":
        return reduce_by_symmetry(host, [i for i, s in enumerate(host.get_chemical_symbols()) if s == "O"])
    sites = boundary_sites(host, max_distance_A=o.max_distance_A)
    return reduce_by_symmetry(host, sites) if o.use_symmetry else sites


def _boundary_energy_J_per_m2(scan: VacancyScan, e_fu_eV: float) -> float:
    """(E(host) - n E(bulk per f.u.)) / (2 area): two boundaries per periodic cell; 1 eV = 1.602176634e-19 J."""
    from layerscope.atomistic.structures import boundary_area_m2

    relaxed = scan.host.atoms
    n_fu_host = int(np.sum(np.array(relaxed.get_chemical_symbols()) == "O")) / 2
    return float((scan.host.energy_eV - n_fu_host * e_fu_eV) * 1.602176634e-19 / (2 * boundary_area_m2(relaxed)))


def analyse_vacancies(potential: Potential, options: VacancyOptions | None = None, *, scheduler: Any = None,
                      progress: bool = True) -> VacancyStudy:
    """The seed study's O-vacancy protocol with one loaded potential (no file is read or written).

    Steps: relax the lithiated bulk (cell and positions) -> build the host (bulk supercell, Σ3
    twin or Σ7/Σ13 tilt, Ewald-ordered delithiation) -> μO from Li/Li2O -> relax the host (cell
    and positions) -> every O site (all symmetry-distinct ones in bulk; those within
    ``max_distance_A`` of a boundary plane) relaxed at fixed cell -> ΔG table.

    Parameters
    ----------
    potential : Potential
        A loaded potential (:func:`~layerscope.atomistic.potentials.load_potential`) or any
        calculator source with ``name``, ``calculator()`` and ``describe()``.
    options : VacancyOptions, optional
        What to compute and how (defaults when None).
    scheduler, progress
        Site fan-out (:func:`layerscope.parallel.map_tasks`).

    Returns
    -------
    VacancyStudy
        With one :class:`~layerscope.provenance.Provenance` (the relaxed host, every option).
    """
    from layerscope.atomistic.chemical_potential import oxygen_chemical_potential
    from layerscope.provenance import Provenance

    o = options if options is not None else VacancyOptions(potential=None)
    record = loaded_as(o, potential)  # before any work: a mismatched potential is refused
    bulk, a_c, e_fu = _relaxed_bulk(potential, o)
    host = build_host(o.structure, relaxed_bulk=bulk.atoms, li_fraction=o.li_fraction, size=o.size,
                      expand_times=o.expand_times, repeat=o.repeat, sigma=o.sigma, seed=o.seed)
    sites = _scan_sites(host, o)
    oxygen = oxygen_chemical_potential(potential)
    scan = scan_vacancies(host, potential, oxygen, sites=sites, temperature_K=o.temperature_K,
                          fmax_eV_per_A=o.fmax_eV_per_A, max_steps=o.max_steps, optimizer=o.optimizer,
                          scheduler=scheduler, progress=progress)
    gamma = _boundary_energy_J_per_m2(scan, e_fu) if o.structure != "bulk" and o.li_fraction == 1.0 else None
    params = {"structure": o.structure, "composition": o.composition, "li_fraction": o.li_fraction,
              "temperature_K": o.temperature_K, "max_distance_A": o.max_distance_A, "size": list(o.size),
              "bulk_size": list(o.bulk_size), "expand_times": o.expand_times, "repeat": list(o.repeat),
              "sigma": o.sigma, "seed": o.seed, "use_symmetry": o.use_symmetry, **scan.parameters,
              "li_ordering": host.info.get("li_ordering"),
              "boundary": {k: v for k, v in host.info.get("boundary", {}).items() if k != "c_axis"},
              "haadf_image": o.image,
              "loaded_as": record}
    return VacancyStudy(scan=scan, structure=o.structure, composition=o.composition, li_fraction=float(o.li_fraction),
                        bulk_lattice_A=a_c, bulk_energy_eV_per_fu=e_fu, boundary_energy_J_per_m2=gamma,
                        parameters=params, options=o,
                        provenance=Provenance.create([scan.host.atoms], parameters=params))
