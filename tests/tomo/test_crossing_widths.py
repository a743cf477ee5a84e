"""A crossing sheet's width sampled away from the other sheets' planes (``measure.WIDTH_AWAY_VOXELS``,
docs/validation.md "tomocross4").

Truth: phantoms with known crack planes and widths (``build_phantom``, a clean grey volume). Two discs of radius 20
(3 voxels wide) cross at 62 deg along the y axis; a small disc (radius 7, 2.5 voxels wide) lies in their obtuse
corner, its normal halfway between theirs (31 deg from each: a chord across the corner, ending on both larger cracks,
like crack 10 of draw 11079), its centre 3 voxels from the crossing line. With ``segment.CUT_T_JUNCTIONS`` it is read
as a third sheet; its plane meets the larger planes along lines that run across the whole of the larger discs, and
each voxel goes to the nearest plane, so the small crack's sheet also holds strips of the larger cracks. Sampled at
every voxel (main's rule, ``WIDTH_AWAY_VOXELS = None``) its width reads 1.36 voxel (truth 2.5); sampled at its
voxels more than 3 voxels from the larger planes, 2.41.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scipy import ndimage as ndi

from crossing_corner import CORNER, PARTICLE, PORE, angle_deg, slab, unit
from layerscope.tomo import TomoOptions, analyse, measure, segment
from layerscope.tomo.phantom import CrackSpec, build_phantom
from layerscope.tomo.readers import Volume

CRACKS = [CrackSpec(1, (0, 0, 1), 3.0, radius_voxels=20), CrackSpec(1, unit(62, 0), 3.0, radius_voxels=20),
          CrackSpec(1, unit(31, 0), 2.5, offset=tuple(CORNER * 3), radius_voxels=7)]


@pytest.fixture(scope="module")
def corner_volume():
    return Volume(build_phantom((64, 64, 64), [PARTICLE], CRACKS, [PORE]).volume, 50.0, labels=False)


def _width_errors(r) -> list[float]:
    """Per truth crack (in ``CRACKS``' order): the width (voxels) of the measured sheet nearest its normal, less the
    truth width."""
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    widths = r.cracks["width_mean_nm"].to_numpy() / 50.0
    out = []
    for c in CRACKS:
        j = int(np.argmin([angle_deg(n, c.normal) for n in normals]))
        assert angle_deg(normals[j], c.normal) < 10.0
        out.append(float(widths[j] - c.width_voxels))
    return out


def test_the_rule_is_off_by_default():
    assert measure.WIDTH_AWAY_VOXELS is None
    assert measure.WIDTH_NEAR_PLANES is False


def test_the_corner_crack_width_away_from_the_crossing(monkeypatch, corner_volume):
    """With ``CUT_T_JUNCTIONS``: three cracks, one pore; every crack's width within 0.3 voxel of its truth (measured
    2.99, 2.91, 2.41 against 3.0, 3.0, 2.5); out of core (slabs of 16, threads) the same tables. Sampled at every voxel
    (main's rule) the small crack reads more than 1 voxel thin (1.36 against 2.5) and the larger ones 0.2-0.6 thin."""
    monkeypatch.setattr(segment, "CUT_T_JUNCTIONS", True)
    monkeypatch.setattr(measure, "WIDTH_AWAY_VOXELS", 3.0)
    r = analyse(corner_volume, TomoOptions())
    assert len(r.cracks) == 3 and len(r.pores) == 1
    assert max(abs(e) for e in _width_errors(r)) < 0.3
    chunked = analyse(corner_volume, TomoOptions(out_of_core=True, slab_slices=16), scheduler="threads")
    pd.testing.assert_frame_equal(r.cracks.reset_index(drop=True), chunked.cracks.reset_index(drop=True))
    pd.testing.assert_frame_equal(r.particles.reset_index(drop=True), chunked.particles.reset_index(drop=True))
    monkeypatch.setattr(measure, "WIDTH_AWAY_VOXELS", None)
    before = analyse(corner_volume, TomoOptions())
    assert len(before.cracks) == 3
    errors = _width_errors(before)
    assert errors[2] < -1.0 and max(errors[:2]) < -0.2
    pd.testing.assert_frame_equal(before.cracks.drop(columns=["width_mean_nm", "width_max_nm"]),
                                  r.cracks.drop(columns=["width_mean_nm", "width_max_nm"]))  # only the widths move


def test_a_single_sheet_is_measured_as_before(monkeypatch):
    """One disc (radius 15, 2.5 voxels wide, normal at 50/30 deg): the rule leaves a single sheet's width as it was
    (bit for bit) and within 0.3 voxel of the truth."""
    ph = build_phantom((64, 64, 64), [PARTICLE], [CrackSpec(1, unit(50, 30), 2.5, radius_voxels=15)], [PORE])
    vol = Volume(ph.volume, 50.0, labels=False)
    monkeypatch.setattr(measure, "WIDTH_AWAY_VOXELS", 3.0)
    on = analyse(vol, TomoOptions()).cracks
    monkeypatch.setattr(measure, "WIDTH_AWAY_VOXELS", None)
    off = analyse(vol, TomoOptions()).cracks
    assert len(on) == 1
    pd.testing.assert_frame_equal(on, off)
    assert abs(on["width_mean_nm"].iloc[0] / 50.0 - 2.5) < 0.3


def _lost_crack_sheets(monkeypatch, near: bool) -> list[dict]:
    """The rows (widths in voxels: a voxel of 1 nm) of the two sheets of a feature holding a crack lost in it (``measure.WIDTH_AWAY_VOXELS`` 3,
    ``measure.WIDTH_NEAR_PLANES`` ``near``). Two discs of radius 10, 2.5 voxels wide, cross at 90 deg (normals z and
    x) at the centre of a 40^3 box; a third disc (radius 7, 3 voxels wide, normal at 45 deg to both) lies in their
    corner, its centre 5 voxels from each plane, and has no plane of its own: its voxels go to the nearest of the two
    planes, as where ``planar_sheets`` finds no cut plane for it (draws 6005, 7061). The deficit is the union's mask
    blurred by a Gaussian of 0.7 voxel (a missing fraction whose integral across a crack is its width) over the mask
    grown by 3 voxels, as ``_deficit`` reads it."""
    shape, c0 = (40, 40, 40), np.array([20.0, 20.0, 20.0])
    m = (slab(shape, c0, (1, 0, 0), 2.5, 10) | slab(shape, c0, (0, 0, 1), 2.5, 10)
         | slab(shape, c0 + [5, 0, 5], (1, 0, 1), 3.0, 7))
    coords = np.argwhere(m).astype(float)
    sheets = np.argmin(np.abs(coords - c0)[:, [0, 2]], axis=1)  # the nearest of the planes z = 20 and x = 20
    region = ndi.binary_dilation(m, iterations=3)
    rc, miss = np.argwhere(region).astype(float), ndi.gaussian_filter(m.astype(float), 0.7)[region]
    monkeypatch.setattr(measure, "WIDTH_AWAY_VOXELS", 3.0)
    monkeypatch.setattr(measure, "WIDTH_NEAR_PLANES", near)
    out = []
    for mk, ck, rk, mis, bk, away, on in measure._split_sheets(m, coords, rc, miss, sheets, np.zeros(len(rc), bool)):
        row = measure._crack_numbers(mk, ck, rk, mis, np.zeros_like(m), 1.0, measured=True, sample=away,
                                     width_deficit=on)
        out.append(row)
    return out


def test_a_lost_crack_deficit_is_kept_out_of_the_widths(monkeypatch):
    """``measure.WIDTH_NEAR_PLANES``: the two sheets (truth 2.5 voxels) read within 1 voxel of their truth (3.28, 3.42
    measured) where the deficit farther than the planes' tolerance from both planes is left out of the widths, and
    more than 1 voxel wide (3.61, 3.60) where each sheet reads every deficit voxel nearest its plane (the lost crack's
    too). Their volumes are the same either way."""
    with_rule = _lost_crack_sheets(monkeypatch, True)
    without = _lost_crack_sheets(monkeypatch, False)
    assert len(with_rule) == 2
    assert all(abs(r["width_mean_nm"] - 2.5) < 1.0 for r in with_rule)
    assert all(r["width_mean_nm"] - 2.5 > 1.0 for r in without)
    assert [r["volume_voxels"] for r in with_rule] == [r["volume_voxels"] for r in without]


def _disc_sheet(width: float = 3.0, blur: float = 0.7):
    """One disc (radius 10, ``width`` voxels wide, normal z) at the centre of a 32^3 box: its mask, voxels and the
    deficit (the mask blurred by a Gaussian of ``blur`` voxels over the mask grown by 3 voxels, as in
    ``_lost_crack_sheets``)."""
    shape, c0 = (32, 32, 32), np.array([16.0, 16.0, 16.0])
    m = slab(shape, c0, (1, 0, 0), width, 10)
    region = ndi.binary_dilation(m, iterations=3)
    rc, miss = np.argwhere(region).astype(float), ndi.gaussian_filter(m.astype(float), blur)[region]
    return m, np.argwhere(m).astype(float), rc, miss, np.abs(rc[:, 0] - c0[0])


def test_a_sheet_whose_kept_deficit_reads_no_width_gets_main_width():
    """tomocross6's guard (draw 19 of 0-49 read no width with ``WIDTH_NEAR_PLANES``): a sheet whose kept deficit
    voxels all lie beyond 2.5 voxels of its plane (the blurred tails of a crack 3 voxels wide: every sample reads under
    0.5 voxel) gets the width read from all its deficit (main's reading, 3 +- 0.3 voxels; d12287f gave NaN)."""
    m, coords, rc, miss, dist = _disc_sheet()
    kept = dist > 2.5
    assert kept.any()
    row = measure._crack_numbers(m, coords, rc, miss, np.zeros_like(m), 1.0, measured=True, width_deficit=kept)
    main = measure._crack_numbers(m, coords, rc, miss, np.zeros_like(m), 1.0, measured=True)
    assert np.isfinite(row["width_mean_nm"])
    assert row["width_mean_nm"] == main["width_mean_nm"]
    assert m.sum() == 3 * m[16].sum()  # the disc is 3 voxel layers thick
    assert abs(row["width_mean_nm"] - 3.0) < 0.3
