"""Particles, cracks and pores in a reconstructed or segmented volume.

1. Solid: voxels brighter than halfway between the particle and the epoxy grey levels (the top and
   bottom classes of a multi-Otsu split after a light Gaussian smoothing), or one label of a
   segmented volume.
2. Particle envelopes: the solid, closed with a ball that bridges cracks up to the largest crack
   width (so that a crack open to the surface stays inside its particle), and below the surface shell with a
   ball one voxel wider (the junction and mouths of cracks that cut a small particle in pieces), holes filled.
3. Touching particles are split by a watershed on the distance transform, seeded by its h-maxima
   (one seed per particle; ``h`` suppresses the ridge of an elongated particle; tops of exactly the same height
   on one plateau of the reconstruction are one seed, :func:`tied_tops_lut`); labels that meet along a
   crack without a neck are joined (:func:`merge_without_neck`).
4. Dark features inside a particle (envelope but not solid) are cracks when sheet-like (the
   smallest principal extent of the feature below ``max_flatness`` times the middle one) or made of
   sheets of different planes (intersecting cracks, :func:`planar_sheets`: one crack per plane), and
   pores otherwise; features shared by two particles (more than 20 % of the voxels in a second one) are
   the gap between them, and features open to the outside that reach no deeper than the closing
   radius are surface dents: both are dropped. :data:`LOW_TOPS` (on since session 39; tomomerge2: seeds also
   from distance tops below ``h``, kept at a neck; the neck read against the smaller label's radius,
   :data:`LOW_TOPS_SMALLER`, tomomerge3, and only at a waist of the two labels, :data:`LOW_TOPS_WAIST`, tomomerge4;
   tied tops that dip by ``LOW_TOPS * h`` read as untied ones, :data:`LOW_TOPS_TIED`, tomorule). Switch, off by
   default (measured, docs/validation.md): :data:`SLIVER_CLOSE_VOXELS` (tomoenv3: a still wider closing deeper below
   the surface, taken only where it continues a dark region the envelope holds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["Segmentation", "solid_mask", "particle_labels", "filled_envelope", "dark_features", "feature_shape",
           "planar_sheets", "round_part", "grey_levels", "sample_step", "plane_of"]


@dataclass
class Segmentation:
    """Labels of one volume: ``particles`` (0 outside), ``features`` (dark feature ids), the solid mask and levels."""

    solid: np.ndarray
    particles: np.ndarray
    features: np.ndarray
    levels: dict


def solid_mask(volume: np.ndarray, *, smooth_voxels: float = 0.8, threshold: float | None = None,
               particle_label: int | None = None) -> tuple[np.ndarray, dict]:
    """The active-material mask and the grey levels used.

    The threshold is halfway between the particle level (median of the top multi-Otsu class) and
    the epoxy level (median of the bottom class): unbiased for epoxy-filled cracks and pores and
    for particle surfaces in epoxy; a binder coating brighter than half the particle level moves
    particle surfaces outwards (give ``--threshold``). For labels the mask is ``volume == particle_label``.
    """
    if particle_label is not None:
        return np.asarray(volume) == particle_label, {"particle_label": int(particle_label)}

    g = ndi.gaussian_filter(np.asarray(volume, np.float32), smooth_voxels) if smooth_voxels > 0 else np.asarray(volume, np.float32)
    levels = grey_levels(g[:: sample_step(g.shape[0])], threshold=threshold, noise=voxel_noise(volume))
    return g > levels["threshold"], levels


def sample_step(n_slices: int) -> int:
    """Every ``sample_step``-th z slice of the smoothed volume sets the grey levels (about 32 slices)."""
    return max(1, n_slices // 32)


def grey_levels(sample: np.ndarray, *, threshold: float | None, noise: float) -> dict:
    """Particle, binder and epoxy levels (multi-Otsu classes of ``sample``, smoothed grey values) and the threshold."""
    from skimage.filters import threshold_multiotsu

    sample = np.asarray(sample).ravel()
    lo, hi = threshold_multiotsu(sample, classes=3)
    particle = float(np.median(sample[sample > hi]))
    binder = float(np.median(sample[(sample >= lo) & (sample <= hi)]))
    epoxy = float(np.median(sample[sample < lo]))
    t = float(threshold) if threshold is not None else 0.5 * (particle + epoxy)
    return {"particle": particle, "binder": binder, "epoxy": epoxy, "threshold": t, "voxel_noise": noise,
            "contrast_to_noise": (particle - epoxy) / noise if noise > 0 else float("inf")}


def voxel_noise(volume: np.ndarray) -> float:
    """Noise of single voxels: robust (MAD) spread of each voxel minus the mean of its 6 neighbours."""
    v = np.asarray(volume[:: max(1, volume.shape[0] // 32)], np.float32) if volume.shape[0] > 64 else np.asarray(volume, np.float32)
    if min(v.shape) < 3:
        return 0.0
    c = v[1:-1, 1:-1, 1:-1]
    nb = (v[:-2, 1:-1, 1:-1] + v[2:, 1:-1, 1:-1] + v[1:-1, :-2, 1:-1] + v[1:-1, 2:, 1:-1] + v[1:-1, 1:-1, :-2]
          + v[1:-1, 1:-1, 2:]) / 6.0
    r = (c - nb).ravel()
    return float(1.4826 * np.median(np.abs(r - np.median(r))) / np.sqrt(1 + 1 / 6))


def _ball(r: int) -> np.ndarray:
    z, y, x = np.ogrid[-r:r + 1, -r:r + 1, -r:r + 1]
    return (z * z + y * y + x * x) <= r * r


def particle_labels(solid: np.ndarray, *, close_voxels: int = 2, split: bool = True, h_voxels: float = 2.0,
                    min_voxels: int = 200) -> np.ndarray:
    """Particle ids (1..n, 0 outside) from the solid mask: closed, holes filled, split by watershed."""
    env = filled_envelope(closed_envelope(solid, close_voxels))
    lab, _ = split_envelope(env, split=split, h_voxels=h_voxels, dark=env & ~solid)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    remap = np.zeros(sizes.size, np.int32)
    remap[keep] = np.arange(1, keep.sum() + 1)
    return remap[lab]


def filled_envelope(env: np.ndarray) -> np.ndarray:
    """The closed envelope with its holes filled: background that no 6-connected path of background joins to the
    outside (SciPy's ``binary_fill_holes``).

    Cracks that meet in a particle cut by a face leave a cavity at their junction wider than the closing's ball;
    where it reaches the face it stays outside the envelope, a channel through the particle's core that can lower its
    distance map below its neighbour's neck (the particle merged into the neighbour) or cut it in two
    (docs/validation.md "tomomerge"; filling it from the face, ``FACE_SECTION_HOLES``, was measured there, kept off).
    """
    return ndi.binary_fill_holes(env)


#: The envelope also takes the voxels deeper than :data:`DEEP_VOXELS` inside the solid closed with a ball this many
#: voxels wider than ``close_voxels`` (0: off; :func:`closed_envelope`).
WIDER_CLOSE_VOXELS = 1
#: ... (voxels): the surface shell, where the wider closing's bridged crack mouths would join the cracks' sheets.
DEEP_VOXELS = 2
#: Voxels (0: off, the default; measured, docs/validation.md "tomoenv3"): the envelope also takes the voxels deeper than
#: :data:`SLIVER_DEEP_VOXELS` inside the solid closed with a ball this many voxels wider than the wider closing, but
#: only where they continue a dark region the envelope already holds (:func:`sliver_voxels`): where wide cracks cut a
#: small particle in pieces, the smoothing loses the thin solid slivers between them and their junction and mouths open
#: wider than the wider ball (docs/validation.md "tomoenv3": 25 of the 42 cracks missed outside the envelope on
#: 13000-13099 and 14000-14099). Measured at 1: every share up or equal on 14000-14099 and 13000-13099 (crack count
#: 0.78 -> 0.81 on the first), but two more false cracks on 13066 and on 12000-12099 particles 0.91 -> 0.90, cvf
#: 0.67 -> 0.66, width 0.99 -> 0.97: kept off.
SLIVER_CLOSE_VOXELS = 0
#: ... (voxels): deeper than the wider closing's :data:`DEEP_VOXELS`, so that the still wider ball does not fill the
#: wedge round the contact of two particles (on draw 14000 the ball 2 voxels wider, taken below 2 voxels, filled 85
#: voxels of epoxy at two contacts: a false crack).
SLIVER_DEEP_VOXELS = 3


def closed_envelope(solid: np.ndarray, close_voxels: int) -> np.ndarray:
    """The solid closed with a ball of ``close_voxels``, or-ed with the solid, and the voxels more than
    :data:`DEEP_VOXELS` deep inside the solid closed with a ball :data:`WIDER_CLOSE_VOXELS` wider; beyond the
    array's faces both closings see epoxy (zero: the face is the particle's surface).

    The smoothing before the threshold rounds the edges of the solid where a crack opens to the surface and where
    cracks meet: a small particle cut in pieces by two or three cracks keeps a cavity at their junction and mouths
    wider than the cracks, which a ball of half the widest crack enters, so the cracks lie outside the envelope or
    in a shallow feature dropped as a dent (docs/validation.md "tomosurf": 15 of 24 surface misses of tomo draws
    0-49). The wider ball bridges them; only its voxels below the surface shell are taken, so that the bridged
    mouths along the surface stay out of the cracks (the wider closing everywhere narrowed the measured widths:
    "tomoenv", "tomomouth"). Each output voxel depends on the solid within :func:`envelope_reach` voxels.
    """
    if close_voxels <= 0:
        return solid
    env = _closing(solid, close_voxels)
    if WIDER_CLOSE_VOXELS > 0:
        env |= _deep_closing(solid, close_voxels + WIDER_CLOSE_VOXELS)
    if SLIVER_CLOSE_VOXELS > 0:
        env |= sliver_voxels(solid, env | solid, close_voxels + WIDER_CLOSE_VOXELS + SLIVER_CLOSE_VOXELS)
    return env | solid


def _deep_closing(solid: np.ndarray, radius: int, deep: int | None = None) -> np.ndarray:
    """The voxels more than ``deep`` (default :data:`DEEP_VOXELS`) voxels deep inside the solid closed with a ball of
    ``radius`` voxels."""
    deep = DEEP_VOXELS if deep is None else deep
    pad = deep + 1
    wide = np.pad(_closing(solid, radius), pad)
    return ndi.binary_erosion(wide, structure=_ball(deep))[pad:-pad, pad:-pad, pad:-pad]


def sliver_steps(radius: int) -> int:
    """Steps (26-connected, voxels) from the envelope's dark voxels within which :func:`sliver_voxels` takes the wider
    closing's: the ball's radius (a lost sliver lies within one ball of the cracks beside it)."""
    return int(radius)


def sliver_voxels(solid: np.ndarray, env: np.ndarray, radius: int) -> np.ndarray:
    """The voxels deeper than :data:`SLIVER_DEEP_VOXELS` inside the solid closed with a ball of ``radius`` voxels,
    outside ``env``, that are reached from ``env``'s dark voxels (``env`` and not ``solid``) in at most
    :func:`sliver_steps` 26-connected steps through such voxels: the continuation of a crack or a crack junction the
    envelope holds, not a region the wider ball bridges alone. Local: each voxel depends on the solid within
    :func:`envelope_reach`."""
    extra = _deep_closing(solid, radius, SLIVER_DEEP_VOXELS) & ~env
    if not extra.any():
        return extra
    grown = env & ~solid
    cube = np.ones((3, 3, 3), bool)
    for _ in range(sliver_steps(radius)):
        grown = ndi.binary_dilation(grown, structure=cube, mask=extra | grown)
    return grown & extra


def envelope_reach(close_voxels: int) -> int:
    """Voxels of the solid beyond a slab's faces that :func:`closed_envelope` needs to be exact on the slab."""
    if close_voxels <= 0:
        return 0
    wide = close_voxels + WIDER_CLOSE_VOXELS
    reach = max(2 * close_voxels, 2 * wide + DEEP_VOXELS if WIDER_CLOSE_VOXELS > 0 else 0) + 2
    if SLIVER_CLOSE_VOXELS > 0:
        sliver = wide + SLIVER_CLOSE_VOXELS
        reach = max(reach, 2 * sliver + SLIVER_DEEP_VOXELS + 2) + sliver_steps(sliver)
    return reach


def _closing(solid: np.ndarray, radius: int) -> np.ndarray:
    """Binary closing with a ball of ``radius`` voxels, the array's outside read as epoxy (zero)."""
    pad = radius + 1
    return ndi.binary_closing(np.pad(solid, pad), structure=_ball(radius))[pad:-pad, pad:-pad, pad:-pad]


#: watershed labels whose shared face runs along a crack (:data:`DARK_FACE`) and is at least this many times the
#: smaller one's equivalent-sphere radius are one particle (:func:`merge_without_neck`); 0 or None: no join.
#: A sphere cut through its centre gives 2^(1/3) = 1.26 (any other plane cut more), an ellipsoid of aspect 0.7 cut
#: across its long axis 2^(1/3) 0.7^(1/3) = 1.12; contacts of two particles measured up to 0.78 on the random draws
#: and 1.05-1.07 where the labels are blobs of several particles (docs/validation.md "tomoparts").
NECK_RATIO = 1.12
#: least share of a face's neighbour pairs with a dark voxel (envelope, not solid) for the face to run along a crack.
DARK_FACE = 0.5
#: a face that runs along a crack nearly all over (at least ``CRACK_FACE[1]`` of its pairs dark) joins from a neck
#: ratio of ``CRACK_FACE[0]``: splits along cracks at ratios 1.03-1.07 with dark shares 0.88-0.98 (tuning draws 52, 62,
#: 87), while contacts of two particles measured up to 0.78 (0-49) and the tiled phantom's contacts of ratio 1.05-1.07
#: are dark at 0.50-0.52 only (docs/validation.md "tomoparts3"); None: no such join.
CRACK_FACE: tuple[float, float] | None = (1.0, 0.8)


def split_envelope(env: np.ndarray, *, split: bool, h_voxels: float,
                   dark: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Particle ids of the filled envelope and the seeds that number them (in raster order of their
    first voxel): watershed of the distance transform from its h-maxima (26-connected seeds, and tops one
    voxel apart joined: :func:`joined_tops`; with ``dark``, the envelope's voxels that are not solid, labels
    that meet along a crack without a neck joined: :func:`merge_without_neck`), or
    the 26-connected components (their own seeds)."""
    from skimage.segmentation import watershed

    if not split:
        lab = ndi.label(env, structure=np.ones((3, 3, 3)))[0]
        return lab, lab
    edt = distance_transform_core(env, slice(None))
    markers = joined_tops(h_maxima_core(edt, h_voxels))
    untied = None
    if TIED_TOPS:
        lut = tied_tops_lut(edt, markers, h_voxels)
        if LOW_TOPS and LOW_TOPS_TIED:
            lut, untied = untied_at_low_tops(lut, tied_tops_lut(edt, markers, LOW_TOPS * h_voxels))
        markers = lut[markers]
    if LOW_TOPS:
        markers, high = with_low_tops(edt, markers, h_voxels)
        high = high if untied is None else untied
    lab = watershed(-edt, markers, mask=env)
    if LOW_TOPS:
        lut = join_low_tops(lab, high, env & ~env if dark is None else dark)
        lut = seed_order(lut[markers])[lut]
        lab, markers = lut[lab], lut[markers]
    if not NECK_RATIO or dark is None:
        return lab, markers
    lut = merge_without_neck(lab, dark)
    return lut[lab], lut[markers]


#: Seeds also from the distance tops whose dynamic is at least this share of ``h`` (0 or None: off); each label such a
#: low top seeds stays a particle only where it meets every neighbour label at a neck (:data:`LOW_TOPS_NECK`) and not
#: along a crack (:data:`CRACK_FACE`'s dark share), else it joins the neighbour it meets widest (:func:`with_low_tops`,
#: :func:`low_top_roots`). docs/validation.md "tomomerge2": a small cracked particle beside a larger one, its
#: envelope's top lowered by its cracks, has a top of dynamic 0.1-1.9 voxels below ``h`` = 2 (8 merges of 12000-12099).
#: Measured at 0.5: particles exact 0.91 -> 0.97 on 12000-12099, 0.96 -> 0.98 on 11000-11099, no target share lower,
#: but two new splits on 9000-9099 (9036, 9063: a low top in a larger particle's body, faces through solid); with
#: :data:`LOW_TOPS_SMALLER` (tomomerge3) 9036 is one particle again, and with :data:`LOW_TOPS_WAIST` (tomomerge4) 9063
#: too: 9000-9099 particles exact 0.94 -> 0.95, splits 1 -> 1, and 12000-12099's six mends kept (tomomerge4), but
#: still off: on, tests/tomo/test_tied_tops.py's untied balls 10 voxels apart (a dip of 1-2 voxels) become two while
#: the tied pair stays one; and on 13000-13099 the crack count falls 0.80 -> 0.79 (13004: a double count and a miss
#: that cancelled while merged). With the guard 11000-11099 0.96 -> 0.98, 3000-3099 84 -> 91 draws without a particle
#: error, 13000-13099 0.96 -> 0.97 (tomomerge5). With :data:`LOW_TOPS_TIED` (tomorule) the tied and untied pairs read
#: alike, and 14000-14099 reads 0.90 -> 0.97 (crack count per particle 0.75 -> 0.78), 0-49 0.96 -> 0.98; on since
#: session 39: 13000-13099's crack-count fall is a cancellation lost (13004, traced: the merged label's double count
#: disappears with the merge). Left: a right particle newly merged in 14018, 2006 and 2095 (a low-top label joined
#: through a small, wholly dark face; docs/validation.md "tomorule"). It costs +60-70 % CPU of this function.
LOW_TOPS: float | None = 0.5
#: ... the neck: the face's disc radius (:func:`face_radius`) below this many times the low-top label's
#: equivalent-sphere radius (a plane through a sphere's centre gives 1.26, a contact narrower than the particle less).
LOW_TOPS_NECK = 1.0
#: ... read against the smaller of the two labels' equivalent-sphere radii (True), as :func:`neck_roots` reads a neck
#: (a contact is narrower than the smaller body it joins), or against the low-top label's own (False: tomomerge2's
#: rule, which kept 9036's low top, 18387 voxels in a larger particle's body, apart from the 3327-voxel rest of it at
#: 0.83 of its own radius, 1.46 of the rest's). docs/validation.md "tomomerge3".
LOW_TOPS_SMALLER = True
#: ... and, where this is a number (voxels), only at a face that is a **waist** of the two labels (:func:`waists`): the
#: section of their union through the face, across its normal, at least this much narrower (in equivalent-disc radius)
#: than the widest section on each side. A convex body has no waist (Brunn-Minkowski: the square root of its section
#: area is concave along any direction), and the phantom's particles, spheres and ellipsoids cut by planes, are convex,
#: so a face through one particle's body is no neck whatever its width, while two touching particles meet at a waist.
#: 0.5 voxel: the rounding of a section's edge to voxels. None: every face below :data:`LOW_TOPS_NECK` is a neck
#: (tomomerge3). docs/validation.md "tomomerge4": 9063's low top meets its own particle's rest at a face 0.84 of the
#: smaller radius that is the rest's widest section (not a waist), the contacts of the mended draws are waists by
#: 1.5-7.8 voxels (9063's contact to its true neighbour by 0.7).
LOW_TOPS_WAIST: float | None = 0.5
#: ... and tied tops (:func:`tied_tops_lut`) read as untied ones (True; False: a tied group is one seed, as before):
#: where the seeds that the tied join makes one lie apart at ``LOW_TOPS * h`` (a dip of at least ``LOW_TOPS * h``
#: between them, as a low top's dynamic), the group's first seed keeps the seed and the others are low-top seeds
#: (:func:`untied_at_low_tops`), kept apart only by :func:`low_top_roots`' neck, waist and crack tests. Without it a
#: peanut of two balls of radius 10 with centres 10 voxels apart (a dip of 1.05 voxels at a waist 1.3 voxels deep)
#: read one particle while its twin of radii 10 and 10.2 read two. docs/validation.md "tomorule".
LOW_TOPS_TIED = True


def untied_at_low_tops(lut: np.ndarray, low_lut: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`tied_tops_lut`'s table ``lut`` (seed ids 0..n to 1..m) with the seeds that ``low_lut`` (the same at
    ``LOW_TOPS * h``, which joins a subset of ``lut``'s pairs) keeps apart given ids of their own: in each group of
    ``lut`` the seeds of its first seed's ``low_lut`` group keep the group's id, the seeds of each other ``low_lut``
    group get m+1, m+2, .. (in the order of their first seed); and m."""
    m = int(lut.max()) if lut.size > 1 else 0
    pair = lut[1:].astype(np.int64) * (int(low_lut.max()) + 1) + low_lut[1:]
    keys, first, inv = np.unique(pair, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # the pairs in the order of their first seed
    group = keys[order] // (int(low_lut.max()) + 1)
    head = np.zeros(order.size, bool)
    head[np.unique(group, return_index=True)[1]] = True  # the first pair of each group keeps its id
    ids = np.empty(order.size, np.int64)
    ids[order] = np.where(head, group, m + np.cumsum(~head))
    out = lut.copy()
    out[1:] = ids[inv.ravel()]
    return out, m


def with_low_tops(edt: np.ndarray, markers: np.ndarray, h: float) -> tuple[np.ndarray, int]:
    """``markers`` (ids 1..n) with the h-maxima of ``edt`` at ``LOW_TOPS * h`` that touch no seed of ``markers``
    (26-connected after :func:`joined_tops`) added as seeds n+1..m; and n."""
    n = int(markers.max())
    low = joined_tops(h_maxima_core(edt, LOW_TOPS * h))
    hit = np.unique(low[ndi.binary_dilation(markers > 0, structure=_C26) & (low > 0)])
    extra = np.isin(low, hit, invert=True) & (low > 0)
    ids = np.unique(low[extra])
    remap = np.zeros(int(low.max()) + 1, np.int32)
    remap[ids] = np.arange(n + 1, n + 1 + ids.size)
    return np.where(extra, remap[low], markers).astype(markers.dtype, copy=False), n


def seed_order(markers: np.ndarray) -> np.ndarray:
    """Look-up table that numbers the seed ids of ``markers`` 1..m in raster order of their first voxel (as
    :func:`joined_tops` numbers them; the out-of-core path numbers particles so)."""
    ids = markers.ravel()[np.flatnonzero(markers)]
    _, first = np.unique(ids, return_index=True)
    lut = np.zeros(int(markers.max()) + 1, np.int32)
    lut[ids[np.sort(first)]] = np.arange(1, first.size + 1)
    return lut


def join_low_tops(lab: np.ndarray, high: int, dark: np.ndarray) -> np.ndarray:
    """Look-up table (``lut[lab]``, ids 1..m in the order of the labels' roots) of :func:`low_top_roots` on the faces
    of ``lab`` (``dark``: envelope voxels not solid)."""
    n, faces = int(lab.max()), label_faces(lab, dark)
    planes = waist_planes(faces, high)
    waist = waists(section_counts(lab, planes, lab.shape), planes) if planes else None
    root = low_top_roots(faces, np.bincount(lab.ravel(), minlength=n + 1), high, waist)
    return np.unique(root, return_inverse=True)[1].astype(np.int32)


def waist_planes(faces: dict[tuple[int, int], np.ndarray], high: int) -> dict[tuple[int, int], tuple]:
    """The plane (centroid, unit normal; voxels) of each face of a label above ``high`` whose disc radius
    (:func:`face_radius`) is at least 1 voxel (a smaller face has no plane: it stays a neck), with
    :data:`LOW_TOPS_WAIST` set; empty without."""
    if LOW_TOPS_WAIST is None:
        return {}
    out = {}
    for k, m in faces.items():
        if k[1] > high and face_radius(m) >= 1.0:
            c = m[1:4] / m[0]
            cov = np.empty((3, 3))
            cov[np.triu_indices(3)] = m[4:10] / m[0]
            cov = np.triu(cov) + np.triu(cov, 1).T - np.outer(c, c)
            out[k] = (c, np.linalg.eigh(cov)[1][:, 0])
    return out


def section_counts(lab: np.ndarray, planes: dict[tuple[int, int], tuple], box: tuple,
                   origin: tuple[int, int, int] = (0, 0, 0)) -> dict[tuple[int, int], np.ndarray]:
    """For each face ``(a, b)`` of ``planes``: the voxels of labels ``a`` and ``b`` in ``lab`` (at ``origin`` + index)
    counted by their offset from the face's plane, rounded to whole voxels (bin ``offset + L``, ``L`` from the shape
    ``box`` of the whole cluster: its diagonal). Additive over z slabs that do not overlap."""
    span = int(np.ceil(np.linalg.norm(box))) + 1
    coords = {i: np.argwhere(lab == i).astype(np.float64) + origin for i in {i for k in planes for i in k}}
    return {k: sum(np.bincount(np.rint((coords[i] - c) @ nrm).astype(np.int64) + span, minlength=2 * span + 1)
                   for i in k) for k, (c, nrm) in planes.items()}


def waists(counts: dict[tuple[int, int], np.ndarray], planes: dict) -> dict[tuple[int, int], bool]:
    """Whether each face is a waist of its two labels' union (:data:`LOW_TOPS_WAIST`): the equivalent-disc radius of
    the section through it (``counts`` of :func:`section_counts`, bin at offset 0) at least :data:`LOW_TOPS_WAIST`
    voxels below the widest section's on each side."""
    out = {}
    for k in planes:
        r = np.sqrt(counts[k] / np.pi)
        mid = r.size // 2
        out[k] = bool(r[mid] <= min(r[:mid].max(), r[mid + 1:].max()) - LOW_TOPS_WAIST)
    return out


def low_top_roots(faces: dict[tuple[int, int], np.ndarray], sizes: np.ndarray, high: int,
                  waist: dict[tuple[int, int], bool] | None = None) -> np.ndarray:
    """``root[id]`` (ids 0..len(sizes)-1): each label above ``high`` (seeded by a low top, :func:`with_low_tops`) joins
    the neighbour it meets widest unless every face it has is a neck (the face's disc radius, :func:`face_radius`,
    below :data:`LOW_TOPS_NECK` times the smaller label's equivalent-sphere radius, :data:`LOW_TOPS_SMALLER`; and
    a waist where ``waist``, of :func:`waists`, says False: no neck; faces it leaves out stay necks) and
    none runs along a crack nearly all over (a share of its neighbour pairs with a dark voxel, :func:`label_faces`, at :data:`CRACK_FACE`'s or more: a
    crack between two pieces of one particle, not a contact). Low labels are taken smallest first (then by id), their
    faces and sizes summed into the neighbour they join (a summed face is a waist if any face in it was)."""
    sizes = np.asarray(sizes, np.float64).copy()
    root = np.arange(len(sizes))
    crack = CRACK_FACE[1] if CRACK_FACE else np.inf
    waist = dict(waist or {})
    for i in sorted(range(high + 1, len(sizes)), key=lambda j: (sizes[j], j)):
        ratio = {k: face_radius(m) / _neck_radius(sizes, k, i) for k, m in faces.items() if i in k}
        ratio = {k: r for k, r in ratio.items()
                 if r >= LOW_TOPS_NECK or not waist.get(k, True) or faces[k][10] >= crack * faces[k][0]}
        if not ratio:
            continue
        k = max(ratio, key=lambda q: (ratio[q], -q[0], -q[1]))
        j = k[0] if k[1] == i else k[1]
        root[root == i] = j
        sizes[j] += sizes[i]
        joined: dict[tuple[int, int], np.ndarray] = {}
        now: dict[tuple[int, int], bool] = {}
        for (p, q), m in faces.items():
            key = (min(j if p == i else p, j if q == i else q), max(j if p == i else p, j if q == i else q))
            if key[0] != key[1]:
                joined[key] = joined.get(key, 0) + m
                now[key] = now.get(key, False) or waist.get((p, q), True)
        faces, waist = joined, now
    return root


def _neck_radius(sizes: np.ndarray, k: tuple[int, int], i: int) -> float:
    """Equivalent-sphere radius (voxels) a face ``k`` of low-top label ``i`` is read against: the smaller label's
    (:data:`LOW_TOPS_SMALLER`) or ``i``'s own."""
    return float(np.cbrt(3 * (min(sizes[k[0]], sizes[k[1]]) if LOW_TOPS_SMALLER else sizes[i]) / (4 * np.pi)))


def joined_tops(tops: np.ndarray) -> np.ndarray:
    """Seed ids (1..n in raster order of their first voxel, 0 elsewhere) of h-maxima ``tops``: 26-connected
    tops, and tops with one voxel between them (:func:`near_tops`), are one seed."""
    lab = ndi.label(near_tops(tops), structure=np.ones((3, 3, 3)))[0] * tops
    ids = lab.ravel()[np.flatnonzero(tops)]
    _, first = np.unique(ids, return_index=True)
    remap = np.zeros(int(lab.max()) + 1, np.int32)
    remap[ids[np.sort(first)]] = np.arange(1, first.size + 1)
    return remap[lab]


#: Seeds of exactly the same height joined above that height less ``h`` are one seed (:func:`tied_tops_lut`).
TIED_TOPS = True
#: :func:`tied_tops_lut` labels the whole ``f >= v - h`` once, for the lowest tied value ``v0``, and each higher tied
#: value ``v`` only inside the bounding boxes of the components of ``f >= v0 - h`` that hold two or more of its seeds
#: (a component of ``f >= v - h`` lies inside one of ``f >= v0 - h``): the same look-up table as one whole-volume label
#: per tied value (False), at one label's cost where the tied seeds lie apart (the 256^3 tiled phantom: each value's
#: 64 twins lie in 64 particles; docs/benchmarks.md "tomotie").
TIED_TOPS_CROP = True
_C26 = np.ones((3, 3, 3), bool)


def tied_tops_lut(f: np.ndarray, markers: np.ndarray, h: float) -> np.ndarray:
    """Look-up table (``lut[markers]``, ids 1..m in the order of the seeds' ids) that joins the seeds of ``markers``
    (ids 1..n of h-maxima tops of ``f``, :func:`joined_tops`) whose tops have the same value ``v`` of ``f`` and
    lie in one 26-connected component of ``f >= v - h`` (:func:`minus_h`): one plateau of the reconstruction of
    ``f - h`` under ``f``, i.e. one h-maximum.

    scikit-image's ``h_maxima`` marks the voxels whose residue ``f - rec(f - h)`` is at least ``h``; two tops of
    exactly the same value (distances are square roots of integers) on one plateau of ``rec`` are two such sets
    wherever the voxels between them dip below the tops by less than ``h``, and the watershed cut the particle
    in two between them: 5 of the 6 particles split on tuning draws 9000-9099 (tops tied at 4.36-9.27 voxels,
    the saddle between them 0.11-1.36 below; docs/validation.md "tomosplit: tied tops"). :func:`near_tops` joins
    such tops one voxel apart only. Tops of different values are left alone: the lower one is a seed only where
    its saddle to the higher one lies at least ``h`` below it. Higher tied values are labelled in boxes
    (:data:`TIED_TOPS_CROP`, :func:`tie_components_in_boxes`)."""
    n = int(markers.max())
    lut = np.arange(n + 1)
    if n < 2:
        return lut
    pos = np.nonzero(markers)  # the seeds' voxels: few, so each per-seed maximum is taken on them alone
    sid, ids = markers[pos], np.arange(1, n + 1)
    top = ndi.maximum(f[pos], sid, ids)
    values, counts = np.unique(top, return_counts=True)
    low = None  # the lowest tied value's components and their boxes
    for v in values[counts > 1]:
        mine = ids[top == v]
        where = None if low is None else tie_components_in_boxes(
            low[0][pos], pos, sid, mine, low[1],
            lambda g, box: ndi.label(tie_mask(f[box], v, h) & (low[0][box] == g), structure=_C26)[0])
        if where is None:
            comp = ndi.label(tie_mask(f, v, h), structure=_C26)[0]
            where = ndi.maximum(comp[pos], sid, mine).astype(np.int64)  # each seed's component (its tops lie in one)
            low = (comp, ndi.find_objects(comp)) if TIED_TOPS_CROP and low is None else low
        join_groups(lut, mine, where)
    return np.unique(lut, return_inverse=True)[1]


def join_groups(lut: np.ndarray, mine: np.ndarray, where: np.ndarray) -> None:
    """Give the seeds ``mine`` that share a value of ``where`` (their component) the least id among them in ``lut``."""
    for c in np.unique(where):
        group = mine[where == c]
        lut[group] = lut[group].min()


def tie_components_in_boxes(low_at: np.ndarray, pos: tuple, sid: np.ndarray, mine: np.ndarray, boxes: list,
                            label_box) -> np.ndarray | None:
    """Each seed of ``mine`` (ids of one tied top value ``v``)'s component of ``f >= v - h`` as a key (int64; equal
    keys: one component), given the components ``low`` of ``f >= v0 - h`` for a lower tied value ``v0`` at the seed
    voxels (``low_at``: ``low[pos]``, ``pos`` the seed voxels' coordinates, ``sid`` their seed ids) and their boxes
    (``boxes[g - 1]``, slices). The component of ``f >= v - h`` that holds a seed lies in the seed's component of
    ``low``, so a seed alone there keeps a key of its own, and each component ``g`` of ``low`` with two or more of the
    seeds is labelled inside its box only (``label_box(g, box)``: labels of ``f[box] >= v - h`` within ``low == g``).
    None where a seed meets two components (possible for ``h`` below sqrt(3)): label the whole volume instead."""
    home = ndi.maximum(low_at, sid, mine).astype(np.int64)
    if (ndi.minimum(low_at, sid, mine) != home).any():
        return None
    where = -np.arange(1, mine.size + 1, dtype=np.int64)
    at, counts = np.unique(home, return_counts=True)
    for g in at[counts > 1]:
        box, here = boxes[g - 1], home == g
        inside = np.isin(sid, mine[here])
        lab = label_box(int(g), box)[tuple(p[inside] - b.start for p, b in zip(pos, box))]
        key = ndi.maximum(lab, sid[inside], mine[here]).astype(np.int64)
        if (ndi.minimum(lab, sid[inside], mine[here]) != key).any():
            return None
        where[here] = key + (int(g) << 32)  # unique across the components of ``low``
    return where


def tie_mask(f: np.ndarray, v: float, h: float) -> np.ndarray:
    """Voxels of ``f`` (a distance map: 0 outside the envelope) at or above ``v - h`` (:func:`minus_h`), inside."""
    return (f >= minus_h(np.float64(v), h)) & (f > 0)


def near_tops(tops: np.ndarray) -> np.ndarray:
    """The h-maxima ``tops`` grown by one voxel (26 neighbours): two tops with one voxel between them touch.

    The distance map of a digital particle often has two tops of exactly the same value (distances are
    square roots of integers) with one voxel between them a fraction of a voxel lower: each top's residue
    ``f - rec(f - h)`` is exactly ``h`` (scikit-image's test) and the voxel between is below it, so they were two
    seeds and the watershed cut the particle in two along a plane (8 of the 15 split particles of tomo
    draws 0-49; docs/validation.md "tomosplit"). Joining them adds no other seed: the distance map changes by at
    most sqrt(3) from a voxel to its neighbour, so for ``h`` above sqrt(3) two tops one voxel apart are joined
    above ``f - h`` and are both tops only when tied.
    """
    return ndi.binary_dilation(tops, structure=np.ones((3, 3, 3)))


def minus_h(f: np.ndarray, h: float) -> np.ndarray:
    """``f - h`` lowered by twice the float resolution of ``f``, as scikit-image's ``h_maxima`` shifts its image."""
    return f - h - 2 * np.finfo(f.dtype).resolution * np.abs(f)


def level_ranks(f: np.ndarray, h: float, chunk: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Joint ranks of the values of ``f`` (float64, 3-D) and of ``f`` shifted down by ``h`` (:func:`minus_h`):
    the sorted distinct values and two float32 arrays of ranks into them; None when the ranks would not be exact
    in float32 (2^24 values or more). Built ``chunk`` z slices at a time: no float64 copy of ``f`` is held."""
    u = np.unique(np.concatenate([np.unique(f[z:z + chunk]) for z in range(0, f.shape[0], chunk)] or [f.ravel()]))
    levels = np.union1d(u, minus_h(u, h))
    if levels.size >= 1 << 24:
        return None
    f_rank, shifted_rank = np.empty(f.shape, np.float32), np.empty(f.shape, np.float32)
    for z in range(0, f.shape[0], chunk):
        f_rank[z:z + chunk] = np.searchsorted(levels, f[z:z + chunk])
        shifted_rank[z:z + chunk] = np.searchsorted(levels, minus_h(f[z:z + chunk], h))
    return levels, f_rank, shifted_rank


def h_maxima_core(f: np.ndarray, h: float, core: slice = slice(None), ranks=None) -> np.ndarray:
    """``skimage.morphology.h_maxima(f, h)[core] > 0`` (``core``: z slices; ``f`` float64), the same voxels, with
    the reconstruction run on the float32 ranks of :func:`level_ranks` (given as ``ranks`` or computed).

    A reconstruction by dilation only compares values and returns values of its inputs, so on ranks (a map that
    keeps the order and the ties of every value of ``f`` and of ``f`` shifted down) it returns the ranks of the
    same values; the residue ``f - rec >= h`` is then computed on the values, as scikit-image does. Halves the
    value arrays of scikit-image's reconstruction (it interleaves seed and mask in the input's float type and
    sorts them): 99 -> 76 bytes a voxel of the block at peak (docs/benchmarks.md, "tomomem2" 2026-12-05).
    """
    from skimage.morphology import h_maxima, reconstruction

    if h <= 0 or h > np.ptp(f) or f.dtype != np.float64:  # scikit-image's own answer (error, none, other dtype)
        return h_maxima(f, h)[core] > 0
    ranks = level_ranks(f, h) if ranks is None else ranks
    if ranks is None:
        return h_maxima(f, h)[core] > 0
    levels, f_rank, shifted_rank = ranks
    rec = reconstruction(shifted_rank, f_rank, method="dilation")[core]
    return (f[core] - levels[rec.astype(np.int64)]) >= h


def distance_transform_core(mask: np.ndarray, core: slice) -> np.ndarray:
    """``scipy.ndimage.distance_transform_edt(mask)[core]`` (voxels, float64; ``core``: z slices), bit for bit,
    with about a third of SciPy's memory: from the feature transform (int32, 12 bytes a voxel), the squared
    distance summed in integers on the core's slices only (SciPy: three float64 components of the whole
    array, ~49 bytes a voxel at peak). Equal because every square and sum is an integer below 2^53 and the
    square root is correctly rounded."""
    ft = ndi.distance_transform_edt(mask, return_distances=False, return_indices=True)
    wide = np.int64 if 3 * max(mask.shape) ** 2 >= 2 ** 31 else np.int32  # the squared sum fits in int32 below
    d2 = np.zeros(ft[0, core].shape, wide)
    for axis, n in enumerate(mask.shape):
        at = np.arange(n, dtype=wide)[core if axis == 0 else slice(None)]
        at = at.reshape([-1 if a == axis else 1 for a in range(3)])
        d = ft[axis, core] - at  # integer offset to the nearest background voxel along this axis
        d *= d
        d2 += d
        del d
    del ft
    return np.sqrt(d2, dtype=np.float64)


def dark_features(solid: np.ndarray, particles: np.ndarray, *, min_voxels: int = 8) -> np.ndarray:
    """Ids of the dark features (envelope but not solid) with at least ``min_voxels`` voxels (26-connected)."""
    lab, n = ndi.label((particles > 0) & ~solid, structure=np.ones((3, 3, 3)))
    if n == 0:
        return lab
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    remap = np.zeros(sizes.size, np.int32)
    remap[keep] = np.arange(1, keep.sum() + 1)
    return remap[lab]


def feature_shape(coords: np.ndarray) -> dict:
    """Principal extents and the plane of a feature from its voxel coordinates ``(n, 3)`` (z, y, x).

    Returns ``extents`` (rms along the principal axes, largest first, voxels), ``normal`` (unit vector
    of the smallest axis, z >= 0), ``flatness`` (smallest / middle extent), and the local width along
    the normal: ``width_mean`` (voxels / distinct in-plane cells) and ``width_max`` (95th percentile
    of the voxels per in-plane cell), both in voxels.
    """
    c = coords - coords.mean(axis=0)
    cov = c.T @ c / max(len(c), 1)
    w, v = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1]
    w, v = np.clip(w[order], 0, None), v[:, order]
    ext = np.sqrt(w)
    normal = v[:, 2] * (1 if v[0, 2] >= 0 else -1)
    uv = np.round(c @ v[:, :2]).astype(np.int64)
    _, counts = np.unique(uv, axis=0, return_counts=True)
    return {"extents": ext, "normal": normal, "basis": v, "flatness": float(ext[2] / max(ext[1], 1e-9)),
            "width_mean": float(len(c) / len(counts)), "width_max": float(np.percentile(counts, 95))}


def round_part(m: np.ndarray, radius: int, *, min_voxels: int = 30) -> np.ndarray | None:
    """The round part of a dark feature mask ``m``: its opening by a ball of ``radius`` voxels (the union of
    the balls of that radius that fit inside it), None when that holds fewer than ``min_voxels`` voxels.

    A ball wider than a crack fits in no crack, nor where two cracks cross at a wide angle (two slabs ``w``
    wide crossing at right angles hold a ball of radius at most ``w / sqrt(2)``), but fills a round pore that
    touches them: the opening parts a pore joined to cracks from their sheets.
    """
    pad = radius + 1
    blob = ndi.binary_opening(np.pad(m, pad), structure=_ball(radius))[pad:-pad, pad:-pad, pad:-pad] & m
    return blob if blob.sum() >= min_voxels else None


def plane_of(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and unit normal (smallest principal axis) of a point set ``(n, 3)``."""
    c = points.mean(axis=0)
    _, v = np.linalg.eigh((points - c).T @ (points - c))
    return c, v[:, 0]


def local_normals(coords: np.ndarray, at: np.ndarray, k: int = 100) -> np.ndarray:
    """Unit normal of the sheet around the voxels ``coords[at]``: the smallest principal axis of each
    one's ``k`` nearest voxels of ``coords`` (a patch a few voxels wide, wider than a 2-3 voxel crack
    is thick)."""
    from scipy.spatial import cKDTree

    k = min(k, len(coords))
    _, idx = cKDTree(coords).query(coords[at], k=k)
    nb = coords[idx]
    nb -= nb.mean(axis=1, keepdims=True)
    _, v = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))
    return v[:, :, 0]


def _best_plane(points: np.ndarray, normals: np.ndarray, tol: float, rng: np.random.Generator, *,
                min_cos: float, tries: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The plane through a voxel along its local normal with the most voxels within ``tol`` whose own
    normal agrees with it (``|cos| >= min_cos``), refined twice by a least-squares fit to those voxels.

    Counting only voxels of the plane's orientation keeps a plane across the arms of a V or a Y (a strip
    of each, as many voxels as one arm within a thick tolerance) from winning over an arm's own plane.
    """
    cand = rng.integers(0, len(points), size=tries)
    cn = normals[cand]
    offsets = np.einsum("ij,ij->i", cn, points[cand])
    agree = (np.abs(points @ cn.T - offsets) <= tol) & (np.abs(normals @ cn.T) >= min_cos)
    i = int(np.argmax(agree.sum(axis=0)))
    c, n = points[cand[i]], cn[i]
    for _ in range(2):
        inl = (np.abs((points - c) @ n) <= tol) & (np.abs(normals @ n) >= min_cos)
        if inl.sum() < 3:
            break
        c, n = plane_of(points[inl])
    return c, n


#: :func:`planar_sheets` looks for planes on at most this many voxels of a feature (their local normals
#: from all its voxels); the voxels of each plane are then taken out of all of them.
MAX_SAMPLED = 5000


def planar_sheets(coords: np.ndarray, *, tol: float, max_flatness: float, min_sheet_voxels: float,
                  max_sheets: int = 6, min_angle_deg: float = 20.0, coverage: float = 0.9, max_fill: float = 0.9,
                  min_share: float = 0.03, min_voxels: int = 30, seed: int = 0,
                  require_crossing: bool = True, depth: np.ndarray | None = None,
                  cut_planes: bool = True) -> np.ndarray | None:
    """The planar sheets a dark feature is made of, when it is intersecting cracks rather than a pore.

    Two cracks that cross form one connected dark feature, which is not flat as a whole (an X has
    the principal extents of a ball) and was called a pore. Here planes are taken out one after the
    other (RANSAC: a candidate is a voxel's local plane, :func:`local_normals`; the one with the most
    voxels within ``tol`` of it and of its orientation (local normal within ``min_angle_deg / 2``: a plane
    halfway between two sheets ``min_angle_deg`` or more apart agrees with neither, so five radial cracks
    36 deg apart are not read as a few planes each across two of them) wins, refined by least squares; its voxels
    within ``tol`` are taken out), each a sheet by the crack test of :func:`feature_shape`
    (flatness below ``max_flatness``, middle extent at least ``min_sheet_voxels``) holding at least
    ``min_share`` of the voxels and ``min_voxels`` (a small disc crossing two larger cracks keeps 4-8 % of
    their joint feature beyond their planes' tolerance slabs; with 10 % its sheet went to another crack, or
    the feature fell short of ``coverage`` and was called a pore). With ``cut_planes`` (the default), when the search stops with a plane taken, planes
    through the voxels left outside every taken slab are looked for (:func:`_cut_plane`: a small
    crack crossing larger ones, cut in pieces by their slabs: at least ``min_voxels`` of them, a quarter on each side
    of a taken plane, no thicker than the sheets taken). The feature is intersecting sheets when two to ``max_sheets`` such
    planes, at least ``min_angle_deg`` apart, hold ``coverage`` of its voxels and the voxels fill at
    most ``max_fill`` of the convex hull of their centres (a digitised convex body fills it at least once: a ball
    of radius 3-10 voxels 1.05-1.4, an ellipsoid 1.2-1.5; small discs crossing near their rims 0.81-0.87, draws 10, 45;
    two 2.5-voxel discs crossing at 30 deg: 0.65, at 90 deg less: without this test a small round
    pore could be cut into slabs), and, with ``require_crossing``, each sheet crosses another or is
    crossed by it (:func:`_crossing`: an X or a T; sheets meeting at a bend are one crack that changes
    direction). Sheets closer than about 20 deg are one plane within ``tol`` near their intersection
    and are not told apart.

    Parameters
    ----------
    coords : numpy.ndarray
        ``(n, 3)`` voxel coordinates (z, y, x) of one dark feature.
    tol : float
        Largest distance (voxels) of a sheet's voxel from its plane: half the crack width plus half a voxel.

    require_crossing : bool
        Ask for the crossing test; without it sheets meeting at a bend (an L) count as well.
    depth : numpy.ndarray, optional
        Each voxel's distance (voxels) into the particle envelope. With it, a cut plane whose voxels left lie in
        the surface shell (median depth below :data:`CUT_MIN_DEPTH`) is the crack's bridged mouth: its voxels
        count as explained (``coverage``) but get :data:`MOUTH_SHEET`, in no sheet; without it every cut plane is a
        sheet.
    cut_planes : bool
        Look for cut planes (:func:`_cut_plane`) once the search stops; False is the search alone (before
        docs/validation.md "tomocut"; ``TomoOptions.cut_planes``, CLI ``--no-cut-planes``).

    Returns
    -------
    numpy.ndarray or None
        Sheet index (0 .. k-1, largest sheet first) of every voxel, each voxel in the sheet whose plane
        is nearest (:data:`MOUTH_SHEET` where that is a mouth plane); None when the feature is not made of two
        or more differently oriented sheets.
    """
    from scipy.spatial import ConvexHull, QhullError

    n = len(coords)
    if n < 30:
        return None
    try:
        if n / ConvexHull(coords).volume > max_fill:
            return None
    except QhullError:  # all voxels in one plane or line: a sheet, not crossing ones
        return None
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, min(n, MAX_SAMPLED), replace=False))
    s_pts, s_nrm = coords[sample], local_normals(coords, sample)
    min_cos = float(np.cos(np.radians(min_angle_deg / 2)))
    max_cos = float(np.cos(np.radians(min_angle_deg)))
    alive = np.ones(n, dtype=bool)
    planes: list[tuple[np.ndarray, np.ndarray]] = []
    thick: list[float] = []  # rms thickness of each plane's voxels about it (voxels)
    least = max(min_voxels, min_share * n)
    while len(planes) < max_sheets and alive.sum() >= least and alive[sample].sum() >= 3:
        live = alive[sample]
        c, nrm = _best_plane(s_pts[live], s_nrm[live], tol, rng, min_cos=min_cos)
        inl = alive & (np.abs((coords - c) @ nrm) <= tol)
        sh = feature_shape(coords[inl]) if inl.sum() >= 3 else None
        if sh is None or inl.sum() < least or not (sh["flatness"] < max_flatness
                                                            and sh["extents"][1] >= min_sheet_voxels):
            break
        if any(abs(float(nrm @ q)) > max_cos for _, q in planes):
            break  # a slab of a crack already taken (beside its plane's tolerance), not another crack
        planes.append((c, nrm))
        thick.append(float(sh["extents"][2]))
        alive &= ~inl
    mouths: list[int] = []  # cut planes through the bridged mouth (their voxels left in the surface shell)
    while cut_planes and planes and len(planes) < max_sheets and alive.sum() >= min_voxels:
        found = _cut_plane(coords, alive, planes, max(thick), tol, min_angle_deg=min_angle_deg, min_voxels=min_voxels,
                           max_flatness=max_flatness, min_sheet_voxels=min_sheet_voxels)
        if found is None:
            break
        if depth is not None and _shallow(coords[alive], depth[alive], found, tol):
            mouths.append(len(planes))
        planes.append(found)
        alive &= np.abs((coords - found[0]) @ found[1]) > tol
    if len(planes) < 2 or 1.0 - alive.sum() / n < coverage:
        return None
    normals = np.array([p[1] for p in planes])
    cosines = np.abs(normals @ normals.T)[np.triu_indices(len(planes), 1)]
    if np.any(cosines > np.cos(np.radians(min_angle_deg))):
        return None
    signed = np.stack([(coords - c) @ nrm for c, nrm in planes], axis=1)
    sheets = np.argmin(np.abs(signed), axis=1)
    if require_crossing and not _crossing(signed, sheets, tol, min_voxels=min_voxels):
        return None
    return _without_mouths(sheets, mouths)


def _without_mouths(sheets: np.ndarray, mouths: list) -> np.ndarray:
    """``sheets`` with the voxels of the mouth planes ``mouths`` (sheet indices) set to :data:`MOUTH_SHEET`, the
    sheets left renumbered 0..k-1 in their order."""
    if not mouths:
        return sheets
    out = sheets - np.searchsorted(mouths, sheets, side="right")  # sheets after i mouths move down by i
    out[np.isin(sheets, mouths)] = MOUTH_SHEET
    return out


#: A cut plane whose voxels left (beyond every taken plane's slab, within its own) lie at a median depth (voxels into
#: the particle envelope) below this is the bridged mouth of a crack at the surface, not a crack crossing it: the
#: closing that makes the envelope takes in dark voxels along the surface across the mouth, a layer in the shell.
#: On the cut planes of 17 tuning draws (docs/validation.md "tomocross2"): the mouth planes' voxels left lie at a
#: median depth 1.0-2.34, those of a crossing crack 3.0-20 (3.0: a particle 7.7 voxels deep).
CUT_MIN_DEPTH = 2.5
#: Sheet index :func:`planar_sheets` gives the voxels nearest to a mouth plane (:data:`CUT_MIN_DEPTH`):
#: ``layerscope.tomo.measure.MOUTH``, in no sheet's voxels (its partial-volume deficit goes to the nearest sheet).
MOUTH_SHEET = -2
#: :func:`_cut_plane` tries this many directions spread over a hemisphere (about 3 deg apart).
CUT_DIRECTIONS = 2000
#: ... on at most about this many of the voxels left (every k-th).
CUT_SAMPLED = 2000


def _hemisphere(n: int) -> np.ndarray:
    """``n`` unit vectors (z >= 0) spread evenly over a hemisphere (a Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1.0 - z ** 2)
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


#: :func:`_densest_slab` projects the points on this many directions at a time (memory: ~24 bytes per point and
#: direction of a block; all :data:`CUT_DIRECTIONS` at once held ~200 MiB for 4000 points). The same result.
SLAB_DIRECTION_BLOCK = 250


def _densest_slab(points: np.ndarray, dirs: np.ndarray, tol: float) -> tuple[int, float, int]:
    """Over the directions ``dirs``: the one whose slab ``2 tol`` thick holds the most ``points``, the slab's
    middle along it and the count (the first such direction and slab; directions in blocks of
    :data:`SLAB_DIRECTION_BLOCK`)."""
    blocks = range(0, dirs.shape[0], SLAB_DIRECTION_BLOCK)
    low, high = np.inf, -np.inf
    for b in blocks:
        proj = points @ dirs[b:b + SLAB_DIRECTION_BLOCK].T
        low, high = min(low, float(proj.min())), max(high, float(proj.max()))
    span, best = high - low + 4 * tol + 1.0, (-1, 0, 0.0)  # best: (count, direction, middle)
    for b in blocks:
        proj = np.sort(points @ dirs[b:b + SLAB_DIRECTION_BLOCK].T, axis=0)
        flat = (proj - low + span * np.arange(b, b + proj.shape[1])).T.ravel()  # each direction's values apart, sorted
        counts = np.searchsorted(flat, flat + 2 * tol, side="right") - np.arange(flat.size)
        i = int(np.argmax(counts))
        if counts[i] > best[0]:
            d, start = divmod(i, points.shape[0])
            best = (int(counts[i]), b + d, float(proj[start, d] + tol))
    return best[1], best[2], best[0]


def _cut_plane(coords: np.ndarray, alive: np.ndarray, planes: list, thickness: float, tol: float, *,
               min_angle_deg: float, min_voxels: int, max_flatness: float, min_sheet_voxels: float,
               tries: int = 3) -> tuple[np.ndarray, np.ndarray] | None:
    """A crack cut in pieces by the slabs of the planes taken (``planes``, centre and normal): a plane at least
    ``min_angle_deg`` from each of them through the voxels left (``alive``), or None.

    A small crack crossing larger ones lies mostly inside their slabs (``tol``); what is left of it are pieces on
    both sides of a larger crack, too few for the plane search's share and with local normals that the larger
    crack's voxels tilt. Here the pieces' own coplanarity decides: the direction of :data:`CUT_DIRECTIONS` whose
    slab holds the most voxels left, refined by least squares on them. It is kept when they number ``min_voxels``,
    are no thicker (rms about the plane, voxels) than ``thickness`` (the thickest sheet taken: the blurred corners
    where two cracks cross fill their slab evenly, a crack does not), lie at least a quarter on each side of a
    taken plane (the crack crosses it; a bulge beside a crack lies on one side), and the voxels of its slab nearer
    to it than to every taken plane (its sheet) are a sheet (flatness below ``max_flatness``, middle extent at least
    ``min_sheet_voxels``; its whole slab holds strips of the larger cracks across it, as thick as the slab). Up to
    ``tries`` directions are tried, each next one at least ``min_angle_deg / 2`` from those refused (before and after
    the refinement).
    """
    pts = coords[alive]
    taken = np.array([q for _, q in planes])
    dirs = _hemisphere(CUT_DIRECTIONS)
    dirs = dirs[np.all(np.abs(dirs @ taken.T) <= np.cos(np.radians(min_angle_deg)), axis=1)]
    step = max(1, len(pts) // CUT_SAMPLED)
    for _ in range(tries):
        if not len(dirs):
            return None
        d, mid, count = _densest_slab(pts[::step], dirs, tol)
        if count * step < min_voxels:
            return None
        plane = _refined(pts, dirs[d] * mid, dirs[d], tol)
        if plane is not None and _cuts_through(coords, pts, plane, planes, thickness, tol, min_angle_deg=min_angle_deg,
                                               min_voxels=min_voxels, max_flatness=max_flatness,
                                               min_sheet_voxels=min_sheet_voxels):
            return plane
        refused = [dirs[d]] if plane is None else [dirs[d], plane[1]]
        dirs = dirs[np.all(np.abs(dirs @ np.array(refused).T) < np.cos(np.radians(min_angle_deg / 2)), axis=1)]
    return None


def _shallow(pts: np.ndarray, depth: np.ndarray, plane: tuple, tol: float) -> bool:
    """Whether the ``pts`` within ``tol`` of ``plane`` lie at a median ``depth`` below :data:`CUT_MIN_DEPTH`."""
    return bool(np.median(depth[np.abs((pts - plane[0]) @ plane[1]) <= tol]) < CUT_MIN_DEPTH)


def _refined(pts: np.ndarray, c: np.ndarray, nrm: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The plane (``c``, ``nrm``) refined twice by a least-squares fit to the ``pts`` within ``tol`` of it."""
    for _ in range(2):
        inl = np.abs((pts - c) @ nrm) <= tol
        if inl.sum() < 3:
            return None
        c, nrm = plane_of(pts[inl])
    return c, nrm


def _cuts_through(coords: np.ndarray, pts: np.ndarray, plane: tuple, planes: list, thickness: float, tol: float, *,
                  min_angle_deg: float, min_voxels: int, max_flatness: float, min_sheet_voxels: float) -> bool:
    """The tests of :func:`_cut_plane` on a candidate ``plane`` through the voxels left ``pts``."""
    c, nrm = plane
    taken = np.array([q for _, q in planes])
    if np.any(np.abs(taken @ nrm) > np.cos(np.radians(min_angle_deg))):
        return False
    d = (pts - c) @ nrm
    on = pts[np.abs(d) <= tol]
    if len(on) < min_voxels or np.sqrt(np.mean(d[np.abs(d) <= tol] ** 2)) > thickness:
        return False
    if not any(min(np.sum((on - p) @ q > 0), np.sum((on - p) @ q < 0)) >= 0.25 * len(on) for p, q in planes):
        return False
    own = np.abs((coords - c) @ nrm)
    others = np.min(np.abs(np.stack([(coords - p) @ q for p, q in planes], axis=1)), axis=1)
    sh = feature_shape(coords[(own <= tol) & (own < others)])
    return bool(sh["flatness"] < max_flatness and sh["extents"][1] >= min_sheet_voxels)


def _crossing(signed: np.ndarray, sheets: np.ndarray, tol: float, share: float = 0.15, min_voxels: int = 30) -> bool:
    """Every sheet crosses another one or is crossed by it (an X or a T), rather than meeting it at a
    bend (a V or an L: one crack that changes direction). Sheet ``i`` crosses plane ``j`` when at
    least ``share`` of its voxels lie more than ``tol`` beyond one side of it and, beyond the other side,
    also ``share`` of them or at least ``min_voxels`` (the smallest sheet :func:`planar_sheets` takes): where
    one crack ends on another (a T-junction near the other's rim, or two discs meeting near both rims) it
    overshoots the other's plane by a strip of a few voxels, a small share of a large sheet (draws 4, 5, 22,
    24 of 0-49: 45-383 voxels, 2-17 %); the two halves of a bend end at their common line and leave no voxel
    beyond it (the V of 30-90 deg: none). ``signed`` holds the signed distances of every voxel to every plane."""
    k = signed.shape[1]

    def crosses(i: int, j: int) -> bool:
        d = signed[sheets == i, j]
        above, below = int(np.sum(d > tol)), int(np.sum(d < -tol))
        least = min(share * len(d), min_voxels)
        return max(above, below) >= share * len(d) and min(above, below) >= least

    return all(any(crosses(i, j) or crosses(j, i) for j in range(k) if j != i) for i in range(k))


def label_faces(lab: np.ndarray, dark: np.ndarray, origin: tuple[int, int, int] = (0, 0, 0), *,
                last_slice_in_plane: bool = True) -> dict[tuple[int, int], np.ndarray]:
    """The faces between labels: for each pair ``(a, b)``, ``a < b``, of non-zero labels that are 6-neighbours
    somewhere, the moments ``[n, sum z, sum y, sum x, sum zz, sum zy, sum zx, sum yy, sum yx, sum xx, n dark]`` of
    the midpoints between their neighbouring voxels (at ``origin`` + index; ``n dark``: the pairs with a voxel of
    ``dark``). Additive: the faces of two merged labels,
    or of z slabs that overlap by one slice, are summed (``last_slice_in_plane=False`` leaves out the pairs
    within the last slice, counted by the next slab)."""
    keys, pts, drk = [np.zeros(0, np.int64)], [np.zeros((0, 3))], [np.zeros(0)]
    n = int(lab.max()) + 1
    for ax in range(3):
        lo = tuple(slice(0, -1) if a == ax else slice(None) for a in range(3))
        hi = tuple(slice(1, None) if a == ax else slice(None) for a in range(3))
        a, b, da, db = lab[lo], lab[hi], dark[lo], dark[hi]
        if ax > 0 and not last_slice_in_plane:
            a, b, da, db = a[:-1], b[:-1], da[:-1], db[:-1]
        at = np.nonzero((a > 0) & (b > 0) & (a != b))
        keys.append(np.minimum(a[at], b[at]).astype(np.int64) * n + np.maximum(a[at], b[at]))
        p = np.stack(at, axis=1).astype(np.float64) + origin
        p[:, ax] += 0.5
        pts.append(p)
        drk.append((da[at] | db[at]).astype(np.float64))
    keys, pts, drk = np.concatenate(keys), np.concatenate(pts), np.concatenate(drk)
    uniq, inv = np.unique(keys, return_inverse=True)
    cols = [np.ones(len(pts))] + [pts[:, i] for i in range(3)] + [pts[:, i] * pts[:, j] for i in range(3) for j in range(i, 3)] + [drk]
    sums = np.stack([np.bincount(inv, weights=c, minlength=uniq.size) for c in cols], axis=1)
    return {(int(k // n), int(k % n)): s for k, s in zip(uniq, sums)}


def face_radius(m: np.ndarray) -> float:
    """Radius of the disc with the in-plane spread of a face (moments of :func:`label_faces`): a uniform disc of
    radius ``r`` has variance ``r^2 / 4`` along each in-plane axis, an ellipse of semi-axes ``a, b`` gives
    ``sqrt(a b)``."""
    n, s, q = m[0], m[1:4], m[4:10]
    cov = np.empty((3, 3))
    cov[np.triu_indices(3)] = q / n
    cov = np.triu(cov) + np.triu(cov, 1).T - np.outer(s / n, s / n)
    w = np.sort(np.clip(np.linalg.eigvalsh(cov), 0, None))
    return float(2 * (w[1] * w[2]) ** 0.25)


def neck_roots(faces: dict[tuple[int, int], np.ndarray], sizes: np.ndarray, min_neck_ratio: float,
               min_dark: float) -> np.ndarray:
    """``root[id]``: the smallest id of the group that label ``id`` joins (ids 0..len(sizes)-1), labels joined where
    their shared face runs along a crack (at least ``min_dark`` of its neighbour pairs with a dark voxel) and has
    no neck: the face's disc radius (:func:`face_radius`) at least ``min_neck_ratio`` times
    the equivalent-sphere radius of the smaller label, or :data:`CRACK_FACE`'s ratio where the face runs along a
    crack nearly all over. The pair with the widest face relative to that radius goes
    first, and the faces and sizes of a joined pair are summed before the next test.

    A plane that cuts one particle in two (a watershed line along a crack, or between two distance tops of
    one elongated particle) is a section of the particle, wider than the ball of the smaller part's volume (a
    sphere halved: 1.26 times, a cap: more). Two particles that touch meet at a neck narrower than the
    smaller one (the "neck ratio" of sintered particles, below 1 unless they have fused into one). Faces through
    solid are left alone: two particles fused across a flat contact (the mirror twins of a tiled volume, neck
    ratios 0.8-1.2) and one particle cut between two tied distance tops look the same there.
    """
    sizes = np.asarray(sizes, np.float64).copy()
    root = np.arange(len(sizes))
    while faces:
        ratio = {k: face_radius(m) / np.cbrt(3 * min(sizes[k[0]], sizes[k[1]]) / (4 * np.pi))
                 for k, m in faces.items() if m[10] >= min_dark * m[0]}
        ratio = {k: r for k, r in ratio.items() if r >= min_neck_ratio
                 or (CRACK_FACE and r >= CRACK_FACE[0] and faces[k][10] >= CRACK_FACE[1] * faces[k][0])}
        if not ratio:
            break
        (a, b), _ = max(ratio.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
        root[root == b] = a
        sizes[a] += sizes[b]
        joined: dict[tuple[int, int], np.ndarray] = {}
        for (p, q), m in faces.items():
            p, q = (a if p == b else p), (a if q == b else q)
            if p != q:
                joined[(min(p, q), max(p, q))] = joined.get((min(p, q), max(p, q)), 0) + m
        faces = joined
    return root


def merge_without_neck(lab: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Look-up table (``lut[lab]``) that joins watershed labels 1..n of ``lab`` meeting along a crack (``dark``:
    envelope voxels not solid) without a neck (:func:`neck_roots` with :data:`NECK_RATIO` and :data:`DARK_FACE`),
    the joined ids numbered 1..m in the order of their smallest member."""
    n = int(lab.max())
    root = neck_roots(label_faces(lab, dark), np.bincount(lab.ravel(), minlength=n + 1), NECK_RATIO, DARK_FACE)
    ids = np.unique(root[1:])
    lut = np.zeros(n + 1, np.int32)
    lut[1:] = np.searchsorted(ids, root[1:]) + 1
    return lut
