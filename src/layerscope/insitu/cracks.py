"""Cracks: elongated dark features, their length and width (nm).

A crack is a dark feature (segmented as in :mod:`layerscope.insitu.voids`, outline at half depth)
whose second-moment ellipse is at least ``min_elongation`` times longer than wide. Its width is the
median over its skeleton (Zhang & Suen thinning, via scikit-image) of twice the distance to the
outline, ``2 * EDT - step`` (the distance transform measures to the centre of the first pixel
outside, half a sample beyond the outline), corrected for the smoothing blur of a band narrower
than a few sigma (:func:`band_width_from_outline`). The length is the outline's area divided by that
width, exact for a band of uniform width with flat ends, straight or curved.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy import optimize
from scipy.special import ndtr

__all__ = ["is_crack", "is_band", "band_width_from_outline", "measure_crack"]


def is_crack(major_nm: float, minor_nm: float, *, min_elongation: float = 3.0) -> bool:
    """True when a feature's moment ellipse is at least ``min_elongation`` times longer than wide."""
    return bool(minor_nm > 0 and major_nm / minor_nm >= min_elongation)


def is_band(measure: dict, *, min_elongation: float = 2.5, max_width_spread: float = 1.6) -> bool:
    """True when a measured feature is a band of fairly uniform width: a crack.

    Its length must be at least ``min_elongation`` widths and its local width must not vary more
    than ``max_width_spread`` (90th over 10th percentile along the skeleton): two voids that touch
    (a dumbbell, narrow at the neck) or a fragment cut by the frame edge are not cracks.
    """
    w, length = measure["width_outline_nm"], measure["length_nm"]
    if not (np.isfinite(w) and np.isfinite(length) and w > 0):
        return False
    spread = measure["width_p90_nm"] / max(measure["width_p10_nm"], 1e-12)
    return bool(length >= min_elongation * w and spread <= max_width_spread)


def band_width_from_outline(w_out_nm: float, sigma_nm: float, level: float) -> float:
    """Width of a flat-bottomed band whose Gaussian-blurred profile has its ``level`` outline ``w_out_nm`` apart.

    The blurred band of width ``w`` has the profile ``Phi((x + w/2)/s) - Phi((x - w/2)/s)`` (``Phi``
    the normal CDF) with depth ``2 Phi(w/2s) - 1`` at its centre; we solve
    ``profile(w_out / 2) = level * depth`` for ``w``. For ``w >> sigma`` this returns ``w_out``.
    """
    if not (w_out_nm > 0 and sigma_nm > 0):
        return float(w_out_nm)
    x = w_out_nm / 2.0

    def g(w: float) -> float:
        prof = ndtr((x + w / 2) / sigma_nm) - ndtr((x - w / 2) / sigma_nm)
        return float(prof - level * (2 * ndtr(w / (2 * sigma_nm)) - 1))

    lo, hi = 1e-4 * sigma_nm, w_out_nm + 10 * sigma_nm
    if g(lo) * g(hi) > 0:
        return float(w_out_nm)
    return float(optimize.brentq(g, lo, hi, xtol=1e-6))


def _skeleton(mask: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize

    return skeletonize(mask)


def _tangents(skel_rc: np.ndarray, radius: float) -> np.ndarray:
    """Unit tangent (drow, dcol) at every skeleton point from the principal axis of its neighbours."""
    out = np.empty((skel_rc.shape[0], 2))
    for k, p in enumerate(skel_rc):
        near = skel_rc[np.sum((skel_rc - p) ** 2, axis=1) <= radius**2]
        if near.shape[0] < 2:
            out[k] = (0.0, 1.0)
            continue
        c = np.cov((near - near.mean(axis=0)).T, bias=True)
        w, v = np.linalg.eigh(c)
        out[k] = v[:, 1]
    return out


def measure_crack(mask: np.ndarray, step_nm: float, *, smooth_nm: float, edge_level: float = 0.5,
                  contrast: np.ndarray | None = None) -> dict:
    """Length and width of a crack from its outline mask (and, better, its contrast map).

    Parameters
    ----------
    mask : ndarray of bool
        The crack outline (drawn at ``edge_level`` of its depth) on a grid of ``step_nm``.
    step_nm : float
        Grid step (nm).
    smooth_nm : float
        Sigma (nm) of the smoothing applied before segmentation.
    edge_level : float
    contrast : ndarray, optional
        Relative darkness (positive = darker) on the same grid as ``mask``, with a margin of at
        least the crack width around it. When given, the width is read from profiles across the
        crack at every skeleton point (sub-sample crossings of ``edge_level`` times the local
        depth); otherwise from the distance transform, ``2 * EDT - 1`` samples (biased by up to
        one sample).

    Returns
    -------
    dict
        ``length_nm``, ``width_nm`` (corrected for the blur), ``width_outline_nm`` (as drawn),
        ``width_p10_nm``/``width_p90_nm`` (spread of the local outline width along the crack).
    """
    padded = np.pad(mask, 1)
    skel = _skeleton(padded)
    local = None
    if contrast is not None:
        local = _profile_widths(np.pad(contrast, 1, mode="edge"), skel, edge_level, smooth_nm / step_nm)
    if local is None or local.size == 0:
        edt = ndi.distance_transform_edt(padded)
        local = 2.0 * edt[skel] - 1.0  # in grid steps
        if local.size == 0:
            local = np.array([2.0 * edt.max() - 1.0])
    w_out = float(np.median(local)) * step_nm
    width = band_width_from_outline(w_out, smooth_nm, edge_level)
    area_nm2 = float(mask.sum()) * step_nm**2
    return {
        "length_nm": area_nm2 / w_out if w_out > 0 else float("nan"),
        "width_nm": width,
        "width_outline_nm": w_out,
        "width_p10_nm": float(np.percentile(local, 10) * step_nm),
        "width_p90_nm": float(np.percentile(local, 90) * step_nm),
    }


def _crossings(t: np.ndarray, prof: np.ndarray, level: float, c: int) -> tuple[float, float] | None:
    """Outermost-first crossings of ``level`` on both sides of the centre sample ``c`` (linear interpolation)."""
    inside = prof >= level
    if not inside[c] or inside.all():
        return None
    out_r = ~inside[c:]
    out_l = ~inside[: c + 1][::-1]
    if not out_r.any() or not out_l.any():
        return None
    right = c + int(np.argmax(out_r))
    left = c - int(np.argmax(out_l))
    dt = t[1] - t[0]
    tr = t[right - 1] + (prof[right - 1] - level) / (prof[right - 1] - prof[right]) * dt
    tl = t[left + 1] - (prof[left + 1] - level) / (prof[left + 1] - prof[left]) * dt
    return tl, tr


def _profile_widths(contrast: np.ndarray, skel: np.ndarray, edge_level: float, sigma_steps: float = 3.0) -> np.ndarray:
    """Full width (in samples) at ``edge_level`` of the local depth, across the crack at each skeleton point.

    The depth is measured from the profile's own baseline (the median beyond 3 sigma of either
    edge), so an error of the background estimate under a large dark feature cancels.
    """
    rc = np.argwhere(skel).astype(float)
    if rc.shape[0] < 3:
        return np.empty(0)
    tang = _tangents(rc, radius=4.0)
    normal = np.column_stack([-tang[:, 1], tang[:, 0]])
    half = max(contrast.shape) / 2.0
    t = np.arange(-half, half + 0.25, 0.25)
    c = t.size // 2
    widths = []
    for p, nrm in zip(rc, normal):
        pts = p[None, :] + t[:, None] * nrm[None, :]
        inside_img = ((pts[:, 0] >= 0) & (pts[:, 0] <= contrast.shape[0] - 1)
                      & (pts[:, 1] >= 0) & (pts[:, 1] <= contrast.shape[1] - 1))
        prof = ndi.map_coordinates(contrast, pts.T, order=1, mode="nearest")
        depth = prof[c - 4 : c + 5].max()
        first = _crossings(t, prof, edge_level * depth, c)
        if first is None:
            continue
        tl, tr = first
        out = inside_img & ((t < tl - 3 * sigma_steps) | (t > tr + 3 * sigma_steps))
        if out.sum() >= 8:
            base = float(np.median(prof[out]))
            second = _crossings(t, prof, base + edge_level * (depth - base), c)
            if second is None:
                continue
            tl, tr = second
        widths.append(tr - tl)
    return np.asarray(widths)
