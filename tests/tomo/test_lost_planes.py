"""A crack lost inside the slabs of two crossing cracks found as a sheet of its own (``segment.LOST_PLANES``,
docs/validation.md "tomolost").

Truth: the voxels of three disc cracks built in code (``crossing_corner.slab``). Two discs of radius 10, 2.5 voxels
wide, cross at 90 deg (normals z and x) at the centre of a 40^3 box; a third disc (radius 7, 3 voxels wide) lies in
their corner with its normal at 45 deg to both, its centre 2 voxels from each plane: it lies almost wholly inside the
two planes' slabs (``tol`` = the feature's half width + 0.5 voxel, as ``measure._sheets`` sets it), so the slab search
and the cut planes leave it no plane and its voxels go to the two larger sheets (as crack 7 of draw 6001). Of the
corner scenes scanned (centre 1.5-3 voxels from the planes, radius 7-9, 2.5-3 voxels wide) this is the one where the
switch adds the third sheet within 3 deg and the base reads two; in most the base reads three already or the switch
adds nothing (docs/validation.md "tomolost").
"""

from __future__ import annotations

import numpy as np

from crossing_corner import angle_deg, slab
from layerscope.tomo import measure, segment

SMALL = (1.0, 0.0, 1.0)
TRUTH = [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0), SMALL]


def _corner_feature(offset: float, radius: float, width: float) -> tuple[np.ndarray, float]:
    """The voxel coordinates of the three discs and the planes' tolerance (voxels)."""
    shape, c0 = (40, 40, 40), np.array([20.0, 20.0, 20.0])
    m = (slab(shape, c0, TRUTH[0], 2.5, 10) | slab(shape, c0, TRUTH[1], 2.5, 10)
         | slab(shape, c0 + [offset, 0.0, offset], SMALL, width, radius))
    return np.argwhere(m).astype(float), measure._half_width(m) + 0.5


def _sheet_normals(monkeypatch, lost: bool, offset: float, radius: float, width: float) -> list:
    monkeypatch.setattr(segment, "LOST_PLANES", lost)
    coords, tol = _corner_feature(offset, radius, width)
    sheets = segment.planar_sheets(coords, tol=tol, max_flatness=0.45, min_sheet_voxels=1.5)
    assert sheets is not None
    return [segment.plane_of(coords[sheets == i])[1] for i in range(int(sheets.max()) + 1)]


def test_a_crack_inside_the_slabs_gets_its_own_sheet(monkeypatch, offset=2.0, radius=7, width=3.0):
    """With ``LOST_PLANES``: three sheets, each within 3 deg of one truth crack (one per crack); without it two (the
    larger cracks)."""
    normals = _sheet_normals(monkeypatch, True, offset, radius, width)
    assert len(normals) == 3
    nearest = [int(np.argmin([angle_deg(n, t) for t in TRUTH])) for n in normals]
    assert sorted(nearest) == [0, 1, 2]
    assert all(angle_deg(n, TRUTH[j]) < 3.0 for n, j in zip(normals, nearest))
    before = _sheet_normals(monkeypatch, False, offset, radius, width)
    assert len(before) == 2


def test_two_crossing_cracks_stay_two(monkeypatch):
    """Two discs crossing (no third crack): two sheets with the switch, as without it."""
    monkeypatch.setattr(segment, "LOST_PLANES", True)
    shape, c0 = (40, 40, 40), np.array([20.0, 20.0, 20.0])
    m = slab(shape, c0, TRUTH[0], 2.5, 12) | slab(shape, c0, (0.0, 0.5, 0.866), 3.0, 12)
    coords = np.argwhere(m).astype(float)
    sheets = segment.planar_sheets(coords, tol=measure._half_width(m) + 0.5, max_flatness=0.45, min_sheet_voxels=1.5)
    assert sheets is not None and int(sheets.max()) + 1 == 2


def test_the_switch_is_off_by_default():
    assert segment.LOST_PLANES is False
