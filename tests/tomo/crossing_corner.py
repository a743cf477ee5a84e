"""Geometry shared by the crossing-crack tests (test_cut_t_junctions.py, test_crossing_widths.py): one particle, one
pore, two discs crossing at 62 deg along the y axis and the bisector of their corner; a disc crack's mask (:func:`slab`)."""

from __future__ import annotations

import numpy as np

from layerscope.tomo.phantom import ParticleSpec, PoreSpec

PARTICLE = ParticleSpec((32, 32, 32), (24, 24, 24))
PORE = PoreSpec(1, 3.5, (8, -12, -12))
#: The bisector (z, y, x) of the corner between the half-plane x > 0 of the disc z = 0 and the half-plane of the
#: disc at 62 deg that rises towards +z (both through the particle centre; their crossing line is the y axis).
CORNER = np.array([0.857, 0.0, 0.516])


def unit(polar_deg: float, azimuth_deg: float) -> tuple[float, float, float]:
    """Unit normal (z, y, x) at ``polar_deg`` from z and ``azimuth_deg`` about it (from x toward y)."""
    t, p = np.radians(polar_deg), np.radians(azimuth_deg)
    return float(np.cos(t)), float(np.sin(t) * np.sin(p)), float(np.sin(t) * np.cos(p))


def angle_deg(u, v) -> float:
    """Angle (deg, 0-90) between two plane normals."""
    return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(u, v)) / np.linalg.norm(u) / np.linalg.norm(v))))))


def slab(shape: tuple, centre, normal, width_voxels: float, radius_voxels: float) -> np.ndarray:
    """Mask of a disc crack: the voxels within ``width_voxels / 2`` of the plane through ``centre`` (z, y, x) with
    ``normal`` and within ``radius_voxels`` of ``centre`` across it."""
    z, y, x = np.indices(shape, dtype=float)
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    rel = np.stack([z - centre[0], y - centre[1], x - centre[2]], axis=-1)
    d = rel @ n
    return (np.abs(d) < width_voxels / 2) & ((rel ** 2).sum(axis=-1) - d ** 2 <= radius_voxels ** 2)
