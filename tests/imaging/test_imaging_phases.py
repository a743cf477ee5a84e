"""Phase mapping on simulated images against the builder's ground truth (labels, blocks, mixing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scipy.spatial import cKDTree

from imaging_scenes import PX, degraded_stack, noisy, spinel_stack
from layerscope.imaging.phases import li_environment, o3_step_for_zone, spinel_tetrahedral_sites
from layerscope.imaging.pipeline import map_phases
from layerscope.imaging.scoring import score_columns, score_phases


@pytest.fixture(scope="module")
def scene():
    return degraded_stack()


@pytest.fixture(scope="module")
def mapped_1e4(scene):
    sim, _ = scene
    img = noisy(sim, 1e4, jitter_px=0.2)
    return img, map_phases(img, pixel_size_nm=PX, zone="100", composition="LiCoO2")


def _extent(img):
    return (img.shape[1] * PX, img.shape[0] * PX)


def test_phase_labels_match_the_truth(scene, mapped_1e4):
    sim, _ = scene
    img, pm = mapped_1e4
    ps = score_phases(pm.columns, sim.columns, extent_nm=_extent(img))
    # Issue targets: >= 97 % overall, >= 95 % for each phase (missing sites count as wrong).
    assert ps.accuracy >= 0.97
    assert set(ps.per_phase) == {"O3", "O3'", "O1", "rock_salt"}
    assert min(ps.per_phase.values()) >= 0.95
    assert ps.n_missing <= 0.01 * ps.n_truth


def test_columns_found_with_scan_noise(scene, mapped_1e4):
    sim, _ = scene
    img, pm = mapped_1e4
    cs = score_columns(pm.columns, sim.columns, extent_nm=_extent(img))
    assert cs.recall >= 0.99 and cs.precision >= 0.99
    # 1e4 e/A^2 plus 0.2 px line jitter (2.4 pm rms along x by itself): a few pm.
    assert cs.rms_pm < 4.0


def test_blocks_twin_surface_layer_and_interfaces(scene, mapped_1e4):
    sim, at = scene
    img, pm = mapped_1e4
    blocks = {b["phase"]: b for b in at.info["blocks"]}
    o1 = pm.domains[pm.domains["phase"] == "O1"].iloc[0]
    truth_o1 = blocks["O1"]
    assert abs(o1["n_cation_layers"] - truth_o1["n_layers"]) <= 1  # +/- 1 layer
    assert o1["thickness_nm"] == pytest.approx(truth_o1["y_max_nm"] - truth_o1["y_min_nm"], abs=0.25)
    twin = pm.domains[pm.domains["phase"] == "O3'"].iloc[0]
    # 3 cation layers (T L T) between two mirror planes: 3 reversed TM-TM steps, counted as the seed
    # studies count twin-like domains (its columns lie in 2 TM layers).
    assert twin["n_tm_layers"] == 3 and twin["twin_type"] == "multilayer"
    assert twin["n_tm_layers_labelled"] == 2
    rs = blocks["rock_salt"]
    surface = pm.summary["quantities"]["surface_layer"]
    assert surface["edge"] == "vacuum"
    assert surface["thickness_nm"] == pytest.approx(rs["y_max_nm"] - rs["y_min_nm"], abs=0.3)
    # Four interfaces down the stack, all abrupt as built.
    kinds = list(zip(pm.interfaces["upper_phase"], pm.interfaces["lower_phase"]))
    assert kinds == [("rock_salt", "O3"), ("O3", "O1"), ("O1", "O3"), ("O3", "O3'"), ("O3'", "O3")]
    assert set(pm.interfaces["type"]) == {"abrupt"}


def test_mixing_index_follows_the_tm_fraction(scene, mapped_1e4):
    sim, _ = scene
    img, pm = mapped_1e4
    fit = score_phases(pm.columns, sim.columns, extent_nm=_extent(img)).mixing_fit
    # Intensity ratio of a Li-layer column to its TM neighbours ~ its TM fraction (HAADF ~ sum Z^n;
    # Li and the O tails add a few per cent).
    assert fit["n"] > 150
    assert fit["slope"] == pytest.approx(1.0, abs=0.1)
    assert 0.0 <= fit["intercept"] <= 0.06
    # The region built with 20 % exchange (stack y 1.5-3.3 nm, +0.8 nm of vacuum) against the
    # unmixed O3 below. The index is relative to the neighbouring TM columns, which the exchange
    # depleted: expected = mean TM fraction of the Li-layer columns / that of the TM columns.
    li = pm.columns[(pm.columns["kind"] == "Li") & (pm.columns["phase"] == "O3")]
    t = sim.columns[sim.columns["phase"] == "O3"]
    for lo, hi in ((2.3, 4.1), (6.0, 10.0)):
        got = li[(li["y_nm"] > lo) & (li["y_nm"] < hi)]["mixing"].mean()
        region = t[(t["y_nm"] > lo) & (t["y_nm"] < hi)]
        want = region.loc[region["kind"] == "Li", "tm_fraction"].mean() / region.loc[
            region["kind"] == "TM", "tm_fraction"].mean()
        assert got == pytest.approx(want, abs=0.05)  # the Li and O tails add ~0.03


def test_spacings_per_phase(mapped_1e4):
    _, pm = mapped_1e4
    q = pm.summary["quantities"]
    # LiCoO2 O3 c/3 = 0.4683 nm; O1 CoO2 c = 0.429 nm (layerscope.crystal's values).
    assert q["tm_layer_spacing_nm"]["O3"] == pytest.approx(14.05 / 30, abs=0.003)
    assert q["tm_layer_spacing_nm"]["O1"] == pytest.approx(0.429, abs=0.005)
    assert q["inplane_spacing_nm"]["O3"] == pytest.approx(0.2816 * np.sqrt(3) / 2, abs=0.002)


def test_low_dose_labels(scene):
    # 1e3 e/A^2: about one detected electron at the peak of a TM column. The 20 % Li/TM mixing of
    # this scene makes random Li-layer columns alternate by chance over a 4 nm field, so the
    # tolerance here is the 95 % per-phase level (docs/validation.md gives the dose series).
    sim, _ = scene
    img = noisy(sim, 1e3, seed=5)
    pm = map_phases(img, pixel_size_nm=PX, zone="100", composition="LiCoO2")
    ps = score_phases(pm.columns, sim.columns, extent_nm=_extent(img))
    assert ps.accuracy >= 0.97
    assert min(ps.per_phase.values()) >= 0.95
    cs = score_columns(pm.columns, sim.columns, extent_nm=_extent(img))
    assert cs.recall >= 0.99 and cs.precision >= 0.99


def _truth_tetrahedral(truth):
    """The spinel's tetrahedral columns in the truth table: pure-Li columns of the spinel block."""
    return truth[(truth["phase"] == "spinel") & (truth["kind"] == "Li") & (truth["tm_fraction"] == 0)]


@pytest.mark.parametrize("zone", ["100", "110"])
def test_tetrahedral_columns_where_the_builder_puts_them(zone):
    # Geometry alone, on the builder's projected columns (no image): the empty octahedral sites of
    # each spinel Li layer lie one column spacing beside its TM columns; from them, the O3 step of
    # the zone and the distance between the TM layers, the predicted tetrahedral columns must land
    # on the builder's. Tolerance 3 pm: D/8 is a quarter of the spinel gap only when both TM layers
    # are spinel; against the O3 layer below the last Li layer it is 1.6 pm short.
    from layerscope.crystal import lattice
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import project_columns

    at = stack([Block("O3", 6), Block("spinel", 8), Block("O3", 6)], composition="LiCoO2", zone=zone,
               width_nm=3, thickness_nm=1.5, seed=1)
    truth = project_columns(at)
    width = at.info["width_nm"]
    d_t = lattice("O3", "LiCoO2").a_A / 10 * np.sqrt(3) / 2
    tm_y = truth[truth["kind"] == "TM"].groupby("layer")["y_nm"].mean()
    tm_phase = truth[truth["kind"] == "TM"].groupby("layer")["phase"].first()
    li_tm = truth[(truth["phase"] == "spinel") & (truth["kind"] == "Li") & (truth["tm_fraction"] > 0)]
    u = (li_tm["x_nm"].to_numpy() + d_t) % width  # the empty octahedral site beside each Li-layer TM
    k = li_tm["layer"].to_numpy()
    tet = spinel_tetrahedral_sites(
        u, li_tm["y_nm"].to_numpy(), np.full(u.size, o3_step_for_zone(zone) * d_t),
        tm_y.loc[k + 1].to_numpy() - tm_y.loc[k - 1].to_numpy(), lower=tm_phase.loc[k + 1].to_numpy() == "spinel")
    want = _truth_tetrahedral(truth)[["x_nm", "y_nm"]].to_numpy()
    got = np.column_stack([tet["u_nm"].to_numpy(), tet["v_nm"].to_numpy()])
    # The cell is periodic along x: match on a periodic box.
    box = [width, 10 * at.info["height_nm"]]
    want[:, 0], got[:, 0] = np.mod(want[:, 0], width) % width, np.mod(got[:, 0], width) % width
    # One empty site beside each Li-layer TM; two tetrahedra per empty site, none below the last
    # Li layer of the block (the O3 TM layer under it is full).
    last = k == k.max()
    assert len(got) == len(want) == 2 * len(li_tm) - int(last.sum())
    d_got, _ = cKDTree(want, boxsize=box).query(got)
    d_want, _ = cKDTree(got, boxsize=box).query(want)
    assert d_got.max() < 0.003 and d_want.max() < 0.003


def _spinel_block_checks(sim, pm, img):
    """Per-column scores of the spinel block and of the O3 around it; placed tetrahedral sites."""
    ps = score_phases(pm.columns, sim.columns, extent_nm=_extent(img))
    tet = pm.columns[pm.columns["site"] == "tetrahedral"]
    truth_tet = _truth_tetrahedral(sim.columns)
    w, h = _extent(img)
    inner = tet[(tet["x_nm"] > 0.3) & (tet["x_nm"] < w - 0.3) & (tet["y_nm"] > 0.3) & (tet["y_nm"] < h - 0.3)]
    d, _ = cKDTree(truth_tet[["x_nm", "y_nm"]].to_numpy()).query(inner[["x_nm", "y_nm"]].to_numpy())
    return ps, tet, d


@pytest.mark.parametrize("zone", ["100", "110"])
def test_spinel_block_labelled_completely(zone):
    # 1e4 e/A^2, 5 nm: every truth column of the block (kagome TM layers, the 1/4 TM of the Li
    # layers and the tetrahedral Li, which HAADF does not show) is matched to a site labelled
    # spinel, the O3 on both sides stays O3.
    sim, _ = spinel_stack(zone)
    img = noisy(sim, 1e4, seed=2)
    pm = map_phases(img, pixel_size_nm=PX, zone=zone, composition="LiCoO2")
    ps, tet, d = _spinel_block_checks(sim, pm, img)
    assert ps.per_phase["spinel"] >= 0.99
    assert ps.confusion.loc["O3", "O3"] >= 0.99 * ps.confusion.loc["O3"].sum()
    # Placed tetrahedral sites: kind Li, labelled spinel, each one inside the scoring margin within
    # the scoring tolerance of a truth tetrahedral column (none invented), and their mixing index ~0 (pure Li; the fast model's
    # Li/TM contrast is 0.02, the fit's background takes a little of the TM tails).
    assert len(tet) >= len(_truth_tetrahedral(sim.columns)) - 8  # the edges: the margin cuts a few
    assert set(tet["kind"]) == {"Li"} and set(tet["phase"]) == {"spinel"}
    assert np.all(d < 0.07) and np.median(d) < 0.01
    assert abs(float(np.nanmedian(tet["mixing"]))) < 0.05


@pytest.mark.parametrize("zone", ["100", "110"])
def test_spinel_block_at_low_dose(zone):
    # 1e3 e/A^2 on a 5 nm thick specimen (~12 detected electrons per TM column), three noise
    # realisations per zone: in each, spinel per column >= 95 % (missing columns count as wrong)
    # and the neighbouring O3 stays O3. A Li layer of the block whose sublattice contrast is under
    # 4 standard errors joins the block through its spinel neighbours (0.49-0.76 per image
    # without that; docs/validation.md has 5e2 and 10 nm).
    sim, _ = spinel_stack(zone, 5.0)
    for seed in (10, 11, 12):
        img = noisy(sim, 1e3, seed=seed)
        pm = map_phases(img, pixel_size_nm=PX, zone=zone, composition="LiCoO2")
        ps = score_phases(pm.columns, sim.columns, extent_nm=_extent(img))
        assert ps.per_phase["spinel"] >= 0.95
        assert ps.per_phase["O3"] >= 0.99


def _alternating_layer(n: int, first: float, second: float) -> np.ndarray:
    """Mixing of a Li layer of ``n`` sites: even sites empty (0), odd sites alternating ``first``
    (sites 1, 5, 9, ...) and ``second`` (3, 7, ...): a spinel sublattice order with deterministic
    "noise" whose second-neighbour scatter is ``|first - second|`` on the filled sublattice."""
    k = np.arange(n)
    return np.where(k % 2 == 1, np.where(k % 4 == 1, first, second), 0.0)


@pytest.mark.parametrize("zone", ["100", "110"])
def test_spinel_block_at_500_e_per_A2(zone):
    # 5e2 e/A^2 on a 5 nm thick specimen (~3 detected electrons per filled spinel column), five
    # noise realisations per zone: spinel per column >= 95 % pooled over the five (the issue's
    # target) and >= 90 % in each; the O3 around the block >= 99 %. Before the sublattice test
    # took intensities over the window's mean reference, widened unsure windows and accepted a
    # layer between two spinel layers at 2 standard errors, this read 0.46-0.94 per image ([100],
    # pooled 0.65) and 0.72-1.00 ([110], pooled 0.84).
    sim, _ = spinel_stack(zone, 5.0)
    right = total = 0
    for seed in range(10, 15):
        img = noisy(sim, 5e2, seed=seed)
        ps = score_phases(map_phases(img, pixel_size_nm=PX, zone=zone, composition="LiCoO2").columns, sim.columns,
                          extent_nm=_extent(img))
        assert ps.per_phase["spinel"] >= 0.90
        assert ps.per_phase["O3"] >= 0.99
        n_spinel = int(ps.confusion.loc["spinel"].sum())
        right += ps.per_phase["spinel"] * n_spinel
        total += n_spinel
    assert right / total >= 0.95


def test_spinel_test_reads_intensities_over_the_window_reference():
    # One Li layer of 24 sites, even sites empty, odd sites holding the same intensity 0.6 (of a
    # TM column of 1.0). Every fourth site's reference (its 4 TM neighbours) reads 0.25 instead of
    # 1.0, as a dim reference does at a few electrons per column: its mixing index is 2.4. Per-site
    # ratios then scatter by +-0.9 between second neighbours and the contrast is under 4 standard
    # errors: layered (as this layer read before the window reference). Over the window's mean
    # reference (~0.81) every filled site reads ~0.74 and the layer is spinel.
    n, d_t = 24, 0.25
    u = np.arange(n) * d_t
    filled = np.arange(n) % 2 == 1
    reference = np.where(np.arange(n) % 4 == 1, 0.25, 1.0)
    mixing = np.where(filled, 0.6, 0.0) / reference
    with_ref = li_environment(u, np.zeros(n, int), mixing, inplane_spacing_nm=d_t, reference=reference)
    assert set(with_ref["environment"]) == {"spinel"}
    np.testing.assert_array_equal(with_ref["dark_sublattice"].to_numpy(), ~filled)


def test_a_spinel_layer_over_the_rock_salt_mean_stays_spinel():
    # Filled sites read 1.4 (next to half-empty kagome TM columns), empty ones 0: the window mean
    # (0.7) is over the rock-salt threshold (0.6), but one sublattice is empty: spinel. A layer
    # whose two sublattices are both filled (1.0 +- 0.1) is rock salt.
    n, d_t = 24, 0.25
    u = np.arange(n) * d_t
    spinel = _alternating_layer(n, 1.45, 1.35)
    rock_salt = 1.0 + 0.1 * np.where(np.arange(n) % 3 == 0, 1, -1)
    env_s = li_environment(u, np.zeros(n, int), spinel, inplane_spacing_nm=d_t)
    env_r = li_environment(u, np.zeros(n, int), rock_salt, inplane_spacing_nm=d_t)
    assert set(env_s["environment"]) == {"spinel"}
    assert set(env_r["environment"]) == {"rock_salt"}


def test_a_faint_layer_between_two_spinel_layers_joins_them():
    # Three Li layers of 24 sites, even sites empty. The outer two are clearly spinel. The middle
    # one's filled sites alternate 0.42, 0.12 (contrast 0.27, under the 0.3 spinel minimum; per-
    # site sigma 0.15 from second-neighbour differences, so 2.3-3.2 standard errors over 13 sites):
    # between two spinel layers it is spinel (2 standard errors, dark <= half the bright); next to
    # one spinel layer only (the other layered) it stays layered.
    n, d_t = 24, 0.25
    u1 = np.arange(n) * d_t
    clear = _alternating_layer(n, 0.82, 0.78)
    faint = _alternating_layer(n, 0.42, 0.12)
    flat = _alternating_layer(n, 0.05, 0.05)
    u = np.tile(u1, 3)
    layer = np.repeat([1, 3, 5], n)
    inside = li_environment(u, layer, np.concatenate([clear, faint, clear]), inplane_spacing_nm=d_t)
    edge = li_environment(u, layer, np.concatenate([clear, faint, flat]), inplane_spacing_nm=d_t)
    assert set(inside["environment"]) == {"spinel"}
    assert set(edge["environment"][layer == 3]) == {"layered"}


def test_an_unsure_spinel_window_widens():
    # Two Li layers of 64 sites, even sites empty. Layer 1 is clearly spinel. Layer 3's filled sites
    # alternate 0.7, 0.0 (contrast 0.35, per-site sigma 0.35): 1.2-2.1 standard errors over 13
    # sites, under the 2.5 that lets it join its spinel neighbour, but 2.5-3.0 over 33 sites: its
    # middle (where the 33-site window fits) is spinel. Without widening (max_half_window = the
    # 13-site window's 6) it is layered; alone (no spinel neighbour) it is layered too: a widened
    # window never seeds a block.
    n, d_t = 64, 0.25
    u1 = np.arange(n) * d_t
    clear = _alternating_layer(n, 0.82, 0.78)
    unsure = _alternating_layer(n, 0.7, 0.0)
    u, layer, mixing = np.tile(u1, 2), np.repeat([1, 3], n), np.concatenate([clear, unsure])
    wide = li_environment(u, layer, mixing, inplane_spacing_nm=d_t)["environment"].to_numpy()[n:]
    narrow = li_environment(u, layer, mixing, inplane_spacing_nm=d_t, max_half_window=6)["environment"].to_numpy()[n:]
    alone = li_environment(u1, np.full(n, 3), unsure, inplane_spacing_nm=d_t)
    assert set(wide[16:48]) == {"spinel"}
    assert set(narrow) == {"layered"}
    assert set(alone["environment"]) == {"layered"}


def test_spinel_sublattices_and_the_tm_layers_pattern():
    # One Li layer of 24 sites (d_t = 0.25 nm): empty even sites (mixing 0), filled odd sites whose
    # mixing alternates 0.95, 0.25 (mean 0.6; deterministic "noise"). Second-neighbour differences
    # are +-0.7 on the filled and 0 on the empty sublattice, so sigma = sqrt(0.245) = 0.49 / sqrt(2)
    # = 0.35 and, over 13-site windows (6 and 7 sites), 4 standard errors = 4 * 0.35 * 0.556 = 0.78:
    # the layer's contrast of 0.6 alone is not spinel. The TM layers' pattern, +0.5 at the filled
    # and -0.5 at the empty sites, adds 0.35 * 1.0 to the contrast (0.95 > 0.78) and nothing to the
    # differences: spinel, with the even sites as the dark (empty) sublattice. The same pattern with
    # seeded random signs (out of phase with the layer) must not make spinel of it.
    n, d_t = 24, 0.25
    u = np.arange(n) * d_t
    filled = np.arange(n) % 2 == 1
    mixing = np.where(filled, np.where(np.arange(n) % 4 == 1, 0.95, 0.25), 0.0)
    pattern = np.where(filled, 0.5, -0.5)
    layer = np.zeros(n, int)
    alone = li_environment(u, layer, mixing, inplane_spacing_nm=d_t)
    both = li_environment(u, layer, mixing, inplane_spacing_nm=d_t, tm_pattern=pattern)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], n)
    scrambled = li_environment(u, layer, mixing, inplane_spacing_nm=d_t, tm_pattern=0.5 * signs)
    assert set(alone["environment"]) == {"layered"}
    assert set(both["environment"]) == {"spinel"}
    np.testing.assert_array_equal(both["dark_sublattice"].to_numpy(), ~filled)
    assert "spinel" not in set(scrambled["environment"])


def test_a_missing_tm_column_is_placed_on_the_lattice():
    # A drawn O3 TM lattice (Li invisible) with one interior TM column left out: the site is
    # reported (detected False) where the lattice puts it, with about no intensity, and the Li-layer
    # sites next to it are still there.
    from imaging_synthetic import draw_columns, layered_lattice
    px = 0.01
    x, y, _ = layered_lattice(width_nm=4.0, height_nm=4.0, shift_per_layer=-1 / 3)
    centre = np.argmin(np.hypot(x - 2.0, y - 2.0))
    keep = np.arange(x.size) != centre
    clean = draw_columns((400, 400), x[keep], y[keep], 1.0, pixel_size_nm=px, sigma_nm=0.04, background=0.05)
    img = np.random.default_rng(0).poisson(clean * 200.0).astype(float)
    pm = map_phases(img, pixel_size_nm=px, zone="100", composition="LiCoO2")
    res = pm.result
    tm = res.columns[res.columns["kind"] == "TM"]
    placed = tm[~tm["detected"]]
    assert len(placed) == 1
    assert any("1 TM columns missing" in note for note in res.notes)
    assert pm.summary["columns"]["tm_placed"] == 1
    assert pm.columns.loc[(pm.columns["kind"] == "TM") & ~pm.columns["detected"], "phase"].tolist() == ["O3"]
    assert np.hypot(placed["x_nm"].iloc[0] - x[centre], placed["y_nm"].iloc[0] - y[centre]) < 0.01
    assert placed["intensity"].iloc[0] < 0.05 * np.median(tm.loc[tm["detected"], "intensity"])
    li = res.columns[res.columns["kind"] == "Li"]
    near = np.hypot(li["x_nm"] - x[centre], li["y_nm"] - y[centre]) < 0.3
    # Two sites of each neighbouring Li layer lie within 0.3 nm (0.234 nm across, d_t/3 and 2 d_t/3 aside).
    assert near.sum() == 4


def test_local_mixing_is_a_ratio_of_sums_at_low_counts():
    # A rock-salt-like Li layer (site as bright as its TM neighbours: truth ratio 1) at ~4 detected
    # electrons per column: the mean of per-site ratios is pulled up by the dimmest references
    # (Jensen), the reference-weighted mean (summed intensities over summed references) is not.
    rng = np.random.default_rng(0)
    d_t, n_sites, n_layers = 0.2438, 40, 200
    u = np.tile(np.arange(n_sites) * d_t, n_layers)
    layer = np.repeat(np.arange(n_layers) * 2 + 1, n_sites)
    amp = rng.poisson(4.0, u.size).astype(float)
    ref = rng.poisson(16.0, u.size) / 4.0  # the mean of 4 TM columns
    mixing = amp / ref
    plain = li_environment(u, layer, mixing, inplane_spacing_nm=d_t)["local_mixing"].to_numpy()
    weighted = li_environment(u, layer, mixing, inplane_spacing_nm=d_t, reference=ref)["local_mixing"].to_numpy()
    assert np.mean(plain) > 1.05
    assert np.mean(weighted) == pytest.approx(1.0, abs=0.02)  # 1/144 from the summed references, edges more
    # At one interior site it is exactly the window's summed intensities over its summed references.
    w = slice(10 - 4, 10 + 5)
    assert weighted[10] == pytest.approx(amp[w].sum() / ref[w].sum(), rel=1e-12)


def test_a_spinel_block_does_not_turn_the_layers():
    # O3 | spinel | O3, 10 nm, 1e3 e/A^2: the spinel's inclined {111} fringe (70.5 deg from the
    # basal planes, the same 0.46 nm spacing) came out 1 % stronger than the basal one in this noise
    # realisation and the whole image was indexed along it (every O3 column mislabelled). The basal
    # fringe is the one that runs through the whole field.
    sim, _ = spinel_stack("100", 10.0)
    img = noisy(sim, 1e3, seed=13)
    pm = map_phases(img, pixel_size_nm=PX, zone="100", composition="LiCoO2")
    assert pm.result.lattice.angle_deg == pytest.approx(0.0, abs=0.5)
    ps = score_phases(pm.columns, sim.columns, extent_nm=_extent(img))
    assert ps.per_phase["O3"] >= 0.97 and ps.per_phase["spinel"] >= 0.95


@pytest.mark.parametrize(("zone", "seed"), [("100", 1), ("110", 2)])
def test_thin_specimen_at_500_e_per_A2(zone, seed):
    # 5 nm thick, 5e2 e/A^2 with line jitter: ~6 detected electrons per TM column. The issue's
    # targets hold here too (>= 97 % overall, >= 95 % per phase). These two realisations were the
    # worst of the sweep: a rock-salt Li layer whose 9-site mean dipped under the threshold over
    # half its length ([100], rock salt 0.67), a mixed O3 layer lifted to rock salt by noise maxima
    # beside its sites taken for extra columns ([110], O3 0.90).
    sim, _ = degraded_stack(zone, 5.0)
    img = noisy(sim, 5e2, seed=seed, jitter_px=0.2)
    pm = map_phases(img, pixel_size_nm=PX, zone=zone, composition="LiCoO2")
    ps = score_phases(pm.columns, sim.columns, extent_nm=_extent(img))
    assert ps.accuracy >= 0.97
    assert min(ps.per_phase.values()) >= 0.95
    # The summary says where the rock-salt decision pooled more than 9 sites (here: whole layers).
    pooled = [n for n in pm.summary["notes"] if "rock-salt decision pooled" in n]
    assert len(pooled) == 1 and "up to 33 sites" in pooled[0]
    # ... and the report section shows it.
    from markupsafe import escape

    from layerscope.imaging.report import phase_section
    from layerscope.report.html import render_html

    assert str(escape(pooled[0])) in render_html([phase_section(pm, img)], title="thin")


def test_no_pooling_note_at_high_counts(mapped_1e4):
    _, pm = mapped_1e4
    assert not any("rock-salt decision pooled" in n for n in pm.summary["notes"])


def test_rock_salt_window_widens_where_the_decision_is_unsure():
    # 100 Li layers of 40 sites at ~2 detected electrons per column (reference: the mean of 4 TM
    # columns). Rock salt (truth ratio 1.0): the 9-site mean alone leaves ~5 % of the sites under
    # the 0.6 threshold; widened where it is within 2 standard errors of it, every site is rock
    # salt. A 20 %-mixed O3 layer (ratio 0.26) read the same way: no site (1.2 % without it).
    rng = np.random.default_rng(1)
    d_t, n_sites, n_layers = 0.2438, 40, 100
    u = np.tile(np.arange(n_sites) * d_t, n_layers)
    layer = np.repeat(np.arange(n_layers) * 2 + 1, n_sites)
    for truth, want in ((1.0, 1.0), (0.26, 0.0)):
        amp = rng.poisson(2.0 * truth, u.size).astype(float)
        ref = rng.poisson(8.0, u.size) / 4.0
        mixing = np.divide(amp, ref, out=np.full(u.size, np.nan), where=ref > 0)
        env = li_environment(u, layer, mixing, inplane_spacing_nm=d_t, reference=ref)
        assert np.mean(env["environment"] == "rock_salt") == pytest.approx(want, abs=0.002)
        assert set(env["rock_salt_window"]) <= {9, 17, 33} and env["rock_salt_window"].max() > 9
    # With little noise a rock-salt half-layer next to a layered one keeps its
    # edge within one window (4 sites) of the truth.
    m = np.where(np.arange(n_sites) < 20, 1.0, 0.1) + 0.02 * np.cos(np.arange(n_sites))
    env = li_environment(u[:n_sites], np.ones(n_sites, int), m, inplane_spacing_nm=d_t)
    rs = np.nonzero(env["environment"].to_numpy() == "rock_salt")[0]
    assert rs.min() == 0 and abs(rs.max() - 19) <= 4


def test_a_weak_spinel_layer_joins_its_spinel_neighbours():
    # Three Li layers of 24 sites (d_t = 0.25 nm), the even sites empty. The outer two hold a clear
    # spinel order (filled sites 0.8 +- 0.02); the middle one's filled sites alternate 0.9, 0.3, so
    # its contrast (0.6) is 3.6 standard errors over 13-site windows: below the 4 needed alone (it
    # stays layered when read alone), above the 2.5 that lets it join a spinel layer next to it.
    n, d_t = 24, 0.25
    u1 = np.arange(n) * d_t
    clear = _alternating_layer(n, 0.82, 0.78)
    weak = _alternating_layer(n, 0.9, 0.3)
    alone = li_environment(u1, np.full(n, 3), weak, inplane_spacing_nm=d_t)
    assert set(alone["environment"]) == {"layered"}
    u = np.tile(u1, 3)
    layer = np.repeat([1, 3, 5], n)
    block = li_environment(u, layer, np.concatenate([clear, weak, clear]), inplane_spacing_nm=d_t)
    assert set(block["environment"]) == {"spinel"}
    # Between two layered layers it stays layered.
    flat = _alternating_layer(n, 0.05, 0.05)
    isolated = li_environment(u, layer, np.concatenate([flat, weak, flat]), inplane_spacing_nm=d_t)
    assert set(isolated["environment"]) == {"layered"}


def test_off_relations_are_read_again_over_wider_windows():
    # [110] (O3 step -1/3: O1 at 0, O3' at -1/3). Layer 0: an O1 relation measured at 5e2 e/A^2
    # (a real case, 5 nm): biased by -0.07 and two badly placed columns at its right end (-0.32).
    # Over 5 pairs four near the end are off; over wider windows, and then as the nearest stacking that
    # most pairs of the layer hold, all are O1. Layer 2: a glide (registry 0.17 everywhere) stays off.
    from layerscope.imaging.pipeline import _classify_registry

    d_t = 0.2438
    r0 = np.array([-0.08, -0.12, 0.02, -0.03, -0.10, -0.07, -0.12, 0.05, -0.14, -0.03, -0.16, -0.04, -0.32,
                   -0.32, -0.08])
    r2 = 0.17 + 0.01 * np.cos(np.arange(15))
    from layerscope.imaging.lattice import smooth_registry

    u = np.tile(np.arange(15) * d_t, 2)
    layer = np.repeat([0, 2], 15)
    windows = [smooth_registry(u, layer, np.concatenate([r0, r2]), half_window=h, max_gap_nm=1.5 * d_t)
               for h in (2, 4, 8)]
    smoothed, rel = _classify_registry(windows, layer, o3_step=-1 / 3)
    # The last pair's one-sided window (3 pairs, -0.25) lies within the twin's tolerance: twin-like
    # next to O1 is the O1 block's edge for the labeller (the TM column is O1 either way).
    assert set(rel[:14]) == {"O1"} and rel[14] == "O3'"
    assert set(rel[15:]) == {"off"}
    assert np.all(np.abs(smoothed[:14]) < 1 / 6)


def test_a_maximum_beside_a_site_is_not_another_column():
    # Predicted sites every d_t along a Li layer; detected maxima: one on a site (it takes it), one
    # 0.4 d_t beside a site and 0.08 nm off the layer line (a noise maximum: dropped), one where the
    # layer has no site (past its end: kept, as a column the lattice did not predict).
    from layerscope.imaging.pipeline import _merge_li_sites

    d_t = 0.2438
    sites = pd.DataFrame({"u_nm": np.arange(10) * d_t, "v_nm": np.zeros(10), "layer": 1, "pair": np.arange(10),
                          "context": np.arange(10), "step": 1 / 3})
    found = pd.DataFrame({"u_nm": [3 * d_t + 0.005, 5.4 * d_t, 12 * d_t], "v_nm": [0.002, 0.08, 0.0], "layer": 1,
                          "fit_ok": True, "position_error_pm": 5.0, "sigma_nm": 0.03})
    out = _merge_li_sites(sites, found, d_t=d_t, cation=0.234)
    assert len(out) == 11
    assert out["detected"].sum() == 2
    assert out.loc[out["detected"], "u_nm"].round(4).tolist() == [round(3 * d_t + 0.005, 4), round(12 * d_t, 4)]
