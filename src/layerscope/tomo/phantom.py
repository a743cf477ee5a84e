"""Synthetic cracked cathode particles with known truth, and their simulated X-ray projections.

Touching spheres/ellipsoids of active material, cracks of known width and orientation (planar
discs, curved sheets on a sphere or cylinder, wavy sheets, radial half-planes meeting on a line),
round pores, a carbon-binder coating and epoxy around them, as attenuation per voxel; forward
projected slice by slice through ASTRA (strip projector, parallel beam), turned into counts with
Poisson noise and matching flat and dark fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from layerscope.tomo.readers import Projections

__all__ = ["ParticleSpec", "CrackSpec", "CurvedCrackSpec", "WavyCrackSpec", "RadialCrackSpec", "radial_star",
           "GrainBoundaryCrackSpec", "grain_boundary_cracks", "PoreSpec", "Phantom", "DrawRanges", "build_phantom",
           "default_phantom", "random_phantom", "draw_volume", "project_phantom"]

#: Attenuation per voxel of the phases (epoxy also fills cracks and pores, as in an impregnated sample).
MU_PARTICLE, MU_BINDER, MU_EPOXY = 0.05, 0.012, 0.005


@dataclass(frozen=True)
class ParticleSpec:
    """An ellipsoidal particle: centre (z, y, x) and semi-axes (z, y, x) in voxels."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]


@dataclass(frozen=True)
class CrackSpec:
    """A planar crack in particle ``particle``: a slab of ``width_voxels`` around the plane through
    ``centre + offset`` with unit ``normal`` (z, y, x), cut to a disc of ``radius_voxels`` (inf: the whole particle)."""

    particle: int
    normal: tuple[float, float, float]
    width_voxels: float
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius_voxels: float = np.inf

    def sheet(self, z, y, x, p0):
        """Signed distance (voxels) from the crack's mid-surface, and the voxels within its outline."""
        n = _unit(self.normal)
        d = (z - p0[0]) * n[0] + (y - p0[1]) * n[1] + (x - p0[2]) * n[2]
        inplane2 = (z - p0[0]) ** 2 + (y - p0[1]) ** 2 + (x - p0[2]) ** 2 - d ** 2
        return d, inplane2 <= self.radius_voxels ** 2


@dataclass(frozen=True)
class CurvedCrackSpec:
    """A curved crack: a slab of ``width_voxels`` around a sphere (``cylinder_axis`` None) or a cylinder
    (axis direction ``cylinder_axis``, perpendicular to ``normal``) of ``curvature_radius_voxels``
    that touches the plane through ``centre + offset`` with unit ``normal`` there (its centre of
    curvature on the ``-normal`` side), cut to ``radius_voxels`` from that point (inf: the whole particle).
    Truth normal: ``normal`` (the normal at the crack's centre)."""

    particle: int
    normal: tuple[float, float, float]
    width_voxels: float
    curvature_radius_voxels: float
    cylinder_axis: tuple[float, float, float] | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius_voxels: float = np.inf

    def sheet(self, z, y, x, p0):
        n, rc = _unit(self.normal), self.curvature_radius_voxels
        c = np.asarray(p0, float) - rc * n
        r = [z - c[0], y - c[1], x - c[2]]
        if self.cylinder_axis is not None:
            a = _unit(self.cylinder_axis)
            along = r[0] * a[0] + r[1] * a[1] + r[2] * a[2]
            r = [ri - along * ai for ri, ai in zip(r, a)]
        d = np.sqrt(r[0] ** 2 + r[1] ** 2 + r[2] ** 2) - rc
        far2 = (z - p0[0]) ** 2 + (y - p0[1]) ** 2 + (x - p0[2]) ** 2
        return d, far2 <= self.radius_voxels ** 2 + self.width_voxels ** 2


@dataclass(frozen=True)
class WavyCrackSpec:
    """A wavy crack: the plane of :class:`CrackSpec` displaced along ``normal`` by
    ``amplitude_voxels * sin(2 pi s / wavelength_voxels)``, ``s`` the coordinate along ``wave_direction``
    (in the plane); a slab of ``width_voxels`` across the wavy surface. Truth normal: ``normal``."""

    particle: int
    normal: tuple[float, float, float]
    width_voxels: float
    amplitude_voxels: float
    wavelength_voxels: float
    wave_direction: tuple[float, float, float]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius_voxels: float = np.inf

    def sheet(self, z, y, x, p0):
        n, u = _unit(self.normal), _unit(self.wave_direction)
        rel = [z - p0[0], y - p0[1], x - p0[2]]
        d = sum(r * ni for r, ni in zip(rel, n))
        s = sum(r * ui for r, ui in zip(rel, u))
        inplane2 = sum(r * r for r in rel) - d ** 2
        k = 2 * np.pi / self.wavelength_voxels
        slope = self.amplitude_voxels * k * np.cos(k * s)
        # first-order distance from the wavy surface, so that the slab is ``width_voxels`` thick everywhere
        return (d - self.amplitude_voxels * np.sin(k * s)) / np.sqrt(1 + slope ** 2), inplane2 <= self.radius_voxels ** 2


@dataclass(frozen=True)
class RadialCrackSpec:
    """A radial crack: the half-plane from the line through ``centre + offset`` along ``axis`` out to
    the particle surface in the direction ``direction`` (made perpendicular to ``axis``), a slab of
    ``width_voxels``, cut to ``radius_voxels`` from that point (inf: the whole particle). Several with one
    axis meet on that line (a star); with different axes, at the centre. Truth normal: ``axis x direction``."""

    particle: int
    axis: tuple[float, float, float]
    direction: tuple[float, float, float]
    width_voxels: float
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius_voxels: float = np.inf

    @property
    def normal(self) -> np.ndarray:
        a = _unit(self.axis)
        u = _unit(np.asarray(self.direction, float) - np.dot(self.direction, a) * a)
        return np.cross(a, u)

    def sheet(self, z, y, x, p0):
        a, n = _unit(self.axis), self.normal
        u = np.cross(n, a)
        rel = [z - p0[0], y - p0[1], x - p0[2]]
        within = (sum(r * ui for r, ui in zip(rel, u)) >= 0) & (sum(r * r for r in rel) <= self.radius_voxels ** 2)
        return sum(r * ni for r, ni in zip(rel, n)), within


def radial_star(particle: int, n_cracks: int, width_voxels: float, *, axis=(1.0, 0.0, 0.0), start_deg: float = 0.0,
                angles_deg=None, radius_voxels: float = np.inf) -> list[RadialCrackSpec]:
    """``n_cracks`` radial cracks around one axis through the particle's centre, evenly spaced from
    ``start_deg`` (or at ``angles_deg``), each cut to ``radius_voxels`` from the centre."""
    a = _unit(axis)
    e1 = _unit(np.cross(a, (0.0, 0.0, 1.0)) if abs(a[2]) < 0.9 else np.cross(a, (0.0, 1.0, 0.0)))
    e2 = np.cross(a, e1)
    angles = angles_deg if angles_deg is not None else start_deg + 360.0 * np.arange(n_cracks) / n_cracks
    return [RadialCrackSpec(particle, tuple(a), tuple(np.cos(t) * e1 + np.sin(t) * e2), width_voxels,
                            radius_voxels=radius_voxels) for t in np.radians(angles)]


@dataclass(frozen=True)
class GrainBoundaryCrackSpec:
    """A crack along one primary-grain boundary: the facet of the Voronoi cells of grains ``pair`` = (i, j)
    (``grains``: their seed points relative to ``centre + offset``), a slab of ``width_voxels`` around the
    bisector plane where i and j are the two nearest grains. Truth normal: from grain i to grain j."""

    particle: int
    grains: tuple[tuple[float, float, float], ...]
    pair: tuple[int, int]
    width_voxels: float
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def normal(self) -> np.ndarray:
        i, j = self.pair
        return _unit(np.subtract(self.grains[j], self.grains[i]))

    def sheet(self, z, y, x, p0):
        g = np.asarray(self.grains, float) + np.asarray(p0, float)
        i, j = self.pair
        d2 = np.stack([(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 for c in g])
        two = np.argsort(d2, axis=0)[:2]
        within = ((two[0] == i) & (two[1] == j)) | ((two[0] == j) & (two[1] == i))
        n, mid = self.normal, 0.5 * (g[i] + g[j])
        return (z - mid[0]) * n[0] + (y - mid[1]) * n[1] + (x - mid[2]) * n[2], within


def grain_boundary_cracks(particle: int, radius_voxels: float, n_grains: int, n_cracks: int, width_voxels: float, *,
                          seed: int = 0) -> list[GrainBoundaryCrackSpec]:
    """``n_cracks`` cracks on boundaries of ``n_grains`` random grains (seed points uniform in a ball of
    ``radius_voxels``): the boundaries between the grains nearest the centre and their nearest neighbours."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n_grains, 3))
    pts = pts / np.linalg.norm(pts, axis=1, keepdims=True) * radius_voxels * rng.random((n_grains, 1)) ** (1 / 3)
    order = np.argsort(np.linalg.norm(pts, axis=1))
    pairs = []
    for i in order:
        for j in np.argsort(np.linalg.norm(pts - pts[i], axis=1))[1:3]:
            if len(pairs) < n_cracks and (min(i, j), max(i, j)) not in pairs:
                pairs.append((int(min(i, j)), int(max(i, j))))
    grains = tuple(tuple(float(v) for v in p) for p in pts)
    return [GrainBoundaryCrackSpec(particle, grains, pr, width_voxels) for pr in pairs]


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class PoreSpec:
    """A round pore of ``radius_voxels`` at ``centre + offset`` of particle ``particle``."""

    particle: int
    radius_voxels: float
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class Phantom:
    """A phantom volume and its truth.

    Attributes
    ----------
    volume : ndarray (z, y, x)
        Attenuation per voxel.
    particles : ndarray of int
        Particle id of every voxel of a particle (cracks and pores included), 0 outside.
    cracks, pores : ndarray of int
        Crack id / pore id of every crack / pore voxel (ids from 1, in the order of the specs).
    truth : DataFrame
        Per particle: ``particle``, ``volume_voxels``, ``crack_count``, ``crack_volume_fraction``, ``pore_count``.
    crack_truth : DataFrame
        Per crack: ``crack``, ``particle``, ``width_voxels``, ``normal_z/y/x``, ``volume_voxels``, ``reaches_surface``.
    """

    volume: np.ndarray
    particles: np.ndarray
    cracks: np.ndarray
    pores: np.ndarray
    truth: pd.DataFrame
    crack_truth: pd.DataFrame
    specs: dict = field(default_factory=dict)


def _grid(shape):
    return np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")


def build_phantom(shape: tuple[int, int, int], particles: list[ParticleSpec], cracks: list[CrackSpec] = (),
                  pores: list[PoreSpec] = (), *, binder_voxels: float = 2.0, seed: int = 0) -> Phantom:
    """Voxelise particles (overlaps go to the nearer centre), cracks, pores, binder and epoxy."""
    z, y, x = _grid(shape)
    best = np.full(shape, np.inf, np.float32)
    lab = np.zeros(shape, np.int32)
    for i, p in enumerate(particles, 1):
        r = np.sqrt(sum(((c - c0) / a) ** 2 for c, c0, a in zip((z, y, x), p.centre, p.radii)))
        inside = (r <= 1.0) & (r < best)
        lab[inside], best[inside] = i, r[inside]
    crack_lab = np.zeros(shape, np.int32)
    rows = []
    for k, c in enumerate(cracks, 1):
        n = _unit(c.normal)
        p0 = np.asarray(particles[c.particle - 1].centre) + np.asarray(c.offset)
        d, within = c.sheet(z, y, x, p0)
        sel = (lab == c.particle) & (d >= -c.width_voxels / 2) & (d < c.width_voxels / 2) & within
        crack_lab[sel] = k  # where cracks overlap, the later one owns the voxel
        rows.append({"crack": k, "particle": c.particle, "width_voxels": c.width_voxels, "normal_z": n[0],
                     "normal_y": n[1], "normal_x": n[2], "volume_voxels": int(sel.sum())})
    pore_lab = np.zeros(shape, np.int32)
    for k, p in enumerate(pores, 1):
        c0 = np.asarray(particles[p.particle - 1].centre) + np.asarray(p.offset)
        sel = (lab == p.particle) & ((z - c0[0]) ** 2 + (y - c0[1]) ** 2 + (x - c0[2]) ** 2 <= p.radius_voxels ** 2)
        pore_lab[sel & (crack_lab == 0)] = k
    from scipy import ndimage as ndi

    solid = (lab > 0) & (crack_lab == 0) & (pore_lab == 0)
    outside = ~ndi.binary_fill_holes(solid)
    for row in rows:
        m = crack_lab == row["crack"]
        row["volume_voxels"] = int(m.sum())
        row["reaches_surface"] = bool((m & outside).any() or (ndi.binary_dilation(m) & (lab == 0)).any())
    dist = ndi.distance_transform_edt(lab == 0)
    rng = np.random.default_rng(seed)
    patchy = ndi.gaussian_filter(rng.standard_normal(shape), 3) > 0
    vol = np.full(shape, MU_EPOXY, np.float32)
    vol[(lab == 0) & (dist <= binder_voxels) & patchy] = MU_BINDER
    vol[solid] = MU_PARTICLE
    truth = []
    for i in range(1, len(particles) + 1):
        pv = int((lab == i).sum())
        cv = int(((lab == i) & (crack_lab > 0)).sum())
        truth.append({"particle": i, "volume_voxels": pv, "crack_count": sum(r["particle"] == i for r in rows),
                      "crack_volume_fraction": cv / pv, "pore_count": sum(p.particle == i for p in pores)})
    return Phantom(vol, lab, crack_lab, pore_lab, pd.DataFrame(truth), pd.DataFrame(rows),
                   {"particles": particles, "cracks": list(cracks), "pores": list(pores)})


def default_phantom(size: int = 64, seed: int = 0) -> Phantom:
    """Four particles in a ``size``^3 box (two touching spheres, an ellipsoid, a small sphere), four planar
    cracks of width 2-3 voxels (one through a whole particle to its surface, three internal discs at
    different orientations) and three round pores."""
    s = size / 64.0
    parts = [ParticleSpec((32 * s, 22 * s, 21 * s), (13 * s,) * 3), ParticleSpec((32 * s, 23 * s, 44 * s), (12 * s,) * 3),
             ParticleSpec((30 * s, 46 * s, 30 * s), (11 * s, 9 * s, 14 * s)),
             ParticleSpec((52 * s, 44 * s, 47 * s), (9 * s,) * 3)]
    cracks = [CrackSpec(1, (0.0, 0.6, 0.8), 3.0, (0.3, 0.2, 0.1), 8.5 * s),
              CrackSpec(2, (0.5, 0.0, 0.866), 2.0, (2.5 * s + 0.1, 0.0, 4.33 * s + 0.1)),
              CrackSpec(3, (0.0, 0.0, 1.0), 2.0, (0.0, 0.0, 0.25), 6.5 * s),
              CrackSpec(4, (0.0, 0.71, -0.71), 2.0, (0.0, 0.1, 0.2), 6.0 * s)]
    pores = [PoreSpec(1, 2.5 * s, (0.0, -7.0 * s, -7.0 * s)), PoreSpec(2, 3.0 * s, (-4.0 * s, 3.0 * s, 2.0 * s)),
             PoreSpec(3, 2.5 * s, (0.0, 0.0, 8.0 * s))]
    return build_phantom((size, size, size), parts, cracks, pores, seed=seed)


@dataclass(frozen=True)
class DrawRanges:
    """Ranges of :func:`random_phantom` (voxels unless named otherwise; attenuation per voxel for ``mu_*``)."""

    sizes: tuple[int, ...] = (64, 80, 96, 112, 128)
    n_particles: tuple[int, int] = (1, 6)
    radius_voxels: tuple[float, float] = (10.0, 30.0)
    ellipsoid_share: float = 0.4
    aspect: tuple[float, float] = (0.7, 1.3)
    edge_share: float = 0.2
    #: centre distance of two particles at least this times the sum of their mean semi-axes (< 1: a little overlap)
    min_gap: float = 0.92
    cracks_per_particle: tuple[int, int] = (0, 3)
    crack_width_voxels: tuple[float, float] = (2.0, 4.0)
    through_share: float = 0.35
    #: smallest angle (deg) between two crack planes of one particle (crossing ones cross at least at this)
    min_crossing_deg: float = 30.0
    pores_per_particle: tuple[int, int] = (0, 3)
    pore_radius_voxels: tuple[float, float] = (2.0, 5.0)
    pore_clearance_voxels: float = 2.0
    mu_particle: tuple[float, float] = (0.03, 0.08)
    mu_epoxy: tuple[float, float] = (0.0, 0.01)
    binder_share: float = 0.6
    #: grey volumes: Gaussian noise sigma (times the particle-epoxy contrast) and blur sigma (voxels)
    noise: tuple[float, float] = (0.0, 0.3)
    blur_voxels: tuple[float, float] = (0.0, 0.7)
    #: share of draws reconstructed from projections, their photons per open-beam pixel and numbers of angles
    projected_share: float = 0.4
    photons: tuple[float, float] = (5e3, 1e5)
    n_angles: tuple[int, int] = (90, 240)


def _random_unit(rng) -> np.ndarray:
    """A random unit vector (isotropic) drawn from ``rng``."""
    return _unit(rng.standard_normal(3))


def _particles(rng, size: int, r: DrawRanges) -> list[ParticleSpec]:
    """1-6 spheres/ellipsoids, non-overlapping beyond ``min_gap``, some cut by the volume border."""
    out: list[ParticleSpec] = []
    for _ in range(rng.integers(r.n_particles[0], r.n_particles[1] + 1)):
        for _try in range(200):
            base = rng.uniform(r.radius_voxels[0], min(r.radius_voxels[1], 0.3 * size))
            ax = (base * rng.uniform(*r.aspect, 3)).clip(*r.radius_voxels) if rng.random() < r.ellipsoid_share else np.full(3, base)
            at_edge = rng.random() < r.edge_share
            lo = np.zeros(3) if at_edge else ax + 2.0
            c = rng.uniform(lo, size - 1 - lo)
            if at_edge:  # the centre inside, within 0.3-0.8 semi-axes of one face: the particle is cut
                k = rng.integers(3)
                c[k] = rng.uniform(0.3, 0.8) * ax[k]
                c[k] = c[k] if rng.random() < 0.5 else size - 1 - c[k]
            if all(np.linalg.norm(c - np.asarray(p.centre)) >= r.min_gap * (ax.mean() + np.mean(p.radii)) for p in out):
                out.append(ParticleSpec(tuple(c.round(2)), tuple(ax.round(2))))
                break
    return out


def _cracks(rng, parts: list[ParticleSpec], r: DrawRanges) -> list[CrackSpec]:
    out: list[CrackSpec] = []
    for i, p in enumerate(parts, 1):
        normals: list[np.ndarray] = []
        rad = float(np.min(p.radii))
        for _ in range(rng.integers(r.cracks_per_particle[0], r.cracks_per_particle[1] + 1)):
            for _try in range(50):
                n = _random_unit(rng)
                if all(np.degrees(np.arccos(min(1.0, abs(n @ m)))) >= r.min_crossing_deg for m in normals):
                    break
            else:
                continue
            w = rng.uniform(*r.crack_width_voxels)
            off = _random_unit(rng) * rng.uniform(0, 0.4 * rad)
            # a disc from a third of the particle (at least 2.5 widths across: a sheet, not a void) or through-going
            disc = np.inf if rng.random() < r.through_share else rng.uniform(max(rad / 3, 2.5 * w), rad)
            normals.append(n)
            out.append(CrackSpec(i, tuple(n.round(4)), round(float(w), 2), tuple(off.round(2)), float(np.round(disc, 2))))
    return out


def _pores(rng, parts: list[ParticleSpec], cracks: list[CrackSpec], size: int, r: DrawRanges) -> list[PoreSpec]:
    """Round pores inside their particle and the volume, clear of the particle surface and of its crack
    planes by ``pore_clearance_voxels`` of solid (a thinner wall is below the resolution of the analysis)."""
    out: list[PoreSpec] = []
    for i, p in enumerate(parts, 1):
        mine = [c for c in cracks if c.particle == i]
        for _ in range(rng.integers(r.pores_per_particle[0], r.pores_per_particle[1] + 1)):
            for _try in range(50):
                pr = rng.uniform(*r.pore_radius_voxels)
                gap = r.pore_clearance_voxels
                off = _random_unit(rng) * rng.uniform(0, max(np.min(p.radii) - pr - gap, 0.0))
                at = np.asarray(p.centre) + off
                clear = all(abs((off - np.asarray(c.offset)) @ np.asarray(c.normal)) > pr + c.width_voxels / 2 + gap
                            for c in mine) and bool(np.all((at >= pr + gap) & (at <= size - 1 - pr - gap)))
                if clear:
                    out.append(PoreSpec(i, round(float(pr), 2), tuple(off.round(2))))
                    break
    return out


def random_phantom(seed: int, ranges: DrawRanges = DrawRanges(), size: int | None = None) -> Phantom:
    """One random draw of particles, cracks and pores (ranges in :class:`DrawRanges`) with its truth.

    Cracks whose voxelised sheet is smaller than a disc of twice its width in radius (cut away by the
    particle surface, a neighbour or the volume border) are left out of the draw, so that every crack of
    the truth is a sheet; so are pores cut by a neighbouring particle or within 2 voxels of one. The grey levels are drawn; ``specs["draw"]`` holds the scalar parameters,
    among them ``projected`` (reconstruct from noisy projections) with ``photons`` and ``n_angles``, or
    ``noise`` and ``blur_voxels`` for a grey volume (both applied by :func:`draw_volume`).
    """
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    size = int(size or rng.choice(ranges.sizes))
    parts = _particles(rng, size, ranges)
    cracks = _cracks(rng, parts, ranges)
    pores = _pores(rng, parts, cracks, size, ranges)
    binder = 2.0 if rng.random() < ranges.binder_share else 0.0
    ph = build_phantom((size,) * 3, parts, cracks, pores, binder_voxels=binder, seed=seed)
    small = [k for k, row in enumerate(ph.crack_truth.itertuples()) if row.volume_voxels < np.pi * 4 * row.width_voxels ** 3]
    cut = [k for k, p in enumerate(pores) if (ph.pores == k + 1).sum() < 0.8 * 4 / 3 * np.pi * p.radius_voxels ** 3
           or (ndi.binary_dilation(ph.pores == k + 1, iterations=2) & (ph.particles != p.particle)).any()]
    if small or cut:  # cut by a neighbour (overlaps go to the nearer centre) or the volume border
        cracks = [c for k, c in enumerate(cracks) if k not in small]
        pores = [p for k, p in enumerate(pores) if k not in cut]
        ph = build_phantom((size,) * 3, parts, cracks, pores, binder_voxels=binder, seed=seed)
    mu_p, mu_e = rng.uniform(*ranges.mu_particle), rng.uniform(*ranges.mu_epoxy)
    mu_b = mu_e + rng.uniform(0.1, 0.4) * (mu_p - mu_e)
    vol = np.where(ph.volume == MU_PARTICLE, mu_p, np.where(ph.volume == MU_BINDER, mu_b, mu_e)).astype(np.float32)
    ph.volume = vol
    ph.specs["draw"] = {"seed": seed, "size": size, "n_particles": len(parts), "n_cracks": len(cracks),
                        "n_pores": len(pores), "cracks_dropped": len(small), "pores_dropped": len(cut), "binder": binder > 0,
                        "mu_particle": mu_p, "mu_epoxy": mu_e, "mu_binder": mu_b,
                        "projected": bool(rng.random() < ranges.projected_share),
                        "photons": float(np.exp(rng.uniform(*np.log(ranges.photons)))),
                        "n_angles": int(rng.integers(ranges.n_angles[0], ranges.n_angles[1] + 1)),
                        "noise": float(rng.uniform(*ranges.noise)), "blur_voxels": float(rng.uniform(*ranges.blur_voxels))}
    return ph


def draw_volume(ph: Phantom, voxel_size_nm: float = 50.0):
    """What a random draw's analysis gets: noisy projections (``specs["draw"]["projected"]``) or the grey
    volume blurred and with Gaussian noise (``noise`` x the particle-epoxy contrast), deterministic per seed."""
    from scipy import ndimage as ndi

    from layerscope.tomo.readers import Volume

    d = ph.specs["draw"]
    if d["projected"]:
        return project_phantom(ph.volume, n_angles=d["n_angles"], photons=d["photons"], seed=d["seed"] + 1,
                               pixel_size_nm=voxel_size_nm)
    rng = np.random.default_rng(d["seed"] + 2)
    vol = ndi.gaussian_filter(ph.volume, d["blur_voxels"]) if d["blur_voxels"] > 0 else ph.volume.copy()
    vol += (d["noise"] * (d["mu_particle"] - d["mu_epoxy"]) * rng.standard_normal(vol.shape)).astype(np.float32)
    return Volume(vol.astype(np.float32), voxel_size_nm, labels=False)


def project_phantom(volume: np.ndarray, *, n_angles: int = 120, photons: float = 2e4, dark_counts: float = 100.0,
                    n_flats: int = 10, centre_offset_px: float = 0.0, pixel_size_nm: float = 50.0,
                    seed: int = 0, angles_deg: np.ndarray | None = None,
                    shifts_px: tuple[np.ndarray, np.ndarray] | None = None) -> Projections:
    """Parallel-beam projections of ``volume`` (attenuation per voxel) over 0-180 deg (or at ``angles_deg``,
    deg, e.g. a +-70 deg electron-tomography tilt range) as detector counts.

    Each z slice is forward projected through ASTRA's strip projector; ``centre_offset_px`` moves the
    rotation axis off the detector centre; ``shifts_px`` = ``(dy, dx)``, one per angle (px), shifts projection
    ``a`` by ``dy[a]`` rows (along the rotation axis) and ``dx[a]`` columns (stage drift, jitter; cubic splines,
    edge values continued) before the noise; counts are Poisson with ``photons`` in the open beam.
    """
    import astra
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    nz, ny, nx = volume.shape
    angles = np.linspace(0.0, 180.0, n_angles, endpoint=False) if angles_deg is None else np.asarray(angles_deg, float)
    n_angles = angles.size
    vol_geom = astra.create_vol_geom(ny, nx)
    proj_geom = astra.create_proj_geom("parallel", 1.0, nx, np.deg2rad(angles))
    pid = astra.create_projector("strip", proj_geom, vol_geom)
    lines = np.empty((n_angles, nz, nx), np.float32)
    try:
        for k in range(nz):
            sid, sino = astra.create_sino(np.ascontiguousarray(volume[k], np.float32), pid)
            astra.data2d.delete(sid)
            lines[:, k] = sino
    finally:
        astra.projector.delete(pid)
    if centre_offset_px:
        lines = ndi.shift(lines, (0, 0, centre_offset_px), order=3, mode="nearest")
    if shifts_px is not None:
        from layerscope.tomo.align import shift_block

        lines = shift_block(lines, -np.asarray(shifts_px[0], float), -np.asarray(shifts_px[1], float))
    counts = rng.poisson(photons * np.exp(-lines)) + dark_counts
    flats = rng.poisson(np.full((n_flats, nz, nx), photons)) + dark_counts
    darks = rng.poisson(np.full((n_flats, nz, nx), dark_counts))
    return Projections(counts.astype(np.float32), angles, pixel_size_nm, flats.astype(np.float32),
                       darks.astype(np.float32))
