"""Cross-layer cation migration barriers (CI-NEB) and their dependence on planar gliding.

The seed study's path: a TM cation leaves its octahedral site in the TM layer through the shared
O3 face into the tetrahedral site of the Li layer (apex pointing away), and on into an empty Li-layer
octahedral site (oct -> tet -> oct). Here:

* :func:`migration_endpoints` finds the migrating cation, a face-sharing empty Li site (a Li is
  removed there) and the tetrahedral site between them, in a layered cell with c along +z;
* :func:`run_neb` interpolates initial -> tetrahedral -> final (piecewise linear through the tet
  site, refined by IDPP, Smidstrup et al. 2014), then runs a climbing-image NEB (Henkelman,
  Uberuaga & Jónsson 2000) with one calculator per image sharing the model;
* :func:`migration_barrier` does both for one gliding state (:func:`~layerscope.atomistic.structures.apply_gliding`
  of the slab above the Li layer the cation enters), and :func:`barrier_vs_gliding` scans gliding
  ratios and directions through :func:`layerscope.parallel.map_tasks`.

Gliding geometry: with ``relax_radius_A`` set, only atoms within that distance of the migrating
cation relax (end points and band), so the imposed glide stays where it was put; with ``None`` all
atoms relax at the fixed, tilted cell and the glide may spread over every Li layer. A NEB that does
not converge is returned with ``converged=False`` and its last band, never dropped.

Lengths in Å, energies in eV.

References
----------
Henkelman, Uberuaga & Jónsson, *J. Chem. Phys.* 113, 9901 (2000) (climbing-image NEB).
Smidstrup, Pedersen, Stokbro & Jónsson, *J. Chem. Phys.* 140, 214106 (2014) (IDPP).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from ase import Atoms

from layerscope.atomistic.options import NEBOptions, loaded_as
from layerscope.atomistic.potentials import relax
from layerscope.atomistic.structures import apply_gliding, layered_lattice_parameters
from layerscope.errors import InputError
from layerscope.io.output import writes_folder

__all__ = [
    "CalculatorSource",
    "MigrationEndpoints",
    "NEBResult",
    "migration_endpoints",
    "run_neb",
    "migration_barrier",
    "barrier_vs_gliding",
    "analyse_gliding",
    "run_gliding_study",
    "NEBOptions",
]

_BOND_A = 2.4  # cation-O bond cutoff, Å


class CalculatorSource(Protocol):
    """Anything that hands out fresh ASE calculators (a :class:`~layerscope.atomistic.potentials.Potential`)."""

    name: str

    def calculator(self) -> Any: ...


@dataclass
class MigrationEndpoints:
    """Initial and final states of an oct -> tet -> oct cation jump.

    Attributes
    ----------
    initial, final : ase.Atoms
        Same atom order; the migrating cation is ``moving_index`` in both.
    tetrahedral_site : numpy.ndarray
        Cartesian position (Å) of the intermediate tetrahedral site (in the initial frame).
    moving_index : int
    removed_li_position : numpy.ndarray
        Where the Li was removed to make room (the destination octahedral site).
    cation : str
    """

    initial: Atoms
    final: Atoms
    tetrahedral_site: np.ndarray
    moving_index: int
    removed_li_position: np.ndarray
    cation: str


def migration_endpoints(
    atoms: Atoms,
    *,
    cation: str = "Co",
    moving_index: int | None = None,
) -> MigrationEndpoints:
    """Build end points for a TM-layer -> Li-layer jump of ``cation`` (upwards along +z).

    The destination is a Li site of the Li layer above the cation whose octahedron shares a face
    with the tetrahedral site above the cation; that Li is removed. The tetrahedral site is the
    centroid of the three O above the cation (the shared face) and the O of the next layer
    directly above it.

    Parameters
    ----------
    atoms : ase.Atoms
        A layered cell with c along +z (e.g. from :func:`layerscope.crystal.bulk`).
    cation : str
        Element that migrates (Co, Ni or Mn).
    moving_index : int, optional
        Which atom; default: the ``cation`` atom closest to the centre of the cell.

    Returns
    -------
    MigrationEndpoints
    """
    from ase.neighborlist import neighbor_list

    symbols = np.array(atoms.get_chemical_symbols())
    if cation not in ("Co", "Ni", "Mn"):
        raise InputError(f"cation={cation!r} is not a transition metal of the layered oxide; use Co, Ni or Mn")
    candidates = np.flatnonzero(symbols == cation)
    if len(candidates) == 0:
        raise InputError(f"the cell holds no {cation}; choose a cation present in the cell")
    if moving_index is None:
        centre = atoms.cell.array.sum(axis=0) / 2
        moving_index = int(candidates[np.argmin(np.linalg.norm(atoms.positions[candidates] - centre, axis=1))])
    elif symbols[moving_index] != cation:
        raise InputError(f"atom {moving_index} is {symbols[moving_index]}, not {cation}")
    i, j, D = neighbor_list("ijD", atoms, 3.2)
    mine = i == moving_index
    nb, vec = j[mine], D[mine]
    o_up = (symbols[nb] == "O") & (vec[:, 2] > 0.3) & (np.linalg.norm(vec, axis=1) < _BOND_A)
    if o_up.sum() != 3:
        raise InputError(f"{cation} {moving_index} does not sit in an octahedron with three O above it; "
                         f"give a layered cell with c along +z")
    face = atoms.positions[moving_index] + vec[o_up]
    li_up = (symbols[nb] == "Li") & (vec[:, 2] > 1.0)
    if not np.any(li_up):
        raise InputError(f"no Li above {cation} {moving_index} to make room for the jump; use a cell with a "
                         f"lithiated Li layer above the cation")
    # the destination: the Li above whose in-plane offset is smallest (face-sharing neighbours)
    cand = np.flatnonzero(li_up)
    dest_k = cand[np.argmin(np.linalg.norm(vec[cand, :2], axis=1) + 0.01 * np.arange(len(cand)))]
    dest_index = int(nb[dest_k])
    dest_pos = atoms.positions[moving_index] + vec[dest_k]
    # apex: the O bonded to the destination Li that lies closest to the cation's column, above the face
    li_mask = i == dest_index
    li_nb, li_vec = j[li_mask], D[li_mask]
    o_li = (symbols[li_nb] == "O") & (np.linalg.norm(li_vec, axis=1) < _BOND_A)
    o_pos = dest_pos + li_vec[o_li]
    above = o_pos[:, 2] > face[:, 2].mean() + 0.5
    if not np.any(above):
        raise InputError("could not find the apex O of the tetrahedral site; the cell is not layered along z")
    o_pos = o_pos[above]
    apex = o_pos[np.argmin(np.linalg.norm(o_pos[:, :2] - atoms.positions[moving_index, :2], axis=1))]
    tet = np.vstack([face, apex]).mean(axis=0)
    initial = atoms.copy()
    del initial[dest_index]
    new_moving = moving_index - (1 if dest_index < moving_index else 0)
    final = initial.copy()
    final.positions[new_moving] = dest_pos
    for at in (initial, final):
        at.info["migration"] = {"cation": cation, "moving_index": new_moving,
                                "tetrahedral_site_A": tet.tolist(), "destination_A": dest_pos.tolist()}
    return MigrationEndpoints(initial=initial, final=final, tetrahedral_site=tet, moving_index=new_moving,
                              removed_li_position=dest_pos, cation=cation)


@dataclass
class NEBResult:
    """A (climbing-image) NEB band and its barrier.

    Attributes
    ----------
    images : list of ase.Atoms
        The band, end points included (calculators detached).
    energies_eV : numpy.ndarray
        Image energies relative to the initial state.
    path_A : numpy.ndarray
        Cumulative distance along the band (Å, all atoms, minimum image).
    barrier_eV : float
        max(energies) - E(initial).
    reaction_energy_eV : float
        E(final) - E(initial).
    converged : bool
    steps : int
    max_force_eV_per_A : float
        Largest NEB force at the last step.
    endpoint_converged : bool
        Both end-point relaxations converged.
    """

    images: list[Atoms]
    energies_eV: np.ndarray
    path_A: np.ndarray
    barrier_eV: float
    reaction_energy_eV: float
    converged: bool
    steps: int
    max_force_eV_per_A: float
    endpoint_converged: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)


def _band_path(images: list[Atoms]) -> np.ndarray:
    from ase.geometry import find_mic

    s = [0.0]
    for a, b in zip(images[:-1], images[1:]):
        d, _ = find_mic(b.positions - a.positions, a.cell, a.pbc)
        s.append(s[-1] + float(np.linalg.norm(d)))
    return np.array(s)


def run_neb(
    initial: Atoms,
    final: Atoms,
    source: CalculatorSource,
    *,
    n_images: int = 4,
    via: tuple[int, np.ndarray] | None = None,
    fixed_indices: np.ndarray | list[int] | None = None,
    fmax_eV_per_A: float = 0.05,
    max_steps: int = 300,
    climb: bool = True,
    spring_eV_per_A2: float = 0.1,
) -> NEBResult:
    """Climbing-image NEB between relaxed end points, one calculator per image.

    Parameters
    ----------
    initial, final : ase.Atoms
        Relaxed end points with the same atoms in the same order.
    source : CalculatorSource
        Hands out a calculator per image (sharing one model).
    n_images : int
        Intermediate images (the seed study: 4).
    via : tuple (int, array), optional
        ``(atom_index, position)``: that atom starts on the piecewise-linear path through that
        position (the tetrahedral site) and the other atoms are placed by IDPP around it; without
        ``via`` the whole band is IDPP-interpolated.
    fixed_indices : array of int, optional
        Atoms held fixed in every image.
    fmax_eV_per_A : float
        Convergence on the largest NEB force.
    max_steps : int
    climb : bool
        Climbing image after a first plain-NEB stage to 0.5 eV/Å (or a third of the steps).
    spring_eV_per_A2 : float

    Returns
    -------
    NEBResult
    """
    from ase.constraints import FixAtoms
    from ase.mep import NEB
    from ase.optimize import FIRE

    if len(initial) != len(final) or initial.get_chemical_symbols() != final.get_chemical_symbols():
        raise InputError("initial and final states must hold the same atoms in the same order")
    if n_images < 1:
        raise InputError(f"n_images={n_images} must be at least 1")
    images = [initial.copy()] + [initial.copy() for _ in range(n_images)] + [final.copy()]
    neb = NEB(images, k=spring_eV_per_A2, climb=False, method="improvedtangent", allow_shared_calculator=False)
    if via is None:
        neb.interpolate(method="idpp", mic=True)
    else:
        from ase.mep.neb import idpp_interpolate

        idx, pos = via
        _piecewise(images, idx, np.asarray(pos, dtype=float))
        # IDPP moves the other atoms around the piecewise path; the moving atom stays on it
        for img in images[1:-1]:
            img.set_constraint(FixAtoms(indices=[idx]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # idpp_interpolate builds an NEB without a method
            idpp_interpolate(images, traj=None, log=None, mic=True)
        for img in images[1:-1]:
            img.set_constraint()
    for img in images:
        img.calc = source.calculator()
        if fixed_indices is not None and len(fixed_indices):
            img.set_constraint(FixAtoms(indices=np.asarray(fixed_indices, dtype=int)))
    steps = 0
    opt = FIRE(neb, logfile=None)
    stage1 = max(1, max_steps // 3) if climb else max_steps
    converged = bool(opt.run(fmax=0.5 if climb else fmax_eV_per_A, steps=stage1))
    steps += opt.nsteps
    if climb:
        neb.climb = True
        opt = FIRE(neb, logfile=None)
        converged = bool(opt.run(fmax=fmax_eV_per_A, steps=max(0, max_steps - steps)))
        steps += opt.nsteps
    energies = np.array([img.get_potential_energy() for img in images])
    fmax_now = float(np.sqrt((neb.get_forces() ** 2).sum(axis=1).max())) if n_images else 0.0
    out_images = []
    for img in images:
        c = img.copy()
        c.calc = None
        c.set_constraint()
        out_images.append(c)
    rel = energies - energies[0]
    return NEBResult(images=out_images, energies_eV=rel, path_A=_band_path(out_images), barrier_eV=float(rel.max()),
                     reaction_energy_eV=float(rel[-1]), converged=converged, steps=int(steps),
                     max_force_eV_per_A=fmax_now,
                     parameters={"n_images": n_images, "fmax_eV_per_A": fmax_eV_per_A, "max_steps": max_steps,
                                 "climb": climb, "spring_eV_per_A2": spring_eV_per_A2, "calculator": source.name})


def _piecewise(images: list[Atoms], index: int, via: np.ndarray) -> None:
    """Place intermediate images on initial -> via -> final for atom ``index`` (others linear)."""
    from ase.geometry import find_mic

    first, last = images[0], images[-1]
    n = len(images) - 1
    d_all, _ = find_mic(last.positions - first.positions, first.cell, first.pbc)
    a = first.positions[index]
    d1, _ = find_mic(via - a, first.cell, first.pbc)
    d2, _ = find_mic(last.positions[index] - (a + d1), first.cell, first.pbc)
    l1, l2 = np.linalg.norm(d1), np.linalg.norm(d2)
    for k in range(1, n):
        t = k / n
        images[k].positions = first.positions + t * d_all
        s = t * (l1 + l2)
        images[k].positions[index] = a + d1 * (s / l1) if s <= l1 else a + d1 + d2 * ((s - l1) / l2)


def migration_barrier(
    host: Atoms,
    source: CalculatorSource,
    *,
    cation: str = "Co",
    gliding: float = 0.0,
    direction: Literal["[100]", "[120]"] = "[100]",
    n_images: int = 4,
    relax_radius_A: float | None = 6.0,
    fmax_eV_per_A: float = 0.05,
    max_steps: int = 300,
    endpoint_steps: int = 300,
    moving_index: int | None = None,
) -> NEBResult:
    """CI-NEB barrier of one cation jump in ``host`` with the slab above the Li layer glided.

    Parameters
    ----------
    host : ase.Atoms
        A relaxed layered cell, c along +z.
    source : CalculatorSource
    cation : str
    gliding : float
        Shift of the upper slab as a fraction of a (0.02 = 2 %).
    direction : {"[100]", "[120]"}
    n_images : int
    relax_radius_A : float or None
        Atoms farther than this from the migrating cation are fixed (keeps the imposed glide);
        None relaxes all atoms at fixed cell.
    fmax_eV_per_A, max_steps : float, int
        NEB convergence.
    endpoint_steps : int
        Steps of each end-point relaxation.
    moving_index : int, optional

    Returns
    -------
    NEBResult
        ``parameters`` include the gliding state and the glide plane.
    """
    ends = migration_endpoints(host, cation=cation, moving_index=moving_index)
    a_lat = layered_lattice_parameters(host)[0]
    m = ends.moving_index
    # glide plane: between the destination Li layer and the O layer above it
    z_dest = ends.removed_li_position[2]
    o_z = host.positions[np.array(host.get_chemical_symbols()) == "O", 2]
    above = o_z[o_z > z_dest + 0.3]
    z_o_up = above.min() if len(above) else z_dest + 1.3
    plane = float(0.5 * (z_dest + z_o_up))
    initial, final, tet = ends.initial, ends.final, ends.tetrahedral_site.copy()
    if gliding != 0.0:
        initial = apply_gliding(initial, fraction=gliding, plane_z_A=plane, direction=direction, lattice_a_A=a_lat)
        final = apply_gliding(final, fraction=gliding, plane_z_A=plane, direction=direction, lattice_a_A=a_lat)
        if tet[2] > plane:
            tet = tet + np.asarray(initial.info["gliding"]["shift_A"])
    fixed = None
    if relax_radius_A is not None:
        from ase.geometry import get_distances

        _, d = get_distances(initial.positions[m], initial.positions, cell=initial.cell, pbc=True)
        fixed = np.flatnonzero(d[0] > relax_radius_A)
    ri = relax(initial, source, fmax_eV_per_A=fmax_eV_per_A, max_steps=endpoint_steps, fixed_indices=fixed)
    rf = relax(final, source, fmax_eV_per_A=fmax_eV_per_A, max_steps=endpoint_steps, fixed_indices=fixed)
    res = run_neb(ri.atoms, rf.atoms, source, n_images=n_images, via=(m, tet), fixed_indices=fixed,
                  fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps)
    res.endpoint_converged = bool(ri.converged and rf.converged)
    res.parameters.update({"cation": cation, "gliding": float(gliding), "direction": direction,
                           "glide_plane_z_A": plane, "relax_radius_A": relax_radius_A, "n_atoms": len(ri.atoms),
                           "moving_index": int(m)})
    return res


def _barrier_task(item: tuple[float, str], **kwargs: Any) -> NEBResult:
    gliding, direction = item
    return migration_barrier(gliding=gliding, direction=direction, **kwargs)


def barrier_vs_gliding(
    host: Atoms,
    source: CalculatorSource,
    *,
    gliding: list[float],
    directions: list[str] = ("[100]",),
    scheduler: Any = None,
    progress: bool = True,
    **kwargs: Any,
) -> tuple[pd.DataFrame, list[NEBResult]]:
    """Migration barrier for every gliding ratio and direction (one NEB per task, in parallel).

    Parameters
    ----------
    host : ase.Atoms
    source : CalculatorSource
    gliding : list of float
        Gliding ratios (fractions of a).
    directions : list of str
        ``"[100]"`` and/or ``"[120]"`` (perpendicular in-plane).
    scheduler, progress
        See :func:`layerscope.parallel.map_tasks`.
    **kwargs
        Passed to :func:`migration_barrier` (cation, n_images, relax_radius_A, fmax_eV_per_A, ...).

    Returns
    -------
    tuple
        A table (``gliding``, ``direction``, ``barrier_eV``, ``reaction_energy_eV``, ``converged``,
        ``endpoint_converged``, ``steps``, ``max_force_eV_per_A``) and the NEB results in the same order.
    """
    from layerscope.parallel import map_tasks

    items = [(float(g), str(d)) for d in directions for g in gliding]
    results = map_tasks(_barrier_task, items, scheduler=scheduler, progress=progress, description="NEB",
                        host=host, source=source, **kwargs)
    table = pd.DataFrame([{"gliding": g, "direction": d, "barrier_eV": r.barrier_eV,
                           "reaction_energy_eV": r.reaction_energy_eV, "converged": r.converged,
                           "endpoint_converged": r.endpoint_converged, "steps": r.steps,
                           "max_force_eV_per_A": r.max_force_eV_per_A}
                          for (g, d), r in zip(items, results)])
    return table, results


# --------------------------------------------------------------------------------------------
# The whole protocol: barrier vs gliding, figures, report
# --------------------------------------------------------------------------------------------
#: The seed study (LiCoO2, PBE+U, 4 images): barrier at zero gliding and the minimum (1-3 % gliding), eV.
PAPER_BARRIER_EV = {"no_gliding": 2.33, "minimum": 0.96}


@dataclass
class GlidingStudy:
    """Barrier against gliding ratio (and direction) for one cation jump.

    ``options`` are the :class:`~layerscope.atomistic.options.NEBOptions` it ran with and
    ``provenance`` the one record of the run (built by :func:`analyse_gliding`).
    """

    table: pd.DataFrame
    results: list[NEBResult]
    composition: str
    potential: str
    bulk_lattice_A: tuple[float, float]
    parameters: dict[str, Any] = field(default_factory=dict)
    options: NEBOptions | None = None
    provenance: Any = None

    def profiles(self) -> pd.DataFrame:
        """Long table of every band: gliding, direction, image, path (Å), energy (eV)."""
        rows = []
        for (_, r), res in zip(self.table.iterrows(), self.results):
            for k, (s, e) in enumerate(zip(res.path_A, res.energies_eV)):
                rows.append({"gliding": r["gliding"], "direction": r["direction"], "image": k, "path_A": float(s),
                             "energy_eV": float(e)})
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """Key numbers (JSON-safe)."""
        t = self.table
        out = {"composition": self.composition, "potential": self.potential, "n_bands": int(len(t)),
               "n_unconverged": int((~t["converged"].astype(bool)).sum()),
               "bulk_a_A": self.bulk_lattice_A[0], "bulk_c_A": self.bulk_lattice_A[1],
               "paper_barrier_no_gliding_eV": PAPER_BARRIER_EV["no_gliding"],
               "paper_barrier_minimum_eV": PAPER_BARRIER_EV["minimum"]}
        for d, sub in t.groupby("direction"):
            out[f"barrier_eV_{d}"] = {f"{g:g}": float(b) for g, b in zip(sub["gliding"], sub["barrier_eV"])}
        return out

    def figure(self):
        """Barrier vs gliding ratio per direction, and the energy profiles."""
        import matplotlib.pyplot as plt

        from layerscope.report.figures import OKABE_ITO, legend_outside

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
        for d, sub in self.table.groupby("direction"):
            conv = sub["converged"].astype(bool).to_numpy()
            line, = ax1.plot(100 * sub["gliding"], sub["barrier_eV"], "-o", label=f"{self.potential} {d}")
            if (~conv).any():
                ax1.plot(100 * sub["gliding"][~conv], sub["barrier_eV"][~conv], "x", ms=10, color=OKABE_ITO[1],
                         label="not converged")
        ax1.axhline(PAPER_BARRIER_EV["no_gliding"], color="0.3", ls="--", lw=1, label="seed: 2.33 eV (0 %)")
        ax1.axhline(PAPER_BARRIER_EV["minimum"], color="0.6", ls=":", lw=1, label="seed: 0.96 eV (1-3 %)")
        ax1.set_xlabel("gliding (% of a)")
        ax1.set_ylabel("migration barrier (eV)")
        legend_outside(ax1, where="below", ncol=2)
        for (_, r), res in zip(self.table.iterrows(), self.results):
            ax2.plot(res.path_A, res.energies_eV, "-o", ms=3, label=f"{100 * r['gliding']:g} % {r['direction']}")
        ax2.set_xlabel("path length (Å)")
        ax2.set_ylabel("E - E(initial) (eV)")
        legend_outside(ax2, where="right", ncol=1 if len(self.results) <= 12 else 2)
        fig.tight_layout()
        return fig

    @writes_folder()
    def write(self, out_dir, provenance) -> None:
        """barriers.csv, profiles.csv, band_*.extxyz, barrier_vs_gliding.png, summary.json, provenance.json."""
        from pathlib import Path

        from ase.io import write as ase_write

        from layerscope.io.output import write_summary, write_table
        from layerscope.report import figure_to_png

        out_dir = Path(out_dir)
        write_table(self.table, out_dir / "barriers.csv")
        write_table(self.profiles(), out_dir / "profiles.csv")
        for (_, r), res in zip(self.table.iterrows(), self.results):
            tag = f"{r['direction'].strip('[]')}_{r['gliding']:.4f}"
            images = []
            for img in res.images:
                c = img.copy()
                c.info = {}
                images.append(c)
            ase_write(out_dir / f"band_{tag}.extxyz", images)
        (out_dir / "barrier_vs_gliding.png").write_bytes(figure_to_png(self.figure()))
        write_summary(out_dir, {**self.summary(), "parameters": self.parameters}, provenance)

    def section(self, provenance=None):
        """A report section."""
        from layerscope.report import Figure, Section, Table, Value, figure_to_png

        text = (f"CI-NEB barrier of the {self.parameters.get('cation', 'Co')} jump TM-layer octahedron -> "
                f"tetrahedron -> Li-layer octahedron in {self.composition} ({self.parameters.get('n_atoms', '?')} "
                f"atoms, {self.potential}) against planar gliding of the slab above the Li layer. Seed study "
                f"(PBE+U): 2.33 eV without gliding, minimum 0.96 eV at 1-3 %.")
        metrics = {f"barrier {r['direction']} {100 * r['gliding']:g} % (eV)": Value(r["barrier_eV"], None, "eV")
                   for _, r in self.table.iterrows()}
        ok = self.table[self.table["converged"].astype(bool)]
        if len(ok):
            low = ok.loc[ok["barrier_eV"].idxmin()]
            key = f"lowest converged barrier (eV, one NEB band: {low['direction']} at {100 * low['gliding']:g} % gliding)"
            metrics = {key: Value(low["barrier_eV"], None, "eV"), **metrics}
        return Section(title="Atomistic: migration barrier vs gliding", text=text,
                       figures=[Figure("Barrier vs gliding", figure_to_png(self.figure()),
                                       "Left: barrier per gliding ratio; right: the bands.")],
                       tables=[Table("Barriers", self.table.round(4))], metrics=metrics, provenance=provenance)


def run_gliding_study(
    *,
    composition: str,
    potential: Any,
    cation: str = "Co",
    gliding: list[float],
    directions: list[str] = ("[100]",),
    size: tuple[int, int, int] = (2, 2, 1),
    bulk_size: tuple[int, int, int] = (1, 1, 1),
    n_images: int = 4,
    relax_radius_A: float | None = 6.0,
    fmax_eV_per_A: float = 0.05,
    max_steps: int = 300,
    seed: int = 0,
    scheduler: Any = None,
    progress: bool = True,
) -> GlidingStudy:
    """Relax the bulk with ``potential``, build the supercell, and scan barrier vs gliding.

    A keyword front end of :func:`analyse_gliding`: the keywords become a
    :class:`~layerscope.atomistic.options.NEBOptions` (same names and meaning).

    Parameters
    ----------
    composition : str
        ``"LiCoO2"`` (the seed study) or an NMC composition (:mod:`layerscope.crystal`).
    potential : Potential
    cation : str
    gliding : list of float
        Gliding ratios (fraction of a), e.g. ``[0, 0.01, 0.02, 0.03, 0.05]``.
    directions : list of str
        ``"[100]"`` and/or ``"[120]"``.
    size : tuple of int
        Supercell of the relaxed bulk cell ((2, 2, 1) of LiCoO2: 48 atoms, 47 after the Li removal).
    bulk_size : tuple of int
        Repeats of the crystal module's hexagonal cell for the relaxed bulk (NMC compositions need
        a multiple of 5 (NCM622) or 10 (NCM811) TM sites).
    n_images, relax_radius_A, fmax_eV_per_A, max_steps
        See :func:`migration_barrier`.
    seed : int
        TM ordering of NMC compositions.
    scheduler, progress
        Fan-out over (gliding, direction).

    Returns
    -------
    GlidingStudy
    """
    options = NEBOptions(cation=cation, gliding=tuple(gliding), directions=tuple(directions), composition=composition,
                         potential=None, size=size, bulk_size=bulk_size, n_images=n_images,
                         relax_radius_A=relax_radius_A, fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps, seed=seed)
    return analyse_gliding(potential, options, scheduler=scheduler, progress=progress)


def analyse_gliding(potential: Any, options: NEBOptions | None = None, *, scheduler: Any = None,
                    progress: bool = True) -> GlidingStudy:
    """Relax the bulk, build the supercell and scan the CI-NEB barrier vs gliding (no file I/O).

    Parameters
    ----------
    potential : Potential
        A loaded potential or any calculator source with ``name`` and ``calculator()``.
    options : NEBOptions, optional
        What to compute and how (defaults when None).
    scheduler, progress
        Fan-out over (gliding, direction) (:func:`layerscope.parallel.map_tasks`).

    Returns
    -------
    GlidingStudy
        With one :class:`~layerscope.provenance.Provenance` (every option).
    """
    from layerscope.atomistic.structures import host_bulk
    from layerscope.provenance import Provenance

    o = options if options is not None else NEBOptions(potential=None)
    record = loaded_as(o, potential)  # before any work: a mismatched potential is refused
    bulk0 = host_bulk(o.composition, size=o.bulk_size, seed=o.seed)
    bulk = relax(bulk0, potential, fmax_eV_per_A=0.02, max_steps=300, relax_cell=True, require_convergence=True,
                 optimizer="BFGS")
    a_c = layered_lattice_parameters(bulk.atoms)
    host = bulk.atoms.repeat(o.size)
    table, results = barrier_vs_gliding(host, potential, gliding=list(o.gliding), directions=list(o.directions),
                                        scheduler=scheduler, progress=progress, cation=o.cation, n_images=o.n_images,
                                        relax_radius_A=o.relax_radius_A, fmax_eV_per_A=o.fmax_eV_per_A,
                                        max_steps=o.max_steps)
    params = {"composition": o.composition, "cation": o.cation, "gliding": list(o.gliding),
              "directions": list(o.directions), "size": list(o.size), "bulk_size": list(o.bulk_size),
              "n_images": o.n_images, "relax_radius_A": o.relax_radius_A, "fmax_eV_per_A": o.fmax_eV_per_A,
              "max_steps": o.max_steps, "seed": o.seed, "n_atoms": int(len(host) - 1),
              "potential": getattr(potential, "describe", lambda: {})(),
              "loaded_as": record}
    return GlidingStudy(table=table, results=results, composition=o.composition, potential=potential.name,
                        bulk_lattice_A=(float(a_c[0]), float(a_c[1])), parameters=params, options=o,
                        provenance=Provenance.create([], parameters=params))
