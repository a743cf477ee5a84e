"""Measurements of particles, cracks and pores from labels and the grey volume (no file I/O).

Shared by the in-memory analysis (:mod:`layerscope.tomo.analysis`) and the bounded-memory one
(:mod:`layerscope.tomo.chunked`), which calls them on arrays cut from the volume (``offset``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from layerscope.tomo.segment import MOUTH_SHEET, plane_of, dark_features, feature_shape, planar_sheets, round_part

__all__ = ["measure_features", "particle_geometry", "particle_rows", "particle_table", "is_surface_dent"]

#: Below this flatness a dark feature is one sheet and is not searched for crossing planes (a single
#: 2-3 voxel crack of the phantoms: 0.1-0.2; two 2.5-voxel discs crossing at 20 deg: ~0.25).
SINGLE_SHEET_FLATNESS = 0.15
#: The particle level is the median of the particle's interior away from this many voxels of any dark feature (the
#: blurred rims of cracks and pores, which pull the median down under noise: -3 % of the contrast on draw 48).
RIM_VOXELS = 2
#: the surroundings' grey level is taken in a particle's bounding box grown by this many voxels (within the
#: measurement margin of the out-of-core path, chunked.MARGIN) ...
SURROUNDINGS_PAD = 6
#: ... at least this many voxels from any particle envelope (a binder coat of 2 voxels and the blur of the surface)
SURROUNDINGS_GAP = 4
#: A crack's partial-volume sum takes in the voxels of the gap between touching particles (:func:`feature_ids`) that
#: lie in its particle at least this deep (voxels) in the envelope and are joined to it through such voxels: where a
#: crack runs into the contact with a neighbour, the cut at the contact left its last ``close + 1`` voxels in the
#: gap (a fused contact holds no dark voxels below the surface shell; the crease between the particles lies in it).
#: None: off (the gap is never measured).
GAP_JOIN_DEPTH: float | None = 2.5


def _area_nm2(mask: np.ndarray, voxel_nm: float) -> float:
    """Surface area of a binary mask (marching cubes on the lightly smoothed mask), nm^2."""
    from skimage.measure import marching_cubes, mesh_surface_area

    m = ndi.gaussian_filter(np.pad(mask, 2).astype(np.float32), 0.7)
    if m.max() <= 0.5:
        return 0.0
    verts, faces, _, _ = marching_cubes(m, 0.5)
    return float(mesh_surface_area(verts, faces)) * voxel_nm ** 2


def _deficit(fid: int, feats: np.ndarray, plabels: np.ndarray, owner: int, boxes: tuple, depth: np.ndarray,
             grey: np.ndarray, levels: dict, blur_voxels: float = 1.0, open_: bool = False,
             offset: tuple = (0, 0, 0), gap: frozenset = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """Partial-volume content of a dark feature: coordinates ``(n, 3)`` and missing fraction per voxel.

    Around the feature (dilated by 3 voxels, inside its particle, away from other features) the
    missing attenuation ``(R - v) / (P - E)`` is summed, where ``R = E + (P - E) G(particle)`` is the
    particle without the feature, blurred like the reconstruction (Gaussian, ``blur_voxels``), ``P``
    the median of the particle's solid interior (depth >= 3, at least :data:`RIM_VOXELS` from any dark
    feature) and ``E`` = ``levels["epoxy"]``, which :func:`measure_features` sets to the level of the particle's
    surroundings (:func:`_surroundings_level`, once per particle). Blur and FBP preserve
    this sum, so thin cracks are not lost to the threshold. The fractions are not clipped: noise
    spreads them on both sides of 1 inside a crack (and of 0 in the solid), and cutting one side
    biased noisy cracks low (by up to 9 % of their volume at noise 0.2 x the contrast). For a feature open to the surface
    (``open_``) the particle envelope misses the feature's mouth (the blurred edges of the mouth fall
    below the threshold, a notch no closing fills): the reference particle is then its convex hull,
    the mouth (hull but not envelope, within 3 voxels of the feature) joins the feature, and the sum
    runs over the feature dilated by 4 voxels inside the hull grown by 3, so that the blur of the
    mouth beyond the surface counts too. ``offset`` (voxels) is added to the coordinates (arrays cut
    from a larger volume). The particle is ``plabels == owner``; ``boxes`` are the bounding boxes of
    the feature and of the particle (only arrays of the feature's neighbourhood are made). ``gap``: the
    ids of the gap between touching particles, whose deep voxels joined to the feature count as its own
    (:func:`_gap_part`).
    """
    pad = 8 if open_ else 4
    sl = _grown(boxes[0], pad, feats.shape)
    if GAP_JOIN_DEPTH is not None and gap:  # the arrays then hold the gap's part too (it reaches ~close + 2 beyond)
        wide = _grown(boxes[0], pad + 8, feats.shape)
        got = np.argwhere(_gap_part(feats[wide] == fid, feats[wide], gap, plabels[wide] == owner, depth[wide]))
        if len(got):
            lo, hi = got.min(axis=0) + [w.start for w in wide], got.max(axis=0) + [w.start for w in wide] + 1
            sl = _grown(tuple(slice(min(s.start, a), max(s.stop, b)) for s, a, b in zip(boxes[0], lo, hi)), pad, feats.shape)
    f = feats[sl]
    part = plabels[sl] == owner
    mm = (f == fid) | _gap_part(f == fid, f, gap, part, depth[sl])
    interior = part & (depth[sl] >= 3) & ~ndi.binary_dilation(f > 0, iterations=RIM_VOXELS)
    other = ndi.binary_dilation((f > 0) & ~mm, iterations=1)
    if open_:
        hull, others = _hull(plabels, owner, boxes[1], depth, sl)
        mm = mm | (hull & ~part & ndi.binary_dilation(mm, iterations=3))
        region = (ndi.binary_dilation(mm, iterations=4) & ndi.binary_dilation(hull, iterations=3) & ~others & ~other) | mm
        part = hull
    else:
        region = (ndi.binary_dilation(mm, iterations=3) & part & ~other) | mm
    p_level = float(np.median(grey[sl][interior])) if interior.sum() > 20 else levels["particle"]
    e_level = levels["epoxy"]
    ref = e_level + (p_level - e_level) * ndi.gaussian_filter(part.astype(np.float32), blur_voxels)
    missing = (ref[region] - grey[sl][region]) / max(p_level - e_level, 1e-12)
    coords = np.argwhere(region).astype(float) + [s.start + o for s, o in zip(sl, offset)]
    return coords, missing


def _grown(box: tuple, pad: int, shape: tuple) -> tuple:
    """The box (slices) grown by ``pad`` voxels on every side, within ``shape``."""
    return tuple(slice(max(0, s.start - pad), min(n, s.stop + pad)) for s, n in zip(box, shape))


def _gap_part(mm: np.ndarray, f: np.ndarray, gap: frozenset, part: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The voxels of the gap features ``gap`` (ids in ``f``) in the particle ``part`` at least :data:`GAP_JOIN_DEPTH`
    deep (``depth``, voxels) that are 26-connected to the feature ``mm`` through such voxels: the end of a crack
    that runs into the contact with a touching particle (cut off as gap by :func:`feature_ids`)."""
    if GAP_JOIN_DEPTH is None or not gap:
        return np.zeros_like(mm)
    g = np.isin(f, list(gap)) & part & (depth >= GAP_JOIN_DEPTH)
    if not g.any():
        return g
    lab, _ = ndi.label(g | mm, structure=np.ones((3, 3, 3)))
    return g & np.isin(lab, np.unique(lab[mm]))


def _surroundings_level(plabels: np.ndarray, grey: np.ndarray, psl: tuple, default: float) -> float:
    """Median grey level of the surroundings of a particle (bounding box ``psl``): the voxels of its box grown by
    :data:`SURROUNDINGS_PAD` that lie at least :data:`SURROUNDINGS_GAP` voxels from any particle envelope (beyond a
    binder coat and the blur of the surface); ``default`` when fewer than 50 such voxels are in the arrays."""
    box = tuple(slice(max(0, s.start - SURROUNDINGS_PAD), min(n, s.stop + SURROUNDINGS_PAD)) for s, n in zip(psl, plabels.shape))
    far = ~ndi.binary_dilation(plabels[box] > 0, iterations=SURROUNDINGS_GAP)
    return float(np.median(grey[box][far])) if far.sum() >= 50 else default


def _hull(plabels: np.ndarray, owner: int, psl: tuple, depth: np.ndarray, sl: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The convex hull of particle ``owner`` (bounding box ``psl``) within ``sl`` (not in other particles)
    and the other particles grown by 2 voxels.

    ``depth`` is the distance transform of all particle envelopes (> 0 inside any particle).
    """
    from skimage.morphology import convex_hull_image

    whole = convex_hull_image(plabels[psl] == owner)
    hull = np.zeros(depth[sl].shape, bool)
    lo = [max(a.start, b.start) for a, b in zip(sl, psl)]
    hi = [min(a.stop, b.stop) for a, b in zip(sl, psl)]
    if all(h > low for low, h in zip(lo, hi)):
        hull[tuple(slice(low - a.start, h - a.start) for low, h, a in zip(lo, hi, sl))] = \
            whole[tuple(slice(low - b.start, h - b.start) for low, h, b in zip(lo, hi, psl))]
    others = (depth[sl] > 0) & (plabels[sl] != owner)
    return hull & ~others, ndi.binary_dilation(others, iterations=2)


#: A sheet voxel's width counts when the sheet covers at least this share of a disc of the width cylinder's
#: radius + 1 around it, across its normal: the cylinder then lies inside the crack (a straight rim 2 voxels
#: away leaves ~0.89 of a 3-voxel disc covered, 1 voxel away ~0.71), not across its rim or tip.
COVERED_SHARE = 0.9


def _local_widths(coords: np.ndarray, missing: np.ndarray, sheet: np.ndarray, *, radius: float = 2.0,
                  half_length: float = 3.5, n_max: int = 2000) -> tuple[float, float]:
    """Mean and 90th-percentile local width (voxels) of a crack along the sheet's local normal.

    At up to ``n_max`` voxels of the sheet ``sheet`` (whole-voxel coordinates) the missing fraction
    ``missing`` at ``coords`` is integrated across the crack: within a cylinder of ``radius`` and
    ``half_length`` along the voxel's local normal (:func:`layerscope.tomo.segment.local_normals`), the
    mean fraction in slices 1 voxel thick along the normal, summed (:func:`_profile_widths`; blur moves
    the missing attenuation along the profile, not out of it). Only voxels whose cylinder lies inside
    the crack count (:func:`_covered`, :data:`COVERED_SHARE`): at a rim, tip or crossing the cylinder
    holds part of the crack only and reads narrow (all of them when fewer than 10 qualify); values
    below 0.5 voxel are not counted. Columns along one normal of the whole crack (the method before
    the local normals) read a curved crack's oblique flanks as wide.
    """
    from scipy.spatial import cKDTree

    from layerscope.tomo.segment import local_normals

    rng = np.random.default_rng(0)
    at = np.sort(rng.choice(len(sheet), min(len(sheet), n_max), replace=False))
    normals = local_normals(sheet, at)
    hits = cKDTree(coords).query_ball_point(sheet[at], np.hypot(radius, half_length))
    near = cKDTree(sheet).query_ball_point(sheet[at], np.hypot(radius + 1, half_length))
    r = int(np.ceil(np.hypot(radius, half_length)))
    lattice = np.stack(np.meshgrid(*[np.arange(-r, r + 1.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    lattice = lattice[np.einsum("ij,ij->i", lattice, lattice) <= radius ** 2 + half_length ** 2]  # the rest lies outside every cylinder
    w = _profile_widths(_offsets(coords, sheet[at], hits), missing, lattice, normals, radius, half_length)
    full = _covered(_offsets(sheet, sheet[at], near), normals, radius + 1, half_length) >= COVERED_SHARE
    keep = w >= 0.5
    if (keep & full).sum() >= 10:
        keep &= full
    if not keep.any():
        return float("nan"), float("nan")
    return float(w[keep].mean()), float(np.percentile(w[keep], 90))


def _offsets(points: np.ndarray, centres: np.ndarray, hits: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The neighbours ``hits[j]`` (indices into ``points``) of every centre j, flattened: their offsets from
    the centre, the centre's index and the neighbour's index."""
    owner = np.repeat(np.arange(len(centres)), [len(h) for h in hits])
    idx = np.concatenate([np.asarray(h, np.int64) for h in hits]) if len(hits) else np.zeros(0, np.int64)
    return points[idx] - centres[owner], owner, idx


def _slice_of(rel: np.ndarray, n: np.ndarray, radius: float, half_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Per offset ``rel`` (axis ``n`` per row): whether it lies in the cylinder (``radius``, ``half_length``)
    and its slice 1 voxel thick along the axis (0 .. 2 ``half_length`` - 1; the last edge in the last slice)."""
    t = np.einsum("ij,ij->i", rel, n)
    inside = (np.einsum("ij,ij->i", rel, rel) - t ** 2 <= radius ** 2) & (np.abs(t) <= half_length)
    edges = np.arange(-half_length, half_length + 1e-9, 1.0)
    return inside, np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)


def _profile_widths(offsets: tuple, missing: np.ndarray, lattice: np.ndarray, normals: np.ndarray, radius: float,
                    half_length: float) -> np.ndarray:
    """Integral of the missing fraction across a cylinder (axis ``normals[j]``, ``radius``, ``half_length``)
    centred on each point j (a lattice point): per slice 1 voxel thick along the axis, the summed ``missing``
    of the point's neighbours (``offsets``: from :func:`_offsets`) over the lattice points of the slice (points
    not given hold no missing attenuation), summed over slices."""
    rel, owner, idx = offsets
    n_pts, n_sl = len(normals), int(round(2 * half_length))
    inside, sl = _slice_of(rel, normals[owner], radius, half_length)
    got = np.bincount((owner * n_sl + sl)[inside], weights=missing[idx][inside], minlength=n_pts * n_sl)
    lat_owner = np.repeat(np.arange(n_pts), len(lattice))
    l_in, l_sl = _slice_of(np.tile(lattice, (n_pts, 1)), normals[lat_owner], radius, half_length)
    per_slice = np.bincount((lat_owner * n_sl + l_sl)[l_in], minlength=n_pts * n_sl)
    return (got.reshape(n_pts, n_sl) / np.maximum(per_slice.reshape(n_pts, n_sl), 1)).sum(axis=1)


def _covered(offsets: tuple, normals: np.ndarray, radius: float, half_length: float) -> np.ndarray:
    """Per point j: the share of the 1-voxel cells of a disc of ``radius`` across ``normals[j]`` (within
    ``half_length`` along it) that hold a voxel of the sheet at its ``offsets`` (from :func:`_offsets`)."""
    rel, owner, _ = offsets
    e1 = np.cross(normals, np.eye(3)[np.argmin(np.abs(normals), axis=1)])
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(normals, e1)
    n, a, b = (np.einsum("ij,ij->i", rel, v[owner]) for v in (normals, e1, e2))
    keep = np.abs(n) <= half_length
    cells, owner = np.floor(np.stack([a, b], axis=1)[keep]), owner[keep]
    on = np.hypot(*(cells + 0.5).T) <= radius
    side = 2 * int(np.ceil(radius))
    key = ((cells[on] + np.ceil(radius)) @ [side, 1]).astype(np.int64) + owner[on] * side * side
    k = np.arange(-np.ceil(radius), np.ceil(radius)) + 0.5
    per_disc = int((np.hypot(*np.meshgrid(k, k)) <= radius).sum())
    return np.bincount(np.unique(key) // (side * side), minlength=len(normals)) / per_disc


def is_surface_dent(n_open: int, n_voxels: int) -> bool:
    """A shallow feature open to the outside is a surface dent when its opening is wide.

    A dent (a notch bridged by the envelope closing) touches the outside over its whole top:
    ``n_open`` voxels next to the outside above 2 ``n_voxels**(2/3)`` (3.3-5.4 on the phantoms'
    dents, 1.9 for a hemispherical pit). A round pore 0-3 voxels under the surface opens through a
    blurred wall of a few voxels only (0.8-1.2) and is kept.
    """
    return n_open > 2.0 * n_voxels ** (2.0 / 3.0)


#: a second particle holding more than this share of a dark feature's voxels makes it shared (the gap between
#: touching particles, or cracks of touching particles joined through it)
SHARED_SHARE = 0.2


def contact_zone(plabels: np.ndarray, reach: float) -> np.ndarray:
    """Voxels within ``reach`` voxels of a contact between two particles (a voxel of one particle label with a
    26-neighbour of another). Exact for voxels at least ``reach + 2`` voxels from a cut face of the arrays."""
    top = np.iinfo(plabels.dtype).max
    hi = ndi.maximum_filter(plabels, size=3)
    lo = ndi.minimum_filter(np.where(plabels > 0, plabels, top), size=3)
    contact = (plabels > 0) & ((hi > plabels) | (lo < plabels))
    if not contact.any():
        return contact
    return ndi.distance_transform_edt(~contact) <= reach


def shared_features(feats: np.ndarray, plabels: np.ndarray) -> np.ndarray:
    """Per feature id (index 0 unused): whether a second particle holds more than :data:`SHARED_SHARE` of it."""
    n, mult = int(feats.max(initial=0)), int(plabels.max(initial=0)) + 1
    m = feats > 0
    u, counts = np.unique(feats[m].astype(np.int64) * mult + plabels[m], return_counts=True)
    fid = u // mult
    order = np.lexsort((-counts, fid))
    fid, counts = fid[order], counts[order]
    head = np.r_[True, fid[1:] != fid[:-1]][:len(fid)]
    second = np.r_[False, ~head[1:] & head[:-1]][:len(fid)]  # the second largest share of each feature
    out = np.zeros(n + 1, bool)
    out[fid[second]] = counts[second] > SHARED_SHARE * np.bincount(feats.ravel(), minlength=n + 1)[fid[second]]
    return out


def feature_ids(solid: np.ndarray, plabels: np.ndarray, *, min_voxels: int, close_voxels: int) -> tuple[np.ndarray, set]:
    """Dark features (:func:`layerscope.tomo.segment.dark_features`) with those shared by two particles cut at
    the contact, and the ids of the gap between particles (not measured, dropped after the measurements).

    Cracks of touching particles that reach the surface near the contact join through the gap between the
    particles into one shared feature. Its voxels within ``close_voxels + 1`` of the contact
    (:func:`contact_zone`: the gap, which the envelope closing fills) are the gap; what is left falls apart
    in pieces of one particle each (no voxel left touches another particle), features of their own when
    they hold ``min_voxels`` and reach deeper than ``close_voxels + 1.5`` into the envelope, else gap too
    (the rest of the gap's wedge at the surface is shallower). The gap keeps ids (26-connected pieces of
    the voxels near the contact, and the shallow pieces) so that no crack's partial-volume sum takes it
    in. Other features are unchanged. Ids are numbered by first voxel in raster order.
    """
    feats = dark_features(solid, plabels, min_voxels=min_voxels)
    shared = shared_features(feats, plabels)
    if not shared.any():
        return feats, set()
    pad = int(np.ceil(close_voxels + 1.5)) + 2
    box = _padded_box(np.isin(feats, np.flatnonzero(shared)), pad)
    cut = np.zeros(feats.shape, bool)
    cut[box] = shared[feats[box]] & contact_zone(plabels[box], close_voxels + 1)
    lab, n = ndi.label((feats > 0) & ~cut, structure=np.ones((3, 3, 3)))
    near, m = ndi.label(cut, structure=np.ones((3, 3, 3)))
    lab[cut] = near[cut] + n
    from_shared = np.zeros(n + m + 1, bool)
    from_shared[lab[shared[feats]]] = True
    depth = np.zeros(feats.shape)
    depth[box] = ndi.distance_transform_edt(plabels[box] > 0)
    deepest = np.r_[0.0, ndi.maximum(depth, lab, np.arange(1, n + m + 1))]
    size = np.bincount(lab.ravel(), minlength=n + m + 1)
    gap = from_shared & ((size < min_voxels) | (deepest < close_voxels + 1.5))
    gap[n + 1:] = True
    _, first = np.unique(lab.ravel(), return_index=True)  # every id 0..n+m occurs
    order = np.zeros(n + m + 1, np.int32)
    order[np.argsort(first[1:], kind="stable") + 1] = np.arange(1, n + m + 1)
    return order[lab], set(order[np.flatnonzero(gap)].tolist())


def _padded_box(mask: np.ndarray, pad: int) -> tuple[slice, ...]:
    """Bounding box of a non-empty mask grown by ``pad`` voxels (within the arrays)."""
    idx = [np.flatnonzero(mask.any(axis=tuple(j for j in range(mask.ndim) if j != i))) for i in range(mask.ndim)]
    return tuple(slice(max(0, int(i[0]) - pad), min(n, int(i[-1]) + 1 + pad)) for i, n in zip(idx, mask.shape))


def measure_features(seg_solid, plabels, options: Any, voxel_nm: float, close_voxels: int, grey=None, levels=None,
                     *, offset: tuple = (0, 0, 0), only: set | None = None, feats: np.ndarray | None = None,
                     shared_ids: set | None = None, gap_ids: set | None = None):
    """Classify dark features: crack rows, pore rows, labels and kinds.

    For arrays cut from a larger volume, ``offset`` (voxels) places them, ``only`` names the feature
    ids to measure (others are left as they are), ``feats`` gives the feature ids, ``shared_ids``
    the features known to be shared by two particles (cut by the arrays, so not seen whole here) and
    ``gap_ids`` the gap between particles (:func:`feature_ids`: not measured, dropped at the end).
    """
    if feats is None:
        feats, gap_ids = feature_ids(seg_solid, plabels, min_voxels=options.min_feature_voxels, close_voxels=close_voxels)
    gap = set(gap_ids or ())
    envelope = plabels > 0
    depth = ndi.distance_transform_edt(envelope)
    outside = ndi.binary_dilation(~envelope, structure=np.ones((3, 3, 3)))
    cracks, pores, kinds = [], [], {}
    pboxes = ndi.find_objects(plabels)
    around: dict[int, dict] = {}  # per particle: the levels with its surroundings' grey level as the empty one
    for fid, sl in enumerate(ndi.find_objects(feats), 1):
        if sl is None or (only is not None and fid not in only) or fid in gap:
            continue
        m = feats[sl] == fid
        owners = np.sort(np.bincount(plabels[sl][m]))[::-1]
        owner = int(np.bincount(plabels[sl][m]).argmax())
        n_open = int((outside[sl] & m).sum())
        open_ = n_open > 0
        shared = len(owners) > 1 and owners[1] > SHARED_SHARE * m.sum()
        if shared or fid in (shared_ids or ()) or (is_surface_dent(n_open, int(m.sum())) and depth[sl][m].max() < close_voxels + 1.5):
            feats[sl][m] = 0  # the gap between particles, or a shallow dent bridged by the closing
            continue
        coords = np.argwhere(m).astype(float) + [s.start + o for s, o in zip(sl, offset)]
        sh = feature_shape(coords)
        if grey is not None:
            if owner not in around:
                around[owner] = {**levels, "epoxy": _surroundings_level(plabels, grey, pboxes[owner - 1], levels["epoxy"])}
            rc, miss = _deficit(fid, feats, plabels, owner, (sl, pboxes[owner - 1]), depth, grey, around[owner],
                                open_=open_, offset=offset, gap=frozenset(gap))
        else:
            rc, miss = coords, np.ones(len(coords))
        beyond = plabels[tuple((rc - offset).astype(np.int64).T)] != owner  # the mouth: outside the owner's envelope
        sheets = _sheets(m, coords, sh, options, depth[sl][m])
        if sheets is None:  # read as a pore: read again below the surface shell (a crack with a thick bridged mouth)
            sheets = _below_shell(m, coords, options, depth[sl][m])
        if sheets is not None and (sheets == MOUTH).any():  # the bridged mouth: in no sheet, its deficit kept
            keep = sheets != MOUTH
            m, coords, sheets = _part_mask(m, keep), coords[keep], sheets[keep]
        kinds[fid] = "pore" if sheets is None else "crack"
        pore = np.ones(len(coords), bool) if sheets is None else sheets < 0
        if pore.any():  # a pore, or a round pore joined to cracks (its voxels: sheet -1, :func:`_pore_and_sheets`)
            at_pore = np.ones(len(rc), bool) if pore.all() else _nearest_is(rc, coords, pore)  # the pore's deficit
            pm = _part_mask(m, pore)
            n_pore = float(miss[at_pore].sum())  # a label volume: the voxels (rc = coords, miss = 1)
            pores.append({"id": fid, "particle": owner, "volume_voxels": n_pore, "volume_nm3": n_pore * voxel_nm ** 3,
                          "segmented_voxels": int(pm.sum()), "equivalent_diameter_nm": (6 * n_pore / np.pi) ** (1 / 3) * voxel_nm,
                          **_placement(pm, coords[pore], outside[sl], sh if pore.all() else feature_shape(coords[pore]),
                                       voxel_nm)})
            if sheets is None:
                continue
            m, coords, rc, miss, sheets = _part_mask(m, ~pore), coords[~pore], rc[~at_pore], miss[~at_pore], sheets[~pore]
            beyond = beyond[~at_pore]
        for k, (mk, ck, rk, mis, bk) in enumerate(_split_sheets(m, coords, rc, miss, sheets, beyond), 1):
            cracks.append({"id": fid, "sheet": k, "particle": owner, "mouth_voxels": float(mis[bk].sum()),
                           **_crack_numbers(mk, ck, rk, mis, outside[sl], voxel_nm, measured=grey is not None)})
    if gap:
        feats[np.isin(feats, list(gap))] = 0
    crack_cols = ["crack", "sheet", "particle", "volume_voxels", "mouth_voxels", "segmented_voxels", "volume_nm3", "surface_area_nm2", "width_mean_nm",
                  "width_max_nm", "extent_nm", "normal_z", "normal_y", "normal_x", "normal_polar_deg",
                  "normal_azimuth_deg", "reaches_surface", "flatness", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]
    pore_cols = ["pore", "particle", "volume_voxels", "segmented_voxels", "volume_nm3", "equivalent_diameter_nm", "surface_area_nm2",
                 "reaches_surface", "flatness", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]
    ct = pd.DataFrame(cracks).rename(columns={"id": "crack"}).reindex(columns=crack_cols)
    pt = pd.DataFrame(pores).rename(columns={"id": "pore"}).reindex(columns=pore_cols)
    return ct, pt, feats, kinds


def _sheets(m: np.ndarray, coords: np.ndarray, sh: dict, options: Any, depth: np.ndarray | None = None, *,
            joined: bool = True) -> np.ndarray | None:
    """Sheet index of every voxel of a crack (all 0 for one sheet; intersecting cracks: one index per
    plane, :func:`layerscope.tomo.segment.planar_sheets`), None for a pore. ``depth``: each voxel's
    distance into the particle envelope (sheets lying in its surface shell are merged, :func:`_surface_sheets`).
    With ``joined``, a feature that is no crack is looked at as a round pore joined to cracks
    (:func:`_pore_and_sheets`: the pore's voxels get index -1)."""
    if sh["extents"][1] < options.min_sheet_voxels:
        return None
    one = np.zeros(len(coords), np.int64) if sh["flatness"] < options.max_flatness else None
    if sh["flatness"] < SINGLE_SHEET_FLATNESS:
        return one
    half_width = _half_width(m)
    # A flat feature whose sheets only meet at a bend is one crack changing direction; a feature that is
    # not flat as a whole would otherwise be a pore, so its sheets count even when they meet at a bend (an L).
    split = planar_sheets(coords, tol=half_width + 0.5, max_flatness=options.max_flatness,
                          min_sheet_voxels=options.min_sheet_voxels, require_crossing=one is not None, depth=depth,
                          cut_planes=options.cut_planes)
    if split is None:
        return one if one is not None or not joined else _pore_and_sheets(m, coords, options, depth, half_width)
    return split if depth is None else _surface_sheets(coords, split, depth)


#: :func:`_below_shell` reads a feature below the surface shell when at least this share of its voxels lies there.
CORE_SHARE = 0.5


def _below_shell(m: np.ndarray, coords: np.ndarray, options: Any, depth: np.ndarray) -> np.ndarray | None:
    """Sheet index of every voxel of a feature read as a pore, read again on its voxels at least
    :data:`SURFACE_SHELL` deep in the envelope; None (a pore) when these are a pore too, hold less than
    :data:`CORE_SHARE` of it, or are all of it.

    Where the envelope closing bridges a crack's mouth, the dark voxels it takes in along the surface (the
    edges of the wedges the crack cuts, rounded by the smoothing) join the crack's feature as a thick rim that
    makes it look round (0-49 draw 35: two cracks read as pores). Below the shell the crack is read alone; the
    shell's voxels within a plane's slab (the core's 90th-percentile half-thickness + 0.5 voxel) join the nearest
    plane, the rest are the bridged mouth (:data:`MOUTH`: in no sheet's voxels, so they do not tilt its plane; the
    partial-volume sum of the nearest sheet keeps their deficit). Only a pore is read again: a
    crack read below the shell as more planes is left as it is (docs/validation.md "tomomouth": 37 split).
    """
    core = depth >= SURFACE_SHELL
    if core.all() or core.sum() < max(30, CORE_SHARE * len(coords)):
        return None
    cm = _part_mask(m, core)
    inner = _sheets(cm, coords[core], feature_shape(coords[core]), options, depth[core], joined=False)
    if inner is None:
        return None
    k = int(inner.max()) + 1
    planes = [plane_of(coords[core][inner == i]) for i in range(k)]
    dist = np.abs(np.stack([(coords[~core] - c) @ n for c, n in planes], axis=1))
    tol = float(np.percentile(ndi.distance_transform_edt(np.pad(cm, 1))[1:-1, 1:-1, 1:-1][cm], 90)) + 0.5
    out = np.empty(len(coords), np.int64)
    out[core] = inner
    out[~core] = np.where(dist.min(axis=1) <= tol, np.argmin(dist, axis=1), MOUTH)
    return out


#: Sheet index (:func:`_below_shell`) of a shell voxel beyond every plane's tolerance: the bridged mouth, kept in
#: the feature's labels and its partial-volume deficit in the nearest sheet's volume, but in no sheet's voxels.
MOUTH = MOUTH_SHEET  # also the mouth plane of a crossing feature (segment.CUT_MIN_DEPTH)


#: The three principal extents of a pore joined to cracks are within this factor of each other (a round pore).
PORE_ROUND = 0.5
#: The smallest ball (radius, voxels) that finds a pore joined to cracks: a ball of radius 2 (5 voxels across)
#: fits in the blur of a 2-3 voxel crack where it widens (draw 43 of 0-49: a crack mouth read as a pore).
PORE_MIN_RADIUS = 3


def _pore_and_sheets(m: np.ndarray, coords: np.ndarray, options: Any, depth: np.ndarray | None,
                     half_width: float) -> np.ndarray | None:
    """Sheet index of every voxel of a round pore joined to cracks (-1: the pore), None when the feature is
    not one.

    The candidate pore is the opening of the feature by a ball one voxel wider than the crack's half width plus
    half a voxel and at least :data:`PORE_MIN_RADIUS` (:func:`layerscope.tomo.segment.round_part`), grown by one
    voxel within the feature (its rim, which the ball does not reach). The remainder must be cracks by
    :func:`_sheets` itself, each wider than the ball (middle extent at least its radius); the candidate's voxels within the tolerance of a crack's plane (half its width plus
    half a voxel: where cracks cross at a narrow angle a ball fits along their line) go to the nearest plane,
    and the rest is the pore, one or more round pieces (:func:`_round_pores`), inside the particle (median ``depth`` at least :data:`SURFACE_SHELL`).
    """
    radius = max(PORE_MIN_RADIUS, int(half_width + 0.5) + 1)
    blob = round_part(m, radius, min_voxels=30)
    if blob is None:
        return None
    cand = (ndi.binary_dilation(blob, structure=np.ones((3, 3, 3))) & m)[m]
    if cand.all() or (~cand).sum() < 30:
        return None
    rest = _part_mask(m, ~cand)
    sheets = _sheets(rest, coords[~cand], feature_shape(coords[~cand]), options,
                     None if depth is None else depth[~cand], joined=False)
    if sheets is None or any(feature_shape(coords[~cand][sheets == i])["extents"][1] < radius
                             for i in range(int(sheets.max()) + 1)):
        return None  # a sheet no wider than the ball: the rim of a pore (a small one beside it), not a crack
    tol = float(np.percentile(ndi.distance_transform_edt(np.pad(rest, 1))[1:-1, 1:-1, 1:-1][rest], 90)) + 0.5
    planes = [plane_of(coords[~cand][sheets == i]) for i in range(int(sheets.max()) + 1)]
    dist = np.abs(np.stack([(coords[cand] - c) @ n for c, n in planes], axis=1))
    pore = np.zeros(len(coords), bool)
    pore[cand] = dist.min(axis=1) > tol
    if not _round_pores(m, coords, pore) or (depth is not None and np.median(depth[pore]) < SURFACE_SHELL):
        return None  # no round pore beyond the planes, or the blurred mouth of a crack at the particle surface
    out = np.full(len(coords), -1, np.int64)
    out[~cand] = sheets
    out[cand & ~pore] = np.argmin(dist, axis=1)[~pore[cand]]
    return out


def _round_pores(m: np.ndarray, coords: np.ndarray, pore: np.ndarray, min_voxels: int = 30) -> bool:
    """Whether the voxels ``pore`` of a feature (mask ``m``) are round pores: pieces (26-connected) below
    ``min_voxels`` are dropped from ``pore`` (in place), at least one piece is left and each left is round."""
    lab, n = ndi.label(_part_mask(m, pore), structure=np.ones((3, 3, 3)))
    lab = lab[m]
    for i in range(1, n + 1):
        piece = lab == i
        ext = feature_shape(coords[piece])["extents"]
        if piece.sum() < min_voxels:
            pore[piece] = False
        elif ext[2] < PORE_ROUND * ext[0]:
            return False
    return bool(pore.any())


#: A sheet of a crossing feature with over half its voxels closer than this (voxels) to the outside of the
#: particle envelope lies along the surface: the mouth of a crack that the envelope closing bridged, not a crack.
SURFACE_SHELL = 2.0


def _surface_sheets(coords: np.ndarray, sheets: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """``sheets`` with the sheets lying in the envelope's surface shell (median ``depth`` below
    :data:`SURFACE_SHELL`) given to the nearest plane of the others (renumbered 0..k-1). A crack crosses
    the surface, so only a small share of its voxels lies in the shell; a crack's mouth lies along it."""
    k = int(sheets.max()) + 1
    keep = [i for i in range(k) if np.median(depth[sheets == i]) >= SURFACE_SHELL]
    if len(keep) == k or not keep:
        return sheets
    near = _nearest_plane(coords, coords, sheets, keep)
    out = np.searchsorted(keep, sheets)  # kept sheets renumbered in their order
    moved = ~np.isin(sheets, keep) & (sheets >= 0)
    out[moved] = near[moved]
    out[sheets < 0] = sheets[sheets < 0]  # the mouth of a cut plane (segment.MOUTH_SHEET) stays in no sheet
    return out


def _nearest_plane(points: np.ndarray, coords: np.ndarray, sheets: np.ndarray, which) -> np.ndarray:
    """For each of ``points``: the position in ``which`` of the nearest plane fitted to the sheets ``which``."""
    return np.argmin(_plane_distances(points, [plane_of(coords[sheets == i]) for i in which]), axis=1)


def _plane_distances(points: np.ndarray, planes: list) -> np.ndarray:
    """(points, planes): the distance (voxels) of each of ``points`` from each plane (``planes``: centre, unit
    normal)."""
    return np.abs(np.stack([(points - c) @ n for c, n in planes], axis=1))


def _part_mask(m: np.ndarray, part: np.ndarray) -> np.ndarray:
    """The mask (in ``m``'s box) of the voxels ``part`` (a boolean per voxel of ``m``, in C order)."""
    out = np.zeros_like(m)
    out[m] = part
    return out


def _nearest_is(points: np.ndarray, coords: np.ndarray, part: np.ndarray) -> np.ndarray:
    """For each of ``points``: whether its nearest voxel of ``coords`` is one of ``part``."""
    from scipy.spatial import cKDTree

    return part[cKDTree(coords).query(points)[1]]


def _half_width(m: np.ndarray) -> float:
    """The 90th percentile of a feature's half width (voxels): its voxels' distance to the nearest voxel outside it."""
    return float(np.percentile(ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1, 1:-1][m], 90))


def _split_sheets(m: np.ndarray, coords: np.ndarray, rc: np.ndarray, miss: np.ndarray, sheets: np.ndarray,
                  beyond: np.ndarray):
    """Per sheet: its mask (in ``m``'s box), voxel coordinates, and the partial-volume coordinates, missing
    fractions and ``beyond`` flags (outside the particle envelope) nearest its plane (each voxel of the deficit
    region counted once)."""
    k = int(sheets.max()) + 1
    if k == 1:
        yield m, coords, rc, miss, beyond
        return
    planes = [plane_of(coords[sheets == i]) for i in range(k)]
    dist = _plane_distances(rc, planes)
    near = np.argmin(dist, axis=1)  # as _nearest_plane, the planes kept for the widths
    for i in range(k):
        mk = np.zeros_like(m)
        mk[m] = sheets == i  # argwhere and boolean indexing both run in C order
        yield mk, coords[sheets == i], rc[near == i], miss[near == i], beyond[near == i]


def _placement(m: np.ndarray, coords: np.ndarray, outside: np.ndarray, sh: dict, voxel_nm: float) -> dict:
    """Surface area, whether the feature touches the outside, flatness and centroid (nm, voxel centres at
    ``(index + 0.5) * voxel_nm`` as in docs/conventions.md) of a feature mask."""
    return {"surface_area_nm2": _area_nm2(m, voxel_nm), "reaches_surface": bool((outside & m).any()),
            "flatness": sh["flatness"],
            **{f"centroid_{a}_nm": (coords[:, k].mean() + 0.5) * voxel_nm for k, a in enumerate("zyx")}}


def _crack_numbers(m: np.ndarray, coords: np.ndarray, rc: np.ndarray, miss: np.ndarray, outside: np.ndarray,
                   voxel_nm: float, *, measured: bool) -> dict:
    """One crack row (one sheet): volume from the missing fractions (``measured``: a grey volume; else the
    voxels), widths (:func:`_local_widths`), extent, normal and orientation, placement."""
    sh = feature_shape(coords)
    n_vox = float(miss.sum()) if measured else float(m.sum())
    n = sh["normal"]
    w_mean, w_max = _local_widths(rc, miss, coords)
    return {"volume_voxels": n_vox, "volume_nm3": n_vox * voxel_nm ** 3, "segmented_voxels": int(m.sum()),
            "width_mean_nm": w_mean * voxel_nm, "width_max_nm": w_max * voxel_nm,
            "extent_nm": 2 * np.sqrt(3) * sh["extents"][0] * voxel_nm,
            "normal_z": n[0], "normal_y": n[1], "normal_x": n[2],
            "normal_polar_deg": float(np.degrees(np.arccos(min(1.0, abs(n[0]))))),
            "normal_azimuth_deg": float(np.degrees(np.arctan2(n[1], n[2]))),
            **_placement(m, coords, outside, sh, voxel_nm)}


def particle_geometry(plabels: np.ndarray, voxel_nm: float, *, offset: tuple = (0, 0, 0), shape: tuple | None = None,
                      only: set | None = None) -> list[dict]:
    """Volume, surface area, centroid (nm, in the whole volume) and border contact of each particle.

    ``only`` those ids if given; ``offset`` (voxels) places a slab's labels in the whole volume of ``shape``.
    """
    rows = []
    shape = np.asarray(plabels.shape if shape is None else shape)
    for pid, sl in enumerate(ndi.find_objects(plabels), 1):
        if sl is None or (only is not None and pid not in only):
            continue
        m = plabels[sl] == pid
        border = any(s.start + o == 0 or s.stop + o == n for s, o, n in zip(sl, offset, shape))
        centre = (np.asarray(ndi.center_of_mass(m)) + [s.start + o + 0.5 for s, o in zip(sl, offset)]) * voxel_nm
        rows.append({"particle": pid, "volume_voxels": int(m.sum()), "area_nm2": _area_nm2(m, voxel_nm),
                     "touches_border": bool(border), **{f"centroid_{a}_nm": float(c) for a, c in zip("zyx", centre)}})
    return rows


def particle_table(plabels, cracks, pores, voxel_nm: float) -> pd.DataFrame:
    """The particle rows of a whole volume."""
    return particle_rows(particle_geometry(plabels, voxel_nm), cracks, pores, voxel_nm)


def particle_rows(geometry: list[dict], cracks: pd.DataFrame, pores: pd.DataFrame, voxel_nm: float) -> pd.DataFrame:
    """One row per particle from its geometry and its cracks and pores.

    The particle's volume is its envelope's voxels plus its cracks' ``mouth_voxels``: the missing volume of open
    cracks outside the envelope (which stops at the particle surface, across the mouth), counted in the cracks'
    volume too, so that the crack volume fraction counts the same voxels above and below the line (the truth
    particle holds its cracks whole). The sphericity is the envelope's (its volume and surface area)."""
    rows = []
    for g in geometry:
        pid, env, area = g["particle"], g["volume_voxels"], g["area_nm2"]
        c = cracks[cracks["particle"] == pid]
        p = pores[pores["particle"] == pid]
        v = env + float(c["mouth_voxels"].sum()) if len(c) else env
        rows.append({
            "particle": pid, "volume_voxels": v, "volume_nm3": v * voxel_nm ** 3,
            "equivalent_diameter_nm": (6 * v / np.pi) ** (1 / 3) * voxel_nm,
            "sphericity": float(np.pi ** (1 / 3) * (6 * env * voxel_nm ** 3) ** (2 / 3) / area) if area > 0 else np.nan,
            "crack_count": len(c), "crack_volume_fraction": float(c["volume_voxels"].sum()) / v,
            "crack_surface_area_nm2": float(c["surface_area_nm2"].sum()),
            "crack_width_mean_nm": float(np.average(c["width_mean_nm"], weights=c["volume_voxels"])) if len(c) else np.nan,
            "crack_width_max_nm": float(c["width_max_nm"].max()) if len(c) else np.nan,
            "crack_normal_polar_deg": float(c.loc[c["volume_voxels"].idxmax(), "normal_polar_deg"]) if len(c) else np.nan,
            "crack_reaches_surface": bool(c["reaches_surface"].any()) if len(c) else False,
            "pore_count": len(p), "pore_volume_fraction": float(p["volume_voxels"].sum()) / v,
            "touches_border": g["touches_border"],
            **{f"centroid_{a}_nm": g[f"centroid_{a}_nm"] for a in "zyx"},
        })
    return pd.DataFrame(rows)
