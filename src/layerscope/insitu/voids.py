"""Voids and pores: dark-contrast features in HAADF (missing material) and dark-contrast HRTEM.

Each frame is low-passed (a Gaussian wider than the lattice period, applied in Fourier space, so the
lattice fringes vanish), divided by a local background (normalised convolution, Knutsson & Westin
1993, leaving out the electrolyte and the features themselves) to give the relative contrast
``c = I / B - 1``. A feature is a connected region whose deepest point is darker than
``max(threshold_sigma * noise, min_contrast)``; its outline is drawn at ``edge_level`` (default
half) of its own depth, which puts the edge of a flat-bottomed (faceted) void where it is,
whatever its depth (the half-maximum criterion of a blurred step). Elongated features are handed to
:mod:`layerscope.insitu.cracks`.

The segmentation runs on a grid binned by ``bin`` (chosen so that the smoothing kernel still spans
about two samples); lengths and areas are converted back to nm and nm^2.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.fft as sfft
from scipy import ndimage as ndi

from layerscope.errors import InputError
from layerscope.insitu.registration import FrameSpectrum

__all__ = ["VoidParams", "SegmentationGrid", "smoothed_frame", "relative_contrast", "segment_dark",
           "DarkFeature", "segment_frame", "features_table", "disk_radius_from_outline"]


@dataclass(frozen=True)
class VoidParams:
    """Options of the dark-feature segmentation.

    Attributes
    ----------
    smooth_nm : float
        Gaussian sigma (nm) of the low-pass that removes the lattice; a little over half the largest
        lattice period (0.25 nm for the 0.47 nm layer fringe).
    background_nm : float
        Gaussian sigma (nm) of the local background; several times the largest void.
    threshold_sigma : float
        A feature's deepest point must be this many noise sigmas below the background...
    min_contrast : float
        ...and at least this relative contrast (0.08 = 8 % darker).
    edge_level : float
        Outline at this fraction of each feature's depth (0.5: half depth, right for flat-bottomed
        voids; use about 0.2 for spherical voids, whose contrast falls off towards the rim).
    min_diameter_nm : float
        Smallest equivalent diameter kept (nm); smaller features are treated as noise.
    polarity : str
        ``"dark"`` (HAADF, most HRTEM conditions) or ``"bright"`` (over-focused HRTEM).
    """

    smooth_nm: float = 0.25
    background_nm: float = 4.0
    threshold_sigma: float = 5.0
    min_contrast: float = 0.08
    edge_level: float = 0.5
    min_diameter_nm: float = 0.5
    polarity: str = "dark"

    def __post_init__(self) -> None:
        for name in ("smooth_nm", "background_nm", "threshold_sigma", "min_contrast", "min_diameter_nm"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"{_CLI.get(name, name)} {v!r}: give a positive number")
        if not 0 < self.edge_level < 1:
            raise InputError(f"--edge-level {self.edge_level!r}: give a fraction of the depth between 0 and 1")
        if self.polarity not in ("dark", "bright"):
            raise InputError(f"void polarity {self.polarity!r} must be 'dark' or 'bright' (--bright-voids)")
        if self.background_nm <= 3 * self.smooth_nm:
            raise InputError(
                f"--background-nm {self.background_nm:g} must be over 3x --smooth-nm {self.smooth_nm:g} "
                f"(several void diameters); raise --background-nm"
            )


#: the command-line options of the void parameters (for messages)
_CLI = {"smooth_nm": "--smooth-nm", "background_nm": "--background-nm", "min_contrast": "--min-contrast",
        "min_diameter_nm": "--min-diameter-nm", "threshold_sigma": "void threshold_sigma"}


def _interp_index(n_big: int, n_small: int, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours and weight for linear interpolation from block centres (block size ``f``) to ``n_big`` samples."""
    u = (np.arange(n_big) + 0.5) / f - 0.5
    u = np.clip(u, 0, n_small - 1)
    lo = np.floor(u).astype(int)
    hi = np.minimum(lo + 1, n_small - 1)
    return lo, hi, (u - lo).astype(np.float32)


class SegmentationGrid:
    """Everything that depends only on the frame shape and the options (built once per task).

    Parameters
    ----------
    shape : (int, int)
        Frame shape.
    pixel_size_nm : float
    params : VoidParams
    """

    def __init__(self, shape: tuple[int, int], pixel_size_nm: float, params: VoidParams) -> None:
        n, m = shape
        self.shape = (n, m)
        self.pixel_size_nm = float(pixel_size_nm)
        self.params = params
        sigma_px = params.smooth_nm / pixel_size_nm
        b = max(1, int(np.floor(sigma_px / 2.0)))
        while b > 1 and (n % b or m % b):
            b -= 1
        self.bin = b
        self.small_shape = (n // b, m // b)
        self.step_nm = b * pixel_size_nm
        # the rows of the full spectrum that make up the small one: its non-negative frequencies
        # (one more than the negative ones when the small size is odd), then the negative ones
        ns, ms = self.small_shape
        self._rows = np.r_[0 : (ns + 1) // 2, n - ns // 2 : n]
        self._ncols = ms // 2 + 1
        fy = sfft.fftfreq(n)[self._rows].astype(np.float32)
        fx = sfft.rfftfreq(m)[: self._ncols].astype(np.float32)
        self.transfer = np.exp(-2 * np.pi**2 * sigma_px**2 * (fy[:, None] ** 2 + fx[None, :] ** 2)).astype(np.float32)
        # border band wrapped by the Fourier low-pass: 3 sigma
        self.margin_px = int(np.ceil(3.0 * sigma_px))
        mb = int(np.ceil(self.margin_px / b))
        valid = np.zeros(self.small_shape, bool)
        valid[mb : self.small_shape[0] - mb, mb : self.small_shape[1] - mb] = True
        self.valid = valid
        # background: block sums of f x f binned pixels, Gaussian on the blocks, linear interpolation back
        bg_px = params.background_nm / self.step_nm
        self.block = f = max(1, int(np.floor(bg_px / 2.0)))
        self.blocks_shape = (-(-self.small_shape[0] // f), -(-self.small_shape[1] // f))
        self.bg_sigma_blocks = bg_px / f
        self.iy = _interp_index(self.small_shape[0], self.blocks_shape[0], f)
        self.ix = _interp_index(self.small_shape[1], self.blocks_shape[1], f)
        self.outline_table = _outline_table(params.edge_level)
        rows, cols = np.indices(self.small_shape, dtype=np.float64)
        self.row_index, self.col_index = rows, cols
        self.min_area_px = np.pi * (params.min_diameter_nm / 2) ** 2 / self.step_nm**2

    def centres_nm(self) -> tuple[np.ndarray, np.ndarray]:
        """x and y (nm) of the binned samples (raw frame coordinates)."""
        b, p = self.bin, self.pixel_size_nm
        return (np.arange(self.small_shape[1]) * b + 0.5) * p, (np.arange(self.small_shape[0]) * b + 0.5) * p

    def block_sum(self, a: np.ndarray) -> np.ndarray:
        f = self.block
        ny, nx = self.blocks_shape
        pad = np.zeros((ny * f, nx * f), np.float32)
        pad[: a.shape[0], : a.shape[1]] = a
        return pad.reshape(ny, f, nx, f).sum(axis=(1, 3))


def smoothed_frame(spectrum: "FrameSpectrum", grid: SegmentationGrid) -> np.ndarray:
    """The low-passed frame on the binned grid, from its spectrum (one small inverse FFT).

    Only the low-frequency corner of the frame's full ``rfft2`` is used (the periodic component
    plus the smooth border component, :class:`~layerscope.insitu.registration.FrameSpectrum`).
    Sample ``(i, j)`` is the low-passed intensity at frame pixel ``(bin * i, bin * j)``.
    """
    b = grid.bin
    crop = spectrum.full(grid._rows, grid._ncols) * grid.transfer
    out = sfft.irfft2(crop, s=grid.small_shape, workers=1)
    return (out / (b * b)).astype(np.float32, copy=False)


def relative_contrast(
    smoothed: np.ndarray, grid: SegmentationGrid, *, mask: np.ndarray | None = None, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``I / B - 1``, with ``B`` the normalised convolution of ``I`` over ``valid & mask & ~exclude``.

    Parameters
    ----------
    smoothed : ndarray
        Output of :func:`smoothed_frame`.
    grid : SegmentationGrid
    mask : ndarray of bool, optional
        Where the specimen (cathode) is; background is averaged there only.
    exclude : ndarray of bool, optional
        Pixels to leave out of the background (features found in a first pass).
    """
    # the border band (wrapped by the Fourier low-pass) never enters the background
    w = grid.valid.astype(np.float32) if mask is None else (mask & grid.valid).astype(np.float32)
    if exclude is not None:
        w = w * (~exclude)
    num = ndi.gaussian_filter(grid.block_sum(smoothed * w), grid.bg_sigma_blocks, mode="nearest")
    den = ndi.gaussian_filter(grid.block_sum(w), grid.bg_sigma_blocks, mode="nearest")
    good = den > 1e-3 * den.max()
    small = np.where(good, num / np.where(good, den, 1.0), np.nan)
    if not good.all():
        small = np.where(good, small, np.nanmedian(small) if good.any() else 1.0)
    small = small.astype(np.float32)
    # separable linear interpolation from block centres back to every sample
    ly, hy, ty = grid.iy
    lx, hx, tx = grid.ix
    cols = small[:, lx] * (1 - tx) + small[:, hx] * tx
    bg = cols[ly] * (1 - ty)[:, None] + cols[hy] * ty[:, None]
    floor = np.float32(1e-6) * max(float(np.abs(small).max()), 1e-30)
    np.maximum(bg, floor, out=bg)
    rel = smoothed / bg
    rel -= 1.0
    if grid.params.polarity == "bright":
        rel = -rel
    return rel.astype(np.float32, copy=False)


def disk_radius_from_outline(r_nm: np.ndarray | float, sigma_nm: float, level: float, *,
                             table: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Radius of a flat-bottomed disk whose Gaussian-blurred image has its ``level`` outline at ``r_nm``.

    The blurred disk's profile is ``f(r) = P(|X| <= R)`` with ``X ~ N((r, 0), sigma^2 I)``, i.e. the
    non-central chi-square CDF ``F(R^2/sigma^2; 2, r^2/sigma^2)`` (Marcum Q function); its depth is
    ``f(0) = 1 - exp(-R^2 / 2 sigma^2)``. We solve ``f(r_nm) = level * f(0)`` for ``R`` (through a
    table of ``r(R)`` inverted by interpolation). For ``R >> sigma`` this gives ``R = r`` at
    ``level = 0.5``; for small voids the outline shrinks (by about ``sigma^2 / 2R``) and this puts
    it back.
    """
    big = table if table is not None else _outline_table(float(level))
    rs = np.asarray(r_nm, float) / sigma_nm
    out = np.interp(rs, big[1], big[0], left=np.nan, right=np.nan)
    # beyond the table (R > 12 sigma) the outline is the edge: R = r
    out = np.where(rs > big[1][-1], rs, out)
    out = np.where(rs < big[1][0], np.nan, out)
    return out * sigma_nm


@functools.lru_cache(maxsize=8)
def _outline_table(level: float) -> tuple[np.ndarray, np.ndarray]:
    """``(R/sigma, r/sigma)`` pairs of :func:`disk_radius_from_outline`, for R/sigma in 0.3..12.

    The blurred disk profile is integrated over the disk radius (sigma = 1):
    ``f(r; R) = int_0^R rho exp(-(r - rho)^2 / 2) i0e(r rho) d rho`` (``i0e`` the scaled Bessel
    function), cumulatively, so one pass gives every R.
    """
    from scipy.integrate import cumulative_trapezoid
    from scipy.special import i0e

    rho = np.linspace(0.0, 12.0, 401)
    r = np.linspace(0.0, 14.0, 701)
    integrand = rho[None, :] * np.exp(-0.5 * (r[:, None] - rho[None, :]) ** 2) * i0e(r[:, None] * rho[None, :])
    f = cumulative_trapezoid(integrand, rho, axis=1, initial=0.0)  # f[r, R]
    big_r = rho[10:]  # R >= 0.3
    f = f[:, 10:]
    g = f - level * f[0][None, :]  # decreasing in r
    idx = np.argmax(g < 0, axis=0)
    cols = np.arange(big_r.size)
    ok = (idx > 0) & (g[idx, cols] < 0)
    i0 = np.maximum(idx - 1, 0)
    g0, g1 = g[i0, cols], g[idx, cols]
    r_out = r[i0] + (r[idx] - r[i0]) * g0 / (g0 - g1)
    big_r, r_out = big_r[ok], r_out[ok]
    keep = np.r_[True, np.diff(r_out) > 0]
    return big_r[keep], r_out[keep]


def _robust_sigma(values: np.ndarray) -> float:
    if values.size == 0:
        return float("nan")
    v = values[:: max(1, values.size // 20000)]
    med = np.median(v)
    return float(1.4826 * np.median(np.abs(v - med)))


@dataclass
class DarkFeature:
    """One segmented dark feature of one frame (raw frame coordinates, before drift correction).

    Attributes
    ----------
    row0, col0 : int
        Top-left corner of ``mask`` on the binned grid.
    mask : ndarray of bool
        The feature on the binned grid (its bounding box).
    area_nm2 : float
        Projected area (nm^2), corrected for the smoothing: compact features by the flat-bottomed
        disk model (:func:`disk_radius_from_outline`), others by ``pi * smooth_nm**2`` (the area an
        outline at half depth loses on any smooth closed shape, to first order in the curvature).
    area_outline_nm2 : float
        Area inside the outline as drawn.
    y_nm, x_nm : float
        Darkness-weighted centroid (nm, raw frame coordinates).
    depth : float
        Relative contrast at the deepest point (0..1, e.g. 0.3 = 30 % darker than the background).
    mean_contrast : float
        Mean relative darkness inside the outline.
    major_nm, minor_nm, orientation_deg : float
        Lengths (nm) of a uniform ellipse with the same second moments, and the major axis direction.
    truncated : bool
        Touches the edge of the analysed region (frame margin or electrolyte): its area is a lower bound.
    interface_distance_nm : float
        Shortest distance from the outline to the detected electrolyte (NaN when none was detected).
    """

    row0: int
    col0: int
    mask: np.ndarray
    area_nm2: float
    area_outline_nm2: float
    y_nm: float
    x_nm: float
    depth: float
    mean_contrast: float
    major_nm: float
    minor_nm: float
    orientation_deg: float
    truncated: bool
    interface_distance_nm: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def equivalent_diameter_nm(self) -> float:
        return float(2.0 * np.sqrt(self.area_nm2 / np.pi))


def _moments(mask: np.ndarray, step: float) -> tuple[float, float, float, float, float]:
    rr, cc = np.nonzero(mask)
    cy, cx = rr.mean(), cc.mean()
    if rr.size < 2:
        return cy, cx, step, step, 0.0
    dr, dc = rr - cy, cc - cx
    sxx, syy, sxy = float(dc @ dc) / rr.size, float(dr @ dr) / rr.size, float(dc @ dr) / rr.size
    cov = np.array([[sxx, sxy], [sxy, syy]]) + np.eye(2) / 12.0
    evals, evecs = np.linalg.eigh(cov)
    major = 4.0 * np.sqrt(max(evals[1], 0)) * step
    minor = 4.0 * np.sqrt(max(evals[0], 0)) * step
    ang = float(np.rad2deg(np.arctan2(evecs[1, 1], evecs[0, 1])) % 180.0)
    return cy, cx, major, minor, ang


def segment_dark(
    rel: np.ndarray,
    grid: SegmentationGrid,
    *,
    region: np.ndarray,
    noise: float,
    interface_distance: np.ndarray | None = None,
) -> list[DarkFeature]:
    """Find dark features in a relative-contrast map.

    Parameters
    ----------
    rel : ndarray
        Relative contrast (negative = darker), binned grid.
    grid : SegmentationGrid
    region : ndarray of bool
        Where to look (frame minus the border band, minus the electrolyte).
    noise : float
        Robust sigma of ``rel`` in the region.
    interface_distance : ndarray, optional
        Distance (nm) of every binned sample to the electrolyte.

    Returns
    -------
    list of DarkFeature
        Stages: :func:`_dark_outlines` (seed level and outlines), :func:`_feature_sums` (per-feature
        moments), :func:`_touching_region_edge`, then :func:`_dark_feature` per kept label.
    """
    prm = grid.params
    seed = max(prm.threshold_sigma * noise, prm.min_contrast) if np.isfinite(noise) else prm.min_contrast
    found = _dark_outlines(rel, grid, region, seed)
    if found is None:
        return []
    labels, n, inside, dark_c = found
    flat = np.flatnonzero(inside)
    lab = labels.ravel()[flat]
    nb = n + 1
    sums = _feature_sums(inside, dark_c, flat, lab, nb)
    touching = _touching_region_edge(region, flat, lab, nb)
    if interface_distance is not None:
        dist = np.full(nb, np.inf)
        np.minimum.at(dist, lab, interface_distance.ravel()[flat])
    else:
        dist = np.full(nb, np.nan)
    objects = ndi.find_objects(labels)
    out: list[DarkFeature] = []
    for k in range(1, nb):
        if sums["depth"][k] < seed or sums["area_px"][k] < grid.min_area_px:
            continue
        out.append(_dark_feature(k, objects[k - 1], labels, sums, rel, grid,
                                 truncated=bool(touching[k]), distance_nm=float(dist[k])))
    return out


def _dark_outlines(rel: np.ndarray, grid: SegmentationGrid, region: np.ndarray, seed: float):
    """Labelled outlines of the dark features, or None when there is none.

    The outline is drawn at ``edge_level`` of the *local* depth: the darkest value within rho, about
    2.5 smoothing sigmas (where a flat-bottomed void reaches its plateau). Features of different
    depth that touch (overlapping voids compound in projection) each keep their own outline.

    Returns
    -------
    (labels, n, inside, dark_c) or None
        Label image, number of labels, the outlined samples and the darkness of the candidates.
    """
    prm = grid.params
    low = prm.edge_level * seed
    dark = np.where(region, -rel, 0.0).astype(np.float32)
    cand = dark > low
    if not cand.any():
        return None
    rho = max(1, int(np.ceil(2.5 * prm.smooth_nm / grid.step_nm)))
    dark_c = np.where(cand, dark, np.float32(0))
    local_depth = ndi.maximum_filter(dark_c, size=2 * rho + 1, mode="constant")
    inside = cand & (dark_c >= prm.edge_level * local_depth)
    labels, n = ndi.label(inside, structure=ndi.generate_binary_structure(2, 1))
    if n == 0:
        return None
    return labels, n, inside, dark_c


def _feature_sums(inside: np.ndarray, dark_c: np.ndarray, flat: np.ndarray, lab: np.ndarray,
                  nb: int) -> dict[str, np.ndarray]:
    """Per-feature sums in one pass each, over the feature samples only (a few % of the grid).

    Returns
    -------
    dict of ndarray
        ``area_px``, ``depth``, the first and second moments of row/column (``s_r`` ... ``s_rc``)
        and the darkness-weighted sums ``w_sum``, ``w_r``, ``w_c``; index = label.
    """
    rr, cc = np.divmod(flat, inside.shape[1])
    rr, cc = rr.astype(float), cc.astype(float)
    dv = dark_c.ravel()[flat].astype(float)
    depth = np.zeros(nb)
    np.maximum.at(depth, lab, dv)

    def total(weights=None):
        return np.bincount(lab, weights=weights, minlength=nb)

    return {"area_px": total().astype(float), "depth": depth, "s_r": total(rr), "s_c": total(cc),
            "s_rr": total(rr * rr), "s_cc": total(cc * cc), "s_rc": total(rr * cc),
            "w_sum": total(dv), "w_r": total(dv * rr), "w_c": total(dv * cc)}


def _touching_region_edge(region: np.ndarray, flat: np.ndarray, lab: np.ndarray, nb: int) -> np.ndarray:
    """Per label: a feature sample next to one outside the analysed region (or the frame edge)."""
    outside = ~region
    edge = np.zeros(region.shape, bool)
    edge[1:, :] |= outside[:-1, :]
    edge[:-1, :] |= outside[1:, :]
    edge[:, 1:] |= outside[:, :-1]
    edge[:, :-1] |= outside[:, 1:]
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    touching = np.zeros(nb, bool)
    touching[lab[edge.ravel()[flat]]] = True
    return touching


def _dark_feature(k: int, sl: tuple, labels: np.ndarray, sums: dict[str, np.ndarray], rel: np.ndarray,
                  grid: SegmentationGrid, *, truncated: bool, distance_nm: float) -> DarkFeature:
    """The :class:`DarkFeature` of label ``k`` (bounding box ``sl``) from its sums."""
    prm = grid.params
    step = grid.step_nm
    fmask = labels[sl] == k
    a = sums["area_px"][k]
    mr, mc = sums["s_r"][k] / a, sums["s_c"][k] / a
    cov = np.array([[sums["s_cc"][k] / a - mc * mc, sums["s_rc"][k] / a - mr * mc],
                    [sums["s_rc"][k] / a - mr * mc, sums["s_rr"][k] / a - mr * mr]]) + np.eye(2) / 12.0
    evals, evecs = np.linalg.eigh(cov)
    major = 4.0 * np.sqrt(max(evals[1], 0)) * step
    minor = 4.0 * np.sqrt(max(evals[0], 0)) * step
    ang = float(np.rad2deg(np.arctan2(evecs[1, 1], evecs[0, 1])) % 180.0)
    # centroid weighted by the darkness inside the outline: sub-sample precision
    cy, cx = sums["w_r"][k] / sums["w_sum"][k], sums["w_c"][k] / sums["w_sum"][k]
    area = float(a * step * step)
    if minor > 0 and major / minor < 2.0:  # compact: undo the outline's shrinkage (flat-bottomed disk)
        radius = float(disk_radius_from_outline(np.sqrt(area / np.pi), prm.smooth_nm, prm.edge_level,
                                                table=grid.outline_table))
        area_corr = float(np.pi * radius**2) if np.isfinite(radius) else area
    else:
        # an outline at half depth of a blurred smooth shape moves in by sigma^2 * curvature / 2;
        # integrated over a closed outline (total curvature 2 pi) the area lost is pi sigma^2
        area_corr = area + np.pi * prm.smooth_nm**2
    row0, col0 = sl[0].start, sl[1].start
    extra = {}
    if minor > 0 and major / minor >= 2.0:  # elongated: keep the contrast around it (cracks)
        m = int(max(fmask.shape))
        a0, b0 = max(row0 - m, 0), max(col0 - m, 0)
        a1, b1 = min(row0 + fmask.shape[0] + m, rel.shape[0]), min(col0 + fmask.shape[1] + m, rel.shape[1])
        extra["contrast"] = -rel[a0:a1, b0:b1].copy()
        extra["contrast_origin"] = (a0, b0)
    b, p = grid.bin, grid.pixel_size_nm
    return DarkFeature(
        row0=int(row0), col0=int(col0), mask=fmask,
        area_nm2=area_corr, area_outline_nm2=area,
        y_nm=float((cy * b + 0.5) * p), x_nm=float((cx * b + 0.5) * p),
        depth=float(sums["depth"][k]), mean_contrast=float(sums["w_sum"][k] / a),
        major_nm=float(major), minor_nm=float(minor), orientation_deg=ang,
        truncated=truncated, interface_distance_nm=distance_nm, extra=extra,
    )


def segment_frame(
    spectrum: "FrameSpectrum",
    grid: SegmentationGrid,
    *,
    cathode: np.ndarray | None = None,
    interface_distance: np.ndarray | None = None,
) -> tuple[list[DarkFeature], dict[str, float]]:
    """Dark features of one frame from its spectrum (background refined until the left-out set settles).

    Returns
    -------
    features : list of DarkFeature
    stats : dict
        ``analysed_area_nm2`` (frame minus border band and electrolyte), ``noise`` (robust sigma of
        the relative contrast) and ``threshold`` (the depth a feature needed).
    """
    sm = smoothed_frame(spectrum, grid)
    region = grid.valid if cathode is None else (grid.valid & cathode)
    prm = grid.params
    # background by normalised convolution, leaving out everything darker than 3 noise sigmas
    # (grown by 2 smoothing sigmas for the blurred rims); repeated because large dark features
    # pull the first background down and hide their own rims
    grow = max(1, int(round(2 * prm.smooth_nm / grid.step_nm)))
    excl = None
    n_excl = 0
    for _ in range(3):
        rel = relative_contrast(sm, grid, mask=cathode, exclude=excl)
        keep = region if excl is None else region & ~excl
        noise = _robust_sigma(rel[keep])
        dark = (rel < -max(3.0 * noise, 0.25 * prm.min_contrast)) & region
        if not dark.any():
            break
        new = ndi.uniform_filter(dark.astype(np.float32), size=2 * grow + 1) > 1e-3
        n_new = int(new.sum())
        if excl is not None and abs(n_new - n_excl) <= 0.1 * max(n_excl, 1):
            break  # settled (within 10 % of the left-out area)
        excl, n_excl = new, n_new
    feats = segment_dark(rel, grid, region=region, noise=noise, interface_distance=interface_distance)
    seed = max(prm.threshold_sigma * noise, prm.min_contrast) if np.isfinite(noise) else prm.min_contrast
    return feats, {"analysed_area_nm2": float(region.sum() * grid.step_nm**2), "noise": noise, "threshold": seed}


def features_table(features: list[DarkFeature]) -> pd.DataFrame:
    """The scalar attributes of features as a table (no masks)."""
    cols = ["x_nm", "y_nm", "area_nm2", "area_outline_nm2", "equivalent_diameter_nm", "depth", "mean_contrast", "major_nm",
            "minor_nm", "orientation_deg", "truncated", "interface_distance_nm"]
    return pd.DataFrame([{c: getattr(f, c) for c in cols} for f in features], columns=cols)
