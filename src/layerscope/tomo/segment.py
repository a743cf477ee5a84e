"""Particles, cracks and pores in a reconstructed or segmented volume.

1. Solid: voxels brighter than halfway between the particle and the epoxy grey levels (the top and
   bottom classes of a multi-Otsu split after a light Gaussian smoothing), or one label of a
   segmented volume.
2. Particle envelopes: the solid, closed with a ball that bridges cracks up to the largest crack
   width (so that a crack open to the surface stays inside its particle), holes filled.
3. Touching particles are split by a watershed on the distance transform, seeded by its h-maxima
   (one seed per particle; ``h`` suppresses the ridge of an elongated particle).
4. Dark features inside a particle (envelope but not solid) are cracks when sheet-like (the
   smallest principal extent of the feature below ``max_flatness`` times the middle one) and pores
   otherwise; features shared by two particles (more than 20 % of the voxels in a second one) are
   the gap between them, and features open to the outside that reach no deeper than the closing
   radius are surface dents: both are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["Segmentation", "solid_mask", "particle_labels", "dark_features", "feature_shape", "grey_levels", "sample_step"]


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
    env = ndi.binary_fill_holes(closed_envelope(solid, close_voxels))
    lab, _ = split_envelope(env, split=split, h_voxels=h_voxels)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    remap = np.zeros(sizes.size, np.int32)
    remap[keep] = np.arange(1, keep.sum() + 1)
    return remap[lab]


def closed_envelope(solid: np.ndarray, close_voxels: int) -> np.ndarray:
    """The solid closed with a ball of ``close_voxels`` (zero outside the array), or-ed with the solid."""
    if close_voxels <= 0:
        return solid
    pad = close_voxels + 1
    env = ndi.binary_closing(np.pad(solid, pad), structure=_ball(close_voxels))[pad:-pad, pad:-pad, pad:-pad]
    return env | solid


def split_envelope(env: np.ndarray, *, split: bool, h_voxels: float) -> tuple[np.ndarray, np.ndarray]:
    """Particle ids of the filled envelope and the seeds that number them (in raster order of their
    first voxel): watershed of the distance transform from its h-maxima (26-connected seeds), or
    the 26-connected components (their own seeds)."""
    from skimage.segmentation import watershed

    if not split:
        lab = ndi.label(env, structure=np.ones((3, 3, 3)))[0]
        return lab, lab
    from skimage.morphology import h_maxima

    edt = ndi.distance_transform_edt(env)
    markers, _ = ndi.label(h_maxima(edt, h_voxels), structure=np.ones((3, 3, 3)))
    return watershed(-edt, markers, mask=env), markers


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
