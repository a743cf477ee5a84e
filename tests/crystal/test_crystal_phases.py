"""Bulk phases and oriented cells: composition, bonds, space groups, stacking, labels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import spglib
from ase.spacegroup import crystal

from helpers_crystal import bond_lengths, circular_distance, layer_steps
from layerscope.crystal import bulk, check_labels, lattice, oriented
from layerscope.crystal.composition import assign_species, species_counts
from layerscope.crystal.labels import split_vacancies, with_vacancies
from layerscope.errors import InputError


def spacegroup(atoms) -> int:
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    return spglib.get_symmetry_dataset(cell, symprec=1e-3).number


def counts(atoms) -> dict[str, int]:
    return dict(Counter(atoms.get_chemical_symbols()))


# ---- composition (formula counts against the nominal formula) ------------------------------

@pytest.mark.parametrize(
    ("phase", "composition", "kwargs", "expected"),
    [
        ("O3", "LiCoO2", {}, {"Li": 3, "Co": 3, "O": 6}),
        ("O3'", "LiCoO2", {}, {"Li": 3, "Co": 3, "O": 6}),
        ("O1", "LiCoO2", {"li_fraction": 0.0}, {"Co": 1, "O": 2}),  # O1 CoO2
        ("rock_salt", "LiCoO2", {"li_fraction": 0.0}, {"Co": 6, "O": 6}),  # CoO
        ("rock_salt", "NMC811", {"li_fraction": 1.0, "size": (10, 1, 1)},  # disordered LiMO2
         {"Li": 30, "Ni": 24, "Mn": 3, "Co": 3, "O": 60}),
        ("spinel", "LiCoO2", {}, {"Li": 6, "Co": 12, "O": 24}),  # LiCo2O4 x 6
        ("O3", "NMC811", {"size": (10, 1, 1)}, {"Li": 30, "Ni": 24, "Mn": 3, "Co": 3, "O": 60}),
        ("O3", "NMC622", {"size": (5, 1, 1)}, {"Li": 15, "Ni": 9, "Co": 3, "Mn": 3, "O": 30}),
        ("C2/m", "Li2MnO3", {}, {"Li": 12, "Mn": 6, "O": 18}),
        # Li1.2Ni0.2Mn0.6O2 x 45
        ("C2/m", "Li1.2Ni0.2Mn0.6O2", {"size": (5, 1, 1)}, {"Li": 54, "Ni": 9, "Mn": 27, "O": 90}),
    ],
)
def test_bulk_composition(phase, composition, kwargs, expected):
    atoms = bulk(phase, composition, seed=3, **kwargs)
    assert counts(atoms) == expected
    check_labels(atoms)


def test_li_fraction_removes_li_and_keeps_vacancies():
    atoms = bulk("O3", "LiCoO2", size=(2, 2, 1), li_fraction=0.5, seed=1)
    assert counts(atoms) == {"Li": 6, "Co": 12, "O": 24}
    vac = atoms.info["vacancies"]
    assert len(vac["positions"]) == 6 and set(vac["site"]) == {"Li"}
    full = with_vacancies(atoms)
    assert len(full) == 48
    back = split_vacancies(full)
    np.testing.assert_allclose(back.positions, atoms.positions)


def test_li_fraction_without_integer_solution_names_nearest():
    with pytest.raises(InputError, match=r"0\.25 and 0\.333333"):
        bulk("O3", "LiCoO2", size=(2, 2, 1), li_fraction=0.3)


@pytest.mark.parametrize(("phase", "composition", "match"), [
    ("O2", "LiCoO2", "rock_salt"),
    ("O3", "LiFePO4", "NMC811"),
    ("C2/m", "LiCoO2", "Li1.2Ni0.2Mn0.6O2"),
])
def test_unknown_inputs_name_accepted_values(phase, composition, match):
    with pytest.raises(InputError, match=match):
        bulk(phase, composition)


def test_too_small_cell_for_nmc_is_refused():
    with pytest.raises(InputError, match="multiple of 10"):
        bulk("O3", "NMC811")


def test_species_counts_largest_remainder():
    # Hamilton apportionment of 0.8/0.1/0.1 on 15 seats: quotas 12, 1.5, 1.5 -> 12, 2, 1
    assert species_counts({"Ni": 0.8, "Mn": 0.1, "Co": 0.1}, 15) == {"Ni": 12, "Mn": 2, "Co": 1}


def test_ordered_decoration_is_even_and_seed_independent():
    a = assign_species({"Ni": 0.8, "Co": 0.2}, 50, order="ordered", rng=np.random.default_rng(0))
    b = assign_species({"Ni": 0.8, "Co": 0.2}, 50, order="ordered", rng=np.random.default_rng(9))
    assert (a == b).all()
    gaps = np.diff(np.flatnonzero(a == "Co"))
    assert gaps.min() == 5 and gaps.max() == 5  # every fifth site


def test_random_decoration_reproducible():
    a = bulk("O3", "NMC811", size=(10, 2, 1), seed=4).get_chemical_symbols()
    b = bulk("O3", "NMC811", size=(10, 2, 1), seed=4).get_chemical_symbols()
    c = bulk("O3", "NMC811", size=(10, 2, 1), seed=5).get_chemical_symbols()
    assert a == b and a != c


# ---- geometry --------------------------------------------------------------------------------

def test_licoo2_bonds_match_refined_structure():
    # refined LiCoO2 (Akimoto et al. 1998; design.md): Co-O 1.92 A, Li-O 2.09 A. The z(O) = 0.26
    # pitfall swaps them, so each must be within 0.005 A and every cation 6-coordinated.
    atoms = bulk("O3", "LiCoO2")
    co, li = bond_lengths(atoms, "Co"), bond_lengths(atoms, "Li")
    assert len(co) == 3 * 6 and len(li) == 3 * 6
    np.testing.assert_allclose(co, 1.92, atol=0.005)
    np.testing.assert_allclose(li, 2.09, atol=0.005)


def test_nmc811_bonds_in_published_range():
    # typical refined Ni-rich NMC: TM-O 1.96-1.97 A, Li-O 2.10-2.12 A (Rietveld refinements)
    atoms = bulk("O3", "NMC811", size=(10, 1, 1))
    tm = np.concatenate([bond_lengths(atoms, el) for el in ("Ni", "Mn", "Co")])
    assert tm.min() > 1.955 and tm.max() < 1.98
    li = bond_lengths(atoms, "Li")
    assert li.min() > 2.095 and li.max() < 2.125


def test_rock_salt_and_spinel_bonds_are_the_ideal_cubic_values():
    # NiO: Ni-O = a/2; ideal spinel (u = 3/8): oct M-O = a/4, tet Li-O = a*sqrt(3)/8
    nio = bulk("rock_salt", "NMC811", li_fraction=0.0, size=(5, 2, 1))
    np.testing.assert_allclose(bond_lengths(nio, "Ni"), 4.177 / 2, atol=1e-6)
    sp = bulk("spinel", "LiCoO2")
    np.testing.assert_allclose(bond_lengths(sp, "Co"), 7.99 / 4, atol=1e-6)
    li = bond_lengths(sp, "Li")
    np.testing.assert_allclose(li, 7.99 * np.sqrt(3) / 8, atol=1e-6)
    assert len(li) == 4 * 6  # every Li tetrahedral


@pytest.mark.parametrize(
    ("phase", "composition", "kwargs", "number"),
    [
        ("O3", "LiCoO2", {}, 166),  # R-3m
        ("O3'", "LiCoO2", {}, 166),
        ("O1", "LiCoO2", {"li_fraction": 0.0}, 164),  # P-3m1 (CoO2)
        ("O1", "LiCoO2", {}, 164),
        ("rock_salt", "LiCoO2", {"li_fraction": 0.0}, 225),  # Fm-3m
        ("spinel", "LiCoO2", {}, 227),  # Fd-3m
        ("C2/m", "Li2MnO3", {}, 12),  # C2/m
    ],
)
def test_space_groups(phase, composition, kwargs, number):
    assert spacegroup(bulk(phase, composition, **kwargs)) == number


def test_o3_is_the_licoo2_of_the_international_tables():
    # Independent construction: space group 166, Li 3a, Co 3b, O 6c z = 0.2396 (ASE); same
    # crystal as our O3 (ours is the 180-degree rotation about c, pymatgen matcher checks it)
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    ref = crystal(["Li", "Co", "O"], basis=[(0, 0, 0), (0, 0, 0.5), (0, 0, 0.2396)],
                  spacegroup=166, cellpar=[2.816, 2.816, 14.05, 90, 90, 120])
    ad = AseAtomsAdaptor()
    matcher = StructureMatcher(ltol=0.01, stol=0.01, angle_tol=0.5, primitive_cell=True)
    for phase in ("O3", "O3'"):
        assert matcher.fit(ad.get_structure(ref), ad.get_structure(bulk(phase, "LiCoO2")))


def test_lattice_parameters():
    o3 = bulk("O3", "LiCoO2")
    np.testing.assert_allclose(o3.cell.cellpar(), [2.816, 2.816, 14.05, 90, 90, 120], atol=1e-9)
    o1 = bulk("O1", "LiCoO2", li_fraction=0.0)
    np.testing.assert_allclose(o1.cell.cellpar()[2], 2 * 4.29 / 2, atol=1e-9)  # 4.29 A per CoO2
    assert lattice("rock_salt", "NMC811").layer_spacing_A == pytest.approx(2.4116, abs=1e-4)
    assert o3.info["layer_spacing_nm"] == pytest.approx(1.405 / 6)


# ---- stacking in the oriented view --------------------------------------------------------

@pytest.mark.parametrize(
    ("phase", "zone", "step"),
    [("O3", "100", 1 / 3), ("O3'", "100", 2 / 3), ("O1", "100", 0.0),
     ("O3", "110", 2 / 3), ("O3'", "110", 1 / 3),  # [110] is the mirror view of [100]
     ("rock_salt", "100", 1 / 3), ("spinel", "100", 1 / 3)],
)
def test_stacking_steps_read_from_positions(phase, zone, step):
    kwargs = {"li_fraction": 0.0} if phase == "rock_salt" else {}
    atoms = oriented(bulk(phase, "LiCoO2", **kwargs), zone=zone, width_nm=1.0, thickness_nm=0.6)
    n = int(atoms.arrays["layer"].max()) + 1
    # spinel: follow the octahedral Co (kagome and Li-layer TM), not the tetrahedral Li
    steps = layer_steps(atoms, list(range(n)), elements={"Co"} if phase == "spinel" else None)
    assert np.all(circular_distance(steps, step) < 1e-6), steps


def test_oriented_cell_geometry_and_contract():
    atoms = oriented(bulk("O3", "LiCoO2"), zone="100", width_nm=2.0, thickness_nm=3.0)
    a = 2.816
    L = np.diag(atoms.cell)
    np.testing.assert_allclose(atoms.cell, np.diag(L), atol=1e-9)  # orthogonal
    np.testing.assert_allclose(L[0] / (a * np.sqrt(3)), round(L[0] / (a * np.sqrt(3))), atol=1e-9)
    np.testing.assert_allclose(L[1], 14.05, atol=1e-9)  # stacking along y
    np.testing.assert_allclose(L[2] / a, round(L[2] / a), atol=1e-9)  # beam period a
    assert abs(L[0] - 20) < a * np.sqrt(3) and abs(L[2] - 30) < a
    assert atoms.info["zone"] == "100" and atoms.pbc.tolist() == [True, False, True]
    # every atomic column is parallel to the beam: x, y repeat exactly with period a along z
    xy = np.round(atoms.positions[:, :2], 6)
    cols = Counter(map(tuple, xy))
    assert set(cols.values()) == {int(round(L[2] / a))}
    # columns in a cation row are spaced a*sqrt(3)/2
    co = atoms[(atoms.arrays["layer"] == 1) & (atoms.arrays["site"] == "TM")]
    xs = np.unique(np.round(co.positions[:, 0], 6))
    np.testing.assert_allclose(np.diff(xs), a * np.sqrt(3) / 2, atol=1e-6)
    check_labels(atoms)


def test_labels_follow_the_documented_rules():
    atoms = oriented(bulk("O3", "NMC811", size=(10, 1, 1)), zone="100", width_nm=1, thickness_nm=3)
    sym = np.array(atoms.get_chemical_symbols())
    site, layer, y = atoms.arrays["site"], atoms.arrays["layer"], atoms.positions[:, 1]
    assert set(sym[site == "TM"]) == {"Ni", "Mn", "Co"}
    assert set(sym[site == "Li"]) == {"Li"}
    assert set(sym[site == "O"]) == {"O"}
    # layers alternate TM/Li, layer 0 (TM) at the top, indices increase with y
    cation_y = {k: y[(layer == k) & (site != "O")].mean() for k in np.unique(layer)}
    ks = sorted(cation_y)
    assert np.all(np.diff([cation_y[k] for k in ks]) > 0)
    assert all(set(site[(layer == k) & (site != "O")]) == {"TM" if k % 2 == 0 else "Li"} for k in ks)
    # an O atom carries the index of the cation layer directly below it (next larger y)
    ys = np.array([cation_y[k] for k in ks])
    o = site == "O"
    below = np.searchsorted(ys, y[o])
    np.testing.assert_array_equal(np.array(ks)[below], layer[o])


@pytest.mark.parametrize("zone", ["100", "110"])
@pytest.mark.parametrize(("phase", "composition", "kwargs"), [
    ("O3", "LiCoO2", {"li_fraction": 2 / 3}),
    ("O1", "LiCoO2", {}),
    ("rock_salt", "LiCoO2", {"li_fraction": 0.0}),
    ("spinel", "LiCoO2", {}),
    ("C2/m", "Li2MnO3", {}),
])
def test_oriented_keeps_formula_and_density(phase, composition, kwargs, zone):
    b = bulk(phase, composition, **kwargs)
    o = oriented(b, zone=zone, width_nm=1.0, thickness_nm=1.0)
    cb, co = counts(b), counts(o)
    ratio = len(o) / len(b)
    assert ratio == int(ratio) and {k: v * ratio for k, v in cb.items()} == co
    np.testing.assert_allclose(len(o) / o.get_volume(), len(b) / b.get_volume(), rtol=1e-12)
    # empty sites travel with the cell
    nv = len(b.info["vacancies"]["positions"])
    assert len(o.info["vacancies"]["positions"]) == nv * ratio
    # no two atoms on top of each other after the re-cut
    from ase.neighborlist import neighbor_list
    assert len(neighbor_list("d", o, 1.0)) == 0


def test_li_rich_tm_layer_li_only_on_honeycomb_centres():
    # C2/m: the TM-layer Li (2b) are the centres of Mn/Ni honeycombs, so their six in-plane
    # neighbours are never Li; a random R-3m decoration would put Li next to Li
    from ase.neighborlist import neighbor_list

    atoms = bulk("C2/m", "Li1.2Ni0.2Mn0.6O2", size=(5, 2, 1), seed=2)
    tm_layer = atoms[atoms.arrays["site"] == "TM"]
    s = np.array(tm_layer.get_chemical_symbols())
    i, j, d = neighbor_list("ijd", tm_layer, atoms.info["a_nm"] * 10 + 0.05)
    li = s[i] == "Li"
    assert li.sum() == 6 * np.count_nonzero(s == "Li")  # each has 6 in-plane neighbours
    assert not np.any(s[j][li] == "Li")
    r3m = bulk("O3", "Li1.2Ni0.2Mn0.6O2", size=(15, 2, 1), seed=2)
    tm_r3m = r3m[r3m.arrays["site"] == "TM"]
    s2 = np.array(tm_r3m.get_chemical_symbols())
    i2, j2 = neighbor_list("ij", tm_r3m, atoms.info["a_nm"] * 10 + 0.05)
    assert np.any((s2[i2] == "Li") & (s2[j2] == "Li"))
