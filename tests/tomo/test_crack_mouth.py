"""The bridged mouth of a crack at the particle surface (docs/validation.md "tomomouth").

Where the envelope closing bridges a crack's mouth, the dark voxels it takes in along the surface (the
rounded edges of the particle's wedges) join the crack's feature as a thick rim that makes it look round.
Truth: features built voxel by voxel with a given depth in the envelope.
"""

from __future__ import annotations

import numpy as np

from layerscope.tomo import TomoOptions
from layerscope.tomo.measure import SURFACE_SHELL, _below_shell, _sheets
from layerscope.tomo.segment import feature_shape


def test_a_round_pore_under_the_surface_stays_a_pore():
    # A ball of radius 5 whose top lies in the surface shell: below it a round cap, no sheet.
    z, y, x = np.indices((24, 40, 40))
    m = (z - 10) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 25
    coords = np.argwhere(m).astype(float)
    depth = np.clip(coords[:, 0] - 6.0, 0.5, None)  # the surface at z = 6
    assert (depth < SURFACE_SHELL).mean() > 0.1
    assert _below_shell(m, coords, TomoOptions(), depth, SURFACE_SHELL, None) is None


def test_one_crack_in_the_shell_keeps_its_reading():
    # A flat disc wholly deeper than the shell is read as before: nothing to read again.
    z, y, x = np.indices((24, 40, 40))
    m = (np.abs(z - 11.5) <= 1) & ((y - 20) ** 2 + (x - 20) ** 2 <= 100)
    coords = np.argwhere(m).astype(float)
    one = np.zeros(len(coords), np.int64)
    assert _below_shell(m, coords, TomoOptions(), np.full(len(coords), 6.0), SURFACE_SHELL, one) is one
