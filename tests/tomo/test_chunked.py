"""Bounded-memory analysis (``TomoOptions(out_of_core=True)``, ``layerscope.tomo.chunked``): slabs of z
slices and one particle cluster at a time must give exactly the numbers of the in-memory analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scipy import ndimage as ndi

from layerscope.tomo import TomoOptions, Volume, analyse
from layerscope.tomo.phantom import CrackSpec, ParticleSpec, PoreSpec, build_phantom


def _same(a, b) -> None:
    """Exactly equal tables, labels and kinds (no tolerance: the same voxels and the same floats)."""
    for name in ("particles", "cracks", "pores"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert np.array_equal(np.asarray(a.particle_labels), np.asarray(b.particle_labels))
    assert np.array_equal(np.asarray(a.feature_labels), np.asarray(b.feature_labels))
    assert a.feature_kind == b.feature_kind
    for key in ("n_particles", "n_cracks", "n_pores", "crack_volume_fraction", "levels", "label_fractions", "porosity"):
        assert a.summary.get(key) == b.summary.get(key), key


@pytest.fixture(scope="module")
def grey(phantom_result):
    """The reconstructed phantom (4 particles, 2 touching; 4 cracks, one open; 3 pores) as a grey volume."""
    vol = Volume(np.asarray(phantom_result.volume), 50.0, labels=False)
    return vol, analyse(vol, TomoOptions())


@pytest.mark.parametrize("slab_slices", [5, 13, 64])
def test_slabs_equal_the_in_memory_analysis_on_threads(grey, slab_slices, tmp_path):
    vol, here = grey
    assert len(here.particles) == 4 and len(here.cracks) == 4 and len(here.pores) == 3
    chunked = analyse(vol, TomoOptions(out_of_core=True, slab_slices=slab_slices), scheduler="threads",
                      scratch_dir=tmp_path)
    _same(here, chunked)
    assert list(tmp_path.iterdir()) == []  # scratch files are gone


def test_local_cluster_equals_the_in_memory_analysis(grey):
    from distributed import Client, LocalCluster

    vol, here = grey
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        there = analyse(vol, TomoOptions(out_of_core=True, slab_slices=7), scheduler=client)
    _same(here, there)


def test_label_volume_and_memory_map(phantom, tmp_path):
    """A segmented volume (1 solid, 2 pores and cracks, 0 epoxy) read through a memory map: same numbers;
    particles split across slab faces are joined."""
    labels = np.where(phantom.particles > 0, 1, 0).astype(np.uint8)
    labels[(phantom.cracks > 0) | (phantom.pores > 0)] = 2
    disk = np.lib.format.open_memmap(tmp_path / "labels.npy", mode="w+", dtype=np.uint8, shape=labels.shape)
    disk[:] = labels
    opts = dict(particle_label=1, pore_label=2)
    here = analyse(Volume(labels, 50.0, labels=True), TomoOptions(**opts))
    there = analyse(Volume(disk, 50.0, labels=True), TomoOptions(out_of_core=True, slab_slices=6, **opts))
    assert len(here.particles) == 4 and len(here.cracks) == 4
    _same(here, there)


def test_real_electrode_crop_matches_in_memory(shared_data):
    """The real NREL NMC electrode (64 x 128 x 128 crop of labels): the NMC percolates (one cluster of
    half the crop, which the out-of-core analysis then holds whole) across slab faces. Unsplit: identical. Split: same particles; where two watershed fronts meet
    on a plateau of the distance transform the tie is broken by the order of scikit-image's heap,
    which holds the whole volume in memory and one cluster here: 2 of 85 particles trade 3 voxels."""
    import tifffile

    v = tifffile.imread(shared_data / "tomo" / "nrel_nmc_ct" / "nmc-1-cal_generatedCBD_bridge.tif")
    crop = np.ascontiguousarray(v[:64, :128, :128])
    opts = dict(particle_label=1, pore_label=0, crack_max_width_nm=0.0)
    here = analyse(Volume(crop, 400.0, labels=True), TomoOptions(split=False, **opts))
    there = analyse(Volume(crop, 400.0, labels=True), TomoOptions(split=False, out_of_core=True, slab_slices=10, **opts))
    assert len(here.particles) == 2 and here.particles["volume_voxels"].max() > 0.5e6  # one cluster percolates
    _same(here, there)
    here = analyse(Volume(crop, 400.0, labels=True), TomoOptions(**opts))
    there = analyse(Volume(crop, 400.0, labels=True), TomoOptions(out_of_core=True, slab_slices=10, **opts))
    assert len(here.particles) == len(there.particles) > 50
    a, b = np.asarray(here.particle_labels), np.asarray(there.particle_labels)
    assert np.array_equal(a > 0, b > 0)
    assert (a != b).sum() <= 0.001 * (a > 0).sum(), (a != b).sum()
    dv = np.abs(here.particles["volume_voxels"] - there.particles["volume_voxels"])
    assert (dv > 0).sum() <= 4 and dv.max() <= 10, dv[dv > 0]
    assert here.summary["porosity"] == there.summary["porosity"] and here.summary["n_cracks"] == there.summary["n_cracks"]


def test_slab_slices_must_be_positive(grey):
    from layerscope.errors import InputError

    with pytest.raises(InputError, match="--slab-slices"):
        analyse(grey[0], TomoOptions(out_of_core=True, slab_slices=0))


def test_volume_files_are_memory_mapped_for_out_of_core(phantom, tmp_path):
    """``read_tomo(..., mmap=True)`` (what ``--out-of-core`` uses): an uncompressed TIFF and an MRC volume
    stay on disk as read-only memory maps, with the same values and voxel size as a plain read."""
    import mrcfile

    from layerscope.tomo import read_tomo
    from layerscope.tomo.outputs import write_volume

    tif = write_volume(phantom.volume, 50.0, tmp_path / "v.tif")
    with mrcfile.new(tmp_path / "v.mrc") as m:
        m.set_data(phantom.volume.astype(np.float32))
        m.voxel_size = 500.0  # Angstrom
    for path in (tif, tmp_path / "v.mrc"):
        mapped, plain = read_tomo(path, volume=True, mmap=True), read_tomo(path, volume=True)
        assert isinstance(mapped.data.base, np.memmap) and not isinstance(plain.data.base, np.memmap)
        assert np.array_equal(mapped.data, plain.data) and mapped.voxel_size_nm == plain.voxel_size_nm == 50.0


def _percolating(size: int) -> np.ndarray:
    """Particles 1-3 of the phantom's truth cut flat by 5 voxels and mirrored along every axis, tiled to
    ``size^3``: the cut faces meet their mirror images, so one cluster spans the volume (as in
    benchmarks/tomo_percolating.py)."""
    from layerscope.tomo import default_phantom

    v = default_phantom(64).volume[24:42, 14:51, 13:52]
    for ax in range(3):
        v = np.concatenate([v, np.flip(v, ax)], axis=ax)
    return np.ascontiguousarray(np.tile(v, (3, 2, 2))[:size, :size, :size], dtype=np.float32)


@pytest.fixture
def pieces(monkeypatch):
    """Lower ``MAX_CLUSTER_VOXELS`` so that clusters are split in slabs and measured by groups of particles; record the
    boxes of the clusters split that way."""
    import layerscope.tomo.chunked as chunked

    split, boxes = chunked._split_big, []

    def spy(comp, c, sl, *args, **kwargs):
        boxes.append(tuple((s.start, s.stop) for s in sl))
        return split(comp, c, sl, *args, **kwargs)

    monkeypatch.setattr(chunked, "_split_big", spy)
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 20 ** 3)
    return boxes


def test_percolating_cluster_in_slabs_and_per_particle_equals_whole_cluster(pieces, monkeypatch):
    """A 96^3 volume whose particles form one cluster spanning it, split in slabs of 8 z slices (EDT with a
    checked halo, h-maxima seeds with a halo of the largest distance plus 4, watershed with twice that)
    and measured by groups of particles (those starting in one slab) on cuts shorter than the box: the
    same particles, labels, cracks and pores, exactly, as the whole-cluster path (the limit above the
    volume; 53 particles, 52 cracks, 67 pores). The default phantom's cracks continue through the mirror
    faces into the mirrored particles: its crack labels tiled the same way hold 76 pieces of at least 100
    voxels per particle found (32 of the 53 particles have that count); before shared features were cut at
    the contact, each such crack was dropped whole as the gap between two particles (20 cracks, 17 of 53).

    Run with ``segment.TIED_TOPS`` off: a particle and its mirror image have tied distance tops by construction,
    less than h above the mirror face, so the join makes the twins one particle and the chains of twins through
    the tiles span the box (19 particles, groups as tall as the box), which leaves nothing of this test's slab
    groups to check; tests/tomo/test_tied_tops.py checks the join in slabs (docs/validation.md "tomosplit: tied
    tops"). The groups are checked with ``chunked.TALL_SLABS`` off; with it (2 slabs, the default) 51 of the 53
    particles here are taller than 16 slices and measured alone on their own box: the same numbers (docs/validation.md
    "tomomem")."""
    import layerscope.tomo.chunked as chunked
    import layerscope.tomo.segment as segment

    monkeypatch.setattr(segment, "TIED_TOPS", False)

    task, cuts, alone_cuts = chunked._slab_group_task, [], []

    def spy(item, **kwargs):
        cuts.append((tuple(s.stop - s.start for s in item[0]), len(item[1])))
        alone_cuts.append((cuts[-1][0], list(item[1])))
        return task(item, **kwargs)

    monkeypatch.setattr(chunked, "_slab_group_task", spy)
    monkeypatch.setattr(chunked, "TALL_SLABS", None)  # every particle in its slab's group (the groups checked here)
    vol = Volume(_percolating(96), 50.0, labels=False)
    pieces_run = analyse(vol, TomoOptions(out_of_core=True, slab_slices=8), scheduler="threads")
    assert pieces == [((0, 96), (0, 96), (0, 96))]  # one cluster, the whole volume, done in pieces
    groups = [size for size, n in cuts if n > 0]  # the others: a long feature alone, with its owner
    assert sum(n for _, n in cuts) == len(pieces_run.particles) and len(groups) <= 96 // 8  # each particle once
    assert max(z for z, _, _ in groups) <= 72, cuts  # no group holds the box: a slab, its particles, 2 margins
    assert max(np.prod(size) for size, n in cuts if n == 0) < 0.5 * 96 ** 3, cuts  # the channels' boxes
    monkeypatch.setattr(chunked, "TALL_SLABS", 2)  # the default: 51 particles here are taller than 16 slices
    cuts.clear()
    alone_cuts.clear()
    alone_run = analyse(vol, TomoOptions(out_of_core=True, slab_slices=8), scheduler="threads")
    assert sorted(n for _, n in cuts if n > 0) == [1] * 51 + [2], cuts  # 51 alone on their own box; 2 of <= 16 slices
    zext = [s[0].stop - s[0].start for s in ndi.find_objects(np.asarray(alone_run.particle_labels))]
    tall = [size for size, pid in alone_cuts if len(pid) == 1 and zext[pid[0] - 1] > 16]
    assert len(tall) >= 45 and max(y * x for _, y, x in tall) < 96 * 96, tall  # alone: not the box's width
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 96 ** 3)
    whole = analyse(vol, TomoOptions(out_of_core=True, slab_slices=8), scheduler="threads")
    assert len(pieces) == 2  # the whole-cluster run did not split
    assert (len(whole.particles), len(whole.cracks), len(whole.pores)) == (53, 52, 67)
    _same(whole, pieces_run)
    _same(whole, alone_run)


def test_cluster_in_pieces_equals_the_in_memory_analysis(grey, pieces):
    """The reconstructed phantom (noise, an open crack, two touching particles) with its clusters split in
    slabs and measured per particle: exactly the in-memory numbers."""
    vol, here = grey
    there = analyse(vol, TomoOptions(out_of_core=True, slab_slices=9), scheduler="threads")
    assert len(pieces) >= 1
    _same(here, there)


def test_real_electrode_cluster_in_pieces(shared_data, pieces):
    """The NREL crop's percolating NMC cluster split in slabs of 10 and measured per particle: unsplit
    identical to the in-memory analysis; split within the bound of the whole-cluster test above."""
    import tifffile

    v = tifffile.imread(shared_data / "tomo" / "nrel_nmc_ct" / "nmc-1-cal_generatedCBD_bridge.tif")
    vol = Volume(np.ascontiguousarray(v[:64, :128, :128]), 400.0, labels=True)
    opts = dict(particle_label=1, pore_label=0, crack_max_width_nm=0.0)
    _same(analyse(vol, TomoOptions(split=False, **opts)), analyse(vol, TomoOptions(split=False, out_of_core=True,
                                                                                  slab_slices=10, **opts)))
    here, there = analyse(vol, TomoOptions(**opts)), analyse(vol, TomoOptions(out_of_core=True, slab_slices=10, **opts))
    assert max(np.prod([b - a for a, b in box]) for box in pieces) > 0.5 * 64 * 128 * 128
    assert len(here.particles) == len(there.particles) > 50
    a, b = np.asarray(here.particle_labels), np.asarray(there.particle_labels)
    assert np.array_equal(a > 0, b > 0)
    assert (a != b).sum() <= 0.001 * (a > 0).sum(), (a != b).sum()
    assert here.summary["porosity"] == there.summary["porosity"] and here.summary["n_cracks"] == there.summary["n_cracks"]


def test_slab_seeds_equal_the_whole_box_where_the_path_to_a_higher_maximum_leaves_the_halo(tmp_path, monkeypatch):
    """A tube along z whose radius has a 1-voxel bump near one end (below h = 2), dips, then rises slowly to
    10.6 voxels 100 slices away: the whole box has one seed (the far end). A slab of 8 with the old halo
    (largest distance + 4 = 15) sees the bump as a maximum (its path to a higher one leaves the halo); the
    checked slabs find that and grow the halo: the same single seed, voxel for voxel. With the regrowth capped
    at the first block, the false seed stays and the slab is counted unproven."""
    from skimage.morphology import h_maxima

    import layerscope.tomo.chunked as chunked

    z = np.arange(120.0)
    r = np.where(z < 20, 5 + np.exp(-((z - 10) / 4) ** 2), 5 + (z - 20) * 5 / 90)
    zz, yy, xx = np.meshgrid(z, np.arange(25.0) - 12, np.arange(25.0) - 12, indexing="ij")
    edt = ndi.distance_transform_edt((yy ** 2 + xx ** 2) <= r[:, None, None] ** 2)
    whole = h_maxima(edt, 2.0) > 0
    assert ndi.label(whole, structure=np.ones((3, 3, 3)))[1] == 1
    halo = chunked._seed_halo(edt.max())  # 15
    unchecked = h_maxima(edt[:8 + 8 + halo], 2.0)[8:16] > 0  # the slab 8:16 with the halo alone
    assert unchecked.sum() == 1 and not whole[8:16].any()  # a seed the whole box does not have
    markers, n, unproven = chunked._slab_seeds(edt, 1, halo, 2.0, tmp_path, 8, 2, "sync")
    assert n == 1 and unproven == 0 and np.array_equal(np.asarray(markers) > 0, whole)
    # regrowth capped at the first block: the false seed is kept, and counted (the flag seeds_unproven)
    monkeypatch.setattr(chunked, "MAX_SEED_BLOCK_VOXELS", (8 + 2 * halo) * 25 * 25)
    markers, n, unproven = chunked._slab_seeds(edt, 1, halo, 2.0, tmp_path, 8, 2, "sync")
    assert n == 2 and unproven >= 1


def _random_volume(seed: int, n: int = 44) -> np.ndarray:
    """Labels (1 particle, 0 else) of 4-7 touching ellipsoids (semi-axes 4-11 voxels), each chained to an
    earlier one, with random disc cracks (1.5-3 voxels wide) and pores."""
    rng = np.random.default_rng(seed)
    parts, cracks, pores = [], [], []
    c = rng.uniform(8, n - 8, 3)
    for i in range(int(rng.integers(4, 8))):
        r = rng.uniform(5, 9) * rng.uniform(0.8, 1.2, 3)
        if i:
            prev = parts[int(rng.integers(len(parts)))]
            d = rng.standard_normal(3)
            c = np.clip(np.asarray(prev.centre) + d / np.linalg.norm(d) * (np.mean(prev.radii) + r.mean()), 5, n - 5)
        parts.append(ParticleSpec(tuple(c), tuple(r)))
        if rng.random() < 0.6:
            cracks.append(CrackSpec(i + 1, tuple(rng.standard_normal(3)), float(rng.choice([1.5, 2.0, 3.0])),
                                    radius_voxels=float(rng.uniform(3, 8))))
        if rng.random() < 0.5:
            pores.append(PoreSpec(i + 1, float(rng.uniform(1.2, 2.5)), tuple(rng.uniform(-2, 2, 3))))
    ph = build_phantom((n, n, n), parts, cracks, pores, seed=seed)
    return (ph.volume == ph.volume.max()).astype(np.uint8)


def slabs_equal_whole(seed: int, monkeypatch):
    """Random volume ``seed`` analysed out of core with every cluster above 10^3 voxels split in slabs of 4 z slices
    and with whole clusters: asserts the two results are identical (:func:`_same`) and returns the whole one."""
    import layerscope.tomo.chunked as chunked

    opts = dict(particle_label=1, min_particle_voxels=50, crack_max_width_nm=150.0)
    vol = Volume(_random_volume(seed), 50.0, labels=True)
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 10 ** 3)
    pieces = analyse(vol, TomoOptions(out_of_core=True, slab_slices=4, **opts), scheduler="sync")
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 10 ** 9)
    whole = analyse(vol, TomoOptions(out_of_core=True, slab_slices=4, **opts), scheduler="sync")
    _same(whole, pieces)
    return whole


def test_random_volumes_in_tiny_slabs_equal_the_whole_cluster(monkeypatch):
    """24 random 44^3 label volumes (seeds 0-23), every cluster above 10^3 voxels split in slabs of 4 z slices
    (EDT, checked h-maxima, watershed, feature statistics, groups): particle and feature labels, tables and
    kinds identical to the whole-cluster path (limit above the volume). The volumes hold split particles,
    cracks and pores, and some slabs had to grow their seed halo (the check is exercised)."""
    import layerscope.tomo.chunked as chunked

    hmax, redone = chunked._hmax_task, []

    def spy(item, **kwargs):
        out = hmax(item, **kwargs)
        redone.append(not out[2])
        return out

    monkeypatch.setattr(chunked, "_hmax_task", spy)
    counts = []
    for seed in range(24):
        whole = slabs_equal_whole(seed, monkeypatch)
        counts.append((len(whole.particles), len(whole.cracks), len(whole.pores)))
    n_p, n_c, n_f = np.array(counts).T
    assert (n_p >= 2).sum() >= 12 and n_c.sum() >= 15 and n_f.sum() >= 20, counts
    assert 0 < sum(redone) < 0.1 * len(redone), (sum(redone), len(redone))


def test_tube_in_slabs_one_particle_or_flagged(monkeypatch):
    """The tube above as a label volume (no crack, no pore), analysed out of core in slabs of 8 with its cluster
    split: one particle as the whole-cluster path finds; with the seed regrowth capped (0 voxels) the false seed
    splits it in 2 and the result carries the flag ``seeds_unproven`` (never a silent second particle)."""
    import layerscope.tomo.chunked as chunked

    z = np.arange(120.0)
    r = np.where(z < 20, 5 + np.exp(-((z - 10) / 4) ** 2), 5 + (z - 20) * 5 / 90)
    zz, yy, xx = np.meshgrid(z, np.arange(25.0) - 12, np.arange(25.0) - 12, indexing="ij")
    vol = Volume(np.pad(((yy ** 2 + xx ** 2) <= r[:, None, None] ** 2).astype(np.uint8), 3), 50.0, labels=True)
    opts = TomoOptions(particle_label=1, min_particle_voxels=50, out_of_core=True, slab_slices=8, split_h_voxels=2.0)
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 10 ** 3)
    exact = analyse(vol, opts, scheduler="sync")
    monkeypatch.setattr(chunked, "MAX_SEED_BLOCK_VOXELS", 0)
    capped = analyse(vol, opts, scheduler="sync")
    assert len(exact.particles) == 1 and "seeds_unproven" not in [f["code"] for f in exact.flags]
    assert len(capped.particles) == 2 and "seeds_unproven" in [f["code"] for f in capped.flags]


def test_seed_check_stops_at_the_first_unproven_slab_that_cannot_grow(tmp_path, monkeypatch):
    """The tube's edt in slabs of 8 with the seed regrowth capped (0 voxels): the check runs on every slab until one
    fails (the false seed in slab 8:16), then is skipped where its answer could only be the flag (no slab can grow):
    those slabs come back unchecked (None) and are counted unproven; the seeds are the same (the check never changes
    them): the false seed and the true one, 2 markers. With regrowth allowed every cut slab is checked."""
    import layerscope.tomo.chunked as chunked

    z = np.arange(120.0)
    r = np.where(z < 20, 5 + np.exp(-((z - 10) / 4) ** 2), 5 + (z - 20) * 5 / 90)
    zz, yy, xx = np.meshgrid(z, np.arange(25.0) - 12, np.arange(25.0) - 12, indexing="ij")
    edt = ndi.distance_transform_edt((yy ** 2 + xx ** 2) <= r[:, None, None] ** 2)
    hmax, seen = chunked._hmax_task, {}

    def spy(item, **kwargs):
        out = hmax(item, **kwargs)
        seen[out[0]] = out[2]
        return out

    monkeypatch.setattr(chunked, "_hmax_task", spy)
    monkeypatch.setattr(chunked, "MAX_SEED_BLOCK_VOXELS", 0)
    halo = chunked._seed_halo(edt.max())
    markers, n, unproven = chunked._slab_seeds(edt, 1, halo, 2.0, tmp_path, 8, 1, "sync")
    exact = [seen[z0] for z0 in range(0, 120, 8)]
    assert exact[:2] == [True, False] and exact[2:] == [None] * 13
    assert n == 2 and unproven == 14
    seen.clear()
    monkeypatch.setattr(chunked, "MAX_SEED_BLOCK_VOXELS", 10 ** 9)
    markers, n, unproven = chunked._slab_seeds(edt, 1, halo, 2.0, tmp_path, 8, 1, "sync")
    assert None not in seen.values() and n == 1 and unproven == 0


def test_watershed_slabs_compared_on_their_overlap(monkeypatch):
    """A prolate particle (seed at z 16) touching a sphere (seed at z 37) across z 30, split in slabs of 8. With the
    watershed halo of twice the largest distance + 4 the labels equal the whole cluster's and no flag is set. With a
    halo of 1 slice (grown only until every core voxel is reached) the slab 24:32 sees the sphere's seed but not the
    prolate one and floods the prolate's end from the sphere: 361 voxels differ from the whole cluster, and the
    neighbouring slab labels its halo otherwise there, so the flag ``watershed_slabs_disagree`` is set."""
    import layerscope.tomo.chunked as chunked

    z, y, x = np.meshgrid(np.arange(44.0), np.arange(20.0), np.arange(20.0), indexing="ij")
    a = ((z - 14) / 14) ** 2 + ((y - 10) / 8) ** 2 + ((x - 10) / 8) ** 2 <= 1
    b = (z - 35) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 7.5 ** 2
    vol = Volume(np.pad((a | b).astype(np.uint8), 2), 50.0, labels=True)
    opts = TomoOptions(particle_label=1, min_particle_voxels=50, crack_max_width_nm=0.0, out_of_core=True,
                       slab_slices=8)
    whole = analyse(vol, opts, scheduler="sync")
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 10 ** 3)
    pieces = analyse(vol, opts, scheduler="sync")
    monkeypatch.setattr(chunked, "_watershed_halo", lambda top: 1)
    short = analyse(vol, opts, scheduler="sync")
    codes = [f["code"] for f in pieces.flags]
    assert len(whole.particles) == 2 and "watershed_slabs_disagree" not in codes
    _same(whole, pieces)
    differ = np.count_nonzero(np.asarray(whole.particle_labels) != np.asarray(short.particle_labels))
    assert differ == 361 and "watershed_slabs_disagree" in [f["code"] for f in short.flags]


def test_stage_marks_of_the_out_of_core_chain(grey, pieces, tmp_path):
    """The stages a benchmark samples memory by (``layerscope.tomo.stages``): every stage of the chain is
    marked, in order, on the reconstructed phantom with its clusters split in slabs (the big-cluster path)."""
    import logging

    from layerscope.tomo import stages

    seen = []

    class Record(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage().split()[-1])

    log, handler = logging.getLogger("layerscope.tomo.stage"), Record()
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        res = analyse(grey[0], TomoOptions(out_of_core=True, slab_slices=9), scheduler="threads")
        res.write(tmp_path)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    order = ["levels", "solid", "envelope", "clusters", "split_edt", "split_hmax", "split_seed_labels",
             "split_watershed", "split_small", "particles_relabel", "measure_small", "particles_of", "feature_stats",
             "feature_cut", "feature_openings", "slab_groups", "features_relabel", "particle_rows", "summary", "write_tables",
             "figure_slices", "figure_rendering", "write_volume_summary_report"]
    assert [s for s in dict.fromkeys(seen)] == order, seen
    assert stages.current == "write_volume_summary_report"


_FREED_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from layerscope.tomo.chunked import return_freed_arrays

def anon_kib():
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("RssAnon:"))

if not return_freed_arrays():
    print("no-mallopt"); sys.exit(0)
big = np.ones(16 << 20, np.uint8)
del big
before = anon_kib()
small = np.ones(8 << 20, np.uint8)
touched = anon_kib() - before
del small
print(touched, anon_kib() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssAnon from /proc (Linux)")
def test_freed_arrays_go_back_to_the_system():
    """After ``return_freed_arrays`` (glibc), an 8 MiB array freed after a 16 MiB one leaves RssAnon within
    1 MiB of where it was; glibc's default raises its mmap threshold to 16 MiB at the first free, so the
    second array came from the heap and stayed (+8 MiB). Run in a new process: in the test session's own,
    earlier tests leave free heap pages that a new array may reuse without touching new memory."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FREED_SCRIPT], capture_output=True, text=True, check=True,
                         timeout=120).stdout.split()
    if out == ["no-mallopt"]:
        pytest.skip("not glibc: no mallopt")
    touched, left = (int(v) for v in out)
    assert touched > 7 * 1024  # the 8 MiB array was touched
    assert left < 1024  # and went back to the system


def test_a_pore_joined_to_crossing_cracks_in_slabs(tmp_path):
    """Two crossing discs and a round pore touching them (one dark feature: two crack rows and one pore row with
    its id): exactly the in-memory tables in slabs."""
    cracks = [CrackSpec(1, (0, 0, 1), 2.0, radius_voxels=10), CrackSpec(1, (0, 1, 0), 2.0, radius_voxels=10)]
    ph = build_phantom((64, 64, 64), [ParticleSpec((32, 32, 32), (24, 24, 24))], cracks, [PoreSpec(1, 5.0, (0, 6, 6))])
    vol = Volume(ph.volume, 50.0, labels=False)
    here = analyse(vol, TomoOptions())
    assert len(here.cracks) == 2 and len(here.pores) == 1
    _same(here, analyse(vol, TomoOptions(out_of_core=True, slab_slices=9), scheduler="threads", scratch_dir=tmp_path))
