"""The bridged mouth of a crack at the particle surface (docs/validation.md "tomomouth").

Where the envelope closing bridges a crack's mouth, the dark voxels it takes in along the surface (the
rounded edges of the particle's wedges) join the crack's feature: a sheet lying in the surface shell, or a
thick rim that makes the feature look round. Truth: features built voxel by voxel with a given depth.
"""

from __future__ import annotations

import numpy as np

from layerscope.tomo import TomoOptions
from layerscope.tomo.measure import MOUTH, SURFACE_SHELL, _below_shell, _sheets, _surface_sheets
from layerscope.tomo.segment import feature_shape


def test_a_sheet_in_the_surface_shell_is_the_mouth():
    # Two crossing planes 10 voxels deep and a third sheet at depth 1 (the shell): with ``mouth`` its
    # voxels are the mouth (measured in no crack), the planes keep their indices.
    g = np.arange(-10, 11, dtype=float)
    a = np.array([(0.0, u, v) for u in g for v in g])
    b = np.array([(u, 0.0, v) for u in g for v in g if u != 0])
    c = np.array([(3.0, u, v) for u in (6.0, 8.0, 10.0) for v in g[::2]])
    coords = np.concatenate([a, b, c])
    sheets = np.repeat([0, 1, 2], [len(a), len(b), len(c)])
    depth = np.concatenate([np.full(len(a) + len(b), 10.0), np.full(len(c), 1.0)])
    out = _surface_sheets(coords, sheets, depth, mouth=True)
    assert (out[: len(a) + len(b)] == sheets[: len(a) + len(b)]).all()
    assert (out[len(a) + len(b):] == MOUTH).all()


def _box(shape=(24, 40, 40)):
    return np.zeros(shape, bool)


def test_a_crack_with_a_thick_bridged_rim_is_a_crack():
    # A disc 2 voxels thick (radius 12, 4-12 voxels deep) with a block of dark voxels 9 voxels thick at its rim in
    # the surface shell (depth 1): as a whole not flat (a pore); below the shell one sheet, the disc, and the
    # block's voxels beyond the disc's plane are the mouth.
    m = _box()
    z, y, x = np.indices(m.shape)
    disc = (np.abs(z - 12 + 0.5) <= 1) & ((y - 20) ** 2 + (x - 20) ** 2 <= 144)
    rim = (np.abs(z - 12) <= 4) & (y >= 29) & (y <= 33) & (np.abs(x - 20) <= 6)
    m = disc | rim
    coords = np.argwhere(m).astype(float)
    depth = np.where(rim[m] & ~disc[m], 1.0, 4.0 + (32 - coords[:, 1]) / 2)
    assert _sheets(m, coords, feature_shape(coords), TomoOptions(), depth) is None
    out = _below_shell(m, coords, TomoOptions(), depth, SURFACE_SHELL, None)
    assert out is not None and set(np.unique(out[disc[m]])) == {0}
    far = rim[m] & (np.abs(coords[:, 0] - 11.5) > 2.5)  # beyond the disc's plane tolerance
    assert far.any() and (out[far] == MOUTH).all()


def test_a_round_pore_under_the_surface_stays_a_pore():
    # A ball of radius 5 whose top 3 voxels lie in the surface shell: below it a round cap, no sheet.
    m = _box()
    z, y, x = np.indices(m.shape)
    m = (z - 10) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 25
    coords = np.argwhere(m).astype(float)
    depth = np.clip(coords[:, 0] - 6.0, 0.5, None)  # the surface at z = 6
    assert (depth < SURFACE_SHELL).mean() > 0.1
    assert _below_shell(m, coords, TomoOptions(), depth, SURFACE_SHELL, None) is None
