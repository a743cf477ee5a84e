"""A small crack in the corner of two crossing cracks ends on them: its cut plane lies on one side of each taken plane
and is kept where a taken crack cuts through it (``segment.CUT_T_JUNCTIONS``, docs/validation.md "tomocross3").

Truth: phantoms with known crack planes (``build_phantom``). Two discs of radius 20 (3 voxels wide) cross at 62 deg
along the y axis; a small disc (radius 7, 2.5 voxels wide, ~380-400 voxels: ~5 % of the joint feature) lies in one
corner of the X, its centre 4-6 voxels from the crossing line along the corner's bisector, so that it ends on both
larger cracks. Without the switch (main) its cut plane is refused (no quarter of its voxels beyond either larger
plane) and the analysis reads two cracks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from crossing_corner import CORNER, PARTICLE, PORE, angle_deg, unit
from layerscope.tomo import TomoOptions, analyse, segment
from layerscope.tomo.phantom import CrackSpec, build_phantom
from layerscope.tomo.readers import Volume
from layerscope.tomo.segment import planar_sheets

def _corner(polar_deg: float, azimuth_deg: float, from_line: float) -> list[CrackSpec]:
    """The two large discs and the small disc (normal at ``polar_deg``/``azimuth_deg``) ``from_line`` voxels into
    the corner."""
    return [CrackSpec(1, (0, 0, 1), 3.0, radius_voxels=20), CrackSpec(1, unit(62, 0), 3.0, radius_voxels=20),
            CrackSpec(1, unit(polar_deg, azimuth_deg), 2.5, offset=tuple(CORNER * from_line), radius_voxels=7)]


def _sheets_of_truth(cracks: list[CrackSpec]) -> int:
    """Number of sheets ``planar_sheets`` reads in the crack voxels of a phantom (0: not crossing sheets)."""
    ph = build_phantom((64, 64, 64), [PARTICLE], cracks, [PORE])
    mask = ph.cracks > 0
    half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
    s = planar_sheets(np.argwhere(mask).astype(float), tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5)
    return 0 if s is None else int(s.max()) + 1


def test_the_switch_is_off_by_default():
    assert segment.CUT_T_JUNCTIONS is False


@pytest.mark.parametrize("polar_deg, azimuth_deg, from_line", [(80, 90, 4), (80, 90, 5), (70, 120, 4)])
def test_a_small_crack_ending_on_two_crossing_cracks_is_a_third_plane(monkeypatch, polar_deg, azimuth_deg, from_line):
    """The crack voxels themselves: three sheets with the switch, two without (main)."""
    monkeypatch.setattr(segment, "CUT_T_JUNCTIONS", True)
    assert _sheets_of_truth(_corner(polar_deg, azimuth_deg, from_line)) == 3
    monkeypatch.setattr(segment, "CUT_T_JUNCTIONS", False)
    assert _sheets_of_truth(_corner(polar_deg, azimuth_deg, from_line)) == 2


@pytest.mark.parametrize("polar_deg, azimuth_deg, from_line", [(80, 90, 4), (70, 120, 6)])
def test_corner_crack_through_the_analysis_in_memory_and_out_of_core(monkeypatch, assert_cracks_recovered, polar_deg,
                                                                  azimuth_deg, from_line):
    """The clean grey volume through ``analyse`` with the switch: three cracks, each truth normal within 5 deg of a
    crack's, the pore a pore, the crack volume fraction within 3 % of the truth; out of core (slabs of 16, threads)
    the same tables. Without the switch: two cracks (the small one missed in the crossing)."""
    ph = build_phantom((64, 64, 64), [PARTICLE], _corner(polar_deg, azimuth_deg, from_line), [PORE])
    vol = Volume(ph.volume, 50.0, labels=False)
    monkeypatch.setattr(segment, "CUT_T_JUNCTIONS", True)
    r = analyse(vol, TomoOptions())
    assert_cracks_recovered(ph, r, 3, 0.03)
    chunked = analyse(vol, TomoOptions(out_of_core=True, slab_slices=16), scheduler="threads")
    pd.testing.assert_frame_equal(r.cracks.reset_index(drop=True), chunked.cracks.reset_index(drop=True))
    pd.testing.assert_frame_equal(r.particles.reset_index(drop=True), chunked.particles.reset_index(drop=True))
    monkeypatch.setattr(segment, "CUT_T_JUNCTIONS", False)
    assert len(analyse(vol, TomoOptions()).cracks) == 2


@pytest.mark.parametrize("normal", [(0.0, 0.0, 1.0), unit(50, 30)])
def test_a_single_planar_crack_is_still_one_crack(monkeypatch, normal):
    """One disc (radius 15, 2.5 voxels wide) through the particle centre, the pore beside it: one crack with the
    switch, its normal within 3 deg, the pore a pore."""
    monkeypatch.setattr(segment, "CUT_T_JUNCTIONS", True)
    ph = build_phantom((64, 64, 64), [PARTICLE], [CrackSpec(1, normal, 2.5, radius_voxels=15)], [PORE])
    r = analyse(Volume(ph.volume, 50.0, labels=False), TomoOptions())
    assert len(r.cracks) == 1 and len(r.pores) == 1
    assert angle_deg(normal, r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()[0]) < 3.0


@pytest.mark.parametrize("bend_deg", [40, 60])
def test_a_bent_crack_is_not_cut_in_two(monkeypatch, bend_deg):
    """A crack that changes direction (two half-discs of radius 16, 2.5 voxels wide, meeting along the y axis at
    ``bend_deg``: a V) gives no cut plane on the second arm's side: the crack voxels read as no crossing sheets with
    the switch, as without it. The arms meet at a bend; neither cuts through the other (:func:`segment._ends_on`)."""
    z, y, x = (np.mgrid[:64, :64, :64] - 32).astype(float)
    t = np.radians(bend_deg)
    arm1 = (np.abs(z) <= 1.25) & (x >= 0) & (x ** 2 + y ** 2 <= 256)  # along +x in the plane z = 0
    along = x * np.cos(t) + z * np.sin(t)  # the second arm runs along (z, x) = (sin t, cos t) ...
    across = z * np.cos(t) - x * np.sin(t)  # ... in the plane with this normal
    arm2 = (np.abs(across) <= 1.25) & (along >= 0) & (along ** 2 + y ** 2 <= 256)
    mask = arm1 | arm2
    half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
    for on in (True, False):
        monkeypatch.setattr(segment, "CUT_T_JUNCTIONS", on)
        s = planar_sheets(np.argwhere(mask).astype(float), tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5)
        assert s is None
