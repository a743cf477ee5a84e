"""Composite scenes: block positions, stacking per block, defects measured back."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from helpers_crystal import circular_distance, layer_steps, row_phase
from layerscope.crystal import (
    Block,
    add_mixing,
    block_for_thickness,
    bulk,
    check_labels,
    displace_columns,
    glide,
    lateral_domain,
    oriented,
    stack,
    tilt_boundary,
    void,
)
from layerscope.errors import InputError

# NMC811 reference numbers (Noh et al. 2013; z(O) = 0.241) and NiO / O1 CoO2
A811, C811, Z811 = 2.872, 14.20, 0.241
GAP_TM = 2 * (Z811 - 1 / 6) * C811
D_NIO = 4.177 / np.sqrt(3)


@pytest.fixture(scope="module")
def scene():
    blocks = [Block("rock_salt", 4, li_fraction=0.0), Block("O3", 12),
              Block("O1", 3, li_fraction=0.0), Block("O3", 6)]
    return stack(blocks, composition="NMC811", zone="100", width_nm=2.0, thickness_nm=2.0, seed=7)


def test_blocks_sit_at_the_expected_depth(scene):
    # analytic thicknesses from the published lattice parameters
    expected_nm = np.cumsum([0, 4 * D_NIO, 2 * C811, GAP_TM + 4.29, C811]) / 10
    got = scene.info["blocks"]
    np.testing.assert_allclose([b["y_min_nm"] for b in got], expected_nm[:-1], atol=1e-9)
    np.testing.assert_allclose([b["y_max_nm"] for b in got], expected_nm[1:], atol=1e-9)
    assert [(b["first_layer"], b["last_layer"]) for b in got] == [(0, 3), (4, 15), (16, 18), (19, 24)]
    y = scene.positions[:, 1] / 10
    for b in got:
        m = scene.arrays["phase"] == b["phase"]
        m &= (scene.arrays["layer"] >= b["first_layer"]) & (scene.arrays["layer"] <= b["last_layer"])
        assert y[m].min() >= b["y_min_nm"] - 1e-9 and y[m].max() < b["y_max_nm"]
    np.testing.assert_allclose(scene.info["a_nm"], A811 / 10)
    check_labels(scene)


def test_stacking_within_blocks(scene):
    expected = {"rock_salt": 1 / 3, "O3": 1 / 3, "O1": 0.0}
    for b in scene.info["blocks"]:
        # use the TM layers only (Li layers of the O1 block are empty); steps over two layers
        layers = list(range(b["first_layer"], b["last_layer"] + 1))
        tm_layers = [k for k in layers if k % 2 == 0]
        steps = layer_steps(scene, tm_layers)
        assert np.all(circular_distance(steps, 2 * expected[b["phase"]]) < 1e-6), (b, steps)


def test_o1_block_with_odd_layers_has_sharp_interfaces(scene):
    # rows of layers 15..19: O3 -> O1 (16, 17 empty, 18) -> O3; only 16..18 share a position
    steps = layer_steps(scene, [15, 16, 18, 19], elements=None)
    # 15 -> 16: +1/3; 16 -> 18: 0; 18 -> 19: +1/3
    np.testing.assert_allclose(circular_distance(steps, np.array([1 / 3, 0.0, 1 / 3])), 0, atol=1e-6)


@pytest.mark.parametrize(("n_twin", "expected"), [
    (1, [1 / 3, 0, 0, 1 / 3]),  # single twin layer: two zero steps
    (2, [1 / 3, 0, 2 / 3, 0, 1 / 3]),  # double twin layer: 0, -1/3, 0
])
def test_twin_layers(n_twin, expected):
    atoms = stack([Block("O3", 4), Block("O3'", n_twin), Block("O3", 4)], composition="LiCoO2",
                  width_nm=1.0, thickness_nm=0.6)
    first = 2  # layer 3 is the last O3 layer above the twin
    layers = list(range(first, first + len(expected) + 1))
    steps = layer_steps(atoms, layers)
    np.testing.assert_allclose(circular_distance(steps, np.array(expected)), 0, atol=1e-6)


def test_110_zone_is_the_mirror_view():
    atoms = stack([Block("O3", 6), Block("O3'", 6)], composition="LiCoO2", zone="110",
                  width_nm=1.0, thickness_nm=0.6)
    steps = layer_steps(atoms, list(range(12)))
    np.testing.assert_allclose(circular_distance(steps[:5], 2 / 3), 0, atol=1e-6)
    np.testing.assert_allclose(circular_distance(steps[6:], 1 / 3), 0, atol=1e-6)


def test_stack_equals_recut_bulk():
    # the scene engine and ase.build.cut of the bulk cell give the same crystal
    a = stack([Block("O3", 6)], composition="LiCoO2", width_nm=1.0, thickness_nm=0.9)
    b = oriented(bulk("O3", "LiCoO2"), zone="100", width_nm=1.0, thickness_nm=0.9)
    np.testing.assert_allclose(a.cell, b.cell, atol=1e-9)

    def keyed(at):
        p = np.round((np.round(at.get_scaled_positions(), 8) % 1.0) * np.diag(at.cell), 5)
        return sorted(zip(map(tuple, p), at.get_chemical_symbols(), at.arrays["layer"],
                          at.arrays["site"]))
    assert keyed(a) == keyed(b)


def test_spinel_block_has_no_face_sharing_cations():
    atoms = stack([Block("O3", 6), Block("spinel", 6), Block("O3", 6)], composition="LiCoO2",
                  width_nm=1.0, thickness_nm=1.2)
    s = np.array(atoms.get_chemical_symbols())
    cat = s != "O"
    i, j, d = neighbor_list("ijd", atoms, 2.6)
    # no cation pair closer than the edge-sharing distance (>= a = 2.816 A)
    assert not np.any(cat[i] & cat[j])
    # every Li of the spinel block is tetrahedral: 4 O at about a_c*sqrt(3)/8
    sp_li = np.flatnonzero((atoms.arrays["phase"] == "spinel") & (s == "Li"))
    nO = Counter(i[(s[j] == "O") & (d < 2.0) & np.isin(i, sp_li)])
    assert len(sp_li) > 0 and all(nO[k] == 4 for k in sp_li)


def test_rock_salt_surface_block_is_nio_like(scene):
    blk = block_for_thickness("rock_salt", 1.0, composition="NMC811", li_fraction=0.0)
    assert blk.n_layers == round(10 / D_NIO)  # 4 layers of 2.41 A
    rs = scene.arrays["phase"] == "rock_salt"
    s = np.array(scene.get_chemical_symbols())
    assert "Li" not in set(s[rs])
    n_sites = 4 * len(scene[(scene.arrays["layer"] == 0) & (scene.arrays["site"] == "TM")])
    assert np.count_nonzero(rs & (s != "O")) == n_sites  # every octahedral site filled


def test_block_mixing_fraction_and_conservation():
    base = [Block("O3", 8)]
    mixed = [Block("O3", 8, mixing=0.05)]
    kw = dict(composition="NMC811", width_nm=2.0, thickness_nm=2.0, seed=3)
    a, b = stack(base, **kw), stack(mixed, **kw)
    assert Counter(a.get_chemical_symbols()) == Counter(b.get_chemical_symbols())
    s = np.array(b.get_chemical_symbols())
    li_sites = b.arrays["site"] == "Li"
    frac = np.count_nonzero(li_sites & (s == "Ni")) / np.count_nonzero(li_sites)
    assert abs(frac - 0.05) <= 0.5 / np.count_nonzero(li_sites)
    assert np.count_nonzero((b.arrays["site"] == "TM") & (s == "Li")) == np.count_nonzero(
        li_sites & (s == "Ni"))  # antisite pairs


def test_add_mixing_only_inside_region(scene):
    out = add_mixing(scene, 0.1, seed=1, y_range_nm=(1.5, 3.0))
    s, y = np.array(out.get_chemical_symbols()), out.positions[:, 1] / 10
    tm_on_li = (out.arrays["site"] == "Li") & (s != "Li") & (out.arrays["phase"] != "rock_salt")
    assert tm_on_li.any() and np.all((y[tm_on_li] >= 1.5) & (y[tm_on_li] < 3.0))
    li_in = (out.arrays["site"] == "Li") & (y >= 1.5) & (y < 3.0) & (out.arrays["phase"] == "O3")
    assert np.count_nonzero(tm_on_li) / np.count_nonzero(li_in) == pytest.approx(0.1, abs=0.01)
    assert out.info["mixing"][-1]["n_exchanged"] == np.count_nonzero(tm_on_li)


def test_lateral_rock_salt_domain(scene):
    out = lateral_domain(scene, x_range_nm=(0.0, 1.0), y_range_nm=(1.0, 3.5), li_fraction=0.0,
                         seed=2)
    x, y = out.positions[:, 0] / 10, out.positions[:, 1] / 10
    inside = (x < 1.0) & (y >= 1.0) & (y < 3.5)
    assert set(out.arrays["phase"][inside]) == {"rock_salt"}
    np.testing.assert_array_equal(out.arrays["phase"][~inside], scene.arrays["phase"][
        ~((scene.positions[:, 0] < 10) & (scene.positions[:, 1] >= 10) & (scene.positions[:, 1] < 35))])
    s = np.array(out.get_chemical_symbols())
    assert "Li" not in set(s[inside])
    vac = out.info["vacancies"]["positions"] / 10
    assert not np.any((vac[:, 0] < 1.0) & (vac[:, 1] >= 1.0) & (vac[:, 1] < 3.5))


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_glide_shift_measured_back(scene, fraction):
    y_plane = 2.5  # nm, inside the O3 block
    out = glide(scene, above_y_nm=y_plane, shift_fraction=fraction)
    a = scene.info["a_nm"] * 10
    spacing = a * np.sqrt(3) / 2

    def rows(at, upper):
        m = (at.arrays["site"] == "TM") & ((at.positions[:, 1] < y_plane * 10) == upper)
        m &= at.arrays["phase"] == "O3"
        return row_phase(at.positions[m, 0], spacing)
    moved = (rows(out, True) - rows(scene, True)) % 1.0
    assert circular_distance(moved, (fraction * a / spacing) % 1.0) < 1e-6
    assert circular_distance(rows(out, False) - rows(scene, False), 0.0) < 1e-9


def test_displace_columns_moves_each_column_rigidly_by_the_stated_rms():
    atoms = stack([Block("O3", 12)], composition="LiCoO2", width_nm=3.0, thickness_nm=1.0)
    out = displace_columns(atoms, rms_pm=10.0, seed=3)
    d = (out.positions - atoms.positions) * 100.0  # pm; atoms keep their order
    assert np.all(d[:, 2] == 0.0)
    xy = np.round(atoms.positions[:, :2] * 100).astype(int)
    _, column = np.unique(xy, axis=0, return_inverse=True)
    per_column = [d[column.ravel() == k, :2] for k in range(column.max() + 1)]
    assert all(np.ptp(c, axis=0).max() < 1e-9 for c in per_column)  # one vector per column
    shifts = np.array([c[0] for c in per_column], dtype=float)
    assert len(shifts) > 200
    # rms per axis within 3 standard errors of 10 pm (relative error of an rms: 1/sqrt(2n))
    assert np.sqrt(np.mean(shifts**2, axis=0)) == pytest.approx([10.0, 10.0], rel=3 / np.sqrt(2 * len(shifts)))
    assert out.info["column_displacements"] == {"rms_pm": 10.0, "seed": 3}
    assert np.array_equal(out.arrays["site"], atoms.arrays["site"])
    with pytest.raises(InputError, match="rms_pm"):
        displace_columns(atoms, rms_pm=-1.0)


def test_void_removes_exactly_the_atoms_inside():
    atoms = stack([Block("O3", 12)], composition="LiCoO2", width_nm=2.0, thickness_nm=1.0)
    c, r = np.array([0.3, 1.4]), 0.6  # nm; the circle crosses the periodic edge at x = 0
    out = void(atoms, center_nm=c, radius_nm=r)
    lx = atoms.cell[0, 0] / 10
    d = atoms.positions[:, :2] / 10 - c
    d[:, 0] -= lx * np.round(d[:, 0] / lx)
    inside = np.hypot(d[:, 0], d[:, 1]) < r
    assert len(out) == len(atoms) - np.count_nonzero(inside) and inside.sum() > 50
    kept = {tuple(np.round(p, 6)) for p in out.positions}
    assert kept == {tuple(np.round(p, 6)) for p in atoms.positions[~inside]}
    assert out.info["voids"][0]["n_removed"] == inside.sum()


def test_tilt_boundary_has_no_overlaps_and_the_right_angle():
    atoms = oriented(bulk("O3", "LiCoO2"), zone="100", width_nm=4.0, thickness_nm=0.6)
    out = tilt_boundary(atoms, angle_deg=12.0, x_boundary_nm=2.0)
    d = neighbor_list("d", out, 1.5)
    assert len(d) == 0  # no pair closer than 1.5 A
    g = out.arrays["grain"]
    assert np.count_nonzero(g == 0) == np.count_nonzero(atoms.positions[:, 0] < 20.0)
    # orientation of grain 1: direction of the projected Co-Co vectors within one layer
    # (a*sqrt(3)/2 apart in the [100] projection), which lie along x before the rotation
    co = (g == 1) & (np.array(out.get_chemical_symbols()) == "Co")
    sub = out[co]
    spacing = 2.816 * np.sqrt(3) / 2
    p, lay = sub.positions[:, :2], sub.arrays["layer"]
    dv = p[:, None, :] - p[None, :, :]
    dist = np.hypot(dv[..., 0], dv[..., 1])
    pair = (np.abs(dist - spacing) < 0.02) & (lay[:, None] == lay[None, :])
    angles = np.degrees(np.arctan2(dv[..., 1][pair], dv[..., 0][pair])) % 180
    assert len(angles) > 20
    np.testing.assert_allclose(angles, 12.0, atol=1e-6)


def test_c2m_block_keeps_honeycomb_order():
    atoms = stack([Block("C2/m", 6)], composition="Li2MnO3", width_nm=1.0, thickness_nm=0.9)
    n_beam = atoms.info["thickness_nm"] / atoms.info["a_nm"]  # beam period must be 3a
    assert n_beam == pytest.approx(round(n_beam)) and round(n_beam) % 3 == 0
    s = np.array(atoms.get_chemical_symbols())
    for k in (0, 2, 4):
        m = (atoms.arrays["layer"] == k) & (atoms.arrays["site"] == "TM")
        assert np.count_nonzero(s[m] == "Li") * 3 == m.sum()  # Li1/3 Mn2/3 layers
        # in a honeycomb layer every Mn has 3 Mn and 3 Li in-plane neighbours at a
        sub = atoms[m]
        i, j = neighbor_list("ij", sub, atoms.info["a_nm"] * 10 + 0.05)
        ss = np.array(sub.get_chemical_symbols())
        li_neighbours = Counter(i[(ss[i] == "Mn") & (ss[j] == "Li")])
        assert set(li_neighbours.values()) == {3}


def test_scene_is_reproducible_and_seeded():
    kw = dict(composition="NMC811", width_nm=1.5, thickness_nm=1.5)
    blocks = [Block("O3", 6, li_fraction=0.5)]
    a = stack(blocks, seed=1, **kw).get_chemical_symbols()
    assert a == stack(blocks, seed=1, **kw).get_chemical_symbols()
    assert a != stack(blocks, seed=2, **kw).get_chemical_symbols()


@pytest.mark.parametrize(("blocks", "kw", "match"), [
    ([], {}, "empty"),
    ([Block("rock_salt", 2, mixing=0.1)], {}, "mixing"),
    ([Block("O3", 2)], {"zone": "001"}, "zone"),
    ([Block("O2", 2)], {}, "phase"),
])
def test_stack_input_errors(blocks, kw, match):
    args = dict(composition="LiCoO2", width_nm=1.0, thickness_nm=1.0) | kw
    with pytest.raises(InputError, match=match):
        stack(blocks, **args)
