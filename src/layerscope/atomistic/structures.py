"""Atomistic models of layered-oxide cathodes: delithiation ordering, boundaries and gliding.

Bulk phases come from :func:`layerscope.crystal.bulk`; this module turns them into the cells the
atomistic protocols need:

* :func:`delithiate` — remove Li from the Li-layer sites down to ``li_fraction`` and place the
  remaining Li by an electrostatic (Ewald) search: exhaustive enumeration when the number of
  arrangements is small, else seeded simulated annealing on the Ewald pair matrix (the
  "electrostatic Monte Carlo" of the seed study). The pair matrix is pymatgen's
  :class:`~pymatgen.analysis.ewald.EwaldSummation` with unit charges, so that the Ewald energy of
  any charge assignment ``q`` is ``q @ G @ q`` (Ewald, *Ann. Phys.* 369, 253 (1921)).
* :func:`decorate_transition_metals` — the same search for the Ni/Co/Mn arrangement of an NMC
  composition on the TM sites of a boundary cell (formal charges Mn4+, Co3+, Ni by neutrality).
* :func:`twin_boundary` — the Σ3 twin, 60° about c on the (0001) plane (rhombohedral indices
  (1,1,1)), from pymatgen's :class:`~pymatgen.core.interface.GrainBoundaryGenerator`.
* :func:`tilt_boundary` — Σ7 (38.2°) and Σ13 (27.8°) symmetric [0001] tilt boundaries (rotation
  about c, boundary planes (3,-2,-1) and (4,-3,-1) in rhombohedral indices, which contain c), from
  the same generator, with the overlapping atoms it leaves at the boundary removed and the
  Li:TM:O = 1:1:2 stoichiometry restored (:func:`repair_boundary`). Other planes are possible
  but pymatgen then returns asymmetric cells whose grains are one or two atomic planes thick.
* :func:`apply_gliding` — planar gliding: the atoms above a plane shift by ``fraction * a`` along
  [100] (or the perpendicular in-plane [120]) and the cell's c vector tilts by the same shift, so
  that only the chosen plane glides (the periodic image interface is unchanged).

Lengths are in Å (ASE's unit); energies in eV.

References
----------
Tran et al., "Anisotropic work function of elemental crystals" / pymatgen GB generator:
H. Zheng et al., *Acta Mater.* 186, 40 (2020) (grain-boundary database and generator).
Ong et al., *Comput. Mater. Sci.* 68, 314 (2013) (pymatgen).
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms

from layerscope.errors import InputError
from layerscope import linalg as robust_linalg

__all__ = [
    "OrderingResult",
    "layered_lattice_parameters",
    "host_bulk",
    "ewald_pair_matrix",
    "formal_charges",
    "order_sites",
    "delithiate",
    "decorate_transition_metals",
    "twin_boundary",
    "tilt_boundary",
    "repair_boundary",
    "boundary_distance",
    "boundary_geometry",
    "boundary_area_m2",
    "minimum_distance_ratio",
    "apply_gliding",
    "TILT_ANGLES_DEG",
    "TILT_PLANES",
    "bulk_pair_distances",
]

TM_ELEMENTS = ("Co", "Ni", "Mn")
#: Σ value -> rotation angle (degrees) about c of the rhombohedral R-3m lattice (pymatgen
#: ``get_rotation_angle_from_sigma(sigma, (1, 1, 1), "r")``).
TILT_ANGLES_DEG: dict[int, float] = {3: 60.0, 7: 38.21321070173819, 13: 27.79577249602797}
#: Symmetric [0001] tilt planes (rhombohedral indices, containing c) for each Σ: both grains end
#: on the same number of planes per period (sqrt(Σ)·a along the normal: 7.45 Å for Σ7, 10.15 Å for Σ13).
TILT_PLANES: dict[int, tuple[int, int, int]] = {7: (3, -2, -1), 13: (4, -3, -1)}
#: Formal oxidation states of the transition metals in lithiated NMC (Ni takes the remainder).
_FORMAL = {"Mn": 4.0, "Co": 3.0}
#: Fractional z of O (6c) in R-3m LiCoO2 (Co-O 1.92 Å, Li-O 2.09 Å).
_O_Z = 0.2396


# --------------------------------------------------------------------------------------------
# Bulk and lattice parameters
# --------------------------------------------------------------------------------------------
def _layer_heights(heights: np.ndarray, period: float, *, tol_A: float = 0.4) -> np.ndarray:
    """Distinct layer heights (sorted) of periodic coordinates ``heights`` (period ``period``)."""
    h = np.sort(np.mod(heights, period))
    if h.size == 0:
        return h
    groups = [[h[0]]]
    for v in h[1:]:
        if v - groups[-1][-1] > tol_A:
            groups.append([v])
        else:
            groups[-1].append(v)
    if len(groups) > 1 and (groups[0][0] + period - groups[-1][-1]) <= tol_A:
        groups[0] = [v - period for v in groups[-1]] + groups[0]
        groups.pop()
    return np.array([np.mean(g) for g in groups])


def layered_lattice_parameters(atoms: Atoms) -> tuple[float, float]:
    """Hexagonal a and c (Å) of an O3 layered cell whose c vector is the stacking direction.

    ``a`` follows from the in-plane area per O atom of one O layer (area = a²·√3/2 per site);
    ``c`` is the thickness of six O layers (three MO2 slabs), the O3 hexagonal c.

    Parameters
    ----------
    atoms : ase.Atoms
        A bulk cell with cell vectors a, b in the layer plane and c along the stacking.

    Returns
    -------
    tuple of float
        ``(a_A, c_A)``.
    """
    cell = atoms.cell.array
    normal = np.cross(cell[0], cell[1])
    area = float(np.linalg.norm(normal))
    if area == 0:
        raise InputError("atoms has a degenerate cell; give a periodic layered bulk cell")
    normal /= area
    period = abs(float(cell[2] @ normal))
    o = atoms.positions[np.array(atoms.get_chemical_symbols()) == "O"]
    if len(o) == 0:
        raise InputError("atoms holds no O; give a layered oxide LiMO2 cell")
    layers = _layer_heights(o @ normal, period)
    per_layer = len(o) / len(layers)
    a = math.sqrt(area / per_layer / (math.sqrt(3) / 2))
    c = 6 * period / len(layers)
    return a, c


def host_bulk(
    composition: str,
    *,
    size: tuple[int, int, int] = (1, 1, 1),
    tm_order: Literal["ewald", "crystal"] = "ewald",
    seed: int = 0,
) -> Atoms:
    """A fully lithiated O3 bulk cell of ``composition`` from :func:`layerscope.crystal.bulk`.

    Parameters
    ----------
    composition : str
        A formula or alias accepted by :mod:`layerscope.crystal` (``"LiCoO2"``, ``"NCM622"``, ...).
    size : tuple of int
        Repeats of the hexagonal cell (a, a, c = 14 Å) along a1, a2, c.
    tm_order : {"ewald", "crystal"}
        ``"ewald"``: arrange Ni/Co/Mn by minimising the Ewald energy
        (:func:`decorate_transition_metals`); ``"crystal"``: keep the crystal module's
        deterministic evenly-spread decoration.
    seed : int

    Returns
    -------
    ase.Atoms
        With the label arrays ``phase``, ``layer`` and ``site``.
    """
    from layerscope.crystal import bulk, get_composition

    comp = get_composition(composition)
    if set(comp.tm) - set(TM_ELEMENTS):
        raise InputError(f"composition {composition!r} has Li on TM sites; the atomistic protocols take "
                         f"LiMO2 with M = Ni, Co, Mn")
    atoms = bulk(phase="O3", composition=composition, li_fraction=1.0, tm_order="ordered",
                 size=tuple(int(n) for n in size))
    if tm_order == "ewald" and len(comp.tm) > 1:
        atoms = decorate_transition_metals(atoms, fractions=dict(comp.tm), seed=seed)
    elif tm_order not in ("ewald", "crystal"):
        raise InputError(f"tm_order={tm_order!r} is not known; use 'ewald' or 'crystal'")
    return atoms


def _o3_primitive(a_A: float, c_A: float):
    """The 4-atom rhombohedral primitive cell of O3 LiCoO2 with hexagonal a, c (a pymatgen Structure)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conv = Structure.from_spacegroup(166, Lattice.hexagonal(a_A, c_A), ["Li", "Co", "O"],
                                     [[0, 0, 0], [0, 0, 0.5], [0, 0, _O_Z]])
    return SpacegroupAnalyzer(conv).get_primitive_standard_structure()


# --------------------------------------------------------------------------------------------
# Electrostatic ordering
# --------------------------------------------------------------------------------------------
def ewald_pair_matrix(atoms: Atoms, *, accuracy: float = 12.0) -> np.ndarray:
    """Ewald interaction matrix ``G`` (eV) of ``atoms`` for unit charges.

    The Ewald energy of any charge assignment ``q`` (elementary charges, one per atom, summing to
    zero) is ``q @ G @ q``: every term of the Ewald sum is bilinear in the charges. ``G`` is
    pymatgen's ``EwaldSummation.total_energy_matrix`` with all charges +1 (the charged-cell term
    is not included, so neutral subsets are exact), symmetrised.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic cell (dummy ``"X"`` atoms are allowed and treated as sites).
    accuracy : float
        pymatgen's ``acc_factor`` (its default, 12: energies to ~1e-6 relative).

    Returns
    -------
    numpy.ndarray
        Shape (N, N), eV.
    """
    from pymatgen.core import Lattice, Structure
    from pymatgen.core.ewald import EwaldSummation

    structure = Structure(Lattice(atoms.cell.array), ["H"] * len(atoms), atoms.positions,
                          coords_are_cartesian=True, site_properties={"charge": [1.0] * len(atoms)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "structure is charged": intended, see docstring
        ewald = EwaldSummation(structure, acc_factor=accuracy)
        g = np.array(ewald.total_energy_matrix, dtype=float)
    return 0.5 * (g + g.T)


def formal_charges(symbols: list[str] | np.ndarray) -> np.ndarray:
    """Formal charges of a lithiated layered oxide: Li +1, O -2, Mn +4, Co +3, Ni by neutrality.

    Ni takes the charge that makes the cell neutral (Ni2+ in Li3NiCoMnO6, Ni2.67+ on average in
    NCM622); without Ni, Co absorbs it. A mean-field valence: adequate for electrostatic ordering,
    not a statement about localised Ni2+/Ni3+.
    """
    symbols = np.asarray(symbols)
    q = np.zeros(len(symbols))
    q[symbols == "Li"] = 1.0
    q[symbols == "O"] = -2.0
    for el, v in _FORMAL.items():
        q[symbols == el] = v
    unknown = set(symbols) - {"Li", "O", "X", *TM_ELEMENTS}
    if unknown:
        raise InputError(f"elements {sorted(unknown)} are not handled; layered oxides of Li, Ni, Co, Mn, O only")
    absorber = "Ni" if np.any(symbols == "Ni") else "Co"
    n_abs = int(np.sum(symbols == absorber))
    if n_abs == 0:
        raise InputError("the cell holds no transition metal to balance the charge; give a LiMO2 cell")
    q[symbols == absorber] = (-(q.sum() - q[symbols == absorber].sum())) / n_abs
    return q


@dataclass
class OrderingResult:
    """The arrangement an electrostatic search chose.

    Attributes
    ----------
    labels : numpy.ndarray of str
        Species on each searched site, in the order of ``site_indices``.
    energy_eV : float
        Ewald energy of the whole cell with that arrangement.
    random_mean_eV, random_std_eV : float
        Mean and spread of the Ewald energy over 64 random arrangements (how much ordering matters).
    method : str
        ``"exhaustive"`` or ``"annealing"``.
    n_evaluated : int
        Arrangements enumerated (exhaustive) or swaps attempted (annealing).
    """

    labels: np.ndarray
    energy_eV: float
    random_mean_eV: float
    random_std_eV: float
    method: str
    n_evaluated: int


def order_sites(
    pair_matrix: np.ndarray,
    charges: np.ndarray,
    site_indices: np.ndarray,
    species_charges: dict[str, float],
    species_counts: dict[str, int],
    *,
    seed: int,
    method: Literal["auto", "exhaustive", "annealing"] = "auto",
    max_enumeration: int = 20000,
    n_restarts: int = 6,
    n_sweeps: int = 150,
) -> OrderingResult:
    """Place species on sites to minimise the Ewald energy ``q @ G @ q``.

    Parameters
    ----------
    pair_matrix : numpy.ndarray
        ``G`` from :func:`ewald_pair_matrix` (N, N), eV.
    charges : numpy.ndarray
        Charges of all N atoms; entries at ``site_indices`` are overwritten.
    site_indices : numpy.ndarray of int
        The sites to fill.
    species_charges : dict of str to float
        Charge of each species (a vacancy ``"X"`` has 0).
    species_counts : dict of str to int
        How many sites each species takes (summing to ``len(site_indices)``).
    seed : int
        Random seed (annealing and the random baseline).
    method : {"auto", "exhaustive", "annealing"}
        ``"auto"``: exhaustive when a two-species problem has at most ``max_enumeration``
        arrangements, else annealing.
    max_enumeration : int
    n_restarts, n_sweeps : int
        Annealing restarts and sweeps (one sweep = one attempted swap per site); the temperature
        falls geometrically from the spread of random swap energies to 1e-4 eV, then a greedy
        pass removes any remaining downhill swap.

    Returns
    -------
    OrderingResult

    References
    ----------
    Kirkpatrick, Gelatt & Vecchi, *Science* 220, 671 (1983) (simulated annealing).
    """
    rng = np.random.default_rng(seed)
    sites = np.asarray(site_indices, dtype=int)
    names = list(species_counts)
    if sum(species_counts.values()) != len(sites):
        raise InputError(f"species counts {species_counts} do not add up to the {len(sites)} sites")
    g = pair_matrix
    q0 = np.asarray(charges, dtype=float).copy()
    q0[sites] = 0.0
    site_q = np.array([species_charges[n] for n in names])
    base_labels = np.concatenate([np.full(species_counts[n], i) for i, n in enumerate(names)]).astype(int)

    def energy(label_idx: np.ndarray) -> float:
        q = q0.copy()
        q[sites] = site_q[label_idx]
        return float(q @ g @ q)

    randoms = np.array([energy(rng.permutation(base_labels)) for _ in range(64)])
    n_kinds = sum(1 for n in names if species_counts[n] > 0)
    if n_kinds <= 1:  # nothing to arrange
        return OrderingResult(labels=np.array(names, dtype=object)[base_labels].astype(str),
                              energy_eV=energy(base_labels), random_mean_eV=float(randoms.mean()),
                              random_std_eV=0.0, method="trivial", n_evaluated=1)
    n_arr = math.comb(len(sites), min(species_counts.values())) if len(names) == 2 else math.inf
    if method == "auto":
        method = "exhaustive" if n_kinds <= 2 and n_arr <= max_enumeration else "annealing"
    if method == "exhaustive":
        if len(names) != 2 or n_arr > 5 * max_enumeration:
            raise InputError(
                f"exhaustive ordering needs two species and at most {5 * max_enumeration} arrangements "
                f"(here {n_arr}); use method='annealing'"
            )
        labels, e_best, n_eval = _exhaustive(g, q0, sites, site_q, base_labels)
    elif method == "annealing":
        labels, e_best, n_eval = _anneal(g, q0, sites, site_q, base_labels, rng, n_restarts, n_sweeps)
    else:
        raise InputError(f"method={method!r} is not known; use 'auto', 'exhaustive' or 'annealing'")
    return OrderingResult(labels=np.array(names, dtype=object)[labels].astype(str), energy_eV=float(e_best),
                          random_mean_eV=float(randoms.mean()), random_std_eV=float(randoms.std()),
                          method=method, n_evaluated=int(n_eval))


def _exhaustive(g, q0, sites, site_q, base_labels):
    """All arrangements of two species: enumerate the positions of the minority species."""
    counts = np.bincount(base_labels, minlength=2)
    m = int(np.argmin(counts))  # minority label
    other = 1 - m
    k = int(counts[m])
    dq = site_q[m] - site_q[other]
    q_base = q0.copy()
    q_base[sites] = site_q[other]
    e_base = float(q_base @ g @ q_base)
    lin = 2 * dq * (g[sites] @ q_base)
    quad = dq**2 * g[np.ix_(sites, sites)]
    best_e, best_combo, n_eval = math.inf, (), 0
    combos = itertools.combinations(range(len(sites)), k)
    while True:
        chunk = np.array(list(itertools.islice(combos, 4096)), dtype=int).reshape(-1, k)
        if len(chunk) == 0:
            break
        e = e_base + lin[chunk].sum(axis=1) + quad[chunk[:, :, None], chunk[:, None, :]].sum(axis=(1, 2))
        n_eval += len(chunk)
        i = int(np.argmin(e))
        if e[i] < best_e:
            best_e, best_combo = float(e[i]), tuple(chunk[i])
    labels = np.full(len(sites), other, dtype=int)
    labels[list(best_combo)] = m
    return labels, best_e, n_eval


def _anneal(g, q0, sites, site_q, base_labels, rng, n_restarts, n_sweeps):
    """Simulated annealing with swap moves on the Ewald pair matrix."""
    gss = g[np.ix_(sites, sites)]
    diag = np.diag(gss)
    best_e, best_lab, n_eval = math.inf, None, 0
    n = len(sites)
    for _ in range(max(1, n_restarts)):
        lab = rng.permutation(base_labels)
        q = q0.copy()
        q[sites] = site_q[lab]
        v = g[sites] @ q  # potential at the sites (times 1/2 of dE/dq)
        e = float(q @ g @ q)
        # temperature scale from random swap energies
        trial = []
        for _ in range(min(64, 4 * n)):
            i, j = rng.integers(n, size=2)
            if lab[i] != lab[j]:
                trial.append(abs(_swap_delta(i, j, lab, site_q, v, gss, diag)))
        t_hi = max(np.std(trial) if trial else 1.0, 1e-3)
        n_steps = max(1, n_sweeps * n)
        temps = t_hi * (1e-4 / t_hi) ** (np.arange(n_steps) / max(1, n_steps - 1))
        pairs = rng.integers(n, size=(n_steps, 2))
        accept_u = rng.random(n_steps)
        for step in range(n_steps):
            i, j = pairs[step]
            if lab[i] == lab[j]:
                continue
            de = _swap_delta(i, j, lab, site_q, v, gss, diag)
            n_eval += 1
            if de <= 0 or accept_u[step] < math.exp(-de / temps[step]):
                e += de
                _apply_swap(i, j, lab, site_q, v, gss)
        # greedy descent: apply the best downhill swap until none is left
        while True:
            qs = site_q[lab]
            dq = qs[None, :] - qs[:, None]  # dq[i, j] = q_j - q_i (change at i when swapping)
            de_all = (2 * dq * v[:, None] + 2 * (-dq) * v[None, :] + dq**2 * diag[:, None]
                      + dq**2 * diag[None, :] - 2 * dq**2 * gss)
            i, j = np.unravel_index(np.argmin(de_all), de_all.shape)
            if de_all[i, j] >= -1e-9:
                break
            e += float(de_all[i, j])
            _apply_swap(i, j, lab, site_q, v, gss)
        q_end = _full_q(q0, sites, site_q, lab)
        e = float(q_end @ g @ q_end)
        if e < best_e:
            best_e, best_lab = e, lab.copy()
    return best_lab, best_e, n_eval


def _full_q(q0, sites, site_q, lab):
    q = q0.copy()
    q[sites] = site_q[lab]
    return q


def _swap_delta(i, j, lab, site_q, v, gss, diag) -> float:
    """Energy change of exchanging the species on sites i and j (O(1) with the site potentials v)."""
    di = site_q[lab[j]] - site_q[lab[i]]
    dj = -di
    return float(2 * di * v[i] + 2 * dj * v[j] + di**2 * diag[i] + dj**2 * diag[j] + 2 * di * dj * gss[i, j])


def _apply_swap(i, j, lab, site_q, v, gss) -> None:
    di = site_q[lab[j]] - site_q[lab[i]]
    v += di * gss[:, i] - di * gss[:, j]
    lab[i], lab[j] = lab[j], lab[i]


# --------------------------------------------------------------------------------------------
# Delithiation and TM decoration
# --------------------------------------------------------------------------------------------
def _site_kinds(atoms: Atoms) -> np.ndarray:
    """``"Li"``, ``"TM"`` or ``"O"`` per atom: the crystal labels when present, else by element."""
    if "site" in atoms.arrays:
        return np.asarray(atoms.arrays["site"]).astype(str)
    symbols = np.array(atoms.get_chemical_symbols())
    kinds = np.where(symbols == "O", "O", np.where(symbols == "Li", "Li", "TM"))
    kinds[symbols == "X"] = "Li"
    return kinds


def delithiate(
    atoms: Atoms,
    *,
    li_fraction: float,
    seed: int,
    method: Literal["auto", "exhaustive", "annealing"] = "auto",
    max_enumeration: int = 20000,
    n_restarts: int = 6,
    n_sweeps: int = 150,
) -> Atoms:
    """Keep ``li_fraction`` of the Li-layer sites occupied, the Li placed by an Ewald search.

    Parameters
    ----------
    atoms : ase.Atoms
        A layered oxide cell. Li-layer sites are the Li atoms (and the vacancies recorded in
        ``info["vacancies"]``) whose ``site`` label is ``"Li"`` (every Li when unlabelled).
    li_fraction : float
        Fraction of those sites left occupied; ``li_fraction * n_sites`` must be whole.
    seed : int
        Random seed of the search.
    method, max_enumeration, n_restarts, n_sweeps
        See :func:`order_sites`.

    Returns
    -------
    ase.Atoms
        The delithiated cell; the emptied sites are appended to ``info["vacancies"]`` (the crystal
        module's convention) and ``info["li_ordering"]`` records the search (method, Ewald energy of
        the chosen arrangement and of random ones).

    Notes
    -----
    Charges: Li +1, O -2, formal TM charges of the lithiated cell (:func:`formal_charges`) raised
    uniformly by the removed charge (a mean-field TM valence).

    Raises
    ------
    InputError
        When ``li_fraction`` cannot be realised with whole atoms in this cell (the message gives
        the nearest achievable fractions).
    """
    from layerscope.crystal.composition import li_count
    from layerscope.crystal.labels import split_vacancies, with_vacancies

    labelled = all(k in atoms.arrays for k in ("phase", "layer", "site"))
    full = with_vacancies(atoms) if labelled else atoms.copy()
    symbols = np.array(full.get_chemical_symbols())
    kinds = _site_kinds(full)
    sites = np.flatnonzero((kinds == "Li") & np.isin(symbols, ["Li", "X"]))
    if len(sites) == 0:
        raise InputError("the cell has no Li-layer Li sites to delithiate; give a LiMO2 cell")
    n_keep = li_count(li_fraction, len(sites))
    lithiated = symbols.copy()
    lithiated[sites] = "Li"
    q = formal_charges(lithiated)
    is_tm = np.isin(lithiated, TM_ELEMENTS)
    q[is_tm] += (len(sites) - n_keep) / is_tm.sum()
    g = ewald_pair_matrix(full)
    res = order_sites(g, q, sites, {"Li": 1.0, "X": 0.0}, {"Li": n_keep, "X": len(sites) - n_keep},
                      seed=seed, method=method, max_enumeration=max_enumeration, n_restarts=n_restarts,
                      n_sweeps=n_sweeps)
    symbols[sites] = res.labels
    full.set_chemical_symbols(symbols.tolist())
    out = split_vacancies(full) if labelled else full[symbols != "X"]
    out.info = copy.deepcopy(out.info)
    if not labelled:
        out.info["vacancies"] = {"positions": full.positions[symbols == "X"].copy()}
    out.info["li_ordering"] = {
        "li_fraction": float(li_fraction), "n_li_sites": int(len(sites)), "n_li": int(n_keep),
        "method": res.method, "ewald_energy_eV": res.energy_eV, "random_mean_eV": res.random_mean_eV,
        "random_std_eV": res.random_std_eV, "n_evaluated": res.n_evaluated, "seed": int(seed),
    }
    return out


def decorate_transition_metals(
    atoms: Atoms,
    *,
    fractions: dict[str, float],
    seed: int,
    tolerance: float = 0.02,
    n_restarts: int = 6,
    n_sweeps: int = 150,
) -> Atoms:
    """Arrange Ni/Co/Mn on the TM-layer sites of ``atoms`` by minimising the Ewald energy.

    Parameters
    ----------
    atoms : ase.Atoms
        A layered oxide cell (e.g. a boundary built from the LiCoO2 prototype).
    fractions : dict of str to float
        TM-site fractions, e.g. ``{"Ni": 0.6, "Co": 0.2, "Mn": 0.2}``.
    seed : int
    tolerance : float
        Largest accepted abs(realised - requested) fraction per species (whole atoms on finite cells).
    n_restarts, n_sweeps : int
        Annealing settings (:func:`order_sites`).

    Returns
    -------
    ase.Atoms
        A copy with the TM species arranged; ``info["tm_ordering"]`` records the search.
    """
    from layerscope.crystal.composition import species_counts

    unknown = set(fractions) - set(TM_ELEMENTS)
    if unknown:
        raise InputError(f"TM fractions {fractions} name unknown elements {sorted(unknown)}; use Ni, Co, Mn")
    out = atoms.copy()
    symbols = np.array(out.get_chemical_symbols())
    sites = np.flatnonzero((_site_kinds(out) == "TM") & np.isin(symbols, TM_ELEMENTS))
    counts = species_counts(fractions, len(sites))
    worst = max(abs(counts[k] / len(sites) - fractions[k]) for k in counts)
    if worst > tolerance:
        raise InputError(f"{len(sites)} TM sites cannot hold {fractions} within {tolerance} per species "
                         f"(worst {worst:.3f}); build a larger cell (repeat or expand_times)")
    trial = symbols.copy()
    trial[sites] = np.concatenate([np.full(n, el) for el, n in counts.items()])
    q = formal_charges(trial)
    species_q = {el: float(q[trial == el][0]) for el in counts if counts[el] > 0}
    counts = {el: n for el, n in counts.items() if n > 0}
    res = order_sites(ewald_pair_matrix(out), q, sites, species_q, counts, seed=seed,
                      method="annealing" if len(counts) > 2 else "auto",
                      n_restarts=n_restarts, n_sweeps=n_sweeps)
    symbols[sites] = res.labels
    out.set_chemical_symbols(symbols.tolist())
    out.info["tm_ordering"] = {"fractions": dict(fractions), "counts": counts, "method": res.method,
                               "ewald_energy_eV": res.energy_eV, "random_mean_eV": res.random_mean_eV,
                               "seed": int(seed)}
    return out


# --------------------------------------------------------------------------------------------
# Boundaries
# --------------------------------------------------------------------------------------------
_CLASS = {"Li": "Li", "O": "O", "Co": "M", "Ni": "M", "Mn": "M"}
_IDEAL = {"Li": 1, "M": 1, "O": 2}


def _classes(atoms: Atoms) -> np.ndarray:
    symbols = atoms.get_chemical_symbols()
    try:
        return np.array([_CLASS[s] for s in symbols])
    except KeyError as err:
        raise InputError(f"element {err} is not handled; layered oxides of Li, Ni, Co, Mn, O only") from err


def bulk_pair_distances(bulk: Atoms) -> dict[tuple[str, str], float]:
    """Nearest distance (Å) between the site classes Li, M (any TM) and O in a bulk cell."""
    from ase.neighborlist import neighbor_list

    cls = _classes(bulk)
    i, j, d = neighbor_list("ijd", bulk, 3.2)
    out: dict[tuple[str, str], float] = {}
    for a, b in itertools.combinations_with_replacement(("Li", "M", "O"), 2):
        m = ((cls[i] == a) & (cls[j] == b)) | ((cls[i] == b) & (cls[j] == a))
        if not np.any(m):
            raise InputError(f"the reference bulk has no {a}-{b} pair within 3.2 Å; give an O3 LiMO2 cell")
        out[(a, b)] = out[(b, a)] = float(d[m].min())
    return out


def minimum_distance_ratio(atoms: Atoms, reference: dict[tuple[str, str], float]) -> float:
    """Smallest interatomic distance divided by the bulk distance of the same class pair."""
    from ase.neighborlist import neighbor_list

    cls = _classes(atoms)
    i, j, d = neighbor_list("ijd", atoms, max(reference.values()))
    if len(d) == 0:
        return math.inf
    ref = np.array([reference[(a, b)] for a, b in zip(cls[i], cls[j])])
    return float((d / ref).min())


def boundary_geometry(atoms: Atoms) -> tuple[np.ndarray, float, np.ndarray]:
    """Normal, period along the normal (Å) and plane heights (Å) of the boundaries of ``atoms``.

    Computed from the *current* cell and ``info["boundary"]`` (the two lattice vectors that span
    the boundary plane, as integer combinations of the cell vectors, and the plane heights as
    fractions of the period), so that they follow a cell relaxation.

    Returns
    -------
    tuple
        ``(normal, period_A, heights_A)``.
    """
    info = atoms.info.get("boundary")
    if info is None:
        raise InputError("atoms has no info['boundary']; build it with twin_boundary or tilt_boundary")
    uv = np.asarray(info["plane_lattice"], dtype=float) @ atoms.cell.array
    normal = np.cross(uv[0], uv[1])
    area = float(np.linalg.norm(normal))
    normal /= area
    period = float(abs(atoms.get_volume()) / area)
    return normal, period, np.asarray(info["heights_frac"], dtype=float) * period


def boundary_distance(atoms: Atoms) -> np.ndarray:
    """Distance (Å) of every atom from the nearest boundary plane (:func:`boundary_geometry`)."""
    normal, period, heights = boundary_geometry(atoms)
    h = atoms.positions @ normal
    d = [np.abs(np.mod(h - hk + period / 2, period) - period / 2) for hk in heights]
    return np.min(d, axis=0)


def boundary_area_m2(atoms: Atoms) -> float:
    """Area of one boundary plane in the cell (m²)."""
    normal, period, _ = boundary_geometry(atoms)
    return float(abs(atoms.get_volume()) / period * 1e-20)


def repair_boundary(
    atoms: Atoms,
    *,
    reference: dict[tuple[str, str], float],
    overlap_fraction: float = 0.8,
    max_removed_fraction: float = 0.15,
) -> tuple[Atoms, dict[str, int]]:
    """Remove overlapping atoms at a boundary and restore the Li:M:O = 1:1:2 stoichiometry.

    1. While two atoms are closer than ``overlap_fraction`` times the bulk distance of their
       class pair (:func:`bulk_pair_distances`), take the worst pair: two atoms of the same class
       merge into one at their midpoint (one site counted twice by the generator); atoms of
       different classes lose the one whose class is furthest above the ideal ratio (cation on a
       tie).
    2. Remove the remaining excess of each class, most crowded atoms first (smallest nearest-
       neighbour ratio), nearest to the boundary on a tie, until Li:M:O = 1:1:2.

    Parameters
    ----------
    atoms : ase.Atoms
        A boundary cell (``info["boundary"]`` is used for the tie-break when present).
    reference : dict
        Bulk class-pair distances, Å.
    overlap_fraction : float
        Overlap criterion as a fraction of the bulk distance.
    max_removed_fraction : float
        More atoms removed than this fraction means the boundary cannot be built sensibly.

    Returns
    -------
    tuple
        The repaired copy and ``{"merged": ..., "removed_overlap": ..., "removed_stoichiometry": ...}``.

    Raises
    ------
    InputError
        When the repair would remove more than ``max_removed_fraction`` of the atoms.
    """
    from ase.neighborlist import neighbor_list

    work = atoms.copy()
    n0 = len(work)
    stats = {"merged": 0, "removed_overlap": 0, "removed_stoichiometry": 0}
    cutoff = max(reference.values())
    has_boundary = "boundary" in work.info
    while True:
        cls = _classes(work)
        i, j, d, D = neighbor_list("ijdD", work, cutoff)
        keep = i < j
        i, j, d, D = i[keep], j[keep], d[keep], D[keep]
        ratio = d / np.array([reference[(a, b)] for a, b in zip(cls[i], cls[j])])
        if len(ratio) == 0 or ratio.min() >= overlap_fraction:
            break
        k = int(np.argmin(ratio))
        a, b = int(i[k]), int(j[k])
        if cls[a] == cls[b]:
            work.positions[a] = work.positions[a] + D[k] / 2
            del work[b]
            stats["merged"] += 1
        else:
            counts = {c: int(np.sum(cls == c)) for c in _IDEAL}
            excess = {c: counts[c] / _IDEAL[c] for c in _IDEAL}
            ea, eb = excess[cls[a]], excess[cls[b]]
            if np.isclose(ea, eb):
                victim = a if cls[a] != "O" else b
            else:
                victim = a if ea > eb else b
            del work[victim]
            stats["removed_overlap"] += 1
        if n0 - len(work) > max_removed_fraction * n0:
            break
    cls = _classes(work)
    counts = {c: int(np.sum(cls == c)) for c in _IDEAL}
    units = min(counts[c] // _IDEAL[c] for c in _IDEAL)
    to_remove: list[int] = []
    if units * 4 < len(work):
        i, j, d = neighbor_list("ijd", work, cutoff)
        nn = np.full(len(work), np.inf)
        ratio = d / np.array([reference[(a, b)] for a, b in zip(cls[i], cls[j])])
        np.minimum.at(nn, i, ratio)
        dist = boundary_distance(work) if has_boundary else np.zeros(len(work))
        for c in _IDEAL:
            excess = counts[c] - units * _IDEAL[c]
            idx = np.flatnonzero(cls == c)
            order = np.lexsort((dist[idx], nn[idx]))
            to_remove.extend(idx[order[:excess]].tolist())
    if to_remove:
        del work[sorted(to_remove)]
        stats["removed_stoichiometry"] = len(to_remove)
    if n0 - len(work) > max_removed_fraction * n0 or len(work) == 0:
        raise InputError(
            f"the boundary cannot be built without overlaps: repairing it removed {n0 - len(work)} of "
            f"{n0} atoms (more than {max_removed_fraction:.0%}); choose another sigma/plane or a larger "
            f"expand_times"
        )
    work.wrap()
    return work, stats


def _set_layer_labels(atoms: Atoms, axis: np.ndarray) -> None:
    """Attach crystal-style labels (phase O3, site kind, cation-layer index along ``axis``)."""
    from layerscope.crystal.labels import set_labels

    cls = _classes(atoms)
    site = np.where(cls == "O", "O", np.where(cls == "Li", "Li", "TM"))
    h = atoms.positions @ axis
    cation = cls != "O"
    # cation layers along the common c axis; in a periodic cell use the c-projected coordinate
    order = np.argsort(h[cation])
    hs = h[cation][order]
    layer_c = np.zeros(cation.sum(), dtype=int)
    layer_c[order] = np.concatenate([[0], np.cumsum(np.diff(hs) > 0.6)])
    layer = np.zeros(len(atoms), dtype=int)
    layer[cation] = layer_c
    # O carries the index of the cation layer directly below it (next larger coordinate)
    centres = np.array([hs[np.concatenate([[0], np.cumsum(np.diff(hs) > 0.6)]) == k].mean()
                        for k in range(layer_c.max() + 1)])
    for idx in np.flatnonzero(~cation):
        above = np.flatnonzero(centres > h[idx])
        layer[idx] = int(above[0]) if len(above) else 0
    set_labels(atoms, phase="O3", layer=layer, site=site)


def _grain_boundary(bulk: Atoms, *, sigma: int, plane: tuple[int, int, int] | None, kind: str,
                    expand_times: int, repeat: tuple[int, int], seed: int, overlap_fraction: float,
                    max_removed_fraction: float) -> Atoms:
    from ase.geometry import minkowski_reduce
    from pymatgen.core.interface import GrainBoundaryGenerator

    if expand_times < 1 or min(repeat) < 1:
        raise InputError(f"expand_times={expand_times} and repeat={repeat} must be >= 1")
    a, c = layered_lattice_parameters(bulk)
    symbols = np.array(bulk.get_chemical_symbols())
    tm = symbols[np.isin(symbols, TM_ELEMENTS)]
    if len(tm) == 0:
        raise InputError("the bulk cell holds no Ni, Co or Mn; give a layered LiMO2 cell")
    fractions = {el: float(np.mean(tm == el)) for el in TM_ELEMENTS if np.any(tm == el)}
    prim = _o3_primitive(a, c)
    gen = GrainBoundaryGenerator(prim)
    ratio = gen.get_ratio(max_denominator=5)
    angles = GrainBoundaryGenerator.get_rotation_angle_from_sigma(sigma, (1, 1, 1), lat_type="r", ratio=ratio)
    if not angles:
        raise InputError(f"no Σ{sigma} rotation about c exists for this lattice; use sigma 3, 7 or 13")
    angle = float(min(angles))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gb = gen.gb_from_parameters((1, 1, 1), angle, expand_times=expand_times, plane=plane, ratio=ratio,
                                    max_search=10)
    atoms = Atoms(symbols=[str(s.specie) for s in gb], positions=gb.cart_coords, cell=gb.lattice.matrix,
                  pbc=True)
    # the generator stacks the bottom grain from fractional c = 0 and the top one from c = 0.5; these
    # two planes (coincidence planes; the mirror planes of the Σ3 twin) are the boundary planes
    labels = gb.site_properties.get("grain_label", [None] * len(gb))
    by_frac = (np.mod(gb.frac_coords[:, 2] + 1e-6, 1.0) >= 0.5).astype(int)
    grain = np.array([(1 if lab.startswith("top") else 0) if lab else f for lab, f in zip(labels, by_frac)])
    cell = atoms.cell.array
    normal = np.cross(cell[0], cell[1])
    normal /= np.linalg.norm(normal)
    period = abs(float(cell[2] @ normal))
    heights = [0.0, 0.5 * period]  # fractional c = 0 and 0.5 (a, b span the plane through the origin)
    # the c axis of the prototype in this frame: the rotation axis is shared by both grains
    c_axis = _stacking_axis(atoms)
    atoms.info["boundary"] = {
        "kind": kind, "sigma": int(sigma), "angle_deg": angle, "rotation_axis_rhombohedral": [1, 1, 1],
        "plane_rhombohedral": list(plane) if plane is not None else [1, 1, 1],
        "plane_lattice": [[1, 0, 0], [0, 1, 0]], "heights_frac": [float(x % period) / period for x in heights],
        "expand_times": int(expand_times), "lattice_a_A": a, "lattice_c_A": c,
        "generator": "pymatgen GrainBoundaryGenerator",
    }
    atoms.new_array("grain", grain)
    if tuple(repeat) != (1, 1):
        atoms = atoms.repeat((int(repeat[0]), int(repeat[1]), 1))
    reference = bulk_pair_distances(_prototype_atoms(a, c))
    before = minimum_distance_ratio(atoms, reference)
    atoms, stats = repair_boundary(atoms, reference=reference, overlap_fraction=overlap_fraction,
                                   max_removed_fraction=max_removed_fraction)
    reduced, op = minkowski_reduce(atoms.cell.array)
    # the plane vectors a, b of the generator's cell in the reduced basis: old = inv(op) @ new
    old_in_new = np.rint(np.linalg.inv(op)).astype(int)
    atoms.info["boundary"]["plane_lattice"] = old_in_new[:2].tolist()
    atoms.set_cell(reduced, scale_atoms=False)
    atoms.wrap()
    atoms.info["boundary"].update({"repair": stats, "min_distance_ratio_before": before,
                                   "min_distance_ratio_after": minimum_distance_ratio(atoms, reference),
                                   "c_axis": c_axis.tolist()})
    _set_layer_labels(atoms, c_axis)
    if set(fractions) != {"Co"}:
        atoms = decorate_transition_metals(atoms, fractions=fractions, seed=seed)
    return atoms


def _prototype_atoms(a_A: float, c_A: float) -> Atoms:
    prim = _o3_primitive(a_A, c_A)
    return Atoms(symbols=[str(s.specie) for s in prim], positions=prim.cart_coords,
                 cell=prim.lattice.matrix, pbc=True)


def _stacking_axis(atoms: Atoms) -> np.ndarray:
    """Unit normal of the close-packed cation layers: least-spread direction of TM-TM neighbour vectors."""
    from ase.neighborlist import neighbor_list

    cls = _classes(atoms)
    i, j, D = neighbor_list("ijD", atoms, 3.1)
    m = (cls[i] == "M") & (cls[j] == "M")
    if not np.any(m):
        raise InputError("no TM-TM neighbours within 3.1 Å; the cell is not a layered oxide")
    _, _, vt = robust_linalg.svd(D[m])
    axis = vt[-1]
    return axis if axis[np.argmax(np.abs(axis))] > 0 else -axis


def twin_boundary(
    bulk: Atoms,
    *,
    expand_times: int = 1,
    repeat: tuple[int, int] = (1, 1),
    seed: int = 0,
) -> Atoms:
    """Σ3 twin boundary: grains rotated by 60° about c, boundary plane (0001).

    Built by pymatgen's ``GrainBoundaryGenerator`` on the rhombohedral primitive cell of ``bulk``'s
    O3 lattice (rotation axis and plane (1,1,1) in rhombohedral indices); ``expand_times=1`` gives
    24 atoms per in-plane unit (two 14 Å grains), ``expand_times=2`` the 48-atom cell. NMC
    compositions are decorated afterwards (:func:`decorate_transition_metals`).

    Parameters
    ----------
    bulk : ase.Atoms
        A fully lithiated O3 bulk cell (:func:`host_bulk`); its a, c and TM fractions are used.
    expand_times : int
        Grain thickness in units of the generator's repeat along the normal.
    repeat : tuple of int
        In-plane repetition (vacancies need >= (2, 2) to be isolated from their images).
    seed : int
        Seed of the TM decoration.

    Returns
    -------
    ase.Atoms
        With crystal labels, a ``grain`` array and ``info["boundary"]`` (normal, plane heights, period).
    """
    return _grain_boundary(bulk, sigma=3, plane=(1, 1, 1), kind="twin", expand_times=expand_times,
                           repeat=repeat, seed=seed, overlap_fraction=0.8, max_removed_fraction=0.15)


def tilt_boundary(
    bulk: Atoms,
    *,
    sigma: int = 7,
    expand_times: int = 4,
    repeat: tuple[int, int] = (1, 1),
    overlap_fraction: float = 0.8,
    max_removed_fraction: float = 0.15,
    seed: int = 0,
) -> Atoms:
    """Σ7 or Σ13 symmetric [0001] tilt boundary (rotation about c, plane :data:`TILT_PLANES`).

    The boundary plane contains c, so the Li and TM layers run straight across it and the
    boundary is seen edge-on along [0001]. The generator's period along the normal is sqrt(Σ)·a
    per ``expand_times`` (Σ7: 7.45 Å, 48 atoms; Σ13: 10.15 Å, 96 atoms), half of it per grain.
    Atoms it places closer than ``overlap_fraction`` of the bulk distance (Σ13: Li-O at 1.56 Å)
    are merged or removed and Li:M:O = 1:1:2 is restored by :func:`repair_boundary`; the in-plane
    period along the boundary is c x sqrt(3)·a/2 ... repeat it for isolated vacancies.

    Parameters
    ----------
    bulk : ase.Atoms
        A fully lithiated O3 bulk cell.
    sigma : {7, 13}
    expand_times : int
    repeat : tuple of int
        In-plane repetition.
    overlap_fraction, max_removed_fraction : float
        See :func:`repair_boundary`.
    seed : int

    Returns
    -------
    ase.Atoms
    """
    if sigma not in TILT_PLANES:
        raise InputError(f"sigma={sigma} is not offered for tilt boundaries; use 7 or 13 (or twin_boundary for Σ3)")
    return _grain_boundary(bulk, sigma=sigma, plane=TILT_PLANES[sigma], kind="tilt", expand_times=expand_times,
                           repeat=repeat, seed=seed, overlap_fraction=overlap_fraction,
                           max_removed_fraction=max_removed_fraction)


# --------------------------------------------------------------------------------------------
# Planar gliding
# --------------------------------------------------------------------------------------------
def apply_gliding(
    atoms: Atoms,
    *,
    fraction: float,
    plane_z_A: float,
    direction: Literal["[100]", "[120]"] = "[100]",
    lattice_a_A: float | None = None,
) -> Atoms:
    """Glide the atoms above a plane by ``fraction * a`` and tilt the cell to match.

    Parameters
    ----------
    atoms : ase.Atoms
        A layered cell with a, b in the xy plane and c along +z (the stacking direction).
    fraction : float
        Shift as a fraction of the hexagonal lattice parameter a (0.01 = 1 %).
    plane_z_A : float
        Height (Å, Cartesian z) of the glide plane; atoms with z above it move.
    direction : {"[100]", "[120]"}
        Along the cell's a vector, or the in-plane perpendicular to it.
    lattice_a_A : float, optional
        The hexagonal a (default: :func:`layered_lattice_parameters`).

    Returns
    -------
    ase.Atoms
        A copy; ``info["gliding"]`` records fraction, direction, plane and shift vector.
    """
    cell = atoms.cell.array
    if abs(cell[0, 2]) > 1e-6 or abs(cell[1, 2]) > 1e-6 or cell[2, 2] <= 0:
        raise InputError("gliding needs a cell with a, b in the xy plane and c along +z; build it with "
                         "layerscope.crystal")
    if not np.isfinite(fraction) or abs(fraction) > 1:
        raise InputError(f"fraction={fraction} must be a finite fraction of a in [-1, 1]")
    a = layered_lattice_parameters(atoms)[0] if lattice_a_A is None else float(lattice_a_A)
    a_hat = cell[0] / np.linalg.norm(cell[0])
    if direction == "[100]":
        d = a_hat
    elif direction == "[120]":
        d = np.cross([0.0, 0.0, 1.0], a_hat)
    else:
        raise InputError(f"direction={direction!r} is not known; use '[100]' or '[120]'")
    shift = fraction * a * d
    out = atoms.copy()
    z = out.positions[:, 2]
    if not (z.min() < plane_z_A < z.max()):
        raise InputError(f"plane_z_A={plane_z_A} does not cut the cell (atoms span z {z.min():.2f}-{z.max():.2f} Å)")
    above = z > plane_z_A
    out.positions[above] += shift
    new_cell = cell.copy()
    new_cell[2] += shift
    out.set_cell(new_cell, scale_atoms=False)
    out.info["gliding"] = {"fraction": float(fraction), "direction": direction, "plane_z_A": float(plane_z_A),
                           "shift_A": shift.tolist(), "lattice_a_A": a}
    return out
