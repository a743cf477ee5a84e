"""The join of tied distance tops labelled in boxes (``segment.TIED_TOPS_CROP``; issue 20, helper tomotie;
docs/validation.md "tomotie").

Truth: voxelised balls drawn here in four envelope components along x: A, two balls of radius 10 whose centres lie 8
voxels apart (mirror images: tied tops, dip 0.8 < h = 2: one seed); B, the same 16 apart (dip 4 > h: two seeds);
C, two balls of radius 7, 6 apart (tied tops at 7.07, the lowest tied value: one seed); D, one ball of radius 10
(top 10.05, tied with A's and B's four tops: a seed alone in its component). The reference is session 30's
``tied_tops_lut``: one whole-volume label of ``f >= v - h`` per tied top value ``v``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

import layerscope.tomo.chunked as chunked
import layerscope.tomo.segment as sg


def _balls() -> np.ndarray:
    c, shape = 12, (25, 25, 180)
    specs = [(21, 10), (29, 10), (72, 10), (88, 10), (122, 7), (128, 7), (160, 10)]  # (x centre, radius): A A B B C C D
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return np.any([(z - c) ** 2 + (y - c) ** 2 + (x - cx) ** 2 <= r * r for cx, r in specs], axis=0)


def _reference_lut(f: np.ndarray, markers: np.ndarray, h: float) -> np.ndarray:
    """Session 30's join: each tied value's mask labelled over the whole volume, each seed's component its maximum."""
    n = int(markers.max())
    lut, ids = np.arange(n + 1), np.arange(1, n + 1)
    top = ndi.maximum(f, markers, ids)
    values, counts = np.unique(top, return_counts=True)
    for v in values[counts > 1]:
        mine = ids[top == v]
        where = ndi.maximum(ndi.label(sg.tie_mask(f, v, h), structure=np.ones((3, 3, 3)))[0], markers, mine)
        for c in np.unique(where):
            lut[mine[where == c]] = lut[mine[where == c]].min()
    return np.unique(lut, return_inverse=True)[1]


def _seeds(h: float) -> tuple[np.ndarray, np.ndarray]:
    f = sg.distance_transform_core(_balls(), slice(None))
    return f, sg.joined_tops(sg.h_maxima_core(f, h))


def _counting(monkeypatch) -> dict:
    """Count the voxels of the tie masks built from here on."""
    seen, mask = {"voxels": 0}, sg.tie_mask

    def tie_mask(f, v, h):
        seen["voxels"] += int(np.size(f))
        return mask(f, v, h)

    monkeypatch.setattr(sg, "tie_mask", tie_mask)
    return seen


@pytest.mark.parametrize("h", [2.0, 1.0])
def test_boxes_give_the_whole_volume_lut(h, monkeypatch):
    """The look-up table with the crop equals the reference's and the whole-volume path's (``TIED_TOPS_CROP`` off);
    for h = 2 it is the truth: A one seed, B two, C one, D its own (7 seeds -> 5), and the tie masks labelled hold
    one volume (C's value) plus A's and B's boxes, not two volumes (fails on main, which labels the whole volume for
    both tied values). h = 1: more seeds, the same table both ways."""
    f, markers = _seeds(h)
    ref = _reference_lut(f, markers, h)
    seen = _counting(monkeypatch)
    monkeypatch.setattr(sg, "TIED_TOPS_CROP", True, raising=False)
    lut = sg.tied_tops_lut(f, markers, h)
    cropped = seen["voxels"]
    monkeypatch.setattr(sg, "TIED_TOPS_CROP", False, raising=False)
    assert np.array_equal(lut, ref) and np.array_equal(sg.tied_tops_lut(f, markers, h), ref)
    if h == 2.0:
        assert ref.tolist() == [0, 1, 1, 2, 3, 4, 4, 5]
        box = 21 * 21 * 29 + 21 * 21 * 37  # at most the boxes of A's and B's balls
        assert f.size < cropped <= f.size + box < 2 * f.size, cropped


@pytest.mark.parametrize("k", [1, 4])
def test_slabs_join_as_in_memory(k, tmp_path, monkeypatch):
    """``chunked._join_tied_tops`` on memory maps in slabs of ``k`` z slices: the seeds of the in-memory table, with the
    crop and without; k = 1 labels B's box in slabs (more than two slabs' voxels), k = 4 in memory."""
    f, markers = _seeds(2.0)
    want = _reference_lut(f, markers, 2.0)[markers]
    for crop in (True, False):
        monkeypatch.setattr(sg, "TIED_TOPS_CROP", crop, raising=False)
        e = np.lib.format.open_memmap(tmp_path / f"e{crop}.npy", "w+", f.dtype, f.shape)
        m = np.lib.format.open_memmap(tmp_path / f"m{crop}.npy", "w+", markers.dtype, markers.shape)
        e[:], m[:] = f, markers
        assert chunked._join_tied_tops(e, m, int(markers.max()), 2.0, tmp_path, k, 1) == 5
        assert np.array_equal(np.asarray(m), want)
