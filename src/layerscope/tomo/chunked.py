"""Bounded-memory particle and crack analysis: slabs of z slices, then one particle cluster at a time.

The in-memory analysis (:func:`layerscope.tomo.analysis.analyse`) holds several whole-volume arrays
(smoothed volume, masks, distance transforms, labels). Here every whole-volume array is a memory map
in a scratch folder and the work is cut in pieces, each a task of
:func:`layerscope.parallel.map_tasks` (run in batches of two per worker, so only a batch is in memory):

1. Slabs of z slices with a halo (the Gaussian smoothing's radius, the envelope's reach
   :func:`~layerscope.tomo.segment.envelope_reach`): the
   solid mask and the closed envelope are exact, since each output voxel sees all the input its
   filter reaches. Hole filling and the connected components of the envelope are labelled slab by
   slab (SciPy) and merged across slab faces (a union of labels through the face pairs).
2. Clusters (26-connected components of the filled envelope, touching particles together) on
   their bounding box: the watershed split, then, with a 12-voxel margin that holds the
   neighbours as they are, dark features, cracks and pores. Particle and feature ids are
   numbered by their first voxel in raster order, as the whole-volume labelling numbers them.
3. Clusters whose box holds more than :data:`MAX_CLUSTER_VOXELS` (a percolating electrode: one
   cluster spans the volume) are never held whole. The split runs on z slabs of the cluster's box
   (one slab task per worker; one slab for the whole box when a slab and two halos cover it):
   the distance transform with a halo (exact: a slab's transform can only be too large, and a core
   whose maximum is below the halo is exact; slabs that fail are done again with a larger halo,
   and the next slabs start at it), the h-maxima seeds with a halo of the largest distance plus 4 (exact: a slab's
   seed whose voxels above its value minus ``h`` reach a cut face of the slab's block is not known
   to be a seed of the whole box, and the slab is done again with twice the halo while its block stays
   within :data:`MAX_SEED_BLOCK_VOXELS`; beyond, it is counted and flagged ``seeds_unproven``, and the
   check is skipped on the next slabs that could not grow either: its answer would only be that flag;
   one h-maxima task at a time, the largest memory per voxel), labelled
   across slab faces (global seed ids; with ``segment.LOW_TOPS`` also the low tops, :func:`_add_low_tops`, and with
   ``segment.LOW_TOPS_TIED`` the tied tops apart at ``LOW_TOPS * h``, :func:`_untie_low_tops`, their
   labels joined after the watershed on faces and, with ``segment.LOW_TOPS_WAIST``, sections summed over slabs,
   :func:`_join_low_tops`), then the watershed with a
   halo of twice the largest distance plus 4, keeping the core (a slab with a core voxel no seed reaches is done again with
   twice the halo; neighbouring slabs' labels are compared where a slab's halo overlaps the next
   core, and a difference is counted and flagged ``watershed_slabs_disagree``). Then the dark
   features of the cluster are labelled slab by slab across faces and what the whole-cluster
   measurement learns from each whole feature is counted slab by slab: its size, first voxel, box,
   owner (the particle with most of its voxels), whether a second particle holds more than 20 %
   (shared: the gap between two particles) and whether it is a surface dent (voxels next to the
   outside, depth in the envelope). Shared features are first cut at the particle contact as in memory
   (:func:`layerscope.tomo.measure.feature_ids`: the voxels near a contact, in z slabs with a halo, are
   the gap, labelled apart across slab faces, and the rest labelled again). The measurements then run by groups: the particles whose box
   starts in one slab and the features they own, on one cut of the cluster's box that holds them
   whole with the margin (a particle taller than :data:`TALL_SLABS` slabs alone, on its own box with the
   margin: a chain as tall as the volume is not cut with the cluster's whole width); one
   :func:`layerscope.tomo.measure.measure_features` call per group, with the dropped features (shared,
   dents) dropped in rank order as the whole-cluster loop drops them. Each feature is measured
   once, by the group of its owner. On the test volumes (a 96^3 percolating phantom in slabs of
   8, the reconstructed phantom, the NREL crop unsplit) the labels and tables equal the
   whole-cluster path exactly.

Peak memory is therefore a few slabs plus the largest cluster below the limit (with its margin), or
for a bigger cluster one slab task per worker: a slab of its box with halos (distance transform,
feature openings; the transform from SciPy's feature transform, ~15 bytes a voxel of the block), and one at a
time: the h-maxima slab (~76 bytes a voxel of the slab and its halos: scikit-image's reconstruction on float32
ranks), the watershed slab (the batch's slabs get the same halo, then are cut and run one after the
other: the same results) and a group's cut (a slab plus the particles' and owned features' reach
plus the margin, full width of the box: at most five slabs and two margins of z slices), or a tall particle's own
box with the margin (bounded by that particle's box, not by the slabs: a particle as tall and as wide as the
volume is still measured whole). Freed arrays go back to the system (:func:`return_freed_arrays`).
The numbers equal the in-memory analysis (tested on phantoms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from layerscope.tomo import segment
from layerscope.tomo.segment import envelope_reach, minus_h
from layerscope.tomo.stages import enter as _stage

__all__ = ["analyse_volume_chunked", "return_freed_arrays"]

#: margin (voxels) around a cluster for the crack and pore measurements (the open-crack sum reaches 8 + 3)
MARGIN = 12
#: clusters whose bounding box holds more voxels are split and measured in pieces (z slabs, then one
#: particle at a time) instead of whole; a module constant (tests lower it). 192^3 (7.1 M voxels, about
#: 0.8 GiB held whole): the real NREL electrode's 64 x 301 x 301 cluster box stays whole, where the
#: pieces cost more (halos longer than the box: 38.8 s and 1280 MiB against 14.6 s and 762 MiB)
MAX_CLUSTER_VOXELS = 192 ** 3
#: an h-maxima slab whose seeds are not proven to be the whole box's (:func:`_hmax_task`) is done again with twice
#: the halo while its block (slab and two halos) holds at most this many voxels: exact, with memory bounded as for
#: a cluster held whole. Beyond it the slab's seeds are kept and counted (flag ``seeds_unproven``): on the 256^3
#: spanning benchmark every slab failed the check and regrowing all of them to the whole box took 3.4 GiB and 3x
#: the CPU, for the same numbers. 0: never regrow.
MAX_SEED_BLOCK_VOXELS = 192 ** 3
#: a particle of a big cluster whose box is taller than this many slabs is measured alone, on its own box and its
#: owned features' with the margin (:func:`_group_cuts`), not in its slab's group on a cut of the cluster's full
#: width as tall as it: particles glued into chains as tall as the volume (``segment.TIED_TOPS`` on mirror twins)
#: made that cut the whole volume (docs/validation.md "tomomem"). A group's cut then holds at most five slabs (its
#: particles start in one and reach two more; owned features reach a slab beyond) and two margins of z slices. The same numbers either way; None: every particle in its slab's group (before).
TALL_SLABS: int | None = 2
_C26 = np.ones((3, 3, 3), bool)
_C6 = ndi.generate_binary_structure(3, 1)


#: arrays above this many bytes are allocated by glibc straight from ``mmap`` and returned to the system when
#: freed (:func:`return_freed_arrays`); below it they come from the allocator's heaps
MMAP_THRESHOLD_BYTES = 1 << 20


def return_freed_arrays(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Make freed arrays go back to the system at once (glibc only; True if set): ``mallopt(M_MMAP_THRESHOLD)``.

    By default glibc raises its mmap threshold to the size of each freed mapped block (up to 32 MiB), so
    that slab-sized arrays of later tasks come from per-thread heaps, which keep freed space: the
    anonymous memory then grows with every stage and task thread, far above what is alive (the 256^3
    reconstructed run: 783 MiB peak, 607 MiB still held between stages with ~170 MiB alive; with a fixed
    threshold 485 and 175 MiB, docs/benchmarks.md 2026-12-04 "tomomem2"). A fixed threshold also stops the
    raising. Process-wide and lasting: the out-of-core analysis calls it; elsewhere (other C libraries) it
    does nothing. The numbers do not change (only where memory comes from).
    """
    import ctypes

    try:
        return bool(ctypes.CDLL(None).mallopt(-3, int(threshold)))  # M_MMAP_THRESHOLD of the C library loaded
    except (OSError, AttributeError, TypeError):  # not glibc (no mallopt) or no such library handle
        return False


def _seed_halo(top: float) -> int:
    """First halo (z slices) of the h-maxima slabs for a distance transform whose largest value is ``top``
    (voxels): a particle radius plus 4. Each slab is checked and grown (:func:`_hmax_task`, up to
    :data:`MAX_SEED_BLOCK_VOXELS`); a smaller one (``4 h + 4``) made every slab of the 256^3 benchmark
    grow to the whole box (3.4 GiB, 2.6x the CPU), so the halo is a cost choice."""
    return int(np.ceil(top)) + 4


def _slabs(nz: int, k: int) -> list[tuple[int, int]]:
    return [(z, min(nz, z + k)) for z in range(0, nz, k)]


def _batches(items: list, size: int):
    for b in range(0, len(items), size):
        yield items[b:b + size]


def _run(func, items, scheduler, **kwargs) -> list:
    from layerscope.parallel import map_tasks

    return map_tasks(func, items, scheduler=scheduler, progress=False, description="tomo analysis", **kwargs)


def _smooth_task(item, *, sigma: float, take: str, threshold: float | None = None):
    """One slab: the Gaussian-smoothed slab (``take="grey"``) or its solid mask (``"solid"``)."""
    z0, z1, lo, block, pick = item
    g = ndi.gaussian_filter(np.asarray(block, np.float32), sigma) if sigma > 0 else np.asarray(block, np.float32)
    g = g[lo:lo + z1 - z0]
    if take == "grey":
        return z0, g[pick]
    return z0, g > threshold


def _close_task(item, *, close_voxels: int):
    from layerscope.tomo.segment import closed_envelope

    z0, z1, lo, block = item
    return z0, closed_envelope(np.asarray(block, bool), close_voxels)[lo:lo + z1 - z0]


def _halo_items(data: np.ndarray, slabs: list, halo: int, extra=None) -> list:
    out = []
    for z0, z1 in slabs:
        a, b = max(0, z0 - halo), min(data.shape[0], z1 + halo)
        item = (z0, z1, z0 - a, np.asarray(data[a:b]))
        out.append(item + (extra(z0, z1),) if extra else item)
    return out


def _levels(vol, options, slabs, batch, scheduler) -> dict:
    """Grey levels from the same smoothed z slices as the in-memory analysis."""
    from layerscope.tomo.segment import grey_levels, sample_step, voxel_noise

    step = sample_step(vol.shape[0])
    sigma = options.smooth_voxels
    halo = int(4.0 * sigma + 0.5) if sigma > 0 else 0
    parts = []
    for group in _batches(slabs, batch):
        items = _halo_items(vol, group, halo, lambda z0, z1: [z - z0 for z in range(z0, z1) if z % step == 0])
        items = [it for it in items if it[4]]
        parts += _run(_smooth_task, items, scheduler, sigma=sigma, take="grey")
    sample = np.concatenate([p for _, p in sorted(parts, key=lambda t: t[0])])
    return grey_levels(sample, threshold=options.threshold, noise=voxel_noise(vol))


def _solid_and_envelope(vol, options, levels, close, scratch: Path, k: int, batch: int, scheduler):
    """Solid mask and closed envelope as memory maps, slab by slab."""
    solid, env = _scratch(scratch, "solid", bool, vol.shape), _scratch(scratch, "envelope", bool, vol.shape)
    slabs = _slabs(vol.shape[0], k)
    if options.particle_label is not None:
        for z0, z1 in slabs:
            solid[z0:z1] = np.asarray(vol[z0:z1]) == options.particle_label
    else:
        sigma = options.smooth_voxels
        halo = int(4.0 * sigma + 0.5) if sigma > 0 else 0
        for group in _batches(slabs, batch):
            items = _halo_items(vol, group, halo, lambda z0, z1: None)
            for z0, part in _run(_smooth_task, items, scheduler, sigma=sigma, take="solid", threshold=levels["threshold"]):
                solid[z0:z0 + part.shape[0]] = part
    _stage("envelope")
    for group in _batches(slabs, batch):
        for z0, part in _run(_close_task, _halo_items(solid, group, envelope_reach(close)), scheduler,
                                close_voxels=close):
            env[z0:z0 + part.shape[0]] = part
    return solid, env


def _label_slabs(mask_of, shape, k: int, structure: np.ndarray, out: np.ndarray):
    """Connected components of a mask given slab by slab (``mask_of(z0, z1)``), merged across slab faces.

    Writes merged ids (1..n, in no particular order) into ``out``; returns n and the ids that touch a face of the volume.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    slabs, total, pairs, faces = _slabs(shape[0], k), 0, [], []
    prev = None
    for z0, z1 in slabs:
        lab, n = ndi.label(mask_of(z0, z1), structure=structure)
        lab[lab > 0] += total
        total += n
        out[z0:z1] = lab
        on_face = [lab[:, 0], lab[:, -1], lab[:, :, 0], lab[:, :, -1]] + ([lab[0]] if z0 == 0 else []) + ([lab[-1]] if z1 == shape[0] else [])
        faces.append(np.unique(np.concatenate([f.ravel() for f in on_face])))
        if prev is not None:
            pairs.append(_face_pairs(prev, lab[0], structure))
        prev = lab[-1].copy()
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(total + 1, total + 1))
    _, comp = connected_components(graph, directed=False)
    lut = np.zeros(total + 1, np.int64)
    lut[1:] = np.unique(comp[1:], return_inverse=True)[1] + 1
    for z0, z1 in slabs:
        out[z0:z1] = lut[np.asarray(out[z0:z1])]
    touching = np.unique(lut[np.unique(np.concatenate(faces))])
    return int(lut.max()), touching[touching > 0]


def _face_pairs(below: np.ndarray, above: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Label pairs joined across a slab face (the last plane of one slab, the first of the next)."""
    out = []
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if structure[0, 1 + dy, 1 + dx]]
    ny, nx = below.shape
    for dy, dx in shifts:
        a = below[max(0, -dy):ny - max(0, dy), max(0, -dx):nx - max(0, dx)]
        b = above[max(0, dy):ny - max(0, -dy), max(0, dx):nx - max(0, -dx)]
        both = (a > 0) & (b > 0)
        out.append(np.stack([a[both], b[both]], axis=1))
    return np.unique(np.concatenate(out), axis=0).astype(np.int64)


def _clusters(env: np.ndarray, scratch: Path, k: int):
    """Fill the envelope's holes (background not 6-connected to a face: :func:`~layerscope.tomo.segment.filled_envelope`)
    and label its 26-connected clusters."""
    bg = _scratch(scratch, "background", np.int32, env.shape)
    _, outside = _label_slabs(lambda a, b: ~np.asarray(env[a:b]), env.shape, k, _C6, bg)
    for z0, z1 in _slabs(env.shape[0], k):
        b = np.asarray(bg[z0:z1])
        env[z0:z1] = np.asarray(env[z0:z1]) | ((b > 0) & ~np.isin(b, outside))
    del bg
    comp = _scratch(scratch, "clusters", np.int32, env.shape)
    n, _ = _label_slabs(lambda a, b: np.asarray(env[a:b]), env.shape, k, _C26, comp)
    boxes = _boxes_of(comp, n, k)
    return comp, n, boxes


def _box(box: np.ndarray, margin: int, shape) -> tuple[slice, ...]:
    return tuple(slice(max(0, int(box[i]) - margin), min(n, int(box[3 + i]) + margin)) for i, n in enumerate(shape))


def _split_task(item, *, split: bool, h_voxels: float, shape):
    """Particle ids of one cluster on its box: local labels, each label's first seed voxel (flat index) and size."""
    from layerscope.tomo.segment import split_envelope

    cid, sl, mask, solid = item
    lab, seeds = split_envelope(mask, split=split, h_voxels=h_voxels, dark=mask & ~solid)
    n = int(lab.max())
    return cid, sl, lab, _first_voxels(seeds, n, sl, shape), np.bincount(lab.ravel(), minlength=n + 1)


def _first_voxels(lab: np.ndarray, n: int, sl: tuple, shape) -> np.ndarray:
    """Flat index (in the whole volume of ``shape``) of the first voxel of labels 1..n of ``lab`` cut at ``sl``; -1 if absent."""
    first = np.full(n + 1, -1, np.int64)
    idx = np.flatnonzero(lab)
    vals, at = np.unique(lab.ravel()[idx], return_index=True)
    coords = np.stack(np.unravel_index(idx[at], lab.shape), axis=1) + [s.start for s in sl]
    first[vals] = np.ravel_multi_index(tuple(coords.T), shape) if len(vals) else []
    return first


def _relabel(lab_mm: np.ndarray, lut: np.ndarray, k: int) -> None:
    """Replace provisional ids by ``lut[id]``, slab by slab."""
    for z0, z1 in _slabs(lab_mm.shape[0], k):
        lab_mm[z0:z1] = lut[np.asarray(lab_mm[z0:z1])]


def _write_crop(lab_mm: np.ndarray, sl: tuple, local: np.ndarray, base: int) -> None:
    """Write a cluster's local ids (1..n, 0 elsewhere) as provisional ids ``base + id`` into the memory map."""
    view = np.asarray(lab_mm[sl])
    m = local > 0
    view[m] = local[m] + base
    lab_mm[sl] = view


def _numbering(keys: list[tuple[int, int]], total: int) -> np.ndarray:
    """Look-up table provisional id -> final id, final ids in the order of ``keys`` = (first voxel, provisional id)."""
    lut = np.zeros(total + 1, np.int32)
    for new, (_, prov) in enumerate(sorted(keys), 1):
        lut[prov] = new
    return lut


def _big(box: np.ndarray) -> bool:
    """Whether a cluster (its bounding box ``box``) is split and measured in pieces (see :data:`MAX_CLUSTER_VOXELS`)."""
    return int(np.prod(box[3:] - box[:3])) > MAX_CLUSTER_VOXELS


def _cluster_block(comp: np.ndarray, c: int, sl: tuple, z0: int, z1: int) -> np.ndarray:
    """The mask of cluster ``c`` in z slices ``z0:z1`` of its box ``sl`` (box coordinates)."""
    return np.asarray(comp[sl[0].start + z0:sl[0].start + z1, sl[1], sl[2]]) == c


def _edt_task(item):
    """Distance transform of one slab of a cluster's mask with a halo: the core and its maximum."""
    from layerscope.tomo.segment import distance_transform_core

    z0, z1, lo, block = item
    core = distance_transform_core(block, slice(lo, lo + z1 - z0))  # SciPy's values, a third of its memory
    return z0, core, float(core.max(initial=0.0))


def _retry_slabs(nz: int, k: int, halo: int, block_of, func, redo, batch: int, scheduler, *, one_at_a_time: bool = False,
                 **kwargs):
    """Yield ``(z0, z1, result)`` of ``func`` on every slab of ``k`` of ``nz`` z slices with a halo, done again
    with the halo ``redo(z0, z1, halo, result)`` asks for (None: accepted).

    ``func`` gets ``(z0, z1, lo) + block_of(a, b)``: the slices ``a:b`` (the slab and its halo) and the
    slab's start ``lo`` in them. When one slab and two halos cover every slice, the whole box is one
    slab (the same result: every task would hold the whole box). ``batch`` slabs get the same halo;
    ``one_at_a_time``: they are cut and run one after the other (the same items and results, one block in memory).
    """
    if k + 2 * halo >= nz:
        k = nz
    learned = halo
    todo = {s: halo for s in _slabs(nz, k)}
    while todo:
        again = {}
        for group in _batches(sorted(todo.items()), batch):
            group = [(s, max(h, learned)) for s, h in group]

            def item(z0: int, z1: int, h: int) -> tuple:
                a, b = max(0, z0 - h), min(nz, z1 + h)
                return (z0, z1, z0 - a) + tuple(block_of(a, b))

            if one_at_a_time:
                outs = [_run(func, [item(z0, z1, h)], scheduler, **kwargs)[0] for (z0, z1), h in group]
            else:
                outs = _run(func, [item(z0, z1, h) for (z0, z1), h in group], scheduler, **kwargs)
            for ((z0, z1), h), out in zip(group, outs):
                bigger = None if (z0 - h <= 0 and z1 + h >= nz) else redo(z0, z1, h, out)
                if bigger is None:
                    yield z0, z1, out
                else:
                    again[(z0, z1)] = bigger
                    learned = max(learned, bigger)  # the next slabs likely need it too
        todo = again


def _slab_edt(comp, c: int, sl: tuple, scratch: Path, k: int, batch: int, scheduler) -> np.ndarray:
    """The distance transform of a cluster's mask on its box, slab by slab, as a memory map.

    A slab sees its halo only, so its transform can only be too large; a core whose maximum is below
    the halo is exact (every core voxel's nearest background lies within the halo). Slabs that fail
    the check are done again with a halo above their maximum (which can only fall).
    """
    _stage("split_edt")
    nz = sl[0].stop - sl[0].start
    edt = _scratch(scratch, f"edt-{c}", np.float64, (nz,) + tuple(s.stop - s.start for s in sl[1:]))
    for z0, z1, (_, core, top) in _retry_slabs(nz, k, 16, lambda a, b: (_cluster_block(comp, c, sl, a, b),), _edt_task,
                                              lambda z0, z1, h, out: int(np.ceil(out[2])) + 1 if out[2] >= h else None,
                                              batch, scheduler):
        edt[z0:z1] = core
    return edt


def _seed_block_grows(core: int, halo: int, n_slices: int, area: int) -> bool:
    """Whether an h-maxima slab of ``core`` slices, done again with twice its ``halo``, stays within
    :data:`MAX_SEED_BLOCK_VOXELS` (``area``: voxels of one z slice of the box)."""
    return min(n_slices, core + 4 * halo) * area <= MAX_SEED_BLOCK_VOXELS


def _hmax_task(item, *, h_voxels: float, n_slices: int):
    """h-maxima of one slab of a distance transform with a halo: the core and whether it is exact
    (None: not checked, see below).

    A voxel ``x`` is a seed when no path from it to a higher voxel stays above ``f(x) - h`` (skimage
    reconstructs ``f - h`` by dilation under ``f``). A block sees fewer paths, so every seed of the whole
    box is a seed of the block, and a block's seed is a seed of the whole box when the voxels joined to
    it above ``f(x) - h`` (26-connected) do not reach a cut face of the block (slices ``a:b`` of ``n_slices``;
    then they are the same in the whole box). Checked at once for all seeds: the largest level at which
    ``x`` joins a cut face is the reconstruction by dilation of ``f`` on the cut faces under ``f``.

    The check costs as much as the h-maxima. With ``settled`` (the item's last element: a slab of the
    cluster already failed it and stays unproven) it is skipped where its answer can only be the flag,
    i.e. where the slab could not be done again (:func:`_seed_block_grows`): the slab is then returned
    unchecked (None) and counted unproven with the failed one.
    """
    from skimage.morphology import reconstruction

    from layerscope.tomo.segment import h_maxima_core, level_ranks

    z0, z1, lo, block, settled = item
    core = slice(lo, lo + z1 - z0)
    a = z0 - lo
    cut = (a > 0, a + block.shape[0] < n_slices)
    ranks = level_ranks(block, h_voxels) if block.dtype == np.float64 and 0 < h_voxels <= np.ptp(block) else None
    peaks = h_maxima_core(block, h_voxels, core, ranks)
    if not any(cut):
        return z0, peaks, True
    halo = max(lo, block.shape[0] - lo - (z1 - z0))  # the halo asked for: a clipped side is shorter
    if settled and not _seed_block_grows(z1 - z0, halo, n_slices, int(np.prod(block.shape[1:]))):
        return z0, peaks, None
    if h_voxels > np.ptp(block):  # skimage finds no seed at all; the whole box may have one here
        return z0, peaks, False
    if not peaks.any():
        return z0, peaks, True
    if ranks is None:  # the values themselves (ranks not exact in float32, or not float64)
        ranks = (None, block, minus_h(block, h_voxels))
    _, f, shifted = ranks  # ranks of the values keep every comparison below (see h_maxima_core)
    seed = np.full(block.shape, f.min(), f.dtype)
    for side, at in zip(cut, (0, -1)):
        if side:
            seed[at] = f[at]
    joins = reconstruction(seed, f, method="dilation")[core]
    del seed
    return z0, peaks, not np.any(peaks & (joins > shifted[core]))


def _watershed_task(item, *, edge: int):
    """Watershed of one slab with a halo (global seed ids): the core, whether every core voxel was reached, and
    the labels of the halo on up to ``edge`` slices next to the core below and above (the neighbouring slabs' cores,
    for :func:`_overlap_mismatch`)."""
    from skimage.segmentation import watershed

    z0, z1, lo, edt, markers, mask = item
    lab = watershed(-edt, markers, mask=mask)
    hi = lo + z1 - z0
    core = lab[lo:hi].copy()  # copies: a view would keep the whole block alive while the result waits
    return z0, core, not np.any(mask[lo:hi] & (core == 0)), lab[max(0, lo - edge):lo].copy(), lab[hi:hi + edge].copy()


def _slab_seeds(edt: np.ndarray, c: int, halo: int, h_voxels: float, scratch: Path, k: int, batch: int, scheduler,
                *, tied: bool = True, name: str = ""):
    """Seeds (h-maxima, slab by slab with a halo) labelled 26-connected across slab faces, tops one voxel apart
    joined (:func:`~layerscope.tomo.segment.joined_tops`): memory map and count (ids numbered later by first voxel).

    Exact where affordable: a slab whose seeds might not be seeds of the whole box (:func:`_hmax_task`) is
    done again with twice the halo while the block stays within :data:`MAX_SEED_BLOCK_VOXELS`; returns the
    markers, their count and the number of slabs kept unproven (failed the check, or not checked once a
    slab of the cluster had failed it where no regrowth was allowed: the flag is then set either way).

    ``batch``: slab tasks at a time (:func:`_split_big` gives 1: skimage's reconstruction takes about
    76 bytes a voxel of the block on float32 ranks (99 on the float64 values), the most of the whole analysis;
    two at once set the peak of the 256^3 benchmark). ``tied``: tied tops joined as ``segment.TIED_TOPS`` says
    (False: never, the low tops of :func:`_add_low_tops`, or joined after by :func:`_untie_low_tops`); ``name``: part
    of the scratch files' names."""
    _stage("split_hmax")
    nz, area = edt.shape[0], int(np.prod(edt.shape[1:]))
    settled = [False]

    def redo(z0, z1, h, out):
        if out[2] or not _seed_block_grows(z1 - z0, h, nz, area):
            settled[0] = settled[0] or not out[2]
            return None
        return 2 * h

    peaks = _scratch(scratch, f"peaks{name}-{c}", bool, edt.shape)
    unproven = 0
    for z0, z1, (_, core, exact) in _retry_slabs(nz, k, halo, lambda a, b: (np.asarray(edt[a:b]), settled[0]),
                                                 _hmax_task, redo, batch, scheduler, h_voxels=h_voxels, n_slices=nz):
        peaks[z0:z1] = core
        unproven += not exact
    _stage("split_seed_labels")
    markers = _scratch(scratch, f"markers{name}-{c}", np.int32, edt.shape)
    n, _ = _label_slabs(lambda a, b: _near_tops_slab(peaks, a, b), edt.shape, k, _C26, markers)
    for z0, z1 in _slabs(nz, k):  # the seeds are the tops (labelled with the tops one voxel apart joined)
        markers[z0:z1] *= np.asarray(peaks[z0:z1])
    if segment.TIED_TOPS and tied and n > 1:
        n = _join_tied_tops(edt, markers, n, h_voxels, scratch, k, c)
    return markers, n, unproven


def _add_low_tops(edt, markers, n: int, c: int, halo: int, h_voxels: float, scratch: Path, k: int,
                  scheduler) -> tuple[int, int]:
    """:func:`~layerscope.tomo.segment.with_low_tops` slab by slab: the h-maxima at ``LOW_TOPS * h`` (exact as
    :func:`_slab_seeds` makes them, no tied join) that touch no seed of ``markers`` (ids 1..n; 26 neighbours, read
    with a one-slice halo) written into ``markers`` as seeds n+1.. (in the order of their ids); the new count and
    the low seed slabs kept unproven."""
    low, m, unproven = _slab_seeds(edt, c, halo, segment.LOW_TOPS * h_voxels, scratch, k, 1, scheduler, tied=False,
                                   name="-low")
    hit = np.zeros(m + 1, bool)
    for z0, z1 in _slabs(edt.shape[0], k):
        a, b = max(0, z0 - 1), min(edt.shape[0], z1 + 1)
        near = ndi.binary_dilation(np.asarray(markers[a:b]) > 0, structure=_C26)[z0 - a:z1 - a]
        hit[np.asarray(low[z0:z1])[near]] = True
    ids = np.flatnonzero(~hit[1:]) + 1
    remap = np.zeros(m + 1, np.int32)
    remap[ids] = np.arange(n + 1, n + 1 + ids.size)
    for z0, z1 in _slabs(edt.shape[0], k):
        new = remap[np.asarray(low[z0:z1])]
        markers[z0:z1] = np.where(new > 0, new, np.asarray(markers[z0:z1]))
    return n + ids.size, unproven


def _join_tied_tops(edt, markers, n: int, h_voxels: float, scratch: Path, k: int, c: int) -> int:
    """:func:`~layerscope.tomo.segment.tied_tops_lut` slab by slab (:func:`_tied_lut`); ``markers`` rewritten, the
    new count."""
    return _rewrite_seeds(markers, _tied_lut(edt, markers, n, h_voxels, scratch, k, c), k)


def _untie_low_tops(edt, markers, n: int, h_voxels: float, scratch: Path, k: int, c: int) -> tuple[int, int]:
    """:func:`_join_tied_tops` with the tied seeds that lie apart at ``LOW_TOPS * h`` given ids of their own
    (:func:`~layerscope.tomo.segment.untied_at_low_tops`, :data:`~layerscope.tomo.segment.LOW_TOPS_TIED`): ``markers``
    rewritten, the new count and the last id a tied group keeps (the ids above it: low-top seeds)."""
    if not segment.TIED_TOPS or n < 2:
        return n, n
    lut, high = segment.untied_at_low_tops(_tied_lut(edt, markers, n, h_voxels, scratch, k, c),
                                           _tied_lut(edt, markers, n, segment.LOW_TOPS * h_voxels, scratch, k, c))
    return _rewrite_seeds(markers, lut, k), high


def _rewrite_seeds(markers, lut: np.ndarray, k: int) -> int:
    """``markers`` rewritten as ``lut[markers]`` slab by slab (nothing written where ``lut`` is the identity); the
    new count."""
    if (lut == np.arange(lut.size)).all():
        return lut.size - 1
    for z0, z1 in _slabs(markers.shape[0], k):
        markers[z0:z1] = lut[np.asarray(markers[z0:z1])]
    return int(lut.max())


def _tied_lut(edt, markers, n: int, h_voxels: float, scratch: Path, k: int, c: int) -> np.ndarray:
    """:func:`~layerscope.tomo.segment.tied_tops_lut` of the memory maps ``edt`` and ``markers`` (ids 1..n), slab by
    slab: each seed's top value (its largest distance, read at the seed voxels), the lowest tied value's mask labelled
    across slab faces over the whole box and each higher one's in the boxes of the lowest one's components that hold
    two or more of its seeds (:data:`~layerscope.tomo.segment.TIED_TOPS_CROP`; :func:`_tie_box`)."""
    ids, pos = np.arange(1, n + 1), _seed_voxels(markers, k)
    sid = np.asarray(markers[pos])
    top = ndi.maximum(np.asarray(edt[pos]), sid, ids)
    lut = np.arange(n + 1)
    values, counts = np.unique(top, return_counts=True)
    comp = _scratch(scratch, f"ties-{c}", np.int32, edt.shape) if (counts > 1).any() else None
    low = None
    for v in values[counts > 1]:
        mine = ids[top == v]
        where = None if low is None else segment.tie_components_in_boxes(
            low[0], pos, sid, mine, low[1], lambda g, box: _tie_box(edt, comp, g, box, v, h_voxels, scratch, k, c))
        if where is None:  # the whole box: the lowest tied value, or a seed that meets two components
            out = comp if low is None else _scratch(scratch, f"ties-all-{c}", np.int32, edt.shape)
            m = _label_slabs(lambda a, b: segment.tie_mask(np.asarray(edt[a:b]), v, h_voxels), edt.shape, k, _C26,
                             out)[0]
            where = ndi.maximum(np.asarray(out[pos]), sid, mine).astype(np.int64)
            if segment.TIED_TOPS_CROP and low is None:
                low = (np.asarray(comp[pos]), [_box(b, 0, edt.shape) for b in _boxes_of(comp, m, k)[1:]])
        segment.join_groups(lut, mine, where)
    return np.unique(lut, return_inverse=True)[1].ravel()


def _seed_voxels(markers, k: int) -> tuple[np.ndarray, ...]:
    """Coordinates (z, y, x) of the seed voxels of a memory map, read slab by slab."""
    found = [np.argwhere(np.asarray(markers[z0:z1])) + [z0, 0, 0] for z0, z1 in _slabs(markers.shape[0], k)]
    return tuple(np.concatenate(found or [np.zeros((0, 3), np.int64)]).T)


def _tie_box(edt, comp, g: int, box: tuple, v: float, h: float, scratch: Path, k: int, c: int) -> np.ndarray:
    """Components (26-connected) of ``edt[box] >= v - h`` within ``comp[box] == g`` (the lowest tied value's
    component ``g``): labelled in memory if the box holds at most two slabs' voxels, else in slabs of ``k`` into a
    scratch memory map (``ties-box-c``). ``comp`` is read, not written: it still holds the lowest value's ids."""
    def mask_of(a: int, b: int) -> np.ndarray:
        at = (slice(box[0].start + a, box[0].start + b),) + tuple(box[1:])
        return segment.tie_mask(np.asarray(edt[at]), v, h) & (np.asarray(comp[at]) == g)

    shape = tuple(s.stop - s.start for s in box)
    if np.prod(shape) <= 2 * k * np.prod(edt.shape[1:]):
        return ndi.label(mask_of(0, shape[0]), structure=_C26)[0]
    out = _scratch(scratch, f"ties-box-{c}", np.int32, shape)
    _label_slabs(mask_of, shape, k, _C26, out)
    return out


def _near_tops_slab(peaks, a: int, b: int) -> np.ndarray:
    """Slices ``a:b`` of :func:`~layerscope.tomo.segment.near_tops` of the whole ``peaks`` (a one-slice halo)."""
    from layerscope.tomo.segment import near_tops

    lo, hi = max(0, a - 1), min(peaks.shape[0], b + 1)
    return near_tops(np.asarray(peaks[lo:hi]))[a - lo:a - lo + b - a]


def _watershed_halo(top: float) -> int:
    """First halo (z slices) of the watershed slabs for a distance transform whose largest value is ``top``
    (voxels): twice a particle radius plus 4 (a cost choice: a slab's reach is checked, its flood order is
    compared with its neighbours' on the overlap, :func:`_overlap_mismatch`)."""
    return 2 * int(np.ceil(top)) + 4


def _slab_watershed(comp, c: int, sl: tuple, edt, markers, halo: int, k: int, batch: int, scheduler):
    """Yield ``(z0, labels, below, above)`` of the cluster's watershed slab by slab (box coordinates; ``below``
    and ``above``: the slab's labels on up to ``k`` halo slices next to its core); a slab with a core voxel that
    no seed of its halo reaches is done again with twice the halo."""
    _stage("split_watershed")

    def block_of(a: int, b: int) -> tuple:
        return np.asarray(edt[a:b]), np.asarray(markers[a:b]), _cluster_block(comp, c, sl, a, b)

    for z0, _, (_, lab, ok, below, above) in _retry_slabs(edt.shape[0], k, halo, block_of, _watershed_task,
                                                          lambda z0, z1, h, out: None if out[2] else 2 * h, batch,
                                                          scheduler, one_at_a_time=True, edge=k):
        yield z0, lab, below, above


def _overlap_mismatch(plab, sl: tuple, base: int, pending: list, done: np.ndarray) -> int:
    """Voxels where a slab's watershed labels its halo otherwise than the neighbouring slab labels them in its core.

    ``pending``: ``(z, labels)`` halo parts (box z of their first slice; 0 outside the cluster or not reached
    there); those whose slices are all written (``done``, per box slice) are compared with ``plab`` (provisional ids
    ``base + id``) and removed. A mismatch proves that a slab's result differs from the whole box's (two halos,
    two answers); agreement is evidence, not proof (both halos could miss the same far seed)."""
    bad, keep = 0, []
    for z, part in pending:
        if not done[z:z + part.shape[0]].all():
            keep.append((z, part))
            continue
        at = (slice(sl[0].start + z, sl[0].start + z + part.shape[0]),) + tuple(sl[1:])
        here = part > 0
        bad += int(np.count_nonzero(np.asarray(plab[at])[here] != part[here] + base))
    pending[:] = keep
    return bad


def _split_big(comp, c: int, sl: tuple, plab, base: int, options, scratch: Path, k: int, batch: int, scheduler):
    """Watershed split of a cluster too big to hold (box above :data:`MAX_CLUSTER_VOXELS`), in z slabs of its box.

    Distance transform exact (halo checked), h-maxima seeds exact (on slabs with a halo of
    :func:`_seed_halo`, each checked and grown until its seeds are the whole box's or its block would
    exceed :data:`MAX_SEED_BLOCK_VOXELS`), seed ids global (labelled across slab faces), and the watershed with a
    halo of twice the largest distance plus 4 (reach checked; :func:`_watershed_halo`). Writes the
    provisional ids ``base + seed id`` into ``plab``; returns each id's first seed voxel and size, the
    number of seed slabs kept unproven (:func:`_slab_seeds`), the voxels where neighbouring watershed
    slabs disagree on their overlap (:func:`_overlap_mismatch`) and the last id seeded by an h-maximum at ``h``
    (the ids above it: low tops, ``segment.LOW_TOPS``, :func:`_add_low_tops`).
    """
    shape, nz = plab.shape, sl[0].stop - sl[0].start
    batch = max(1, batch // 2)  # one slab task per worker: each holds a slab and two halos of the box
    if not options.split:  # one 26-connected component: one particle, its own seed
        markers, n, unproven, high = None, 1, 0, 1
    else:
        edt = _slab_edt(comp, c, sl, scratch, k, batch, scheduler)
        top = max(float(np.asarray(edt[z0:z1]).max(initial=0.0)) for z0, z1 in _slabs(nz, k))
        untie = bool(segment.LOW_TOPS and segment.LOW_TOPS_TIED)
        markers, n, unproven = _slab_seeds(edt, c, _seed_halo(top), options.split_h_voxels, scratch, k, 1, scheduler,
                                           tied=not untie)
        high = n
        if untie:
            n, high = _untie_low_tops(edt, markers, n, options.split_h_voxels, scratch, k, c)
        if segment.LOW_TOPS:
            n, more = _add_low_tops(edt, markers, n, c, _seed_halo(top), options.split_h_voxels, scratch, k, scheduler)
            unproven += more
    first, sizes = np.full(n + 1, -1, np.int64), np.zeros(n + 1, np.int64)
    parts = (((z0, _cluster_block(comp, c, sl, z0, z1).astype(np.int32), None, None) for z0, z1 in _slabs(nz, k))
             if markers is None
             else _slab_watershed(comp, c, sl, edt, markers, _watershed_halo(top), k, batch, scheduler))
    done, pending, mismatch = np.zeros(nz, bool), [], 0
    for z0, lab, below, above in parts:
        at = (slice(sl[0].start + z0, sl[0].start + z0 + lab.shape[0]),) + tuple(sl[1:])
        _write_crop(plab, at, lab, base)
        done[z0:z0 + lab.shape[0]] = True
        if below is not None:
            pending += [(z0 - below.shape[0], below), (z0 + lab.shape[0], above)]
            mismatch += _overlap_mismatch(plab, sl, base, pending, done)
        seeds = lab if markers is None else np.asarray(markers[z0:z0 + lab.shape[0]])
        f = _first_voxels(seeds, n, at, shape)
        first = np.where((first < 0) | ((f >= 0) & (f < first)), f, first)
        sizes += np.bincount(lab.ravel(), minlength=n + 1)
    return first, sizes, unproven, mismatch, high


def _join_without_neck(plab, solid, sl: tuple, base: int, first: np.ndarray, sizes: np.ndarray, k: int) -> None:
    """The in-memory join of watershed labels without a neck (:func:`~layerscope.tomo.segment.merge_without_neck`) on
    a cluster split in slabs: the faces of its provisional ids ``base + 1 ..`` summed over z slabs that overlap by
    one slice, each joined id rewritten as its group's smallest id, which takes the group's first voxel and size."""
    from layerscope.tomo.segment import DARK_FACE, NECK_RATIO, neck_roots

    if not NECK_RATIO or len(sizes) < 3:
        return
    _apply_roots(plab, sl, base, first, sizes, neck_roots(_slab_faces(plab, solid, sl, base, len(sizes) - 1, k),
                                                          sizes, NECK_RATIO, DARK_FACE), k)


def _join_low_tops(plab, solid, sl: tuple, base: int, first: np.ndarray, sizes: np.ndarray, k: int, high: int) -> None:
    """The in-memory join of the labels seeded by low tops (:func:`~layerscope.tomo.segment.low_top_roots`, ids above
    ``high``) on a cluster split in slabs, as :func:`_join_without_neck` does its join."""
    if not segment.LOW_TOPS or len(sizes) - 1 <= high:
        return
    faces = _slab_faces(plab, solid, sl, base, len(sizes) - 1, k)
    planes = segment.waist_planes(faces, high)
    waist = segment.waists(_slab_sections(plab, sl, base, len(sizes) - 1, k, planes), planes) if planes else None
    _apply_roots(plab, sl, base, first, sizes, segment.low_top_roots(faces, sizes, high, waist), k)


def _slab_sections(plab, sl: tuple, base: int, n: int, k: int, planes: dict) -> dict:
    """:func:`~layerscope.tomo.segment.section_counts` of a cluster's provisional ids ``base + 1 .. base + n`` (local
    ids 1..n) at the faces' ``planes``, summed over z slabs that do not overlap."""
    nz, box, counts = sl[0].stop - sl[0].start, tuple(s.stop - s.start for s in sl), {}
    for z0, z1 in _slabs(nz, k):
        block = np.asarray(plab[(slice(sl[0].start + z0, sl[0].start + z1),) + tuple(sl[1:])])
        block = np.where((block > base) & (block <= base + n), block - base, 0)
        for key, c in segment.section_counts(block, planes, box, (z0, 0, 0)).items():
            counts[key] = counts.get(key, 0) + c
    return counts


def _slab_faces(plab, solid, sl: tuple, base: int, n: int, k: int) -> dict:
    """:func:`~layerscope.tomo.segment.label_faces` of a cluster's provisional ids ``base + 1 .. base + n`` (local
    ids 1..n) with its dark voxels, summed over z slabs that overlap by one slice."""
    from layerscope.tomo.segment import label_faces

    nz, faces = sl[0].stop - sl[0].start, {}
    for z0, z1 in _slabs(nz, k):
        at = (slice(sl[0].start + z0, sl[0].start + min(nz, z1 + 1)),) + tuple(sl[1:])
        block = np.asarray(plab[at])
        block = np.where((block > base) & (block <= base + n), block - base, 0)
        dark = (block > 0) & ~np.asarray(solid[at])
        for key, m in label_faces(block, dark, (z0, 0, 0), last_slice_in_plane=z1 >= nz).items():
            faces[key] = faces.get(key, 0) + m
    return faces


def _apply_roots(plab, sl: tuple, base: int, first: np.ndarray, sizes: np.ndarray, root: np.ndarray, k: int) -> None:
    """Each local id ``i`` of a cluster (``base + i`` in ``plab``) rewritten as ``root[i]``, which takes its first
    voxel and size."""
    nz, n = sl[0].stop - sl[0].start, len(sizes) - 1
    if (root == np.arange(n + 1)).all():
        return
    for i in np.flatnonzero(root != np.arange(n + 1)):
        r = root[i]
        first[r] = first[i] if first[r] < 0 else (min(first[r], first[i]) if first[i] >= 0 else first[r])
        sizes[r] += sizes[i]
        first[i], sizes[i] = -1, 0
    for z0, z1 in _slabs(nz, k):
        at = (slice(sl[0].start + z0, sl[0].start + z1),) + tuple(sl[1:])
        view = np.asarray(plab[at])
        m = (view > base) & (view <= base + n)
        view[m] = base + root[view[m] - base]
        plab[at] = view


def _particles(comp, solid, n, boxes, options, scratch: Path, k: int, batch: int, scheduler):
    """Particle ids (memory map), numbered and filtered by size as the in-memory labelling does, the number of
    seed slabs of split clusters kept unproven (:func:`_slab_seeds`) and the voxels where their watershed
    slabs disagree on the overlap (:func:`_overlap_mismatch`)."""
    shape = comp.shape
    plab = _scratch(scratch, "particles", np.int32, shape)
    keys, base, n_unproven, n_mismatch = [], 0, 0, 0
    items = [(c, _box(boxes[c], 1, shape)) for c in range(1, n + 1)]
    for c, sl in [it for it in items if _big(boxes[it[0]])]:
        first, sizes, unproven, mismatch, high = _split_big(comp, c, sl, plab, base, options, scratch, k, batch,
                                                            scheduler)
        if options.split:
            _join_low_tops(plab, solid, sl, base, first, sizes, k, high)
            _join_without_neck(plab, solid, sl, base, first, sizes, k)
        n_unproven, n_mismatch = n_unproven + unproven, n_mismatch + mismatch
        keys += [(int(first[i]), base + i) for i in range(1, len(sizes))
                 if sizes[i] >= options.min_particle_voxels and first[i] >= 0]
        base += len(sizes) - 1
    _stage("split_small")
    for group in _batches([it for it in items if not _big(boxes[it[0]])], batch):
        tasks = [(c, sl, np.asarray(comp[sl]) == c, np.asarray(solid[sl])) for c, sl in group]
        for _, sl, lab, first, sizes in _run(_split_task, tasks, scheduler, split=options.split,
                                             h_voxels=options.split_h_voxels, shape=shape):
            _write_crop(plab, sl, lab, base)
            keys += [(int(first[i]), base + i) for i in range(1, len(sizes))
                     if sizes[i] >= options.min_particle_voxels and first[i] >= 0]
            base += len(sizes) - 1
    _stage("particles_relabel")
    _relabel(plab, _numbering(keys, base), k)
    return plab, n_unproven, n_mismatch


def _measure_task(item, *, options, voxel_nm: float, close: int, levels: dict, shape):
    """Dark features, cracks, pores and particle geometry of one cluster (arrays cut with a margin)."""
    from layerscope.tomo.measure import measure_features, particle_geometry, feature_ids

    sl, inner, plab, solid, grey, mask = item
    off = tuple(s.start for s in sl)
    feats, gap = feature_ids(solid, plab, min_voxels=options.min_feature_voxels, close_voxels=close)
    ids = np.unique(feats[mask])
    only = set(ids[ids > 0].tolist())
    first = _first_voxels(np.where(np.isin(feats, list(only)), feats, 0), int(feats.max()), sl, shape)
    ct, pt, feats, kinds = measure_features(solid, plab, options, voxel_nm, close, grey, levels, offset=off, only=only, feats=feats,
                                     gap_ids=gap & only)
    pids = np.unique(plab[mask])
    geom = particle_geometry(plab, voxel_nm, offset=off, shape=shape, only=set(pids[pids > 0].tolist()))
    local = np.where(np.isin(feats, list(only)), feats, 0)[inner]
    return ct, pt, kinds, {i: int(first[i]) for i in only}, geom, local


def _boxes_of(lab: np.ndarray, n: int, k: int) -> np.ndarray:
    """Bounding boxes ``(n + 1, 6)`` (z, y, x starts then stops) of ids 1..n of a memory map, slab by slab."""
    boxes = np.zeros((n + 1, 6), np.int64)
    boxes[:, :3], boxes[:, 3:] = np.iinfo(np.int64).max, -1
    for z0, z1 in _slabs(lab.shape[0], k):
        for i, sl in enumerate(ndi.find_objects(np.asarray(lab[z0:z1]), max_label=n), 1):
            if sl is not None:
                lo = [sl[0].start + z0, sl[1].start, sl[2].start]
                hi = [sl[0].stop + z0, sl[1].stop, sl[2].stop]
                boxes[i, :3] = np.minimum(boxes[i, :3], lo)
                boxes[i, 3:] = np.maximum(boxes[i, 3:], hi)
    return boxes


def _particles_of(plab: np.ndarray, comp: np.ndarray, big: set, k: int) -> tuple[np.ndarray, dict]:
    """Bounding boxes of the particles and the particle ids of each cluster in ``big``."""
    n = max(int(np.asarray(plab[z0:z1]).max(initial=0)) for z0, z1 in _slabs(plab.shape[0], k))
    members: dict = {c: set() for c in big}
    for z0, z1 in _slabs(plab.shape[0], k):
        p, c = np.asarray(plab[z0:z1]), np.asarray(comp[z0:z1])
        m = (p > 0) & np.isin(c, list(big))
        for pid, cid in np.unique(np.stack([p[m], c[m]], axis=1), axis=0):
            members[int(cid)].add(int(pid))
    return _boxes_of(plab, n, k), members


def _feature_stats(plab, solid, comp, c: int, cbox: np.ndarray, n_particles: int, options, close: int, scratch: Path,
                   k: int, batch: int, scheduler):
    """Dark features of a big cluster, labelled slab by slab across faces (a scratch memory map), and what the
    whole-cluster measurement knows of each from its whole.

    Features shared by two particles are cut at the contact as :func:`layerscope.tomo.measure.feature_ids`
    cuts them (:func:`_cut_shared`). Returns the labels and, per rank (the features of at least
    ``min_feature_voxels`` numbered 1.. by their first voxel in raster order; index 0 unused): a look-up
    table label -> rank (0 for smaller ones; every piece of a cut feature is ranked), the first voxel
    (flat), the owner (the particle with most of its voxels, the smallest id on a tie, as
    ``np.bincount(...).argmax()``), the bounding box ``(z0, y0, x0, z1, y1, x1)``, whether
    :func:`layerscope.tomo.measure.measure_features` drops it in turn: shared (a second particle holds more than
    20 % of its voxels) or a surface dent (:func:`_feature_openings`), and whether it is the gap of a cut
    feature (near the contact, or a piece too small or shallow: labelled while the others are measured,
    never measured).
    """
    from layerscope.tomo.measure import SHARED_SHARE, is_surface_dent

    _stage("feature_stats")
    shape, crop = plab.shape, _box(cbox, MARGIN, plab.shape)
    lab = _scratch(scratch, f"features-{c}", np.int32, shape)

    def dark(a: int, b: int) -> np.ndarray:
        return (np.asarray(plab[a:b]) > 0) & ~np.asarray(solid[a:b]) & (np.asarray(comp[a:b]) == c)

    n, _ = _label_slabs(dark, shape, k, _C26, lab)
    sizes, first, owner, second = _label_stats(lab, plab, n, n_particles, k)
    big = sizes >= options.min_feature_voxels
    cut = big & (second > SHARED_SHARE * sizes)
    from_cut, gap = np.zeros(n + 1, bool), np.zeros(n + 1, bool)
    if cut[1:].any():
        lab, n, from_cut, gap = _cut_shared(lab, plab, dark, big, cut, crop, close, scratch, c, k, batch, scheduler)
        sizes, first, owner, second = _label_stats(lab, plab, n, n_particles, k)
    n_open, deep = _feature_openings(lab, plab, crop, n, close, k, batch, scheduler)
    gap |= from_cut & ((sizes < options.min_feature_voxels) | (deep == 0))
    kept = np.flatnonzero((sizes >= options.min_feature_voxels) | from_cut)
    kept = kept[kept > 0]
    kept = kept[np.argsort(first[kept], kind="stable")]
    rank = np.zeros(n + 1, np.int32)
    rank[kept] = np.arange(1, len(kept) + 1)
    dent = [bool(is_surface_dent(int(n_open[g]), int(sizes[g])) and deep[g] == 0) for g in kept]
    dropped = np.r_[False, (second[kept] > SHARED_SHARE * sizes[kept]) | np.array(dent, bool)]
    boxes = _boxes_of(lab, n, k)
    return lab, rank, np.r_[-1, first[kept]], np.r_[0, owner[kept]], np.r_[boxes[:1], boxes[kept]], \
        dropped & ~np.r_[False, gap[kept]], np.r_[False, gap[kept]]


def _label_stats(lab, plab, n: int, n_particles: int, k: int):
    """Per label 0..n of a memory map, slab by slab: size, first voxel (flat), owner (the particle with most of its
    voxels, the smallest id on a tie) and the voxels of the particle with the second most."""
    shape, mult = plab.shape, n_particles + 1
    sizes, first, keys, counts = np.zeros(n + 1, np.int64), np.full(n + 1, -1, np.int64), [], []
    for z0, z1 in _slabs(shape[0], k):
        f, p = np.asarray(lab[z0:z1]), np.asarray(plab[z0:z1])
        sizes += np.bincount(f.ravel(), minlength=n + 1)
        at = _first_voxels(f, n, (slice(z0, z1), slice(0, shape[1]), slice(0, shape[2])), shape)
        first = np.where((first < 0) | ((at >= 0) & (at < first)), at, first)
        u, cnt = np.unique(f[f > 0].astype(np.int64) * mult + p[f > 0], return_counts=True)
        keys.append(u)
        counts.append(cnt)
    u, inv = np.unique(np.concatenate(keys), return_inverse=True)
    tot = np.bincount(inv.ravel(), weights=np.concatenate(counts)).astype(np.int64)
    fid, pid = u // mult, u % mult
    order = np.lexsort((-tot, fid))  # stable: on a tie the smaller particle id first
    fid, tot, pid = fid[order], tot[order], pid[order]
    head = np.r_[True, fid[1:] != fid[:-1]][:len(fid)]  # no dark feature: empty
    owner = np.zeros(n + 1, np.int64)
    owner[fid[head]] = pid[head]
    second = np.zeros(n + 1, np.int64)
    nxt = np.flatnonzero(head) + 1
    nxt = nxt[(nxt < len(fid))]
    nxt = nxt[fid[nxt] == fid[nxt - 1]]
    second[fid[nxt]] = tot[nxt]
    return sizes, first, owner, second


def _contact_task(item, *, reach: float, cut: np.ndarray):
    """The voxels of one slab's core in a feature to cut (``cut``: per label) and near a particle contact."""
    from layerscope.tomo.measure import contact_zone

    z0, z1, lo, p, f = item
    core = slice(lo, lo + z1 - z0)
    return cut[f[core]] & contact_zone(p, reach)[core]


def _cut_shared(lab, plab, dark, big: np.ndarray, cut: np.ndarray, crop: tuple, close: int, scratch: Path, c: int,
                k: int, batch: int, scheduler):
    """The features ``cut`` (per label of ``lab``) without their voxels near a particle contact
    (:func:`layerscope.tomo.measure.contact_zone`, within ``close + 1``; z slabs of the cluster's box ``crop``
    with a halo of ``ceil(close + 1) + 2`` slices: exact), labelled again slab by slab with the other features of
    at least the minimum size (``big``). Returns the new labels, their number and which come from a cut feature."""
    _stage("feature_cut")
    shape = plab.shape
    near = _scratch(scratch, f"contact-{c}", bool, shape)
    nz, halo = crop[0].stop - crop[0].start, int(np.ceil(close + 1)) + 2

    def block_of(a: int, b: int) -> tuple:
        z = slice(crop[0].start + a, crop[0].start + b)
        return np.asarray(plab[(z,) + crop[1:]]), np.asarray(lab[(z,) + crop[1:]])

    for z0, z1, core in _retry_slabs(nz, k, halo, block_of, _contact_task, lambda *_: None, batch, scheduler,
                                     reach=close + 1, cut=cut):
        near[(slice(crop[0].start + z0, crop[0].start + z1),) + crop[1:]] = core
    new = _scratch(scratch, f"features-cut-{c}", np.int32, shape)
    n, _ = _label_slabs(lambda a, b: dark(a, b) & big[np.asarray(lab[a:b])] & ~np.asarray(near[a:b]), shape, k, _C26, new)
    gap = _scratch(scratch, f"features-gap-{c}", np.int32, shape)
    m, _ = _label_slabs(lambda a, b: np.asarray(near[a:b]), shape, k, _C26, gap)
    from_cut = np.zeros(n + m + 1, bool)
    for z0, z1 in _slabs(shape[0], k):
        f, g = np.asarray(new[z0:z1]), np.asarray(gap[z0:z1])
        f[g > 0] = g[g > 0] + n
        new[z0:z1] = f
        from_cut[f[cut[np.asarray(lab[z0:z1])]]] = True
    near = gap = None  # the scratch maps released (not `del`: the lambdas above read `near`)
    return new, n + m, from_cut, np.r_[np.zeros(n + 1, bool), np.ones(m, bool)]


def _openings_task(item, *, close: int, n: int):
    """Per feature label of one slab's core: voxels next to the outside and voxels at least ``close + 1.5``
    deep in the envelope (distance transform of the slab and its halo, exact below the halo)."""
    z0, z1, lo, env, feats = item
    core = slice(lo, lo + z1 - z0)
    depth = ndi.distance_transform_edt(env)[core]
    outside = ndi.binary_dilation(~env, structure=_C26)[core]
    f = feats[core]
    return (np.bincount(f[outside], minlength=n + 1), np.bincount(f[depth >= close + 1.5], minlength=n + 1))


def _feature_openings(lab, plab, crop: tuple, n: int, close: int, k: int, batch: int, scheduler):
    """Per feature label of a cluster: the voxels next to the outside (``n_open``) and those deeper than
    ``close + 1.5`` in the envelope, as :func:`layerscope.tomo.measure.measure_features` counts them on the
    cluster's box with :data:`MARGIN` (``crop``; the envelope: every particle there), in z slabs of that
    box with a halo of ``ceil(close + 1.5) + 2`` slices: the dilation reaches 1 voxel, and a slab's
    distance can only be too large, so it is below the threshold exactly when the whole box's is (its
    nearest background then lies within the halo)."""
    _stage("feature_openings")
    nz, halo = crop[0].stop - crop[0].start, int(np.ceil(close + 1.5)) + 2
    n_open, deep = np.zeros(n + 1, np.int64), np.zeros(n + 1, np.int64)

    def block_of(a: int, b: int) -> tuple:
        z = slice(crop[0].start + a, crop[0].start + b)
        return np.asarray(plab[(z,) + crop[1:]]) > 0, np.asarray(lab[(z,) + crop[1:]])

    for _, _, (o, d) in _retry_slabs(nz, k, halo, block_of, _openings_task, lambda *_: None, batch, scheduler,
                                     close=close, n=n):
        n_open, deep = n_open + o, deep + d
    return n_open, deep


def _slab_group_task(item, *, options, voxel_nm: float, close: int, levels: dict, shape):
    """Cracks, pores and geometry of a group of particles of a big cluster and of the features they own, on
    one cut ``sl`` that holds them whole with the margin (``feats``: the cluster's feature ranks).

    One :func:`layerscope.tomo.measure.measure_features` call measures the owned features (``own``) in rank
    order, the features the whole cluster drops (``dropped``: shared or surface dents, known from their
    whole) being dropped in turn, as in the whole-cluster loop; the other features are left as they are
    (they are measured by the group of their owner).
    """
    from layerscope.tomo.measure import measure_features, particle_geometry

    sl, pids, own, dropped, gap, plab, solid, grey, feats = item
    off = tuple(s.start for s in sl)
    ct, pt, feats, kd = measure_features(solid, plab, options, voxel_nm, close, grey, levels, offset=off,
                                  only=set(own) | dropped, feats=feats, shared_ids=dropped, gap_ids=gap)
    keep = np.zeros(int(feats.max(initial=0)) + 1, bool)
    keep[[g for g in own if g < keep.size]] = True
    geom = particle_geometry(plab, voxel_nm, offset=off, shape=shape, only=set(pids))
    return ct, pt, {f: kd[f] for f in own if f in kd}, geom, np.where(keep[feats], feats, 0)


def _group_cuts(members: list, pboxes, owner, fboxes, dropped, gap, cbox, margin: int, k: int, shape) -> list:
    """The cuts of a big cluster's measurement, ``(particle ids, owned feature ranks, cut)``: the particles whose
    box starts in the same slab of ``k`` z slices with the features they own, on one cut of the cluster's box
    (z: from the first to the last slice of these particles and features, with the margin; full width). With
    :data:`TALL_SLABS`, a particle whose box is taller than that many slabs is measured alone with the features it
    owns, on their own box with the margin (all three axes): a chain of particles as tall as the volume does not
    make a cut of the volume's height and the cluster's width. An owned feature that reaches more than ``k``
    slices beyond its group's particles is measured alone on the box of it and its owner with the margin."""
    across = _box(cbox, margin, shape)[1:]
    groups: dict = {}
    for pid in members:
        tall = TALL_SLABS is not None and int(pboxes[pid, 3] - pboxes[pid, 0]) > TALL_SLABS * k
        groups.setdefault(("tall", pid) if tall else int(pboxes[pid, 0]) // k, []).append(pid)
    todo = []
    for key, pids in groups.items():
        z0, z1 = int(pboxes[pids, 0].min()), int(pboxes[pids, 3].max())
        own, alone = [], []
        for g in np.flatnonzero(np.isin(owner, pids)):
            if g > 0 and not dropped[g] and not gap[g]:
                (own if fboxes[g, 0] >= z0 - k and fboxes[g, 3] <= z1 + k else alone).append(int(g))
        if isinstance(key, tuple):  # a tall particle: its box and its owned features' boxes
            box = np.r_[np.min(np.vstack([pboxes[pids, :3], fboxes[own, :3]]), axis=0),
                        np.max(np.vstack([pboxes[pids, 3:], fboxes[own, 3:]]), axis=0)]
            todo.append((pids, own, _box(box, margin, shape)))
        else:
            z0, z1 = min([z0] + [int(fboxes[g, 0]) for g in own]), max([z1] + [int(fboxes[g, 3]) for g in own])
            todo.append((pids, own, (slice(max(0, z0 - margin), min(shape[0], z1 + margin)),) + across))
        for g in alone:  # a long feature (a channel through many particles): its own cut, with its owner
            box = np.r_[np.minimum(fboxes[g, :3], pboxes[owner[g], :3]), np.maximum(fboxes[g, 3:], pboxes[owner[g], 3:])]
            todo.append(([], [g], _box(box, margin, shape)))
    return todo


def _measure_big(c: int, members: list, plab, solid, comp, grey_of, pboxes, cbox, feats_mm, base: int, options,
                 voxel_nm: float, close: int, levels: dict, scratch: Path, k: int, batch: int, scheduler):
    """Cracks, pores, kinds and geometry of a big cluster (box ``cbox``) by the cuts of :func:`_group_cuts`, one at
    a time. Ids ``base + rank``; writes the feature ids into ``feats_mm`` and returns the first voxel of each rank
    too."""
    shape, margin = plab.shape, max(MARGIN, close + 3)
    batch = max(1, batch // 2)  # feature openings: one task per worker (the groups below run one at a time)
    lab, rank, first, owner, fboxes, dropped, gap = _feature_stats(plab, solid, comp, c, cbox, int(pboxes.shape[0] - 1),
                                                              options, close, scratch, k, batch, scheduler)
    gone = set(np.flatnonzero(dropped).tolist())
    gap_ranks = set(np.flatnonzero(gap).tolist())  # the gap between particles: a crack's deep end in it counts (measure._gap_part)
    todo = _group_cuts(members, pboxes, owner, fboxes, dropped, gap, cbox, margin, k, shape)
    _stage("slab_groups")
    cracks, pores, kinds, geometry = [], [], {}, []
    for pids, own, sl in todo:  # one group at a time, cut just before it runs: one cut of the box's width in memory
        task = (sl, pids, own, gone, gap_ranks, np.asarray(plab[sl]), np.asarray(solid[sl]), grey_of(sl),
                rank[np.asarray(lab[sl])])
        out = _run(_slab_group_task, [task], scheduler, options=options, voxel_nm=voxel_nm, close=close, levels=levels,
                   shape=shape)[0]
        del task
        cracks.append(out[0].assign(crack=out[0]["crack"] + base))
        pores.append(out[1].assign(pore=out[1]["pore"] + base))
        kinds.update({base + i: v for i, v in out[2].items()})
        geometry += out[3]
        _write_crop(feats_mm, sl, out[4], base)
    del lab
    return cracks, pores, kinds, geometry, first


def _cluster_parts(clusters: list, solid, plab, comp, boxes, grey_of, options, voxel_nm: float, close: int,
                   levels: dict, batch: int, scheduler):
    """Yield ``(box, result)`` of :func:`_measure_task` for each cluster id in ``clusters`` (box: where its labels go)."""
    shape = plab.shape
    for group in _batches(clusters, batch):
        tasks = []
        for c in group:
            sl, inner = _box(boxes[c], MARGIN, shape), _box(boxes[c], 0, shape)
            rel = tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, sl))
            tasks.append((sl, rel, np.asarray(plab[sl]), np.asarray(solid[sl]), grey_of(sl), np.asarray(comp[sl]) == c))
        for task, out in zip(tasks, _run(_measure_task, tasks, scheduler, options=options, voxel_nm=voxel_nm,
                                         close=close, levels=levels, shape=shape)):
            yield tuple(slice(s.start + r.start, s.start + r.stop) for s, r in zip(task[0], task[1])), out


def _measure(vol, solid, plab, comp, n, boxes, options, levels, close, scratch: Path, k: int, batch: int, scheduler):
    """Crack, pore and particle rows of every cluster (of every particle of a big cluster); feature ids
    (memory map) numbered as in memory."""
    _stage("measure_small")
    shape, voxel_nm = vol.data.shape, vol.voxel_size_nm
    feats = _scratch(scratch, "features", np.int32, shape)
    grey_of = (lambda sl: None) if vol.labels else (lambda sl: np.asarray(vol.data[sl], np.float32))
    big = {c for c in range(1, n + 1) if _big(boxes[c])}
    parts = _cluster_parts([c for c in range(1, n + 1) if c not in big], solid, plab, comp, boxes, grey_of, options,
                           voxel_nm, close, levels, batch, scheduler)
    cracks, pores, geometry, kinds, keys, base = [], [], [], {}, [], 0
    for at, (ct, pt, kd, first, geom, local) in parts:
        prov = {i: base + i for i in first}
        keys += [(f, prov[i]) for i, f in first.items()]
        cracks.append(ct.assign(crack=ct["crack"].map(prov)))
        pores.append(pt.assign(pore=pt["pore"].map(prov)))
        kinds.update({prov[i]: v for i, v in kd.items()})
        geometry += geom
        _write_crop(feats, at, local, base)
        base += max(first, default=0)
    _stage("particles_of")
    pboxes, members = _particles_of(plab, comp, big, k) if big else (None, {})
    for c in sorted(big):
        cts, pts, kd, geom, first = _measure_big(c, sorted(members[c]), plab, solid, comp, grey_of, pboxes, boxes[c], feats, base,
                                                 options, voxel_nm, close, levels, scratch, k, batch, scheduler)
        keys += [(int(f), base + i) for i, f in enumerate(first) if i > 0]
        cracks, pores, geometry = cracks + cts, pores + pts, geometry + geom
        kinds.update(kd)
        base += len(first) - 1
    _stage("features_relabel")
    lut = _numbering(keys, base)
    _relabel(feats, lut, k)
    ct, pt = _joined(cracks, "crack", lut), _joined(pores, "pore", lut)
    return ct, pt, feats, {int(lut[i]): v for i, v in kinds.items()}, sorted(geometry, key=lambda g: g["particle"])


def _joined(tables: list, key: str, lut: np.ndarray):
    """One table from the clusters' tables, ids replaced by their final ids, in id order (as in memory)."""
    import pandas as pd

    full = [t for t in tables if len(t)]
    if not full:  # no rows: every column float, as the in-memory table built from no rows
        return tables[0].iloc[:0].astype(np.float64) if tables else pd.DataFrame()
    out = pd.concat(full, ignore_index=True)
    out[key] = lut[out[key].to_numpy(np.int64)].astype(np.int64)
    return out.sort_values(key, kind="stable").reset_index(drop=True)


def _scratch(folder: Path, name: str, dtype, shape) -> np.ndarray:
    """A memory map in ``folder`` whose file is unlinked at once (the mapping keeps it until dropped)."""
    path = Path(folder) / f"{name}.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
    path.unlink()
    return mm


def analyse_volume_chunked(vol, options, *, close: int, scheduler: Any = None, scratch_dir: Path | None = None,
                           slab_slices: int = 32) -> dict[str, Any]:
    """Particles, cracks and pores of ``vol`` (a :class:`~layerscope.tomo.readers.Volume`, may be a memory map)
    with bounded memory (see the module docstring).

    Parameters
    ----------
    vol : Volume
    options : TomoOptions
    close : int
        Closing radius of the envelopes (voxels).
    scheduler : see :func:`layerscope.parallel.scheduler_context`
    scratch_dir : path, optional
        Folder for the scratch memory maps (unlinked at once; the system's temporary folder if None).
    slab_slices : int
        z slices per slab.

    Returns
    -------
    dict
        ``levels``, ``particle_labels`` and ``feature_labels`` (memory maps), ``particle_geometry``
        (rows for :func:`layerscope.tomo.measure.particle_rows`), ``cracks``, ``pores``, ``kinds`` and
        ``unproven_seed_slabs`` (seed slabs of split clusters not proven equal to the whole cluster's) and
        ``watershed_overlap_mismatch_voxels`` (voxels where two watershed slabs of a split cluster label their
        overlap differently: then the particle labels are not the whole cluster's there).
    """
    import tempfile

    from layerscope.parallel import default_workers

    return_freed_arrays()
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="layerscope-tomo-") as tmp:
        scratch = Path(tmp)
        batch = 2 * default_workers() if not isinstance(scheduler, str) or scheduler in ("threads", "sync") else 16
        slabs = _slabs(vol.data.shape[0], slab_slices)
        _stage("levels")
        levels = ({"particle_label": int(options.particle_label)} if vol.labels
                  else _levels(vol.data, options, slabs, batch, scheduler))
        _stage("solid")
        solid, env = _solid_and_envelope(vol.data, options, levels, close, scratch, slab_slices, batch, scheduler)
        _stage("clusters")
        comp, n, boxes = _clusters(env, scratch, slab_slices)
        del env
        plab, unproven, mismatch = _particles(comp, solid, n, boxes, options, scratch, slab_slices, batch, scheduler)
        ct, pt, feats, kinds, geometry = _measure(vol, solid, plab, comp, n, boxes, options, levels, close, scratch,
                                                  slab_slices, batch, scheduler)
    return {"levels": levels, "particle_labels": plab, "feature_labels": feats, "particle_geometry": geometry,
            "cracks": ct, "pores": pt, "kinds": kinds, "unproven_seed_slabs": unproven,
            "watershed_overlap_mismatch_voxels": mismatch}
