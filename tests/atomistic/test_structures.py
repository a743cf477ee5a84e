"""Electrostatic ordering, boundaries (twin, repaired tilts) and planar gliding."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from pymatgen.core.ewald import EwaldSummation
from pymatgen.io.ase import AseAtomsAdaptor

from layerscope.atomistic.structures import (
    apply_gliding,
    boundary_distance,
    boundary_geometry,
    bulk_pair_distances,
    decorate_transition_metals,
    delithiate,
    ewald_pair_matrix,
    formal_charges,
    host_bulk,
    layered_lattice_parameters,
    minimum_distance_ratio,
    repair_boundary,
    tilt_boundary,
    twin_boundary,
    _prototype_atoms,
)
from layerscope.errors import InputError


def _pymatgen_ewald(atoms, charges) -> float:
    """Independent Ewald energy: pymatgen on a structure decorated with these charges."""
    s = AseAtomsAdaptor.get_structure(atoms[[True] * len(atoms)].copy())
    s.add_oxidation_state_by_site(list(charges))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(EwaldSummation(s).total_energy)


def _bare(atoms):
    from ase import Atoms

    return Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)


def test_lattice_parameters_of_crystal_bulk():
    a, c = layered_lattice_parameters(host_bulk("LiCoO2", size=(2, 3, 1)))
    assert (a, c) == pytest.approx((2.816, 14.05), abs=1e-6)


def test_pair_matrix_reproduces_pymatgen_ewald_energy():
    atoms = _bare(host_bulk("LiCoO2"))
    q = formal_charges(atoms.get_chemical_symbols())
    np.testing.assert_allclose(q[np.array(atoms.get_chemical_symbols()) == "Co"], 3.0)
    g = ewald_pair_matrix(atoms)
    assert q @ g @ q == pytest.approx(_pymatgen_ewald(atoms, q), rel=1e-6)


def test_delithiation_finds_the_brute_force_electrostatic_minimum():
    atoms = host_bulk("LiCoO2", size=(2, 1, 1))  # 6 Li sites, keep 3: 20 arrangements
    bare = _bare(atoms)
    symbols = np.array(bare.get_chemical_symbols())
    li = np.flatnonzero(symbols == "Li")
    energies = []
    for keep in itertools.combinations(li, 3):
        mask = ~np.isin(np.arange(len(bare)), np.setdiff1d(li, keep))
        sub = bare[mask]
        q = np.where(np.array(sub.get_chemical_symbols()) == "Co", 3.5,
                     np.where(np.array(sub.get_chemical_symbols()) == "O", -2.0, 1.0))
        energies.append(_pymatgen_ewald(sub, q))
    e_min = min(energies)
    for method in ("exhaustive", "annealing"):
        out = delithiate(atoms, li_fraction=0.5, seed=3, method=method)
        info = out.info["li_ordering"]
        assert out.get_chemical_formula() == "Co6Li3O12"
        assert info["ewald_energy_eV"] == pytest.approx(e_min, abs=1e-4 * abs(e_min))
        assert len(out.info["vacancies"]["positions"]) == 3
        assert info["ewald_energy_eV"] < info["random_mean_eV"]


def test_li_fraction_without_integer_solution_is_refused():
    with pytest.raises(InputError, match="nearest achievable"):
        delithiate(host_bulk("LiCoO2", size=(2, 1, 1)), li_fraction=0.3, seed=0)


def test_nmc622_decoration_exact_counts_and_consistent_energy():
    atoms = host_bulk("LiCoO2", size=(5, 1, 1))  # 15 TM sites: NCM622 = 9 Ni, 3 Co, 3 Mn exactly
    out = decorate_transition_metals(atoms, fractions={"Ni": 0.6, "Co": 0.2, "Mn": 0.2}, seed=1, n_restarts=2,
                                     n_sweeps=40)
    sym = np.array(out.get_chemical_symbols())
    assert [(sym == el).sum() for el in ("Ni", "Co", "Mn")] == [9, 3, 3]
    q = formal_charges(sym)
    assert q[sym == "Ni"][0] == pytest.approx(8 / 3)  # Ni2.67+ keeps Li(Ni0.6Co0.2Mn0.2)O2 neutral
    assert out.info["tm_ordering"]["ewald_energy_eV"] == pytest.approx(_pymatgen_ewald(_bare(out), q), rel=1e-6)
    assert out.info["tm_ordering"]["ewald_energy_eV"] < out.info["tm_ordering"]["random_mean_eV"]
    with pytest.raises(InputError, match="unknown elements"):
        decorate_transition_metals(atoms, fractions={"Fe": 1.0}, seed=0)


def _layer_shift_classes(atoms):
    """Per consecutive pair of Co layers along c: +1/-1 for the two O3 stacking senses, and the grain."""
    c_axis = np.asarray(atoms.info["boundary"]["c_axis"])
    uv = np.asarray(atoms.info["boundary"]["plane_lattice"], dtype=float) @ atoms.cell.array
    co = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "Co")
    h = atoms.positions[co] @ c_axis
    order = co[np.argsort(h)]
    pos = atoms.positions[order]
    d = np.diff(pos, axis=0)
    d -= np.outer(d @ c_axis, c_axis)
    frac = np.linalg.lstsq(uv.T, d.T, rcond=None)[0].T
    frac = np.round(np.mod(frac, 1.0) * 3) % 3
    first = frac[0]
    sign = np.array([1 if np.array_equal(f, first) else -1 for f in frac])
    return sign, atoms.arrays["grain"][order][:-1], boundary_distance(atoms)[order][:-1]


def test_sigma3_twin_is_clean_and_reverses_the_stacking():
    twin = twin_boundary(host_bulk("LiCoO2"), expand_times=2)
    assert len(twin) == 48 and twin.get_chemical_formula() == "Co12Li12O24"
    assert twin.info["boundary"]["repair"] == {"merged": 0, "removed_overlap": 0, "removed_stoichiometry": 0}
    assert twin.info["boundary"]["angle_deg"] == pytest.approx(60.0, abs=1e-6)
    assert minimum_distance_ratio(twin, bulk_pair_distances(_prototype_atoms(2.816, 14.05))) > 0.95
    # the boundary planes are the twin mirror planes (Li layers): the O layers on both sides sit at the
    # Li-O layer spacing (1/3 - z_O) c = 0.0937 * 14.05 = 1.317 Å from them
    d = boundary_distance(twin)
    o = np.array(twin.get_chemical_symbols()) == "O"
    near = np.sort(d[o])[:5]  # two planes, one O layer on each side, one O per layer in this 1x1 cell
    np.testing.assert_allclose(near[:4], (1 / 3 - 0.2396) * 14.05, atol=0.01)
    assert near[4] > 3.0
    sign, grain, dist = _layer_shift_classes(twin)
    inside = dist > 2.5  # layer pairs away from the boundary planes
    s0 = sign[inside & (grain == 0)]
    s1 = sign[inside & (grain == 1)]
    assert len(s0) >= 3 and len(s1) >= 3
    assert len(set(s0)) == 1 and len(set(s1)) == 1 and s0[0] == -s1[0]  # ABC... | ...CBA


def _misorientation_deg(atoms) -> float:
    """In-plane rotation (mod 60°) between the Co-Co bond directions of the two grains, far from the planes."""
    from ase.neighborlist import neighbor_list

    c_axis = np.asarray(atoms.info["boundary"]["c_axis"])
    e1 = np.cross(c_axis, [1.0, 0, 0] if abs(c_axis[0]) < 0.9 else [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c_axis, e1)
    sym = np.array(atoms.get_chemical_symbols())
    i, j, D = neighbor_list("ijD", atoms, 3.1)
    far = boundary_distance(atoms) > 1.5
    ok = (sym[i] == "Co") & (sym[j] == "Co") & far[i] & far[j]
    angles = {}
    for g in (0, 1):
        m = ok & (atoms.arrays["grain"][i] == g) & (atoms.arrays["grain"][j] == g)
        th = np.degrees(np.arctan2(D[m] @ e2, D[m] @ e1)) % 60.0
        # circular mean on the 60° period
        angles[g] = np.degrees(np.angle(np.mean(np.exp(1j * np.radians(th) * 6)))) / 6 % 60.0
    return (angles[1] - angles[0]) % 60.0


@pytest.mark.parametrize("sigma, angle", [(7, 38.2132), (13, 27.7958)])
def test_tilt_boundaries_are_repaired(sigma, angle):
    reference = bulk_pair_distances(_prototype_atoms(2.816, 14.05))
    gb = tilt_boundary(host_bulk("LiCoO2"), sigma=sigma, expand_times=2)
    info = gb.info["boundary"]
    # the generator's raw cell had overlapping atoms (below 0.8 of the bulk distances) ...
    assert info["min_distance_ratio_before"] < 0.8
    assert sum(info["repair"].values()) > 0
    # ... the repaired one has none, and Li:Co:O = 1:1:2 exactly
    assert minimum_distance_ratio(gb, reference) >= 0.8 - 1e-9
    sym = np.array(gb.get_chemical_symbols())
    n_li, n_co, n_o = (sym == "Li").sum(), (sym == "Co").sum(), (sym == "O").sum()
    assert n_li == n_co and n_o == 2 * n_co
    # the grains are rotated about c by the Σ angle (mod the 60° symmetry of a close-packed layer)
    mis = _misorientation_deg(gb)
    assert min(abs(mis - angle), abs(mis - (60 - angle))) < 1.0
    # the boundary plane contains c
    normal = boundary_geometry(gb)[0]
    assert abs(normal @ np.asarray(info["c_axis"])) < 1e-6


def test_boundary_that_needs_too_many_removals_is_refused():
    with pytest.raises(InputError, match="cannot be built without overlaps"):
        tilt_boundary(host_bulk("LiCoO2"), sigma=13, expand_times=1, max_removed_fraction=0.01)
    with pytest.raises(InputError, match="sigma=5"):
        tilt_boundary(host_bulk("LiCoO2"), sigma=5)


def test_repair_merges_a_duplicated_site():
    atoms = _bare(host_bulk("LiCoO2", size=(2, 2, 1)))
    reference = bulk_pair_distances(atoms)
    dup = atoms.copy()
    dup += atoms[[1]]
    dup.positions[-1] += [0.3, 0.0, 0.0]  # a second Co 0.3 Å from the first
    fixed, stats = repair_boundary(dup, reference=reference)
    assert stats["merged"] == 1 and len(fixed) == len(atoms)
    assert minimum_distance_ratio(fixed, reference) > 0.9


def test_gliding_shift_tilt_and_periodicity():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    bulk = host_bulk("LiCoO2", size=(2, 2, 1))
    z_plane = 7.5
    above = bulk.positions[:, 2] > z_plane
    g = apply_gliding(bulk, fraction=0.02, plane_z_A=z_plane, direction="[100]")
    shift = g.positions - bulk.positions
    np.testing.assert_allclose(shift[above], np.tile([0.02 * 2.816, 0, 0], (above.sum(), 1)), atol=1e-12)
    np.testing.assert_allclose(shift[~above], 0.0, atol=1e-12)
    np.testing.assert_allclose(g.cell.array[2] - bulk.cell.array[2], [0.02 * 2.816, 0, 0], atol=1e-12)
    perp = apply_gliding(bulk, fraction=0.02, plane_z_A=z_plane, direction="[120]")
    d = perp.info["gliding"]["shift_A"]
    assert np.dot(d, [1, 0, 0]) == pytest.approx(0.0, abs=1e-12) and np.linalg.norm(d) == pytest.approx(0.05632)
    # gliding by a whole lattice vector a is a lattice translation: the same crystal (pymatgen's matcher)
    matcher = StructureMatcher(primitive_cell=True, scale=False)
    to_s = AseAtomsAdaptor.get_structure
    assert matcher.fit(to_s(_bare(bulk)), to_s(_bare(apply_gliding(bulk, fraction=1.0, plane_z_A=z_plane))))
    assert not matcher.fit(to_s(_bare(bulk)), to_s(_bare(apply_gliding(bulk, fraction=0.3, plane_z_A=z_plane))))
    with pytest.raises(InputError, match="does not cut"):
        apply_gliding(bulk, fraction=0.02, plane_z_A=100.0)


def test_ncm111_host_is_li3nicomno6_with_ni2_and_an_ewald_ordering():
    """NCM111 (the seed study's Li3NiCoMnO6): 1:1:1 on the TM sites, Ni2+ by neutrality, ordered below random."""
    from layerscope.crystal import get_composition, lattice

    assert get_composition("Li3NiCoMnO6") is get_composition("NCM111")
    lat = lattice("O3", "NCM111")
    assert lat.a_A == pytest.approx(2.862) and 6 * lat.layer_spacing_A == pytest.approx(14.23)  # c/6 per cation layer
    atoms = host_bulk("NCM111", size=(3, 1, 1), seed=0)  # 9 TM sites: 3 Ni, 3 Co, 3 Mn
    sym = np.array(atoms.get_chemical_symbols())
    assert [(sym == el).sum() for el in ("Li", "Ni", "Co", "Mn", "O")] == [9, 3, 3, 3, 18]
    q = formal_charges(sym)
    assert q[sym == "Ni"][0] == pytest.approx(2.0) and q.sum() == pytest.approx(0.0, abs=1e-12)
    info = atoms.info["tm_ordering"]
    assert info["ewald_energy_eV"] < info["random_mean_eV"]
