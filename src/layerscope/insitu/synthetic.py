"""Synthetic in situ series with known truth: drift, a layered-to-rock-salt front, voids, cracks.

Frames are rendered analytically (no interpolation of a master image), so sub-pixel drift, front
position and width, void areas and crack widths are exact by construction and the tests can compare
the analysis against them.

The lattice is the [100] projection of an O3 layered oxide (LiCoO2: a = 0.2815 nm,
c = 1.405 nm): close-packed cation layers ``c/6 = 0.234 nm`` apart alternate transition metal (TM)
and Li, with columns ``a*sqrt(3)/2 = 0.244 nm`` apart along a layer and each layer shifted by a third
of that (ABC stacking). HAADF intensity per column ~Z^1.7: TM columns 1, Li columns ~0.02, O ~0.06
(see ``/work/shared/design.md``). The layered order parameter ``s`` sets the cation occupancy:
TM layers hold ``(1 + s)/2`` TM, Li layers ``(1 - s)/2``; ``s = 0`` is disordered rock salt, in which
the 0.47 nm layer periodicity vanishes.

Coordinates: specimen positions ``(x_nm, y_nm)`` are those of the first frame (from its top-left
pixel corner, x right, y down). Frame ``t`` shows the specimen displaced by ``drift(t)`` (px): the
point ``(x, y)`` appears at ``(x + drift_x_px * p, y + drift_y_px * p)``. Angles are those of the unit
vector ``(cos a, sin a)`` in ``(x_nm, y_nm)``: 0 deg points right, 90 deg points down the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.special import ndtr

from layerscope.containers import ImageSeries
from layerscope.errors import InputError

__all__ = [
    "LayeredLattice",
    "FrontSpec",
    "VoidSpec",
    "CrackSpec",
    "ElectrolyteSpec",
    "SyntheticTruth",
    "random_walk_drift",
    "synthetic_series",
    "SeriesRenderer",
    "render_frame",
    "void_truth",
]

_SQRT2 = np.sqrt(2.0)
#: the 10-90 % width of a normal CDF profile is this many standard deviations
WIDTH_10_90_PER_SIGMA = 2.0 * 1.2815515655446004


@dataclass(frozen=True)
class LayeredLattice:
    """A layered oxide seen along [100] (LiCoO2 defaults).

    Attributes
    ----------
    layer_spacing_nm : float
        Distance between neighbouring cation layers (c/6), nm; the TM-TM layer period is twice this.
    column_spacing_nm : float
        Column spacing along a layer (a*sqrt(3)/2), nm.
    layer_angle_deg : float
        Direction along which the layers run (deg; 0 = horizontal, 90 = vertical in the image).
    column_sigma_nm : float
        Gaussian width of a projected column (probe and thermal smearing), nm.
    tm_intensity, li_intensity, o_intensity : float
        Relative HAADF intensity of a TM, Li and O column.
    """

    layer_spacing_nm: float = 0.2342
    column_spacing_nm: float = 0.2438
    layer_angle_deg: float = 0.0
    column_sigma_nm: float = 0.055
    tm_intensity: float = 1.0
    li_intensity: float = 0.02
    o_intensity: float = 0.06

    @property
    def layer_period_nm(self) -> float:
        """Period of the TM layers (the layered-phase fringe that rock salt lacks), nm."""
        return 2.0 * self.layer_spacing_nm

    @property
    def layer_normal_deg(self) -> float:
        """Direction of the layer normal (deg)."""
        return (self.layer_angle_deg + 90.0) % 180.0


@dataclass(frozen=True)
class FrontSpec:
    """A straight layered-to-rock-salt front.

    The order parameter is ``s = Phi((d - d_front(t)) / sigma)`` with ``d = x cos a + y sin a`` (nm,
    specimen coordinates) and ``Phi`` the normal CDF: transformed (rock salt) behind the front,
    pristine ahead of it. ``d_front(t) = position_nm + velocity_nm_per_s * t``, held at ``stop_nm``
    once reached.

    Attributes
    ----------
    position_nm, velocity_nm_per_s, direction_deg, width_nm : float
        Front position at t = 0, speed, propagation direction, and 10-90 % transition width (nm).
    stop_nm : float, optional
        Position at which the front stops.
    """

    position_nm: float
    velocity_nm_per_s: float
    direction_deg: float
    width_nm: float
    stop_nm: float | None = None

    def position_at(self, t_s: np.ndarray | float) -> np.ndarray:
        d = self.position_nm + self.velocity_nm_per_s * np.asarray(t_s, dtype=float)
        if self.stop_nm is not None:
            d = np.minimum(d, self.stop_nm) if self.velocity_nm_per_s >= 0 else np.maximum(d, self.stop_nm)
        return d

    def order(self, x_nm: np.ndarray, y_nm: np.ndarray, t_s: float) -> np.ndarray:
        a = np.deg2rad(self.direction_deg)
        d = x_nm * np.cos(a) + y_nm * np.sin(a)
        sigma = self.width_nm / WIDTH_10_90_PER_SIGMA
        return ndtr((d - float(self.position_at(t_s))) / sigma)


@dataclass(frozen=True)
class VoidSpec:
    """A flat-bottomed (faceted, prismatic) void: a disk of missing material through part of the foil.

    Attributes
    ----------
    x_nm, y_nm : float
        Centre (specimen coordinates).
    radius_nm : float
        Radius at nucleation.
    nucleation_s : float
        Time it appears.
    growth_nm_per_s : float
        Radial growth rate after nucleation.
    depth : float
        Fractional intensity loss inside (missing thickness / foil thickness in HAADF), 0..1.
    max_radius_nm : float, optional
        Radius at which growth stops.
    """

    x_nm: float
    y_nm: float
    radius_nm: float
    nucleation_s: float = 0.0
    growth_nm_per_s: float = 0.0
    depth: float = 0.35
    max_radius_nm: float | None = None

    def radius_at(self, t_s: float) -> float:
        if t_s < self.nucleation_s:
            return 0.0
        r = self.radius_nm + self.growth_nm_per_s * (t_s - self.nucleation_s)
        return float(min(r, self.max_radius_nm) if self.max_radius_nm is not None else r)


@dataclass(frozen=True)
class CrackSpec:
    """A straight crack: a dark band of ``width_nm`` and ``length_nm`` (flat ends) at ``angle_deg``."""

    x_nm: float
    y_nm: float
    length_nm: float
    width_nm: float
    angle_deg: float
    depth: float = 0.85
    appears_s: float = 0.0


@dataclass(frozen=True)
class ElectrolyteSpec:
    """Amorphous electrolyte (LiPON) on one side of a straight interface.

    ``(x_nm, y_nm)`` is a point of the interface and ``normal_deg`` points from the cathode into the
    electrolyte; the electrolyte's mean intensity is ``intensity`` (relative to the cathode, ~0.3
    for light-element LiPON in HAADF) with a smooth speckle of relative amplitude ``speckle``.
    """

    x_nm: float
    y_nm: float
    normal_deg: float
    intensity: float = 0.3
    speckle: float = 0.15

    def signed_distance(self, x_nm: np.ndarray, y_nm: np.ndarray) -> np.ndarray:
        """Distance from the interface (nm), positive inside the electrolyte."""
        a = np.deg2rad(self.normal_deg)
        return (x_nm - self.x_nm) * np.cos(a) + (y_nm - self.y_nm) * np.sin(a)


@dataclass
class SyntheticTruth:
    """What was put into a synthetic series.

    Attributes
    ----------
    drift_y_px, drift_x_px : ndarray
        Specimen displacement per frame (px), frame 0 = 0.
    times_s : ndarray
    pixel_size_nm : float
    lattice : LayeredLattice
    front : FrontSpec or None
    voids : list of VoidSpec
    cracks : list of CrackSpec
    electrolyte : ElectrolyteSpec or None
    """

    drift_y_px: np.ndarray
    drift_x_px: np.ndarray
    times_s: np.ndarray
    pixel_size_nm: float
    shape: tuple[int, int]
    lattice: LayeredLattice | None
    front: FrontSpec | None = None
    voids: list[VoidSpec] = field(default_factory=list)
    cracks: list[CrackSpec] = field(default_factory=list)
    electrolyte: ElectrolyteSpec | None = None
    texture_amplitude: float = 0.0

    def front_position_nm(self) -> np.ndarray:
        """True front position per frame (nm, along the propagation direction, specimen coordinates)."""
        if self.front is None:
            raise InputError("this synthetic series has no front")
        return self.front.position_at(self.times_s)


def random_walk_drift(n_frames: int, *, step_px: float, trend_px: tuple[float, float] = (0.0, 0.0),
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A sub-pixel drift path: linear trend plus a Gaussian random walk (px per frame), frame 0 at 0."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, step_px, size=(n_frames, 2))
    steps[0] = 0.0
    steps[1:] += np.asarray(trend_px, float)
    path = np.cumsum(steps, axis=0)
    return path[:, 0], path[:, 1]


def _lattice_columns(lattice: LayeredLattice, x_range: tuple[float, float], y_range: tuple[float, float]):
    """Column positions (nm) and kinds (0: TM layer, 1: Li layer, 2: O) covering a box."""
    phi = np.deg2rad(lattice.layer_angle_deg)
    el = np.array([np.cos(phi), np.sin(phi)])
    en = np.array([-np.sin(phi), np.cos(phi)])
    a = lattice.column_spacing_nm
    v = lattice.layer_spacing_nm * en + (a / 3.0) * el
    corners = np.array([[x, y] for x in x_range for y in y_range])
    # layer index k and column index j such that r = j*a*el + k*v
    basis = np.column_stack([a * el, v])
    jk = np.linalg.solve(basis, corners.T)
    j = np.arange(np.floor(jk[0].min()) - 2, np.ceil(jk[0].max()) + 3)
    k = np.arange(np.floor(jk[1].min()) - 2, np.ceil(jk[1].max()) + 3)
    jj, kk = np.meshgrid(j, k, indexing="xy")
    pos = jj.ravel()[:, None] * (a * el)[None, :] + kk.ravel()[:, None] * v[None, :]
    kind = (kk.ravel().astype(int) % 2).astype(np.int8)
    o_pos = pos + 0.5 * v[None, :]
    pos = np.vstack([pos, o_pos])
    kind = np.concatenate([kind, np.full(o_pos.shape[0], 2, np.int8)])
    keep = ((pos[:, 0] > x_range[0]) & (pos[:, 0] < x_range[1]) & (pos[:, 1] > y_range[0]) & (pos[:, 1] < y_range[1]))
    return pos[keep], kind[keep]


def _splat_gaussians(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, weights: np.ndarray,
                     sigma_px: float) -> np.ndarray:
    """Sum of Gaussians (peak value = weight) sampled at pixel centres; positions in pixel units."""
    h = int(np.ceil(4.0 * sigma_px))
    offs = np.arange(-h, h + 1)
    r0 = np.round(rows).astype(int)
    c0 = np.round(cols).astype(int)
    out = np.zeros(shape[0] * shape[1], np.float64)
    gy = np.exp(-0.5 * ((r0[:, None] + offs[None, :] - rows[:, None]) / sigma_px) ** 2)  # (n, w)
    gx = np.exp(-0.5 * ((c0[:, None] + offs[None, :] - cols[:, None]) / sigma_px) ** 2)
    rr = r0[:, None] + offs[None, :]
    cc = c0[:, None] + offs[None, :]
    for a in range(offs.size):
        ok_r = (rr[:, a] >= 0) & (rr[:, a] < shape[0])
        vals = (weights * gy[:, a])[:, None] * gx
        idx = rr[:, a][:, None] * shape[1] + cc
        ok = ok_r[:, None] & (cc >= 0) & (cc < shape[1])
        out += np.bincount(idx[ok], weights=vals[ok], minlength=out.size)
    return out.reshape(shape)


def _coverage(shape: tuple[int, int], inside, bbox: tuple[float, float, float, float], pixel_size_nm: float,
              drift_px: tuple[float, float], *, supersample: int = 5) -> np.ndarray:
    """Fraction of each pixel inside a shape (``inside(x_nm, y_nm) -> bool``, specimen coordinates)."""
    p = pixel_size_nm
    dy, dx = drift_px
    x0, y0, x1, y1 = bbox
    c_lo = max(int(np.floor((x0 / p) + dx)) - 1, 0)
    c_hi = min(int(np.ceil((x1 / p) + dx)) + 1, shape[1])
    r_lo = max(int(np.floor((y0 / p) + dy)) - 1, 0)
    r_hi = min(int(np.ceil((y1 / p) + dy)) + 1, shape[0])
    cov = np.zeros(shape, np.float64)
    if c_hi <= c_lo or r_hi <= r_lo:
        return cov
    sub = (np.arange(supersample) + 0.5) / supersample
    cols = (np.arange(c_lo, c_hi)[:, None] + sub[None, :]).ravel()
    rows = (np.arange(r_lo, r_hi)[:, None] + sub[None, :]).ravel()
    xs = (cols - dx) * p
    ys = (rows - dy) * p
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    mask = inside(xx, yy).astype(np.float64)
    block = mask.reshape(r_hi - r_lo, supersample, c_hi - c_lo, supersample).mean(axis=(1, 3))
    cov[r_lo:r_hi, c_lo:c_hi] = block
    return cov


def _crack_inside(c: CrackSpec):
    a = np.deg2rad(c.angle_deg)

    def inside(x, y):
        u = (x - c.x_nm) * np.cos(a) + (y - c.y_nm) * np.sin(a)
        w = -(x - c.x_nm) * np.sin(a) + (y - c.y_nm) * np.cos(a)
        return (np.abs(u) <= c.length_nm / 2) & (np.abs(w) <= c.width_nm / 2)

    return inside


def _smooth_field(shape_nm: tuple[float, float], spacing_nm: float, corr_nm: float, seed: int) -> np.ndarray:
    """A Gaussian random field of unit standard deviation, smoothed over ``corr_nm``.

    It is made on a grid at least eight correlation lengths wide (so that its statistics hold on
    small fields too) and cropped to ``shape_nm``.
    """
    rng = np.random.default_rng(seed)
    n = (int(np.ceil(shape_nm[0] / spacing_nm)) + 1, int(np.ceil(shape_nm[1] / spacing_nm)) + 1)
    big = tuple(max(k, int(np.ceil(8 * corr_nm / spacing_nm))) for k in n)
    f = ndi.gaussian_filter(rng.standard_normal(big), corr_nm / spacing_nm, mode="wrap")
    f /= f.std() + 1e-12
    return f[: n[0], : n[1]]


def render_frame(
    truth: SyntheticTruth,
    index: int,
    *,
    thickness_field: np.ndarray | None = None,
    speckle_field: np.ndarray | None = None,
    electrolyte_field: np.ndarray | None = None,
    speckle_spacing_nm: float = 0.1,
    electrolyte_spacing_nm: float = 0.1,
    field_origin_nm: tuple[float, float] = (0.0, 0.0),
    field_spacing_nm: float = 0.25,
    thickness_variation: float = 0.0,
) -> np.ndarray:
    """Noise-free intensity of frame ``index`` (float64), rendered at the frame's drift."""
    p = truth.pixel_size_nm
    shape = truth.shape
    dy, dx = float(truth.drift_y_px[index]), float(truth.drift_x_px[index])
    t = float(truth.times_s[index])
    lat = truth.lattice
    # specimen coordinates of the pixel centres of this frame
    yc = (np.arange(shape[0]) + 0.5 - dy) * p
    xc = (np.arange(shape[1]) + 0.5 - dx) * p
    if lat is None:  # a textured foil (lattice not resolved): speckle moving with the specimen
        img = 1.0 + truth.texture_amplitude * _sample(speckle_field, xc, yc, field_origin_nm, speckle_spacing_nm)
    else:
        # specimen box seen by this frame (with a margin for the column tails)
        margin = 5 * lat.column_sigma_nm + lat.layer_spacing_nm
        x_rng = (-dx * p - margin, (shape[1] - dx) * p + margin)
        y_rng = (-dy * p - margin, (shape[0] - dy) * p + margin)
        pos, kind = _lattice_columns(lat, x_rng, y_rng)
        if truth.front is not None:
            s = truth.front.order(pos[:, 0], pos[:, 1], t)
        else:
            s = np.ones(pos.shape[0])
        tm_frac = np.where(kind == 0, 0.5 * (1 + s), 0.5 * (1 - s))
        w = np.where(kind == 2, lat.o_intensity, tm_frac * lat.tm_intensity + (1 - tm_frac) * lat.li_intensity)
        rows = pos[:, 1] / p - 0.5 + dy
        cols = pos[:, 0] / p - 0.5 + dx
        img = _splat_gaussians(shape, rows, cols, w, lat.column_sigma_nm / p)
    factor = np.ones(shape)
    if thickness_field is not None and thickness_variation:
        factor *= 1.0 + thickness_variation * _sample(thickness_field, xc, yc, field_origin_nm, field_spacing_nm)
    # overlapping voids form one cavity (as when they coalesce): the missing fraction is the
    # largest of theirs, not the sum
    missing = np.zeros(shape)
    for v in truth.voids:
        r = v.radius_at(t)
        if r <= 0:
            continue
        cov = _coverage(shape, lambda x, y, v=v, r=r: (x - v.x_nm) ** 2 + (y - v.y_nm) ** 2 <= r * r,
                        (v.x_nm - r, v.y_nm - r, v.x_nm + r, v.y_nm + r), p, (dy, dx))
        np.maximum(missing, v.depth * cov, out=missing)
    factor *= 1.0 - missing
    for c in truth.cracks:
        if t < c.appears_s:
            continue
        ext = 0.5 * (c.length_nm + c.width_nm)
        cov = _coverage(shape, _crack_inside(c), (c.x_nm - ext, c.y_nm - ext, c.x_nm + ext, c.y_nm + ext), p, (dy, dx))
        factor *= 1.0 - c.depth * cov
    img *= factor
    if truth.electrolyte is not None:
        e = truth.electrolyte
        yy, xx = np.meshgrid(yc, xc, indexing="ij")
        # fraction of the pixel in the electrolyte from the signed distance of its centre
        frac = np.clip(0.5 + e.signed_distance(xx, yy) / p, 0.0, 1.0)
        mean_cathode = _mean_column_intensity(lat, p) if lat is not None else 1.0
        amorph = mean_cathode * e.intensity * np.ones(shape)
        if electrolyte_field is not None:
            amorph *= 1.0 + e.speckle * _sample(electrolyte_field, xc, yc, field_origin_nm, electrolyte_spacing_nm)
        img = (1 - frac) * img + frac * amorph
    return img


def _mean_column_intensity(lat: LayeredLattice, p: float) -> float:
    """Mean image intensity of the pristine lattice (per pixel) for the Gaussian columns."""
    cell_area = lat.column_spacing_nm * lat.layer_spacing_nm * 2  # TM + Li layer per cell
    per_cell = lat.tm_intensity + lat.li_intensity + 2 * lat.o_intensity
    gauss_area_px = 2 * np.pi * (lat.column_sigma_nm / p) ** 2
    return per_cell * gauss_area_px / (cell_area / p**2)


def _sample(field_: np.ndarray, xc: np.ndarray, yc: np.ndarray, origin: tuple[float, float], spacing: float) -> np.ndarray:
    yy, xx = np.meshgrid((yc - origin[1]) / spacing, (xc - origin[0]) / spacing, indexing="ij")
    return ndi.map_coordinates(field_, [yy, xx], order=1, mode="nearest")


class SeriesRenderer:
    """Renders the noisy frames of a synthetic series one at a time (for series too large for memory).

    Parameters are those of :func:`synthetic_series`; :attr:`truth` holds the truth and
    :meth:`frame` returns frame ``i`` (float32 counts, or intensity when ``counts_per_pixel`` is
    None). Frames are reproducible: frame ``i`` uses its own random stream derived from ``seed``.
    """

    def __init__(self, *, shape, pixel_size_nm, n_frames, frame_interval_s, lattice, drift_px, front, voids, cracks,
                 electrolyte, counts_per_pixel, thickness_variation, texture_amplitude, texture_nm, seed) -> None:
        if n_frames < 1:
            raise InputError(f"n_frames={n_frames} must be at least 1")
        if lattice is None and front is not None:
            raise InputError("a front needs a lattice (it is seen as the loss of the layer fringe); give lattice=")
        if drift_px is None:
            dy, dx = random_walk_drift(n_frames, step_px=0.7, trend_px=(0.3, -0.4), seed=seed + 1)
        else:
            dy, dx = (np.asarray(d, float) for d in drift_px)
            if dy.shape != (n_frames,) or dx.shape != (n_frames,):
                raise InputError(f"drift_px needs {n_frames} values per axis, got {dy.shape} and {dx.shape}")
        times = np.arange(n_frames) * float(frame_interval_s)
        self.truth = SyntheticTruth(dy, dx, times, float(pixel_size_nm), (int(shape[0]), int(shape[1])), lattice,
                                    front, list(voids), list(cracks), electrolyte,
                                    texture_amplitude=float(texture_amplitude) if lattice is None else 0.0)
        p = float(pixel_size_nm)
        pad = (max(np.abs(dx).max(), np.abs(dy).max()) + 4) * p
        self.origin = (-pad, -pad)
        extent = (shape[0] * p + 2 * pad, shape[1] * p + 2 * pad)
        self.spacing = 0.5  # the thickness field varies over 6 nm
        self.thick = _smooth_field(extent, self.spacing, 6.0, seed + 2) if thickness_variation else None
        self.electrolyte_spacing = 0.05
        self.electrolyte_field = (_smooth_field(extent, self.electrolyte_spacing, 0.4, seed + 3)
                                  if electrolyte is not None else None)
        self.speckle_spacing = texture_nm / 6.0
        self.speckle = _smooth_field(extent, self.speckle_spacing, texture_nm, seed + 4) if lattice is None else None
        self.thickness_variation = thickness_variation
        self.counts_per_pixel = counts_per_pixel
        self.mean_level = _mean_column_intensity(lattice, p) if lattice is not None else 1.0
        self.seed = seed

    def frame(self, i: int) -> np.ndarray:
        img = render_frame(self.truth, i, thickness_field=self.thick, speckle_field=self.speckle,
                           electrolyte_field=self.electrolyte_field, field_origin_nm=self.origin,
                           field_spacing_nm=self.spacing, speckle_spacing_nm=self.speckle_spacing,
                           electrolyte_spacing_nm=self.electrolyte_spacing,
                           thickness_variation=self.thickness_variation)
        if self.counts_per_pixel is None:
            return img.astype(np.float32)
        rng = np.random.default_rng([self.seed, i])
        return rng.poisson(img * (self.counts_per_pixel / self.mean_level)).astype(np.float32)


def synthetic_series(
    *,
    shape: tuple[int, int] = (256, 256),
    pixel_size_nm: float = 0.04,
    n_frames: int = 12,
    frame_interval_s: float = 1.0,
    lattice: LayeredLattice | None = LayeredLattice(),
    drift_px: tuple[Sequence[float], Sequence[float]] | None = None,
    front: FrontSpec | None = None,
    voids: Sequence[VoidSpec] = (),
    cracks: Sequence[CrackSpec] = (),
    electrolyte: ElectrolyteSpec | None = None,
    counts_per_pixel: float | None = 200.0,
    thickness_variation: float = 0.03,
    texture_amplitude: float = 0.15,
    texture_nm: float = 1.0,
    seed: int = 0,
) -> tuple[ImageSeries, SyntheticTruth]:
    """A synthetic in situ HAADF series and its truth.

    Parameters
    ----------
    shape : (int, int)
        Frame size (rows, cols).
    pixel_size_nm : float
    n_frames : int
    frame_interval_s : float
        Time between frames (s); frame ``i`` is at ``i * frame_interval_s``.
    lattice : LayeredLattice or None
        The atomic lattice; None for a lower-magnification movie where the lattice is not
        resolved: a foil with a speckle texture (relative amplitude ``texture_amplitude``,
        correlation length ``texture_nm``) instead.
    drift_px : (dy, dx), optional
        Drift per frame (px); default: a random walk of 0.7 px per frame with a (0.3, -0.4) px trend.
    front, voids, cracks, electrolyte
        The degradation features (see their classes).
    counts_per_pixel : float or None
        Mean detected counts per pixel in the pristine crystal (Poisson noise); None for no noise.
    thickness_variation : float
        Relative amplitude (standard deviation) of a smooth thickness variation of the foil (Gaussian
        random field smoothed over 6 nm) that moves with the specimen; it gives the frames
        low-frequency content, as real foils have.
    texture_amplitude, texture_nm : float
        The speckle of a lattice-free foil (used when ``lattice`` is None).
    seed : int

    Returns
    -------
    ImageSeries, SyntheticTruth
        Eager float32 frames (counts) with ``times_s`` and ``pixel_size_nm``.
    """
    r = SeriesRenderer(shape=shape, pixel_size_nm=pixel_size_nm, n_frames=n_frames, frame_interval_s=frame_interval_s,
                       lattice=lattice, drift_px=drift_px, front=front, voids=voids, cracks=cracks,
                       electrolyte=electrolyte, counts_per_pixel=counts_per_pixel,
                       thickness_variation=thickness_variation, texture_amplitude=texture_amplitude,
                       texture_nm=texture_nm, seed=seed)
    frames = np.empty((n_frames, *r.truth.shape), np.float32)
    for i in range(n_frames):
        frames[i] = r.frame(i)
    series = ImageSeries.from_array(frames, pixel_size_nm=pixel_size_nm, times_s=r.truth.times_s,
                                    metadata={"title": "synthetic in situ series", "signal_type": "HAADF"})
    return series, r.truth


def void_truth(truth: SyntheticTruth, *, min_diameter_nm: float = 0.0) -> pd.DataFrame:
    """Per frame: the true voids after merging overlapping disks (union-find on the geometry).

    Returns
    -------
    DataFrame
        ``frame, n_voids, void_area_nm2`` (area of the union of the disks, by a fine 0.01 nm raster
        inside each merged group) and ``n_voids_min`` (merged groups whose equivalent diameter is at
        least ``min_diameter_nm``).
    """
    rows = []
    for i, t in enumerate(truth.times_s):
        disks = [(v.x_nm, v.y_nm, v.radius_at(t)) for v in truth.voids if v.radius_at(t) > 0]
        parent = list(range(len(disks)))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for a in range(len(disks)):
            for b in range(a + 1, len(disks)):
                xa, ya, ra = disks[a]
                xb, yb, rb = disks[b]
                if np.hypot(xa - xb, ya - yb) < ra + rb:
                    parent[find(a)] = find(b)
        groups: dict[int, list[int]] = {}
        for a in range(len(disks)):
            groups.setdefault(find(a), []).append(a)
        areas = []
        for members in groups.values():
            ds = [disks[m] for m in members]
            if len(ds) == 1:
                areas.append(np.pi * ds[0][2] ** 2)
                continue
            x0 = min(d[0] - d[2] for d in ds)
            x1 = max(d[0] + d[2] for d in ds)
            y0 = min(d[1] - d[2] for d in ds)
            y1 = max(d[1] + d[2] for d in ds)
            h = 0.005
            yy, xx = np.mgrid[y0:y1:h, x0:x1:h]
            inside = np.zeros(xx.shape, bool)
            for (x, y, r) in ds:
                inside |= (xx + h / 2 - x) ** 2 + (yy + h / 2 - y) ** 2 <= r * r
            areas.append(inside.sum() * h * h)
        areas_a = np.asarray(areas, float)
        eq_d = 2 * np.sqrt(areas_a / np.pi) if areas_a.size else areas_a
        rows.append({"frame": i, "n_voids": len(groups), "void_area_nm2": float(areas_a.sum()),
                     "n_voids_min": int(np.sum(eq_d >= min_diameter_nm))})
    return pd.DataFrame(rows)
